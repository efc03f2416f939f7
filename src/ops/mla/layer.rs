//! One whole MLA layer (a DeepSeek decoder layer's `self_attn`) loaded from a safetensors
//! checkpoint by DeepSeek's names: [`MlaAttention`] (prolog, cache write, attention, `W_UV`)
//! then `o_proj`.
//!
//! # FP8 checkpoints
//!
//! DeepSeek-V3 ships its projections as E4M3 codes with 128×128 `weight_scale_inv` blocks.
//! On our kernels' path every projection runs on the FP8 GEMM (W8A16, [`fp8_gemm`]) with
//! its own codes and scales: `o_proj` as stored, the attention's four in the layouts of
//! [`projection`](super::projection) (padding in new blocks, `q_b_proj` whole and its output
//! split per head by exact selections, `kv_b_proj`'s `W_UK_h` / `W_UV_h` as one group per
//! head when `nope` and `v` are multiples of 128, else dequantized at load).
//! [`MlaAttention::fp8_projections`] names those that do. The vendor prolog takes bf16
//! weights only, so on [`MlaPath::Vendor`](super::MlaPath::Vendor) the prolog's projections
//! are dequantized at load (`code × scale` rounded to bf16); `kv_b_proj`'s `W_UV` products
//! after the vendor attention still run on the FP8 GEMM.

use half::bf16;
use safetensors::Dtype;

use super::attention::{MlaAttention, MlaCacheSpec, MlaStep};
use super::cache::LatentCache;
use super::projection::Fp8Projections;
use super::vendor::PrologCheckpoint;
use crate::error::{Error, Result, elements};
use crate::fp8::BlockQuantized;
use crate::kernels::{Kernels, MatmulShape, WeightLayout, matmul};
use crate::ops::checkpoint::Checkpoint;
use crate::ops::fp8::{Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use crate::reference::mla::MlaConfig;
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// `o_proj.weight` (`[hidden, heads·v]`) on the device.
enum OutProjection {
    Bf16(DeviceBuffer<bf16>),
    Fp8(Fp8Weight),
}

/// One MLA layer on the device: the attention of [`MlaAttention`] and the output projection.
pub struct MlaLayer {
    attention: MlaAttention,
    o_proj: OutProjection,
}

/// A projection of the checkpoint as stored: bf16, or FP8 codes with their scales.
enum Loaded {
    Bf16(Vec<bf16>),
    Fp8(BlockQuantized),
}

impl Loaded {
    /// The bf16 values (empty for FP8, which [`Loaded::fp8`] gives).
    fn bf16(&self) -> &[bf16] {
        match self {
            Loaded::Bf16(v) => v,
            Loaded::Fp8(_) => &[],
        }
    }

    fn fp8(&self) -> Option<&BlockQuantized> {
        match self {
            Loaded::Fp8(q) => Some(q),
            Loaded::Bf16(_) => None,
        }
    }
}

/// The layer's projection `name` (`[rows, cols]`): BF16, or F8_E4M3 with its
/// `weight_scale_inv` (see the module docs).
fn projection(ck: &Checkpoint<'_>, name: &str, shape: [usize; 2]) -> Result<Loaded> {
    match ck.dtype(name) {
        Some(Dtype::F8_E4M3) => {
            let q = ck.fp8(name)?;
            ck.check_shape(name, &[q.rows(), q.cols()], &shape)?;
            Ok(Loaded::Fp8(q))
        }
        Some(Dtype::BF16) | None => Ok(Loaded::Bf16(ck.bf16(name, &shape)?)),
        Some(other) => Err(Error::invalid(
            format!("{} is {other:?}", ck.full(name)),
            "BF16, or F8_E4M3 with its weight_scale_inv",
        )),
    }
}

impl MlaLayer {
    /// Loads the layer `prefix` (e.g. `model.layers.3.self_attn`) of `cfg` (read it with
    /// [`MlaConfig::from_config_json`]) from a safetensors file's bytes, for a cache of `spec`:
    /// `q_a_proj`, `q_a_layernorm` and `q_b_proj` (or `q_proj` without q LoRA, as V2-Lite),
    /// `kv_a_proj_with_mqa`, `kv_a_layernorm`, `kv_b_proj` and `o_proj`, each `.weight`; the
    /// norms BF16, the projections BF16 or F8_E4M3 with their `.weight_scale_inv`. A missing
    /// tensor, or one of another shape or dtype, is an error naming it.
    pub fn from_safetensors(
        stream: &Stream,
        bytes: &[u8],
        prefix: &str,
        cfg: &MlaConfig,
        spec: MlaCacheSpec,
    ) -> Result<MlaLayer> {
        cfg.validate()?;
        let ck = Checkpoint::parse(bytes, prefix)?;
        let (he, h) = (cfg.hidden_size, cfg.num_heads);
        let q_rows = elements("q_b_proj rows", &[h, cfg.qk_head_dim()])?;
        let (q_a_proj, q_a_layernorm, q_b_proj) = match cfg.q_lora_rank {
            Some(r) => (
                projection(&ck, "q_a_proj.weight", [r, he])?,
                ck.bf16("q_a_layernorm.weight", &[r])?,
                projection(&ck, "q_b_proj.weight", [q_rows, r])?,
            ),
            None => (
                Loaded::Bf16(Vec::new()),
                Vec::new(),
                projection(&ck, "q_proj.weight", [q_rows, he])?,
            ),
        };
        let kv_a_proj_with_mqa =
            projection(&ck, "kv_a_proj_with_mqa.weight", [cfg.cache_row(), he])?;
        let kv_a_layernorm = ck.bf16("kv_a_layernorm.weight", &[cfg.kv_lora_rank])?;
        let kv_rows = elements(
            "kv_b_proj rows",
            &[h, cfg.qk_nope_head_dim + cfg.v_head_dim],
        )?;
        let kv_b_proj = projection(&ck, "kv_b_proj.weight", [kv_rows, cfg.kv_lora_rank])?;
        let o_cols = elements("o_proj columns", &[h, cfg.v_head_dim])?;
        let o_proj = match ck.dtype("o_proj.weight") {
            Some(Dtype::F8_E4M3) => {
                let w = Fp8Weight::from_checkpoint(stream, &ck, &["o_proj.weight"])?;
                ck.check_shape("o_proj.weight", &[w.n(), w.k()], &[he, o_cols])?;
                OutProjection::Fp8(w)
            }
            _ => OutProjection::Bf16(stream.upload(&ck.bf16("o_proj.weight", &[he, o_cols])?)?),
        };
        let prolog = PrologCheckpoint {
            q_a_proj: q_a_proj.bf16(),
            q_a_layernorm: &q_a_layernorm,
            q_b_proj: q_b_proj.bf16(),
            kv_a_proj_with_mqa: kv_a_proj_with_mqa.bf16(),
            kv_a_layernorm: &kv_a_layernorm,
            kv_b_proj: kv_b_proj.bf16(),
        };
        let fp8 = Fp8Projections {
            q_a_proj: q_a_proj.fp8(),
            q_b_proj: q_b_proj.fp8(),
            kv_a_proj_with_mqa: kv_a_proj_with_mqa.fp8(),
            kv_b_proj: kv_b_proj.fp8(),
        };
        let attention = MlaAttention::with_fp8(stream, cfg, (&prolog, &fp8), spec)?;
        Ok(MlaLayer { attention, o_proj })
    }

    /// The attention (its path, configuration and cache layout).
    pub fn attention(&self) -> &MlaAttention {
        &self.attention
    }

    /// The DeepSeek names of the projections that run on the FP8 GEMM: the attention's
    /// ([`MlaAttention::fp8_projections`]), then `o_proj` when it is FP8.
    pub fn fp8_projections(&self) -> Vec<&'static str> {
        let mut names = self.attention.fp8_projections();
        if matches!(self.o_proj, OutProjection::Fp8(_)) {
            names.push("o_proj");
        }
        names
    }

    /// A zeroed cache for this layer.
    pub fn new_cache(&self, stream: &Stream) -> Result<LatentCache> {
        self.attention.new_cache(stream)
    }

    /// One step of the layer, prefill or decode: [`MlaAttention::decode`] of `step`, then
    /// `o_proj` maps the heads back. Returns `[batch · s_q, hidden]` bf16.
    pub fn forward<X: DeviceSlice<bf16>>(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        step: MlaStep<'_, X>,
    ) -> Result<DeviceBuffer<bf16>> {
        let cfg = self.attention.config();
        let attn = self.attention.decode(kernels, stream, step)?;
        let k = cfg.num_heads * cfg.v_head_dim;
        let tokens = attn.out.len() / k;
        let mut y = stream
            .alloc_pooled_zeroed::<bf16>(elements("layer output", &[tokens, cfg.hidden_size])?)?;
        if tokens == 0 {
            return Ok(y);
        }
        match &self.o_proj {
            OutProjection::Bf16(w) => {
                let shape = MatmulShape {
                    m: tokens,
                    n: cfg.hidden_size,
                    k,
                };
                matmul(
                    kernels,
                    stream,
                    shape,
                    WeightLayout::NK,
                    &attn.out,
                    w,
                    &mut y,
                )?;
            }
            OutProjection::Fp8(w) => {
                let a = Fp8Input::Bf16(attn.out.as_view());
                fp8_gemm(kernels, stream, tokens, a, w, Fp8Groups::None, &mut y)?;
            }
        }
        Ok(y)
    }
}
