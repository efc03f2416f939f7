//! aclInit/aclFinalize and forced resets, in a process of their own (they affect every user of
//! the simulator, so they cannot share a process with the other tests).

// The `acl!` helper calls the C table with test arguments; every call site is an FFI call
// by design, so the arguments being expanded inside its unsafe block is intended.
#![allow(clippy::macro_metavars_in_unsafe)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use ascend_sim::{SimConfig, SocModel};
use ascend_sys::*;

macro_rules! acl {
    ($api:expr, $f:ident($($a:expr),* $(,)?)) => {
        // SAFETY: arguments follow the C contract or are invalid values the simulator rejects.
        unsafe { ($api.$f().expect(stringify!($f)))($($a),*) }
    };
}

fn recent() -> String {
    ascend_sim::recent_error_message().unwrap_or_default()
}

#[track_caller]
fn expect(rc: aclError, code: aclError, needle: &str) {
    let msg = recent();
    assert_eq!(rc, code, "{msg}");
    assert!(
        code == ACL_SUCCESS || msg.contains(needle),
        "{msg:?} lacks {needle:?}"
    );
}

unsafe extern "C" fn slow_set(arg: *mut c_void) {
    std::thread::sleep(std::time::Duration::from_millis(30));
    // SAFETY: the test passes a &'static AtomicBool.
    unsafe { &*(arg as *const AtomicBool) }.store(true, Ordering::Release);
}

#[test]
fn init_finalize_and_forced_reset() {
    let soc = SocModel::by_name("Ascend910_9392").unwrap();
    ascend_sim::configure(SimConfig::uniform(soc.clone(), 2).unwrap()).unwrap();
    let api = ascend_sim::api();
    let mut count = 0u32;
    expect(acl!(api, aclrtGetDeviceCount(&mut count)), ACL_SUCCESS, "");
    assert_eq!(count, 2);
    // The running configuration cannot change; asking for the same one is fine.
    assert!(ascend_sim::configure(SimConfig::default()).is_err());
    ascend_sim::configure(SimConfig::uniform(soc, 2).unwrap()).unwrap();
    let mut topo = 0u64;
    expect(
        acl!(api, aclrtGetDevicesTopo(0, 1, &mut topo)),
        ACL_SUCCESS,
        "",
    );
    assert_eq!(topo, 0x20, "two dies of one A3 chip are linked by SIO");

    expect(
        acl!(api, aclrtSetDevice(0)),
        ACL_ERROR_UNINITIALIZE,
        "aclInit",
    );
    expect(acl!(api, aclFinalize()), ACL_ERROR_UNINITIALIZE, "aclInit");
    expect(
        acl!(api, aclInit(c"/nonexistent/acl.json".as_ptr())),
        ACL_ERROR_INVALID_FILE,
        "does not exist",
    );
    expect(acl!(api, aclInit(std::ptr::null())), ACL_SUCCESS, "");
    expect(
        acl!(api, aclInit(std::ptr::null())),
        ACL_ERROR_REPEAT_INITIALIZE,
        "already",
    );

    // Forced reset drops every reference and frees the device's memory and streams.
    expect(acl!(api, aclrtSetDevice(0)), ACL_SUCCESS, "");
    expect(acl!(api, aclrtSetDevice(0)), ACL_SUCCESS, "");
    let mut p = std::ptr::null_mut();
    expect(
        acl!(api, aclrtMalloc(&mut p, 64, ACL_MEM_MALLOC_HUGE_FIRST)),
        ACL_SUCCESS,
        "",
    );
    let mut s = std::ptr::null_mut();
    expect(acl!(api, aclrtCreateStream(&mut s)), ACL_SUCCESS, "");
    expect(acl!(api, aclrtResetDeviceForce(0)), ACL_SUCCESS, "");
    expect(
        acl!(api, aclrtFree(p)),
        ACL_ERROR_RT_MEMORY_FREE,
        "aclrtResetDevice",
    );
    expect(
        acl!(api, aclrtSynchronizeStream(s)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "destroyed",
    );
    let mut dev = -1;
    expect(
        acl!(api, aclrtGetDevice(&mut dev)),
        ACL_ERROR_RT_CONTEXT_NULL,
        "no current context",
    );
    expect(
        acl!(api, aclrtResetDevice(0)),
        ACL_ERROR_RT_PARAM_INVALID,
        "not set",
    );

    // The last reset waits for outstanding work.
    static DONE: AtomicBool = AtomicBool::new(false);
    expect(acl!(api, aclrtSetDevice(1)), ACL_SUCCESS, "");
    let flag = &DONE as *const AtomicBool as *mut c_void;
    expect(
        acl!(
            api,
            aclrtLaunchHostFunc(std::ptr::null_mut(), Some(slow_set), flag)
        ),
        ACL_SUCCESS,
        "",
    );
    expect(acl!(api, aclrtResetDevice(1)), ACL_SUCCESS, "");
    assert!(DONE.load(Ordering::Acquire));

    // Finalize releases what is left; init may follow again.
    expect(acl!(api, aclrtSetDevice(1)), ACL_SUCCESS, "");
    expect(acl!(api, aclFinalize()), ACL_SUCCESS, "");
    expect(
        acl!(api, aclFinalize()),
        ACL_ERROR_REPEAT_FINALIZE,
        "already",
    );
    expect(
        acl!(api, aclrtSetDevice(1)),
        ACL_ERROR_UNINITIALIZE,
        "aclFinalize",
    );
    expect(acl!(api, aclInit(std::ptr::null())), ACL_SUCCESS, "");
    expect(acl!(api, aclrtSetDevice(1)), ACL_SUCCESS, "");
    expect(acl!(api, aclrtResetDevice(1)), ACL_SUCCESS, "");
}
