//! Hardware twins of `moe_validation_sim.rs`: run with
//! `ASCEND_NPU_BACKEND=cann cargo test -- --ignored` on a machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

moe_validation_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test -- --ignored"]
    setup = setup
);
