//! aclnnMoeGatingTopK: scores (sigmoid or softmax), optional selection bias, group selection,
//! top-k, weights gathered from the unbiased scores, renormalised only for sigmoid scores
//! (normType 1), then scaled (cann-api-facts errata 2). The argument rules are in
//! `crate::rules` (`moe-gating-topk.*`).

use std::sync::Arc;

use super::{Planned, top_k};
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;

/// The attributes the computation uses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) k: i64,
    pub(crate) k_group: i64,
    pub(crate) group_count: i64,
    pub(crate) group_select_mode: i64,
    pub(crate) norm_type: i64,
    pub(crate) out_flag: bool,
    pub(crate) routed_scaling_factor: f64,
    pub(crate) eps: f64,
}

impl Attrs {
    /// The attributes the kernel of CANN release `version` computes with: 8.1.RC1's kernel
    /// (`moe_gating_top_k_e_k_fullload.h`) ignores normType and groupSelectMode and always
    /// computes sigmoid scores, top-2-sum group scores and renormalised weights (cann-api-facts
    /// errata 2; rule moe-gating-topk.cann-8.1-kernel).
    pub(crate) fn as_computed_by(self, version: ascend_sys::CannVersion) -> Attrs {
        if version < ascend_sys::CannVersion::V8_2_RC1 {
            Attrs {
                norm_type: 1,
                group_select_mode: 1,
                ..self
            }
        } else {
            self
        }
    }
}

pub(crate) fn plan(
    x: TensorDesc,
    bias: Option<TensorDesc>,
    a: Attrs,
    y: TensorDesc,
    expert_idx: TensorDesc,
    out: TensorDesc,
) -> SimResult<Planned> {
    let (rows, experts) = (x.dim(0), x.dim(1));
    let mut inputs = vec![("x", x)];
    inputs.extend(bias.map(|b| ("bias", b)));
    let has_bias = inputs.len() == 2;
    let run = Arc::new(move |inputs: &[TensorView], outputs: &[TensorView]| {
        let x = inputs[0].read_f64();
        let bias = if has_bias {
            Some(inputs[1].read_f64())
        } else {
            None
        };
        let (weights, ids, norm) = route(&x, bias.as_deref(), rows, experts, &a);
        outputs[0].write_f64(&weights)?;
        outputs[1].write_i64(&ids)?;
        // outOut is always passed but written only when asked for.
        if a.out_flag {
            outputs[2].write_f64(&norm)?;
        }
        Ok(())
    });
    Ok(Planned::new(
        0,
        inputs,
        vec![("yOut", y), ("expertIdxOut", expert_idx), ("outOut", out)],
        run,
    ))
}

/// Returns (weights, expert ids, normalised scores) for every row.
fn route(
    x: &[f64],
    bias: Option<&[f64]>,
    rows: usize,
    experts: usize,
    a: &Attrs,
) -> (Vec<f64>, Vec<i64>, Vec<f64>) {
    let k = a.k as usize;
    let groups = a.group_count as usize;
    let per_group = experts / groups;
    let mut weights = Vec::with_capacity(rows * k);
    let mut ids = Vec::with_capacity(rows * k);
    let mut norm_all = Vec::with_capacity(rows * experts);
    for row in x.chunks(experts) {
        let norm: Vec<f64> = if a.norm_type == 1 {
            row.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect()
        } else {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = row.iter().map(|&v| (v - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.iter().map(|e| e / sum).collect()
        };
        let biased: Vec<f64> = match bias {
            Some(b) => norm.iter().zip(b).map(|(s, b)| s + b).collect(),
            None => norm.clone(),
        };
        let group_scores: Vec<f64> = biased
            .chunks(per_group)
            .map(|g| {
                let best = top_k(g, 2);
                if a.group_select_mode == 1 {
                    best.iter().map(|&i| g[i]).sum()
                } else {
                    g[best[0]]
                }
            })
            .collect();
        let kept = top_k(&group_scores, a.k_group as usize);
        let masked: Vec<f64> = (0..experts)
            .map(|e| {
                if kept.contains(&(e / per_group)) {
                    biased[e]
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        let chosen = top_k(&masked, k);
        // The kernel gathers the weights from the unbiased scores (deepseek-ops §1.2) and
        // renormalises them only for sigmoid scores (ops-transformer moe_gating_top_k_generalized.h).
        let picked: Vec<f64> = chosen.iter().map(|&e| norm[e]).collect();
        let divisor = if a.norm_type == 1 {
            picked.iter().sum::<f64>() + a.eps
        } else {
            1.0
        };
        weights.extend(picked.iter().map(|w| w / divisor * a.routed_scaling_factor));
        ids.extend(chosen.iter().map(|&e| e as i64));
        norm_all.extend(norm);
    }
    (weights, ids, norm_all)
}
