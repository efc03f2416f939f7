//! Pinned (page-locked) host memory, the only host memory async copies may use.

use std::marker::PhantomData;

use bytemuck::{AnyBitPattern, NoUninit, Zeroable};

use super::device::{Device, Memory};
use super::device_buffer::byte_len;
use super::drop_errors;
use super::tracking::{Access, Uses};
use crate::checked_call::c_fn;
use crate::error::Result;

/// `len` elements of `T` in pinned host memory (`aclrtMallocHost`).
///
/// The buffer tracks the streams whose async copies may still read or write it, like a
/// [`DeviceBuffer`](super::DeviceBuffer): a copy on another stream is ordered after the
/// conflicting ones, host access ([`HostBuffer::as_slice`], [`HostBuffer::as_mut_slice`])
/// waits for them, and `Drop` defers the free until they are done. So no copy can outlive the
/// memory or race another copy or a host access, whatever the caller does.
pub struct HostBuffer<T> {
    ptr: *mut T,
    len: usize,
    device: Device,
    /// The streams whose copies may still touch the memory.
    uses: Uses,
    _element: PhantomData<T>,
}

impl<T: Zeroable> HostBuffer<T> {
    /// Allocates `len` zeroed elements of pinned memory, registered with `device`'s runtime.
    pub fn zeroed(device: &Device, len: usize) -> Result<HostBuffer<T>> {
        let bytes = byte_len::<T>(len)?;
        let ptr = if bytes == 0 {
            std::ptr::NonNull::<T>::dangling().as_ptr()
        } else {
            device.inner.reclaim();
            device.inner.bind()?;
            let malloc = c_fn!(device.inner.api, aclrtMallocHost)?;
            let mut raw: *mut std::ffi::c_void = std::ptr::null_mut();
            // SAFETY: `raw` is a valid out-pointer and `bytes` is non-zero.
            malloc.check(unsafe { (malloc.ptr())(&mut raw, bytes) })?;
            if raw.is_null() || (raw as usize) % std::mem::align_of::<T>() != 0 {
                // Memory we cannot use is still ours to give back.
                if !raw.is_null() {
                    if let Err(e) = device.inner.free_now(Memory::Host(raw as usize)) {
                        drop_errors::record(e);
                    }
                }
                return Err(malloc.failed(
                    ascend_sys::ACL_ERROR_BAD_ALLOC,
                    Some(format!(
                        "returned {raw:p}, not aligned to {} bytes",
                        std::mem::align_of::<T>()
                    )),
                ));
            }
            // SAFETY: `raw` points to `bytes` freshly allocated, writable bytes.
            unsafe { std::ptr::write_bytes(raw.cast::<u8>(), 0, bytes) };
            raw.cast::<T>()
        };
        Ok(HostBuffer {
            ptr,
            len,
            device: device.clone(),
            uses: Uses::default(),
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

    /// A read of the memory by a copy.
    pub(crate) fn read_access(&self) -> Access<'_> {
        self.uses.read()
    }

    /// A write of the memory by a copy.
    pub(crate) fn write_access(&mut self) -> Access<'_> {
        self.uses.write()
    }

    pub(crate) fn host_ptr(&self) -> *mut T {
        self.ptr
    }
}

impl<T: AnyBitPattern> HostBuffer<T> {
    /// The elements, once every async copy writing them has completed.
    pub fn as_slice(&self) -> Result<&[T]> {
        self.uses.wait_on_host(false)?;
        // SAFETY: `ptr` is valid for `len` initialised elements (zeroed at allocation, then
        // only written with valid `T` values or device bytes, which are valid as any bit
        // pattern); no copy is in flight, and writes need &mut self.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }

    /// The elements, mutably, once every async copy touching them has completed.
    pub fn as_mut_slice(&mut self) -> Result<&mut [T]> {
        self.uses.wait_on_host(true)?;
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
        // Free once the copies queued so far have completed; never block here.
        let users = self.uses.take_users();
        let result = self
            .device
            .inner
            .free_after(Memory::Host(self.ptr as usize), &users);
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
