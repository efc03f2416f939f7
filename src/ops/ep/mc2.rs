//! The low-latency dispatch and combine on the MC2 operators (`aclnnMoeDistributeDispatchV2` /
//! `aclnnMoeDistributeCombineV2`), where their documented limits fit (cann-api-facts §4.7 and
//! the ops' docs; no shared experts, no TP): on Atlas A3 in its form (`commAlg` NULL), on
//! Atlas A2 (910B) with `commAlg` "fullmesh" ([`Form`]).
//!
//! * **When.** [`form`] decides from what every rank shares (the SoC, the shape, the payload
//!   kind, `max_tokens_per_rank`, the communicator's buffer size, whether the CANN in use has
//!   the ops), so every rank takes the same path. Elsewhere the portable all-to-all-v path
//!   runs. A2's mask is per token, so there a `-1` id cannot travel masked: [`usable`] asks
//!   every rank (one all-reduce of a flag) and all fall back if any routing holds one.
//! * **Their own communicator.** The ops' EP communicator may run nothing else, so they run on
//!   a communicator split once from the caller's ([`Comm::mc2`]).
//! * **Layout.** The ops put a rank's rows in `[A, H]` grouped by local expert; the slabs of
//!   the masked layout are copied from there (one device copy per expert). `-1` ids travel
//!   as expert 0 masked off by the 2-D `xActiveMask`; a rank without tokens sends one masked
//!   row (the ops need `BS ≥ 1`).
//! * **What stays opaque.** The rows' sources (`assistInfoForCombine`, `epRecvCounts`) are
//!   documented as values to hand to combine, not to read, so [`LowLatencyHandle::recv_src`]
//!   (super::LowLatencyHandle::recv_src) is `None` on this path. Within an expert, rows arrive
//!   in an order the documentation does not state.

use half::bf16;

use super::EpShape;
use crate::aclnn::{
    AclBool, AclTensor, Mc2Combine, Mc2Dispatch, Mc2Group, MoeDistributeCombineV2,
    MoeDistributeDispatchV2, Operator,
};
use crate::error::{Error, Result};
use crate::runtime::comm::{Comm, ReduceOp};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// The ops' limits on A3 (the doc's shape-variable table).
const MAX_RANKS: usize = 768;
const MAX_EXPERTS: usize = 1024;
const HIDDEN: std::ops::RangeInclusive<usize> = 1024..=8192;
const MAX_BS: usize = 512;
const MAX_K: usize = 16;
/// The ops' limits on A2 with "fullmesh" (the A2 notes of the ops' docs).
const A2_RANKS: [usize; 5] = [16, 32, 64, 128, 256];
const A2_MAX_EXPERTS: usize = 512;
const A2_MAX_LOCAL_EXPERTS: usize = 24;
const A2_MAX_HIDDEN: usize = 7168;
const A2_MAX_BS: usize = 256;
/// Devices per A2 server (Atlas 800T A2), for the docs' `serverNum` in A2's counts length:
/// `R / 8`. How hardware counts servers of a rank table is UNVERIFIED.
const A2_SERVER_DEVICES: usize = 8;
/// `HCCL_BUFFSIZE`'s default, in MB.
const DEFAULT_BUFFSIZE_MB: u64 = 200;

/// The documented form of the MC2 ops a call takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// Atlas A3: `commAlg` NULL, a 2-D `[BS, K]` mask, counts `[R·L]`.
    A3,
    /// Atlas A2 with `commAlg` "fullmesh": a 1-D `[BS]` mask, counts
    /// `[E + 2·globalBs·K·serverNum]` (the counts first).
    A2Fullmesh,
}

/// What a dispatch on the MC2 ops keeps for its combine.
pub(super) struct Mc2Handle {
    form: Form,
    /// Rows of the ops' `[A, H]` buffers.
    rows: usize,
    /// `[BS, K]` ids with −1 made 0, and the mask that keeps them out.
    ids: DeviceBuffer<i32>,
    mask: DeviceBuffer<u8>,
    mask_dims: Vec<usize>,
    /// The ops' opaque bookkeeping, handed from dispatch to combine.
    assist: DeviceBuffer<i32>,
    recv_counts: DeviceBuffer<i32>,
    /// `[L]` rows per local expert, in `[A, H]` order.
    per_expert: Vec<usize>,
    /// `BS`: this rank's tokens, or 1 for a rank without any.
    bs: usize,
    global_bs: usize,
}

/// The form of the MC2 ops whose documented limits fit this call on every rank (see the module
/// docs), if any.
pub(super) fn form(
    comm: &Comm,
    shape: &EpShape,
    bf16_payload: bool,
    max_tokens: usize,
) -> Option<Form> {
    let c = shape.config;
    let (r, e, h, k) = (c.num_ranks, c.num_experts, shape.hidden, shape.top_k);
    let l = c.local_experts();
    let common =
        bf16_payload && e % r == 0 && (1..=MAX_K).contains(&k) && k <= e && max_tokens >= 1;
    let buffer = comm.buffer_size_mb();
    let device = comm.device();
    let soc = device.soc_name().ok()?;
    let form = if soc.starts_with("Ascend910_93") {
        let fits = (2..=MAX_RANKS).contains(&r)
            && (1..=MAX_EXPERTS).contains(&e)
            && HIDDEN.contains(&h)
            && max_tokens <= MAX_BS
            && buffsize_fits(a3_buffer_bytes((h, k, l, r), max_tokens), buffer);
        fits.then_some(Form::A3)
    } else if soc.starts_with("Ascend910B") {
        let fits = A2_RANKS.contains(&r)
            && (1..=A2_MAX_EXPERTS).contains(&e)
            && l <= A2_MAX_LOCAL_EXPERTS
            && (1..=A2_MAX_HIDDEN).contains(&h)
            && h % 32 == 0
            && max_tokens <= A2_MAX_BS
            && buffsize_fits(a2_buffer_bytes((h, k, l, r), max_tokens), buffer);
        fits.then_some(Form::A2Fullmesh)
    } else {
        None
    };
    let api = device.inner.api;
    let has_ops = MoeDistributeDispatchV2::available(api).is_ok()
        && MoeDistributeCombineV2::available(api).is_ok();
    form.filter(|_| common && has_ops)
}

/// [`form`], and on A2 also that no rank routes a token to `-1` (A2's mask is per token):
/// every rank passes its `topk_idx`; one all-reduce of a flag on `comm` when the A2 form fits.
pub(super) fn usable(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    max_tokens: usize,
    topk_idx: &[i32],
) -> Result<Option<Form>> {
    let Some(form) = form(comm, shape, true, max_tokens) else {
        return Ok(None);
    };
    if form == Form::A3 {
        return Ok(Some(form));
    }
    let unrouted = stream.upload(&[i32::from(topk_idx.iter().any(|&e| e < 0))])?;
    let mut any = stream.alloc_pooled::<i32>(1)?;
    comm.all_reduce(stream, &unrouted, &mut any, ReduceOp::Max)?;
    Ok((any.to_vec()?[0] == 0).then_some(form))
}

/// The A3 buffer formula: 2·(L·maxBS·ep·Align512(Align32(2H)+64) + K·maxBS·Align512(2H)) bytes.
fn a3_buffer_bytes((h, k, l, r): (usize, usize, usize, usize), max_bs: usize) -> u64 {
    let align = |v: usize, to: usize| v.div_ceil(to) * to;
    let need =
        2 * (l * max_bs * r * align(align(2 * h, 32) + 64, 512) + k * max_bs * align(2 * h, 512));
    need as u64
}

/// The A2 "fullmesh" formula: 2·(maxBS·ep·min(L, K)·H·2 + 2 MB) bytes.
fn a2_buffer_bytes((h, k, l, r): (usize, usize, usize, usize), max_bs: usize) -> u64 {
    2 * ((max_bs * r * l.min(k) * h * 2) as u64 + (2 << 20))
}

/// Whether `need` bytes fit the communicator's buffer (its configured size, else
/// `HCCL_BUFFSIZE`, else 200 MB; the MC2 communicator is split with the caller's configured
/// size), which must be 2 MB at least.
fn buffsize_fits(need: u64, configured_mb: Option<u32>) -> bool {
    let env = || {
        std::env::var("HCCL_BUFFSIZE")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mb = configured_mb
        .map(u64::from)
        .or_else(env)
        .unwrap_or(DEFAULT_BUFFSIZE_MB);
    mb >= 2 && need <= mb.saturating_mul(1 << 20)
}

/// The EP communicator's name and what both ops are told of the group.
struct Group {
    name: std::ffi::CString,
    ranks: i64,
    rank: i64,
    experts: i64,
    /// NULL on A3, "fullmesh" on A2.
    alg: Option<&'static std::ffi::CStr>,
}

impl Group {
    /// The ops' view, with `global_bs` tokens in all.
    fn with_batch(&self, global_bs: usize) -> Mc2Group<'_> {
        Mc2Group {
            name: &self.name,
            ranks: self.ranks,
            rank: self.rank,
            experts: self.experts,
            global_bs: global_bs as i64,
            comm_alg: self.alg,
        }
    }
}

fn group(comm: &Comm, shape: &EpShape, form: Form) -> Result<Group> {
    let name = comm.name()?;
    let name = std::ffi::CString::new(name.clone())
        .map_err(|_| Error::invalid(format!("communicator name {name:?}"), "a name without NUL"))?;
    Ok(Group {
        name,
        ranks: i64::from(comm.size()),
        rank: i64::from(comm.rank()),
        experts: shape.config.num_experts as i64,
        alg: match form {
            Form::A3 => None,
            Form::A2Fullmesh => Some(c"fullmesh"),
        },
    })
}

impl Form {
    /// The mask's shape for `bs` tokens of top-`k`: per pair on A3, per token on A2.
    fn mask_dims(self, bs: usize, k: usize) -> Vec<usize> {
        match self {
            Form::A3 => vec![bs, k],
            Form::A2Fullmesh => vec![bs],
        }
    }

    /// The length of `epRecvCounts` / `epSendCounts` (`global_bs` tokens in all).
    fn counts_len(self, shape: &EpShape, global_bs: usize) -> usize {
        let (r, e) = (shape.config.num_ranks, shape.config.num_experts);
        match self {
            Form::A3 => e,
            Form::A2Fullmesh => e + 2 * global_bs * shape.top_k * (r / A2_SERVER_DEVICES).max(1),
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
    (max_tokens, int8, form): (usize, bool, Form),
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
    let g = group(ep, shape, form)?;
    // A rank without tokens sends one masked row: the ops need BS ≥ 1.
    let bs = t.max(1);
    let mut ids = vec![0i32; bs * k];
    let mut mask = vec![0u8; bs * k];
    for (f, &e) in topk_idx.iter().enumerate() {
        ids[f] = e.max(0);
        mask[f] = u8::from(e >= 0);
    }
    if form == Form::A2Fullmesh {
        // Per token ([`usable`] saw no −1 id on any rank): all, or none on a rank without.
        mask = vec![u8::from(t > 0); bs];
    }
    let mask_dims = form.mask_dims(bs, k);
    let padded;
    let x = if t == 0 {
        padded = stream.alloc_pooled_zeroed::<bf16>(h)?;
        &padded
    } else {
        x
    };
    let global_bs = max_tokens * r;
    let rows = global_bs * l.min(k);
    let counts_len = form.counts_len(shape, global_bs);
    let ids = stream.upload(&ids)?;
    let mask = stream.upload(&mask)?;
    // bf16 rows, or INT8 codes with a scale per row.
    let mut expand = Expanded::alloc(stream, int8, rows, h)?;
    let mut assist = stream.alloc_pooled::<i32>(rows * 128)?;
    let mut nums = stream.alloc_pooled::<i64>(l)?;
    let mut recv_counts = stream.alloc_pooled::<i32>(counts_len)?;
    {
        let tx = AclTensor::new(x, &[bs, h])?;
        let tids = AclTensor::new(&ids, &[bs, k])?;
        let tmask = AclTensor::from_bytes::<AclBool>(&mask, &mask_dims)?;
        let (tex, tscales) = match &mut expand {
            Mc2Rows::Bf16(e) => (AclTensor::new_mut(e, &[rows, h])?, None),
            Mc2Rows::Int8 { codes, scales } => (
                AclTensor::new_mut(codes, &[rows, h])?,
                Some(AclTensor::new_mut(scales, &[rows])?),
            ),
        };
        let tassist = AclTensor::new_mut(&mut assist, &[rows * 128])?;
        let tnums = AclTensor::new_mut(&mut nums, &[l])?;
        let trecv = AclTensor::new_mut(&mut recv_counts, &[counts_len])?;
        Mc2Dispatch {
            group: g.with_batch(global_bs),
            x: &tx,
            expert_ids: &tids,
            mask: &tmask,
            expand_x: &tex,
            dynamic_scales: tscales.as_ref(),
            assist_info: &tassist,
            expert_token_nums: &tnums,
            recv_counts: &trecv,
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
        form,
        rows,
        ids,
        mask,
        mask_dims,
        assist,
        recv_counts,
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
    let g = group(ep, shape, handle.form)?;
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
        let tassist = AclTensor::new(&handle.assist, &[handle.rows * 128])?;
        let tcounts = AclTensor::new(&handle.recv_counts, &[handle.recv_counts.len()])?;
        let tw = AclTensor::new(weights, &[bs, k])?;
        let tmask = AclTensor::from_bytes::<AclBool>(&handle.mask, &handle.mask_dims)?;
        let tout = AclTensor::new_mut(&mut out, &[bs, h])?;
        Mc2Combine {
            group: g.with_batch(handle.global_bs),
            expand_x: &tex,
            expert_ids: &tids,
            assist_info: &tassist,
            send_counts: &tcounts,
            weights: &tw,
            mask: &tmask,
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
