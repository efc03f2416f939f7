//! The vendor path of MLA: `aclnnMlaPrologV3WeightNz` (the prolog and the cache write in one
//! op) and `aclnnFusedInferAttentionScoreV3` (the absorbed decode), where their documented
//! limits take the model ([`vendor_fit`]): DeepSeek's widths (q LoRA 1536, latent 512, nope
//! 128, rope 64), a hidden size the prolog lists, a power-of-two head count up to 128, and a
//! [`CacheFormat::AscendSplit`] cache of 16- or 128-token blocks. Everything else runs on our
//! kernels ([`write_cache`](super::write_cache), [`decode`](super::decode)).
//!
//! The vendor ops keep their own cache form: the latent rows and the rope rows as two tensors,
//! the rope key stored as the prolog's RoPE writes it (each rotated vector's even elements,
//! then its odd ones). Scores are unchanged (the query rope is permuted the same way), but the
//! rows differ from FlashMLA's, so a cache is written and read by one path only; the format
//! says which.

use half::bf16;

use super::cache::{CacheFormat, CacheLayout, LatentCache};
use super::decode::{DecodeOutput, DecodeParams, check_decode};
use super::table::{BlockTable, SlotMapping};
use crate::aclnn::{
    self, AclTensor, AclTensorList, CacheMode, FusedInferAttentionScoreV3, InputLayout,
    MlaDecodeAttrs, MlaDecodeTensors, MlaPrologAttrs, MlaPrologTensors, MlaPrologV3WeightNz,
    Operator, PrologShape, SparseMode,
};
use crate::error::{Error, Result};
use crate::reference::mla::{MlaConfig, Rope};
use crate::runtime::{Device, DeviceBuffer, DeviceSlice, Stream};

/// Hidden sizes the prolog takes.
const HIDDEN: [usize; 9] = [1024, 2048, 3072, 4096, 5120, 6144, 7168, 7680, 8192];
/// Query heads both ops take (N ≤ 128, a power of two).
const MAX_HEADS: usize = 128;
/// Query tokens per sequence the decode takes with a 512-wide query.
const MAX_S_Q: usize = 16;

/// `Ok` when the vendor ops take `cfg` with a cache of `layout`, else why not (for logs and
/// errors); the public entry points choose the path with it.
///
/// ```
/// use ascend_npu::ops::mla::{CacheFormat, CacheLayout, vendor_fit};
/// use ascend_npu::reference::mla::MlaConfig;
/// let v3 = MlaConfig::deepseek_v3();
/// let ascend = CacheLayout::for_config(&v3, 64, 128, CacheFormat::AscendSplit);
/// assert!(vendor_fit(&v3, &ascend).is_ok());
/// // Three heads (a tensor-parallel split of 24) or FlashMLA's 64-token blocks: our kernels.
/// assert!(vendor_fit(&v3.with_heads(3), &ascend).is_err());
/// let flash = CacheLayout::for_config(&v3, 64, 64, CacheFormat::Bf16);
/// assert!(vendor_fit(&v3, &flash).is_err());
/// ```
pub fn vendor_fit(cfg: &MlaConfig, layout: &CacheLayout) -> std::result::Result<(), String> {
    let widths = (
        cfg.q_lora_rank,
        cfg.kv_lora_rank,
        cfg.qk_nope_head_dim,
        cfg.qk_rope_head_dim,
    );
    if widths != (Some(1536), 512, 128, 64) {
        return Err(format!(
            "q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim = {widths:?}; the \
             vendor ops take DeepSeek's (Some(1536), 512, 128, 64)"
        ));
    }
    if !HIDDEN.contains(&cfg.hidden_size) {
        return Err(format!(
            "hidden_size {}; the vendor prolog takes {HIDDEN:?}",
            cfg.hidden_size
        ));
    }
    let h = cfg.num_heads;
    if !(h.is_power_of_two() && h <= MAX_HEADS) {
        return Err(format!(
            "{h} heads; the vendor ops take a power of two up to {MAX_HEADS}"
        ));
    }
    if layout.format != CacheFormat::AscendSplit {
        return Err(format!(
            "a {:?} cache; the vendor ops read and write the AscendSplit form",
            layout.format
        ));
    }
    if ![16, 128].contains(&layout.block_size) || (layout.latent, layout.rope) != (512, 64) {
        return Err(format!(
            "blocks of {} tokens with rows of {} + {}; the vendor decode takes blocks of 16 or \
             128 tokens of 512 + 64",
            layout.block_size, layout.latent, layout.rope
        ));
    }
    Ok(())
}

/// `Ok` when `device` runs the vendor ops: an Atlas A2 or A3 SoC (the products both ops' docs
/// list) whose CANN has both, else why not. [`vendor_fit`] says whether they take the model.
pub(crate) fn vendor_on_device(device: &Device) -> std::result::Result<(), String> {
    let soc = device
        .soc_name()
        .map_err(|e| format!("the device's SoC is unknown ({e})"))?;
    if !(soc.starts_with("Ascend910B") || soc.starts_with("Ascend910_93")) {
        return Err(format!(
            "a {soc} device; the vendor ops run on Atlas A2 and A3 (Ascend910B*, Ascend910_93*)"
        ));
    }
    let api = device.inner.api;
    let lacks = |e: Error| format!("this CANN lacks a vendor op: {e}");
    MlaPrologV3WeightNz::available(api).map_err(lacks)?;
    FusedInferAttentionScoreV3::available(api).map_err(lacks)
}

/// The checkpoint tensors of the prolog (bf16, row-major `[out, in]` as DeepSeek stores them).
#[derive(Clone, Copy, Debug)]
pub struct PrologCheckpoint<'a> {
    /// `q_a_proj.weight [q_lora, hidden]`.
    pub q_a_proj: &'a [bf16],
    /// `q_a_layernorm.weight [q_lora]`.
    pub q_a_layernorm: &'a [bf16],
    /// `q_b_proj.weight [heads·(nope+rope), q_lora]`.
    pub q_b_proj: &'a [bf16],
    /// `kv_a_proj_with_mqa.weight [latent+rope, hidden]`.
    pub kv_a_proj_with_mqa: &'a [bf16],
    /// `kv_a_layernorm.weight [latent]`.
    pub kv_a_layernorm: &'a [bf16],
    /// `kv_b_proj.weight [heads·(nope+v), latent]` (only its `W_UK` rows are used here).
    pub kv_b_proj: &'a [bf16],
}

/// The prolog's weights in the op's layouts (three of them FRACTAL_NZ), on the device.
pub struct VendorPrologWeights {
    weight_dq: DeviceBuffer<bf16>,
    weight_uq_qr: DeviceBuffer<bf16>,
    weight_uk: DeviceBuffer<bf16>,
    weight_dkv_kr: DeviceBuffer<bf16>,
    gamma_cq: DeviceBuffer<bf16>,
    gamma_ckv: DeviceBuffer<bf16>,
    shape: PrologShape,
    eps: f64,
    rope: Rope,
}

impl VendorPrologWeights {
    /// Packs `ck` for `cfg` and uploads it on `stream`.
    pub fn upload(
        stream: &Stream,
        cfg: &MlaConfig,
        ck: &PrologCheckpoint<'_>,
    ) -> Result<VendorPrologWeights> {
        cfg.validate()?;
        let shape = PrologShape {
            hidden: cfg.hidden_size,
            heads: cfg.num_heads,
            q_lora: cfg.q_lora_rank.unwrap_or(0),
            kv_lora: cfg.kv_lora_rank,
            nope: cfg.qk_nope_head_dim,
            rope: cfg.qk_rope_head_dim,
            v: cfg.v_head_dim,
        };
        let packed = aclnn::pack_prolog_weights(
            shape,
            ck.q_a_proj,
            ck.q_b_proj,
            ck.kv_a_proj_with_mqa,
            ck.kv_b_proj,
        )?;
        for (what, v, want) in [
            ("q_a_layernorm", ck.q_a_layernorm, shape.q_lora),
            ("kv_a_layernorm", ck.kv_a_layernorm, shape.kv_lora),
        ] {
            if v.len() != want {
                return Err(Error::invalid(
                    format!("{what} of {} values", v.len()),
                    format!("{want} values"),
                ));
            }
        }
        Ok(VendorPrologWeights {
            weight_dq: stream.upload(&packed.weight_dq)?,
            weight_uq_qr: stream.upload(&packed.weight_uq_qr)?,
            weight_uk: stream.upload(&packed.weight_uk)?,
            weight_dkv_kr: stream.upload(&packed.weight_dkv_kr)?,
            gamma_cq: stream.upload(ck.q_a_layernorm)?,
            gamma_ckv: stream.upload(ck.kv_a_layernorm)?,
            shape,
            eps: cfg.rms_norm_eps,
            rope: Rope::new(cfg),
        })
    }
}

/// The prolog's queries for the vendor decode.
pub struct VendorQuery {
    /// `[tokens, heads, 512]`: the absorbed `q̃ = W_UKᵀ q_nope`.
    pub q: DeviceBuffer<bf16>,
    /// `[tokens, heads, 64]`: the rotated `q_pe`, in the prolog's `[evens, odds]` order.
    pub q_rope: DeviceBuffer<bf16>,
    /// Tokens.
    pub tokens: usize,
    /// Heads.
    pub heads: usize,
}

/// Byte ranges of the two tensors of an AscendSplit cache: latent rows, then rope rows.
fn split_bytes(layout: &CacheLayout) -> usize {
    layout.slots() * layout.latent * 2
}

fn check_cache(w: &PrologShape, layout: &CacheLayout) -> Result<()> {
    if layout.format != CacheFormat::AscendSplit
        || (layout.latent, layout.rope) != (w.kv_lora, w.rope)
    {
        return Err(Error::invalid(
            format!("a {layout:?} cache for the vendor path"),
            format!("an AscendSplit cache of {} + {} rows", w.kv_lora, w.rope),
        ));
    }
    Ok(())
}

/// The vendor prolog: for `x [tokens, hidden]` at `positions`, the absorbed queries, and the
/// normalised latent and rotated rope key written to each token's `slots` row of `cache`
/// (every slot a row: the op takes no padding tokens).
pub fn vendor_prolog(
    stream: &Stream,
    w: &VendorPrologWeights,
    x: &impl DeviceSlice<bf16>,
    positions: &[usize],
    slots: &SlotMapping,
    cache: &mut LatentCache,
) -> Result<VendorQuery> {
    let s = w.shape;
    let layout = *cache.layout();
    check_cache(&s, &layout)?;
    layout.check_same(slots.layout(), "a slot mapping")?;
    let t = positions.len();
    if slots.len() != t || x.len() != t * s.hidden {
        return Err(Error::invalid(
            format!(
                "{} slots and x of {} values for {t} positions",
                slots.len(),
                x.len()
            ),
            format!("one slot per position and x [{t}, {}]", s.hidden),
        ));
    }
    let mut q = stream.alloc_zeroed::<bf16>(t * s.heads * s.kv_lora)?;
    let mut q_rope = stream.alloc_zeroed::<bf16>(t * s.heads * s.rope)?;
    if t == 0 {
        return Ok(VendorQuery {
            q,
            q_rope,
            tokens: 0,
            heads: s.heads,
        });
    }
    // The op takes the rotary rows per token and INT64 cache rows.
    let (cos, sin) = aclnn::prolog_rope_tables(&w.rope.inv_freq, w.rope.amplitude, positions);
    let to_bf16 = |v: Vec<f64>| -> Vec<bf16> { v.into_iter().map(bf16::from_f64).collect() };
    let (cos, sin) = (stream.upload(&to_bf16(cos))?, stream.upload(&to_bf16(sin))?);
    let mut index = stream.alloc_zeroed::<i64>(t)?;
    aclnn::cast(stream, &slots.slots.slice(0..t)?, &mut index)?;
    let latent_bytes = split_bytes(&layout);
    let (mut kv_bytes, mut kr_bytes) = cache.data_mut().split_at_mut(latent_bytes)?;
    let cache_dims = |d: usize| [layout.blocks, layout.block_size, 1, d];
    {
        let token_x = AclTensor::new(x, &[t, s.hidden])?;
        let weight_dq = AclTensor::new_nz(&w.weight_dq, s.hidden, s.q_lora)?;
        let weight_uq_qr =
            AclTensor::new_nz(&w.weight_uq_qr, s.q_lora, s.heads * (s.nope + s.rope))?;
        let weight_uk = AclTensor::new(&w.weight_uk, &[s.heads, s.nope, s.kv_lora])?;
        let weight_dkv_kr = AclTensor::new_nz(&w.weight_dkv_kr, s.hidden, s.kv_lora + s.rope)?;
        let gamma_cq = AclTensor::new(&w.gamma_cq, &[s.q_lora])?;
        let gamma_ckv = AclTensor::new(&w.gamma_ckv, &[s.kv_lora])?;
        let rope_cos = AclTensor::new(&cos, &[t, s.rope])?;
        let rope_sin = AclTensor::new(&sin, &[t, s.rope])?;
        let cache_index = AclTensor::new(&index, &[t])?;
        let mut kv_cache =
            AclTensor::from_bytes_mut::<bf16>(&mut kv_bytes, &cache_dims(s.kv_lora))?;
        let mut kr_cache = AclTensor::from_bytes_mut::<bf16>(&mut kr_bytes, &cache_dims(s.rope))?;
        let mut query = AclTensor::new_mut(&mut q, &[t, s.heads, s.kv_lora])?;
        let mut query_rope = AclTensor::new_mut(&mut q_rope, &[t, s.heads, s.rope])?;
        aclnn::mla_prolog_v3(
            stream,
            MlaPrologTensors {
                token_x: &token_x,
                weight_dq: &weight_dq,
                weight_uq_qr: &weight_uq_qr,
                weight_uk: &weight_uk,
                weight_dkv_kr: &weight_dkv_kr,
                gamma_cq: &gamma_cq,
                gamma_ckv: &gamma_ckv,
                rope_sin: &rope_sin,
                rope_cos: &rope_cos,
                cache_index: &cache_index,
                kv_cache: &mut kv_cache,
                kr_cache: &mut kr_cache,
                query: &mut query,
                query_rope: &mut query_rope,
            },
            &MlaPrologAttrs {
                eps_cq: w.eps,
                eps_ckv: w.eps,
                cache_mode: CacheMode::PaBsnd,
                qc_qr_scale: 1.0,
                kc_scale: 1.0,
            },
        )?;
    }
    Ok(VendorQuery {
        q,
        q_rope,
        tokens: t,
        heads: s.heads,
    })
}

/// The optimised causal mask of sparse mode 3, 2048 × 2048 row-major: 1 (masked) above the
/// diagonal, 0 on and below it.
fn optimised_causal_mask() -> Vec<u8> {
    (0..2048 * 2048)
        .map(|i| u8::from(i % 2048 > i / 2048))
        .collect()
}

/// The vendor decode: `q`'s `batch · s_q` tokens (sequence-major, `s_q` per sequence, the
/// sequence's last tokens) against `table`'s sequences in `cache`, bottom-right causal when
/// `s_q > 1` (the op takes no other mask there). Returns `out [batch, s_q, heads, 512]`, the
/// latent `ō` before `W_UV`, and `lse [batch, heads, s_q]` (natural log, `+∞` with output 0
/// for an empty sequence), as [`mqa_decode`](super::mqa_decode) does.
pub fn vendor_attend(
    stream: &Stream,
    q: &VendorQuery,
    s_q: usize,
    cache: &LatentCache,
    table: &BlockTable,
    params: DecodeParams,
) -> Result<DecodeOutput> {
    check_decode(cache, table, s_q, q.heads, params)?;
    let layout = *cache.layout();
    let batch = table.batch();
    if layout.format != CacheFormat::AscendSplit
        || !(1..=MAX_S_Q).contains(&s_q)
        || (s_q > 1 && !params.causal)
        || q.tokens != batch * s_q
        || !(q.heads.is_power_of_two() && q.heads <= MAX_HEADS)
    {
        return Err(Error::invalid(
            format!(
                "{} query tokens of {} heads, s_q {s_q}, {batch} sequences, a {:?} cache",
                q.tokens, q.heads, layout.format
            ),
            format!(
                "batch · s_q tokens, s_q in 1..={MAX_S_Q} (causal above 1), a power-of-two \
                 head count up to {MAX_HEADS}, an AscendSplit cache"
            ),
        ));
    }
    let h = q.heads;
    let mut out = stream.alloc_zeroed::<bf16>(batch * s_q * h * layout.latent)?;
    let mut lse = stream.alloc_zeroed::<f32>((batch * h * s_q).max(1))?;
    if batch == 0 {
        return Ok(DecodeOutput { out, lse });
    }
    let lens: Vec<i64> = table.seq_lens().iter().map(|&l| l as i64).collect();
    let latent_bytes = split_bytes(&layout);
    let kv_bytes = cache.data().slice(0..latent_bytes)?;
    let kr_bytes = cache.data().slice(latent_bytes..)?;
    let cache_dims = [layout.blocks, layout.block_size, layout.latent];
    let mask = if s_q > 1 {
        Some(stream.upload(&optimised_causal_mask())?)
    } else {
        None
    };
    {
        let dims = |d: usize| [batch, s_q, h, d];
        let query = AclTensor::new(&q.q, &dims(layout.latent))?;
        let query_rope = AclTensor::new(&q.q_rope, &dims(layout.rope))?;
        let key = AclTensorList::new(vec![AclTensor::from_bytes::<bf16>(&kv_bytes, &cache_dims)?])?;
        let value =
            AclTensorList::new(vec![AclTensor::from_bytes::<bf16>(&kv_bytes, &cache_dims)?])?;
        let key_rope = AclTensor::from_bytes::<bf16>(
            &kr_bytes,
            &[layout.blocks, layout.block_size, layout.rope],
        )?;
        let block_table = AclTensor::new(table.device_table(), &[batch, table.max_blocks()])?;
        let atten_mask = mask
            .as_ref()
            .map(|m| AclTensor::new(m, &[2048, 2048]))
            .transpose()?;
        let mut out_t = AclTensor::new_mut(&mut out, &dims(layout.latent))?;
        let mut lse_t = AclTensor::new_mut(&mut lse, &[batch, h, s_q, 1])?;
        aclnn::mla_decode_v3(
            stream,
            MlaDecodeTensors {
                query: &query,
                query_rope: &query_rope,
                key,
                value,
                key_rope: &key_rope,
                block_table: &block_table,
                atten_mask: atten_mask.as_ref(),
                out: &mut out_t,
                softmax_lse: Some(&mut lse_t),
            },
            &MlaDecodeAttrs {
                heads: h,
                scale: f64::from(params.softmax_scale),
                layout: InputLayout::Bsnd,
                block_size: layout.block_size,
                kv_lens: &lens,
                sparse: if s_q > 1 {
                    SparseMode::RightDownCausal
                } else {
                    SparseMode::NoMask
                },
            },
        )?;
    }
    Ok(DecodeOutput { out, lse })
}

#[cfg(test)]
mod tests {
    use super::optimised_causal_mask;

    /// Row r masks exactly the columns after r (the simulator reads the mask's shape and
    /// dtype, not its values, so only this holds them).
    #[test]
    fn the_optimised_causal_mask_masks_above_the_diagonal_only() {
        let m = optimised_causal_mask();
        assert_eq!(m.len(), 2048 * 2048);
        for (r, row) in m.chunks_exact(2048).enumerate() {
            assert!(row[..=r].iter().all(|&v| v == 0), "row {r}");
            assert!(row[r + 1..].iter().all(|&v| v == 1), "row {r}");
        }
    }
}
