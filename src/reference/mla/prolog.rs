//! The MLA prolog: projections, RMSNorms and RoPE, from hidden states to the queries and the
//! latent-cache rows (`model.py` `MLA.forward` up to the attention).

use super::config::MlaConfig;
use super::error::{MlaError, Result, check_len};
use super::rope::Rope;

/// The query projection: low-rank with a norm (V2, V3) or plain (V2-Lite).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryWeights {
    /// `q_a_proj [q_lora, hidden]`, `q_a_layernorm [q_lora]`, `q_b_proj [H·(dn+dr), q_lora]`.
    LowRank {
        /// `q_a_proj.weight`.
        q_a_proj: Vec<f64>,
        /// `q_a_layernorm.weight`.
        q_a_layernorm: Vec<f64>,
        /// `q_b_proj.weight`.
        q_b_proj: Vec<f64>,
    },
    /// `q_proj [H·(dn+dr), hidden]`.
    Plain {
        /// `q_proj.weight`.
        q_proj: Vec<f64>,
    },
}

/// One MLA layer's weights, named as in DeepSeek's checkpoints (`self_attn.*.weight`), each
/// row-major `[out, in]` as PyTorch's `Linear` stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct MlaWeights {
    /// The query side.
    pub query: QueryWeights,
    /// `kv_a_proj_with_mqa [kv_lora + dr, hidden]`: the latent and the shared rope key.
    pub kv_a_proj_with_mqa: Vec<f64>,
    /// `kv_a_layernorm [kv_lora]`: RMSNorm of the latent only.
    pub kv_a_layernorm: Vec<f64>,
    /// `kv_b_proj [H·(dn+dv), kv_lora]`; per head, rows `0..dn` are `W_UK`, then `W_UV`.
    pub kv_b_proj: Vec<f64>,
    /// `o_proj [hidden, H·dv]`.
    pub o_proj: Vec<f64>,
}

impl MlaWeights {
    /// Checks every tensor's size against `cfg` (which must be valid).
    pub fn validate(&self, cfg: &MlaConfig) -> Result<()> {
        cfg.validate()?;
        let h = cfg.num_heads;
        match (&self.query, cfg.q_lora_rank) {
            (
                QueryWeights::LowRank {
                    q_a_proj,
                    q_a_layernorm,
                    q_b_proj,
                },
                Some(r),
            ) => {
                check_len("q_a_proj", q_a_proj, &[r, cfg.hidden_size])?;
                check_len("q_a_layernorm", q_a_layernorm, &[r])?;
                check_len("q_b_proj", q_b_proj, &[h, cfg.qk_head_dim(), r])?;
            }
            (QueryWeights::Plain { q_proj }, None) => {
                check_len("q_proj", q_proj, &[h, cfg.qk_head_dim(), cfg.hidden_size])?;
            }
            (q, r) => {
                return Err(MlaError::Config {
                    field: "q_lora_rank",
                    value: format!("{r:?}"),
                    expected: if matches!(q, QueryWeights::Plain { .. }) {
                        "null, since the weights have a plain q_proj"
                    } else {
                        "a rank, since the weights have q_a_proj / q_b_proj"
                    },
                });
            }
        }
        check_len(
            "kv_a_proj_with_mqa",
            &self.kv_a_proj_with_mqa,
            &[cfg.cache_row(), cfg.hidden_size],
        )?;
        check_len("kv_a_layernorm", &self.kv_a_layernorm, &[cfg.kv_lora_rank])?;
        check_len(
            "kv_b_proj",
            &self.kv_b_proj,
            &[h, cfg.qk_nope_head_dim + cfg.v_head_dim, cfg.kv_lora_rank],
        )?;
        check_len(
            "o_proj",
            &self.o_proj,
            &[cfg.hidden_size, h, cfg.v_head_dim],
        )
    }
}

/// `x [n, in] · wᵀ` with `w [out, in]`: `[n, out]`.
pub(crate) fn linear(x: &[f64], w: &[f64], inputs: usize) -> Vec<f64> {
    x.chunks_exact(inputs)
        .flat_map(|row| {
            w.chunks_exact(inputs)
                .map(move |wr| wr.iter().zip(row).map(|(a, b)| a * b).sum::<f64>())
        })
        .collect()
}

/// RMSNorm of each `weight.len()`-wide row: `x / √(mean(x²) + eps) · weight`.
pub fn rms_norm(x: &mut [f64], weight: &[f64], eps: f64) {
    for row in x.chunks_exact_mut(weight.len()) {
        let mean_sq = row.iter().map(|v| v * v).sum::<f64>() / weight.len() as f64;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        for (v, w) in row.iter_mut().zip(weight) {
            *v *= inv * w;
        }
    }
}

/// The queries of `s_q` tokens, per head, as the attention takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct MlaQuery {
    /// Query tokens.
    pub tokens: usize,
    /// Heads.
    pub heads: usize,
    /// `[s_q, H, qk_nope_head_dim]`.
    pub q_nope: Vec<f64>,
    /// `[s_q, H, qk_rope_head_dim]`, already rotated.
    pub q_pe: Vec<f64>,
}

/// The prolog's output for `T` tokens of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Prolog {
    /// The queries.
    pub query: MlaQuery,
    /// `[T, kv_lora + dr]` latent-cache rows: the normalised latent `c_kv`, then the rotated
    /// shared key `k_pe`, exactly what the cache stores.
    pub cache_rows: Vec<f64>,
}

/// Runs the prolog on `x [T, hidden]` for tokens at `positions` (one per token).
pub fn prolog(cfg: &MlaConfig, w: &MlaWeights, x: &[f64], positions: &[usize]) -> Result<Prolog> {
    w.validate(cfg)?;
    let t = positions.len();
    check_len("x", x, &[t, cfg.hidden_size])?;
    let (h, dn, dr, kvr) = (
        cfg.num_heads,
        cfg.qk_nope_head_dim,
        cfg.qk_rope_head_dim,
        cfg.kv_lora_rank,
    );
    let rope = Rope::new(cfg);

    let q = match &w.query {
        QueryWeights::LowRank {
            q_a_proj,
            q_a_layernorm,
            q_b_proj,
        } => {
            let mut c_q = linear(x, q_a_proj, cfg.hidden_size);
            rms_norm(&mut c_q, q_a_layernorm, cfg.rms_norm_eps);
            linear(&c_q, q_b_proj, q_a_layernorm.len())
        }
        QueryWeights::Plain { q_proj } => linear(x, q_proj, cfg.hidden_size),
    };
    let mut q_nope = Vec::with_capacity(t * h * dn);
    let mut q_pe = Vec::with_capacity(t * h * dr);
    for (tok, row) in q.chunks_exact(h * (dn + dr)).enumerate() {
        for head in row.chunks_exact(dn + dr) {
            q_nope.extend_from_slice(&head[..dn]);
            let start = q_pe.len();
            q_pe.extend_from_slice(&head[dn..]);
            rope.apply(&mut q_pe[start..], positions[tok]);
        }
    }

    let mut cache_rows = linear(x, &w.kv_a_proj_with_mqa, cfg.hidden_size);
    for (tok, row) in cache_rows.chunks_exact_mut(kvr + dr).enumerate() {
        let (c, k_pe) = row.split_at_mut(kvr);
        rms_norm(c, &w.kv_a_layernorm, cfg.rms_norm_eps);
        rope.apply(k_pe, positions[tok]);
    }
    Ok(Prolog {
        query: MlaQuery {
            tokens: t,
            heads: h,
            q_nope,
            q_pe,
        },
        cache_rows,
    })
}
