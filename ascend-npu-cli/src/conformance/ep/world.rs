//! The tokens every rank of an expert-parallel case dispatches, on the host, and their f64
//! forms for `reference::ep`.

use ascend_npu::ops::ep::{EpConfig, EpShape, Payload, Tokens};
use ascend_npu::reference::ep as reference;
use ascend_npu::{DeviceBuffer, Stream};
use half::bf16;

use crate::check;
use crate::preset::EpCase;
use crate::rng::CaseRng;

/// One rank's tokens: bf16 `x [T, H]`, distinct expert ids per token with some `-1` (every
/// fifth token goes nowhere), positive f32 weights.
pub struct HostTokens {
    pub x: Vec<bf16>,
    pub ids: Vec<i32>,
    pub weights: Vec<f32>,
}

/// Every rank's tokens and their f64 forms.
pub struct World {
    pub shape: EpShape,
    pub ranks: Vec<HostTokens>,
    x: Vec<Vec<f64>>,
    ids: Vec<Vec<i64>>,
    w: Vec<Vec<f64>>,
}

/// The shape of `case` on `ranks` ranks.
pub fn shape(case: &EpCase, ranks: usize) -> EpShape {
    EpShape {
        config: EpConfig {
            num_ranks: ranks,
            num_experts: case.local_experts * ranks,
        },
        hidden: case.hidden,
        top_k: case.top_k,
    }
}

impl World {
    /// Rank `r` has `tokens + r` tokens, except rank 1, which has none (a rank with nothing to
    /// send still takes part in every exchange).
    pub fn new(case: &EpCase, ranks: usize, rng: &mut CaseRng) -> World {
        let shape = shape(case, ranks);
        let experts = shape.config.num_experts;
        let ranks: Vec<HostTokens> = (0..ranks)
            .map(|r| {
                let t = if r == 1 { 0 } else { case.tokens + r };
                let x = check::round_to(&rng.vec(t * case.hidden, 3.0));
                let mut ids = Vec::with_capacity(t * case.top_k);
                for tok in 0..t {
                    let mut chosen: Vec<i32> = Vec::new();
                    while chosen.len() < case.top_k {
                        // Uniform over the experts, or -1 (about one pick in eight).
                        let draw = rng.uniform(0.5) + 0.5;
                        let pick = if tok % 5 == 4 || draw < 0.125 {
                            -1
                        } else {
                            (((draw - 0.125) / 0.875 * experts as f64) as i32)
                                .min(experts as i32 - 1)
                        };
                        if pick < 0 || !chosen.contains(&pick) {
                            chosen.push(pick);
                        }
                    }
                    ids.extend(chosen);
                }
                let weights = check::round_to(
                    &(0..t * case.top_k)
                        .map(|_| rng.uniform(0.5) + 0.6)
                        .collect::<Vec<_>>(),
                );
                HostTokens { x, ids, weights }
            })
            .collect();
        World {
            x: ranks.iter().map(|t| check::widen(&t.x)).collect(),
            ids: ranks
                .iter()
                .map(|t| t.ids.iter().map(|&e| i64::from(e)).collect())
                .collect(),
            w: ranks
                .iter()
                .map(|t| t.weights.iter().map(|&w| f64::from(w)).collect())
                .collect(),
            shape,
            ranks,
        }
    }

    /// The reference's view of every rank's tokens.
    pub fn inputs(&self) -> Vec<reference::RankTokens<'_>> {
        (0..self.ranks.len())
            .map(|r| reference::RankTokens {
                x: &self.x[r],
                topk_idx: &self.ids[r],
                topk_weights: &self.w[r],
            })
            .collect()
    }

    /// Rank `r`'s expert ids, as the reference takes them.
    pub fn ids(&self, r: usize) -> &[i64] {
        &self.ids[r]
    }

    /// Tokens of each rank.
    pub fn tokens(&self) -> Vec<usize> {
        self.ranks
            .iter()
            .map(|t| t.ids.len() / self.shape.top_k)
            .collect()
    }
}

/// One rank's tokens on its device.
pub struct Uploaded {
    pub x: DeviceBuffer<bf16>,
    pub ids: DeviceBuffer<i32>,
    pub w: DeviceBuffer<f32>,
}

impl Uploaded {
    pub fn new(stream: &Stream, t: &HostTokens) -> ascend_npu::Result<Uploaded> {
        Ok(Uploaded {
            x: stream.upload(&t.x)?,
            ids: stream.upload(&t.ids)?,
            w: stream.upload(&t.weights)?,
        })
    }

    /// The tokens with `x` as their payload.
    pub fn tokens<'a>(&'a self, x: Payload<'a>) -> Tokens<'a> {
        Tokens {
            x,
            topk_idx: &self.ids,
            topk_weights: &self.w,
        }
    }
}
