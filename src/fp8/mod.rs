//! OCP FP8 formats (E4M3FN and E5M2), exact conversions, and the CPU reference for
//! DeepSeek-V3's block-scaled FP8 quantization.
//!
//! * [`F8E4M3`], [`F8E5M2`]: one-byte `#[repr(transparent)]` storage types (bytemuck
//!   `Pod`), with conversions from `f32`, `f64`, [`half::f16`] and [`half::bf16`] that round
//!   once, to nearest, ties to even, from the source value; and exact conversions back.
//! * [`OverflowPolicy`]: what overflow and ±Inf become. [`Saturate`](OverflowPolicy::Saturate)
//!   (±max) is the default; [`NonFinite`](OverflowPolicy::NonFinite) gives ±Inf (E5M2) or NaN
//!   (E4M3, which has no Inf). NaN always gives NaN with the input's sign; −0 stays −0.
//! * [`encode_slice`] / [`decode_slice`]: whole-slice conversions (branch-free encode,
//!   table decode); a length mismatch is a [`LengthMismatch`] error.
//! * [`quantize_act`] (1×128 per-token tiles), [`quantize_weight`] (128×128 blocks),
//!   [`quantize_into`], [`dequantize_into`], [`BlockQuantized`]: the reference the device
//!   kernels are checked against; see [Quantization](#quantization) below.
//!
//! ```
//! use ascend_npu::fp8::{F8E4M3, F8E5M2, OverflowPolicy};
//! let x = F8E4M3::from_f32(0.3);
//! assert_eq!(x.to_f32(), 0.3125); // nearest E4M3 value
//! assert_eq!(F8E4M3::from_bits(x.to_bits()), x);
//! assert_eq!(F8E5M2::from_f64(-0.0).to_bits(), 0x80);
//! assert!(F8E4M3::from_f32_with(f32::INFINITY, OverflowPolicy::NonFinite).is_nan());
//! ```
//!
//! # Why not the `float8` crate
//!
//! `float8` 0.7 (crates.io; a port of CUDA's `cuda_fp8.hpp`) is exact where it applies: its
//! `from_f32` agreed with this module's saturating encoder on all 2³² f32 inputs (NaN inputs
//! compared as "is NaN"), checked once during development. It still does not meet the
//! requirements here:
//! * its saturation mode is private: only saturate is reachable, so there is no
//!   [`OverflowPolicy::NonFinite`];
//! * its `PartialEq` is IEEE (`-0 == +0`, `NaN != NaN`), so the types cannot be `Eq`/`Hash`
//!   on the code, which tables and tests need; a wrapper would have to re-derive everything;
//! * it decodes every NaN to the positive canonical NaN, dropping the sign;
//! * it has no bf16 conversions and no slice conversions.
//!
//! The conversions are ~100 lines of bit manipulation (`convert.rs`), so owning them costs
//! less than wrapping the crate. The tests check them against a table derived from the format
//! definitions, exhaustively over every f16 and bf16 input, and on a sweep of f32 inputs.
//!
//! # Quantization
//!
//! Follows `shared/reference/deepseek-ops.md` §4.4–4.5 (DeepSeek `inference/kernel.py`,
//! DeepGEMM):
//! * `scale = max(amax, 1e-4) / 448` per tile: an all-zero tile gets scale `1e-4/448` and +0
//!   codes (kernel.py after commit adecc0e; the Dec-2024 release produced NaN);
//! * [`ScaleFormat::Ue8m0`] rounds the scale *up* to a power of two (DeepGEMM
//!   `ceil_to_ue8m0`, kernel.py `2^ceil(log2 s)`), so `|x/s| ≤ 448` still holds;
//! * codes are `e4m3(x/s)`, scales are multipliers (`weight_scale_inv`): `x ≈ code·s`;
//! * widths/heights that are not multiples of 128 get ceil-divided scale shapes and an
//!   implicitly zero-padded edge tile (padding cannot change `amax`);
//! * NaN/Inf inputs are an error ([`QuantError::NonFinite`]) rather than a silently poisoned
//!   tile.
//!
//! # Non-finite values
//!
//! One policy for the host code here and the device operators in [`crate::ops::fp8`]:
//! * **Conversions are total.** NaN encodes to NaN with its sign; ±Inf and values beyond the
//!   largest finite one follow [`OverflowPolicy`] ([`Saturate`](OverflowPolicy::Saturate), the
//!   default, gives ±max; [`NonFinite`](OverflowPolicy::NonFinite) gives ±Inf in E5M2, NaN in
//!   E4M3). NaN codes decode to NaN, on the host and in the device kernels alike.
//! * **Quantization rejects NaN and ±Inf** with [`QuantError::NonFinite`] (the position of an
//!   offending element): [`quantize_act`] and [`quantize_weight`] at the call;
//!   [`Fp8Activations::quantize`](crate::ops::fp8::Fp8Activations::quantize) and
//!   [`Fp8Weight::quantize`](crate::ops::fp8::Fp8Weight::quantize), whose input is in device
//!   memory, at the stream's next synchronisation, as
//!   [`Error::Quant`](crate::Error::Quant)`(QuantError::NonFinite { .. })`. Never a NaN code or an
//!   Inf scale written silently.
//! * **Scales must be finite** when quantized data reaches the device
//!   ([`Fp8Weight::upload`](crate::ops::fp8::Fp8Weight::upload),
//!   [`Fp8Activations::from_quantized`](crate::ops::fp8::Fp8Activations::from_quantized)), so
//!   every GEMM can trust them.
//! * **Codes and activations are data**: a NaN code or a non-finite bf16 activation given to
//!   [`fp8_gemm`](crate::ops::fp8::fp8_gemm) propagates (IEEE) to the outputs it touches, as in
//!   the f64 reference.
//!
//! MoE routing has its own policy for non-finite logits and scales, documented on
//! [`MoeConfig`](crate::moe::MoeConfig) and [`route`](crate::ops::moe::route). The whole list
//! of bad inputs and their errors is `docs/RELIABILITY.md`.

mod convert;
mod format;
mod quantize;
mod slice;

pub use format::{F8E4M3, F8E5M2, Fp8, OverflowPolicy};
pub use quantize::{
    AMAX_FLOOR, BlockQuantized, QUANT_BLOCK, QuantError, ScaleFormat, ScaleLayout, ceil_to_ue8m0,
    dequantize_into, quantize_act, quantize_into, quantize_weight, tile_scale,
};
pub use slice::{LengthMismatch, WideFloat, decode_slice, decode_vec, encode_slice, encode_vec};
