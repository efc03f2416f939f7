//! Bad calls on the simulator: each gets its documented error (code and message) and leaves
//! the device usable. Calls the safe API cannot express go through `raw_api()`.

mod common;

use std::ffi::{CStr, c_void};

use ascend_npu::sys::{self, Api};
use ascend_npu::{Device, Error, raw_api};

fn setup() -> &'static Api {
    common::backend::select();
    raw_api().unwrap()
}

fn recent(api: &Api) -> String {
    let f = api.aclGetRecentErrMsg().unwrap();
    // SAFETY: returns null or a NUL-terminated string valid until the next failing call on
    // this thread; copied at once.
    unsafe {
        let p = f();
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// The device still allocates, copies and frees correctly.
fn assert_usable(device: &Device) {
    let stream = device.new_stream().unwrap();
    let buffer = stream.upload(&[1u32, 2, 3]).unwrap();
    assert_eq!(buffer.to_vec().unwrap(), [1, 2, 3]);
    drop(buffer);
    stream.synchronize().unwrap();
    let (errors, _) = ascend_npu::take_drop_errors();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Allocates `bytes` raw device bytes on the current device (bound by a safe call before).
fn raw_alloc(api: &Api, bytes: usize) -> *mut c_void {
    let malloc = api.aclrtMalloc().unwrap();
    let mut ptr = std::ptr::null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { malloc(&mut ptr, bytes, sys::ACL_MEM_MALLOC_HUGE_FIRST) },
        0,
        "{}",
        recent(api)
    );
    ptr
}

#[test]
fn zero_size_allocation_is_rejected() {
    let api = setup();
    let device = Device::open(0).unwrap();
    device.synchronize().unwrap(); // binds the device's context on this thread
    let malloc = api.aclrtMalloc().unwrap();
    let mut ptr = std::ptr::null_mut();
    // SAFETY: valid out-pointer; a zero size must be refused, not allocated.
    let code = unsafe { malloc(&mut ptr, 0, sys::ACL_MEM_MALLOC_HUGE_FIRST) };
    assert_eq!(code, sys::ACL_ERROR_RT_PARAM_INVALID);
    assert!(recent(api).contains("size"), "{}", recent(api));
    // The safe API maps an empty buffer to no allocation at all.
    assert!(
        device
            .new_stream()
            .unwrap()
            .alloc_zeroed::<f32>(0)
            .unwrap()
            .to_vec()
            .unwrap()
            .is_empty()
    );
    assert_usable(&device);
}

#[test]
fn count_greater_than_dest_max_is_rejected() {
    let api = setup();
    let device = Device::open(0).unwrap();
    device.synchronize().unwrap();
    let dst = raw_alloc(api, 64);
    let src = [0u8; 128];
    let memcpy = api.aclrtMemcpy().unwrap();
    // SAFETY: the runtime must reject count > destMax before touching memory.
    let code = unsafe {
        memcpy(
            dst,
            64,
            src.as_ptr().cast(),
            128,
            sys::ACL_MEMCPY_HOST_TO_DEVICE,
        )
    };
    assert_eq!(code, sys::ACL_ERROR_RT_PARAM_INVALID);
    assert!(recent(api).contains("destMax"), "{}", recent(api));
    let memset = api.aclrtMemset().unwrap();
    // SAFETY: as above, for memset's maxCount.
    assert_eq!(
        unsafe { memset(dst, 64, 0, 65) },
        sys::ACL_ERROR_RT_PARAM_INVALID
    );
    // SAFETY: dst is a live allocation freed once.
    assert_eq!(unsafe { api.aclrtFree().unwrap()(dst) }, 0);
    assert_usable(&device);
}

#[test]
fn ranges_past_the_end_are_rejected() {
    let api = setup();
    let device = Device::open(0).unwrap();
    device.synchronize().unwrap();
    let dst = raw_alloc(api, 100);
    let src = [7u8; 101];
    let memcpy = api.aclrtMemcpy().unwrap();
    // SAFETY: a range one byte past the allocation must be refused (the simulator checks
    // every device range against the live allocations).
    let code = unsafe {
        memcpy(
            dst,
            101,
            src.as_ptr().cast(),
            101,
            sys::ACL_MEMCPY_HOST_TO_DEVICE,
        )
    };
    assert_eq!(code, sys::ACL_ERROR_RT_PARAM_INVALID);
    let message = recent(api);
    assert!(message.contains("allocation"), "{message}");
    // SAFETY: live allocation, freed once.
    assert_eq!(unsafe { api.aclrtFree().unwrap()(dst) }, 0);
    // The safe API refuses such views before any call.
    let stream = device.new_stream().unwrap();
    let buffer = stream.upload(&[0u8; 100]).unwrap();
    assert!(matches!(
        buffer.slice(50..101),
        Err(Error::InvalidArgument { .. })
    ));
    assert_usable(&device);
}

#[test]
fn freed_buffers_cannot_be_used_or_freed_again() {
    let api = setup();
    let device = Device::open(0).unwrap();
    device.synchronize().unwrap();
    let ptr = raw_alloc(api, 256);
    let free = api.aclrtFree().unwrap();
    // SAFETY: live allocation.
    assert_eq!(unsafe { free(ptr) }, 0);
    let src = [1u8; 16];
    let memcpy = api.aclrtMemcpy().unwrap();
    // SAFETY: the simulator must detect the use after free instead of writing.
    let code = unsafe {
        memcpy(
            ptr,
            16,
            src.as_ptr().cast(),
            16,
            sys::ACL_MEMCPY_HOST_TO_DEVICE,
        )
    };
    assert_eq!(code, sys::ACL_ERROR_RT_PARAM_INVALID);
    assert!(recent(api).contains("use after free"), "{}", recent(api));
    // SAFETY: the simulator must detect the double free.
    assert_eq!(unsafe { free(ptr) }, sys::ACL_ERROR_RT_MEMORY_FREE);
    assert!(recent(api).contains("free"), "{}", recent(api));
    assert_usable(&device);
}

#[test]
fn wrong_device_is_rejected() {
    setup();
    let device0 = Device::open(0).unwrap();
    let device1 = Device::open(1).unwrap();
    let stream0 = device0.new_stream().unwrap();
    let stream1 = device1.new_stream().unwrap();
    let on1 = stream1.upload(&[1.0f32; 8]).unwrap();
    let err = stream0.memcpy_dtoh(&on1, &mut [0.0f32; 8]).unwrap_err();
    assert!(
        err.to_string()
            .contains("source on device 1 used on a stream of device 0"),
        "{err}"
    );
    // A device-to-device copy across devices without peer access: the runtime refuses it.
    let mut on0 = stream0.alloc_zeroed::<f32>(8).unwrap();
    let err = stream0.memcpy_dtod(&on1, &mut on0).unwrap_err();
    assert_eq!(
        err.acl_code(),
        Some(ascend_npu::AclCode(sys::ACL_ERROR_RT_NO_PERMISSION)),
        "{err}"
    );
    // Events and streams of different devices do not mix.
    let event1 = device1.new_event().unwrap();
    assert!(event1.record(&stream0).is_err());
    assert_usable(&device0);
    assert_usable(&device1);
}

#[test]
fn mismatched_lengths_are_rejected() {
    setup();
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let a = stream.upload(&[1u8; 10]).unwrap();
    let mut b = stream.alloc_zeroed::<u8>(11).unwrap();
    let err = stream.memcpy_dtod(&a, &mut b).unwrap_err();
    assert!(
        err.to_string().contains("copy of 10 elements into 11"),
        "{err}"
    );
    assert_usable(&device);
}

#[test]
fn a_destroyed_stream_is_an_invalid_handle() {
    let api = setup();
    let device = Device::open(0).unwrap();
    device.synchronize().unwrap();
    let create = api.aclrtCreateStream().unwrap();
    let destroy = api.aclrtDestroyStream().unwrap();
    let sync = api.aclrtSynchronizeStream().unwrap();
    let mut stream = std::ptr::null_mut();
    // SAFETY: valid out-pointer; then the handle is destroyed once and used again on purpose:
    // the runtime validates handles through a registry.
    unsafe {
        assert_eq!(create(&mut stream), 0);
        assert_eq!(destroy(stream), 0);
        assert_eq!(sync(stream), sys::ACL_ERROR_RT_INVALID_HANDLE);
        assert_eq!(destroy(stream), sys::ACL_ERROR_RT_INVALID_HANDLE);
    }
    assert!(recent(api).contains("stream"), "{}", recent(api));
    assert_usable(&device);
}

#[test]
fn invalid_device_ids_are_rejected() {
    let api = setup();
    let count = Device::count().unwrap();
    let set = api.aclrtSetDevice().unwrap();
    // SAFETY: plain integer arguments.
    unsafe {
        assert_eq!(set(count as i32), sys::ACL_ERROR_RT_INVALID_DEVICEID);
        assert_eq!(set(-1), sys::ACL_ERROR_RT_INVALID_DEVICEID);
    }
    let err = Device::open(count).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("below the device count {count}")),
        "{err}"
    );
    assert_usable(&Device::open(1).unwrap());
}

/// Pinned memory the runtime returns misaligned for the element type is refused with an error
/// naming the address and the alignment, and given back, not leaked: the simulator's test hook
/// returns the next block 4 bytes past its 64-byte alignment, so a `u64` buffer cannot use it;
/// freeing that address again is then a double free. Simulator only (the hook is the
/// compiled-in simulator's, and a double free is undefined on hardware).
#[test]
fn misaligned_pinned_memory_is_refused_and_freed() {
    let api = setup();
    if ascend_npu::active_backend().unwrap() != ascend_npu::Backend::Sim {
        eprintln!("skipped: the misalignment hook is the compiled-in simulator's");
        return;
    }
    let device = Device::open(0).unwrap();
    ascend_npu::sim::misalign_next_pinned_alloc(4).unwrap();
    let e = ascend_npu::HostBuffer::<u64>::zeroed(&device, 16).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("aclrtMallocHost") && message.contains("not aligned to 8 bytes"),
        "{message}"
    );
    let (errors, _) = ascend_npu::take_drop_errors();
    assert!(errors.is_empty(), "{errors:?}");
    // "returned 0x…, not aligned": the block the runtime gave.
    let returned = message
        .split("returned 0x")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|hex| usize::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("no address in {message}"));
    assert_eq!(returned % 64, 4, "{message}");
    let free_host = api.aclrtFreeHost().unwrap();
    // SAFETY: the simulator checks the address; a block already freed is an error, not UB.
    let rc = unsafe { free_host(returned as *mut c_void) };
    assert_ne!(rc, 0, "the misaligned block was still allocated (leaked)");
    assert!(recent(api).contains("double free"), "{}", recent(api));
    // The hook applied once: the next allocation is aligned and usable.
    let buffer = ascend_npu::HostBuffer::<u64>::from_slice(&device, &[7; 16]).unwrap();
    assert_eq!(buffer.as_slice().unwrap(), [7; 16]);
}
