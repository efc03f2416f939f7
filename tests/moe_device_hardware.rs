//! Hardware twins of `moe_device_sim.rs` (routing with `outOut`, INT32 counts cast to INT64,
//! V3 local dispatch, the grouped-matmul group-sum rule, ...): run with
//! `cargo test --test moe_device_hardware -- --ignored` on a machine
//! with an NPU and CANN.

mod common;

moe_device_suite!(
    #[ignore = "needs an NPU: cargo test --test moe_device_hardware -- --ignored"]
    setup = common::hardware
);
