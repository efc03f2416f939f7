//! Hardware twins of `expert_parallel_sim.rs`: with two or more NPUs, run
//! `cargo test --test expert_parallel_hardware -- --ignored`.

mod common;

expert_parallel_suite!(
    #[ignore = "needs NPUs: cargo test --test expert_parallel_hardware -- --ignored"]
    setup = common::hardware
);
