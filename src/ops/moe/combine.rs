//! Combine with `aclnnMoeFinalizeRoutingV2`: `out[t] = shared[t] + Σ_k w[t,k] ·
//! y[expanded_row_idx[t·K+k]]`, accumulated in fp32.

use crate::aclnn::{AclElement, AclTensor, FinalizeLayout, MoeFinalizeRoutingV2, Plan};
use crate::error::Result;
use crate::runtime::{DeviceSliceMut, DeviceView, Stream};

use super::MoeShape;

/// What a combine reads: the experts' output rows, where each pair's row is, the pairs'
/// weights and, optionally, the shared expert's output to add.
pub struct CombineInputs<'a, T, W> {
    /// The experts' outputs, in the layout of the dispatch that made the rows:
    /// `[tokens·top_k, hidden]` for [`combine`], `[experts, capacity, hidden]` for
    /// [`combine_padded`].
    pub y: DeviceView<'a, T>,
    /// `[tokens·top_k]`: for flat pair t·K+k, its row of `y` (−1: dropped), as the dispatch
    /// returned it.
    pub expanded_row_idx: DeviceView<'a, i32>,
    /// `[tokens, top_k]` routing weights. They may be fp32 while `y` is bf16: the sum is
    /// fp32 either way. (Whether CANN's operator accepts mixed types is unverified; the
    /// simulator does.)
    pub weights: DeviceView<'a, W>,
    /// `[tokens, hidden]`, added to every token's sum when given.
    pub shared: Option<DeviceView<'a, T>>,
}

/// Writes into `out` (`[tokens, hidden]`) the weighted sum of each token's expert outputs
/// (`inputs.y` of a [`dispatch`](super::dispatch) layout), plus the shared expert's output if
/// given.
pub fn combine<T: AclElement, W: AclElement>(
    stream: &Stream,
    shape: MoeShape,
    inputs: CombineInputs<'_, T, W>,
    out: &mut impl DeviceSliceMut<T>,
) -> Result<()> {
    let pairs = shape.pairs()?;
    combine_rows(
        stream,
        shape,
        (&[pairs, shape.hidden], FinalizeLayout::RowDropless),
        inputs,
        out,
    )
}

/// [`combine`] for a [`dispatch_padded`](super::dispatch_padded) layout: `inputs.y` is
/// `[experts, capacity, hidden]`; dropped pairs (row −1) contribute nothing.
pub fn combine_padded<T: AclElement, W: AclElement>(
    stream: &Stream,
    shape: MoeShape,
    capacity: usize,
    inputs: CombineInputs<'_, T, W>,
    out: &mut impl DeviceSliceMut<T>,
) -> Result<()> {
    combine_rows(
        stream,
        shape,
        (
            &[shape.experts, capacity, shape.hidden],
            FinalizeLayout::RowPadded,
        ),
        inputs,
        out,
    )
}

/// `RowDropless`: dropless rows `[tokens·top_k, hidden]`; `RowPadded`: `[E, C, hidden]`; both
/// index pairs row-major (t·K+k), as aclnnMoeInitRoutingV2 lays them out.
fn combine_rows<T: AclElement, W: AclElement>(
    stream: &Stream,
    shape: MoeShape,
    (y_dims, drop_pad_mode): (&[usize], FinalizeLayout),
    inputs: CombineInputs<'_, T, W>,
    out: &mut impl DeviceSliceMut<T>,
) -> Result<()> {
    let MoeShape {
        tokens,
        hidden,
        top_k,
        ..
    } = shape;
    let CombineInputs {
        y,
        expanded_row_idx,
        weights,
        shared,
    } = inputs;
    let pairs = crate::error::elements("token-expert pairs", &[tokens, top_k])?;
    if tokens == 0 || hidden == 0 {
        return Ok(());
    }
    let ty = AclTensor::new(&y, y_dims)?;
    let tidx = AclTensor::new(&expanded_row_idx, &[pairs])?;
    let tw = AclTensor::new(&weights, &[tokens, top_k])?;
    let tshared = shared
        .as_ref()
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
