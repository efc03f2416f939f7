//! The `f64` CPU reference (the oracle) of a DeepSeek mixture-of-experts layer on one
//! device, written from `shared/reference/deepseek-ops.md` §1–2 and checked by the
//! invariants of its §6.
//!
//! The steps, each usable alone so a device path can be checked step by step:
//!
//! | step | function | device counterpart |
//! |---|---|---|
//! | configuration | [`MoeConfig`], [`MoeConfig::validate`] | |
//! | routing | [`route`], [`route_f64`] → [`Routing`] | `aclnnMoeGatingTopK` |
//! | permute | [`permute`] → [`Permutation`], [`gather`] | `aclnnMoeInitRoutingV2/V3` |
//! | experts | [`ExpertWeights`], [`expert_ffn`], [`grouped_expert_ffn`] | GroupedMatmul, SwiGLU |
//! | unpermute | [`unpermute_f64`] (oracle), [`unpermute`] (f32) | `aclnnMoeFinalizeRoutingV2` |
//! | layer | [`moe_layer_reference`] | the whole MoE block |
//!
//! # Decisions
//!
//! * **Ties** go to the lowest index, for groups and for experts; a token's `K` ids are
//!   listed by descending biased score, ties by ascending id.
//! * **Masking** of dropped groups is −∞ (DeepSeek `model.py` since 1398800), not 0 (HF
//!   transformers): a dropped group's expert is never chosen, even over negative biased
//!   scores.
//! * **Weights** come from the unbiased scores; the bias only selects.
//! * **NaN / ±∞** logits or bias are an error ([`MoeError::NonFinite`]); everything else
//!   (activations, expert weights) propagates NaN like IEEE arithmetic.
//! * **Group size**: `noaux_tc` needs ≥ 2 experts per group (top-2 sum); the other methods
//!   accept 1. See [`MoeConfig::validate`].
//! * **Flat index** is row-major `t·K + k` by default; the v1 k-major `k·T + t` is
//!   available as [`FlatIndex::KMajor`].
//! * **Capacity** (drop/pad) keeps each expert's first `C` pairs in flat-index order,
//!   drops the rest, and pads to exactly `C` rows with zeros; see [`PermuteOptions`].
//! * **No panics** from any input: sizes are checked, allocations that arguments (not input
//!   lengths) size are fallible, and failures are [`MoeError`]s.
//!
//! ```
//! use ascend_npu::reference::moe::{
//!     MoeConfig, PermuteOptions, gather, permute, route, unpermute_f64,
//! };
//! let cfg = MoeConfig::deepseek_v3();
//! let (t, e, h) = (2, cfg.n_routed_experts, 4);
//! // Token 0 prefers expert 7, token 1 expert 200; the rest is a gentle ramp.
//! let mut logits: Vec<f32> = (0..t * e).map(|i| (i % e) as f32 * 1e-3).collect();
//! logits[7] = 5.0;
//! logits[e + 200] = 5.0;
//! let routing = route(&cfg, &logits, None)?;
//! assert_eq!(routing.ids(0)[0], 7);
//! assert_eq!(routing.ids(1)[0], 200);
//!
//! // Dispatch, run identity "experts", combine: each token comes back × Σw = 2.5.
//! let perm = permute(&routing.topk_ids, cfg.top_k, e, &PermuteOptions::default())?;
//! let x: Vec<f64> = (0..t * h).map(|i| i as f64).collect();
//! let expanded = gather(&x, h, &perm)?;
//! let out = unpermute_f64(&expanded, h, &perm, &routing.topk_weights)?;
//! for (o, xi) in out.iter().zip(&x) {
//!     assert!((o - 2.5 * xi).abs() < 1e-12);
//! }
//! # Ok::<(), ascend_npu::reference::moe::MoeError>(())
//! ```

mod error;
mod experts;
mod layer;
mod permute;
mod routing;
mod unpermute;

/// The configuration is shared with the device operators.
pub use crate::moe::{MoeConfig, Scoring, TopKMethod};
pub use error::{MoeError, Result};
pub use experts::{ExpertWeights, expert_ffn, grouped_expert_ffn, silu};
pub use layer::{MoeLayerOutput, MoeLayerWeights, moe_layer_reference};
pub use permute::{FlatIndex, Permutation, PermuteOptions, gather, permute};
pub use routing::{Routing, route, route_f64};
pub use unpermute::{unpermute, unpermute_f64};
