//! Hardware twins of `runtime_sim.rs`: run with `cargo test --test runtime_hardware -- --ignored`
//! on a machine with an NPU and CANN.

mod common;

runtime_suite!(
    #[ignore = "needs an NPU: cargo test --test runtime_hardware -- --ignored"]
    setup = common::hardware
);
