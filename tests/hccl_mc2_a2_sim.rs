//! The MC2 operators on a simulated Atlas A2 SoC: the simulator models their A3 form only and
//! says so when they run (and the expert-parallel path does not pick them there).

#![cfg(feature = "sim")]

mod common;

use common::hccl_mc2_cases::{Fault, all_name, raw_mc2};
use common::ranks::{on_ranks, setup_ranks};

#[test]
fn mc2_ops_on_a2_name_the_rule() {
    setup_ranks();
    ascend_npu::sim::hccl::set_timeout(std::time::Duration::from_secs(20));
    let errs = on_ranks(2, |comm, stream| raw_mc2(comm, stream, Fault::None));
    all_name(&errs, "moe-distribute.a3-only");
}
