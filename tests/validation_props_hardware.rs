//! Hardware twins of `validation_props_sim.rs` (the property tests of the operators' validation layers): run with
//! `cargo test --test validation_props_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

validation_props_suite!(
    #[ignore = "needs an NPU: cargo test --test validation_props_hardware -- --ignored"]
    setup = setup
);
