//! aclnnMoeFinalizeRoutingV2: out[i] = x1[i] + x2[i] + Σ_k scales[i,k] · (expandedX[row(i,k)] +
//! bias[expertIdx[i,k]]), where row(i,k) = expandedRowIdx[i + k·rows] for dropPadMode 0/1 (the V1
//! column layout) and expandedRowIdx[i·K + k] for 2/3 (the V2 row layout). Accumulated in fp32.

use std::sync::Arc;

use super::Planned;
use crate::base::error::{SimError, SimResult};
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;
use crate::runtime::machine::Machine;

/// The tensors of one call.
pub(crate) struct Args {
    pub(crate) expanded_x: TensorDesc,
    pub(crate) expanded_row_idx: TensorDesc,
    pub(crate) x1: Option<TensorDesc>,
    pub(crate) x2: Option<TensorDesc>,
    pub(crate) bias: Option<TensorDesc>,
    pub(crate) scales: Option<TensorDesc>,
    pub(crate) expert_idx: Option<TensorDesc>,
    pub(crate) out: TensorDesc,
}

/// Plans the operator, whose arguments passed the rules (`moe-finalize-routing-v2.*`).
pub(crate) fn plan(args: Args, drop_pad_mode: i64) -> SimResult<Planned> {
    let Args {
        expanded_x,
        expanded_row_idx,
        x1,
        x2,
        bias,
        scales,
        expert_idx,
        out,
    } = args;
    let (rows, hidden) = (out.dim(0), out.dim(1));
    let padded = drop_pad_mode == 1 || drop_pad_mode == 3;
    let k = scales.as_ref().map_or(1, |s| s.dim(1));
    let expanded_rows = expanded_x.dims[..expanded_x.rank() - 1]
        .iter()
        .product::<i64>() as usize;

    let mut inputs = vec![expanded_x, expanded_row_idx];
    let mut slots = [None; 5];
    for (slot, t) in [x1, x2, bias, scales, expert_idx].into_iter().enumerate() {
        if let Some(t) = t {
            slots[slot] = Some(inputs.len());
            inputs.push(t);
        }
    }
    let run = Arc::new(
        move |machine: &Machine, inputs: &[TensorDesc], outputs: &[TensorDesc]| {
            let read = |slot: Option<usize>, what: &str| -> SimResult<Option<Vec<f64>>> {
                slot.map(|i| TensorView::bind(machine, what, &inputs[i]).map(|b| b.read_f64()))
                    .transpose()
            };
            let expanded = TensorView::bind(machine, "expandedX", &inputs[0])?.read_f64();
            let row_idx = TensorView::bind(machine, "expandedRowIdx", &inputs[1])?.read_i64();
            let (x1, x2) = (read(slots[0], "x1")?, read(slots[1], "x2")?);
            let (bias, scales) = (read(slots[2], "bias")?, read(slots[3], "scales")?);
            let expert_idx = slots[4]
                .map(|i| TensorView::bind(machine, "expertIdx", &inputs[i]).map(|b| b.read_i64()))
                .transpose()?;
            let mut out = vec![0f32; rows * hidden];
            for i in 0..rows {
                let acc = &mut out[i * hidden..(i + 1) * hidden];
                for residual in [&x1, &x2].into_iter().flatten() {
                    for (a, v) in acc.iter_mut().zip(&residual[i * hidden..]) {
                        *a += *v as f32;
                    }
                }
                for j in 0..k {
                    let flat = if drop_pad_mode <= 1 {
                        i + j * rows
                    } else {
                        i * k + j
                    };
                    let row = row_idx[flat];
                    if row < 0 && padded {
                        continue; // dropped by capacity
                    }
                    if row < 0 || row as usize >= expanded_rows {
                        return Err(SimError::param(format!(
                            "expandedRowIdx[{flat}] = {row} is outside the {expanded_rows} expanded rows"
                        )));
                    }
                    let w = scales.as_ref().map_or(1.0, |s| s[i * k + j]) as f32;
                    let src = &expanded[row as usize * hidden..(row as usize + 1) * hidden];
                    let b = match (&bias, &expert_idx) {
                        (Some(bias), Some(ids)) => {
                            let e = ids[i * k + j];
                            let experts = bias.len() / hidden;
                            if e < 0 || e as usize >= experts {
                                return Err(SimError::param(format!(
                                    "expertIdx {e} is outside 0..{experts}"
                                )));
                            }
                            Some(&bias[e as usize * hidden..(e as usize + 1) * hidden])
                        }
                        _ => None,
                    };
                    for h in 0..hidden {
                        let v = src[h] as f32 + b.map_or(0.0, |b| b[h] as f32);
                        acc[h] += w * v;
                    }
                }
            }
            let out: Vec<f64> = out.into_iter().map(f64::from).collect();
            TensorView::bind(machine, "out", &outputs[0])?.write_f64(&out)
        },
    );
    Ok(Planned {
        workspace: 0,
        inputs,
        outputs: vec![out],
        run,
    })
}
