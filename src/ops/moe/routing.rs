//! Routing with `aclnnMoeGatingTopK`: scores, selection bias, group limits, top-k, weights.

use ascend_sys::CannVersion;
use bytemuck::{Pod, Zeroable};

use crate::moe::{MoeConfig, Scoring, TopKMethod};

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

/// How `aclnnMoeGatingTopK` is asked to compute a [`MoeConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GatingAttrs {
    /// `groupCount`: 1 for plain top-k (every expert in one group).
    groups: usize,
    /// `kGroup`.
    kept_groups: usize,
    group_select: GroupSelect,
    norm: GatingNorm,
}

impl GatingAttrs {
    fn of(config: &MoeConfig) -> Self {
        let (groups, kept_groups) = match config.method {
            TopKMethod::Greedy => (1, 1),
            _ => (config.n_group, config.topk_group),
        };
        GatingAttrs {
            groups,
            kept_groups,
            group_select: match config.method {
                TopKMethod::NoauxTc => GroupSelect::TopTwoSum,
                TopKMethod::GroupLimitedGreedy | TopKMethod::Greedy => GroupSelect::Max,
            },
            norm: match config.scoring {
                Scoring::Softmax => GatingNorm::Softmax,
                Scoring::Sigmoid => GatingNorm::Sigmoid,
            },
        }
    }

    /// Whether the group score can change which experts are chosen.
    fn groups_select(&self) -> bool {
        self.kept_groups < self.groups
    }
}

/// Checks `config` for the device: [`MoeConfig::validate`]'s rules ([`Error::Moe`]), then the
/// limits of `aclnnMoeGatingTopK` (the rules `moe-gating-topk.*` of docs/HARDWARE_RULES.md)
/// as [`Error::InvalidArgument`]. [`route`] and [`MoeLayer::new`](super::MoeLayer::new) run
/// it before anything reaches the device, so a bad configuration never depends on the
/// backend's own validation.
///
/// ```
/// use ascend_npu::moe::MoeConfig;
/// use ascend_npu::ops::moe::check_config;
/// assert!(check_config(&MoeConfig::deepseek_v3()).is_ok());
/// // Valid for the reference, but the operator needs more than 2 experts per group.
/// let small_groups = MoeConfig { n_group: 128, topk_group: 4, ..MoeConfig::deepseek_v3() };
/// assert!(small_groups.validate().is_ok());
/// assert!(check_config(&small_groups).is_err());
/// ```
pub fn check_config(config: &MoeConfig) -> Result<()> {
    config.validate()?;
    let experts = config.n_routed_experts;
    if experts > MAX_EXPERTS {
        return Err(Error::invalid(
            format!("{experts} experts"),
            "1..=2048 experts (aclnnMoeGatingTopK)",
        ));
    }
    let attrs = GatingAttrs::of(config);
    if experts / attrs.groups <= 2 {
        return Err(Error::invalid(
            format!(
                "{} experts per group ({experts} experts in {} groups)",
                experts / attrs.groups,
                attrs.groups
            ),
            "more than 2 experts per group (aclnnMoeGatingTopK)",
        ));
    }
    Ok(())
}

/// Whether CANN `version`'s aclnnMoeGatingTopK computes `config` exactly: 8.1.RC1's kernel
/// always computes sigmoid scores, top-2-sum group scores and renormalised weights (rule
/// moe-gating-topk.cann-8.1-kernel), so any other method would silently route differently.
fn check_release(config: &MoeConfig, version: CannVersion) -> Result<()> {
    let attrs = GatingAttrs::of(config);
    // With every group kept, the group score selects nothing.
    let v3_method = config.scoring == Scoring::Sigmoid
        && (attrs.group_select == GroupSelect::TopTwoSum || !attrs.groups_select())
        && config.norm_topk_prob;
    if version < CannVersion::V8_2_RC1 && !v3_method {
        return Err(Error::unsupported(
            format!(
                "routing with {:?} scores, {:?} and norm_topk_prob = {} under CANN {version}",
                config.scoring, config.method, config.norm_topk_prob
            ),
            "CANN 8.1's aclnnMoeGatingTopK computes only sigmoid scores, top-2-sum groups and \
             renormalised weights (DeepSeek-V3); other methods need CANN 8.2 or newer",
        ));
    }
    Ok(())
}

/// Routes `tokens` tokens: `logits` is `[tokens, experts]` (f32, f16 or bf16), `bias` the
/// fp32 `e_score_correction_bias` `[experts]` (selection only; DeepSeek keeps it in fp32).
/// Returns the weights `[tokens, top_k]` (logit type; normalised if asked, then scaled) and
/// the expert ids `[tokens, top_k]`, best first.
///
/// How each method is computed (`aclnnMoeGatingTopK` renormalises its weights for sigmoid
/// scores only, cann-api-facts errata 2):
/// - sigmoid, normalised (DeepSeek-V3): the operator's weights;
/// - softmax, not normalised (DeepSeek-V2, V2-Lite, [`MoeConfig::plain_top_k`]): the
///   operator's weights;
/// - sigmoid, not normalised: gathered from the operator's fp32 scores;
/// - softmax, normalised: [`Error::Unsupported`] (the operator cannot renormalise it).
///
/// The operator reads its bias in the logits' type (rule `moe-gating-topk.bias-dtype`), so
/// f16 or bf16 logits with a bias, or with gathered weights, are first widened to fp32
/// (exactly) and routed in fp32 with the fp32 bias; the weights are rounded to the logit
/// type once at the end. Rounding the bias to bf16 instead would change which experts win.
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
pub fn route<T: AclElement + Zeroable>(
    kernels: &Kernels,
    stream: &Stream,
    config: &MoeConfig,
    tokens: usize,
    logits: &impl DeviceSlice<T>,
    bias: Option<&impl DeviceSlice<f32>>,
) -> Result<(DeviceBuffer<T>, DeviceBuffer<i32>)> {
    check_config(config)?;
    check_release(config, stream.device().cann_version()?)?;
    let gather = match (config.scoring, config.norm_topk_prob) {
        (Scoring::Sigmoid, true) | (Scoring::Softmax, false) => false,
        (Scoring::Sigmoid, false) => true,
        (Scoring::Softmax, true) => {
            return Err(Error::unsupported(
                "softmax routing with renormalised weights",
                "aclnnMoeGatingTopK renormalises only sigmoid scores (normType 1) and requires \
                 renorm = 0; use Scoring::Sigmoid or norm_topk_prob = false",
            ));
        }
    };
    let e = config.n_routed_experts;
    let pairs = crate::error::elements("routing weights", &[tokens, config.top_k])?;
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
    let gating = Gating {
        config,
        tokens,
        gather,
    };
    if T::DTYPE == ascend_sys::ACL_FLOAT || (bias.is_none() && !gather) {
        return gating.run::<T, f32>(stream, kernels, logits, bias);
    }
    let mut wide = stream.alloc_pooled::<f32>(all_scores)?;
    crate::aclnn::cast(stream, logits, &mut wide)?;
    let (wide_weights, ids) = gating.run::<f32, f32>(stream, kernels, &wide, bias)?;
    let mut weights = stream.alloc_pooled_zeroed::<T>(pairs)?;
    crate::aclnn::cast(stream, &wide_weights, &mut weights)?;
    Ok((weights, ids))
}

/// One `aclnnMoeGatingTopK` call (plus the score gather), on checked arguments.
struct Gating<'a> {
    config: &'a MoeConfig,
    tokens: usize,
    /// Whether the weights are gathered from the fp32 scores (f32 logits only).
    gather: bool,
}

impl Gating<'_> {
    /// Runs on `logits` of type `T` with a bias of type `B`, which must be `T` (the operator
    /// reads the bias as the logits' type) and, when gathering, f32.
    fn run<T: AclElement + Zeroable, B: AclElement>(
        &self,
        stream: &Stream,
        kernels: &Kernels,
        logits: &impl DeviceSlice<T>,
        bias: Option<&impl DeviceSlice<B>>,
    ) -> Result<(DeviceBuffer<T>, DeviceBuffer<i32>)> {
        let (config, tokens) = (self.config, self.tokens);
        debug_assert!(bias.is_none() || B::DTYPE == T::DTYPE);
        debug_assert!(!self.gather || T::DTYPE == ascend_sys::ACL_FLOAT);
        let (k, e) = (config.top_k, config.n_routed_experts);
        let pairs = tokens * k;
        let mut weights = stream.alloc_pooled_zeroed::<T>(pairs)?;
        // outOut is required on every call (rule moe-gating-topk.out-required); it is written
        // (outFlag) only when the weights are gathered from it.
        let mut scores = stream.alloc_pooled_zeroed::<f32>(tokens * e)?;
        let mut ids = stream.alloc_pooled_zeroed::<i32>(pairs)?;
        if tokens == 0 {
            return Ok((weights, ids));
        }
        let attrs = GatingAttrs::of(config);
        let x = AclTensor::new(logits, &[tokens, e])?;
        let b = bias.map(|b| AclTensor::new(b, &[e])).transpose()?;
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
                    attrs.kept_groups as i64,
                    attrs.groups as i64,
                    attrs.group_select.value(),
                    // renorm: 0 is the only documented value.
                    0,
                    attrs.norm.value(),
                    self.gather,
                    config.routed_scaling_factor,
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
        if self.gather {
            let tiling = GatherScoresTiling {
                rows: tokens as u32,
                experts: e as u32,
                k: k as u32,
                rows_per_block: tokens.div_ceil(kernels.inner.vector_cores as usize) as u32,
                scale_bits: (config.routed_scaling_factor as f32).to_bits(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cann_8_1_routes_only_the_deepseek_v3_method() {
        let v2 = MoeConfig::deepseek_v2();
        let v3 = MoeConfig::deepseek_v3();
        let unnormalised_v3 = MoeConfig {
            norm_topk_prob: false,
            ..v3
        };
        let group_max_v3 = MoeConfig {
            method: TopKMethod::GroupLimitedGreedy,
            ..v3
        };
        // Every group kept, or one group: the group score selects nothing, so 8.1's
        // top-2-sum kernel computes these exactly.
        let all_groups_max = MoeConfig {
            topk_group: 8,
            ..group_max_v3
        };
        let plain_sigmoid = MoeConfig {
            scoring: Scoring::Sigmoid,
            norm_topk_prob: true,
            ..MoeConfig::plain_top_k(64, 6)
        };
        for version in [CannVersion::V8_1_RC1] {
            for r in [v3, all_groups_max, plain_sigmoid] {
                assert!(check_release(&r, version).is_ok(), "{r:?}");
            }
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
