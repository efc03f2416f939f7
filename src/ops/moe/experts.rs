//! The experts' GEMMs with `aclnnGroupedMatmulV4`: rows sorted by expert (the contiguous
//! layout), one weight matrix per expert, fp32 accumulation.

use crate::aclnn::{
    AclElement, AclTensor, AclTensorList, GmmAct, GroupListType, GroupType, GroupedMatmulV4, Plan,
    SplitItem,
};
use crate::error::{Error, Result};
use crate::kernels::{MatmulShape, WeightLayout};
use crate::runtime::{DeviceSlice, DeviceSliceMut, Stream};

/// `out[r] = x[r] · W_e` for each row r of expert e's group, with `shape.m` the rows: `x` is
/// `[m, k]`, `weights` is `[experts, k, n]` ([`WeightLayout::KN`]) or `[experts, n, k]`
/// ([`WeightLayout::NK`], as checkpoints store them), `counts` (`[experts]`) the rows of each
/// group, `out` `[m, n]`. The counts must sum to `m` (the operator's rule, checked when it
/// runs): after [`dispatch_local`](super::dispatch_local), pass the local rows only.
pub fn grouped_matmul<T: AclElement>(
    stream: &Stream,
    shape: MatmulShape,
    layout: WeightLayout,
    x: &impl DeviceSlice<T>,
    weights: &impl DeviceSlice<T>,
    counts: &impl DeviceSlice<i64>,
    out: &mut impl DeviceSliceMut<T>,
) -> Result<()> {
    let MatmulShape { m: rows, n, k } = shape;
    let experts = counts.len();
    let want = crate::error::elements("expert weights", &[experts, k, n])?;
    if experts == 0 || weights.len() != want {
        return Err(Error::invalid(
            format!(
                "{} weight elements for {experts} experts of {k}×{n}",
                weights.len()
            ),
            format!("{want} elements"),
        ));
    }
    if rows == 0 || n == 0 {
        return Ok(());
    }
    let tx = AclTensorList::new(vec![AclTensor::new(x, &[rows, k])?])?;
    let tw = AclTensorList::new(vec![match layout {
        WeightLayout::KN => AclTensor::new(weights, &[experts, k, n])?,
        WeightLayout::NK => AclTensor::transposed(weights, &[experts, n, k])?,
    }])?;
    let tcounts = AclTensor::new(counts, &[experts])?;
    let mut tout = AclTensorList::new(vec![AclTensor::new_mut(out, &[rows, n])?])?;
    let null_list = std::ptr::null::<ascend_sys::aclTensorList>();
    let out_list = tout.as_mut_ptr();
    let plan =
        Plan::new::<GroupedMatmulV4>(stream, &[&tx, &tw, &tcounts, &tout], |f, ws, exec| {
            // SAFETY: live list and tensor handles, NULL for every absent option; one output
            // tensor (splitItem 3), split along M (groupType 0), counts (groupListType 1), no act.
            unsafe {
                f(
                    tx.as_ptr(),
                    tw.as_ptr(),
                    null_list,
                    null_list,
                    null_list,
                    null_list,
                    null_list,
                    null_list,
                    tcounts.as_ptr(),
                    null_list,
                    null_list,
                    null_list,
                    SplitItem::Single.value(),
                    GroupType::SplitM.value(),
                    GroupListType::Counts.value(),
                    GmmAct::None.value(),
                    out_list,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    ws,
                    exec,
                )
            }
        })?;
    plan.launch()
}
