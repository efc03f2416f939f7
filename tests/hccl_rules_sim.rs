//! Each HCCL rule the simulator enforces (`ascend-sim/src/rules/hccl.rs`), violated through raw
//! calls that the safe layer would have refused, fails with the rule's id.

#![cfg(feature = "sim")]

mod common;

use std::ffi::CStr;

use ascend_npu::{DeviceSlice, DeviceSliceMut, sys};
use common::ranks::{on_ranks, setup_ranks};

#[test]
fn each_hccl_rule_names_itself_when_violated() {
    setup_ranks();
    on_ranks(1, |comm, stream| {
        let api = ascend_npu::raw_api().unwrap();
        let recent = || {
            let get = api.aclGetRecentErrMsg().unwrap();
            // SAFETY: NULL or a NUL-terminated string owned by the runtime, copied at once.
            let p = unsafe { get() };
            assert!(!p.is_null(), "no recent error message");
            // SAFETY: as above.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        };
        let x = stream.upload(&[1.0f32; 8]).unwrap();
        let mut y = stream.alloc_zeroed::<f32>(8).unwrap();
        let xp = x.device_ptr() as *mut std::ffi::c_void;
        let yp = y.device_ptr_mut() as *mut std::ffi::c_void;
        let all_reduce = api.HcclAllReduce().unwrap();
        let expect = |rc: sys::HcclResult, id: &str| {
            assert_eq!(rc, sys::HCCL_E_PARA, "{id}");
            let message = recent();
            assert!(message.contains(&format!("[{id}]")), "{id}: {message}");
        };
        // SAFETY (every raw call below): live device buffers of 8 f32 (32 bytes) or offsets
        // inside them, a live communicator and stream; the simulator rejects each call before
        // queueing anything.
        let rc = unsafe {
            all_reduce(
                xp,
                yp,
                8,
                sys::HCCL_DATA_TYPE_UINT32,
                sys::HCCL_REDUCE_SUM,
                comm.raw(),
                stream.as_raw(),
            )
        };
        expect(rc, "hccl.reduce-type-op");
        let rc = unsafe {
            all_reduce(
                xp,
                yp,
                8,
                sys::HCCL_DATA_TYPE_BFP16,
                sys::HCCL_REDUCE_PROD,
                comm.raw(),
                stream.as_raw(),
            )
        };
        expect(rc, "hccl.reduce-type-op");
        let rc = unsafe {
            all_reduce(
                xp.wrapping_byte_add(2),
                yp,
                4,
                sys::HCCL_DATA_TYPE_FP32,
                sys::HCCL_REDUCE_SUM,
                comm.raw(),
                stream.as_raw(),
            )
        };
        expect(rc, "hccl.element-aligned");

        let a2a = api.HcclAlltoAllV().unwrap();
        let (counts, displs) = ([4u64], [0u64]);
        let c = counts.as_ptr().cast();
        let d = displs.as_ptr().cast();
        let rc = unsafe {
            a2a(
                xp,
                c,
                d,
                sys::HCCL_DATA_TYPE_FP32,
                xp,
                c,
                d,
                sys::HCCL_DATA_TYPE_FP32,
                comm.raw(),
                stream.as_raw(),
            )
        };
        expect(rc, "hccl.alltoallv-distinct-buffers");
        let rc = unsafe {
            a2a(
                xp,
                c,
                d,
                sys::HCCL_DATA_TYPE_FP32,
                yp,
                c,
                d,
                sys::HCCL_DATA_TYPE_INT32,
                comm.raw(),
                stream.as_raw(),
            )
        };
        expect(rc, "hccl.alltoallv-one-type");

        // A stream of another device (that device's context is current after making it).
        let other = ascend_npu::Device::open(1).unwrap().new_stream().unwrap();
        let rc = unsafe {
            all_reduce(
                xp,
                yp,
                8,
                sys::HCCL_DATA_TYPE_FP32,
                sys::HCCL_REDUCE_SUM,
                comm.raw(),
                other.as_raw(),
            )
        };
        expect(rc, "hccl.stream-of-rank-device");

        // Communicators of every device at once: each device once, and existing.
        let init_all = api.HcclCommInitAll().unwrap();
        for mut devices in [vec![0, 0], vec![0, 99], vec![]] {
            let mut out = [std::ptr::null_mut(); 2];
            // SAFETY: `devices.len()` ids and room for as many handles (at most 2).
            let rc =
                unsafe { init_all(devices.len() as u32, devices.as_mut_ptr(), out.as_mut_ptr()) };
            expect(rc, "hccl.init-all-devices");
            assert!(
                out.iter().all(|h| h.is_null()),
                "{devices:?}: no handle on failure"
            );
        }

        // A split: a configuration with its header, the caller at its place among the ranks.
        let split = api.HcclCreateSubCommConfig().unwrap();
        let good = sys::HcclCommConfig {
            size: std::mem::size_of::<sys::HcclCommConfig>(),
            magicWord: sys::HCCL_COMM_CONFIG_MAGIC_WORD,
            version: sys::HCCL_COMM_CONFIG_VERSION,
            reserved: 0,
            hcclBufferSize: sys::HCCL_COMM_CONFIG_NOT_SET,
            hcclDeterministic: sys::HCCL_COMM_CONFIG_NOT_SET,
            hcclCommName: [0; sys::COMM_NAME_MAX_LENGTH as usize],
        };
        let bad_magic = sys::HcclCommConfig {
            magicWord: 0,
            ..good
        };
        let named = |name: &str| {
            let mut c = good;
            for (dst, &b) in c.hcclCommName.iter_mut().zip(name.as_bytes()) {
                *dst = b as std::ffi::c_char;
            }
            c
        };
        let cases = [
            (Some(bad_magic), vec![0u32], 0, "hccl.comm-config-header"),
            (None, vec![0], 0, "hccl.comm-config-header"),
            (
                Some(sys::HcclCommConfig {
                    hcclBufferSize: 0,
                    ..good
                }),
                vec![0],
                0,
                "hccl.comm-config-fields",
            ),
            (
                Some(sys::HcclCommConfig {
                    hcclDeterministic: 2,
                    ..good
                }),
                vec![0],
                0,
                "hccl.comm-config-fields",
            ),
            (
                Some(named(&"n".repeat(128))),
                vec![0],
                0,
                "hccl.comm-config-fields",
            ),
            // The name of the live communicator on this device.
            (
                Some(named(&comm.name().unwrap())),
                vec![0],
                0,
                "hccl.comm-name-unique",
            ),
            (Some(good), vec![0, 0], 0, "hccl.subcomm-members"),
            (Some(good), vec![1], 0, "hccl.subcomm-members"),
            (Some(good), vec![0], 1, "hccl.subcomm-members"),
        ];
        for (mut config, mut ranks, place, id) in cases {
            let config_ptr = config
                .as_mut()
                .map_or(std::ptr::null_mut(), |c| c as *mut sys::HcclCommConfig);
            let (mut parent, mut sub) = (comm.raw(), std::ptr::null_mut());
            // SAFETY: a live parent, `ranks.len()` rank ids, a configuration or NULL, and a
            // valid out-pointer; the simulator rejects each call before making anything.
            let rc = unsafe {
                split(
                    &mut parent,
                    ranks.len() as u32,
                    ranks.as_mut_ptr(),
                    7,
                    place,
                    config_ptr,
                    &mut sub,
                )
            };
            expect(rc, id);
            assert!(sub.is_null());
        }

        // The configured inits read the same configuration (before joining anything).
        let init_config = api.HcclCommInitRootInfoConfig().unwrap();
        let root = ascend_npu::runtime::comm::RootInfo::new(comm.device()).unwrap();
        let root_bytes: &sys::HcclRootInfo = bytemuck_root(root.as_bytes());
        for (config, id) in [
            (bad_magic, "hccl.comm-config-header"),
            (named(&comm.name().unwrap()), "hccl.comm-name-unique"),
        ] {
            let mut out = std::ptr::null_mut();
            // SAFETY: a whole root info and configuration, a valid out-pointer.
            let rc = unsafe { init_config(1, root_bytes, 0, &config, &mut out) };
            expect(rc, id);
            assert!(out.is_null());
        }
        let cluster_config = api.HcclCommInitClusterInfoConfig().unwrap();
        let no_table = std::ffi::CString::new("/nonexistent/rank-table.json").unwrap();
        let mut bad = sys::HcclCommConfig {
            hcclDeterministic: 7,
            ..good
        };
        let mut out = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path, a whole configuration, a valid out-pointer.
        let rc = unsafe { cluster_config(no_table.as_ptr(), 0, &mut bad, &mut out) };
        expect(rc, "hccl.comm-config-fields");

        // A rank table: readable, listing the rank, on the caller's device.
        let cluster = api.HcclCommInitClusterInfo().unwrap();
        let dir = std::env::temp_dir();
        let elsewhere = dir.join(format!("ascend-npu-rules-{}.json", std::process::id()));
        // Rank 0 on device 1, while the caller is on device 0.
        std::fs::write(&elsewhere, common::hccl_cases::rank_table_json(&[1])).unwrap();
        let missing = dir.join("ascend-npu-no-such-rank-table.json");
        for (path, rank) in [(&missing, 0), (&elsewhere, 0), (&elsewhere, 3)] {
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            let mut out = std::ptr::null_mut();
            let _ = ascend_npu::Device::open(0).unwrap().memory_info().unwrap(); // bind device 0
            // SAFETY: a NUL-terminated path and a valid out-pointer.
            let rc = unsafe { cluster(c.as_ptr(), rank, &mut out) };
            expect(rc, "hccl.rank-table");
            assert!(out.is_null());
        }
        let _ = std::fs::remove_file(elsewhere);

        // Host memory as a buffer: found when the op runs, and the stream reports it.
        let mut host = [0f32; 8];
        let _ = ascend_npu::Device::open(0).unwrap().memory_info().unwrap(); // rebind device 0
        let rc = unsafe {
            all_reduce(
                xp,
                host.as_mut_ptr().cast(),
                8,
                sys::HCCL_DATA_TYPE_FP32,
                sys::HCCL_REDUCE_SUM,
                comm.raw(),
                stream.as_raw(),
            )
        };
        assert_eq!(rc, sys::HCCL_SUCCESS);
        let err = stream.synchronize().unwrap_err().to_string();
        assert!(err.contains("[hccl.element-aligned]"), "{err}");
        assert!(host.iter().all(|&v| v == 0.0));
    });
}

/// Ranks that give different member lists for one split id: every rank fails with the rule's
/// id at once (the ranks that joined first are failed by the one that found the mismatch),
/// never waiting for the timeout; a split with another id works afterwards.
#[test]
fn split_members_that_differ_fail_every_rank_at_once() {
    use std::time::{Duration, Instant};
    setup_ranks();
    let timeout = Duration::from_secs(60);
    if !common::ranks::set_sim_hccl_timeout(timeout) {
        return;
    }
    let results = on_ranks(2, |comm, _| {
        let ranks = if comm.rank() == 0 { [0, 1] } else { [1, 0] };
        let start = Instant::now();
        (comm.split(&ranks, 7).err(), start.elapsed())
    });
    for (rank, (err, elapsed)) in results.iter().enumerate() {
        let err = err
            .as_ref()
            .unwrap_or_else(|| panic!("rank {rank}: the split succeeded"));
        assert!(
            err.to_string().contains("[hccl.subcomm-members]"),
            "rank {rank}: {err}"
        );
        assert!(*elapsed < timeout / 4, "rank {rank} waited {elapsed:?}");
    }
    let sizes = on_ranks(2, |comm, stream| {
        let sub = comm.split(&[0, 1], 8).unwrap();
        sub.barrier(stream).unwrap();
        stream.synchronize().unwrap();
        sub.size()
    });
    assert_eq!(sizes, [2, 2]);
    common::ranks::set_sim_hccl_timeout(Duration::ZERO);
}

/// `bytes` (a root info's) as the C struct.
fn bytemuck_root(bytes: &[u8]) -> &sys::HcclRootInfo {
    assert_eq!(bytes.len(), std::mem::size_of::<sys::HcclRootInfo>());
    // SAFETY: as many bytes as the struct, which is a byte array (alignment 1).
    unsafe { &*bytes.as_ptr().cast::<sys::HcclRootInfo>() }
}
