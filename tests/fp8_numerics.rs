//! Numerical conformance of `ascend_npu::fp8` (deepseek-ops.md §4 and the §6 FP8 checklist).
//!
//! Every expectation is computed here from the format definitions (sign / biased exponent /
//! mantissa, in f64), never by calling the code under test: `SpecFmt::decode` is the OCP
//! table and `SpecFmt::encode` a nearest-value search with ties to the even code.

use ascend_npu::fp8::{
    AMAX_FLOOR, BlockQuantized, F8E4M3, F8E5M2, Fp8, LengthMismatch, OverflowPolicy, QUANT_BLOCK,
    QuantError, ScaleFormat, ScaleLayout, ceil_to_ue8m0, decode_slice, decode_vec, dequantize_into,
    encode_slice, encode_vec, quantize_act, quantize_into, quantize_weight, tile_scale,
};
use half::{bf16, f16};

const POLICIES: [OverflowPolicy; 2] = [OverflowPolicy::Saturate, OverflowPolicy::NonFinite];

// ---------------------------------------------------------------------------------------
// Reference model of the two formats, written from the OCP definitions.
// ---------------------------------------------------------------------------------------

/// What a code means.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Val {
    Nan {
        neg: bool,
    },
    Inf {
        neg: bool,
    },
    /// Includes ±0 (as f64 ±0.0).
    Finite(f64),
}

/// What an encoding must produce.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Code(u8),
    /// Any NaN code with this sign (the tests also pin the canonical code separately).
    Nan {
        neg: bool,
    },
}

struct SpecFmt {
    name: &'static str,
    ebits: u32,
    mbits: u32,
    bias: i32,
    /// E5M2: the all-ones exponent holds Inf (mantissa 0) and NaN. E4M3FN: only
    /// S.1111.111 is special (NaN).
    ieee: bool,
    /// Non-negative finite values by code, ascending (codes 0..=max_code are ordered).
    values: Vec<f64>,
}

impl SpecFmt {
    fn new(name: &'static str, ebits: u32, mbits: u32, bias: i32, ieee: bool) -> Self {
        let mut f = SpecFmt {
            name,
            ebits,
            mbits,
            bias,
            ieee,
            values: Vec::new(),
        };
        for c in 0u8..0x80 {
            match f.decode(c) {
                Val::Finite(v) => f.values.push(v),
                _ => break,
            }
        }
        f
    }

    fn e4m3() -> Self {
        SpecFmt::new("E4M3", 4, 3, 7, false)
    }

    fn e5m2() -> Self {
        SpecFmt::new("E5M2", 5, 2, 15, true)
    }

    fn decode(&self, code: u8) -> Val {
        let neg = code & 0x80 != 0;
        let e = u32::from(code >> self.mbits) & ((1 << self.ebits) - 1);
        let m = u32::from(code) & ((1 << self.mbits) - 1);
        let e_all = (1 << self.ebits) - 1;
        let m_all = (1 << self.mbits) - 1;
        if self.ieee && e == e_all {
            return if m == 0 {
                Val::Inf { neg }
            } else {
                Val::Nan { neg }
            };
        }
        if !self.ieee && e == e_all && m == m_all {
            return Val::Nan { neg };
        }
        let frac = f64::from(m) / f64::from(1u32 << self.mbits);
        let mag = if e == 0 {
            // Subnormal: 0.m × 2^(1 - bias).
            frac * 2f64.powi(1 - self.bias)
        } else {
            (1.0 + frac) * 2f64.powi(e as i32 - self.bias)
        };
        Val::Finite(if neg { -mag } else { mag })
    }

    fn max_code(&self) -> u8 {
        (self.values.len() - 1) as u8
    }

    fn max(&self) -> f64 {
        *self.values.last().unwrap()
    }

    /// Round to nearest, ties to the even code; overflow beyond the midpoint between max and
    /// the would-be next value (max + its ulp) follows `policy`.
    fn encode(&self, x: f64, policy: OverflowPolicy) -> Want {
        let neg = x.is_sign_negative();
        let sign = if neg { 0x80 } else { 0 };
        if x.is_nan() {
            return Want::Nan { neg };
        }
        let a = x.abs();
        let overflow = || match policy {
            OverflowPolicy::Saturate => Want::Code(sign | self.max_code()),
            OverflowPolicy::NonFinite if self.ieee => Want::Code(sign | 0x7C),
            OverflowPolicy::NonFinite => Want::Nan { neg },
        };
        let n = self.values.len();
        if a > self.max() {
            let ulp = self.values[n - 1] - self.values[n - 2];
            let mid = self.max() + ulp / 2.0;
            let max_even = self.max_code() % 2 == 0;
            return if a < mid || (a == mid && max_even) {
                Want::Code(sign | self.max_code())
            } else {
                overflow()
            };
        }
        // Largest value ≤ a.
        let lo = self.values.partition_point(|&v| v <= a) - 1;
        if self.values[lo] == a {
            return Want::Code(sign | lo as u8);
        }
        let hi = lo + 1;
        let mid = (self.values[lo] + self.values[hi]) / 2.0;
        let pick = if a < mid {
            lo
        } else if a > mid {
            hi
        } else if lo % 2 == 0 {
            lo
        } else {
            hi
        };
        Want::Code(sign | pick as u8)
    }

    fn nan_code(&self) -> u8 {
        if self.ieee { 0x7E } else { 0x7F }
    }
}

fn check(fmt: &SpecFmt, what: &str, input: f64, got: u8, want: Want) {
    match want {
        Want::Code(c) => assert_eq!(
            got,
            c,
            "{} {what}: input {input:e} ({:#x}) -> {got:#04x}, want {c:#04x}",
            fmt.name,
            input.to_bits()
        ),
        Want::Nan { neg } => {
            assert!(
                matches!(fmt.decode(got), Val::Nan { .. }),
                "{} {what}: input {input:e} -> {got:#04x}, want NaN",
                fmt.name
            );
            assert_eq!(got & 0x80 != 0, neg, "{} {what}: NaN sign", fmt.name);
        }
    }
}

/// The format under test, as a trait-generic pair with its spec model.
fn with_formats(mut f: impl FnMut(&SpecFmt, &dyn Fn(f64, OverflowPolicy) -> Codes)) {
    f(&SpecFmt::e4m3(), &encode_all::<F8E4M3>);
    f(&SpecFmt::e5m2(), &encode_all::<F8E5M2>);
}

/// One input encoded through every source type that can hold it exactly.
#[derive(Debug)]
struct Codes {
    f64: u8,
    f32: Option<u8>,
    f16: Option<u8>,
    bf16: Option<u8>,
}

fn encode_all<F: Fp8>(x: f64, p: OverflowPolicy) -> Codes {
    let x32 = x as f32;
    let exact32 = f64::from(x32) == x || (x.is_nan() && x32.is_nan());
    let xh = f16::from_f64(x);
    let exact16 = xh.to_f64() == x || (x.is_nan() && xh.is_nan());
    let xb = bf16::from_f64(x);
    let exactb = xb.to_f64() == x || (x.is_nan() && xb.is_nan());
    // Sign of zero and of NaN must survive the narrowing for the comparison to be fair.
    let same_sign = |s: bool| s == x.is_sign_negative();
    Codes {
        f64: F::encode_f64(x, p).code(),
        f32: (exact32 && same_sign(x32.is_sign_negative())).then(|| F::encode_f32(x32, p).code()),
        f16: (exact16 && same_sign(xh.is_sign_negative())).then(|| {
            let mut d = [F::default()];
            encode_slice(&[xh], &mut d, p).unwrap();
            d[0].code()
        }),
        bf16: (exactb && same_sign(xb.is_sign_negative())).then(|| {
            let mut d = [F::default()];
            encode_slice(&[xb], &mut d, p).unwrap();
            d[0].code()
        }),
    }
}

fn check_all(fmt: &SpecFmt, what: &str, x: f64, c: &Codes, want: Want) {
    check(fmt, &format!("{what} [f64]"), x, c.f64, want);
    if let Some(g) = c.f32 {
        check(fmt, &format!("{what} [f32]"), x, g, want);
    }
    if let Some(g) = c.f16 {
        check(fmt, &format!("{what} [f16]"), x, g, want);
    }
    if let Some(g) = c.bf16 {
        check(fmt, &format!("{what} [bf16]"), x, g, want);
    }
}

fn next_up(x: f64) -> f64 {
    assert!(x > 0.0);
    f64::from_bits(x.to_bits() + 1)
}

fn next_down(x: f64) -> f64 {
    assert!(x > 0.0);
    f64::from_bits(x.to_bits() - 1)
}

fn next_up32(x: f32) -> f32 {
    assert!(x > 0.0);
    f32::from_bits(x.to_bits() + 1)
}

fn next_down32(x: f32) -> f32 {
    assert!(x > 0.0);
    f32::from_bits(x.to_bits() - 1)
}

// ---------------------------------------------------------------------------------------
// Decoding: all 256 codes.
// ---------------------------------------------------------------------------------------

fn check_decode<F: Fp8 + Into<f32> + Into<f64> + Into<f16> + Into<bf16>>(fmt: &SpecFmt) {
    let (mut nans, mut infs) = (0, 0);
    for c in 0..=255u8 {
        let x = F::from_code(c);
        let (v32, v64, vh, vb): (f32, f64, f16, bf16) = (x.into(), x.into(), x.into(), x.into());
        let mut d32 = [0f32];
        decode_slice(&[x], &mut d32).unwrap();
        assert_eq!(d32[0].to_bits(), v32.to_bits(), "decode_slice f32 {c:#04x}");
        match fmt.decode(c) {
            Val::Finite(v) => {
                let neg = v.is_sign_negative();
                assert_eq!(f64::from(v32), v, "{} {c:#04x} f32", fmt.name);
                assert_eq!(v64, v, "{} {c:#04x} f64", fmt.name);
                assert_eq!(vh.to_f64(), v, "{} {c:#04x} f16", fmt.name);
                assert_eq!(vb.to_f64(), v, "{} {c:#04x} bf16", fmt.name);
                assert_eq!(v32.is_sign_negative(), neg, "{c:#04x} f32 sign");
                assert_eq!(v64.is_sign_negative(), neg, "{c:#04x} f64 sign");
                assert_eq!(vh.is_sign_negative(), neg, "{c:#04x} f16 sign");
                assert_eq!(vb.is_sign_negative(), neg, "{c:#04x} bf16 sign");
            }
            Val::Inf { neg } => {
                infs += 1;
                let want = if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                };
                assert_eq!(f64::from(v32), want);
                assert_eq!(v64, want);
                assert_eq!(vh.to_f64(), want);
                assert_eq!(vb.to_f64(), want);
            }
            Val::Nan { neg } => {
                nans += 1;
                assert!(v32.is_nan() && v64.is_nan() && vh.is_nan() && vb.is_nan());
                assert_eq!(v32.is_sign_negative(), neg, "{c:#04x} NaN sign f32");
                assert_eq!(vh.is_sign_negative(), neg, "{c:#04x} NaN sign f16");
                assert_eq!(vb.is_sign_negative(), neg, "{c:#04x} NaN sign bf16");
            }
        }
    }
    if fmt.ieee {
        assert_eq!(
            (nans, infs),
            (6, 2),
            "E5M2: 0x7D-0x7F, 0xFD-0xFF NaN; 0x7C/0xFC Inf"
        );
    } else {
        assert_eq!(
            (nans, infs),
            (2, 0),
            "E4M3FN: only 0x7F/0xFF are NaN, no Inf"
        );
    }
}

#[test]
fn decode_all_256_codes_against_spec() {
    check_decode::<F8E4M3>(&SpecFmt::e4m3());
    check_decode::<F8E5M2>(&SpecFmt::e5m2());
}

#[test]
fn classification_matches_spec() {
    let (e4, e5) = (SpecFmt::e4m3(), SpecFmt::e5m2());
    for c in 0..=255u8 {
        let a = F8E4M3::from_bits(c);
        assert_eq!(a.to_bits(), c);
        assert_eq!(a.is_nan(), matches!(e4.decode(c), Val::Nan { .. }));
        assert!(!a.is_infinite());
        assert_eq!(a.is_finite(), matches!(e4.decode(c), Val::Finite(_)));
        assert_eq!(a.is_sign_negative(), c >= 0x80);
        assert_eq!(a.abs().to_bits(), c & 0x7F);
        assert_eq!((-a).to_bits(), c ^ 0x80);
        let b = F8E5M2::from_bits(c);
        assert_eq!(b.is_nan(), matches!(e5.decode(c), Val::Nan { .. }));
        assert_eq!(b.is_infinite(), matches!(e5.decode(c), Val::Inf { .. }));
        assert_eq!(b.is_finite(), matches!(e5.decode(c), Val::Finite(_)));
    }
}

/// The landmarks of deepseek-ops.md §4.1, so the spec model itself is pinned.
#[test]
fn spec_table_landmarks() {
    let (e4, e5) = (SpecFmt::e4m3(), SpecFmt::e5m2());
    assert_eq!(e4.decode(0x7E), Val::Finite(448.0));
    assert_eq!(e4.max_code(), 0x7E);
    assert_eq!(e4.decode(0x08), Val::Finite(2f64.powi(-6)));
    assert_eq!(e4.decode(0x01), Val::Finite(2f64.powi(-9)));
    assert_eq!(e4.decode(0x38), Val::Finite(1.0));
    assert_eq!(e4.decode(0x39), Val::Finite(1.125));
    assert_eq!(e5.decode(0x7B), Val::Finite(57344.0));
    assert_eq!(e5.max_code(), 0x7B);
    assert_eq!(e5.decode(0x04), Val::Finite(2f64.powi(-14)));
    assert_eq!(e5.decode(0x01), Val::Finite(2f64.powi(-16)));
    assert_eq!(e5.decode(0x7C), Val::Inf { neg: false });
    assert_eq!(e5.decode(0xFC), Val::Inf { neg: true });
    for f in [&e4, &e5] {
        match f.decode(0x80) {
            Val::Finite(z) => assert!(z == 0.0 && z.is_sign_negative()),
            v => panic!("{v:?}"),
        }
    }
    // The public constants agree with the spec.
    assert_eq!(F8E4M3::MAX.to_bits(), 0x7E);
    assert_eq!(F8E4M3::MIN.to_f32(), -448.0);
    assert_eq!(F8E4M3::MAX_F32, 448.0);
    assert_eq!(F8E4M3::ONE.to_f32(), 1.0);
    assert_eq!(F8E4M3::MIN_POSITIVE.to_f32(), F8E4M3::MIN_POSITIVE_F32);
    assert_eq!(F8E4M3::MIN_POSITIVE_F32, 2f32.powi(-6));
    assert_eq!(F8E4M3::MIN_POSITIVE_SUBNORMAL.to_f32(), 2f32.powi(-9));
    assert_eq!(F8E4M3::MIN_POSITIVE_SUBNORMAL_F32, 2f32.powi(-9));
    assert_eq!(F8E4M3::EPSILON_F32, 0.125);
    assert!(F8E4M3::NAN.is_nan());
    assert_eq!(F8E5M2::MAX.to_f32(), 57344.0);
    assert_eq!(F8E5M2::MAX_F32, 57344.0);
    assert_eq!(F8E5M2::ONE.to_f32(), 1.0);
    assert_eq!(F8E5M2::MIN_POSITIVE.to_f32(), 2f32.powi(-14));
    assert_eq!(F8E5M2::MIN_POSITIVE_F32, 2f32.powi(-14));
    assert_eq!(F8E5M2::MIN_POSITIVE_SUBNORMAL_F32, 2f32.powi(-16));
    assert_eq!(F8E5M2::MIN_POSITIVE_SUBNORMAL.to_f32(), 2f32.powi(-16));
    assert_eq!(F8E5M2::EPSILON_F32, 0.25);
    assert_eq!(F8E5M2::INFINITY.to_f32(), f32::INFINITY);
    assert_eq!(F8E5M2::NEG_INFINITY.to_f32(), f32::NEG_INFINITY);
    assert!(F8E5M2::NAN.is_nan());
    // Doc §4.1: spacing near 1.0 in E4M3 is 0.125; 1.0625 -> 1.0, 1.1875 -> 1.25.
    assert_eq!(F8E4M3::from_f32(1.0625).to_f32(), 1.0);
    assert_eq!(F8E4M3::from_f32(1.1875).to_f32(), 1.25);
}

#[test]
fn layout_and_traits() {
    assert_eq!(std::mem::size_of::<F8E4M3>(), 1);
    assert_eq!(std::mem::size_of::<F8E5M2>(), 1);
    let bytes = [0x38u8, 0x7E, 0x80];
    let xs: &[F8E4M3] = bytemuck::cast_slice(&bytes);
    assert_eq!(xs, [F8E4M3::ONE, F8E4M3::MAX, F8E4M3::NEG_ZERO]);
    // Equality is bitwise: -0 != +0, and a NaN code equals itself.
    assert_ne!(F8E4M3::ZERO, F8E4M3::NEG_ZERO);
    assert_eq!(F8E4M3::NAN, F8E4M3::NAN);
    assert_eq!(F8E4M3::default(), F8E4M3::ZERO);
    let set: std::collections::HashSet<F8E5M2> = (0..=255).map(F8E5M2::from_bits).collect();
    assert_eq!(set.len(), 256);
    assert_eq!(F8E4M3::MAX.to_string(), "448");
    assert_eq!(F8E5M2::NEG_INFINITY.to_string(), "-inf");
    assert_eq!(F8E4M3::NAN.to_string(), "NaN");
}

// ---------------------------------------------------------------------------------------
// Encoding.
// ---------------------------------------------------------------------------------------

#[test]
fn encode_decode_round_trips_every_non_nan_code() {
    with_formats(|fmt, enc| {
        for c in 0..=255u8 {
            match fmt.decode(c) {
                Val::Nan { .. } => continue,
                Val::Inf { neg } => {
                    let x = if neg {
                        f64::NEG_INFINITY
                    } else {
                        f64::INFINITY
                    };
                    // Inf survives only under NonFinite; Saturate maps it to ±max by design.
                    let c_nf = enc(x, OverflowPolicy::NonFinite);
                    check_all(fmt, "Inf round trip", x, &c_nf, Want::Code(c));
                    let c_sat = enc(x, OverflowPolicy::Saturate);
                    let max = (c & 0x80) | fmt.max_code();
                    check_all(fmt, "Inf saturates", x, &c_sat, Want::Code(max));
                }
                Val::Finite(v) => {
                    for p in POLICIES {
                        let codes = enc(v, p);
                        // Every FP8 value is exact in f32, f16 and bf16, so all four paths
                        // must have run.
                        assert!(codes.f32.is_some() && codes.f16.is_some() && codes.bf16.is_some());
                        check_all(fmt, "round trip", v, &codes, Want::Code(c));
                    }
                }
            }
        }
    });
}

#[test]
fn round_trip_through_public_scalar_api() {
    for c in 0..=255u8 {
        let a = F8E4M3::from_bits(c);
        if !a.is_nan() {
            assert_eq!(F8E4M3::from_f32(a.to_f32()), a);
            assert_eq!(F8E4M3::from_f64(a.to_f64()), a);
            assert_eq!(F8E4M3::from_f16(a.to_f16()), a);
            assert_eq!(F8E4M3::from_bf16(a.to_bf16()), a);
        }
        let b = F8E5M2::from_bits(c);
        if b.is_finite() {
            assert_eq!(F8E5M2::from_f32(b.to_f32()), b);
            assert_eq!(F8E5M2::from_f64(b.to_f64()), b);
            assert_eq!(F8E5M2::from_f16(b.to_f16()), b);
            assert_eq!(F8E5M2::from_bf16(b.to_bf16()), b);
        }
        if !b.is_nan() {
            let nf = OverflowPolicy::NonFinite;
            assert_eq!(F8E5M2::from_f32_with(b.to_f32(), nf), b);
            assert_eq!(F8E5M2::from_f16_with(b.to_f16(), nf), b);
            assert_eq!(F8E5M2::from_bf16_with(b.to_bf16(), nf), b);
            assert_eq!(F8E5M2::from_f64_with(b.to_f64(), nf), b);
        }
    }
}

/// Every midpoint between consecutive representable values goes to the even code; one ulp
/// of the source type above/below goes up/down. Both signs, all four source types.
#[test]
fn midpoints_tie_to_even() {
    with_formats(|fmt, enc| {
        for lo in 0..fmt.values.len() - 1 {
            let (a, b) = (fmt.values[lo], fmt.values[lo + 1]);
            let mid = (a + b) / 2.0;
            let even = if lo % 2 == 0 { lo } else { lo + 1 } as u8;
            for sign in [1.0, -1.0] {
                let s = if sign < 0.0 { 0x80 } else { 0 };
                for p in POLICIES {
                    let c = enc(sign * mid, p);
                    // The midpoint has at most 5 significant bits: exact in every source type.
                    assert!(c.f32.is_some() && c.f16.is_some() && c.bf16.is_some());
                    check_all(fmt, "midpoint", sign * mid, &c, Want::Code(s | even));
                    let up = sign * next_up(mid);
                    check_all(
                        fmt,
                        "above mid",
                        up,
                        &enc(up, p),
                        Want::Code(s | (lo as u8 + 1)),
                    );
                    let dn = sign * next_down(mid);
                    check_all(fmt, "below mid", dn, &enc(dn, p), Want::Code(s | lo as u8));
                    let up32 = f64::from(sign as f32 * next_up32(mid as f32));
                    check_all(
                        fmt,
                        "above mid f32",
                        up32,
                        &enc(up32, p),
                        Want::Code(s | (lo as u8 + 1)),
                    );
                    let dn32 = f64::from(sign as f32 * next_down32(mid as f32));
                    check_all(
                        fmt,
                        "below mid f32",
                        dn32,
                        &enc(dn32, p),
                        Want::Code(s | lo as u8),
                    );
                    let uph = f16::from_bits(f16::from_f64(mid).to_bits() + 1).to_f64() * sign;
                    check_all(
                        fmt,
                        "above mid f16",
                        uph,
                        &enc(uph, p),
                        Want::Code(s | (lo as u8 + 1)),
                    );
                    let dnb = bf16::from_bits(bf16::from_f64(mid).to_bits() - 1).to_f64() * sign;
                    check_all(
                        fmt,
                        "below mid bf16",
                        dnb,
                        &enc(dnb, p),
                        Want::Code(s | lo as u8),
                    );
                }
            }
        }
    });
}

#[test]
fn subnormal_boundaries() {
    let p = OverflowPolicy::Saturate;
    // (format, value, expected code); comments give the reasoning.
    let e4: &[(f64, u8)] = &[
        (2f64.powi(-9), 0x01),           // smallest subnormal
        (2f64.powi(-10), 0x00),          // half of it: tie between 0 and 0x01 -> even 0
        (next_up(2f64.powi(-10)), 0x01), // just above half -> min subnormal
        (3.0 * 2f64.powi(-10), 0x02),    // 1.5 × min: tie 0x01/0x02 -> even 0x02
        (5.0 * 2f64.powi(-10), 0x02),    // 2.5 × min: tie 0x02/0x03 -> 0x02
        (7.0 * 2f64.powi(-9), 0x07),     // largest subnormal
        (7.5 * 2f64.powi(-9), 0x08),     // tie largest subnormal / min normal -> 0x08 (even)
        (next_down(7.5 * 2f64.powi(-9)), 0x07),
        (2f64.powi(-6), 0x08), // smallest normal
        (1e-30, 0x00),
        (f64::from(f32::from_bits(1)), 0x00), // f32 min subnormal
        (f64::from_bits(1), 0x00),            // f64 min subnormal
    ];
    let e5: &[(f64, u8)] = &[
        (2f64.powi(-16), 0x01),
        (2f64.powi(-17), 0x00),
        (next_up(2f64.powi(-17)), 0x01),
        (3.0 * 2f64.powi(-16), 0x03), // largest subnormal
        (3.5 * 2f64.powi(-16), 0x04), // tie 0x03 / min normal 0x04 -> 0x04
        (2f64.powi(-14), 0x04),       // smallest normal
        (f64::from(f16::from_bits(1).to_f32()), 0x00), // f16 min subnormal 2^-24
        (f64::from_bits(1), 0x00),
    ];
    with_formats(|fmt, enc| {
        let table = if fmt.ieee { e5 } else { e4 };
        for &(v, c) in table {
            // The spec model agrees (guards the table itself).
            assert_eq!(fmt.encode(v, p), Want::Code(c), "model {v:e}");
            check_all(fmt, "subnormal", v, &enc(v, p), Want::Code(c));
            check_all(fmt, "subnormal neg", -v, &enc(-v, p), Want::Code(c | 0x80));
        }
    });
}

#[test]
fn overflow_boundaries_under_both_policies() {
    const NAN: Option<u8> = None;
    // (value, code under Saturate, code under NonFinite; None = NaN).
    let e4: &[(f64, u8, Option<u8>)] = &[
        (448.0, 0x7E, Some(0x7E)),
        (456.0, 0x7E, Some(0x7E)),
        (464.0, 0x7E, Some(0x7E)), // midpoint 448/"480": ties to even 0x7E
        (next_down(464.0), 0x7E, Some(0x7E)),
        (next_up(464.0), 0x7E, NAN), // PyTorch/ml_dtypes: > 464 -> NaN
        (f64::from(next_up32(464.0)), 0x7E, NAN),
        (480.0, 0x7E, NAN),
        (1e10, 0x7E, NAN),
        (f64::from(f32::MAX), 0x7E, NAN),
        (f64::MAX, 0x7E, NAN),
        (f64::INFINITY, 0x7E, NAN),
    ];
    let e5: &[(f64, u8, Option<u8>)] = &[
        (57344.0, 0x7B, Some(0x7B)),
        (next_down(61440.0), 0x7B, Some(0x7B)),
        (61440.0, 0x7B, Some(0x7C)), // midpoint 57344/65536: max is odd -> rounds up = Inf
        (65504.0, 0x7B, Some(0x7C)), // f16 max
        (65536.0, 0x7B, Some(0x7C)),
        (f64::from(f32::MAX), 0x7B, Some(0x7C)),
        (f64::INFINITY, 0x7B, Some(0x7C)),
    ];
    with_formats(|fmt, enc| {
        let table = if fmt.ieee { e5 } else { e4 };
        for &(v, sat, nf) in table {
            for (sign, s) in [(1.0, 0u8), (-1.0, 0x80)] {
                let x = sign * v;
                let want_sat = Want::Code(s | sat);
                let want_nf = nf.map_or(Want::Nan { neg: sign < 0.0 }, |c| Want::Code(s | c));
                assert_eq!(
                    fmt.encode(x, OverflowPolicy::Saturate),
                    want_sat,
                    "model {x}"
                );
                assert_eq!(
                    fmt.encode(x, OverflowPolicy::NonFinite),
                    want_nf,
                    "model {x}"
                );
                check_all(
                    fmt,
                    "overflow sat",
                    x,
                    &enc(x, OverflowPolicy::Saturate),
                    want_sat,
                );
                let got = enc(x, OverflowPolicy::NonFinite);
                check_all(fmt, "overflow nonfinite", x, &got, want_nf);
                if nf.is_none() {
                    assert_eq!(got.f64, s | 0x7F, "E4M3 overflow NaN is S.1111.111");
                }
            }
        }
    });
}

#[test]
fn nan_inputs_give_nan_with_sign() {
    let f32_nans = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7F80_0001), // signalling
        f32::from_bits(0xFFFF_FFFF),
        f32::from_bits(0x7FC0_0000),
    ];
    with_formats(|fmt, enc| {
        for p in POLICIES {
            for n in f32_nans {
                let want = Want::Nan {
                    neg: n.is_sign_negative(),
                };
                let c = enc(f64::from(n), p);
                check_all(fmt, "NaN", f64::from(n), &c, want);
                let sign = if n.is_sign_negative() { 0x80 } else { 0 };
                assert_eq!(c.f64, sign | fmt.nan_code(), "canonical NaN code");
            }
            for n in [f64::NAN, -f64::NAN, f64::from_bits(0x7FF0_0000_0000_0001)] {
                check(
                    fmt,
                    "f64 NaN",
                    n,
                    enc(n, p).f64,
                    Want::Nan {
                        neg: n.is_sign_negative(),
                    },
                );
            }
        }
    });
    assert!(F8E4M3::from_f16(f16::NAN).is_nan());
    assert!(F8E4M3::from_f16(-f16::NAN).is_sign_negative());
    assert!(F8E5M2::from_bf16(bf16::NAN).is_nan());
    assert!(F8E5M2::from_bf16(-bf16::NAN).is_sign_negative());
    assert_eq!(F8E4M3::from_f32(f32::NAN).to_bits(), 0x7F);
    assert_eq!(F8E5M2::from_f32(-f32::NAN).to_bits(), 0xFE);
}

#[test]
fn signed_zero_is_preserved() {
    for p in POLICIES {
        assert_eq!(F8E4M3::from_f32_with(-0.0, p).to_bits(), 0x80);
        assert_eq!(F8E4M3::from_f64_with(-0.0, p).to_bits(), 0x80);
        assert_eq!(F8E4M3::from_f16_with(f16::NEG_ZERO, p).to_bits(), 0x80);
        assert_eq!(F8E4M3::from_bf16_with(bf16::NEG_ZERO, p).to_bits(), 0x80);
        assert_eq!(F8E5M2::from_f32_with(-0.0, p).to_bits(), 0x80);
        assert_eq!(F8E5M2::from_f64_with(-0.0, p).to_bits(), 0x80);
        assert_eq!(F8E5M2::from_f16_with(f16::NEG_ZERO, p).to_bits(), 0x80);
        assert_eq!(F8E5M2::from_bf16_with(bf16::NEG_ZERO, p).to_bits(), 0x80);
        assert_eq!(F8E4M3::from_f32_with(0.0, p).to_bits(), 0x00);
        // Underflow keeps the sign too.
        assert_eq!(F8E4M3::from_f32_with(-1e-30, p).to_bits(), 0x80);
        assert_eq!(F8E5M2::from_f64_with(-1e-300, p).to_bits(), 0x80);
    }
    assert_eq!(F8E4M3::NEG_ZERO.to_f32().to_bits(), (-0.0f32).to_bits());
    assert_eq!(F8E5M2::NEG_ZERO.to_f16().to_bits(), f16::NEG_ZERO.to_bits());
    assert_eq!(
        F8E4M3::NEG_ZERO.to_bf16().to_bits(),
        bf16::NEG_ZERO.to_bits()
    );
}

/// Every f16 and every bf16 input, both formats, both policies, against the model.
#[test]
fn exhaustive_f16_and_bf16_inputs() {
    with_formats(|fmt, _| {
        for p in POLICIES {
            let h: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
            let b: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).collect();
            let (mut ch, mut cb) = (vec![0u8; h.len()], vec![0u8; b.len()]);
            if fmt.ieee {
                let (mut dh, mut db) = (vec![F8E5M2::ZERO; h.len()], vec![F8E5M2::ZERO; b.len()]);
                encode_slice(&h, &mut dh, p).unwrap();
                encode_slice(&b, &mut db, p).unwrap();
                ch.iter_mut().zip(&dh).for_each(|(o, c)| *o = c.to_bits());
                cb.iter_mut().zip(&db).for_each(|(o, c)| *o = c.to_bits());
                // Scalar API agrees with the slice API.
                for (x, c) in h.iter().zip(&dh).step_by(97) {
                    assert_eq!(F8E5M2::from_f16_with(*x, p), *c);
                }
            } else {
                let (mut dh, mut db) = (vec![F8E4M3::ZERO; h.len()], vec![F8E4M3::ZERO; b.len()]);
                encode_slice(&h, &mut dh, p).unwrap();
                encode_slice(&b, &mut db, p).unwrap();
                ch.iter_mut().zip(&dh).for_each(|(o, c)| *o = c.to_bits());
                cb.iter_mut().zip(&db).for_each(|(o, c)| *o = c.to_bits());
                for (x, c) in b.iter().zip(&db).step_by(97) {
                    assert_eq!(F8E4M3::from_bf16_with(*x, p), *c);
                }
            }
            for (x, c) in h.iter().zip(&ch) {
                let v = x.to_f64();
                check(fmt, "f16 exhaustive", v, *c, fmt.encode(v, p));
            }
            for (x, c) in b.iter().zip(&cb) {
                let v = x.to_f64();
                check(fmt, "bf16 exhaustive", v, *c, fmt.encode(v, p));
            }
        }
    });
}

/// A strided sweep over all f32 bit patterns, plus every pattern within ±64 ulps of each
/// representable value and each midpoint.
#[test]
fn f32_sweep_against_model() {
    let mut inputs: Vec<f32> = (0..=u32::MAX).step_by(4099).map(f32::from_bits).collect();
    for fmt in [SpecFmt::e4m3(), SpecFmt::e5m2()] {
        let n = fmt.values.len();
        let mut points: Vec<f64> = fmt.values.clone();
        points.extend(fmt.values.windows(2).map(|w| (w[0] + w[1]) / 2.0));
        points.push(fmt.max() + (fmt.values[n - 1] - fmt.values[n - 2]) / 2.0);
        for v in points {
            let b = (v as f32).to_bits() as i64;
            for d in -64..=64 {
                let bits = b + d;
                if (0..=i64::from(u32::MAX)).contains(&bits) {
                    inputs.push(f32::from_bits(bits as u32));
                    inputs.push(-f32::from_bits(bits as u32));
                }
            }
        }
    }
    let e4 = SpecFmt::e4m3();
    let e5 = SpecFmt::e5m2();
    for p in POLICIES {
        let mut d4 = vec![F8E4M3::ZERO; inputs.len()];
        let mut d5 = vec![F8E5M2::ZERO; inputs.len()];
        encode_slice(&inputs, &mut d4, p).unwrap();
        encode_slice(&inputs, &mut d5, p).unwrap();
        for ((x, a), b) in inputs.iter().zip(&d4).zip(&d5) {
            let v = f64::from(*x);
            check(&e4, "f32 sweep", v, a.to_bits(), e4.encode(v, p));
            check(&e5, "f32 sweep", v, b.to_bits(), e5.encode(v, p));
            assert_eq!(F8E4M3::from_f32_with(*x, p), *a);
        }
    }
}

/// f64 inputs are rounded once: a value just off a midpoint whose f32 rounding lands on the
/// midpoint must still round away from it.
#[test]
fn f64_rounds_once_not_through_f32() {
    let mut meaningful = 0;
    with_formats(|fmt, enc| {
        for lo in 0..fmt.values.len() - 1 {
            let mid = (fmt.values[lo] + fmt.values[lo + 1]) / 2.0;
            let above = mid * (1.0 + 2f64.powi(-40));
            let below = mid * (1.0 - 2f64.powi(-40));
            if (above as f32) as f64 == mid {
                meaningful += 1;
            }
            for p in POLICIES {
                check(
                    fmt,
                    "f64 above mid",
                    above,
                    enc(above, p).f64,
                    Want::Code(lo as u8 + 1),
                );
                check(
                    fmt,
                    "f64 below mid",
                    below,
                    enc(below, p).f64,
                    Want::Code(lo as u8),
                );
            }
        }
        // Same at the overflow midpoint.
        let n = fmt.values.len();
        let omid = fmt.max() + (fmt.values[n - 1] - fmt.values[n - 2]) / 2.0;
        let above = omid * (1.0 + 2f64.powi(-40));
        let below = omid * (1.0 - 2f64.powi(-40));
        let nf = OverflowPolicy::NonFinite;
        check(
            fmt,
            "f64 above overflow mid",
            above,
            enc(above, nf).f64,
            fmt.encode(above, nf),
        );
        assert_ne!(enc(above, nf).f64, fmt.max_code());
        check(
            fmt,
            "f64 below overflow mid",
            below,
            enc(below, nf).f64,
            Want::Code(fmt.max_code()),
        );
    });
    assert!(
        meaningful > 100,
        "the f32 route would have hit the midpoints"
    );
    // A pseudo-random sweep of f64 inputs spanning the formats' ranges and beyond.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let (e4, e5) = (SpecFmt::e4m3(), SpecFmt::e5m2());
    for _ in 0..200_000 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let exp = (s >> 58) as i32 - 24 + ((s >> 50) & 7) as i32; // about 2^-24 .. 2^46
        let mant = f64::from_bits((s & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
        let x = if s & (1 << 57) != 0 { -1.0 } else { 1.0 } * mant * 2f64.powi(exp.min(20));
        for p in POLICIES {
            check(
                &e4,
                "f64 sweep",
                x,
                F8E4M3::from_f64_with(x, p).to_bits(),
                e4.encode(x, p),
            );
            check(
                &e5,
                "f64 sweep",
                x,
                F8E5M2::from_f64_with(x, p).to_bits(),
                e5.encode(x, p),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Slices.
// ---------------------------------------------------------------------------------------

#[test]
fn slice_conversions_match_scalar() {
    let src: Vec<f32> = (0..1000)
        .map(|i| ((i as f32) - 500.0) * 0.37 * if i % 7 == 0 { 300.0 } else { 1.0 })
        .chain([f32::NAN, f32::INFINITY, -0.0, 1e-9])
        .collect();
    for p in POLICIES {
        let mut a = vec![F8E4M3::ZERO; src.len()];
        encode_slice(&src, &mut a, p).unwrap();
        let src64: Vec<f64> = src.iter().map(|&x| f64::from(x)).collect();
        let mut a64 = vec![F8E4M3::ZERO; src.len()];
        encode_slice(&src64, &mut a64, p).unwrap();
        for ((x, c), c64) in src.iter().zip(&a).zip(&a64) {
            assert_eq!(*c, F8E4M3::from_f32_with(*x, p));
            assert_eq!(*c64, *c);
        }
        let mut b = vec![F8E5M2::ZERO; src.len()];
        encode_slice(&src, &mut b, p).unwrap();
        for (x, c) in src.iter().zip(&b) {
            assert_eq!(*c, F8E5M2::from_f32_with(*x, p));
        }
    }
    let all4: Vec<F8E4M3> = (0..=255).map(F8E4M3::from_bits).collect();
    let all5: Vec<F8E5M2> = (0..=255).map(F8E5M2::from_bits).collect();
    let (mut o32, mut o64) = (vec![0f32; 256], vec![0f64; 256]);
    let (mut oh, mut ob) = (vec![f16::ZERO; 256], vec![bf16::ZERO; 256]);
    decode_slice(&all4, &mut o32).unwrap();
    decode_slice(&all4, &mut o64).unwrap();
    decode_slice(&all4, &mut oh).unwrap();
    decode_slice(&all4, &mut ob).unwrap();
    for (i, x) in all4.iter().enumerate() {
        assert_eq!(o32[i].to_bits(), x.to_f32().to_bits());
        assert_eq!(o64[i].to_bits(), x.to_f64().to_bits());
        assert_eq!(oh[i].to_bits(), x.to_f16().to_bits());
        assert_eq!(ob[i].to_bits(), x.to_bf16().to_bits());
    }
    decode_slice(&all5, &mut oh).unwrap();
    for (i, x) in all5.iter().enumerate() {
        assert_eq!(oh[i].to_bits(), x.to_f16().to_bits());
        if x.is_finite() || x.is_infinite() {
            // E5M2 is the top byte of an f16.
            assert_eq!(oh[i].to_bits(), u16::from(x.to_bits()) << 8);
        }
    }
    let v: Vec<f32> = decode_vec(&all5);
    assert_eq!(v.len(), 256);
    let back: Vec<F8E5M2> = encode_vec(&v);
    for (x, y) in all5.iter().zip(&back) {
        if x.is_finite() {
            assert_eq!(x, y);
        }
    }
}

#[test]
fn slice_length_mismatch_is_an_error_and_writes_nothing() {
    let mut dst = [F8E4M3::ONE; 2];
    let err = encode_slice(&[1.0f32, 2.0, 3.0], &mut dst, OverflowPolicy::Saturate).unwrap_err();
    assert_eq!(err, LengthMismatch { src: 3, dst: 2 });
    assert_eq!(dst, [F8E4M3::ONE; 2]);
    assert!(err.to_string().contains('3'));
    let _: &dyn std::error::Error = &err;
    let mut out = [7.0f32; 3];
    let err = decode_slice(&[F8E5M2::ZERO; 2], &mut out).unwrap_err();
    assert_eq!(err, LengthMismatch { src: 2, dst: 3 });
    assert_eq!(out, [7.0; 3]);
    // Empty slices are fine.
    encode_slice::<f32, F8E4M3>(&[], &mut [], OverflowPolicy::NonFinite).unwrap();
    decode_slice::<F8E4M3, bf16>(&[], &mut []).unwrap();
}

// ---------------------------------------------------------------------------------------
// Quantization.
// ---------------------------------------------------------------------------------------

/// Deterministic test data: magnitudes vary per 128-column tile so scales differ.
fn data(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..rows * cols)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0; // [-1, 1)
            let tile = (i % cols) / QUANT_BLOCK + (i / cols) / QUANT_BLOCK;
            let mag = [1.0, 1e-3, 300.0, 1e4, 0.02][tile % 5];
            (u * mag) as f32
        })
        .collect()
}

/// Half an E4M3 ulp at magnitude `y` (|y| ≤ 448): 2^-10 in the subnormal range (spacing
/// 2^-9), else 2^(floor(log2 y) - 3) / 2.
fn e4m3_half_ulp(y: f64) -> f64 {
    if y < 2f64.powi(-6) {
        2f64.powi(-10)
    } else {
        2f64.powi(y.log2().floor() as i32 - 4)
    }
}

/// Checks every element of a quantized matrix against the error bound.
///
/// With `y = x/s` the exact quotient, the code `q = e4m3(fl32(x/s))` and the output
/// `d = fl32(q·s)`:
///   |d − x| ≤ |q·s − y·s| + |fl32(q·s) − q·s|
///           ≤ s·(|q − fl32(y)| + |fl32(y) − y|) + |d|·2^-24
///           ≤ s·half_ulp(|fl32(y)|) + s·|y|·2^-24 + |d|·2^-24.
/// `half_ulp` is taken at |y|·(1 + 2^-22) so that a quotient rounded across a binade
/// boundary is covered, and the f32 terms use 2^-23 for slack. The dominant term is the
/// checklist's "half an e4m3 ulp at the element's magnitude, times s".
fn check_bound(q: &BlockQuantized, x: &[f32]) {
    let d = q.dequantize();
    let (_, sc) = q.scale_shape();
    let h = match q.layout() {
        ScaleLayout::Tile1x128 => 1,
        ScaleLayout::Block128x128 => QUANT_BLOCK,
    };
    for r in 0..q.rows() {
        for c in 0..q.cols() {
            let i = r * q.cols() + c;
            let s = f64::from(q.scales()[(r / h) * sc + c / QUANT_BLOCK]);
            let (xv, dv) = (f64::from(x[i]), f64::from(d[i]));
            let y = (xv / s).abs();
            assert!(
                y <= 448.0 * (1.0 + 2f64.powi(-20)),
                "|x/s| = {y} > 448 at [{r},{c}]"
            );
            let tol = s * e4m3_half_ulp(y * (1.0 + 2f64.powi(-22)))
                + s * y * 2f64.powi(-23)
                + dv.abs() * 2f64.powi(-23);
            assert!(
                (dv - xv).abs() <= tol,
                "[{r},{c}] x={xv:e} deq={dv:e} s={s:e} err={:e} tol={tol:e}",
                (dv - xv).abs()
            );
        }
    }
}

/// The scale a tile must get, computed here from the doc's formula in f32.
fn expected_scale(amax: f32, fmt: ScaleFormat) -> f32 {
    let s = amax.max(1e-4) / 448.0;
    match fmt {
        ScaleFormat::Fp32 => s,
        // The smallest power of two ≥ s, found by search rather than bit tricks.
        ScaleFormat::Ue8m0 => {
            let mut p = 2f32.powi(-126);
            while p < s {
                p *= 2.0;
            }
            p
        }
    }
}

fn tile_amax(x: &[f32], cols: usize, rows: std::ops::Range<usize>, tile: usize) -> f32 {
    let c0 = tile * QUANT_BLOCK;
    let c1 = (c0 + QUANT_BLOCK).min(cols);
    rows.flat_map(|r| (c0..c1).map(move |c| r * cols + c))
        .map(|i| x[i].abs())
        .fold(0.0, f32::max)
}

#[test]
fn act_quant_scales_codes_and_error_bound() {
    let e4 = SpecFmt::e4m3();
    for (rows, cols) in [(5, 300), (3, 128), (2, 640), (1, 1), (4, 129), (2, 127)] {
        let x = data(rows, cols, 7 + cols as u64);
        for fmt in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
            let q = quantize_act(&x, rows, cols, fmt).unwrap();
            let sc = cols.div_ceil(128);
            assert_eq!(q.scale_shape(), (rows, sc));
            assert_eq!(q.scales().len(), rows * sc);
            assert_eq!(q.codes().len(), rows * cols);
            for r in 0..rows {
                for t in 0..sc {
                    let s = q.scales()[r * sc + t];
                    let amax = tile_amax(&x, cols, r..r + 1, t);
                    assert_eq!(s, expected_scale(amax, fmt), "scale [{r},{t}]");
                    if fmt == ScaleFormat::Ue8m0 {
                        assert_eq!(s.to_bits() & 0x7F_FFFF, 0, "power of two");
                        assert!(s >= amax.max(1e-4) / 448.0 && s / 2.0 < amax.max(1e-4) / 448.0);
                    }
                }
                for c in 0..cols {
                    let i = r * cols + c;
                    let s = q.scales()[r * sc + c / 128];
                    let code = q.codes()[i].to_bits();
                    // kernel.py's formula: e4m3(x / s) with the f32 quotient.
                    let want = e4.encode(f64::from(x[i] / s), OverflowPolicy::Saturate);
                    assert_eq!(Want::Code(code), want, "code [{r},{c}]");
                    assert!(code & 0x7F <= 0x7E, "|y| ≤ 448");
                }
            }
            check_bound(&q, &x);
            if fmt == ScaleFormat::Ue8m0 {
                // Dequantization by a power of two is exact.
                for (i, d) in q.dequantize().iter().enumerate() {
                    let s = q.scales()[(i / cols) * sc + (i % cols) / 128];
                    assert_eq!(f64::from(*d), q.codes()[i].to_f64() * f64::from(s));
                }
            }
        }
    }
}

#[test]
fn weight_quant_scales_and_error_bound() {
    for (n, k) in [
        (256, 256),
        (129, 300),
        (200, 130),
        (1, 1),
        (127, 129),
        (300, 64),
    ] {
        let w = data(n, k, 99 + n as u64);
        for fmt in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
            let q = quantize_weight(&w, n, k, fmt).unwrap();
            let (nb, kb) = (n.div_ceil(128), k.div_ceil(128));
            assert_eq!(q.scale_shape(), (nb, kb));
            assert_eq!(q.layout(), ScaleLayout::Block128x128);
            for bi in 0..nb {
                for bj in 0..kb {
                    let rows = bi * 128..((bi + 1) * 128).min(n);
                    let amax = tile_amax(&w, k, rows, bj);
                    assert_eq!(q.scales()[bi * kb + bj], expected_scale(amax, fmt));
                }
            }
            // weight_scale_inv semantics: y[i,j] = code[i,j] · s[i/128, j/128].
            let d = q.dequantize();
            for i in 0..n {
                for j in 0..k {
                    let s = q.scales()[(i / 128) * kb + j / 128];
                    assert_eq!(d[i * k + j], q.codes()[i * k + j].to_f32() * s);
                }
            }
            check_bound(&q, &w);
        }
    }
}

#[test]
fn all_zero_tiles_get_the_amax_floor() {
    // Row 0: tile 0 all +0, tile 1 non-zero. Row 1: tile 0 all −0, tile 1 tiny (< floor).
    let cols = 256;
    let mut x = vec![0.0f32; 2 * cols];
    for c in 128..256 {
        x[c] = (c as f32) - 200.0;
        x[cols + c] = 1e-6;
    }
    for c in 0..128 {
        x[cols + c] = -0.0;
    }
    for fmt in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
        let q = quantize_act(&x, 2, cols, fmt).unwrap();
        let floor = expected_scale(0.0, fmt);
        assert_eq!(AMAX_FLOOR, 1e-4);
        assert_eq!(
            floor,
            if fmt == ScaleFormat::Fp32 {
                1e-4f32 / 448.0
            } else {
                2f32.powi(-22)
            }
        );
        assert_eq!(q.scales()[0], floor, "zero tile: scale = 1e-4/448, not NaN");
        assert_eq!(q.scales()[2], floor, "−0 tile");
        assert_eq!(
            q.scales()[3],
            floor,
            "tile below the floor uses the floor too"
        );
        assert!(q.codes()[..128].iter().all(|c| c.to_bits() == 0x00));
        assert!(
            q.codes()[cols..cols + 128]
                .iter()
                .all(|c| c.to_f32() == 0.0)
        );
        assert!(q.scales().iter().all(|s| s.is_finite() && *s > 0.0));
        assert!(q.dequantize()[..128].iter().all(|d| *d == 0.0));
        check_bound(&q, &x);
        let w = quantize_weight(&vec![0.0f32; 130 * 5], 130, 5, fmt).unwrap();
        assert_eq!(w.scales(), [floor, floor]);
        assert!(w.codes().iter().all(|c| c.to_bits() == 0));
    }
    assert_eq!(tile_scale(0.0, ScaleFormat::Fp32), 1e-4 / 448.0);
}

/// A width/height that is not a multiple of 128 behaves exactly like the zero-padded matrix.
#[test]
fn edge_tiles_equal_zero_padded_quantization() {
    for (rows, cols) in [
        (3, 1),
        (2, 127),
        (2, 129),
        (1, 255),
        (3, 257),
        (130, 200),
        (129, 1),
    ] {
        let x = data(rows, cols, 3 + rows as u64 * 1000 + cols as u64);
        let (pr, pc) = (rows.div_ceil(128) * 128, cols.div_ceil(128) * 128);
        let mut padded = vec![0.0f32; pr * pc];
        for r in 0..rows {
            padded[r * pc..r * pc + cols].copy_from_slice(&x[r * cols..(r + 1) * cols]);
        }
        for fmt in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
            let a = quantize_act(&x, rows, cols, fmt).unwrap();
            let ap = quantize_act(&padded[..rows * pc], rows, pc, fmt).unwrap();
            assert_eq!(a.scales(), ap.scales(), "act [{rows},{cols}]");
            let w = quantize_weight(&x, rows, cols, fmt).unwrap();
            let wp = quantize_weight(&padded, pr, pc, fmt).unwrap();
            assert_eq!(w.scales(), wp.scales(), "weight [{rows},{cols}]");
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(a.codes()[r * cols + c], ap.codes()[r * pc + c]);
                    assert_eq!(w.codes()[r * cols + c], wp.codes()[r * pc + c]);
                }
            }
        }
    }
}

#[test]
fn one_by_one_and_empty_inputs() {
    let q = quantize_act(&[3.0f32], 1, 1, ScaleFormat::Fp32).unwrap();
    assert_eq!(q.scales(), [3.0 / 448.0]);
    assert_eq!(q.codes()[0], F8E4M3::MAX);
    assert!((q.dequantize()[0] - 3.0).abs() < 1e-6);
    let w = quantize_weight(&[-5.0f32], 1, 1, ScaleFormat::Ue8m0).unwrap();
    assert_eq!(w.scales(), [2f32.powi(-6)]); // 5/448 ≈ 0.011 -> 1/64
    assert_eq!(w.dequantize(), [-5.0]); // 320 is an E4M3 value: exact

    for (rows, cols) in [(0, 0), (0, 300), (5, 0)] {
        for layout in [ScaleLayout::Tile1x128, ScaleLayout::Block128x128] {
            let q = match layout {
                ScaleLayout::Tile1x128 => quantize_act::<f32>(&[], rows, cols, ScaleFormat::Fp32),
                ScaleLayout::Block128x128 => {
                    quantize_weight::<f32>(&[], rows, cols, ScaleFormat::Fp32)
                }
            }
            .unwrap();
            let (sr, sc) = layout.scale_shape(rows, cols);
            assert_eq!(q.scale_shape(), (sr, sc));
            assert_eq!(q.scales().len(), sr * sc);
            assert!(q.codes().is_empty() && q.dequantize().is_empty());
        }
    }
    assert_eq!(ScaleLayout::Tile1x128.scale_shape(5, 0), (5, 0));
    assert_eq!(ScaleLayout::Tile1x128.scale_shape(0, 300), (0, 3));
}

#[test]
fn bf16_and_f16_inputs_equal_their_f32_upcast() {
    let x = data(4, 300, 11);
    let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let xb32: Vec<f32> = xb.iter().map(|v| v.to_f32()).collect();
    let xh: Vec<f16> = x
        .iter()
        .map(|&v| f16::from_f32(v.clamp(-6e4, 6e4)))
        .collect();
    let xh32: Vec<f32> = xh.iter().map(|v| v.to_f32()).collect();
    for fmt in [ScaleFormat::Fp32, ScaleFormat::Ue8m0] {
        assert_eq!(
            quantize_act(&xb, 4, 300, fmt).unwrap(),
            quantize_act(&xb32, 4, 300, fmt).unwrap()
        );
        assert_eq!(
            quantize_weight(&xh, 4, 300, fmt).unwrap(),
            quantize_weight(&xh32, 4, 300, fmt).unwrap()
        );
    }
}

#[test]
fn quantization_errors() {
    let x = vec![1.0f32; 6];
    assert_eq!(
        quantize_act(&x, 2, 4, ScaleFormat::Fp32),
        Err(QuantError::Length {
            what: "input",
            expected: 8,
            actual: 6
        })
    );
    assert_eq!(
        quantize_weight(&x, usize::MAX, 2, ScaleFormat::Fp32),
        Err(QuantError::ShapeOverflow {
            rows: usize::MAX,
            cols: 2
        })
    );
    // Large but non-overflowing shapes with a wrong buffer fail cleanly (no allocation).
    assert!(matches!(
        quantize_weight(&x, 1, usize::MAX / 2, ScaleFormat::Fp32),
        Err(QuantError::Length { what: "input", .. })
    ));

    // NaN / Inf are reported at their position, including in a later 128-row band.
    let mut w = vec![0.5f32; 300 * 3];
    w[200 * 3 + 2] = f32::INFINITY;
    assert_eq!(
        quantize_weight(&w, 300, 3, ScaleFormat::Fp32),
        Err(QuantError::NonFinite { row: 200, col: 2 })
    );
    let mut a = vec![0.5f32; 4 * 200];
    a[3 * 200 + 150] = f32::NAN;
    a[3 * 200 + 160] = f32::NEG_INFINITY;
    let err = quantize_act(&a, 4, 200, ScaleFormat::Ue8m0).unwrap_err();
    assert_eq!(err, QuantError::NonFinite { row: 3, col: 150 });
    assert!(err.to_string().contains("[3, 150]"));
    let _: &dyn std::error::Error = &err;

    // _into variants check every buffer.
    let mut codes = vec![F8E4M3::ZERO; 8];
    let mut scales = vec![0.0f32; 2];
    let x8 = vec![1.0f32; 8];
    let lay = ScaleLayout::Tile1x128;
    assert!(quantize_into(lay, &x8, 2, 4, ScaleFormat::Fp32, &mut codes, &mut scales).is_ok());
    assert_eq!(
        quantize_into(
            lay,
            &x8,
            2,
            4,
            ScaleFormat::Fp32,
            &mut codes,
            &mut scales[..1]
        ),
        Err(QuantError::Length {
            what: "scales",
            expected: 2,
            actual: 1
        })
    );
    assert_eq!(
        quantize_into(
            lay,
            &x8,
            2,
            4,
            ScaleFormat::Fp32,
            &mut codes[..7],
            &mut scales
        ),
        Err(QuantError::Length {
            what: "codes",
            expected: 8,
            actual: 7
        })
    );
    assert_eq!(
        quantize_into(
            lay,
            &x8[..7],
            2,
            4,
            ScaleFormat::Fp32,
            &mut codes,
            &mut scales
        ),
        Err(QuantError::Length {
            what: "input",
            expected: 8,
            actual: 7
        })
    );
    let mut out = vec![0.0f32; 7];
    assert_eq!(
        dequantize_into(lay, &codes, &scales, 2, 4, &mut out),
        Err(QuantError::Length {
            what: "output",
            expected: 8,
            actual: 7
        })
    );
    assert_eq!(
        dequantize_into(
            ScaleLayout::Block128x128,
            &codes,
            &scales,
            2,
            4,
            &mut [0.0; 8]
        ),
        Err(QuantError::Length {
            what: "scales",
            expected: 1,
            actual: 2
        })
    );
    assert!(BlockQuantized::from_parts(codes.clone(), scales.clone(), 4, 2, lay).is_err());
    let q = BlockQuantized::from_parts(codes.clone(), scales.clone(), 2, 4, lay).unwrap();
    assert_eq!((q.rows(), q.cols()), (2, 4));
    assert_eq!(q.into_parts(), (codes, scales));
}

#[test]
fn scales_length_error_counts_every_tile_beyond_128_columns() {
    // More than one tile along both dimensions, with ragged edges, so the expected count is
    // the product of ceil-divided dimensions (not a sum, nor either dimension alone).
    let codes = vec![F8E4M3::ZERO; 200 * 300];
    let mut out = vec![0.0f32; 200 * 300];
    for (layout, expected) in [
        (ScaleLayout::Tile1x128, 200 * 3),
        (ScaleLayout::Block128x128, 2 * 3),
    ] {
        let scales = vec![1.0f32; expected + 1];
        assert_eq!(
            dequantize_into(layout, &codes, &scales, 200, 300, &mut out),
            Err(QuantError::Length {
                what: "scales",
                expected,
                actual: expected + 1
            }),
            "{layout:?}"
        );
        assert!(dequantize_into(layout, &codes, &scales[..expected], 200, 300, &mut out).is_ok());
    }
}

#[test]
fn ue8m0_rounding() {
    assert_eq!(ceil_to_ue8m0(1.0), 1.0);
    assert_eq!(ceil_to_ue8m0(1.0000001), 2.0);
    assert_eq!(ceil_to_ue8m0(0.75), 1.0);
    assert_eq!(ceil_to_ue8m0(448.0), 512.0);
    assert_eq!(ceil_to_ue8m0(1e-4 / 448.0), 2f32.powi(-22)); // 2.23e-7 -> 2^-22
    // Clamped to the UE8M0 exponent range [1, 254] as DeepGEMM does.
    assert_eq!(ceil_to_ue8m0(f32::from_bits(1)), 2f32.powi(-126));
    assert_eq!(ceil_to_ue8m0(f32::MAX), 2f32.powi(127));
    for e in -126..=127 {
        let p = 2f32.powi(e);
        assert_eq!(ceil_to_ue8m0(p), p);
        if e < 127 {
            assert_eq!(ceil_to_ue8m0(next_up32(p)), 2.0 * p);
        }
        if e > -126 {
            assert_eq!(ceil_to_ue8m0(next_down32(p)), p);
        }
    }
}

/// `amax / 448` can round down in f32, putting `x / s` one ulp above 448: that must encode as
/// the largest finite code, not NaN.
#[test]
fn one_ulp_above_448_saturates_to_the_largest_code() {
    let just_above = f32::from_bits(448.0f32.to_bits() + 1);
    assert_eq!(F8E4M3::from_f32(just_above).to_bits(), 0x7E);
    assert_eq!(F8E4M3::from_f32(-just_above).to_bits(), 0xFE);
}
