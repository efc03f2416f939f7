//! Hardware twins of `runtime_kernel_binary_sim.rs`: run with
//! `ASCEND_NPU_BACKEND=cann ASCEND_NPU_DEVICE_KERNELS=<NPU build> cargo test -- --ignored` on a
//! machine with an NPU and CANN.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Cann).expect("CANN is installed");
}

kernel_suite!(
    #[ignore = "needs an NPU: ASCEND_NPU_BACKEND=cann cargo test -- --ignored"]
    setup = setup
);
