//! MoE on the simulator at DeepSeek-V3 sizes (hidden 7168, 256 experts, top-8,
//! moe_intermediate 2048): routing, dispatch (permute), combine (unpermute) for 1, 128 and 4096
//! tokens, and the whole layer for 1 and 128 tokens, each with the bytes the operators counted
//! against the minimum the step must move. (The simulator counts one pass over each tensor of
//! an aclnn operator, so those steps meet the minimum by construction; hardware runs of this
//! bench measure the real operators.)
//!
//! The whole layer runs FP8 experts. By default it uses 32 experts and 1 and 128 tokens: all 256
//! experts are 11.3 GB of FP8 weights (22.5 GB in bf16), more than the 24 GB machines of our CI
//! hold next to the simulator, and 4096 tokens take minutes per iteration on a CPU. Set
//! `ASCEND_NPU_BENCH_FULL=1` for 256 experts and 1, 128 and 4096 tokens. Wall times are the
//! CPU's.

use ascend_npu::fp8::{ScaleFormat, quantize_weight};
use ascend_npu::kernels::Kernels;
use ascend_npu::moe::MoeConfig;
use ascend_npu::ops::fp8::Fp8Weight;
use ascend_npu::ops::moe::{
    self, CombineInputs, FfnWeights, GroupSizes, MoeLayer, MoeShape, MoeWeights,
};
use ascend_npu::{Backend, Device, DeviceBuffer, Stream, select_backend};
use criterion::{Criterion, criterion_group, criterion_main};
use half::bf16;

const HIDDEN: usize = 7168;
const INTER: usize = 2048;

/// (read, written) bytes of aclnn operators and kernels during `run`.
fn counted(stream: &Stream, run: impl FnOnce()) -> (u64, u64) {
    stream.synchronize().unwrap();
    let b = ascend_npu::sim::counters(0).unwrap();
    run();
    stream.synchronize().unwrap();
    let a = ascend_npu::sim::counters(0).unwrap();
    (
        a.aclnn_read_bytes - b.aclnn_read_bytes + a.kernels.gm_to_local_bytes
            - b.kernels.gm_to_local_bytes,
        a.aclnn_write_bytes - b.aclnn_write_bytes + a.kernels.local_to_gm_bytes
            - b.kernels.local_to_gm_bytes,
    )
}

fn report(what: &str, (read, written): (u64, u64), (min_read, min_written): (u64, u64)) {
    eprintln!(
        "{what}: read {read} B ({:.2}x the minimum {min_read}), wrote {written} B ({:.2}x {min_written})",
        read as f64 / min_read as f64,
        written as f64 / min_written as f64
    );
}

fn fp8_stack(stream: &Stream, experts: usize, n: usize, k: usize) -> Fp8Weight {
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i % 113) as f32 - 56.0) * 1e-3)
        .collect();
    let q = quantize_weight(&w, n, k, ScaleFormat::Fp32).unwrap();
    let codes: Vec<_> = (0..experts)
        .flat_map(|_| q.codes().iter().copied())
        .collect();
    let scales: Vec<_> = (0..experts)
        .flat_map(|_| q.scales().iter().copied())
        .collect();
    Fp8Weight::upload(stream, experts, n, k, &codes, &scales).unwrap()
}

fn moe(c: &mut Criterion) {
    select_backend(Backend::Sim).expect("sim backend");
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let routing = MoeConfig::deepseek_v3();
    let (e, k) = (routing.n_routed_experts, routing.top_k);
    let kernels = Kernels::load(&device).unwrap();

    let mut group = c.benchmark_group("moe_steps");
    group.sample_size(10);
    for tokens in [1usize, 128, 4096] {
        let logits = stream
            .upload(
                &(0..tokens * e)
                    .map(|i| ((i * 37 % 101) as f32) * 0.01)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let bias = stream.upload(&vec![0f32; e]).unwrap();
        let route_min = ((tokens * e + e) as u64 * 4, (tokens * k) as u64 * 8);
        report(
            &format!("route T={tokens}"),
            counted(&stream, || {
                moe::route(&kernels, &stream, &routing, tokens, &logits, Some(&bias)).unwrap();
            }),
            route_min,
        );
        group.bench_function(format!("route_t{tokens}"), |b| {
            b.iter(|| {
                moe::route(&kernels, &stream, &routing, tokens, &logits, Some(&bias)).unwrap();
                stream.synchronize().unwrap();
            })
        });

        let (_, ids) =
            moe::route(&kernels, &stream, &routing, tokens, &logits, Some(&bias)).unwrap();
        let x = stream
            .upload(&vec![bf16::from_f32(0.25); tokens * HIDDEN])
            .unwrap();
        let rows = tokens * k;
        let shape = MoeShape {
            tokens,
            hidden: HIDDEN,
            top_k: k,
            experts: e,
        };
        let dispatch_min = (
            (tokens * HIDDEN * 2 + rows * 4) as u64,
            (rows * HIDDEN * 2 + rows * 4 + e * 8) as u64,
        );
        report(
            &format!("dispatch T={tokens}"),
            counted(&stream, || {
                moe::dispatch(&stream, shape, GroupSizes::Counts, &x, &ids).unwrap();
            }),
            dispatch_min,
        );
        group.bench_function(format!("dispatch_t{tokens}"), |b| {
            b.iter(|| {
                moe::dispatch(&stream, shape, GroupSizes::Counts, &x, &ids).unwrap();
                stream.synchronize().unwrap();
            })
        });

        let d = moe::dispatch(&stream, shape, GroupSizes::Counts, &x, &ids).unwrap();
        let w = stream.upload(&vec![0.125f32; rows]).unwrap();
        let mut out: DeviceBuffer<bf16> = stream.alloc_uninit(tokens * HIDDEN).unwrap();
        let combine_min = (
            (rows * HIDDEN * 2 + rows * 8) as u64,
            (tokens * HIDDEN * 2) as u64,
        );
        report(
            &format!("combine T={tokens}"),
            counted(&stream, || {
                moe::combine(
                    &stream,
                    shape,
                    CombineInputs {
                        y: d.expanded_x.as_view(),
                        expanded_row_idx: d.expanded_row_idx.as_view(),
                        weights: w.as_view(),
                        shared: None,
                    },
                    &mut out,
                )
                .unwrap();
            }),
            combine_min,
        );
        group.bench_function(format!("combine_t{tokens}"), |b| {
            b.iter(|| {
                moe::combine(
                    &stream,
                    shape,
                    CombineInputs {
                        y: d.expanded_x.as_view(),
                        expanded_row_idx: d.expanded_row_idx.as_view(),
                        weights: w.as_view(),
                        shared: None,
                    },
                    &mut out,
                )
                .unwrap();
                stream.synchronize().unwrap();
            })
        });
    }
    group.finish();

    // The whole layer, FP8 experts (W8A16).
    let full = std::env::var("ASCEND_NPU_BENCH_FULL").is_ok_and(|v| v == "1");
    let small = MoeConfig {
        n_routed_experts: if full { 256 } else { 32 },
        ..routing
    };
    let experts = FfnWeights::Fp8 {
        gate: fp8_stack(&stream, small.n_routed_experts, INTER, HIDDEN),
        up: fp8_stack(&stream, small.n_routed_experts, INTER, HIDDEN),
        down: fp8_stack(&stream, small.n_routed_experts, HIDDEN, INTER),
    };
    let shared = FfnWeights::Fp8 {
        gate: fp8_stack(&stream, 1, INTER, HIDDEN),
        up: fp8_stack(&stream, 1, INTER, HIDDEN),
        down: fp8_stack(&stream, 1, HIDDEN, INTER),
    };
    let router = stream
        .upload(
            &(0..small.n_routed_experts * HIDDEN)
                .map(|i| bf16::from_f32(((i % 7) as f32 - 3.0) * 1e-3))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let weights = MoeWeights {
        router,
        bias: None,
        experts,
        shared: Some(shared),
    };
    let layer = MoeLayer::new(small, HIDDEN, weights, kernels).unwrap();
    let mut group = c.benchmark_group(format!("moe_layer_fp8_{}_experts", small.n_routed_experts));
    group.sample_size(10);
    let token_counts: &[usize] = if full { &[1, 128, 4096] } else { &[1, 128] };
    for &tokens in token_counts {
        let x = stream
            .upload(&vec![bf16::from_f32(0.25); tokens * HIDDEN])
            .unwrap();
        // At least: every selected expert's three matrices once (1 byte per weight), the shared
        // expert's, the router, and x in and out.
        let active = (tokens * small.top_k).min(small.n_routed_experts);
        let min_read = ((active + 1) * 3 * INTER * HIDDEN
            + small.n_routed_experts * HIDDEN * 2
            + tokens * HIDDEN * 2) as u64;
        // Writes include every intermediate (logits, routing, expanded rows, gate/up/act, expert
        // outputs) and the FP8 GEMM's workspace ring, so they get no minimum.
        let (read, written) = counted(&stream, || {
            layer.forward(&stream, &x, tokens).unwrap();
        });
        eprintln!(
            "layer T={tokens}: read {read} B ({:.2}x the minimum {min_read}), wrote {written} B",
            read as f64 / min_read as f64
        );
        group.bench_function(format!("t{tokens}"), |b| {
            b.iter(|| {
                layer.forward(&stream, &x, tokens).unwrap();
                stream.synchronize().unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, moe);
criterion_main!(benches);
