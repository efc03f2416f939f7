//! Hardware twins of `vendor_matmul_sim.rs` (the vendor's dense matmuls against f64
//! products): run with `ASCEND_NPU_BACKEND=cann cargo test --test vendor_matmul_hardware --
//! --ignored` on a machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

vendor_matmul_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test vendor_matmul_hardware -- --ignored"]
    setup = setup
);
