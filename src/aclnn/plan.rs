//! A planned aclnn operator: the executor between phase one and phase two.

use ascend_sys::aclOpExecutor;

/// The second phase of every aclnn operator: `aclnn<Op>(workspace, size, executor, stream)`.
pub type LaunchFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u64,
    *mut aclOpExecutor,
    ascend_sys::aclrtStream,
) -> ascend_sys::aclnnStatus;

use crate::backend::check;
use crate::error::{Error, Result};
use crate::runtime::Stream;

/// The executor an `aclnn<Op>GetWorkspaceSize` call created, and its workspace size.
///
/// [`Plan::launch`] consumes a one-shot plan (the launch destroys the executor, as documented).
#[must_use = "a plan does nothing until launched"]
pub struct Plan {
    op: &'static str,
    executor: *mut aclOpExecutor,
    workspace: u64,
}

impl Plan {
    /// Runs phase one: `get_workspace(&mut size, &mut executor)` must call the operator's
    /// `aclnn<Op>GetWorkspaceSize` with those out-pointers and return its status.
    pub fn new(
        stream: &Stream,
        op: &'static str,
        get_workspace: impl FnOnce(*mut u64, *mut *mut aclOpExecutor) -> Result<i32>,
    ) -> Result<Plan> {
        stream.bind()?;
        let mut workspace = 0u64;
        let mut executor = std::ptr::null_mut();
        let status = get_workspace(&mut workspace, &mut executor)?;
        check(stream.device().inner.api, op, status)?;
        if executor.is_null() {
            return Err(Error::invalid(
                format!("{op} returned no executor"),
                "an executor from phase one",
            ));
        }
        Ok(Plan {
            op,
            executor,
            workspace,
        })
    }

    /// Bytes of device workspace the launch needs.
    pub fn workspace_size(&self) -> u64 {
        self.workspace
    }

    /// Runs phase two on `stream` with `aclnn<Op>`, the operator's launch function (every
    /// aclnn operator's second phase has this one signature). The workspace is allocated on
    /// `stream`, so it is freed after the operator.
    pub fn launch(self, stream: &Stream, launch: LaunchFn) -> Result<()> {
        let size = usize::try_from(self.workspace).map_err(|_| {
            Error::invalid(
                format!("{} workspace of {} bytes", self.op, self.workspace),
                "a size that fits usize",
            )
        })?;
        let mut workspace = stream.alloc_uninit::<u8>(size)?;
        let ptr = if size == 0 {
            std::ptr::null_mut()
        } else {
            crate::runtime::DeviceSliceMut::device_ptr_mut(&mut workspace) as *mut std::ffi::c_void
        };
        stream.bind()?;
        // SAFETY: `executor` came from this plan's phase one and is launched once (the launch
        // consumes the plan); `ptr` is a live device allocation of the size phase one asked
        // for (or null for none), freed only after the operator in stream order.
        let status = unsafe { launch(ptr, self.workspace, self.executor, stream.raw()) };
        check(stream.device().inner.api, self.op, status)
    }
}
