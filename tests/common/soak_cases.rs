//! A bounded soak test: several threads, each with its own streams, mix uploads, device-to-device
//! copies, our kernels (SwiGLU, FP8 activation quantization), an aclnn operator (MoE combine),
//! cross-stream event waits, early frees of buffers that queued work still uses, and bad input
//! the device must report; every result is checked. `ASCEND_NPU_SOAK_ITERS` (default 4 per
//! thread) makes it longer, e.g. `ASCEND_NPU_SOAK_ITERS=500 cargo test --test soak_sim`.
//! Instantiated by `soak_sim.rs` and its hardware twin `soak_hardware.rs`.

use ascend_npu::fp8::{ScaleFormat, quantize_act};
use ascend_npu::kernels::Kernels;
use ascend_npu::ops::fp8::Fp8Activations;
use ascend_npu::ops::moe::{self, CombineInputs, MoeShape};
use ascend_npu::{Device, Error, Stream};

const THREADS: usize = 3;

fn iterations() -> usize {
    std::env::var("ASCEND_NPU_SOAK_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// xorshift values in [-4, 4).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

fn silu_mul(g: f64, u: f64) -> f64 {
    g / (1.0 + (-g).exp()) * u
}

/// One iteration on `a` and `b` (two streams of one thread); panics on any wrong result.
fn iteration(kernels: &Kernels, a: &Stream, b: &Stream, seed: u64) {
    let len = 1 + (seed as usize * 97) % 3000;
    let gate = values(len, seed);
    let up = values(len, seed ^ 1);

    // Upload on a, copy device-to-device on a, drop the source before the queue drains.
    let g_src = a.upload(&gate).unwrap();
    let mut g = a.alloc_uninit::<f32>(len).unwrap();
    a.memcpy_dtod(&g_src, &mut g).unwrap();
    drop(g_src);
    let u = a.upload(&up).unwrap();
    let mut out = a.alloc_uninit::<f32>(len).unwrap();
    ascend_npu::kernels::swiglu(kernels, a, &g, &u, &mut out).unwrap();
    drop((g, u)); // freed in stream order, after the kernel
    let ready = a.record_event().unwrap();

    // b waits for a's SwiGLU, then copies its output into a buffer of its own.
    b.wait(&ready).unwrap();
    let mut copy = b.alloc_uninit::<f32>(len).unwrap();
    b.memcpy_dtod(&out, &mut copy).unwrap();
    let copied = b.record_event().unwrap();
    a.wait(&copied).unwrap(); // `out` must outlive b's read
    drop(out);
    let got = copy.to_vec().unwrap();
    for i in 0..len {
        let want = silu_mul(f64::from(gate[i]), f64::from(up[i]));
        // fp32 kernel: 8 fp32 ulps (see tests/kernels_sim.rs).
        let tol = 8.0 * 2f64.powi(-24) * want.abs() + 1e-37;
        assert!(
            (f64::from(got[i]) - want).abs() <= tol,
            "swiglu[{i}] seed {seed}"
        );
    }

    // FP8 activation quantization on b, bit-equal to the host.
    let rows = 1 + seed as usize % 5;
    let k = 1 + (seed as usize * 31) % 400;
    let x = values(rows * k, seed ^ 2);
    let dx = b.upload(&x).unwrap();
    let q = Fp8Activations::quantize(kernels, b, rows, k, ScaleFormat::Fp32, &dx).unwrap();
    drop(dx);
    let host = quantize_act(&x, rows, k, ScaleFormat::Fp32).unwrap();
    assert_eq!(q.codes().to_vec().unwrap(), host.codes(), "seed {seed}");
    assert_eq!(q.scales().to_vec().unwrap(), host.scales(), "seed {seed}");

    // Every third iteration: NaN input, reported at synchronisation; the stream goes on.
    if seed % 3 == 0 {
        let mut bad = x.clone();
        let at = seed as usize % bad.len();
        bad[at] = f32::NAN;
        let dbad = b.upload(&bad).unwrap();
        let _q = Fp8Activations::quantize(kernels, b, rows, k, ScaleFormat::Fp32, &dbad).unwrap();
        assert!(
            matches!(b.synchronize(), Err(Error::Quant(_))),
            "seed {seed}"
        );
    }

    // aclnn: MoE combine on a, against f64.
    let (tokens, top_k, hidden) = (1 + seed as usize % 4, 2, 8 + seed as usize % 9);
    let pairs = tokens * top_k;
    let y_host = values(pairs * hidden, seed ^ 3);
    let w_host = values(pairs, seed ^ 4);
    let mut perm: Vec<i32> = (0..pairs as i32).collect();
    perm.reverse();
    let y = a.upload(&y_host).unwrap();
    let w = a.upload(&w_host).unwrap();
    let idx = a.upload(&perm).unwrap();
    let mut combined = a.alloc_uninit::<f32>(tokens * hidden).unwrap();
    moe::combine(
        a,
        MoeShape {
            tokens,
            hidden,
            top_k,
            experts: top_k,
        },
        CombineInputs {
            y: y.as_view(),
            expanded_row_idx: idx.as_view(),
            weights: w.as_view(),
            shared: None,
        },
        &mut combined,
    )
    .unwrap();
    drop((y, w, idx));
    let got = combined.to_vec().unwrap();
    for t in 0..tokens {
        for h in 0..hidden {
            let (mut want, mut mag) = (0.0f64, 0.0f64);
            for j in 0..top_k {
                let p = f64::from(w_host[t * top_k + j])
                    * f64::from(y_host[perm[t * top_k + j] as usize * hidden + h]);
                want += p;
                mag += p.abs();
            }
            // fp32 products and sums: top_k + 1 roundings of at most Σ|w·y|.
            let tol = (top_k + 1) as f64 * 2f64.powi(-24) * mag + 1e-37;
            assert!(
                (f64::from(got[t * hidden + h]) - want).abs() <= tol,
                "combine seed {seed}"
            );
        }
    }
}

pub fn threads_and_streams_mixing_copies_kernels_aclnn_and_frees() {
    let device = Device::open(0).unwrap();
    let kernels = std::sync::Arc::new(Kernels::load(&device).unwrap());
    let iters = iterations();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let device = device.clone();
            let kernels = kernels.clone();
            std::thread::spawn(move || {
                let a = device.new_stream().unwrap();
                let b = device.new_stream().unwrap();
                for i in 0..iters {
                    iteration(&kernels, &a, &b, (t * 1_000_003 + i) as u64);
                }
                a.synchronize().unwrap();
                b.synchronize().unwrap();
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a soak thread failed");
    }
    let (errors, discarded) = ascend_npu::take_drop_errors();
    assert!(errors.is_empty() && discarded == 0, "{errors:?}");
    // The device still works.
    let s = device.new_stream().unwrap();
    assert_eq!(s.upload(&[1u8, 2, 3]).unwrap().to_vec().unwrap(), [1, 2, 3]);
}
