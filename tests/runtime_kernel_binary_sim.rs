//! Kernel binaries and shared kernels on the simulator (bodies in `common/kernel_cases.rs`).

#![cfg(feature = "sim")]

mod common;

fn setup() {
    common::backend::select();
}

kernel_suite!(setup = setup);
