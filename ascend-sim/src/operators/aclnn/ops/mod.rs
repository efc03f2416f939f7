//! The aclnn operators the library calls, with their documented semantics.

pub(crate) mod cast;
pub(crate) mod fia_mla;
pub(crate) mod grouped_matmul;
pub(crate) mod matmul;
pub(crate) mod mla_prolog;
pub(crate) mod moe_distribute;
pub(crate) mod moe_finalize_routing;
pub(crate) mod moe_gating_top_k;
pub(crate) mod moe_init_routing;
pub(crate) mod moe_init_routing_v3;
pub(crate) mod weight_quant_matmul;

use super::executor::{Names, Run};
use super::objects::TensorDesc;

/// What phase one hands to the executor.
pub(crate) struct Planned {
    pub(crate) workspace: u64,
    pub(crate) inputs: Vec<TensorDesc>,
    pub(crate) outputs: Vec<TensorDesc>,
    pub(crate) names: Names,
    pub(crate) run: Run,
}

impl Planned {
    /// A plan from named inputs and outputs.
    pub(crate) fn new(
        workspace: u64,
        inputs: Vec<(&'static str, TensorDesc)>,
        outputs: Vec<(&'static str, TensorDesc)>,
        run: Run,
    ) -> Planned {
        let (input_names, inputs) = inputs.into_iter().unzip();
        let (output_names, outputs) = outputs.into_iter().unzip();
        Planned {
            workspace,
            inputs,
            outputs,
            names: Names {
                inputs: input_names,
                outputs: output_names,
            },
            run,
        }
    }
}

/// Top-k of `scores` (indices), highest first; ties go to the lowest index. NaN never wins
/// over a number (it sorts last), so a NaN score cannot displace a real one.
pub(crate) fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => a.cmp(&b),
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => y
                .partial_cmp(&x)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b)),
        }
    });
    order.truncate(k);
    order
}

/// Every flattened `[rows, k]` expert id must name one of `experts` experts: ids come from the
/// caller's data, so a bad one fails the launch with its position (the stream's sticky error).
pub(crate) fn check_expert_ids(
    ids: &[i64],
    k: usize,
    experts: i64,
) -> crate::base::error::SimResult<()> {
    match ids.iter().position(|e| !(0..experts).contains(e)) {
        Some(i) => Err(crate::base::error::SimError::param(format!(
            "expertIdx[{}][{}] = {} is outside 0..{experts} (expertNum)",
            i / k,
            i % k,
            ids[i]
        ))),
        None => Ok(()),
    }
}
