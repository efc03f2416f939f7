//! The whole MoE layer on one device, composed from the reference steps.

use super::error::{MoeError, Result, check_len, element_count, filled};
use super::experts::{ExpertWeights, expert_ffn, grouped_expert_ffn};
use super::permute::{Permutation, PermuteOptions, gather, permute};
use super::routing::{Routing, route_f64};
use super::unpermute::unpermute_f64;
use crate::moe::MoeConfig;

/// The weights of one MoE layer, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct MoeLayerWeights<'a> {
    /// `[E, H]` router weight: `logits = x · gate_weightᵀ`.
    pub gate_weight: &'a [f64],
    /// `[E]` `e_score_correction_bias` (selection only), if the model has one.
    pub bias: Option<&'a [f64]>,
    /// The `E` routed experts, in expert order; all share `H`.
    pub experts: &'a [ExpertWeights],
    /// The shared expert(s), run on every token with weight 1, if any.
    pub shared: Option<&'a ExpertWeights>,
}

/// Everything [`moe_layer_reference`] computed, so a device run can be compared step by
/// step, not just at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct MoeLayerOutput {
    /// `[T, H]` the layer's output.
    pub out: Vec<f64>,
    /// `[T, E]` router logits.
    pub logits: Vec<f64>,
    /// The routing decision.
    pub routing: Routing,
    /// The dropless, row-major expanded layout.
    pub permutation: Permutation,
    /// `[rows, H]` the routed experts' outputs in expanded order (before weighting).
    pub expert_out: Vec<f64>,
}

/// The `f64` oracle of a DeepSeek MoE layer on one device, for `x` of shape `[T, H]`
/// (row-major, `T = x.len() / H`, `H` taken from the experts):
///
/// 1. `logits = x · gate_weightᵀ` (in `f64`; DeepSeek computes it in BF16 or FP32, which
///    is why device comparisons must respect [`Routing::margins`]);
/// 2. [`route_f64`] with the layer's bias;
/// 3. [`permute`] (dropless, all experts, row-major) and [`gather`];
/// 4. [`grouped_expert_ffn`];
/// 5. [`unpermute_f64`] with the routing weights;
/// 6. `+ shared(x)` per token.
///
/// No tokens are dropped (DeepSeek-V3 drops none).
///
/// ```
/// use ascend_npu::reference::moe::{
///     ExpertWeights, MoeConfig, MoeLayerWeights, expert_ffn, moe_layer_reference,
/// };
/// // 4 experts in 2 groups, keep 1 group, 2 experts per token; H = 2, I = 3.
/// let cfg = MoeConfig { n_routed_experts: 4, n_group: 2, topk_group: 1, top_k: 2,
///                       ..MoeConfig::deepseek_v3() };
/// let expert = |s: f64| {
///     ExpertWeights::new(2, 3, vec![s; 6], vec![0.5; 6], vec![0.25 * s; 6])
/// };
/// let experts = (1..=4).map(|e| expert(f64::from(e))).collect::<Result<Vec<_>, _>>()?;
/// let gate_weight = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0];
/// let weights = MoeLayerWeights { gate_weight: &gate_weight, bias: None,
///                                 experts: &experts, shared: None };
/// let x = [0.5, 2.0];
/// let layer = moe_layer_reference(&cfg, &weights, &x)?;
/// // logits = [0.5, 2, -0.5, -2]: group {0,1} wins, experts 1 then 0.
/// assert_eq!(layer.routing.ids(0), &[1, 0]);
/// let (w, y0, y1) = (layer.routing.weights(0), expert_ffn(&experts[0], &x)?,
///                    expert_ffn(&experts[1], &x)?);
/// for h in 0..2 {
///     assert!((layer.out[h] - (w[0] * y1[h] + w[1] * y0[h])).abs() < 1e-12);
/// }
/// # Ok::<(), ascend_npu::reference::moe::MoeError>(())
/// ```
///
/// # Errors
/// An invalid config; `experts.len() != E`; experts or the shared expert disagreeing on
/// `H`; `gate_weight` not `[E, H]`; `x.len()` not a multiple of `H`; and every error of
/// the steps, notably non-finite logits (from non-finite `x` or weights) or bias.
pub fn moe_layer_reference(
    config: &MoeConfig,
    weights: &MoeLayerWeights<'_>,
    x: &[f64],
) -> Result<MoeLayerOutput> {
    config.validate()?;
    let e = config.n_routed_experts;
    if weights.experts.len() != e {
        return Err(MoeError::ExpertCount {
            actual: weights.experts.len(),
            expected: e,
        });
    }
    // `validate` guarantees E ≥ 1, so expert 0 exists; its H is the layer's (≥ 1).
    let h = weights.experts.first().map_or(1, ExpertWeights::hidden);
    if let Some(shared) = weights.shared.filter(|s| s.hidden() != h) {
        return Err(MoeError::HiddenMismatch {
            what: "the shared expert".to_string(),
            actual: shared.hidden(),
            expected: h,
        });
    }
    check_len(
        "gate_weight",
        weights.gate_weight.len(),
        &[("E", e), ("H", h)],
    )?;
    if x.len() % h != 0 {
        return Err(MoeError::NotWholeRows {
            what: "x",
            len: x.len(),
            row_len: h,
            row: "hidden",
        });
    }
    let t_count = x.len() / h;

    let mut logits = filled(
        "logits",
        element_count("logits", &[("T", t_count), ("E", e)])?,
        0.0,
    )?;
    for t in 0..t_count {
        let xt = &x[t * h..(t + 1) * h];
        for (j, logit) in logits[t * e..(t + 1) * e].iter_mut().enumerate() {
            let wj = &weights.gate_weight[j * h..(j + 1) * h];
            *logit = xt.iter().zip(wj).map(|(a, b)| a * b).sum();
        }
    }
    let routing = route_f64(config, &logits, weights.bias)?;
    let permutation = permute(
        &routing.topk_ids,
        config.top_k,
        e,
        &PermuteOptions::default(),
    )?;
    let expanded_x = gather(x, h, &permutation)?;
    let expert_out = grouped_expert_ffn(&expanded_x, &permutation, weights.experts)?;
    let mut out = unpermute_f64(&expert_out, h, &permutation, &routing.topk_weights)?;
    if let Some(shared) = weights.shared {
        let shared_out = expert_ffn(shared, x)?;
        for (o, s) in out.iter_mut().zip(&shared_out) {
            *o += s;
        }
    }
    Ok(MoeLayerOutput {
        out,
        logits,
        routing,
        permutation,
        expert_out,
    })
}
