//! Faults during an expert-parallel dispatch on simulated ranks: every surviving rank gets an
//! HCCL error within the simulator's timeout, never a hang, and a communicator rebuilt in the
//! same process then dispatches and combines correctly.
//!
//! The cases share the simulator's HCCL timeout, so they run one after another.

mod common;

use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use ascend_npu::ops::ep::{EpShape, Payload, Tokens, normal_combine, normal_dispatch};
use ascend_npu::runtime::comm::Comm;
use ascend_npu::{Error, Stream};
use common::ranks::{on_ranks, rank_counts, set_sim_hccl_timeout, setup_ranks};
use half::bf16;

static SERIAL: Mutex<()> = Mutex::new(());

const HIDDEN: usize = 64;
const TOP_K: usize = 2;
const TOKENS: usize = 6;

fn shape(n: u32) -> EpShape {
    common::expert_parallel_cases::ep_shape(n, 2, HIDDEN, TOP_K)
}

/// A normal dispatch of this rank's tokens with identity experts; returns the combined rows
/// and the expected ones (x times the number of ranks each token visited).
fn round_trip(comm: &Comm, stream: &Stream) -> Result<(Vec<bf16>, Vec<bf16>), Error> {
    let n = comm.size();
    let e = 2 * n as i32;
    let rank = comm.rank();
    let ids: Vec<i32> = (0..TOKENS as i32)
        .flat_map(|t| [t % e, (t + 1) % e])
        .collect();
    let x: Vec<bf16> = (0..TOKENS * HIDDEN)
        .map(|i| bf16::from_f32(rank as f32 + (i / HIDDEN) as f32 / 8.0))
        .collect();
    let (xd, idsd) = (stream.upload(&x)?, stream.upload(&ids)?);
    let w = stream.upload(&[0.5f32; TOKENS * TOP_K])?;
    let t = Tokens {
        x: Payload::Bf16(&xd),
        topk_idx: &idsd,
        topk_weights: &w,
    };
    let recv = normal_dispatch(comm, stream, &shape(n), t)?;
    let out = normal_combine(comm, stream, &recv.handle, recv.x.bf16().unwrap(), None)?;
    let visits = |t: usize| {
        let ranks: Vec<i32> = ids[t * 2..t * 2 + 2].iter().map(|e| e / 2).collect();
        if ranks[0] == ranks[1] { 1.0 } else { 2.0 }
    };
    let want = (0..TOKENS * HIDDEN)
        .map(|i| bf16::from_f32(x[i].to_f32() * visits(i / HIDDEN)))
        .collect();
    Ok((out.to_vec()?, want))
}

/// A rebuilt communicator dispatches and combines correctly.
fn healthy(n: u32) {
    for (r, result) in on_ranks(n, round_trip).into_iter().enumerate() {
        let (got, want) = result.unwrap();
        assert_eq!(got, want, "rank {r} after rebuilding");
    }
}

fn hccl_error(e: &Error) -> bool {
    matches!(e, Error::Hccl { .. }) || e.to_string().contains("HCCL_E_")
}

#[test]
fn expert_parallel_a_rank_that_never_dispatches_times_out_every_other_rank() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    let timeout = Duration::from_millis(500);
    if !set_sim_hccl_timeout(timeout) {
        return;
    }
    for n in rank_counts(&[2, 4, 8]) {
        let done = Barrier::new(n as usize);
        let results = on_ranks(n, |comm, stream| {
            let late = comm.rank() == n - 1;
            let start = Instant::now();
            let result = (!late).then(|| (round_trip(comm, stream).err(), start.elapsed()));
            // The late rank stays alive until the others have failed.
            done.wait();
            result
        });
        for (rank, (err, elapsed)) in results.into_iter().flatten().enumerate() {
            let err = err.unwrap_or_else(|| panic!("rank {rank} of {n}: dispatch succeeded"));
            assert!(hccl_error(&err), "rank {rank}: {err}");
            assert!(
                err.to_string().contains("HCCL_E_TIMEOUT"),
                "rank {rank}: {err}"
            );
            // One collective's timeout, with slack for a loaded machine; never a hang.
            assert!(elapsed < timeout * 20, "rank {rank}: {elapsed:?}");
        }
        healthy(n);
    }
    set_sim_hccl_timeout(Duration::ZERO);
}

#[test]
fn expert_parallel_a_rank_that_dies_mid_dispatch_fails_its_peers_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    // A long timeout: the peers must fail because the rank left, not because time ran out.
    let timeout = Duration::from_secs(60);
    if !set_sim_hccl_timeout(timeout) {
        return;
    }
    for n in rank_counts(&[2, 4, 8]) {
        let results = on_ranks(n, |comm, stream| {
            if comm.rank() == 1 {
                // Rank 1 takes part in the counts exchange that opens a dispatch (one i64 per
                // token count, destination rank and expert), then dies: its communicator is
                // destroyed before the rows move.
                let len = 1 + n as usize + 2 * n as usize;
                let mine = stream.upload(&vec![0i64; len]).unwrap();
                let mut all = stream.alloc_zeroed::<i64>(len * n as usize).unwrap();
                comm.all_gather(stream, &mine, &mut all).unwrap();
                stream.synchronize().unwrap();
                return None;
            }
            let start = Instant::now();
            Some((round_trip(comm, stream).err(), start.elapsed()))
        });
        for (rank, (err, elapsed)) in results.into_iter().flatten().enumerate() {
            let err = err.unwrap_or_else(|| panic!("rank {rank} of {n}: dispatch succeeded"));
            assert!(hccl_error(&err), "rank {rank}: {err}");
            assert!(
                err.to_string()
                    .contains("rank 1 destroyed its communicator"),
                "{err}"
            );
            assert!(elapsed < timeout / 4, "rank {rank}: {elapsed:?}");
        }
        healthy(n);
    }
    set_sim_hccl_timeout(Duration::ZERO);
}
