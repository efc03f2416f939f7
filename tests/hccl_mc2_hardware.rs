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
