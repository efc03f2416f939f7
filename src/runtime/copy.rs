//! Copies between host and device memory, queued on a stream.
//!
//! Synchronous copies first wait for the stream's queued work and for every conflicting use of
//! the device buffer on other streams, so they see (and are seen by) everything queued before
//! them. Async copies need pinned memory ([`HostBuffer`]); both sides of every queued copy are
//! use-tracked (see `tracking`), so the copy is ordered after conflicting work on other
//! streams, and the memory stays alive and untouched until the copy completes.

use std::ffi::c_void;

use bytemuck::{AnyBitPattern, NoUninit};

use super::device_buffer::{
    DeviceBuffer, DeviceSlice, DeviceSliceMut, byte_len, read_access, write_access,
};
use super::host_buffer::HostBuffer;
use super::stream::Stream;
use crate::checked_call::c_call;
use crate::error::{Error, Result};
use ascend_sys::{
    ACL_MEMCPY_DEVICE_TO_DEVICE, ACL_MEMCPY_DEVICE_TO_HOST, ACL_MEMCPY_HOST_TO_DEVICE,
    aclrtMemcpyKind,
};

impl Stream {
    /// Copies `src` into a new device buffer owned by this stream.
    pub fn upload<T: NoUninit>(&self, src: &[T]) -> Result<DeviceBuffer<T>> {
        let mut buffer = self.alloc_raw::<T>(src.len())?;
        self.memcpy_htod(src, &mut buffer)?;
        Ok(buffer)
    }

    /// Copies host `src` into device `dst` (same length) after this stream's queued work.
    pub fn memcpy_htod<T: NoUninit>(
        &self,
        src: &[T],
        dst: &mut impl DeviceSliceMut<T>,
    ) -> Result<()> {
        self.check_local(dst.stream(), "destination")?;
        same_len(src.len(), dst.len())?;
        let bytes = byte_len::<T>(src.len())?;
        let dst_ptr = dst.device_ptr_mut();
        dst.uses().wait_on_host(true)?;
        self.synchronize()?;
        // SAFETY: `src` is a live host slice of `bytes` bytes, borrowed for the whole
        // synchronous call; `dst` is a mutably borrowed device range of the same size.
        unsafe {
            self.memcpy_sync(
                dst_ptr as *mut c_void,
                src.as_ptr().cast(),
                bytes,
                ACL_MEMCPY_HOST_TO_DEVICE,
            )
        }
    }

    /// Copies device `src` into host `dst` (same length) after this stream's queued work.
    pub fn memcpy_dtoh<T: AnyBitPattern>(
        &self,
        src: &impl DeviceSlice<T>,
        dst: &mut [T],
    ) -> Result<()> {
        self.check_local(src.stream(), "source")?;
        same_len(src.len(), dst.len())?;
        let bytes = byte_len::<T>(dst.len())?;
        src.uses().wait_on_host(false)?;
        self.synchronize()?;
        // SAFETY: `dst` is a live, exclusively borrowed host slice of `bytes` bytes for the whole
        // synchronous call, and any bytes are a valid `T` (AnyBitPattern).
        unsafe {
            self.memcpy_sync(
                dst.as_mut_ptr().cast(),
                src.device_ptr() as *const c_void,
                bytes,
                ACL_MEMCPY_DEVICE_TO_HOST,
            )
        }
    }

    /// Queues a copy of pinned `src` into device `dst` (same length). `src` stays readable, and
    /// cannot be written or freed until the copy has completed.
    pub fn memcpy_htod_async<T: NoUninit>(
        &self,
        src: &HostBuffer<T>,
        dst: &mut impl DeviceSliceMut<T>,
    ) -> Result<()> {
        let Some(bytes) = self.plan_copy::<T>(dst.stream(), "destination", src.len(), dst.len())?
        else {
            return Ok(());
        };
        let dst_ptr = dst.device_ptr_mut();
        self.track(&[src.read_access(), write_access(dst)], || {
            // SAFETY: `src` is pinned memory of `bytes` bytes; its use tracking keeps it alive
            // and unwritten until the copy completes.
            unsafe {
                self.memcpy_async(
                    dst_ptr as *mut c_void,
                    src.host_ptr().cast(),
                    bytes,
                    ACL_MEMCPY_HOST_TO_DEVICE,
                )
            }
        })
    }

    /// Queues a copy of device `src` into pinned `dst` (same length). `dst` cannot be read,
    /// written or freed until the copy has completed.
    pub fn memcpy_dtoh_async<T: AnyBitPattern>(
        &self,
        src: &impl DeviceSlice<T>,
        dst: &mut HostBuffer<T>,
    ) -> Result<()> {
        let Some(bytes) = self.plan_copy::<T>(src.stream(), "source", src.len(), dst.len())? else {
            return Ok(());
        };
        let dst_ptr = dst.host_ptr();
        self.track(&[read_access(src), dst.write_access()], || {
            // SAFETY: `dst` is pinned memory of `bytes` bytes; its use tracking makes every
            // later host access, copy and the free wait for this copy.
            unsafe {
                self.memcpy_async(
                    dst_ptr.cast(),
                    src.device_ptr() as *const c_void,
                    bytes,
                    ACL_MEMCPY_DEVICE_TO_HOST,
                )
            }
        })
    }

    /// Queues a device-to-device copy (same length). Across devices, peer access from this
    /// stream's device must be enabled.
    pub fn memcpy_dtod<T>(
        &self,
        src: &impl DeviceSlice<T>,
        dst: &mut impl DeviceSliceMut<T>,
    ) -> Result<()> {
        let Some(bytes) = self.plan_copy::<T>(dst.stream(), "destination", src.len(), dst.len())?
        else {
            return Ok(());
        };
        let dst_ptr = dst.device_ptr_mut();
        self.track(&[read_access(src), write_access(dst)], || {
            // SAFETY: both are live device ranges of `bytes` bytes; `dst` is borrowed mutably
            // and use tracking frees neither before the copy completes.
            unsafe {
                self.memcpy_async(
                    dst_ptr as *mut c_void,
                    src.device_ptr() as *const c_void,
                    bytes,
                    ACL_MEMCPY_DEVICE_TO_DEVICE,
                )
            }
        })
    }

    /// Queues setting every byte of `dst` to `value`.
    pub fn memset<T>(&self, dst: &mut impl DeviceSliceMut<T>, value: u8) -> Result<()> {
        self.check_local(dst.stream(), "destination")?;
        let bytes = byte_len::<T>(dst.len())?;
        if bytes == 0 {
            return Ok(());
        }
        let ptr = dst.device_ptr_mut();
        self.track(&[write_access(dst)], || self.memset_raw(ptr, bytes, value))
    }

    /// Validates a copy of `src_len` into `dst_len` elements whose device side (`role`) is
    /// owned by `owner`; returns its size in bytes, or `None` when there is nothing to copy.
    fn plan_copy<T>(
        &self,
        owner: &Stream,
        role: &str,
        src_len: usize,
        dst_len: usize,
    ) -> Result<Option<usize>> {
        self.check_local(owner, role)?;
        same_len(src_len, dst_len)?;
        let bytes = byte_len::<T>(src_len)?;
        Ok((bytes > 0).then_some(bytes))
    }

    /// A device buffer used on a stream must live on that stream's device.
    fn check_local(&self, owner: &Stream, role: &str) -> Result<()> {
        if owner.device() == self.device() {
            Ok(())
        } else {
            Err(Error::invalid(
                format!(
                    "{role} on device {} used on a stream of device {}",
                    owner.device().id(),
                    self.device().id()
                ),
                format!("a {role} on device {}", self.device().id()),
            ))
        }
    }

    /// # Safety
    /// `dst` and `src` must be valid for `bytes` bytes in the memory kinds `kind` names, for the
    /// duration of the call.
    unsafe fn memcpy_sync(
        &self,
        dst: *mut c_void,
        src: *const c_void,
        bytes: usize,
        kind: aclrtMemcpyKind,
    ) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        self.bind()?;
        let api = self.device().inner.api;
        // SAFETY: forwarded from this function's contract.
        unsafe { c_call!(api, aclrtMemcpy(dst, bytes, src, bytes, kind)) }
    }

    /// # Safety
    /// `dst` and `src` must stay valid for `bytes` bytes until the copy completes on this stream.
    pub(crate) unsafe fn memcpy_async(
        &self,
        dst: *mut c_void,
        src: *const c_void,
        bytes: usize,
        kind: aclrtMemcpyKind,
    ) -> Result<()> {
        self.bind()?;
        let api = self.device().inner.api;
        // SAFETY: forwarded from this function's contract.
        unsafe {
            c_call!(
                api,
                aclrtMemcpyAsync(dst, bytes, src, bytes, kind, self.raw())
            )
        }
    }
}

fn same_len(src: usize, dst: usize) -> Result<()> {
    if src == dst {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("copy of {src} elements into {dst}"),
            "source and destination of the same length",
        ))
    }
}
