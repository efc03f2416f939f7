//! A whole MLA layer on one sequence: prolog, cache append, attention in either form, and
//! the output projection.

use super::attention::{AttentionOutput, LatentAttention, Mask};
use super::config::MlaConfig;
use super::error::{MlaError, Result, check_len};
use super::prolog::{MlaWeights, linear, prolog};

/// Which attention form the layer uses; both give the same result up to rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionForm {
    /// Per-head keys and values (prefill, "MHA mode").
    Naive,
    /// MQA over the latent rows (decode, "MQA mode").
    Absorbed,
}

/// `o_proj`: `attn.out [s_q, H·dv] · o_projᵀ`, `[s_q, hidden]`.
pub fn output_projection(
    cfg: &MlaConfig,
    o_proj: &[f64],
    attn: &AttentionOutput,
) -> Result<Vec<f64>> {
    let width = cfg.num_heads * cfg.v_head_dim;
    check_len("o_proj", o_proj, &[cfg.hidden_size, width])?;
    check_len("attention output", &attn.out, &[attn.tokens, width])?;
    Ok(linear(&attn.out, o_proj, width))
}

/// One sequence's contiguous latent cache: `[len, kv_lora + dr]` rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SequenceCache {
    /// The rows, oldest first.
    pub rows: Vec<f64>,
}

impl SequenceCache {
    /// Tokens cached, given the row width.
    pub fn len(&self, cfg: &MlaConfig) -> usize {
        self.rows.len() / cfg.cache_row()
    }
}

/// Runs the layer on `x [T, hidden]`, the next `T` tokens of the sequence: their positions
/// follow the cached ones, their rows are appended to `cache`, and they attend causally
/// (bottom-right) to everything cached, with [`MlaConfig::softmax_scale`].
pub fn mla_layer_forward(
    cfg: &MlaConfig,
    w: &MlaWeights,
    x: &[f64],
    cache: &mut SequenceCache,
    form: AttentionForm,
) -> Result<Vec<f64>> {
    w.validate(cfg)?;
    if cache.rows.len() % cfg.cache_row() != 0 {
        return Err(MlaError::Length {
            what: "sequence cache",
            expected: cache.len(cfg) * cfg.cache_row(),
            actual: cache.rows.len(),
            shape: format!("[len, {}]", cfg.cache_row()),
        });
    }
    if x.len() % cfg.hidden_size != 0 {
        check_len("x", x, &[x.len() / cfg.hidden_size, cfg.hidden_size])?;
    }
    let start = cache.len(cfg);
    let positions: Vec<usize> = (start..start + x.len() / cfg.hidden_size).collect();
    let p = prolog(cfg, w, x, &positions)?;
    cache.rows.extend_from_slice(&p.cache_rows);
    let attention = LatentAttention {
        cfg,
        kv_b_proj: &w.kv_b_proj,
        mask: Mask::Causal,
        scale: cfg.softmax_scale(),
    };
    let attn = match form {
        AttentionForm::Naive => attention.naive(&p.query, &cache.rows)?,
        AttentionForm::Absorbed => attention.absorbed(&p.query, &cache.rows)?,
    };
    output_projection(cfg, &w.o_proj, &attn)
}
