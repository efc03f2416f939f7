//! MLA on our kernels: the paged latent-cache write, the absorbed paged decode and the
//! (absorbed) chunked prefill, with the least work each needs.

use ascend_npu::ops::mla::{
    BlockTable, BlockTableSpec, CacheFormat, CacheLayout, CacheWriteInput, DecodeParams,
    LatentCache, LatentProjection, MqaQuery, Positions, PrefillQuery, RopeTable, SlotMapping,
    mqa_decode, prefill, write_cache,
};
use ascend_npu::reference::mla::{MlaConfig, Rope};
use half::bf16;

use super::Work;
use super::ops::{BF16, Bench, F32};

/// Positions drawn below this (past YaRN's original 4096-token context).
const MAX_POS: usize = 4200;

/// Writes `tokens` latent rows (RMSNorm of the latent, RoPE of the key) to distinct slots of
/// a bf16 cache of `block_size`-token blocks.
pub fn cache_write(b: &mut Bench, tokens: usize, block_size: usize) {
    let cfg = MlaConfig::deepseek_v3().with_heads(1);
    let row = cfg.cache_row();
    let blocks = tokens.div_ceil(block_size) + 1;
    let layout = CacheLayout::for_config(&cfg, blocks, block_size, CacheFormat::Bf16);
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let kv = b.random::<bf16>(tokens * row, 3.0)?;
        let gamma = b.random::<bf16>(cfg.kv_lora_rank, 0.5)?;
        let rope = RopeTable::new(&b.stream, &Rope::new(&cfg), MAX_POS)?;
        let positions: Vec<usize> = (0..tokens).map(|t| (t * 97) % MAX_POS).collect();
        let positions = Positions::new(&b.stream, &rope, &positions)?;
        let slots: Vec<i32> = (0..tokens as i32).collect();
        let slots = SlotMapping::new(&b.stream, &layout, &slots)?;
        let cache = LatentCache::new(&b.stream, layout)?;
        Ok((kv, gamma, rope, positions, slots, cache))
    };
    let (t, r, l, p) = (
        tokens as u64,
        row as u64,
        cfg.kv_lora_rank as u64,
        cfg.qk_rope_head_dim as u64,
    );
    // Each row read once and written once, with γ, its slot and position, and its RoPE
    // angles (cos and sin of p/2 pairs, f32). RMSNorm: square, sum, scale, γ (4 per latent
    // element); RoPE: 2 multiplies and an add per element, with the pair's swap (4).
    let minimum = Work {
        read_bytes: t * r * BF16 + l * BF16 + t * (F32 + F32) + t * p * F32,
        written_bytes: t * r * BF16,
        cube_macs: 0,
        vector_ops: t * (4 * l + 4 * p),
        ..Work::default()
    };
    match set(b) {
        Ok((kv, gamma, rope, positions, slots, mut cache)) => {
            let (kernels, stream) = (&b.kernels, &b.stream);
            b.run.measure(
                "mla-cache-write",
                &format!("bf16 T={tokens} block={block_size}"),
                minimum,
                || {
                    let input = CacheWriteInput {
                        kv: kv.as_view(),
                        norm_weight: gamma.as_view(),
                        eps: cfg.rms_norm_eps as f32,
                        rope: &rope,
                        positions: &positions,
                        slots: &slots,
                    };
                    write_cache(kernels, stream, &input, &mut cache)
                },
            )
        }
        Err(e) => b.run.failed("mla-cache-write", e),
    }
}

/// Decodes `s_q` query tokens of `heads` heads for four sequences of `2·block + 3` cached
/// tokens each (two full blocks and a partial one), over a bf16 and an FP8 cache.
pub fn decode(b: &mut Bench, heads: usize, s_q: usize, block_size: usize) {
    for format in [CacheFormat::Bf16, CacheFormat::Fp8] {
        decode_cache(b, (heads, s_q, block_size), format);
    }
}

/// The bytes of `slots` cache rows of `layout`: random bf16 rows, or FP8 rows of random finite
/// E4M3 codes (never the NaN codes 0x7F, 0xFF) with unit scales and random bf16 rope values.
fn cache_bytes(b: &mut Bench, layout: &CacheLayout) -> Vec<u8> {
    let row = layout.row();
    let rows: Vec<bf16> = crate::check::round_to(&b.rng.vec(layout.slots() * row, 0.5));
    if layout.format != CacheFormat::Fp8 {
        return bytemuck::cast_slice(&rows).to_vec();
    }
    let (latent, rope) = (layout.latent, layout.rope);
    let mut bytes = Vec::with_capacity(layout.slots() * layout.row_bytes());
    for r in rows.chunks_exact(row) {
        // A code from the value's bits: finite, and varied enough for a cost count.
        bytes.extend(r[..latent].iter().map(|v| (v.to_bits() >> 8) as u8 & 0x7E));
        bytes.extend((0..latent / 128).flat_map(|_| 1.0f32.to_le_bytes()));
        bytes.extend(bytemuck::cast_slice::<bf16, u8>(&r[latent..latent + rope]));
    }
    bytes
}

/// A cache of `layout` holding `batch` sequences of `len` random rows each, in blocks dealt in
/// order.
fn full_cache(
    b: &mut Bench,
    layout: &CacheLayout,
    batch: usize,
    len: usize,
) -> ascend_npu::Result<(LatentCache, BlockTable)> {
    let per_seq = len.div_ceil(layout.block_size);
    let mut cache = LatentCache::new(&b.stream, *layout)?;
    let bytes = cache_bytes(b, layout);
    cache.data_mut().copy_from_host(&bytes)?;
    let table: Vec<i32> = (0..(batch * per_seq) as i32).collect();
    let seq_lens = vec![len; batch];
    let spec = BlockTableSpec {
        table: &table,
        max_blocks: per_seq,
        seq_lens: &seq_lens,
    };
    let table = BlockTable::new(&b.stream, layout, spec)?;
    Ok((cache, table))
}

fn decode_cache(
    b: &mut Bench,
    (heads, s_q, block_size): (usize, usize, usize),
    format: CacheFormat,
) {
    let cfg = MlaConfig::deepseek_v3().with_heads(1);
    let batch = 4;
    let len = 2 * block_size + 3;
    let per_seq = len.div_ceil(block_size);
    let layout = CacheLayout::for_config(&cfg, batch * per_seq, block_size, format);
    let row = layout.row();
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let (cache, table) = full_cache(b, &layout, batch, len)?;
        let q = b.random::<bf16>(batch * s_q * heads * row, 0.5)?;
        Ok((cache, table, q))
    };
    let (bu, sq, h, n, d, dv, rb) = (
        batch as u64,
        s_q as u64,
        heads as u64,
        len as u64,
        row as u64,
        layout.latent as u64,
        layout.row_bytes() as u64,
    );
    // The queries and each sequence's cache rows read once (the heads share them), the
    // output and its log-sum-exp written once; q·k over d and p·v over dv per score;
    // softmax: max, subtract, exp, sum, scale (5 per score). The block table and lengths
    // (a few bytes per sequence) are left out: scalar loads, which the counters do not see.
    let scores = bu * sq * h * n;
    let minimum = Work {
        read_bytes: bu * sq * h * d * BF16 + bu * n * rb,
        written_bytes: bu * sq * h * dv * BF16 + bu * sq * h * F32,
        cube_macs: scores * (d + dv),
        vector_ops: 5 * scores,
        ..Work::default()
    };
    let params = DecodeParams {
        softmax_scale: cfg.softmax_scale() as f32,
        causal: s_q > 1,
    };
    let name = if format == CacheFormat::Fp8 {
        "fp8"
    } else {
        "bf16"
    };
    match set(b) {
        Ok((cache, table, q)) => {
            let (kernels, stream) = (&b.kernels, &b.stream);
            b.run.measure(
                "mla-decode",
                &format!("{name} heads={heads} s_q={s_q} B={batch} len={len}"),
                minimum,
                || {
                    let query = MqaQuery {
                        q: q.as_view(),
                        s_q,
                        heads,
                    };
                    mqa_decode(kernels, stream, &query, &cache, &table, params).map(drop)
                },
            )
        }
        Err(e) => b.run.failed("mla-decode", e),
    }
}

/// Chunked prefill (the absorbed form, `ops::mla::prefill`) of `heads` heads: four sequences
/// of `2·block + 3` cached tokens whose last `block + 1` are new (a chunk after a prefix that
/// ends inside a block), over a bf16 and an FP8 cache.
pub fn prefill_chunk(b: &mut Bench, heads: usize, block_size: usize) {
    for format in [CacheFormat::Bf16, CacheFormat::Fp8] {
        prefill_cache(b, (heads, block_size), format);
    }
}

fn prefill_cache(b: &mut Bench, (heads, block_size): (usize, usize), format: CacheFormat) {
    let cfg = MlaConfig::deepseek_v3().with_heads(heads);
    let (batch, len, new) = (4, 2 * block_size + 3, block_size + 1);
    let layout =
        CacheLayout::for_config(&cfg, batch * len.div_ceil(block_size), block_size, format);
    let (dn, dv) = (cfg.qk_nope_head_dim, cfg.v_head_dim);
    let (lat, dr) = (layout.latent, layout.rope);
    let n = batch * new;
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let (cache, table) = full_cache(b, &layout, batch, len)?;
        let q_nope = b.random::<bf16>(n * heads * dn, 0.5)?;
        let q_pe = b.random::<bf16>(n * heads * dr, 0.5)?;
        let kv_b = b.random::<bf16>(heads * (dn + dv) * lat, 0.1)?;
        let proj = LatentProjection::new(&cfg, kv_b)?;
        Ok((cache, table, q_nope, q_pe, proj))
    };
    let [bu, h, nu, l, s] = [batch, heads, n, len, new].map(|v| v as u64);
    let [dn, dv, lat, dr, rb] = [dn, dv, lat, dr, layout.row_bytes()].map(|v| v as u64);
    // Causal bottom-right: new token i of a sequence sees len − new + i + 1 keys.
    let scores = bu * h * (s * (l - s) + s * (s + 1) / 2);
    // Read once: the queries, W_UK and W_UV (kv_b_proj), each sequence's cache rows; written
    // once: the output and its LSE. Cube: q̃ = W_UK q_nope (nope·latent per row), the scores
    // over latent + rope and the values over latent, o = W_UV ō (latent·v per row). Softmax:
    // 5 vector ops per score (max, subtract, exp, sum, scale).
    let minimum = Work {
        read_bytes: nu * h * (dn + dr) * BF16 + h * (dn + dv) * lat * BF16 + bu * l * rb,
        written_bytes: nu * h * dv * BF16 + nu * h * F32,
        cube_macs: nu * h * dn * lat + scores * (lat + dr + lat) + nu * h * lat * dv,
        vector_ops: 5 * scores,
        ..Work::default()
    };
    let name = if format == CacheFormat::Fp8 {
        "fp8"
    } else {
        "bf16"
    };
    let scale = cfg.softmax_scale() as f32;
    let q_lens = vec![new; batch];
    match set(b) {
        Ok((cache, table, q_nope, q_pe, proj)) => {
            let (kernels, stream) = (&b.kernels, &b.stream);
            b.run.measure(
                "mla-prefill",
                &format!("{name} heads={heads} B={batch} len={len} new={new}"),
                minimum,
                || {
                    let query = PrefillQuery {
                        q_nope: q_nope.as_view(),
                        q_pe: q_pe.as_view(),
                        q_lens: &q_lens,
                    };
                    prefill(kernels, stream, &proj, &query, (&cache, &table), scale).map(drop)
                },
            )
        }
        Err(e) => b.run.failed("mla-prefill", e),
    }
}
