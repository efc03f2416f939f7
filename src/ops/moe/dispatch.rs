//! Dispatch with `aclnnMoeInitRoutingV2`: a stable sort of the (token, k) pairs by expert (flat
//! index t·K+k), each token's row gathered to its expanded position, and per-expert counts.

use crate::aclnn::{
    AclElement, AclIntArray, AclTensor, DropPad, MoeInitRoutingV2, MoeInitRoutingV3, Plan,
    QuantMode, RowIdxType, TokenCounts, TokensNumType,
};
use crate::error::{Error, Result};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

use super::MoeShape;

/// How the expert GEMMs want the group sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupSizes {
    /// int64 rows per expert (`aclnnGroupedMatmulV4`).
    Counts,
    /// int32 inclusive cumulative sums (the FP8 GEMM's contiguous layout).
    Cumsum,
}

/// The group sizes a dispatch produced.
pub enum GroupSizesBuffer {
    /// `[experts]` int64 rows per expert.
    Counts(DeviceBuffer<i64>),
    /// `[experts]` int32 inclusive cumulative sums.
    Cumsum(DeviceBuffer<i32>),
}

/// The expanded rows and the bookkeeping to combine them again.
pub struct Dispatch<T> {
    /// `[tokens·top_k, hidden]`: rows sorted by expert.
    pub expanded_x: DeviceBuffer<T>,
    /// `[tokens·top_k]`: for flat pair t·K+k, the expanded row holding it.
    pub expanded_row_idx: DeviceBuffer<i32>,
    /// The experts' group sizes, as asked for.
    pub group_sizes: GroupSizesBuffer,
}

/// Dispatches `x` (`[tokens, hidden]`) by `ids` (`[tokens, top_k]`, each in `0..experts`),
/// with the group sizes in the form `sizes` asks for.
///
/// With no tokens or a zero hidden size nothing reaches the operator (there are no rows to
/// move, and combine reads none): every output keeps its length and is zero-filled. This holds
/// for [`dispatch_padded`] and [`dispatch_local`] too.
pub fn dispatch<T: AclElement + bytemuck::Zeroable>(
    stream: &Stream,
    shape: MoeShape,
    sizes: GroupSizes,
    x: &impl DeviceSlice<T>,
    ids: &impl DeviceSlice<i32>,
) -> Result<Dispatch<T>> {
    shape.check_top_k()?;
    let MoeShape {
        tokens,
        hidden,
        top_k,
        experts,
    } = shape;
    let rows = shape.pairs()?;
    let mut expanded_x = stream
        .alloc_pooled_zeroed::<T>(crate::error::elements("expanded rows", &[rows, hidden])?)?;
    let mut expanded_row_idx = stream.alloc_pooled_zeroed::<i32>(rows)?;
    // aclnnMoeInitRoutingV2 writes INT32 counts or cumsums only (rule
    // moe-init-routing-v2.counts-int32); INT64 counts are cast from INT32 ones below.
    let mut sizes32 = stream.alloc_pooled_zeroed::<i32>(experts)?;
    if tokens > 0 && hidden > 0 {
        let tx = AclTensor::new(x, &[tokens, hidden])?;
        let tids = AclTensor::new(ids, &[tokens, top_k])?;
        let tex = AclTensor::new_mut(&mut expanded_x, &[rows, hidden])?;
        let tidx = AclTensor::new_mut(&mut expanded_row_idx, &[rows])?;
        let tsizes = AclTensor::new_mut(&mut sizes32, &[experts])?;
        let mode = InitRoutingMode {
            experts,
            capacity: 0,
            drop_pad: DropPad::Dropless,
            counts: match sizes {
                GroupSizes::Counts => TokenCounts::Counts,
                GroupSizes::Cumsum => TokenCounts::Cumsum,
            },
        };
        init_routing(stream, [&tx, &tids, &tex, &tidx], Some(&tsizes), mode)?;
    }
    let group_sizes = match sizes {
        GroupSizes::Counts => {
            let mut counts = stream.alloc_pooled_zeroed::<i64>(experts)?;
            crate::aclnn::cast(stream, &sizes32, &mut counts)?;
            GroupSizesBuffer::Counts(counts)
        }
        GroupSizes::Cumsum => GroupSizesBuffer::Cumsum(sizes32),
    };
    Ok(Dispatch {
        expanded_x,
        expanded_row_idx,
        group_sizes,
    })
}

/// Dispatch in drop/pad mode: every expert gets exactly `capacity` rows.
pub struct PaddedDispatch<T> {
    /// `[experts, capacity, hidden]`: each expert's first `capacity` pairs (in flat-index
    /// order), then zero rows.
    pub expanded_x: DeviceBuffer<T>,
    /// `[tokens·top_k]`: for flat pair t·K+k, its row `e·capacity + j`, or −1 if dropped.
    pub expanded_row_idx: DeviceBuffer<i32>,
    /// The capacity per expert.
    pub capacity: usize,
}

/// Dispatches like [`dispatch`], but with a fixed `capacity` per expert: pairs beyond it are
/// dropped (their combine contribution is zero) and unused rows are zero padding, so expert
/// GEMMs have static shapes.
pub fn dispatch_padded<T: AclElement + bytemuck::Zeroable>(
    stream: &Stream,
    shape: MoeShape,
    capacity: usize,
    x: &impl DeviceSlice<T>,
    ids: &impl DeviceSlice<i32>,
) -> Result<PaddedDispatch<T>> {
    let MoeShape {
        tokens,
        hidden,
        top_k,
        experts,
    } = shape;
    if experts == 0 || top_k == 0 || top_k > experts || capacity == 0 {
        return Err(Error::invalid(
            format!("top_k {top_k} of {experts} experts with capacity {capacity}"),
            "1 <= top_k <= experts and a capacity of at least 1",
        ));
    }
    let padded_len = experts
        .checked_mul(capacity)
        .and_then(|r| r.checked_mul(hidden))
        .ok_or_else(|| {
            Error::invalid(
                format!("{experts}·{capacity}·{hidden} elements"),
                "a size that fits",
            )
        })?;
    let rows = shape.pairs()?;
    let mut expanded_x = stream.alloc_pooled_zeroed::<T>(padded_len)?;
    let mut expanded_row_idx = stream.alloc_pooled_zeroed::<i32>(rows)?;
    if tokens == 0 || hidden == 0 {
        return Ok(PaddedDispatch {
            expanded_x,
            expanded_row_idx,
            capacity,
        });
    }
    let tx = AclTensor::new(x, &[tokens, hidden])?;
    let tids = AclTensor::new(ids, &[tokens, top_k])?;
    let tex = AclTensor::new_mut(&mut expanded_x, &[experts, capacity, hidden])?;
    let tidx = AclTensor::new_mut(&mut expanded_row_idx, &[rows])?;
    let mode = InitRoutingMode {
        experts,
        capacity,
        drop_pad: DropPad::Padded,
        counts: TokenCounts::None,
    };
    init_routing(stream, [&tx, &tids, &tex, &tidx], None, mode)?;
    drop((tx, tids, tex, tidx));
    Ok(PaddedDispatch {
        expanded_x,
        expanded_row_idx,
        capacity,
    })
}

/// What `aclnnMoeInitRoutingV2` is asked for.
struct InitRoutingMode {
    experts: usize,
    /// Rows per expert in drop/pad mode.
    capacity: usize,
    drop_pad: DropPad,
    /// The count output asked for (dropless only).
    counts: TokenCounts,
}

/// Plans and launches `aclnnMoeInitRoutingV2` over `[x, ids, expanded_x, expanded_row_idx]`.
fn init_routing(
    stream: &Stream,
    [x, ids, expanded_x, row_idx]: [&AclTensor<'_>; 4],
    counts: Option<&AclTensor<'_>>,
    mode: InitRoutingMode,
) -> Result<()> {
    let plan = Plan::new::<MoeInitRoutingV2>(
        stream,
        &[x, ids, expanded_x, row_idx, &counts],
        |f, ws, exec| {
            // SAFETY: live tensor handles (NULL for absent outputs); every row active
            // (activeNum 0); dropless or drop/pad with the given capacity.
            unsafe {
                f(
                    x.as_ptr(),
                    ids.as_ptr(),
                    0,
                    mode.capacity as i64,
                    mode.experts as i64,
                    mode.drop_pad.value(),
                    mode.counts.value(),
                    false,
                    expanded_x.as_ptr(),
                    row_idx.as_ptr(),
                    counts.map_or(std::ptr::null(), AclTensor::as_ptr),
                    std::ptr::null(),
                    ws,
                    exec,
                )
            }
        },
    )?;
    plan.launch()
}

/// Dispatch of the pairs routed to a range of experts (those local to this device under
/// expert parallelism), with `aclnnMoeInitRoutingV3`.
pub struct LocalDispatch<T> {
    /// `[tokens·top_k, hidden]`: the local pairs' rows sorted by expert come first; the tail is
    /// zero (the operator does not write it).
    pub expanded_x: DeviceBuffer<T>,
    /// `[tokens·top_k]`: for flat pair t·K+k, its row, or −1 if its expert is not local.
    pub expanded_row_idx: DeviceBuffer<i32>,
    /// `[end − start]` int64 rows per local expert.
    pub counts: DeviceBuffer<i64>,
}

/// Dispatches only the pairs whose expert is in `experts_range` (of `shape.experts` in all).
pub fn dispatch_local<T: AclElement + bytemuck::Zeroable>(
    stream: &Stream,
    shape: MoeShape,
    experts_range: std::ops::Range<usize>,
    x: &impl DeviceSlice<T>,
    ids: &impl DeviceSlice<i32>,
) -> Result<LocalDispatch<T>> {
    let MoeShape {
        tokens,
        hidden,
        top_k,
        experts,
    } = shape;
    if experts == 0
        || top_k == 0
        || top_k > experts
        || experts_range.is_empty()
        || experts_range.end > experts
    {
        return Err(Error::invalid(
            format!("top_k {top_k} of {experts} experts, local range {experts_range:?}"),
            "1 <= top_k <= experts and a non-empty range within 0..experts",
        ));
    }
    let rows = shape.pairs()?;
    let mut expanded_x = stream
        .alloc_pooled_zeroed::<T>(crate::error::elements("expanded rows", &[rows, hidden])?)?;
    let mut expanded_row_idx = stream.alloc_pooled_zeroed::<i32>(rows)?;
    let mut counts = stream.alloc_pooled_zeroed::<i64>(experts_range.len())?;
    if tokens == 0 || hidden == 0 {
        return Ok(LocalDispatch {
            expanded_x,
            expanded_row_idx,
            counts,
        });
    }
    let tx = AclTensor::new(x, &[tokens, hidden])?;
    let tids = AclTensor::new(ids, &[tokens, top_k])?;
    let tex = AclTensor::new_mut(&mut expanded_x, &[rows, hidden])?;
    let tidx = AclTensor::new_mut(&mut expanded_row_idx, &[rows])?;
    // Required even without quantisation (rule moe-init-routing-v3.expanded-scale-required);
    // its contents are not used.
    let mut expanded_scale = stream.alloc_pooled::<f32>(rows)?;
    let tscale = AclTensor::new_mut(&mut expanded_scale, &[rows])?;
    let local = experts_range.len();
    let tcounts = AclTensor::new_mut(&mut counts, &[local])?;
    let range = AclIntArray::new(
        stream,
        &[experts_range.start as i64, experts_range.end as i64],
    )?;
    let null = std::ptr::null::<ascend_sys::aclTensor>();
    let plan = Plan::new::<MoeInitRoutingV3>(
        stream,
        &[&tx, &tids, &tex, &tidx, &tcounts, &tscale],
        |f, ws, exec| {
            // SAFETY: live handles (NULL for the quantisation inputs); dropless with every pair
            // active (activeNum = rows·k; 0 is a tiling error), counts (type 1), no quantisation
            // (-1), gather row index (type 0: per pair its row, -1 if not local).
            unsafe {
                f(
                    tx.as_ptr(),
                    tids.as_ptr(),
                    null,
                    null,
                    rows as i64,
                    0,
                    experts as i64,
                    DropPad::Dropless.value(),
                    TokensNumType::Count.value(),
                    true,
                    QuantMode::None.value(),
                    range.as_ptr(),
                    RowIdxType::Gather.value(),
                    tex.as_ptr(),
                    tidx.as_ptr(),
                    tcounts.as_ptr(),
                    tscale.as_ptr(),
                    ws,
                    exec,
                )
            }
        },
    )?;
    plan.launch()?;
    drop((tx, tids, tex, tidx, tcounts, tscale, range));
    Ok(LocalDispatch {
        expanded_x,
        expanded_row_idx,
        counts,
    })
}
