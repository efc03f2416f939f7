//! The MC2 operators on a simulated Atlas A2 SoC: the simulator models their A3 form only and
//! says so when they run (and the expert-parallel path does not pick them there).

#![cfg(feature = "sim")]

mod common;

use common::hccl_mc2_cases::{Fault, all_name, raw_mc2};
use common::ranks::{on_ranks, setup_ranks};

#[test]
fn mc2_ops_on_a2_name_the_rule() {
    setup_ranks();
    ascend_npu::sim::hccl::set_timeout(std::time::Duration::from_secs(20));
    let errs = on_ranks(2, |comm, stream| raw_mc2(comm, stream, Fault::None));
    all_name(&errs, "moe-distribute.a3-only");
}

/// The INT8 dispatch runs on the MC2 operators only: on A2 every rank gets
/// `Error::Unsupported` before anything is queued (no rank waits for another).
#[test]
fn int8_dispatch_on_a2_is_unsupported_on_every_rank() {
    use ascend_npu::ops::ep::{EpConfig, EpShape, Payload, Tokens, low_latency_dispatch_int8};
    setup_ranks();
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
