//! Prefill in the naive form on the device: per head the keys `[W_UK_h c_t ; k_pe_t]` and
//! values `W_UV_h c_t` from the cached latent, then attention with `d_qk = nope + rope`,
//! causal bottom-right, over a varlen (TND) batch. The reference's [`naive_attention`]
//! (crate::reference::mla::naive_attention) on our kernels, composed without a new one:
//!
//! * one cube matmul per head turns every cache row `[c ; k_pe]` into `[k_nope_h ; v_h ;
//!   k_pe]` (the weight `[[W_UK_h, 0], [W_UV_h, 0], [0, I]]`, so `k_pe` passes exactly);
//! * the decode kernel attends to those rows with one head, the query `[q_nope_h ; 0 ; q_pe]`:
//!   the zero block hides `v_h` from the scores, and the kernel's values (the rows' first
//!   `nope + v` values) carry `v_h` in their second part;
//! * two exact selection matmuls pad the queries and pick `v` out of the outputs.
//!
//! It computes every cache slot's keys for every head, the naive form's cost: use
//! [`prefill`](super::prefill) (absorbed) where speed matters.

use half::bf16;

use super::cache::{CacheFormat, CacheLayout, LatentCache};
use super::decode::{CacheRows, DecodeParams, DecodeRows, launch_decode};
use super::prefill::{PrefillOutput, PrefillQuery, check_prefill};
use super::table::BlockTable;
use crate::error::{Error, Result, elements};
use crate::kernels::mla::{RowPlacement, RowStrides};
use crate::kernels::{Kernels, MatmulShape, WeightLayout, matmul};
use crate::reference::mla::MlaConfig;
use crate::runtime::{DeviceBuffer, DeviceSlice, KernelArg, Stream};

/// `kv_b_proj` in the naive form's layouts, on the device.
pub struct NaiveProjection {
    /// Per head `[nope + v + rope, latent + rope]`: `[W_UK_h, 0]`, `[W_UV_h, 0]`, `[0, I]`.
    keys: DeviceBuffer<bf16>,
    /// `[nope, nope + v]` = `[I, 0]`: pads `q_nope` with `v` zeros.
    pad_q: DeviceBuffer<bf16>,
    /// `[nope + v, v]` = `[0 ; I]`: picks `v` out of an output row.
    take_v: DeviceBuffer<bf16>,
    heads: usize,
    nope: usize,
    v: usize,
    latent: usize,
    rope: usize,
}

impl NaiveProjection {
    /// Builds the layouts from `kv_b_proj [heads·(nope + v), latent]` (bf16, as checkpoints
    /// store it) for `cfg` and uploads them on `stream`.
    pub fn new(stream: &Stream, cfg: &MlaConfig, kv_b_proj: &[bf16]) -> Result<NaiveProjection> {
        let (heads, nope, v, latent, rope) = (
            cfg.num_heads,
            cfg.qk_nope_head_dim,
            cfg.v_head_dim,
            cfg.kv_lora_rank,
            cfg.qk_rope_head_dim,
        );
        let want = elements("kv_b_proj", &[heads, nope + v, latent])?;
        if kv_b_proj.len() != want || want == 0 || (nope + v) % 16 != 0 || rope % 16 != 0 {
            return Err(Error::invalid(
                format!(
                    "kv_b_proj of {} values for {heads} heads, nope {nope}, v {v}, latent \
                     {latent}, rope {rope}",
                    kv_b_proj.len()
                ),
                format!(
                    "[heads·(nope + v), latent] = [{}, {latent}] values, nope + v and rope \
                     multiples of 16",
                    heads * (nope + v)
                ),
            ));
        }
        // The key rows must fit the decode kernel as a cache of nope + v latent, rope rope.
        CacheLayout {
            blocks: 1,
            block_size: 1,
            latent: nope + v,
            rope,
            format: CacheFormat::Bf16,
        }
        .validate()?;
        let (zero, one) = (bf16::ZERO, bf16::ONE);
        let (cols, out_rows) = (latent + rope, nope + v + rope);
        let mut keys = vec![zero; heads * out_rows * cols];
        for (h, w) in kv_b_proj.chunks_exact((nope + v) * latent).enumerate() {
            let head = &mut keys[h * out_rows * cols..(h + 1) * out_rows * cols];
            for (r, src) in w.chunks_exact(latent).enumerate() {
                head[r * cols..r * cols + latent].copy_from_slice(src);
            }
            for i in 0..rope {
                head[(nope + v + i) * cols + latent + i] = one;
            }
        }
        let mut pad_q = vec![zero; nope * (nope + v)];
        for i in 0..nope {
            pad_q[i * (nope + v) + i] = one;
        }
        let mut take_v = vec![zero; (nope + v) * v];
        for i in 0..v {
            take_v[(nope + i) * v + i] = one;
        }
        Ok(NaiveProjection {
            keys: stream.upload(&keys)?,
            pad_q: stream.upload(&pad_q)?,
            take_v: stream.upload(&take_v)?,
            heads,
            nope,
            v,
            latent,
            rope,
        })
    }

    /// Heads.
    pub fn heads(&self) -> usize {
        self.heads
    }
}

/// Attention of every sequence's new tokens over its cache in the naive form (see the module
/// docs): `q_lens[b]` new tokens, the last of sequence `b`'s cached length, attend to its
/// keys, bottom-right causal when `params.causal` (otherwise every query sees all of them, as
/// a chunk attends to a cached prefix before the merge). Returns `out [tokens, heads, v]` and
/// `lse [heads, tokens]`, as [`prefill`](super::prefill) does.
///
/// # A bf16 cache only
///
/// An FP8 cache ([`CacheFormat::Fp8`]) is [`Error::Unsupported`]: the naive form feeds the
/// cache rows to the cube as a bf16 matrix, and FlashMLA's FP8 rows interleave E4M3 codes,
/// their scales and the bf16 rope key in 656-byte rows that no matmul operand takes. It
/// would need a bf16 copy of every slot of the cache first (1,152 bytes a row, 1.76× the FP8
/// cache), giving up the memory the FP8 format saves for a form whose only use is as a
/// second opinion. [`prefill`](super::prefill) (the absorbed form, equal in real
/// arithmetic) reads FP8 rows directly and dequantizes them as it attends.
pub fn prefill_naive(
    kernels: &Kernels,
    stream: &Stream,
    proj: &NaiveProjection,
    q: &PrefillQuery<'_>,
    (cache, table): (&LatentCache, &BlockTable),
    params: DecodeParams,
) -> Result<PrefillOutput> {
    let (h, nope, v, rope) = (proj.heads, proj.nope, proj.v, proj.rope);
    let layout = *cache.layout();
    if layout.format == CacheFormat::Fp8 {
        return Err(Error::unsupported(
            "the naive prefill over an Fp8 cache",
            "the naive form multiplies bf16 cache rows on the cube; use ops::mla::prefill \
             (the absorbed form), which reads FP8 rows",
        ));
    }
    if layout.format != CacheFormat::Bf16 || (layout.latent, layout.rope) != (proj.latent, rope) {
        return Err(Error::invalid(
            format!("a {layout:?} cache for the naive prefill"),
            format!("a Bf16 cache of {} + {rope} rows", proj.latent),
        ));
    }
    let n = check_prefill((cache, table), q.q_lens, h, params)?;
    for (what, view, width) in [("q_nope", &q.q_nope, nope), ("q_pe", &q.q_pe, rope)] {
        if view.len() != elements(what, &[n, h, width])? {
            return Err(Error::invalid(
                format!("{what} of {} elements", view.len()),
                format!("[tokens, heads, width] = [{n}, {h}, {width}] (tokens the sum of q_lens)"),
            ));
        }
    }
    let w1 = nope + v;
    let mut out = stream.alloc_pooled_zeroed::<bf16>(elements("output", &[n, h, v])?)?;
    let mut lse = stream.alloc_pooled_zeroed::<f32>(n * h)?;
    if n == 0 {
        return Ok(PrefillOutput { out, lse });
    }
    // [q_nope_h ; 0] for every (token, head), exact (one product by 1 per value).
    let mut q_pad = stream.alloc_pooled::<bf16>(n * h * w1)?;
    let pad = MatmulShape {
        m: n * h,
        n: w1,
        k: nope,
    };
    matmul(
        kernels,
        stream,
        pad,
        WeightLayout::KN,
        &q.q_nope,
        &proj.pad_q,
        &mut q_pad,
    )?;
    let slots = layout.slots();
    let cols = proj.latent + rope;
    let rows_bytes = cache.data().as_view();
    let rows = rows_bytes.cast_bytes::<bf16>()?;
    let key_layout = CacheLayout {
        latent: w1,
        ..layout
    };
    let key_cache_len = slots * (w1 + rope);
    let mut latent_out = stream.alloc_pooled_zeroed::<bf16>(n * h * w1)?;
    let head_keys = (w1 + rope) * cols;
    for head in 0..h {
        // Every cache row's [k_nope_h ; v_h ; k_pe] (bf16 from f32 sums).
        let mut keys = stream.alloc_pooled::<bf16>(key_cache_len)?;
        let shape = MatmulShape {
            m: slots,
            n: w1 + rope,
            k: cols,
        };
        let w = proj.keys.slice(head * head_keys..(head + 1) * head_keys)?;
        matmul(
            kernels,
            stream,
            shape,
            WeightLayout::NK,
            &rows,
            &w,
            &mut keys,
        )?;
        let mut start = 0;
        for (b, &s_q) in q.q_lens.iter().enumerate() {
            if s_q == 0 {
                continue;
            }
            // Row (token i of this sequence, the one head) at (start + i)·h + head.
            let token_major = |w: usize| RowStrides {
                tok: h * w,
                head: w,
            };
            let rows = DecodeRows {
                lat: KernelArg::buffer(&q_pad),
                rope: KernelArg::buffer(&q.q_pe),
                out: KernelArg::buffer_mut(&mut latent_out),
                strides: [token_major(w1), token_major(rope), token_major(w1)],
                place: RowPlacement {
                    seq: b,
                    q_lat: (start * h + head) * w1,
                    q_rope: (start * h + head) * rope,
                    out: (start * h + head) * w1,
                    lse: head * n + start,
                    lse_seq: 0,
                    lse_head: n,
                    lse_len: n * h,
                },
                batch: 1,
                s_q,
                heads: 1,
            };
            let key_rows = CacheRows {
                layout: key_layout,
                data: KernelArg::buffer(&keys),
            };
            launch_decode(kernels, stream, rows, (key_rows, table), params, &mut lse)?;
            start += s_q;
        }
    }
    // v out of each [·, v] output row, exact.
    let take = MatmulShape {
        m: n * h,
        n: v,
        k: w1,
    };
    matmul(
        kernels,
        stream,
        take,
        WeightLayout::KN,
        &latent_out,
        &proj.take_v,
        &mut out,
    )?;
    Ok(PrefillOutput { out, lse })
}
