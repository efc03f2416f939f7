//! aclnnMlaPrologV3WeightNz without quantisation, cache mode PA_BSND: DeepSeek's MLA
//! prolog (ops-transformer `mla_prolog_v3` doc and `MlaPrologV2算子设计介绍.md`):
//!
//! * `c_Q = α_q · RmsNorm(x·W_DQ)`, then `[q_C | q_R] = c_Q·[W_UQ | W_QR]` (the columns of
//!   weightUqQr are all heads' `W_UQ` then all heads' `W_QR`), `q_N = q_C·W_UK` per head;
//! * `[c_KV | k_R] = x·[W_DKV | W_KR]`, `c_KV = α_kv · RmsNorm(c_KV)`;
//! * RoPE of `q_R` and `k_R` in the op's internal form (design doc formula 15): the input is
//!   split into its even and odd elements `e`, `o` and the output is `[e·cos₀ − o·sin₀,
//!   o·cos₁ + e·sin₁]` with `cos₀`, `sin₀` the first 32 values of ropeCos/ropeSin and `cos₁`,
//!   `sin₁` the last 32. The result is the interleaved rotation with its elements permuted to
//!   `[evens, odds]`, which leaves `q_R·k_R` unchanged; the caches hold the permuted key.
//! * `c_KV` and `k_R` are scattered to row `cacheIndex[t]` of the paged caches.
//!
//! Precision: the cube takes BF16 operands, so `c_Q` and `q_C` are rounded to BF16 before the
//! matmuls that consume them; everything else is computed in f64 and rounded once on store.
//! The weights arrive in FRACTAL_NZ and are read through that layout.

use std::sync::Arc;

use half::bf16;

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;
use crate::rules::violation;

/// Hcq, Hckv, D and Dr, fixed by the op's documented limits.
const Q_LORA: usize = 1536;
const KV_LORA: usize = 512;
const NOPE: usize = 128;
const ROPE: usize = 64;

/// The scalar attributes the computation uses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) eps_cq: f64,
    pub(crate) eps_ckv: f64,
    pub(crate) qc_qr_scale: f64,
    pub(crate) kc_scale: f64,
}

/// The tensors, as phase one validated them.
pub(crate) struct Tensors {
    pub(crate) token_x: TensorDesc,
    pub(crate) weight_dq: TensorDesc,
    pub(crate) weight_uq_qr: TensorDesc,
    pub(crate) weight_uk: TensorDesc,
    pub(crate) weight_dkv_kr: TensorDesc,
    pub(crate) gamma_cq: TensorDesc,
    pub(crate) gamma_ckv: TensorDesc,
    pub(crate) rope_sin: TensorDesc,
    pub(crate) rope_cos: TensorDesc,
    pub(crate) cache_index: TensorDesc,
    pub(crate) kv_cache: TensorDesc,
    pub(crate) kr_cache: TensorDesc,
    pub(crate) query: TensorDesc,
    pub(crate) query_rope: TensorDesc,
}

/// `[k, n]` row-major from a FRACTAL_NZ storage of 2-byte elements (`[n/16, k/16, 16, 16]`).
pub(crate) fn from_nz(raw: &[f64], k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; k * n];
    for (i, &v) in raw.iter().enumerate() {
        let (n0, k0) = (i % 16, (i / 16) % 16);
        let block = i / 256;
        let (k1, n1) = (block % (k / 16), block / (k / 16));
        out[(k1 * 16 + k0) * n + n1 * 16 + n0] = v;
    }
    out
}

fn round_bf16(v: f64) -> f64 {
    bf16::from_f64(v).to_f64()
}

/// `x [in] · w [in, out]` (w row-major).
fn matvec(x: &[f64], w: &[f64], out: usize) -> Vec<f64> {
    let mut y = vec![0.0; out];
    for (xi, row) in x.iter().zip(w.chunks_exact(out)) {
        for (yj, wj) in y.iter_mut().zip(row) {
            *yj += xi * wj;
        }
    }
    y
}

fn rms_norm(x: &mut [f64], gamma: &[f64], eps: f64, scale: f64) {
    let mean_sq = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (mean_sq + eps).sqrt();
    for (v, g) in x.iter_mut().zip(gamma) {
        *v *= inv * g * scale;
    }
}

/// The op's RoPE (formula 15): `[e·cos₀ − o·sin₀, o·cos₁ + e·sin₁]`.
pub(crate) fn rope_deinterleaved(z: &[f64], cos: &[f64], sin: &[f64]) -> Vec<f64> {
    let half = z.len() / 2;
    let mut y = vec![0.0; z.len()];
    for j in 0..half {
        let (e, o) = (z[2 * j], z[2 * j + 1]);
        y[j] = e * cos[j] - o * sin[j];
        y[half + j] = o * cos[half + j] + e * sin[half + j];
    }
    y
}

pub(crate) fn plan(t: Tensors, a: Attrs) -> SimResult<Planned> {
    let he = *t.token_x.dims.last().unwrap_or(&0) as usize;
    let tokens = t.token_x.numel() / he.max(1);
    let heads = t.weight_uk.dim(0);
    let slots = t.kv_cache.dim(0) * t.kv_cache.dim(1);
    let inputs = vec![
        ("tokenX", t.token_x),
        ("weightDq", t.weight_dq),
        ("weightUqQr", t.weight_uq_qr),
        ("weightUk", t.weight_uk),
        ("weightDkvKr", t.weight_dkv_kr),
        ("rmsnormGammaCq", t.gamma_cq),
        ("rmsnormGammaCkv", t.gamma_ckv),
        ("ropeSin", t.rope_sin),
        ("ropeCos", t.rope_cos),
        ("cacheIndexOptional", t.cache_index),
    ];
    let outputs = vec![
        ("kvCacheRef", t.kv_cache),
        ("krCacheRef", t.kr_cache),
        ("queryOut", t.query),
        ("queryRopeOut", t.query_rope),
    ];
    let run = Arc::new(move |i: &[TensorView], o: &[TensorView]| {
        let index = i[9].read_i64();
        if let Some((tok, &slot)) = index
            .iter()
            .enumerate()
            .find(|(_, s)| !(0..slots as i64).contains(s))
        {
            return Err(violation(
                "mla-prolog-v3.cache-index-range",
                format!("cacheIndex[{tok}] = {slot} with {slots} cache rows"),
            ));
        }
        // The four projections of every token: x·W_DQ, c_q·W_UQ_QR, q_nope·W_UK per head,
        // x·W_DKV_KR.
        let per_token = he * Q_LORA
            + Q_LORA * heads * (NOPE + ROPE)
            + heads * NOPE * KV_LORA
            + he * (KV_LORA + ROPE);
        o[2].count_macs((tokens * per_token) as u64);
        let x = i[0].read_f64();
        let w_dq = from_nz(&i[1].read_f64(), he, Q_LORA);
        let qcols = heads * (NOPE + ROPE);
        let w_uqqr = from_nz(&i[2].read_f64(), Q_LORA, qcols);
        let w_uk = i[3].read_f64();
        let w_dkvkr = from_nz(&i[4].read_f64(), he, KV_LORA + ROPE);
        let (g_cq, g_ckv) = (i[5].read_f64(), i[6].read_f64());
        let (sin, cos) = (i[7].read_f64(), i[8].read_f64());
        let kv_bound = &o[0];
        let kr_bound = &o[1];
        let (mut kv_cache, mut kr_cache) = (kv_bound.read_f64(), kr_bound.read_f64());
        let mut query = Vec::with_capacity(tokens * heads * KV_LORA);
        let mut query_rope = Vec::with_capacity(tokens * heads * ROPE);
        for tok in 0..tokens {
            let xt = &x[tok * he..(tok + 1) * he];
            let (cos_t, sin_t) = (&cos[tok * ROPE..][..ROPE], &sin[tok * ROPE..][..ROPE]);
            let mut c_q = matvec(xt, &w_dq, Q_LORA);
            rms_norm(&mut c_q, &g_cq, a.eps_cq, a.qc_qr_scale);
            let c_q: Vec<f64> = c_q.into_iter().map(round_bf16).collect();
            let q = matvec(&c_q, &w_uqqr, qcols);
            for h in 0..heads {
                let q_c: Vec<f64> = q[h * NOPE..(h + 1) * NOPE]
                    .iter()
                    .map(|&v| round_bf16(v))
                    .collect();
                let w = &w_uk[h * NOPE * KV_LORA..(h + 1) * NOPE * KV_LORA];
                query.extend(matvec(&q_c, w, KV_LORA));
            }
            for h in 0..heads {
                let z = &q[heads * NOPE + h * ROPE..][..ROPE];
                query_rope.extend(rope_deinterleaved(z, cos_t, sin_t));
            }
            let kv = matvec(xt, &w_dkvkr, KV_LORA + ROPE);
            let mut c_kv = kv[..KV_LORA].to_vec();
            rms_norm(&mut c_kv, &g_ckv, a.eps_ckv, a.kc_scale);
            let slot = index[tok] as usize;
            kv_cache[slot * KV_LORA..(slot + 1) * KV_LORA].copy_from_slice(&c_kv);
            let k_r = rope_deinterleaved(&kv[KV_LORA..], cos_t, sin_t);
            kr_cache[slot * ROPE..(slot + 1) * ROPE].copy_from_slice(&k_r);
        }
        kv_bound.write_f64(&kv_cache)?;
        kr_bound.write_f64(&kr_cache)?;
        o[2].write_f64(&query)?;
        o[3].write_f64(&query_rope)
    });
    Ok(Planned::new(0, inputs, outputs, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nz_round_trip_places_each_element() {
        let (k, n) = (32, 48);
        // Storage order [n/16, k/16, 16, 16]: element (r, c) at ((c/16·k/16 + r/16)·16 + r%16)·16 + c%16.
        let mut raw = vec![0.0; k * n];
        for r in 0..k {
            for c in 0..n {
                raw[((c / 16 * (k / 16) + r / 16) * 16 + r % 16) * 16 + c % 16] =
                    (r * n + c) as f64;
            }
        }
        let rows = from_nz(&raw, k, n);
        assert!(rows.iter().enumerate().all(|(i, &v)| v == i as f64));
    }

    #[test]
    fn rope_is_the_interleaved_rotation_permuted_to_evens_then_odds() {
        let z: Vec<f64> = (0..8).map(|i| i as f64 + 1.0).collect();
        let angles = [0.3, 1.1, -0.7, 2.0];
        let cos: Vec<f64> = angles
            .iter()
            .chain(&angles)
            .map(|a: &f64| a.cos())
            .collect();
        let sin: Vec<f64> = angles
            .iter()
            .chain(&angles)
            .map(|a: &f64| a.sin())
            .collect();
        let y = rope_deinterleaved(&z, &cos, &sin);
        for (j, a) in angles.iter().enumerate() {
            let (e, o) = (z[2 * j], z[2 * j + 1]);
            // (e + i·o)·e^{i·a}
            assert!((y[j] - (e * a.cos() - o * a.sin())).abs() < 1e-12);
            assert!((y[4 + j] - (e * a.sin() + o * a.cos())).abs() < 1e-12);
        }
    }
}
