//! How far the device's MLA attention may be from this reference: a bound per output element
//! and per LSE, derived from the roundings of each device path. The test suites and the
//! conformance tool check the device with these same bounds.
//!
//! | device op | its bounds |
//! |---|---|
//! | `ops::mla::decode`, `ops::mla::prefill` (the absorbed form) | [`absorbed_bounds`] |
//! | `ops::mla::prefill_naive` (the naive form) | [`naive_bounds`] |
//! | `ops::mla::merge_attention` (two parts' LSE merge) | [`merged_bounds`] |
//!
//! The common steps: bf16 storage rounds to nearest (relative [`BF16_U`] = 2^-8); an f32 sum
//! of n products is within [`gamma`]`(n)` of the sum of their magnitudes; a shift of at most δ
//! in every score moves each softmax weight by a factor within e^{±2δ} ([`weight_error`]); the
//! f32 log-sum-exp adds a few roundings ([`lse_tolerance`]).
//!
//! ```
//! use ascend_npu::reference::mla::bounds::{F32_U, gamma};
//! // A 576-term f32 dot product is within 576·2^-24 / (1 − 576·2^-24) of Σ|q·k|: a little
//! // over 576 roundings.
//! let g = gamma(576);
//! assert!(g > 576.0 * F32_U && g < 576.0 * F32_U * 1.001);
//! ```

use super::attention::{
    AttentionOutput, LatentAttention, Mask, Mqa, absorb_query, absorbed_attention, mqa_attention,
    naive_attention,
};
use super::error::Result;
use super::prolog::MlaQuery;

/// bf16's unit roundoff (8 significand bits): 2^-8, relative.
pub const BF16_U: f64 = 1.0 / 256.0;

/// f32's unit roundoff (24 significand bits): 2^-24, relative.
pub const F32_U: f64 = 1.0 / 16_777_216.0;

/// γ_n = n·u / (1 − n·u) with f32's u: the relative bound of an n-term f32 sum of products
/// against the sum of their magnitudes, in any order (Higham, Theorem 3.1).
pub fn gamma(n: usize) -> f64 {
    n as f64 * F32_U / (1.0 - n as f64 * F32_U)
}

/// The softmax weights' error after a shift of at most δ in every score: each weight moves by
/// a factor within e^{±2δ}, so their moves sum to at most 2(e^{2δ} − 1); plus the f32 sums
/// over `visible` terms ((visible + 4)·2^-24).
pub fn weight_error(delta: f64, visible: usize) -> f64 {
    (2.0 * delta).exp_m1() * 2.0 + (visible as f64 + 4.0) * F32_U
}

/// An LSE's bound: the score shift δ, and the f32 log-sum-exp of `visible` terms around the
/// reference value `lse` (4·2^-24 relative to 1 + |lse|, and 2^-24 per term).
pub fn lse_tolerance(delta: f64, lse: f64, visible: usize) -> f64 {
    delta + 4.0 * F32_U * (1.0 + lse.abs()) + visible as f64 * F32_U
}

/// A reference attention with a bound per element.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionBounds {
    /// The reference: `out [s_q, H, v]`, `lse [H, s_q]` (`+∞` where a query sees no key).
    pub reference: AttentionOutput,
    /// The bound of each `reference.out` element.
    pub out_tol: Vec<f64>,
    /// The bound of each `reference.lse` element (meaningless where the LSE is `+∞`: the
    /// device must give `+∞` exactly there).
    pub lse_tol: Vec<f64>,
}

/// Keys query `i` of `s_q` sees among `len` (bottom-right causal; none of an empty sequence).
fn visible(mask: Mask, len: usize, s_q: usize, i: usize) -> usize {
    match mask {
        Mask::None => len,
        Mask::Causal => (len + i + 1).saturating_sub(s_q).min(len),
    }
}

/// The absorbed form's bounds (decode, and the absorbed prefill), around
/// [`absorbed_attention`] of `attn` for `q` over the sequence's cache rows `keys`. They follow
/// the device's roundings: q̃ = W_UKᵀ q_nope is an f32 sum of `nope` products rounded to bf16
/// (2^-8 + γ_nope), which shifts each score by scale·Σ|Δq̃||k|; the kernel's f32 dot products
/// over the whole row (γ_row); that shift δ moving the weights ([`weight_error`]); ō rounded to
/// bf16 (2^-8); the f32 W_UV products (γ_latent) and the bf16 output (2^-8).
///
/// The factor 1.01 on some bf16 terms covers the rounding of an already rounded value.
pub fn absorbed_bounds(
    attn: &LatentAttention<'_>,
    q: &MlaQuery,
    keys: &[f64],
) -> Result<AttentionBounds> {
    let cfg = attn.cfg;
    let (dn, dv, lat, row) = (
        cfg.qk_nope_head_dim,
        cfg.v_head_dim,
        cfg.kv_lora_rank,
        cfg.cache_row(),
    );
    let (heads, s_q, scale, u) = (q.heads, q.tokens, attn.scale, BF16_U);
    let want = absorbed_attention(attn, q, keys)?;
    let len = keys.len() / row;
    let q_abs = absorb_query(cfg, attn.kv_b_proj, q)?;
    let mqa = Mqa {
        heads,
        d: row,
        dv: lat,
        mask: attn.mask,
        scale,
    };
    let latent = mqa_attention(&mqa, &q_abs, keys)?;
    let vmax = keys
        .chunks_exact(row)
        .flat_map(|r| &r[..lat])
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let mut out_tol = vec![0.0; s_q * heads * dv];
    let mut lse_tol = vec![0.0; heads * s_q];
    for i in 0..s_q {
        let visible = visible(attn.mask, len, s_q, i);
        for h in 0..heads {
            let head = &attn.kv_b_proj[h * (dn + dv) * lat..(h + 1) * (dn + dv) * lat];
            let (w_uk, w_uv) = head.split_at(dn * lat);
            let qn = &q.q_nope[(i * heads + h) * dn..][..dn];
            let qa = &q_abs[(i * heads + h) * row..][..row];
            let dq: Vec<f64> = (0..lat)
                .map(|c| {
                    let s: f64 = (0..dn).map(|r| (w_uk[r * lat + c] * qn[r]).abs()).sum();
                    u * qa[c].abs() + gamma(dn) * s
                })
                .collect();
            let delta = keys
                .chunks_exact(row)
                .take(visible)
                .map(|k| {
                    let from_q: f64 = dq.iter().zip(k).map(|(e, x)| e * x.abs()).sum();
                    let dot: f64 = qa.iter().zip(k).map(|(a, x)| (a * x).abs()).sum();
                    scale * (from_q + gamma(row) * dot * 1.01)
                })
                .fold(0.0, f64::max);
            let wsum = weight_error(delta, visible);
            let ob = &latent.out[(i * heads + h) * lat..][..lat];
            let e: Vec<f64> = ob
                .iter()
                .map(|o| u * 1.01 * o.abs() + wsum * vmax)
                .collect();
            for r in 0..dv {
                let wr = &w_uv[r * lat..][..lat];
                let at = (i * heads + h) * dv + r;
                out_tol[at] = wr.iter().zip(&e).map(|(w, e)| w.abs() * e).sum::<f64>()
                    + gamma(lat) * wr.iter().zip(ob).map(|(w, o)| (w * o).abs()).sum::<f64>()
                    + u * 1.01 * want.out[at].abs();
            }
            lse_tol[h * s_q + i] = lse_tolerance(delta, want.lse[h * s_q + i], visible);
        }
    }
    Ok(AttentionBounds {
        reference: want,
        out_tol,
        lse_tol,
    })
}

/// The naive form's bounds (`prefill_naive`), around [`naive_attention`] of `attn` for `q`
/// over `keys`. They follow the device's roundings: the keys `k_nope_h` and values `v_h` are
/// f32 sums of `latent` products rounded to bf16 (2^-8 relative + γ_latent of the absolute
/// sum), `k_pe` passes exactly; each score an f32 dot of `nope + v + rope` terms; a shift δ of
/// the scores moving the weights ([`weight_error`]); the f32 weighted sum and the bf16 output
/// (2^-8).
pub fn naive_bounds(
    attn: &LatentAttention<'_>,
    q: &MlaQuery,
    keys: &[f64],
) -> Result<AttentionBounds> {
    let cfg = attn.cfg;
    let (dn, dv, lat, dr) = (
        cfg.qk_nope_head_dim,
        cfg.v_head_dim,
        cfg.kv_lora_rank,
        cfg.qk_rope_head_dim,
    );
    let (heads, s_q, scale, u) = (q.heads, q.tokens, attn.scale, BF16_U);
    let want = naive_attention(attn, q, keys)?;
    let len = keys.len() / (lat + dr);
    let mut out_tol = vec![0.0; s_q * heads * dv];
    let mut lse_tol = vec![0.0; heads * s_q];
    if s_q == 0 {
        return Ok(AttentionBounds {
            reference: want,
            out_tol,
            lse_tol,
        });
    }
    // (exact value, device error bound) of one projected element.
    let project = |r: &[f64], w: &[f64]| -> (f64, f64) {
        let (s, a) = w
            .iter()
            .zip(r)
            .fold((0.0, 0.0), |(s, a), (w, c)| (s + w * c, a + (w * c).abs()));
        (s, u * s.abs() + gamma(lat) * a)
    };
    for h in 0..heads {
        let head = &attn.kv_b_proj[h * (dn + dv) * lat..(h + 1) * (dn + dv) * lat];
        let mut k = Vec::with_capacity(len);
        let mut v = Vec::with_capacity(len);
        for row in keys.chunks_exact(lat + dr) {
            let kn: Vec<(f64, f64)> = (0..dn)
                .map(|j| project(&row[..lat], &head[j * lat..][..lat]))
                .collect();
            let vv: Vec<(f64, f64)> = (0..dv)
                .map(|j| project(&row[..lat], &head[(dn + j) * lat..][..lat]))
                .collect();
            k.push((kn, &row[lat..]));
            v.push(vv);
        }
        for i in 0..s_q {
            let visible = visible(attn.mask, len, s_q, i);
            let qn = &q.q_nope[(i * heads + h) * dn..][..dn];
            let qr = &q.q_pe[(i * heads + h) * dr..][..dr];
            let delta = k
                .iter()
                .take(visible)
                .map(|(kn, kr)| {
                    let from_k: f64 = qn.iter().zip(kn).map(|(q, (_, e))| q.abs() * e).sum();
                    let dot: f64 = qn
                        .iter()
                        .zip(kn)
                        .map(|(q, (x, e))| q.abs() * (x.abs() + e))
                        .sum::<f64>()
                        + qr.iter().zip(*kr).map(|(q, x)| (q * x).abs()).sum::<f64>();
                    scale * (from_k + gamma(dn + dv + dr) * dot)
                })
                .fold(0.0, f64::max);
            let vis = &v[..visible];
            let vmax = vis
                .iter()
                .flatten()
                .fold(0.0f64, |m, (x, e)| m.max(x.abs() + e));
            let verr = vis.iter().flatten().fold(0.0f64, |m, (_, e)| m.max(*e));
            let wsum = weight_error(delta, visible);
            for c in 0..dv {
                let at = (i * heads + h) * dv + c;
                out_tol[at] = wsum * vmax + verr + u * 1.01 * want.out[at].abs();
            }
            lse_tol[h * s_q + i] = lse_tolerance(delta, want.lse[h * s_q + i], visible);
        }
    }
    Ok(AttentionBounds {
        reference: want,
        out_tol,
        lse_tol,
    })
}

/// The bounds of `merge_attention` of two bounded parts `a` and `b` of the same queries,
/// around `whole`, the reference attention over both parts' keys. LSEs off by at most
/// `La + Lb` move the weights by a factor e^{±2(La+Lb)} (and a few f32 roundings of exp, ln
/// and the division: 8·2^-24); each part's error enters with its weight (≤ 1); the output is
/// rounded once to bf16 (2^-8). A part that saw no key has LSE `+∞` exactly (the device must
/// match that) and weighs exactly 0.
pub fn merged_bounds(
    a: &AttentionBounds,
    b: &AttentionBounds,
    whole: AttentionOutput,
) -> AttentionBounds {
    let (heads, s_q, dv) = (whole.heads, whole.tokens, whole.dv);
    let mut out_tol = vec![0.0; whole.out.len()];
    let mut lse_tol = vec![0.0; whole.lse.len()];
    for i in 0..s_q {
        for h in 0..heads {
            let r = h * s_q + i;
            let part = |p: &AttentionBounds| {
                if p.reference.lse[r].is_infinite() {
                    0.0
                } else {
                    p.lse_tol[r]
                }
            };
            let (la, lb) = (part(a), part(b));
            let shift = (2.0 * (la + lb)).exp_m1() + 8.0 * F32_U;
            for c in 0..dv {
                let at = (i * heads + h) * dv + c;
                let parts = a.reference.out[at].abs()
                    + a.out_tol[at]
                    + b.reference.out[at].abs()
                    + b.out_tol[at];
                out_tol[at] = a.out_tol[at].max(b.out_tol[at])
                    + shift * parts
                    + BF16_U * 1.01 * whole.out[at].abs();
            }
            lse_tol[r] = la.max(lb) + 4.0 * F32_U * (1.0 + whole.lse[r].abs());
        }
    }
    AttentionBounds {
        reference: whole,
        out_tol,
        lse_tol,
    }
}
