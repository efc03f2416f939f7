//! The argument checks of routing and dispatch (issue 16's gaps, issue 10's scale and
//! non-finite logits): every invalid argument is a Rust-side `Error::InvalidArgument`, checked
//! before anything reaches the device (so the same error on an NPU, whatever CANN reports);
//! every valid edge runs and matches the f64 semantics. Instantiated by
//! `moe_validation_sim.rs` and its hardware twin `moe_validation_hardware.rs`.

use ascend_npu::Error;
use ascend_npu::moe::{MoeConfig, Scoring, TopKMethod};
use ascend_npu::ops::moe::{self, GroupSizes, GroupSizesBuffer, MoeShape};
use ascend_npu::reference::moe::{PermuteOptions, permute};
use ascend_npu::{Device, DeviceBuffer, DeviceSlice, Stream};
use half::bf16;

use super::Rng;
use super::moe::{kernels, noaux_tc as reference, small_v3};

/// `tokens` rows of `hidden`, `top_k` of `experts` experts.
fn shape(tokens: usize, hidden: usize, top_k: usize, experts: usize) -> MoeShape {
    MoeShape {
        tokens,
        hidden,
        top_k,
        experts,
    }
}

/// A stream on device 0 of the backend the suite selected.
fn stream() -> Stream {
    Device::open(0).unwrap().new_stream().unwrap()
}

/// `r` is an argument error raised before the device: `InvalidArgument`, or `Moe` for the
/// rules every MoE configuration shares with the reference.
#[track_caller]
fn assert_invalid<T>(r: Result<T, Error>, needle: &str) {
    match r {
        Err(Error::InvalidArgument { what, expected }) => {
            let text = format!("{what}; expected {expected}");
            assert!(text.contains(needle), "{text:?} lacks {needle:?}");
        }
        Err(Error::Moe(e)) => {
            let text = e.to_string();
            assert!(text.contains(needle), "{text:?} lacks {needle:?}");
        }
        Err(other) => panic!("expected InvalidArgument ({needle}), got {other:?}"),
        Ok(_) => panic!("expected InvalidArgument ({needle}), got Ok"),
    }
}

pub fn routing_validate_rejects_each_bad_field_with_invalid_argument() {
    let cases: Vec<(MoeConfig, &str)> = vec![
        (
            MoeConfig {
                n_routed_experts: 0,
                ..small_v3()
            },
            "n_routed_experts is 0",
        ),
        (
            MoeConfig {
                n_routed_experts: 2052,
                n_group: 4,
                ..small_v3()
            },
            "1..=2048",
        ),
        (
            MoeConfig {
                n_group: 0,
                ..small_v3()
            },
            "n_group is 0",
        ),
        (
            MoeConfig {
                n_group: 5,
                ..small_v3()
            },
            "divisible",
        ),
        // 2 experts per group: the operator's rule, checked here too (before the simulator's
        // or CANN's own check could report it).
        (
            MoeConfig {
                n_group: 16,
                ..small_v3()
            },
            "more than 2 experts per group",
        ),
        (
            MoeConfig {
                topk_group: 0,
                ..small_v3()
            },
            "topk_group is 0",
        ),
        (
            MoeConfig {
                topk_group: 5,
                ..small_v3()
            },
            "topk_group is 5",
        ),
        (
            MoeConfig {
                top_k: 0,
                ..small_v3()
            },
            "top_k is 0",
        ),
        (
            MoeConfig {
                top_k: 17,
                ..small_v3()
            },
            "top_k (17) exceeds the experts left",
        ),
        (
            MoeConfig {
                routed_scaling_factor: -1.0,
                ..small_v3()
            },
            "finite value > 0",
        ),
        (
            MoeConfig {
                routed_scaling_factor: 0.0,
                ..small_v3()
            },
            "finite value > 0",
        ),
        (
            MoeConfig {
                routed_scaling_factor: f64::NAN,
                ..small_v3()
            },
            "finite",
        ),
        (
            MoeConfig {
                routed_scaling_factor: f64::INFINITY,
                ..small_v3()
            },
            "finite",
        ),
        (
            MoeConfig {
                routed_scaling_factor: f64::NEG_INFINITY,
                ..small_v3()
            },
            "finite",
        ),
    ];
    for (r, needle) in cases {
        assert_invalid(moe::check_config(&r), needle);
    }
    // The valid edges.
    for r in [
        MoeConfig {
            topk_group: 4,
            top_k: 32,
            ..small_v3()
        },
        MoeConfig {
            top_k: 16,
            ..small_v3()
        },
        MoeConfig {
            top_k: 12,
            ..small_v3()
        },
        MoeConfig {
            n_routed_experts: 2048,
            n_group: 8,
            ..small_v3()
        },
        MoeConfig::deepseek_v2(),
        MoeConfig::deepseek_v3(),
    ] {
        moe::check_config(&r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    }
}

pub fn route_refuses_bad_configurations_before_the_device() {
    let stream = stream();
    let k = kernels(&stream);
    let logits = stream.upload(&[0f32; 32]).unwrap();
    let none = None::<&DeviceBuffer<f32>>;
    for (r, needle) in [
        (
            MoeConfig {
                n_group: 16,
                ..small_v3()
            },
            "more than 2 experts per group",
        ),
        (
            MoeConfig {
                routed_scaling_factor: -2.5,
                ..small_v3()
            },
            "finite value > 0",
        ),
        (
            MoeConfig {
                top_k: 0,
                ..small_v3()
            },
            "top_k is 0",
        ),
    ] {
        assert_invalid(moe::route(&k, &stream, &r, 1, &logits, none), needle);
    }
    // Wrong logits length, wrong bias length.
    assert_invalid(
        moe::route(&k, &stream, &small_v3(), 2, &logits, none),
        "32 elements",
    );
    let short_bias = stream.upload(&[0f32; 31]).unwrap();
    assert_invalid(
        moe::route(&k, &stream, &small_v3(), 1, &logits, Some(&short_bias)),
        "bias of 31",
    );
}

pub fn routing_valid_edges_match_the_reference() {
    let stream = stream();
    let k = kernels(&stream);
    let tokens = 5;
    let mut rng = Rng::new(77);
    let logits: Vec<f32> = rng.vec_f32(tokens * 32).iter().map(|v| v * 4.0).collect();
    let bias: Vec<f32> = rng.vec_f32(32).iter().map(|v| v * 0.1).collect();
    let (dl, db) = (
        stream.upload(&logits).unwrap(),
        stream.upload(&bias).unwrap(),
    );
    for r in [
        // Every group kept; every expert chosen.
        MoeConfig {
            topk_group: 4,
            top_k: 32,
            ..small_v3()
        },
        // Exactly the kept groups' experts.
        MoeConfig {
            top_k: 16,
            ..small_v3()
        },
        // Between topk_groups + experts per group (10) and their product (16).
        MoeConfig {
            top_k: 12,
            ..small_v3()
        },
        // Unnormalised sigmoid weights (gathered from the scores).
        MoeConfig {
            top_k: 12,
            norm_topk_prob: false,
            ..small_v3()
        },
    ] {
        let routed = moe::route(&k, &stream, &r, tokens, &dl, Some(&db)).unwrap();
        assert_routed_like(&format!("{r:?}"), routed, reference(&r, &logits, &bias));
    }
}

/// fp32 weights and ids from the device equal the f64 model's: the ids exactly, the weights
/// within one rounding of an f64 computation, plus the scale.
#[track_caller]
fn assert_routed_like(
    what: &str,
    (w, ids): (DeviceBuffer<f32>, DeviceBuffer<i32>),
    (want_w, want_ids): (Vec<f64>, Vec<i32>),
) {
    assert_eq!(ids.to_vec().unwrap(), want_ids, "{what}");
    for (g, w) in w.to_vec().unwrap().iter().zip(&want_w) {
        assert!(
            (f64::from(*g) - w).abs() <= 1e-6 * w.abs().max(1.0),
            "{what}: {g} vs {w}"
        );
    }
}

/// bf16 logits with DeepSeek's fp32 bias: normalised sigmoid weights, unnormalised ones
/// (gathered from fp32 scores after widening the logits) and softmax weights all match the f64
/// model; softmax with renormalisation stays unsupported.
pub fn bf16_logits_route_every_method_the_operator_computes() {
    let stream = stream();
    let k = kernels(&stream);
    let tokens = 3;
    let mut rng = Rng::new(8);
    let logits: Vec<bf16> = rng
        .vec_f32(tokens * 32)
        .iter()
        .map(|&v| bf16::from_f32(v * 3.0))
        .collect();
    let bias = vec![0f32; 32];
    let (dl, db) = (
        stream.upload(&logits).unwrap(),
        stream.upload(&bias).unwrap(),
    );
    let as_f32: Vec<f32> = logits.iter().map(|v| v.to_f32()).collect();
    for norm_topk_prob in [true, false] {
        let r = MoeConfig {
            norm_topk_prob,
            ..small_v3()
        };
        let (w, ids) = moe::route(&k, &stream, &r, tokens, &dl, Some(&db)).unwrap();
        let (want_w, want_ids) = reference(&r, &as_f32, &bias);
        assert_eq!(ids.to_vec().unwrap(), want_ids);
        for (g, w) in w.to_vec().unwrap().iter().zip(&want_w) {
            // fp32 weights (a few 2^-24 roundings) rounded once to bf16 (2^-8 relative).
            assert!(
                (g.to_f64() - w).abs() <= (2f64.powi(-8) + 1e-6) * w.abs(),
                "norm {norm_topk_prob}: {g} vs {w}"
            );
        }
    }
    // Softmax without renormalisation takes the operator's weights.
    let v2 = MoeConfig {
        scoring: Scoring::Softmax,
        method: TopKMethod::GroupLimitedGreedy,
        norm_topk_prob: false,
        ..small_v3()
    };
    moe::route(&k, &stream, &v2, tokens, &dl, None::<&DeviceBuffer<f32>>).unwrap();
    moe::route(&k, &stream, &v2, tokens, &dl, Some(&db)).unwrap();
    // Softmax with renormalisation cannot be computed by the operator.
    let renormalised = MoeConfig {
        norm_topk_prob: true,
        ..v2
    };
    match moe::route(&k, &stream, &renormalised, tokens, &dl, Some(&db)) {
        Err(Error::Unsupported { what, .. }) => assert!(what.contains("softmax"), "{what}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// The documented policy for non-finite logits (see `route`): the call succeeds and every
/// token still gets distinct ids in range; the finite tokens are routed as usual.
pub fn non_finite_logits_keep_ids_in_range_and_other_tokens_intact() {
    let stream = stream();
    let k = kernels(&stream);
    let r = small_v3();
    let mut rng = Rng::new(3);
    let mut logits: Vec<f32> = rng.vec_f32(4 * 32);
    logits[3] = f32::NAN;
    logits[32 + 7] = f32::INFINITY;
    logits[64 + 1] = f32::NEG_INFINITY;
    let dl = stream.upload(&logits).unwrap();
    let none = None::<&DeviceBuffer<f32>>;
    let (w, ids) = moe::route(&k, &stream, &r, 4, &dl, none).unwrap();
    let (w, ids) = (w.to_vec().unwrap(), ids.to_vec().unwrap());
    for t in 0..4 {
        let row = &ids[t * 4..t * 4 + 4];
        let mut sorted = row.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "token {t}: {row:?}");
        assert!(
            row.iter().all(|&e| (0..32).contains(&e)),
            "token {t}: {row:?}"
        );
    }
    // Token 3 is finite: routed exactly as alone.
    let (want_w, want_ids) = reference(&r, &logits[96..], &[0.0; 32]);
    assert_eq!(ids[12..], want_ids[..]);
    for (g, w) in w[12..].iter().zip(&want_w) {
        assert!((f64::from(*g) - w).abs() <= 1e-6 * w.abs().max(1.0));
    }
}

pub fn dispatch_rejects_each_bad_size_with_invalid_argument() {
    let stream = stream();
    let x = stream.upload(&[1f32; 8]).unwrap();
    let ids = stream.upload(&[0i32; 4]).unwrap();
    let c = GroupSizes::Counts;
    assert_invalid(
        moe::dispatch(&stream, shape(2, 4, 2, 0), c, &x, &ids),
        "1 <= top_k <= experts",
    );
    assert_invalid(
        moe::dispatch(&stream, shape(2, 4, 0, 4), c, &x, &ids),
        "top_k 0",
    );
    assert_invalid(
        moe::dispatch(&stream, shape(2, 4, 5, 4), c, &x, &ids),
        "top_k 5 of 4",
    );
    assert_invalid(
        moe::dispatch_padded(&stream, shape(2, 4, 2, 4), 0, &x, &ids),
        "capacity 0",
    );
    assert_invalid(
        moe::dispatch_padded(&stream, shape(2, 4, 0, 4), 2, &x, &ids),
        "top_k 0",
    );
    assert_invalid(
        moe::dispatch_padded(&stream, shape(2, 4, 5, 4), 2, &x, &ids),
        "top_k 5",
    );
    assert_invalid(
        moe::dispatch_padded(&stream, shape(2, 4, 1, 0), 2, &x, &ids),
        "0 experts",
    );
    assert_invalid(
        moe::dispatch_local(&stream, shape(2, 4, 2, 4), 2..2, &x, &ids),
        "local range 2..2",
    );
    assert_invalid(
        moe::dispatch_local(&stream, shape(2, 4, 2, 4), 3..5, &x, &ids),
        "local range 3..5",
    );
    assert_invalid(
        moe::dispatch_local(&stream, shape(2, 4, 0, 4), 0..4, &x, &ids),
        "top_k 0",
    );
    assert_invalid(
        moe::dispatch_local(&stream, shape(2, 4, 5, 4), 0..4, &x, &ids),
        "top_k 5",
    );
    assert_invalid(
        moe::dispatch_local(&stream, shape(2, 4, 1, 0), 0..1, &x, &ids),
        "0 experts",
    );
}

pub fn dispatch_with_top_k_equal_to_experts_sends_every_token_to_every_expert() {
    let stream = stream();
    let (tokens, hidden, experts) = (3, 5, 4);
    let x: Vec<f32> = (0..tokens * hidden).map(|v| v as f32).collect();
    // Each token lists every expert once, in a different order.
    let ids: Vec<i32> = vec![3, 1, 0, 2, 0, 1, 2, 3, 2, 3, 1, 0];
    let (dx, did) = (stream.upload(&x).unwrap(), stream.upload(&ids).unwrap());
    let d = moe::dispatch(
        &stream,
        shape(tokens, hidden, experts, experts),
        GroupSizes::Counts,
        &dx,
        &did,
    )
    .unwrap();
    let perm = permute(&ids, experts, experts, &PermuteOptions::default()).unwrap();
    let row_idx: Vec<i64> = d
        .expanded_row_idx
        .to_vec()
        .unwrap()
        .iter()
        .map(|&v| v.into())
        .collect();
    assert_eq!(row_idx, perm.expanded_row_idx());
    match d.group_sizes {
        GroupSizesBuffer::Counts(c) => assert_eq!(c.to_vec().unwrap(), [3i64; 4]),
        GroupSizesBuffer::Cumsum(_) => panic!("asked for counts"),
    }
    let p = moe::dispatch_padded(
        &stream,
        shape(tokens, hidden, experts, experts),
        3,
        &dx,
        &did,
    )
    .unwrap();
    assert!(
        p.expanded_row_idx.to_vec().unwrap().iter().all(|&r| r >= 0),
        "nothing dropped"
    );
    // The last expert-parallel rank's range (ending at `experts`): the local pairs in (expert,
    // flat index) order, the others -1.
    let range = 2..experts;
    let l = moe::dispatch_local(
        &stream,
        shape(tokens, hidden, experts, experts),
        range.clone(),
        &dx,
        &did,
    )
    .unwrap();
    let mut local: Vec<usize> = (0..ids.len())
        .filter(|&i| range.contains(&(ids[i] as usize)))
        .collect();
    local.sort_by_key(|&i| (ids[i], i));
    let mut want_idx = vec![-1i32; ids.len()];
    for (row, &pair) in local.iter().enumerate() {
        want_idx[pair] = row as i32;
    }
    assert_eq!(l.expanded_row_idx.to_vec().unwrap(), want_idx);
    assert_eq!(l.counts.to_vec().unwrap(), [3i64, 3]);
    let got = l.expanded_x.to_vec().unwrap();
    for (row, &pair) in local.iter().enumerate() {
        let t = pair / experts;
        assert_eq!(
            got[row * hidden..(row + 1) * hidden],
            x[t * hidden..(t + 1) * hidden],
            "row {row}"
        );
    }
}

pub fn zero_tokens_or_zero_hidden_dispatch_to_empty_results() {
    let stream = stream();
    let empty_x = stream.alloc_zeroed::<f32>(0).unwrap();
    let empty_ids = stream.alloc_zeroed::<i32>(0).unwrap();
    for sizes in [GroupSizes::Counts, GroupSizes::Cumsum] {
        let d = moe::dispatch(&stream, shape(0, 4, 2, 4), sizes, &empty_x, &empty_ids).unwrap();
        assert!(d.expanded_x.is_empty() && d.expanded_row_idx.is_empty());
        match d.group_sizes {
            GroupSizesBuffer::Counts(c) => assert_eq!(c.to_vec().unwrap(), [0i64; 4]),
            GroupSizesBuffer::Cumsum(c) => assert_eq!(c.to_vec().unwrap(), [0i32; 4]),
        }
    }
    let p = moe::dispatch_padded(&stream, shape(0, 4, 2, 4), 3, &empty_x, &empty_ids).unwrap();
    assert_eq!(p.expanded_x.len(), 4 * 3 * 4);
    assert!(p.expanded_row_idx.is_empty());
    let l = moe::dispatch_local(&stream, shape(0, 4, 2, 4), 1..3, &empty_x, &empty_ids).unwrap();
    assert!(l.expanded_x.is_empty());
    assert_eq!(l.counts.to_vec().unwrap(), [0i64; 2]);
    // Zero hidden: the pairs exist, the rows are empty.
    let ids = stream.upload(&[1i32, 2, 3, 0]).unwrap();
    let d = moe::dispatch(
        &stream,
        shape(2, 0, 2, 4),
        GroupSizes::Counts,
        &empty_x,
        &ids,
    )
    .unwrap();
    assert!(d.expanded_x.is_empty());
    // Nothing reached the operator: the bookkeeping keeps its length and stays zero.
    assert_eq!(d.expanded_row_idx.to_vec().unwrap(), [0; 4]);
    match d.group_sizes {
        GroupSizesBuffer::Counts(c) => assert_eq!(c.to_vec().unwrap(), [0i64; 4]),
        GroupSizesBuffer::Cumsum(_) => panic!("asked for counts"),
    }
    let p = moe::dispatch_padded(&stream, shape(2, 0, 2, 4), 3, &empty_x, &ids).unwrap();
    assert!(p.expanded_x.is_empty());
    assert_eq!(p.expanded_row_idx.to_vec().unwrap(), [0; 4]);
    let l = moe::dispatch_local(&stream, shape(2, 0, 2, 4), 1..3, &empty_x, &ids).unwrap();
    assert!(l.expanded_x.is_empty());
    assert_eq!(l.expanded_row_idx.to_vec().unwrap(), [0; 4]);
    assert_eq!(l.counts.to_vec().unwrap(), [0i64; 2]);
}

/// [`TopKMethod::Greedy`] is plain top-k: the group fields play no part, whatever they hold.
pub fn greedy_routing_ignores_the_group_fields() {
    let stream = stream();
    let k = kernels(&stream);
    let tokens = 4;
    let logits = Rng::new(21).vec_f32(tokens * 32);
    let bias = vec![0f32; 32];
    let dl = stream.upload(&logits).unwrap();
    let none = None::<&DeviceBuffer<f32>>;
    // One group of four kept, as the group-limited methods would read these fields.
    let greedy = MoeConfig {
        method: TopKMethod::Greedy,
        n_group: 4,
        topk_group: 1,
        ..small_v3()
    };
    let routed = moe::route(&k, &stream, &greedy, tokens, &dl, none).unwrap();
    let plain = MoeConfig {
        n_group: 1,
        topk_group: 1,
        ..greedy
    };
    assert_routed_like("greedy", routed, reference(&plain, &logits, &bias));
}

/// bf16 logits without a bias and unnormalised sigmoid weights: the weights are gathered from
/// fp32 scores, so the logits are widened first even with no bias to widen them for.
pub fn bf16_logits_without_a_bias_gather_unnormalised_weights() {
    let stream = stream();
    let k = kernels(&stream);
    let tokens = 3;
    let logits: Vec<bf16> = Rng::new(5)
        .vec_f32(tokens * 32)
        .iter()
        .map(|&v| bf16::from_f32(v * 3.0))
        .collect();
    let as_f32: Vec<f32> = logits.iter().map(|v| v.to_f32()).collect();
    let dl = stream.upload(&logits).unwrap();
    let r = MoeConfig {
        norm_topk_prob: false,
        ..small_v3()
    };
    let (w, ids) = moe::route(&k, &stream, &r, tokens, &dl, None::<&DeviceBuffer<f32>>).unwrap();
    let (want_w, want_ids) = reference(&r, &as_f32, &[0.0; 32]);
    assert_eq!(ids.to_vec().unwrap(), want_ids);
    for (g, w) in w.to_vec().unwrap().iter().zip(&want_w) {
        // fp32 scores (a few 2^-24 roundings) rounded once to bf16 (2^-8 relative).
        assert!(
            (g.to_f64() - w).abs() <= (2f64.powi(-8) + 1e-6) * w.abs(),
            "{g} vs {w}"
        );
    }
}
