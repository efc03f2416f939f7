//! Combine with `aclnnMoeFinalizeRoutingV2`: `out[t] = shared[t] + Σ_k w[t,k] ·
//! y[expanded_row_idx[t·K+k]]`, accumulated in fp32.

use crate::aclnn::{AclElement, AclTensor, FinalizeLayout, MoeFinalizeRoutingV2, Plan};
use crate::error::Result;
use crate::runtime::{DeviceSlice, DeviceSliceMut, Stream};

/// Writes into `out` (`[tokens, hidden]`) the weighted sum of each token's expert outputs `y`
/// (`[tokens·top_k, hidden]`, in dispatch order), plus `shared` (`[tokens, hidden]`) if given.
/// The weights (`[tokens, top_k]`) may be fp32 while `y` is bf16: the sum is fp32 either way.
/// (Whether CANN's operator accepts mixed types is unverified; the simulator does.)
#[allow(clippy::too_many_arguments)]
pub fn combine<T: AclElement, W: AclElement>(
    stream: &Stream,
    y: &impl DeviceSlice<T>,
    expanded_row_idx: &impl DeviceSlice<i32>,
    weights: &impl DeviceSlice<W>,
    shared: Option<&impl DeviceSlice<T>>,
    out: &mut impl DeviceSliceMut<T>,
    tokens: usize,
    hidden: usize,
    top_k: usize,
) -> Result<()> {
    let pairs = crate::error::elements("token-expert pairs", &[tokens, top_k])?;
    combine_rows(
        stream,
        y,
        &[pairs, hidden],
        expanded_row_idx,
        weights,
        shared,
        out,
        tokens,
        hidden,
        top_k,
        FinalizeLayout::RowDropless,
    )
}

/// [`combine`] for a [`dispatch_padded`](super::dispatch_padded) layout: `y` is
/// `[experts, capacity, hidden]`; dropped pairs (row −1) contribute nothing.
#[allow(clippy::too_many_arguments)]
pub fn combine_padded<T: AclElement, W: AclElement>(
    stream: &Stream,
    y: &impl DeviceSlice<T>,
    experts: usize,
    capacity: usize,
    expanded_row_idx: &impl DeviceSlice<i32>,
    weights: &impl DeviceSlice<W>,
    shared: Option<&impl DeviceSlice<T>>,
    out: &mut impl DeviceSliceMut<T>,
    tokens: usize,
    hidden: usize,
    top_k: usize,
) -> Result<()> {
    combine_rows(
        stream,
        y,
        &[experts, capacity, hidden],
        expanded_row_idx,
        weights,
        shared,
        out,
        tokens,
        hidden,
        top_k,
        FinalizeLayout::RowPadded,
    )
}

/// `RowDropless`: dropless rows `[tokens·top_k, hidden]`; `RowPadded`: `[E, C, hidden]`; both
/// index pairs row-major (t·K+k), as aclnnMoeInitRoutingV2 lays them out.
#[allow(clippy::too_many_arguments)]
fn combine_rows<T: AclElement, W: AclElement>(
    stream: &Stream,
    y: &impl DeviceSlice<T>,
    y_dims: &[usize],
    expanded_row_idx: &impl DeviceSlice<i32>,
    weights: &impl DeviceSlice<W>,
    shared: Option<&impl DeviceSlice<T>>,
    out: &mut impl DeviceSliceMut<T>,
    tokens: usize,
    hidden: usize,
    top_k: usize,
    drop_pad_mode: FinalizeLayout,
) -> Result<()> {
    let pairs = crate::error::elements("token-expert pairs", &[tokens, top_k])?;
    if tokens == 0 || hidden == 0 {
        return Ok(());
    }
    let ty = AclTensor::new(y, y_dims)?;
    let tidx = AclTensor::new(expanded_row_idx, &[pairs])?;
    let tw = AclTensor::new(weights, &[tokens, top_k])?;
    let tshared = shared
        .map(|s| AclTensor::new(s, &[tokens, hidden]))
        .transpose()?;
    let tout = AclTensor::new_mut(out, &[tokens, hidden])?;
    let plan = Plan::new::<MoeFinalizeRoutingV2>(
        stream,
        &[&ty, &tidx, &tw, &tshared, &tout],
        |f, ws, exec| {
            // SAFETY: live tensor handles; dropPadMode 2/3 = the row-major (t·K+k) index
            // layout aclnnMoeInitRoutingV2 produces, dropless or padded.
            unsafe {
                f(
                    ty.as_ptr(),
                    tidx.as_ptr(),
                    tshared.as_ref().map_or(std::ptr::null(), AclTensor::as_ptr),
                    std::ptr::null(),
                    std::ptr::null(),
                    tw.as_ptr(),
                    std::ptr::null(),
                    drop_pad_mode.value(),
                    tout.as_ptr(),
                    ws,
                    exec,
                )
            }
        },
    )?;
    plan.launch()
}
