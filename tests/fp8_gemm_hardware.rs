//! Hardware twins of `fp8_gemm_sim.rs` (the FP8 GEMM with M tiles padded to 16, quantization, checkpoints). Run with
//! `cargo test --test fp8_gemm_hardware -- --ignored` on a machine with an
//! NPU and CANN.

mod common;

fp8_gemm_suite!(
    #[ignore = "needs an NPU: cargo test --test fp8_gemm_hardware -- --ignored"]
    setup = common::hardware
);
