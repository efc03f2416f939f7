//! Our cube and vector kernels on the simulator, each against the same maths on the CPU in the
//! same run: the 1024³ matmul (fp16 in, fp32 out, "NT") and SwiGLU over 4M elements.
//!
//! Per kernel: global-memory reads and writes counted by the shim against the minimum the maths
//! needs, the modelled time on Ascend910B2 (`ascend_sim::cost`), the simulator's wall time, and
//! the CPU peers' (`matrixmultiply` sgemm, single-threaded; numpy when available).
//!
//! `ASCEND_NPU_BENCH_ITERS` sets the timed runs (median; default 5).

#[path = "common/mod.rs"]
mod common;

use ascend_npu::kernels::{Kernels, MatmulShape, WeightLayout};
use common::{counted, mb, median, numpy, ratio, secs};
use half::{bf16, f16};

fn main() {
    let (device, stream) = common::setup();
    let kernels = Kernels::load(&device).unwrap();

    println!(
        "\n| kernel | reads (× minimum) | writes (× minimum) | modelled on 910B2 | simulator | CPU `matrixmultiply` | numpy | simulator / numpy |"
    );
    println!("|---|---|---|---|---|---|---|---|");

    let (m, n, k) = (1024usize, 1024usize, 1024usize);
    let shape = MatmulShape { m, n, k };
    let a = stream.upload(&vec![f16::from_f32(0.5); m * k]).unwrap();
    let b = stream.upload(&vec![f16::from_f32(0.25); n * k]).unwrap();
    let mut out = stream.alloc_uninit::<f32>(m * n).unwrap();
    let d = counted(&stream, || {
        ascend_npu::kernels::matmul(&kernels, &stream, shape, WeightLayout::NK, &a, &b, &mut out)
            .unwrap()
    });
    let (min_read, min_written) = (((m * k + n * k) * 2) as u64, (m * n * 4) as u64);
    let sim = median(|| {
        ascend_npu::kernels::matmul(&kernels, &stream, shape, WeightLayout::NK, &a, &b, &mut out)
            .unwrap();
        stream.synchronize().unwrap();
    });
    let cpu = common::cpu_sgemm_nt(m, n, k);
    let np = numpy(
        "a=np.random.rand(1024,1024).astype(np.float32); b=np.random.rand(1024,1024).astype(np.float32)",
        "a@b.T",
    );
    println!(
        "| matmul 1024³ f16→f32 | {} ({:.2}×) | {} ({:.2}×) | {} | {} | {} | {} | {} |",
        mb(d.read()),
        d.read() as f64 / min_read as f64,
        mb(d.written()),
        d.written() as f64 / min_written as f64,
        secs(d.modelled_kernels()),
        secs(sim),
        secs(cpu),
        np.map_or("n/a".into(), secs),
        ratio(sim, np),
    );

    let len = 1usize << 22;
    let gate = stream.upload(&vec![bf16::from_f32(0.5); len]).unwrap();
    let up = stream.upload(&vec![bf16::from_f32(0.25); len]).unwrap();
    let mut o = stream.alloc_uninit::<bf16>(len).unwrap();
    let d = counted(&stream, || {
        ascend_npu::kernels::swiglu(&kernels, &stream, &gate, &up, &mut o).unwrap()
    });
    let sim = median(|| {
        ascend_npu::kernels::swiglu(&kernels, &stream, &gate, &up, &mut o).unwrap();
        stream.synchronize().unwrap();
    });
    let g: Vec<f32> = vec![0.5; len];
    let u: Vec<f32> = vec![0.25; len];
    let mut h = vec![0f32; len];
    let cpu = median(|| {
        for ((h, &g), &u) in h.iter_mut().zip(&g).zip(&u) {
            *h = g / (1.0 + (-g).exp()) * u;
        }
        std::hint::black_box(&h);
    });
    let np = numpy(
        "g=np.full(1<<22,0.5,np.float32); u=np.full(1<<22,0.25,np.float32)",
        "g/(1+np.exp(-g))*u",
    );
    println!(
        "| SwiGLU 4M bf16 | {} ({:.2}×) | {} ({:.2}×) | {} | {} | {} (f32 loop) | {} | {} |",
        mb(d.read()),
        d.read() as f64 / (len * 4) as f64,
        mb(d.written()),
        d.written() as f64 / (len * 2) as f64,
        secs(d.modelled_kernels()),
        secs(sim),
        secs(cpu),
        np.map_or("n/a".into(), secs),
        ratio(sim, np),
    );
}
