//! The scalar conversion cores: wide float -> FP8 code (encode) and FP8 code -> wide float
//! (decode), shared by both formats through a [`Spec`] of format constants.
//!
//! Everything here is a `const fn` so the decode tables are built at compile time and the
//! encoders fold to straight-line code for each (format, policy) pair after inlining.

use half::{bf16, f16};

use super::format::OverflowPolicy;

/// The constants that define one FP8 format.
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    /// Mantissa (trailing significand) bits: 3 for E4M3, 2 for E5M2.
    pub man_bits: u32,
    /// Exponent bias: 7 for E4M3, 15 for E5M2.
    pub bias: i32,
    /// The largest finite magnitude's code (sign bit clear).
    pub max_code: u8,
    /// The NaN code this crate produces (sign bit clear; the input's sign is ORed in).
    pub nan_code: u8,
    /// The code for an overflow under [`OverflowPolicy::NonFinite`]: Inf where the format has
    /// one, else NaN (sign bit clear).
    pub nonfinite_code: u8,
    /// Whether `S.1111.111` alone is NaN (E4M3FN) or the IEEE all-ones exponent is Inf/NaN
    /// (E5M2).
    pub ieee_specials: bool,
}

/// OCP E4M3FN: bias 7, no Inf, NaN only at `S.1111.111`, max 448.
pub(crate) const E4M3: Spec = Spec {
    man_bits: 3,
    bias: 7,
    max_code: 0x7E,
    nan_code: 0x7F,
    nonfinite_code: 0x7F,
    ieee_specials: false,
};

/// OCP E5M2: bias 15, IEEE-like Inf (`S.11111.00`) and NaN (`S.11111.{01,10,11}`), max 57344.
/// The produced NaN is `0x7E`, the quiet NaN (top mantissa bit set), which is also what
/// truncating an f16 quiet NaN to its top byte gives.
pub(crate) const E5M2: Spec = Spec {
    man_bits: 2,
    bias: 15,
    max_code: 0x7B,
    nan_code: 0x7E,
    nonfinite_code: 0x7C,
    ieee_specials: true,
};

/// Code (sign bit clear) for an input that overflows: `max_code` when saturating, else
/// Inf/NaN.
#[inline(always)]
const fn overflow_code(spec: Spec, policy: OverflowPolicy) -> u8 {
    match policy {
        OverflowPolicy::Saturate => spec.max_code,
        OverflowPolicy::NonFinite => spec.nonfinite_code,
    }
}

/// Rounds an f32 to the nearest FP8 code, ties to even, with one rounding from the exact
/// input value.
///
/// Why this works without a loop or a table:
/// * Normal results: the IEEE bit patterns of non-negative floats are ordered like their
///   values, so rounding the f32 pattern to `man_bits` mantissa bits (add half-ulp-minus-one
///   plus the kept LSB, then shift) is exactly round-to-nearest-even, and a mantissa carry
///   ripples into the exponent as it should. Re-biasing the exponent is a subtraction of a
///   multiple of 2^23, which does not touch the rounding bits.
/// * Subnormal results (|x| below the FP8 min normal): adding a power of two `magic` whose
///   f32 ulp equals the FP8 subnormal spacing makes the FPU do the rounding (IEEE addition
///   is one correctly rounded operation, in Rust always to nearest-even); the low bits of
///   the sum are then the subnormal code. A sum that rounds up to the min normal yields code
///   `1 << man_bits`, which is the min normal's code, so that boundary needs no special case.
/// * Overflow, including ±Inf, shows up as a code above `max_code` (for E4M3 that includes
///   the NaN pattern 0x7F, i.e. "would-be 480"), so one compare applies the policy.
///
/// Both candidates are computed and one is selected, so the slice loops stay branch-free.
#[inline(always)]
pub(crate) const fn encode_f32(x: f32, spec: Spec, policy: OverflowPolicy) -> u8 {
    let bits = x.to_bits();
    let sign = ((bits >> 24) & 0x80) as u8;
    let abs = bits & 0x7FFF_FFFF;

    let shift = 23 - spec.man_bits;
    // Normal path: round the pattern, then re-bias the exponent from 127 to `bias`.
    let odd = (abs >> shift) & 1;
    let rounded = abs.wrapping_add((1u32 << (shift - 1)) - 1 + odd);
    let rebase = ((127 - spec.bias) as u32) << 23;
    let normal = rounded.wrapping_sub(rebase) >> shift;

    // Subnormal path: magic = 2^(emin - man_bits + 23), emin = 1 - bias.
    let magic_exp = (127 + 1 - spec.bias - spec.man_bits as i32 + 23) as u32;
    let magic = f32::from_bits(magic_exp << 23);
    let sub = (f32::from_bits(abs) + magic)
        .to_bits()
        .wrapping_sub(magic.to_bits());

    // f32 pattern of the FP8 min normal 2^(1 - bias).
    let min_normal = ((127 + 1 - spec.bias) as u32) << 23;
    let code = if abs < min_normal { sub } else { normal };

    let mag = if abs > 0x7F80_0000 {
        spec.nan_code
    } else if code > spec.max_code as u32 {
        overflow_code(spec, policy)
    } else {
        code as u8
    };
    sign | mag
}

/// [`encode_f32`] for an f64 source, rounding once from the f64 value (never through f32,
/// which could double-round a value just off a midpoint onto it).
#[inline(always)]
pub(crate) const fn encode_f64(x: f64, spec: Spec, policy: OverflowPolicy) -> u8 {
    let bits = x.to_bits();
    let sign = ((bits >> 56) & 0x80) as u8;
    let abs = bits & 0x7FFF_FFFF_FFFF_FFFF;

    let shift = 52 - spec.man_bits;
    let odd = (abs >> shift) & 1;
    let rounded = abs.wrapping_add((1u64 << (shift - 1)) - 1 + odd);
    let rebase = ((1023 - spec.bias) as u64) << 52;
    let normal = rounded.wrapping_sub(rebase) >> shift;

    let magic_exp = (1023 + 1 - spec.bias - spec.man_bits as i32 + 52) as u64;
    let magic = f64::from_bits(magic_exp << 52);
    let sub = (f64::from_bits(abs) + magic)
        .to_bits()
        .wrapping_sub(magic.to_bits());

    let min_normal = ((1023 + 1 - spec.bias) as u64) << 52;
    let code = if abs < min_normal { sub } else { normal };

    let mag = if abs > 0x7FF0_0000_0000_0000 {
        spec.nan_code
    } else if code > spec.max_code as u64 {
        overflow_code(spec, policy)
    } else {
        code as u8
    };
    sign | mag
}

/// Whether `code` is a NaN in the format.
#[inline(always)]
pub(crate) const fn is_nan(code: u8, spec: Spec) -> bool {
    let mag = code & 0x7F;
    if spec.ieee_specials {
        // Exponent all ones and mantissa non-zero.
        let man_mask = (1u8 << spec.man_bits) - 1;
        mag > (0x7F & !man_mask)
    } else {
        mag == 0x7F
    }
}

/// Whether `code` is ±Inf (never, for E4M3FN).
#[inline(always)]
pub(crate) const fn is_infinite(code: u8, spec: Spec) -> bool {
    spec.ieee_specials && (code & 0x7F) == spec.nonfinite_code
}

/// The exact f32 bit pattern of an FP8 code. NaN decodes to the quiet NaN `0x7FC0_0000` with
/// the code's sign, Inf to Inf. Every finite FP8 value has at most 4 significant bits and an
/// exponent in [-16, 15], so the f32 is exact (and normal).
const fn decode_f32_bits(code: u8, spec: Spec) -> u32 {
    let sign = ((code & 0x80) as u32) << 24;
    if is_nan(code, spec) {
        return sign | 0x7FC0_0000;
    }
    if is_infinite(code, spec) {
        return sign | 0x7F80_0000;
    }
    let m = spec.man_bits;
    let exp_field = ((code & 0x7F) >> m) as i32;
    let man = (code as u32) & ((1u32 << m) - 1);
    if exp_field == 0 {
        if man == 0 {
            return sign;
        }
        // Subnormal: man * 2^(1 - bias - m). Normalise on the leading set bit p.
        let p = 31 - man.leading_zeros();
        let exp = p as i32 + 1 - spec.bias - m as i32;
        let frac = (man - (1 << p)) << (23 - p);
        return sign | (((exp + 127) as u32) << 23) | frac;
    }
    let exp = exp_field - spec.bias;
    sign | (((exp + 127) as u32) << 23) | (man << (23 - m))
}

const fn build_f32_table(spec: Spec) -> [f32; 256] {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = f32::from_bits(decode_f32_bits(i as u8, spec));
        i += 1;
    }
    t
}

/// f16 patterns. `from_f32_const` rounds, but every FP8 value is exact in f16 (E4M3's range
/// [2^-9, 448] is inside f16's normals; E5M2 is f16's top byte), so nothing is rounded; the
/// tests check this for all 256 codes. NaN keeps its sign and stays quiet.
const fn build_f16_table(f32s: &[f32; 256]) -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = f16::from_f32_const(f32s[i]).to_bits();
        i += 1;
    }
    t
}

/// bf16 patterns: every FP8 value has at most 4 significant bits and a normal f32 exponent,
/// so its f32 pattern has 16 zero low bits and bf16 (f32's top half) holds it exactly.
const fn build_bf16_table(f32s: &[f32; 256]) -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = bf16::from_f32_const(f32s[i]).to_bits();
        i += 1;
    }
    t
}

pub(crate) static E4M3_TO_F32: [f32; 256] = build_f32_table(E4M3);
pub(crate) static E5M2_TO_F32: [f32; 256] = build_f32_table(E5M2);
pub(crate) static E4M3_TO_F16: [u16; 256] = build_f16_table(&build_f32_table(E4M3));
pub(crate) static E5M2_TO_F16: [u16; 256] = build_f16_table(&build_f32_table(E5M2));
pub(crate) static E4M3_TO_BF16: [u16; 256] = build_bf16_table(&build_f32_table(E4M3));
pub(crate) static E5M2_TO_BF16: [u16; 256] = build_bf16_table(&build_f32_table(E5M2));
