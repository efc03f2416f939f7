//! The low-latency dispatch and combine on the MC2 operators, where their documented limits
//! fit (cann-api-facts §4.7 and the ops' docs; no shared experts, no TP): V2
//! (`aclnnMoeDistributeDispatchV2` / `CombineV2`) where the CANN in use has it, else V1
//! (`aclnnMoeDistributeDispatch` / `Combine`, CANN 8.1) ([`Mc2Version`]); on Atlas A3 in its
//! form, on Atlas A2 (910B) in its "fullmesh" one ([`Form`]).
//!
//! * **When.** [`route`] decides from what every rank shares (the SoC, the shape, the payload
//!   kind, `max_tokens_per_rank`, the communicator's buffer size, which ops the CANN has), so
//!   every rank takes the same path. Elsewhere the portable all-to-all-v path runs. Then
//!   [`usable`] asks every rank in one all-reduce what its routing holds (A2's mask is per
//!   token; V1 has no mask at all, so it cannot carry a `-1` id nor a rank without tokens; no
//!   version takes a token naming an expert twice) and compares their routes; it also carries
//!   each rank's token count against `max_tokens_per_rank`: a rank over it fails every rank
//!   at once rather than leave them waiting in the op.
//! * **Their own communicator.** The ops' EP communicator may run nothing else, so they run on
//!   a communicator split once from the caller's ([`Comm::mc2`]).
//! * **Layout.** The ops put a rank's rows in `[A, H]` grouped by local expert; the slabs of
//!   the masked layout are copied from there (one device copy per expert). On V2, `-1` ids
//!   travel as expert 0 masked off by the 2-D `xActiveMask`, and a rank without tokens sends
//!   one masked row (the ops need `BS ≥ 1`).
//! * **What stays opaque.** The rows' sources (`assistInfoForCombine` or `expandIdx`,
//!   `epRecvCounts`) are documented as values to hand to combine, not to read, so
//!   [`LowLatencyHandle::recv_src`](super::LowLatencyHandle::recv_src) is `None` on this
//!   path. Within an expert, rows arrive in an order the documentation does not state.

use half::bf16;

use super::EpShape;
use crate::aclnn::{AclBool, AclTensor, Mc2Combine, Mc2Dispatch, Mc2Group, Mc2Version};
use crate::error::{Error, Result};
use crate::runtime::comm::{Comm, ReduceOp};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// V2's limits on A3 (the doc's shape-variable table).
const MAX_RANKS: usize = 768;
const MAX_EXPERTS: usize = 1024;
const HIDDEN: std::ops::RangeInclusive<usize> = 1024..=8192;
const MAX_BS: usize = 512;
const MAX_K: usize = 16;
/// V2's limits on A2 with "fullmesh" (the A2 notes of the ops' docs).
const A2_RANKS: [usize; 5] = [16, 32, 64, 128, 256];
const A2_MAX_EXPERTS: usize = 512;
const A2_MAX_LOCAL_EXPERTS: usize = 24;
const A2_MAX_HIDDEN: usize = 7168;
const A2_MAX_BS: usize = 256;
/// V1's limits on A3 (its tiling's checks, which its doc repeats): H is 7168 exactly.
const V1_A3_RANKS: [usize; 8] = [8, 16, 32, 64, 128, 144, 256, 288];
const V1_MAX_EXPERTS: usize = 512;
const V1_A3_HIDDEN: usize = 7168;
const V1_A3_MAX_K: usize = 8;
/// V1's ranks on A2 (its doc: 2, 4 or 8 servers; its tiling takes any multiple of 8).
const V1_A2_RANKS: [usize; 3] = [16, 32, 64];
/// Devices per A2 server (Atlas 800T A2), for the docs' `serverNum` in A2's counts length:
/// `R / 8`. How hardware counts servers of a rank table is UNVERIFIED.
const A2_SERVER_DEVICES: usize = 8;
/// `HCCL_BUFFSIZE`'s default, in MB.
const DEFAULT_BUFFSIZE_MB: u64 = 200;

/// The documented form of the MC2 ops a call takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// Atlas A3: `commAlg` NULL, a 2-D `[BS, K]` mask (V2), counts `[R·L]`.
    A3,
    /// Atlas A2, "fullmesh": V2 names it in `commAlg` and takes a 1-D `[BS]` mask, counts
    /// `[E + 2·globalBs·K·serverNum]` (the counts first); V1 runs it by default, counts `[E]`.
    A2Fullmesh,
}

/// Which ops, in which form, a dispatch and its combine run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Route {
    form: Form,
    version: Mc2Version,
}

/// What a dispatch on the MC2 ops keeps for its combine.
pub(super) struct Mc2Handle {
    route: Route,
    /// Rows of the ops' `[A, H]` buffers.
    rows: usize,
    /// `[BS, K]` ids with −1 made 0, and (V2) the mask that keeps them out.
    ids: DeviceBuffer<i32>,
    mask: Option<(DeviceBuffer<u8>, Vec<usize>)>,
    /// The ops' opaque bookkeeping, handed from dispatch to combine (V2's
    /// `assistInfoForCombine`, V1's `expandIdx`; V1's TP counts).
    assist: DeviceBuffer<i32>,
    recv_counts: DeviceBuffer<i32>,
    tp_counts: Option<DeviceBuffer<i32>>,
    /// `[L]` rows per local expert, in `[A, H]` order.
    per_expert: Vec<usize>,
    /// `BS`: this rank's tokens, or 1 for a rank without any.
    bs: usize,
    global_bs: usize,
}

/// The ops, and their form, whose documented limits fit this call on every rank (see the
/// module docs), if any: V2 where the CANN has it, else V1.
pub(super) fn route(comm: &Comm, shape: &EpShape, max_tokens: usize) -> Option<Route> {
    let device = comm.device();
    let soc = device.soc_name().ok()?;
    let form = if soc.starts_with("Ascend910_93") {
        Form::A3
    } else if soc.starts_with("Ascend910B") {
        Form::A2Fullmesh
    } else {
        return None;
    };
    let api = device.inner.api;
    let version = [Mc2Version::V2, Mc2Version::V1]
        .into_iter()
        .find(|v| v.available(api))?;
    let route = Route { form, version };
    route
        .fits(shape, max_tokens, comm.buffer_size_mb())
        .then_some(route)
}

impl Route {
    /// A number per route, for ranks to compare theirs in one all-reduce.
    fn code(self) -> i32 {
        let form = match self.form {
            Form::A3 => 0,
            Form::A2Fullmesh => 2,
        };
        1 + form + i32::from(self.version == Mc2Version::V2)
    }

    /// Whether the shape, `max_tokens` per rank and the EP buffer (`configured_mb`) lie within
    /// the route's documented limits.
    fn fits(self, shape: &EpShape, max_tokens: usize, configured_mb: Option<u32>) -> bool {
        let c = shape.config;
        let (r, e, h, k) = (c.num_ranks, c.num_experts, shape.hidden, shape.top_k);
        // Every route: experts split evenly, top-k in 1..=16 and at most E, a token or more.
        if !(e % r == 0 && (1..=MAX_K).contains(&k) && k <= e && max_tokens >= 1) {
            return false;
        }
        let sizes = (h, k, c.local_experts(), r);
        let buffer = |need| buffsize_fits(need, configured_mb);
        let a2 = |ranks: &[usize]| {
            ranks.contains(&r)
                && (1..=A2_MAX_EXPERTS).contains(&e)
                && c.local_experts() <= A2_MAX_LOCAL_EXPERTS
                && (1..=A2_MAX_HIDDEN).contains(&h)
                && h % 32 == 0
                && max_tokens <= A2_MAX_BS
                && buffer(a2_buffer_bytes(sizes, max_tokens))
        };
        match (self.form, self.version) {
            (Form::A3, Mc2Version::V2) => {
                (2..=MAX_RANKS).contains(&r)
                    && (1..=MAX_EXPERTS).contains(&e)
                    && HIDDEN.contains(&h)
                    && max_tokens <= MAX_BS
                    && buffer(a3_buffer_bytes(sizes, max_tokens))
            }
            (Form::A3, Mc2Version::V1) => {
                V1_A3_RANKS.contains(&r)
                    && (1..=V1_MAX_EXPERTS).contains(&e)
                    && h == V1_A3_HIDDEN
                    && k <= V1_A3_MAX_K
                    && max_tokens <= MAX_BS
                    && v1_a3_buffer_fits(sizes, max_tokens, configured_mb)
                    && v1_a3_tiling_fits(sizes, max_tokens)
            }
            (Form::A2Fullmesh, Mc2Version::V2) => a2(&A2_RANKS),
            // V1 on A2 takes its layered algorithm instead when these two variables say so;
            // both ops read them, and the simulator does not model that algorithm.
            (Form::A2Fullmesh, Mc2Version::V1) => a2(&V1_A2_RANKS) && !v1_a2_layered(),
        }
    }
}

/// V1 on A2 runs its layered algorithm when `HCCL_INTRA_PCIE_ENABLE` is "1" and
/// `HCCL_INTRA_ROCE_ENABLE` is "0" (the ops' docs and tiling).
fn v1_a2_layered() -> bool {
    let var = |name| std::env::var(name).ok();
    layered_by((
        var("HCCL_INTRA_PCIE_ENABLE").as_deref(),
        var("HCCL_INTRA_ROCE_ENABLE").as_deref(),
    ))
}

/// [`v1_a2_layered`] with those variables' values: exactly "1" and "0".
fn layered_by((pcie, roce): (Option<&str>, Option<&str>)) -> bool {
    pcie == Some("1") && roce == Some("0")
}

/// [`route`], and one all-reduce on `comm` of what each rank holds, so that every rank takes
/// the same path: its route (ranks that disagree, e.g. by their `HCCL_BUFFSIZE`, all take
/// all-to-all-v), whether any id is `-1` (A2's per-token mask and V1 cannot carry one),
/// whether it has no tokens (V1 cannot run one), whether a token names an expert twice (the
/// ops' docs forbid it), and whether it has more than `max_tokens` (then every rank returns
/// the error naming that rank). Every rank passes its `topk_idx`.
pub(super) fn usable(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    max_tokens: usize,
    topk_idx: &[i32],
) -> Result<Option<Route>> {
    let Some(route) = route(comm, shape, max_tokens) else {
        return Ok(None);
    };
    let k = shape.top_k;
    let t = topk_idx.len() / k;
    let over = if t > max_tokens { comm.rank() + 1 } else { 0 };
    let twice = topk_idx
        .chunks(k)
        .any(|ids| (1..ids.len()).any(|i| ids[i] >= 0 && ids[..i].contains(&ids[i])));
    let code = route.code();
    let mine = [
        code,
        -code,
        i32::from(topk_idx.iter().any(|&e| e < 0)),
        i32::from(t == 0),
        i32::from(twice),
        over as i32,
    ];
    let mine = stream.upload(&mine)?;
    let mut all = stream.alloc_pooled::<i32>(mine.len())?;
    comm.all_reduce(stream, &mine, &mut all, ReduceOp::Max)?;
    let [high, neg_low, unrouted, empty, twice, over] = <[i32; 6]>::try_from(all.to_vec()?)
        .map_err(|v| Error::invalid(format!("an all-reduce of 6 values gave {v:?}"), "6 values"))?;
    if over > 0 {
        return Err(Error::invalid(
            format!("rank {} dispatches more tokens", over - 1),
            format!("at most max_tokens_per_rank = {max_tokens} on every rank"),
        ));
    }
    let carried = match (route.version, route.form) {
        (Mc2Version::V2, Form::A3) => true,
        (Mc2Version::V2, Form::A2Fullmesh) => unrouted == 0,
        (Mc2Version::V1, _) => unrouted == 0 && empty == 0,
    };
    Ok((high == -neg_low && twice == 0 && carried).then_some(route))
}

/// V2's A3 formula: 2·(L·maxBS·ep·Align512(Align32(2H)+64) + K·maxBS·Align512(2H)) bytes.
fn a3_buffer_bytes((h, k, l, r): (usize, usize, usize, usize), max_bs: usize) -> u64 {
    let align = |v: usize, to: usize| v.div_ceil(to) * to;
    let need =
        2 * (l * max_bs * r * align(align(2 * h, 32) + 64, 512) + k * max_bs * align(2 * h, 512));
    need as u64
}

/// The A2 "fullmesh" formula (both versions): 2·(maxBS·ep·min(L, K)·H·2 + 2 MB) bytes.
fn a2_buffer_bytes((h, k, l, r): (usize, usize, usize, usize), max_bs: usize) -> u64 {
    2 * ((max_bs * r * l.min(k) * h * 2) as u64 + (2 << 20))
}

/// V1's A3 buffer, its doc's `2^20·(MB − 2)/2 ≥ maxBS·2·(H + 128)·(ep·L + K + 1)` with the
/// EP buffer's size.
fn v1_a3_buffer_fits(
    (h, k, l, r): (usize, usize, usize, usize),
    max_bs: usize,
    configured_mb: Option<u32>,
) -> bool {
    let mb = buffsize_mb(configured_mb);
    let need = (max_bs * 2 * (h + 128) * (r * l + k + 1)) as u64;
    mb >= 2 && need <= ((mb - 2) << 20) / 2
}

/// V1's A3 tiling (CANN 8.1): `ep·maxBS·H·4·L ≤ MB·2^20` with `HCCL_BUFFSIZE` (default 200),
/// which it reads instead of the communicator's configured size.
fn v1_a3_tiling_fits((h, _, l, r): (usize, usize, usize, usize), max_bs: usize) -> bool {
    (r * max_bs * h * 4 * l) as u64 <= buffsize_mb(None) << 20
}

/// The EP buffer in MB: the communicator's configured size, else `HCCL_BUFFSIZE`, else 200
/// (the MC2 communicator is split with the caller's configured size).
fn buffsize_mb(configured_mb: Option<u32>) -> u64 {
    let env = || {
        std::env::var("HCCL_BUFFSIZE")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    configured_mb
        .map(u64::from)
        .or_else(env)
        .unwrap_or(DEFAULT_BUFFSIZE_MB)
}

/// Whether `need` bytes fit the EP buffer ([`buffsize_mb`]), which must be 2 MB at least.
fn buffsize_fits(need: u64, configured_mb: Option<u32>) -> bool {
    let mb = buffsize_mb(configured_mb);
    mb >= 2 && need <= mb.saturating_mul(1 << 20)
}

/// The EP communicator's name and what both ops are told of the group.
struct Group {
    name: std::ffi::CString,
    ranks: i64,
    rank: i64,
    experts: i64,
    route: Route,
}

impl Group {
    /// The ops' view, with `global_bs` tokens in all.
    fn with_batch(&self, global_bs: usize) -> Mc2Group<'_> {
        let Route { form, version } = self.route;
        // V1 on A3 takes a one-rank TP group and one shared expert (without shared-expert
        // ranks) only; everywhere else both are 0.
        let v1_a3 = i64::from(form == Form::A3 && version == Mc2Version::V1);
        Mc2Group {
            version,
            name: &self.name,
            ranks: self.ranks,
            rank: self.rank,
            experts: self.experts,
            global_bs: global_bs as i64,
            tp_ranks: v1_a3,
            shared_experts: v1_a3,
            comm_alg: match (version, form) {
                (Mc2Version::V2, Form::A2Fullmesh) => Some(c"fullmesh"),
                _ => None,
            },
        }
    }
}

fn group(comm: &Comm, shape: &EpShape, route: Route) -> Result<Group> {
    let name = comm.name()?;
    let name = std::ffi::CString::new(name.clone())
        .map_err(|_| Error::invalid(format!("communicator name {name:?}"), "a name without NUL"))?;
    Ok(Group {
        name,
        ranks: i64::from(comm.size()),
        rank: i64::from(comm.rank()),
        experts: shape.config.num_experts as i64,
        route,
    })
}

impl Route {
    /// The mask for `topk_idx` (`bs` tokens of top-`k`, `t` of them real), if the route takes
    /// one: per pair on A3, per token on A2 (where [`usable`] saw no −1 id on any rank: all,
    /// or none on a rank without tokens). V1 takes none.
    fn mask(
        self,
        topk_idx: &[i32],
        (bs, k, t): (usize, usize, usize),
    ) -> Option<(Vec<u8>, Vec<usize>)> {
        match (self.version, self.form) {
            (Mc2Version::V1, _) => None,
            (Mc2Version::V2, Form::A3) => {
                let mut mask = vec![0u8; bs * k];
                for (m, &e) in mask.iter_mut().zip(topk_idx) {
                    *m = u8::from(e >= 0);
                }
                Some((mask, vec![bs, k]))
            }
            (Mc2Version::V2, Form::A2Fullmesh) => Some((vec![u8::from(t > 0); bs], vec![bs])),
        }
    }

    /// The length of `epRecvCounts` / `epSendCounts` (`global_bs` tokens in all).
    fn counts_len(self, shape: &EpShape, global_bs: usize) -> usize {
        let (r, e) = (shape.config.num_ranks, shape.config.num_experts);
        match (self.version, self.form) {
            (Mc2Version::V2, Form::A2Fullmesh) => {
                e + 2 * global_bs * shape.top_k * (r / A2_SERVER_DEVICES).max(1)
            }
            _ => e,
        }
    }

    /// The length of the combine's bookkeeping: V2's `[A·128]`, V1's `[BS·K]`.
    fn assist_len(self, (rows, bs, k): (usize, usize, usize)) -> usize {
        match self.version {
            Mc2Version::V2 => rows * 128,
            Mc2Version::V1 => bs * k,
        }
    }
}

/// The rows an MC2 dispatch delivers in the masked layout `[L, slab_rows, H]`.
pub(super) enum Mc2Rows {
    /// As sent.
    Bf16(DeviceBuffer<bf16>),
    /// quantMode 2: INT8 codes and one scale per row (`[L, slab_rows]`).
    Int8 {
        codes: DeviceBuffer<i8>,
        scales: DeviceBuffer<f32>,
    },
}

/// The MC2 dispatch of `x` (`[T, H]` bf16) routed by `topk_idx` (`[T, K]`, host copy),
/// quantized per row to INT8 on the way if `int8` (quantMode 2): the masked layout
/// `[L, slab_rows, H]`, rows per local expert, and the handle.
pub(super) fn dispatch(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    (x, topk_idx): (&DeviceBuffer<bf16>, &[i32]),
    (max_tokens, int8, route): (usize, bool, Route),
) -> Result<(Mc2Rows, Vec<usize>, Mc2Handle)> {
    let (h, k) = (shape.hidden, shape.top_k);
    let (r, l) = (shape.config.num_ranks, shape.config.local_experts());
    let t = topk_idx.len() / k;
    if t > max_tokens {
        return Err(Error::invalid(
            format!("{t} tokens on rank {}", comm.rank()),
            format!("at most max_tokens_per_rank = {max_tokens}"),
        ));
    }
    let ep = comm.mc2()?;
    ep.note_stream(stream);
    let g = group(ep, shape, route)?;
    // A rank without tokens sends one masked row (V2): the ops need BS ≥ 1.
    let bs = t.max(1);
    let mut ids = vec![0i32; bs * k];
    for (id, &e) in ids.iter_mut().zip(topk_idx) {
        *id = e.max(0);
    }
    let padded;
    let x = if t == 0 {
        padded = stream.alloc_pooled_zeroed::<bf16>(h)?;
        &padded
    } else {
        x
    };
    let global_bs = max_tokens * r;
    let rows = global_bs * l.min(k);
    let counts_len = route.counts_len(shape, global_bs);
    let ids = stream.upload(&ids)?;
    let mask = match route.mask(topk_idx, (bs, k, t)) {
        Some((mask, dims)) => Some((stream.upload(&mask)?, dims)),
        None => None,
    };
    let v1 = route.version == Mc2Version::V1;
    // bf16 rows, or INT8 codes with a scale per row; V1 wants the scales given either way.
    let mut expand = Expanded::alloc(stream, int8, rows, h)?;
    let mut v1_scales = if v1 && !int8 {
        Some(stream.alloc_pooled::<f32>(rows)?)
    } else {
        None
    };
    let assist_len = route.assist_len((rows, bs, k));
    let mut assist = stream.alloc_pooled::<i32>(assist_len)?;
    let mut nums = stream.alloc_pooled::<i64>(l)?;
    let mut recv_counts = stream.alloc_pooled::<i32>(counts_len)?;
    let mut tp_counts = if v1 {
        Some(stream.alloc_pooled_zeroed::<i32>(1)?)
    } else {
        None
    };
    let mut expand_scales = if v1 {
        Some(stream.alloc_pooled::<f32>(rows)?)
    } else {
        None
    };
    {
        let tx = AclTensor::new(x, &[bs, h])?;
        let tids = AclTensor::new(&ids, &[bs, k])?;
        let tmask = match &mask {
            Some((m, dims)) => Some(AclTensor::from_bytes::<AclBool>(m, dims)?),
            None => None,
        };
        let (tex, tscales) = match &mut expand {
            Mc2Rows::Bf16(e) => (AclTensor::new_mut(e, &[rows, h])?, None),
            Mc2Rows::Int8 { codes, scales } => (
                AclTensor::new_mut(codes, &[rows, h])?,
                Some(AclTensor::new_mut(scales, &[rows])?),
            ),
        };
        let tv1_scales = match &mut v1_scales {
            Some(s) => Some(AclTensor::new_mut(s, &[rows])?),
            None => None,
        };
        let tassist = AclTensor::new_mut(&mut assist, &[assist_len])?;
        let tnums = AclTensor::new_mut(&mut nums, &[l])?;
        let trecv = AclTensor::new_mut(&mut recv_counts, &[counts_len])?;
        let ttp = match &mut tp_counts {
            Some(c) => Some(AclTensor::new_mut(c, &[1])?),
            None => None,
        };
        let texs = match &mut expand_scales {
            Some(s) => Some(AclTensor::new_mut(s, &[rows])?),
            None => None,
        };
        Mc2Dispatch {
            group: g.with_batch(global_bs),
            x: &tx,
            expert_ids: &tids,
            mask: tmask.as_ref(),
            expand_x: &tex,
            quantize: int8,
            dynamic_scales: tscales.as_ref().or(tv1_scales.as_ref()),
            assist_info: &tassist,
            expert_token_nums: &tnums,
            recv_counts: &trecv,
            tp_recv_counts: ttp.as_ref(),
            expand_scales: texs.as_ref(),
        }
        .plan(stream)?
        .launch()?;
    }
    let per_expert: Vec<usize> = nums.to_vec()?.iter().map(|&n| n.max(0) as usize).collect();
    let slab_rows = max_tokens * r;
    if per_expert.iter().sum::<usize>() > rows || per_expert.iter().any(|&n| n > slab_rows) {
        return Err(Error::Damaged {
            from: comm.rank() as usize,
            what: format!("expertTokenNums {per_expert:?}"),
            expected: format!("at most {slab_rows} rows per expert and {rows} in all"),
        });
    }
    let slabs = Slabs {
        per_expert: &per_expert,
        slab_rows,
    };
    let mut masked = Expanded::alloc(stream, int8, l * slab_rows, h)?;
    match (&expand, &mut masked) {
        (Mc2Rows::Bf16(from), Mc2Rows::Bf16(to)) => slabs.copy(stream, from, to, (true, h))?,
        (
            Mc2Rows::Int8 { codes, scales },
            Mc2Rows::Int8 {
                codes: to_codes,
                scales: to_scales,
            },
        ) => {
            slabs.copy(stream, codes, to_codes, (true, h))?;
            slabs.copy(stream, scales, to_scales, (true, 1))?;
        }
        _ => unreachable!("both allocated in the same kind"),
    }
    let handle = Mc2Handle {
        route,
        rows,
        ids,
        mask,
        assist,
        recv_counts,
        tp_counts,
        per_expert: per_expert.clone(),
        bs,
        global_bs,
    };
    Ok((masked, per_expert, handle))
}

/// How [`Mc2Rows`] are allocated.
struct Expanded;

impl Expanded {
    /// `rows` rows of `hidden`, bf16 or (`int8`) INT8 codes with a scale each.
    fn alloc(stream: &Stream, int8: bool, rows: usize, hidden: usize) -> Result<Mc2Rows> {
        let n = crate::error::elements("MC2 rows", &[rows, hidden])?;
        Ok(if int8 {
            Mc2Rows::Int8 {
                codes: stream.alloc_pooled::<i8>(n)?,
                scales: stream.alloc_pooled::<f32>(rows)?,
            }
        } else {
            Mc2Rows::Bf16(stream.alloc_pooled::<bf16>(n)?)
        })
    }
}

/// The rows of each local expert: packed one after another in the ops' `[A, ..]`, or at the
/// start of the expert's slab in the masked layout `[L, slab_rows, ..]`.
struct Slabs<'a> {
    per_expert: &'a [usize],
    slab_rows: usize,
}

impl Slabs<'_> {
    /// Copies every expert's rows of `h` elements from the packed form to the masked one
    /// (`to_masked`) or back: one device copy per expert with rows.
    fn copy<T>(
        &self,
        stream: &Stream,
        from: &DeviceBuffer<T>,
        to: &mut DeviceBuffer<T>,
        (to_masked, h): (bool, usize),
    ) -> Result<()> {
        let mut packed = 0;
        for (e, &n) in self.per_expert.iter().enumerate() {
            let (p, m) = (packed * h, e * self.slab_rows * h);
            let (src, dst) = if to_masked { (p, m) } else { (m, p) };
            if n > 0 {
                let from = from.slice(src..src + n * h)?;
                let mut to = to.slice_mut(dst..dst + n * h)?;
                stream.memcpy_dtod(&from, &mut to)?;
            }
            packed += n;
        }
        Ok(())
    }
}

/// The MC2 combine of `y` (the masked layout `[L, slab_rows, H]`) weighted by `topk_weights`
/// (`[T, K]`): `[T, H]`.
pub(super) fn combine(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    handle: &Mc2Handle,
    (y, slab_rows): (&DeviceBuffer<bf16>, usize),
    (topk_weights, tokens): (&DeviceBuffer<f32>, usize),
) -> Result<DeviceBuffer<bf16>> {
    let (h, k) = (shape.hidden, shape.top_k);
    let ep = comm.mc2()?;
    ep.note_stream(stream);
    let g = group(ep, shape, handle.route)?;
    let mut expand = stream.alloc_pooled::<bf16>(handle.rows * h)?;
    let slabs = Slabs {
        per_expert: &handle.per_expert,
        slab_rows,
    };
    slabs.copy(stream, y, &mut expand, (false, h))?;
    let padded;
    let weights = if tokens == 0 {
        padded = stream.alloc_pooled_zeroed::<f32>(k)?;
        &padded
    } else {
        topk_weights
    };
    let bs = handle.bs;
    let mut out = stream.alloc_pooled::<bf16>(bs * h)?;
    {
        let tex = AclTensor::new(&expand, &[handle.rows, h])?;
        let tids = AclTensor::new(&handle.ids, &[bs, k])?;
        let tassist = AclTensor::new(&handle.assist, &[handle.assist.len()])?;
        let tcounts = AclTensor::new(&handle.recv_counts, &[handle.recv_counts.len()])?;
        let tw = AclTensor::new(weights, &[bs, k])?;
        let tmask = match &handle.mask {
            Some((m, dims)) => Some(AclTensor::from_bytes::<AclBool>(m, dims)?),
            None => None,
        };
        let ttp = match &handle.tp_counts {
            Some(c) => Some(AclTensor::new(c, &[1])?),
            None => None,
        };
        let tout = AclTensor::new_mut(&mut out, &[bs, h])?;
        Mc2Combine {
            group: g.with_batch(handle.global_bs),
            expand_x: &tex,
            expert_ids: &tids,
            assist_info: &tassist,
            send_counts: &tcounts,
            weights: &tw,
            mask: tmask.as_ref(),
            tp_send_counts: ttp.as_ref(),
            out: &tout,
        }
        .plan(stream)?
        .launch()?;
    }
    if tokens == 0 {
        return stream.alloc_pooled::<bf16>(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ep::EpConfig;

    const A3_V2: Route = Route {
        form: Form::A3,
        version: Mc2Version::V2,
    };
    const A3_V1: Route = Route {
        form: Form::A3,
        version: Mc2Version::V1,
    };
    const A2_V2: Route = Route {
        form: Form::A2Fullmesh,
        version: Mc2Version::V2,
    };
    const A2_V1: Route = Route {
        form: Form::A2Fullmesh,
        version: Mc2Version::V1,
    };

    /// Whether `route` fits `r` ranks, `e` experts, H `h`, top-`k` and `bs` tokens per rank
    /// with a buffer of 64 GB (so that only the shape decides).
    fn fits(route: Route, sizes: (usize, usize, usize, usize), bs: usize) -> bool {
        route.fits(&ep_shape(sizes), bs, Some(64 << 10))
    }

    /// `r` ranks, `e` experts, H `h`, top-`k`.
    fn ep_shape((r, e, h, k): (usize, usize, usize, usize)) -> EpShape {
        EpShape {
            config: EpConfig {
                num_ranks: r,
                num_experts: e,
            },
            hidden: h,
            top_k: k,
        }
    }

    /// Each version's limits on each SoC, at their edges: the shape at an edge fits, one step
    /// past it does not.
    #[test]
    fn each_route_fits_its_documented_limits_at_their_edges() {
        // V1 on A3: the listed EP sizes, H 7168 exactly, K ≤ 8, E ≤ 512, BS ≤ 512.
        for r in [8, 16, 32, 64, 128, 144, 256, 288] {
            assert!(fits(A3_V1, (r, r, 7168, 1), 1), "V1 A3, {r} ranks");
        }
        assert!(fits(A3_V1, (8, 8, 7168, 1), 512));
        for r in [2, 4, 12, 24, 136, 272, 512] {
            assert!(!fits(A3_V1, (r, r, 7168, 1), 1), "V1 A3, {r} ranks");
        }
        assert!(!fits(A3_V1, (8, 8, 7136, 1), 1) && !fits(A3_V1, (8, 8, 7200, 1), 1));
        assert!(fits(A3_V1, (8, 16, 7168, 8), 1) && !fits(A3_V1, (8, 16, 7168, 9), 1));
        assert!(fits(A3_V1, (8, 512, 7168, 1), 1) && !fits(A3_V1, (8, 520, 7168, 1), 1));
        assert!(!fits(A3_V1, (8, 8, 7168, 1), 513));
        // Every route: E a multiple of R, K in 1..=16 and at most E, at least one token.
        for route in [A3_V2, A3_V1, A2_V2, A2_V1] {
            let (r, h) = if route.form == Form::A3 {
                (8, 7168)
            } else {
                (16, 64)
            };
            assert!(fits(route, (r, 2 * r, h, 1), 1), "{route:?}");
            assert!(!fits(route, (r, 2 * r + 1, h, 1), 1), "{route:?}: E % R");
            assert!(!fits(route, (r, 2 * r, h, 0), 1), "{route:?}: K 0");
            assert!(!fits(route, (r, 2 * r, h, 1), 0), "{route:?}: no tokens");
        }
        assert!(fits(A3_V2, (2, 16, 1024, 16), 1) && !fits(A3_V2, (2, 18, 1024, 17), 1));
        assert!(fits(A3_V2, (2, 4, 1024, 4), 1) && !fits(A3_V2, (2, 4, 1024, 5), 1));
        // V2 on A3: 2..=768 ranks, E ≤ 1024, H 1024..=8192, K ≤ 16, BS ≤ 512.
        assert!(fits(A3_V2, (2, 2, 1024, 1), 512) && fits(A3_V2, (768, 768, 8192, 1), 1));
        assert!(!fits(A3_V2, (1, 1, 1024, 1), 1) && !fits(A3_V2, (769, 769, 1024, 1), 1));
        assert!(!fits(A3_V2, (2, 2, 1023, 1), 1) && !fits(A3_V2, (2, 2, 8193, 1), 1));
        assert!(fits(A3_V2, (4, 1024, 1024, 1), 1) && !fits(A3_V2, (4, 1028, 1024, 1), 1));
        assert!(!fits(A3_V2, (2, 2, 1024, 1), 513));
        // A2, "fullmesh": V2 at 16..=256 ranks (powers of two), V1 at 16, 32 or 64; both with
        // E ≤ 512, at most 24 per rank, H a multiple of 32 up to 7168, BS ≤ 256.
        for r in [16, 32, 64, 128, 256] {
            assert!(fits(A2_V2, (r, r, 7168, 1), 256), "V2 A2, {r} ranks");
            assert_eq!(
                fits(A2_V1, (r, r, 7168, 1), 256),
                r <= 64,
                "V1 A2, {r} ranks"
            );
        }
        for route in [A2_V2, A2_V1] {
            assert!(!fits(route, (8, 8, 64, 1), 1) && !fits(route, (24, 24, 64, 1), 1));
            assert!(fits(route, (16, 16 * 24, 64, 1), 1) && !fits(route, (16, 16 * 25, 64, 1), 1));
            assert!(fits(route, (32, 512, 32, 1), 1) && !fits(route, (32, 544, 64, 1), 1));
            assert!(!fits(route, (16, 16, 7200, 1), 1) && !fits(route, (16, 16, 48, 1), 1));
            assert!(!fits(route, (16, 16, 64, 1), 257));
        }
    }

    /// A2's layered algorithm is on with exactly HCCL_INTRA_PCIE_ENABLE=1 and
    /// HCCL_INTRA_ROCE_ENABLE=0.
    #[test]
    fn v1_a2_layered_needs_both_variables() {
        assert!(layered_by((Some("1"), Some("0"))));
        for vars in [
            (None, None),
            (Some("1"), None),
            (None, Some("0")),
            (Some("0"), Some("0")),
            (Some("1"), Some("1")),
        ] {
            assert!(!layered_by(vars), "{vars:?}");
        }
    }

    /// The smallest EP buffer (MB) at which `route` fits the shape.
    fn smallest_mb(route: Route, sizes: (usize, usize, usize, usize), bs: usize) -> u32 {
        let shape = ep_shape(sizes);
        (0..1 << 16)
            .find(|&mb| route.fits(&shape, bs, Some(mb)))
            .expect("fits some buffer")
    }

    /// The buffer formulas by hand, at the MB where each starts to fit.
    #[test]
    fn each_route_needs_its_buffer_formula() {
        let mib = 1u64 << 20;
        // V1 on A3, 8 ranks of 2 experts, H 7168, top-8, 256 tokens: 2^20·(MB − 2)/2 ≥
        // 256·2·7296·(16 + 8 + 1) bytes.
        let need = 256 * 2 * 7296 * 25u64;
        let want = 2 + (2 * need).div_ceil(mib) as u32;
        assert_eq!(smallest_mb(A3_V1, (8, 16, 7168, 8), 256), want);
        // Its tiling reads HCCL_BUFFSIZE (200 MB here, the variable unset), whatever the
        // communicator's size: ep·BS·H·4·L = 8·512·7168·4·2 bytes exceed 200 MB.
        assert!(!fits(A3_V1, (8, 16, 7168, 8), 512) && fits(A3_V1, (8, 16, 7168, 8), 256));
        // V2 on A3: 2·(L·BS·ep·Align512(Align32(2H) + 64) + K·BS·Align512(2H)) bytes.
        let need = 2 * (2 * 512 * 8 * 14848 + 8 * 512 * 14336u64);
        assert_eq!(
            smallest_mb(A3_V2, (8, 16, 7168, 8), 512),
            need.div_ceil(mib) as u32
        );
        // A2 "fullmesh", both versions: 2·(BS·ep·min(L, K)·H·2 + 2 MB) bytes.
        let need = 2 * (256 * 16 * 2 * 7168 * 2 + 2 * mib);
        for route in [A2_V2, A2_V1] {
            assert_eq!(
                smallest_mb(route, (16, 32, 7168, 8), 256),
                need.div_ceil(mib) as u32
            );
        }
        // Below 2 MB nothing fits, however small; at 2 MB, 2 MB does.
        assert!(!buffsize_fits(0, Some(1)));
        assert!(buffsize_fits(2 * mib, Some(2)) && !buffsize_fits(2 * mib + 1, Some(2)));
    }

    /// The counts and bookkeeping lengths, and the mask, of each route.
    #[test]
    fn each_route_shapes_its_tensors() {
        let shape = ep_shape((16, 32, 64, 2));
        // A2's V2 counts: E + 2·globalBs·K·serverNum (2 servers of 8).
        assert_eq!(A2_V2.counts_len(&shape, 48), 32 + 2 * 48 * 2 * 2);
        for route in [A3_V2, A3_V1, A2_V1] {
            assert_eq!(route.counts_len(&shape, 48), 32);
        }
        assert_eq!(A3_V2.assist_len((40, 3, 2)), 40 * 128);
        assert_eq!(A2_V1.assist_len((40, 3, 2)), 6);
        let ids = [3, -1, 0, 5];
        assert_eq!(
            A3_V2.mask(&ids, (2, 2, 2)),
            Some((vec![1, 0, 1, 1], vec![2, 2]))
        );
        assert_eq!(A2_V2.mask(&ids, (2, 2, 2)), Some((vec![1, 1], vec![2])));
        assert_eq!(A2_V2.mask(&[], (1, 2, 0)), Some((vec![0], vec![1])));
        assert_eq!(A3_V1.mask(&ids, (2, 2, 2)), None);
        let codes: Vec<i32> = [A3_V1, A3_V2, A2_V1, A2_V2].map(Route::code).to_vec();
        assert_eq!(codes, [1, 2, 3, 4]);
    }
}
