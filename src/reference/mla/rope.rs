//! DeepSeek's rotary embedding: interleaved pairs `(2i, 2i+1)` (GPT-J style, not NeoX's
//! half split), with YaRN's frequency ramp.

use super::config::{MlaConfig, yarn_mscale};

/// The rotary frequencies and amplitude of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// `inv_freq[i]`, radians per position, for pair `i` of `qk_rope_head_dim / 2`.
    pub inv_freq: Vec<f64>,
    /// Multiplies cos and sin: `yarn_mscale(factor, mscale) / yarn_mscale(factor,
    /// mscale_all_dim)`, which is 1 for every DeepSeek configuration.
    pub amplitude: f64,
}

/// YaRN's correction dimension: the pair index at which a frequency completes
/// `rotations` turns over the original context.
fn correction_dim(rotations: f64, dim: usize, base: f64, original: usize) -> f64 {
    dim as f64 * (original as f64 / (rotations * 2.0 * std::f64::consts::PI)).ln()
        / (2.0 * base.ln())
}

impl Rope {
    /// The frequencies of `cfg`: `θ^(-2i/d)` for pair `i`, and with YaRN
    /// `freq·(1−r_i) + (freq/factor)·r_i` with the ramp `r_i = clamp((i−low)/(high−low), 0, 1)`,
    /// `low = floor(correction_dim(beta_fast))`, `high = ceil(correction_dim(beta_slow))`
    /// (10 and 23 for DeepSeek: pairs up to 10 keep their frequency, pairs from 23 on are
    /// divided by the factor).
    pub fn new(cfg: &MlaConfig) -> Self {
        let d = cfg.qk_rope_head_dim;
        let base = cfg.rope_theta;
        let plain = (0..d / 2).map(|i| base.powf(-((2 * i) as f64) / d as f64));
        match cfg.yarn {
            None => Rope {
                inv_freq: plain.collect(),
                amplitude: 1.0,
            },
            Some(y) => {
                let orig = y.original_max_position_embeddings;
                let low = correction_dim(y.beta_fast, d, base, orig).floor().max(0.0);
                let high = correction_dim(y.beta_slow, d, base, orig)
                    .ceil()
                    .min((d - 1) as f64);
                let high = if high == low { high + 0.001 } else { high };
                let inv_freq = plain
                    .enumerate()
                    .map(|(i, f)| {
                        let r = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                        f * (1.0 - r) + f / y.factor * r
                    })
                    .collect();
                let amplitude =
                    yarn_mscale(y.factor, y.mscale) / yarn_mscale(y.factor, y.mscale_all_dim);
                Rope {
                    inv_freq,
                    amplitude,
                }
            }
        }
    }

    /// Rotates `x` (`qk_rope_head_dim` values) in place for `position`: each pair
    /// `(x[2i], x[2i+1])` is multiplied, as a complex number, by `amplitude·e^{i·pos·f_i}`.
    pub fn apply(&self, x: &mut [f64], position: usize) {
        for (pair, &f) in x.chunks_exact_mut(2).zip(&self.inv_freq) {
            let angle = position as f64 * f;
            let (sin, cos) = angle.sin_cos();
            let (c, s) = (cos * self.amplitude, sin * self.amplitude);
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * c - b * s;
            pair[1] = a * s + b * c;
        }
    }
}
