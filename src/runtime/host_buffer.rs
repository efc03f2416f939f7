//! Pinned (page-locked) host memory, the only host memory async copies may use.

use std::marker::PhantomData;
use std::sync::Mutex;

use bytemuck::{AnyBitPattern, NoUninit, Zeroable};

use super::device::Device;
use super::device_buffer::byte_len;
use super::drop_errors;
use super::event::Event;
use crate::backend::check;
use crate::error::{Error, Result};

/// `len` elements of `T` in pinned host memory (`aclrtMallocHost`).
///
/// Async copies into or out of the buffer record an event in it. Host access
/// ([`HostBuffer::as_slice`], [`HostBuffer::as_mut_slice`]) and `Drop` wait for those events
/// first, so no copy can outlive the memory or race a host access, whatever the caller does.
pub struct HostBuffer<T> {
    ptr: *mut T,
    len: usize,
    device: Device,
    /// Copies that may still touch the memory.
    pending: Mutex<Vec<Event>>,
    _element: PhantomData<T>,
}

impl<T: Zeroable> HostBuffer<T> {
    /// Allocates `len` zeroed elements of pinned memory, registered with `device`'s runtime.
    pub fn zeroed(device: &Device, len: usize) -> Result<HostBuffer<T>> {
        let bytes = byte_len::<T>(len)?;
        let ptr = if bytes == 0 {
            std::ptr::NonNull::<T>::dangling().as_ptr()
        } else {
            device.inner.bind()?;
            let api = device.inner.api;
            let f = api.aclrtMallocHost()?;
            let mut raw: *mut std::ffi::c_void = std::ptr::null_mut();
            // SAFETY: `raw` is a valid out-pointer and `bytes` is non-zero.
            check(api, "aclrtMallocHost", unsafe { f(&mut raw, bytes) })?;
            if raw.is_null() || (raw as usize) % std::mem::align_of::<T>() != 0 {
                return Err(Error::Acl {
                    call: "aclrtMallocHost",
                    code: crate::AclCode(ascend_sys::ACL_ERROR_BAD_ALLOC),
                    message: format!(
                        "returned {raw:p}, not aligned to {} bytes",
                        std::mem::align_of::<T>()
                    ),
                });
            }
            // SAFETY: `raw` points to `bytes` freshly allocated, writable bytes.
            unsafe { std::ptr::write_bytes(raw.cast::<u8>(), 0, bytes) };
            raw.cast::<T>()
        };
        Ok(HostBuffer {
            ptr,
            len,
            device: device.clone(),
            pending: Mutex::new(Vec::new()),
            _element: PhantomData,
        })
    }
}

impl<T: AnyBitPattern + NoUninit> HostBuffer<T> {
    /// Allocates pinned memory holding a copy of `src`.
    pub fn from_slice(device: &Device, src: &[T]) -> Result<HostBuffer<T>> {
        let mut buffer = Self::zeroed(device, src.len())?;
        buffer.as_mut_slice()?.copy_from_slice(src);
        Ok(buffer)
    }
}

impl<T> HostBuffer<T> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device whose runtime registered the memory.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Waits for every copy that may touch the memory.
    fn wait_pending(&self) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(event) = pending.last() {
            event.synchronize()?;
            pending.pop();
        }
        Ok(())
    }

    /// Notes that a copy recorded by `event` may touch the memory until it completes.
    pub(crate) fn add_pending(&self, event: Event) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|e| !matches!(e.is_complete(), Ok(true)));
        pending.push(event);
    }

    pub(crate) fn host_ptr(&self) -> *mut T {
        self.ptr
    }
}

impl<T: AnyBitPattern> HostBuffer<T> {
    /// The elements, once every async copy touching them has completed.
    pub fn as_slice(&self) -> Result<&[T]> {
        self.wait_pending()?;
        // SAFETY: `ptr` is valid for `len` initialised elements (zeroed at allocation, then
        // only written with valid `T` values or device bytes, which are valid as any bit
        // pattern); no copy is in flight, and writes need &mut self.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }

    /// The elements, mutably, once every async copy touching them has completed.
    pub fn as_mut_slice(&mut self) -> Result<&mut [T]> {
        self.wait_pending()?;
        // SAFETY: as in `as_slice`, and &mut self excludes every other access.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }

    /// Copies the elements to a `Vec`.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        Ok(self.as_slice()?.to_vec())
    }
}

impl<T> Drop for HostBuffer<T> {
    fn drop(&mut self) {
        if self.len == 0 || std::mem::size_of::<T>() == 0 {
            return;
        }
        if let Err(e) = self.wait_pending() {
            // A copy may still be in flight: leaking the memory is the only sound choice.
            drop_errors::record(e);
            return;
        }
        let result = self.device.inner.bind().and_then(|()| {
            let api = self.device.inner.api;
            let f = api.aclrtFreeHost()?;
            // SAFETY: `ptr` came from aclrtMallocHost and no copy uses it any more.
            check(api, "aclrtFreeHost", unsafe { f(self.ptr.cast()) })
        });
        if let Err(e) = result {
            drop_errors::record(e);
        }
    }
}

impl<T> std::fmt::Debug for HostBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBuffer")
            .field("len", &self.len)
            .field("element", &std::any::type_name::<T>())
            .finish()
    }
}

// SAFETY: the buffer uniquely owns its pinned allocation; moving it moves the elements.
unsafe impl<T: Send> Send for HostBuffer<T> {}
// SAFETY: &HostBuffer gives only shared access to the elements (after pending copies).
unsafe impl<T: Sync> Sync for HostBuffer<T> {}
