//! aclnnCast: `out` = `self` converted to `out`'s dtype, element by element (hicann ops-math
//! `math/cast/docs/aclnnCast.md`). Floating point to integer truncates toward zero and turns
//! NaN into 0, as documented; out-of-range values saturate (the simulator's choice). Floats
//! round once to the output type; integers narrow by wrapping. The argument rules are in
//! `crate::rules` (`cast.*`).

use std::sync::Arc;

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;
use crate::runtime::machine::Machine;

/// Plans the conversion of `input` into `out` (same shape, rules checked).
pub(crate) fn plan(input: TensorDesc, out: TensorDesc) -> SimResult<Planned> {
    let run = Arc::new(
        |machine: &Machine, inputs: &[TensorDesc], outputs: &[TensorDesc]| {
            let src = TensorView::bind(machine, "self", &inputs[0])?;
            let dst = TensorView::bind(machine, "out", &outputs[0])?;
            if is_float(outputs[0].dtype) {
                // f64 holds every value of the simulated types except INT64 beyond 2^53, which
                // only the integer path below carries; floats round once to the output.
                dst.write_f64(&src.read_f64())
            } else if is_float(inputs[0].dtype) {
                // Truncation toward zero, NaN to 0 (documented), saturation at the integer type's
                // range (the simulator's choice; not documented).
                let (lo, hi) = int_range(outputs[0].dtype);
                let values: Vec<i64> = src
                    .read_f64()
                    .iter()
                    .map(|&v| (v as i64).clamp(lo, hi))
                    .collect();
                dst.write_i64(&values)
            } else {
                dst.write_i64(&src.read_i64())
            }
        },
    );
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

/// The range of an integer (or bool) dtype.
fn int_range(dtype: ascend_sys::aclDataType) -> (i64, i64) {
    match dtype {
        ascend_sys::ACL_INT8 => (i8::MIN.into(), i8::MAX.into()),
        ascend_sys::ACL_UINT8 => (0, u8::MAX.into()),
        ascend_sys::ACL_BOOL => (0, 1),
        ascend_sys::ACL_INT16 => (i16::MIN.into(), i16::MAX.into()),
        ascend_sys::ACL_INT32 => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN, i64::MAX),
    }
}
