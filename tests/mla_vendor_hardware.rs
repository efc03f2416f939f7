//! Hardware twins of `mla_vendor_sim.rs` (the MLA vendor operators against the f64
//! reference): run with `ASCEND_NPU_BACKEND=cann cargo test --test
//! mla_vendor_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

mla_vendor_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test mla_vendor_hardware -- --ignored"]
    setup = setup
);
