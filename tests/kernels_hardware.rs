//! Hardware twins of `kernels_sim.rs` (SwiGLU and the matmul, with M tiles padded to 16 rows). Run with
//! `cargo test --test kernels_hardware -- --ignored` on a machine with an
//! NPU and CANN.

mod common;

kernels_suite!(
    #[ignore = "needs an NPU: cargo test --test kernels_hardware -- --ignored"]
    setup = common::hardware
);
