//! aclnnMoeGatingTopK: scores (sigmoid or softmax), optional selection bias, group selection,
//! top-k, weights from the unbiased scores normalised and scaled (DeepSeek-V3 `noaux_tc`).

use std::sync::Arc;

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32};

use super::{Planned, top_k};
use crate::aclnn::data::Bound;
use crate::aclnn::objects::{TensorDesc, invalid};
use crate::error::SimResult;

/// The documented limits and attributes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) k: i64,
    pub(crate) k_group: i64,
    pub(crate) group_count: i64,
    pub(crate) group_select_mode: i64,
    pub(crate) renorm: i64,
    pub(crate) norm_type: i64,
    pub(crate) out_flag: bool,
    pub(crate) routed_scaling_factor: f64,
    pub(crate) eps: f64,
}

const MAX_EXPERTS: usize = 2048;

pub(crate) fn plan(
    x: TensorDesc,
    bias: Option<TensorDesc>,
    a: Attrs,
    y: TensorDesc,
    expert_idx: TensorDesc,
    out: Option<TensorDesc>,
) -> SimResult<Planned> {
    let floats = [ACL_FLOAT, ACL_FLOAT16, ACL_BF16];
    x.expect("x", 2, &floats)?;
    let (rows, experts) = (x.dim(0), x.dim(1));
    if experts == 0 || experts > MAX_EXPERTS {
        return Err(invalid(format!(
            "x has {experts} experts; expected 1..={MAX_EXPERTS}"
        )));
    }
    if a.group_count < 1
        || experts % a.group_count as usize != 0
        || experts / a.group_count as usize <= 2
    {
        return Err(invalid(format!(
            "groupCount {} for {experts} experts; expected a divisor leaving more than 2 experts per group",
            a.group_count
        )));
    }
    if a.k_group < 1 || a.k_group > a.group_count {
        return Err(invalid(format!(
            "kGroup {}; expected 1..=groupCount ({})",
            a.k_group, a.group_count
        )));
    }
    let per_group = experts / a.group_count as usize;
    let max_k = a.k_group as usize * per_group;
    if a.k < 1 || a.k as usize > max_k {
        return Err(invalid(format!(
            "k {}; expected 1..=kGroup·experts/groupCount ({max_k})",
            a.k
        )));
    }
    if a.renorm != 0 {
        return Err(invalid(format!("renorm {}; only 0 is supported", a.renorm)));
    }
    if !(0..=1).contains(&a.norm_type) || !(0..=1).contains(&a.group_select_mode) {
        return Err(invalid(format!(
            "normType {} / groupSelectMode {}; expected 0 (softmax / max) or 1 (sigmoid / top-2 sum)",
            a.norm_type, a.group_select_mode
        )));
    }
    if let Some(b) = &bias {
        b.expect("bias", 1, &floats)?;
        b.expect_dims("bias", &[experts])?;
    }
    let k = a.k as usize;
    y.expect("yOut", 2, &[x.dtype])?;
    y.expect_dims("yOut", &[rows, k])?;
    expert_idx.expect("expertIdxOut", 2, &[ACL_INT32])?;
    expert_idx.expect_dims("expertIdxOut", &[rows, k])?;
    if a.out_flag {
        let o = out
            .as_ref()
            .ok_or_else(|| invalid("outFlag is set but outOut is NULL"))?;
        o.expect("outOut", 2, &[ACL_FLOAT])?;
        o.expect_dims("outOut", &[rows, experts])?;
    }

    let mut inputs = vec![x];
    inputs.extend(bias);
    let mut outputs = vec![y, expert_idx];
    if a.out_flag {
        outputs.extend(out);
    }
    let has_bias = inputs.len() == 2;
    let run = Arc::new(move |inputs: &[TensorDesc], outputs: &[TensorDesc]| {
        let x = Bound::new("x", &inputs[0])?.read_f64();
        let bias = if has_bias {
            Some(Bound::new("bias", &inputs[1])?.read_f64())
        } else {
            None
        };
        let (weights, ids, norm) = route(&x, bias.as_deref(), rows, experts, &a);
        Bound::new("yOut", &outputs[0])?.write_f64(&weights)?;
        Bound::new("expertIdxOut", &outputs[1])?.write_i64(&ids)?;
        if a.out_flag {
            Bound::new("outOut", &outputs[2])?.write_f64(&norm)?;
        }
        Ok(())
    });
    Ok(Planned {
        workspace: 0,
        inputs,
        outputs,
        run,
    })
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
        // The kernel gathers the weights from the unbiased scores (deepseek-ops §1.2).
        let picked: Vec<f64> = chosen.iter().map(|&e| norm[e]).collect();
        let sum: f64 = picked.iter().sum();
        weights.extend(
            picked
                .iter()
                .map(|w| w / (sum + a.eps) * a.routed_scaling_factor),
        );
        ids.extend(chosen.iter().map(|&e| e as i64));
        norm_all.extend(norm);
    }
    (weights, ids, norm_all)
}
