//! Hardware twins of `runtime_kernel_binary_sim.rs`: run with
//! `ASCEND_NPU_DEVICE_KERNELS=<NPU build> cargo test --test runtime_kernel_hardware -- --ignored` on a
//! machine with an NPU and CANN.

mod common;

kernel_suite!(
    #[ignore = "needs an NPU: cargo test --test runtime_kernel_hardware -- --ignored"]
    setup = common::hardware
);
