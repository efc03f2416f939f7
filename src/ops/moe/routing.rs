//! Routing with `aclnnMoeGatingTopK`: scores, selection bias, group limits, top-k, weights.

use ascend_sys::CannVersion;
use bytemuck::{Pod, Zeroable};

use crate::aclnn::{AclElement, AclTensor, GatingNorm, GroupSelect, MoeGatingTopK, Plan};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::runtime::{DeviceBuffer, DeviceSlice, KernelArg, Stream};

/// Mirrors `MoeGatherScoresTiling` of `kernels-ascendc/tiling/moe_gather_scores_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
struct GatherScoresTiling {
    rows: u32,
    experts: u32,
    k: u32,
    rows_per_block: u32,
    scale_bits: u32,
    reserved: [u32; 3],
}

/// The most experts `aclnnMoeGatingTopK` routes over.
const MAX_EXPERTS: usize = 2048;

/// How router logits become scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoring {
    /// `sigmoid(logit)` (DeepSeek-V3).
    Sigmoid,
    /// Softmax over the experts (DeepSeek-V2).
    Softmax,
}

/// How a group of experts is scored for group selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupScore {
    /// The group's best score (DeepSeek-V2).
    Max,
    /// The sum of its two best scores (DeepSeek-V3).
    TopTwoSum,
}

/// What to route, with DeepSeek-V3's values from [`Routing::deepseek_v3`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Routing {
    /// Routed experts.
    pub experts: usize,
    /// Expert groups.
    pub groups: usize,
    /// Groups kept per token.
    pub topk_groups: usize,
    /// Experts chosen per token.
    pub top_k: usize,
    /// Score function.
    pub scoring: Scoring,
    /// Group score.
    pub group_score: GroupScore,
    /// Divide each token's chosen scores by their sum before scaling (DeepSeek-V3). Without it
    /// (DeepSeek-V2's `group_limited_greedy`, plain softmax top-k) a weight is the chosen score
    /// times `scale`.
    pub normalize: bool,
    /// Multiplier of the weights.
    pub scale: f64,
}

impl Routing {
    /// 256 experts in 8 groups, 4 groups and 8 experts per token, sigmoid, top-2 group sums,
    /// weights normalised then scaled by 2.5.
    pub fn deepseek_v3() -> Self {
        Routing {
            experts: 256,
            groups: 8,
            topk_groups: 4,
            top_k: 8,
            scoring: Scoring::Sigmoid,
            group_score: GroupScore::TopTwoSum,
            normalize: true,
            scale: 2.5,
        }
    }

    /// 160 experts in 8 groups, 3 groups and 6 experts per token, softmax, group max, no
    /// renormalisation, scale 16 (DeepSeek-V2's `group_limited_greedy`).
    pub fn deepseek_v2() -> Self {
        Routing {
            experts: 160,
            groups: 8,
            topk_groups: 3,
            top_k: 6,
            scoring: Scoring::Softmax,
            group_score: GroupScore::Max,
            normalize: false,
            scale: 16.0,
        }
    }

    /// Checks the combination, as the operator would (the rules `moe-gating-topk.*` of
    /// docs/HARDWARE_RULES.md), and the scale, with [`Error::InvalidArgument`]: these checks
    /// run before anything reaches the device, so a bad configuration never depends on the
    /// backend's own validation.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String, expected: &str| Err(Error::invalid(what, expected));
        if !(1..=MAX_EXPERTS).contains(&self.experts) {
            return bad(
                format!("{} experts", self.experts),
                "1..=2048 experts (aclnnMoeGatingTopK)",
            );
        }
        if self.groups == 0 || self.experts % self.groups != 0 {
            return bad(
                format!("{} experts in {} groups", self.experts, self.groups),
                "experts divisible by groups",
            );
        }
        if self.experts / self.groups <= 2 {
            return bad(
                format!("{} experts per group", self.experts / self.groups),
                "more than 2 experts per group (aclnnMoeGatingTopK)",
            );
        }
        if self.topk_groups == 0 || self.topk_groups > self.groups {
            return bad(
                format!("topk_groups {} of {} groups", self.topk_groups, self.groups),
                "1..=groups",
            );
        }
        let reachable = self.topk_groups * (self.experts / self.groups);
        if self.top_k == 0 || self.top_k > reachable {
            return bad(
                format!(
                    "top_k {} with {reachable} experts in the kept groups",
                    self.top_k
                ),
                "1..=topk_groups·experts/groups",
            );
        }
        if !(self.scale.is_finite() && self.scale >= 0.0) {
            return bad(
                format!("scale {}", self.scale),
                "a finite, non-negative scale",
            );
        }
        Ok(())
    }
}

/// Whether CANN `version`'s aclnnMoeGatingTopK computes `routing` exactly: 8.1.RC1's kernel
/// always computes sigmoid scores, top-2-sum group scores and renormalised weights (rule
/// moe-gating-topk.cann-8.1-kernel), so any other method would silently route differently.
fn check_release(routing: &Routing, version: CannVersion) -> Result<()> {
    let v3_method = routing.scoring == Scoring::Sigmoid
        && routing.group_score == GroupScore::TopTwoSum
        && routing.normalize;
    if version < CannVersion::V8_2_RC1 && !v3_method {
        return Err(Error::unsupported(
            format!(
                "routing with {:?} scores, {:?} group scores and normalize = {} under CANN {version}",
                routing.scoring, routing.group_score, routing.normalize
            ),
            "CANN 8.1's aclnnMoeGatingTopK computes only sigmoid scores, top-2-sum groups and \
             renormalised weights (DeepSeek-V3); other methods need CANN 8.2 or newer",
        ));
    }
    Ok(())
}

/// Routes `tokens` tokens: `logits` is `[tokens, experts]`, `bias` (selection only) `[experts]`.
/// Returns the weights `[tokens, top_k]` (logit type; normalised if asked, then scaled) and the
/// expert ids `[tokens, top_k]`, best first.
///
/// How each method is computed (`aclnnMoeGatingTopK` renormalises its weights for sigmoid
/// scores only, cann-api-facts errata 2):
/// - sigmoid, normalised (DeepSeek-V3): the operator's weights;
/// - softmax, not normalised (DeepSeek-V2): the operator's weights;
/// - sigmoid, not normalised: gathered from the operator's fp32 scores (f32 logits only);
/// - softmax, normalised: [`Error::Unsupported`] (the operator cannot renormalise it).
///
/// Under CANN 8.1.RC1 only the first (DeepSeek-V3's) is computed exactly; the others are
/// [`Error::Unsupported`] naming the release.
///
/// # Non-finite logits
///
/// The logits are device data and are not inspected (that would cost a pass and a
/// synchronisation per call). NaN or infinite logits are outside the contract: the call still
/// succeeds and every token still gets `top_k` distinct expert ids in `0..experts` (the
/// operator's top-k is a selection of indices), so dispatch stays in bounds, but which experts
/// are chosen and the weights are unspecified (NaN weights propagate into the layer's output).
/// The f64 reference ([`crate::reference::moe::route`]) rejects them; check logits there, or
/// keep the router finite, when this matters.
pub fn route<T: AclElement + bytemuck::Zeroable>(
    stream: &Stream,
    kernels: &Kernels,
    routing: &Routing,
    logits: &impl DeviceSlice<T>,
    bias: Option<&impl DeviceSlice<T>>,
    tokens: usize,
) -> Result<(DeviceBuffer<T>, DeviceBuffer<i32>)> {
    routing.validate()?;
    check_release(routing, stream.device().cann_version()?)?;
    let gather = match (routing.scoring, routing.normalize) {
        (Scoring::Sigmoid, true) | (Scoring::Softmax, false) => false,
        (Scoring::Sigmoid, false) => true,
        (Scoring::Softmax, true) => {
            return Err(Error::unsupported(
                "softmax routing with renormalised weights",
                "aclnnMoeGatingTopK renormalises only sigmoid scores (normType 1) and requires \
                 renorm = 0; use Scoring::Sigmoid or normalize = false",
            ));
        }
    };
    if gather && T::DTYPE != ascend_sys::ACL_FLOAT {
        return Err(Error::invalid(
            "sigmoid routing without normalisation on non-f32 logits",
            "f32 logits (the unnormalised weights are gathered from fp32 scores)",
        ));
    }
    let k = routing.top_k;
    let e = routing.experts;
    let pairs = crate::error::elements("routing weights", &[tokens, k])?;
    let all_scores = crate::error::elements("router logits", &[tokens, e])?;
    if logits.len() != all_scores {
        return Err(Error::invalid(
            format!("logits of {} elements for {tokens} tokens", logits.len()),
            format!("[{tokens}, {e}]"),
        ));
    }
    if let Some(b) = bias {
        if b.len() != e {
            return Err(Error::invalid(
                format!("a bias of {} elements", b.len()),
                format!("[{e}] (one per expert)"),
            ));
        }
    }
    let mut weights = stream.alloc_pooled_zeroed::<T>(pairs)?;
    // outOut is required on every call (rule moe-gating-topk.out-required); it is written
    // (outFlag) only when the weights are gathered from it.
    let mut scores = stream.alloc_pooled_zeroed::<f32>(all_scores)?;
    let mut ids = stream.alloc_pooled_zeroed::<i32>(pairs)?;
    if tokens == 0 {
        return Ok((weights, ids));
    }
    let x = AclTensor::new(logits, &[tokens, routing.experts])?;
    let b = bias
        .map(|b| AclTensor::new(b, &[routing.experts]))
        .transpose()?;
    let y = AclTensor::new_mut(&mut weights, &[tokens, k])?;
    let idx = AclTensor::new_mut(&mut ids, &[tokens, k])?;
    let all = AclTensor::new_mut(&mut scores, &[tokens, e])?;
    let plan = Plan::new::<MoeGatingTopK>(stream, &[&x, &b, &y, &idx, &all], |f, ws, exec| {
        // SAFETY: live tensor handles (NULL for an absent bias), out-pointers from Plan::new.
        unsafe {
            f(
                x.as_ptr(),
                b.as_ref().map_or(std::ptr::null(), AclTensor::as_ptr),
                k as i64,
                routing.topk_groups as i64,
                routing.groups as i64,
                match routing.group_score {
                    GroupScore::Max => GroupSelect::Max,
                    GroupScore::TopTwoSum => GroupSelect::TopTwoSum,
                }
                .value(),
                // renorm: 0 is the only documented value.
                0,
                match routing.scoring {
                    Scoring::Softmax => GatingNorm::Softmax,
                    Scoring::Sigmoid => GatingNorm::Sigmoid,
                }
                .value(),
                gather,
                routing.scale,
                // HF adds 1e-20 to the denominator; the weights' sum is never near it.
                1e-20,
                y.as_ptr(),
                idx.as_ptr(),
                all.as_ptr(),
                ws,
                exec,
            )
        }
    })?;
    plan.launch()?;
    drop((x, b, y, idx, all));
    if gather {
        let tiling = GatherScoresTiling {
            rows: tokens as u32,
            experts: e as u32,
            k: k as u32,
            rows_per_block: tokens.div_ceil(kernels.inner.vector_cores as usize) as u32,
            scale_bits: (routing.scale as f32).to_bits(),
            reserved: [0; 3],
        };
        let blocks = tokens.div_ceil(tiling.rows_per_block as usize) as u32;
        let tiling = kernels
            .inner
            .tilings
            .arg(bytemuck::bytes_of(&tiling), stream)?;
        let args = [
            KernelArg::buffer(&scores),
            KernelArg::buffer(&ids),
            KernelArg::buffer_mut(&mut weights),
            tiling,
        ];
        stream.launch_trusted(&kernels.inner.gather_scores, blocks, &args)?;
    }
    Ok((weights, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cann_8_1_routes_only_the_deepseek_v3_method() {
        let v2 = Routing::deepseek_v2();
        let v3 = Routing::deepseek_v3();
        let unnormalised_v3 = Routing {
            normalize: false,
            ..v3
        };
        let group_max_v3 = Routing {
            group_score: GroupScore::Max,
            ..v3
        };
        for version in [CannVersion::V8_1_RC1] {
            assert!(check_release(&v3, version).is_ok());
            for r in [v2, unnormalised_v3, group_max_v3] {
                match check_release(&r, version) {
                    Err(Error::Unsupported { what, reason }) => {
                        assert!(what.contains("8.1.RC1"), "{what}");
                        assert!(reason.contains("8.2"), "{reason}");
                    }
                    other => panic!("{r:?} under {version}: {other:?}"),
                }
            }
        }
        for version in [
            CannVersion::V8_2_RC1,
            CannVersion::V8_3_RC1,
            CannVersion::V8_5_0,
            CannVersion::V9_0_0,
        ] {
            for r in [v2, v3, unnormalised_v3, group_max_v3] {
                assert!(check_release(&r, version).is_ok(), "{r:?} under {version}");
            }
        }
    }
}
