//! The MC2 expert-parallel operators, `aclnnMoeDistributeDispatchV2` / `CombineV2`
//! (cann-api-facts §4.7), as this library calls them: one struct of named fields per operator
//! instead of their 28 positional arguments. No TP, no shared experts, no expert scales; the
//! dispatch reports counts (`expertTokenNumsType` 1), the combine is unquantized.

use std::ffi::CStr;

use super::{AclTensor, MoeDistributeCombineV2, MoeDistributeDispatchV2, Plan, TensorUses};
use crate::error::Result;
use crate::runtime::Stream;

/// What both operators are told of the EP group and batch.
#[derive(Clone, Copy, Debug)]
pub struct Mc2Group<'n> {
    /// `groupEp`: the EP communicator's name (`HcclGetCommName`).
    pub name: &'n CStr,
    /// `epWorldSize`.
    pub ranks: i64,
    /// `epRankId`.
    pub rank: i64,
    /// `moeExpertNum`.
    pub experts: i64,
    /// `globalBs`: 0, or the largest batch of a rank times `ranks`.
    pub global_bs: i64,
    /// `commAlg`: `None` (NULL) on Atlas A3, the algorithm's name on A2.
    pub comm_alg: Option<&'n CStr>,
}

impl Mc2Group<'_> {
    fn alg(&self) -> *const std::ffi::c_char {
        self.comm_alg.map_or(std::ptr::null(), CStr::as_ptr)
    }
}

/// The tensors of `aclnnMoeDistributeDispatchV2`: `x [BS, H]`, `expertIds [BS, K]` and the
/// mask in; `expandXOut [A, H]`, `assistInfoForCombineOut [A·128]`, `expertTokenNumsOut [L]`,
/// `epRecvCountsOut` and, for per-row INT8 (quantMode 2), `dynamicScalesOut [A]` out.
pub struct Mc2Dispatch<'t, 'a> {
    /// The group and batch.
    pub group: Mc2Group<'t>,
    /// `x`.
    pub x: &'t AclTensor<'a>,
    /// `expertIds`.
    pub expert_ids: &'t AclTensor<'a>,
    /// `xActiveMaskOptional`.
    pub mask: &'t AclTensor<'a>,
    /// `expandXOut`: the received rows (INT8 codes with `dynamic_scales`).
    pub expand_x: &'t AclTensor<'a>,
    /// `dynamicScalesOut`: given, the dispatch quantizes each row to INT8 (quantMode 2).
    pub dynamic_scales: Option<&'t AclTensor<'a>>,
    /// `assistInfoForCombineOut`.
    pub assist_info: &'t AclTensor<'a>,
    /// `expertTokenNumsOut`: rows per local expert.
    pub expert_token_nums: &'t AclTensor<'a>,
    /// `epRecvCountsOut`.
    pub recv_counts: &'t AclTensor<'a>,
}

impl<'a> Mc2Dispatch<'_, 'a> {
    /// Phase one on `stream`.
    pub fn plan(&self, stream: &Stream) -> Result<Plan<'a>> {
        let mut tensors: Vec<&dyn TensorUses<'a>> = vec![
            self.x,
            self.expert_ids,
            self.mask,
            self.expand_x,
            self.assist_info,
            self.expert_token_nums,
            self.recv_counts,
        ];
        if let Some(t) = self.dynamic_scales {
            tensors.push(t);
        }
        let quant_mode = if self.dynamic_scales.is_some() { 2 } else { 0 };
        let scales = self
            .dynamic_scales
            .map_or(std::ptr::null_mut(), |t| t.as_ptr().cast_mut());
        let g = self.group;
        Plan::new::<MoeDistributeDispatchV2>(stream, &tensors, |f, ws, exec| {
            let null = std::ptr::null();
            // SAFETY: live tensor handles and NUL-terminated names (or NULL); no smoothing
            // scales, no TP, no shared experts, counts (expertTokenNumsType 1).
            unsafe {
                f(
                    self.x.as_ptr(),
                    self.expert_ids.as_ptr(),
                    null,
                    self.mask.as_ptr(),
                    null,
                    g.name.as_ptr(),
                    g.ranks,
                    g.rank,
                    g.experts,
                    null.cast(),
                    0,
                    0,
                    0,
                    0,
                    0,
                    quant_mode,
                    g.global_bs,
                    1,
                    g.alg(),
                    self.expand_x.as_ptr().cast_mut(),
                    scales,
                    self.assist_info.as_ptr().cast_mut(),
                    self.expert_token_nums.as_ptr().cast_mut(),
                    self.recv_counts.as_ptr().cast_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    ws,
                    exec,
                )
            }
        })
    }
}

/// The tensors of `aclnnMoeDistributeCombineV2`: the experts' rows `expandX [A, H]`, the
/// dispatch's `expertIds`, `assistInfoForCombine`, `epSendCounts` and mask, the router weights
/// `expertScales [BS, K]` in; `xOut [BS, H]` out.
pub struct Mc2Combine<'t, 'a> {
    /// The group and batch, as the dispatch's.
    pub group: Mc2Group<'t>,
    /// `expandX`.
    pub expand_x: &'t AclTensor<'a>,
    /// `expertIds`.
    pub expert_ids: &'t AclTensor<'a>,
    /// `assistInfoForCombine`.
    pub assist_info: &'t AclTensor<'a>,
    /// `epSendCounts`.
    pub send_counts: &'t AclTensor<'a>,
    /// `expertScales`.
    pub weights: &'t AclTensor<'a>,
    /// `xActiveMaskOptional`.
    pub mask: &'t AclTensor<'a>,
    /// `xOut`.
    pub out: &'t AclTensor<'a>,
}

impl<'a> Mc2Combine<'_, 'a> {
    /// Phase one on `stream`.
    pub fn plan(&self, stream: &Stream) -> Result<Plan<'a>> {
        let tensors: [&dyn TensorUses<'a>; 7] = [
            self.expand_x,
            self.expert_ids,
            self.assist_info,
            self.send_counts,
            self.weights,
            self.mask,
            self.out,
        ];
        let g = self.group;
        Plan::new::<MoeDistributeCombineV2>(stream, &tensors, |f, ws, exec| {
            let null = std::ptr::null();
            // SAFETY: live tensor handles and NUL-terminated names (or NULL); no TP, no
            // quantisation, no shared experts.
            unsafe {
                f(
                    self.expand_x.as_ptr(),
                    self.expert_ids.as_ptr(),
                    self.assist_info.as_ptr(),
                    self.send_counts.as_ptr(),
                    self.weights.as_ptr(),
                    null,
                    self.mask.as_ptr(),
                    null,
                    null,
                    null,
                    null,
                    null,
                    g.name.as_ptr(),
                    g.ranks,
                    g.rank,
                    g.experts,
                    null.cast(),
                    0,
                    0,
                    0,
                    0,
                    0,
                    g.global_bs,
                    0,
                    0,
                    0,
                    g.alg(),
                    self.out.as_ptr().cast_mut(),
                    ws,
                    exec,
                )
            }
        })
    }
}
