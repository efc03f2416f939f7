//! Operator semantics the rule table's notes promise, through the C table: the two row-index
//! forms of aclnnMoeInitRoutingV3 (source to destination with −1, destination to source with an
//! uninitialised tail) and aclnnCast's conversions.

// The `acl!` helper calls the C table with test arguments; every call site is an FFI call
// by design, so the arguments being expanded inside its unsafe block is intended.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;

use ascend_sim::SocModel;
use ascend_sim::rules::{self, Arg, TensorMeta};
use ascend_sys::*;
use common::aclnn::{phase_one, phase_two};
use common::{Device, d2h, h2d, stream};

fn bytes<T: Copy>(v: &[T]) -> Vec<u8> {
    // SAFETY: plain numeric values, read as their bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        .to_vec()
}

fn i32s(b: &[u8]) -> Vec<i32> {
    b.chunks(4)
        .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

/// aclnnMoeInitRoutingV3 over 4 tokens × top-2 of 4 experts, experts 1..3 local.
fn v3(row_idx_type: i64) -> (Vec<i32>, Vec<i64>, Vec<f32>) {
    let _d = Device::set(0);
    let s = stream();
    let mut call = rules::sample("aclnnMoeInitRoutingV3").unwrap();
    call.set("rowIdxType", Arg::Int(row_idx_type));
    let (rc, msg, exec, mut made) = phase_one(&call);
    assert_eq!(rc, ACL_SUCCESS, "{msg}");
    let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
    let ids: [i32; 8] = [0, 1, 2, 1, 3, 0, 2, 2];
    h2d(made.ptr("x"), &bytes(&x));
    h2d(made.ptr("expertIdx"), &bytes(&ids));
    // The expanded rows start as a pattern so "not written" is visible.
    h2d(made.ptr("expandedXOut"), &bytes(&[-7f32; 48]));
    assert_eq!(
        phase_two("aclnnMoeInitRoutingV3", exec, &mut made, s),
        (0, 0)
    );
    let idx = i32s(&d2h(made.ptr("expandedRowIdxOut"), 32));
    let counts: Vec<i64> = d2h(made.ptr("expertTokensCountOrCumsumOut"), 16)
        .chunks(8)
        .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let ex: Vec<f32> = d2h(made.ptr("expandedXOut"), 48 * 4)
        .chunks(4)
        .map(|c| f32::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    acl!(aclrtDestroyStream(s));
    (idx, counts, ex)
}

#[test]
fn init_routing_v3_gather_form_maps_each_pair_to_its_row() {
    let (idx, counts, ex) = v3(0);
    // Local pairs sorted by expert, flat order within one: expert 1 has flat 1, 3; expert 2
    // has flat 2, 6, 7. Pairs of experts 0 and 3 are not placed (−1).
    assert_eq!(idx, [-1, 0, 2, 1, -1, -1, 3, 4]);
    assert_eq!(counts, [2, 3]);
    // Row r holds token flat/2's row of x (hidden 6); rows past the 5 placed are not written.
    for (row, flat) in [1usize, 3, 2, 6, 7].into_iter().enumerate() {
        let token = flat / 2;
        let want: Vec<f32> = (0..6).map(|h| (token * 6 + h) as f32).collect();
        assert_eq!(ex[row * 6..row * 6 + 6], want[..], "row {row}");
    }
    assert!(ex[30..].iter().all(|&v| v == -7.0), "{:?}", &ex[30..]);
}

#[test]
fn init_routing_v3_scatter_form_maps_each_row_to_its_pair_and_leaves_the_tail() {
    let (idx, counts, _) = v3(1);
    assert_eq!(idx[..5], [1, 3, 2, 6, 7]);
    let poison = i32::from_ne_bytes([ascend_sim::UNINIT_BYTE; 4]);
    assert_eq!(
        idx[5..],
        [poison; 3],
        "the tail is left uninitialised, not zero"
    );
    assert_eq!(counts, [2, 3]);
}

#[test]
fn cast_converts_as_documented() {
    let _d = Device::set(0);
    let s = stream();
    let cases: [(f32, i32); 6] = [
        (2.9, 2),
        (-2.9, -2),
        (f32::NAN, 0),
        (0.0, 0),
        (-0.5, 0),
        (1e10, i32::MAX),
    ];
    let call = rules::Call::new("aclnnCast")
        .tensor("self", Some(TensorMeta::new(&[6], ACL_FLOAT)))
        .int("dtype", i64::from(ACL_INT32))
        .tensor("out", Some(TensorMeta::new(&[6], ACL_INT32)));
    let (rc, msg, exec, mut made) = phase_one(&call);
    assert_eq!(rc, ACL_SUCCESS, "{msg}");
    let input: Vec<f32> = cases.iter().map(|c| c.0).collect();
    h2d(made.ptr("self"), &bytes(&input));
    assert_eq!(phase_two("aclnnCast", exec, &mut made, s), (0, 0));
    let got = i32s(&d2h(made.ptr("out"), 24));
    let want: Vec<i32> = cases.iter().map(|c| c.1).collect();
    assert_eq!(got, want, "truncation toward zero, NaN to 0");

    // INT32 counts to INT64, exactly.
    let mut call = rules::sample("aclnnCast").unwrap();
    call.set("self", Arg::Tensor(Some(TensorMeta::new(&[5], ACL_INT32))));
    let (rc, msg, exec, mut made) = phase_one(&call);
    assert_eq!(rc, ACL_SUCCESS, "{msg}");
    let counts: [i32; 5] = [0, 7, i32::MAX, 1, 123_456];
    h2d(made.ptr("self"), &bytes(&counts));
    assert_eq!(phase_two("aclnnCast", exec, &mut made, s), (0, 0));
    let got: Vec<i64> = d2h(made.ptr("out"), 40)
        .chunks(8)
        .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, counts.map(i64::from));
    acl!(aclrtDestroyStream(s));
}

/// Each aclnn launch is counted and modelled on its own: aclnnGroupedMatmulV4 over x [10, 4]
/// and weights [3, 4, 5] with group sizes 6, 0, 4 reads its tensors once, writes out once,
/// reports the MACs of the groups with rows only, and adds the cost model's time for exactly
/// that work. Device 2 is used by no other test of this file, so the differences are this
/// launch's.
#[test]
fn an_aclnn_launch_is_counted_and_modelled_by_the_cost_model() {
    if !common::sim_only("aclnn launch counters") {
        return;
    }
    let _d = Device::set(2);
    let s = stream();
    let call = rules::sample("aclnnGroupedMatmulV4").unwrap();
    let (rc, msg, exec, mut made) = phase_one(&call);
    assert_eq!(rc, ACL_SUCCESS, "{msg}");
    h2d(made.ptr("groupListOptional"), &bytes(&[6i64, 0, 4]));
    let before = ascend_sim::counters(2).unwrap();
    assert_eq!(
        phase_two("aclnnGroupedMatmulV4", exec, &mut made, s),
        (0, 0)
    );
    let after = ascend_sim::counters(2).unwrap();
    // x 10·4 bf16, the 4·5 bf16 weights of the two experts with rows, 3 int64 group sizes;
    // out 10·5 bf16.
    let (read, written, macs) = (10 * 4 * 2 + 2 * 4 * 5 * 2 + 3 * 8, 10 * 5 * 2, 10 * 4 * 5);
    assert_eq!(after.aclnn_launches - before.aclnn_launches, 1);
    assert_eq!(after.aclnn_read_bytes - before.aclnn_read_bytes, read);
    assert_eq!(after.aclnn_write_bytes - before.aclnn_write_bytes, written);
    assert_eq!(after.aclnn_macs - before.aclnn_macs, macs);
    let soc = SocModel::ascend910b2();
    let want = ascend_sim::cost::operator(
        &soc,
        &ascend_sim::cost::OperatorWork {
            read,
            written,
            macs,
            vector_ops: 0,
        },
    )
    .total();
    let got = (after.modelled_aclnn_ns - before.modelled_aclnn_ns) as f64 * 1e-9;
    // The counter keeps whole nanoseconds.
    assert!((got - want).abs() <= 0.5e-9, "{got} vs {want}");
    acl!(aclrtDestroyStream(s));
}
