//! aclnnMatmul, the 2-D subset: `out [M, N] = self [M, K] @ mat2 [K, N]` (any strides, so a
//! `[N, K]` weight works through a transposed view), FLOAT16 / BF16 / FLOAT, accumulated in
//! fp32 and rounded once to `out`'s type. Batched and broadcast forms (3 to 6 dims) and the
//! HF32 modes are not simulated and are rejected; the hardware rules are in `crate::rules`
//! (`matmul.*`).

use std::sync::Arc;

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::{TensorDesc, invalid};
use crate::operators::aclnn::view::TensorView;

/// `cubeMathType` values the simulator computes: 0 KEEP_DTYPE, 1 ALLOW_FP32_DOWN_PRECISION on
/// fp16/bf16 inputs (no effect there), 4 USE_FP32_ADD. The HF32 modes on FLOAT inputs (1, 3)
/// round the inputs to 11 mantissa bits, which the simulator does not model.
fn simulated_math(cube_math_type: i64, fp32: bool) -> bool {
    match cube_math_type {
        0 | 4 => true,
        1 => !fp32,
        _ => false,
    }
}

pub(crate) fn plan(
    a: TensorDesc,
    b: TensorDesc,
    out: TensorDesc,
    cube_math_type: i64,
) -> SimResult<Planned> {
    if a.rank() != 2 || b.rank() != 2 {
        return Err(invalid(format!(
            "self has {} dims and mat2 {}; the simulator takes the 2-D form only (batched and \
             broadcast matmuls are not simulated)",
            a.rank(),
            b.rank()
        )));
    }
    let fp32 = a.dtype == ascend_sys::ACL_FLOAT;
    if !simulated_math(cube_math_type, fp32) {
        return Err(invalid(format!(
            "cubeMathType {cube_math_type} on {} inputs; the simulator computes KEEP_DTYPE (0), \
             USE_FP32_ADD (4) and ALLOW_FP32_DOWN_PRECISION (1) on fp16/bf16 (HF32 is not \
             simulated)",
            crate::rules::dtype_name(a.dtype)
        )));
    }
    let run = Arc::new(|inputs: &[TensorView], outputs: &[TensorView]| {
        matmul(&inputs[0], &inputs[1], &outputs[0])
    });
    Ok(Planned::new(
        0,
        vec![("self", a), ("mat2", b)],
        vec![("out", out)],
        run,
    ))
}

/// `out = a @ b` with fp32 accumulation (fp16/bf16 products are exact in f32, so only the
/// sums round, in the GEMM's order), rounded once to `out`'s type.
pub(crate) fn matmul(a: &TensorView, b: &TensorView, out: &TensorView) -> SimResult<()> {
    let (m, k) = (a.dims()[0], a.dims()[1]);
    let n = b.dims()[1];
    let mut ab = Vec::new();
    let a_strides = a.read_f32_into(&mut ab);
    let mut bb = Vec::new();
    let b_strides = b.read_f32_into(&mut bb);
    let mut c = vec![0f32; m * n];
    if m > 0 && n > 0 && k > 0 {
        out.count_macs((m * n * k) as u64);
        // SAFETY: `ab` holds the [M, K] matrix at `a_strides` and `bb` the [K, N] matrix at
        // `b_strides` (every index in range, from the views), `c` is [M, N] row-major; the
        // three buffers are distinct.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                ab.as_ptr(),
                a_strides[0],
                a_strides[1],
                bb.as_ptr(),
                b_strides[0],
                b_strides[1],
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    }
    out.write_f32(&c)
}

#[cfg(test)]
mod tests {
    use half::bf16;

    use super::*;

    /// Products of bf16 values are exact in f32 and every partial sum here is a small integer
    /// multiple of 2^-8, exact in f32, so the result is the exact product rounded once.
    #[test]
    fn transposed_b_and_rounding_once_to_bf16() {
        let (m, k, n) = (3, 5, 4);
        let mut a: Vec<bf16> = (0..m * k)
            .map(|i| bf16::from_f32(i as f32 * 0.25 - 1.0))
            .collect();
        // b stored [N, K], viewed as [K, N] with strides (1, K).
        let mut b_nk: Vec<bf16> = (0..n * k)
            .map(|i| bf16::from_f32((i % 7) as f32 * 0.5 - 1.5))
            .collect();
        let mut out = vec![bf16::ZERO; m * n];
        let want: Vec<f32> = (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..k)
                    .map(|kk| a[i * k + kk].to_f32() * b_nk[j * k + kk].to_f32())
                    .sum()
            })
            .collect();
        let va = TensorView::host(&mut a, &[m, k]).unwrap();
        let vb = TensorView::host_strided(&mut b_nk, &[k, n], &[1, k], 0).unwrap();
        let vo = TensorView::host(&mut out, &[m, n]).unwrap();
        matmul(&va, &vb, &vo).unwrap();
        drop(vo);
        let got: Vec<f32> = out.iter().map(|v| v.to_f32()).collect();
        let want: Vec<f32> = want.iter().map(|&w| bf16::from_f32(w).to_f32()).collect();
        assert_eq!(got, want);
    }
}
