//! aclnnMoeDistributeDispatch and aclnnMoeDistributeCombine, the first version of the MC2
//! expert-parallel ops (CANN 8.1; cann-api-facts §4.7; ops-transformer
//! `mc2/moe_distribute_{dispatch,combine}/docs` and the limits their tiling checks), for Atlas
//! A3 and for Atlas A2's default "fullmesh" algorithm. V1 has no `commAlg`: the C layer gives
//! each call the form of its device as `socForm` (NULL on A3, "fullmesh" on A2; it refuses
//! A2's layered algorithm, rule `moe-distribute.v1-a2-layered`). Where the docs and the
//! tiling disagree the rule takes the
//! stricter; what the simulator does not implement (shared-expert ranks, TP, expert scales on
//! the dispatch, INT8 communication in the combine) it refuses and says so.

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT32, ACL_INT64};

use super::moe_distribute_v2::{
    HALVES, MIB, a3_counts, absent, buffer_holds, ep_rank, global_bs, group_ep, int_typed,
    local_experts, max_bs, min_rows, present,
};
use super::{dim, dims_are, ensure, one, same_dtype};
use crate::rules::Requirement::{DTypes, IntIn, Rank, Relation};
use crate::rules::{Arg, Call, INVALID, NULLPTR, Rule, TensorMeta};

pub(super) const DISPATCH: &str = "aclnnMoeDistributeDispatch";
pub(super) const COMBINE: &str = "aclnnMoeDistributeCombine";
const DOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_dispatch/docs/aclnnMoeDistributeDispatch.md and op_host tiling (A3)";
const CDOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_combine/docs/aclnnMoeDistributeCombine.md and op_host tiling (A3)";
const A2_DOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_dispatch/docs/aclnnMoeDistributeDispatch.md (A2 notes, HCCL_BUFFSIZE, HCCL_INTRA_PCIE_ENABLE) and its A2 tiling";
const A2_CDOC: &str = "cann-api-facts §4.7; ops-transformer mc2/moe_distribute_combine/docs/aclnnMoeDistributeCombine.md (A2 notes) and its A2 tiling";

/// Whether the call runs on Atlas A2 (its `socForm` names an A2 algorithm).
fn on_a2(c: &Call) -> bool {
    c.str_of("socForm").is_some()
}

/// `epWorldSize`: A3's tiling takes 8, 16, 32, 64, 128, 144, 256 or 288; A2's doc 16, 32 or
/// 64 (2, 4 or 8 servers of 8; its tiling takes any multiple of 8 up to 256).
fn ep_world_size(c: &Call) -> Result<(), String> {
    let ep = c.int_of("epWorldSize");
    let allowed: &[i64] = if on_a2(c) {
        &[16, 32, 64]
    } else {
        &[8, 16, 32, 64, 128, 144, 256, 288]
    };
    ensure(allowed.contains(&ep), || format!("epWorldSize {ep}"))
}

/// `moeExpertNum` in 1..=512, a multiple of `epWorldSize` (no shared-expert ranks), and on A2
/// at most 24 per rank ("fullmesh").
fn experts(c: &Call) -> Result<(), String> {
    let (e, ep, l) = (
        c.int_of("moeExpertNum"),
        c.int_of("epWorldSize"),
        local_experts(c),
    );
    let fits = (1..=512).contains(&e) && ep > 0 && e % ep == 0 && (!on_a2(c) || l <= 24);
    ensure(fits, || {
        format!("moeExpertNum {e} with epWorldSize {ep} ({l} per rank)")
    })
}

/// `groupTp` is a string, empty without TP: A3's first tiling reads it without a NULL check.
fn group_tp(c: &Call) -> Result<(), String> {
    match c.str_of("groupTp") {
        Some("") => Ok(()),
        other => Err(format!("groupTp {other:?}")),
    }
}

/// No TP: `tpWorldSize` 0 or 1 on A3 (its TP counts tensor then has that length), 0 on A2;
/// `tpRankId` 0.
fn tp(c: &Call) -> Result<(), String> {
    let (ranks, rank) = (c.int_of("tpWorldSize"), c.int_of("tpRankId"));
    let allowed: &[i64] = if on_a2(c) { &[0] } else { &[0, 1] };
    ensure(allowed.contains(&ranks) && rank == 0, || {
        format!("tpWorldSize {ranks}, tpRankId {rank}")
    })
}

/// No shared-expert ranks: `sharedExpertRankNum` 0, `expertShardType` 0, and
/// `sharedExpertNum` 1 on A3 (its tiling takes nothing else) or 0 on A2 (its doc).
fn shared(c: &Call) -> Result<(), String> {
    let (n, ranks, shard) = (
        c.int_of("sharedExpertNum"),
        c.int_of("sharedExpertRankNum"),
        c.int_of("expertShardType"),
    );
    let want = if on_a2(c) { 0 } else { 1 };
    ensure(n == want && ranks == 0 && shard == 0, || {
        format!("sharedExpertNum {n}, sharedExpertRankNum {ranks}, expertShardType {shard}")
    })
}

/// H: exactly 7168 on A3; a multiple of 32 in 32..=7168 on A2.
fn hidden(c: &Call, x: &str) -> Result<(), String> {
    let h = dim(c, x, 1);
    let fits = if on_a2(c) {
        (1..=7168).contains(&h) && h % 32 == 0
    } else {
        h == 7168
    };
    ensure(fits, || format!("H {h}"))
}

/// `expertIds` INT32 `[BS, K]`: BS 1..=512 and K 1..=8 on A3, BS 1..=256 and K 1..=16 on A2,
/// K ≤ moeExpertNum.
fn expert_ids(c: &Call) -> Result<(), String> {
    let (bs, k, e) = (
        dim(c, "expertIds", 0),
        dim(c, "expertIds", 1),
        c.int_of("moeExpertNum"),
    );
    let (max_bs, max_k) = if on_a2(c) { (256, 16) } else { (512, 8) };
    int_typed(c, "expertIds", ACL_INT32)?;
    ensure(
        (1..=max_bs).contains(&bs) && (1..=max_k).contains(&k) && k <= e,
        || format!("expertIds [{bs}, {k}] with moeExpertNum {e}"),
    )
}

/// The EP buffer (its `hcclBufferSize`, else `HCCL_BUFFSIZE`, MB, default 200), with `Bs` the
/// largest batch of a rank: on A3 the doc's `2^20·(MB − 2)/2 ≥ Bs·2·(H + 128)·(ep·L + K + 1)`,
/// and the tiling's `ep·Bs·H·4·L ≤ MB·2^20` with `HCCL_BUFFSIZE` (default 200; CANN 8.1's tiling
/// reads the variable, not the communicator's size); on A2 ≥ `2·(Bs·ep·min(L, K)·H·2 + 2 MB)`.
fn buffsize(c: &Call, x: &str) -> Result<(), String> {
    let (h, bs, k) = (dim(c, x, 1), dim(c, "expertIds", 0), dim(c, "expertIds", 1));
    let (l, ep, mbs) = (local_experts(c), c.int_of("epWorldSize"), max_bs(c, bs));
    let sizes = format!("H {h}, Bs {mbs}, K {k}, {l} local experts, epWorldSize {ep}");
    if on_a2(c) {
        return buffer_holds(c, 2 * (mbs * ep * l.min(k) * h * 2 + 2 * MIB), &sizes);
    }
    // The doc's bound on (MB − 2)/2, as bytes of a whole buffer: 2·need + 2 MB. (It implies
    // the tiling's: (H + 128)·(ep·L + K + 1) exceeds H·ep·L.)
    let doc = mbs * 2 * (h + 128) * (ep * l + k + 1);
    buffer_holds(c, 2 * doc + 2 * MIB, &sizes)?;
    // The tiling (CANN 8.1) reads HCCL_BUFFSIZE, not the communicator's configured size.
    let env = std::env::var("HCCL_BUFFSIZE").ok();
    let mb = env
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(200);
    let tiling = ep * mbs * h * 4 * l;
    ensure(tiling <= mb * MIB, || {
        format!("HCCL_BUFFSIZE {mb} MB for the tiling's ep·Bs·H·4·L = {tiling} bytes ({sizes})")
    })
}

/// The valid sample `c` (either op) moved to A2: 16 ranks, 32 experts, no TP, no shared
/// expert (`A = 2·16·min(2, 2) = 64`).
fn a2_form(c: &mut Call) {
    c.set("socForm", Arg::Str(Some("fullmesh".into())));
    c.set("epWorldSize", Arg::Int(16));
    c.set("moeExpertNum", Arg::Int(32));
    c.set("tpWorldSize", Arg::Int(0));
    c.set("sharedExpertNum", Arg::Int(0));
    if c.op == DISPATCH {
        c.edit_tensor("expertTokenNums", |t| t.dims[0] = 2);
    }
    let rows: &[&str] = if c.op == DISPATCH {
        &["expandX", "dynamicScales", "expandScales"]
    } else {
        &["expandX"]
    };
    for name in rows {
        c.edit_tensor(name, |t| t.dims[0] = 64);
    }
    let counts = if c.op == DISPATCH {
        "epRecvCounts"
    } else {
        "epSendCounts"
    };
    c.edit_tensor(counts, |t| t.dims[0] = 32);
}

/// The TP counts tensor `name`: INT32 1-D, of length `tpWorldSize` on A3 (its first tiling).
fn tp_counts(c: &Call, name: &str) -> Result<(), String> {
    int_typed(c, name, ACL_INT32)?;
    match c.tensor_of(name) {
        Some(t) if t.dims.len() != 1 => Err(format!("{name} dims {:?}", t.dims)),
        _ if on_a2(c) => Ok(()),
        _ => dims_are(c, name, &[c.int_of("tpWorldSize")]),
    }
}

/// `expandIdx`: INT32 `[BS·K]`.
fn expand_idx(c: &Call) -> Result<(), String> {
    let (bs, k) = (dim(c, "expertIds", 0), dim(c, "expertIds", 1));
    dims_are(c, "expandIdx", &[bs * k])?;
    int_typed(c, "expandIdx", ACL_INT32)
}

/// The rules both ops share (same argument names), as `prefix.what` ids.
macro_rules! shared_rules {
    ($op:expr, $prefix:literal, $doc:expr, $a2doc:expr, $x:literal) => {
        [
            one($op, concat!($prefix, ".ep-world-size"),
                "epWorldSize is 8, 16, 32, 64, 128, 144, 256 or 288 (A3); 16, 32 or 64 (A2)", $doc, INVALID,
                Relation(ep_world_size), |c| c.set("epWorldSize", Arg::Int(4))),
            one($op, concat!($prefix, ".ep-rank-id"), "epRankId lies in [0, epWorldSize)", $doc, INVALID,
                Relation(ep_rank), |c| c.set("epRankId", Arg::Int(8))),
            one($op, concat!($prefix, ".moe-expert-num"),
                "moeExpertNum is 1..=512 and a multiple of epWorldSize (no shared-expert ranks); on A2 at most 24 per rank",
                $a2doc, INVALID, Relation(experts), |c| { a2_form(c); c.set("moeExpertNum", Arg::Int(25 * 16)) }),
            one($op, concat!($prefix, ".group-ep"), "groupEp is a communicator name of 1..128 bytes", $doc, INVALID,
                Relation(group_ep), |c| c.set("groupEp", Arg::Str(Some(String::new())))),
            one($op, concat!($prefix, ".group-tp"),
                "groupTp is \"\" (no TP; not NULL: A3's first tiling reads it unchecked)", $doc, INVALID,
                Relation(group_tp), |c| c.set("groupTp", Arg::Str(None))),
            one($op, concat!($prefix, ".tp"),
                "tpWorldSize is 0 or 1 on A3, 0 on A2, and tpRankId 0 (no TP)", $doc, INVALID,
                Relation(tp), |c| c.set("tpWorldSize", Arg::Int(2))),
            one($op, concat!($prefix, ".shared-experts"),
                "sharedExpertRankNum and expertShardType are 0, sharedExpertNum 1 on A3 (its tiling takes no other) and 0 on A2 (the simulator has no shared-expert ranks)",
                $doc, INVALID, Relation(shared), |c| c.set("sharedExpertNum", Arg::Int(0))),
            one($op, concat!($prefix, ".x-active-mask"), "xActiveMask is NULL (reserved)", $doc, INVALID,
                Relation(|c| absent(c, &["xActiveMask"])),
                |c| c.set("xActiveMask", Arg::Tensor(Some(TensorMeta::new(&[2], ascend_sys::ACL_BOOL))))),
            one($op, concat!($prefix, ".hidden"), "H is 7168 on A3; a multiple of 32 up to 7168 on A2", $doc, INVALID,
                Relation(|c| hidden(c, $x)), |c| c.edit_tensor($x, |t| t.dims[1] = 4096)),
            one($op, concat!($prefix, ".expert-ids"),
                "expertIds is INT32 [BS, K]: BS 1..=512, K 1..=8 on A3; BS 1..=256, K 1..=16 on A2; K ≤ moeExpertNum",
                $doc, INVALID, Relation(expert_ids), |c| c.edit_tensor("expertIds", |t| t.dims[1] = 9)),
            one($op, concat!($prefix, ".global-bs"),
                "globalBs is 0 (same BS on every rank) or maxBS · epWorldSize with maxBS ≥ this rank's BS", $doc, INVALID,
                Relation(|c| global_bs(c, dim(c, "expertIds", 0))), |c| c.set("globalBs", Arg::Int(3))),
            one($op, concat!($prefix, ".hccl-buffsize"),
                "the EP communicator's hcclBufferSize, else HCCL_BUFFSIZE (MB, default 200): on A3, 2^20·(MB − 2)/2 ≥ Bs·2·(H + 128)·(ep·L + K + 1), and its tiling's ep·Bs·H·4·L ≤ MB·2^20 with HCCL_BUFFSIZE itself; on A2, ≥ 2·(Bs·ep·min(L, K)·H·2 + 2 MB) bytes (Bs: the largest batch of a rank)",
                $doc, INVALID, Relation(|c| buffsize(c, $x)), |c| c.set("globalBs", Arg::Int(8 * 100_000))),
        ]
    };
}

pub(super) const DISPATCH_SHARED: &[Rule] =
    &shared_rules!(DISPATCH, "moe-distribute-dispatch", DOC, A2_DOC, "x");
pub(super) const COMBINE_SHARED: &[Rule] =
    &shared_rules!(COMBINE, "moe-distribute-combine", CDOC, A2_CDOC, "expandX");

pub(super) const DISPATCH_INPUTS: &[Rule] = &[
    one(
        DISPATCH,
        "moe-distribute-dispatch.required",
        "x, expertIds and all seven outputs (expandX, dynamicScales, expandIdx, expertTokenNums, epRecvCounts, tpRecvCounts, expandScales) are given (the op's definition marks every output required)",
        DOC,
        NULLPTR,
        Relation(|c| {
            present(
                c,
                &[
                    "x",
                    "expertIds",
                    "expandX",
                    "dynamicScales",
                    "expandIdx",
                    "expertTokenNums",
                    "epRecvCounts",
                    "tpRecvCounts",
                    "expandScales",
                ],
            )
        }),
        |c| c.set("expandScales", Arg::Tensor(None)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.x",
        "x is FLOAT16 or BF16 [BS, H], BS as expertIds'",
        DOC,
        INVALID,
        Relation(|c| {
            int_typed_any(c, "x", HALVES)?;
            let (rank, a, b) = (
                c.tensor_of("x").map_or(0, |t| t.dims.len()),
                dim(c, "x", 0),
                dim(c, "expertIds", 0),
            );
            ensure(rank == 2 && a == b, || {
                format!("x of rank {rank} with {a} rows, expertIds {b}")
            })
        }),
        |c| c.edit_tensor("x", |t| t.dims[0] = 3),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.quant-mode",
        "quantMode is 0 (none) or 2 (per-token dynamic INT8); expertTokenNumsType 0 (cumsum) or 1 (counts)",
        DOC,
        INVALID,
        Relation(|c| {
            let (q, t) = (c.int_of("quantMode"), c.int_of("expertTokenNumsType"));
            ensure([0, 2].contains(&q) && [0, 1].contains(&t), || {
                format!("quantMode {q}, expertTokenNumsType {t}")
            })
        }),
        |c| c.set("quantMode", Arg::Int(1)),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.scales",
        "scales is NULL with quantMode 0; with quantMode 2, NULL or FLOAT [moeExpertNum, H] (each expert's smoothing; no shared-expert ranks)",
        DOC,
        INVALID,
        Relation(|c| match (c.int_of("quantMode"), c.present("scales")) {
            (2, false) => Ok(()),
            (2, true) => {
                dims_are(c, "scales", &[c.int_of("moeExpertNum"), dim(c, "x", 1)])?;
                int_typed(c, "scales", ACL_FLOAT)
            }
            _ => absent(c, &["scales"]),
        }),
        |c| {
            c.set(
                "scales",
                Arg::Tensor(Some(TensorMeta::new(&[8, 7168], ACL_FLOAT))),
            )
        },
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.expert-scales",
        "expertScales is NULL (A3's newer tiling takes FLOAT [BS, K], which only A2's layered algorithm reads; the simulator takes none)",
        DOC,
        INVALID,
        Relation(|c| absent(c, &["expertScales"])),
        |c| {
            c.set(
                "expertScales",
                Arg::Tensor(Some(TensorMeta::new(&[2, 2], ACL_FLOAT))),
            )
        },
    ),
];

/// Checked after the shared rules, which fix the sizes they depend on.
pub(super) const DISPATCH_OUTPUTS: &[Rule] = &[
    one(
        DISPATCH,
        "moe-distribute-dispatch.expand-x",
        "expandX is [A, H] of x's dtype (INT8 with quantMode 2) with A ≥ (globalBs, or BS·epWorldSize) · min(localExpertNum, K)",
        DOC,
        INVALID,
        Relation(|c| {
            if c.int_of("quantMode") == 2 {
                int_typed(c, "expandX", ACL_INT8)?;
            } else {
                same_dtype(c, "expandX", "x")?;
            }
            let want = min_rows(c, dim(c, "x", 0), dim(c, "expertIds", 1));
            let (dims, h) = (
                c.tensor_of("expandX").map(|t| t.dims.clone()),
                dim(c, "x", 1),
            );
            ensure(
                matches!(&dims, Some(d) if d.len() == 2 && d[1] == h && d[0] >= want),
                || format!("expandX {dims:?}, expected [A >= {want}, {h}]"),
            )
        }),
        |c| c.edit_tensor("expandX", |t| t.dims[0] = 7),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.row-outputs",
        "dynamicScales and expandScales are FLOAT [A] (A: expandX's rows; dynamicScales written with quantMode 2 only)",
        DOC,
        INVALID,
        Relation(|c| {
            let a = dim(c, "expandX", 0);
            for name in ["dynamicScales", "expandScales"] {
                dims_are(c, name, &[a])?;
                int_typed(c, name, ACL_FLOAT)?;
            }
            Ok(())
        }),
        |c| c.edit_tensor("dynamicScales", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.expand-idx",
        "expandIdx is INT32 [BS·K]",
        DOC,
        INVALID,
        Relation(expand_idx),
        |c| c.edit_tensor("expandIdx", |t| t.dims[0] = 3),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.expert-token-nums",
        "expertTokenNums is INT64 [localExpertNum]",
        DOC,
        INVALID,
        Relation(|c| {
            dims_are(c, "expertTokenNums", &[local_experts(c)])?;
            int_typed(c, "expertTokenNums", ACL_INT64)
        }),
        |c| c.edit_tensor("expertTokenNums", |t| t.dtype = ACL_INT32),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.ep-recv-counts",
        "epRecvCounts is INT32 [epWorldSize · localExpertNum]",
        DOC,
        INVALID,
        Relation(|c| a3_counts(c, "epRecvCounts")),
        |c| c.edit_tensor("epRecvCounts", |t| t.dims[0] = 3),
    ),
    one(
        DISPATCH,
        "moe-distribute-dispatch.tp-recv-counts",
        "tpRecvCounts is INT32 1-D, [tpWorldSize] on A3",
        DOC,
        INVALID,
        Relation(|c| tp_counts(c, "tpRecvCounts")),
        |c| c.edit_tensor("tpRecvCounts", |t| t.dims[0] = 2),
    ),
];

pub(super) const COMBINE_INPUTS: &[Rule] = &[
    one(
        COMBINE,
        "moe-distribute-combine.required",
        "expandX, expertIds, expandIdx, epSendCounts, expertScales, tpSendCounts and x are given (A3's first tiling reads tpSendCounts)",
        CDOC,
        NULLPTR,
        Relation(|c| {
            present(
                c,
                &[
                    "expandX",
                    "expertIds",
                    "expandIdx",
                    "epSendCounts",
                    "expertScales",
                    "tpSendCounts",
                    "x",
                ],
            )
        }),
        |c| c.set("expertScales", Arg::Tensor(None)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.expand-x-rank",
        "expandX is 2-D [A, H]",
        CDOC,
        INVALID,
        Rank("expandX", 2),
        |c| c.edit_tensor("expandX", |t| t.dims.push(1)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.expand-x-dtype",
        "expandX is FLOAT16 or BF16",
        CDOC,
        INVALID,
        DTypes("expandX", HALVES),
        |c| c.edit_tensor("expandX", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.reserved-absent",
        "activationScale, weightScale, groupList and expandScales are NULL (reserved on A3; A2's layered algorithm reads expandScales, \"fullmesh\" does not)",
        CDOC,
        INVALID,
        Relation(|c| {
            absent(
                c,
                &[
                    "activationScale",
                    "weightScale",
                    "groupList",
                    "expandScales",
                ],
            )
        }),
        |c| {
            c.set(
                "groupList",
                Arg::Tensor(Some(TensorMeta::new(&[2], ACL_INT64))),
            )
        },
    ),
    one(
        COMBINE,
        "moe-distribute-combine.comm-quant-mode",
        "commQuantMode is 0 (A3 takes 2, INT8 communication, which is not simulated; A2 \"fullmesh\" takes only 0)",
        CDOC,
        INVALID,
        IntIn("commQuantMode", &[0]),
        |c| c.set("commQuantMode", Arg::Int(2)),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.reserved-attrs",
        "outDtype and groupListType are 0 (reserved)",
        CDOC,
        INVALID,
        Relation(|c| {
            let (o, g) = (c.int_of("outDtype"), c.int_of("groupListType"));
            ensure(o == 0 && g == 0, || {
                format!("outDtype {o}, groupListType {g}")
            })
        }),
        |c| c.set("outDtype", Arg::Int(1)),
    ),
];

/// Checked after the shared rules.
pub(super) const COMBINE_OUTPUTS: &[Rule] = &[
    one(
        COMBINE,
        "moe-distribute-combine.expand-x-rows",
        "expandX has A ≥ (globalBs, or BS·epWorldSize) · min(localExpertNum, K) rows",
        CDOC,
        INVALID,
        Relation(|c| {
            let (a, want) = (
                dim(c, "expandX", 0),
                min_rows(c, dim(c, "expertIds", 0), dim(c, "expertIds", 1)),
            );
            ensure(a >= want, || format!("A {a}, expected at least {want}"))
        }),
        |c| c.edit_tensor("expandX", |t| t.dims[0] = 7),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.expand-idx",
        "expandIdx is INT32 [BS·K]",
        CDOC,
        INVALID,
        Relation(expand_idx),
        |c| c.edit_tensor("expandIdx", |t| t.dims[0] = 3),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.ep-send-counts",
        "epSendCounts is INT32 [epWorldSize · localExpertNum] (the dispatch's epRecvCounts)",
        CDOC,
        INVALID,
        Relation(|c| a3_counts(c, "epSendCounts")),
        |c| c.edit_tensor("epSendCounts", |t| t.dims[0] = 3),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.tp-send-counts",
        "tpSendCounts is INT32 1-D, [tpWorldSize] on A3 (the dispatch's tpRecvCounts)",
        CDOC,
        INVALID,
        Relation(|c| tp_counts(c, "tpSendCounts")),
        |c| c.edit_tensor("tpSendCounts", |t| t.dtype = ACL_INT64),
    ),
    one(
        COMBINE,
        "moe-distribute-combine.expert-scales",
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
        "moe-distribute-combine.x",
        "x is [BS, H] of expandX's dtype",
        CDOC,
        INVALID,
        Relation(|c| {
            same_dtype(c, "x", "expandX")?;
            dims_are(c, "x", &[dim(c, "expertIds", 0), dim(c, "expandX", 1)])
        }),
        |c| c.edit_tensor("x", |t| t.dims[0] = 3),
    ),
];

/// `Err` unless tensor `name` (when present) is one of `dtypes`.
fn int_typed_any(c: &Call, name: &str, dtypes: &[i32]) -> Result<(), String> {
    match c.tensor_of(name) {
        Some(t) if !dtypes.contains(&t.dtype) => {
            Err(format!("{name} is {}", crate::rules::dtype_name(t.dtype)))
        }
        _ => Ok(()),
    }
}

const RUN_TEST: &str = "tests/hccl_mc2_sim.rs::v1_run_rules_name_themselves";

const fn at_run(call: &'static str, id: &'static str, statement: &'static str) -> Rule {
    Rule {
        id,
        call,
        statement,
        source: DOC,
        test: RUN_TEST,
        enforcement: crate::rules::Enforcement::AtRun { status: INVALID },
    }
}

/// Rules that need the exchanged data: checked when the op runs (the communicator and SoC
/// rules are the V2 ops', `moe-distribute.*`).
pub(super) const AT_RUN: &[Rule] = &[
    at_run(
        DISPATCH,
        "moe-distribute-dispatch.capacity",
        "a rank receives at most A rows (expandX's first dim), every expert id lies in [0, moeExpertNum), and no token names an expert twice",
    ),
    at_run(
        COMBINE,
        "moe-distribute-combine.paired-dispatch",
        "expandX, expandIdx and epSendCounts come from the paired aclnnMoeDistributeDispatch with the same expertIds: every (token, k) it sent comes back once",
    ),
];

/// The EP attributes of both samples on A3: 8 ranks, 8 experts, a one-rank TP group, one
/// shared expert without shared-expert ranks (what V1's A3 tiling takes).
fn sample_ep(call: Call) -> Call {
    let s = |v: Option<&str>| Arg::Str(v.map(str::to_string));
    call.with("groupEp", s(Some("sample")))
        .int("epWorldSize", 8)
        .int("epRankId", 0)
        .int("moeExpertNum", 8)
        .with("groupTp", s(Some("")))
        .int("tpWorldSize", 1)
        .int("tpRankId", 0)
        .int("expertShardType", 0)
        .int("sharedExpertNum", 1)
        .int("sharedExpertRankNum", 0)
}

/// Two tokens of H 7168 over 8 A3 ranks, 8 experts, top-2: `A = 2·8·min(1, 2) = 16`.
pub(super) fn dispatch_sample() -> Call {
    let t = |dims: &[i64], dtype| Some(TensorMeta::new(dims, dtype));
    let call = Call::new(DISPATCH)
        .tensor("x", t(&[2, 7168], ACL_BF16))
        .tensor("expertIds", t(&[2, 2], ACL_INT32))
        .tensor("scales", None)
        .tensor("xActiveMask", None)
        .tensor("expertScales", None);
    sample_ep(call)
        .int("quantMode", 0)
        .int("globalBs", 0)
        .int("expertTokenNumsType", 1)
        .with("socForm", Arg::Str(None))
        .tensor("expandX", t(&[16, 7168], ACL_BF16))
        .tensor("dynamicScales", t(&[16], ACL_FLOAT))
        .tensor("expandIdx", t(&[4], ACL_INT32))
        .tensor("expertTokenNums", t(&[1], ACL_INT64))
        .tensor("epRecvCounts", t(&[8], ACL_INT32))
        .tensor("tpRecvCounts", t(&[1], ACL_INT32))
        .tensor("expandScales", t(&[16], ACL_FLOAT))
}

/// The combine that pairs with [`dispatch_sample`].
pub(super) fn combine_sample() -> Call {
    let t = |dims: &[i64], dtype| Some(TensorMeta::new(dims, dtype));
    let call = Call::new(COMBINE)
        .tensor("expandX", t(&[16, 7168], ACL_BF16))
        .tensor("expertIds", t(&[2, 2], ACL_INT32))
        .tensor("expandIdx", t(&[4], ACL_INT32))
        .tensor("epSendCounts", t(&[8], ACL_INT32))
        .tensor("expertScales", t(&[2, 2], ACL_FLOAT))
        .tensor("tpSendCounts", t(&[1], ACL_INT32))
        .tensor("xActiveMask", None)
        .tensor("activationScale", None)
        .tensor("weightScale", None)
        .tensor("groupList", None)
        .tensor("expandScales", None);
    sample_ep(call)
        .int("globalBs", 0)
        .int("outDtype", 0)
        .int("commQuantMode", 0)
        .int("groupListType", 0)
        .with("socForm", Arg::Str(None))
        .tensor("x", t(&[2, 7168], ACL_BF16))
}
