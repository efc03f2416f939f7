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

/// Plans the conversion of `input` into `out` (same shape, rules checked).
pub(crate) fn plan(input: TensorDesc, out: TensorDesc) -> SimResult<Planned> {
    let run =
        Arc::new(|inputs: &[TensorView], outputs: &[TensorView]| cast(&inputs[0], &outputs[0]));
    Ok(Planned::new(
        0,
        vec![("self", input)],
        vec![("out", out)],
        run,
    ))
}

/// Converts `src` into `dst` (same element count), element by element in row-major order.
pub(crate) fn cast(src: &TensorView, dst: &TensorView) -> SimResult<()> {
    if is_float(dst.dtype()) {
        // f64 holds every value of the simulated types except INT64 beyond 2^53, which only
        // the integer path below carries; floats round once to the output.
        dst.write_f64(&src.read_f64())
    } else if is_float(src.dtype()) {
        // Truncation toward zero, NaN to 0 (documented), saturation at the integer type's
        // range (the simulator's choice; not documented).
        let (lo, hi) = int_range(dst.dtype());
        let values: Vec<i64> = src
            .read_f64()
            .iter()
            .map(|&v| (v as i64).clamp(lo, hi))
            .collect();
        dst.write_i64(&values)
    } else {
        dst.write_i64(&src.read_i64())
    }
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

#[cfg(test)]
mod tests {
    use half::bf16;

    use super::*;

    #[test]
    fn floats_truncate_saturate_and_round_once() {
        let mut src = vec![2.9f32, -2.9, 300.0, -300.0, f32::NAN, 0.0];
        let mut dst = vec![0i8; 6];
        cast(
            &TensorView::host(&mut src, &[2, 3]).unwrap(),
            &TensorView::host(&mut dst, &[2, 3]).unwrap(),
        )
        .unwrap();
        assert_eq!(dst, [2, -2, 127, -128, 0, 0]);
        // f32 to bf16 rounds once to nearest even, through a transposed (strided) view.
        let mut src = vec![1.0 + 2f32.powi(-8), 3.0, 1.0 + 3.0 * 2f32.powi(-8), 5.0];
        let mut dst = vec![bf16::ZERO; 4];
        cast(
            &TensorView::host_strided(&mut src, &[2, 2], &[1, 2], 0).unwrap(),
            &TensorView::host(&mut dst, &[2, 2]).unwrap(),
        )
        .unwrap();
        let got: Vec<f32> = dst.iter().map(|v| v.to_f32()).collect();
        assert_eq!(got, [1.0, 1.0 + 2f32.powi(-6), 3.0, 5.0]);
    }

    #[test]
    fn integers_narrow_by_wrapping() {
        let mut src = vec![300i32, -1, 127];
        let mut dst = vec![0u8; 3];
        cast(
            &TensorView::host(&mut src, &[3]).unwrap(),
            &TensorView::host(&mut dst, &[3]).unwrap(),
        )
        .unwrap();
        assert_eq!(dst, [44, 255, 127]);
    }
}
