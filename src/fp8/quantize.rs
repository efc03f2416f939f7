//! CPU reference for DeepSeek-V3's fine-grained FP8 scaling: per-token 1×128 activation tiles
//! and 128×128 weight blocks, both E4M3 with one f32 scale per tile/block, and their
//! dequantization. Device kernels are checked against these functions.
//!
//! Semantics follow `inference/kernel.py` (`act_quant`, `weight_dequant`) as summarised in
//! `shared/reference/deepseek-ops.md` §4.4–4.5:
//! * `amax = max(|x|)` over the tile, clamped to at least [`AMAX_FLOOR`] = 1e-4 (the
//!   `tl.maximum(amax, 1e-4)` of commit adecc0e), so an all-zero tile gets the scale
//!   `1e-4/448` and codes of +0 instead of the 0/0 = NaN of the Dec-2024 release;
//! * `s = amax / 448` in f32; with [`ScaleFormat::Ue8m0`], `s = 2^ceil(log2 s)` (DeepGEMM's
//!   `ceil_to_ue8m0`), rounded *up* so `|x/s| ≤ 448` still holds;
//! * codes are `e4m3(x / s)` (kernel.py's `x/s`; DeepGEMM's `x·(1/s)` can differ by one code
//!   on rare ties), round to nearest even, saturating: when `amax / 448` rounds down in f32,
//!   `x/s` can land one f32 ulp above 448, and saturation maps it to 448 (0x7E), not NaN;
//! * the scale is stored as a multiplier (`weight_scale_inv` semantics): `x ≈ code · s`.
//!
//! Edge sizes follow DeepGEMM's casts rather than kernel.py's assert: a width (or, for
//! weights, a height) that is not a multiple of 128 gets ceil-divided scale shapes, and the
//! partial edge tile is treated as zero-padded. Padding zeros never change `amax` (which is
//! ≥ 0), so it is simply computed over the real elements; no padded data is stored.
//!
//! Non-finite inputs are rejected with [`QuantError::NonFinite`]: one NaN would make its
//! tile's `amax` (hence scale and every code) NaN, and one Inf would make every other
//! element of the tile 0, silently. Callers that want that behaviour can clamp first.

use super::format::F8E4M3;

/// Width of an activation tile and side of a weight block.
pub const QUANT_BLOCK: usize = 128;

/// The lower clamp on a tile's `amax` (kernel.py, commit adecc0e).
pub const AMAX_FLOOR: f32 = 1e-4;

/// The E4M3 value `amax` is mapped to.
const E4M3_MAX: f32 = F8E4M3::MAX_F32;

/// How a scale is rounded after `amax / 448`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ScaleFormat {
    /// The f32 quotient as is (DeepSeek-V3/R1).
    #[default]
    Fp32,
    /// Rounded up to a power of two, as an 8-bit exponent would store it (UE8M0 / OCP MX
    /// E8M0; DeepSeek-V3.1 `scale_fmt: ue8m0`, required by SM100 DeepGEMM). Dequantization
    /// is then exact.
    Ue8m0,
}

/// Which elements share a scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleLayout {
    /// Activations: one scale per row and 128 columns; scales are `[rows, ceil(cols/128)]`.
    Tile1x128,
    /// Weights `[N, K]`: one scale per 128×128 block; scales are
    /// `[ceil(N/128), ceil(K/128)]` (the checkpoint's `weight_scale_inv`).
    Block128x128,
}

impl ScaleLayout {
    /// Rows that share one scale row: 1 or 128.
    const fn rows_per_scale(self) -> usize {
        match self {
            ScaleLayout::Tile1x128 => 1,
            ScaleLayout::Block128x128 => QUANT_BLOCK,
        }
    }

    /// The `[rows, cols]` shape of the scale matrix for a `[rows, cols]` input.
    ///
    /// ```
    /// use ascend_npu::fp8::ScaleLayout;
    /// assert_eq!(ScaleLayout::Tile1x128.scale_shape(3, 300), (3, 3));
    /// assert_eq!(ScaleLayout::Block128x128.scale_shape(129, 128), (2, 1));
    /// assert_eq!(ScaleLayout::Block128x128.scale_shape(0, 5), (0, 1));
    /// ```
    pub const fn scale_shape(self, rows: usize, cols: usize) -> (usize, usize) {
        (
            rows.div_ceil(self.rows_per_scale()),
            cols.div_ceil(QUANT_BLOCK),
        )
    }
}

/// Invalid input to a quantization or dequantization function.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// `rows × cols` does not fit in `usize`.
    #[error("FP8 quantization: shape [{rows}, {cols}] overflows usize")]
    ShapeOverflow {
        /// Rows requested.
        rows: usize,
        /// Columns requested.
        cols: usize,
    },
    /// A buffer's length does not match the shape.
    #[error("FP8 quantization: {what} has {actual} elements, expected {expected}")]
    Length {
        /// Which buffer: `"input"`, `"codes"`, `"scales"` or `"output"`.
        what: &'static str,
        /// The length the shape implies.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The input holds NaN or ±Inf at this position (row-major `[row, col]`).
    #[error("FP8 quantization: non-finite input at [{row}, {col}]")]
    NonFinite {
        /// Row of the first offending element found.
        row: usize,
        /// Column of that element.
        col: usize,
    },
}

/// Rounds a positive scale up to a power of two, as DeepGEMM's `ceil_to_ue8m0` does: the
/// f32 exponent plus one if any mantissa bit is set, clamped to the UE8M0 range
/// [2⁻¹²⁶, 2¹²⁷]. For positive normal `s` this is `2^ceil(log2 s)` (kernel.py). The sign
/// is ignored; NaN and Inf give 2¹²⁷.
///
/// ```
/// use ascend_npu::fp8::ceil_to_ue8m0;
/// assert_eq!(ceil_to_ue8m0(0.25), 0.25);
/// assert_eq!(ceil_to_ue8m0(0.2500001), 0.5);
/// assert_eq!(ceil_to_ue8m0(3.0), 4.0);
/// ```
pub fn ceil_to_ue8m0(s: f32) -> f32 {
    let bits = s.to_bits();
    let exp = (bits >> 23) & 0xFF;
    let round_up = u32::from(bits & 0x7F_FFFF != 0);
    f32::from_bits((exp + round_up).clamp(1, 254) << 23)
}

/// The scale of a tile whose largest magnitude is `amax` (finite, ≥ 0): the floor, `/448`,
/// then the optional power-of-two rounding.
///
/// ```
/// use ascend_npu::fp8::{ScaleFormat, tile_scale};
/// assert_eq!(tile_scale(448.0, ScaleFormat::Fp32), 1.0);
/// assert_eq!(tile_scale(0.0, ScaleFormat::Fp32), 1e-4 / 448.0);
/// assert_eq!(tile_scale(500.0, ScaleFormat::Ue8m0), 2.0);
/// ```
pub fn tile_scale(amax: f32, format: ScaleFormat) -> f32 {
    // `max` also maps a NaN amax to the floor; callers reject NaN before this anyway.
    let s = amax.max(AMAX_FLOOR) / E4M3_MAX;
    match format {
        ScaleFormat::Fp32 => s,
        ScaleFormat::Ue8m0 => ceil_to_ue8m0(s),
    }
}

/// A quantized matrix: E4M3 codes in the input's row-major layout plus its scales.
///
/// ```
/// use ascend_npu::fp8::{ScaleFormat, quantize_act};
/// let x: Vec<f32> = (0..2 * 130).map(|i| i as f32 - 100.0).collect();
/// let q = quantize_act(&x, 2, 130, ScaleFormat::Fp32)?;
/// assert_eq!(q.scale_shape(), (2, 2)); // 130 columns -> 2 tiles per row
/// assert_eq!(q.scales()[0], 100.0 / 448.0); // amax of row 0, tile 0 is |-100|
/// let y = q.dequantize();
/// assert!((y[0] - x[0]).abs() <= 0.5 * 16.0 * q.scales()[0]); // half an ulp at 448
/// # Ok::<(), ascend_npu::fp8::QuantError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BlockQuantized {
    codes: Vec<F8E4M3>,
    scales: Vec<f32>,
    rows: usize,
    cols: usize,
    layout: ScaleLayout,
}

impl BlockQuantized {
    /// Assembles a quantized matrix from parts (e.g. loaded from a checkpoint), checking
    /// the lengths against the shape.
    ///
    /// # Errors
    /// [`QuantError::ShapeOverflow`] or [`QuantError::Length`].
    pub fn from_parts(
        codes: Vec<F8E4M3>,
        scales: Vec<f32>,
        rows: usize,
        cols: usize,
        layout: ScaleLayout,
    ) -> Result<Self, QuantError> {
        check_lengths(layout, rows, cols, codes.len(), scales.len())?;
        Ok(Self {
            codes,
            scales,
            rows,
            cols,
            layout,
        })
    }

    /// The codes, row-major `[rows, cols]`.
    pub fn codes(&self) -> &[F8E4M3] {
        &self.codes
    }

    /// The scales, row-major with shape [`scale_shape`](Self::scale_shape).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the matrix.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The scale layout.
    pub fn layout(&self) -> ScaleLayout {
        self.layout
    }

    /// The shape of the scale matrix.
    pub fn scale_shape(&self) -> (usize, usize) {
        self.layout.scale_shape(self.rows, self.cols)
    }

    /// Splits into `(codes, scales)`.
    pub fn into_parts(self) -> (Vec<F8E4M3>, Vec<f32>) {
        (self.codes, self.scales)
    }

    /// `code · scale` for every element, in f32 (kernel.py's `weight_dequant` before its
    /// cast to the default dtype).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.codes.len()];
        // The lengths were checked on construction, so this cannot fail.
        let _ = dequantize_into(
            self.layout,
            &self.codes,
            &self.scales,
            self.rows,
            self.cols,
            &mut out,
        );
        out
    }
}

/// Per-token 1×128 activation quantization of a row-major `[rows, cols]` matrix (f32, bf16
/// or f16). See [the module docs](crate::fp8#quantization) for the exact semantics.
///
/// # Errors
/// [`QuantError::ShapeOverflow`], [`QuantError::Length`] if `x.len() != rows·cols`,
/// [`QuantError::NonFinite`] for NaN/Inf input.
///
/// ```
/// use ascend_npu::fp8::{ScaleFormat, quantize_act};
/// let q = quantize_act(&[0.0f32; 128], 1, 128, ScaleFormat::Fp32)?;
/// assert_eq!(q.scales(), [1e-4 / 448.0]); // all-zero tile: amax floor
/// assert!(q.codes().iter().all(|c| c.to_bits() == 0));
/// # Ok::<(), ascend_npu::fp8::QuantError>(())
/// ```
pub fn quantize_act<T: Copy + Into<f32>>(
    x: &[T],
    rows: usize,
    cols: usize,
    format: ScaleFormat,
) -> Result<BlockQuantized, QuantError> {
    quantize(ScaleLayout::Tile1x128, x, rows, cols, format)
}

/// 128×128 block weight quantization of a row-major `[N, K]` matrix; scales are
/// `[ceil(N/128), ceil(K/128)]` multipliers (`weight_scale_inv`).
///
/// # Errors
/// As [`quantize_act`].
///
/// ```
/// use ascend_npu::fp8::{ScaleFormat, quantize_weight};
/// let w = vec![1.0f32; 200 * 130];
/// let q = quantize_weight(&w, 200, 130, ScaleFormat::Ue8m0)?;
/// assert_eq!(q.scale_shape(), (2, 2));
/// assert_eq!(q.scales()[0], 1.0 / 256.0); // 2^ceil(log2(1/448))
/// # Ok::<(), ascend_npu::fp8::QuantError>(())
/// ```
pub fn quantize_weight<T: Copy + Into<f32>>(
    w: &[T],
    rows: usize,
    cols: usize,
    format: ScaleFormat,
) -> Result<BlockQuantized, QuantError> {
    quantize(ScaleLayout::Block128x128, w, rows, cols, format)
}

fn quantize<T: Copy + Into<f32>>(
    layout: ScaleLayout,
    x: &[T],
    rows: usize,
    cols: usize,
    format: ScaleFormat,
) -> Result<BlockQuantized, QuantError> {
    let len = checked_len(rows, cols)?;
    let (sr, sc) = layout.scale_shape(rows, cols);
    // Validate the input length before allocating anything sized by the shape.
    if x.len() != len {
        return Err(QuantError::Length {
            what: "input",
            expected: len,
            actual: x.len(),
        });
    }
    let mut codes = vec![F8E4M3::ZERO; len];
    let mut scales = vec![0.0; sr * sc];
    quantize_into(layout, x, rows, cols, format, &mut codes, &mut scales)?;
    Ok(BlockQuantized {
        codes,
        scales,
        rows,
        cols,
        layout,
    })
}

/// Quantizes into caller-provided buffers: `codes` is `[rows, cols]`, `scales` is
/// `layout.scale_shape(rows, cols)`, both row-major.
///
/// # Errors
/// As [`quantize_act`]. Lengths are checked before anything is written; after a
/// [`QuantError::NonFinite`], the tiles before the offending one have been written and the
/// rest of the buffers is unspecified.
pub fn quantize_into<T: Copy + Into<f32>>(
    layout: ScaleLayout,
    x: &[T],
    rows: usize,
    cols: usize,
    format: ScaleFormat,
    codes: &mut [F8E4M3],
    scales: &mut [f32],
) -> Result<(), QuantError> {
    check_lengths(layout, rows, cols, codes.len(), scales.len())?;
    if x.len() != codes.len() {
        return Err(QuantError::Length {
            what: "input",
            expected: codes.len(),
            actual: x.len(),
        });
    }
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let band_rows = layout.rows_per_scale();
    // `min(rows)` keeps the product ≤ rows·cols, which is known not to overflow.
    let band_len = band_rows.min(rows) * cols;
    let scale_cols = cols.div_ceil(QUANT_BLOCK);
    // A band is the set of rows sharing one scale row (1 row, or 128 / the remainder).
    for (band, ((xb, cb), sb)) in x
        .chunks(band_len)
        .zip(codes.chunks_mut(band_len))
        .zip(scales.chunks_mut(scale_cols))
        .enumerate()
    {
        // Pass 1: per-tile amax, accumulated in the scale slots. A finiteness flag instead of
        // an early return keeps this loop branch-free; `f32::max` would silently skip NaN.
        sb.fill(0.0);
        let mut finite = true;
        for row in xb.chunks(cols) {
            for (tile, amax) in row.chunks(QUANT_BLOCK).zip(sb.iter_mut()) {
                let mut m = *amax;
                for &v in tile {
                    let v: f32 = v.into();
                    finite &= v.is_finite();
                    m = m.max(v.abs());
                }
                *amax = m;
            }
        }
        if !finite {
            return Err(first_non_finite(xb, cols, band * band_rows));
        }
        for s in sb.iter_mut() {
            *s = tile_scale(*s, format);
        }
        // Pass 2: encode. |v/s| ≤ 448 by construction, so saturation never alters a value.
        for (row, crow) in xb.chunks(cols).zip(cb.chunks_mut(cols)) {
            for ((tile, ctile), &s) in row
                .chunks(QUANT_BLOCK)
                .zip(crow.chunks_mut(QUANT_BLOCK))
                .zip(sb.iter())
            {
                for (c, &v) in ctile.iter_mut().zip(tile) {
                    *c = F8E4M3::from_f32(v.into() / s);
                }
            }
        }
    }
    Ok(())
}

/// Dequantizes `codes` (`[rows, cols]`) with `scales` (`layout.scale_shape(rows, cols)`)
/// into `out` (`[rows, cols]`): `out = code · scale` in f32. NaN codes give NaN.
///
/// # Errors
/// [`QuantError::ShapeOverflow`] or [`QuantError::Length`] (nothing is written then).
///
/// ```
/// use ascend_npu::fp8::{F8E4M3, ScaleLayout, dequantize_into};
/// let codes = [F8E4M3::from_f32(2.0); 3];
/// let mut out = [0.0f32; 3];
/// dequantize_into(ScaleLayout::Tile1x128, &codes, &[0.5, 4.0, 1.0], 3, 1, &mut out)?;
/// assert_eq!(out, [1.0, 8.0, 2.0]);
/// # Ok::<(), ascend_npu::fp8::QuantError>(())
/// ```
pub fn dequantize_into(
    layout: ScaleLayout,
    codes: &[F8E4M3],
    scales: &[f32],
    rows: usize,
    cols: usize,
    out: &mut [f32],
) -> Result<(), QuantError> {
    check_lengths(layout, rows, cols, codes.len(), scales.len())?;
    if out.len() != codes.len() {
        return Err(QuantError::Length {
            what: "output",
            expected: codes.len(),
            actual: out.len(),
        });
    }
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let band_len = layout.rows_per_scale().min(rows) * cols;
    let scale_cols = cols.div_ceil(QUANT_BLOCK);
    for ((cb, ob), sb) in codes
        .chunks(band_len)
        .zip(out.chunks_mut(band_len))
        .zip(scales.chunks(scale_cols))
    {
        for (crow, orow) in cb.chunks(cols).zip(ob.chunks_mut(cols)) {
            for ((ctile, otile), &s) in crow
                .chunks(QUANT_BLOCK)
                .zip(orow.chunks_mut(QUANT_BLOCK))
                .zip(sb)
            {
                for (o, c) in otile.iter_mut().zip(ctile) {
                    *o = c.to_f32() * s;
                }
            }
        }
    }
    Ok(())
}

fn checked_len(rows: usize, cols: usize) -> Result<usize, QuantError> {
    rows.checked_mul(cols)
        .ok_or(QuantError::ShapeOverflow { rows, cols })
}

fn check_lengths(
    layout: ScaleLayout,
    rows: usize,
    cols: usize,
    codes: usize,
    scales: usize,
) -> Result<(), QuantError> {
    let len = checked_len(rows, cols)?;
    if codes != len {
        return Err(QuantError::Length {
            what: "codes",
            expected: len,
            actual: codes,
        });
    }
    // Cannot overflow: each factor is at most the corresponding (non-overflowing) dimension.
    let (sr, sc) = layout.scale_shape(rows, cols);
    if scales != sr * sc {
        return Err(QuantError::Length {
            what: "scales",
            expected: sr * sc,
            actual: scales,
        });
    }
    Ok(())
}

/// The position of the first non-finite element of a band starting at row `row0`.
fn first_non_finite<T: Copy + Into<f32>>(band: &[T], cols: usize, row0: usize) -> QuantError {
    let i = band
        .iter()
        .position(|&v| !v.into().is_finite())
        .unwrap_or(0);
    QuantError::NonFinite {
        row: row0 + i / cols,
        col: i % cols,
    }
}
