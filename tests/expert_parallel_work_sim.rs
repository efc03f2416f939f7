//! How much device work an expert-parallel combine does, counted by the simulator per device.
//! Any test using the same devices would add to the counts, so these cases have their own
//! process and run one at a time; on another provider they only run the ops. Only counts that
//! do not depend on timing belong here: bytes operators read and copies made, not stream tasks
//! (a stream waits for another's event only if that work is still pending).

mod common;

use std::sync::Mutex;

use ascend_npu::ops::ep::{
    Payload, Tokens, low_latency_combine, low_latency_dispatch, normal_dispatch,
};
use common::SimCounter;
use common::expert_parallel_cases::ep_shape;
use common::ranks::{on_ranks, rank_counts, setup_ranks};
use half::bf16;

static SERIAL: Mutex<()> = Mutex::new(());

/// Hidden size: the counts do not depend on it.
const H: usize = 8;

/// A rank whose tokens all go nowhere sends no rows: its low-latency combine returns zeros
/// without running the weighted sum's operator on an empty slab (no aclnn reads), while its
/// peer's combine runs it.
#[test]
fn a_combine_with_nothing_sent_runs_no_operator() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    for n in rank_counts(&[2]) {
        let shape = ep_shape(n, 1, H, 1);
        let got = on_ranks(n, |comm, stream| {
            // Rank 0's two tokens choose no expert; rank 1's one each.
            let ids = if comm.rank() == 0 { [-1, -1] } else { [0, 1] };
            let ids = stream.upload(&ids).unwrap();
            let x = stream.upload(&[bf16::ONE; 2 * H]).unwrap();
            let w = stream.upload(&[1f32; 2]).unwrap();
            let t = Tokens {
                x: Payload::Bf16(&x),
                topk_idx: &ids,
                topk_weights: &w,
            };
            let recv = low_latency_dispatch(comm, stream, &shape, t, 2).unwrap();
            let y = recv.x.bf16().unwrap();
            let mut out = None;
            let read = common::count_during(stream.device(), SimCounter::AclnnReadBytes, || {
                out = Some(low_latency_combine(comm, stream, &recv.handle, y, &w).unwrap());
            });
            (out.unwrap().to_vec().unwrap(), read)
        });
        let (out, read) = &got[0];
        assert_eq!(
            out,
            &vec![bf16::ZERO; 2 * H],
            "rank 0: tokens that went nowhere"
        );
        if let (Some(read), Some(peer)) = (read, got[1].1) {
            assert_eq!(*read, 0, "rank 0: bytes aclnn operators read");
            assert!(peer > 0, "rank 1 runs the weighted sum");
        }
    }
}

/// A normal dispatch packs each destination's rows (in destination, then token order) with
/// one device copy per run of consecutive source rows. Four tokens over two ranks: tokens 0, 1
/// to rank 0 and 2, 3 to rank 1 pack rows 0, 1, 2, 3 (one run); tokens 0, 2 to rank 0 and 1, 3
/// to rank 1 pack rows 0, 2, 1, 3 (four runs): three copies more on each rank, and everything
/// else the same (each rank sends two rows to each).
#[test]
fn a_dispatch_packs_each_run_of_consecutive_rows_with_one_copy() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    for n in rank_counts(&[2]) {
        let shape = ep_shape(n, 1, H, 1);
        let copies = |ids: [i32; 4]| {
            on_ranks(n, |comm, stream| {
                let ids = stream.upload(&ids).unwrap();
                let x = stream.upload(&[bf16::ONE; 4 * H]).unwrap();
                let w = stream.upload(&[1f32; 4]).unwrap();
                let t = Tokens {
                    x: Payload::Bf16(&x),
                    topk_idx: &ids,
                    topk_weights: &w,
                };
                common::count_during(stream.device(), SimCounter::D2dCopies, || {
                    normal_dispatch(comm, stream, &shape, t).unwrap();
                })
            })
        };
        let one_run = copies([0, 0, 1, 1]);
        let four_runs = copies([0, 1, 0, 1]);
        for (rank, (a, b)) in one_run.iter().zip(&four_runs).enumerate() {
            if let (Some(a), Some(b)) = (a, b) {
                assert_eq!(
                    b - a,
                    3,
                    "rank {rank}: {a} copies for one run, {b} for four"
                );
            }
        }
    }
}
