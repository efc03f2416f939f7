//! Element type conversion on the device with `aclnnCast`.

use super::{AclElement, AclTensor, Cast, Plan};
use crate::error::{Error, Result};
use crate::runtime::{DeviceSlice, DeviceSliceMut, Stream};

/// Converts every element of `src` into `dst`'s type, in stream order (`aclnnCast`: floats to
/// integers truncate toward zero and NaN becomes 0; values must fit the target type).
pub fn cast<S: AclElement, D: AclElement>(
    stream: &Stream,
    src: &impl DeviceSlice<S>,
    dst: &mut impl DeviceSliceMut<D>,
) -> Result<()> {
    let len = src.len();
    if dst.len() != len {
        return Err(Error::invalid(
            format!("casting {len} elements into {}", dst.len()),
            "a destination of the same length",
        ));
    }
    if len == 0 {
        return Ok(());
    }
    let input = AclTensor::new(src, &[len])?;
    let mut output = AclTensor::new_mut(dst, &[len])?;
    let out = output.as_mut_ptr();
    let plan = Plan::new::<Cast>(stream, &[&input, &output], |f, ws, exec| {
        // SAFETY: live tensor handles of equal shape, out-pointers from Plan::new.
        unsafe { f(input.as_ptr(), D::DTYPE, out, ws, exec) }
    })?;
    plan.launch()
}
