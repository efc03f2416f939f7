//! The operators benchmarked, with the least work each one's maths needs: every input read
//! once, every output written once, one MAC per term of a product, and the vector operations
//! per element of the formula.

use ascend_npu::fp8::{ScaleFormat, quantize_weight};
use ascend_npu::kernels::{Kernels, MatmulShape, WeightLayout};
use ascend_npu::moe::MoeConfig;
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use ascend_npu::ops::moe::{self, CombineInputs, GroupSizes, MoeShape};
use ascend_npu::{DeviceBuffer, Stream};
use half::bf16;

use super::{BenchRun, Work};
use crate::check;
use crate::preset::MoeCase;
use crate::rng::CaseRng;

/// Bytes of one bf16.
pub(super) const BF16: u64 = 2;
/// Bytes of one f32 or int32.
pub(super) const F32: u64 = 4;

/// What every operator's benchmark uses: the run, our kernels, the stream and the inputs'
/// random source.
pub(super) struct Bench<'r, 'a> {
    pub(super) run: &'r mut BenchRun<'a>,
    pub(super) kernels: Kernels,
    pub(super) stream: Stream,
    pub(super) rng: CaseRng,
}

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
    let mut b = Bench {
        run,
        kernels,
        stream,
        rng: CaseRng::new(1, "bench"),
    };
    for len in b.run.preset.swiglu.clone() {
        swiglu(&mut b, len);
    }
    // Each of our GEMMs beside the vendor's op for the same maths.
    for [m, n, k] in b.run.preset.matmul.clone() {
        matmul(&mut b, MatmulShape { m, n, k });
        super::vendor::matmul(&mut b, MatmulShape { m, n, k });
    }
    for [m, n, k] in b.run.preset.fp8_gemm.clone() {
        fp8_gemm_w8a16(&mut b, MatmulShape { m, n, k });
        super::vendor::w8a16(&mut b, MatmulShape { m, n, k });
    }
    for [rows, k] in b.run.preset.fp8_quant.clone() {
        fp8_quant(&mut b, rows, k);
    }
    for case in b.run.preset.moe.clone() {
        moe_steps(&mut b, &case);
        super::vendor::grouped(&mut b, &case);
    }
    for case in b.run.preset.moe_layer.clone() {
        super::moe_layer::layer(&mut b, &case);
    }
    for [tokens, block_size] in b.run.preset.mla_cache_write.clone() {
        super::mla::cache_write(&mut b, tokens, block_size);
    }
    for [heads, s_q, block_size] in b.run.preset.mla_decode.clone() {
        super::mla::decode(&mut b, heads, s_q, block_size);
    }
    for [heads, block_size] in b.run.preset.mla_prefill.clone() {
        super::mla::prefill_chunk(&mut b, heads, block_size);
    }
}

impl Bench<'_, '_> {
    /// Uploads `len` random values in [-scale, scale), rounded to `T`.
    pub(super) fn random<T: check::Elem>(
        &mut self,
        len: usize,
        scale: f64,
    ) -> ascend_npu::Result<DeviceBuffer<T>> {
        self.stream
            .upload(&check::round_to::<T>(&self.rng.vec(len, scale)))
    }
}

fn swiglu(b: &mut Bench, len: usize) {
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let g = b.random::<bf16>(len, 4.0)?;
        let u = b.random::<bf16>(len, 4.0)?;
        Ok((g, u, b.stream.alloc_uninit::<bf16>(len)?))
    };
    let n = len as u64;
    match set(b) {
        // silu(g)·u = g / (1 + exp(-g)) · u: exp, add, divide, multiply (negation folds
        // into exp's argument): 4 operations per element.
        Ok((g, u, mut out)) => {
            let (kernels, stream) = (&b.kernels, &b.stream);
            b.run.measure(
                "swiglu",
                &format!("bf16 n={len}"),
                Work {
                    read_bytes: 2 * n * BF16,
                    written_bytes: n * BF16,
                    cube_macs: 0,
                    vector_ops: 4 * n,
                    ..Work::default()
                },
                || ascend_npu::kernels::swiglu(kernels, stream, &g, &u, &mut out),
            )
        }
        Err(e) => b.run.failed("swiglu", e),
    }
}

/// Random bf16 `A [M, K]` and `W [N, K]`, and room for `C [M, N]`.
pub(super) fn bf16_gemm_operands(
    b: &mut Bench,
    MatmulShape { m, n, k }: MatmulShape,
) -> ascend_npu::Result<(DeviceBuffer<bf16>, DeviceBuffer<bf16>, DeviceBuffer<bf16>)> {
    let a = b.random::<bf16>(m * k, 1.0)?;
    let w = b.random::<bf16>(n * k, 1.0)?;
    Ok((a, w, b.stream.alloc_uninit::<bf16>(m * n)?))
}

fn matmul(b: &mut Bench, shape: MatmulShape) {
    let MatmulShape { m, n, k } = shape;
    match bf16_gemm_operands(b, shape) {
        Ok((a, w, mut c)) => {
            let (kernels, stream) = (&b.kernels, &b.stream);
            b.run.measure(
                "matmul",
                &format!("bf16 NK m={m} n={n} k={k}"),
                gemm_work(shape, BF16),
                || {
                    ascend_npu::kernels::matmul(
                        kernels,
                        stream,
                        shape,
                        WeightLayout::NK,
                        &a,
                        &w,
                        &mut c,
                    )
                },
            )
        }
        Err(e) => b.run.failed("matmul", e),
    }
}

/// The least work of `C[m, n] = A[m, k] · W[n, k]ᵀ` in bf16 with weights of `weight_bytes`
/// per element: each operand read once, the result written once, m·n·k MACs.
pub(super) fn gemm_work(MatmulShape { m, n, k }: MatmulShape, weight_bytes: u64) -> Work {
    let (m, n, k) = (m as u64, n as u64, k as u64);
    Work {
        read_bytes: m * k * BF16 + n * k * weight_bytes,
        written_bytes: m * n * BF16,
        cube_macs: m * n * k,
        vector_ops: 0,
        ..Work::default()
    }
}

fn fp8_gemm_w8a16(b: &mut Bench, shape: MatmulShape) {
    let MatmulShape { m, n, k } = shape;
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let w: Vec<f32> = check::round_to(&b.rng.vec(n * k, 1.0));
        let q = quantize_weight(&w, n, k, ScaleFormat::Fp32)?;
        let a = b.random::<bf16>(m * k, 1.0)?;
        Ok((
            Fp8Weight::from_quantized(&b.stream, &q)?,
            a,
            b.stream.alloc_uninit::<bf16>(m * n)?,
        ))
    };
    let (nu, ku) = (n as u64, k as u64);
    let scales = nu.div_ceil(128) * ku.div_ceil(128);
    // Each weight code is decoded and scaled once (2 vector operations).
    let minimum = Work {
        read_bytes: gemm_work(shape, 1).read_bytes + scales * F32,
        vector_ops: 2 * nu * ku,
        ..gemm_work(shape, 1)
    };
    match set(b) {
        Ok((w, a, mut c)) => {
            let (kernels, stream) = (&b.kernels, &b.stream);
            b.run.measure(
                "fp8-gemm",
                &format!("W8A16 bf16 m={m} n={n} k={k}"),
                minimum,
                || {
                    fp8_gemm(
                        kernels,
                        stream,
                        m,
                        Fp8Input::Bf16(a.as_view()),
                        &w,
                        Fp8Groups::None,
                        &mut c,
                    )
                },
            )
        }
        Err(e) => b.run.failed("fp8-gemm", e),
    }
}

fn fp8_quant(b: &mut Bench, rows: usize, k: usize) {
    let (r, ku) = (rows as u64, k as u64);
    match b.random::<bf16>(rows * k, 3.0) {
        // |x|, the running max, and x·(1/scale) with its rounding to E4M3: 4 per element.
        Ok(x) => {
            let (kernels, stream) = (&b.kernels, &b.stream);
            b.run.measure(
                "fp8-quant",
                &format!("bf16 acts [{rows},{k}]"),
                Work {
                    read_bytes: r * ku * BF16,
                    written_bytes: r * ku + r * ku.div_ceil(128) * F32,
                    cube_macs: 0,
                    vector_ops: 4 * r * ku,
                    ..Work::default()
                },
                || {
                    Fp8Activations::quantize(kernels, stream, rows, k, ScaleFormat::Fp32, &x)
                        .map(drop)
                },
            )
        }
        Err(e) => b.run.failed("fp8-quant", e),
    }
}

/// The inputs of the MoE steps: logits, bias, activations and their routing.
struct MoeInputs {
    logits: DeviceBuffer<f32>,
    bias: DeviceBuffer<f32>,
    x: DeviceBuffer<bf16>,
    weights: DeviceBuffer<f32>,
    ids: DeviceBuffer<i32>,
}

/// The MoE layer's configuration for a preset case.
pub(super) fn moe_config(case: &MoeCase) -> MoeConfig {
    MoeConfig {
        n_routed_experts: case.experts,
        n_group: case.groups,
        topk_group: case.topk_groups,
        top_k: case.top_k,
        ..MoeConfig::deepseek_v3()
    }
}

/// Routing, dispatch and combine at one preset case.
fn moe_steps(b: &mut Bench, case: &MoeCase) {
    let config = moe_config(case);
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let logits = b.random::<f32>(case.tokens * case.experts, 4.0)?;
        let bias = b.random::<f32>(case.experts, 0.5)?;
        let x = b.random::<bf16>(case.tokens * case.hidden, 1.0)?;
        let (weights, ids) = moe::route(
            &b.kernels,
            &b.stream,
            &config,
            case.tokens,
            &logits,
            Some(&bias),
        )?;
        Ok(MoeInputs {
            logits,
            bias,
            x,
            weights,
            ids,
        })
    };
    match set(b) {
        Ok(inputs) => {
            moe_routing(b, case, &config, &inputs);
            moe_dispatch(b, case, &inputs);
            moe_combine(b, case, &inputs);
        }
        Err(e) => b.run.failed("moe", e),
    }
}

/// `T=.. H=.. E=.. K=..` of a case.
fn moe_sizes(case: &MoeCase) -> String {
    format!(
        "T={} H={} E={} K={}",
        case.tokens, case.hidden, case.experts, case.top_k
    )
}

fn moe_shape(case: &MoeCase) -> MoeShape {
    MoeShape {
        tokens: case.tokens,
        hidden: case.hidden,
        top_k: case.top_k,
        experts: case.experts,
    }
}

fn moe_routing(b: &mut Bench, case: &MoeCase, config: &MoeConfig, inputs: &MoeInputs) {
    let (t, e, kk) = (case.tokens as u64, case.experts as u64, case.top_k as u64);
    let (kernels, stream) = (&b.kernels, &b.stream);
    // Sigmoid, bias add, group top-2 sums, top-k, normalisation: about 4 operations per logit.
    b.run.measure(
        "moe-routing",
        &format!("f32 {}", moe_sizes(case)),
        Work {
            read_bytes: (t * e + e) * F32,
            written_bytes: t * kk * 2 * F32,
            cube_macs: 0,
            vector_ops: 4 * t * e,
            ..Work::default()
        },
        || {
            moe::route(
                kernels,
                stream,
                config,
                case.tokens,
                &inputs.logits,
                Some(&inputs.bias),
            )
            .map(drop)
        },
    );
}

fn moe_dispatch(b: &mut Bench, case: &MoeCase, inputs: &MoeInputs) {
    let (t, h, e, kk) = (
        case.tokens as u64,
        case.hidden as u64,
        case.experts as u64,
        case.top_k as u64,
    );
    let stream = &b.stream;
    b.run.measure(
        "moe-dispatch",
        &format!("bf16 {}", moe_sizes(case)),
        Work {
            read_bytes: t * h * BF16 + t * kk * F32,
            written_bytes: t * kk * h * BF16 + t * kk * F32 + e * 8,
            cube_macs: 0,
            vector_ops: 0,
            ..Work::default()
        },
        || {
            moe::dispatch(
                stream,
                moe_shape(case),
                GroupSizes::Counts,
                &inputs.x,
                &inputs.ids,
            )
            .map(drop)
        },
    );
}

fn moe_combine(b: &mut Bench, case: &MoeCase, inputs: &MoeInputs) {
    let (t, h, kk) = (case.tokens as u64, case.hidden as u64, case.top_k as u64);
    let shape = moe_shape(case);
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let d = moe::dispatch(&b.stream, shape, GroupSizes::Counts, &inputs.x, &inputs.ids)?;
        Ok((d, b.stream.alloc_uninit::<bf16>(case.tokens * case.hidden)?))
    };
    match set(b) {
        // One multiply and one add per term.
        Ok((d, mut out)) => {
            let stream = &b.stream;
            b.run.measure(
                "moe-combine",
                &format!("bf16 {}", moe_sizes(case)),
                Work {
                    read_bytes: t * kk * h * BF16 + t * kk * (F32 + F32),
                    written_bytes: t * h * BF16,
                    cube_macs: 0,
                    vector_ops: 2 * t * kk * h,
                    ..Work::default()
                },
                || {
                    let parts = CombineInputs {
                        y: d.expanded_x.as_view(),
                        expanded_row_idx: d.expanded_row_idx.as_view(),
                        weights: inputs.weights.as_view(),
                        shared: None,
                    };
                    moe::combine(stream, shape, parts, &mut out)
                },
            )
        }
        Err(e) => b.run.failed("moe-combine", e),
    }
}
