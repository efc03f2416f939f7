//! Our Ascend C kernels, built against the shim and launched through the simulator with the same
//! runtime launch calls as on an NPU, compared with plain f64 references.

mod common;

fn setup() {}

kernels_suite!(setup = setup);

/// Simulator only: it checks the simulator's own rules or builds.
#[test]
fn every_broken_kernel_is_caught_with_its_rule() {
    common::kernels_cases::every_broken_kernel_is_caught_with_its_rule();
}

/// Simulator only: it checks the simulator's own rules or builds.
#[test]
fn launches_are_checked_before_they_reach_the_device() {
    common::kernels_cases::launches_are_checked_before_they_reach_the_device();
}

/// Simulator only: it checks the simulator's own rules or builds.
#[test]
fn counters_report_the_traffic_of_a_launch() {
    common::kernels_cases::counters_report_the_traffic_of_a_launch();
}

/// Simulator only: it checks the simulator's own rules or builds.
#[test]
fn a_plain_ascend_c_kernel_builds_with_the_helper_and_launches() {
    common::kernels_cases::a_plain_ascend_c_kernel_builds_with_the_helper_and_launches();
}
