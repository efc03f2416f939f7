//! The cases of `fp8_gemm_sim.rs` and of its hardware twins `fp8_gemm_hardware.rs`.

use super::Rng;
use ascend_npu::fp8::{F8E4M3, ScaleFormat, quantize_act, quantize_weight};
use ascend_npu::kernels::{Kernels, MatmulOutput};
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use ascend_npu::{Device, DeviceBuffer, Stream};
use half::bf16;

fn setup() -> (Stream, Kernels) {
    super::backend::select();
    let device = Device::open(0).unwrap();
    (
        device.new_stream().unwrap(),
        Kernels::load(&device).unwrap(),
    )
}

fn bf16_vec(rng: &mut Rng, len: usize, scale: f32) -> Vec<bf16> {
    (0..len)
        .map(|_| bf16::from_f32(rng.f32() * scale))
        .collect()
}

/// f64 `A[m,k] · B[n,k]ᵀ` with its `Σ|a·b|` (for the tolerance).
fn gemm_nt(a: &[f64], b: &[f64], m: usize, n: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for kk in 0..k {
                let p = a[i * k + kk] * b[j * k + kk];
                c[i * n + j] += p;
                mag[i * n + j] += p.abs();
            }
        }
    }
    (c, mag)
}

/// The kernel's bound: each 128-long block is an fp32 sum of exact products (≤ 128 roundings),
/// then scaled and added into an fp32 accumulator (≤ K/128 + 3 more), each a relative 2^-24
/// of at most Σ|a·b·sa·sb|; bf16 output adds one rounding of 2^-8 relative.
/// With power-of-two (UE8M0) scales the kernel folds each scale into its decode: every decoded
/// weight `code × scale` is exact in bf16, each product exact in fp32, and one fp32 sum runs over
/// all of K (≤ K − 1 roundings): the bound is then (K + 3)·2^-24·Σ|a·b·sb|.
fn tolerance_for(folded: bool, k: usize, mag: f64, want: f64, bf16_out: bool) -> f64 {
    if !folded {
        return tolerance(k, mag, want, bf16_out);
    }
    let fp32 = (k + 3) as f64 * 2f64.powi(-24) * mag;
    fp32 + if bf16_out {
        2f64.powi(-8) * (want.abs() + fp32)
    } else {
        0.0
    } + 1e-30
}

fn tolerance(k: usize, mag: f64, want: f64, bf16_out: bool) -> f64 {
    let fp32 = (k.min(128) + k.div_ceil(128) + 3) as f64 * 2f64.powi(-24) * mag;
    fp32 + if bf16_out {
        2f64.powi(-8) * (want.abs() + fp32)
    } else {
        0.0
    } + 1e-30
}

fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    let err: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let norm: f64 = want.iter().map(|w| w * w).sum();
    (err / norm).sqrt()
}

fn calc_diff(x: &[f64], y: &[f64]) -> f64 {
    let dot: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
    let sq: f64 = x.iter().chain(y).map(|v| v * v).sum();
    1.0 - 2.0 * dot / sq
}

fn to_f64<O: Copy + 'static>(v: &[O]) -> Vec<f64> {
    let any: &dyn std::any::Any = &v.to_vec();
    if let Some(f) = any.downcast_ref::<Vec<f32>>() {
        f.iter().map(|&x| f64::from(x)).collect()
    } else {
        any.downcast_ref::<Vec<bf16>>()
            .unwrap()
            .iter()
            .map(|x| x.to_f64())
            .collect()
    }
}

fn run_w8a16<O: MatmulOutput + bytemuck::AnyBitPattern>(
    stream: &Stream,
    kernels: &Kernels,
    m: usize,
    n: usize,
    k: usize,
    seed: u64,
) {
    run_w8a16_scaled::<O>(stream, kernels, (m, n, k), ScaleFormat::Fp32, seed);
}

fn run_w8a16_scaled<O: MatmulOutput + bytemuck::AnyBitPattern>(
    stream: &Stream,
    kernels: &Kernels,
    (m, n, k): (usize, usize, usize),
    format: ScaleFormat,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let a = bf16_vec(&mut rng, m * k, 1.0);
    let w: Vec<f32> = rng.vec_f32(n * k);
    let q = quantize_weight(&w, n, k, format).unwrap();
    let folded = format == ScaleFormat::Ue8m0;
    let weight = Fp8Weight::from_quantized(stream, &q).unwrap();
    let da = stream.upload(&a).unwrap();
    let mut dc = stream.alloc_uninit::<O>(m * n).unwrap();
    fp8_gemm(
        kernels,
        stream,
        m,
        Fp8Input::Bf16(da.as_view()),
        &weight,
        Fp8Groups::None,
        &mut dc,
    )
    .unwrap();
    let got = to_f64(&dc.to_vec().unwrap());
    let a64: Vec<f64> = a.iter().map(|v| v.to_f64()).collect();
    let deq: Vec<f64> = q.dequantize().iter().map(|&v| f64::from(v)).collect();
    let (want, mag) = gemm_nt(&a64, &deq, m, n, k);
    let bf16_out = std::any::TypeId::of::<O>() == std::any::TypeId::of::<bf16>();
    for i in 0..m * n {
        let tol = tolerance_for(folded, k, mag[i], want[i], bf16_out);
        assert!(
            (got[i] - want[i]).abs() <= tol,
            "M={m} N={n} K={k} {format:?} [{i}]: {} vs {} (tol {tol:e})",
            got[i],
            want[i]
        );
    }
    if !bf16_out && m * n > 1 {
        // Against the f64 GEMM of the dequantized operands: fp32 accumulation only.
        assert!(rel_l2(&got, &want) < 2e-6, "rel L2 {}", rel_l2(&got, &want));
        // Against the unquantized weights: DeepGEMM's bar.
        let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        let (exact, _) = gemm_nt(&a64, &w64, m, n, k);
        assert!(
            calc_diff(&got, &exact) < 1e-3,
            "calc_diff {}",
            calc_diff(&got, &exact)
        );
    }
}

pub fn w8a16_matches_the_dequantized_f64_gemm_on_odd_shapes() {
    let (stream, kernels) = setup();
    for (s, &(m, n, k)) in [
        (1, 1, 1),
        (1, 129, 257),
        (3, 300, 100),
        (17, 129, 129),
        (5, 64, 300),
        (129, 129, 257),
    ]
    .iter()
    .enumerate()
    {
        run_w8a16::<f32>(&stream, &kernels, m, n, k, 10 + s as u64);
        run_w8a16::<bf16>(&stream, &kernels, m, n, k, 20 + s as u64);
    }
}

/// UE8M0 weight scales take the kernel's folded path (scales in the decode, all of K in L0C):
/// decode-sized M = 1..=16, odd N and K, both outputs.
pub fn w8a16_with_ue8m0_scales_matches_the_f64_gemm_for_m_1_to_16() {
    let (stream, kernels) = setup();
    for m in 1..=16 {
        let (n, k) = if m % 2 == 1 { (129, 257) } else { (37, 300) };
        run_w8a16_scaled::<bf16>(
            &stream,
            &kernels,
            (m, n, k),
            ScaleFormat::Ue8m0,
            40 + m as u64,
        );
        run_w8a16_scaled::<f32>(
            &stream,
            &kernels,
            (m, n, k),
            ScaleFormat::Ue8m0,
            60 + m as u64,
        );
    }
}

pub fn device_activation_quantization_equals_the_host_reference_bit_for_bit() {
    let (stream, kernels) = setup();
    for (rows, k) in [(1, 1), (3, 100), (5, 257), (2, 1024)] {
        for format in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
            let mut rng = Rng::new((rows * k) as u64);
            let x: Vec<bf16> = bf16_vec(&mut rng, rows * k, 3.0);
            let dx = stream.upload(&x).unwrap();
            let q = Fp8Activations::quantize(&kernels, &stream, rows, k, format, &dx).unwrap();
            let host = quantize_act(&x, rows, k, format).unwrap();
            assert_eq!(
                q.codes().to_vec().unwrap(),
                host.codes(),
                "[{rows}, {k}] {format:?}"
            );
            assert_eq!(
                q.scales().to_vec().unwrap(),
                host.scales(),
                "[{rows}, {k}] {format:?}"
            );
        }
    }
}

pub fn w8a8_matches_the_dequantized_f64_gemm() {
    let (stream, kernels) = setup();
    let (m, n, k) = (7, 140, 300);
    let mut rng = Rng::new(5);
    let a = bf16_vec(&mut rng, m * k, 2.0);
    let w: Vec<f32> = rng.vec_f32(n * k);
    let qw = quantize_weight(&w, n, k, ScaleFormat::Fp32).unwrap();
    let weight = Fp8Weight::from_quantized(&stream, &qw).unwrap();
    let da = stream.upload(&a).unwrap();
    let qa = Fp8Activations::quantize(&kernels, &stream, m, k, ScaleFormat::Fp32, &da).unwrap();
    let mut dc = stream.alloc_uninit::<f32>(m * n).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        m,
        Fp8Input::Fp8(&qa),
        &weight,
        Fp8Groups::None,
        &mut dc,
    )
    .unwrap();
    let got = to_f64(&dc.to_vec().unwrap());
    let host_a = quantize_act(&a, m, k, ScaleFormat::Fp32).unwrap();
    let a_deq: Vec<f64> = host_a.dequantize().iter().map(|&v| f64::from(v)).collect();
    let w_deq: Vec<f64> = qw.dequantize().iter().map(|&v| f64::from(v)).collect();
    let (want, mag) = gemm_nt(&a_deq, &w_deq, m, n, k);
    for i in 0..m * n {
        assert!(
            (got[i] - want[i]).abs() <= tolerance(k, mag[i], want[i], false),
            "[{i}] {} vs {}",
            got[i],
            want[i]
        );
    }
    let a64: Vec<f64> = a.iter().map(|v| v.to_f64()).collect();
    let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let (exact, _) = gemm_nt(&a64, &w64, m, n, k);
    assert!(
        calc_diff(&got, &exact) < 1e-3,
        "calc_diff {}",
        calc_diff(&got, &exact)
    );
}

pub fn nan_codes_propagate() {
    let (stream, kernels) = setup();
    let (m, n, k) = (2, 3, 130);
    let mut codes = vec![F8E4M3::from_f32(0.5); n * k];
    codes[k + 7] = F8E4M3::NAN; // row n = 1 of B
    let scales = vec![1.0f32; 2];
    let weight = Fp8Weight::upload(&stream, 1, n, k, &codes, &scales).unwrap();
    let a = stream.upload(&vec![bf16::ONE; m * k]).unwrap();
    let mut c = stream.alloc_zeroed::<f32>(m * n).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        m,
        Fp8Input::Bf16(a.as_view()),
        &weight,
        Fp8Groups::None,
        &mut c,
    )
    .unwrap();
    let c = c.to_vec().unwrap();
    for i in 0..m {
        assert_eq!(c[i * n], 65.0);
        assert!(c[i * n + 1].is_nan(), "{c:?}");
        assert_eq!(c[i * n + 2], 65.0);
    }
}

pub fn grouped_layouts_match_per_group_gemms() {
    let (stream, kernels) = setup();
    let (groups, n, k) = (3, 130, 200);
    let mut rng = Rng::new(6);
    let mut codes = Vec::new();
    let mut scales = Vec::new();
    let mut deq = Vec::new();
    for _ in 0..groups {
        let q = quantize_weight(&rng.vec_f32(n * k), n, k, ScaleFormat::Fp32).unwrap();
        deq.push(
            q.dequantize()
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<f64>>(),
        );
        codes.extend_from_slice(q.codes());
        scales.extend_from_slice(q.scales());
    }
    let weight = Fp8Weight::upload(&stream, groups, n, k, &codes, &scales).unwrap();

    // Contiguous: groups of 2, 0 and 3 rows.
    let offsets = [0i32, 2, 2, 5];
    let rows = 5;
    let a = bf16_vec(&mut rng, rows * k, 1.0);
    let da = stream.upload(&a).unwrap();
    let doff = stream.upload(&offsets).unwrap();
    let mut c = stream.alloc_zeroed::<f32>(rows * n).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        rows,
        Fp8Input::Bf16(da.as_view()),
        &weight,
        Fp8Groups::Contiguous {
            offsets: doff.as_view(),
        },
        &mut c,
    )
    .unwrap();
    let got = c.to_vec().unwrap();
    for g in 0..groups {
        for r in offsets[g] as usize..offsets[g + 1] as usize {
            let a_row: Vec<f64> = a[r * k..(r + 1) * k].iter().map(|v| v.to_f64()).collect();
            let (want, mag) = gemm_nt(&a_row, &deq[g], 1, n, k);
            for j in 0..n {
                let v = f64::from(got[r * n + j]);
                assert!(
                    (v - want[j]).abs() <= tolerance(k, mag[j], want[j], false),
                    "contiguous group {g} row {r}"
                );
            }
        }
    }

    // The same groups as inclusive cumulative sums give the same result, bit for bit.
    let dcum = stream.upload(&offsets[1..]).unwrap();
    let mut c2 = stream.alloc_zeroed::<f32>(rows * n).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        rows,
        Fp8Input::Bf16(da.as_view()),
        &weight,
        Fp8Groups::ContiguousCumsum {
            cumsum: dcum.as_view(),
        },
        &mut c2,
    )
    .unwrap();
    assert_eq!(c2.to_vec().unwrap(), got);

    // Masked: max_m = 4 rows per group, valid 4, 1 and 0; other rows keep their contents.
    let max_m = 4;
    let counts = [4i32, 1, 0];
    let a = bf16_vec(&mut rng, groups * max_m * k, 1.0);
    let da = stream.upload(&a).unwrap();
    let dcounts = stream.upload(&counts).unwrap();
    let mut c = stream.upload(&vec![-7.0f32; groups * max_m * n]).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        max_m,
        Fp8Input::Bf16(da.as_view()),
        &weight,
        Fp8Groups::Masked {
            counts: dcounts.as_view(),
        },
        &mut c,
    )
    .unwrap();
    let got = c.to_vec().unwrap();
    for g in 0..groups {
        for r in 0..max_m {
            let row = g * max_m + r;
            if r >= counts[g] as usize {
                assert!(
                    got[row * n..(row + 1) * n].iter().all(|&v| v == -7.0),
                    "masked row {row} was written"
                );
                continue;
            }
            let a_row: Vec<f64> = a[row * k..(row + 1) * k]
                .iter()
                .map(|v| v.to_f64())
                .collect();
            let (want, mag) = gemm_nt(&a_row, &deq[g], 1, n, k);
            for j in 0..n {
                let v = f64::from(got[row * n + j]);
                assert!(
                    (v - want[j]).abs() <= tolerance(k, mag[j], want[j], false),
                    "masked group {g} row {r}"
                );
            }
        }
    }
}

pub fn bad_inputs_are_clear_errors() {
    let (stream, kernels) = setup();
    let codes = vec![F8E4M3::ONE; 4 * 130];
    let err = Fp8Weight::upload(&stream, 1, 4, 130, &codes, &[1.0])
        .err()
        .unwrap();
    assert!(err.to_string().contains("1 × [1, 2] = 2 scales"), "{err}");
    let err = Fp8Weight::upload(&stream, 1, 4, 130, &codes, &[1.0, f32::INFINITY])
        .err()
        .unwrap();
    assert!(err.to_string().contains("scale inf at block 1"), "{err}");
    let err = Fp8Weight::upload(&stream, 1, 0, 130, &[], &[])
        .err()
        .unwrap();
    assert!(err.to_string().contains("non-empty"), "{err}");
    let weight = Fp8Weight::upload(&stream, 1, 4, 130, &codes, &[1.0, 1.0]).unwrap();
    let a = stream.upload(&vec![bf16::ONE; 2 * 129]).unwrap();
    let mut c = stream.alloc_zeroed::<f32>(2 * 4).unwrap();
    let err = fp8_gemm(
        &kernels,
        &stream,
        2,
        Fp8Input::Bf16(a.as_view()),
        &weight,
        Fp8Groups::None,
        &mut c,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("against weights of K = 130"),
        "{err}"
    );
    let stack = Fp8Weight::upload(
        &stream,
        2,
        4,
        130,
        &[codes.clone(), codes].concat(),
        &[1.0; 4],
    )
    .unwrap();
    let a = stream.upload(&vec![bf16::ONE; 2 * 130]).unwrap();
    let offsets = stream.upload(&[0i32, 2]).unwrap();
    let err = fp8_gemm(
        &kernels,
        &stream,
        2,
        Fp8Input::Bf16(a.as_view()),
        &stack,
        Fp8Groups::Contiguous {
            offsets: offsets.as_view(),
        },
        &mut c,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("2 group offsets for 2 weight groups"),
        "{err}"
    );
    let err = fp8_gemm(
        &kernels,
        &stream,
        2,
        Fp8Input::Bf16(a.as_view()),
        &stack,
        Fp8Groups::None,
        &mut c,
    )
    .unwrap_err();
    assert!(err.to_string().contains("without groups"), "{err}");
    // Empty activations: nothing to do.
    let empty = stream.upload::<bf16>(&[]).unwrap();
    let mut none: DeviceBuffer<f32> = stream.alloc_zeroed(0).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        0,
        Fp8Input::Bf16(empty.as_view()),
        &weight,
        Fp8Groups::None,
        &mut none,
    )
    .unwrap();
}

pub fn checkpoints_load_straight_into_device_buffers() {
    let (stream, kernels) = setup();
    let (n, k) = (200, 130);
    let mut rng = Rng::new(12);
    let q = quantize_weight(&rng.vec_f32(n * k), n, k, ScaleFormat::Fp32).unwrap();
    let code_bytes: Vec<u8> = q.codes().iter().map(|c| c.to_bits()).collect();
    let scale_bytes: Vec<u8> = q.scales().iter().flat_map(|s| s.to_le_bytes()).collect();
    let name = "model.layers.3.mlp.experts.0.down_proj.weight";
    let scale_name = format!("{name}_scale_inv");
    let views = vec![
        (
            name.to_string(),
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F8_E4M3,
                vec![n, k],
                &code_bytes,
            )
            .unwrap(),
        ),
        (
            scale_name,
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &scale_bytes)
                .unwrap(),
        ),
    ];
    let bytes = safetensors::serialize(views, &None).unwrap();
    let weight = Fp8Weight::from_safetensors(&stream, &bytes, &[name]).unwrap();
    assert_eq!((weight.groups(), weight.n(), weight.k()), (1, n, k));
    assert_eq!(weight.codes().to_vec().unwrap(), q.codes());
    assert_eq!(weight.scales().to_vec().unwrap(), q.scales());
    let err = Fp8Weight::from_safetensors(&stream, &bytes, &["missing.weight"])
        .err()
        .unwrap();
    assert!(err.to_string().contains("missing.weight"), "{err}");
    let a = stream.upload(&vec![bf16::ONE; k]).unwrap();
    let mut c = stream.alloc_zeroed::<bf16>(n).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        1,
        Fp8Input::Bf16(a.as_view()),
        &weight,
        Fp8Groups::None,
        &mut c,
    )
    .unwrap();
}

pub fn device_weight_quantization_and_dequantization_match_the_host_reference() {
    let (stream, kernels) = setup();
    for (n, k) in [(1, 1), (100, 129), (129, 300), (256, 128)] {
        for format in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
            let mut rng = Rng::new((n * k) as u64);
            let w: Vec<bf16> = bf16_vec(&mut rng, n * k, 2.0);
            let dw = stream.upload(&w).unwrap();
            let q = Fp8Weight::quantize(&kernels, &stream, n, k, format, &dw).unwrap();
            let host = quantize_weight(&w, n, k, format).unwrap();
            assert_eq!(
                q.codes().to_vec().unwrap(),
                host.codes(),
                "[{n}, {k}] {format:?}"
            );
            assert_eq!(
                q.scales().to_vec().unwrap(),
                host.scales(),
                "[{n}, {k}] {format:?}"
            );
            // Dequantization is code × scale in f32 on both sides: bit-exact.
            let mut out = stream.alloc_zeroed::<f32>(n * k).unwrap();
            q.dequantize(&kernels, &stream, &mut out).unwrap();
            assert_eq!(
                out.to_vec().unwrap(),
                host.dequantize(),
                "[{n}, {k}] {format:?}"
            );
        }
    }
    // Activations (1×128 scales) dequantize the same way.
    let (rows, k) = (3, 257);
    let x = bf16_vec(&mut Rng::new(9), rows * k, 1.0);
    let dx = stream.upload(&x).unwrap();
    let qa = Fp8Activations::quantize(&kernels, &stream, rows, k, ScaleFormat::Fp32, &dx).unwrap();
    let mut out = stream.alloc_zeroed::<f32>(rows * k).unwrap();
    qa.dequantize(&kernels, &stream, &mut out).unwrap();
    assert_eq!(
        out.to_vec().unwrap(),
        quantize_act(&x, rows, k, ScaleFormat::Fp32)
            .unwrap()
            .dequantize()
    );
    let err = qa
        .dequantize(
            &kernels,
            &stream,
            &mut stream.alloc_zeroed::<f32>(5).unwrap(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("[3, 257]"), "{err}");
}
