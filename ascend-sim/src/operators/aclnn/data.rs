//! Reading and writing tensor elements in simulated device memory, through the tensor's view.

use ascend_sys::{
    ACL_BF16, ACL_BOOL, ACL_DOUBLE, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT16, ACL_INT32,
    ACL_INT64, ACL_UINT8,
};
use half::{bf16, f16};

use super::objects::{TensorDesc, dtype_name, element_size};
use crate::base::error::{SimError, SimResult};
use crate::runtime::memory::{Mapped, map_device};

/// A tensor's storage, mapped for the duration of one operator run.
pub(crate) struct Bound<'a> {
    desc: &'a TensorDesc,
    mapped: Option<Mapped>,
    size: usize,
}

impl<'a> Bound<'a> {
    /// Maps the tensor's whole storage, checking it lies in one live allocation.
    pub(crate) fn new(what: &str, desc: &'a TensorDesc) -> SimResult<Bound<'a>> {
        let size = element_size(desc.dtype).unwrap_or(1);
        let mapped = if desc.numel() == 0 {
            None
        } else {
            Some(
                map_device(desc.data, desc.storage_bytes())
                    .map_err(|e| SimError::new(e.code, format!("{what}: {}", e.message)))?,
            )
        };
        Ok(Bound { desc, mapped, size })
    }

    /// Byte offset of the element at row-major view position `linear`.
    fn byte_offset(&self, mut linear: usize) -> usize {
        let mut element = self.desc.offset as usize;
        for (&d, &s) in self.desc.dims.iter().zip(&self.desc.strides).rev() {
            let d = d as usize;
            element += (linear % d) * s as usize;
            linear /= d;
        }
        element * self.size
    }

    fn ptr(&self, linear: usize) -> *mut u8 {
        let base = self
            .mapped
            .as_ref()
            .map_or(std::ptr::null_mut(), Mapped::ptr);
        base.wrapping_add(self.byte_offset(linear))
    }

    /// Every element in row-major view order, as f64.
    pub(crate) fn read_f64(&self) -> Vec<f64> {
        self.count(true);
        (0..self.desc.numel()).map(|i| self.get_f64(i)).collect()
    }

    /// Every element in row-major view order, as i64 (integer and bool tensors).
    pub(crate) fn read_i64(&self) -> Vec<i64> {
        self.count(true);
        (0..self.desc.numel()).map(|i| self.get_i64(i)).collect()
    }

    /// Counts one full pass over the view in the device's traffic counters, for cost models.
    fn count(&self, read: bool) {
        let bytes = (self.desc.numel() * self.size) as u64;
        let device = crate::runtime::memory::device_of(self.desc.data);
        if let Some(d) = crate::ffi::state::sim()
            .ok()
            .and_then(|s| s.devices.get(device))
        {
            if read {
                d.counters.aclnn_io(bytes, 0);
            } else {
                d.counters.aclnn_io(0, bytes);
            }
        }
    }

    fn get_f64(&self, i: usize) -> f64 {
        let p = self.ptr(i);
        // SAFETY: `p` is inside the mapped storage: the view was checked against the storage
        // size at creation, and the storage range against the live allocation when mapped.
        // Unaligned reads because sub-views need not be aligned to the element size.
        unsafe {
            match self.desc.dtype {
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
            match self.desc.dtype {
                ACL_INT32 => i64::from(p.cast::<i32>().read_unaligned()),
                ACL_INT64 => p.cast::<i64>().read_unaligned(),
                ACL_INT16 => i64::from(p.cast::<i16>().read_unaligned()),
                ACL_INT8 => i64::from(p.cast::<i8>().read_unaligned()),
                ACL_UINT8 | ACL_BOOL => i64::from(p.read()),
                _ => self.get_f64(i) as i64,
            }
        }
    }

    /// Writes `values` (row-major view order), each rounded once to the tensor's type.
    pub(crate) fn write_f64(&self, values: &[f64]) -> SimResult<()> {
        self.check_len(values.len())?;
        self.count(false);
        for (i, &v) in values.iter().enumerate() {
            let p = self.ptr(i);
            // SAFETY: as in `get_f64`; the operator owns its outputs for the run.
            unsafe {
                match self.desc.dtype {
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
        self.count(false);
        for (i, &v) in values.iter().enumerate() {
            self.write_i64_at(i, v)?;
        }
        Ok(())
    }

    fn write_i64_at(&self, i: usize, v: i64) -> SimResult<()> {
        let p = self.ptr(i);
        // SAFETY: as in `write_f64`.
        unsafe {
            match self.desc.dtype {
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
        if len == self.desc.numel() {
            Ok(())
        } else {
            Err(SimError::param(format!(
                "internal: {len} values for a tensor of {} elements",
                self.desc.numel()
            )))
        }
    }
}
