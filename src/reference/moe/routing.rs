//! Routing: logits to the chosen experts and their weights, per token.

use std::cmp::Ordering;

use super::error::{MoeError, Result, check_len, filled};
use crate::moe::{MoeConfig, Scoring, TopKMethod};

/// The router's decision for `T` tokens, as [`route`] returns it.
///
/// All arrays are row-major. Row `t` of `topk_ids` lists the token's `K` experts in
/// **descending selection score** (the biased score `s + bias`), ties broken by the
/// **lower expert index first**; `topk_weights` is aligned with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    /// Tokens `T`.
    pub num_tokens: usize,
    /// Routed experts `E`.
    pub num_experts: usize,
    /// Experts per token `K`.
    pub top_k: usize,
    /// `[T, K]` chosen expert ids (int32, as the device ops return them).
    pub topk_ids: Vec<i32>,
    /// `[T, K]` routing weights, from the **unbiased** scores: `s / Σs · scale` when
    /// `norm_topk_prob`, else `s · scale`.
    pub topk_weights: Vec<f64>,
    /// `[T, E]` the unbiased scores `s` (sigmoid or softmax of the logits).
    pub scores: Vec<f64>,
    /// `[T]` how far token `t` is from a different selection: the smaller of
    /// (a) the gap between the last kept and the best dropped group score and
    /// (b) the gap between the `K`-th chosen and the best unchosen candidate's biased score
    /// (`+∞` where there is nothing to drop; 0 on an exact tie).
    ///
    /// If another implementation computes every biased score within `ε` of this one, its
    /// selection can differ only where `margin ≤ 4ε` (a top-2 group sum moves by up to
    /// `2ε`). Compare selections elsewhere, and compare index *sets* where it is small.
    pub margins: Vec<f64>,
}

impl Routing {
    /// Token `t`'s expert ids, best first. Empty if `t ≥ T`.
    pub fn ids(&self, t: usize) -> &[i32] {
        row(&self.topk_ids, t, self.top_k)
    }

    /// Token `t`'s weights, aligned with [`ids`](Self::ids). Empty if `t ≥ T`.
    pub fn weights(&self, t: usize) -> &[f64] {
        row(&self.topk_weights, t, self.top_k)
    }

    /// Token `t`'s unbiased scores over all experts. Empty if `t ≥ T`.
    pub fn token_scores(&self, t: usize) -> &[f64] {
        row(&self.scores, t, self.num_experts)
    }
}

/// Row `t` of a row-major array with rows of `width`, or an empty slice.
fn row<T>(data: &[T], t: usize, width: usize) -> &[T] {
    let start = t.saturating_mul(width);
    data.get(start..start.saturating_add(width)).unwrap_or(&[])
}

/// [`route_f64`] on `f32` logits and bias (DeepSeek keeps the bias in FP32). The values are
/// widened exactly, so this is the same function of the same numbers.
///
/// # Errors
/// As [`route_f64`].
pub fn route(config: &MoeConfig, logits: &[f32], bias: Option<&[f32]>) -> Result<Routing> {
    let logits: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
    let bias: Option<Vec<f64>> = bias.map(|b| b.iter().map(|&v| f64::from(v)).collect());
    route_f64(config, &logits, bias.as_deref())
}

/// Routes `T` tokens: `logits` is `[T, E]` row-major (`T = logits.len() / E`), `bias` the
/// optional `[E]` `e_score_correction_bias`. Computed in `f64`, per token:
///
/// 1. `s = sigmoid(logits)` or `softmax(logits)` ([`Scoring`]): the unbiased scores.
/// 2. `s' = s + bias` (bias 0 when absent), used **only to select**.
/// 3. Grouped methods: each group scores `top-2 sum` ([`TopKMethod::NoauxTc`]) or `max`
///    ([`TopKMethod::GroupLimitedGreedy`]) of its `s'`; the best `topk_group` groups are
///    kept. Experts of the other groups are out of the race entirely, which is what
///    masking them with −∞ means (masking with 0, as HF transformers does, would let them
///    beat negative `s'`). [`TopKMethod::Greedy`] keeps every expert.
/// 4. The `K` kept experts with the largest `s'` are chosen, best first.
/// 5. Weights come from the unbiased `s` of the chosen experts: normalised to sum to 1
///    when `norm_topk_prob` (computed in the log domain, so it stays exact even when every
///    chosen sigmoid underflows; DeepSeek's `+1e-20` in the denominator changes the result
///    by less than an ulp unless `Σs < 1e-4`), then multiplied by `routed_scaling_factor`.
///
/// **Ties** (equal group scores, equal `s'`) go to the **lowest index**, for groups and for
/// experts alike; `-0.0` and `+0.0` tie.
///
/// ```
/// use ascend_npu::reference::moe::{MoeConfig, route_f64};
/// // A toy V3-style router: 8 experts in 4 groups, keep 2 groups, choose 2 experts.
/// let cfg = MoeConfig { n_routed_experts: 8, n_group: 4, topk_group: 2, top_k: 2,
///                       ..MoeConfig::deepseek_v3() };
/// let logits = [0.0, 3.0, 0.1, 0.2, 2.0, 2.5, -3.0, 2.8];
/// let r = route_f64(&cfg, &logits, None)?;
/// // Group scores (top-2 sums of sigmoids): {0,1} 1.45, {2,3} 1.08, {4,5} 1.81, {6,7} 0.99.
/// // Expert 7 is the second best expert, but its group is not among the best two.
/// assert_eq!(r.ids(0), &[1, 5]);
/// let sum: f64 = r.weights(0).iter().sum();
/// assert!((sum - 2.5).abs() < 1e-12);
/// # Ok::<(), ascend_npu::reference::moe::MoeError>(())
/// ```
///
/// # Errors
/// * the config fails [`MoeConfig::validate`];
/// * `logits.len()` is not a multiple of `E`, or `bias.len() != E`
///   ([`MoeError::NotWholeRows`], [`MoeError::LengthMismatch`]);
/// * a logit or bias is NaN or ±∞ ([`MoeError::NonFinite`]): selection among NaN is
///   meaningless, and rejecting is safer than a silent convention a device could not match.
pub fn route_f64(config: &MoeConfig, logits: &[f64], bias: Option<&[f64]>) -> Result<Routing> {
    config.validate()?;
    let e = config.n_routed_experts;
    let k = config.top_k;
    if logits.len() % e != 0 {
        return Err(MoeError::NotWholeRows {
            what: "logits",
            len: logits.len(),
            row_len: e,
            row: "n_routed_experts",
        });
    }
    let t_count = logits.len() / e;
    if let Some(b) = bias {
        check_len("bias", b.len(), &[("E", e)])?;
    }
    check_finite("logits", logits)?;
    if let Some(b) = bias {
        check_finite("bias", b)?;
    }

    let out_len = t_count
        .checked_mul(k)
        .ok_or_else(|| MoeError::SizeOverflow {
            what: "topk_ids",
            shape: format!("[T={t_count}, K={k}]"),
        })?;
    let mut routing = Routing {
        num_tokens: t_count,
        num_experts: e,
        top_k: k,
        topk_ids: filled("topk_ids", out_len, 0)?,
        topk_weights: filled("topk_weights", out_len, 0.0)?,
        scores: filled("scores", logits.len(), 0.0)?,
        margins: filled("margins", t_count, f64::INFINITY)?,
    };
    let per_group = config.experts_per_group();
    for t in 0..t_count {
        let row_logits = &logits[t * e..(t + 1) * e];
        let token = route_token(config, per_group, row_logits, bias);
        routing.scores[t * e..(t + 1) * e].copy_from_slice(&token.scores);
        for (j, &id) in token.chosen.iter().enumerate() {
            // `validate` bounds E by i32::MAX, so every id fits.
            routing.topk_ids[t * k + j] = i32::try_from(id).unwrap_or(i32::MAX);
        }
        routing.topk_weights[t * k..(t + 1) * k].copy_from_slice(&token.weights);
        routing.margins[t] = token.margin;
    }
    Ok(routing)
}

/// Rejects NaN and ±∞, naming the first offending element.
fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MoeError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// One token's routing.
struct TokenRouting {
    scores: Vec<f64>,
    chosen: Vec<usize>,
    weights: Vec<f64>,
    margin: f64,
}

/// Orders `(score, index)` pairs best first: higher score, then lower index. Scores are
/// never NaN here (inputs are finite; an overflowing sum is ±∞, still ordered), and
/// `partial_cmp` makes `-0.0` and `+0.0` tie, as numbers should.
fn best_first(a: &(f64, usize), b: &(f64, usize)) -> Ordering {
    b.0.partial_cmp(&a.0)
        .unwrap_or(Ordering::Equal)
        .then(a.1.cmp(&b.1))
}

/// `a − b` for `a` ranked above `b`; an ∞ − ∞ tie (scores that overflowed) counts as 0.
fn gap(a: f64, b: f64) -> f64 {
    let d = a - b;
    if d.is_nan() { 0.0 } else { d }
}

/// `1 / (1 + e^-x)` without overflow for large `|x|`.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let ex = x.exp();
        ex / (1.0 + ex)
    }
}

/// `ln(sigmoid(x)) = −ln(1 + e^-x)`, accurate where `sigmoid` itself underflows.
fn log_sigmoid(x: f64) -> f64 {
    // −softplus(−x), with softplus(y) = max(y, 0) + ln(1 + e^-|y|).
    let y = -x;
    -(y.max(0.0) + (-y.abs()).exp().ln_1p())
}

fn route_token(
    config: &MoeConfig,
    per_group: usize,
    logits: &[f64],
    bias: Option<&[f64]>,
) -> TokenRouting {
    let e = logits.len();
    // Unbiased scores `s` and their logarithms (for an exact normalisation).
    let (scores, log_scores): (Vec<f64>, Vec<f64>) = match config.scoring {
        Scoring::Sigmoid => logits.iter().map(|&l| (sigmoid(l), log_sigmoid(l))).unzip(),
        Scoring::Softmax => {
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logits.iter().map(|&l| (l - max).exp()).sum();
            let log_z = z.ln(); // z ≥ 1: the max term is e^0
            logits
                .iter()
                .map(|&l| ((l - max).exp() / z, l - max - log_z))
                .unzip()
        }
    };
    let selection: Vec<f64> = match bias {
        Some(b) => scores.iter().zip(b).map(|(s, b)| s + b).collect(),
        None => scores.clone(),
    };

    // Which experts may be chosen, and how close the group choice was.
    let mut eligible = vec![true; e];
    let mut group_margin = f64::INFINITY;
    if config.method != TopKMethod::Greedy {
        let mut groups: Vec<(f64, usize)> = selection
            .chunks(per_group)
            .enumerate()
            .map(|(g, members)| (group_score(config.method, members), g))
            .collect();
        groups.sort_by(best_first);
        let kept = config.topk_group;
        if let (Some(last_kept), Some(first_dropped)) = (groups.get(kept - 1), groups.get(kept)) {
            group_margin = gap(last_kept.0, first_dropped.0);
        }
        for &(_, g) in &groups[kept..] {
            eligible[g * per_group..(g + 1) * per_group].fill(false);
        }
    }

    let mut candidates: Vec<(f64, usize)> = (0..e)
        .filter(|&i| eligible[i])
        .map(|i| (selection[i], i))
        .collect();
    candidates.sort_by(best_first);
    let k = config.top_k;
    // `validate` guarantees K ≤ the number of eligible experts.
    let chosen: Vec<usize> = candidates.iter().take(k).map(|&(_, i)| i).collect();
    let expert_margin = match (candidates.get(k - 1), candidates.get(k)) {
        (Some(last), Some(next)) => gap(last.0, next.0),
        _ => f64::INFINITY,
    };

    let scale = config.routed_scaling_factor;
    let weights: Vec<f64> = if config.norm_topk_prob {
        // s_i / Σ s_j = exp(ln s_i − m) / Σ exp(ln s_j − m), with m the largest ln s_j:
        // every term is ≤ 1 and the largest is exactly 1, so nothing over- or underflows
        // to 0/0.
        let m = chosen
            .iter()
            .map(|&i| log_scores[i])
            .fold(f64::NEG_INFINITY, f64::max);
        let terms: Vec<f64> = chosen.iter().map(|&i| (log_scores[i] - m).exp()).collect();
        let sum: f64 = terms.iter().sum();
        terms.iter().map(|w| w / sum * scale).collect()
    } else {
        chosen.iter().map(|&i| scores[i] * scale).collect()
    };

    TokenRouting {
        scores,
        chosen,
        weights,
        margin: group_margin.min(expert_margin),
    }
}

/// A group's score from its members' biased scores.
fn group_score(method: TopKMethod, members: &[f64]) -> f64 {
    match method {
        TopKMethod::NoauxTc => {
            // Sum of the two largest; `validate` guarantees two members.
            let (mut first, mut second) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for &v in members {
                if v > first {
                    second = first;
                    first = v;
                } else if v > second {
                    second = v;
                }
            }
            first + second
        }
        TopKMethod::GroupLimitedGreedy | TopKMethod::Greedy => {
            members.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }
    }
}
