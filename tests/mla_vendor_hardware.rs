//! Hardware twins of `mla_vendor_sim.rs` (the MLA vendor operators against the f64
//! reference): run with `cargo test --test
//! mla_vendor_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

mla_vendor_suite!(
    #[ignore = "needs an NPU: cargo test --test mla_vendor_hardware -- --ignored"]
    setup = common::hardware
);
