//! The MC2 operators on 16 simulated Atlas A2 (910B) ranks, their "fullmesh" form: the
//! low-latency path on them equals the portable path and the f64 reference, bf16 and INT8;
//! where an A2 limit does not fit, every rank takes all-to-all-v; each A2 run-time rule fails
//! every rank with its id.

#![cfg(feature = "sim")]

mod common;

use common::hccl_mc2_cases::{
    Fault, ON_A2, a2_falls_back_where_a_limit_does_not_fit, all_name,
    int8_dispatch_quantizes_the_portable_rows, mc2_path_equals_portable_path_and_reference,
    over_the_token_limit_fails_every_rank, raw_mc2,
};
use common::ranks::{on_ranks, rank_counts, setup_devices_on};

/// The cases share the simulator's timeout: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A2's smallest EP size: 16 devices (the compiled-in simulator; under the `cann` provider,
/// `ASCEND_SIM_DEVICES`, 16 in CI's A2 run).
fn setup() -> std::sync::MutexGuard<'static, ()> {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_devices_on("Ascend910B2", 16, None);
    serial
}

#[test]
fn mc2_fullmesh_equals_portable_and_reference_on_a2() {
    let _serial = setup();
    mc2_path_equals_portable_path_and_reference(ON_A2);
}

#[test]
fn mc2_int8_dispatch_on_a2_quantizes_the_portable_rows() {
    let _serial = setup();
    int8_dispatch_quantizes_the_portable_rows(ON_A2);
}

#[test]
fn a2_rank_over_the_token_limit_fails_every_rank_at_once() {
    let _serial = setup();
    over_the_token_limit_fails_every_rank(ON_A2);
}

#[test]
fn a2_takes_all_to_all_v_where_a_limit_does_not_fit() {
    let _serial = setup();
    a2_falls_back_where_a_limit_does_not_fit();
}

/// A2 runs "fullmesh" only: the A3 form (commAlg NULL) and "hierarchy" (its driver is not
/// simulated) fail every rank with their rules, as does a 1-D mask with a true after a false.
#[test]
fn mc2_ops_on_a2_name_the_rule() {
    let _serial = setup();
    common::ranks::set_sim_hccl_timeout(std::time::Duration::from_secs(20));
    let errs = on_ranks(2, |comm, stream| raw_mc2(comm, stream, Fault::None));
    all_name(&errs, "moe-distribute.a2-comm-alg");
    for n in rank_counts(&[16]) {
        let errs = on_ranks(n, |comm, stream| {
            raw_mc2(comm, stream, Fault::A2(c"fullmesh"))
        });
        assert!(errs.iter().all(Option::is_none), "{errs:?}");
        let errs = on_ranks(n, |comm, stream| {
            raw_mc2(comm, stream, Fault::A2(c"hierarchy"))
        });
        all_name(&errs, "moe-distribute.a2-hierarchy-driver");
        let errs = on_ranks(n, |comm, stream| raw_mc2(comm, stream, Fault::A2MaskOrder));
        all_name(&errs, "moe-distribute.a2-mask-order");
    }
    common::ranks::set_sim_hccl_timeout(std::time::Duration::ZERO);
}

/// The INT8 dispatch runs on the MC2 operators only: at 2 ranks (below A2's 16) every rank
/// gets `Error::Unsupported` before anything is queued (no rank waits for another).
#[test]
fn int8_dispatch_on_a2_is_unsupported_on_every_rank() {
    use ascend_npu::ops::ep::{EpConfig, EpShape, Payload, Tokens, low_latency_dispatch_int8};
    let _serial = setup();
    let shape = EpShape {
        config: EpConfig {
            num_ranks: 2,
            num_experts: 4,
        },
        hidden: 1024,
        top_k: 2,
    };
    let errs = on_ranks(2, |comm, stream| {
        let x = stream.upload(&vec![half::bf16::ONE; 1024]).unwrap();
        let ids = stream.upload(&[0i32, 3]).unwrap();
        let w = stream.upload(&[0.5f32, 0.5]).unwrap();
        let tokens = Tokens {
            x: Payload::Bf16(&x),
            topk_idx: &ids,
            topk_weights: &w,
        };
        low_latency_dispatch_int8(comm, stream, &shape, tokens, 1).err()
    });
    for (r, e) in errs.iter().enumerate() {
        match e {
            Some(ascend_npu::Error::Unsupported { reason, .. }) => {
                assert!(reason.contains("Atlas A3"), "rank {r}: {reason}")
            }
            other => panic!("rank {r}: {other:?}"),
        }
    }
}

/// `EpMoeLayer::with_int8_dispatch` on 16 A2 ranks, bf16 and FP8 expert weights, against the
/// single-device layer and the f64 reference on the rows' INT8 dequantization.
#[test]
fn expert_parallel_layer_with_int8_dispatch_on_a2() {
    let _serial = setup();
    common::expert_parallel_layer_cases::expert_parallel_layer_with_int8_dispatch();
}

/// Below A2's 16 ranks the INT8 layer dispatches bf16, bit for bit the bf16 layer.
#[test]
fn expert_parallel_layer_int8_falls_back_to_bf16_on_a2() {
    let _serial = setup();
    common::expert_parallel_layer_cases::expert_parallel_layer_int8_falls_back_to_bf16();
}
