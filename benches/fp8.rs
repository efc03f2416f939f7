//! FP8 on the simulator: the FP8-emulated GEMM (W8A16) at DeepSeek-V3 decode shapes (M = 1, 64,
//! 128; N = 2048, 7168; K = 7168) and one prefill shape, with f32 block scales (V3's checkpoints)
//! and with power-of-two UE8M0 scales (which the kernel folds into its decode and accumulates
//! all of K in L0C), each against the bf16 cube matmul of the same shape; then the quantization
//! kernels.
//!
//! Per row: global-memory reads and writes counted by the shim, the modelled time on
//! Ascend910B2 (`ascend_sim::cost`) of the FP8 GEMM and of the bf16 GEMM, the simulator's wall
//! time, and the same maths on the CPU in the same run: decode then GEMM with `matrixmultiply`
//! (single-threaded) and with numpy when available.
//!
//! `ASCEND_NPU_BENCH_ITERS` sets the timed runs (median; default 5). `ASCEND_NPU_BENCH_QUICK=1`
//! runs the M = 1, N = 2048 rows only.

#[path = "common/mod.rs"]
mod common;

use ascend_npu::fp8::{ScaleFormat, quantize_weight};
use ascend_npu::kernels::{Kernels, MatmulShape, WeightLayout};
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use common::{NUMPY_E4M3, counted, mb, median, numpy, ratio, secs};
use half::bf16;

const K: usize = 7168;

fn main() {
    let (device, stream) = common::setup();
    let kernels = Kernels::load(&device).unwrap();
    let quick = std::env::var("ASCEND_NPU_BENCH_QUICK").is_ok_and(|v| v == "1");

    println!(
        "\n| M × N (K = 7168) | scales | FP8 GEMM reads / writes | bf16 GEMM reads / writes | modelled FP8 / bf16 on 910B2 | FP8 / bf16 | simulator | CPU decode + `matrixmultiply` | numpy decode-then-GEMM | simulator / numpy |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let shapes: &[(usize, usize)] = if quick {
        &[(1, 2048)]
    } else {
        &[
            (1, 2048),
            (16, 2048),
            (64, 2048),
            (128, 2048),
            (1, 7168),
            (128, 7168),
            (512, 2048),
        ]
    };
    for &(m, n) in shapes {
        let w: Vec<f32> = (0..n * K)
            .map(|i| ((i % 251) as f32 - 125.0) * 1e-3)
            .collect();
        let w_bf16 = stream
            .upload(&w.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>())
            .unwrap();
        let a = stream.upload(&vec![bf16::from_f32(0.5); m * K]).unwrap();
        let mut out = stream.alloc_uninit::<bf16>(m * n).unwrap();
        let bf = counted(&stream, || {
            ascend_npu::kernels::matmul(
                &kernels,
                &stream,
                MatmulShape { m, n, k: K },
                WeightLayout::NK,
                &a,
                &w_bf16,
                &mut out,
            )
            .unwrap()
        });
        for format in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
            let q = quantize_weight(&w, n, K, format).unwrap();
            let weight = Fp8Weight::from_quantized(&stream, &q).unwrap();
            let gemm = |out: &mut ascend_npu::DeviceBuffer<bf16>| {
                fp8_gemm(
                    &kernels,
                    &stream,
                    m,
                    Fp8Input::Bf16(a.as_view()),
                    &weight,
                    Fp8Groups::None,
                    out,
                )
                .unwrap()
            };
            let f = counted(&stream, || gemm(&mut out));
            let sim = median(|| {
                gemm(&mut out);
                stream.synchronize().unwrap();
            });
            let cpu = cpu_decode_gemm(&q, m, n);
            let np = numpy(
                &format!(
                    "{NUMPY_E4M3}\nrng=np.random.default_rng(0)\ncodes=(rng.integers(0,256,({n},{K}),dtype=np.uint8)&0x7E)\ns=rng.random(({n}//128,{K}//128),dtype=np.float32)\na=np.full(({m},{K}),0.5,np.float32)"
                ),
                &format!(
                    "w=(LUT[codes].reshape({n}//128,128,{K}//128,128)*s[:,None,:,None]).reshape({n},{K}); a@w.T"
                ),
            );
            let (mf, mbf) = (f.modelled_kernels(), bf.modelled_kernels());
            println!(
                "| {m} × {n} | {} | {} / {} | {} / {} | {} / {} | {:.2} | {} | {} | {} | {} |",
                if format == ScaleFormat::Ue8m0 {
                    "UE8M0 (folded)"
                } else {
                    "f32"
                },
                mb(f.read()),
                mb(f.written()),
                mb(bf.read()),
                mb(bf.written()),
                secs(mf),
                secs(mbf),
                mf / mbf,
                secs(sim),
                secs(cpu),
                np.map_or("n/a".into(), secs),
                ratio(sim, np),
            );
        }
    }

    println!(
        "\n| quantization kernel (128 × 7168 bf16) | reads | writes | modelled on 910B2 | simulator |"
    );
    println!("|---|---|---|---|---|");
    let (rows, cols) = (128, K);
    let x: Vec<bf16> = (0..rows * cols)
        .map(|i| bf16::from_f32(((i % 97) as f32 - 48.0) * 0.01))
        .collect();
    let dx = stream.upload(&x).unwrap();
    let act = || {
        Fp8Activations::quantize(&kernels, &stream, rows, cols, ScaleFormat::Fp32, &dx).unwrap();
    };
    let weight = || {
        Fp8Weight::quantize(&kernels, &stream, rows, cols, ScaleFormat::Fp32, &dx).unwrap();
    };
    for (name, run) in [
        ("activations, 1×128 scales", &act as &dyn Fn()),
        ("weights, 128×128 scales", &weight),
    ] {
        let d = counted(&stream, run);
        let sim = median(|| {
            run();
            stream.synchronize().unwrap();
        });
        println!(
            "| {name} | {} | {} | {} | {} |",
            mb(d.read()),
            mb(d.written()),
            secs(d.modelled_kernels()),
            secs(sim)
        );
    }
}

/// Decode (code × block scale, f32) then `C = A · Wᵀ` with `matrixmultiply`: the CPU peer.
fn cpu_decode_gemm(q: &ascend_npu::fp8::BlockQuantized, m: usize, n: usize) -> f64 {
    let lut: Vec<f32> = (0..=255u8)
        .map(|c| ascend_npu::fp8::F8E4M3::from_bits(c).to_f32())
        .collect();
    let a = vec![0.5f32; m * K];
    let mut w = vec![0f32; n * K];
    let mut c = vec![0f32; m * n];
    let kb = K.div_ceil(128);
    common::median(|| {
        for (r, row) in w.chunks_mut(K).enumerate() {
            let codes = &q.codes()[r * K..(r + 1) * K];
            for (i, (v, code)) in row.iter_mut().zip(codes).enumerate() {
                *v = lut[code.to_bits() as usize] * q.scales()[(r / 128) * kb + i / 128];
            }
        }
        // SAFETY: a is m×K, w is read as K×n through strides (1, K), c is m×n; all live and
        // disjoint for the call.
        unsafe {
            matrixmultiply::sgemm(
                m,
                K,
                n,
                1.0,
                a.as_ptr(),
                K as isize,
                1,
                w.as_ptr(),
                1,
                K as isize,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        std::hint::black_box(&c);
    })
}
