//! The one error type of the safe layer.

use std::fmt;

use ascend_sys::LoadError;

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An `aclError` or `aclnnStatus` value, displayed with its documented name.
///
/// ```
/// use ascend_npu::AclCode;
/// let code = AclCode(107000);
/// assert_eq!(code.name(), Some("ACL_ERROR_RT_PARAM_INVALID"));
/// assert_eq!(code.to_string(), "ACL_ERROR_RT_PARAM_INVALID (107000)");
/// assert_eq!(AclCode(161002).to_string(), "ACLNN_ERR_PARAM_INVALID (161002)");
/// assert_eq!(AclCode(42).to_string(), "undocumented status 42");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AclCode(pub i32);

impl AclCode {
    /// The documented name of this code (an `aclError` or an `aclnnStatus`), if CANN
    /// documents it.
    pub fn name(self) -> Option<&'static str> {
        ascend_sys::status_name(self.0)
    }
}

impl fmt::Display for AclCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "undocumented status {}", self.0),
        }
    }
}

/// An `HcclResult` code, printed with its documented name.
///
/// ```
/// use ascend_npu::HcclCode;
/// assert_eq!(HcclCode(9).to_string(), "HCCL_E_TIMEOUT (9)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HcclCode(pub u32);

impl HcclCode {
    /// The documented name of this code, if the header declares it.
    pub fn name(self) -> Option<&'static str> {
        ascend_sys::hccl_result_name(self.0)
    }
}

impl fmt::Display for HcclCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "undocumented HcclResult {}", self.0),
        }
    }
}

/// Everything that can go wrong in ascend-npu.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No backend was chosen, by [`select_backend`](crate::select_backend) or by
    /// [`BACKEND_VAR`](crate::BACKEND_VAR).
    #[error(
        "no backend selected: call ascend_npu::select_backend(Backend::Sim | Backend::Cann) \
         or set {var}=sim|cann (nothing falls back to the simulator by itself)",
        var = crate::BACKEND_VAR
    )]
    NoBackend,

    /// [`BACKEND_VAR`](crate::BACKEND_VAR) holds something other than `sim` or `cann`.
    #[error("{var}={value:?} is not a backend; expected `sim` or `cann`", var = crate::BACKEND_VAR)]
    BadBackendVar {
        /// The variable's value.
        value: String,
    },

    /// A different backend is already active in this process.
    #[error(
        "backend `{requested}` was requested, but `{active}` is already active in this process"
    )]
    BackendConflict {
        /// The backend asked for.
        requested: &'static str,
        /// The backend in use.
        active: &'static str,
    },

    /// The simulator was asked for, but this build does not contain it.
    #[error("the sim backend is not compiled in: enable the `sim` feature of ascend-npu")]
    SimNotCompiled,

    /// A C function could not be resolved from the provider.
    #[error(transparent)]
    Load(#[from] LoadError),

    /// A C function returned an error code.
    #[error("{call} failed with {code}{}", fmt_message(message))]
    Acl {
        /// The C function called.
        call: &'static str,
        /// What it returned.
        code: AclCode,
        /// `aclGetRecentErrMsg()` right after the call, if any.
        message: String,
    },

    /// An HCCL function returned an error code.
    #[error("{call} failed with {code}{}", fmt_message(message))]
    Hccl {
        /// The HCCL function called.
        call: &'static str,
        /// What it returned.
        code: HcclCode,
        /// `aclGetRecentErrMsg()` right after the call, if any.
        message: String,
    },
    /// FP8 quantization rejected its input: on the host at the call, or on the device at the
    /// next synchronisation of the stream (see `docs/RELIABILITY.md`).
    #[error(transparent)]
    Quant(#[from] crate::fp8::QuantError),

    /// The MoE configuration or the MoE reference rejected its input (see
    /// [`MoeConfig::validate`](crate::moe::MoeConfig::validate)).
    #[error(transparent)]
    Moe(#[from] crate::reference::moe::MoeError),

    /// The MLA reference rejected its input.
    #[error(transparent)]
    Mla(#[from] crate::reference::mla::MlaError),

    /// The expert-parallel reference rejected its input.
    #[error(transparent)]
    Ep(#[from] crate::reference::ep::EpError),

    /// An argument was rejected before anything reached the device.
    #[error("invalid argument: {what}; expected {expected}")]
    InvalidArgument {
        /// What was wrong, with the offending values.
        what: String,
        /// What would have been accepted.
        expected: String,
    },

    /// Data received from another rank contradicts what the ranks agreed to send: a buffer
    /// damaged in flight, or a peer that sent something else. What arrived cannot be trusted;
    /// drop the communicator and build a new one.
    #[error("damaged transfer from rank {from}: {what}; expected {expected}")]
    Damaged {
        /// The sending rank.
        from: usize,
        /// What arrived, with the offending values.
        what: String,
        /// What the agreement implies.
        expected: String,
    },

    /// The installed CANN (or the operator's documented semantics) cannot compute what was
    /// asked exactly; nothing was launched.
    #[error("unsupported: {what}; {reason}")]
    Unsupported {
        /// What was asked for, with the values.
        what: String,
        /// Why it cannot be done, naming the version or rule, and what would work.
        reason: String,
    },
}

fn fmt_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl Error {
    /// The `aclError` code, if this error came from a C call.
    pub fn acl_code(&self) -> Option<AclCode> {
        match self {
            Error::Acl { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Shorthand for [`Error::Unsupported`].
    pub(crate) fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub(crate) fn invalid(what: impl Into<String>, expected: impl Into<String>) -> Self {
        Error::InvalidArgument {
            what: what.into(),
            expected: expected.into(),
        }
    }
}

/// The element count of `dims`, or an error naming `what` when the product overflows: sizes
/// derived from caller input are multiplied here, never with a plain `*` that could panic.
pub(crate) fn elements(what: &str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::invalid(
                format!("{what} of dims {dims:?} overflows usize"),
                "sizes whose product fits in memory",
            )
        })
}
