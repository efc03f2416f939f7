//! Our kernels on the simulator: wall time of the CPU emulation, and the counted work and
//! global-memory traffic of one launch against the minimum the math needs, with the time a
//! roofline model of the SoC predicts for that work.
//!
//! The simulator's wall time says nothing about the NPU; the counters and the model do.

use std::hint::black_box;

use ascend_npu::kernels::{Kernels, MatmulShape, WeightLayout};
use ascend_npu::{Backend, Device, select_backend};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use half::f16;

/// Ascend910B2 from the platform INI: 24 cube cores at 1800 MHz, 16·16·16 fp16 MACs per cycle.
const CUBE_MACS_PER_S: f64 = 24.0 * 4096.0 * 1.8e9;
/// HBM bandwidth: commonly quoted for 910B, not vendor-verified (cann-api-facts §7.3).
const HBM_BYTES_PER_S: f64 = 1.6e12;

fn matmul_1024(c: &mut Criterion) {
    select_backend(Backend::Sim).expect("sim backend");
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let kernels = Kernels::load(&device).unwrap();
    let (m, n, k) = (1024usize, 1024usize, 1024usize);
    let shape = MatmulShape { m, n, k };
    let a = stream.upload(&vec![f16::from_f32(0.5); m * k]).unwrap();
    let b = stream.upload(&vec![f16::from_f32(0.25); n * k]).unwrap();
    let mut out = stream.alloc_uninit::<f32>(m * n).unwrap();

    // One launch, counted.
    stream.synchronize().unwrap();
    let before = ascend_npu::sim::counters(0).unwrap().kernels;
    kernels
        .matmul(&stream, &a, &b, &mut out, shape, WeightLayout::NK)
        .unwrap();
    stream.synchronize().unwrap();
    let after = ascend_npu::sim::counters(0).unwrap().kernels;
    let read = after.gm_to_local_bytes - before.gm_to_local_bytes;
    let written = after.local_to_gm_bytes - before.local_to_gm_bytes;
    let macs = after.cube_macs - before.cube_macs;
    let min_read = ((m * k + n * k) * 2) as u64;
    let min_written = (m * n * 4) as u64;
    let compute_s = macs as f64 / CUBE_MACS_PER_S;
    let memory_s = (read + written) as f64 / HBM_BYTES_PER_S;
    eprintln!(
        "matmul 1024^3 f16->f32 NT: read {read} B ({:.2}x the minimum {min_read}), written \
         {written} B ({:.2}x {min_written}), {macs} cube MACs ({:.2}x m·n·k); modelled on \
         Ascend910B2: {:.1} us compute, {:.1} us memory",
        read as f64 / min_read as f64,
        written as f64 / min_written as f64,
        macs as f64 / (m * n * k) as f64,
        compute_s * 1e6,
        memory_s * 1e6,
    );

    let mut group = c.benchmark_group("sim_matmul");
    group.sample_size(10);
    group.throughput(Throughput::Elements((2 * m * n * k) as u64)); // FLOP per iteration
    group.bench_function("f16_f32_nt_1024", |bench| {
        bench.iter(|| {
            kernels
                .matmul(&stream, &a, &b, &mut out, shape, WeightLayout::NK)
                .unwrap();
            stream.synchronize().unwrap();
        })
    });
    group.finish();
    black_box(&out);
}

criterion_group!(benches, matmul_1024);
criterion_main!(benches);
