//! Hardware twins of `mla_layer_sim.rs` (a whole MLA layer from a safetensors checkpoint
//! against the f64 reference layer): run with `ASCEND_NPU_BACKEND=cann cargo test --test
//! mla_layer_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

mla_layer_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test --test mla_layer_hardware -- --ignored"]
    setup = setup
);
