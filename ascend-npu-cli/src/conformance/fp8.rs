//! FP8 on the device: DeepSeek block quantization (1×128 activation tiles, 128×128 weight
//! blocks), the decode back to f32/bf16, and the block-scaled GEMM (W8A16 and W8A8), against
//! the host reference of `ascend_npu::fp8` and f64 sums.

use ascend_npu::fp8::{BlockQuantized, F8E4M3, ScaleFormat, quantize_act, quantize_weight};
use ascend_npu::kernels::MatmulOutput;
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use half::bf16;

use super::{Family, Run};
use crate::check::{self, BF16, Elem, FP32, Outcome};

/// Device quantization, bit for bit against the host reference.
pub const QUANT: Family = Family {
    name: "fp8-quant",
    summary: "FP8 E4M3 block quantization on the device (codes and scales), f32/bf16 in",
    kernels: true,
    aclnn: &[],
    run: quant,
};

/// Device decode of quantized data.
pub const DEQUANT: Family = Family {
    name: "fp8-dequant",
    summary: "FP8 E4M3 decode × scale to f32/bf16 on the device, vs f64",
    kernels: true,
    aclnn: &[],
    run: dequant,
};

/// The block-scaled GEMM.
pub const GEMM: Family = Family {
    name: "fp8-gemm",
    summary: "FP8 block-scaled GEMM, W8A16 and W8A8, f32/bf16 out, vs the f64 GEMM",
    kernels: true,
    aclnn: &[],
    run: gemm,
};

const BIT_EXACT: &str = "same rounding as the host reference (amax/448, RNE to E4M3)";

fn device(e: ascend_npu::Error) -> String {
    e.to_string()
}

fn formats() -> [(ScaleFormat, &'static str); 2] {
    [
        (ScaleFormat::Fp32, "fp32 scales"),
        (ScaleFormat::Ue8m0, "ue8m0 scales"),
    ]
}

/// Codes and scales that differ from the host's, plus any difference in length.
fn mismatches(codes: &[F8E4M3], scales: &[f32], host: &BlockQuantized) -> usize {
    let differ = |a: &[u8], b: &[u8]| {
        a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
    };
    differ(
        bytemuck::cast_slice(codes),
        bytemuck::cast_slice(host.codes()),
    ) + differ(
        bytemuck::cast_slice(scales),
        bytemuck::cast_slice(host.scales()),
    )
}

/// Which quantization a case runs: 1×128 activation tiles from bf16, or 128×128 weight blocks
/// from f32.
#[derive(Clone, Copy)]
enum Layout {
    Activations,
    Weight,
}

fn quant(run: &mut Run<'_>) {
    for [rows, k] in run.preset.fp8_quant.clone() {
        for (format, format_name) in formats() {
            for layout in [Layout::Activations, Layout::Weight] {
                let (op, input) = match layout {
                    Layout::Activations => ("activations", "bf16 acts"),
                    Layout::Weight => ("weight", "f32 weight"),
                };
                let case = format!("{input} [{rows},{k}] {format_name}");
                run.case(op, &case, |run, op, case| {
                    let values = run.rng(case).vec(rows * k, 3.0);
                    let stream = &run.session.stream;
                    let kernels = run.kernels()?;
                    let quant = |e: ascend_npu::fp8::QuantError| e.to_string();
                    let (codes, scales, host) = match layout {
                        Layout::Activations => {
                            let x: Vec<bf16> = check::round_to(&values);
                            let dx = stream.upload(&x).map_err(device)?;
                            let q = Fp8Activations::quantize(kernels, stream, rows, k, format, &dx)
                                .map_err(device)?;
                            let host = quantize_act(&x, rows, k, format).map_err(quant)?;
                            (q.codes().to_vec(), q.scales().to_vec(), host)
                        }
                        Layout::Weight => {
                            let w: Vec<f32> = check::round_to(&values);
                            let dw = stream.upload(&w).map_err(device)?;
                            let q = Fp8Weight::quantize(kernels, stream, rows, k, format, &dw)
                                .map_err(device)?;
                            let host = quantize_weight(&w, rows, k, format).map_err(quant)?;
                            (q.codes().to_vec(), q.scales().to_vec(), host)
                        }
                    };
                    let bad = mismatches(&codes.map_err(device)?, &scales.map_err(device)?, &host);
                    Ok(Outcome::exact(op, case, "codes and scales", bad, BIT_EXACT))
                });
            }
        }
    }
}

fn dequant(run: &mut Run<'_>) {
    for [rows, k] in run.preset.fp8_quant.clone() {
        dequant_case::<f32>(run, rows, k);
        dequant_case::<bf16>(run, rows, k);
    }
}

fn dequant_case<O: Elem + MatmulOutput>(run: &mut Run<'_>, rows: usize, k: usize) {
    let case = format!("e4m3→{} [{rows},{k}]", O::FORMAT.name);
    run.case("activations", &case, |run, op, case| {
        let x: Vec<f32> = check::round_to(&run.rng(case).vec(rows * k, 3.0));
        let host = quantize_act(&x, rows, k, ScaleFormat::Fp32).map_err(|e| e.to_string())?;
        let stream = &run.session.stream;
        let q = Fp8Activations::from_quantized(stream, &host).map_err(device)?;
        let mut out = stream.alloc_uninit::<O>(rows * k).map_err(device)?;
        q.dequantize(run.kernels()?, stream, &mut out)
            .map_err(device)?;
        let got = check::widen(&out.to_vec().map_err(device)?);
        // code × scale in f64: a 4-bit significand times a 24-bit one is exact.
        let want: Vec<f64> = host
            .codes()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.to_f64() * f64::from(host.scales()[(i / k) * k.div_ceil(128) + (i % k) / 128])
            })
            .collect();
        let o = O::FORMAT;
        Ok(check::within(
            op,
            case,
            &got,
            &want,
            // One fp32 product (u32) then, for bf16, one rounding to bf16.
            |i| {
                let u = if o.name == FP32.name {
                    FP32.u
                } else {
                    FP32.u + o.u
                };
                u * want[i].abs() + o.tiny
            },
            &format!("code·scale in fp32 (2^-24), {} out", o.name),
        ))
    });
}

fn gemm(run: &mut Run<'_>) {
    for [m, n, k] in run.preset.fp8_gemm.clone() {
        gemm_case::<f32>(run, [m, n, k], false);
        gemm_case::<bf16>(run, [m, n, k], false);
        gemm_case::<f32>(run, [m, n, k], true);
    }
}

fn gemm_case<O: Elem + MatmulOutput>(run: &mut Run<'_>, shape: [usize; 3], w8a8: bool) {
    let [m, n, k] = shape;
    let kind = if w8a8 { "W8A8" } else { "W8A16" };
    let case = format!("{kind} →{} m={m} n={n} k={k}", O::FORMAT.name);
    run.case("gemm", &case, |run, op, case| {
        let mut rng = run.rng(case);
        let a: Vec<bf16> = check::round_to(&rng.vec(m * k, 2.0));
        let w: Vec<f32> = check::round_to(&rng.vec(n * k, 1.0));
        let qw = quantize_weight(&w, n, k, ScaleFormat::Fp32).map_err(|e| e.to_string())?;
        let stream = &run.session.stream;
        let kernels = run.kernels()?;
        let weight = Fp8Weight::from_quantized(stream, &qw).map_err(device)?;
        let da = stream.upload(&a).map_err(device)?;
        let mut dc = stream.alloc_uninit::<O>(m * n).map_err(device)?;
        // The reference multiplies exactly what the device multiplies: the dequantized weight,
        // and for W8A8 the host-quantized (bit-identical, see fp8-quant) activations.
        let a_ref: Vec<f64> = if w8a8 {
            let qa = Fp8Activations::quantize(kernels, stream, m, k, ScaleFormat::Fp32, &da)
                .map_err(device)?;
            fp8_gemm(
                kernels,
                stream,
                m,
                Fp8Input::Fp8(&qa),
                &weight,
                Fp8Groups::None,
                &mut dc,
            )
            .map_err(device)?;
            let host = quantize_act(&a, m, k, ScaleFormat::Fp32).map_err(|e| e.to_string())?;
            host.dequantize().iter().map(|&v| f64::from(v)).collect()
        } else {
            fp8_gemm(
                kernels,
                stream,
                m,
                Fp8Input::Bf16(da.as_view()),
                &weight,
                Fp8Groups::None,
                &mut dc,
            )
            .map_err(device)?;
            a.iter().map(|v| v.to_f64()).collect()
        };
        let got = check::widen(&dc.to_vec().map_err(device)?);
        let w_ref: Vec<f64> = qw.dequantize().iter().map(|&v| f64::from(v)).collect();
        let (want, magnitude) = check::gemm(
            m,
            n,
            k,
            |i, kk| a_ref[i * k + kk],
            |kk, j| w_ref[j * k + kk],
        );
        let o = O::FORMAT;
        // Each 128-long K block is an fp32 sum of exact products (≤ 128 roundings), scaled and
        // added into an fp32 accumulator (≤ K/128 + 3 more), each 2^-24 of Σ|a·b|; bf16 output
        // adds one rounding.
        let fp32_terms = (k.min(128) + k.div_ceil(128) + 3) as f64 * FP32.u;
        let u_out = if o.name == BF16.name { o.u } else { 0.0 };
        Ok(check::within(
            op,
            case,
            &got,
            &want,
            |i| {
                let fp32 = fp32_terms * magnitude[i];
                fp32 + u_out * (want[i].abs() + fp32) + o.tiny
            },
            &format!(
                "(min(K,128)+K/128+3)·2^-24·Σ|ab| fp32 block sums, {} out",
                o.name
            ),
        ))
    });
}
