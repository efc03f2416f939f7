//! Comparing device results with the f64 reference: number formats, per-element bounds, and
//! the outcome row of one case.
//!
//! Every tolerance is derived from the formats involved (unit roundoff `u` = half an ulp,
//! relative; `tiny` = the smallest subnormal, the absolute rounding error near zero) and the
//! operation's error analysis; the `source` of each outcome says which.

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

/// The rounding facts of one number format.
#[derive(Clone, Copy, Debug)]
pub struct Format {
    /// Name in tables.
    pub name: &'static str,
    /// Unit roundoff: half an ulp relative to the value (2^-p for p significand bits).
    pub u: f64,
    /// The smallest positive subnormal: the rounding error near zero.
    pub tiny: f64,
}

/// IEEE binary32: 24 significand bits.
pub const FP32: Format = Format {
    name: "fp32",
    u: 5.960_464_477_539_063e-8,     // 2^-24
    tiny: 1.401_298_464_324_817e-45, // 2^-149
};
/// IEEE binary16: 11 significand bits.
pub const FP16: Format = Format {
    name: "fp16",
    u: 4.882_812_5e-4,              // 2^-11
    tiny: 5.960_464_477_539_063e-8, // 2^-24
};
/// bfloat16: 8 significand bits, fp32's exponent.
pub const BF16: Format = Format {
    name: "bf16",
    u: 3.906_25e-3,                  // 2^-8
    tiny: 9.183_549_615_799_121e-41, // 2^-133
};

/// An element type the kernels take, with its format.
pub trait Elem: bytemuck::Pod + Copy {
    /// Its rounding facts.
    const FORMAT: Format;
    /// Rounds once, to nearest even.
    fn from_f64(x: f64) -> Self;
    /// Exact.
    fn to_f64(self) -> f64;
}

impl Elem for f32 {
    const FORMAT: Format = FP32;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self.into()
    }
}

impl Elem for f16 {
    const FORMAT: Format = FP16;
    fn from_f64(x: f64) -> Self {
        f16::from_f64(x)
    }
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
}

impl Elem for bf16 {
    const FORMAT: Format = BF16;
    fn from_f64(x: f64) -> Self {
        bf16::from_f64(x)
    }
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
}

/// Rounds reference inputs to `T`, so the device and the reference see the same values.
pub fn round_to<T: Elem>(values: &[f64]) -> Vec<T> {
    values.iter().map(|&v| T::from_f64(v)).collect()
}

/// Widens device output for comparison.
pub fn widen<T: Elem>(values: &[T]) -> Vec<f64> {
    values.iter().map(|v| v.to_f64()).collect()
}

/// The verdict of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Within tolerance.
    Pass,
    /// Outside tolerance.
    Fail,
    /// The operator returned an error.
    Error,
    /// Not run: the machine lacks what the case needs (the `source` says what).
    Skipped,
}

/// One row of the conformance table and report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// Operator family and operator, e.g. `kernels/swiglu`.
    pub op: String,
    /// Element types and shape.
    pub case: String,
    /// What was measured.
    pub metric: String,
    /// The measured value (`null` in JSON when not a number).
    pub measured: Option<f64>,
    /// The largest value that passes.
    pub tolerance: Option<f64>,
    /// Where the tolerance comes from.
    pub source: String,
    /// Pass, fail or error.
    pub verdict: Verdict,
}

impl Outcome {
    /// A case whose operator failed with `error`.
    pub fn error(op: &str, case: &str, error: impl std::fmt::Display) -> Outcome {
        Outcome {
            op: op.to_string(),
            case: case.to_string(),
            metric: "the operator returned an error".to_string(),
            measured: None,
            tolerance: None,
            source: error.to_string(),
            verdict: Verdict::Error,
        }
    }

    /// A case this machine cannot run: `needs` says what it lacks (`skipped: needs ...`).
    pub fn skipped(op: &str, case: &str, needs: impl std::fmt::Display) -> Outcome {
        Outcome {
            op: op.to_string(),
            case: case.to_string(),
            metric: "not run".to_string(),
            measured: None,
            tolerance: None,
            source: format!("skipped: needs {needs}"),
            verdict: Verdict::Skipped,
        }
    }

    /// A count of mismatches that must be zero (results the reference fixes bit for bit).
    pub fn exact(op: &str, case: &str, what: &str, mismatches: usize, source: &str) -> Outcome {
        Outcome {
            op: op.to_string(),
            case: case.to_string(),
            metric: format!("{what} differing from the reference"),
            measured: Some(mismatches as f64),
            tolerance: Some(0.0),
            source: source.to_string(),
            verdict: if mismatches == 0 {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
        }
    }
}

/// Compares `got` with `want` element by element, each within `bound(i)`, and reports the
/// worst element (largest error relative to its bound). NaN must meet NaN; a NaN on one side
/// only is an infinite error.
pub fn within(
    op: &str,
    case: &str,
    got: &[f64],
    want: &[f64],
    bound: impl Fn(usize) -> f64,
    source: &str,
) -> Outcome {
    let mut worst: Option<(usize, f64, f64)> = None;
    let mut ratio_of_worst = -1.0;
    if got.len() != want.len() {
        return Outcome::error(
            op,
            case,
            format!("{} results; expected {}", got.len(), want.len()),
        );
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = match (g.is_nan(), w.is_nan()) {
            (true, true) => 0.0,
            (false, false) if g == w => 0.0,
            (false, false) => (g - w).abs(),
            _ => f64::INFINITY,
        };
        let b = bound(i);
        let ratio = if err == 0.0 { 0.0 } else { err / b };
        if ratio > ratio_of_worst || ratio.is_nan() {
            ratio_of_worst = ratio;
            worst = Some((i, err, b));
        }
    }
    let (i, err, b) = worst.unwrap_or((0, 0.0, 0.0));
    Outcome {
        op: op.to_string(),
        case: case.to_string(),
        metric: if got.is_empty() {
            "max |error| (no elements)".to_string()
        } else {
            format!("max |error| of {}, at [{i}]", got.len())
        },
        measured: Some(err),
        tolerance: Some(b),
        source: source.to_string(),
        verdict: if err <= b {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
    }
}

/// γ_n = n·u / (1 − n·u) with fp32's u: the relative bound of an n-term fp32 sum of products
/// against the sum of their magnitudes, in any order (Higham, Theorem 3.1).
pub fn gamma(n: usize) -> f64 {
    n as f64 * FP32.u / (1.0 - n as f64 * FP32.u)
}

/// The relative L2 error `‖got − want‖ / ‖want‖` against `tolerance`, for results whose
/// worst case per element is far too loose to test anything (long chains of bf16 roundings:
/// the `source` says which model of the errors gives the tolerance). A length mismatch or a
/// NaN fails.
pub fn rel_l2(
    op: &str,
    case: &str,
    got: &[f64],
    want: &[f64],
    tolerance: f64,
    source: &str,
) -> Outcome {
    if got.len() != want.len() {
        return Outcome::error(
            op,
            case,
            format!("{} results; expected {}", got.len(), want.len()),
        );
    }
    let (err2, ref2) = got.iter().zip(want).fold((0.0, 0.0), |(e, r), (g, w)| {
        (e + (g - w) * (g - w), r + w * w)
    });
    let rel = (err2 / ref2.max(f64::MIN_POSITIVE)).sqrt();
    Outcome {
        op: op.to_string(),
        case: case.to_string(),
        metric: format!("relative L2 error of {} values", got.len()),
        measured: Some(rel),
        tolerance: Some(tolerance),
        source: source.to_string(),
        verdict: if rel <= tolerance {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
    }
}

/// The f64 product `C[m,n] = Σ_k A(i,k)·B(k,j)` and, per element, `Σ_k |A(i,k)·B(k,j)|`, which
/// bounds the rounding error of any fp32 summation order.
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: impl Fn(usize, usize) -> f64,
    b: impl Fn(usize, usize) -> f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0.0; m * n];
    let mut magnitude = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for kk in 0..k {
                let p = a(i, kk) * b(kk, j);
                c[i * n + j] += p;
                magnitude[i * n + j] += p.abs();
            }
        }
    }
    (c, magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(got: &[f64], want: &[f64], bound: f64) -> Outcome {
        within("op", "case", got, want, |_| bound, "src")
    }

    fn with_bounds(got: &[f64], want: &[f64], bounds: &[f64]) -> Outcome {
        within("op", "case", got, want, |i| bounds[i], "src")
    }

    #[test]
    fn formats_round_once_to_nearest_even_and_widen_exactly() {
        // bf16 has 8 significand bits, so 1 + 2^-8 is the tie between 1 and 1 + 2^-7 and
        // rounds to the even 1; fp16 (11 bits) and fp32 hold it, and 1.5 and -0.25, exactly.
        let values = [1.5, -0.25, 1.0 + 2f64.powi(-8)];
        assert_eq!(
            round_to::<f32>(&values),
            [1.5f32, -0.25, 1.0 + 2f32.powi(-8)]
        );
        assert_eq!(
            widen(&round_to::<f16>(&values)),
            [1.5, -0.25, 1.0 + 2f64.powi(-8)]
        );
        assert_eq!(widen(&round_to::<bf16>(&values)), [1.5, -0.25, 1.0]);
        assert_eq!(widen(&round_to::<f32>(&values)), values);
    }

    #[test]
    fn exact_counts_pass_only_at_zero() {
        assert_eq!(
            Outcome::exact("o", "c", "ids", 0, "s").verdict,
            Verdict::Pass
        );
        let one = Outcome::exact("o", "c", "ids", 1, "s");
        assert_eq!((one.verdict, one.measured), (Verdict::Fail, Some(1.0)));
        let e = Outcome::error("o", "c", "boom");
        assert_eq!((e.verdict, e.source.as_str()), (Verdict::Error, "boom"));
    }

    #[test]
    fn within_reports_the_worst_element_relative_to_its_bound() {
        // Errors 0.5 and 0.125 (exact in binary) against bounds 10 and 0.125: the second is the
        // worst (ratio 1), though the first is larger.
        let o = with_bounds(&[1.5, 2.125], &[1.0, 2.0], &[10.0, 0.125]);
        assert_eq!(o.verdict, Verdict::Pass, "{o:?}");
        assert_eq!((o.measured, o.tolerance), (Some(0.125), Some(0.125)));
        assert!(o.metric.ends_with("at [1]"), "{}", o.metric);
        // Equal ratios (0.125/1, 0.25/2): the first stays the worst.
        let o = with_bounds(&[1.125, 2.25], &[1.0, 2.0], &[1.0, 2.0]);
        assert_eq!(o.measured, Some(0.125), "{o:?}");
        // A small error well within the bound is still reported, not hidden as zero.
        let o = verdict(&[1.0], &[1.0 + 2f64.powi(-20)], 1.0);
        assert_eq!(o.measured, Some(2f64.powi(-20)));
        // Over the bound fails; exactly at it passes.
        assert_eq!(verdict(&[1.0], &[1.5], 0.25).verdict, Verdict::Fail);
        assert_eq!(verdict(&[1.0], &[1.5], 0.5).verdict, Verdict::Pass);
        // An exact match among a bound of zero is no error.
        let o = verdict(&[3.0, -1.0], &[3.0, -1.0], 0.0);
        assert_eq!((o.verdict, o.measured), (Verdict::Pass, Some(0.0)));
    }

    #[test]
    fn within_matches_nan_with_nan_and_infinity_with_itself_only() {
        assert_eq!(
            verdict(&[f64::NAN], &[f64::NAN], 0.0).verdict,
            Verdict::Pass
        );
        let inf = f64::INFINITY;
        assert_eq!(verdict(&[inf], &[inf], 1.0).verdict, Verdict::Pass);
        assert_eq!(verdict(&[-inf], &[inf], 1.0).verdict, Verdict::Fail);
        let o = verdict(&[0.0, f64::NAN], &[0.0, 1.0], 1e300);
        assert_eq!((o.verdict, o.measured), (Verdict::Fail, Some(inf)));
        assert_eq!(verdict(&[1.0], &[f64::NAN], 1e300).verdict, Verdict::Fail);
    }

    #[test]
    fn within_rejects_a_length_mismatch_and_accepts_nothing_against_nothing() {
        let o = verdict(&[1.0], &[1.0, 2.0], 1.0);
        assert_eq!(o.verdict, Verdict::Error);
        assert!(o.source.contains("1 results; expected 2"), "{}", o.source);
        let o = verdict(&[], &[], 0.0);
        assert_eq!((o.verdict, o.measured), (Verdict::Pass, Some(0.0)));
    }

    #[test]
    fn rel_l2_passes_within_the_tolerance_and_fails_on_nan_or_a_short_result() {
        // ‖(0.03, 0.04)‖ = 0.05 against ‖(3, 4)‖ = 5: 1e-2.
        let o = rel_l2("o", "c", &[3.03, 4.04], &[3.0, 4.0], 0.011, "s");
        assert_eq!(o.verdict, Verdict::Pass, "{o:?}");
        assert!((o.measured.unwrap() - 0.01).abs() < 1e-12);
        assert_eq!(
            rel_l2("o", "c", &[3.03, 4.04], &[3.0, 4.0], 0.009, "s").verdict,
            Verdict::Fail
        );
        let nan = rel_l2("o", "c", &[f64::NAN, 4.0], &[3.0, 4.0], 1.0, "s");
        assert_eq!(nan.verdict, Verdict::Fail);
        assert_eq!(
            rel_l2("o", "c", &[3.0], &[3.0, 4.0], 1.0, "s").verdict,
            Verdict::Error
        );
        assert!((gamma(1) - FP32.u / (1.0 - FP32.u)).abs() < 1e-30);
    }

    #[test]
    fn gemm_sums_products_and_their_magnitudes() {
        // A = [[1, -2, 3], [0.5, 4, -1]], B = [[2, 1], [1, -1], [-3, 0.25]]:
        // C = [[2 - 2 - 9, 1 + 2 + 0.75], [1 + 4 + 3, 0.5 - 4 - 0.25]].
        let a = [[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]];
        let b = [[2.0, 1.0], [1.0, -1.0], [-3.0, 0.25]];
        let (c, magnitude) = gemm(2, 2, 3, |i, k| a[i][k], |k, j| b[k][j]);
        assert_eq!(c, [-9.0, 3.75, 8.0, -3.75]);
        assert_eq!(magnitude, [13.0, 3.75, 8.0, 4.75]);
    }
}
