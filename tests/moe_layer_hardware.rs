//! Hardware twins of `moe_layer_sim.rs` (a safetensors MoE layer against the f64 reference): run with
//! `cargo test --test moe_layer_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

moe_layer_suite!(
    #[ignore = "needs an NPU: cargo test --test moe_layer_hardware -- --ignored"]
    setup = common::hardware
);
