//! Hardware twins of `buffer_lifetime_sim.rs` (memory return on drop and slicing edges (one test in its own process: it reads free memory)): run with
//! `cargo test --test buffer_lifetime_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

buffer_lifetime_suite!(
    #[ignore = "needs an NPU: cargo test --test buffer_lifetime_hardware -- --ignored"]
    setup = common::hardware
);
