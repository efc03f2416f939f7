//! Hardware twins of `validation_props_sim.rs` (the property tests of the operators' validation layers): run with
//! `cargo test --test validation_props_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

validation_props_suite!(
    #[ignore = "needs an NPU: cargo test --test validation_props_hardware -- --ignored"]
    setup = common::hardware
);
