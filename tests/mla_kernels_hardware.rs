//! Hardware twins of `mla_kernels_sim.rs`. Run with
//! `cargo test --test mla_kernels_hardware -- --ignored` on a machine
//! with an NPU and CANN.

mod common;

mla_suite!(
    #[ignore = "needs an NPU: cargo test --test mla_kernels_hardware -- --ignored"]
    setup = common::hardware
);
