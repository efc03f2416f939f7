//! Hardware twins of `mla_kernels_sim.rs`. Run with
//! `ASCEND_NPU_BACKEND=cann cargo test --test mla_kernels_hardware -- --ignored` on a machine
//! with an NPU and CANN.

mod common;

fn setup() {}

mla_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test mla_kernels_hardware -- --ignored"]
    setup = setup
);
