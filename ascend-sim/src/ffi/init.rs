//! aclInit / aclFinalize, versions, SoC name, recent error message.

use std::ffi::c_char;

use ascend_sys::{
    ACL_ERROR_INVALID_FILE, ACL_ERROR_REPEAT_FINALIZE, ACL_ERROR_REPEAT_INITIALIZE,
    ACL_ERROR_UNINITIALIZE, ACL_PKG_NAME_CANN, ACL_PKG_NAME_DRIVER, ACL_PKG_VERSION_MAX_SIZE,
    CannRelease, CannVersion, StaticSymbols, aclCANNPackageName, aclCANNPackageVersion, aclError,
};

use super::{guard, guard_value, read_cstr, write_out};
use crate::base::error::{SimError, SimResult};
use crate::base::sync::lock;
use crate::ffi::state::{InitState, sim};

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
            let r = sim.destroy_context(&ctx);
            result = result.and(r);
        }
        for device in &sim.machine.devices {
            if device.refcount() > 0 {
                let r = sim.reset_device(device.id, true);
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

/// Copies `text` into a C string field, truncated to leave room for the NUL.
fn put_field(field: &mut [c_char], text: &str) {
    let n = text.len().min(field.len() - 1);
    for (dst, &b) in field.iter_mut().zip(&text.as_bytes()[..n]) {
        *dst = b as c_char;
    }
    field[n] = 0;
}

/// The version record of CANN release `v`, as `aclsysGetCANNVersion` fills it.
fn package_version(v: CannVersion) -> aclCANNPackageVersion {
    let mut out = aclCANNPackageVersion {
        version: [0; 128],
        majorVersion: [0; 64],
        minorVersion: [0; 64],
        releaseVersion: [0; 64],
        patchVersion: [0; 64],
        reserved: [0; 128],
    };
    let (release, patch) = match v.release {
        CannRelease::Rc(n) => (format!("RC{n}"), "0".to_string()),
        CannRelease::Patch(n) => (n.to_string(), n.to_string()),
    };
    put_field(&mut out.version, &v.to_string());
    put_field(&mut out.majorVersion, &v.major.to_string());
    put_field(&mut out.minorVersion, &v.minor.to_string());
    put_field(&mut out.releaseVersion, &release);
    put_field(&mut out.patchVersion, &patch);
    out
}

unsafe extern "C" fn aclsysGetCANNVersion(
    name: aclCANNPackageName,
    version: *mut aclCANNPackageVersion,
) -> aclError {
    guard("aclsysGetCANNVersion", || {
        if name > ACL_PKG_NAME_DRIVER {
            return Err(SimError::param(format!(
                "name {name} is not an aclCANNPackageName; expected {ACL_PKG_NAME_CANN}..={}",
                ACL_PKG_NAME_DRIVER
            )));
        }
        if name == ACL_PKG_NAME_DRIVER {
            // The runtime answers 100003 for a package that is not installed.
            return Err(SimError::new(
                ACL_ERROR_INVALID_FILE,
                "the simulator has no driver package; ask for ACL_PKG_NAME_CANN",
            ));
        }
        // Every package of a simulated install is at the CANN release.
        let record = package_version(sim()?.config.cann_version);
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(version, record, "version") }
    })
}

/// Removes from the table what the simulated CANN release lacks, and the functions the
/// configuration names absent, so the library sees a missing symbol exactly as it would there. A simulator that cannot start keeps every entry
/// (each call then reports why).
pub(super) fn strip_absent(s: &mut StaticSymbols) {
    let Ok(sim) = sim() else { return };
    for name in &sim.config.absent_functions {
        // Configuration checked every name against the table.
        s.remove(name);
    }
    let v = sim.config.cann_version;
    if !v.has_device_info() {
        s.aclrtGetDeviceInfo = None;
    }
    if !v.has_kernel_binaries() {
        s.aclrtBinaryLoadFromFile = None;
        s.aclrtBinaryUnLoad = None;
        s.aclrtBinaryGetFunction = None;
        s.aclrtKernelArgsInit = None;
        s.aclrtKernelArgsAppend = None;
        s.aclrtKernelArgsParaUpdate = None;
        s.aclrtKernelArgsFinalize = None;
        s.aclrtLaunchKernelWithConfig = None;
        s.aclrtLaunchKernel = None;
    }
    if !v.has_binary_from_data() {
        s.aclrtBinaryLoadFromData = None;
        s.aclrtLaunchKernelV2 = None;
        s.aclrtLaunchKernelWithHostArgs = None;
    }
}

unsafe extern "C" fn aclrtGetSocName() -> *const c_char {
    guard_value("aclrtGetSocName", std::ptr::null(), || {
        let sim = sim()?;
        let device = super::context::current().map_or(0, |c| c.device);
        // The name lives in the process-wide simulator, so the pointer stays valid forever.
        Ok(sim.soc_name_of(device).as_ptr())
    })
}

unsafe extern "C" fn aclGetRecentErrMsg() -> *const c_char {
    crate::base::error_msg::recent_ptr()
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclInit = Some(aclInit);
    s.aclFinalize = Some(aclFinalize);
    s.aclrtGetVersion = Some(aclrtGetVersion);
    s.aclsysGetVersionStr = Some(aclsysGetVersionStr);
    s.aclsysGetVersionNum = Some(aclsysGetVersionNum);
    s.aclsysGetCANNVersion = Some(aclsysGetCANNVersion);
    s.aclrtGetSocName = Some(aclrtGetSocName);
    s.aclGetRecentErrMsg = Some(aclGetRecentErrMsg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(field: &[c_char]) -> String {
        // SAFETY: put_field always NUL-terminates within the field.
        unsafe { CStr::from_ptr(field.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn version_records_split_like_the_runtime() {
        let rc = package_version(CannVersion::V8_1_RC1);
        assert_eq!(
            [
                text(&rc.version),
                text(&rc.majorVersion),
                text(&rc.minorVersion),
                text(&rc.releaseVersion),
                text(&rc.patchVersion)
            ],
            ["8.1.RC1", "8", "1", "RC1", "0"]
        );
        let ga = package_version(CannVersion::patch(8, 5, 1));
        assert_eq!(text(&ga.version), "8.5.1");
        assert_eq!(text(&ga.patchVersion), "1");
        let mut tiny = [1 as c_char; 4];
        put_field(&mut tiny, "123456");
        assert_eq!(text(&tiny), "123");
    }

    #[test]
    fn cann_version_query_checks_its_arguments() {
        // SAFETY: a NULL output is rejected before any write.
        let rc = unsafe { aclsysGetCANNVersion(ACL_PKG_NAME_CANN, std::ptr::null_mut()) };
        assert_ne!(rc, 0);
        let mut out = package_version(CannVersion::V8_1_RC1);
        // SAFETY: valid out-pointer.
        assert_ne!(unsafe { aclsysGetCANNVersion(99, &mut out) }, 0);
        // SAFETY: valid out-pointer.
        assert_eq!(
            unsafe { aclsysGetCANNVersion(ACL_PKG_NAME_DRIVER, &mut out) },
            ACL_ERROR_INVALID_FILE
        );
        // SAFETY: valid out-pointer.
        assert_eq!(
            unsafe { aclsysGetCANNVersion(ACL_PKG_NAME_CANN, &mut out) },
            0
        );
        assert_eq!(
            text(&out.version),
            sim().unwrap().config.cann_version.to_string()
        );
    }
}
