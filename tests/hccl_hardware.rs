//! Hardware twins of `hccl_sim.rs`: with two or more NPUs, run
//! `cargo test --test hccl_hardware -- --ignored`.

mod common;

hccl_suite!(
    #[ignore = "needs NPUs: cargo test --test hccl_hardware -- --ignored"]
    setup = common::hardware
);
