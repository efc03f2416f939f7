//! The C entry points. Each one runs its body through [`guard`], which turns errors into return
//! codes plus the thread's recent-error message, and panics into `ACL_ERROR_RT_INTERNAL_ERROR`,
//! so nothing unwinds into C.
//!
//! The functions keep their C names so a backtrace or a grep finds them.

#![allow(non_snake_case)]

/// The second phase of aclnn operator `$name`: the C entry that launches the executor its
/// first phase (`…GetWorkspaceSize`) made, on `stream` with the workspace it asked for.
macro_rules! second_phase {
    ($name:ident) => {
        unsafe extern "C" fn $name(
            workspace: *mut std::ffi::c_void,
            workspace_size: u64,
            executor: *mut ascend_sys::aclOpExecutor,
            stream: ascend_sys::aclrtStream,
        ) -> ascend_sys::aclnnStatus {
            super::guard(stringify!($name), || {
                super::aclnn_base::launch(
                    stringify!($name),
                    workspace,
                    workspace_size,
                    executor,
                    stream,
                )
            })
        }
    };
}

mod aclnn_base;
mod aclnn_matmul;
mod aclnn_mc2;
mod aclnn_mla;
mod aclnn_ops;
mod context;
mod copy;
mod device;
mod event;
mod hccl;
mod host_work;
mod init;
mod kernel;
mod memory;
mod rust_api;
pub(crate) mod state;
mod stream;

pub use rust_api::{counters, map_device_range, translate};
pub use state::configure;

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ascend_sys::{ACL_ERROR_RT_INTERNAL_ERROR, ACL_SUCCESS, StaticSymbols, aclError};

use crate::base::error::{SimError, SimResult, panic_text};
use crate::base::error_msg::set_recent;

/// Runs an entry point's body: `Ok` is `ACL_SUCCESS`; an error or a panic is reported through
/// the return code and `aclGetRecentErrMsg`.
pub(crate) fn guard(api: &'static str, body: impl FnOnce() -> SimResult<()>) -> aclError {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ACL_SUCCESS,
        Ok(Err(e)) => {
            set_recent(&format!("{api}: {}", e.message));
            e.code
        }
        Err(p) => {
            set_recent(&format!(
                "{api}: internal error in ascend-sim (please report): {}",
                panic_text(&*p)
            ));
            ACL_ERROR_RT_INTERNAL_ERROR
        }
    }
}

/// Like [`guard`] for entry points that return a value instead of a code; `fallback` is
/// returned on failure.
pub(crate) fn guard_value<T>(
    api: &'static str,
    fallback: T,
    body: impl FnOnce() -> SimResult<T>,
) -> T {
    let mut out = None;
    let code = guard(api, || {
        out = Some(body()?);
        Ok(())
    });
    match out {
        Some(v) if code == ACL_SUCCESS => v,
        _ => fallback,
    }
}

/// Writes an output parameter after checking the pointer is usable.
///
/// # Safety
///
/// `ptr` is NULL or, per the C API contract, points to writable memory for a `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T, name: &str) -> SimResult<()> {
    if ptr.is_null() {
        return Err(SimError::param(format!("output pointer {name} is NULL")));
    }
    if crate::runtime::memory::is_device_address(ptr as u64) {
        return Err(SimError::param(format!(
            "output pointer {name} ({ptr:p}) is a device address; it must point to host memory"
        )));
    }
    if !ptr.is_aligned() {
        return Err(SimError::param(format!(
            "output pointer {name} ({ptr:p}) is not aligned for its type"
        )));
    }
    // SAFETY: non-null, aligned, not a simulated device address; validity is the caller's
    // contract.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Reads an optional C string argument.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string, per the C API contract.
pub(crate) unsafe fn read_cstr(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    Some(
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The simulator's function table: the runtime, kernel binaries and launch, the aclnn base and
/// the aclnn operators the library calls, less what the configured CANN release lacks (this
/// starts the simulator, fixing its configuration). HCCL is left `None` for now.
pub fn symbols() -> StaticSymbols {
    let mut s = StaticSymbols::default();
    init::fill(&mut s);
    device::fill(&mut s);
    context::fill(&mut s);
    stream::fill(&mut s);
    event::fill(&mut s);
    memory::fill(&mut s);
    copy::fill(&mut s);
    host_work::fill(&mut s);
    kernel::fill(&mut s);
    aclnn_base::fill(&mut s);
    aclnn_ops::fill(&mut s);
    aclnn_mla::fill(&mut s);
    aclnn_matmul::fill(&mut s);
    aclnn_mc2::fill(&mut s);
    hccl::fill(&mut s);
    init::strip_absent(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_internal_errors_and_messages() {
        let rc = guard("aclrtTest", || panic!("boom"));
        assert_eq!(rc, ACL_ERROR_RT_INTERNAL_ERROR);
        let msg = crate::base::error_msg::recent_error_message().unwrap();
        assert!(msg.contains("aclrtTest") && msg.contains("boom"), "{msg}");
        assert_eq!(guard("aclrtTest", || Ok(())), ACL_SUCCESS);
        let v = guard_value("aclrtTest", 7, || -> SimResult<i32> { panic!("again") });
        assert_eq!(v, 7);
    }

    #[test]
    fn runtime_kernel_and_hccl_symbols_are_provided() {
        let api = ascend_sys::Api::from_static("sim", symbols());
        assert!(api.aclInit().is_ok());
        assert!(api.aclrtMalloc().is_ok());
        assert!(api.aclrtLaunchHostFunc().is_ok());
        assert!(api.aclrtEventElapsedTime().is_ok());
        assert!(api.aclrtBinaryLoadFromFile().is_ok());
        assert!(api.aclrtLaunchKernel().is_ok());
        assert!(api.aclrtBinaryLoadFromData().is_ok());
        assert!(api.HcclAllReduce().is_ok());
        assert!(api.HcclCommInitRootInfo().is_ok());
    }
}
