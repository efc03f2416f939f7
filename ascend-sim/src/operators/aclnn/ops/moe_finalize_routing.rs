//! aclnnMoeFinalizeRoutingV2: out[i] = x1[i] + x2[i] + Σ_k scales[i,k] · (expandedX[row(i,k)] +
//! bias[expertIdx[i,k]]), where row(i,k) = expandedRowIdx[i + k·rows] for dropPadMode 0/1 (the V1
//! column layout) and expandedRowIdx[i·K + k] for 2/3 (the V2 row layout). Accumulated in fp32.

use std::sync::Arc;

use super::Planned;
use crate::base::error::{SimError, SimResult};
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;

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

    let mut inputs = vec![
        ("expandedX", expanded_x),
        ("expandedRowIdx", expanded_row_idx),
    ];
    let mut slots = [None; 5];
    let optional = [
        ("x1", x1),
        ("x2", x2),
        ("bias", bias),
        ("scales", scales),
        ("expertIdx", expert_idx),
    ];
    for (slot, (name, t)) in optional.into_iter().enumerate() {
        if let Some(t) = t {
            slots[slot] = Some(inputs.len());
            inputs.push((name, t));
        }
    }
    let run = Arc::new(move |inputs: &[TensorView], outputs: &[TensorView]| {
        let read = |slot: Option<usize>| slot.map(|i| inputs[i].read_f32());
        // Float tensors (fp32, fp16, bf16: the rules) are exact in f32, the accumulation type.
        let expanded = inputs[0].read_f32();
        let row_idx = inputs[1].read_i64();
        let (x1, x2) = (read(slots[0]), read(slots[1]));
        let (bias, scales) = (read(slots[2]), read(slots[3]));
        let expert_idx = slots[4].map(|i| inputs[i].read_i64());
        let mut out = vec![0f32; rows * hidden];
        for i in 0..rows {
            let acc = &mut out[i * hidden..(i + 1) * hidden];
            for residual in [&x1, &x2].into_iter().flatten() {
                for (a, v) in acc.iter_mut().zip(&residual[i * hidden..]) {
                    *a += *v;
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
                let w = scales.as_ref().map_or(1.0, |s| s[i * k + j]);
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
                    let v = src[h] + b.map_or(0.0, |b| b[h]);
                    acc[h] += w * v;
                }
            }
        }
        outputs[0].write_f32(&out)
    });
    Ok(Planned::new(0, inputs, vec![("out", out)], run))
}

#[cfg(test)]
mod tests {
    use ascend_sys::{ACL_FLOAT, ACL_FORMAT_ND, ACL_INT32, aclDataType};

    use super::*;

    /// A dense description; the data address is unused when the operator runs on host views.
    fn desc(dims: &[i64], dtype: aclDataType) -> TensorDesc {
        let mut strides = vec![1i64; dims.len()];
        for i in (0..dims.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * dims[i + 1];
        }
        TensorDesc {
            dims: dims.to_vec(),
            strides,
            offset: 0,
            dtype,
            format: ACL_FORMAT_ND,
            storage_elems: dims.iter().product(),
            storage_dims: dims.to_vec(),
            data: 0,
        }
    }

    #[test]
    fn combines_weighted_rows_and_residual_on_host_views() {
        // 2 tokens, hidden 3, top-2, row layout (dropPadMode 2): token i's j-th expert row is
        // expandedRowIdx[i·2 + j]. Every value is a small dyadic, so f32 sums are exact.
        let args = Args {
            expanded_x: desc(&[4, 3], ACL_FLOAT),
            expanded_row_idx: desc(&[4], ACL_INT32),
            x1: Some(desc(&[2, 3], ACL_FLOAT)),
            x2: None,
            bias: None,
            scales: Some(desc(&[2, 2], ACL_FLOAT)),
            expert_idx: None,
            out: desc(&[2, 3], ACL_FLOAT),
        };
        let planned = plan(args, 2).unwrap();
        let mut expanded: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut row_idx = vec![3i32, 0, 2, 1];
        let mut x1 = vec![0.5f32; 6];
        let mut scales = vec![0.25f32, 0.75, 1.0, 2.0];
        let mut out = vec![f32::NAN; 6];
        let inputs = [
            TensorView::host(&mut expanded, &[4, 3]).unwrap(),
            TensorView::host(&mut row_idx, &[4]).unwrap(),
            TensorView::host(&mut x1, &[2, 3]).unwrap(),
            TensorView::host(&mut scales, &[2, 2]).unwrap(),
        ];
        let outputs = [TensorView::host(&mut out, &[2, 3]).unwrap()];
        (planned.run)(&inputs, &outputs).unwrap();
        drop(outputs);
        let row = |r: usize| (0..3).map(move |h| (r * 3 + h) as f32);
        let want: Vec<f32> = row(3)
            .zip(row(0))
            .map(|(a, b)| 0.5 + 0.25 * a + 0.75 * b)
            .chain(row(2).zip(row(1)).map(|(a, b)| 0.5 + a + 2.0 * b))
            .collect();
        assert_eq!(out, want);
    }
}
