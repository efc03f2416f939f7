//! The checked-call layer: every call of the crate into the C interface (ACL runtime, aclnn,
//! HCCL) names its C function once, and its failure becomes an [`Error`] naming that function.
//!
//! - `c_call!(api, aclrtFree(ptr))` resolves `aclrtFree` from the function table (a missing
//!   symbol is the table's `LoadError`), calls it with the arguments, and checks the status it
//!   returns. The error's `call` is `stringify!`'d from the same identifier, so the name in the
//!   error is the symbol called.
//! - `c_call!(api, aclCreateIntArray(ptr, n), null_is ACLNN_ERR_PARAM_INVALID)` is the form for
//!   functions that return a handle: a null handle is that status.
//! - `c_fn!(api, name)` gives the resolved function as a [`CFn`], for the few callers that
//!   need it apart from the call (an aclnn plan resolves both phases before the first).
//!
//! The status type chooses the error: `aclError` and `aclnnStatus` (C `int`) become
//! [`Error::Acl`], `HcclResult` (C `unsigned`) becomes [`Error::Hccl`]; both carry the
//! runtime's `aclGetRecentErrMsg`. The header fixes each function's return type, so the
//! choice cannot drift from the function called.
//!
//! **Unsafety stays at the call site.** The expansion of `c_call!` contains the raw call and
//! no `unsafe` block, so it compiles only inside the caller's `unsafe { }`, where the
//! `// SAFETY:` comment says why the C function's contract holds for these arguments. The
//! macro adds nothing that could be unsound: resolving a symbol and reading a status are safe.
//! `tests/checked_calls.rs` keeps the rule: no C function name in a string literal under
//! `src/`, no function-table lookup outside this module, and every `c_call!` directly inside
//! an `unsafe` block.
//!
//! Binding the device's context is not part of a call: callers bind once per operation, and
//! the per-thread cache (`runtime::forget_bound_context`) makes a repeated bind free.

use ascend_sys::{Api, LoadError};

use crate::error::{AclCode, Error, HcclCode, Result};

/// A C function resolved from the function table, with its name for errors.
#[derive(Clone, Copy)]
pub(crate) struct CFn<'a, F> {
    name: &'static str,
    ptr: F,
    api: &'a Api,
}

impl<'a, F: Copy> CFn<'a, F> {
    /// What `c_fn!` builds: the table's answer for the function called `name`.
    pub(crate) fn resolved(
        api: &'a Api,
        name: &'static str,
        ptr: std::result::Result<F, LoadError>,
    ) -> Result<Self> {
        Ok(CFn {
            name,
            ptr: ptr?,
            api,
        })
    }

    /// The function pointer; calling it is `unsafe` (its C contract).
    pub(crate) fn ptr(&self) -> F {
        self.ptr
    }

    /// The C function's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// `Ok` for a success status, else the error naming this function.
    pub(crate) fn check<S: Status>(&self, status: S) -> Result<()> {
        status.check(self.name, self.api)
    }

    /// The error of a call that failed without a status (a null handle, an unusable result):
    /// `code` with `message`, or the runtime's recent message when there is none.
    pub(crate) fn failed(&self, code: ascend_sys::aclError, message: Option<String>) -> Error {
        Error::Acl {
            call: self.name,
            code: AclCode(code),
            message: message.unwrap_or_else(|| recent_message(self.api)),
        }
    }
}

/// A status a C function returns, and how it becomes a [`Result`].
pub(crate) trait Status: Copy {
    /// `Ok` for success, else the error of `call` with the runtime's recent message.
    fn check(self, call: &'static str, api: &Api) -> Result<()>;
}

/// `aclError`, and `aclnnStatus`, which is the same C `int` with the same success value.
impl Status for ascend_sys::aclError {
    fn check(self, call: &'static str, api: &Api) -> Result<()> {
        if self == ascend_sys::ACL_SUCCESS {
            return Ok(());
        }
        Err(Error::Acl {
            call,
            code: AclCode(self),
            message: recent_message(api),
        })
    }
}

impl Status for ascend_sys::HcclResult {
    fn check(self, call: &'static str, api: &Api) -> Result<()> {
        if self == ascend_sys::HCCL_SUCCESS {
            return Ok(());
        }
        Err(Error::Hccl {
            call,
            code: HcclCode(self),
            message: recent_message(api),
        })
    }
}

/// `aclGetRecentErrMsg()`, or an empty string when the provider has none.
pub(crate) fn recent_message(api: &Api) -> String {
    // The one lookup that is not a checked call: it is what a checked call's error reads.
    let Ok(get) = api.aclGetRecentErrMsg() else {
        return String::new();
    };
    // SAFETY: aclGetRecentErrMsg takes no arguments and returns null or a NUL-terminated string
    // owned by the runtime, valid until the next ACL call on this thread; we copy it at once.
    unsafe {
        let ptr = get();
        if ptr.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned()
        }
    }
}

/// `c_fn!(api, aclrtMalloc)`: the C function `aclrtMalloc` of `api` as a
/// `Result<CFn<'_, fn>>`, the error naming the symbol when the provider lacks it.
macro_rules! c_fn {
    ($api:expr, $name:ident) => {{
        let api: &::ascend_sys::Api = $api;
        $crate::checked_call::CFn::resolved(api, stringify!($name), api.$name())
    }};
}

/// `unsafe { c_call!(api, aclrtFree(ptr)) }`: calls the C function `aclrtFree` of `api` and
/// checks its status (`Result<()>`); with `, null_is CODE`, checks its returned handle instead
/// (`Result<handle>`, a null handle being the `aclError` `CODE`). Must be written inside an
/// `unsafe` block (see the module documentation).
macro_rules! c_call {
    ($api:expr, $name:ident($($arg:expr),* $(,)?)) => {
        match $crate::checked_call::c_fn!($api, $name) {
            Ok(c) => c.check((c.ptr())($($arg),*)),
            Err(e) => Err(e),
        }
    };
    ($api:expr, $name:ident($($arg:expr),* $(,)?), null_is $code:ident) => {
        match $crate::checked_call::c_fn!($api, $name) {
            Ok(c) => {
                let handle = (c.ptr())($($arg),*);
                if handle.is_null() {
                    Err(c.failed(::ascend_sys::$code, None))
                } else {
                    Ok(handle)
                }
            }
            Err(e) => Err(e),
        }
    };
}

pub(crate) use {c_call, c_fn};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_function_is_a_load_error_naming_it() {
        let api = Api::from_static("empty", ascend_sys::StaticSymbols::default());
        // SAFETY: never called: the empty table has no aclrtSynchronizeDevice.
        let err = unsafe { c_call!(&api, aclrtSynchronizeDevice()) }.unwrap_err();
        assert!(matches!(err, Error::Load(_)), "{err:?}");
        assert!(err.to_string().contains("aclrtSynchronizeDevice"), "{err}");
    }

    #[cfg(feature = "sim")]
    fn sim_api() -> &'static Api {
        crate::select_backend(crate::Backend::Sim).unwrap();
        crate::raw_api().unwrap()
    }

    #[cfg(feature = "sim")]
    #[test]
    fn a_failing_acl_call_names_the_function_and_the_status() {
        let api = sim_api();
        // SAFETY: a plain integer argument; the runtime rejects the id.
        let err = unsafe { c_call!(api, aclrtSetDevice(100_000)) }.unwrap_err();
        let Error::Acl { call, code, .. } = &err else {
            panic!("expected an ACL error, got {err:?}");
        };
        assert_eq!(*call, "aclrtSetDevice");
        assert_ne!(code.0, ascend_sys::ACL_SUCCESS);
        assert!(
            err.to_string().starts_with("aclrtSetDevice failed with "),
            "{err}"
        );
    }

    #[cfg(feature = "sim")]
    #[test]
    fn a_null_handle_is_the_given_status_of_the_function() {
        let api = sim_api();
        // SAFETY: a null array of three elements, which the runtime must refuse.
        let err = unsafe {
            c_call!(api, aclCreateIntArray(std::ptr::null(), 3), null_is ACLNN_ERR_PARAM_NULLPTR)
        }
        .unwrap_err();
        let Error::Acl { call, code, .. } = &err else {
            panic!("expected an ACL error, got {err:?}");
        };
        assert_eq!(*call, "aclCreateIntArray");
        assert_eq!(code.0, ascend_sys::ACLNN_ERR_PARAM_NULLPTR, "{err}");
    }

    #[cfg(feature = "sim")]
    #[test]
    fn a_failing_hccl_call_is_an_hccl_error_naming_the_function() {
        let api = sim_api();
        // SAFETY: a null communicator, which HCCL rejects before touching anything.
        let err = unsafe { c_call!(api, HcclBarrier(std::ptr::null_mut(), std::ptr::null_mut())) }
            .unwrap_err();
        let Error::Hccl { call, code, .. } = &err else {
            panic!("expected an HCCL error, got {err:?}");
        };
        assert_eq!(*call, "HcclBarrier");
        assert_ne!(code.0, ascend_sys::HCCL_SUCCESS);
    }
}
