//! aclnnWeightQuantBatchMatmulV2, the A2/A3 INT8 subset: `y [M, N] = x [M, K] @
//! ((weight [K, N] + antiquantOffset) · antiquantScale) + bias`, x FLOAT16 or BF16, weight INT8
//! (any strides, so a `[N, K]` weight works through a transposed view), per-tensor,
//! per-channel or per-group scales (and offsets) in x's type. The INT4/INT32-packed weights,
//! FRACTAL_NZ, the UINT64/INT64 scales and the quantized INT8 output are not simulated and are
//! rejected; the hardware rules are in `crate::rules` (`weight-quant-bmm-v2.*`).
//!
//! Arithmetic: each weight is dequantized in f32 (`(w + offset) · scale`) and rounded to x's
//! type, the type the cube multiplies in; the products are summed in fp32 (exact products of
//! fp16/bf16 values), the bias added in fp32, and the sum rounded once to y's type. The doc
//! does not state the dequantization's precision: rounding to x's type is the cube's input
//! format, so the simulator's result is what a kernel feeding the cube would give.

use std::sync::Arc;

use ascend_sys::{ACL_BF16, ACL_FLOAT16};

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::{TensorDesc, invalid};
use crate::operators::aclnn::view::TensorView;

/// The tensors of a call (the rules have checked presence, dtypes and shapes).
pub(crate) struct Tensors {
    pub(crate) x: TensorDesc,
    pub(crate) weight: TensorDesc,
    pub(crate) scale: TensorDesc,
    pub(crate) offset: Option<TensorDesc>,
    pub(crate) bias: Option<TensorDesc>,
    pub(crate) y: TensorDesc,
}

/// How one scale (and offset) covers the weight.
#[derive(Clone, Copy, Debug)]
enum Scales {
    /// One for the whole weight.
    Tensor,
    /// One per output column.
    Channel,
    /// One per `group` rows of K and output column (`[⌈K/group⌉, N]`).
    Group(usize),
}

impl Scales {
    fn index(self, kk: usize, j: usize, n: usize) -> usize {
        match self {
            Scales::Tensor => 0,
            Scales::Channel => j,
            Scales::Group(g) => (kk / g) * n + j,
        }
    }
}

pub(crate) fn plan(t: Tensors, group_size: i64) -> SimResult<Planned> {
    let n = t.weight.dim(1);
    let scales = if group_size > 0 {
        Scales::Group(group_size as usize)
    } else if t.scale.numel() == 1 && n != 1 {
        Scales::Tensor
    } else {
        Scales::Channel
    };
    if t.x.dtype != ACL_FLOAT16 && t.x.dtype != ACL_BF16 {
        return Err(invalid("x must be FLOAT16 or BF16 (checked by the rules)"));
    }
    let has_offset = t.offset.is_some();
    let has_bias = t.bias.is_some();
    let mut inputs = vec![
        ("x", t.x),
        ("weight", t.weight),
        ("antiquantScale", t.scale),
    ];
    if let Some(o) = t.offset {
        inputs.push(("antiquantOffsetOptional", o));
    }
    if let Some(b) = t.bias {
        inputs.push(("biasOptional", b));
    }
    let run = Arc::new(move |i: &[TensorView], o: &[TensorView]| {
        let offset = has_offset.then(|| &i[3]);
        let bias = has_bias.then(|| &i[3 + usize::from(has_offset)]);
        weight_quant_matmul(
            &Operands {
                x: &i[0],
                weight: &i[1],
                scale: &i[2],
                offset,
                bias,
                scales,
            },
            &o[0],
        )
    });
    Ok(Planned::new(0, inputs, vec![("y", t.y)], run))
}

/// The bound views of one launch.
struct Operands<'v, 'a> {
    x: &'v TensorView<'a>,
    weight: &'v TensorView<'a>,
    scale: &'v TensorView<'a>,
    offset: Option<&'v TensorView<'a>>,
    bias: Option<&'v TensorView<'a>>,
    scales: Scales,
}

fn weight_quant_matmul(op: &Operands, y: &TensorView) -> SimResult<()> {
    let (m, k) = (op.x.dims()[0], op.x.dims()[1]);
    let n = op.weight.dims()[1];
    let xs = op.x.read_f32();
    let w = op.weight.read_f64();
    let scale = op.scale.read_f64();
    let offset = op.offset.map(|o| o.read_f64());
    let round = |v: f64| -> f32 {
        if op.x.dtype() == ACL_BF16 {
            half::bf16::from_f64(v).to_f32()
        } else {
            half::f16::from_f64(v).to_f32()
        }
    };
    // The dequantized weight [K, N], in x's type, as the cube reads it.
    let wd: Vec<f32> = (0..k * n)
        .map(|kn| {
            let (kk, j) = (kn / n, kn % n);
            let s = op.scales.index(kk, j, n);
            let off = offset.as_ref().map_or(0.0, |o| o[s]);
            round((w[kn] + off) * scale[s])
        })
        .collect();
    let mut out = match op.bias {
        Some(b) => {
            let b = b.read_f32();
            (0..m * n).map(|ij| b[ij % n]).collect()
        }
        None => vec![0f32; m * n],
    };
    if m > 0 && n > 0 && k > 0 {
        y.count_macs((m * n * k) as u64);
        // SAFETY: `xs` is [M, K] row-major, `wd` [K, N] row-major, `out` [M, N] row-major;
        // the three buffers are distinct. beta = 1 adds the products to the bias.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                xs.as_ptr(),
                k as isize,
                1,
                wd.as_ptr(),
                n as isize,
                1,
                1.0,
                out.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    }
    y.write_f32(&out)
}

#[cfg(test)]
mod tests {
    use half::bf16;

    use super::*;

    /// Per-channel scales and offsets with integer-valued results: exact, so a wrong index
    /// (scale of another column, offset not added) shows.
    #[test]
    fn per_channel_scale_and_offset_dequantize_each_column() {
        let (m, k, n) = (2, 3, 2);
        let mut x: Vec<bf16> = [1.0, 2.0, 3.0, -1.0, 0.5, 2.0]
            .iter()
            .map(|&v| bf16::from_f32(v))
            .collect();
        let mut w: Vec<i8> = vec![1, -2, 3, 4, -5, 6];
        let mut scale = vec![bf16::from_f32(2.0), bf16::from_f32(0.5)];
        let mut offset = vec![bf16::from_f32(1.0), bf16::from_f32(-2.0)];
        let mut y = vec![bf16::ZERO; m * n];
        let want: Vec<f32> = (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..k)
                    .map(|kk| {
                        let d = (f32::from(w[kk * n + j]) + offset[j].to_f32()) * scale[j].to_f32();
                        x[i * k + kk].to_f32() * d
                    })
                    .sum()
            })
            .collect();
        // The views borrow the buffers until the end of this block.
        {
            let op = Operands {
                x: &TensorView::host(&mut x, &[m, k]).unwrap(),
                weight: &TensorView::host(&mut w, &[k, n]).unwrap(),
                scale: &TensorView::host(&mut scale, &[n]).unwrap(),
                offset: Some(&TensorView::host(&mut offset, &[n]).unwrap()),
                bias: None,
                scales: Scales::Channel,
            };
            let vy = TensorView::host(&mut y, &[m, n]).unwrap();
            weight_quant_matmul(&op, &vy).unwrap();
        }
        let got: Vec<f32> = y.iter().map(|v| v.to_f32()).collect();
        assert_eq!(got, want);
    }
}
