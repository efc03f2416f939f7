//! Hardware twins of `vendor_matmul_sim.rs` (the vendor's dense matmuls against f64
//! products): run with `cargo test --test vendor_matmul_hardware --
//! --ignored` on a machine with an NPU and CANN.

mod common;

vendor_matmul_suite!(
    #[ignore = "needs an NPU: cargo test --test vendor_matmul_hardware -- --ignored"]
    setup = common::hardware
);
