//! The operators benchmarked, with the least work each one's maths needs: every input read
//! once, every output written once, one MAC per term of a product, and the vector operations
//! per element of the formula.

use ascend_npu::fp8::{ScaleFormat, quantize_weight};
use ascend_npu::kernels::{MatmulShape, WeightLayout};
use ascend_npu::moe::MoeConfig;
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use ascend_npu::ops::moe::{self, CombineInputs, GroupSizes, MoeShape};
use half::bf16;

use super::{BenchRun, Work};
use crate::check;
use crate::rng::CaseRng;

/// Bytes of one bf16.
const BF16: u64 = 2;
/// Bytes of one f32 or int32.
const F32: u64 = 4;

/// Benchmarks every operator at every shape of the preset.
pub fn run_all(run: &mut BenchRun<'_>) {
    let kernels = match run.session.kernels() {
        Ok(k) => k,
        Err(e) => {
            run.failed("our kernels", e);
            return;
        }
    };
    let stream = run.session.stream.clone();
    let mut rng = CaseRng::new(1, "bench");

    for len in run.preset.swiglu.clone() {
        let n = len as u64;
        let mut set = || -> ascend_npu::Result<_> {
            let g = stream.upload(&check::round_to::<bf16>(&rng.vec(len, 4.0)))?;
            let u = stream.upload(&check::round_to::<bf16>(&rng.vec(len, 4.0)))?;
            Ok((g, u, stream.alloc_uninit::<bf16>(len)?))
        };
        match set() {
            // silu(g)·u = g / (1 + exp(-g)) · u: exp, add, divide, multiply (negation folds
            // into exp's argument): 4 operations per element.
            Ok((g, u, mut out)) => run.measure(
                "swiglu",
                &format!("bf16 n={len}"),
                Work {
                    read_bytes: 2 * n * BF16,
                    written_bytes: n * BF16,
                    cube_macs: 0,
                    vector_ops: 4 * n,
                },
                || ascend_npu::kernels::swiglu(&kernels, &stream, &g, &u, &mut out),
            ),
            Err(e) => run.failed("swiglu", e),
        }
    }

    for [m, n, k] in run.preset.matmul.clone() {
        let shape = MatmulShape { m, n, k };
        let mut set = || -> ascend_npu::Result<_> {
            let a = stream.upload(&check::round_to::<bf16>(&rng.vec(m * k, 1.0)))?;
            let b = stream.upload(&check::round_to::<bf16>(&rng.vec(n * k, 1.0)))?;
            Ok((a, b, stream.alloc_uninit::<bf16>(m * n)?))
        };
        let (mu, nu, ku) = (m as u64, n as u64, k as u64);
        match set() {
            Ok((a, b, mut c)) => run.measure(
                "matmul",
                &format!("bf16 NK m={m} n={n} k={k}"),
                Work {
                    read_bytes: (mu * ku + nu * ku) * BF16,
                    written_bytes: mu * nu * BF16,
                    cube_macs: mu * nu * ku,
                    vector_ops: 0,
                },
                || {
                    ascend_npu::kernels::matmul(
                        &kernels,
                        &stream,
                        shape,
                        WeightLayout::NK,
                        &a,
                        &b,
                        &mut c,
                    )
                },
            ),
            Err(e) => run.failed("matmul", e),
        }
    }

    for [m, n, k] in run.preset.fp8_gemm.clone() {
        let mut set = || -> ascend_npu::Result<_> {
            let w: Vec<f32> = check::round_to(&rng.vec(n * k, 1.0));
            let q = quantize_weight(&w, n, k, ScaleFormat::Fp32)?;
            let a = stream.upload(&check::round_to::<bf16>(&rng.vec(m * k, 1.0)))?;
            Ok((
                Fp8Weight::from_quantized(&stream, &q)?,
                a,
                stream.alloc_uninit::<bf16>(m * n)?,
            ))
        };
        let (mu, nu, ku) = (m as u64, n as u64, k as u64);
        let scales = nu.div_ceil(128) * ku.div_ceil(128);
        match set() {
            // Each weight code is decoded and scaled once (2 vector operations).
            Ok((w, a, mut c)) => run.measure(
                "fp8-gemm",
                &format!("W8A16 bf16 m={m} n={n} k={k}"),
                Work {
                    read_bytes: mu * ku * BF16 + nu * ku + scales * F32,
                    written_bytes: mu * nu * BF16,
                    cube_macs: mu * nu * ku,
                    vector_ops: 2 * nu * ku,
                },
                || {
                    fp8_gemm(
                        &kernels,
                        &stream,
                        m,
                        Fp8Input::Bf16(a.as_view()),
                        &w,
                        Fp8Groups::None,
                        &mut c,
                    )
                },
            ),
            Err(e) => run.failed("fp8-gemm", e),
        }
    }

    for [rows, k] in run.preset.fp8_quant.clone() {
        let x = stream.upload(&check::round_to::<bf16>(&rng.vec(rows * k, 3.0)));
        let (r, ku) = (rows as u64, k as u64);
        match x {
            // |x|, the running max, and x·(1/scale) with its rounding to E4M3: 4 per element.
            Ok(x) => run.measure(
                "fp8-quant",
                &format!("bf16 acts [{rows},{k}]"),
                Work {
                    read_bytes: r * ku * BF16,
                    written_bytes: r * ku + r * ku.div_ceil(128) * F32,
                    cube_macs: 0,
                    vector_ops: 4 * r * ku,
                },
                || {
                    Fp8Activations::quantize(&kernels, &stream, rows, k, ScaleFormat::Fp32, &x)
                        .map(drop)
                },
            ),
            Err(e) => run.failed("fp8-quant", e),
        }
    }

    for case in run.preset.moe.clone() {
        let config = MoeConfig {
            n_routed_experts: case.experts,
            n_group: case.groups,
            topk_group: case.topk_groups,
            top_k: case.top_k,
            ..MoeConfig::deepseek_v3()
        };
        let shape = MoeShape {
            tokens: case.tokens,
            hidden: case.hidden,
            top_k: case.top_k,
            experts: case.experts,
        };
        let (t, h, e, kk) = (
            case.tokens as u64,
            case.hidden as u64,
            case.experts as u64,
            case.top_k as u64,
        );
        let sizes = format!(
            "T={} H={} E={} K={}",
            case.tokens, case.hidden, case.experts, case.top_k
        );
        let mut set = || -> ascend_npu::Result<_> {
            let logits = stream.upload(&check::round_to::<f32>(
                &rng.vec(case.tokens * case.experts, 4.0),
            ))?;
            let bias = stream.upload(&check::round_to::<f32>(&rng.vec(case.experts, 0.5)))?;
            let x = stream.upload(&check::round_to::<bf16>(
                &rng.vec(case.tokens * case.hidden, 1.0),
            ))?;
            let (weights, ids) = moe::route(
                &kernels,
                &stream,
                &config,
                case.tokens,
                &logits,
                Some(&bias),
            )?;
            Ok((logits, bias, x, weights, ids))
        };
        let (logits, bias, x, weights, ids) = match set() {
            Ok(v) => v,
            Err(e) => {
                run.failed("moe", e);
                continue;
            }
        };
        // Routing: sigmoid, bias add, group top-2 sums, top-k, normalisation: about 4
        // operations per logit.
        run.measure(
            "moe-routing",
            &format!("f32 {sizes}"),
            Work {
                read_bytes: (t * e + e) * F32,
                written_bytes: t * kk * 2 * F32,
                cube_macs: 0,
                vector_ops: 4 * t * e,
            },
            || {
                moe::route(
                    &kernels,
                    &stream,
                    &config,
                    case.tokens,
                    &logits,
                    Some(&bias),
                )
                .map(drop)
            },
        );
        run.measure(
            "moe-dispatch",
            &format!("bf16 {sizes}"),
            Work {
                read_bytes: t * h * BF16 + t * kk * F32,
                written_bytes: t * kk * h * BF16 + t * kk * F32 + e * 8,
                cube_macs: 0,
                vector_ops: 0,
            },
            || moe::dispatch(&stream, shape, GroupSizes::Counts, &x, &ids).map(drop),
        );
        let combine = || -> ascend_npu::Result<_> {
            let d = moe::dispatch(&stream, shape, GroupSizes::Counts, &x, &ids)?;
            Ok((d, stream.alloc_uninit::<bf16>(case.tokens * case.hidden)?))
        };
        match combine() {
            // One multiply and one add per term.
            Ok((d, mut out)) => run.measure(
                "moe-combine",
                &format!("bf16 {sizes}"),
                Work {
                    read_bytes: t * kk * h * BF16 + t * kk * (F32 + F32),
                    written_bytes: t * h * BF16,
                    cube_macs: 0,
                    vector_ops: 2 * t * kk * h,
                },
                || {
                    let inputs = CombineInputs {
                        y: d.expanded_x.as_view(),
                        expanded_row_idx: d.expanded_row_idx.as_view(),
                        weights: weights.as_view(),
                        shared: None,
                    };
                    moe::combine(&stream, shape, inputs, &mut out)
                },
            ),
            Err(e) => run.failed("moe-combine", e),
        }
    }
}
