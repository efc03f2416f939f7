//! Whole-slice conversions between FP8 and the wide float types.
//!
//! Encoding runs the branch-free scalar core of each element (see `convert.rs`), which the
//! compiler can vectorise; decoding is one 256-entry table lookup per element.

use std::fmt;

use half::{bf16, f16};

use super::format::{Fp8, OverflowPolicy};

/// The source and destination slices of a conversion have different lengths.
///
/// ```
/// use ascend_npu::fp8::{F8E4M3, LengthMismatch, OverflowPolicy, encode_slice};
/// let mut dst = [F8E4M3::ZERO; 2];
/// let err = encode_slice(&[1.0f32; 3], &mut dst, OverflowPolicy::Saturate).unwrap_err();
/// assert_eq!(err, LengthMismatch { src: 3, dst: 2 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LengthMismatch {
    /// Length of the source slice.
    pub src: usize,
    /// Length of the destination slice.
    pub dst: usize,
}

impl fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FP8 conversion: source has {} elements but destination has {}",
            self.src, self.dst
        )
    }
}

impl std::error::Error for LengthMismatch {}

mod sealed {
    pub trait Sealed {}
}

/// A float type that FP8 converts from and to: `f32`, `f64`, [`half::f16`] and
/// [`half::bf16`] (sealed).
///
/// Encoding from any of them is a single correct rounding of the source value; decoding to
/// any of them is exact.
pub trait WideFloat: Copy + sealed::Sealed {
    /// Rounds `self` to the nearest `F` code, ties to even.
    fn to_fp8<F: Fp8>(self, policy: OverflowPolicy) -> F;
    /// The exact value of `x`.
    fn from_fp8<F: Fp8>(x: F) -> Self;
}

impl sealed::Sealed for f32 {}
impl WideFloat for f32 {
    #[inline(always)]
    fn to_fp8<F: Fp8>(self, policy: OverflowPolicy) -> F {
        F::encode_f32(self, policy)
    }
    #[inline(always)]
    fn from_fp8<F: Fp8>(x: F) -> Self {
        x.decode_f32()
    }
}

impl sealed::Sealed for f64 {}
impl WideFloat for f64 {
    #[inline(always)]
    fn to_fp8<F: Fp8>(self, policy: OverflowPolicy) -> F {
        F::encode_f64(self, policy)
    }
    #[inline(always)]
    fn from_fp8<F: Fp8>(x: F) -> Self {
        f64::from(x.decode_f32())
    }
}

impl sealed::Sealed for f16 {}
impl WideFloat for f16 {
    #[inline(always)]
    fn to_fp8<F: Fp8>(self, policy: OverflowPolicy) -> F {
        // f16 -> f32 is exact, so this rounds once from the f16 value.
        F::encode_f32(self.to_f32(), policy)
    }
    #[inline(always)]
    fn from_fp8<F: Fp8>(x: F) -> Self {
        x.decode_f16()
    }
}

impl sealed::Sealed for bf16 {}
impl WideFloat for bf16 {
    #[inline(always)]
    fn to_fp8<F: Fp8>(self, policy: OverflowPolicy) -> F {
        // bf16 -> f32 is a 16-bit shift, exact.
        F::encode_f32(f32::from_bits(u32::from(self.to_bits()) << 16), policy)
    }
    #[inline(always)]
    fn from_fp8<F: Fp8>(x: F) -> Self {
        x.decode_bf16()
    }
}

/// Encodes `src` into `dst` element by element (round to nearest, ties to even, `policy` on
/// overflow). The source may be `f32`, `f64`, `f16` or `bf16`; the destination either FP8
/// type.
///
/// # Errors
/// [`LengthMismatch`] if the slices differ in length; `dst` is then left untouched.
///
/// ```
/// use ascend_npu::fp8::{F8E4M3, OverflowPolicy, encode_slice};
/// let src = [0.0f32, 1.0625, -500.0, f32::NAN];
/// let mut dst = [F8E4M3::ZERO; 4];
/// encode_slice(&src, &mut dst, OverflowPolicy::Saturate)?;
/// assert_eq!(dst[1].to_f32(), 1.0);
/// assert_eq!(dst[2].to_f32(), -448.0);
/// assert!(dst[3].is_nan());
/// # Ok::<(), ascend_npu::fp8::LengthMismatch>(())
/// ```
pub fn encode_slice<W: WideFloat, F: Fp8>(
    src: &[W],
    dst: &mut [F],
    policy: OverflowPolicy,
) -> Result<(), LengthMismatch> {
    check(src.len(), dst.len())?;
    // Monomorphise the policy so the inner loop has no policy branch.
    match policy {
        OverflowPolicy::Saturate => encode_loop(src, dst, OverflowPolicy::Saturate),
        OverflowPolicy::NonFinite => encode_loop(src, dst, OverflowPolicy::NonFinite),
    }
    Ok(())
}

#[inline(always)]
fn encode_loop<W: WideFloat, F: Fp8>(src: &[W], dst: &mut [F], policy: OverflowPolicy) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s.to_fp8(policy);
    }
}

/// Decodes `src` into `dst` exactly (`f32`, `f64`, `f16` or `bf16`), one table lookup per
/// element. NaN codes give a quiet NaN with the code's sign.
///
/// # Errors
/// [`LengthMismatch`] if the slices differ in length; `dst` is then left untouched.
///
/// ```
/// use ascend_npu::fp8::{F8E5M2, decode_slice};
/// use half::bf16;
/// let src = [F8E5M2::from_bits(0x3C), F8E5M2::INFINITY];
/// let mut dst = [bf16::ZERO; 2];
/// decode_slice(&src, &mut dst)?;
/// assert_eq!(dst, [bf16::ONE, bf16::INFINITY]);
/// # Ok::<(), ascend_npu::fp8::LengthMismatch>(())
/// ```
pub fn decode_slice<F: Fp8, W: WideFloat>(src: &[F], dst: &mut [W]) -> Result<(), LengthMismatch> {
    check(src.len(), dst.len())?;
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = W::from_fp8(s);
    }
    Ok(())
}

/// Encodes `src` into a new vector (saturating overflow).
///
/// ```
/// use ascend_npu::fp8::{F8E4M3, encode_vec};
/// let v: Vec<F8E4M3> = encode_vec(&[1.0f32, 2.0]);
/// assert_eq!(v, [F8E4M3::ONE, F8E4M3::from_f32(2.0)]);
/// ```
pub fn encode_vec<W: WideFloat, F: Fp8>(src: &[W]) -> Vec<F> {
    src.iter()
        .map(|&s| s.to_fp8(OverflowPolicy::Saturate))
        .collect()
}

/// Decodes `src` into a new vector.
///
/// ```
/// use ascend_npu::fp8::{F8E4M3, decode_vec};
/// let v: Vec<f32> = decode_vec(&[F8E4M3::MAX, F8E4M3::NEG_ZERO]);
/// assert_eq!(v[0], 448.0);
/// assert!(v[1].is_sign_negative());
/// ```
pub fn decode_vec<F: Fp8, W: WideFloat>(src: &[F]) -> Vec<W> {
    src.iter().map(|&s| W::from_fp8(s)).collect()
}

fn check(src: usize, dst: usize) -> Result<(), LengthMismatch> {
    if src == dst {
        Ok(())
    } else {
        Err(LengthMismatch { src, dst })
    }
}
