//! aclInit / aclFinalize, versions, SoC name, recent error message.

use std::ffi::c_char;

use ascend_sys::{
    ACL_ERROR_INVALID_FILE, ACL_ERROR_REPEAT_FINALIZE, ACL_ERROR_REPEAT_INITIALIZE,
    ACL_ERROR_UNINITIALIZE, ACL_PKG_VERSION_MAX_SIZE, StaticSymbols, aclError,
};

use super::{guard, guard_value, read_cstr, write_out};
use crate::error::{SimError, SimResult};
use crate::state::{InitState, sim};
use crate::sync::lock;

/// The ACL interface version our header describes (`ACL_MAJOR/MINOR/PATCH_VERSION`).
pub(crate) const ACL_VERSION: (i32, i32, i32) = (1, 17, 0);

/// Fails unless `aclInit` is in effect: the simulator follows CANN, where `aclInit` comes
/// before any device is set.
pub(crate) fn require_init() -> SimResult<()> {
    match *lock(&sim()?.init) {
        InitState::Initialized => Ok(()),
        InitState::Never => Err(SimError::new(
            ACL_ERROR_UNINITIALIZE,
            "aclInit has not been called; call aclInit(NULL) once before using devices",
        )),
        InitState::Finalized => Err(SimError::new(
            ACL_ERROR_UNINITIALIZE,
            "aclFinalize has been called; call aclInit again before using devices",
        )),
    }
}

unsafe extern "C" fn aclInit(config_path: *const c_char) -> aclError {
    guard("aclInit", || {
        // SAFETY: configPath is NULL or a C string, per the C contract.
        let path = unsafe { read_cstr(config_path) };
        if let Some(p) = path.filter(|p| !p.is_empty()) {
            if !std::path::Path::new(&p).is_file() {
                return Err(SimError::new(
                    ACL_ERROR_INVALID_FILE,
                    format!("config file {p:?} does not exist; pass NULL for no config"),
                ));
            }
        }
        let mut state = lock(&sim()?.init);
        if *state == InitState::Initialized {
            return Err(SimError::new(
                ACL_ERROR_REPEAT_INITIALIZE,
                "aclInit was already called in this process",
            ));
        }
        *state = InitState::Initialized;
        Ok(())
    })
}

unsafe extern "C" fn aclFinalize() -> aclError {
    guard("aclFinalize", || {
        let sim = sim()?;
        {
            let mut state = lock(&sim.init);
            match *state {
                InitState::Never => {
                    return Err(SimError::new(
                        ACL_ERROR_UNINITIALIZE,
                        "aclFinalize without a preceding aclInit",
                    ));
                }
                InitState::Finalized => {
                    return Err(SimError::new(
                        ACL_ERROR_REPEAT_FINALIZE,
                        "aclFinalize was already called",
                    ));
                }
                InitState::Initialized => *state = InitState::Finalized,
            }
        }
        // Like CANN, finalizing releases whatever the program left behind.
        let mut result = Ok(());
        for ctx in sim.contexts.collect(|c| !c.is_default) {
            let r = ctx.destroy();
            result = result.and(r);
        }
        for device in &sim.devices {
            if device.refcount() > 0 {
                let r = device.release(true);
                result = result.and(r);
            }
        }
        result
    })
}

unsafe extern "C" fn aclrtGetVersion(
    major: *mut i32,
    minor: *mut i32,
    patch: *mut i32,
) -> aclError {
    guard("aclrtGetVersion", || {
        let (a, b, c) = ACL_VERSION;
        // SAFETY: output pointers per the C contract; checked by write_out.
        unsafe {
            write_out(major, a, "majorVersion")?;
            write_out(minor, b, "minorVersion")?;
            write_out(patch, c, "patchVersion")
        }
    })
}

/// The simulator's version as reported by `aclsysGetVersionStr`.
fn version_str() -> String {
    format!("{}-ascend-sim", env!("CARGO_PKG_VERSION"))
}

/// major*10000 + minor*100 + patch of the crate version.
fn version_num() -> i32 {
    let parse = |s: &str| s.parse::<i32>().unwrap_or(0);
    parse(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + parse(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + parse(env!("CARGO_PKG_VERSION_PATCH"))
}

/// # Safety
/// `pkg_name` is NULL or a C string, per the C contract.
unsafe fn check_pkg(pkg_name: *mut c_char) -> SimResult<String> {
    // SAFETY: forwarded contract.
    match unsafe { read_cstr(pkg_name) } {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(SimError::param(
            "pkgName is NULL or empty; expected a package name such as \"runtime\"",
        )),
    }
}

unsafe extern "C" fn aclsysGetVersionStr(pkg_name: *mut c_char, version: *mut c_char) -> aclError {
    guard("aclsysGetVersionStr", || {
        // SAFETY: pkgName per the C contract.
        unsafe { check_pkg(pkg_name) }?;
        if version.is_null() {
            return Err(SimError::param("versionStr is NULL"));
        }
        let v = version_str();
        let bytes = v.as_bytes();
        debug_assert!(bytes.len() < ACL_PKG_VERSION_MAX_SIZE);
        let n = bytes.len().min(ACL_PKG_VERSION_MAX_SIZE - 1);
        // SAFETY: the C contract gives versionStr ACL_PKG_VERSION_MAX_SIZE writable bytes; we
        // write at most that many, NUL included.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), version.cast::<u8>(), n);
            version.add(n).write(0);
        }
        Ok(())
    })
}

unsafe extern "C" fn aclsysGetVersionNum(pkg_name: *mut c_char, num: *mut i32) -> aclError {
    guard("aclsysGetVersionNum", || {
        // SAFETY: pkgName per the C contract.
        unsafe { check_pkg(pkg_name) }?;
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(num, version_num(), "versionNum") }
    })
}

unsafe extern "C" fn aclrtGetSocName() -> *const c_char {
    guard_value("aclrtGetSocName", std::ptr::null(), || {
        let sim = sim()?;
        let device = crate::context::current().map_or(0, |c| c.device);
        // The name lives in the process-wide simulator, so the pointer stays valid forever.
        Ok(sim.soc_name_of(device).as_ptr())
    })
}

unsafe extern "C" fn aclGetRecentErrMsg() -> *const c_char {
    crate::error_msg::recent_ptr()
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclInit = Some(aclInit);
    s.aclFinalize = Some(aclFinalize);
    s.aclrtGetVersion = Some(aclrtGetVersion);
    s.aclsysGetVersionStr = Some(aclsysGetVersionStr);
    s.aclsysGetVersionNum = Some(aclsysGetVersionNum);
    s.aclrtGetSocName = Some(aclrtGetSocName);
    s.aclGetRecentErrMsg = Some(aclGetRecentErrMsg);
}
