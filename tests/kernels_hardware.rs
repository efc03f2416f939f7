//! Hardware twins of `kernels_sim.rs` (SwiGLU and the matmul, with M tiles padded to 16 rows). Run with
//! `ASCEND_NPU_BACKEND=cann cargo test --test kernels_hardware -- --ignored` on a machine with an
//! NPU and CANN.

mod common;

fn setup() {}

kernels_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test kernels_hardware -- --ignored"]
    setup = setup
);
