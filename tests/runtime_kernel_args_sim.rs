//! Kernel arguments live in device memory: the simulator's rules for `argsData`, checked with
//! raw calls (the safe layer never passes a host blob as `argsData`).

#![cfg(feature = "sim")]

mod common;

fn setup() {}

kernel_args_suite!(setup = setup);

/// The rule itself fires only in the simulator: on an NPU a host `argsData` faults the core.
#[test]
fn a_host_blob_as_args_data_is_rejected_with_its_rule() {
    common::kernel_args_cases::a_host_blob_as_args_data_is_rejected_with_its_rule();
}
