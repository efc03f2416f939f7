//! ascend-sim: a software Ascend NPU.
//!
//! The ACL runtime functions of `ascend-sys`'s header, implemented on the CPU and served through
//! the same function table as CANN ([`symbols`] → `ascend_sys::Api::from_static`). It follows
//! the documented semantics strictly, and where hardware would hide a bug it reports it:
//!
//! - device addresses are fake (non-canonical, never reused, guard gaps between allocations),
//!   so host dereferences fault and every out-of-range, straddling, use-after-free or double
//!   free access is named precisely in `aclGetRecentErrMsg`;
//! - fresh memory is filled with [`UNINIT_BYTE`], freed memory with [`FREED_BYTE`];
//! - handles (contexts, streams, events) are validated through registries and never reused;
//! - each stream runs its tasks in order on its own worker thread; a task that fails at
//!   execution makes the stream's error sticky until the next synchronize reports it.
//!
//! # Choices where CANN leaves room
//!
//! - `aclInit` is required before `aclrtSetDevice` / `aclrtCreateContext`
//!   (`ACL_ERROR_UNINITIALIZE` otherwise); after `aclFinalize`, `aclInit` may be called again.
//!   Pure queries (device count, device info, topology, SoC name, versions) work without it.
//! - Calls that act on "the current device" (alloc, copies, memset, stream/event creation,
//!   device sync, mem info, peer enable) need a current context on the calling thread
//!   (`ACL_ERROR_RT_CONTEXT_NULL`); work queued on a stream of another device is rejected with
//!   `ACL_ERROR_RT_STREAM_CONTEXT`.
//! - Error codes: bad arguments, out-of-range / straddling / freed ranges, kind mismatches and
//!   misuse of event flags are `ACL_ERROR_RT_PARAM_INVALID`; unknown or destroyed handles
//!   `ACL_ERROR_RT_INVALID_HANDLE`; invalid device ids `ACL_ERROR_RT_INVALID_DEVICEID`; any bad
//!   `aclrtFree`/`aclrtFreeHost` pointer (double free, interior, unknown) `ACL_ERROR_RT_MEMORY_FREE`;
//!   out of HBM `ACL_ERROR_RT_MEMORY_ALLOCATION`; device memory of another device without peer
//!   access `ACL_ERROR_RT_NO_PERMISSION`; async host-to-host copies
//!   `ACL_ERROR_RT_FEATURE_NOT_SUPPORT`; timeouts `ACL_ERROR_RT_STREAM_SYNC_TIMEOUT` /
//!   `ACL_ERROR_RT_EVENT_SYNC_TIMEOUT`; a panic inside the simulator
//!   `ACL_ERROR_RT_INTERNAL_ERROR`.
//! - Waiting on a never-recorded event is a no-op; querying one reports "not ready".
//! - Kernel arguments: `aclrtLaunchKernel`/`V2` read `argsData` as device memory of the
//!   launching device when the kernel starts (a host pointer fails with rule
//!   `launch.args-in-device-memory`); `aclrtKernelArgsAppend` lays parameters back to back
//!   without padding and `aclrtLaunchKernelWithConfig` copies the finalized list at the call
//!   (rules `kernel-args.*`). Kernel binaries must be whole ELF files (a truncated one is
//!   `ACL_ERROR_INVALID_FILE`) and are loaded from a private copy.
//! - A stream's sticky error is reported once (by synchronize, or by destroy if never
//!   collected) and then cleared; later tasks still run.

//! # Configuration
//!
//! One Ascend910B2 under CANN [`DEFAULT_CANN_VERSION`] by default; [`configure`] or the
//! variables [`DEVICES_VAR`] / [`SOC_VAR`] / [`HBM_BYTES_VAR`] / [`CANN_VERSION_VAR`] choose
//! another machine before the first call. The simulator answers as the chosen CANN release would: functions it lacks
//! are absent from [`symbols`], device attributes it lacks are rejected.

#![warn(missing_docs)]

// The layers, lowest first; a module imports only from its own layer or those before it
// (checked by tests/layers.rs, see docs/ARCHITECTURE.md).
mod base;
mod ffi;
mod operators;
pub mod rules;
mod runtime;

pub use operators::hccl;

pub use ascend_sys::CannVersion;
pub use base::config::{
    CANN_VERSION_VAR, COST_TRACE_VAR, DEFAULT_CANN_VERSION, DEVICES_VAR, HBM_BYTES_VAR,
    MAX_DEVICES, SOC_VAR, SimConfig,
};
pub use base::cost;
pub use base::error_msg::recent_error_message;
pub use base::soc::{SocFamily, SocModel};
pub use ffi::{configure, counters, map_device_range, symbols, translate};
pub use runtime::callback::current_thread_id;
pub use runtime::counters::DeviceCounters;
pub use runtime::kernel::KernelCounters;
pub use runtime::memory::{DeviceRange, FREED_BYTE, UNINIT_BYTE, misalign_next_pinned_alloc};

/// The provider name to pass to `ascend_sys::Api::from_static`.
pub const PROVIDER: &str = "sim";

/// An `ascend_sys::Api` served by the simulator.
pub fn api() -> ascend_sys::Api {
    ascend_sys::Api::from_static(PROVIDER, symbols())
}
