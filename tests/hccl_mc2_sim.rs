//! The MC2 operators (aclnnMoeDistributeDispatchV2 / CombineV2) on 2, 4 and 8 simulated Atlas
//! A3 ranks: the expert-parallel low-latency path on them equals the portable path and the
//! f64 reference, and each run-time rule of theirs fails every rank with its id.

#![cfg(feature = "sim")]

mod common;

use common::hccl_mc2_cases::{
    Fault, all_name, mc2_path_equals_portable_path_and_reference, raw_mc2,
};
use common::ranks::{on_ranks, setup_ranks_on};

fn setup() {
    setup_ranks_on("Ascend910_9392", None);
}

#[test]
fn mc2_low_latency_equals_portable_and_reference() {
    setup();
    mc2_path_equals_portable_path_and_reference();
}

#[test]
fn each_mc2_run_rule_names_itself() {
    setup();
    ascend_npu::sim::hccl::set_timeout(std::time::Duration::from_secs(20));
    assert!(
        on_ranks(2, |comm, stream| raw_mc2(comm, stream, Fault::None))
            .iter()
            .all(Option::is_none)
    );
    let errs = on_ranks(2, |comm, stream| raw_mc2(comm, stream, Fault::UnknownGroup));
    all_name(&errs, "moe-distribute.group-ep");
    let errs = on_ranks(2, |comm, stream| raw_mc2(comm, stream, Fault::IdOutOfRange));
    all_name(&errs, "moe-distribute-dispatch-v2.capacity");
    let errs = on_ranks(2, |comm, stream| {
        raw_mc2(comm, stream, Fault::UnpairedCombine)
    });
    for (r, e) in errs.iter().enumerate() {
        let e = e.as_deref().unwrap_or_else(|| panic!("rank {r}: no error"));
        // The rank that sees the bad bookkeeping names the rule; its peer fails with it.
        assert!(
            e.contains("moe-distribute-combine-v2.paired-dispatch"),
            "rank {r}: {e}"
        );
    }
    // The communicator of the MC2 ops runs nothing else, and vice versa.
    let errs = on_ranks(2, |comm, stream| {
        let x = stream.upload(&[1.0f32; 4]).unwrap();
        let mut y = stream.alloc_zeroed::<f32>(8).unwrap();
        comm.all_gather(stream, &x, &mut y).unwrap();
        stream.synchronize().unwrap();
        raw_mc2(comm, stream, Fault::None)
    });
    all_name(&errs, "moe-distribute.exclusive-comm");
}
