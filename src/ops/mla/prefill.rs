//! Prefill and chunked prefill over the paged cache: each sequence's new tokens attend
//! causally (bottom-right) to everything the cache holds for it, the new tokens included, in
//! one varlen (TND) batch.
//!
//! This runs the absorbed form on our kernels (the W_UK products for all tokens at once, one
//! attention launch per sequence, the W_UV products for all tokens), which equals the naive
//! form exactly in real arithmetic. The cache holds the prefix and the chunk, so a chunk needs
//! no LSE merge with the prefix's attention.

use half::bf16;

use super::absorb::{LatentProjection, RopeRows};
use super::cache::LatentCache;
use super::decode::{CacheRows, DecodeParams, DecodeRows, check_decode, launch_decode};
use super::table::BlockTable;
use crate::error::{Error, Result, elements};
use crate::kernels::Kernels;
use crate::kernels::mla::RowPlacement;
use crate::runtime::{DeviceBuffer, DeviceView, Stream};

/// The new tokens of a prefill step, sequence after sequence (TND).
pub struct PrefillQuery<'a> {
    /// `[tokens, heads, nope]`.
    pub q_nope: DeviceView<'a, bf16>,
    /// `[tokens, heads, rope]`, already rotated.
    pub q_pe: DeviceView<'a, bf16>,
    /// New tokens per sequence of the block table (0: none); they are the last tokens of the
    /// sequence's cached length, so write them into the cache first.
    pub q_lens: &'a [usize],
}

/// What a prefill returns.
pub struct PrefillOutput {
    /// `[tokens, heads, v]` bf16: the attention output before `o_proj`.
    pub out: DeviceBuffer<bf16>,
    /// `[heads, tokens]` f32, natural log (FlashAttention's varlen layout).
    pub lse: DeviceBuffer<f32>,
}

/// Checks what every prefill shares: the table belongs to the cache, `heads` and the scale
/// fit, one query length per sequence, each at most its cached length when causal (the new
/// tokens are written into the cache first); returns the lengths' sum.
pub(crate) fn check_prefill(
    (cache, table): (&LatentCache, &BlockTable),
    q_lens: &[usize],
    heads: usize,
    params: DecodeParams,
) -> Result<usize> {
    let causal = params.causal;
    // With one query token the causal check refuses nothing; the lengths are checked below.
    check_decode(cache, table, 1, heads, params)?;
    if q_lens.len() != table.batch() {
        return Err(Error::invalid(
            format!(
                "{} query lengths for {} sequences",
                q_lens.len(),
                table.batch()
            ),
            "one query length per sequence of the block table",
        ));
    }
    for (b, (&n, &len)) in q_lens.iter().zip(table.seq_lens()).enumerate() {
        if causal && n > len {
            return Err(Error::invalid(
                format!("sequence {b} with {n} new tokens but {len} cached"),
                "the new tokens written into the cache first (at most seq_len of them)",
            ));
        }
    }
    q_lens
        .iter()
        .try_fold(0usize, |a, &l| a.checked_add(l))
        .ok_or_else(|| Error::invalid("query lengths whose sum overflows", "a total that fits"))
}

/// Causal attention of every sequence's new tokens over its cache (see the module docs).
pub fn prefill(
    kernels: &Kernels,
    stream: &Stream,
    proj: &LatentProjection,
    q: &PrefillQuery<'_>,
    (cache, table): (&LatentCache, &BlockTable),
    softmax_scale: f32,
) -> Result<PrefillOutput> {
    let params = DecodeParams {
        softmax_scale,
        causal: true,
    };
    let h = proj.heads();
    let n = check_prefill((cache, table), q.q_lens, h, params)?;
    let shape = format!("[tokens, heads, width] with {n} tokens (the sum of q_lens)");
    proj.check_queries(cache, (&q.q_nope, &q.q_pe), n, &shape)?;
    let v = proj.v_head_dim();
    let mut out = stream.alloc_pooled_zeroed::<bf16>(elements("output", &[n, h, v])?)?;
    let mut lse = stream.alloc_pooled_zeroed::<f32>(n * h)?;
    if n == 0 {
        return Ok(PrefillOutput { out, lse });
    }
    let qt = proj.absorb(kernels, stream, &q.q_nope, n)?;
    let lat = cache.layout().latent;
    let mut latent_out = stream.alloc_pooled_zeroed::<bf16>(n * h * lat)?;
    let rope_rows = || RopeRows::dense(&q.q_pe, h, cache.layout().rope);
    let mut start = 0;
    for (b, &s_q) in q.q_lens.iter().enumerate() {
        if s_q == 0 {
            continue;
        }
        let rows = DecodeRows {
            place: RowPlacement {
                seq: b,
                q_lat: start * lat,
                q_rope: start * h * cache.layout().rope,
                out: start * lat,
                lse: start,
                lse_seq: 0,
                lse_head: n,
                lse_len: n * h,
            },
            batch: 1,
            s_q,
            ..proj.rows(&qt, rope_rows(), &mut latent_out, n)
        };
        launch_decode(
            kernels,
            stream,
            rows,
            (CacheRows::of(cache), table),
            params,
            &mut lse,
        )?;
        start += s_q;
    }
    proj.expand(kernels, stream, &latent_out, &mut out, n)?;
    Ok(PrefillOutput { out, lse })
}
