//! Hardware twin of `hccl_mc2_a2_sim.rs`: on an Atlas A2 (910B) cluster of 16 or more NPUs
//! visible to one process, run
//! `ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_a2_hardware -- --ignored`.

mod common;

use common::hccl_mc2_cases::{
    ON_A2, a2_falls_back_where_a_limit_does_not_fit, int8_dispatch_quantizes_the_portable_rows,
    mc2_path_equals_portable_path_and_reference,
};

fn cann() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

#[test]
#[ignore = "needs 16 A2 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_a2_hardware -- --ignored"]
fn mc2_fullmesh_equals_portable_and_reference_on_a2() {
    cann();
    mc2_path_equals_portable_path_and_reference(ON_A2);
}

#[test]
#[ignore = "needs 16 A2 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_a2_hardware -- --ignored"]
fn mc2_int8_dispatch_on_a2_quantizes_the_portable_rows() {
    cann();
    int8_dispatch_quantizes_the_portable_rows(ON_A2);
}

#[test]
#[ignore = "needs 16 A2 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_a2_hardware -- --ignored"]
fn a2_takes_all_to_all_v_where_a_limit_does_not_fit() {
    cann();
    a2_falls_back_where_a_limit_does_not_fit();
}

#[test]
#[ignore = "needs 16 A2 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_a2_hardware -- --ignored"]
fn expert_parallel_layer_with_int8_dispatch_on_a2() {
    cann();
    common::expert_parallel_layer_cases::expert_parallel_layer_with_int8_dispatch();
}

#[test]
#[ignore = "needs 16 A2 NPUs: ASCEND_NPU_BACKEND=cann cargo test --test hccl_mc2_a2_hardware -- --ignored"]
fn expert_parallel_layer_int8_falls_back_to_bf16_on_a2() {
    cann();
    common::expert_parallel_layer_cases::expert_parallel_layer_int8_falls_back_to_bf16();
}
