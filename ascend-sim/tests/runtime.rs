//! The runtime through the C function table, in one process sharing the simulator.

// The `acl!` helper calls the C table with test arguments; every call site is an FFI call
// by design, so the arguments being expanded inside its unsafe block is intended.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;

use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ascend_sys::*;
use common::*;

#[test]
fn versions_soc_and_run_mode() {
    let _d = Device::set(0);
    let (mut a, mut b, mut c) = (0, 0, 0);
    ok(acl!(aclrtGetVersion(&mut a, &mut b, &mut c)));
    assert_eq!((a, b, c), (1, 17, 0));
    let mut buf = [0 as std::ffi::c_char; ACL_PKG_VERSION_MAX_SIZE];
    let pkg = c"runtime".as_ptr().cast_mut();
    ok(acl!(aclsysGetVersionStr(pkg, buf.as_mut_ptr())));
    // SAFETY: the simulator wrote a NUL-terminated string.
    let v = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert!(v.contains("ascend-sim"), "{v}");
    let mut n = 0;
    ok(acl!(aclsysGetVersionNum(pkg, &mut n)));
    assert_eq!(n, 100);
    err(
        acl!(aclsysGetVersionNum(std::ptr::null_mut(), &mut n)),
        ACL_ERROR_RT_PARAM_INVALID,
        "pkgName",
    );
    let name = acl!(aclrtGetSocName());
    // SAFETY: static string from the simulator.
    let name = unsafe { CStr::from_ptr(name) }.to_str().unwrap();
    assert_eq!(name, "Ascend910B2 (ascend-sim)");
    let mut mode = 0;
    ok(acl!(aclrtGetRunMode(&mut mode)));
    assert_eq!(mode, ACL_HOST);
    let mut count = 0;
    ok(acl!(aclrtGetDeviceCount(&mut count)));
    assert_eq!(count as usize, common::device_count());
    err(
        acl!(aclrtGetDeviceCount(std::ptr::null_mut())),
        ACL_ERROR_RT_PARAM_INVALID,
        "count is NULL",
    );
    // An output pointer that is a device address is rejected, not written.
    let p = malloc(64);
    err(
        acl!(aclrtGetDeviceCount(p.cast())),
        ACL_ERROR_RT_PARAM_INVALID,
        "device address",
    );
    free(p);
}

#[test]
fn device_info() {
    let mut v = 0i64;
    let q = |attr, v: &mut i64| acl!(aclrtGetDeviceInfo(0, attr, v));
    ok(q(ACL_DEV_ATTR_AICORE_CORE_NUM, &mut v));
    assert_eq!(v, 24);
    ok(q(ACL_DEV_ATTR_CUBE_CORE_NUM, &mut v));
    assert_eq!(v, 24);
    ok(q(ACL_DEV_ATTR_VECTOR_CORE_NUM, &mut v));
    assert_eq!(v, 48);
    ok(q(ACL_DEV_ATTR_UBUF_PER_VECTOR_CORE, &mut v));
    assert_eq!(v, 196608);
    ok(q(ACL_DEV_ATTR_TOTAL_GLOBAL_MEM_SIZE, &mut v));
    assert_eq!(v, 64 << 30);
    ok(q(ACL_DEV_ATTR_L2_CACHE_SIZE, &mut v));
    assert_eq!(v, 192 << 20);
    ok(q(ACL_DEV_ATTR_NPU_ARCH, &mut v));
    assert_eq!(v, 2201);
    ok(q(ACL_DEV_ATTR_AICPU_CORE_NUM, &mut v));
    assert_eq!(v, 6);
    err(
        q(ACL_DEV_ATTR_WARP_SIZE, &mut v),
        ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
        "SIMT",
    );
    err(q(9999, &mut v), ACL_ERROR_RT_PARAM_INVALID, "9999");
    err(
        acl!(aclrtGetDeviceInfo(99, ACL_DEV_ATTR_NPU_ARCH, &mut v)),
        ACL_ERROR_RT_INVALID_DEVICEID,
        "device id 99",
    );
    let mut topo = 0u64;
    ok(acl!(aclrtGetDevicesTopo(0, 1, &mut topo)));
    assert_eq!(topo, 0x01);
    err(
        acl!(aclrtGetDevicesTopo(1, 1, &mut topo)),
        ACL_ERROR_RT_PARAM_INVALID,
        "different",
    );
}

#[test]
fn set_reset_and_current_device() {
    std::thread::spawn(|| {
        let mut d = -1;
        err(
            acl!(aclrtGetDevice(&mut d)),
            ACL_ERROR_RT_CONTEXT_NULL,
            "aclrtSetDevice",
        );
        err(
            acl!(aclrtSetDevice(77)),
            ACL_ERROR_RT_INVALID_DEVICEID,
            "77",
        );
        err(
            acl!(aclrtSetDevice(-1)),
            ACL_ERROR_RT_INVALID_DEVICEID,
            "-1",
        );
        {
            let _d = Device::set(1);
            ok(acl!(aclrtGetDevice(&mut d)));
            assert_eq!(d, 1);
            // Set twice, reset once: still usable.
            ok(acl!(aclrtSetDevice(1)));
            ok(acl!(aclrtResetDevice(1)));
            ok(acl!(aclrtGetDevice(&mut d)));
            let p = malloc(16);
            free(p);
        }
        err(
            acl!(aclrtResetDevice(99)),
            ACL_ERROR_RT_INVALID_DEVICEID,
            "99",
        );
    })
    .join()
    .unwrap();
}

/// Device 3 is touched by this test only, so its memory numbers are exact.
#[test]
fn device3_exclusive_memory_accounting() {
    err(
        acl!(aclrtResetDevice(3)),
        ACL_ERROR_RT_PARAM_INVALID,
        "not set",
    );
    let _d = Device::set(3);
    let (mut free0, mut total) = (0usize, 0usize);
    ok(acl!(aclrtGetMemInfo(ACL_HBM_MEM, &mut free0, &mut total)));
    assert_eq!(total, 64 << 30);
    let p = malloc(100);
    let mut free1 = 0;
    ok(acl!(aclrtGetMemInfo(ACL_HBM_MEM, &mut free1, &mut total)));
    assert_eq!(free0 - free1, 128 + 32, "round_up(100, 32) + 32");
    let mut q = std::ptr::null_mut();
    ok(acl!(aclrtMallocAlign32(
        &mut q,
        100,
        ACL_MEM_MALLOC_HUGE_FIRST
    )));
    let mut free2 = 0;
    ok(acl!(aclrtGetMemInfo(ACL_HBM_MEM, &mut free2, &mut total)));
    assert_eq!(free1 - free2, 128);
    free(p);
    free(q);
    ok(acl!(aclrtGetMemInfo(
        ACL_HBM_MEM_HUGE,
        &mut free2,
        &mut total
    )));
    assert_eq!(free2, free0);
    ok(acl!(aclrtGetMemInfo(ACL_DDR_MEM, &mut free2, &mut total)));
    assert_eq!((free2, total), (0, 0));
    err(
        acl!(aclrtGetMemInfo(99, &mut free2, &mut total)),
        ACL_ERROR_RT_PARAM_INVALID,
        "99",
    );
    // Exceeding HBM fails, and the device stays usable.
    let mut big = std::ptr::null_mut();
    err(
        acl!(aclrtMalloc(&mut big, 65 << 30, ACL_MEM_MALLOC_HUGE_FIRST)),
        ACL_ERROR_RT_MEMORY_ALLOCATION,
        "[malloc.within-device-memory]",
    );
    free(malloc(1));
}

#[test]
fn malloc_rules_and_uninitialised_contents() {
    let _d = Device::set(0);
    let mut ptrs = Vec::new();
    for size in [1usize, 31, 32, 33, 64, 1000, 4096] {
        let p = malloc(size);
        assert_eq!(p as usize % 64, 0);
        assert_eq!(p as u64 >> 62, 1, "device pointers are in the fake region");
        assert!(d2h(p, size).iter().all(|&b| b == ascend_sim::UNINIT_BYTE));
        ptrs.push(p);
    }
    let mut cached = std::ptr::null_mut();
    ok(acl!(aclrtMallocCached(
        &mut cached,
        8,
        ACL_MEM_MALLOC_NORMAL_ONLY
    )));
    ptrs.push(cached);
    let mut p = std::ptr::null_mut();
    err(
        acl!(aclrtMalloc(&mut p, 0, ACL_MEM_MALLOC_HUGE_FIRST)),
        ACL_ERROR_RT_PARAM_INVALID,
        "size is 0",
    );
    err(
        acl!(aclrtMalloc(
            std::ptr::null_mut(),
            8,
            ACL_MEM_MALLOC_HUGE_FIRST
        )),
        ACL_ERROR_RT_PARAM_INVALID,
        "devPtr is NULL",
    );
    for p in ptrs {
        free(p);
    }
    // No current context: CONTEXT_NULL.
    std::thread::spawn(|| {
        let mut p = std::ptr::null_mut();
        err(
            acl!(aclrtMalloc(&mut p, 8, ACL_MEM_MALLOC_HUGE_FIRST)),
            ACL_ERROR_RT_CONTEXT_NULL,
            "current context",
        );
    })
    .join()
    .unwrap();
}

#[test]
fn free_errors() {
    let _d = Device::set(0);
    let p = malloc(256);
    err(
        acl!(aclrtFree(offset(p, 64))),
        ACL_ERROR_RT_MEMORY_FREE,
        "not the start",
    );
    free(p);
    err(acl!(aclrtFree(p)), ACL_ERROR_RT_MEMORY_FREE, "double free");
    err(
        acl!(aclrtFree(std::ptr::null_mut())),
        ACL_ERROR_RT_PARAM_INVALID,
        "NULL",
    );
    let mut host = [0u8; 8];
    err(
        acl!(aclrtFree(host.as_mut_ptr().cast())),
        ACL_ERROR_RT_MEMORY_FREE,
        "not a device address",
    );
    let pinned = malloc_host(64);
    err(
        acl!(aclrtFree(pinned)),
        ACL_ERROR_RT_MEMORY_FREE,
        "aclrtFreeHost",
    );
    ok(acl!(aclrtFreeHost(pinned)));
    err(
        acl!(aclrtFreeHost(pinned)),
        ACL_ERROR_RT_MEMORY_FREE,
        "double free",
    );
    // Still usable.
    free(malloc(8));
}

#[test]
fn memcpy_round_trips_and_parameter_checks() {
    let _d = Device::set(0);
    let a = malloc(1024);
    let b = malloc(1024);
    let data: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
    h2d(a, &data);
    ok(acl!(aclrtMemcpy(
        b,
        1024,
        a,
        1024,
        ACL_MEMCPY_DEVICE_TO_DEVICE
    )));
    assert_eq!(d2h(b, 1024), data);
    // DEFAULT infers the direction.
    let mut out = vec![0u8; 16];
    ok(acl!(aclrtMemcpy(
        out.as_mut_ptr().cast(),
        16,
        offset(b, 8),
        16,
        ACL_MEMCPY_DEFAULT
    )));
    assert_eq!(out, data[8..24]);

    let host = data.as_ptr().cast::<c_void>();
    let cp = |dst, max, src, n, kind| acl!(aclrtMemcpy(dst, max, src, n, kind));
    let h2d_kind = ACL_MEMCPY_HOST_TO_DEVICE;
    err(
        cp(std::ptr::null_mut(), 8, host, 8, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "dst is NULL",
    );
    err(
        cp(a, 8, std::ptr::null(), 8, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "src is NULL",
    );
    err(
        cp(a, 8, host, 0, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "count is 0",
    );
    err(
        cp(a, 8, host, 9, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "destMax",
    );
    err(cp(a, 8, host, 8, 99), ACL_ERROR_RT_PARAM_INVALID, "kind 99");
    err(
        cp(a, 8, a, 8, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "needs a host source",
    );
    err(
        cp(
            out.as_mut_ptr().cast(),
            8,
            host,
            8,
            ACL_MEMCPY_DEVICE_TO_HOST,
        ),
        ACL_ERROR_RT_PARAM_INVALID,
        "needs a device source",
    );
    // Past the end of the allocation.
    err(
        cp(offset(a, 1000), 100, host, 100, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "overflows allocation",
    );
    // Starting in the guard gap after it.
    err(
        cp(offset(a, 1100), 8, host, 8, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "not inside any live allocation",
    );
    // A range big enough to reach the next allocation still names the overflow.
    let span = b as usize - a as usize + 8;
    let big = vec![0u8; span];
    err(
        cp(a, span, big.as_ptr().cast(), span, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "overflows allocation",
    );
    // Use after free.
    let c = malloc(64);
    free(c);
    err(
        cp(c, 8, host, 8, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "use after free",
    );
    // A device address of a device that does not exist.
    let ghost = (0x4000_0000_0000_0000u64 | (50u64 << 48)) as *mut c_void;
    err(
        cp(ghost, 8, host, 8, h2d_kind),
        ACL_ERROR_RT_PARAM_INVALID,
        "device 50",
    );
    // INNER needs one device.
    ok(cp(b, 8, a, 8, ACL_MEMCPY_INNER_DEVICE_TO_DEVICE));
    err(
        cp(b, 8, a, 8, ACL_MEMCPY_INTER_DEVICE_TO_DEVICE),
        ACL_ERROR_RT_PARAM_INVALID,
        "two devices",
    );
    // Still usable.
    h2d(a, &data);
    assert_eq!(d2h(a, 1024), data);
    free(a);
    free(b);
}

#[test]
fn memcpy_2d() {
    let _d = Device::set(0);
    let (width, height, dpitch, spitch) = (5usize, 4usize, 8usize, 6usize);
    let dev = malloc(dpitch * height);
    ok(acl!(aclrtMemset(dev, dpitch * height, 0, dpitch * height)));
    let src: Vec<u8> = (1..=(spitch * height) as u8).collect();
    ok(acl!(aclrtMemcpy2d(
        dev,
        dpitch,
        src.as_ptr().cast(),
        spitch,
        width,
        height,
        ACL_MEMCPY_HOST_TO_DEVICE
    )));
    let got = d2h(dev, dpitch * height);
    for r in 0..height {
        assert_eq!(
            got[r * dpitch..r * dpitch + width],
            src[r * spitch..r * spitch + width]
        );
        assert!(
            got[r * dpitch + width..(r + 1) * dpitch]
                .iter()
                .all(|&b| b == 0)
        );
    }
    let mut back = vec![0u8; width * height];
    let s = stream();
    ok(acl!(aclrtMemcpy2dAsync(
        back.as_mut_ptr().cast(),
        width,
        dev,
        dpitch,
        width,
        height,
        ACL_MEMCPY_DEVICE_TO_HOST,
        s
    )));
    ok(acl!(aclrtSynchronizeStream(s)));
    for r in 0..height {
        assert_eq!(
            back[r * width..(r + 1) * width],
            src[r * spitch..r * spitch + width]
        );
    }
    err(
        acl!(aclrtMemcpy2d(
            dev,
            2,
            src.as_ptr().cast(),
            spitch,
            width,
            height,
            ACL_MEMCPY_HOST_TO_DEVICE
        )),
        ACL_ERROR_RT_PARAM_INVALID,
        "pitches",
    );
    err(
        acl!(aclrtMemcpy2d(
            dev,
            dpitch,
            src.as_ptr().cast(),
            spitch,
            width,
            height + 1,
            ACL_MEMCPY_HOST_TO_DEVICE
        )),
        ACL_ERROR_RT_PARAM_INVALID,
        "overflows",
    );
    ok(acl!(aclrtDestroyStream(s)));
    free(dev);
}

#[test]
fn memset_sync_and_async() {
    let _d = Device::set(0);
    let p = malloc(64);
    ok(acl!(aclrtMemset(p, 64, 0x1234, 64)));
    assert!(d2h(p, 64).iter().all(|&b| b == 0x34), "low byte of value");
    let s = stream();
    ok(acl!(aclrtMemsetAsync(offset(p, 16), 48, 7, 16, s)));
    ok(acl!(aclrtSynchronizeStream(s)));
    let got = d2h(p, 64);
    assert!(got[16..32].iter().all(|&b| b == 7) && got[32..].iter().all(|&b| b == 0x34));
    err(
        acl!(aclrtMemset(p, 8, 0, 16)),
        ACL_ERROR_RT_PARAM_INVALID,
        "maxCount",
    );
    err(
        acl!(aclrtMemset(p, 8, 0, 0)),
        ACL_ERROR_RT_PARAM_INVALID,
        "count is 0",
    );
    err(
        acl!(aclrtMemset(p, 128, 0, 128)),
        ACL_ERROR_RT_PARAM_INVALID,
        "overflows",
    );
    let mut host = [0u8; 8];
    err(
        acl!(aclrtMemset(host.as_mut_ptr().cast(), 8, 0, 8)),
        ACL_ERROR_RT_PARAM_INVALID,
        "aclrtMallocHost",
    );
    let pinned = malloc_host(8);
    ok(acl!(aclrtMemset(pinned, 8, 9, 8)));
    // SAFETY: pinned is 8 writable host bytes.
    assert_eq!(unsafe { *pinned.cast::<u8>() }, 9);
    ok(acl!(aclrtFreeHost(pinned)));
    ok(acl!(aclrtDestroyStream(s)));
    free(p);
}

#[test]
fn pinned_memory_and_async_copies() {
    let _d = Device::set(0);
    let pinned = malloc_host(256);
    assert_eq!(pinned as usize % 64, 0);
    // SAFETY: 256 pinned bytes.
    let host = unsafe { std::slice::from_raw_parts_mut(pinned.cast::<u8>(), 256) };
    assert!(host.iter().all(|&b| b == ascend_sim::UNINIT_BYTE));
    for (i, b) in host.iter_mut().enumerate() {
        *b = i as u8;
    }
    let dev = malloc(256);
    let s = stream();
    ok(acl!(aclrtMemcpyAsync(
        dev,
        256,
        pinned,
        256,
        ACL_MEMCPY_HOST_TO_DEVICE,
        s
    )));
    ok(acl!(aclrtSynchronizeStream(s)));
    assert_eq!(d2h(dev, 256), (0..=255u8).collect::<Vec<_>>());
    // Past the end of the pinned block.
    err(
        acl!(aclrtMemcpyAsync(
            dev,
            256,
            offset(pinned, 16),
            256,
            ACL_MEMCPY_HOST_TO_DEVICE,
            s
        )),
        ACL_ERROR_RT_PARAM_INVALID,
        "pinned block",
    );
    // Pageable async copies complete before returning: the source may change right after.
    let mut pageable = vec![42u8; 256];
    ok(acl!(aclrtMemcpyAsync(
        dev,
        256,
        pageable.as_ptr().cast(),
        256,
        ACL_MEMCPY_HOST_TO_DEVICE,
        s
    )));
    pageable.fill(0);
    assert!(d2h(dev, 256).iter().all(|&b| b == 42));
    ok(acl!(aclrtMemcpyAsync(
        pageable.as_mut_ptr().cast(),
        256,
        dev,
        256,
        ACL_MEMCPY_DEVICE_TO_HOST,
        s
    )));
    assert!(pageable.iter().all(|&b| b == 42));
    // Async host-to-host is rejected in this run mode.
    err(
        acl!(aclrtMemcpyAsync(
            pinned,
            8,
            pageable.as_ptr().cast(),
            8,
            ACL_MEMCPY_HOST_TO_HOST,
            s
        )),
        ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
        "host-to-host",
    );
    // Synchronous host-to-host works.
    ok(acl!(aclrtMemcpy(
        pinned,
        8,
        pageable.as_ptr().cast(),
        8,
        ACL_MEMCPY_HOST_TO_HOST
    )));
    ok(acl!(aclrtFreeHost(pinned)));
    // A freed (quarantined) pinned block is detected.
    err(
        acl!(aclrtMemcpy(dev, 8, pinned, 8, ACL_MEMCPY_HOST_TO_DEVICE)),
        ACL_ERROR_RT_PARAM_INVALID,
        "use after free",
    );
    ok(acl!(aclrtDestroyStream(s)));
    free(dev);
}

#[test]
fn sticky_async_error_reported_once() {
    let _d = Device::set(0);
    let s = stream();
    let gate = Box::new(AtomicBool::new(false));
    let gate_ptr = &*gate as *const AtomicBool as *mut c_void;
    let dev = malloc(64);
    let pinned = malloc_host(64);
    ok(acl!(aclrtLaunchHostFunc(s, Some(wait_flag), gate_ptr)));
    ok(acl!(aclrtMemcpyAsync(
        pinned,
        64,
        dev,
        64,
        ACL_MEMCPY_DEVICE_TO_HOST,
        s
    )));
    let mut status = 99;
    ok(acl!(aclrtStreamQuery(s, &mut status)));
    assert_eq!(status, ACL_STREAM_STATUS_NOT_READY);
    err(
        acl!(aclrtSynchronizeStreamWithTimeout(s, 0)),
        ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
        "timeout",
    );
    free(dev); // freed while the copy is still queued
    gate.store(true, Ordering::Release);
    err(
        acl!(aclrtSynchronizeStream(s)),
        ACL_ERROR_RT_PARAM_INVALID,
        "use after free",
    );
    // Reported once; the stream keeps working.
    ok(acl!(aclrtSynchronizeStream(s)));
    ok(acl!(aclrtStreamQuery(s, &mut status)));
    assert_eq!(status, ACL_STREAM_STATUS_COMPLETE);
    ok(acl!(aclrtFreeHost(pinned)));
    ok(acl!(aclrtDestroyStream(s)));
}

#[test]
fn stream_handles_are_validated_and_never_reused() {
    let _d = Device::set(0);
    let a = stream();
    ok(acl!(aclrtDestroyStream(a)));
    let b = stream();
    assert_ne!(a, b);
    err(
        acl!(aclrtSynchronizeStream(a)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "destroyed",
    );
    err(
        acl!(aclrtDestroyStream(a)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "destroyed",
    );
    err(
        acl!(aclrtDestroyStream(std::ptr::null_mut())),
        ACL_ERROR_RT_PARAM_INVALID,
        "default stream",
    );
    let e = event(None);
    err(
        acl!(aclrtSynchronizeStream(e)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "it is a event",
    );
    err(
        acl!(aclrtSynchronizeStream(0x1234 as *mut c_void)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "not a stream",
    );
    let mut c = std::ptr::null_mut();
    ok(acl!(aclrtCreateStreamWithConfig(
        &mut c,
        0,
        ACL_STREAM_FAST_LAUNCH
    )));
    ok(acl!(aclrtSynchronizeStream(std::ptr::null_mut())));
    ok(acl!(aclrtSynchronizeStreamWithTimeout(c, -1)));
    err(
        acl!(aclrtSynchronizeStreamWithTimeout(c, -5)),
        ACL_ERROR_RT_PARAM_INVALID,
        "-5",
    );
    ok(acl!(aclrtDestroyStreamForce(c)));
    ok(acl!(aclrtDestroyStream(b)));
    ok(acl!(aclrtDestroyEvent(e)));
    err(
        acl!(aclrtDestroyEvent(e)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "destroyed",
    );
}

#[test]
fn stream_of_another_device_is_rejected() {
    let _d0 = Device::set(0);
    let s0 = stream();
    let _d1 = Device::set(1); // now current
    let p = malloc(8);
    err(
        acl!(aclrtMemsetAsync(p, 8, 0, 8, s0)),
        ACL_ERROR_RT_STREAM_CONTEXT,
        "belongs to device 0",
    );
    free(p);
    ok(acl!(aclrtDestroyStream(s0)));
}

#[test]
fn host_funcs_run_in_order() {
    let _d = Device::set(0);
    let s = stream();
    let log: Arc<Mutex<Vec<usize>>> = Arc::default();
    unsafe extern "C" fn push(arg: *mut c_void) {
        // SAFETY: arg is a Box<(Arc<Mutex<Vec<usize>>>, usize)> leaked by the test.
        let (log, i) = *unsafe { Box::from_raw(arg.cast::<(Arc<Mutex<Vec<usize>>>, usize)>()) };
        log.lock().unwrap().push(i);
    }
    for i in 0..100usize {
        let arg = Box::into_raw(Box::new((log.clone(), i))).cast();
        ok(acl!(aclrtLaunchHostFunc(s, Some(push), arg)));
    }
    ok(acl!(aclrtSynchronizeStream(s)));
    assert_eq!(*log.lock().unwrap(), (0..100).collect::<Vec<_>>());
    err(
        acl!(aclrtLaunchHostFunc(s, None, std::ptr::null_mut())),
        ACL_ERROR_RT_PARAM_INVALID,
        "fn is NULL",
    );
    ok(acl!(aclrtDestroyStream(s)));
}

#[test]
fn events_status_timing_and_flag_rules() {
    let _d = Device::set(0);
    let s = stream();
    let (e1, e2, e3) = (event(None), event(None), event(None));
    let mut rs = 99;
    let mut old = 99;
    ok(acl!(aclrtQueryEventStatus(e1, &mut rs)));
    assert_eq!(rs, ACL_EVENT_RECORDED_STATUS_NOT_READY, "never recorded");
    let mut ms = 0f32;
    err(
        acl!(aclrtEventElapsedTime(&mut ms, e1, e2)),
        ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID,
        "never recorded",
    );
    let gate = Box::new(AtomicBool::new(false));
    ok(acl!(aclrtRecordEvent(e1, s)));
    ok(acl!(aclrtLaunchHostFunc(
        s,
        Some(wait_flag),
        &*gate as *const AtomicBool as *mut c_void
    )));
    ok(acl!(aclrtRecordEvent(e2, s)));
    ok(acl!(aclrtQueryEvent(e2, &mut old)));
    assert_eq!(old, ACL_EVENT_STATUS_NOT_READY);
    err(
        acl!(aclrtEventElapsedTime(&mut ms, e1, e2)),
        ACL_ERROR_RT_EVENT_NOT_COMPLETE,
        "not completed",
    );
    err(
        acl!(aclrtSynchronizeEventWithTimeout(e2, 1)),
        ACL_ERROR_RT_EVENT_SYNC_TIMEOUT,
        "timeout",
    );
    // e1 must have its timestamp before the 5 ms start: on a loaded machine the stream's
    // worker may run the record late, which would shorten the measured interval.
    ok(acl!(aclrtSynchronizeEvent(e1)));
    std::thread::sleep(std::time::Duration::from_millis(5));
    gate.store(true, Ordering::Release);
    ok(acl!(aclrtSynchronizeEvent(e2)));
    ok(acl!(aclrtRecordEvent(e3, s)));
    ok(acl!(aclrtSynchronizeEventWithTimeout(e3, -1)));
    ok(acl!(aclrtQueryEvent(e2, &mut old)));
    assert_eq!(
        old, ACL_EVENT_STATUS_COMPLETE,
        "deprecated enum: COMPLETE is 0"
    );
    ok(acl!(aclrtQueryEventStatus(e2, &mut rs)));
    assert_eq!(rs, ACL_EVENT_RECORDED_STATUS_COMPLETE);
    let (mut t12, mut t13) = (0f32, 0f32);
    ok(acl!(aclrtEventElapsedTime(&mut t12, e1, e2)));
    ok(acl!(aclrtEventElapsedTime(&mut t13, e1, e3)));
    assert!(t12 >= 4.0 && t13 >= t12, "{t12} {t13}");
    err(
        acl!(aclrtEventElapsedTime(&mut ms, e3, e1)),
        ACL_ERROR_RT_EVENT_TIMESTAMP_REVERSAL,
        "before",
    );
    let (mut ts1, mut ts3) = (0u64, 0u64);
    ok(acl!(aclrtEventGetTimestamp(e1, &mut ts1)));
    ok(acl!(aclrtEventGetTimestamp(e3, &mut ts3)));
    assert!(ts3 >= ts1);
    // Events on different streams are not compared.
    let s2 = stream();
    ok(acl!(aclrtRecordEvent(e3, s2)));
    ok(acl!(aclrtSynchronizeEvent(e3)));
    err(
        acl!(aclrtEventElapsedTime(&mut ms, e1, e3)),
        ACL_ERROR_RT_PARAM_INVALID,
        "same stream",
    );

    // Flag rules.
    let plain_reset = acl!(aclrtResetEvent(e1, s));
    err(plain_reset, ACL_ERROR_RT_PARAM_INVALID, "aclrtCreateEvent");
    let nosync = event(Some(ACL_EVENT_TIME_LINE));
    err(
        acl!(aclrtStreamWaitEvent(s, nosync)),
        ACL_ERROR_RT_PARAM_INVALID,
        "ACL_EVENT_SYNC",
    );
    err(
        acl!(aclrtResetEvent(nosync, s)),
        ACL_ERROR_RT_PARAM_INVALID,
        "ACL_EVENT_SYNC",
    );
    let untimed = event(Some(ACL_EVENT_SYNC));
    ok(acl!(aclrtRecordEvent(untimed, s)));
    ok(acl!(aclrtSynchronizeEvent(untimed)));
    err(
        acl!(aclrtEventGetTimestamp(untimed, &mut ts1)),
        ACL_ERROR_RT_PARAM_INVALID,
        "ACL_EVENT_TIME_LINE",
    );
    ok(acl!(aclrtResetEvent(untimed, s)));
    ok(acl!(aclrtSynchronizeStream(s)));
    ok(acl!(aclrtQueryEventStatus(untimed, &mut rs)));
    assert_eq!(rs, ACL_EVENT_RECORDED_STATUS_NOT_READY, "reset");
    let mut bad = std::ptr::null_mut();
    err(
        acl!(aclrtCreateEventWithFlag(&mut bad, 0x8000)),
        ACL_ERROR_RT_PARAM_INVALID,
        "unknown bits",
    );
    let mut ex = std::ptr::null_mut();
    ok(acl!(aclrtCreateEventExWithFlag(
        &mut ex,
        ACL_EVENT_SYNC | ACL_EVENT_TIME_LINE
    )));
    for e in [e1, e2, e3, nosync, untimed, ex] {
        ok(acl!(aclrtDestroyEvent(e)));
    }
    ok(acl!(aclrtDestroyStream(s)));
    ok(acl!(aclrtDestroyStream(s2)));
}

#[test]
fn cross_stream_waits_give_exact_results() {
    let _d = Device::set(0);
    const N: usize = 4096;
    const STAGES: usize = 4;
    let streams: Vec<_> = (0..STAGES).map(|_| stream()).collect();
    let events: Vec<_> = (0..STAGES).map(|_| event(Some(ACL_EVENT_SYNC))).collect();
    let bufs: Vec<_> = (0..=STAGES).map(|_| malloc(N)).collect();
    let input = malloc_host(N);
    let output = malloc_host(N);
    let gate = Box::new(AtomicBool::new(false));
    for round in 0..3u8 {
        gate.store(false, Ordering::Release);
        // SAFETY: N pinned bytes, not in use by queued work (previous round synchronized).
        unsafe { std::ptr::write_bytes(input.cast::<u8>(), round + 1, N) };
        // Stage 0 is held back by the gate, so later stages really have to wait.
        ok(acl!(aclrtLaunchHostFunc(
            streams[0],
            Some(wait_flag),
            &*gate as *const AtomicBool as *mut c_void
        )));
        ok(acl!(aclrtMemcpyAsync(
            bufs[0],
            N,
            input,
            N,
            ACL_MEMCPY_HOST_TO_DEVICE,
            streams[0]
        )));
        ok(acl!(aclrtRecordEvent(events[0], streams[0])));
        for k in 1..STAGES {
            ok(acl!(aclrtStreamWaitEvent(streams[k], events[k - 1])));
            ok(acl!(aclrtMemcpyAsync(
                bufs[k],
                N,
                bufs[k - 1],
                N,
                ACL_MEMCPY_DEVICE_TO_DEVICE,
                streams[k]
            )));
            ok(acl!(aclrtRecordEvent(events[k], streams[k])));
        }
        let last = streams[STAGES - 1];
        ok(acl!(aclrtMemcpyAsync(
            output,
            N,
            bufs[STAGES - 1],
            N,
            ACL_MEMCPY_DEVICE_TO_HOST,
            last
        )));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut status = 0;
        ok(acl!(aclrtStreamQuery(last, &mut status)));
        assert_eq!(
            status, ACL_STREAM_STATUS_NOT_READY,
            "the last stage waits for the gate"
        );
        gate.store(true, Ordering::Release);
        ok(acl!(aclrtSynchronizeStream(last)));
        // SAFETY: N pinned bytes written by the synchronized copy.
        let out = unsafe { std::slice::from_raw_parts(output.cast::<u8>(), N) };
        assert!(out.iter().all(|&b| b == round + 1), "round {round}");
    }
    // Waiting on a never-recorded event is a no-op.
    let fresh = event(None);
    ok(acl!(aclrtStreamWaitEvent(streams[0], fresh)));
    ok(acl!(aclrtSynchronizeStream(streams[0])));
    ok(acl!(aclrtSynchronizeDevice()));
    ok(acl!(aclrtSynchronizeDeviceWithTimeout(1000)));
    for s in streams {
        ok(acl!(aclrtDestroyStream(s)));
    }
    for e in events.into_iter().chain([fresh]) {
        ok(acl!(aclrtDestroyEvent(e)));
    }
    for b in bufs {
        free(b);
    }
    ok(acl!(aclrtFreeHost(input)));
    ok(acl!(aclrtFreeHost(output)));
}

#[test]
fn alloc_copy_free_from_many_threads() {
    let threads: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                let _d = Device::set(0);
                let s = stream();
                for i in 0..40usize {
                    let n = 1 + (t * 131 + i * 17) % 3000;
                    let p = malloc(n);
                    let data: Vec<u8> = (0..n).map(|k| (k + t + i) as u8).collect();
                    if i % 2 == 0 {
                        h2d(p, &data);
                    } else {
                        ok(acl!(aclrtMemcpyAsync(
                            p,
                            n,
                            data.as_ptr().cast(),
                            n,
                            ACL_MEMCPY_HOST_TO_DEVICE,
                            s
                        )));
                    }
                    assert_eq!(d2h(p, n), data);
                    free(p);
                }
                ok(acl!(aclrtDestroyStream(s)));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn peer_access_between_devices_1_and_2() {
    let mut can = -1;
    ok(acl!(aclrtDeviceCanAccessPeer(&mut can, 1, 2)));
    assert_eq!(can, 1);
    ok(acl!(aclrtDeviceCanAccessPeer(&mut can, 1, 1)));
    assert_eq!(can, 0);
    err(
        acl!(aclrtDeviceCanAccessPeer(&mut can, 1, 9)),
        ACL_ERROR_RT_INVALID_DEVICEID,
        "9",
    );
    std::thread::spawn(|| {
        let _d2 = Device::set(2);
        let remote = malloc(64);
        let _d1 = Device::set(1);
        let local = malloc(64);
        h2d(local, &[5u8; 64]);
        err(
            acl!(aclrtMemcpy(
                remote,
                64,
                local,
                64,
                ACL_MEMCPY_DEVICE_TO_DEVICE
            )),
            ACL_ERROR_RT_NO_PERMISSION,
            "aclrtDeviceEnablePeerAccess(2, 0)",
        );
        err(
            acl!(aclrtDeviceEnablePeerAccess(2, 1)),
            ACL_ERROR_RT_PARAM_INVALID,
            "must be 0",
        );
        err(
            acl!(aclrtDeviceEnablePeerAccess(1, 0)),
            ACL_ERROR_RT_PARAM_INVALID,
            "current device",
        );
        err(
            acl!(aclrtDeviceDisablePeerAccess(2)),
            ACL_ERROR_RT_PARAM_INVALID,
            "not enabled",
        );
        ok(acl!(aclrtDeviceEnablePeerAccess(2, 0)));
        ok(acl!(aclrtMemcpy(
            remote,
            64,
            local,
            64,
            ACL_MEMCPY_INTER_DEVICE_TO_DEVICE
        )));
        assert_eq!(
            d2h(remote, 64),
            vec![5u8; 64],
            "D2H of a peer's memory is allowed too"
        );
        ok(acl!(aclrtDeviceDisablePeerAccess(2)));
        err(
            acl!(aclrtMemcpy(local, 64, remote, 64, ACL_MEMCPY_DEFAULT)),
            ACL_ERROR_RT_NO_PERMISSION,
            "not enabled",
        );
        free(local);
        free(remote);
    })
    .join()
    .unwrap();
}

#[test]
fn contexts() {
    std::thread::spawn(|| {
        let _d = Device::set(0);
        let mut default_ctx = std::ptr::null_mut();
        ok(acl!(aclrtGetCurrentContext(&mut default_ctx)));
        err(
            acl!(aclrtDestroyContext(default_ctx)),
            ACL_ERROR_RT_PARAM_INVALID,
            "aclrtResetDevice",
        );
        let mut ctx = std::ptr::null_mut();
        ok(acl!(aclrtCreateContext(&mut ctx, 1)));
        let mut cur = std::ptr::null_mut();
        ok(acl!(aclrtGetCurrentContext(&mut cur)));
        assert_eq!(cur, ctx);
        let mut dev = -1;
        ok(acl!(aclrtGetDevice(&mut dev)));
        assert_eq!(dev, 1);
        let s = stream();
        ok(acl!(aclrtSetCurrentContext(default_ctx)));
        ok(acl!(aclrtGetDevice(&mut dev)));
        assert_eq!(dev, 0);
        ok(acl!(aclrtSetCurrentContext(ctx)));
        ok(acl!(aclrtDestroyContext(ctx)));
        // Its streams died with it, and so did the thread's current context.
        err(
            acl!(aclrtSynchronizeStream(s)),
            ACL_ERROR_RT_INVALID_HANDLE,
            "destroyed",
        );
        err(
            acl!(aclrtGetDevice(&mut dev)),
            ACL_ERROR_RT_CONTEXT_NULL,
            "context",
        );
        err(
            acl!(aclrtSetCurrentContext(ctx)),
            ACL_ERROR_RT_INVALID_HANDLE,
            "destroyed",
        );
        err(
            acl!(aclrtCreateContext(&mut ctx, 42)),
            ACL_ERROR_RT_INVALID_DEVICEID,
            "42",
        );
        ok(acl!(aclrtSetCurrentContext(default_ctx)));
    })
    .join()
    .unwrap();
}

#[test]
fn callbacks_run_on_the_subscribed_thread() {
    let _d = Device::set(0);
    let s = stream();
    let mut unsub_err = acl!(aclrtLaunchCallback(
        Some(record_thread),
        std::ptr::null_mut(),
        ACL_CALLBACK_NO_BLOCK,
        s
    ));
    err(
        unsub_err,
        ACL_ERROR_STREAM_NOT_SUBSCRIBE,
        "aclrtSubscribeReport",
    );
    err(
        acl!(aclrtProcessReport(10)),
        ACL_ERROR_THREAD_NOT_SUBSCRIBE,
        "no subscribed stream",
    );

    static SEEN: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    unsafe extern "C" fn record_thread(_: *mut c_void) {
        SEEN.lock().unwrap().push(ascend_sim::current_thread_id());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let worker = std::thread::spawn(move || {
        tx.send(ascend_sim::current_thread_id()).unwrap();
        let mut processed = 0;
        while !stop2.load(Ordering::Acquire) {
            let rc = acl!(aclrtProcessReport(20));
            if rc == ACL_SUCCESS {
                processed += 1;
            } else {
                assert!(
                    rc == ACL_ERROR_WAIT_CALLBACK_TIMEOUT || rc == ACL_ERROR_THREAD_NOT_SUBSCRIBE,
                    "{rc}"
                );
            }
        }
        processed
    });
    let tid = rx.recv().unwrap();
    ok(acl!(aclrtSubscribeReport(tid, s)));
    err(
        acl!(aclrtSubscribeReport(tid, s)),
        ACL_ERROR_REPEAT_SUBSCRIBE,
        "already subscribed",
    );
    err(
        acl!(aclrtLaunchHostFunc(
            s,
            Some(wait_flag),
            std::ptr::null_mut()
        )),
        ACL_ERROR_RT_PARAM_INVALID,
        "mixing",
    );
    for block in [
        ACL_CALLBACK_BLOCK,
        ACL_CALLBACK_NO_BLOCK,
        ACL_CALLBACK_BLOCK,
    ] {
        ok(acl!(aclrtLaunchCallback(
            Some(record_thread),
            std::ptr::null_mut(),
            block,
            s
        )));
    }
    unsub_err = acl!(aclrtLaunchCallback(
        Some(record_thread),
        std::ptr::null_mut(),
        7,
        s
    ));
    err(unsub_err, ACL_ERROR_RT_PARAM_INVALID, "blockType");
    ok(acl!(aclrtSynchronizeStream(s)));
    // The last callback blocked the stream, so all three ran by now.
    assert_eq!(*SEEN.lock().unwrap(), vec![tid; 3]);
    ok(acl!(aclrtUnSubscribeReport(tid, s)));
    err(
        acl!(aclrtUnSubscribeReport(tid, s)),
        ACL_ERROR_STREAM_NOT_SUBSCRIBE,
        "no subscribed",
    );
    stop.store(true, Ordering::Release);
    assert_eq!(worker.join().unwrap(), 3);
    ok(acl!(aclrtDestroyStream(s)));
}

#[test]
fn counters_and_translate() {
    if !sim_only("counters and address translation") {
        return;
    }
    let _d = Device::set(0);
    let before = ascend_sim::counters(0).unwrap();
    let p = malloc(1000);
    h2d(p, &[1u8; 1000]);
    let ptr = ascend_sim::translate(p as u64, 1000).unwrap();
    // SAFETY: translate checked 1000 live bytes; the allocation is freed only below.
    unsafe { ptr.add(10).write(77) };
    assert_eq!(d2h(p, 1000)[10], 77);
    let q = malloc(1000);
    ok(acl!(aclrtMemcpy(
        q,
        1000,
        p,
        1000,
        ACL_MEMCPY_DEVICE_TO_DEVICE
    )));
    // Other tests of this process may copy on device 0 too: at least ours counted.
    let after = ascend_sim::counters(0).unwrap();
    assert!(after.h2d_bytes >= before.h2d_bytes + 1000);
    assert!(after.d2h_bytes >= before.d2h_bytes + 1000);
    assert!(after.d2d_bytes >= before.d2d_bytes + 1000);
    assert!(after.d2d_copies > before.d2d_copies);
    free(q);
    let range = ascend_sim::map_device_range(p as u64 + 500, 500).unwrap();
    assert_eq!(range.len(), 500);
    let e = ascend_sim::translate(p as u64 + 500, 501).unwrap_err();
    assert!(e.contains("overflows allocation"), "{e}");
    free(p);
    let e = ascend_sim::translate(p as u64, 1).unwrap_err();
    assert!(e.contains("use after free"), "{e}");
    // The guard keeps the bytes alive (poisoned) after the free.
    // SAFETY: the DeviceRange keeps 500 bytes alive.
    assert_eq!(unsafe { *range.as_ptr() }, ascend_sim::FREED_BYTE);
    assert!(ascend_sim::translate(0x1000, 1).is_err());
    assert!(ascend_sim::counters(99).is_none());
}
