//! The bf16 grouped GEMM of the MoE experts (`aclnnGroupedMatmulV4` through
//! `ops::moe::grouped_matmul`, the `moe_layer` example's default path) on the simulator, against
//! the same maths on the CPU in the same run.
//!
//! 8 experts of `[N = 2048, K = 7168]` (checkpoint layout), rows spread over the experts as a
//! router would: 8 rows (one token, top-8), 128 rows over 4 experts, and 1024 rows over all 8.
//! Per row of the table: the bytes the simulated operator counted, the least a device kernel must
//! move and compute (x, the weights of the experts that received rows, the output; their MACs)
//! and its modelled time on Ascend910B2 (`ascend_sim::cost::operator`), the simulator's wall
//! time, `matrixmultiply` (single-threaded) and numpy when available.

#[path = "common/mod.rs"]
mod common;

use ascend_npu::kernels::{MatmulShape, WeightLayout};
use ascend_npu::ops::moe::grouped_matmul;
use common::{mb, median, numpy, ratio, secs};
use half::bf16;

const EXPERTS: usize = 8;
const N: usize = 2048;
const K: usize = 7168;

fn main() {
    let (_device, stream) = common::setup();
    let soc = ascend_sim::SocModel::ascend910b2();
    let w: Vec<bf16> = (0..EXPERTS * N * K)
        .map(|i| bf16::from_f32(((i % 251) as f32 - 125.0) * 1e-3))
        .collect();
    let dw = stream.upload(&w).unwrap();
    println!(
        "\n| rows → experts | counted reads / writes | least a kernel moves | modelled on 910B2 | simulator | CPU `matrixmultiply` | numpy | simulator / numpy |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let cases: [(&str, Vec<i64>); 3] = [
        ("8 → 8 (1 token, top-8)", vec![1; EXPERTS]),
        ("128 → 4", vec![64, 32, 16, 16, 0, 0, 0, 0]),
        ("1024 → 8", vec![128; EXPERTS]),
    ];
    for (name, counts) in cases {
        let rows: usize = counts.iter().sum::<i64>() as usize;
        let x = stream.upload(&vec![bf16::from_f32(0.5); rows * K]).unwrap();
        let dcounts = stream.upload(&counts).unwrap();
        let mut out = stream.alloc_uninit::<bf16>(rows * N).unwrap();
        let mut run = || {
            grouped_matmul(
                &stream,
                MatmulShape {
                    m: rows,
                    n: N,
                    k: K,
                },
                WeightLayout::NK,
                &x,
                &dw,
                &dcounts,
                &mut out,
            )
            .unwrap()
        };
        let d = common::counted(&stream, &mut run);
        let sim = median(|| {
            run();
            stream.synchronize().unwrap();
        });
        let active = counts.iter().filter(|&&c| c > 0).count();
        let least_read = (rows * K * 2 + active * N * K * 2 + EXPERTS * 8) as u64;
        let least_written = (rows * N * 2) as u64;
        let macs = (rows * N * K) as u64;
        let model = ascend_sim::cost::operator(
            &soc,
            &ascend_sim::cost::OperatorWork {
                read: least_read,
                written: least_written,
                macs,
                vector_ops: 0,
            },
        );
        let cpu = cpu_grouped(&counts);
        let groups = counts
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let np = numpy(
            &format!(
                "counts=[{groups}]\nw=np.random.rand({EXPERTS},{N},{K}).astype(np.float32)\nx=np.full(({rows},{K}),0.5,np.float32)\noff=np.cumsum([0]+counts)"
            ),
            "[x[off[e]:off[e+1]]@w[e].T for e in range(len(counts)) if counts[e]]",
        );
        println!(
            "| {name} | {} / {} | {} / {}, {:.2} GMAC | {} ({}-bound) | {} | {} | {} | {} |",
            mb(d.read()),
            mb(d.written()),
            mb(least_read),
            mb(least_written),
            macs as f64 / 1e9,
            secs(model.total()),
            model.bound(),
            secs(sim),
            secs(cpu),
            np.map_or("n/a".into(), secs),
            ratio(sim, np),
        );
    }
}

/// The same groups with `matrixmultiply` in f32.
fn cpu_grouped(counts: &[i64]) -> f64 {
    let rows: usize = counts.iter().sum::<i64>() as usize;
    let w: Vec<f32> = (0..EXPERTS * N * K)
        .map(|i| (i % 251) as f32 * 1e-3)
        .collect();
    let x = vec![0.5f32; rows * K];
    let mut out = vec![0f32; rows * N];
    median(|| {
        let mut r0 = 0usize;
        for (e, &c) in counts.iter().enumerate() {
            let c = c as usize;
            if c == 0 {
                continue;
            }
            // SAFETY: x rows r0..r0+c (stride K), expert e's [N, K] read as K×N through
            // strides (1, K), out rows r0..r0+c (stride N): in bounds, disjoint, alive.
            unsafe {
                matrixmultiply::sgemm(
                    c,
                    K,
                    N,
                    1.0,
                    x.as_ptr().add(r0 * K),
                    K as isize,
                    1,
                    w.as_ptr().add(e * N * K),
                    1,
                    K as isize,
                    0.0,
                    out.as_mut_ptr().add(r0 * N),
                    N as isize,
                    1,
                );
            }
            r0 += c;
        }
        std::hint::black_box(&out);
    })
}
