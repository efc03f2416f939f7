//! Hardware twins of `bad_input_sim.rs` (the device-side checks of bad input (group offsets, non-finite values) and the size checks): run with
//! `cargo test --test bad_input_hardware -- --ignored` on a machine with an NPU and CANN.

mod common;

bad_input_suite!(
    #[ignore = "needs an NPU: cargo test --test bad_input_hardware -- --ignored"]
    setup = common::hardware
);
