//! One whole MLA layer (a DeepSeek decoder layer's `self_attn`) loaded from a safetensors
//! checkpoint by DeepSeek's names: [`MlaAttention`] (prolog, cache write, attention, `W_UV`)
//! then `o_proj`.
//!
//! # FP8 checkpoints
//!
//! DeepSeek-V3 ships its projections as E4M3 codes with 128×128 `weight_scale_inv` blocks.
//! `o_proj`, the layer's largest matrix (`[hidden, heads·v]`, 117M values for V3), runs as it
//! is on the FP8 GEMM (W8A16, [`fp8_gemm`]). The four projections the attention itself
//! holds (`q_a_proj`, `q_b_proj` or `q_proj`, `kv_a_proj_with_mqa`, `kv_b_proj`) are
//! dequantized once at load, `code × scale` rounded to bf16: their device layouts split
//! `q_b_proj` per head into its `nope` and `rope` rows (192 rows a head, across the 128-row
//! scale blocks) and `kv_b_proj` into `W_UK` / `W_UV`, and the vendor prolog takes bf16
//! weights only.

use half::bf16;
use safetensors::Dtype;

use super::attention::{MlaAttention, MlaCacheSpec};
use super::cache::LatentCache;
use super::table::BlockTable;
use super::vendor::PrologCheckpoint;
use crate::error::{Error, Result, elements};
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

/// The layer's projection `name` (`[rows, cols]`) as bf16: BF16 as stored, or F8_E4M3 with
/// its `weight_scale_inv` dequantized (`code × scale`, rounded to bf16; see the module docs).
fn projection(ck: &Checkpoint<'_>, name: &str, shape: [usize; 2]) -> Result<Vec<bf16>> {
    match ck.dtype(name) {
        Some(Dtype::F8_E4M3) => {
            let q = ck.fp8(name)?;
            ck.check_shape(name, &[q.rows(), q.cols()], &shape)?;
            Ok(q.dequantize().into_iter().map(bf16::from_f32).collect())
        }
        Some(Dtype::BF16) | None => ck.bf16(name, &shape),
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
                Vec::new(),
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
            _ => OutProjection::Bf16(stream.upload(&projection(
                &ck,
                "o_proj.weight",
                [he, o_cols],
            )?)?),
        };
        let prolog = PrologCheckpoint {
            q_a_proj: &q_a_proj,
            q_a_layernorm: &q_a_layernorm,
            q_b_proj: &q_b_proj,
            kv_a_proj_with_mqa: &kv_a_proj_with_mqa,
            kv_a_layernorm: &kv_a_layernorm,
            kv_b_proj: &kv_b_proj,
        };
        let attention = MlaAttention::new(stream, cfg, &prolog, spec)?;
        Ok(MlaLayer { attention, o_proj })
    }

    /// The attention (its path, configuration and cache layout).
    pub fn attention(&self) -> &MlaAttention {
        &self.attention
    }

    /// A zeroed cache for this layer.
    pub fn new_cache(&self, stream: &Stream) -> Result<LatentCache> {
        self.attention.new_cache(stream)
    }

    /// One step of the layer, prefill or decode: `x [batch · s_q, hidden]` holds each
    /// sequence's `s_q` new tokens, the last `s_q` of its length in `table` (see
    /// [`MlaAttention::decode`]); their rows go into `cache`, they attend causally to their
    /// sequence, and `o_proj` maps the heads back. Returns `[batch · s_q, hidden]` bf16.
    pub fn forward(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        s_q: usize,
        (cache, table): (&mut LatentCache, &BlockTable),
    ) -> Result<DeviceBuffer<bf16>> {
        let cfg = self.attention.config();
        let attn = self
            .attention
            .decode(kernels, stream, x, s_q, (cache, table))?;
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
