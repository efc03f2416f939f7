//! Hardware twins of `fp8_gemm_sim.rs` (the FP8 GEMM with M tiles padded to 16, quantization, checkpoints). Run with
//! `ASCEND_NPU_BACKEND=cann cargo test --test fp8_gemm_hardware -- --ignored` on a machine with an
//! NPU and CANN.

mod common;

fn setup() {}

fp8_gemm_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test fp8_gemm_hardware -- --ignored"]
    setup = setup
);
