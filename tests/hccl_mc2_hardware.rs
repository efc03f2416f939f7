//! Hardware twin of `hccl_mc2_sim.rs`: on an Atlas A3 machine with two or more NPUs, run
//! `ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_hardware -- --ignored`.

mod common;

#[test]
#[ignore = "needs A3 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_hardware -- --ignored"]
fn mc2_low_latency_equals_portable_and_reference() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
    common::hccl_mc2_cases::mc2_path_equals_portable_path_and_reference(
        common::hccl_mc2_cases::ON_A3,
    );
}

#[test]
#[ignore = "needs A3 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_hardware -- --ignored"]
fn mc2_int8_dispatch_quantizes_the_portable_rows() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
    common::hccl_mc2_cases::int8_dispatch_quantizes_the_portable_rows(
        common::hccl_mc2_cases::ON_A3,
    );
}

/// V1's ops called directly with this library's arguments (a one-rank TP group, one shared
/// expert without shared-expert ranks, all seven dispatch outputs) on 8 A3 ranks: a CANN that
/// has V1 takes them.
#[test]
#[ignore = "needs 8 A3 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_hardware -- --ignored"]
fn v1_ops_take_this_librarys_arguments() {
    use common::hccl_mc2_cases::{Fault, raw_mc2_v1};
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
    for n in common::ranks::rank_counts(&[8]) {
        let errs = common::ranks::on_ranks(n, |comm, stream| raw_mc2_v1(comm, stream, Fault::None));
        assert!(errs.iter().all(Option::is_none), "{errs:?}");
    }
}

/// The low-latency pair at V1's shape (8 ranks, H 7168, every rank with tokens): under a CANN
/// without V2 (8.1) it runs on V1, elsewhere on V2; either way it equals the portable path and
/// the f64 reference.
#[test]
#[ignore = "needs 8 A3 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_hardware -- --ignored"]
fn mc2_at_v1_shape_equals_portable_and_reference() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
    common::hccl_mc2_cases::mc2_path_equals_portable_path_and_reference(
        common::hccl_mc2_cases::V1_ON_A3,
    );
}
