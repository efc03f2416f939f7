//! Shared helpers: the simulator is driven only through its C function table, as the safe
//! layer drives it.
//!
//! The table is the compiled-in simulator's, or, with `ASCEND_NPU_BACKEND=cann`, the one the
//! loader resolves from CANN's libraries: in CI the drop-in simulator libraries
//! (`scripts/sim-cann-libs.sh`, `ASCEND_NPU_CANN_PATH`, `ASCEND_SIM_DEVICES=4`). Checks of the
//! compiled-in simulator's Rust API ask [`sim_only`] first.

#![allow(dead_code)]

pub mod aclnn;

use std::ffi::{CStr, c_void};
use std::sync::OnceLock;

use ascend_sim::{SimConfig, SocModel};
use ascend_sys::*;

/// Devices in the shared test process. Device 3 is used by one test only.
pub const DEVICES: usize = 4;

/// On the compiled-in simulator, one more device, an Atlas A3 (Ascend910_9392), for the calls
/// whose rules depend on the SoC they run on (V1's MC2 ops, which take no `commAlg`). The
/// `cann` provider's devices are alike (`ASCEND_SIM_SOC`): there it is `None`.
pub fn a3_device() -> Option<i32> {
    (!through_cann()).then_some(DEVICES as i32)
}

/// The devices the process sees: [`DEVICES`], and [`a3_device`] if there is one.
pub fn device_count() -> usize {
    DEVICES + usize::from(a3_device().is_some())
}

/// Whether the suite runs through the `cann` provider (`ASCEND_NPU_BACKEND=cann`).
pub fn through_cann() -> bool {
    std::env::var("ASCEND_NPU_BACKEND").is_ok_and(|v| v.trim() == "cann")
}

/// Whether a check of the compiled-in simulator's Rust API can run: not under the `cann`
/// provider, whose simulator is another instance. Otherwise prints why it is skipped.
pub fn sim_only(check: &str) -> bool {
    if through_cann() {
        eprintln!("skipped under the cann provider: {check} reads the compiled-in simulator");
        return false;
    }
    true
}

pub fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let api = if through_cann() {
            Api::cann(CannSearch::from_env())
        } else {
            let mut config = SimConfig::uniform(SocModel::ascend910b2(), DEVICES).unwrap();
            config
                .devices
                .push(SocModel::by_name("Ascend910_9392").expect("an A3 SoC"));
            ascend_sim::configure(config).unwrap();
            ascend_sim::api()
        };
        // SAFETY: NULL config path is allowed.
        let rc = unsafe { api.aclInit().unwrap()(std::ptr::null()) };
        assert!(
            rc == ACL_SUCCESS || rc == ACL_ERROR_REPEAT_INITIALIZE,
            "aclInit: {rc}"
        );
        api
    })
}

/// Calls a C function of the table by name.
#[macro_export]
macro_rules! acl {
    ($f:ident($($a:expr),* $(,)?)) => {
        // SAFETY: test code passes arguments that follow the C contract (or deliberately
        // invalid ones the simulator must reject without touching them).
        unsafe { ($crate::common::api().$f().expect(stringify!($f)))($($a),*) }
    };
}

/// The calling thread's recent error message.
pub fn recent() -> String {
    let p = acl!(aclGetRecentErrMsg());
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the simulator returns a NUL-terminated string valid until the next failure.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[track_caller]
pub fn ok(rc: aclError) {
    assert_eq!(rc, ACL_SUCCESS, "unexpected error {rc}: {}", recent());
}

/// Asserts `rc == code` and that the recent message mentions `needle`.
#[track_caller]
pub fn err(rc: aclError, code: aclError, needle: &str) {
    let msg = recent();
    assert_eq!(rc, code, "expected error {code}, got {rc}: {msg}");
    assert!(
        msg.contains(needle),
        "message {msg:?} does not mention {needle:?}"
    );
}

/// Sets a device on this thread for the guard's lifetime.
pub struct Device(pub i32);

impl Device {
    pub fn set(id: i32) -> Device {
        ok(acl!(aclrtSetDevice(id)));
        Device(id)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let rc = acl!(aclrtResetDevice(self.0));
        if !std::thread::panicking() {
            ok(rc);
        }
    }
}

pub fn malloc(size: usize) -> *mut c_void {
    let mut p = std::ptr::null_mut();
    ok(acl!(aclrtMalloc(&mut p, size, ACL_MEM_MALLOC_HUGE_FIRST)));
    p
}

pub fn free(p: *mut c_void) {
    ok(acl!(aclrtFree(p)));
}

pub fn malloc_host(size: usize) -> *mut c_void {
    let mut p = std::ptr::null_mut();
    ok(acl!(aclrtMallocHost(&mut p, size)));
    p
}

pub fn stream() -> aclrtStream {
    let mut s = std::ptr::null_mut();
    ok(acl!(aclrtCreateStream(&mut s)));
    s
}

pub fn event(flags: Option<u32>) -> aclrtEvent {
    let mut e = std::ptr::null_mut();
    match flags {
        None => ok(acl!(aclrtCreateEvent(&mut e))),
        Some(f) => ok(acl!(aclrtCreateEventWithFlag(&mut e, f))),
    }
    e
}

pub fn h2d(dst: *mut c_void, data: &[u8]) {
    ok(acl!(aclrtMemcpy(
        dst,
        data.len(),
        data.as_ptr().cast(),
        data.len(),
        ACL_MEMCPY_HOST_TO_DEVICE
    )));
}

pub fn d2h(src: *const c_void, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    ok(acl!(aclrtMemcpy(
        out.as_mut_ptr().cast(),
        len,
        src,
        len,
        ACL_MEMCPY_DEVICE_TO_HOST
    )));
    out
}

/// Byte offset helper for device pointers (never dereferenced on the host).
pub fn offset(p: *mut c_void, n: usize) -> *mut c_void {
    (p as usize + n) as *mut c_void
}

/// A host function that blocks its stream until the flag is set.
pub unsafe extern "C" fn wait_flag(arg: *mut c_void) {
    // SAFETY: tests pass a pointer to an AtomicBool that outlives the stream's work.
    let flag = unsafe { &*(arg as *const std::sync::atomic::AtomicBool) };
    while !flag.load(std::sync::atomic::Ordering::Acquire) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
