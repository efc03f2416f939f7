//! aclnnCast: `out` = `self` converted to `out`'s dtype, element by element (hicann ops-math
//! `math/cast/docs/aclnnCast.md`). Floating point to integer truncates toward zero and turns
//! NaN into 0, as documented; out-of-range values saturate (Rust's `as`). Floats round once to
//! the output type. The argument rules are in `crate::rules` (`cast.*`).

use std::sync::Arc;

use super::Planned;
use crate::aclnn::data::Bound;
use crate::aclnn::objects::TensorDesc;
use crate::error::SimResult;

/// Plans the conversion of `input` into `out` (same shape, rules checked).
pub(crate) fn plan(input: TensorDesc, out: TensorDesc) -> SimResult<Planned> {
    let run = Arc::new(|inputs: &[TensorDesc], outputs: &[TensorDesc]| {
        let src = Bound::new("self", &inputs[0])?;
        let dst = Bound::new("out", &outputs[0])?;
        if is_float(inputs[0].dtype) || is_float(outputs[0].dtype) {
            // f64 holds every value of the simulated types except INT64 beyond 2^53, which
            // only the integer path below carries.
            dst.write_f64(&src.read_f64())
        } else {
            dst.write_i64(&src.read_i64())
        }
    });
    Ok(Planned {
        workspace: 0,
        inputs: vec![input],
        outputs: vec![out],
        run,
    })
}

fn is_float(dtype: ascend_sys::aclDataType) -> bool {
    matches!(
        dtype,
        ascend_sys::ACL_FLOAT
            | ascend_sys::ACL_FLOAT16
            | ascend_sys::ACL_BF16
            | ascend_sys::ACL_DOUBLE
    )
}
