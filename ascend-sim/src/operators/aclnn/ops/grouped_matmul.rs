//! aclnnGroupedMatmulV4, the MoE-expert subset: one x `[M, K]` split along M into groups,
//! one weight tensor `[E, K, N]` (any strides, so `[E, N, K]` storage works through a
//! transposed view), one output `[M, N]`; `groupList` holds cumulative sums (type 0) or counts
//! (type 1), which must sum to M (cann-api-facts errata 5). fp32 accumulation. Bias,
//! quantisation and fused activations are not simulated and are rejected; the hardware rules
//! are in `crate::rules` (`grouped-matmul-v4.*`).

use std::sync::Arc;

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16};

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::{TensorDesc, invalid};
use crate::operators::aclnn::view::TensorView;
use crate::rules;
use crate::runtime::machine::Machine;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) split_item: i64,
    pub(crate) group_type: i64,
    pub(crate) group_list_type: i64,
    pub(crate) act_type: i64,
}

pub(crate) fn plan(
    x: Vec<TensorDesc>,
    weight: Vec<TensorDesc>,
    group_list: TensorDesc,
    a: Attrs,
    out: Vec<TensorDesc>,
) -> SimResult<Planned> {
    let [x] = <[TensorDesc; 1]>::try_from(x).map_err(|v| {
        invalid(format!(
            "x lists {} tensors; the simulator takes one [M, K] tensor",
            v.len()
        ))
    })?;
    let [w] = <[TensorDesc; 1]>::try_from(weight).map_err(|v| {
        invalid(format!(
            "weight lists {} tensors; the simulator takes one [E, K, N] tensor",
            v.len()
        ))
    })?;
    let [y] = <[TensorDesc; 1]>::try_from(out).map_err(|v| {
        invalid(format!(
            "out lists {} tensors; expected one [M, N] tensor",
            v.len()
        ))
    })?;
    if a.split_item != 2 && a.split_item != 3 {
        return Err(invalid(format!(
            "splitItem {}; the simulator supports 2 or 3 (one output tensor)",
            a.split_item
        )));
    }
    if a.group_type != 0 {
        return Err(invalid(format!(
            "groupType {}; expected 0 (split M)",
            a.group_type
        )));
    }
    if a.group_list_type != 0 && a.group_list_type != 1 {
        return Err(invalid(format!(
            "groupListType {}; expected 0 (cumulative sums) or 1 (counts)",
            a.group_list_type
        )));
    }
    if a.act_type != 0 {
        return Err(invalid(format!(
            "actType {}; fused activations are not simulated",
            a.act_type
        )));
    }
    x.expect("x[0]", 2, &[ACL_FLOAT16, ACL_BF16])?;
    w.expect("weight[0]", 3, &[x.dtype])?;
    y.expect("out[0]", 2, &[x.dtype, ACL_FLOAT])?;
    // Shapes (weight [E, K, N], groupList [E], out [M, N]) are hardware rules, checked already.
    let (m, k) = (x.dim(0), x.dim(1));
    let (experts, n) = (w.dim(0), w.dim(2));
    let cumsum = a.group_list_type == 0;

    let run = Arc::new(
        move |machine: &Machine, inputs: &[TensorDesc], outputs: &[TensorDesc]| {
            let x = TensorView::bind(machine, "x[0]", &inputs[0])?.read_f64();
            let w = TensorView::bind(machine, "weight[0]", &inputs[1])?.read_f64();
            let list = TensorView::bind(machine, "groupList", &inputs[2])?.read_i64();
            let mut ends = Vec::with_capacity(experts);
            let mut end = 0i64;
            for (e, &v) in list.iter().enumerate() {
                end = if cumsum { v } else { end + v };
                if v < 0 || ends.last().is_some_and(|&prev| end < prev) {
                    return Err(rules::violation(
                        "grouped-matmul-v4.group-sum-equals-m",
                        format!("groupList[{e}] = {v} (group {e} would end at row {end})"),
                    ));
                }
                ends.push(end);
            }
            if end != m as i64 {
                return Err(rules::violation(
                    "grouped-matmul-v4.group-sum-equals-m",
                    format!("groups ending at row {end} for M = {m}"),
                ));
            }
            // The groups cover every row (their sizes sum to M).
            let out_bound = TensorView::bind(machine, "out[0]", &outputs[0])?;
            let mut y = vec![0.0; m * n];
            let mut start = 0usize;
            for (e, &end) in ends.iter().enumerate() {
                for row in start..end as usize {
                    for col in 0..n {
                        // fp16/bf16 products are exact in f32; the sum is an fp32 accumulation.
                        let mut acc = 0f32;
                        for kk in 0..k {
                            acc += (x[row * k + kk] * w[(e * k + kk) * n + col]) as f32;
                        }
                        y[row * n + col] = f64::from(acc);
                    }
                }
                start = end as usize;
            }
            out_bound.write_f64(&y)
        },
    );
    Ok(Planned {
        workspace: 0,
        inputs: vec![x, w, group_list],
        outputs: vec![y],
        run,
    })
}
