//! The MLA kernels (`kernels-ascendc/mla_*.cpp`): the latent-cache write and the absorbed
//! decode. `ops::mla` validates every input once and calls these launchers; they only plan the
//! tiling and launch.

use bytemuck::{Pod, Zeroable};

use super::Kernels;
use crate::error::{Error, Result};
use half::bf16;

use crate::runtime::{DeviceSlice, DeviceSliceMut, Kernel, KernelArg, KernelBinary, Stream};

/// Mirrors `MlaCacheWriteTiling` of `kernels-ascendc/tiling/mla_cache_write_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MlaCacheWriteTiling {
    /// Rows of `kv`.
    pub tokens: u32,
    /// Latent width (512 for DeepSeek).
    pub latent: u32,
    /// Rope-key width (64).
    pub rope: u32,
    /// Rows of the cache (`blocks · block_size`).
    pub slots: u32,
    /// Rows of the cos / sin tables.
    pub positions: u32,
    /// Tokens per launched block.
    pub tokens_per_block: u32,
    /// The f32 bits of the RMSNorm epsilon.
    pub eps_bits: u32,
    /// Bytes per cache row.
    pub row_bytes: u32,
}

/// Mirrors `MlaDecodeTiling` of `kernels-ascendc/tiling/mla_decode_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MlaDecodeTiling {
    /// Sequences.
    pub batch: u32,
    /// Query tokens per sequence.
    pub s_q: u32,
    /// Query heads.
    pub heads: u32,
    /// Latent width (the value width too).
    pub latent: u32,
    /// Rope-key width.
    pub rope: u32,
    /// Tokens per cache block.
    pub block_size: u32,
    /// Columns of the block table.
    pub max_blocks: u32,
    /// Blocks in the cache.
    pub cache_blocks: u32,
    /// Bytes per cache row.
    pub row_bytes: u32,
    /// Query rows per work item (at most 128).
    pub group_rows: u32,
    /// Work items per sequence.
    pub groups: u32,
    /// Cache rows per chunk: a multiple of 16 of at most 256.
    pub chunk_tokens: u32,
    /// 1: bottom-right causal mask.
    pub causal: u32,
    /// The f32 bits of the softmax scale.
    pub scale_bits: u32,
    /// Element stride between query tokens, latent part.
    pub q_lat_tok: u32,
    /// Element stride between heads, latent part.
    pub q_lat_head: u32,
    /// Element stride between query tokens, rope part.
    pub q_rope_tok: u32,
    /// Element stride between heads, rope part.
    pub q_rope_head: u32,
    /// Element stride between output tokens.
    pub out_tok: u32,
    /// Element stride between output heads.
    pub out_head: u32,
    /// Elements from the rope buffer's start to row (0, 0, 0)'s rope part.
    pub q_rope_off: u32,
    /// The launch's sequence 0 is this row of the block table and lengths.
    pub seq_off: u32,
    /// Element offset of row (0, 0, 0) in the latent queries.
    pub q_lat_off: u32,
    /// Element offset of row (0, 0, 0) in the output.
    pub out_off: u32,
    /// LSE of row (b, i, h) at `lse_off + b·lse_seq + h·lse_head + i`.
    pub lse_off: u32,
    /// See `lse_off`.
    pub lse_seq: u32,
    /// See `lse_off`.
    pub lse_head: u32,
    /// Elements of the LSE buffer.
    pub lse_len: u32,
    /// Workspace bytes of one Mix group (`MLA_DECODE_WS_BYTES`).
    pub ws_bytes: u32,
}

/// The MLA kernels of one binary.
pub(crate) struct MlaKernels {
    /// `[bf16, fp8]` cache formats.
    write: [Kernel; 2],
    /// `[bf16, fp8]` cache formats.
    decode: [Kernel; 2],
    swap_axes: Kernel,
    /// `mla_lse_merge_bf16`.
    merge: Kernel,
}

impl MlaKernels {
    pub(crate) fn load(binary: &KernelBinary) -> Result<Self> {
        let kernel = |name: &str| super::manifest::load(binary, name);
        Ok(MlaKernels {
            write: [
                kernel("mla_cache_write_bf16")?,
                kernel("mla_cache_write_fp8")?,
            ],
            decode: [kernel("mla_decode_bf16")?, kernel("mla_decode_fp8")?],
            swap_axes: kernel("mla_swap_axes_bf16")?,
            merge: kernel("mla_lse_merge_bf16")?,
        })
    }
}

/// The device buffers of one cache write, already validated by `ops::mla`.
pub(crate) struct CacheWriteArgs<'a> {
    pub kv: KernelArg<'a>,
    pub gamma: KernelArg<'a>,
    pub cos: KernelArg<'a>,
    pub sin: KernelArg<'a>,
    pub positions: KernelArg<'a>,
    pub slots: KernelArg<'a>,
    pub cache: KernelArg<'a>,
}

fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(format!("{what} = {v}"), "at most u32::MAX"))
}

impl MlaCacheWriteTiling {
    /// Sizes in elements; `fp8` picks the 656-byte row format. Spreads the tokens over at most
    /// `cores` blocks; returns the tiling and the block count.
    pub(crate) fn plan(
        shape: &crate::ops::mla::CacheWriteShape,
        cores: u32,
    ) -> Result<(MlaCacheWriteTiling, u32)> {
        let tokens = u32_of("tokens", shape.tokens)?;
        let blocks = tokens.clamp(1, cores.max(1));
        let tokens_per_block = tokens.div_ceil(blocks).max(1);
        let blocks = tokens.div_ceil(tokens_per_block);
        Ok((
            MlaCacheWriteTiling {
                tokens,
                latent: u32_of("latent", shape.latent)?,
                rope: u32_of("rope", shape.rope)?,
                slots: u32_of("cache slots", shape.slots)?,
                positions: u32_of("rope positions", shape.positions)?,
                tokens_per_block,
                eps_bits: shape.eps.to_bits(),
                row_bytes: u32_of("row bytes", shape.row_bytes)?,
            },
            blocks,
        ))
    }
}

impl Kernels {
    /// Launches the cache write (`fp8`: the 656-byte format) with a validated shape.
    pub(crate) fn mla_cache_write(
        &self,
        stream: &Stream,
        shape: &crate::ops::mla::CacheWriteShape,
        fp8: bool,
        args: CacheWriteArgs<'_>,
    ) -> Result<()> {
        if shape.tokens == 0 {
            return Ok(());
        }
        let (tiling, blocks) = MlaCacheWriteTiling::plan(shape, self.inner.vector_cores)?;
        self.launch_tiled(
            stream,
            (&self.inner.mla.write[usize::from(fp8)], blocks),
            &tiling,
            &[
                args.kv,
                args.gamma,
                args.cos,
                args.sin,
                args.positions,
                args.slots,
                args.cache,
            ],
        )
    }
}

/// UB bytes per core the kernels may plan with (184 KiB: the top 8 KiB is the library's).
const UB_BUDGET: usize = 188_416;
/// L1 bytes of a cube core.
const L1_BYTES: usize = 524_288;
/// Query rows one decode work item holds at most (the kernel's `kMaxRows`: 128 rows of f32
/// partial outputs are what two AIVs' UB hold beside their scratch).
const MAX_GROUP_ROWS: usize = 128;
/// Cache rows per decode chunk at most (a multiple of 16).
const MAX_CHUNK_TOKENS: usize = 256;
/// The kernel's steps (`MLA_DECODE_*_ROWS` of the tiling header).
const SOFTMAX_ROWS: usize = 8;
const ACC_ROWS: usize = 8;
const FP8_ROWS: usize = 4;

fn round32(bytes: usize) -> usize {
    bytes.div_ceil(32) * 32
}

/// The sizes of one decode, checked by `ops::mla`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DecodeShape {
    pub batch: usize,
    pub s_q: usize,
    pub heads: usize,
    pub latent: usize,
    pub rope: usize,
    pub block_size: usize,
    pub max_blocks: usize,
    pub cache_blocks: usize,
    pub row_bytes: usize,
    pub fp8: bool,
    pub causal: bool,
    pub scale: f32,
}

/// Where a decode launch's rows live in its buffers (element offsets and the LSE layout).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RowPlacement {
    /// The first sequence's row in the block table and lengths.
    pub seq: usize,
    /// Row (0, 0, 0) in the latent queries, the rope queries and the output.
    pub q_lat: usize,
    pub q_rope: usize,
    pub out: usize,
    /// LSE of row (b, i, h) at `lse + b·lse_seq + h·lse_head + i`, in `lse_len` elements.
    pub lse: usize,
    pub lse_seq: usize,
    pub lse_head: usize,
    pub lse_len: usize,
}

impl RowPlacement {
    /// Everything at offset 0 and the decode LSE layout `[batch, heads, s_q]` of `rows`
    /// elements.
    pub(crate) fn decode(s_q: usize, heads: usize, rows: usize) -> RowPlacement {
        RowPlacement {
            lse_seq: heads * s_q,
            lse_head: s_q,
            lse_len: rows,
            ..RowPlacement::default()
        }
    }
}

/// Element strides of the query and output rows: row `(b, i, h)` starts at
/// `(b·s_q + i)·tok + h·head`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowStrides {
    pub tok: usize,
    pub head: usize,
}

/// One AIV's UB bytes for `g` query rows per item and `t` tokens per chunk
/// (`MLA_DECODE_UB_BYTES` of the tiling header).
fn decode_ub_bytes(shape: &DecodeShape, g: usize, t: usize) -> usize {
    let (l, r) = (shape.latent, shape.rope);
    let softmax = SOFTMAX_ROWS * t * 12 + 256;
    let acc = ACC_ROWS * l * 4;
    let fp8 = if shape.fp8 {
        FP8_ROWS * (round32(l + 4 * l / 128) + round32(2 * r) + 12 * l)
    } else {
        0
    };
    round32(g.div_ceil(2) * l * 4)
        + softmax.max(acc).max(fp8)
        + 64 * 48
        + if shape.fp8 { 1024 } else { 0 }
}

/// The cube core's L1 bytes: the item's queries, one chunk of keys and its probabilities (two
/// bf16 terms).
fn decode_l1_bytes(shape: &DecodeShape, g: usize, t: usize) -> usize {
    let d = shape.latent + shape.rope;
    g.next_multiple_of(16) * (d + 2 * t) * 2 + t * d * 2
}

/// One Mix group's workspace bytes (`MLA_DECODE_WS_BYTES` of the tiling header).
fn decode_ws_bytes(shape: &DecodeShape, g: usize, t: usize) -> usize {
    let fp8 = if shape.fp8 {
        t * (shape.latent + shape.rope) * 2
    } else {
        0
    };
    g * t * 8 + g * shape.latent * 4 + fp8
}

impl MlaDecodeTiling {
    /// Plans the work items: as many query rows per item as L1 and the AIVs' UB hold (so each
    /// sequence's cache is read as few times as possible: once for up to 128 rows), balanced
    /// over the items, then as many tokens per chunk as L1 holds (fewer round trips of the
    /// partial outputs). Returns the tiling and the Mix groups to launch (at most `cores`).
    pub(crate) fn plan(
        shape: &DecodeShape,
        (q, out, place): ([RowStrides; 2], RowStrides, RowPlacement),
        cores: u32,
    ) -> Result<(MlaDecodeTiling, u32)> {
        let rows = shape.s_q * shape.heads;
        let fits = |g: usize, t: usize| {
            decode_ub_bytes(shape, g, t) <= UB_BUDGET && decode_l1_bytes(shape, g, t) <= L1_BYTES
        };
        let fit = (1..=MAX_GROUP_ROWS.min(rows.max(1)))
            .rev()
            .find(|&g| fits(g, 16))
            .ok_or_else(|| {
                Error::invalid(
                    format!(
                        "an MLA decode of latent {} and rope {}",
                        shape.latent, shape.rope
                    ),
                    "widths whose query rows, cache chunk and partial outputs fit L1 and the 184 KiB UB",
                )
            })?;
        let groups = rows.div_ceil(fit);
        let group_rows = rows.div_ceil(groups);
        let chunk = (1..=MAX_CHUNK_TOKENS / 16)
            .rev()
            .map(|c| 16 * c)
            .find(|&t| fits(group_rows, t))
            .unwrap_or(16);
        let items = crate::error::elements("decode work items", &[shape.batch, groups])?;
        let blocks = items.clamp(1, cores.max(1) as usize) as u32;
        Ok((
            MlaDecodeTiling {
                batch: u32_of("batch", shape.batch)?,
                s_q: u32_of("s_q", shape.s_q)?,
                heads: u32_of("heads", shape.heads)?,
                latent: u32_of("latent", shape.latent)?,
                rope: u32_of("rope", shape.rope)?,
                block_size: u32_of("block size", shape.block_size)?,
                max_blocks: u32_of("max blocks", shape.max_blocks)?,
                cache_blocks: u32_of("cache blocks", shape.cache_blocks)?,
                row_bytes: u32_of("row bytes", shape.row_bytes)?,
                group_rows: group_rows as u32,
                groups: u32_of("groups", groups)?,
                chunk_tokens: chunk as u32,
                causal: u32::from(shape.causal),
                scale_bits: shape.scale.to_bits(),
                q_lat_tok: u32_of("query token stride", q[0].tok)?,
                q_lat_head: u32_of("query head stride", q[0].head)?,
                q_rope_tok: u32_of("query token stride", q[1].tok)?,
                q_rope_head: u32_of("query head stride", q[1].head)?,
                out_tok: u32_of("output token stride", out.tok)?,
                out_head: u32_of("output head stride", out.head)?,
                q_rope_off: u32_of("query rope offset", place.q_rope)?,
                seq_off: u32_of("first sequence", place.seq)?,
                q_lat_off: u32_of("query offset", place.q_lat)?,
                out_off: u32_of("output offset", place.out)?,
                lse_off: u32_of("LSE offset", place.lse)?,
                lse_seq: u32_of("LSE sequence stride", place.lse_seq)?,
                lse_head: u32_of("LSE head stride", place.lse_head)?,
                lse_len: u32_of("LSE length", place.lse_len)?,
                ws_bytes: u32_of(
                    "decode workspace bytes",
                    decode_ws_bytes(shape, group_rows, chunk),
                )?,
            },
            blocks,
        ))
    }
}

/// The device buffers of one decode, already validated by `ops::mla`.
pub(crate) struct DecodeArgs<'a> {
    pub q_lat: KernelArg<'a>,
    pub q_rope: KernelArg<'a>,
    pub cache: KernelArg<'a>,
    pub table: KernelArg<'a>,
    pub seq_lens: KernelArg<'a>,
    pub out: KernelArg<'a>,
    pub lse: KernelArg<'a>,
}

impl Kernels {
    /// Launches the absorbed decode with a validated shape and row strides.
    pub(crate) fn mla_decode(
        &self,
        stream: &Stream,
        shape: &DecodeShape,
        layout: ([RowStrides; 2], RowStrides, RowPlacement),
        args: DecodeArgs<'_>,
    ) -> Result<()> {
        if shape.batch == 0 || shape.s_q == 0 || shape.heads == 0 {
            return Ok(());
        }
        let (tiling, blocks) = MlaDecodeTiling::plan(shape, layout, self.inner.cube_cores)?;
        // A per-group ring of scores, probabilities, partial outputs (and decoded FP8 keys),
        // freed in stream order after the kernel.
        let mut workspace =
            stream.alloc_pooled::<u8>(blocks as usize * tiling.ws_bytes as usize)?;
        self.launch_tiled(
            stream,
            (&self.inner.mla.decode[usize::from(shape.fp8)], blocks),
            &tiling,
            &[
                args.q_lat,
                args.q_rope,
                args.cache,
                args.table,
                args.seq_lens,
                args.out,
                args.lse,
                KernelArg::buffer_mut(&mut workspace),
            ],
        )
    }
}

/// Mirrors `MlaSwapAxesTiling` of `kernels-ascendc/tiling/mla_swap_axes_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MlaSwapAxesTiling {
    /// The leading axis of the source.
    pub outer: u32,
    /// The second axis of the source.
    pub inner: u32,
    /// Elements per row: a multiple of 16.
    pub width: u32,
    /// Rows moved per work item.
    pub chunk_rows: u32,
    /// Work items per outer index.
    pub chunks: u32,
    /// Zero.
    pub reserved: [u32; 3],
}

/// UB bytes of one swap chunk.
const SWAP_CHUNK_BYTES: usize = 65_536;

impl Kernels {
    /// `dst [inner, outer, width] = src [outer, inner, width]` with the axes swapped.
    pub(crate) fn mla_swap_axes(
        &self,
        stream: &Stream,
        src: &impl DeviceSlice<bf16>,
        dst: &mut impl DeviceSliceMut<bf16>,
        [outer, inner, width]: [usize; 3],
    ) -> Result<()> {
        let len = crate::error::elements("swapped tensor", &[outer, inner, width])?;
        if src.len() != len || dst.len() != len || width % 16 != 0 || width * 2 > SWAP_CHUNK_BYTES {
            return Err(Error::invalid(
                format!(
                    "an axis swap of {} into {} elements as [{outer}, {inner}, {width}]",
                    src.len(),
                    dst.len()
                ),
                "source and destination of [outer, inner, width] elements, width a multiple of 16 of at most 32768",
            ));
        }
        if len == 0 {
            return Ok(());
        }
        let chunk_rows = inner.min(SWAP_CHUNK_BYTES / (width * 2)).min(4095);
        let chunks = inner.div_ceil(chunk_rows);
        let items = crate::error::elements("swap work items", &[outer, chunks])?;
        let tiling = MlaSwapAxesTiling {
            outer: u32_of("outer", outer)?,
            inner: u32_of("inner", inner)?,
            width: u32_of("width", width)?,
            chunk_rows: chunk_rows as u32,
            chunks: u32_of("chunks", chunks)?,
            reserved: [0; 3],
        };
        let blocks = self.vector_blocks(items);
        self.launch_tiled(
            stream,
            (&self.inner.mla.swap_axes, blocks),
            &tiling,
            &[KernelArg::buffer(src), KernelArg::buffer_mut(dst)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_plans_fit_the_ub_and_cover_every_row() {
        for fp8 in [false, true] {
            for (s_q, heads) in [(1, 1), (1, 3), (4, 16), (1, 128), (4, 128), (2, 63)] {
                let shape = DecodeShape {
                    batch: 3,
                    s_q,
                    heads,
                    latent: 512,
                    rope: 64,
                    block_size: 64,
                    max_blocks: 4,
                    cache_blocks: 16,
                    row_bytes: if fp8 { 656 } else { 1152 },
                    fp8,
                    causal: true,
                    scale: 0.1,
                };
                let s = RowStrides { tok: 1, head: 1 };
                let place = RowPlacement::default();
                let (t, blocks) = MlaDecodeTiling::plan(&shape, ([s, s], s, place), 24).unwrap();
                let (g, c) = (t.group_rows as usize, t.chunk_tokens as usize);
                assert!((1..=MAX_GROUP_ROWS).contains(&g));
                assert!(c % 16 == 0 && (16..=MAX_CHUNK_TOKENS).contains(&c));
                assert!(decode_ub_bytes(&shape, g, c) <= UB_BUDGET);
                assert!(decode_l1_bytes(&shape, g, c) <= L1_BYTES);
                assert_eq!(t.ws_bytes as usize, decode_ws_bytes(&shape, g, c));
                // DeepSeek's 128 heads at s_q = 1 are one item: the cache is read once.
                if s_q * heads <= MAX_GROUP_ROWS {
                    assert_eq!(t.groups, 1);
                }
                assert!(g * t.groups as usize >= s_q * heads);
                assert!(g * (t.groups as usize - 1) < s_q * heads, "an empty group");
                assert!((1..=24).contains(&blocks));
            }
        }
    }
}

/// Mirrors `MlaLseMergeTiling` of `kernels-ascendc/tiling/mla_lse_merge_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MlaLseMergeTiling {
    /// Query rows merged.
    pub rows: u32,
    /// Elements per output row: a multiple of 16.
    pub width: u32,
    /// Rows per work item (at most 64).
    pub chunk_rows: u32,
    /// Work items: `ceil(rows / chunk_rows)`.
    pub chunks: u32,
    /// Heads of the `[heads, tokens]` LSE order (1: the rows' order).
    pub lse_heads: u32,
    /// Zero.
    pub reserved: [u32; 3],
}

/// The most rows one merge work item holds (the kernel's `kMaxRows`).
const MERGE_MAX_ROWS: usize = 64;
/// UB bytes per merged element: two bf16 rows in, two f32 rows.
const MERGE_BYTES_PER_ELEMENT: usize = 12;
/// UB bytes of the per-row scalars (Exp and Ln arguments, LSE slots) at `MERGE_MAX_ROWS`.
const MERGE_ROW_BYTES: usize = MERGE_MAX_ROWS * (8 + 4 + 32);

/// The buffers of one LSE merge, validated by `ops::mla`.
pub(crate) struct LseMergeArgs<'a> {
    pub out_a: KernelArg<'a>,
    pub lse_a: KernelArg<'a>,
    pub out_b: KernelArg<'a>,
    pub lse_b: KernelArg<'a>,
    pub out: KernelArg<'a>,
    pub lse: KernelArg<'a>,
}

impl Kernels {
    /// Merges two partial attentions of `rows` rows of `width` values whose LSEs are in
    /// `[lse_heads, rows / lse_heads]` order (see the tiling header).
    pub(crate) fn mla_lse_merge(
        &self,
        stream: &Stream,
        (rows, width, lse_heads): (usize, usize, usize),
        args: LseMergeArgs<'_>,
    ) -> Result<()> {
        let fits = (UB_BUDGET - MERGE_ROW_BYTES) / (MERGE_BYTES_PER_ELEMENT * width.max(1));
        if width == 0 || width % 16 != 0 || fits == 0 || lse_heads == 0 || rows % lse_heads != 0 {
            return Err(Error::invalid(
                format!("an LSE merge of {rows} rows of {width} values, LSE of {lse_heads} heads"),
                format!(
                    "rows of a positive multiple of 16 values, at most {} of them, and a head \
                     count dividing the rows",
                    (UB_BUDGET - MERGE_ROW_BYTES) / MERGE_BYTES_PER_ELEMENT / 16 * 16
                ),
            ));
        }
        if rows == 0 {
            return Ok(());
        }
        let chunk_rows = fits.min(MERGE_MAX_ROWS).min(rows);
        let chunks = rows.div_ceil(chunk_rows);
        let tiling = MlaLseMergeTiling {
            rows: u32_of("rows", rows)?,
            width: u32_of("width", width)?,
            chunk_rows: chunk_rows as u32,
            chunks: u32_of("chunks", chunks)?,
            lse_heads: u32_of("heads", lse_heads)?,
            reserved: [0; 3],
        };
        let blocks = self.vector_blocks(chunks);
        self.launch_tiled(
            stream,
            (&self.inner.mla.merge, blocks),
            &tiling,
            &[
                args.out_a, args.lse_a, args.out_b, args.lse_b, args.out, args.lse,
            ],
        )
    }
}
