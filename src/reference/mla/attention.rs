//! The attention itself, in the naive form (prefill: per-head keys and values expanded from
//! the latent) and the absorbed form (decode: MQA over the latent-cache rows), with the
//! FlashMLA conventions for masks, LSE and empty sequences.

use super::config::MlaConfig;
use super::error::{MlaError, Result, check_len, product};
use super::prolog::MlaQuery;

/// Which keys a query sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// Every cached token.
    None,
    /// Causal, aligned bottom-right: the `s_q` queries are the last `s_q` tokens of the
    /// sequence, so query `i` sees keys `0 ..= s_k − s_q + i` (FlashMLA's
    /// `tril(diagonal = s_k − s_q)`; a no-op when `s_q = 1`).
    Causal,
}

/// Attention output for one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionOutput {
    /// Query tokens `s_q`.
    pub tokens: usize,
    /// Heads.
    pub heads: usize,
    /// Output width per head.
    pub dv: usize,
    /// `[s_q, H, dv]`.
    pub out: Vec<f64>,
    /// `[H, s_q]`: `ln Σ_t e^{score}` over the visible keys (natural log, scores already
    /// scaled); `+∞` with output 0 when no key is visible (FlashMLA's empty-sequence rule).
    pub lse: Vec<f64>,
}

impl AttentionOutput {
    fn zeros(tokens: usize, heads: usize, dv: usize) -> Self {
        Self {
            tokens,
            heads,
            dv,
            out: vec![0.0; tokens * heads * dv],
            lse: vec![f64::INFINITY; heads * tokens],
        }
    }
}

/// How many keys query `i` of `s_q` sees among `s_k`.
fn visible(mask: Mask, i: usize, s_q: usize, s_k: usize) -> usize {
    match mask {
        Mask::None => s_k,
        Mask::Causal => s_k - s_q + i + 1,
    }
}

fn check_mask(mask: Mask, s_q: usize, s_k: usize) -> Result<()> {
    if mask == Mask::Causal && s_k > 0 && s_q > s_k {
        return Err(MlaError::CausalQueries { s_q, s_k });
    }
    Ok(())
}

/// The softmax-weighted sum of `values(t)` over scores `scores`, and the LSE.
fn softmax_sum(
    scores: &[f64],
    width: usize,
    mut value: impl FnMut(usize) -> Vec<f64>,
) -> (Vec<f64>, f64) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = weights.iter().sum();
    let mut out = vec![0.0; width];
    for (t, p) in weights.iter().enumerate() {
        for (o, v) in out.iter_mut().zip(value(t)) {
            *o += p / sum * v;
        }
    }
    (out, max + sum.ln())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `W_UK_h` (`[dn, kv_lora]`) and `W_UV_h` (`[dv, kv_lora]`) of head `h` in `kv_b_proj`.
fn head_weights<'a>(cfg: &MlaConfig, kv_b_proj: &'a [f64], h: usize) -> (&'a [f64], &'a [f64]) {
    let (dn, dv, kvr) = (cfg.qk_nope_head_dim, cfg.v_head_dim, cfg.kv_lora_rank);
    let head = &kv_b_proj[h * (dn + dv) * kvr..(h + 1) * (dn + dv) * kvr];
    head.split_at(dn * kvr)
}

/// `w [rows, cols] · x [cols]`.
fn matvec(w: &[f64], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len()).map(|r| dot(r, x)).collect()
}

fn check_inputs(
    cfg: &MlaConfig,
    kv_b_proj: &[f64],
    q: &MlaQuery,
    cache_rows: &[f64],
) -> Result<usize> {
    cfg.validate()?;
    if q.heads != cfg.num_heads {
        return Err(MlaError::Config {
            field: "num_attention_heads",
            value: format!("{} (config) against {} query heads", cfg.num_heads, q.heads),
            expected: "the same head count for the config, the queries and the weights",
        });
    }
    check_len(
        "kv_b_proj",
        kv_b_proj,
        &[
            cfg.num_heads,
            cfg.qk_nope_head_dim + cfg.v_head_dim,
            cfg.kv_lora_rank,
        ],
    )?;
    check_len(
        "q_nope",
        &q.q_nope,
        &[q.tokens, q.heads, cfg.qk_nope_head_dim],
    )?;
    check_len("q_pe", &q.q_pe, &[q.tokens, q.heads, cfg.qk_rope_head_dim])?;
    let row = cfg.cache_row();
    if cache_rows.len() % row != 0 {
        return Err(MlaError::Length {
            what: "cache rows",
            expected: cache_rows.len() / row * row,
            actual: cache_rows.len(),
            shape: format!("[s_k, {row}]"),
        });
    }
    Ok(cache_rows.len() / row)
}

/// One layer's attention settings: what both forms share.
#[derive(Debug, Clone, Copy)]
pub struct LatentAttention<'a> {
    /// The configuration.
    pub cfg: &'a MlaConfig,
    /// `kv_b_proj [H·(dn+dv), kv_lora]`: `W_UK` and `W_UV` per head.
    pub kv_b_proj: &'a [f64],
    /// Which keys each query sees.
    pub mask: Mask,
    /// The softmax scale (pass [`MlaConfig::softmax_scale`]).
    pub scale: f64,
}

impl LatentAttention<'_> {
    /// The naive form: see [`naive_attention`].
    pub fn naive(&self, q: &MlaQuery, cache_rows: &[f64]) -> Result<AttentionOutput> {
        naive_attention(self, q, cache_rows)
    }

    /// The absorbed form: see [`absorbed_attention`].
    pub fn absorbed(&self, q: &MlaQuery, cache_rows: &[f64]) -> Result<AttentionOutput> {
        absorbed_attention(self, q, cache_rows)
    }
}

/// The naive form: per head, keys `[W_UK_h c_t ; k_pe_t]` and values `W_UV_h c_t`, then
/// softmax attention with head dims `dn + dr` and `dv`. `cache_rows` is `[s_k, kv_lora + dr]`
/// as the prolog writes them.
pub fn naive_attention(
    attn: &LatentAttention<'_>,
    q: &MlaQuery,
    cache_rows: &[f64],
) -> Result<AttentionOutput> {
    let LatentAttention {
        cfg,
        kv_b_proj,
        mask,
        scale,
    } = *attn;
    let s_k = check_inputs(cfg, kv_b_proj, q, cache_rows)?;
    check_mask(mask, q.tokens, s_k)?;
    let (h_n, dn, dr, dv, kvr) = (
        q.heads,
        cfg.qk_nope_head_dim,
        cfg.qk_rope_head_dim,
        cfg.v_head_dim,
        cfg.kv_lora_rank,
    );
    let mut res = AttentionOutput::zeros(q.tokens, h_n, dv);
    if s_k == 0 {
        return Ok(res);
    }
    let rows: Vec<&[f64]> = cache_rows.chunks_exact(kvr + dr).collect();
    for h in 0..h_n {
        let (w_uk, w_uv) = head_weights(cfg, kv_b_proj, h);
        let keys: Vec<Vec<f64>> = rows.iter().map(|r| matvec(w_uk, &r[..kvr])).collect();
        let values: Vec<Vec<f64>> = rows.iter().map(|r| matvec(w_uv, &r[..kvr])).collect();
        for i in 0..q.tokens {
            let qn = &q.q_nope[(i * h_n + h) * dn..][..dn];
            let qr = &q.q_pe[(i * h_n + h) * dr..][..dr];
            let n = visible(mask, i, q.tokens, s_k);
            let scores: Vec<f64> = (0..n)
                .map(|t| (dot(qn, &keys[t]) + dot(qr, &rows[t][kvr..])) * scale)
                .collect();
            let (o, lse) = softmax_sum(&scores, dv, |t| values[t].clone());
            res.out[(i * h_n + h) * dv..][..dv].copy_from_slice(&o);
            res.lse[h * q.tokens + i] = lse;
        }
    }
    Ok(res)
}

/// The absorbed query `[s_q, H, kv_lora + dr]`: `q̃_h = W_UK_hᵀ q_nope_h`, then `q_pe_h`.
pub fn absorb_query(cfg: &MlaConfig, kv_b_proj: &[f64], q: &MlaQuery) -> Result<Vec<f64>> {
    check_inputs(cfg, kv_b_proj, q, &[])?;
    let (h_n, dn, dr, kvr) = (
        q.heads,
        cfg.qk_nope_head_dim,
        cfg.qk_rope_head_dim,
        cfg.kv_lora_rank,
    );
    let mut out = Vec::with_capacity(q.tokens * h_n * (kvr + dr));
    for i in 0..q.tokens {
        for h in 0..h_n {
            let (w_uk, _) = head_weights(cfg, kv_b_proj, h);
            let qn = &q.q_nope[(i * h_n + h) * dn..][..dn];
            out.extend((0..kvr).map(|c| (0..dn).map(|r| w_uk[r * kvr + c] * qn[r]).sum::<f64>()));
            out.extend_from_slice(&q.q_pe[(i * h_n + h) * dr..][..dr]);
        }
    }
    Ok(out)
}

/// The shape of a multi-query attention with one shared KV head (FlashMLA's `h_kv = 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mqa {
    /// Query heads.
    pub heads: usize,
    /// Query/key width (576 for DeepSeek: latent then rope key).
    pub d: usize,
    /// Value width: the first `dv` columns of each row (512).
    pub dv: usize,
    /// Which keys each query sees.
    pub mask: Mask,
    /// The softmax scale.
    pub scale: f64,
}

/// Multi-query attention over one sequence's cache rows, FlashMLA's dense decode: `q [s_q,
/// H, d]` against `cache_rows [s_k, d]`, the values being the first `dv` columns of the same
/// rows. Returns `out [s_q, H, dv]` and `lse [H, s_q]`.
pub fn mqa_attention(mqa: &Mqa, q: &[f64], cache_rows: &[f64]) -> Result<AttentionOutput> {
    let Mqa {
        heads,
        d,
        dv,
        mask,
        scale,
    } = *mqa;
    if d == 0 || dv > d || heads == 0 {
        return Err(MlaError::Config {
            field: "head widths",
            value: format!("d = {d}, dv = {dv}, heads = {heads}"),
            expected: "d >= 1, dv <= d and at least one head",
        });
    }
    let per_token = product("q", &[heads, d])?;
    if q.len() % per_token != 0 || cache_rows.len() % d != 0 {
        return Err(MlaError::Length {
            what: if q.len() % per_token != 0 {
                "q"
            } else {
                "cache rows"
            },
            expected: 0,
            actual: if q.len() % per_token != 0 {
                q.len()
            } else {
                cache_rows.len()
            },
            shape: format!("a multiple of [H, d] = [{heads}, {d}] / [d] = [{d}]"),
        });
    }
    let (s_q, s_k) = (q.len() / per_token, cache_rows.len() / d);
    check_mask(mask, s_q, s_k)?;
    let mut res = AttentionOutput::zeros(s_q, heads, dv);
    if s_k == 0 {
        return Ok(res);
    }
    let rows: Vec<&[f64]> = cache_rows.chunks_exact(d).collect();
    for i in 0..s_q {
        for h in 0..heads {
            let qh = &q[(i * heads + h) * d..][..d];
            let n = visible(mask, i, s_q, s_k);
            let scores: Vec<f64> = (0..n).map(|t| dot(qh, rows[t]) * scale).collect();
            let (o, lse) = softmax_sum(&scores, dv, |t| rows[t][..dv].to_vec());
            res.out[(i * heads + h) * dv..][..dv].copy_from_slice(&o);
            res.lse[h * s_q + i] = lse;
        }
    }
    Ok(res)
}

/// The absorbed form: [`absorb_query`], [`mqa_attention`] over the `kv_lora + dr`-wide rows
/// with `dv = kv_lora`, then `o_h = W_UV_h ō_h`. Equal to [`naive_attention`] by
/// associativity and linearity (RoPE touches only the separate `k_pe` channel).
pub fn absorbed_attention(
    attn: &LatentAttention<'_>,
    q: &MlaQuery,
    cache_rows: &[f64],
) -> Result<AttentionOutput> {
    let (cfg, kv_b_proj) = (attn.cfg, attn.kv_b_proj);
    check_inputs(cfg, kv_b_proj, q, cache_rows)?;
    let q_abs = absorb_query(cfg, kv_b_proj, q)?;
    let mqa = Mqa {
        heads: q.heads,
        d: cfg.cache_row(),
        dv: cfg.kv_lora_rank,
        mask: attn.mask,
        scale: attn.scale,
    };
    let latent = mqa_attention(&mqa, &q_abs, cache_rows)?;
    let (h_n, dv, kvr) = (q.heads, cfg.v_head_dim, cfg.kv_lora_rank);
    let mut out = Vec::with_capacity(q.tokens * h_n * dv);
    for i in 0..q.tokens {
        for h in 0..h_n {
            let (_, w_uv) = head_weights(cfg, kv_b_proj, h);
            out.extend(matvec(w_uv, &latent.out[(i * h_n + h) * kvr..][..kvr]));
        }
    }
    Ok(AttentionOutput {
        tokens: q.tokens,
        heads: h_n,
        dv,
        out,
        lse: latent.lse,
    })
}

/// Merges the attention of the same queries over two disjoint key sets (chunked prefill,
/// split-K decode): `o = (o₁e^{l₁} + o₂e^{l₂}) / (e^{l₁} + e^{l₂})`, `l = ln(e^{l₁} + e^{l₂})`,
/// computed stably. An input whose LSE is `+∞` saw no keys (FlashMLA's empty-sequence rule)
/// and contributes nothing.
pub fn merge_lse(a: &AttentionOutput, b: &AttentionOutput) -> Result<AttentionOutput> {
    if (a.tokens, a.heads, a.dv) != (b.tokens, b.heads, b.dv)
        || a.out.len() != b.out.len()
        || a.lse.len() != b.lse.len()
    {
        return Err(MlaError::Length {
            what: "second attention output",
            expected: a.out.len(),
            actual: b.out.len(),
            shape: format!("[{}, {}, {}] like the first", a.tokens, a.heads, a.dv),
        });
    }
    let mut res = AttentionOutput::zeros(a.tokens, a.heads, a.dv);
    for i in 0..a.tokens {
        for h in 0..a.heads {
            let (la, lb) = (a.lse[h * a.tokens + i], b.lse[h * a.tokens + i]);
            let o = (i * a.heads + h) * a.dv..(i * a.heads + h + 1) * a.dv;
            let (wa, wb, lse) = match (la == f64::INFINITY, lb == f64::INFINITY) {
                (true, true) => continue,
                (true, false) => (0.0, 1.0, lb),
                (false, true) => (1.0, 0.0, la),
                (false, false) => {
                    let m = la.max(lb);
                    let (ea, eb) = ((la - m).exp(), (lb - m).exp());
                    (ea / (ea + eb), eb / (ea + eb), m + (ea + eb).ln())
                }
            };
            for ((r, x), y) in res.out[o.clone()]
                .iter_mut()
                .zip(&a.out[o.clone()])
                .zip(&b.out[o])
            {
                *r = wa * x + wb * y;
            }
            res.lse[h * a.tokens + i] = lse;
        }
    }
    Ok(res)
}
