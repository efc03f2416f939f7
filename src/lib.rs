//! ascend-npu: a Rust backend for Huawei Ascend NPUs (910B / 910C class).
//!
//! The crate gives engines a safe runtime (devices, streams, events, typed device memory) over
//! CANN, loaded at run time, or over `ascend-sim`, a software NPU that runs everything on the
//! CPU. The same code runs on both; only the provider behind [`ascend_sys::Api`] differs.
//!
//! ```
//! use ascend_npu::{select_backend, Backend};
//! select_backend(Backend::Sim)?;
//! # Ok::<(), ascend_npu::Error>(())
//! ```

pub mod aclnn;
mod backend;
mod checked_call;
mod error;
pub mod fp8;
pub mod kernels;
pub mod moe;
pub mod ops;
pub mod reference;
pub mod runtime;

/// The software device, to configure it (device count, SoC) before the first call.
#[cfg(feature = "sim")]
pub use ascend_sim as sim;
/// The raw FFI layer, for calls the safe API does not wrap.
pub use ascend_sys as sys;
pub use backend::{BACKEND_VAR, Backend, active_backend, raw_api, select_backend};
pub use error::{AclCode, Error, HcclCode, Result};
pub use runtime::{
    Device, DeviceBuffer, DeviceSlice, DeviceSliceMut, DeviceView, DeviceViewMut, Event,
    HostBuffer, Kernel, KernelArg, KernelBinary, MemoryInfo, Param, Stream, take_drop_errors,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
