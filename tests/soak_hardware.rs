//! Hardware twins of `soak_sim.rs` (the bounded soak test (`ASCEND_NPU_SOAK_ITERS=N` sets its length)): run with
//! `cargo test --test soak_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

soak_suite!(
    #[ignore = "needs an NPU: cargo test --test soak_hardware -- --ignored"]
    setup = common::hardware
);
