//! Hardware twins of `moe_validation_sim.rs`: run with
//! `cargo test --test moe_validation_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

moe_validation_suite!(
    #[ignore = "needs an NPU: cargo test --test moe_validation_hardware -- --ignored"]
    setup = common::hardware
);
