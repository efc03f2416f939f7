//! The absorbed decode from the prolog's queries: `q̃_h = W_UK_hᵀ q_nope_h` on the cube, the
//! MQA decode over the cache, then `o_h = W_UV_h ō_h`, so callers pass `q_nope` / `q_pe` and
//! get the attention output before `o_proj`.

use half::bf16;

use super::cache::LatentCache;
use super::decode::{DecodeOutput, DecodeParams, QueryRows, check_decode, launch_decode};
use super::table::BlockTable;
use crate::error::{Error, Result, elements};
use crate::kernels::mla::RowStrides;
use crate::kernels::{Kernels, MatmulShape, WeightLayout};
use crate::reference::mla::MlaConfig;
use crate::runtime::{DeviceBuffer, DeviceSlice, DeviceView, KernelArg, Stream};

/// `kv_b_proj.weight` on the device, `[heads·(nope + v), latent]` bf16 as checkpoints store
/// it: per head, rows `0..nope` are `W_UK_h` and the next `v` rows `W_UV_h`, each a
/// contiguous row-major matrix, so the per-head products read them in place.
pub struct LatentProjection {
    kv_b_proj: DeviceBuffer<bf16>,
    heads: usize,
    nope: usize,
    v: usize,
    latent: usize,
}

impl LatentProjection {
    /// Takes `kv_b_proj` for `cfg` (its head count, `qk_nope_head_dim`, `v_head_dim` and
    /// `kv_lora_rank`), checking its size.
    pub fn new(cfg: &MlaConfig, kv_b_proj: DeviceBuffer<bf16>) -> Result<LatentProjection> {
        let (heads, nope, v, latent) = (
            cfg.num_heads,
            cfg.qk_nope_head_dim,
            cfg.v_head_dim,
            cfg.kv_lora_rank,
        );
        let want = elements("kv_b_proj", &[heads, nope + v, latent])?;
        if kv_b_proj.len() != want || want == 0 || nope % 16 != 0 || v % 16 != 0 {
            return Err(Error::invalid(
                format!(
                    "kv_b_proj of {} elements for {heads} heads, nope {nope}, v {v}, latent {latent}",
                    kv_b_proj.len()
                ),
                format!(
                    "[heads·(nope + v), latent] = [{}, {latent}] elements with nope and v \
                     multiples of 16",
                    heads * (nope + v)
                ),
            ));
        }
        Ok(LatentProjection {
            kv_b_proj,
            heads,
            nope,
            v,
            latent,
        })
    }

    /// Heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// `W_UK_h` (`[nope, latent]`) or, with `value`, `W_UV_h` (`[v, latent]`).
    fn weight(&self, h: usize, value: bool) -> Result<DeviceView<'_, bf16>> {
        let start = h * (self.nope + self.v) * self.latent;
        if value {
            let s = start + self.nope * self.latent;
            self.kv_b_proj.slice(s..s + self.v * self.latent)
        } else {
            self.kv_b_proj.slice(start..start + self.nope * self.latent)
        }
    }
}

/// The prolog's queries for a decode step.
pub struct LatentQuery<'a> {
    /// `[batch, s_q, heads, nope]`.
    pub q_nope: DeviceView<'a, bf16>,
    /// `[batch, s_q, heads, rope]`, already rotated.
    pub q_pe: DeviceView<'a, bf16>,
    /// Query tokens per sequence.
    pub s_q: usize,
}

/// The absorbed decode: per head `q̃ = W_UKᵀ q_nope` (bf16, as FlashMLA takes it), FlashMLA's
/// dense decode of `[q̃ ; q_pe]` over the cache (see [`mqa_decode`](super::mqa_decode)), then
/// `o = W_UV ō`. Returns `out [batch, s_q, heads, v]` (bf16, rounded from f32 accumulation)
/// and `lse [batch, heads, s_q]`.
pub fn decode(
    kernels: &Kernels,
    stream: &Stream,
    proj: &LatentProjection,
    q: &LatentQuery<'_>,
    cache: &LatentCache,
    table: &BlockTable,
    params: DecodeParams,
) -> Result<DecodeOutput> {
    let (h, layout) = (proj.heads, *cache.layout());
    check_decode(cache, table, q.s_q, h, params)?;
    if layout.latent != proj.latent {
        return Err(Error::invalid(
            format!(
                "a cache latent of {} with kv_b_proj of latent {}",
                layout.latent, proj.latent
            ),
            "the same latent width (kv_lora_rank)",
        ));
    }
    let batch = table.batch();
    let n = elements("query tokens", &[batch, q.s_q])?;
    for (what, view, width) in [
        ("q_nope", &q.q_nope, proj.nope),
        ("q_pe", &q.q_pe, layout.rope),
    ] {
        if view.len() != elements(what, &[n, h, width])? {
            return Err(Error::invalid(
                format!("{what} of {} elements", view.len()),
                format!(
                    "[batch, s_q, heads, {width}] = [{batch}, {}, {h}, {width}] (the heads of kv_b_proj)",
                    q.s_q
                ),
            ));
        }
    }
    let (lat, nope, v) = (layout.latent, proj.nope, proj.v);
    let mut out = stream.alloc_pooled_zeroed::<bf16>(elements("output", &[n, h, v])?)?;
    let mut lse = stream.alloc_pooled_zeroed::<f32>(n * h)?;
    if n == 0 {
        return Ok(DecodeOutput { out, lse });
    }
    // q_nope to head-major, then q̃_h = q_nope_h · W_UK_h, [n, latent] per head.
    let mut qn = stream.alloc_pooled::<bf16>(n * h * nope)?;
    kernels.mla_swap_axes(stream, &q.q_nope, &mut qn, [n, h, nope])?;
    let mut qt = stream.alloc_pooled::<bf16>(n * h * lat)?;
    for head in 0..h {
        let a = qn.slice(head * n * nope..(head + 1) * n * nope)?;
        let mut c = qt.slice_mut(head * n * lat..(head + 1) * n * lat)?;
        let shape = MatmulShape {
            m: n,
            n: lat,
            k: nope,
        };
        kernels.matmul(
            stream,
            &a,
            &proj.weight(head, false)?,
            &mut c,
            shape,
            WeightLayout::KN,
        )?;
    }
    // The decode reads q̃ head-major and q_pe token-major, and writes ō head-major.
    let mut latent_out = stream.alloc_pooled::<bf16>(n * h * lat)?;
    let head_major = RowStrides {
        tok: lat,
        head: n * lat,
    };
    let rows = QueryRows {
        lat: KernelArg::buffer(&qt),
        rope: KernelArg::buffer(&q.q_pe),
        lat_strides: head_major,
        rope_strides: RowStrides {
            tok: h * layout.rope,
            head: layout.rope,
        },
        rope_offset: 0,
        s_q: q.s_q,
        heads: h,
    };
    launch_decode(
        kernels,
        stream,
        rows,
        (cache, table),
        params,
        (KernelArg::buffer_mut(&mut latent_out), head_major),
        &mut lse,
    )?;
    // o_h = ō_h · W_UV_hᵀ, [n, v] per head, then back to [n, heads, v].
    let mut o = stream.alloc_pooled::<bf16>(n * h * v)?;
    for head in 0..h {
        let a = latent_out.slice(head * n * lat..(head + 1) * n * lat)?;
        let mut c = o.slice_mut(head * n * v..(head + 1) * n * v)?;
        let shape = MatmulShape { m: n, n: v, k: lat };
        kernels.matmul(
            stream,
            &a,
            &proj.weight(head, true)?,
            &mut c,
            shape,
            WeightLayout::NK,
        )?;
    }
    kernels.mla_swap_axes(stream, &o, &mut out, [h, n, v])?;
    Ok(DecodeOutput { out, lse })
}
