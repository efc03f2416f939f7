//! Faults during an expert-parallel dispatch on simulated ranks: every surviving rank gets a
//! clear error within the simulator's timeout, never a hang, and a communicator rebuilt in the
//! same process then dispatches and combines correctly. The faults: a rank that never
//! arrives, a rank that dies, a part cut short or damaged in flight (what a receiver can and
//! cannot detect), a rank out of device memory.
//!
//! The cases share the simulator's HCCL timeout and its armed fault, so they run one after
//! another. Every device has [`HBM_BYTES`] of memory.

mod common;

use std::sync::{Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ascend_npu::ops::ep::{
    EpShape, Payload, Tokens, counts_row, dispatch_layout, low_latency_combine,
    low_latency_dispatch, normal_combine, normal_dispatch,
};
use ascend_npu::runtime::comm::Comm;
use ascend_npu::sim::hccl::{Damage, Exchange, InFlightFault};
use ascend_npu::{Error, Stream};
use common::ranks::{on_ranks, rank_counts, set_sim_hccl_timeout, setup_ranks_with_hbm};

/// The suite's backend, with small devices.
fn setup_ranks() {
    setup_ranks_with_hbm(Some(HBM_BYTES));
}
use half::bf16;

static SERIAL: Mutex<()> = Mutex::new(());

/// A case running alone with the simulator's HCCL timeout set; dropping it restores the
/// default timeout, then lets the next case run.
struct Case {
    _serial: MutexGuard<'static, ()>,
}

impl Drop for Case {
    fn drop(&mut self) {
        set_sim_hccl_timeout(Duration::ZERO);
    }
}

/// Waits for the other cases, sets up the ranks and sets the timeout; `None`, with a message,
/// under another provider (whose simulator this process cannot configure).
fn case_with_timeout(timeout: Duration) -> Option<Case> {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    set_sim_hccl_timeout(timeout).then_some(Case { _serial: serial })
}

const HIDDEN: usize = 64;
const TOP_K: usize = 2;
const TOKENS: usize = 6;

fn shape(n: u32) -> EpShape {
    common::expert_parallel_cases::ep_shape(n, 2, HIDDEN, TOP_K)
}

/// This rank's tokens: `[T, 2]` ids `t, t+1` (mod the expert count) and `x`.
fn host_tokens(comm: &Comm) -> (Vec<i32>, Vec<bf16>) {
    let e = 2 * comm.size() as i32;
    let ids = (0..TOKENS as i32)
        .flat_map(|t| [t % e, (t + 1) % e])
        .collect();
    let x = (0..TOKENS * HIDDEN)
        .map(|i| bf16::from_f32(comm.rank() as f32 + (i / HIDDEN) as f32 / 8.0))
        .collect();
    (ids, x)
}

/// A normal dispatch of this rank's tokens with identity experts; returns the combined rows
/// and the expected ones (x times the number of ranks each token visited).
fn round_trip(comm: &Comm, stream: &Stream) -> Result<(Vec<bf16>, Vec<bf16>), Error> {
    let n = comm.size();
    let (ids, x) = host_tokens(comm);
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

/// Every rank of a faulty round trip erred within half the `timeout`: rank 1 with
/// [`Error::Damaged`] from rank 0 saying `says` if given (the damage it found), the others
/// (and rank 1 when `says` is `None`) inside HCCL. `fault` names the case in messages.
fn all_fail(
    results: Vec<(Option<Error>, Duration)>,
    says: Option<&str>,
    timeout: Duration,
    fault: &dyn std::fmt::Debug,
) {
    let n = results.len();
    for (rank, (err, elapsed)) in results.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("rank {rank} of {n}: {fault:?} unnoticed"));
        if let (Some(says), 1) = (says, rank) {
            match &err {
                Error::Damaged { from: 0, what, .. } => assert_eq!(what, says),
                other => panic!("rank 1, {says}: {other:?}"),
            }
        } else {
            assert!(hccl_error(&err), "rank {rank}, {fault:?}: {err}");
        }
        assert!(elapsed < timeout / 2, "rank {rank}: {elapsed:?}");
    }
}

#[test]
fn expert_parallel_a_rank_that_never_dispatches_times_out_every_other_rank() {
    let timeout = Duration::from_millis(500);
    let Some(_case) = case_with_timeout(timeout) else {
        return;
    };
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
}

#[test]
fn expert_parallel_a_rank_that_dies_mid_dispatch_fails_its_peers_at_once() {
    // A long timeout: the peers must fail because the rank left, not because time ran out.
    let timeout = Duration::from_secs(60);
    let Some(_case) = case_with_timeout(timeout) else {
        return;
    };
    for n in rank_counts(&[2, 4, 8]) {
        let results = on_ranks(n, |comm, stream| {
            if comm.rank() == 1 {
                // Rank 1 takes part in the counts exchange that opens a dispatch, as a rank
                // without tokens, then dies: its communicator is destroyed before the rows move.
                let none = stream.upload::<i32>(&[]).unwrap();
                let layout = dispatch_layout(&shape(n).config, &none, TOP_K).unwrap();
                let row = counts_row(&layout);
                let mine = stream.upload(&row).unwrap();
                let mut all = stream.alloc_zeroed::<i64>(row.len() * n as usize).unwrap();
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
}

/// Arms `damage` on what rank 0 sends rank 1 in its `nth` all-to-all-v (a normal dispatch with
/// a bf16 payload runs four: rows, ids, weights, source tokens; its combine one more). Returns
/// false, with a message, under another provider.
fn arm(nth: u64, damage: Damage) -> bool {
    arm_in(Exchange::AllToAllV, nth, damage)
}

/// [`arm`] for the `nth` exchange of kind `exchange`.
fn arm_in(exchange: Exchange, nth: u64, damage: Damage) -> bool {
    if ascend_npu::active_backend().unwrap() != ascend_npu::Backend::Sim {
        eprintln!("skipped: faults are injected into the compiled-in simulator only");
        return false;
    }
    ascend_npu::sim::hccl::inject(InFlightFault {
        exchange,
        from: 0,
        to: 1,
        nth,
        damage,
    });
    true
}

/// Runs a round trip on `n` ranks with a fault armed; each rank's error and how long it took.
fn faulty_round_trip(n: u32) -> Vec<(Option<Error>, Duration)> {
    on_ranks(n, |comm, stream| {
        let start = Instant::now();
        (round_trip(comm, stream).err(), start.elapsed())
        // A rank that failed drops its communicator here, as an engine rebuilding it would.
    })
}

#[test]
fn expert_parallel_a_short_part_fails_every_rank() {
    let timeout = Duration::from_secs(20);
    let Some(_case) = case_with_timeout(timeout) else {
        return;
    };
    for n in rank_counts(&[2, 4]) {
        // The rows rank 0 sends rank 1 lose their last element.
        if !arm(0, Damage::Truncate { bytes: 2 }) {
            return;
        }
        for (rank, (err, elapsed)) in faulty_round_trip(n).into_iter().enumerate() {
            let err = err.unwrap_or_else(|| panic!("rank {rank} of {n}: dispatch succeeded"));
            assert!(hccl_error(&err), "rank {rank}: {err}");
            // Every rank checks every pair of counts, so all name the short part.
            assert!(
                err.to_string().contains("rank 1 expects")
                    && err.to_string().contains("from rank 0"),
                "rank {rank}: {err}"
            );
            assert!(elapsed < timeout / 2, "rank {rank}: {elapsed:?}");
        }
        assert!(!ascend_npu::sim::hccl::disarm(), "the fault applied");
        healthy(n);
    }
}

/// A damaged id or source token is detected by the receiver, which fails its dispatch with
/// [`Error::Damaged`] naming the row and the value; its peers fail at their next collective (the
/// combine), at once when it drops its communicator.
#[test]
fn expert_parallel_damaged_bookkeeping_is_detected_by_the_receiver() {
    let timeout = Duration::from_secs(20);
    let Some(_case) = case_with_timeout(timeout) else {
        return;
    };
    // Rank 0 sends rank 1 (experts 2 and 3) its tokens 1, 2, 3, ... in that order; token 1's
    // local ids are [-1, 0]. (all-to-all, byte, mask, what rank 1 says): ids are the second
    // all-to-all, source tokens the fourth, both little-endian i32.
    let cases = [
        (1, 0, 0x40, "row 0 has expert id -65"),
        // One past the last local expert (2 per rank).
        (1, 4, 0x02, "row 0 has expert id 2"),
        (3, 0, 0x40, "row 0 comes from token 65"),
        (3, 3, 0x80, "row 0 comes from token -2147483647"),
        // The second row's token 2 made 1: not after the first row's.
        (3, 4, 0x03, "row 1 comes from token 1, after token 1"),
    ];
    for n in rank_counts(&[2, 4]) {
        for (nth, offset, mask, says) in cases {
            if !arm(nth, Damage::Flip { offset, mask }) {
                return;
            }
            let results = faulty_round_trip(n);
            assert!(!ascend_npu::sim::hccl::disarm(), "the fault applied");
            all_fail(results, Some(says), timeout, &says);
            healthy(n);
        }
    }
}

/// What no receiver can detect: a changed payload byte arrives as data. The round trip
/// succeeds, and exactly the damaged element comes back changed to its sender.
#[test]
fn expert_parallel_a_damaged_payload_byte_is_not_detectable() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    setup_ranks();
    for n in rank_counts(&[2]) {
        // The high byte of the first bf16 element rank 0 sends rank 1: its sign flips.
        if !arm(
            0,
            Damage::Flip {
                offset: 1,
                mask: 0x80,
            },
        ) {
            return;
        }
        let results = on_ranks(n, round_trip);
        assert!(!ascend_npu::sim::hccl::disarm(), "the fault applied");
        for (rank, result) in results.into_iter().enumerate() {
            let (got, want) = result.unwrap();
            let differ: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
            if rank == 0 {
                // The first token rank 0 sends rank 1 is token 1 (experts 1 and 2): its first
                // element comes back as its rank-0 part plus the negated copy from rank 1.
                assert_eq!(differ, [HIDDEN], "rank 0");
                assert_eq!(got[HIDDEN].to_f32(), 0.0, "x + (−x)");
            } else {
                assert!(differ.is_empty(), "rank {rank}: {differ:?}");
            }
        }
        healthy(n);
    }
}

/// Every device's memory in this suite: small, so that one rank can be filled cheaply.
const HBM_BYTES: u64 = 8 << 20;

#[test]
fn expert_parallel_an_out_of_memory_rank_fails_every_rank() {
    let timeout = Duration::from_secs(20);
    // Device memory, too, is limited on the compiled-in simulator only.
    let Some(_case) = case_with_timeout(timeout) else {
        return;
    };
    for n in rank_counts(&[2, 4]) {
        let results = on_ranks(n, |comm, stream| {
            // Rank 1's device is all but full: the 2 KiB left hold the counts exchange that
            // opens a dispatch but not the rows, so rank 1 fails mid-dispatch.
            let filler = (comm.rank() == 1).then(|| {
                let free = stream.device().memory_info().unwrap().free;
                stream.alloc_zeroed::<u8>(free - 2048).unwrap()
            });
            let start = Instant::now();
            let err = round_trip(comm, stream).err();
            drop(filler);
            (err, start.elapsed())
        });
        for (rank, (err, elapsed)) in results.into_iter().enumerate() {
            let err = err.unwrap_or_else(|| panic!("rank {rank} of {n}: round trip succeeded"));
            if rank == 1 {
                assert!(
                    err.to_string().contains("out of device memory on device 1"),
                    "rank 1: {err}"
                );
            } else {
                // The peers fail when rank 1 leaves, well before the timeout.
                assert!(hccl_error(&err), "rank {rank}: {err}");
                assert!(
                    err.to_string()
                        .contains("rank 1 destroyed its communicator"),
                    "rank {rank}: {err}"
                );
            }
            assert!(elapsed < timeout / 2, "rank {rank}: {elapsed:?}");
        }
        healthy(n);
    }
}

/// A low-latency dispatch of this rank's tokens (those of [`round_trip`]) with identity
/// experts and router weights of 1/2: the combine returns `x` (`x/2 + x/2`, exact in bf16),
/// as the second value.
fn low_latency_round_trip(comm: &Comm, stream: &Stream) -> Result<(Vec<bf16>, Vec<bf16>), Error> {
    let n = comm.size();
    let (ids, x) = host_tokens(comm);
    let (xd, idsd) = (stream.upload(&x)?, stream.upload(&ids)?);
    let w = stream.upload(&[0.5f32; TOKENS * TOP_K])?;
    let t = Tokens {
        x: Payload::Bf16(&xd),
        topk_idx: &idsd,
        topk_weights: &w,
    };
    let recv = low_latency_dispatch(comm, stream, &shape(n), t, TOKENS)?;
    let out = low_latency_combine(comm, stream, &recv.handle, recv.x.bf16().unwrap(), &w)?;
    Ok((out.to_vec()?, x))
}

/// A low-latency round trip on `n` ranks with a fault armed; each rank's error and how long
/// it took.
fn faulty_low_latency_round_trip(n: u32) -> Vec<(Option<Error>, Duration)> {
    on_ranks(n, |comm, stream| {
        let start = Instant::now();
        (low_latency_round_trip(comm, stream).err(), start.elapsed())
    })
}

/// After a fault: a rebuilt communicator runs a low-latency round trip correctly.
fn healthy_low_latency(n: u32) {
    for (r, result) in on_ranks(n, low_latency_round_trip).into_iter().enumerate() {
        let (got, want) = result.unwrap();
        assert_eq!(got, want, "rank {r} after rebuilding");
    }
}

/// A low-latency dispatch runs, per local expert, an all-to-all-v of rows and one of
/// `(token, k)` pairs (after the counts' all-gather). A short part of either fails every rank
/// inside HCCL; a damaged pair index fails the receiver with [`Error::Damaged`] and its peers
/// at their next collective. Either way every rank errs within the timeout, and a rebuilt
/// communicator works.
#[test]
fn expert_parallel_low_latency_faults_fail_every_rank_then_a_rebuilt_comm_works() {
    let timeout = Duration::from_secs(20);
    let Some(_case) = case_with_timeout(timeout) else {
        return;
    };
    for n in rank_counts(&[2, 4]) {
        healthy_low_latency(n);
        // (all-to-all, damage, what rank 1 says if it is the one to notice): expert 0's rows
        // cut short, expert 0's pairs cut short (HCCL notices); then the pair indices rank 0
        // sends expert 0 of rank 1, 3 (token 1, k 1) and 4 (token 2, k 0) as i32: the first
        // moved past its 6 tokens × 2 or made negative, the second made equal to the first.
        let flip = |offset, mask| Damage::Flip { offset, mask };
        let cases = [
            (0, Damage::Truncate { bytes: 2 }, None),
            (1, Damage::Truncate { bytes: 4 }, None),
            (1, flip(0, 0x40), Some("local expert 0 receives pair 67")),
            (
                1,
                flip(3, 0x80),
                Some("local expert 0 receives pair -2147483645"),
            ),
            (
                1,
                flip(4, 0x07),
                Some("local expert 0 receives pair 3 after pair 3"),
            ),
        ];
        for (nth, damage, says) in cases {
            if !arm(nth, damage) {
                return;
            }
            let results = faulty_low_latency_round_trip(n);
            assert!(!ascend_npu::sim::hccl::disarm(), "the fault applied");
            all_fail(results, says, timeout, &damage);
            healthy_low_latency(n);
        }
    }
}

/// The counts' all-gather that opens a low-latency dispatch (every rank's token count, tokens
/// per rank and pairs per expert, and a check value), damaged on its way from rank 0 to rank 1:
/// cut short, rank 1's all-gather fails inside HCCL and fails the communicator; with a byte
/// changed (the token count, a per-expert count, the check value itself), rank 1 finds that
/// rank 0's row fails its check ([`Error::Damaged`]) and leaves, which fails its peers at once.
/// Either way every rank errs within the timeout, and a rebuilt communicator works.
#[test]
fn expert_parallel_damaged_low_latency_counts_fail_every_rank_then_a_rebuilt_comm_works() {
    let timeout = Duration::from_secs(20);
    let Some(_case) = case_with_timeout(timeout) else {
        return;
    };
    for n in rank_counts(&[2, 4]) {
        // A row: 1 + n + 2n counts and the check, 8 bytes each.
        let row_bytes = 8 * (2 + 3 * n as usize);
        let flip = |offset| Damage::Flip { offset, mask: 0x40 };
        let cases = [
            Damage::Truncate { bytes: 8 },
            flip(0),
            flip(8 * (1 + n as usize)),
            flip(row_bytes - 1),
        ];
        for damage in cases {
            if !arm_in(Exchange::AllGather, 0, damage) {
                return;
            }
            let results = faulty_low_latency_round_trip(n);
            assert!(!ascend_npu::sim::hccl::disarm(), "{damage:?} applied");
            for (rank, (err, elapsed)) in results.into_iter().enumerate() {
                let err = err.unwrap_or_else(|| panic!("rank {rank} of {n}: {damage:?} unnoticed"));
                match (rank, damage) {
                    (1, Damage::Truncate { .. }) => {
                        assert!(hccl_error(&err), "rank 1: {err}");
                        assert!(err.to_string().contains("AllGather: "), "rank 1: {err}");
                    }
                    (1, _) => {
                        assert!(
                            matches!(err, Error::Damaged { from: 0, .. }),
                            "rank 1, {damage:?}: {err:?}"
                        );
                        assert!(err.to_string().contains("counts row"), "{err}");
                    }
                    _ => assert!(hccl_error(&err), "rank {rank}, {damage:?}: {err}"),
                }
                assert!(elapsed < timeout / 2, "rank {rank}: {elapsed:?}");
            }
            healthy_low_latency(n);
        }
    }
}
