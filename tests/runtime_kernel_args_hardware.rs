//! Hardware twins of `runtime_kernel_args_sim.rs`: a device-memory `argsData` blob launches,
//! and is read when the kernel starts. Run with
//! `cargo test --test runtime_kernel_args_hardware -- --ignored` on a
//! machine with an NPU and CANN.

#![cfg(feature = "sim")]

mod common;

kernel_args_suite!(
    #[ignore = "needs an NPU: cargo test --test runtime_kernel_args_hardware -- --ignored"]
    setup = common::hardware
);
