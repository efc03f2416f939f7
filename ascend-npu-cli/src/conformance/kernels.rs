//! Our Ascend C kernels: SwiGLU and the cube matmul, in every element type they take.

use ascend_npu::kernels::{MatmulInput, MatmulOutput, MatmulShape, SwigluElement, WeightLayout};
use ascend_npu::reference::moe::silu;
use half::{bf16, f16};

use super::{Family, Run};
use crate::check::{self, Elem, FP32};

/// `silu(gate) · up`, elementwise.
pub const SWIGLU: Family = Family {
    name: "swiglu",
    summary: "SwiGLU kernel, fp32/fp16/bf16, vs silu(g)·u in f64",
    kernels: true,
    aclnn: &[],
    run: swiglu,
};

/// `C = A · B` and `C = A · Bᵀ` on the cube.
pub const MATMUL: Family = Family {
    name: "matmul",
    summary: "cube matmul, fp16/bf16 in, fp32/bf16 out, B as [K,N] and [N,K], vs f64 sums",
    kernels: true,
    aclnn: &[],
    run: matmul,
};

fn swiglu(run: &mut Run<'_>) {
    for len in run.preset.swiglu.clone() {
        swiglu_case::<f32>(run, len);
        swiglu_case::<f16>(run, len);
        swiglu_case::<bf16>(run, len);
    }
}

fn swiglu_case<T: Elem + SwigluElement>(run: &mut Run<'_>, len: usize) {
    let case = format!("{} n={len}", T::FORMAT.name);
    run.case("swiglu", &case, |run, op, case| {
        let mut rng = run.rng(case);
        // Inputs up to ±8 reach silu's saturated and linear parts.
        let gate: Vec<T> = check::round_to(&rng.vec(len, 8.0));
        let up: Vec<T> = check::round_to(&rng.vec(len, 8.0));
        let stream = &run.session.stream;
        let kernels = run.kernels()?;
        let device = |e: ascend_npu::Error| e.to_string();
        let g = stream.upload(&gate).map_err(device)?;
        let u = stream.upload(&up).map_err(device)?;
        let mut out = stream.alloc_uninit::<T>(len).map_err(device)?;
        ascend_npu::kernels::swiglu(kernels, stream, &g, &u, &mut out).map_err(device)?;
        let got = check::widen(&out.to_vec().map_err(device)?);
        let want: Vec<f64> = (0..len)
            .map(|i| silu(gate[i].to_f64()) * up[i].to_f64())
            .collect();
        let t = T::FORMAT;
        // f32 output is the computation's own result: no rounding after it.
        let u_out = if t.name == FP32.name { 0.0 } else { t.u };
        Ok(check::within(
            op,
            case,
            &got,
            &want,
            // fp32 exp, add, divide and multiply, each about one fp32 rounding (exp's error is
            // damped by the division): 8 fp32 ulps; then one rounding to T, and T's smallest
            // subnormal near zero.
            |i| (8.0 * FP32.u + u_out) * want[i].abs() + t.tiny,
            &format!(
                "fp32 math ≤ 8·2^-24 rel, {} out ({:.1e} rel, {:.1e} abs)",
                t.name, u_out, t.tiny
            ),
        ))
    });
}

fn matmul(run: &mut Run<'_>) {
    for [m, n, k] in run.preset.matmul.clone() {
        let shape = MatmulShape { m, n, k };
        for layout in [WeightLayout::KN, WeightLayout::NK] {
            matmul_case::<f16, f32>(run, shape, layout);
            matmul_case::<f16, bf16>(run, shape, layout);
            matmul_case::<bf16, f32>(run, shape, layout);
            matmul_case::<bf16, bf16>(run, shape, layout);
        }
    }
}

fn matmul_case<I: Elem + MatmulInput, O: Elem + MatmulOutput>(
    run: &mut Run<'_>,
    shape: MatmulShape,
    layout: WeightLayout,
) {
    let MatmulShape { m, n, k } = shape;
    let case = format!(
        "{}→{} {layout:?} m={m} n={n} k={k}",
        I::FORMAT.name,
        O::FORMAT.name
    );
    run.case("matmul", &case, |run, op, case| {
        let mut rng = run.rng(case);
        let a: Vec<I> = check::round_to(&rng.vec(m * k, 1.0));
        let b: Vec<I> = check::round_to(&rng.vec(k * n, 1.0));
        let stream = &run.session.stream;
        let kernels = run.kernels()?;
        let device = |e: ascend_npu::Error| e.to_string();
        let da = stream.upload(&a).map_err(device)?;
        let db = stream.upload(&b).map_err(device)?;
        let mut dc = stream.alloc_uninit::<O>(m * n).map_err(device)?;
        ascend_npu::kernels::matmul(kernels, stream, shape, layout, &da, &db, &mut dc)
            .map_err(device)?;
        let got = check::widen(&dc.to_vec().map_err(device)?);
        let b_at = |kk: usize, j: usize| match layout {
            WeightLayout::KN => b[kk * n + j].to_f64(),
            WeightLayout::NK => b[j * k + kk].to_f64(),
        };
        let (want, magnitude) = check::gemm(m, n, k, |i, kk| a[i * k + kk].to_f64(), b_at);
        let o = O::FORMAT;
        let ku = k as f64 * FP32.u;
        Ok(check::within(
            op,
            case,
            &got,
            &want,
            // fp16/bf16 products are exact in fp32; a K-term fp32 sum in any order is within
            // K·u·Σ|a·b|; then one rounding of the result to the output type.
            |i| ku * magnitude[i] + o.u * (want[i].abs() + ku * magnitude[i]) + o.tiny,
            &format!(
                "exact products, fp32 sum ≤ K·2^-24·Σ|ab| + rounding to {} ({:.1e} rel)",
                o.name, o.u
            ),
        ))
    });
}
