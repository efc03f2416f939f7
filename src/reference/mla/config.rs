//! The attention configuration of a DeepSeek model (V2, V2-Lite, V3 / R1, or any head count).

use super::error::{MlaError, Result};

/// YaRN context extension of the rotary embedding (`config.json` `rope_scaling` with
/// `"type": "yarn"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Yarn {
    /// `factor`: how much longer the extended context is (40 for DeepSeek).
    pub factor: f64,
    /// `original_max_position_embeddings` (4096 for DeepSeek).
    pub original_max_position_embeddings: usize,
    /// `beta_fast`: rotations that set the low end of the ramp (32).
    pub beta_fast: f64,
    /// `beta_slow`: rotations that set the high end of the ramp (1).
    pub beta_slow: f64,
    /// `mscale`: scales the cos/sin amplitude, relative to `mscale_all_dim`.
    pub mscale: f64,
    /// `mscale_all_dim`: scales the softmax (squared).
    pub mscale_all_dim: f64,
}

/// YaRN's attention-temperature factor, `0.1·m·ln(factor) + 1` (1 when `factor ≤ 1`).
pub fn yarn_mscale(factor: f64, m: f64) -> f64 {
    if factor <= 1.0 {
        1.0
    } else {
        0.1 * m * factor.ln() + 1.0
    }
}

/// Multi-head latent attention's shapes and constants, named as in `config.json`.
///
/// The reference follows HF transformers' DeepSeek code where it and `model.py` differ only
/// in when YaRN is on: here it is on whenever `rope_scaling` is present with `factor > 1`
/// (`model.py` turns it on when its run-time `max_seq_len` exceeds 4096, which DeepSeek's own
/// configurations always do).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlaConfig {
    /// `hidden_size`: the model width.
    pub hidden_size: usize,
    /// `num_attention_heads`: query heads on this device (128 / TP under tensor parallelism).
    pub num_heads: usize,
    /// `q_lora_rank`: the query's low-rank width, or `None` for a plain `q_proj` (V2-Lite).
    pub q_lora_rank: Option<usize>,
    /// `kv_lora_rank`: the latent width `c_kv` (512).
    pub kv_lora_rank: usize,
    /// `qk_nope_head_dim`: the per-head query/key width without position (128).
    pub qk_nope_head_dim: usize,
    /// `qk_rope_head_dim`: the rotary width, shared by all heads on the key side (64).
    pub qk_rope_head_dim: usize,
    /// `v_head_dim`: the per-head value width (128).
    pub v_head_dim: usize,
    /// `rms_norm_eps` of both RMSNorms (1e-6).
    pub rms_norm_eps: f64,
    /// `rope_theta`: the rotary base (10000).
    pub rope_theta: f64,
    /// `rope_scaling`, when it is YaRN.
    pub yarn: Option<Yarn>,
}

const DEEPSEEK_YARN_V3: Yarn = Yarn {
    factor: 40.0,
    original_max_position_embeddings: 4096,
    beta_fast: 32.0,
    beta_slow: 1.0,
    mscale: 1.0,
    mscale_all_dim: 1.0,
};

impl MlaConfig {
    /// DeepSeek-V3 / R1 (671B): hidden 7168, 128 heads, q LoRA 1536, YaRN ×40 with
    /// `mscale_all_dim` 1, so the softmax scale is 0.13523378.
    pub fn deepseek_v3() -> Self {
        Self {
            hidden_size: 7168,
            num_heads: 128,
            q_lora_rank: Some(1536),
            kv_lora_rank: 512,
            qk_nope_head_dim: 128,
            qk_rope_head_dim: 64,
            v_head_dim: 128,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            yarn: Some(DEEPSEEK_YARN_V3),
        }
    }

    /// DeepSeek-V2 (236B): hidden 5120, 128 heads, q LoRA 1536, YaRN ×40 with mscale 0.707.
    pub fn deepseek_v2() -> Self {
        Self {
            hidden_size: 5120,
            yarn: Some(Yarn {
                mscale: 0.707,
                mscale_all_dim: 0.707,
                ..DEEPSEEK_YARN_V3
            }),
            ..Self::deepseek_v3()
        }
    }

    /// DeepSeek-V2-Lite (16B): hidden 2048, 16 heads and no q LoRA (a plain `q_proj`).
    pub fn deepseek_v2_lite() -> Self {
        Self {
            hidden_size: 2048,
            num_heads: 16,
            q_lora_rank: None,
            ..Self::deepseek_v2()
        }
    }

    /// The same model with `heads` query heads, as one tensor-parallel rank holds them.
    pub fn with_heads(self, heads: usize) -> Self {
        Self {
            num_heads: heads,
            ..self
        }
    }

    /// Reads the attention fields of a model's `config.json`. Other fields are ignored;
    /// `rope_scaling` other than YaRN is rejected, since the reference would not match.
    ///
    /// ```
    /// use ascend_npu::reference::mla::MlaConfig;
    /// let json = r#"{"hidden_size": 2048, "num_attention_heads": 16, "q_lora_rank": null,
    ///   "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    ///   "v_head_dim": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000,
    ///   "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
    ///     "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}}"#;
    /// assert_eq!(MlaConfig::from_config_json(json)?, MlaConfig::deepseek_v2_lite());
    /// # Ok::<(), ascend_npu::reference::mla::MlaError>(())
    /// ```
    pub fn from_config_json(json: &str) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| MlaError::ConfigJson(e.to_string()))?;
        let size = |key: &'static str| -> Result<usize> {
            v.get(key)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    MlaError::ConfigJson(format!("{key} is missing or not a non-negative integer"))
                })
        };
        let number = |obj: &serde_json::Value, key: &'static str, default: Option<f64>| {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => default,
                Some(x) => x.as_f64(),
            }
            .ok_or_else(|| MlaError::ConfigJson(format!("{key} is missing or not a number")))
        };
        let q_lora_rank = match v.get("q_lora_rank") {
            None | Some(serde_json::Value::Null) => None,
            Some(_) => Some(size("q_lora_rank")?),
        };
        let yarn = match v.get("rope_scaling") {
            None | Some(serde_json::Value::Null) => None,
            Some(s) => {
                let kind = s.get("type").or_else(|| s.get("rope_type"));
                if kind.and_then(serde_json::Value::as_str) != Some("yarn") {
                    return Err(MlaError::ConfigJson(format!(
                        "rope_scaling type {kind:?} is not supported; expected \"yarn\""
                    )));
                }
                let original = number(s, "original_max_position_embeddings", None)?;
                Some(Yarn {
                    factor: number(s, "factor", None)?,
                    original_max_position_embeddings: original as usize,
                    beta_fast: number(s, "beta_fast", Some(32.0))?,
                    beta_slow: number(s, "beta_slow", Some(1.0))?,
                    mscale: number(s, "mscale", Some(1.0))?,
                    mscale_all_dim: number(s, "mscale_all_dim", Some(0.0))?,
                })
            }
        };
        let cfg = Self {
            hidden_size: size("hidden_size")?,
            num_heads: size("num_attention_heads")?,
            q_lora_rank,
            kv_lora_rank: size("kv_lora_rank")?,
            qk_nope_head_dim: size("qk_nope_head_dim")?,
            qk_rope_head_dim: size("qk_rope_head_dim")?,
            v_head_dim: size("v_head_dim")?,
            rms_norm_eps: number(&v, "rms_norm_eps", Some(1e-6))?,
            rope_theta: number(&v, "rope_theta", Some(10000.0))?,
            yarn,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The query/key head width, `qk_nope_head_dim + qk_rope_head_dim` (192).
    pub fn qk_head_dim(&self) -> usize {
        self.qk_nope_head_dim + self.qk_rope_head_dim
    }

    /// The width of one latent-cache row, `kv_lora_rank + qk_rope_head_dim` (576).
    pub fn cache_row(&self) -> usize {
        self.kv_lora_rank + self.qk_rope_head_dim
    }

    /// The softmax scale of both forms: `qk_head_dim^-½ · yarn_mscale(factor,
    /// mscale_all_dim)²` with YaRN (0.13523378 for V3), `qk_head_dim^-½` without (0.0721688).
    /// Always pass it explicitly to kernels: FlashMLA's default `1/√576` is wrong for MLA.
    pub fn softmax_scale(&self) -> f64 {
        let base = (self.qk_head_dim() as f64).powf(-0.5);
        match self.yarn {
            Some(y) if y.mscale_all_dim != 0.0 => {
                let m = yarn_mscale(y.factor, y.mscale_all_dim);
                base * m * m
            }
            _ => base,
        }
    }

    /// Checks every field; the reference functions call it.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &'static str, value: usize| {
            if value == 0 {
                Err(MlaError::Config {
                    field,
                    value: "0".into(),
                    expected: "at least 1",
                })
            } else {
                Ok(())
            }
        };
        positive("hidden_size", self.hidden_size)?;
        positive("num_attention_heads", self.num_heads)?;
        positive("kv_lora_rank", self.kv_lora_rank)?;
        positive("qk_nope_head_dim", self.qk_nope_head_dim)?;
        positive("v_head_dim", self.v_head_dim)?;
        if let Some(r) = self.q_lora_rank {
            positive("q_lora_rank", r)?;
        }
        if self.qk_rope_head_dim == 0 || self.qk_rope_head_dim % 2 != 0 {
            return Err(MlaError::Config {
                field: "qk_rope_head_dim",
                value: self.qk_rope_head_dim.to_string(),
                expected: "a positive even number (RoPE rotates pairs)",
            });
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(MlaError::Config {
                field: "rms_norm_eps",
                value: self.rms_norm_eps.to_string(),
                expected: "a finite positive number",
            });
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(MlaError::Config {
                field: "rope_theta",
                value: self.rope_theta.to_string(),
                expected: "a finite number above 1",
            });
        }
        if let Some(y) = self.yarn {
            let ok = y.factor.is_finite()
                && y.factor >= 1.0
                && y.beta_fast.is_finite()
                && y.beta_slow.is_finite()
                && y.beta_fast > 0.0
                && y.beta_slow > 0.0
                && y.mscale.is_finite()
                && y.mscale_all_dim.is_finite()
                && y.original_max_position_embeddings > 0;
            if !ok {
                return Err(MlaError::Config {
                    field: "rope_scaling",
                    value: format!("{y:?}"),
                    expected: "factor >= 1, positive betas and original length, finite mscales",
                });
            }
        }
        // Every size sum and product the reference forms must fit.
        let fits = || -> Option<()> {
            let heads = self.num_heads;
            let heads_qk =
                heads.checked_mul(self.qk_nope_head_dim.checked_add(self.qk_rope_head_dim)?)?;
            let heads_kv =
                heads.checked_mul(self.qk_nope_head_dim.checked_add(self.v_head_dim)?)?;
            self.kv_lora_rank.checked_add(self.qk_rope_head_dim)?;
            heads_qk.checked_mul(self.hidden_size.max(self.kv_lora_rank))?;
            heads_kv.checked_mul(self.kv_lora_rank).map(drop)
        };
        if fits().is_none() {
            return Err(MlaError::Overflow {
                what: "the projection weights",
            });
        }
        Ok(())
    }
}
