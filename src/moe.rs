//! The one MoE configuration: what the router computes, used by the device operators
//! ([`crate::ops::moe`]) and the f64 reference ([`crate::reference::moe`]) alike, so a layer
//! and its oracle can never be configured apart. Field names are those of DeepSeek's
//! `config.json`.
//!
//! ```
//! use ascend_npu::moe::{MoeConfig, Scoring, TopKMethod};
//! // Mixtral-style routing: softmax over 8 experts, the best 2, no groups.
//! let plain = MoeConfig::plain_top_k(8, 2);
//! assert_eq!((plain.scoring, plain.method), (Scoring::Softmax, TopKMethod::Greedy));
//! assert!(plain.validate().is_ok());
//! assert_eq!(MoeConfig::deepseek_v2_lite().n_routed_experts, 64);
//! ```

use crate::reference::moe::{MoeError, Result};

/// How router logits become scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scoring {
    /// `s = 1 / (1 + e^-logit)`, per expert (DeepSeek-V3).
    #[default]
    Sigmoid,
    /// `s = softmax(logits)` over the token's experts (DeepSeek-V2, V2-Lite).
    Softmax,
}

/// How experts are selected from the (biased) scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TopKMethod {
    /// DeepSeek-V3 `noaux_tc`: a group's score is the sum of its two largest biased
    /// scores; the best `topk_group` groups are kept (the others masked with −∞, never 0);
    /// the `top_k` best experts of the kept groups are chosen.
    #[default]
    NoauxTc,
    /// DeepSeek-V2 `group_limited_greedy`: as [`NoauxTc`](Self::NoauxTc) but a group's
    /// score is its *largest* biased score.
    GroupLimitedGreedy,
    /// Plain top-`k` over all experts (V2-Lite's `greedy`); the group fields are ignored
    /// by routing but must still be well formed. The scores still come from
    /// [`MoeConfig::scoring`], usually [`Scoring::Softmax`].
    Greedy,
}

/// A MoE router's configuration. [`Default`] is DeepSeek-V3 (671B).
///
/// Every combination of [`Scoring`] and [`TopKMethod`] is accepted, as Ascend's
/// `aclnnMoeGatingTopK` accepts every `normType` × `groupSelectMode`; the constructors give
/// the combinations the DeepSeek models use. Call [`validate`](Self::validate) (the
/// reference functions do) before relying on a hand-built value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoeConfig {
    /// Routed experts `E` (the shared experts are not counted).
    pub n_routed_experts: usize,
    /// Groups the experts are split into, in index order: group `g` holds experts
    /// `g·E/n_group .. (g+1)·E/n_group`.
    pub n_group: usize,
    /// Groups kept per token.
    pub topk_group: usize,
    /// Experts chosen per token, `K`.
    pub top_k: usize,
    /// Multiplies every routing weight (after normalisation, when that is on).
    pub routed_scaling_factor: f64,
    /// Logits to scores.
    pub scoring: Scoring,
    /// Expert selection.
    pub method: TopKMethod,
    /// Divide the chosen (unbiased) scores by their sum before scaling, so the weights of a
    /// token sum to `routed_scaling_factor`.
    pub norm_topk_prob: bool,
}

impl Default for MoeConfig {
    fn default() -> Self {
        Self::deepseek_v3()
    }
}

impl MoeConfig {
    /// DeepSeek-V3 / R1 (671B, `config_671B.json`): 256 experts in 8 groups, 4 groups kept,
    /// 8 experts per token, sigmoid, `noaux_tc`, normalised weights × 2.5.
    pub fn deepseek_v3() -> Self {
        Self {
            n_routed_experts: 256,
            n_group: 8,
            topk_group: 4,
            top_k: 8,
            routed_scaling_factor: 2.5,
            scoring: Scoring::Sigmoid,
            method: TopKMethod::NoauxTc,
            norm_topk_prob: true,
        }
    }

    /// DeepSeek-V2 (236B, `config_236B.json`): 160 experts in 8 groups, 3 groups kept,
    /// 6 experts per token, softmax, `group_limited_greedy`, no renormalisation, × 16.
    pub fn deepseek_v2() -> Self {
        Self {
            n_routed_experts: 160,
            n_group: 8,
            topk_group: 3,
            top_k: 6,
            routed_scaling_factor: 16.0,
            scoring: Scoring::Softmax,
            method: TopKMethod::GroupLimitedGreedy,
            norm_topk_prob: false,
        }
    }

    /// Plain top-`k` routing over `experts` experts without groups: softmax scores, the `k`
    /// best experts per token, weights the chosen softmax scores (no renormalisation, scale
    /// 1), as V2-Lite's `greedy` method and Mixtral-style routers compute it.
    pub fn plain_top_k(experts: usize, k: usize) -> Self {
        Self {
            n_routed_experts: experts,
            n_group: 1,
            topk_group: 1,
            top_k: k,
            routed_scaling_factor: 1.0,
            scoring: Scoring::Softmax,
            method: TopKMethod::Greedy,
            norm_topk_prob: false,
        }
    }

    /// DeepSeek-V2-Lite (16B, `config_16B.json`): 64 experts, no grouping, 6 per token,
    /// softmax, plain top-k, no renormalisation, × 1.0.
    pub fn deepseek_v2_lite() -> Self {
        Self::plain_top_k(64, 6)
    }

    /// Experts per group, `E / n_group` (meaningful once [`validate`](Self::validate)
    /// passed; 0 when `n_group` is 0).
    pub fn experts_per_group(&self) -> usize {
        self.n_routed_experts.checked_div(self.n_group).unwrap_or(0)
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// The first rule violated, as a [`MoeError`] naming the values involved:
    /// * `1 ≤ n_routed_experts ≤ i32::MAX` (ids are int32), `n_group ≥ 1`,
    ///   `n_routed_experts % n_group == 0`;
    /// * `1 ≤ topk_group ≤ n_group`;
    /// * `1 ≤ top_k ≤ n_routed_experts`, and for the grouped methods
    ///   `top_k ≤ topk_group · E/n_group`, so the choice never reaches a masked expert;
    /// * for [`TopKMethod::NoauxTc`], at least 2 experts per group;
    /// * `routed_scaling_factor` finite and `> 0`.
    ///
    /// The group-size rule: DeepSeek's `noaux_tc` takes `topk(2)` inside each group, which
    /// PyTorch rejects for a one-expert group, so the reference requires `E/n_group ≥ 2`.
    /// Ascend's `aclnnMoeGatingTopK` is stricter (`E/groupCount > 2`); that is a limit of
    /// the device op, which its own wrapper must check, not a property of the semantics.
    /// [`TopKMethod::GroupLimitedGreedy`] (group max) is fine with one expert per group.
    ///
    /// ```
    /// use ascend_npu::moe::MoeConfig;
    /// use ascend_npu::reference::moe::MoeError;
    /// assert!(MoeConfig::deepseek_v3().validate().is_ok());
    /// let bad = MoeConfig { n_group: 7, ..MoeConfig::deepseek_v3() };
    /// assert_eq!(
    ///     bad.validate(),
    ///     Err(MoeError::ExpertsNotDivisible { experts: 256, groups: 7 })
    /// );
    /// ```
    pub fn validate(&self) -> Result<()> {
        let experts = self.n_routed_experts;
        if experts == 0 {
            return Err(MoeError::NoExperts);
        }
        if i32::try_from(experts).is_err() {
            return Err(MoeError::TooManyExperts { experts });
        }
        if self.n_group == 0 {
            return Err(MoeError::NoGroups);
        }
        if experts % self.n_group != 0 {
            return Err(MoeError::ExpertsNotDivisible {
                experts,
                groups: self.n_group,
            });
        }
        if self.topk_group == 0 || self.topk_group > self.n_group {
            return Err(MoeError::TopkGroupOutOfRange {
                topk_group: self.topk_group,
                n_group: self.n_group,
            });
        }
        if self.top_k == 0 {
            return Err(MoeError::TopKZero);
        }
        if self.top_k > experts {
            return Err(MoeError::TopKExceedsExperts {
                top_k: self.top_k,
                experts,
            });
        }
        let per_group = self.experts_per_group();
        if self.method != TopKMethod::Greedy {
            // topk_group ≤ n_group, so the product is ≤ E and cannot overflow.
            let available = self.topk_group * per_group;
            if self.top_k > available {
                return Err(MoeError::TopKExceedsKeptExperts {
                    top_k: self.top_k,
                    topk_group: self.topk_group,
                    per_group,
                    available,
                });
            }
        }
        if self.method == TopKMethod::NoauxTc && per_group < 2 {
            return Err(MoeError::GroupTooSmallForTop2 { per_group });
        }
        let scale = self.routed_scaling_factor;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(MoeError::InvalidScalingFactor { value: scale });
        }
        Ok(())
    }
}
