//! The prolog on our kernels, for the shapes the vendor prolog does not take: from hidden
//! states `x` to `q_nope`, the rotated `q_pe`, and the cache rows written by
//! [`write_cache`](super::write_cache).
//!
//! The projections are cube matmuls (bf16 out), or the FP8 GEMM for a checkpoint's FP8
//! weights (see [`projection`](super::projection): `q_b_proj` stays whole, and two exact
//! selection matmuls split its output per head into `q_nope` and `q_pe`). The two row operations, RMSNorm of `c_Q` and
//! RoPE of `q_pe`, run on the cache-write kernel, which is exactly "RMSNorm the first `latent`
//! values of a row, rotate the next `rope` in interleaved pairs at the row's position, store
//! the row at its slot": with identity slots into a scratch buffer it is a row operator. Each
//! use pads the operation it does not need with 16 zero columns (RMSNorm of zeros is zero, a
//! rotation of zeros is zero), and the padding comes for free from zero rows added to the
//! projection weights at upload, so no copy is needed.

use half::bf16;

use super::cache::{CacheFormat, CacheLayout, LatentCache};
use super::projection::{Fp8Projections, Projection, pick};
use super::rope::{Positions, RopeTable};
use super::table::SlotMapping;
use super::vendor::PrologCheckpoint;
use super::write::{CacheWriteInput, CacheWriteShape, write_cache};
use crate::error::{Error, Result, elements};
use crate::kernels::mla::{CacheWriteArgs, RowStrides};
use crate::kernels::{Kernels, MatmulShape, WeightLayout, matmul};
use crate::reference::mla::{MlaConfig, Rope};
use crate::runtime::{DeviceBuffer, DeviceSlice, KernelArg, Stream};

/// The zero columns that pad a row operation's unused half (the kernels' width step).
const PAD: usize = 16;

/// The prolog's weights on the device, padded for the row operations (see the module docs),
/// bf16 or FP8 (see [`projection`](super::projection)).
pub(crate) struct KernelProlog {
    /// `q_a_proj` with `PAD` zero rows: `[q_lora + PAD, hidden]`, and the c_Q norm weight;
    /// `None` without q LoRA.
    q_a: Option<(Projection, DeviceBuffer<bf16>)>,
    /// `q_b_proj` (or `q_proj`) whole, `[heads·(nope + rope), k_q]`.
    q_b: Projection,
    /// `[nope, nope + rope]` = `[I, 0]`: takes `q_nope` out of a head's row of `q_b`'s output.
    take_nope: DeviceBuffer<bf16>,
    /// `[PAD + rope, nope + rope]` = `[0 ; 0, I]`: `PAD` zeros then `q_pe`.
    take_pe: DeviceBuffer<bf16>,
    kv_a: Projection,
    kv_norm: DeviceBuffer<bf16>,
    /// `PAD` ones: the norm weight of the zero columns before `q_pe`.
    pad_gamma: DeviceBuffer<bf16>,
    /// The model's rotary table, and a one-position identity table of `PAD / 2` pairs for
    /// the zero columns after `c_Q`.
    rope: RopeTable,
    still: RopeTable,
    cfg: MlaConfig,
    /// The reduced width of the query up-projection: `q_lora + PAD`, or `hidden` without q LoRA.
    k_q: usize,
}

/// The queries of the kernel prolog.
pub(crate) struct KernelQueries {
    /// `[tokens, heads, nope]`.
    pub q_nope: DeviceBuffer<bf16>,
    /// `[tokens, heads, PAD + rope]`: zeros, then the rotated `q_pe`.
    pub q_pe_rows: DeviceBuffer<bf16>,
}

impl KernelQueries {
    /// Where the rotated `q_pe` of token `t`, head `h` starts: `PAD + t·tok + h·head`.
    pub(crate) fn rope_strides(heads: usize, rope: usize) -> (RowStrides, usize) {
        (
            RowStrides {
                tok: heads * (PAD + rope),
                head: PAD + rope,
            },
            PAD,
        )
    }
}

/// Checks `v` holds `dims` values.
fn check(what: &str, v: &[bf16], dims: &[usize]) -> Result<()> {
    if v.len() != elements(what, dims)? {
        return Err(Error::invalid(
            format!("{what} of {} values", v.len()),
            format!("{dims:?} = {} values", dims.iter().product::<usize>()),
        ));
    }
    Ok(())
}

impl KernelProlog {
    /// Pads and uploads `ck` for `cfg` (the projections `fp8` holds from there instead), with
    /// rotary positions `0..max_positions`.
    pub(crate) fn upload(
        stream: &Stream,
        cfg: &MlaConfig,
        (ck, fp8): (&PrologCheckpoint<'_>, &Fp8Projections<'_>),
        max_positions: usize,
    ) -> Result<KernelProlog> {
        cfg.validate()?;
        let (he, h, nope, rope) = (
            cfg.hidden_size,
            cfg.num_heads,
            cfg.qk_nope_head_dim,
            cfg.qk_rope_head_dim,
        );
        let (q_a, k_q) = match cfg.q_lora_rank {
            Some(r) => {
                check("q_a_layernorm", ck.q_a_layernorm, &[r])?;
                // The c_Q norm runs as a cache write of latent r: a positive multiple of 16.
                CacheLayout {
                    blocks: 1,
                    block_size: 1,
                    latent: r,
                    rope: PAD,
                    format: CacheFormat::Bf16,
                }
                .validate()?;
                let w = pick(ck.q_a_proj, fp8.q_a_proj);
                let q_a = Projection::upload(stream, "q_a_proj", w, [r, he], [PAD, 0])?;
                (Some((q_a, stream.upload(ck.q_a_layernorm)?)), r + PAD)
            }
            None => {
                if !(ck.q_a_proj.is_empty()
                    && ck.q_a_layernorm.is_empty()
                    && fp8.q_a_proj.is_none())
                {
                    return Err(Error::invalid(
                        "q_a_proj or q_a_layernorm for a config without q_lora_rank",
                        "both empty, and q_proj given as q_b_proj",
                    ));
                }
                (None, he)
            }
        };
        let in_q = cfg.q_lora_rank.unwrap_or(he);
        let q_b = Projection::upload(
            stream,
            "q_b_proj",
            pick(ck.q_b_proj, fp8.q_b_proj),
            [h * (nope + rope), in_q],
            [0, k_q - in_q],
        )?;
        let kv_a = Projection::upload(
            stream,
            "kv_a_proj_with_mqa",
            pick(ck.kv_a_proj_with_mqa, fp8.kv_a_proj_with_mqa),
            [cfg.cache_row(), he],
            [0, 0],
        )?;
        check("kv_a_layernorm", ck.kv_a_layernorm, &[cfg.kv_lora_rank])?;
        let (zero, one) = (bf16::ZERO, bf16::ONE);
        let w = nope + rope;
        let mut take_nope = vec![zero; nope * w];
        (0..nope).for_each(|i| take_nope[i * w + i] = one);
        let mut take_pe = vec![zero; (PAD + rope) * w];
        (0..rope).for_each(|i| take_pe[(PAD + i) * w + nope + i] = one);
        let identity = Rope {
            inv_freq: vec![0.0; PAD / 2],
            amplitude: 1.0,
        };
        Ok(KernelProlog {
            q_a,
            q_b,
            take_nope: stream.upload(&take_nope)?,
            take_pe: stream.upload(&take_pe)?,
            kv_a,
            kv_norm: stream.upload(ck.kv_a_layernorm)?,
            pad_gamma: stream.upload(&[bf16::ONE; PAD])?,
            rope: RopeTable::new(stream, &Rope::new(cfg), max_positions)?,
            still: RopeTable::new(stream, &identity, 1)?,
            cfg: *cfg,
            k_q,
        })
    }

    /// The DeepSeek names of the projections that run on the FP8 GEMM.
    pub(crate) fn fp8_projections(&self) -> Vec<&'static str> {
        let q_b = if self.q_a.is_some() {
            "q_b_proj"
        } else {
            "q_proj"
        };
        [
            (
                "q_a_proj",
                self.q_a.as_ref().is_some_and(|(p, _)| p.is_fp8()),
            ),
            (q_b, self.q_b.is_fp8()),
            ("kv_a_proj_with_mqa", self.kv_a.is_fp8()),
        ]
        .into_iter()
        .filter_map(|(name, fp8)| fp8.then_some(name))
        .collect()
    }

    /// Runs the prolog for `x [tokens, hidden]` at `positions`: writes each token's cache row
    /// to its `slots` row of `cache` and returns the queries.
    pub(crate) fn run(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        positions: &[usize],
        slots: &SlotMapping,
        cache: &mut LatentCache,
    ) -> Result<KernelQueries> {
        let cfg = &self.cfg;
        let (t, h) = (positions.len(), cfg.num_heads);
        let (nope, rope) = (cfg.qk_nope_head_dim, cfg.qk_rope_head_dim);
        let eps = cfg.rms_norm_eps as f32;
        // The latent and rope key: kv_a_proj_with_mqa, then RMSNorm + RoPE + scatter.
        let row = cfg.cache_row();
        let mut kv = stream.alloc_pooled::<bf16>(t * row)?;
        self.kv_a.apply(kernels, stream, x, t, &mut kv)?;
        let token_positions = Positions::new(stream, &self.rope, positions)?;
        write_cache(
            kernels,
            stream,
            &CacheWriteInput {
                kv: kv.as_view(),
                norm_weight: self.kv_norm.as_view(),
                eps,
                rope: &self.rope,
                positions: &token_positions,
                slots,
            },
            cache,
        )?;
        // c_Q = RMSNorm(x · q_a_projᵀ), its padding columns zero.
        let c_q = match &self.q_a {
            Some((q_a, gamma)) => {
                let k = self.k_q;
                let mut raw = stream.alloc_pooled::<bf16>(t * k)?;
                q_a.apply(kernels, stream, x, t, &mut raw)?;
                let mut c_q = stream.alloc_pooled::<bf16>(t * k)?;
                let zeros = vec![0usize; t];
                let at = Positions::new(stream, &self.still, &zeros)?;
                let rows = RowOp {
                    rows: t,
                    latent: k - PAD,
                    rope: PAD,
                    gamma,
                    eps,
                    table: &self.still,
                    positions: &at,
                };
                rows.run(kernels, stream, &raw, &mut c_q)?;
                Some(c_q)
            }
            None => None,
        };
        let mut q = stream.alloc_pooled::<bf16>(t * self.q_b.n())?;
        match &c_q {
            Some(c) => self.q_b.apply(kernels, stream, c, t, &mut q)?,
            None => self.q_b.apply(kernels, stream, x, t, &mut q)?,
        }
        // Each (token, head) row of q split into q_nope and PAD zeros + q_pe, exactly.
        let mut q_nope = stream.alloc_pooled::<bf16>(t * h * nope)?;
        let mut q_pe_raw = stream.alloc_pooled::<bf16>(t * h * (PAD + rope))?;
        for (take, out) in [
            (&self.take_nope, &mut q_nope),
            (&self.take_pe, &mut q_pe_raw),
        ] {
            let shape = MatmulShape {
                m: t * h,
                n: take.len() / (nope + rope),
                k: nope + rope,
            };
            matmul(kernels, stream, shape, WeightLayout::NK, &q, take, out)?;
        }
        let mut q_pe_rows = stream.alloc_pooled::<bf16>(t * h * (PAD + rope))?;
        // RoPE of q_pe: one row per (token, head) at the token's position.
        let per_head: Vec<usize> = positions
            .iter()
            .flat_map(|&p| std::iter::repeat_n(p, h))
            .collect();
        let at = Positions::new(stream, &self.rope, &per_head)?;
        RowOp {
            rows: t * h,
            latent: PAD,
            rope,
            gamma: &self.pad_gamma,
            // The norm's input is the zero padding: any positive epsilon keeps it zero.
            eps: 1.0,
            table: &self.rope,
            positions: &at,
        }
        .run(kernels, stream, &q_pe_raw, &mut q_pe_rows)?;
        Ok(KernelQueries { q_nope, q_pe_rows })
    }
}

/// One row operation on the cache-write kernel: `rows` rows of `latent + rope` bf16 values,
/// RMSNorm of the first `latent`, RoPE of the rest, into `out` in the same order.
struct RowOp<'a> {
    rows: usize,
    latent: usize,
    rope: usize,
    gamma: &'a DeviceBuffer<bf16>,
    eps: f32,
    table: &'a RopeTable,
    positions: &'a Positions,
}

impl RowOp<'_> {
    fn run(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        input: &DeviceBuffer<bf16>,
        out: &mut DeviceBuffer<bf16>,
    ) -> Result<()> {
        let identity: Vec<i32> = (0..self.rows as i32).collect();
        let slots = stream.upload(if identity.is_empty() { &[0] } else { &identity })?;
        let shape = CacheWriteShape {
            tokens: self.rows,
            latent: self.latent,
            rope: self.rope,
            slots: self.rows,
            positions: self.table.positions(),
            eps: self.eps,
            row_bytes: 2 * (self.latent + self.rope),
        };
        kernels.mla_cache_write(
            stream,
            &shape,
            false,
            CacheWriteArgs {
                kv: KernelArg::buffer(input),
                gamma: KernelArg::buffer(self.gamma),
                cos: KernelArg::buffer(&self.table.cos),
                sin: KernelArg::buffer(&self.table.sin),
                positions: KernelArg::buffer(&self.positions.positions),
                slots: KernelArg::buffer(&slots),
                cache: KernelArg::buffer_mut(out),
            },
        )
    }
}
