//! The absorbed (MQA) decode over the paged cache, FlashMLA's dense decode, on our
//! `mla_decode_*` kernels.

use half::bf16;

use super::cache::{CacheLayout, LatentCache};
use super::table::BlockTable;
use crate::error::{Error, Result, elements};
use crate::kernels::Kernels;
use crate::kernels::mla::{DecodeArgs, DecodeShape, RowPlacement, RowStrides};
use crate::runtime::{DeviceBuffer, DeviceSlice, DeviceView, KernelArg, Stream};

/// Absorbed queries, FlashMLA's `q`.
pub struct MqaQuery<'a> {
    /// `[batch, s_q, heads, latent + rope]`: per head the absorbed `q̃ = W_UKᵀ q_nope`, then
    /// the rotated `q_pe`.
    pub q: DeviceView<'a, bf16>,
    /// Query tokens per sequence (1, or more for speculative decoding).
    pub s_q: usize,
    /// Query heads.
    pub heads: usize,
}

/// How the attention is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeParams {
    /// The softmax scale: pass [`MlaConfig::softmax_scale`](crate::reference::mla::MlaConfig::softmax_scale)
    /// (0.13523378 for DeepSeek-V3), never FlashMLA's `1/√576` default.
    pub softmax_scale: f32,
    /// Bottom-right causal mask over the `s_q` speculative tokens: query `i` sees keys
    /// `0 ..= seq_len − s_q + i` (a no-op for `s_q = 1`).
    pub causal: bool,
}

/// What a decode returns.
pub struct DecodeOutput {
    /// `[batch, s_q, heads, width]` bf16: the latent `ō` for [`mqa_decode`], `o = W_UV ō`
    /// for [`decode`](super::decode).
    pub out: DeviceBuffer<bf16>,
    /// `[batch, heads, s_q]` f32: `ln Σ exp(scaled scores)` (natural log); `+∞` for a query
    /// that sees no key, whose output is 0.
    pub lse: DeviceBuffer<f32>,
}

/// The rows of one decode launch as the kernel addresses them: the query's latent and rope
/// parts and the output, with their strides and offsets.
pub(crate) struct DecodeRows<'a> {
    pub lat: KernelArg<'a>,
    pub rope: KernelArg<'a>,
    pub out: KernelArg<'a>,
    /// Latent queries, rope queries, output.
    pub strides: [RowStrides; 3],
    pub place: RowPlacement,
    /// Sequences in the launch (from `place.seq` on).
    pub batch: usize,
    pub s_q: usize,
    pub heads: usize,
}

/// Checks what every decode shares: the table belongs to the cache, the widths fit, the
/// causal queries fit each sequence, the scale is usable.
pub(crate) fn check_decode(
    cache: &LatentCache,
    table: &BlockTable,
    s_q: usize,
    heads: usize,
    params: DecodeParams,
) -> Result<()> {
    cache.layout().check_same(table.layout(), "a block table")?;
    if s_q == 0 || heads == 0 {
        return Err(Error::invalid(
            format!("a decode of {s_q} query tokens and {heads} heads"),
            "at least one query token and one head",
        ));
    }
    if !params.softmax_scale.is_finite() || params.softmax_scale <= 0.0 {
        return Err(Error::invalid(
            format!("softmax scale {}", params.softmax_scale),
            "a finite positive scale (0.13523378 for DeepSeek-V3)",
        ));
    }
    if params.causal {
        if let Some((b, &len)) = table
            .seq_lens()
            .iter()
            .enumerate()
            .find(|(_, l)| **l > 0 && **l < s_q)
        {
            return Err(Error::invalid(
                format!("sequence {b} of {len} cached tokens with {s_q} causal query tokens"),
                "at least s_q tokens in every non-empty sequence (the queries are its last tokens)",
            ));
        }
    }
    Ok(())
}

/// The cache rows a decode launch reads: a layout and its bytes (a [`LatentCache`], or rows
/// built for one launch, such as the naive prefill's per-head keys).
pub(crate) struct CacheRows<'a> {
    pub layout: CacheLayout,
    pub data: KernelArg<'a>,
}

impl<'a> CacheRows<'a> {
    pub(crate) fn of(cache: &'a LatentCache) -> Self {
        CacheRows {
            layout: *cache.layout(),
            data: KernelArg::buffer(cache.data()),
        }
    }
}

/// Launches the decode kernel for validated inputs.
pub(crate) fn launch_decode(
    kernels: &Kernels,
    stream: &Stream,
    rows: DecodeRows<'_>,
    (cache, table): (CacheRows<'_>, &BlockTable),
    params: DecodeParams,
    lse: &mut DeviceBuffer<f32>,
) -> Result<()> {
    let layout = &cache.layout;
    let shape = DecodeShape {
        batch: rows.batch,
        s_q: rows.s_q,
        heads: rows.heads,
        latent: layout.latent,
        rope: layout.rope,
        block_size: layout.block_size,
        max_blocks: table.max_blocks(),
        cache_blocks: layout.blocks,
        row_bytes: layout.row_bytes(),
        fp8: layout.kernel_fp8()?,
        causal: params.causal,
        scale: params.softmax_scale,
    };
    let [lat, rope, out] = rows.strides;
    kernels.mla_decode(
        stream,
        &shape,
        ([lat, rope], out, rows.place),
        DecodeArgs {
            q_lat: rows.lat,
            q_rope: rows.rope,
            cache: cache.data,
            table: KernelArg::buffer(table.device_table()),
            seq_lens: KernelArg::buffer(table.device_seq_lens()),
            out: rows.out,
            lse: KernelArg::buffer_mut(lse),
        },
    )
}

/// FlashMLA's dense decode (`flash_mla_with_kvcache`): for each sequence of `table`, MQA of
/// its `s_q · heads` absorbed query rows over its cached rows (keys the whole row, values
/// the latent part), reading the cache once per 128 query rows (once per sequence for
/// DeepSeek's 128 heads at `s_q = 1`). Returns `out [batch, s_q, heads, latent]` and
/// `lse [batch, heads, s_q]`.
pub fn mqa_decode(
    kernels: &Kernels,
    stream: &Stream,
    q: &MqaQuery<'_>,
    cache: &LatentCache,
    table: &BlockTable,
    params: DecodeParams,
) -> Result<DecodeOutput> {
    check_decode(cache, table, q.s_q, q.heads, params)?;
    let layout = cache.layout();
    let row = layout.row();
    let batch = table.batch();
    if q.q.len() != elements("queries", &[batch, q.s_q, q.heads, row])? {
        return Err(Error::invalid(
            format!("q of {} elements", q.q.len()),
            format!(
                "[batch, s_q, heads, latent + rope] = [{batch}, {}, {}, {row}]",
                q.s_q, q.heads
            ),
        ));
    }
    let rows = elements("query rows", &[batch, q.s_q, q.heads])?;
    // The kernel writes every row (a row that sees no key: 0 and +inf), so nothing is zeroed.
    let mut out = stream.alloc_pooled::<bf16>(elements("output", &[rows, layout.latent])?)?;
    let mut lse = stream.alloc_pooled::<f32>(rows)?;
    if rows == 0 {
        return Ok(DecodeOutput { out, lse });
    }
    let strides = RowStrides {
        tok: q.heads * row,
        head: row,
    };
    let out_strides = RowStrides {
        tok: q.heads * layout.latent,
        head: layout.latent,
    };
    let rows_of_launch = DecodeRows {
        lat: KernelArg::buffer(&q.q),
        rope: KernelArg::buffer(&q.q),
        out: KernelArg::buffer_mut(&mut out),
        strides: [strides, strides, out_strides],
        place: RowPlacement {
            q_rope: layout.latent,
            ..RowPlacement::decode(q.s_q, q.heads, rows)
        },
        batch,
        s_q: q.s_q,
        heads: q.heads,
    };
    launch_decode(
        kernels,
        stream,
        rows_of_launch,
        (CacheRows::of(cache), table),
        params,
        &mut lse,
    )?;
    Ok(DecodeOutput { out, lse })
}
