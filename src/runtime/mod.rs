//! The safe runtime: devices, streams, events, device and pinned host memory.
//!
//! Every type here wraps handles of the active backend (see [`select_backend`](crate::select_backend));
//! the code is the same for CANN and the simulator.
//!
//! ```
//! use ascend_npu::{select_backend, Backend, Device};
//! select_backend(Backend::Sim)?;
//! let device = Device::open(0)?;
//! let stream = device.new_stream()?;
//! let buffer = stream.upload(&[1.0f32, 2.0, 3.0])?;
//! assert_eq!(buffer.to_vec()?, [1.0, 2.0, 3.0]);
//! # Ok::<(), ascend_npu::Error>(())
//! ```

pub mod comm;
mod copy;
mod device;
mod device_buffer;
mod drop_errors;
mod event;
mod host_buffer;
mod kernel;
mod ndarray_interop;
mod pool;
mod status;
mod stream;
mod tracking;

pub use device::{Device, MemoryInfo, context_sets_on_this_thread, forget_bound_context};
pub use device_buffer::{DeviceBuffer, DeviceSlice, DeviceSliceMut, DeviceView, DeviceViewMut};
pub(crate) use device_buffer::{read_access, write_access};
pub(crate) use drop_errors::record as record_drop_error;
pub use drop_errors::take_drop_errors;
pub use event::Event;
pub use host_buffer::HostBuffer;
pub use kernel::{DEVICE_KERNELS_VAR, Kernel, KernelArg, KernelBinary, MAX_BLOCKS, Param};
#[cfg(test)]
pub(crate) use status::STATUS_SLOT_WORDS;
pub use stream::Stream;
pub(crate) use tracking::Access;
