//! The projections of our kernels' MLA path, bf16 or FP8: `y = x · Wᵀ` on the cube matmul,
//! or on the block-scaled FP8 GEMM for a checkpoint's E4M3 weights.
//!
//! The FP8 GEMM runs W8A16: the activations (hidden states, the normed `c_Q`, the queries,
//! ō) are bf16 already, and W8A8 would first quantize each to E4M3 in 1×128 tiles, one more
//! launch per projection and up to 2^-4 relative error per activation, 16× the bf16 rounding
//! the layer's derived tolerance is built from. The weight side costs nothing in precision:
//! the GEMM multiplies the checkpoint's own codes and applies its f32 scales per block.
//!
//! # How FP8 weights keep their 128×128 scale blocks
//!
//! The FP8 GEMM takes one scale per 128×128 block of `W [N, K]`, so a weight can be padded
//! (zero codes in new blocks, whose scale is then free: 1) and cut along whole blocks, but
//! not regrouped across blocks. Each projection is laid out so that holds:
//!
//! * `kv_a_proj_with_mqa` runs as stored;
//! * `q_a_proj` gains 16 zero rows at the end (the padding the `c_Q` norm runs with);
//! * `q_b_proj` (or `q_proj`) gains 16 zero columns at the end (the same padding, now on the
//!   input side) and stays **whole**: splitting it per head into `nope` and `rope` rows (192
//!   rows a head) would cut the 128-row scale blocks of every odd head in two. Its output
//!   `[tokens, heads, nope + rope]` is split afterwards by two exact selection matmuls
//!   (`[I, 0]` and `[0 ; 0, I]`: one product by 1 per output, summed with zeros), on both
//!   formats, so the bf16 path is the same code;
//! * `kv_b_proj`'s per-head `W_UK_h` and `W_UV_h` are whole blocks when `nope` and `v` are
//!   multiples of 128 (DeepSeek's 128 and 128), so the absorbed products run on the grouped
//!   FP8 GEMM, one group per head (see `LatentProjection`); other widths are dequantized at
//!   upload.

use half::bf16;

use super::vendor::PrologCheckpoint;
use crate::error::{Error, Result, elements};
use crate::fp8::{BlockQuantized, F8E4M3};
use crate::kernels::{Kernels, MatmulShape, WeightLayout, matmul};
use crate::ops::fp8::{Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// The FP8 scale block edge.
const BLOCK: usize = 128;

/// A checkpoint projection `[n, k]` on the host: bf16 values, or E4M3 codes with their
/// `weight_scale_inv` blocks.
#[derive(Clone, Copy)]
pub(crate) enum HostWeight<'a> {
    Bf16(&'a [bf16]),
    Fp8(&'a BlockQuantized),
}

impl HostWeight<'_> {
    /// Checks the weight is `[n, k]`.
    pub(crate) fn check(&self, what: &str, [n, k]: [usize; 2]) -> Result<()> {
        let (len, shape) = match self {
            HostWeight::Bf16(v) => (v.len(), None),
            HostWeight::Fp8(q) => (q.rows() * q.cols(), Some([q.rows(), q.cols()])),
        };
        if len != elements(what, &[n, k])? || shape.is_some_and(|s| s != [n, k]) {
            return Err(Error::invalid(
                format!("{what} of {len} values (shape {shape:?})"),
                format!("[{n}, {k}] = {} values", n * k),
            ));
        }
        Ok(())
    }
}

/// `q` padded to `[n + rows, k + cols]` with zero codes; blocks that hold only padding get
/// scale 1 (any finite scale times a zero code is zero).
pub(crate) fn pad_fp8(q: &BlockQuantized, rows: usize, cols: usize) -> Result<BlockQuantized> {
    let (n, k) = (q.rows(), q.cols());
    let (n2, k2) = (n + rows, k + cols);
    let mut codes = vec![F8E4M3::ZERO; n2 * k2];
    for (dst, src) in codes.chunks_exact_mut(k2).zip(q.codes().chunks_exact(k)) {
        dst[..k].copy_from_slice(src);
    }
    let (sk, sn2, sk2) = (k.div_ceil(BLOCK), n2.div_ceil(BLOCK), k2.div_ceil(BLOCK));
    let mut scales = vec![1.0f32; sn2 * sk2];
    for (i, src) in q.scales().chunks_exact(sk).enumerate() {
        scales[i * sk2..][..sk].copy_from_slice(src);
    }
    Ok(BlockQuantized::from_parts(
        codes,
        scales,
        n2,
        k2,
        crate::fp8::ScaleLayout::Block128x128,
    )?)
}

/// Rows `[r0, r0 + rows)` of `q` (`r0` and, unless they end the matrix, `rows` multiples of
/// 128: whole scale blocks), transposed with `transpose`.
pub(crate) fn fp8_rows(
    q: &BlockQuantized,
    r0: usize,
    rows: usize,
    transpose: bool,
) -> Result<BlockQuantized> {
    let k = q.cols();
    let sk = k.div_ceil(BLOCK);
    debug_assert!(r0 % BLOCK == 0 && (rows % BLOCK == 0 || r0 + rows == q.rows()));
    let codes = &q.codes()[r0 * k..(r0 + rows) * k];
    let sn = rows.div_ceil(BLOCK);
    let scales = &q.scales()[r0 / BLOCK * sk..][..sn * sk];
    let (codes, scales, n, k) = if transpose {
        let mut t = vec![F8E4M3::ZERO; rows * k];
        for (r, row) in codes.chunks_exact(k).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                t[c * rows + r] = v;
            }
        }
        let mut s = vec![0.0f32; sn * sk];
        for i in 0..sn {
            for j in 0..sk {
                s[j * sn + i] = scales[i * sk + j];
            }
        }
        (t, s, k, rows)
    } else {
        (codes.to_vec(), scales.to_vec(), rows, k)
    };
    Ok(BlockQuantized::from_parts(
        codes,
        scales,
        n,
        k,
        crate::fp8::ScaleLayout::Block128x128,
    )?)
}

/// A projection `[n, k]` on the device.
pub(crate) enum Projection {
    Bf16 {
        w: DeviceBuffer<bf16>,
        n: usize,
        k: usize,
    },
    Fp8(Fp8Weight),
}

impl Projection {
    /// Uploads `w` (`[n, k]`, checked) with `pad_rows` zero rows and `pad_cols` zero columns
    /// appended.
    pub(crate) fn upload(
        stream: &Stream,
        what: &str,
        w: HostWeight<'_>,
        [n, k]: [usize; 2],
        [pad_rows, pad_cols]: [usize; 2],
    ) -> Result<Projection> {
        w.check(what, [n, k])?;
        Ok(match w {
            HostWeight::Bf16(v) => {
                let (n2, k2) = (n + pad_rows, k + pad_cols);
                let mut padded = vec![bf16::ZERO; n2 * k2];
                for (dst, src) in padded.chunks_exact_mut(k2).zip(v.chunks_exact(k)) {
                    dst[..k].copy_from_slice(src);
                }
                Projection::Bf16 {
                    w: stream.upload(&padded)?,
                    n: n2,
                    k: k2,
                }
            }
            HostWeight::Fp8(q) => Projection::Fp8(Fp8Weight::from_quantized(
                stream,
                &pad_fp8(q, pad_rows, pad_cols)?,
            )?),
        })
    }

    /// Output features (padding included).
    pub(crate) fn n(&self) -> usize {
        match self {
            Projection::Bf16 { n, .. } => *n,
            Projection::Fp8(w) => w.n(),
        }
    }

    /// Whether the weight runs on the FP8 GEMM.
    pub(crate) fn is_fp8(&self) -> bool {
        matches!(self, Projection::Fp8(_))
    }

    /// `out [m, n] = x [m, k] · Wᵀ`, bf16 out from f32 accumulation.
    pub(crate) fn apply(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        m: usize,
        out: &mut DeviceBuffer<bf16>,
    ) -> Result<()> {
        match self {
            Projection::Bf16 { w, n, k } => matmul(
                kernels,
                stream,
                MatmulShape { m, n: *n, k: *k },
                WeightLayout::NK,
                x,
                w,
                out,
            ),
            Projection::Fp8(w) => fp8_gemm(
                kernels,
                stream,
                m,
                Fp8Input::Bf16(x.view()),
                w,
                Fp8Groups::None,
                out,
            ),
        }
    }
}

/// The FP8 projections of a checkpoint, which our kernels' path runs on the FP8 GEMM in place
/// of the bf16 tensors of a [`PrologCheckpoint`](super::PrologCheckpoint) (those are then
/// not read and may be empty).
#[derive(Clone, Copy, Default)]
pub(crate) struct Fp8Projections<'a> {
    pub q_a_proj: Option<&'a BlockQuantized>,
    pub q_b_proj: Option<&'a BlockQuantized>,
    pub kv_a_proj_with_mqa: Option<&'a BlockQuantized>,
    pub kv_b_proj: Option<&'a BlockQuantized>,
}

/// The FP8 weight when there is one, else the bf16 values.
pub(crate) fn pick<'a>(bf16: &'a [bf16], fp8: Option<&'a BlockQuantized>) -> HostWeight<'a> {
    fp8.map_or(HostWeight::Bf16(bf16), HostWeight::Fp8)
}

impl<'a> Fp8Projections<'a> {
    /// `ck` with the FP8 projections dequantized to bf16 (`code × scale`, rounded): for the
    /// vendor prolog, which takes bf16 weights. `store` keeps the dequantized values.
    pub(crate) fn dequantized<'s>(
        &self,
        ck: &PrologCheckpoint<'s>,
        store: &'s mut [Vec<bf16>; 4],
    ) -> PrologCheckpoint<'s> {
        let sources = [
            self.q_a_proj,
            self.q_b_proj,
            self.kv_a_proj_with_mqa,
            self.kv_b_proj,
        ];
        for (slot, q) in store.iter_mut().zip(sources) {
            if let Some(q) = q {
                *slot = q.dequantize().into_iter().map(bf16::from_f32).collect();
            }
        }
        let [q_a, q_b, kv_a, kv_b] = store;
        let or = |v: &'s Vec<bf16>, fp8: Option<&BlockQuantized>, bf: &'s [bf16]| {
            if fp8.is_some() { v.as_slice() } else { bf }
        };
        PrologCheckpoint {
            q_a_proj: or(q_a, self.q_a_proj, ck.q_a_proj),
            q_a_layernorm: ck.q_a_layernorm,
            q_b_proj: or(q_b, self.q_b_proj, ck.q_b_proj),
            kv_a_proj_with_mqa: or(kv_a, self.kv_a_proj_with_mqa, ck.kv_a_proj_with_mqa),
            kv_a_layernorm: ck.kv_a_layernorm,
            kv_b_proj: or(kv_b, self.kv_b_proj, ck.kv_b_proj),
        }
    }
}
