//! The MC2 operators' first version (aclnnMoeDistributeDispatch / Combine, CANN 8.1) under a
//! CANN without V2: the low-latency path takes them on Atlas A3 (8 ranks, H 7168) and on A2
//! ("fullmesh", 16 ranks) and equals the portable path and the f64 reference, bf16 and INT8;
//! where V1 cannot carry a rank's routing (no mask: a `-1` id, a rank without tokens) every
//! rank takes all-to-all-v; a rank over `max_tokens_per_rank` fails every rank at once. Each
//! case runs in a child process whose simulator lacks V2's four functions.

#![cfg(feature = "sim")]

mod common;

use common::child::{in_child, is_child};
use common::hccl_mc2_cases::{
    V1_ON_A2, V1_ON_A3, int8_dispatch_quantizes_the_portable_rows,
    mc2_path_equals_portable_path_and_reference, v1_falls_back_where_a_rank_cannot_travel_unmasked,
};

/// V2's functions, left out of the child's simulator.
const WITHOUT_V2: &str = "aclnnMoeDistributeDispatchV2GetWorkspaceSize,aclnnMoeDistributeDispatchV2,\
    aclnnMoeDistributeCombineV2GetWorkspaceSize,aclnnMoeDistributeCombineV2";

/// Runs test `name` in a child on `devices` devices of `soc` without V2; in the child, selects
/// the backend those variables describe and says whether to run the case.
fn on_v1(name: &str, soc: &str, devices: &str) -> bool {
    without(name, (soc, devices), WITHOUT_V2)
}

/// [`on_v1`] with the functions `absent` left out instead.
fn without(name: &str, (soc, devices): (&str, &str), absent: &str) -> bool {
    if !is_child() {
        in_child(
            name,
            &[
                ("ASCEND_SIM_SOC", soc),
                ("ASCEND_SIM_DEVICES", devices),
                ("ASCEND_SIM_ABSENT_FUNCTIONS", absent),
                ("ASCEND_SIM_HCCL_TIMEOUT_MS", "20000"),
            ],
        );
        return false;
    }
    common::backend::select();
    true
}

/// A version counts only with both its ops: without V2's combine the pair takes V1, and
/// without V1's combine as well it takes all-to-all-v (the round trip holds either way).
#[test]
fn a_version_missing_one_op_is_not_taken() {
    const NAME: &str = "a_version_missing_one_op_is_not_taken";
    const V1_COMBINE: &str = "aclnnMoeDistributeCombineGetWorkspaceSize";
    const V2_COMBINE: &str = "aclnnMoeDistributeCombineV2";
    let cases = [V2_COMBINE.to_string(), format!("{V2_COMBINE},{V1_COMBINE}")];
    if !is_child() {
        for absent in &cases {
            without(NAME, ("Ascend910_9392", "8"), absent);
        }
        return;
    }
    common::backend::select();
    let absent = std::env::var("ASCEND_SIM_ABSENT_FUNCTIONS").unwrap();
    let want = if absent == cases[0] {
        ascend_npu::ops::ep::EpTransport::Auto
    } else {
        ascend_npu::ops::ep::EpTransport::Portable
    };
    let used = common::ranks::on_ranks(8, |comm, stream| {
        common::hccl_mc2_cases::low_latency_round_trip_at(comm, stream, V1_ON_A3.hidden).unwrap()
    });
    assert!(used.iter().all(|&t| t == want), "{absent}: {used:?}");
}

#[test]
fn v1_on_a3_equals_portable_and_reference() {
    if on_v1(
        "v1_on_a3_equals_portable_and_reference",
        "Ascend910_9392",
        "8",
    ) {
        mc2_path_equals_portable_path_and_reference(V1_ON_A3);
        int8_dispatch_quantizes_the_portable_rows(V1_ON_A3);
    }
}

#[test]
fn v1_on_a3_falls_back_where_routing_cannot_travel_unmasked() {
    let name = "v1_on_a3_falls_back_where_routing_cannot_travel_unmasked";
    if on_v1(name, "Ascend910_9392", "8") {
        v1_falls_back_where_a_rank_cannot_travel_unmasked(V1_ON_A3);
    }
}

#[test]
fn v1_on_a2_equals_portable_and_reference() {
    if on_v1(
        "v1_on_a2_equals_portable_and_reference",
        "Ascend910B2",
        "16",
    ) {
        mc2_path_equals_portable_path_and_reference(V1_ON_A2);
        int8_dispatch_quantizes_the_portable_rows(V1_ON_A2);
        v1_falls_back_where_a_rank_cannot_travel_unmasked(V1_ON_A2);
    }
}

/// On A2, `HCCL_INTRA_PCIE_ENABLE=1` with `HCCL_INTRA_ROCE_ENABLE=0` makes V1 run its layered
/// algorithm (which the simulator refuses, and whose limits the library does not model):
/// every rank takes all-to-all-v.
#[test]
fn v1_on_a2_with_the_layered_variables_takes_all_to_all_v() {
    const NAME: &str = "v1_on_a2_with_the_layered_variables_takes_all_to_all_v";
    if !is_child() {
        return in_child(
            NAME,
            &[
                ("ASCEND_SIM_SOC", "Ascend910B2"),
                ("ASCEND_SIM_DEVICES", "16"),
                ("ASCEND_SIM_ABSENT_FUNCTIONS", WITHOUT_V2),
                ("HCCL_INTRA_PCIE_ENABLE", "1"),
                ("HCCL_INTRA_ROCE_ENABLE", "0"),
            ],
        );
    }
    common::backend::select();
    let used = common::ranks::on_ranks(16, |comm, stream| {
        common::hccl_mc2_cases::low_latency_round_trip_at(comm, stream, V1_ON_A2.hidden).unwrap()
    });
    assert!(
        used.iter()
            .all(|&t| t == ascend_npu::ops::ep::EpTransport::Portable),
        "{used:?}"
    );
}
