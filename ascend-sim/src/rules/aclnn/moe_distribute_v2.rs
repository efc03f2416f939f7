//! aclnnMoeDistributeDispatchV2 and aclnnMoeDistributeCombineV2, the MC2 expert-parallel ops
//! (cann-api-facts §4.7; ops-transformer `mc2/moe_distribute_{dispatch,combine}_v2/docs`), with
//! the limits documented for Atlas A3 (`commAlg` NULL or empty) and for Atlas A2's two
//! algorithms (`commAlg` "fullmesh" or "hierarchy"): a call's `commAlg` picks the form whose
//! rules apply (rules `…a2-…` for A2's), and which SoC takes which form is checked when the op
//! runs. The simulator implements both without shared experts or TP (the dispatch unquantized
//! or with quantMode 2): where the hardware accepts more (shared experts, A2's expert scales),
//! the rule says so and the simulator rejects it.

use ascend_sys::{ACL_BF16, ACL_BOOL, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT32, ACL_INT64};

use super::{dim, dims_are, one, same_dtype};
use crate::rules::Requirement::{DTypes, IntIn, Present, Rank, Relation};
use crate::rules::{Arg, Call, INVALID, NULLPTR, Rule, TensorMeta};

/// The documented form of a call, named by its `commAlg`: A3's (NULL or empty; A3 takes no
/// algorithm) or one of Atlas A2's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    A3,
    /// A2, tokens sent straight over RDMA.
    Fullmesh,
    /// A2, sent within and across servers in two steps (needs driver ≥ 25.0.RC1.1).
    Hierarchy,
}

impl Form {
    /// The form `commAlg` names; `None` for a name the ops do not take.
    pub(crate) fn of(comm_alg: Option<&str>) -> Option<Form> {
        match comm_alg {
            None | Some("") => Some(Form::A3),
            Some("fullmesh") => Some(Form::Fullmesh),
            Some("hierarchy") => Some(Form::Hierarchy),
            Some(_) => None,
        }
    }

    pub(crate) fn is_a2(self) -> bool {
        self != Form::A3
    }
}

/// Devices of one simulated A2 server (an Atlas 800T A2 holds 8): the docs' `serverNum` is
/// `epWorldSize / 8` here. How hardware counts servers for a rank table is UNVERIFIED.
const A2_SERVER_DEVICES: i64 = 8;

/// A2's `epRecvCountsOut` / `epSendCounts` length: `moeExpertNum + 2·globalBs·K·serverNum`,
/// `globalBs` 0 counting as `BS·epWorldSize` (the first `moeExpertNum` are the counts, the
/// rest the ops' own reduce bookkeeping).
fn a2_counts_len(experts: i64, (global_bs, bs, ep): (i64, i64, i64), k: i64) -> i64 {
    let global = if global_bs == 0 { bs * ep } else { global_bs };
    let servers = (ep / A2_SERVER_DEVICES).max(1);
    experts + 2 * global * k * servers
}

pub(super) const DISPATCH: &str = "aclnnMoeDistributeDispatchV2";
pub(super) const COMBINE: &str = "aclnnMoeDistributeCombineV2";
const DOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_dispatch_v2/docs/aclnnMoeDistributeDispatchV2.md (A3 notes, shape-variable table)";
const CDOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_combine_v2/docs/aclnnMoeDistributeCombineV2.md (A3 notes)";
const A2_DOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_dispatch_v2/docs/aclnnMoeDistributeDispatchV2.md (A2 notes, shape variables, HCCL_BUFFSIZE)";
const A2_CDOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_combine_v2/docs/aclnnMoeDistributeCombineV2.md (A2 notes, shape variables, HCCL_BUFFSIZE)";
pub(super) const HALVES: &[i32] = &[ACL_FLOAT16, ACL_BF16];
/// `HCCL_BUFFSIZE`'s default, in MB.
const DEFAULT_BUFFSIZE_MB: u64 = 200;
pub(super) const MIB: i64 = 1 << 20;

/// The form the call's `commAlg` names (an unknown name counts as A3's here: rule
/// `…comm-alg` refuses it).
fn form(c: &Call) -> Form {
    Form::of(c.str_of("commAlg")).unwrap_or(Form::A3)
}

/// `check` on a call of A3's form; any other passes (its `a2-` rules apply).
fn on_a3(c: &Call, check: fn(&Call) -> Result<(), String>) -> Result<(), String> {
    if form(c).is_a2() { Ok(()) } else { check(c) }
}

/// `check` with the A2 form of a call; an A3 call passes.
fn on_a2(c: &Call, check: fn(&Call, Form) -> Result<(), String>) -> Result<(), String> {
    match form(c) {
        Form::A3 => Ok(()),
        a2 => check(c, a2),
    }
}

fn a2_ep_world_size(c: &Call, form: Form) -> Result<(), String> {
    let ep = c.int_of("epWorldSize");
    let allowed: &[i64] = match form {
        Form::Hierarchy => &[16, 32, 64],
        _ => &[16, 32, 64, 128, 256],
    };
    if allowed.contains(&ep) {
        Ok(())
    } else {
        Err(format!("epWorldSize {ep} with {form:?}"))
    }
}

fn a2_experts(c: &Call, form: Form) -> Result<(), String> {
    let (e, l) = (c.int_of("moeExpertNum"), local_experts(c));
    if (1..=512).contains(&e) && (form == Form::Hierarchy || l <= 24) {
        Ok(())
    } else {
        Err(format!("moeExpertNum {e}, {l} per rank, with {form:?}"))
    }
}

fn a2_hidden(c: &Call, form: Form, x: &str) -> Result<(), String> {
    let h = dim(c, x, 1);
    let max = if form == Form::Hierarchy {
        10 * 1024
    } else {
        7168
    };
    if (1..=max).contains(&h) && h % 32 == 0 {
        Ok(())
    } else {
        Err(format!("H {h} with {form:?}"))
    }
}

fn a2_bs(c: &Call, _: Form) -> Result<(), String> {
    match dim(c, "expertIds", 0) {
        1..=256 => Ok(()),
        bs => Err(format!("BS {bs}")),
    }
}

fn a2_mask(c: &Call, _: Form) -> Result<(), String> {
    let bs = dim(c, "expertIds", 0);
    match c.tensor_of("xActiveMaskOptional") {
        Some(m) if m.dims != [bs] => {
            Err(format!("xActiveMaskOptional {:?}, expected [{bs}]", m.dims))
        }
        _ => Ok(()),
    }
}

/// A2's `HCCL_BUFFSIZE` formulas (MB, default 200; a configured `hcclBufferSize` wins), with
/// `Bs` the largest batch of a rank: fullmesh ≥ 2·(Bs·ep·min(L, K)·H·2 + 2 MB); hierarchy ≥
/// moeExpertNum·Bs·(H·2 + 4·Align8(K)·4) + 104 MB.
fn a2_buffsize(c: &Call, form: Form, x: &str) -> Result<(), String> {
    let align8 = |v: i64| (v + 7) / 8 * 8;
    let (h, bs, k) = (dim(c, x, 1), dim(c, "expertIds", 0), dim(c, "expertIds", 1));
    let (l, ep, mbs) = (local_experts(c), c.int_of("epWorldSize"), max_bs(c, bs));
    let need = match form {
        Form::Hierarchy => c.int_of("moeExpertNum") * mbs * (h * 2 + 4 * align8(k) * 4) + 104 * MIB,
        _ => 2 * (mbs * ep * l.min(k) * h * 2 + 2 * MIB),
    };
    buffer_holds(
        c,
        need,
        &format!("{form:?}, H {h}, Bs {mbs}, K {k}, {l} local experts, epWorldSize {ep}"),
    )
}

/// A3's counts tensor `name` (and V1's on A2 "fullmesh" too): INT32
/// `[epWorldSize · localExpertNum]`.
pub(super) fn a3_counts(c: &Call, name: &str) -> Result<(), String> {
    dims_are(c, name, &[c.int_of("epWorldSize") * local_experts(c)])?;
    int_typed(c, name, ACL_INT32)
}

/// A2's counts tensor `name`: INT32 `[moeExpertNum + 2·globalBs·K·serverNum]`.
fn a2_counts(c: &Call, name: &str) -> Result<(), String> {
    let (bs, k) = (dim(c, "expertIds", 0), dim(c, "expertIds", 1));
    let global = (c.int_of("globalBs"), bs, c.int_of("epWorldSize"));
    dims_are(
        c,
        name,
        &[a2_counts_len(c.int_of("moeExpertNum"), global, k)],
    )?;
    int_typed(c, name, ACL_INT32)
}

/// Gives the call `bs` tokens (`x` too, on a dispatch).
fn a2_batch(c: &mut Call, bs: i64) {
    c.edit_tensor("expertIds", |t| t.dims[0] = bs);
    if c.op == DISPATCH {
        c.edit_tensor("x", |t| t.dims[0] = bs);
    }
}

/// The valid sample `c` (either op) made A2 fullmesh: 16 ranks, 32 experts (`A = 2·16·2`).
fn a2_form(c: &mut Call) {
    c.set("commAlg", Arg::Str(Some("fullmesh".into())));
    c.set("epWorldSize", Arg::Int(16));
    c.set("moeExpertNum", Arg::Int(32));
    let (expand, assist, counts) = if c.op == DISPATCH {
        ("expandXOut", "assistInfoForCombineOut", "epRecvCountsOut")
    } else {
        ("expandX", "assistInfoForCombine", "epSendCounts")
    };
    c.edit_tensor(expand, |t| t.dims[0] = 64);
    c.edit_tensor(assist, |t| t.dims[0] = 64 * 128);
    c.edit_tensor(counts, |t| t.dims[0] = a2_counts_len(32, (0, 2, 16), 2));
}

/// Experts per rank (`moeExpertNum / epWorldSize`, no shared-expert ranks; −1 when unknown).
pub(super) fn local_experts(c: &Call) -> i64 {
    let (e, ep) = (c.int_of("moeExpertNum"), c.int_of("epWorldSize"));
    if ep > 0 { e / ep } else { -1 }
}

/// The largest batch of one rank: `globalBs / epWorldSize`, or this rank's `BS` when 0.
pub(super) fn max_bs(c: &Call, bs: i64) -> i64 {
    let (g, ep) = (c.int_of("globalBs"), c.int_of("epWorldSize").max(1));
    if g == 0 { bs } else { g / ep }
}

/// `A`'s lower bound: `(globalBs or BS·epWorldSize) · min(localExperts, K)`.
pub(super) fn min_rows(c: &Call, bs: i64, k: i64) -> i64 {
    max_bs(c, bs).saturating_mul(c.int_of("epWorldSize")) * local_experts(c).min(k)
}

pub(super) fn ep_rank(c: &Call) -> Result<(), String> {
    let (r, ep) = (c.int_of("epRankId"), c.int_of("epWorldSize"));
    if (0..ep).contains(&r) {
        Ok(())
    } else {
        Err(format!("epRankId {r} of epWorldSize {ep}"))
    }
}

fn experts(c: &Call) -> Result<(), String> {
    let (e, ep) = (c.int_of("moeExpertNum"), c.int_of("epWorldSize"));
    if (1..=1024).contains(&e) && e % ep == 0 {
        Ok(())
    } else {
        Err(format!("moeExpertNum {e} with epWorldSize {ep}"))
    }
}

pub(super) fn group_ep(c: &Call) -> Result<(), String> {
    match c.str_of("groupEp") {
        Some(s) if (1..128).contains(&s.len()) => Ok(()),
        other => Err(format!("groupEp {other:?}")),
    }
}

fn comm_alg(c: &Call) -> Result<(), String> {
    match c.str_of("commAlg") {
        s if Form::of(s).is_some() => Ok(()),
        s => Err(format!("commAlg {s:?}")),
    }
}

fn shared_experts(c: &Call) -> Result<(), String> {
    let (n, r) = (c.int_of("sharedExpertNum"), c.int_of("sharedExpertRankNum"));
    if n == 0 && r == 0 {
        Ok(())
    } else {
        Err(format!("sharedExpertNum {n}, sharedExpertRankNum {r}"))
    }
}

fn hidden_range(c: &Call, tensor: &str) -> Result<(), String> {
    let h = dim(c, tensor, 1);
    if (1024..=8192).contains(&h) {
        Ok(())
    } else {
        Err(format!("H {h}"))
    }
}

/// `[BS, K]` expert ids: `BS` in 1..=512, `K` in 1..=16 and at most `moeExpertNum`.
fn ids_shape(c: &Call) -> Result<(), String> {
    let (bs, k, e) = (
        dim(c, "expertIds", 0),
        dim(c, "expertIds", 1),
        c.int_of("moeExpertNum"),
    );
    if (1..=512).contains(&bs) && (1..=16).contains(&k) && k <= e {
        Ok(())
    } else {
        Err(format!("expertIds [{bs}, {k}] with moeExpertNum {e}"))
    }
}

pub(super) fn global_bs(c: &Call, bs: i64) -> Result<(), String> {
    let (g, ep) = (c.int_of("globalBs"), c.int_of("epWorldSize"));
    if g == 0 || (g % ep == 0 && g / ep >= bs) {
        Ok(())
    } else {
        Err(format!("globalBs {g} with BS {bs}, epWorldSize {ep}"))
    }
}

fn mask(c: &Call) -> Result<(), String> {
    let (bs, k) = (dim(c, "expertIds", 0), dim(c, "expertIds", 1));
    match c.tensor_of("xActiveMaskOptional") {
        Some(m) if m.dtype != ACL_BOOL || (m.dims != [bs] && m.dims != [bs, k]) => Err(format!(
            "xActiveMaskOptional {} {:?}, expected BOOL [{bs}] or [{bs}, {k}]",
            crate::rules::dtype_name(m.dtype),
            m.dims
        )),
        _ => Ok(()),
    }
}

/// `Err` naming the first of `names` that is NULL.
pub(super) fn present(c: &Call, names: &[&str]) -> Result<(), String> {
    match names.iter().find(|n| !c.present(n)) {
        Some(n) => Err(format!("{n} is NULL")),
        None => Ok(()),
    }
}

pub(super) fn absent(c: &Call, names: &[&str]) -> Result<(), String> {
    match names.iter().find(|n| c.present(n)) {
        Some(n) => Err(format!("{n} is given")),
        None => Ok(()),
    }
}

/// The EP communicator's buffer (its `hcclBufferSize`, else `HCCL_BUFFSIZE`, MB, default 200)
/// ≥ 2·(L·maxBS·ep·Align512(Align32(2H) + 64) + K·maxBS·Align512(2H)) bytes (the A3 formula,
/// no shared experts).
fn buffsize(c: &Call, x: &str) -> Result<(), String> {
    let align = |v: i64, to: i64| (v + to - 1) / to * to;
    let (h, bs, k) = (dim(c, x, 1), dim(c, "expertIds", 0), dim(c, "expertIds", 1));
    let (l, ep, mbs) = (local_experts(c), c.int_of("epWorldSize"), max_bs(c, bs));
    let need = 2 * (l * mbs * ep * align(align(2 * h, 32) + 64, 512) + k * mbs * align(2 * h, 512));
    let sizes = format!("H {h}, maxBS {mbs}, K {k}, {l} local experts, epWorldSize {ep}");
    buffer_holds(c, need, &sizes)
}

/// Whether the EP communicator's buffer holds `need` bytes (and is at least 2 MB).
pub(super) fn buffer_holds(c: &Call, need: i64, sizes: &str) -> Result<(), String> {
    // The C layer, which knows the communicators, passes the EP communicator's configured
    // size as `commBufferMb` (0: none).
    let (mb, what) = match c.int_of("commBufferMb") {
        mb if mb > 0 => (mb as u64, "hcclBufferSize"),
        _ => {
            let env = std::env::var("HCCL_BUFFSIZE").ok();
            let mb = env.and_then(|v| v.trim().parse::<u64>().ok());
            (mb.unwrap_or(DEFAULT_BUFFSIZE_MB), "HCCL_BUFFSIZE")
        }
    };
    let have = mb.saturating_mul(1 << 20);
    if mb >= 2 && (need as u64) <= have {
        Ok(())
    } else {
        Err(format!("{what} {mb} MB for {need} bytes ({sizes})"))
    }
}

/// The rules both ops share (same argument names), as `prefix.what` ids.
macro_rules! shared_rules {
    ($op:expr, $prefix:literal, $doc:expr, $a2doc:expr, $x:literal) => {
        [
            one($op, concat!($prefix, ".ep-world-size"), "epWorldSize is 2..=768 (A3)", $doc, INVALID,
                Relation(|c| on_a3(c, |c| match c.int_of("epWorldSize") {
                    2..=768 => Ok(()),
                    ep => Err(format!("epWorldSize {ep}")),
                })), |c| c.set("epWorldSize", Arg::Int(1))),
            one($op, concat!($prefix, ".ep-rank-id"), "epRankId lies in [0, epWorldSize)", $doc, INVALID,
                Relation(ep_rank), |c| c.set("epRankId", Arg::Int(2))),
            one($op, concat!($prefix, ".moe-expert-num"),
                "moeExpertNum is 1..=1024 and a multiple of epWorldSize − sharedExpertRankNum", $doc, INVALID,
                Relation(experts), |c| c.set("moeExpertNum", Arg::Int(5))),
            one($op, concat!($prefix, ".group-ep"), "groupEp is a communicator name of 1..128 bytes", $doc, INVALID,
                Relation(group_ep), |c| c.set("groupEp", Arg::Str(Some(String::new())))),
            one($op, concat!($prefix, ".tp-world-size"), "tpWorldSize is 0 or 1 (TP is reserved)", $doc, INVALID,
                IntIn("tpWorldSize", &[0, 1]), |c| c.set("tpWorldSize", Arg::Int(2))),
            one($op, concat!($prefix, ".tp-rank-id"), "tpRankId is 0 (TP is reserved)", $doc, INVALID,
                IntIn("tpRankId", &[0]), |c| c.set("tpRankId", Arg::Int(1))),
            one($op, concat!($prefix, ".expert-shard-type"), "expertShardType is 0 (shared-expert ranks first)", $doc,
                INVALID, IntIn("expertShardType", &[0]), |c| c.set("expertShardType", Arg::Int(1))),
            one($op, concat!($prefix, ".shared-experts"),
                "sharedExpertNum and sharedExpertRankNum are 0 (A3 allows up to 4 shared experts, A2 none; the simulator has none)",
                $doc, INVALID, Relation(shared_experts), |c| c.set("sharedExpertNum", Arg::Int(1))),
            one($op, concat!($prefix, ".comm-alg"),
                "commAlg is NULL or empty (the A3 form), \"fullmesh\" or \"hierarchy\" (A2's forms); which SoC takes which is checked at run",
                $doc, INVALID, Relation(comm_alg), |c| c.set("commAlg", Arg::Str(Some("ring".into())))),
            one($op, concat!($prefix, ".x-active-mask"),
                "xActiveMaskOptional is NULL or BOOL [BS] or [BS, K]", $doc, INVALID,
                Relation(mask), |c| c.set("xActiveMaskOptional",
                    Arg::Tensor(Some(TensorMeta::new(&[2, 3], ACL_BOOL))))),
            one($op, concat!($prefix, ".hidden"), "H is 1024..=8192 (A3)", $doc, INVALID,
                Relation(|c| on_a3(c, |c| hidden_range(c, $x))), |c| c.edit_tensor($x, |t| t.dims[1] = 512)),
            one($op, concat!($prefix, ".expert-ids"), "expertIds is INT32 [BS, K] with BS 1..=512, K 1..=16 and K ≤ moeExpertNum", $doc, INVALID,
                Relation(|c| ids_shape(c).and_then(|()| match c.tensor_of("expertIds") {
                    Some(t) if t.dtype != ACL_INT32 => Err("expertIds is not INT32".into()),
                    _ => Ok(()),
                })), |c| c.edit_tensor("expertIds", |t| t.dtype = ACL_INT64)),
            one($op, concat!($prefix, ".global-bs"),
                "globalBs is 0 (same BS on every rank) or maxBS · epWorldSize with maxBS ≥ this rank's BS", $doc, INVALID,
                Relation(|c| global_bs(c, dim(c, "expertIds", 0))), |c| c.set("globalBs", Arg::Int(3))),
            one($op, concat!($prefix, ".hccl-buffsize"),
                "the EP communicator's hcclBufferSize, else HCCL_BUFFSIZE (MB, default 200), holds 2·(L·maxBS·ep·Align512(Align32(2H)+64) + K·maxBS·Align512(2H)) bytes (A3)",
                $doc, INVALID, Relation(|c| on_a3(c, |c| buffsize(c, $x))), |c| c.set("globalBs", Arg::Int(2 * 100_000))),
            one($op, concat!($prefix, ".a2-ep-world-size"),
                "A2: epWorldSize is 16, 32, 64, 128 or 256 with \"fullmesh\"; 16, 32 or 64 with \"hierarchy\"", $a2doc, INVALID,
                Relation(|c| on_a2(c, a2_ep_world_size)), |c| { a2_form(c); c.set("epWorldSize", Arg::Int(8)) }),
            one($op, concat!($prefix, ".a2-moe-expert-num"),
                "A2: moeExpertNum is 1..=512, and with \"fullmesh\" at most 24 per rank (moeExpertNum / epWorldSize)", $a2doc, INVALID,
                Relation(|c| on_a2(c, a2_experts)), |c| { a2_form(c); c.set("moeExpertNum", Arg::Int(25 * 16)) }),
            one($op, concat!($prefix, ".a2-hidden"),
                "A2: H is a multiple of 32 in 32..=7168 with \"fullmesh\", in 32..=10240 with \"hierarchy\"", $a2doc, INVALID,
                Relation(|c| on_a2(c, |c, f| a2_hidden(c, f, $x))), |c| { a2_form(c); c.edit_tensor($x, |t| t.dims[1] = 1000) }),
            one($op, concat!($prefix, ".a2-bs"), "A2: BS is 1..=256", $a2doc, INVALID,
                Relation(|c| on_a2(c, a2_bs)), |c| { a2_form(c); a2_batch(c, 257) }),
            one($op, concat!($prefix, ".a2-x-active-mask"),
                "A2: xActiveMaskOptional is NULL or 1-D [BS] (its trues before its falses: rule moe-distribute.a2-mask-order)", $a2doc, INVALID,
                Relation(|c| on_a2(c, a2_mask)), |c| { a2_form(c); c.set("xActiveMaskOptional",
                    Arg::Tensor(Some(TensorMeta::new(&[2, 2], ACL_BOOL)))) }),
            one($op, concat!($prefix, ".a2-hccl-buffsize"),
                "A2: the EP communicator's hcclBufferSize, else HCCL_BUFFSIZE (MB, default 200), holds 2·(Bs·ep·min(L, K)·H·2 + 2 MB) bytes with \"fullmesh\", moeExpertNum·Bs·(2H + 16·Align8(K)) + 104 MB with \"hierarchy\" (Bs: the largest batch of a rank)",
                $a2doc, INVALID, Relation(|c| on_a2(c, |c, f| a2_buffsize(c, f, $x))),
                |c| { a2_form(c); c.set("globalBs", Arg::Int(16 * 100_000)) }),
        ]
    };
}

pub(super) const DISPATCH_SHARED: &[Rule] =
    &shared_rules!(DISPATCH, "moe-distribute-dispatch-v2", DOC, A2_DOC, "x");
pub(super) const COMBINE_SHARED: &[Rule] = &shared_rules!(
    COMBINE,
    "moe-distribute-combine-v2",
    CDOC,
    A2_CDOC,
    "expandX"
);

pub(super) const DISPATCH_INPUTS: &[Rule] = &[
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.x-required",
        "x is required",
        DOC,
        NULLPTR,
        Present("x"),
        |c| c.set("x", Arg::Tensor(None)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.expert-ids-required",
        "expertIds is required",
        DOC,
        NULLPTR,
        Present("expertIds"),
        |c| c.set("expertIds", Arg::Tensor(None)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.outputs-required",
        "expandXOut, assistInfoForCombineOut, expertTokenNumsOut and epRecvCountsOut are required",
        DOC,
        NULLPTR,
        Relation(|c| {
            present(
                c,
                &[
                    "expandXOut",
                    "assistInfoForCombineOut",
                    "expertTokenNumsOut",
                    "epRecvCountsOut",
                ],
            )
        }),
        |c| c.set("epRecvCountsOut", Arg::Tensor(None)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.x-rank",
        "x is 2-D [BS, H]",
        DOC,
        INVALID,
        Rank("x", 2),
        |c| c.edit_tensor("x", |t| t.dims.push(1)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.x-dtype",
        "x is FLOAT16 or BF16 when quantMode is 0",
        DOC,
        INVALID,
        DTypes("x", HALVES),
        |c| c.edit_tensor("x", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.quant-mode",
        "quantMode is 0 (none) or 2 (per-token dynamic INT8) (A3)",
        DOC,
        INVALID,
        IntIn("quantMode", &[0, 2]),
        |c| c.set("quantMode", Arg::Int(1)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.x-rows",
        "expertIds has x's BS rows",
        DOC,
        INVALID,
        Relation(|c| {
            let (a, b) = (dim(c, "x", 0), dim(c, "expertIds", 0));
            if a == b {
                Ok(())
            } else {
                Err(format!("x has {a} rows, expertIds {b}"))
            }
        }),
        |c| c.edit_tensor("x", |t| t.dims[0] = 3),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.scales",
        "scalesOptional is NULL when quantMode is 0; with quantMode 2, NULL or FLOAT [moeExpertNum, H] (each expert's smoothing; no shared-expert ranks)",
        DOC,
        INVALID,
        Relation(|c| {
            if c.int_of("quantMode") != 2 {
                return absent(c, &["scalesOptional"]);
            }
            if !c.present("scalesOptional") {
                return Ok(());
            }
            dims_are(
                c,
                "scalesOptional",
                &[c.int_of("moeExpertNum"), dim(c, "x", 1)],
            )?;
            int_typed(c, "scalesOptional", ACL_FLOAT)
        }),
        |c| {
            c.set(
                "scalesOptional",
                Arg::Tensor(Some(TensorMeta::new(&[4, 1024], ACL_FLOAT))),
            )
        },
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.unsupported-absent",
        "expertScalesOptional, tpRecvCountsOut and expandScalesOut are NULL (A3: unsupported; A2 takes expertScalesOptional [BS, K] and expandScalesOut [A], which the simulator does not)",
        DOC,
        INVALID,
        Relation(|c| {
            absent(
                c,
                &["expertScalesOptional", "tpRecvCountsOut", "expandScalesOut"],
            )
        }),
        |c| {
            c.set(
                "expertScalesOptional",
                Arg::Tensor(Some(TensorMeta::new(&[2, 2], ACL_FLOAT))),
            )
        },
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.expert-token-nums-type",
        "expertTokenNumsType is 0 (cumsum) or 1 (counts)",
        DOC,
        INVALID,
        IntIn("expertTokenNumsType", &[0, 1]),
        |c| c.set("expertTokenNumsType", Arg::Int(2)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.group-tp",
        "groupTp is NULL or empty (TP is reserved)",
        DOC,
        INVALID,
        Relation(|c| match c.str_of("groupTp") {
            None | Some("") => Ok(()),
            Some(s) => Err(format!("groupTp {s:?}")),
        }),
        |c| c.set("groupTp", Arg::Str(Some("tp".into()))),
    ),
];

/// Checked after the shared rules, which fix the sizes they depend on.
pub(super) const DISPATCH_OUTPUTS: &[Rule] = &[
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.expand-x",
        "expandXOut is [A, H] of x's dtype (INT8 with quantMode 2) with A ≥ (globalBs, or BS·epWorldSize) · min(localExpertNum, K)",
        DOC,
        INVALID,
        Relation(|c| {
            if c.int_of("quantMode") == 2 {
                int_typed(c, "expandXOut", ACL_INT8)?;
            } else {
                same_dtype(c, "expandXOut", "x")?;
            }
            let (a, h) = (dim(c, "expandXOut", 0), dim(c, "x", 1));
            let want = min_rows(c, dim(c, "x", 0), dim(c, "expertIds", 1));
            if dim(c, "expandXOut", 1) == h
                && a >= want
                && c.tensor_of("expandXOut").is_some_and(|t| t.dims.len() == 2)
            {
                Ok(())
            } else {
                Err(format!(
                    "expandXOut {:?}, expected [A >= {want}, {h}]",
                    c.tensor_of("expandXOut").map(|t| &t.dims)
                ))
            }
        }),
        |c| c.edit_tensor("expandXOut", |t| t.dims[0] = 7),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.assist-info",
        "assistInfoForCombineOut is INT32 [A·128]",
        DOC,
        INVALID,
        Relation(|c| {
            let a = dim(c, "expandXOut", 0);
            dims_are(c, "assistInfoForCombineOut", &[a * 128])?;
            int_typed(c, "assistInfoForCombineOut", ACL_INT32)
        }),
        |c| c.edit_tensor("assistInfoForCombineOut", |t| t.dims[0] = 8),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.expert-token-nums",
        "expertTokenNumsOut is INT64 [localExpertNum]",
        DOC,
        INVALID,
        Relation(|c| {
            dims_are(c, "expertTokenNumsOut", &[local_experts(c)])?;
            int_typed(c, "expertTokenNumsOut", ACL_INT64)
        }),
        |c| c.edit_tensor("expertTokenNumsOut", |t| t.dtype = ACL_INT32),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.ep-recv-counts",
        "epRecvCountsOut is INT32 [epWorldSize · localExpertNum] (A3)",
        DOC,
        INVALID,
        Relation(|c| on_a3(c, |c| a3_counts(c, "epRecvCountsOut"))),
        |c| c.edit_tensor("epRecvCountsOut", |t| t.dims[0] = 3),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.a2-ep-recv-counts",
        "A2: epRecvCountsOut is INT32 [moeExpertNum + 2·globalBs·K·serverNum] (globalBs 0 counts as BS·epWorldSize; the simulator's serverNum is epWorldSize / 8, 8 devices per Atlas 800T A2 server)",
        A2_DOC,
        INVALID,
        Relation(|c| on_a2(c, |c, _| a2_counts(c, "epRecvCountsOut"))),
        |c| {
            a2_form(c);
            c.edit_tensor("epRecvCountsOut", |t| t.dims[0] = 32)
        },
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.a2-hierarchy-scales",
        "A2 \"hierarchy\": scalesOptional is NULL (no smoothing with quantMode 2)",
        A2_DOC,
        INVALID,
        Relation(|c| match form(c) {
            Form::Hierarchy => absent(c, &["scalesOptional"]),
            _ => Ok(()),
        }),
        |c| {
            a2_form(c);
            c.set("commAlg", Arg::Str(Some("hierarchy".into())));
            c.set("quantMode", Arg::Int(2));
            c.edit_tensor("expandXOut", |t| t.dtype = ACL_INT8);
            let t = |dims: &[i64]| Arg::Tensor(Some(TensorMeta::new(dims, ACL_FLOAT)));
            c.set("dynamicScalesOut", t(&[64]));
            c.set("scalesOptional", t(&[32, 1024]));
        },
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch-v2.dynamic-scales",
        "dynamicScalesOut is FLOAT [A]: required with quantMode 2, otherwise NULL or not written",
        DOC,
        INVALID,
        Relation(|c| {
            if !c.present("dynamicScalesOut") {
                return match c.int_of("quantMode") {
                    2 => Err("dynamicScalesOut is NULL with quantMode 2".into()),
                    _ => Ok(()),
                };
            }
            dims_are(c, "dynamicScalesOut", &[dim(c, "expandXOut", 0)])?;
            int_typed(c, "dynamicScalesOut", ACL_FLOAT)
        }),
        |c| {
            c.set(
                "dynamicScalesOut",
                Arg::Tensor(Some(TensorMeta::new(&[8], ACL_FLOAT16))),
            )
        },
    ),
];

pub(super) const COMBINE_INPUTS: &[Rule] = &[
    one(
        COMBINE,
        "moe-distribute-combine-v2.inputs-required",
        "expandX, expertIds, assistInfoForCombine, epSendCounts, expertScales and xOut are required",
        CDOC,
        NULLPTR,
        Relation(|c| {
            present(
                c,
                &[
                    "expandX",
                    "expertIds",
                    "assistInfoForCombine",
                    "epSendCounts",
                    "expertScales",
                    "xOut",
                ],
            )
        }),
        |c| c.set("expertScales", Arg::Tensor(None)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.expand-x-rank",
        "expandX is 2-D [A, H]",
        CDOC,
        INVALID,
        Rank("expandX", 2),
        |c| c.edit_tensor("expandX", |t| t.dims.push(1)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.expand-x-dtype",
        "expandX is FLOAT16 or BF16",
        CDOC,
        INVALID,
        DTypes("expandX", HALVES),
        |c| c.edit_tensor("expandX", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.optional-absent",
        "tpSendCountsOptional, activationScaleOptional, weightScaleOptional, groupListOptional, expandScalesOptional and sharedExpertXOptional are NULL (A3 without quantised communication; the simulator has no shared-expert input)",
        CDOC,
        INVALID,
        Relation(|c| {
            absent(
                c,
                &[
                    "tpSendCountsOptional",
                    "activationScaleOptional",
                    "weightScaleOptional",
                    "groupListOptional",
                    "expandScalesOptional",
                    "sharedExpertXOptional",
                ],
            )
        }),
        |c| {
            c.set(
                "groupListOptional",
                Arg::Tensor(Some(TensorMeta::new(&[2], ACL_INT64))),
            )
        },
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.out-dtype",
        "outDtype is 0 (xOut takes expandX's dtype)",
        CDOC,
        INVALID,
        IntIn("outDtype", &[0]),
        |c| c.set("outDtype", Arg::Int(1)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.comm-quant-mode",
        "commQuantMode is 0 (2, INT8 communication, is not simulated)",
        CDOC,
        INVALID,
        IntIn("commQuantMode", &[0]),
        |c| c.set("commQuantMode", Arg::Int(2)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.group-list-type",
        "groupListType is 0",
        CDOC,
        INVALID,
        IntIn("groupListType", &[0]),
        |c| c.set("groupListType", Arg::Int(1)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.group-tp",
        "groupTp is NULL or empty (TP is reserved)",
        CDOC,
        INVALID,
        Relation(|c| match c.str_of("groupTp") {
            None | Some("") => Ok(()),
            Some(s) => Err(format!("groupTp {s:?}")),
        }),
        |c| c.set("groupTp", Arg::Str(Some("tp".into()))),
    ),
];

/// Checked after the shared rules.
pub(super) const COMBINE_OUTPUTS: &[Rule] = &[
    one(
        COMBINE,
        "moe-distribute-combine-v2.expand-x-rows",
        "expandX has A ≥ (globalBs, or BS·epWorldSize) · min(localExpertNum, K) rows",
        CDOC,
        INVALID,
        Relation(|c| {
            let (a, want) = (
                dim(c, "expandX", 0),
                min_rows(c, dim(c, "expertIds", 0), dim(c, "expertIds", 1)),
            );
            if a >= want {
                Ok(())
            } else {
                Err(format!("A {a}, expected at least {want}"))
            }
        }),
        |c| c.edit_tensor("expandX", |t| t.dims[0] = 7),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.assist-info",
        "assistInfoForCombine is INT32 [A·128]",
        CDOC,
        INVALID,
        Relation(|c| {
            dims_are(c, "assistInfoForCombine", &[dim(c, "expandX", 0) * 128])?;
            int_typed(c, "assistInfoForCombine", ACL_INT32)
        }),
        |c| c.edit_tensor("assistInfoForCombine", |t| t.dims[0] = 8),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.ep-send-counts",
        "epSendCounts is INT32 [epWorldSize · localExpertNum] (A3)",
        CDOC,
        INVALID,
        Relation(|c| on_a3(c, |c| a3_counts(c, "epSendCounts"))),
        |c| c.edit_tensor("epSendCounts", |t| t.dims[0] = 3),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.a2-ep-send-counts",
        "A2: epSendCounts is INT32 [moeExpertNum + 2·globalBs·K·serverNum] (as the dispatch's epRecvCountsOut)",
        A2_CDOC,
        INVALID,
        Relation(|c| on_a2(c, |c, _| a2_counts(c, "epSendCounts"))),
        |c| {
            a2_form(c);
            c.edit_tensor("epSendCounts", |t| t.dims[0] = 32)
        },
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.expert-scales",
        "expertScales is FLOAT [BS, K]",
        CDOC,
        INVALID,
        Relation(|c| {
            dims_are(
                c,
                "expertScales",
                &[dim(c, "expertIds", 0), dim(c, "expertIds", 1)],
            )?;
            int_typed(c, "expertScales", ACL_FLOAT)
        }),
        |c| c.edit_tensor("expertScales", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        COMBINE,
        "moe-distribute-combine-v2.x-out",
        "xOut is [BS, H] of expandX's dtype",
        CDOC,
        INVALID,
        Relation(|c| {
            same_dtype(c, "xOut", "expandX")?;
            dims_are(c, "xOut", &[dim(c, "expertIds", 0), dim(c, "expandX", 1)])
        }),
        |c| c.edit_tensor("xOut", |t| t.dims[0] = 3),
    ),
];

/// `Err` unless tensor `name` (when present) is `dtype`.
pub(super) fn int_typed(c: &Call, name: &str, dtype: i32) -> Result<(), String> {
    match c.tensor_of(name) {
        Some(t) if t.dtype != dtype => Err(format!(
            "{name} is {}, expected {}",
            crate::rules::dtype_name(t.dtype),
            crate::rules::dtype_name(dtype)
        )),
        _ => Ok(()),
    }
}

const RUN_TEST: &str = "tests/hccl_mc2_sim.rs::each_mc2_run_rule_names_itself";
const A2_TEST: &str = "tests/hccl_mc2_a2_sim.rs::mc2_ops_on_a2_name_the_rule";
const SOC_TEST: &str = "ascend-sim/src/ffi/aclnn_mc2.rs::each_soc_takes_its_form";
const BOTH: &str = "aclnnMoeDistributeDispatchV2, aclnnMoeDistributeCombineV2";
const ALL: &str = "aclnnMoeDistributeDispatchV2, aclnnMoeDistributeCombineV2, aclnnMoeDistributeDispatch, aclnnMoeDistributeCombine";

const fn at_run(
    call: &'static str,
    id: &'static str,
    statement: &'static str,
    (source, test): (&'static str, &'static str),
) -> Rule {
    Rule {
        id,
        call,
        statement,
        source,
        test,
        enforcement: crate::rules::Enforcement::AtRun { status: INVALID },
    }
}

/// Rules that need the communicator, the SoC or the exchanged data: checked when the op runs.
pub(super) const AT_RUN: &[Rule] = &[
    at_run(
        BOTH,
        "moe-distribute.a3-comm-alg",
        "on Atlas A3, commAlg is NULL or empty (A3 takes no algorithm)",
        (DOC, SOC_TEST),
    ),
    at_run(
        BOTH,
        "moe-distribute.a2-comm-alg",
        "on Atlas A2, commAlg names the algorithm (NULL or empty would pick one from the HCCL_INTRA_PCIE_ENABLE / HCCL_INTRA_ROCE_ENABLE variables, which the simulator does not model)",
        (A2_DOC, A2_TEST),
    ),
    at_run(
        BOTH,
        "moe-distribute.a2-hierarchy-driver",
        "on Atlas A2, \"hierarchy\" needs driver 25.0.RC1.1 or newer (the simulator has no driver package, so it refuses \"hierarchy\")",
        (A2_DOC, A2_TEST),
    ),
    at_run(
        ALL,
        "moe-distribute.soc",
        "the SoC is Atlas A2 or A3",
        (DOC, SOC_TEST),
    ),
    at_run(
        BOTH,
        "moe-distribute.a2-mask-order",
        "A2: the 1-D xActiveMaskOptional holds its trues before its falses",
        (A2_DOC, A2_TEST),
    ),
    Rule {
        id: "moe-distribute.v1-a2-layered",
        call: "aclnnMoeDistributeDispatch, aclnnMoeDistributeCombine",
        statement: "A2, V1: HCCL_INTRA_PCIE_ENABLE=1 with HCCL_INTRA_ROCE_ENABLE=0 picks the layered algorithm, which the simulator does not model: it refuses the call",
        source: "ops-transformer mc2/moe_distribute_dispatch/docs/aclnnMoeDistributeDispatch.md (HCCL_INTRA_PCIE_ENABLE) and its A2 tiling",
        test: "ascend-sim/src/ffi/aclnn_mc2.rs::v1_takes_its_devices_form",
        enforcement: crate::rules::Enforcement::Elsewhere {
            code: "ascend-sim/src/ffi/aclnn_mc2.rs",
        },
    },
    at_run(
        ALL,
        "moe-distribute.group-ep",
        "groupEp names a live communicator (HcclGetCommName) with a rank on the launching device; it has epWorldSize ranks and that rank is epRankId",
        (DOC, RUN_TEST),
    ),
    at_run(
        "aclnnMoeDistributeDispatch(V2), aclnnMoeDistributeCombine(V2), Hccl collectives",
        "moe-distribute.exclusive-comm",
        "the EP communicator of the MC2 ops runs no other HCCL operation, before or after",
        (DOC, RUN_TEST),
    ),
    at_run(
        "aclnnMoeDistributeDispatchV2",
        "moe-distribute-dispatch-v2.capacity",
        "a rank receives at most A rows (expandXOut's first dim), every expert id lies in [0, moeExpertNum), and no token names an expert twice",
        (DOC, RUN_TEST),
    ),
    at_run(
        "aclnnMoeDistributeCombineV2",
        "moe-distribute-combine-v2.paired-dispatch",
        "expandX, assistInfoForCombine and epSendCounts come from the paired aclnnMoeDistributeDispatchV2 with the same expertIds and mask: every (token, k) it sent comes back once",
        (DOC, RUN_TEST),
    ),
];

/// The EP attributes of both samples: 2 ranks, 4 experts, no TP, no shared experts.
fn sample_ep(call: Call) -> Call {
    let s = |v: Option<&str>| Arg::Str(v.map(str::to_string));
    call.with("groupEp", s(Some("sample")))
        .int("epWorldSize", 2)
        .int("epRankId", 0)
        .int("moeExpertNum", 4)
        .with("groupTp", s(None))
        .int("tpWorldSize", 0)
        .int("tpRankId", 0)
        .int("expertShardType", 0)
        .int("sharedExpertNum", 0)
        .int("sharedExpertRankNum", 0)
}

/// Two tokens of H 1024 over 2 ranks, 4 experts, top-2: `A = 2·2·min(2, 2) = 8`.
pub(super) fn dispatch_sample() -> Call {
    let t = |dims: &[i64], dtype| Some(TensorMeta::new(dims, dtype));
    let s = |v: Option<&str>| Arg::Str(v.map(str::to_string));
    let call = Call::new(DISPATCH)
        .tensor("x", t(&[2, 1024], ACL_BF16))
        .tensor("expertIds", t(&[2, 2], ACL_INT32))
        .tensor("scalesOptional", None)
        .tensor("xActiveMaskOptional", None)
        .tensor("expertScalesOptional", None);
    sample_ep(call)
        .int("quantMode", 0)
        .int("globalBs", 0)
        .int("expertTokenNumsType", 1)
        .with("commAlg", s(None))
        .tensor("expandXOut", t(&[8, 1024], ACL_BF16))
        .tensor("dynamicScalesOut", None)
        .tensor("assistInfoForCombineOut", t(&[8 * 128], ACL_INT32))
        .tensor("expertTokenNumsOut", t(&[2], ACL_INT64))
        .tensor("epRecvCountsOut", t(&[4], ACL_INT32))
        .tensor("tpRecvCountsOut", None)
        .tensor("expandScalesOut", None)
}

/// The combine that pairs with [`dispatch_sample`].
pub(super) fn combine_sample() -> Call {
    let t = |dims: &[i64], dtype| Some(TensorMeta::new(dims, dtype));
    let s = |v: Option<&str>| Arg::Str(v.map(str::to_string));
    let call = Call::new(COMBINE)
        .tensor("expandX", t(&[8, 1024], ACL_BF16))
        .tensor("expertIds", t(&[2, 2], ACL_INT32))
        .tensor("assistInfoForCombine", t(&[8 * 128], ACL_INT32))
        .tensor("epSendCounts", t(&[4], ACL_INT32))
        .tensor("expertScales", t(&[2, 2], ACL_FLOAT))
        .tensor("tpSendCountsOptional", None)
        .tensor("xActiveMaskOptional", None)
        .tensor("activationScaleOptional", None)
        .tensor("weightScaleOptional", None)
        .tensor("groupListOptional", None)
        .tensor("expandScalesOptional", None)
        .tensor("sharedExpertXOptional", None);
    sample_ep(call)
        .int("globalBs", 0)
        .int("outDtype", 0)
        .int("commQuantMode", 0)
        .int("groupListType", 0)
        .with("commAlg", s(None))
        .tensor("xOut", t(&[2, 1024], ACL_BF16))
}
