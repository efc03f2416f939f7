//! The two OCP FP8 storage types, the overflow policy, and the [`Fp8`] trait that lets
//! generic code (slices, quantization) handle either format.

use std::fmt;

use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};

use super::convert::{self, E4M3, E5M2};

/// What a conversion does with a finite value whose magnitude rounds above the format's
/// largest finite value, and with ±Inf.
///
/// Libraries disagree here (PyTorch's eager cast and ml_dtypes give NaN beyond 464 for
/// E4M3, CUDA `satfinite` and Triton saturate), so the choice is explicit rather than
/// implied. NaN inputs always give NaN, whatever the policy.
///
/// ```
/// use ascend_npu::fp8::{F8E4M3, F8E5M2, OverflowPolicy};
/// assert_eq!(F8E4M3::from_f32(1e6), F8E4M3::MAX); // Saturate is the default
/// assert!(F8E4M3::from_f32_with(1e6, OverflowPolicy::NonFinite).is_nan());
/// assert_eq!(F8E5M2::from_f32_with(1e6, OverflowPolicy::NonFinite), F8E5M2::INFINITY);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OverflowPolicy {
    /// Overflow and ±Inf become ±max finite (448 for E4M3, 57344 for E5M2), as CUDA
    /// `satfinite` does. Values between max and the rounding midpoint above it round to max
    /// under either policy; this policy differs only beyond that midpoint.
    #[default]
    Saturate,
    /// Overflow and ±Inf become ±Inf in E5M2 and NaN (with the input's sign) in E4M3, which
    /// has no Inf: the OCP non-saturating mode, and PyTorch/ml_dtypes' E4M3 behaviour
    /// (|x| > 464 -> NaN, since 464 ties down to 448).
    NonFinite,
}

mod sealed {
    pub trait Sealed {}
}

/// An FP8 storage format: implemented by [`F8E4M3`] and [`F8E5M2`] only (sealed).
///
/// Generic code such as [`encode_slice`](super::encode_slice) and the quantizers use it; the
/// inherent methods of the two types are the same operations under the usual names.
///
/// ```
/// use ascend_npu::fp8::{F8E4M3, F8E5M2, Fp8, OverflowPolicy};
/// fn round_trip<F: Fp8>(x: f32) -> f32 {
///     F::encode_f32(x, OverflowPolicy::Saturate).decode_f32()
/// }
/// assert_eq!(round_trip::<F8E4M3>(1.0625), 1.0); // tie to even
/// assert_eq!(round_trip::<F8E5M2>(1.0625), 1.0);
/// ```
pub trait Fp8:
    Copy + Pod + Eq + std::hash::Hash + fmt::Debug + fmt::Display + Default + sealed::Sealed
{
    /// The largest finite value, as an f32 (448 or 57344).
    const MAX_F32: f32;
    /// Builds a value from its raw code.
    fn from_code(bits: u8) -> Self;
    /// The raw code.
    fn code(self) -> u8;
    /// Rounds an f32 to nearest, ties to even, applying `policy` on overflow.
    fn encode_f32(x: f32, policy: OverflowPolicy) -> Self;
    /// Rounds an f64 to nearest, ties to even (one rounding from the f64 value).
    fn encode_f64(x: f64, policy: OverflowPolicy) -> Self;
    /// The exact f32 value.
    fn decode_f32(self) -> f32;
    /// The exact f16 value.
    fn decode_f16(self) -> f16;
    /// The exact bf16 value.
    fn decode_bf16(self) -> bf16;
}

/// 2^e as an f32, for normal-range `e` (exact; avoids long decimal literals).
const fn pow2(e: i32) -> f32 {
    f32::from_bits(((127 + e) as u32) << 23)
}

macro_rules! fp8_type {
    (
        $(#[$meta:meta])*
        $name:ident, $spec:ident, $to_f32:ident, $to_f16:ident, $to_bf16:ident,
        max = $max:expr, min_pos_exp = $min_pos:expr, min_sub_exp = $min_sub:expr, eps = $eps:expr
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
        #[repr(transparent)]
        pub struct $name(u8);

        impl $name {
            /// +0.
            pub const ZERO: Self = Self(0x00);
            /// −0 (a distinct code; equality on these types is bitwise).
            pub const NEG_ZERO: Self = Self(0x80);
            /// 1.0.
            pub const ONE: Self = Self(($spec.bias as u8) << $spec.man_bits);
            /// The largest finite value.
            pub const MAX: Self = Self($spec.max_code);
            /// The most negative finite value.
            pub const MIN: Self = Self($spec.max_code | 0x80);
            /// The smallest positive normal value.
            pub const MIN_POSITIVE: Self = Self(1 << $spec.man_bits);
            /// The smallest positive subnormal value.
            pub const MIN_POSITIVE_SUBNORMAL: Self = Self(0x01);
            /// The NaN this crate produces (positive sign; NaN inputs keep their sign).
            pub const NAN: Self = Self($spec.nan_code);
            /// The largest finite value as an f32.
            pub const MAX_F32: f32 = $max;
            /// The smallest positive normal value as an f32.
            pub const MIN_POSITIVE_F32: f32 = pow2($min_pos);
            /// The smallest positive subnormal value as an f32.
            pub const MIN_POSITIVE_SUBNORMAL_F32: f32 = pow2($min_sub);
            /// The gap between 1.0 and the next value up.
            pub const EPSILON_F32: f32 = $eps;

            /// Builds a value from its raw code; every `u8` is a valid code.
            #[inline]
            pub const fn from_bits(bits: u8) -> Self {
                Self(bits)
            }

            /// The raw code.
            #[inline]
            pub const fn to_bits(self) -> u8 {
                self.0
            }

            /// Rounds `x` to nearest, ties to even, saturating overflow and ±Inf to ±max.
            #[inline]
            pub const fn from_f32(x: f32) -> Self {
                Self::from_f32_with(x, OverflowPolicy::Saturate)
            }

            /// Rounds `x` to nearest, ties to even, with an explicit overflow policy.
            /// NaN gives NaN with `x`'s sign; −0 gives −0.
            #[inline]
            pub const fn from_f32_with(x: f32, policy: OverflowPolicy) -> Self {
                Self(convert::encode_f32(x, $spec, policy))
            }

            /// Rounds `x` once, from its f64 value, saturating overflow.
            #[inline]
            pub const fn from_f64(x: f64) -> Self {
                Self::from_f64_with(x, OverflowPolicy::Saturate)
            }

            /// Rounds `x` once, from its f64 value (not through f32, which could
            /// double-round), with an explicit overflow policy.
            #[inline]
            pub const fn from_f64_with(x: f64, policy: OverflowPolicy) -> Self {
                Self(convert::encode_f64(x, $spec, policy))
            }

            /// Rounds an f16, saturating overflow. f16 converts to f32 exactly, so this
            /// is a single rounding from the f16 value.
            #[inline]
            pub const fn from_f16(x: f16) -> Self {
                Self::from_f16_with(x, OverflowPolicy::Saturate)
            }

            /// Rounds an f16 with an explicit overflow policy.
            #[inline]
            pub const fn from_f16_with(x: f16, policy: OverflowPolicy) -> Self {
                Self::from_f32_with(x.to_f32_const(), policy)
            }

            /// Rounds a bf16, saturating overflow. bf16 is f32 with a shorter mantissa, so
            /// the widening is exact and this is a single rounding from the bf16 value.
            #[inline]
            pub const fn from_bf16(x: bf16) -> Self {
                Self::from_bf16_with(x, OverflowPolicy::Saturate)
            }

            /// Rounds a bf16 with an explicit overflow policy.
            #[inline]
            pub const fn from_bf16_with(x: bf16, policy: OverflowPolicy) -> Self {
                Self::from_f32_with(f32::from_bits((x.to_bits() as u32) << 16), policy)
            }

            /// The exact value as f32 (a table lookup). NaN codes give a quiet NaN with
            /// the code's sign.
            #[inline]
            pub const fn to_f32(self) -> f32 {
                convert::$to_f32[self.0 as usize]
            }

            /// The exact value as f64.
            #[inline]
            pub const fn to_f64(self) -> f64 {
                self.to_f32() as f64
            }

            /// The exact value as f16 (every value of this format is representable).
            #[inline]
            pub const fn to_f16(self) -> f16 {
                f16::from_bits(convert::$to_f16[self.0 as usize])
            }

            /// The exact value as bf16 (every value of this format is representable).
            #[inline]
            pub const fn to_bf16(self) -> bf16 {
                bf16::from_bits(convert::$to_bf16[self.0 as usize])
            }

            /// Whether this is a NaN code.
            #[inline]
            pub const fn is_nan(self) -> bool {
                convert::is_nan(self.0, $spec)
            }

            /// Whether this is ±Inf (always false for E4M3FN, which has no Inf).
            #[inline]
            pub const fn is_infinite(self) -> bool {
                convert::is_infinite(self.0, $spec)
            }

            /// Whether this is neither NaN nor ±Inf.
            #[inline]
            pub const fn is_finite(self) -> bool {
                !self.is_nan() && !self.is_infinite()
            }

            /// Whether the sign bit is set (true for −0 and negative NaNs).
            #[inline]
            pub const fn is_sign_negative(self) -> bool {
                self.0 & 0x80 != 0
            }

            /// The absolute value (clears the sign bit).
            #[inline]
            pub const fn abs(self) -> Self {
                Self(self.0 & 0x7F)
            }

            /// Flips the sign bit (exact; −0 and NaN included).
            #[inline]
            #[allow(clippy::should_implement_trait)] // also provided as `std::ops::Neg`
            pub const fn neg(self) -> Self {
                Self(self.0 ^ 0x80)
            }
        }

        impl std::ops::Neg for $name {
            type Output = Self;
            #[inline]
            fn neg(self) -> Self {
                $name::neg(self)
            }
        }

        impl fmt::Display for $name {
            /// Shows the value (e.g. `448`, `-0`, `NaN`), not the code.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.to_f32(), f)
            }
        }

        impl From<$name> for f32 {
            #[inline]
            fn from(x: $name) -> f32 {
                x.to_f32()
            }
        }

        impl From<$name> for f64 {
            #[inline]
            fn from(x: $name) -> f64 {
                x.to_f64()
            }
        }

        impl From<$name> for f16 {
            #[inline]
            fn from(x: $name) -> f16 {
                x.to_f16()
            }
        }

        impl From<$name> for bf16 {
            #[inline]
            fn from(x: $name) -> bf16 {
                x.to_bf16()
            }
        }

        impl sealed::Sealed for $name {}

        impl Fp8 for $name {
            const MAX_F32: f32 = $max;
            #[inline(always)]
            fn from_code(bits: u8) -> Self {
                Self(bits)
            }
            #[inline(always)]
            fn code(self) -> u8 {
                self.0
            }
            #[inline(always)]
            fn encode_f32(x: f32, policy: OverflowPolicy) -> Self {
                Self::from_f32_with(x, policy)
            }
            #[inline(always)]
            fn encode_f64(x: f64, policy: OverflowPolicy) -> Self {
                Self::from_f64_with(x, policy)
            }
            #[inline(always)]
            fn decode_f32(self) -> f32 {
                self.to_f32()
            }
            #[inline(always)]
            fn decode_f16(self) -> f16 {
                self.to_f16()
            }
            #[inline(always)]
            fn decode_bf16(self) -> bf16 {
                self.to_bf16()
            }
        }
    };
}

fp8_type! {
    /// OCP FP8 E4M3FN (`float8_e4m3fn`): 1 sign, 4 exponent (bias 7), 3 mantissa bits.
    ///
    /// Max finite 448 (`0x7E`), min normal 2⁻⁶, min subnormal 2⁻⁹, no Inf, NaN only at
    /// `0x7F`/`0xFF`. This is the format of DeepSeek-V3 weights and activations.
    ///
    /// Equality and hashing are on the code (so `-0 != +0`, `NaN == NaN` for the same code),
    /// which is what tests and lookup tables want; compare [`to_f32`](Self::to_f32) values for
    /// IEEE semantics.
    ///
    /// ```
    /// use ascend_npu::fp8::{F8E4M3, OverflowPolicy};
    /// let x = F8E4M3::from_f32(1.1875); // midway between 1.125 and 1.25: ties to even
    /// assert_eq!(x.to_f32(), 1.25);
    /// assert_eq!(F8E4M3::from_f32(1.0625).to_f32(), 1.0);
    /// assert_eq!(F8E4M3::from_f32(464.0), F8E4M3::MAX); // ties down to 448
    /// assert_eq!(F8E4M3::from_f32(f32::INFINITY).to_f32(), 448.0);
    /// assert!(F8E4M3::from_f32_with(465.0, OverflowPolicy::NonFinite).is_nan());
    /// assert_eq!(F8E4M3::from_bits(0x01).to_f32(), 2f32.powi(-9));
    /// assert_eq!(f32::from(F8E4M3::from_bits(0x80)).to_bits(), (-0.0f32).to_bits());
    /// ```
    F8E4M3, E4M3, E4M3_TO_F32, E4M3_TO_F16, E4M3_TO_BF16,
    max = 448.0, min_pos_exp = -6, min_sub_exp = -9, eps = 0.125
}

fp8_type! {
    /// OCP FP8 E5M2: 1 sign, 5 exponent (bias 15), 2 mantissa bits; the top byte of an
    /// IEEE f16.
    ///
    /// Max finite 57344 (`0x7B`), min normal 2⁻¹⁴, min subnormal 2⁻¹⁶, ±Inf at `0x7C`/`0xFC`,
    /// NaN at `0x7D..=0x7F` and `0xFD..=0xFF` (this crate produces `0x7E`/`0xFE`).
    ///
    /// Equality and hashing are on the code, as for [`F8E4M3`].
    ///
    /// ```
    /// use ascend_npu::fp8::{F8E5M2, OverflowPolicy};
    /// assert_eq!(F8E5M2::from_f32(1.125).to_f32(), 1.0); // tie to even (spacing 0.25)
    /// assert_eq!(F8E5M2::from_f32(1e9), F8E5M2::MAX);
    /// assert_eq!(F8E5M2::from_f32_with(1e9, OverflowPolicy::NonFinite), F8E5M2::INFINITY);
    /// assert_eq!(F8E5M2::from_f32(f32::NEG_INFINITY).to_f32(), -57344.0);
    /// assert_eq!(F8E5M2::INFINITY.to_f16(), half::f16::INFINITY);
    /// ```
    F8E5M2, E5M2, E5M2_TO_F32, E5M2_TO_F16, E5M2_TO_BF16,
    max = 57344.0, min_pos_exp = -14, min_sub_exp = -16, eps = 0.25
}

impl F8E5M2 {
    /// +Inf (`0x7C`).
    pub const INFINITY: Self = Self(0x7C);
    /// −Inf (`0xFC`).
    pub const NEG_INFINITY: Self = Self(0xFC);
}
