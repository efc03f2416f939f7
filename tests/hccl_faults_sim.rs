//! Faults on simulated HCCL ranks: each gives every surviving rank a clear error, never a
//! hang, and a communicator rebuilt afterwards in the same process works.
//!
//! The cases share the simulator's HCCL timeout, so they run one after another.

mod common;

use std::sync::{Barrier, Mutex};
use std::time::Duration;

use ascend_npu::runtime::comm::{AllToAllV, Comm, ReduceOp};
use ascend_npu::{Error, HcclCode, Stream};
use common::ranks::{on_ranks, rank_counts, set_sim_hccl_timeout, setup_ranks};

static SERIAL: Mutex<()> = Mutex::new(());

/// The stream's error and the communicator's asynchronous error after a failed collective.
fn failure(comm: &Comm, stream: &Stream) -> (String, HcclCode) {
    let stream_err = stream.synchronize().unwrap_err().to_string();
    let code = match comm.async_error() {
        Err(Error::Hccl { code, .. }) => code,
        other => panic!(
            "rank {}: expected an HCCL async error, got {other:?}",
            comm.rank()
        ),
    };
    (stream_err, code)
}

/// A collective that every rank joins: the communicator of a rebuilt group works.
fn healthy(n: u32) {
    let sums = on_ranks(n, |comm, stream| {
        let x = stream.upload(&[comm.rank() as f32 + 1.0]).unwrap();
        let mut y = stream.alloc_zeroed::<f32>(1).unwrap();
        comm.all_reduce(stream, &x, &mut y, ReduceOp::Sum).unwrap();
        y.to_vec().unwrap()[0]
    });
    let want = (n * (n + 1) / 2) as f32;
    assert!(sums.iter().all(|&s| s == want), "{sums:?}");
}

fn all_reduce_one(comm: &Comm, stream: &Stream, len: usize) {
    let x = stream.upload(&vec![1.0f32; len]).unwrap();
    let mut y = stream.alloc_zeroed::<f32>(len).unwrap();
    comm.all_reduce(stream, &x, &mut y, ReduceOp::Sum).unwrap();
}

#[test]
fn a_rank_that_never_arrives_times_out_on_every_other_rank() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    if !set_sim_hccl_timeout(Duration::from_millis(500)) {
        return;
    }
    for n in rank_counts(&[2, 4]) {
        let done = Barrier::new(n as usize);
        let results = on_ranks(n, |comm, stream| {
            let late = comm.rank() == n - 1;
            let result = (!late).then(|| {
                all_reduce_one(comm, stream, 8);
                failure(comm, stream)
            });
            // The last rank stays alive (it never leaves) until the others have failed.
            done.wait();
            result
        });
        for (rank, (stream_err, code)) in results.into_iter().flatten().enumerate() {
            assert_eq!(
                code,
                HcclCode(ascend_npu::sys::HCCL_E_TIMEOUT),
                "rank {rank}"
            );
            assert!(
                stream_err.contains("HCCL_E_TIMEOUT"),
                "rank {rank}: {stream_err}"
            );
            assert!(
                stream_err.contains(&format!("ranks [{}]", n - 1)),
                "{stream_err}"
            );
        }
        healthy(n);
    }
    set_sim_hccl_timeout(Duration::ZERO);
}

#[test]
fn a_rank_that_leaves_fails_its_peers_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    // A long timeout: the peers must fail because the rank left, not because time ran out.
    set_sim_hccl_timeout(Duration::from_secs(60));
    for n in rank_counts(&[2, 4]) {
        let left = Barrier::new(n as usize);
        let results = on_ranks(n, |comm, stream| {
            if comm.rank() == 1 {
                // Rank 1 dies before the collective: here, it fails to allocate its output
                // (out of device memory) and destroys its communicator.
                let err = stream.alloc_zeroed::<u8>(1 << 40).unwrap_err();
                assert!(err.to_string().contains("out of"), "{err}");
                left.wait();
                return None;
            }
            left.wait();
            all_reduce_one(comm, stream, 8);
            Some(failure(comm, stream))
        });
        for (stream_err, code) in results.into_iter().flatten() {
            assert_eq!(code, HcclCode(ascend_npu::sys::HCCL_E_REMOTE));
            assert!(
                stream_err.contains("rank 1 destroyed its communicator"),
                "{stream_err}"
            );
        }
        healthy(n);
    }
    set_sim_hccl_timeout(Duration::ZERO);
}

#[test]
fn mismatched_collectives_fail_on_every_rank() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    for n in rank_counts(&[2, 4]) {
        // One rank passes a different count (a corrupted length).
        let results = on_ranks(n, |comm, stream| {
            all_reduce_one(comm, stream, if comm.rank() == 0 { 9 } else { 8 });
            failure(comm, stream)
        });
        for (stream_err, code) in results {
            assert_eq!(code, HcclCode(ascend_npu::sys::HCCL_E_PARA));
            assert!(
                stream_err.contains("does not match across ranks"),
                "{stream_err}"
            );
        }
        // All-to-all where rank 0 expects more from rank 1 than rank 1 sends (a short
        // buffer): every rank sees the mismatch, not only rank 0.
        let results = on_ranks(n, |comm, stream| {
            let me = comm.rank();
            let recv_counts: Vec<u64> = (0..n)
                .map(|i| if me == 0 && i == 1 { 2 } else { 1 })
                .collect();
            let layout = AllToAllV::packed(vec![1; n as usize], recv_counts);
            let send = stream.upload(&vec![me as i32; n as usize]).unwrap();
            let mut recv = stream.alloc_zeroed::<i32>(n as usize + 1).unwrap();
            comm.all_to_all_v(stream, &send, &mut recv, &layout)
                .unwrap();
            failure(comm, stream)
        });
        for (stream_err, code) in results {
            assert_eq!(code, HcclCode(ascend_npu::sys::HCCL_E_PARA));
            assert!(
                stream_err.contains("rank 0 expects 2 elements from rank 1"),
                "{stream_err}"
            );
        }
        healthy(n);
    }
}
