//! `MlaAttention` where the device cannot run the vendor ops: an Ascend 950 (a product their
//! docs do not list) and a CANN without one of them. Each case runs in a child process of
//! this binary whose simulator the `ASCEND_SIM_*` variables configure (a simulator is
//! configured once per process). Simulator only: the fault is the simulator's to inject.

#![cfg(feature = "sim")]

mod common;

use common::child::{in_child, is_child};

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
