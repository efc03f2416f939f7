//! Choosing the provider behind the function table: real CANN or the simulator.
//!
//! The choice is explicit and process-wide, like ACL's own state: [`select_backend`], or the
//! [`BACKEND_VAR`] environment variable read on first use. Nothing falls back from hardware to
//! the simulator: with no choice made, every call returns [`Error::NoBackend`].

use std::sync::{Mutex, OnceLock};

use ascend_sys::{Api, CannSearch};

use crate::checked_call::c_call;
use crate::error::{Error, Result};

/// The environment variable that selects a backend when [`select_backend`] was not called:
/// `sim` or `cann`.
pub const BACKEND_VAR: &str = "ASCEND_NPU_BACKEND";

/// A provider of the CANN C interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The CANN libraries of an installed toolkit, on a machine with an NPU.
    Cann,
    /// `ascend-sim`, the software device (needs the `sim` feature, on by default).
    Sim,
}

impl Backend {
    /// The name used by [`BACKEND_VAR`] and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cann => "cann",
            Backend::Sim => "sim",
        }
    }

    /// Parses a [`BACKEND_VAR`] value.
    pub fn parse(value: &str) -> Result<Backend> {
        match value.trim() {
            "cann" => Ok(Backend::Cann),
            "sim" => Ok(Backend::Sim),
            other => Err(Error::BadBackendVar {
                value: other.to_string(),
            }),
        }
    }
}

struct Active {
    backend: Backend,
    api: Api,
}

static ACTIVE: OnceLock<Active> = OnceLock::new();
// Serialises selection so that aclInit runs once, without holding ACTIVE's initialiser open
// across a fallible call (OnceLock has no fallible init on stable).
static SELECTING: Mutex<()> = Mutex::new(());

/// Makes `backend` the provider for this process and initialises it (`aclInit`).
///
/// Selecting the backend that is already active is a no-op; selecting another one is
/// [`Error::BackendConflict`]. A failed selection leaves nothing selected.
///
/// ```
/// use ascend_npu::{select_backend, Backend};
/// select_backend(Backend::Sim)?;
/// assert_eq!(ascend_npu::active_backend()?, Backend::Sim);
/// # Ok::<(), ascend_npu::Error>(())
/// ```
pub fn select_backend(backend: Backend) -> Result<()> {
    let _guard = SELECTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(active) = ACTIVE.get() {
        return if active.backend == backend {
            Ok(())
        } else {
            Err(Error::BackendConflict {
                requested: backend.name(),
                active: active.backend.name(),
            })
        };
    }
    let api = build_api(backend)?;
    initialise(&api)?;
    // Cannot fail: SELECTING is held and ACTIVE was empty.
    let _ = ACTIVE.set(Active { backend, api });
    Ok(())
}

/// The active backend, selecting it from [`BACKEND_VAR`] if nothing was selected yet.
pub fn active_backend() -> Result<Backend> {
    active().map(|a| a.backend)
}

/// The function table of the active backend.
pub(crate) fn api() -> Result<&'static Api> {
    active().map(|a| &a.api)
}

/// The raw C interface of the active backend, for calls the safe API does not wrap.
///
/// Calling its functions is `unsafe`: the caller upholds each C function's contract, and must
/// not free or destroy handles owned by safe wrappers. The safe layer caches which context is
/// current on each thread: after changing it through this table (`aclrtSetCurrentContext`,
/// `aclrtSetDevice`, ...), call [`forget_bound_context`](crate::runtime::forget_bound_context)
/// before the next safe call on that thread.
///
/// ```
/// use ascend_npu::{raw_api, select_backend, Backend};
/// select_backend(Backend::Sim)?;
/// let get_count = raw_api()?.aclrtGetDeviceCount()?;
/// let mut count = 0u32;
/// // SAFETY: `count` is a valid out-pointer.
/// let code = unsafe { get_count(&mut count) };
/// assert_eq!(code, ascend_npu::sys::ACL_SUCCESS);
/// # Ok::<(), ascend_npu::Error>(())
/// ```
pub fn raw_api() -> Result<&'static Api> {
    api()
}

fn active() -> Result<&'static Active> {
    if let Some(active) = ACTIVE.get() {
        return Ok(active);
    }
    let value = std::env::var(BACKEND_VAR).ok().filter(|v| !v.is_empty());
    let backend = Backend::parse(&value.ok_or(Error::NoBackend)?)?;
    select_backend(backend)?;
    ACTIVE.get().ok_or(Error::NoBackend)
}

fn build_api(backend: Backend) -> Result<Api> {
    match backend {
        Backend::Cann => Ok(Api::cann(CannSearch::from_env())),
        #[cfg(feature = "sim")]
        Backend::Sim => Ok(Api::from_static("sim", ascend_sim::symbols())),
        #[cfg(not(feature = "sim"))]
        Backend::Sim => Err(Error::SimNotCompiled),
    }
}

fn initialise(api: &Api) -> Result<()> {
    // SAFETY: aclInit accepts a null config path (no configuration file).
    match unsafe { c_call!(api, aclInit(std::ptr::null())) } {
        // Another component of the process may have initialised ACL already; that is the state
        // we want, not a failure.
        Err(Error::Acl { code, .. }) if code.0 == ascend_sys::ACL_ERROR_REPEAT_INITIALIZE => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_exactly_the_two_names() {
        assert_eq!(Backend::parse("sim").unwrap(), Backend::Sim);
        assert_eq!(Backend::parse(" cann ").unwrap(), Backend::Cann);
        let err = Backend::parse("gpu").unwrap_err();
        assert!(
            err.to_string().contains("\"gpu\" is not a backend"),
            "{err}"
        );
    }
}
