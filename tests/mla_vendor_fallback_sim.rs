//! `MlaAttention` where the device cannot run the vendor ops: an Ascend 950 (a product their
//! docs do not list) and a CANN without one of them. Each case runs in a child process of
//! this binary whose simulator the `ASCEND_SIM_*` variables configure (a simulator is
//! configured once per process). Simulator only: the fault is the simulator's to inject.

#![cfg(feature = "sim")]

mod common;

/// Set in a child process: run the case instead of spawning children.
const CHILD_VAR: &str = "ASCEND_NPU_TEST_MLA_FALLBACK_CHILD";

/// Runs test `name` of this binary again, alone, on the compiled-in simulator with the
/// variables `vars`, and checks that it passed.
fn in_child(name: &str, vars: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe);
    child
        .args(["--exact", name, "--test-threads=1"])
        .env(CHILD_VAR, "1")
        // CI also runs the suites through the drop-in libraries; the injected fault is the
        // compiled-in simulator's.
        .env_remove(ascend_npu::BACKEND_VAR);
    for (key, value) in vars {
        child.env(key, value);
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{vars:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_child() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

/// `mla-prolog-v3.products`, `fia-v3.products`.
#[test]
fn the_vendor_ops_refuse_an_ascend_950_and_attention_takes_our_kernels() {
    if !is_child() {
        return in_child(
            "the_vendor_ops_refuse_an_ascend_950_and_attention_takes_our_kernels",
            &[("ASCEND_SIM_SOC", "Ascend950PR_9599")],
        );
    }
    common::mla_vendor_cases::vendor_ops_refuse_a_product_they_do_not_list();
    common::mla_vendor_cases::attention_takes_our_kernels_where_the_device_lacks_the_vendor_ops(
        "Ascend950PR_9599",
    );
}

/// A CANN without the prolog (its first phase gone), or without the attention's second
/// phase: each is enough to take our kernels.
#[test]
fn a_cann_without_a_vendor_op_takes_our_kernels() {
    const PROLOG: &str = "aclnnMlaPrologV3WeightNzGetWorkspaceSize";
    const ATTENTION: &str = "aclnnFusedInferAttentionScoreV3";
    if !is_child() {
        for missing in [PROLOG, ATTENTION] {
            in_child(
                "a_cann_without_a_vendor_op_takes_our_kernels",
                &[("ASCEND_SIM_ABSENT_FUNCTIONS", missing)],
            );
        }
        return;
    }
    let missing = std::env::var("ASCEND_SIM_ABSENT_FUNCTIONS").unwrap();
    common::mla_vendor_cases::attention_takes_our_kernels_where_the_device_lacks_the_vendor_ops(
        &missing,
    );
}
