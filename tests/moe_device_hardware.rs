//! Hardware twins of `moe_device_sim.rs` (routing with `outOut`, INT32 counts cast to INT64,
//! V3 local dispatch, the grouped-matmul group-sum rule, ...): run with
//! `ASCEND_NPU_BACKEND=cann cargo test --test moe_device_hardware -- --ignored` on a machine
//! with an NPU and CANN (each case selects the backend that variable names).

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

moe_device_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test moe_device_hardware -- --ignored"]
    setup = setup
);
