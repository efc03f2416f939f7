//! Hardware twins of `mla_fp8_sim.rs` (`MlaAttention` over an FP8 latent cache against the
//! f64 reference): run with `ASCEND_NPU_BACKEND=cann cargo test --test mla_fp8_hardware --
//! --ignored` on a machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

mla_fp8_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test mla_fp8_hardware -- --ignored"]
    setup = setup
);
