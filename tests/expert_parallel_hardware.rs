//! Hardware twins of `expert_parallel_sim.rs`: with two or more NPUs, run
//! `ASCEND_NPU_BACKEND=cann cargo test --test expert_parallel_hardware -- --ignored`.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

expert_parallel_suite!(
    #[ignore = "needs NPUs: ASCEND_NPU_BACKEND=cann cargo test --test expert_parallel_hardware -- --ignored"]
    setup = setup
);
