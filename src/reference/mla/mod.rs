//! The `f64` CPU reference (the oracle) of DeepSeek's Multi-head Latent Attention, written
//! from `shared/reference/deepseek-ops.md` §3.
//!
//! | step | items | device counterpart |
//! |---|---|---|
//! | configuration | [`MlaConfig`] (V2, V2-Lite, V3, any head count, from `config.json`) | |
//! | rotary embedding | [`Rope`]: interleaved pairs, YaRN ramp | inside the prolog |
//! | prolog | [`prolog`], [`MlaWeights`] | `aclnnMlaPrologV2/V3`, `npu_kv_rmsnorm_rope_cache` |
//! | prefill | [`naive_attention`], [`merge_lse`] for chunks | `aclnnFusedInferAttentionScoreV2` (TND) |
//! | decode | [`absorbed_attention`], [`mqa_attention`], [`paged_mqa_decode`] | FlashMLA-style decode |
//! | FP8 cache | [`pack_fp8_row`], [`unpack_fp8_row`] (656 B per token) | FlashMLA's FP8 KV format |
//! | layer | [`mla_layer_forward`], [`output_projection`] | the whole attention block |
//! | device error bounds | [`bounds`]: per element, from each device path's roundings | what tests and the conformance tool allow |
//!
//! # Decisions
//!
//! * **The softmax scale is always explicit**: [`MlaConfig::softmax_scale`] is
//!   `192^-½ · mscale²` = 0.13523378 for DeepSeek-V3, never FlashMLA's `1/√576` default.
//! * **RoPE is interleaved** (GPT-J pairs `(2i, 2i+1)`); NeoX's half split is a different
//!   function and fails the tests.
//! * **RMSNorm** applies to the latent only, never to the rope key; the cache stores the
//!   normalised latent and the rotated key.
//! * **Causal masks are bottom-right**: the queries are a sequence's last tokens.
//! * **LSE** is the natural log; a query with no visible key gives output 0 and LSE `+∞`.
//! * **No panics** from any input: every size is checked and failures are [`MlaError`]s.
//!
//! ```
//! use ascend_npu::reference::mla::MlaConfig;
//! let v3 = MlaConfig::deepseek_v3();
//! assert!((v3.softmax_scale() - 0.13523378).abs() < 1e-8);
//! assert_eq!(v3.cache_row(), 576);
//! ```

mod attention;
pub mod bounds;
mod config;
mod error;
mod fp8_cache;
mod layer;
mod paged;
mod prolog;
mod rope;

pub use attention::{
    AttentionOutput, LatentAttention, Mask, Mqa, absorb_query, absorbed_attention, merge_lse,
    mqa_attention, naive_attention,
};
pub use config::{MlaConfig, Yarn, yarn_mscale};
pub use error::{MlaError, Result};
pub use fp8_cache::{FP8_TILE, fp8_row_bytes, fp8_tile_scale, pack_fp8_row, unpack_fp8_row};
pub use layer::{AttentionForm, SequenceCache, mla_layer_forward, output_projection};
pub use paged::{BlockTable, PagedCache, paged_mqa_decode};
pub use prolog::{MlaQuery, MlaWeights, Prolog, QueryWeights, prolog, rms_norm};
pub use rope::Rope;
