//! Copies between `ndarray` arrays and device buffers.

use bytemuck::{AnyBitPattern, NoUninit};
use ndarray::{Array, ArrayBase, Data, Dimension, IntoDimension};

use super::device_buffer::DeviceBuffer;
use super::stream::Stream;
use crate::error::{Error, Result};

impl Stream {
    /// Copies an array, in row-major (standard) order, into a new device buffer.
    ///
    /// ```
    /// use ascend_npu::{select_backend, Backend, Device};
    /// select_backend(Backend::Sim)?;
    /// let stream = Device::open(0)?.new_stream()?;
    /// let a = ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]);
    /// let on_device = stream.upload_array(&a.t())?; // any layout: uploaded as row-major
    /// assert_eq!(on_device.to_array((2, 2))?, a.t());
    /// # Ok::<(), ascend_npu::Error>(())
    /// ```
    pub fn upload_array<T, S, D>(&self, array: &ArrayBase<S, D>) -> Result<DeviceBuffer<T>>
    where
        T: NoUninit,
        S: Data<Elem = T>,
        D: Dimension,
    {
        let standard = array.as_standard_layout();
        let slice = standard.as_slice().ok_or_else(|| {
            Error::invalid(
                "an array ndarray could not lay out contiguously",
                "a standard-layout array",
            )
        })?;
        self.upload(slice)
    }
}

impl<T: AnyBitPattern> DeviceBuffer<T> {
    /// Copies the buffer into a row-major array of `shape`, whose element count must equal the
    /// buffer's length.
    pub fn to_array<Sh: IntoDimension>(&self, shape: Sh) -> Result<Array<T, Sh::Dim>> {
        let shape = shape.into_dimension();
        let elements = shape.size_checked().ok_or_else(|| {
            Error::invalid(
                format!("shape {:?} overflows usize", shape.slice()),
                "a shape that fits in memory",
            )
        })?;
        let len = super::device_buffer::DeviceSlice::len(self);
        if elements != len {
            return Err(Error::invalid(
                format!(
                    "shape {:?} ({elements} elements) for a buffer of {len}",
                    shape.slice()
                ),
                format!("a shape of {len} elements"),
            ));
        }
        let data = self.to_vec()?;
        Array::from_shape_vec(shape, data)
            .map_err(|e| Error::invalid(e.to_string(), "a matching shape"))
    }
}
