//! Hardware twins of `soak_sim.rs` (the bounded soak test (`ASCEND_NPU_SOAK_ITERS=N` sets its length)): run with
//! `cargo test --test soak_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

soak_suite!(
    #[ignore = "needs an NPU: cargo test --test soak_hardware -- --ignored"]
    setup = setup
);
