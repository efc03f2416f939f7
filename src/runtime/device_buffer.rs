//! Typed device memory and borrowed views of it.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use bytemuck::{AnyBitPattern, NoUninit, Zeroable};

use super::device::{Device, Memory};
use super::drop_errors;
use super::stream::Stream;
use super::tracking::{Access, Uses};
use crate::checked_call::c_call;
use crate::error::{Error, Result};

/// `len` elements of `T` in device memory, allocated on (and freed in the order of) a stream.
///
/// Element types come with [`bytemuck`]'s guarantees: uploads need [`NoUninit`] (no padding
/// bytes to leak), downloads need [`AnyBitPattern`] (device bytes may be anything), and
/// [`Stream::alloc_zeroed`] needs [`Zeroable`]. An empty buffer owns no device memory.
pub struct DeviceBuffer<T> {
    ptr: u64,
    len: usize,
    stream: Stream,
    /// The streams that may still read or write the memory.
    uses: Uses,
    _element: PhantomData<T>,
}

pub(crate) mod sealed {
    /// Only this crate's buffer types are device slices: their use tracking is what makes
    /// queuing work on them safe.
    pub trait Sealed {
        /// The use tracking of the whole buffer.
        fn uses(&self) -> &super::Uses;
    }
}

/// Read access to a run of device elements: a whole [`DeviceBuffer`] or a view of one.
///
/// Sealed: only [`DeviceBuffer`], [`DeviceView`] and [`DeviceViewMut`] implement it, so no
/// outside type can hand the runtime an address it does not own:
///
/// ```compile_fail
/// struct Forged(ascend_npu::Stream);
/// impl ascend_npu::DeviceSlice<u8> for Forged {
///     fn device_ptr(&self) -> u64 { 0x1000 }
///     fn len(&self) -> usize { 1 }
///     fn stream(&self) -> &ascend_npu::Stream { &self.0 }
/// }
/// ```
pub trait DeviceSlice<T>: sealed::Sealed {
    /// The device address of the first element (0 when empty), for calling CANN functions this
    /// crate does not wrap (interop).
    ///
    /// The address stays valid while the buffer lives. Work queued through it on raw handles is
    /// invisible to use tracking: call [`Stream::prepare_raw_read`] (or
    /// [`Stream::prepare_raw_write`]) on the stream you queue it on first.
    fn device_ptr(&self) -> u64;
    /// The number of elements.
    fn len(&self) -> usize;
    /// Whether there are no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The stream that owns the memory.
    fn stream(&self) -> &Stream;
    /// The device holding the memory.
    fn device(&self) -> &Device {
        self.stream().device()
    }
    /// A shared view of all the elements.
    fn view(&self) -> DeviceView<'_, T> {
        DeviceView {
            ptr: self.device_ptr(),
            len: self.len(),
            stream: self.stream(),
            uses: self.uses(),
            _borrow: PhantomData,
        }
    }
}

/// A read of `slice` by an operation, for [`Stream::track`].
pub(crate) fn read_access<T>(slice: &impl DeviceSlice<T>) -> Access<'_> {
    slice.uses().read()
}

/// A write of `slice` by an operation, for [`Stream::track`]. The caller holds (or held, for
/// as long as the access lives) an exclusive borrow of the slice.
pub(crate) fn write_access<T>(slice: &impl DeviceSlice<T>) -> Access<'_> {
    slice.uses().write()
}

/// Write access to a run of device elements.
pub trait DeviceSliceMut<T>: DeviceSlice<T> {
    /// The device address of the first element, for writing.
    fn device_ptr_mut(&mut self) -> u64;
}

/// A shared view of part of a [`DeviceBuffer`].
pub struct DeviceView<'a, T> {
    ptr: u64,
    len: usize,
    stream: &'a Stream,
    uses: &'a Uses,
    _borrow: PhantomData<&'a [T]>,
}

impl<'a> DeviceView<'a, u8> {
    /// The bytes as elements of `U`, for a kernel that reads a byte buffer by element type
    /// (the MLA cache's bf16 rows); an error unless the start is aligned for `U` and the
    /// length a whole number of elements.
    pub(crate) fn cast_bytes<U: bytemuck::AnyBitPattern>(&self) -> Result<DeviceView<'a, U>> {
        let size = std::mem::size_of::<U>();
        if size == 0 || self.len % size != 0 || self.ptr % std::mem::align_of::<U>() as u64 != 0 {
            return Err(crate::error::Error::invalid(
                format!(
                    "{} bytes at {:#x} read as elements of {size} bytes",
                    self.len, self.ptr
                ),
                "a whole number of elements at an aligned address",
            ));
        }
        Ok(DeviceView {
            ptr: self.ptr,
            len: self.len / size,
            stream: self.stream,
            uses: self.uses,
            _borrow: PhantomData,
        })
    }
}

/// An exclusive view of part of a [`DeviceBuffer`].
pub struct DeviceViewMut<'a, T> {
    ptr: u64,
    len: usize,
    stream: &'a Stream,
    uses: &'a Uses,
    _borrow: PhantomData<&'a mut [T]>,
}

impl Stream {
    /// Allocates `len` elements whose contents are unspecified (the simulator fills them with a
    /// garbage pattern). Safe because every bit pattern is a valid `T`.
    pub fn alloc_uninit<T: AnyBitPattern>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        self.alloc_raw(len)
    }

    /// Allocates `len` zeroed elements (the memset is queued on this stream).
    pub fn alloc_zeroed<T: Zeroable>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let mut buffer = self.alloc_raw::<T>(len)?;
        self.memset(&mut buffer, 0)?;
        Ok(buffer)
    }

    pub(crate) fn alloc_raw<T>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let bytes = byte_len::<T>(len)?;
        let ptr = if bytes == 0 { 0 } else { self.malloc(bytes)? };
        Ok(DeviceBuffer {
            ptr,
            len,
            stream: self.clone(),
            uses: Uses::default(),
            _element: PhantomData,
        })
    }

    /// `aclrtMalloc` of `bytes` (non-zero) on this stream's device, after collecting deferred
    /// frees. When the device is out of memory, this stream's pool gives its idle blocks back,
    /// and so do the pools of the device's other streams that have no work queued; if that
    /// freed anything, the allocation is tried once more. Pools filled with blocks of sizes
    /// nobody asks for again must not starve plain allocations (found by the `op_validation`
    /// fuzz target, whose inputs of ever-new sizes filled a 256 MiB device).
    pub(crate) fn malloc(&self, bytes: usize) -> Result<u64> {
        match self.malloc_once(bytes) {
            Err(e)
                if e.acl_code()
                    .is_some_and(|c| c.0 == ascend_sys::ACL_ERROR_RT_MEMORY_ALLOCATION) =>
            {
                let own = self.pooled_bytes();
                // Freed at once where this stream is idle; behind its queued work otherwise
                // (then the retry may fail too, with the same error).
                self.trim_pool()?;
                let others = self.trim_idle_pools_of_other_streams()?;
                if own + others == 0 {
                    return Err(e);
                }
                self.malloc_once(bytes)
            }
            result => result,
        }
    }

    fn malloc_once(&self, bytes: usize) -> Result<u64> {
        let device = &self.device().inner;
        device.reclaim();
        self.bind()?;
        let mut raw: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer and `bytes` is non-zero; the device's context
        // is bound, so the memory is allocated on this stream's device.
        unsafe {
            c_call!(
                device.api,
                aclrtMalloc(&mut raw, bytes, ascend_sys::ACL_MEM_MALLOC_HUGE_FIRST)
            )
        }?;
        Ok(raw as u64)
    }

    pub(crate) fn memset_raw(&self, ptr: u64, bytes: usize, value: u8) -> Result<()> {
        self.bind()?;
        let api = self.device().inner.api;
        // SAFETY: [ptr, ptr + bytes) lies in a live allocation of this device, owned by a buffer
        // the caller borrows mutably; the memset is ordered on this stream.
        unsafe {
            c_call!(
                api,
                aclrtMemsetAsync(
                    ptr as *mut std::ffi::c_void,
                    bytes,
                    value.into(),
                    bytes,
                    self.raw(),
                )
            )
        }
    }
}

/// Bytes of `len` elements of `T`, or an error when that overflows.
pub(crate) fn byte_len<T>(len: usize) -> Result<usize> {
    len.checked_mul(std::mem::size_of::<T>()).ok_or_else(|| {
        Error::invalid(
            format!(
                "{len} elements of {} bytes overflow usize",
                std::mem::size_of::<T>()
            ),
            "a buffer size that fits in memory",
        )
    })
}

impl<T> DeviceBuffer<T> {
    /// A buffer over a block of `stream`'s pool, given back to it on drop.
    pub(crate) fn pooled(ptr: u64, len: usize, stream: Stream) -> Self {
        DeviceBuffer {
            ptr,
            len,
            stream,
            uses: Uses::pooled(),
            _element: PhantomData,
        }
    }

    /// Takes the memory out of the buffer, which then frees nothing; `None` when empty. The
    /// caller becomes responsible for the memory (and for ordering it after its uses).
    pub(crate) fn take_memory(&mut self) -> Option<u64> {
        (self.ptr != 0).then(|| std::mem::replace(&mut self.ptr, 0))
    }

    /// A shared view of the whole buffer.
    pub fn as_view(&self) -> DeviceView<'_, T> {
        DeviceView {
            ptr: self.ptr,
            len: self.len,
            stream: &self.stream,
            uses: &self.uses,
            _borrow: PhantomData,
        }
    }

    /// An exclusive view of the whole buffer.
    pub fn as_view_mut(&mut self) -> DeviceViewMut<'_, T> {
        DeviceViewMut {
            ptr: self.ptr,
            len: self.len,
            stream: &self.stream,
            uses: &self.uses,
            _borrow: PhantomData,
        }
    }

    /// A shared view of `range`, or an error if it is out of bounds.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Result<DeviceView<'_, T>> {
        let (start, end) = checked_range(&range, self.len)?;
        Ok(DeviceView {
            ptr: offset_ptr::<T>(self.ptr, start),
            len: end - start,
            stream: &self.stream,
            uses: &self.uses,
            _borrow: PhantomData,
        })
    }

    /// An exclusive view of `range`, or an error if it is out of bounds.
    pub fn slice_mut(&mut self, range: impl RangeBounds<usize>) -> Result<DeviceViewMut<'_, T>> {
        let (start, end) = checked_range(&range, self.len)?;
        Ok(DeviceViewMut {
            ptr: offset_ptr::<T>(self.ptr, start),
            len: end - start,
            stream: &self.stream,
            uses: &self.uses,
            _borrow: PhantomData,
        })
    }

    /// Two exclusive views, `[0, mid)` and `[mid, len)`.
    pub fn split_at_mut(
        &mut self,
        mid: usize,
    ) -> Result<(DeviceViewMut<'_, T>, DeviceViewMut<'_, T>)> {
        if mid > self.len {
            return Err(Error::invalid(
                format!("split at {mid} of a buffer of {} elements", self.len),
                "a split point no greater than the length",
            ));
        }
        let left = DeviceViewMut {
            ptr: self.ptr,
            len: mid,
            stream: &self.stream,
            uses: &self.uses,
            _borrow: PhantomData,
        };
        let right = DeviceViewMut {
            ptr: offset_ptr::<T>(self.ptr, mid),
            len: self.len - mid,
            stream: &self.stream,
            uses: &self.uses,
            _borrow: PhantomData,
        };
        Ok((left, right))
    }
}

impl<T> DeviceBuffer<T> {
    /// Gives up ownership of the memory: returns its address and length; the caller frees it
    /// (with `DeviceInner::free_now` once no queued work uses it; only for memory no other stream used).
    pub(crate) fn into_raw(mut self) -> (u64, usize) {
        let raw = (self.ptr, self.len);
        self.ptr = 0; // Drop then frees nothing and only releases the stream.
        raw
    }
}

impl<T: AnyBitPattern> DeviceBuffer<T> {
    /// Copies the buffer to a new `Vec`, after the buffer's stream has finished its queued work.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let mut out = vec![T::zeroed(); self.len];
        self.stream.memcpy_dtoh(self, &mut out)?;
        Ok(out)
    }
}

impl<T: NoUninit> DeviceBuffer<T> {
    /// Overwrites the buffer with `src` (same length), after the stream's queued work.
    pub fn copy_from_host(&mut self, src: &[T]) -> Result<()> {
        let stream = self.stream.clone();
        stream.memcpy_htod(src, self)
    }
}

fn checked_range(range: &impl RangeBounds<usize>, len: usize) -> Result<(usize, usize)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => Some(s),
        Bound::Excluded(&s) => s.checked_add(1),
        Bound::Unbounded => Some(0),
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => Some(len),
    };
    match (start, end) {
        (Some(s), Some(e)) if s <= e && e <= len => Ok((s, e)),
        _ => Err(Error::invalid(
            format!(
                "range {:?}..{:?} of a buffer of {len} elements",
                range.start_bound(),
                range.end_bound()
            ),
            format!("start <= end <= {len}"),
        )),
    }
}

fn offset_ptr<T>(base: u64, index: usize) -> u64 {
    // In bounds of a live allocation (checked by the caller), so no overflow; an empty
    // buffer's base 0 only ever gets index 0.
    base + (index * std::mem::size_of::<T>()) as u64
}

macro_rules! impl_device_slice {
    ($ty:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? T> DeviceSlice<T> for $ty<$($lt,)? T> {
            fn device_ptr(&self) -> u64 {
                self.ptr
            }
            fn len(&self) -> usize {
                self.len
            }
            fn stream(&self) -> &Stream {
                &self.stream
            }
        }

        impl<$($lt,)? T> sealed::Sealed for $ty<$($lt,)? T> {
            fn uses(&self) -> &Uses {
                &self.uses
            }
        }
    };
}

impl_device_slice!(DeviceBuffer);
impl_device_slice!(DeviceView<'a>);
impl_device_slice!(DeviceViewMut<'a>);

impl<T> DeviceSliceMut<T> for DeviceBuffer<T> {
    fn device_ptr_mut(&mut self) -> u64 {
        self.ptr
    }
}

impl<T> DeviceSliceMut<T> for DeviceViewMut<'_, T> {
    fn device_ptr_mut(&mut self) -> u64 {
        self.ptr
    }
}

macro_rules! impl_debug {
    ($ty:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? T> std::fmt::Debug for $ty<$($lt,)? T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("device", &self.stream.device().id())
                    .field("ptr", &format_args!("{:#x}", self.ptr))
                    .field("len", &self.len)
                    .field("element", &std::any::type_name::<T>())
                    .finish()
            }
        }
    };
}

impl_debug!(DeviceBuffer);
impl_debug!(DeviceView<'a>);
impl_debug!(DeviceViewMut<'a>);

impl<T> Drop for DeviceBuffer<T> {
    fn drop(&mut self) {
        if self.ptr == 0 {
            return;
        }
        // Free after the work queued so far on every stream that may use the memory (the
        // owner always counts: the crate's own workspaces are queued there untracked), at once
        // if all of them are idle. Never blocks, never frees early.
        let pooled = self.uses.is_pooled();
        let mut users = self.uses.take_users();
        if pooled {
            let bytes = self.len * std::mem::size_of::<T>();
            self.stream.return_block(self.ptr, bytes, &users);
            return;
        }
        if !users.iter().any(|s| s.same_as(&self.stream)) {
            users.push(self.stream.clone());
        }
        let device = &self.stream.device().inner;
        let result = device.free_after(Memory::Device(self.ptr as usize), &users);
        if let Err(e) = result {
            drop_errors::record(e);
        }
    }
}

// SAFETY: the buffer owns device memory (not host memory aliased elsewhere) and a Stream, which
// is Send + Sync; moving it to another thread moves ownership of the elements, hence T: Send.
unsafe impl<T: Send> Send for DeviceBuffer<T> {}
// SAFETY: &DeviceBuffer only allows reads of the elements (and stream calls), hence T: Sync.
unsafe impl<T: Sync> Sync for DeviceBuffer<T> {}
