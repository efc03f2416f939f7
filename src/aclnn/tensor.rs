//! aclTensor and aclTensorList handles over our device buffers.

use std::marker::PhantomData;

use ascend_sys::{aclDataType, aclTensor, aclTensorList};
use half::{bf16, f16};

use crate::checked_call::c_call;
use crate::error::{Error, Result};
use crate::runtime::{Access, DeviceSlice, DeviceSliceMut, Stream, record_drop_error};

/// Element types with an `aclDataType`.
pub trait AclElement: Copy + 'static {
    /// The matching `aclDataType`.
    const DTYPE: aclDataType;
}

macro_rules! acl_element {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(impl AclElement for $t {
            const DTYPE: aclDataType = ascend_sys::$d;
        })*
    };
}

acl_element!(f32 => ACL_FLOAT, f16 => ACL_FLOAT16, bf16 => ACL_BF16, f64 => ACL_DOUBLE,
    i8 => ACL_INT8, u8 => ACL_UINT8, i16 => ACL_INT16, i32 => ACL_INT32, i64 => ACL_INT64);

/// A one-byte boolean as aclnn reads it (`ACL_BOOL`: 0 or 1), for masks built in a `u8`
/// buffer and viewed with [`AclTensor::from_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct AclBool(pub u8);

impl AclElement for AclBool {
    const DTYPE: aclDataType = ascend_sys::ACL_BOOL;
}

/// An `aclTensor` describing a row-major view of a device buffer; it borrows the buffer (shared
/// or exclusive, as created) for its lifetime.
pub struct AclTensor<'a> {
    raw: *mut aclTensor,
    stream: Stream,
    /// How an operator uses the buffer, so a [`Plan`](super::Plan) launch is use-tracked.
    access: Access<'a>,
    _borrow: PhantomData<&'a ()>,
}

/// Tensors and tensor lists: what an aclnn launch reads and writes.
pub(crate) trait TensorUses<'a> {
    /// Appends the buffer uses of this argument.
    fn uses_into(&self, out: &mut Vec<Access<'a>>);
}

impl<'a> TensorUses<'a> for AclTensor<'a> {
    fn uses_into(&self, out: &mut Vec<Access<'a>>) {
        out.push(self.access);
    }
}

impl<'a> TensorUses<'a> for AclTensorList<'a> {
    fn uses_into(&self, out: &mut Vec<Access<'a>>) {
        out.extend_from_slice(&self.accesses);
    }
}

impl<'a> AclTensor<'a> {
    /// A tensor of `dims` over `buffer`, which must hold exactly `dims`' element count.
    pub fn new<T: AclElement>(buffer: &'a impl DeviceSlice<T>, dims: &[usize]) -> Result<Self> {
        let access = crate::runtime::read_access(buffer);
        Self::create::<T>(
            buffer.device_ptr(),
            buffer.len(),
            buffer.stream(),
            access,
            dims,
        )
    }

    /// A tensor the operator writes.
    pub fn new_mut<T: AclElement>(
        buffer: &'a mut impl DeviceSliceMut<T>,
        dims: &[usize],
    ) -> Result<Self> {
        let ptr = buffer.device_ptr_mut();
        let len = buffer.len();
        // Reborrow shared for the rest: the tensor keeps the exclusive borrow for 'a.
        let buffer: &'a _ = buffer;
        let access = crate::runtime::write_access(buffer);
        Self::create::<T>(ptr, len, buffer.stream(), access, dims)
    }

    /// A tensor over row-major storage of `stored` dims, viewed with its last two dims swapped
    /// (e.g. expert weights stored `[E, N, K]`, seen as `[E, K, N]`).
    pub fn transposed<T: AclElement>(
        buffer: &'a impl DeviceSlice<T>,
        stored: &[usize],
    ) -> Result<Self> {
        let r = stored.len();
        if r < 2 {
            return Err(Error::invalid(
                format!("transposing dims {stored:?}"),
                "at least 2 dims",
            ));
        }
        let strides = row_major_strides(stored);
        let mut view = stored.to_vec();
        view.swap(r - 2, r - 1);
        let mut view_strides = strides.clone();
        view_strides.swap(r - 2, r - 1);
        Self::create_strided::<T>(
            buffer.device_ptr(),
            buffer.len(),
            buffer.stream(),
            crate::runtime::read_access(buffer),
            &view,
            &view_strides,
        )
    }

    /// A tensor of `T` elements over a byte buffer (storage holding several element types, such
    /// as a latent cache's two tensors): the bytes must be a whole number of `T`s, aligned to
    /// `T`, and the dims' product that number.
    pub fn from_bytes<T: AclElement>(
        buffer: &'a impl DeviceSlice<u8>,
        dims: &[usize],
    ) -> Result<Self> {
        let len = elements_in_bytes::<T>(buffer.device_ptr(), buffer.len())?;
        let access = crate::runtime::read_access(buffer);
        Self::create::<T>(buffer.device_ptr(), len, buffer.stream(), access, dims)
    }

    /// [`from_bytes`](Self::from_bytes) for a tensor the operator writes.
    pub fn from_bytes_mut<T: AclElement>(
        buffer: &'a mut impl DeviceSliceMut<u8>,
        dims: &[usize],
    ) -> Result<Self> {
        let ptr = buffer.device_ptr_mut();
        let len = elements_in_bytes::<T>(ptr, buffer.len())?;
        let buffer: &'a _ = buffer;
        let access = crate::runtime::write_access(buffer);
        Self::create::<T>(ptr, len, buffer.stream(), access, dims)
    }

    /// A `[k, n]` matrix over `buffer` holding it in `FRACTAL_NZ` (packed by
    /// [`pack_nz`](super::pack_nz)): the operator sees the view `[k, n]` and the storage
    /// `[n/16, k/16, 16, 16]` (2-byte elements).
    pub fn new_nz<T: AclElement>(
        buffer: &'a impl DeviceSlice<T>,
        k: usize,
        n: usize,
    ) -> Result<Self> {
        if std::mem::size_of::<T>() != 2 || k % 16 != 0 || n % 16 != 0 {
            return Err(Error::invalid(
                format!(
                    "a FRACTAL_NZ [{k}, {n}] matrix of {}-byte elements",
                    std::mem::size_of::<T>()
                ),
                "2-byte elements and both dims multiples of 16",
            ));
        }
        let storage = [(n / 16) as i64, (k / 16) as i64, 16, 16];
        Self::create_with::<T>(
            buffer.device_ptr(),
            buffer.len(),
            buffer.stream(),
            crate::runtime::read_access(buffer),
            &[k, n],
            &row_major_strides(&[k, n]),
            ascend_sys::ACL_FORMAT_FRACTAL_NZ,
            &storage,
        )
    }

    fn create<T: AclElement>(
        ptr: u64,
        len: usize,
        stream: &Stream,
        access: Access<'a>,
        dims: &[usize],
    ) -> Result<Self> {
        Self::create_strided::<T>(ptr, len, stream, access, dims, &row_major_strides(dims))
    }

    fn create_strided<T: AclElement>(
        ptr: u64,
        len: usize,
        stream: &Stream,
        access: Access<'a>,
        dims: &[usize],
        strides: &[i64],
    ) -> Result<Self> {
        let storage = [len as i64];
        let nd = ascend_sys::ACL_FORMAT_ND;
        Self::create_with::<T>(ptr, len, stream, access, dims, strides, nd, &storage)
    }

    #[allow(clippy::too_many_arguments)]
    fn create_with<T: AclElement>(
        ptr: u64,
        len: usize,
        stream: &Stream,
        access: Access<'a>,
        dims: &[usize],
        strides: &[i64],
        format: ascend_sys::aclFormat,
        storage: &[i64],
    ) -> Result<Self> {
        let elements = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if elements != Some(len) {
            return Err(Error::invalid(
                format!("tensor dims {dims:?} over a buffer of {len} elements"),
                format!("dims whose product is {len}"),
            ));
        }
        let view: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        stream.device().inner.bind()?;
        let api = stream.device().inner.api;
        // SAFETY: the arrays outlive the call (the runtime copies them); `ptr` is the live buffer
        // borrowed for 'a, holding `len` elements of T, described as one row-major view.
        let raw = unsafe {
            c_call!(api, aclCreateTensor(
                view.as_ptr(),
                view.len() as u64,
                T::DTYPE,
                strides.as_ptr(),
                0,
                format,
                storage.as_ptr(),
                storage.len() as u64,
                ptr as *mut std::ffi::c_void,
            ), null_is ACLNN_ERR_PARAM_INVALID)
        }?;
        Ok(AclTensor {
            raw,
            stream: stream.clone(),
            access,
            _borrow: PhantomData,
        })
    }

    /// The raw handle, for an aclnn call.
    pub fn as_ptr(&self) -> *const aclTensor {
        self.raw
    }

    /// The raw handle, for an output argument the C prototype declares non-const.
    pub fn as_mut_ptr(&mut self) -> *mut aclTensor {
        self.raw
    }

    /// Gives the handle to a tensor list, which destroys it.
    fn into_raw(self) -> *mut aclTensor {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }
}

/// Elements of `T` in `bytes` bytes at `ptr`, or the error for a misfit.
fn elements_in_bytes<T>(ptr: u64, bytes: usize) -> Result<usize> {
    let size = std::mem::size_of::<T>();
    if size == 0 || bytes % size != 0 || ptr % size as u64 != 0 {
        return Err(Error::invalid(
            format!("{bytes} bytes at {ptr:#x} as {size}-byte elements"),
            "a whole number of elements, aligned to the element size",
        ));
    }
    Ok(bytes / size)
}

fn row_major_strides(dims: &[usize]) -> Vec<i64> {
    let mut strides = vec![1i64; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        strides[i] =
            strides[i + 1].saturating_mul(i64::try_from(dims[i + 1].max(1)).unwrap_or(i64::MAX));
    }
    strides
}

impl Drop for AclTensor<'_> {
    fn drop(&mut self) {
        let api = self.stream.device().inner.api;
        // SAFETY: the live tensor handle this value owns, destroyed once.
        if let Err(e) = unsafe { c_call!(api, aclDestroyTensor(self.raw)) } {
            record_drop_error(e);
        }
    }
}

/// An `aclTensorList`; it owns (and destroys) its tensors.
pub struct AclTensorList<'a> {
    raw: *mut aclTensorList,
    stream: Stream,
    accesses: Vec<Access<'a>>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a> AclTensorList<'a> {
    /// A list of `tensors`, all on the same device.
    pub fn new(tensors: Vec<AclTensor<'a>>) -> Result<Self> {
        let Some(first) = tensors.first() else {
            return Err(Error::invalid(
                "an empty tensor list",
                "at least one tensor",
            ));
        };
        let stream = first.stream.clone();
        if tensors.iter().any(|t| t.stream.device() != stream.device()) {
            return Err(Error::invalid(
                "a tensor list across devices",
                "tensors of one device",
            ));
        }
        let accesses: Vec<Access<'a>> = tensors.iter().map(|t| t.access).collect();
        let raws: Vec<*const aclTensor> = tensors
            .into_iter()
            .map(|t| t.into_raw().cast_const())
            .collect();
        let api = stream.device().inner.api;
        stream.device().inner.bind()?;
        // SAFETY: `raws` holds live tensor handles, whose ownership passes to the list.
        let created = unsafe {
            c_call!(api, aclCreateTensorList(raws.as_ptr(), raws.len() as u64), null_is ACLNN_ERR_PARAM_INVALID)
        };
        match created {
            Ok(raw) => Ok(AclTensorList {
                raw,
                stream,
                accesses,
                _borrow: PhantomData,
            }),
            Err(e) => {
                // The list was not made: the tensors are still ours to destroy.
                for (t, access) in raws.into_iter().zip(accesses) {
                    drop(AclTensor {
                        raw: t.cast_mut(),
                        stream: stream.clone(),
                        access,
                        _borrow: PhantomData,
                    });
                }
                Err(e)
            }
        }
    }

    /// The raw handle, for an aclnn call.
    pub fn as_ptr(&self) -> *const aclTensorList {
        self.raw
    }

    /// The raw handle, for output list parameters.
    pub fn as_mut_ptr(&mut self) -> *mut aclTensorList {
        self.raw
    }
}

impl Drop for AclTensorList<'_> {
    fn drop(&mut self) {
        let api = self.stream.device().inner.api;
        // SAFETY: the live list handle this value owns; it destroys its tensors too.
        if let Err(e) = unsafe { c_call!(api, aclDestroyTensorList(self.raw)) } {
            record_drop_error(e);
        }
    }
}

/// An `aclIntArray`, copied from host values at creation.
pub struct AclIntArray {
    raw: *mut ascend_sys::aclIntArray,
    stream: Stream,
}

impl AclIntArray {
    /// An array of `values`, for an operator queued on `stream`.
    pub fn new(stream: &Stream, values: &[i64]) -> Result<Self> {
        stream.device().inner.bind()?;
        let api = stream.device().inner.api;
        // SAFETY: `values` is a live slice of `len` elements; the runtime copies them.
        let raw = unsafe {
            c_call!(api, aclCreateIntArray(values.as_ptr(), values.len() as u64), null_is ACLNN_ERR_PARAM_INVALID)
        }?;
        Ok(AclIntArray {
            raw,
            stream: stream.clone(),
        })
    }

    /// The raw handle, for an aclnn call.
    pub fn as_ptr(&self) -> *const ascend_sys::aclIntArray {
        self.raw
    }
}

impl Drop for AclIntArray {
    fn drop(&mut self) {
        let api = self.stream.device().inner.api;
        // SAFETY: the live array handle this value owns, destroyed once.
        if let Err(e) = unsafe { c_call!(api, aclDestroyIntArray(self.raw)) } {
            record_drop_error(e);
        }
    }
}

impl<'a, T: TensorUses<'a>> TensorUses<'a> for Option<T> {
    fn uses_into(&self, out: &mut Vec<Access<'a>>) {
        if let Some(t) = self {
            t.uses_into(out);
        }
    }
}

impl<'a, T: TensorUses<'a>> TensorUses<'a> for &T {
    fn uses_into(&self, out: &mut Vec<Access<'a>>) {
        (**self).uses_into(out);
    }
}
