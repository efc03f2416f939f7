//! aclnnMoeFinalizeRoutingV2: out[i] = x1[i] + x2[i] + Σ_k scales[i,k] · (expandedX[row(i,k)] +
//! bias[expertIdx[i,k]]), where row(i,k) = expandedRowIdx[i + k·rows] for dropPadMode 0/1 (the V1
//! column layout) and expandedRowIdx[i·K + k] for 2/3 (the V2 row layout). Accumulated in fp32.

use std::sync::Arc;

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32};

use super::Planned;
use crate::aclnn::data::Bound;
use crate::aclnn::objects::{TensorDesc, invalid};
use crate::error::{SimError, SimResult};

#[allow(clippy::too_many_arguments)]
pub(crate) fn plan(
    expanded_x: TensorDesc,
    expanded_row_idx: TensorDesc,
    x1: Option<TensorDesc>,
    x2: Option<TensorDesc>,
    bias: Option<TensorDesc>,
    scales: Option<TensorDesc>,
    expert_idx: Option<TensorDesc>,
    drop_pad_mode: i64,
    out: TensorDesc,
) -> SimResult<Planned> {
    let floats = [ACL_FLOAT, ACL_FLOAT16, ACL_BF16];
    out.expect("out", 2, &floats)?;
    let (rows, hidden) = (out.dim(0), out.dim(1));
    if !(0..=3).contains(&drop_pad_mode) {
        return Err(invalid(format!(
            "dropPadMode {drop_pad_mode}; expected 0..=3"
        )));
    }
    let padded = drop_pad_mode == 1 || drop_pad_mode == 3;
    expanded_x.expect("expandedX", if padded { 3 } else { 2 }, &[out.dtype])?;
    if expanded_x.dims.last() != Some(&(hidden as i64)) {
        return Err(invalid(format!(
            "expandedX has dims {:?}; expected hidden {hidden} last",
            expanded_x.dims
        )));
    }
    let k = match &scales {
        Some(s) => {
            s.expect("scales", 2, &floats)?;
            if s.dim(0) != rows {
                return Err(invalid(format!(
                    "scales has dims {:?}; expected {rows} rows",
                    s.dims
                )));
            }
            s.dim(1)
        }
        None => 1,
    };
    expanded_row_idx.expect("expandedRowIdx", 1, &[ACL_INT32])?;
    expanded_row_idx.expect_dims("expandedRowIdx", &[rows * k])?;
    for (name, t) in [("x1", &x1), ("x2", &x2)] {
        if let Some(t) = t {
            t.expect(name, 2, &[out.dtype])?;
            t.expect_dims(name, &[rows, hidden])?;
        }
    }
    if let Some(b) = &bias {
        b.expect("bias", 2, &[out.dtype])?;
        if b.dim(1) != hidden {
            return Err(invalid(format!(
                "bias has dims {:?}; expected [experts, {hidden}]",
                b.dims
            )));
        }
        let e = expert_idx
            .as_ref()
            .ok_or_else(|| invalid("bias needs expertIdx"))?;
        e.expect("expertIdx", 2, &[ACL_INT32])?;
        e.expect_dims("expertIdx", &[rows, k])?;
    }
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
    let run = Arc::new(move |inputs: &[TensorDesc], outputs: &[TensorDesc]| {
        let read = |slot: Option<usize>, what: &str| -> SimResult<Option<Vec<f64>>> {
            slot.map(|i| Bound::new(what, &inputs[i]).map(|b| b.read_f64()))
                .transpose()
        };
        let expanded = Bound::new("expandedX", &inputs[0])?.read_f64();
        let row_idx = Bound::new("expandedRowIdx", &inputs[1])?.read_i64();
        let (x1, x2) = (read(slots[0], "x1")?, read(slots[1], "x2")?);
        let (bias, scales) = (read(slots[2], "bias")?, read(slots[3], "scales")?);
        let expert_idx = slots[4]
            .map(|i| Bound::new("expertIdx", &inputs[i]).map(|b| b.read_i64()))
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
        Bound::new("out", &outputs[0])?.write_f64(&out)
    });
    Ok(Planned {
        workspace: 0,
        inputs,
        outputs: vec![out],
        run,
    })
}
