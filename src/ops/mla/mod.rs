//! Multi-head Latent Attention on the device, on our own Ascend C kernels
//! (`kernels-ascendc/mla_*.cpp`), checked against [`reference::mla`](crate::reference::mla).
//!
//! | step | items | kernel |
//! |---|---|---|
//! | **one entry**: prolog, cache write, attention, `W_UV` on the path [`vendor_fit`] picks | [`MlaAttention`] with [`MlaCacheSpec`], [`MlaPath`] | the vendor ops, or matmul + `mla_cache_write_*` + `mla_decode_*` |
//! | the cache | [`CacheLayout`], [`CacheFormat`], [`LatentCache`] | |
//! | where tokens live | [`BlockTable`] (+ lengths), [`SlotMapping`] | |
//! | rotary tables | [`RopeTable`], [`Positions`] | |
//! | write | [`write_cache`] with [`CacheWriteInput`] | `mla_cache_write_{bf16,fp8}` |
//! | decode, absorbed queries | [`mqa_decode`] with [`MqaQuery`], [`DecodeParams`] | `mla_decode_{bf16,fp8}` |
//! | vendor path (DeepSeek shapes, [`vendor_fit`]) | [`vendor_prolog`], [`vendor_attend`] over an [`CacheFormat::AscendSplit`] cache | `aclnnMlaPrologV3WeightNz`, `aclnnFusedInferAttentionScoreV3` |
//! | decode from `q_nope`, `q_pe` | [`decode`] with [`LatentProjection`], [`LatentQuery`] | matmul, `mla_swap_axes_bf16`, `mla_decode_*` |
//! | varlen and chunked prefill | [`prefill`] with [`PrefillQuery`] (absorbed form) | the same |
//! | prefill in the naive form | [`prefill_naive`] with [`NaiveProjection`] | matmul, `mla_decode_bf16` |
//! | chunked prefill's merge of two partial attentions | [`merge_attention`] | `mla_lse_merge_bf16` |
//! | **the whole layer** from a safetensors checkpoint (bf16 or FP8 weights), `o_proj` included | [`MlaLayer`] | [`MlaAttention`], then matmul or the FP8 GEMM |
//!
//! # Decisions
//!
//! * **Validation once, at the boundary.** The block table, slot mapping and positions are
//!   built from host values and checked against the cache layout when they are made; the
//!   kernels then trust them (and still never address outside their buffers).
//! * **The cache is one tensor of rows** (`[blocks, block_size, row_bytes]`), the latent then
//!   the rope key, FlashMLA's layout; the FP8 format is FlashMLA's 656-byte row.
//! * **Dtypes are types**: bf16 inputs are `DeviceView<bf16>`, so a wrong dtype does not
//!   compile; the remaining runtime mismatches (widths, layouts, lengths) are errors in "what
//!   was wrong; what was expected" form.

mod absorb;
mod attention;
mod cache;
mod decode;
mod layer;
mod merge;
mod naive;
mod prefill;
mod projection;
mod prolog;
mod rope;
mod table;
mod vendor;
mod write;

pub use absorb::{LatentProjection, LatentQuery, decode};
pub use attention::{MlaAttention, MlaCacheSpec, MlaPath, MlaStep};
pub use cache::{CacheFormat, CacheLayout, LatentCache};
pub use decode::{DecodeOutput, DecodeParams, MqaQuery, mqa_decode};
pub use layer::MlaLayer;
pub use merge::merge_attention;
pub use naive::{NaiveProjection, prefill_naive};
pub use prefill::{PrefillOutput, PrefillQuery, prefill};
pub use rope::{Positions, RopeTable};
pub use table::{BlockTable, BlockTableSpec, SlotMapping};
pub use vendor::{
    PrologCheckpoint, VendorPrologWeights, VendorQuery, vendor_attend, vendor_fit, vendor_prolog,
};
pub(crate) use write::CacheWriteShape;
pub use write::{CacheWriteInput, write_cache};
