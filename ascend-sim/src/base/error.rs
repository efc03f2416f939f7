//! The error value every internal operation returns: an ACL code plus a message that says what
//! was wrong and what was expected. The FFI layer turns it into the return code and the thread's
//! recent-error message.

use ascend_sys::{
    ACL_ERROR_RT_CONTEXT_NULL, ACL_ERROR_RT_INVALID_DEVICEID, ACL_ERROR_RT_INVALID_HANDLE,
    ACL_ERROR_RT_PARAM_INVALID, aclError,
};

/// A failed simulator operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimError {
    pub(crate) code: aclError,
    pub(crate) message: String,
}

impl SimError {
    pub(crate) fn new(code: aclError, message: impl Into<String>) -> Self {
        SimError {
            code,
            message: message.into(),
        }
    }

    /// A bad argument: the most common failure, so it gets a short constructor.
    pub(crate) fn param(message: impl Into<String>) -> Self {
        Self::new(ACL_ERROR_RT_PARAM_INVALID, message)
    }

    pub(crate) fn handle(message: impl Into<String>) -> Self {
        Self::new(ACL_ERROR_RT_INVALID_HANDLE, message)
    }

    pub(crate) fn device_id(message: impl Into<String>) -> Self {
        Self::new(ACL_ERROR_RT_INVALID_DEVICEID, message)
    }

    pub(crate) fn no_context(message: impl Into<String>) -> Self {
        Self::new(ACL_ERROR_RT_CONTEXT_NULL, message)
    }
}

pub(crate) type SimResult<T> = Result<T, SimError>;

/// The text of a caught panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}
