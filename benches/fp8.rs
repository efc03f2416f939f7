//! FP8 on the simulator: quantization throughput, and the FP8-emulated GEMM at DeepSeek-V3
//! decode shapes (M = 1, 64, 128; N = 2048, 7168; K = 7168) and one prefill shape, each with its
//! counted global-memory traffic against the minimum and against a bf16 GEMM of the same shape.
//!
//! Wall times are the CPU simulator's; the counters are what the kernels move on the chip.

use ascend_npu::fp8::{ScaleFormat, quantize_act, quantize_weight};
use ascend_npu::kernels::{Kernels, MatmulShape, WeightLayout};
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use ascend_npu::{Backend, Device, Stream, select_backend};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use half::bf16;

const K: usize = 7168;

fn traffic(stream: &Stream, run: impl FnOnce()) -> u64 {
    stream.synchronize().unwrap();
    let before = ascend_npu::sim::counters(0)
        .unwrap()
        .kernels
        .gm_to_local_bytes;
    run();
    stream.synchronize().unwrap();
    ascend_npu::sim::counters(0)
        .unwrap()
        .kernels
        .gm_to_local_bytes
        - before
}

fn fp8(c: &mut Criterion) {
    select_backend(Backend::Sim).expect("sim backend");
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let kernels = Kernels::load(&device).unwrap();

    let mut group = c.benchmark_group("fp8_quantize_1x128");
    let (rows, cols) = (128, K);
    let x: Vec<bf16> = (0..rows * cols)
        .map(|i| bf16::from_f32(((i % 97) as f32 - 48.0) * 0.01))
        .collect();
    group.throughput(Throughput::Elements((rows * cols) as u64));
    group.bench_function("host_reference_128x7168", |b| {
        b.iter(|| quantize_act(&x, rows, cols, ScaleFormat::Fp32).unwrap())
    });
    let dx = stream.upload(&x).unwrap();
    group.sample_size(10);
    group.bench_function("device_kernel_128x7168", |b| {
        b.iter(|| {
            Fp8Activations::quantize(&kernels, &stream, &dx, rows, cols, ScaleFormat::Fp32)
                .unwrap();
            stream.synchronize().unwrap();
        })
    });
    let dw = stream.upload(&x).unwrap();
    group.bench_function("device_weight_kernel_128x7168", |b| {
        b.iter(|| {
            Fp8Weight::quantize(&kernels, &stream, &dw, rows, cols, ScaleFormat::Fp32).unwrap();
            stream.synchronize().unwrap();
        })
    });
    group.finish();

    let mut group = c.benchmark_group("fp8_gemm_w8a16");
    group.sample_size(10);
    for (m, n) in [
        (1, 2048),
        (64, 2048),
        (128, 2048),
        (1, 7168),
        (64, 7168),
        (128, 7168),
        (512, 2048),
    ] {
        let w: Vec<f32> = (0..n * K)
            .map(|i| ((i % 251) as f32 - 125.0) * 1e-3)
            .collect();
        let weight = Fp8Weight::from_quantized(
            &stream,
            &quantize_weight(&w, n, K, ScaleFormat::Fp32).unwrap(),
        )
        .unwrap();
        let w_bf16 = stream
            .upload(&w.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>())
            .unwrap();
        let a = stream.upload(&vec![bf16::from_f32(0.5); m * K]).unwrap();
        let mut out = stream.alloc_uninit::<bf16>(m * n).unwrap();
        let fp8_bytes = traffic(&stream, || {
            fp8_gemm(
                &kernels,
                &stream,
                Fp8Input::Bf16(a.as_view()),
                &weight,
                Fp8Groups::None,
                &mut out,
                m,
            )
            .unwrap()
        });
        let bf16_bytes = traffic(&stream, || {
            kernels
                .matmul(
                    &stream,
                    &a,
                    &w_bf16,
                    &mut out,
                    MatmulShape { m, n, k: K },
                    WeightLayout::NK,
                )
                .unwrap()
        });
        // What the math must read at least: A once, B once (1 byte per weight), the scales.
        let minimum = (m * K * 2 + n * K + n.div_ceil(128) * K.div_ceil(128) * 4) as u64;
        // Weight bytes alone, from the kernels' traffic formulas (asserted exactly in the C++
        // tests): both kernels read the weights once per M tile, the FP8 one as 1 byte each.
        let tiles_m = m.div_ceil(m.next_multiple_of(16).clamp(16, 128)) as u64;
        let fp8_weights = tiles_m * (n * K) as u64;
        let bf16_weights = tiles_m * (n * K * 2) as u64;
        eprintln!(
            "M={m} N={n} K={K}: FP8 GEMM reads {fp8_bytes} B ({:.2}x the minimum {minimum}); \
             bf16 GEMM reads {bf16_bytes} B; weight bytes FP8 {fp8_weights} vs bf16 {bf16_weights} ({:.2}x)",
            fp8_bytes as f64 / minimum as f64,
            fp8_weights as f64 / bf16_weights as f64,
        );
        group.throughput(Throughput::Elements((2 * m * n * K) as u64));
        group.bench_function(format!("m{m}_n{n}_k{K}"), |b| {
            b.iter(|| {
                fp8_gemm(
                    &kernels,
                    &stream,
                    Fp8Input::Bf16(a.as_view()),
                    &weight,
                    Fp8Groups::None,
                    &mut out,
                    m,
                )
                .unwrap();
                stream.synchronize().unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fp8);
criterion_main!(benches);
