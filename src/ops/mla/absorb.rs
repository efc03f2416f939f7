//! The absorbed decode from the prolog's queries: `q̃_h = W_UK_hᵀ q_nope_h` on the cube, the
//! MQA decode over the cache, then `o_h = W_UV_h ō_h`, so callers pass `q_nope` / `q_pe` and
//! get the attention output before `o_proj`.

use half::bf16;

use super::cache::LatentCache;
use super::decode::{
    CacheRows, DecodeOutput, DecodeParams, DecodeRows, check_decode, launch_decode,
};
use super::projection::{HostWeight, fp8_rows};
use super::table::BlockTable;
use crate::error::{Error, Result, elements};
use crate::kernels::mla::{RowPlacement, RowStrides};
use crate::kernels::{Kernels, MatmulShape, WeightLayout, matmul};
use crate::ops::fp8::{Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use crate::reference::mla::MlaConfig;
use crate::runtime::{DeviceBuffer, DeviceSlice, DeviceView, KernelArg, Stream};

/// `kv_b_proj.weight` on the device: per head, rows `0..nope` are `W_UK_h` and the next `v`
/// rows `W_UV_h`. bf16 as checkpoints store it (`[heads·(nope + v), latent]`, each head's
/// matrices contiguous and row-major, so the per-head products read them in place), or FP8
/// codes with their scales as an [`MlaLayer`](super::MlaLayer) loads them from a checkpoint.
pub struct LatentProjection {
    weights: LatentWeights,
    heads: usize,
    nope: usize,
    v: usize,
    latent: usize,
}

impl LatentProjection {
    /// Takes `kv_b_proj` for `cfg` (its head count, `qk_nope_head_dim`, `v_head_dim` and
    /// `kv_lora_rank`), checking its size.
    pub fn new(cfg: &MlaConfig, kv_b_proj: DeviceBuffer<bf16>) -> Result<LatentProjection> {
        let len = kv_b_proj.len();
        Self::with_weights(cfg, LatentWeights::Bf16(kv_b_proj), len)
    }

    /// Checks `weights`, which hold `len` values of `kv_b_proj`, against `cfg`.
    fn with_weights(
        cfg: &MlaConfig,
        weights: LatentWeights,
        len: usize,
    ) -> Result<LatentProjection> {
        let (heads, nope, v, latent) = (
            cfg.num_heads,
            cfg.qk_nope_head_dim,
            cfg.v_head_dim,
            cfg.kv_lora_rank,
        );
        let want = elements("kv_b_proj", &[heads, nope + v, latent])?;
        if len != want || want == 0 || nope % 16 != 0 || v % 16 != 0 {
            return Err(Error::invalid(
                format!(
                    "kv_b_proj of {len} elements for {heads} heads, nope {nope}, v {v}, latent {latent}"
                ),
                format!(
                    "[heads·(nope + v), latent] = [{}, {latent}] elements with nope and v \
                     multiples of 16",
                    heads * (nope + v)
                ),
            ));
        }
        Ok(LatentProjection {
            weights,
            heads,
            nope,
            v,
            latent,
        })
    }

    /// `kv_b_proj` as FP8 codes with 128×128 block scales, run on the grouped FP8 GEMM (one
    /// group per head) when `nope` and `v` are multiples of 128, so that `W_UK_h` and `W_UV_h`
    /// are whole scale blocks; otherwise dequantized to bf16 (`code × scale`, rounded).
    pub(crate) fn fp8(
        stream: &Stream,
        cfg: &MlaConfig,
        q: &crate::fp8::BlockQuantized,
    ) -> Result<LatentProjection> {
        let (h, nope, v, lat) = (
            cfg.num_heads,
            cfg.qk_nope_head_dim,
            cfg.v_head_dim,
            cfg.kv_lora_rank,
        );
        HostWeight::Fp8(q).check("kv_b_proj", [h * (nope + v), lat])?;
        if nope % 128 != 0 || v % 128 != 0 {
            let values: Vec<bf16> = q.dequantize().into_iter().map(bf16::from_f32).collect();
            return LatentProjection::new(cfg, stream.upload(&values)?);
        }
        let (mut uk_t, mut uv) = (Vec::new(), Vec::new());
        for head in 0..h {
            let r0 = head * (nope + v);
            uk_t.push(fp8_rows(q, r0, nope, true)?);
            uv.push(fp8_rows(q, r0 + nope, v, false)?);
        }
        let stack = |parts: Vec<crate::fp8::BlockQuantized>| -> Result<Fp8Weight> {
            let (n, k) = parts.first().map_or((0, 0), |p| (p.rows(), p.cols()));
            let codes: Vec<_> = parts.iter().flat_map(|p| p.codes().to_vec()).collect();
            let scales: Vec<f32> = parts.iter().flat_map(|p| p.scales().to_vec()).collect();
            Fp8Weight::upload(stream, parts.len(), n, k, &codes, &scales)
        };
        let weights = LatentWeights::Fp8(Box::new(Fp8Latent {
            uk_t: stack(uk_t)?,
            uv: stack(uv)?,
            // Masked groups clamp their row counts to m: every head computes all its rows.
            all_rows: stream.upload(&vec![i32::MAX; h])?,
        }));
        Self::with_weights(cfg, weights, q.rows() * lat)
    }

    /// Whether the products run on the FP8 GEMM.
    pub(crate) fn is_fp8(&self) -> bool {
        matches!(self.weights, LatentWeights::Fp8(_))
    }

    /// Heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// The value head width (`v_head_dim`).
    pub fn v_head_dim(&self) -> usize {
        self.v
    }

    /// Checks `q_nope` / `q_pe` views of `n` tokens against the weights and `cache`.
    pub(crate) fn check_queries(
        &self,
        cache: &LatentCache,
        (q_nope, q_pe): (&DeviceView<'_, bf16>, &DeviceView<'_, bf16>),
        n: usize,
        shape: &str,
    ) -> Result<()> {
        let (h, layout) = (self.heads, cache.layout());
        if layout.latent != self.latent {
            return Err(Error::invalid(
                format!(
                    "a cache latent of {} with kv_b_proj of latent {}",
                    layout.latent, self.latent
                ),
                "the same latent width (kv_lora_rank)",
            ));
        }
        for (what, view, width) in [("q_nope", q_nope, self.nope), ("q_pe", q_pe, layout.rope)] {
            if view.len() != elements(what, &[n, h, width])? {
                return Err(Error::invalid(
                    format!("{what} of {} elements", view.len()),
                    format!("{shape} with {h} heads (the heads of kv_b_proj) and width {width}"),
                ));
            }
        }
        Ok(())
    }

    /// `q̃` head-major `[heads, n, latent]`: `q_nope [n, heads, nope]` moved head-major, then
    /// `q̃_h = q_nope_h · W_UK_h` per head on the cube (bf16 out, f32 accumulation).
    pub(crate) fn absorb(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        q_nope: &DeviceView<'_, bf16>,
        n: usize,
    ) -> Result<DeviceBuffer<bf16>> {
        let (h, nope, lat) = (self.heads, self.nope, self.latent);
        let mut qn = stream.alloc_pooled::<bf16>(n * h * nope)?;
        kernels.mla_swap_axes(stream, q_nope, &mut qn, [n, h, nope])?;
        let mut qt = stream.alloc_pooled::<bf16>(n * h * lat)?;
        if let LatentWeights::Fp8(w) = &self.weights {
            let groups = Fp8Groups::Masked {
                counts: w.all_rows.view(),
            };
            fp8_gemm(
                kernels,
                stream,
                n,
                Fp8Input::Bf16(qn.view()),
                &w.uk_t,
                groups,
                &mut qt,
            )?;
            return Ok(qt);
        }
        for head in 0..h {
            let a = qn.slice(head * n * nope..(head + 1) * n * nope)?;
            let mut c = qt.slice_mut(head * n * lat..(head + 1) * n * lat)?;
            let shape = MatmulShape {
                m: n,
                n: lat,
                k: nope,
            };
            matmul(
                kernels,
                stream,
                shape,
                WeightLayout::KN,
                &a,
                &self.weight(head, false)?,
                &mut c,
            )?;
        }
        Ok(qt)
    }

    /// `out [n, heads, v]` from head-major `ō [heads, n, latent]`: `o_h = ō_h · W_UV_hᵀ` per
    /// head on the cube, then moved token-major.
    pub(crate) fn expand(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        latent_out: &DeviceBuffer<bf16>,
        out: &mut DeviceBuffer<bf16>,
        n: usize,
    ) -> Result<()> {
        let (h, v, lat) = (self.heads, self.v, self.latent);
        let mut o = stream.alloc_pooled::<bf16>(n * h * v)?;
        if let LatentWeights::Fp8(w) = &self.weights {
            let groups = Fp8Groups::Masked {
                counts: w.all_rows.view(),
            };
            let a = Fp8Input::Bf16(latent_out.view());
            fp8_gemm(kernels, stream, n, a, &w.uv, groups, &mut o)?;
            return kernels.mla_swap_axes(stream, &o, out, [h, n, v]);
        }
        for head in 0..h {
            let a = latent_out.slice(head * n * lat..(head + 1) * n * lat)?;
            let mut c = o.slice_mut(head * n * v..(head + 1) * n * v)?;
            let shape = MatmulShape { m: n, n: v, k: lat };
            matmul(
                kernels,
                stream,
                shape,
                WeightLayout::NK,
                &a,
                &self.weight(head, true)?,
                &mut c,
            )?;
        }
        kernels.mla_swap_axes(stream, &o, out, [h, n, v])
    }

    /// The decode rows of the absorbed path over `n` tokens: q̃ (as `absorb` writes it) and
    /// ō head-major `[heads, n, latent]`, the rope queries where `q_rope` says. The caller
    /// sets the placement, the batch and `s_q`.
    pub(crate) fn rows<'a>(
        &self,
        qt: &'a DeviceBuffer<bf16>,
        q_rope: RopeRows<'a>,
        latent_out: &'a mut DeviceBuffer<bf16>,
        n: usize,
    ) -> DecodeRows<'a> {
        let head_major = RowStrides {
            tok: self.latent,
            head: n * self.latent,
        };
        DecodeRows {
            lat: KernelArg::buffer(qt),
            rope: q_rope.arg,
            out: KernelArg::buffer_mut(latent_out),
            strides: [head_major, q_rope.strides, head_major],
            place: RowPlacement {
                q_rope: q_rope.offset,
                ..RowPlacement::default()
            },
            batch: 0,
            s_q: 0,
            heads: self.heads,
        }
    }

    /// `W_UK_h` (`[nope, latent]`) or, with `value`, `W_UV_h` (`[v, latent]`), bf16.
    fn weight(&self, h: usize, value: bool) -> Result<DeviceView<'_, bf16>> {
        let LatentWeights::Bf16(kv_b_proj) = &self.weights else {
            return Err(Error::invalid(
                "a bf16 view of FP8 kv_b_proj",
                "bf16 weights",
            ));
        };
        let start = h * (self.nope + self.v) * self.latent;
        if value {
            let s = start + self.nope * self.latent;
            kv_b_proj.slice(s..s + self.v * self.latent)
        } else {
            kv_b_proj.slice(start..start + self.nope * self.latent)
        }
    }
}

/// `kv_b_proj` in the layouts of the products.
enum LatentWeights {
    /// As the checkpoint stores it.
    Bf16(DeviceBuffer<bf16>),
    /// Per head (one group each) `W_UK_hᵀ` `[latent, nope]` and `W_UV_h` `[v, latent]`
    /// (boxed: two weights are much larger than one buffer).
    Fp8(Box<Fp8Latent>),
}

/// The FP8 form of [`LatentWeights`].
struct Fp8Latent {
    uk_t: Fp8Weight,
    uv: Fp8Weight,
    /// `[heads]` row counts for the masked grouped GEMM.
    all_rows: DeviceBuffer<i32>,
}

/// Where the rotated rope queries of an absorbed attention are: row (token, head) at
/// `offset + token·strides.tok + head·strides.head` elements of `arg` (bf16).
pub(crate) struct RopeRows<'a> {
    pub arg: KernelArg<'a>,
    pub strides: RowStrides,
    pub offset: usize,
}

impl<'a> RopeRows<'a> {
    /// `q_pe [tokens, heads, rope]`, token-major and dense.
    pub(crate) fn dense(q_pe: &'a DeviceView<'_, bf16>, heads: usize, rope: usize) -> Self {
        RopeRows {
            arg: KernelArg::buffer(q_pe),
            strides: RowStrides {
                tok: heads * rope,
                head: rope,
            },
            offset: 0,
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
    let h = proj.heads;
    check_decode(cache, table, q.s_q, h, params)?;
    let batch = table.batch();
    let n = elements("query tokens", &[batch, q.s_q])?;
    let shape = format!("[batch, s_q, heads, width] = [{batch}, {}, ..]", q.s_q);
    proj.check_queries(cache, (&q.q_nope, &q.q_pe), n, &shape)?;
    let rope = RopeRows::dense(&q.q_pe, h, cache.layout().rope);
    attend(
        kernels,
        stream,
        proj,
        (&q.q_nope, rope),
        (q.s_q, n),
        (cache, table),
        params,
    )
}

/// The absorbed decode of checked queries: `n = batch · s_q` tokens of `q_nope [n, heads,
/// nope]` and rope rows `q_rope`, into `out [n, heads, v]` and `lse [batch, heads, s_q]`.
pub(crate) fn attend(
    kernels: &Kernels,
    stream: &Stream,
    proj: &LatentProjection,
    (q_nope, q_rope): (&DeviceView<'_, bf16>, RopeRows<'_>),
    (s_q, n): (usize, usize),
    (cache, table): (&LatentCache, &BlockTable),
    params: DecodeParams,
) -> Result<DecodeOutput> {
    let h = proj.heads;
    let mut out = stream.alloc_pooled_zeroed::<bf16>(elements("output", &[n, h, proj.v])?)?;
    let mut lse = stream.alloc_pooled_zeroed::<f32>(n * h)?;
    if n == 0 {
        return Ok(DecodeOutput { out, lse });
    }
    let qt = proj.absorb(kernels, stream, q_nope, n)?;
    // The decode reads q̃ head-major and q_pe token-major, and writes ō head-major.
    let mut latent_out = stream.alloc_pooled::<bf16>(n * h * proj.latent)?;
    let base = proj.rows(&qt, q_rope, &mut latent_out, n);
    let rows = DecodeRows {
        place: RowPlacement {
            q_rope: base.place.q_rope,
            ..RowPlacement::decode(s_q, h, n * h)
        },
        batch: table.batch(),
        s_q,
        ..base
    };
    launch_decode(
        kernels,
        stream,
        rows,
        (CacheRows::of(cache), table),
        params,
        &mut lse,
    )?;
    proj.expand(kernels, stream, &latent_out, &mut out, n)?;
    Ok(DecodeOutput { out, lse })
}
