//! Typed tensor views: dims, strides and offset (in elements) over one storage, with a dtype.
//!
//! One type serves both device memory, mapped for one operator run ([`TensorView::bind`]), and
//! host slices ([`TensorView::host`], for unit tests of the operators). Reads and writes take a
//! fast path when the view is dense (row-major, or any permutation of a dense block), converting
//! whole slices at once, and walk the strides otherwise.

use std::marker::PhantomData;

use ascend_sys::{
    ACL_BF16, ACL_BOOL, ACL_DOUBLE, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT16, ACL_INT32,
    ACL_INT64, ACL_UINT8, aclDataType,
};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::objects::{TensorDesc, dtype_name, element_size};
use crate::base::error::{SimError, SimResult};
use crate::runtime::counters::Counters;
use crate::runtime::machine::Machine;
use crate::runtime::memory::Mapped;

/// A Rust type stored in tensors of one aclDataType.
pub(crate) trait Element: Copy + 'static {
    const DTYPE: aclDataType;
}

macro_rules! element {
    ($($t:ty => $d:expr),* $(,)?) => { $(impl Element for $t { const DTYPE: aclDataType = $d; })* };
}
element!(f32 => ACL_FLOAT, f16 => ACL_FLOAT16, bf16 => ACL_BF16, f64 => ACL_DOUBLE,
    i8 => ACL_INT8, i16 => ACL_INT16, i32 => ACL_INT32, i64 => ACL_INT64, u8 => ACL_UINT8);

/// A view of a tensor's elements for one operator run.
pub(crate) struct TensorView<'a> {
    base: *mut u8,
    /// Storage bytes behind `base`; every element of the view lies inside.
    storage: usize,
    dtype: aclDataType,
    size: usize,
    dims: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
    /// Whether the view is dense row-major: element `i` is then at `offset + i`, the fast path.
    row_major: bool,
    /// Device traffic counters, counting one pass per read or write (none for host views).
    counters: Option<&'a Counters>,
    /// Keeps device storage alive while the view lives.
    _mapped: Option<Mapped>,
    _storage: PhantomData<&'a mut [u8]>,
}

impl<'a> TensorView<'a> {
    /// Maps the tensor's whole storage on `machine`, checking it lies in one live allocation;
    /// the view's passes and MACs are counted in `counters`.
    pub(crate) fn bind(
        machine: &'a Machine,
        counters: &'a Counters,
        what: &str,
        desc: &TensorDesc,
    ) -> SimResult<Self> {
        let size = element_size(desc.dtype).unwrap_or(1);
        let mapped = if desc.numel() == 0 {
            None
        } else {
            Some(
                machine
                    .map_device(desc.data, desc.storage_bytes())
                    .map_err(|e| SimError::new(e.code, format!("{what}: {}", e.message)))?,
            )
        };
        let dims: Vec<usize> = desc.dims.iter().map(|&d| d as usize).collect();
        let strides: Vec<usize> = desc.strides.iter().map(|&s| s as usize).collect();
        Ok(TensorView {
            base: mapped.as_ref().map_or(std::ptr::null_mut(), Mapped::ptr),
            storage: if mapped.is_some() {
                desc.storage_bytes()
            } else {
                0
            },
            dtype: desc.dtype,
            size,
            row_major: Self::dense_row_major(&dims, &strides),
            dims,
            strides,
            offset: desc.offset as usize,
            counters: Some(counters),
            _mapped: mapped,
            _storage: PhantomData,
        })
    }

    /// A dense row-major view of `data` with `dims`.
    #[cfg(test)]
    pub(crate) fn host<T: Element>(data: &'a mut [T], dims: &[usize]) -> SimResult<Self> {
        let mut strides = vec![0; dims.len()];
        let mut step = 1;
        for (s, &d) in strides.iter_mut().zip(dims).rev() {
            *s = step;
            step *= d;
        }
        Self::host_strided(data, dims, &strides, 0)
    }

    /// A view of `data` with explicit strides and offset (elements), checked to stay inside.
    #[cfg(test)]
    pub(crate) fn host_strided<T: Element>(
        data: &'a mut [T],
        dims: &[usize],
        strides: &[usize],
        offset: usize,
    ) -> SimResult<Self> {
        let numel: usize = dims.iter().product();
        let last = offset
            + dims
                .iter()
                .zip(strides)
                .map(|(&d, &s)| d.saturating_sub(1) * s)
                .sum::<usize>();
        if dims.len() != strides.len() || (numel > 0 && last >= data.len()) {
            return Err(SimError::param(format!(
                "view dims {dims:?}, strides {strides:?}, offset {offset} over {} elements; \
                 expected one stride per dim and every element inside",
                data.len()
            )));
        }
        Ok(TensorView {
            base: data.as_mut_ptr().cast(),
            storage: std::mem::size_of_val(data),
            dtype: T::DTYPE,
            size: std::mem::size_of::<T>(),
            dims: dims.to_vec(),
            strides: strides.to_vec(),
            offset,
            row_major: Self::dense_row_major(dims, strides),
            counters: None,
            _mapped: None,
            _storage: PhantomData,
        })
    }

    pub(crate) fn dims(&self) -> &[usize] {
        &self.dims
    }

    pub(crate) fn dtype(&self) -> aclDataType {
        self.dtype
    }

    pub(crate) fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// The sub-view at `index` along the first dim (one fewer dim).
    pub(crate) fn select(&self, index: usize) -> TensorView<'_> {
        debug_assert!(index < self.dims[0]);
        TensorView {
            base: self.base,
            storage: self.storage,
            dtype: self.dtype,
            size: self.size,
            dims: self.dims[1..].to_vec(),
            strides: self.strides[1..].to_vec(),
            offset: self.offset + index * self.strides[0],
            row_major: Self::dense_row_major(&self.dims[1..], &self.strides[1..]),
            // Reads of the sub-tensor count as its own bytes: an operator that touches only
            // some experts' weights is counted for those (one pass per read, as for any view).
            counters: self.counters,
            _mapped: None,
            _storage: PhantomData,
        }
    }

    /// If the view's elements are exactly a dense block of storage (in some order of the
    /// dims), the block as a slice of `T`, in storage order.
    fn dense_block<T: Element>(&self) -> Option<&[T]> {
        if T::DTYPE != self.dtype || self.base.is_null() {
            return None;
        }
        let numel = self.numel();
        let mut order: Vec<(usize, usize)> = self
            .dims
            .iter()
            .zip(&self.strides)
            .filter(|&(&d, _)| d != 1)
            .map(|(&d, &s)| (s, d))
            .collect();
        order.sort_unstable();
        let mut step = 1;
        for (s, d) in order {
            if s != step {
                return None;
            }
            step *= d;
        }
        let start = self.base.wrapping_add(self.offset * self.size);
        if numel == 0
            || start.align_offset(std::mem::align_of::<T>()) != 0
            || (self.offset + numel) * self.size > self.storage
        {
            return None;
        }
        // SAFETY: the block [offset, offset + numel) lies inside the storage (checked above, and
        // by the view's construction), which the view keeps alive or borrows for 'a; `start` is
        // aligned for T. Operators read their inputs and write outputs only after the reads
        // (results are collected first), and stream order keeps other tasks away, so nothing
        // writes these elements while the slice lives.
        Some(unsafe { std::slice::from_raw_parts(start.cast::<T>(), numel) })
    }

    /// Whether `dims` with `strides` is dense row-major (dims of size 1 may have any stride).
    fn dense_row_major(dims: &[usize], strides: &[usize]) -> bool {
        let mut step = 1;
        for (&d, &s) in dims.iter().zip(strides).rev() {
            if d != 1 && s != step {
                return false;
            }
            step *= d;
        }
        true
    }

    /// Byte offset of the element at row-major view position `linear` (the strided path).
    fn byte_offset(&self, mut linear: usize) -> usize {
        let mut element = self.offset;
        for (&d, &s) in self.dims.iter().zip(&self.strides).rev() {
            element += (linear % d) * s;
            linear /= d;
        }
        element * self.size
    }

    fn ptr(&self, linear: usize) -> *mut u8 {
        if self.row_major {
            self.base.wrapping_add((self.offset + linear) * self.size)
        } else {
            self.base.wrapping_add(self.byte_offset(linear))
        }
    }

    /// Counts one full pass over the view in the device's traffic counters, for cost models.
    pub(crate) fn count_pass(&self, read: bool) {
        if let Some(c) = self.counters {
            let bytes = (self.numel() * self.size) as u64;
            if read {
                c.aclnn_io(bytes, 0);
            } else {
                c.aclnn_io(0, bytes);
            }
        }
    }

    /// Reports `macs` multiply-accumulates the operator must do at least (rows × N × K of a
    /// GEMM) to the device's counters, for cost models; none for host views.
    pub(crate) fn count_macs(&self, macs: u64) {
        if let Some(c) = self.counters {
            c.aclnn_macs(macs);
        }
    }

    /// Every element in row-major view order, as f32 (exact for fp16/bf16/f32 tensors).
    pub(crate) fn read_f32(&self) -> Vec<f32> {
        self.count_pass(true);
        let mut v = Vec::new();
        if self.row_major && self.f32_block_into(&mut v) {
            return v;
        }
        (0..self.numel()).map(|i| self.get_f64(i) as f32).collect()
    }

    /// The elements into `buf` as f32, for a GEMM operand, which takes strides as given: a
    /// dense view comes in storage order with its own strides (a transposed weight keeps its
    /// layout), any other in row-major order with row-major strides. Counts one pass. `buf` is
    /// reused across calls, so converting expert after expert allocates once.
    pub(crate) fn read_f32_into(&self, buf: &mut Vec<f32>) -> Vec<isize> {
        self.count_pass(true);
        if self.f32_block_into(buf) {
            return self.strides.iter().map(|&s| s as isize).collect();
        }
        buf.clear();
        buf.extend((0..self.numel()).map(|i| self.get_f64(i) as f32));
        let mut strides = vec![0isize; self.dims.len()];
        let mut step = 1isize;
        for (s, &d) in strides.iter_mut().zip(&self.dims).rev() {
            *s = step;
            step *= d as isize;
        }
        strides
    }

    /// A dense block converted into `buf` as f32 in storage order, for floating-point dtypes;
    /// false (and `buf` untouched) otherwise.
    fn f32_block_into(&self, buf: &mut Vec<f32>) -> bool {
        if let Some(s) = self.dense_block::<f32>() {
            buf.clear();
            buf.extend_from_slice(s);
        } else if let Some(s) = self.dense_block::<bf16>() {
            // bf16 is the upper half of an f32: a shift, exact, which the compiler vectorises.
            buf.clear();
            buf.extend(
                s.iter()
                    .map(|v| f32::from_bits(u32::from(v.to_bits()) << 16)),
            );
        } else if let Some(s) = self.dense_block::<f16>() {
            buf.clear();
            buf.resize(s.len(), 0.0);
            s.convert_to_f32_slice(buf);
        } else {
            return false;
        }
        true
    }

    /// Every element in row-major view order, as f64.
    pub(crate) fn read_f64(&self) -> Vec<f64> {
        self.count_pass(true);
        (0..self.numel()).map(|i| self.get_f64(i)).collect()
    }

    /// Every element in row-major view order, as i64 (integer and bool tensors).
    pub(crate) fn read_i64(&self) -> Vec<i64> {
        self.count_pass(true);
        (0..self.numel()).map(|i| self.get_i64(i)).collect()
    }

    fn get_f64(&self, i: usize) -> f64 {
        let p = self.ptr(i);
        // SAFETY: `p` is inside the storage: the view was checked against the storage size at
        // creation, and the storage range against the live allocation when mapped. Unaligned
        // reads because sub-views need not be aligned to the element size.
        unsafe {
            match self.dtype {
                ACL_FLOAT => f64::from(p.cast::<f32>().read_unaligned()),
                ACL_FLOAT16 => f16::from_bits(p.cast::<u16>().read_unaligned()).to_f64(),
                ACL_BF16 => bf16::from_bits(p.cast::<u16>().read_unaligned()).to_f64(),
                ACL_DOUBLE => p.cast::<f64>().read_unaligned(),
                _ => self.get_i64(i) as f64,
            }
        }
    }

    fn get_i64(&self, i: usize) -> i64 {
        let p = self.ptr(i);
        // SAFETY: as in `get_f64`.
        unsafe {
            match self.dtype {
                ACL_INT32 => i64::from(p.cast::<i32>().read_unaligned()),
                ACL_INT64 => p.cast::<i64>().read_unaligned(),
                ACL_INT16 => i64::from(p.cast::<i16>().read_unaligned()),
                ACL_INT8 => i64::from(p.cast::<i8>().read_unaligned()),
                ACL_UINT8 | ACL_BOOL => i64::from(p.read()),
                _ => self.get_f64(i) as i64,
            }
        }
    }

    /// Writes f32 `values` (row-major view order), each rounded once to the tensor's type.
    pub(crate) fn write_f32(&self, values: &[f32]) -> SimResult<()> {
        self.check_len(values.len())?;
        if self.row_major && !values.is_empty() {
            let start = self.base.wrapping_add(self.offset * self.size);
            let fits = (self.offset + values.len()) * self.size <= self.storage;
            let aligned = |align: usize| start.align_offset(align) == 0;
            // SAFETY (each arm): the dense row-major block [offset, offset + len) lies inside
            // the storage (`fits`), `start` is aligned for the element type, and no other
            // reference to these elements lives during the write (results are written after
            // the inputs were read).
            match self.dtype {
                ACL_FLOAT if fits && aligned(4) => {
                    self.count_pass(false);
                    let out = unsafe { std::slice::from_raw_parts_mut(start.cast(), values.len()) };
                    out.copy_from_slice(values);
                    return Ok(());
                }
                ACL_BF16 if fits && aligned(2) => {
                    self.count_pass(false);
                    let out: &mut [bf16] =
                        unsafe { std::slice::from_raw_parts_mut(start.cast(), values.len()) };
                    out.convert_from_f32_slice(values);
                    return Ok(());
                }
                ACL_FLOAT16 if fits && aligned(2) => {
                    self.count_pass(false);
                    let out: &mut [f16] =
                        unsafe { std::slice::from_raw_parts_mut(start.cast(), values.len()) };
                    out.convert_from_f32_slice(values);
                    return Ok(());
                }
                _ => {}
            }
        }
        // An f32 is exact in f64, so rounding from there is the same single rounding.
        let wide: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        self.write_f64(&wide)
    }

    /// Writes `values` (row-major view order), each rounded once to the tensor's type.
    pub(crate) fn write_f64(&self, values: &[f64]) -> SimResult<()> {
        self.check_len(values.len())?;
        self.count_pass(false);
        for (i, &v) in values.iter().enumerate() {
            let p = self.ptr(i);
            // SAFETY: as in `get_f64`; the operator owns its outputs for the run.
            unsafe {
                match self.dtype {
                    ACL_FLOAT => p.cast::<f32>().write_unaligned(v as f32),
                    ACL_FLOAT16 => p.cast::<u16>().write_unaligned(f16::from_f64(v).to_bits()),
                    ACL_BF16 => p.cast::<u16>().write_unaligned(bf16::from_f64(v).to_bits()),
                    ACL_DOUBLE => p.cast::<f64>().write_unaligned(v),
                    // Float to integer truncates toward zero, saturates, and turns NaN into 0.
                    _ => self.write_i64_at(i, v as i64)?,
                }
            }
        }
        Ok(())
    }

    /// Writes integer `values` (row-major view order).
    pub(crate) fn write_i64(&self, values: &[i64]) -> SimResult<()> {
        self.check_len(values.len())?;
        self.count_pass(false);
        for (i, &v) in values.iter().enumerate() {
            self.write_i64_at(i, v)?;
        }
        Ok(())
    }

    fn write_i64_at(&self, i: usize, v: i64) -> SimResult<()> {
        let p = self.ptr(i);
        // SAFETY: as in `write_f64`.
        unsafe {
            match self.dtype {
                ACL_INT32 => p.cast::<i32>().write_unaligned(v as i32),
                ACL_INT64 => p.cast::<i64>().write_unaligned(v),
                ACL_INT16 => p.cast::<i16>().write_unaligned(v as i16),
                ACL_INT8 => p.cast::<i8>().write_unaligned(v as i8),
                ACL_UINT8 | ACL_BOOL => p.write(v as u8),
                other => {
                    return Err(SimError::param(format!(
                        "cannot store integers into a {} tensor",
                        dtype_name(other)
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_len(&self, len: usize) -> SimResult<()> {
        if len == self.numel() {
            Ok(())
        } else {
            Err(SimError::param(format!(
                "internal: {len} values for a tensor of {} elements",
                self.numel()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_strided_paths_agree() {
        // [2, 3] stored row-major, and the same values stored column-major as a transposed view.
        let mut rows: Vec<bf16> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .map(bf16::from_f32)
            .to_vec();
        let mut cols: Vec<bf16> = [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]
            .map(bf16::from_f32)
            .to_vec();
        let a = TensorView::host(&mut rows, &[2, 3]).unwrap();
        let b = TensorView::host_strided(&mut cols, &[2, 3], &[1, 2], 0).unwrap();
        let want = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(a.read_f32(), want);
        assert_eq!(b.read_f32(), want);
        assert_eq!(
            a.read_f64(),
            want.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
        );
        // The transposed view is dense: its storage order comes back with its strides.
        let mut buf = Vec::new();
        assert_eq!(b.read_f32_into(&mut buf), [1, 2]);
        assert_eq!(buf, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        // A sliced view is not dense: row-major order and row-major strides.
        let c = TensorView::host_strided(&mut rows, &[2, 2], &[3, 1], 1).unwrap();
        assert_eq!(c.read_f32_into(&mut buf), [2, 1]);
        assert_eq!(buf, [2.0, 3.0, 5.0, 6.0]);
    }

    #[test]
    fn writes_round_once_on_both_paths() {
        // 1 + 2^-8 + 2^-20 rounds up to 1 + 2^-7 in bf16 (above the halfway point); 1 + 2^-8
        // exactly is a tie and rounds to even (1.0).
        let values = [1.0 + 2f32.powi(-8) + 2f32.powi(-20), 1.0 + 2f32.powi(-8)];
        let want = [1.0 + 2f32.powi(-7), 1.0];
        let mut dense = vec![bf16::ZERO; 2];
        TensorView::host(&mut dense, &[2])
            .unwrap()
            .write_f32(&values)
            .unwrap();
        assert_eq!(dense.iter().map(|v| v.to_f32()).collect::<Vec<_>>(), want);
        let mut spaced = vec![bf16::ZERO; 4];
        TensorView::host_strided(&mut spaced, &[2], &[2], 1)
            .unwrap()
            .write_f32(&values)
            .unwrap();
        assert_eq!(spaced[1].to_f32(), want[0]);
        assert_eq!(spaced[3].to_f32(), want[1]);
        assert_eq!(spaced[0], bf16::ZERO);
        assert_eq!(spaced[2], bf16::ZERO);
    }

    #[test]
    fn host_views_stay_inside_their_slice() {
        let mut data = vec![0f32; 6];
        assert!(TensorView::host_strided(&mut data, &[2, 3], &[3, 1], 1).is_err());
        assert!(TensorView::host_strided(&mut data, &[2, 3], &[3], 0).is_err());
        assert!(TensorView::host_strided(&mut data, &[0, 3], &[3, 1], 6).is_ok());
        let v = TensorView::host(&mut data, &[2, 3]).unwrap();
        assert!(v.write_f32(&[1.0; 5]).is_err());
    }
}
