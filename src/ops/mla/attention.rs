//! The one public entry of MLA attention: [`MlaAttention`] picks the vendor ops where
//! [`vendor_fit`] says they take the model and the cache and the device has them (an Atlas A2
//! or A3 whose CANN exports both), our kernels everywhere else, and gives the same output on
//! both: per head `o = W_UV ō`, before `o_proj`.

use half::bf16;

use super::absorb::{LatentProjection, RopeRows, attend};
use super::cache::{CacheFormat, CacheLayout, LatentCache};
use super::decode::{DecodeOutput, DecodeParams, check_decode};
use super::projection::Fp8Projections;
use super::prolog::{KernelProlog, KernelQueries};
use super::table::{BlockTable, SlotMapping};
use super::vendor::{
    PrologCheckpoint, VendorPrologWeights, vendor_attend, vendor_fit, vendor_on_device,
    vendor_prolog,
};
use crate::error::{Error, Result, elements};
use crate::kernels::Kernels;
use crate::reference::mla::MlaConfig;
use crate::runtime::{DeviceSlice, KernelArg, Stream};

/// The inputs of one step of [`MlaAttention::decode`] and [`MlaLayer::forward`](super::MlaLayer::forward).
pub struct MlaStep<'a, X: DeviceSlice<bf16>> {
    /// `[batch · s_q, hidden]`: each sequence's `s_q` new tokens, sequence after sequence.
    pub x: &'a X,
    /// New tokens per sequence: the last `s_q` of its length in `table`.
    pub s_q: usize,
    /// The cache the new tokens' rows are written into and attended over.
    pub cache: &'a mut LatentCache,
    /// Where each sequence's tokens live, and its length counting the new tokens. A length of
    /// 0 is an empty batch slot (a fixed-size batch with a finished sequence, say): its `s_q`
    /// rows of `x` are padding, nothing is written into the cache for them, and its output is
    /// 0 with LSE `+inf` (FlashMLA's rule).
    pub table: &'a BlockTable,
}

/// The cache an [`MlaAttention`] is built for; the path it picks decides the row format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlaCacheSpec {
    /// Blocks in the cache.
    pub blocks: usize,
    /// Tokens per block (the vendor ops take 16 or 128).
    pub block_size: usize,
    /// FlashMLA's FP8 rows, which only our kernels read and write; otherwise bf16 rows.
    pub fp8: bool,
    /// Rotary positions our kernels tabulate (`0..max_positions`); every token's position
    /// must be below it on both paths.
    pub max_positions: usize,
}

/// Which implementation an [`MlaAttention`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MlaPath {
    /// `aclnnMlaPrologV3WeightNz` and `aclnnFusedInferAttentionScoreV3` over a
    /// [`CacheFormat::AscendSplit`] cache.
    Vendor,
    /// Our kernels over a [`CacheFormat::Bf16`] or [`CacheFormat::Fp8`] cache.
    Kernels {
        /// Why the vendor ops do not take this model or cache.
        why: String,
    },
}

/// The prolog's weights in the layouts of the chosen path (boxed: both are large, and one
/// lives per layer).
enum Prolog {
    Vendor(Box<VendorPrologWeights>),
    Kernels(Box<KernelProlog>),
}

/// MLA attention of one layer up to `o_proj`: the prolog from hidden states (queries, and the
/// new tokens' latent rows written into the cache), the absorbed attention over the paged
/// cache, and the `W_UV` up-projection, on the vendor ops or on our kernels.
pub struct MlaAttention {
    cfg: MlaConfig,
    layout: CacheLayout,
    max_positions: usize,
    path: MlaPath,
    prolog: Prolog,
    proj: LatentProjection,
}

impl MlaAttention {
    /// Uploads the checkpoint `ck` of `cfg` in the layouts of the path it picks: the vendor
    /// ops where [`vendor_fit`] takes the model with a bf16 cache of `spec` and the device runs
    /// them (an Atlas A2 or A3 whose CANN has both ops), our kernels otherwise (an FP8 cache
    /// always); [`path`](Self::path) says which and why. Without q LoRA
    /// (DeepSeek-V2-Lite), `q_a_proj` and `q_a_layernorm` are empty and `q_b_proj` holds
    /// `q_proj`.
    pub fn new(
        stream: &Stream,
        cfg: &MlaConfig,
        ck: &PrologCheckpoint<'_>,
        spec: MlaCacheSpec,
    ) -> Result<MlaAttention> {
        Self::with_fp8(stream, cfg, (ck, &Fp8Projections::default()), spec)
    }

    /// [`new`](Self::new) with the projections `fp8` holds given as FP8 (their fields of `ck`
    /// are not read): our kernels run them on the FP8 GEMM (see
    /// [`projection`](super::projection)); the vendor prolog gets them dequantized.
    pub(crate) fn with_fp8(
        stream: &Stream,
        cfg: &MlaConfig,
        (ck, fp8): (&PrologCheckpoint<'_>, &Fp8Projections<'_>),
        spec: MlaCacheSpec,
    ) -> Result<MlaAttention> {
        cfg.validate()?;
        let layout = |format| CacheLayout::for_config(cfg, spec.blocks, spec.block_size, format);
        let fit = if spec.fp8 {
            Err("an FP8 cache; the vendor ops keep bf16 rows".to_string())
        } else {
            vendor_fit(cfg, &layout(CacheFormat::AscendSplit))
                .and_then(|()| vendor_on_device(stream.device()))
        };
        let (layout, path, prolog) = match fit {
            Ok(()) => (
                layout(CacheFormat::AscendSplit),
                MlaPath::Vendor,
                Prolog::Vendor(Box::new(VendorPrologWeights::upload(
                    stream,
                    cfg,
                    &fp8.dequantized(ck, &mut Default::default()),
                )?)),
            ),
            Err(why) => (
                layout(if spec.fp8 {
                    CacheFormat::Fp8
                } else {
                    CacheFormat::Bf16
                }),
                MlaPath::Kernels { why },
                Prolog::Kernels(Box::new(KernelProlog::upload(
                    stream,
                    cfg,
                    (ck, fp8),
                    spec.max_positions,
                )?)),
            ),
        };
        layout.validate()?;
        if spec.max_positions == 0 || spec.max_positions > i32::MAX as usize {
            return Err(Error::invalid(
                format!("max_positions {}", spec.max_positions),
                format!("at least 1 and at most {}", i32::MAX),
            ));
        }
        let proj = match fp8.kv_b_proj {
            Some(q) => LatentProjection::fp8(stream, cfg, q)?,
            None => LatentProjection::new(cfg, stream.upload(ck.kv_b_proj)?)?,
        };
        Ok(MlaAttention {
            cfg: *cfg,
            layout,
            max_positions: spec.max_positions,
            path,
            prolog,
            proj,
        })
    }

    /// The path this attention runs.
    pub fn path(&self) -> &MlaPath {
        &self.path
    }

    /// The DeepSeek names of the projections this attention runs on the FP8 GEMM (those given
    /// as FP8 that our kernels' path takes as they are; see [`MlaLayer`](super::MlaLayer)).
    pub fn fp8_projections(&self) -> Vec<&'static str> {
        let mut names = match &self.prolog {
            Prolog::Kernels(p) => p.fp8_projections(),
            Prolog::Vendor(_) => Vec::new(),
        };
        if self.proj.is_fp8() {
            names.push("kv_b_proj");
        }
        names
    }

    /// The configuration.
    pub fn config(&self) -> &MlaConfig {
        &self.cfg
    }

    /// The layout of the cache this attention reads and writes.
    pub fn cache_layout(&self) -> &CacheLayout {
        &self.layout
    }

    /// A zeroed cache of [`MlaAttention::cache_layout`].
    pub fn new_cache(&self, stream: &Stream) -> Result<LatentCache> {
        LatentCache::new(stream, self.layout)
    }

    /// One decode (or prefill) step of `step` (see [`MlaStep`]): the new tokens' rows are
    /// written into the cache at the table's slots, then each attends causally (bottom-right)
    /// to its sequence. Returns `out [batch, s_q, heads, v_head_dim]` (bf16) and
    /// `lse [batch, heads, s_q]` (natural log).
    ///
    /// Empty batch slots: only our kernels take them (see [`MlaStep`]); the vendor prolog
    /// writes every token at a `cacheIndex` within the cache (it has no padding index), so on
    /// [`MlaPath::Vendor`] they are [`Error::Unsupported`].
    pub fn decode<X: DeviceSlice<bf16>>(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        step: MlaStep<'_, X>,
    ) -> Result<DecodeOutput> {
        let MlaStep {
            x,
            s_q,
            cache,
            table,
        } = step;
        let cfg = &self.cfg;
        let h = cfg.num_heads;
        if *cache.layout() != self.layout {
            return Err(Error::invalid(
                format!("a cache of {:?}", cache.layout()),
                format!("the cache this attention was built for, {:?}", self.layout),
            ));
        }
        let params = DecodeParams {
            softmax_scale: cfg.softmax_scale() as f32,
            causal: true,
        };
        check_decode(cache, table, s_q, h, params)?;
        let batch = table.batch();
        let mut positions = Vec::with_capacity(batch * s_q);
        let mut slots = Vec::with_capacity(batch * s_q);
        for (b, &len) in table.seq_lens().iter().enumerate() {
            if len == 0 {
                if self.path == MlaPath::Vendor {
                    return Err(Error::unsupported(
                        format!("sequence {b} of length 0 (an empty batch slot)"),
                        "the vendor prolog writes every token into the cache (no padding \
                         cacheIndex); our kernels' path (a non-DeepSeek shape or an FP8 cache) \
                         takes empty slots",
                    ));
                }
                // Padding rows: position 0 for the rotary tables, no cache slot.
                positions.extend(std::iter::repeat_n(0, s_q));
                slots.extend(std::iter::repeat_n(-1, s_q));
                continue;
            }
            if len < s_q || len > self.max_positions {
                return Err(Error::invalid(
                    format!("sequence {b} of {len} tokens with {s_q} new ones"),
                    format!(
                        "0 (an empty batch slot) or a length that counts the new tokens (at \
                         least s_q = {s_q}) and at most max_positions = {}",
                        self.max_positions
                    ),
                ));
            }
            for p in len - s_q..len {
                positions.push(p);
                slots.push(table.slot(b, p) as i32);
            }
        }
        let n = positions.len();
        if x.len() != elements("hidden states", &[n, cfg.hidden_size])? {
            return Err(Error::invalid(
                format!("x of {} values", x.len()),
                format!(
                    "[batch · s_q, hidden] = [{batch} · {s_q}, {}] values",
                    cfg.hidden_size
                ),
            ));
        }
        let slots = SlotMapping::new(stream, &self.layout, &slots)?;
        match &self.prolog {
            Prolog::Vendor(w) => {
                let q = vendor_prolog(stream, w, x, &positions, &slots, cache)?;
                let latent = vendor_attend(stream, &q, s_q, cache, table, params)?;
                // ō comes token-major; the W_UV products take it head-major.
                let lat = self.layout.latent;
                let mut head_major = stream.alloc_pooled::<bf16>(n * h * lat)?;
                kernels.mla_swap_axes(stream, &latent.out, &mut head_major, [n, h, lat])?;
                let v = self.proj.v_head_dim();
                let mut out =
                    stream.alloc_pooled_zeroed::<bf16>(elements("output", &[n, h, v])?)?;
                if n > 0 {
                    self.proj
                        .expand(kernels, stream, &head_major, &mut out, n)?;
                }
                Ok(DecodeOutput {
                    out,
                    lse: latent.lse,
                })
            }
            Prolog::Kernels(p) => {
                let q: KernelQueries = p.run(kernels, stream, x, &positions, &slots, cache)?;
                let (strides, offset) = KernelQueries::rope_strides(h, cfg.qk_rope_head_dim);
                let rope = RopeRows {
                    arg: KernelArg::buffer(&q.q_pe_rows),
                    strides,
                    offset,
                };
                let q_nope = q.q_nope.as_view();
                attend(
                    kernels,
                    stream,
                    &self.proj,
                    (&q_nope, rope),
                    (s_q, n),
                    (cache, table),
                    params,
                )
            }
        }
    }
}
