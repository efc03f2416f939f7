//! HCCL collectives on ranks (one device and one thread each), against results computed on
//! the host: exact, because reductions fold in rank order with one rounding per step (the
//! simulator's documented order, which the host folds reproduce bit for bit).

use ascend_npu::Device;
use ascend_npu::runtime::comm::{AllToAllV, Comm, CommConfig, ReduceOp, RootInfo};
use half::{bf16, f16};

use super::ranks::{on_comms, on_ranks, on_threads, rank_counts};

/// Rank `r`'s test data: `len` values in [-4, 4), different per rank and per seed.
fn data(rank: u32, seed: u64, len: usize) -> Vec<f32> {
    let mut rng = super::Rng::new(seed * 1000 + rank as u64 + 1);
    (0..len).map(|_| rng.f32() * 8.0 - 4.0).collect()
}

pub fn all_reduce_folds_in_rank_order_for_each_type_and_op() {
    for n in rank_counts(&[1, 2, 4, 8]) {
        let len = 37; // odd, not a multiple of any vector width
        // f32 sum and max.
        for (op, f) in [
            (ReduceOp::Sum, (|a, b| a + b) as fn(f32, f32) -> f32),
            (ReduceOp::Max, f32::max),
        ] {
            let got = on_ranks(n, |comm, stream| {
                let x = stream.upload(&data(comm.rank(), 1, len)).unwrap();
                let mut y = stream.alloc_zeroed::<f32>(len).unwrap();
                comm.all_reduce(stream, &x, &mut y, op).unwrap();
                y.to_vec().unwrap()
            });
            let want: Vec<f32> = (0..len)
                .map(|i| (1..n).fold(data(0, 1, len)[i], |acc, r| f(acc, data(r, 1, len)[i])))
                .collect();
            for (r, g) in got.iter().enumerate() {
                assert_eq!(g, &want, "{n} ranks, {op:?}, rank {r}");
            }
        }
        // bf16 sum: each step rounded to bf16.
        let got = on_ranks(n, |comm, stream| {
            let x: Vec<bf16> = data(comm.rank(), 2, len)
                .iter()
                .map(|&v| bf16::from_f32(v))
                .collect();
            let x = stream.upload(&x).unwrap();
            let mut y = stream.alloc_zeroed::<bf16>(len).unwrap();
            comm.all_reduce(stream, &x, &mut y, ReduceOp::Sum).unwrap();
            y.to_vec().unwrap()
        });
        let b = |r, i| bf16::from_f32(data(r, 2, len)[i]);
        let want: Vec<bf16> = (0..len)
            .map(|i| {
                (1..n).fold(b(0, i), |acc, r| {
                    bf16::from_f32(acc.to_f32() + b(r, i).to_f32())
                })
            })
            .collect();
        assert!(got.iter().all(|g| g == &want), "{n} ranks, bf16 sum");
        // f16 product and i32 min.
        let got = on_ranks(n, |comm, stream| {
            let x: Vec<f16> = data(comm.rank(), 3, len)
                .iter()
                .map(|&v| f16::from_f32(v))
                .collect();
            let i: Vec<i32> = data(comm.rank(), 4, len)
                .iter()
                .map(|&v| (v * 1000.0) as i32)
                .collect();
            let (x, i) = (stream.upload(&x).unwrap(), stream.upload(&i).unwrap());
            let mut y = stream.alloc_zeroed::<f16>(len).unwrap();
            let mut j = stream.alloc_zeroed::<i32>(len).unwrap();
            comm.all_reduce(stream, &x, &mut y, ReduceOp::Prod).unwrap();
            comm.all_reduce(stream, &i, &mut j, ReduceOp::Min).unwrap();
            (y.to_vec().unwrap(), j.to_vec().unwrap())
        });
        let h = |r, i| f16::from_f32(data(r, 3, len)[i]);
        let want_h: Vec<f16> = (0..len)
            .map(|i| {
                (1..n).fold(h(0, i), |acc, r| {
                    f16::from_f32(acc.to_f32() * h(r, i).to_f32())
                })
            })
            .collect();
        let want_i: Vec<i32> = (0..len)
            .map(|i| {
                (0..n)
                    .map(|r| (data(r, 4, len)[i] * 1000.0) as i32)
                    .min()
                    .unwrap()
            })
            .collect();
        for (y, j) in &got {
            assert_eq!((y, j), (&want_h, &want_i), "{n} ranks, f16 prod / i32 min");
        }
    }
}

pub fn results_are_bit_identical_from_run_to_run() {
    for n in rank_counts(&[4]) {
        let run = || {
            on_ranks(n, |comm, stream| {
                // Values of very different magnitudes: any change of order changes the bits.
                let x: Vec<f32> = data(comm.rank(), 5, 64)
                    .iter()
                    .map(|v| v * 10f32.powi(comm.rank() as i32 * 3))
                    .collect();
                let x = stream.upload(&x).unwrap();
                let mut y = stream.alloc_zeroed::<f32>(64).unwrap();
                comm.all_reduce(stream, &x, &mut y, ReduceOp::Sum).unwrap();
                y.to_vec().unwrap()
            })
        };
        let first = run();
        for _ in 0..3 {
            assert_eq!(run(), first);
        }
    }
}

pub fn all_gather_reduce_scatter_and_broadcast() {
    for n in rank_counts(&[2, 4, 8]) {
        let len = 5;
        let got = on_ranks(n, |comm, stream| {
            let r = comm.rank();
            // All-gather of i64 ids: rank order.
            let ids: Vec<i64> = (0..len as i64).map(|i| r as i64 * 100 + i).collect();
            let ids = stream.upload(&ids).unwrap();
            let mut all = stream.alloc_zeroed::<i64>(len * n as usize).unwrap();
            comm.all_gather(stream, &ids, &mut all).unwrap();
            // Reduce-scatter of f32: rank r gets the sum of block r.
            let x = stream.upload(&data(r, 6, len * n as usize)).unwrap();
            let mut block = stream.alloc_zeroed::<f32>(len).unwrap();
            comm.reduce_scatter(stream, &x, &mut block, ReduceOp::Sum)
                .unwrap();
            // Broadcast from the last rank.
            let mut b = stream.upload(&[r as u8; 3]).unwrap();
            comm.broadcast(stream, &mut b, n - 1).unwrap();
            (
                all.to_vec().unwrap(),
                block.to_vec().unwrap(),
                b.to_vec().unwrap(),
            )
        });
        let want_all: Vec<i64> = (0..n as i64)
            .flat_map(|r| (0..len as i64).map(move |i| r * 100 + i))
            .collect();
        for (r, (all, block, b)) in got.iter().enumerate() {
            assert_eq!(all, &want_all, "{n} ranks, all_gather on rank {r}");
            let want_block: Vec<f32> = (0..len)
                .map(|i| {
                    let at = |q| data(q, 6, len * n as usize)[r * len + i];
                    (1..n).fold(at(0), |acc, q| acc + at(q))
                })
                .collect();
            assert_eq!(block, &want_block, "{n} ranks, reduce_scatter on rank {r}");
            assert_eq!(b, &[(n - 1) as u8; 3], "{n} ranks, broadcast on rank {r}");
        }
    }
}

pub fn all_to_all_v_delivers_every_part_in_source_order() {
    for n in rank_counts(&[2, 4, 8]) {
        // Rank i sends (i + 2j) % 4 elements to rank j (including none), each encoding
        // (source, destination, index).
        let count = |i: u32, j: u32| ((i + 2 * j) % 4) as u64;
        let got = on_ranks(n, |comm, stream| {
            let me = comm.rank();
            let send_counts: Vec<u64> = (0..n).map(|j| count(me, j)).collect();
            let recv_counts: Vec<u64> = (0..n).map(|i| count(i, me)).collect();
            let payload: Vec<u32> = (0..n)
                .flat_map(|j| (0..count(me, j) as u32).map(move |k| me * 10_000 + j * 100 + k))
                .collect();
            let send = stream.upload(&payload).unwrap();
            let total: u64 = recv_counts.iter().sum();
            let mut recv = stream.alloc_zeroed::<u32>(total as usize).unwrap();
            let layout = AllToAllV::packed(send_counts, recv_counts);
            comm.all_to_all_v(stream, &send, &mut recv, &layout)
                .unwrap();
            recv.to_vec().unwrap()
        });
        for (me, recv) in got.iter().enumerate() {
            let me = me as u32;
            let want: Vec<u32> = (0..n)
                .flat_map(|i| (0..count(i, me) as u32).map(move |k| i * 10_000 + me * 100 + k))
                .collect();
            assert_eq!(recv, &want, "{n} ranks, rank {me}");
        }
    }
}

pub fn send_and_recv_pass_a_token_around_a_ring() {
    for n in rank_counts(&[2, 4]) {
        let got = on_ranks(n, |comm, stream| {
            let (me, next, prev) = (
                comm.rank(),
                (comm.rank() + 1) % n,
                (comm.rank() + n - 1) % n,
            );
            let out = stream.upload(&[me as f64, 0.5]).unwrap();
            let mut inbox = stream.alloc_zeroed::<f64>(2).unwrap();
            // Even ranks send first, odd ranks receive first: no rank waits on itself.
            if me % 2 == 0 {
                comm.send(stream, &out, next).unwrap();
                comm.recv(stream, &mut inbox, prev).unwrap();
            } else {
                comm.recv(stream, &mut inbox, prev).unwrap();
                comm.send(stream, &out, next).unwrap();
            }
            comm.barrier(stream).unwrap();
            inbox.to_vec().unwrap()
        });
        for (me, inbox) in got.iter().enumerate() {
            let prev = (me as u32 + n - 1) % n;
            assert_eq!(inbox, &[prev as f64, 0.5], "{n} ranks, rank {me}");
        }
    }
}

/// Asserts that `result` is our own typed refusal, not HCCL's (the simulator refuses most of
/// these calls too, which would hide a missing check on our side).
fn refused(what: &str, result: ascend_npu::Result<()>) {
    match result {
        Err(ascend_npu::Error::InvalidArgument { .. }) => {}
        other => panic!("{what}: {other:?}, expected InvalidArgument"),
    }
}

pub fn bad_calls_are_rejected_before_anything_is_queued() {
    for n in rank_counts(&[2]) {
        on_ranks(n, |comm, stream| {
            let x = stream.upload(&[1u32, 2, 3]).unwrap();
            let mut y = stream.alloc_zeroed::<u32>(3).unwrap();
            // u32 cannot be reduced on A2/A3; bf16 has no product.
            let err = comm
                .all_reduce(stream, &x, &mut y, ReduceOp::Sum)
                .unwrap_err();
            assert!(err.to_string().contains("as A2/A3 reduce"), "{err}");
            // Our own check, not HCCL's (the simulator refuses them too): a typed error.
            let b = stream.upload(&[bf16::ONE]).unwrap();
            let mut c = stream.alloc_zeroed::<bf16>(1).unwrap();
            match comm.all_reduce(stream, &b, &mut c, ReduceOp::Prod) {
                Err(ascend_npu::Error::InvalidArgument { .. }) => {}
                other => panic!("a bf16 product: {other:?}"),
            }
            let h = stream.upload(&[1i16]).unwrap();
            let mut k = stream.alloc_zeroed::<i16>(1).unwrap();
            match comm.all_reduce(stream, &h, &mut k, ReduceOp::Prod) {
                Err(ascend_npu::Error::InvalidArgument { .. }) => {}
                other => panic!("an i16 product: {other:?}"),
            }
            // Lengths: all_reduce equal, all_gather n×.
            let mut short = stream.alloc_zeroed::<u32>(2).unwrap();
            refused(
                "a short all-gather",
                comm.all_gather(stream, &x, &mut short),
            );
            let f = stream.upload(&[1.0f32; 3]).unwrap();
            let mut g = stream.alloc_zeroed::<f32>(2).unwrap();
            refused(
                "a short all-reduce",
                comm.all_reduce(stream, &f, &mut g, ReduceOp::Sum),
            );
            // Peers and roots.
            refused("a send to itself", comm.send(stream, &x, comm.rank()));
            refused("a send past the ranks", comm.send(stream, &x, n));
            refused("a receive past the ranks", comm.recv(stream, &mut y, n));
            refused("a root past the ranks", comm.broadcast(stream, &mut y, n));
            // All-to-all layouts: one entry per rank, parts inside the buffers.
            let wrong = AllToAllV::packed(vec![1; n as usize + 1], vec![1; n as usize]);
            refused(
                "n + 1 counts",
                comm.all_to_all_v(stream, &x, &mut y, &wrong),
            );
            // One count per rank but a displacement short (or one too many).
            for edit in [Vec::pop as fn(&mut Vec<u64>) -> Option<u64>, |v| {
                v.push(0);
                None
            }] {
                let mut uneven = AllToAllV::packed(vec![1; n as usize], vec![1; n as usize]);
                edit(&mut uneven.recv_displs);
                match comm.all_to_all_v(stream, &x, &mut y, &uneven) {
                    Err(e @ ascend_npu::Error::InvalidArgument { .. }) => {
                        assert!(e.to_string().contains("one per rank"), "{e}")
                    }
                    other => panic!("uneven displacements: {other:?}"),
                }
            }
            let outside = AllToAllV::packed(vec![2; n as usize], vec![1; n as usize]);
            let err = comm.all_to_all_v(stream, &x, &mut y, &outside).unwrap_err();
            assert!(err.to_string().contains("inside its buffer"), "{err}");
            // A stream of another device.
            let other = ascend_npu::Device::open(((comm.rank() + 1) % n) as usize).unwrap();
            let foreign = other.new_stream().unwrap();
            let err = comm.barrier(&foreign).unwrap_err();
            assert!(err.to_string().contains("own device"), "{err}");
            // Nothing was queued, so the communicator still works.
            comm.barrier(stream).unwrap();
            stream.synchronize().unwrap();
            comm.async_error().unwrap();
        });
    }
    assert!(ascend_npu::runtime::comm::RootInfo::from_bytes(&[0; 10]).is_err());
}

/// `Comm::init` refuses a size of 0 and a rank outside `0..size` before HCCL sees them (which
/// would wait for ranks that never join); a communicator reports its rank, size and handle, and
/// its Debug output names them.
pub fn init_refuses_ranks_outside_the_communicator() {
    let device = ascend_npu::Device::open(0).unwrap();
    let root = RootInfo::new(&device).unwrap();
    assert_eq!(format!("{root:?}"), "RootInfo(..)");
    for (rank, size) in [(0, 0), (2, 2), (3, 2)] {
        match Comm::init(&device, &root, rank, size) {
            Err(ascend_npu::Error::InvalidArgument { .. }) => {}
            other => panic!("rank {rank} of {size}: {:?}", other.map(|_| ())),
        }
    }
    for n in rank_counts(&[2]) {
        let seen = on_ranks(n, |comm, _| {
            assert!(!comm.raw().is_null());
            (comm.rank(), comm.size(), format!("{comm:?}"))
        });
        for (rank, (r, size, shown)) in seen.into_iter().enumerate() {
            assert_eq!((r, size), (rank as u32, n));
            assert!(
                shown.contains(&format!("rank: {rank}")) && shown.contains(&format!("size: {n}")),
                "{shown}"
            );
        }
    }
}

/// Dropping a communicator waits for the collectives still queued on its streams before
/// `HcclCommDestroy` (HCCL must not destroy a communicator that queued work still uses): rank
/// 0 queues an all-reduce and drops its communicator while rank 1 has not joined yet, so the
/// drop can return only after rank 1 has; the queued all-reduce then has its result.
pub fn dropping_a_communicator_waits_for_its_queued_collectives() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    for n in rank_counts(&[2]) {
        let root = RootInfo::new(&Device::open(0).unwrap()).unwrap();
        let joined = AtomicBool::new(false);
        let (queued_tx, queued_rx) = mpsc::channel::<()>();
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        let rank_data = |stream: &ascend_npu::Stream, rank: u32| {
            let x = stream.upload(&[rank as f32 + 1.0; 3]).unwrap();
            (x, stream.alloc_zeroed::<f32>(3).unwrap())
        };
        std::thread::scope(|scope| {
            let (root, joined, rank_data) = (&root, &joined, &rank_data);
            scope.spawn(move || {
                let device = Device::open(0).unwrap();
                let comm = Comm::init(&device, root, 0, n).unwrap();
                let stream = device.new_stream().unwrap();
                let (x, mut y) = rank_data(&stream, 0);
                comm.all_reduce(&stream, &x, &mut y, ReduceOp::Sum).unwrap();
                queued_tx.send(()).unwrap();
                drop(comm);
                let peer_joined_first = joined.load(Ordering::SeqCst);
                let _ = dropped_tx.send(()); // a drop that did not wait lets rank 1 go on now
                assert!(
                    peer_joined_first,
                    "the communicator was dropped before its queued all-reduce could run"
                );
                assert_eq!(y.to_vec().unwrap(), [3.0; 3]);
            });
            scope.spawn(move || {
                let device = Device::open(1).unwrap();
                let comm = Comm::init(&device, root, 1, n).unwrap();
                let stream = device.new_stream().unwrap();
                let (x, mut y) = rank_data(&stream, 1);
                queued_rx.recv().unwrap();
                // A drop that does not wait returns within this pause and fails rank 0's
                // check; a drop that waits cannot return before the all-reduce below, however
                // long the pause, so the case cannot fail spuriously.
                let _ = dropped_rx.recv_timeout(std::time::Duration::from_millis(200));
                joined.store(true, Ordering::SeqCst);
                comm.all_reduce(&stream, &x, &mut y, ReduceOp::Sum).unwrap();
                assert_eq!(y.to_vec().unwrap(), [3.0; 3]);
            });
        });
    }
}

/// Each rank's `(rank, size, Σ over ranks of rank + 1)`, by an all-reduce.
fn rank_sum(comm: &Comm, stream: &ascend_npu::Stream) -> (u32, u32, f32) {
    let x = stream.upload(&[comm.rank() as f32 + 1.0]).unwrap();
    let mut y = stream.alloc_zeroed::<f32>(1).unwrap();
    comm.all_reduce(stream, &x, &mut y, ReduceOp::Sum).unwrap();
    (comm.rank(), comm.size(), y.to_vec().unwrap()[0])
}

pub fn init_all_builds_every_rank_in_one_call() {
    for n in rank_counts(&[2, 4]) {
        // Devices in reverse: rank i is on devices[i], whatever its id.
        let devices: Vec<Device> = (0..n as usize)
            .rev()
            .map(|d| Device::open(d).unwrap())
            .collect();
        let comms = Comm::init_all(&devices).unwrap();
        for (i, comm) in comms.iter().enumerate() {
            assert_eq!(comm.device().id(), devices[i].id());
        }
        let got = on_comms(comms, rank_sum);
        let want = (n * (n + 1) / 2) as f32;
        for (i, &(rank, size, sum)) in got.iter().enumerate() {
            assert_eq!((rank, size, sum), (i as u32, n, want), "rank {i} of {n}");
        }
    }
    let d0 = Device::open(0).unwrap();
    let err = Comm::init_all(&[d0.clone(), d0]).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    assert!(Comm::init_all(&[]).is_err());
}

pub fn split_makes_communicators_of_some_ranks() {
    for n in rank_counts(&[2, 4]) {
        let got = on_ranks(n, |comm, _| {
            let r = comm.rank();
            // Evens, and odds in reverse: a rank's place in the list is its rank in the split.
            let ranks: Vec<u32> = if r % 2 == 0 {
                (0..n).step_by(2).collect()
            } else {
                (1..n).step_by(2).rev().collect()
            };
            let sub = comm.split(&ranks, 1 + u64::from(r % 2)).unwrap();
            let stream = sub.device().new_stream().unwrap();
            let err = comm.split(&[(r + 1) % n], 9).unwrap_err();
            assert!(err.to_string().contains("the calling rank"), "{err}");
            (ranks, rank_sum(&sub, &stream))
        });
        for (r, (ranks, (rank, size, sum))) in got.into_iter().enumerate() {
            assert_eq!(ranks[rank as usize], r as u32, "rank {r} of {n}");
            assert_eq!(size as usize, ranks.len());
            let m = ranks.len() as f32;
            assert_eq!(sum, m * (m + 1.0) / 2.0, "rank {r} of {n}");
        }
    }
}

/// A rank table with rank `i` on `devices[i]`, in the layout of Ascend's rank-table files.
pub fn rank_table_json(devices: &[usize]) -> String {
    let entries: Vec<String> = devices
        .iter()
        .enumerate()
        .map(|(rank, d)| {
            format!(
                r#"{{"device_id": "{d}", "device_ip": "192.168.100.{}", "rank_id": "{rank}"}}"#,
                rank + 1
            )
        })
        .collect();
    format!(
        r#"{{"version": "1.0", "server_count": "1", "server_list": [{{"server_id": "127.0.0.1", "device": [{}]}}], "status": "completed"}}"#,
        entries.join(", ")
    )
}

/// With `ASCEND_NPU_RANK_TABLE` naming a rank table (on NPUs, the machine's own), that file;
/// otherwise one written for two ranks on devices 1 and 0.
pub fn rank_table_file_builds_a_communicator() {
    let (path, devices, written) = match std::env::var("ASCEND_NPU_RANK_TABLE") {
        Ok(p) => {
            let text = std::fs::read_to_string(&p).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut devices: Vec<(u32, usize)> = Vec::new();
            for server in json["server_list"].as_array().unwrap() {
                for d in server["device"].as_array().unwrap() {
                    let num = |k: &str| d[k].as_str().unwrap().parse::<usize>().unwrap();
                    devices.push((num("rank_id") as u32, num("device_id")));
                }
            }
            devices.sort_unstable();
            let devices = devices.into_iter().map(|(_, d)| d).collect();
            (std::path::PathBuf::from(p), devices, false)
        }
        Err(_) => {
            if rank_counts(&[2]).is_empty() {
                return;
            }
            let path = std::env::temp_dir()
                .join(format!("ascend-npu-rank-table-{}.json", std::process::id()));
            std::fs::write(&path, rank_table_json(&[1, 0])).unwrap();
            (path, vec![1, 0], true)
        }
    };
    let n = devices.len() as u32;
    let ranks: Vec<u32> = (0..n).collect();
    let left = std::sync::Barrier::new(n as usize);
    let named = format!("ascend-npu-table-{}", std::process::id());
    let got = on_threads(ranks, |rank| {
        let device = Device::open(devices[rank as usize]).unwrap();
        let comm = Comm::init_rank_table(&device, &path, rank).unwrap();
        let stream = device.new_stream().unwrap();
        let plain = rank_sum(&comm, &stream);
        // Every rank leaves before the table builds a configured communicator.
        drop(comm);
        left.wait();
        let config = CommConfig {
            name: Some(named.clone()),
            ..CommConfig::default()
        };
        let comm = Comm::init_rank_table_with(&device, &path, rank, &config).unwrap();
        (plain, rank_sum(&comm, &stream), comm.name().unwrap())
    });
    if written {
        let _ = std::fs::remove_file(&path);
    }
    let want = (n * (n + 1) / 2) as f32;
    for (i, (plain, configured, name)) in got.iter().enumerate() {
        assert_eq!(*plain, (i as u32, n, want), "rank {i} of {n}");
        assert_eq!(
            *configured,
            (i as u32, n, want),
            "rank {i} of {n}, configured"
        );
        assert_eq!(*name, named, "rank {i}");
    }
}

/// A configuration reaches HCCL (`HcclCommInitRootInfoConfig`, `HcclCreateSubCommConfig`): the
/// names come back from `HcclGetCommName`, the buffer size is kept, collectives work; a name or
/// buffer size HCCL would not take is refused before any call.
pub fn configured_communicators_report_their_names() {
    let Some(&n) = rank_counts(&[2]).first() else {
        return;
    };
    let root = RootInfo::new(&Device::open(0).unwrap()).unwrap();
    let bytes = root.as_bytes().to_vec();
    let named = format!("ascend-npu-config-{}", std::process::id());
    let got = on_threads((0..n).collect(), |rank| {
        let device = Device::open(rank as usize).unwrap();
        let config = CommConfig {
            buffer_size_mb: Some(64),
            deterministic: Some(true),
            name: Some(named.clone()),
        };
        let root = RootInfo::from_bytes(&bytes).unwrap();
        let comm = Comm::init_with(&device, &root, rank, n, &config).unwrap();
        let stream = device.new_stream().unwrap();
        let sub_config = CommConfig {
            deterministic: Some(false),
            name: Some(format!("{named}-sub")),
            ..CommConfig::default()
        };
        let sub = comm.split_with(&[1, 0], 9, &sub_config).unwrap();
        let names = (comm.name().unwrap(), sub.name().unwrap());
        let sizes = (comm.buffer_size_mb(), sub.buffer_size_mb());
        (
            names,
            sizes,
            rank_sum(&comm, &stream),
            rank_sum(&sub, &stream),
        )
    });
    let want = (n * (n + 1) / 2) as f32;
    for (r, (names, sizes, sum, sub_sum)) in got.into_iter().enumerate() {
        assert_eq!(names, (named.clone(), format!("{named}-sub")), "rank {r}");
        assert_eq!(sizes, (Some(64), None), "rank {r}");
        assert_eq!(sum, (r as u32, n, want), "rank {r}");
        // Rank r is member n-1-r of the split.
        assert_eq!(
            sub_sum,
            (n - 1 - r as u32, n, want),
            "rank {r} in the split"
        );
    }
    let device = Device::open(0).unwrap();
    let bad = [
        CommConfig {
            buffer_size_mb: Some(0),
            ..CommConfig::default()
        },
        CommConfig {
            buffer_size_mb: Some(u32::MAX),
            ..CommConfig::default()
        },
        CommConfig {
            name: Some(String::new()),
            ..CommConfig::default()
        },
        CommConfig {
            name: Some("x".repeat(128)),
            ..CommConfig::default()
        },
        CommConfig {
            name: Some("a\0b".into()),
            ..CommConfig::default()
        },
    ];
    for config in bad {
        let root = RootInfo::new(&device).unwrap();
        match Comm::init_with(&device, &root, 0, 1, &config) {
            Err(ascend_npu::Error::InvalidArgument { .. }) => {}
            other => panic!("{config:?}: {:?}", other.map(|_| ())),
        }
    }
    // The longest name fits.
    let longest = CommConfig {
        name: Some("y".repeat(127)),
        ..CommConfig::default()
    };
    let root = RootInfo::new(&device).unwrap();
    let comm = Comm::init_with(&device, &root, 0, 1, &longest).unwrap();
    assert_eq!(comm.name().unwrap(), "y".repeat(127));
}

/// `Comm::init_rank_table` refuses a path HCCL would read only in part (more than 4095 bytes
/// before the NUL) with a typed error before any call, and passes one of exactly 4095 bytes on
/// to HCCL (which fails it there: no such file).
pub fn rank_table_paths_longer_than_hccl_reads_are_refused() {
    let device = Device::open(0).unwrap();
    let path_of = |len: usize| {
        let mut p = std::env::temp_dir()
            .join("ascend-npu-no-such-rank-table-")
            .into_os_string()
            .into_string()
            .unwrap();
        p.extend(std::iter::repeat_n('x', len - p.len()));
        std::path::PathBuf::from(p)
    };
    match Comm::init_rank_table(&device, &path_of(4096), 0) {
        Err(ascend_npu::Error::InvalidArgument { .. }) => {}
        other => panic!("a 4096-byte path: {:?}", other.map(|_| ())),
    }
    match Comm::init_rank_table(&device, &path_of(4095), 0) {
        Err(ascend_npu::Error::Hccl { .. }) => {}
        other => panic!("a 4095-byte path: {:?}", other.map(|_| ())),
    }
}
