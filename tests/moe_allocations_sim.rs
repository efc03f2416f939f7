//! After warm-up, a MoE layer's forward pass makes no device allocation: its intermediates come
//! from the stream's caching pool and its tilings from the stream's constant cache; with a
//! caller-supplied workspace, not even the first call does. One test in
//! its own process, so the simulator's allocation counter sees only this test.

mod common;

use ascend_npu::kernels::Kernels;
use ascend_npu::moe::MoeConfig;
use ascend_npu::ops::moe::{FfnWeights, MoeLayer, MoeWeights};
use ascend_npu::{Device, Stream};
use half::bf16;

/// Deterministic values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<bf16> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            bf16::from_f32(((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale)
        })
        .collect()
}

fn ffn(stream: &Stream, stack: usize, inter: usize, hidden: usize, seed: u64) -> FfnWeights {
    let n = stack * inter * hidden;
    FfnWeights::Bf16 {
        gate: stream.upload(&values(n, seed, 0.1)).unwrap(),
        up: stream.upload(&values(n, seed + 1, 0.1)).unwrap(),
        down: stream.upload(&values(n, seed + 2, 0.1)).unwrap(),
        intermediate: inter,
    }
}

/// Allocations on device 0 so far, from the simulator behind the active provider.
fn allocations() -> u64 {
    common::backend::counters(0)
        .expect("this suite runs on a simulator")
        .allocations
}

#[test]
fn moe_forward_makes_no_device_allocation_after_warm_up() {
    common::backend::select();
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let routing = MoeConfig {
        n_routed_experts: 16,
        n_group: 4,
        topk_group: 2,
        top_k: 3,
        ..MoeConfig::deepseek_v3()
    };
    let (hidden, inter, tokens) = (64, 32, 7);
    let weights = MoeWeights {
        router: stream
            .upload(&values(routing.n_routed_experts * hidden, 1, 0.01))
            .unwrap(),
        bias: Some(
            stream
                .upload(
                    &(0..routing.n_routed_experts)
                        .map(|e| e as f32 * 0.05)
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
        ),
        experts: ffn(&stream, routing.n_routed_experts, inter, hidden, 10),
        shared: Some(ffn(&stream, 1, 16, hidden, 20)),
    };
    let layer = MoeLayer::new(routing, hidden, weights, Kernels::load(&device).unwrap()).unwrap();
    let x = stream.upload(&values(tokens * hidden, 30, 1.0)).unwrap();

    let before_warm_up = allocations();
    let first = layer
        .forward(&stream, &x, tokens)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(
        allocations() > before_warm_up,
        "the counter must see the first call's allocations"
    );
    stream.synchronize().unwrap();

    let warm = allocations();
    for call in 0..3 {
        let out = layer.forward(&stream, &x, tokens).unwrap();
        // Reused blocks must not leak one call's data into the next.
        assert_eq!(out.to_vec().unwrap(), first, "call {call}");
    }
    stream.synchronize().unwrap();
    assert_eq!(allocations(), warm, "device allocations after warm-up");
    assert!(stream.pooled_bytes() > 0);

    // A caller-supplied workspace, sized from the warm stream's pool, makes even the first call
    // on a fresh stream allocation-free.
    let fresh = device.new_stream().unwrap();
    let size = 2 * stream.pooled_bytes() + (1 << 20);
    fresh
        .supply_workspace(fresh.alloc_uninit::<u8>(size).unwrap())
        .unwrap();
    let supplied = allocations();
    let out = layer.forward(&fresh, &x, tokens).unwrap();
    assert_eq!(out.to_vec().unwrap(), first);
    assert_eq!(
        allocations(),
        supplied,
        "device allocations with a workspace"
    );
    drop(out);
    fresh.trim_pool().unwrap();
    assert!(
        fresh.pooled_bytes() > 0,
        "workspace blocks stay with the stream"
    );
    let empty = fresh.alloc_uninit::<u8>(0).unwrap();
    assert!(
        fresh.supply_workspace(empty).is_ok(),
        "an empty workspace is ignored"
    );
    drop(fresh);

    // The kernels' tiling cache keeps no stream alive: a stream that launched a tiled kernel is
    // destroyed when its last handle (and its buffers) go, while the kernels live on.
    let kernels = Kernels::load(&device).unwrap();
    let other = device.new_stream().unwrap();
    let a = other.upload(&values(100, 40, 1.0)).unwrap();
    let mut out = other.alloc_zeroed::<bf16>(100).unwrap();
    ascend_npu::kernels::swiglu(&kernels, &other, &a, &a, &mut out).unwrap();
    drop((a, out));
    let raw = other.as_raw();
    drop(other);
    let query = ascend_npu::raw_api().unwrap().aclrtStreamQuery().unwrap();
    let mut status = 0;
    // SAFETY: the simulator validates handles through its registry; a destroyed one is an
    // error, not undefined behaviour.
    let code = unsafe { query(raw, &mut status) };
    assert_ne!(code, 0, "the stream outlived its last handle");
    drop((kernels, layer));

    stream.trim_pool().unwrap();
    assert_eq!(stream.pooled_bytes(), 0);
    stream.synchronize().unwrap();
    let (errors, discarded) = ascend_npu::take_drop_errors();
    assert!(errors.is_empty() && discarded == 0, "{errors:?}");
}
