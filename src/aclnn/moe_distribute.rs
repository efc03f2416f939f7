//! The MC2 expert-parallel operators (cann-api-facts §4.7) as this library calls them: one
//! struct of named fields per operator instead of their 26 to 30 positional arguments, for
//! either version ([`Mc2Version`]). No TP, no shared experts, no expert scales on the dispatch;
//! the dispatch reports counts (`expertTokenNumsType` 1), the combine is unquantized.

use std::ffi::{CStr, c_char};

use super::{
    AclTensor, MoeDistributeCombine, MoeDistributeCombineV2, MoeDistributeDispatch,
    MoeDistributeDispatchV2, Operator, Plan, TensorUses,
};
use crate::error::{Error, Result};
use crate::runtime::Stream;

/// Which version of the MC2 ops a dispatch and its combine call: they pair within a version
/// only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mc2Version {
    /// `aclnnMoeDistributeDispatch` / `aclnnMoeDistributeCombine` (CANN 8.1 on): no mask
    /// (`xActiveMask` is reserved), `expandIdx [BS·K]` for the combine, and every one of the
    /// dispatch's seven outputs given.
    V1,
    /// `aclnnMoeDistributeDispatchV2` / `CombineV2` (CANN 8.2 on): a mask,
    /// `assistInfoForCombineOut [A·128]`, and `commAlg`.
    V2,
}

impl Mc2Version {
    /// Whether the CANN behind `api` has both ops of this version.
    pub(crate) fn available(self, api: &ascend_sys::Api) -> bool {
        match self {
            Mc2Version::V1 => {
                MoeDistributeDispatch::available(api).is_ok()
                    && MoeDistributeCombine::available(api).is_ok()
            }
            Mc2Version::V2 => {
                MoeDistributeDispatchV2::available(api).is_ok()
                    && MoeDistributeCombineV2::available(api).is_ok()
            }
        }
    }
}

/// What both operators are told of the EP group and batch.
#[derive(Clone, Copy, Debug)]
pub struct Mc2Group<'n> {
    /// The ops' version.
    pub version: Mc2Version,
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
    /// `tpWorldSize` without TP: 0, or 1 where the op wants a one-rank TP group (V1 on A3,
    /// whose TP counts tensor is `[tpWorldSize]`).
    pub tp_ranks: i64,
    /// `sharedExpertNum` without shared-expert ranks: 0, or 1 where the op takes nothing else
    /// (V1 on A3).
    pub shared_experts: i64,
    /// `commAlg` (V2 only): `None` (NULL) on Atlas A3, the algorithm's name on A2.
    pub comm_alg: Option<&'n CStr>,
}

impl Mc2Group<'_> {
    fn alg(&self) -> *const c_char {
        self.comm_alg.map_or(std::ptr::null(), CStr::as_ptr)
    }

    /// `groupTp`: "" for V1 (some of its versions read the name without a NULL check), NULL
    /// for V2.
    fn tp_name(&self) -> *const c_char {
        match self.version {
            Mc2Version::V1 => c"".as_ptr(),
            Mc2Version::V2 => std::ptr::null(),
        }
    }
}

/// `Err` unless `given` matches what `version` takes (`want` per version), naming `what`.
fn takes(version: Mc2Version, what: &str, given: bool, want: [bool; 2]) -> Result<()> {
    let want = want[usize::from(version == Mc2Version::V2)];
    if given == want {
        return Ok(());
    }
    Err(Error::invalid(
        format!(
            "{what} {} for {version:?}",
            if given { "given" } else { "absent" }
        ),
        format!(
            "{what} {} for {version:?}",
            if want { "given" } else { "absent" }
        ),
    ))
}

fn ptr<'a>(t: Option<&AclTensor<'a>>) -> *mut ascend_sys::aclTensor {
    t.map_or(std::ptr::null_mut(), |t| t.as_ptr().cast_mut())
}

/// The tensors of the dispatch: `x [BS, H]`, `expertIds [BS, K]` and (V2) the mask in;
/// `expandX [A, H]`, the combine's bookkeeping, `expertTokenNums [L]`, `epRecvCounts`,
/// `dynamicScales [A]` (quantized, and always on V1), and on V1 the TP counts `[1]` and
/// `expandScales [A]` out.
pub struct Mc2Dispatch<'t, 'a> {
    /// The group and batch.
    pub group: Mc2Group<'t>,
    /// `x`.
    pub x: &'t AclTensor<'a>,
    /// `expertIds`.
    pub expert_ids: &'t AclTensor<'a>,
    /// `xActiveMaskOptional`: V2 only.
    pub mask: Option<&'t AclTensor<'a>>,
    /// `expandXOut`: the received rows (INT8 codes with `dynamic_scales` if `quantize`).
    pub expand_x: &'t AclTensor<'a>,
    /// Each row quantized to INT8 on the way (quantMode 2).
    pub quantize: bool,
    /// `dynamicScalesOut [A]`: required if `quantize`, and on V1 (written only if `quantize`).
    pub dynamic_scales: Option<&'t AclTensor<'a>>,
    /// V2's `assistInfoForCombineOut [A·128]`, V1's `expandIdx [BS·K]`: what the combine is
    /// handed, opaque.
    pub assist_info: &'t AclTensor<'a>,
    /// `expertTokenNumsOut`: rows per local expert.
    pub expert_token_nums: &'t AclTensor<'a>,
    /// `epRecvCountsOut`.
    pub recv_counts: &'t AclTensor<'a>,
    /// `tpRecvCounts`: V1 only, `[1]`.
    pub tp_recv_counts: Option<&'t AclTensor<'a>>,
    /// `expandScales`: V1 only, `[A]` (not read back without shared experts or A2's layered
    /// algorithm).
    pub expand_scales: Option<&'t AclTensor<'a>>,
}

impl<'a> Mc2Dispatch<'_, 'a> {
    /// Phase one on `stream`, of the group's version; refuses tensors the version does not
    /// take and missing ones it needs.
    pub fn plan(&self, stream: &Stream) -> Result<Plan<'a>> {
        let v = self.group.version;
        takes(v, "xActiveMaskOptional", self.mask.is_some(), [false, true])?;
        takes(
            v,
            "tpRecvCounts",
            self.tp_recv_counts.is_some(),
            [true, false],
        )?;
        takes(
            v,
            "expandScales",
            self.expand_scales.is_some(),
            [true, false],
        )?;
        let scales_wanted = self.quantize || v == Mc2Version::V1;
        if self.dynamic_scales.is_some() != scales_wanted {
            return Err(Error::invalid(
                format!(
                    "dynamicScales {} with quantize {} on {v:?}",
                    if scales_wanted { "absent" } else { "given" },
                    self.quantize
                ),
                "dynamicScales given when quantizing and on V1, else absent",
            ));
        }
        let mut tensors: Vec<&dyn TensorUses<'a>> = vec![
            self.x,
            self.expert_ids,
            self.expand_x,
            self.assist_info,
            self.expert_token_nums,
            self.recv_counts,
        ];
        for t in [
            self.mask,
            self.dynamic_scales,
            self.tp_recv_counts,
            self.expand_scales,
        ]
        .into_iter()
        .flatten()
        {
            tensors.push(t);
        }
        let quant_mode = if self.quantize { 2 } else { 0 };
        let g = self.group;
        let null = std::ptr::null();
        match v {
            Mc2Version::V1 => {
                Plan::new::<MoeDistributeDispatch>(stream, &tensors, |f, ws, exec| {
                    // SAFETY: live tensor handles (or NULL where optional) and NUL-terminated
                    // names; no smoothing scales, no expert scales, no shared-expert ranks.
                    unsafe {
                        f(
                            self.x.as_ptr(),
                            self.expert_ids.as_ptr(),
                            null,
                            null,
                            null,
                            g.name.as_ptr(),
                            g.ranks,
                            g.rank,
                            g.experts,
                            g.tp_name(),
                            g.tp_ranks,
                            0,
                            0,
                            g.shared_experts,
                            0,
                            quant_mode,
                            g.global_bs,
                            1,
                            self.expand_x.as_ptr().cast_mut(),
                            ptr(self.dynamic_scales),
                            self.assist_info.as_ptr().cast_mut(),
                            self.expert_token_nums.as_ptr().cast_mut(),
                            self.recv_counts.as_ptr().cast_mut(),
                            ptr(self.tp_recv_counts),
                            ptr(self.expand_scales),
                            ws,
                            exec,
                        )
                    }
                })
            }
            Mc2Version::V2 => {
                Plan::new::<MoeDistributeDispatchV2>(stream, &tensors, |f, ws, exec| {
                    // SAFETY: live tensor handles (or NULL where optional) and NUL-terminated
                    // names (or NULL); no smoothing scales, no TP, no shared experts.
                    unsafe {
                        f(
                            self.x.as_ptr(),
                            self.expert_ids.as_ptr(),
                            null,
                            ptr(self.mask),
                            null,
                            g.name.as_ptr(),
                            g.ranks,
                            g.rank,
                            g.experts,
                            g.tp_name(),
                            g.tp_ranks,
                            0,
                            0,
                            g.shared_experts,
                            0,
                            quant_mode,
                            g.global_bs,
                            1,
                            g.alg(),
                            self.expand_x.as_ptr().cast_mut(),
                            ptr(self.dynamic_scales),
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
    }
}

/// The tensors of the combine: the experts' rows `expandX [A, H]`, the dispatch's
/// `expertIds`, bookkeeping, `epSendCounts` and (V2) mask, the router weights
/// `expertScales [BS, K]` and (V1) the TP counts `[1]` in; `x [BS, H]` out.
pub struct Mc2Combine<'t, 'a> {
    /// The group and batch, as the dispatch's.
    pub group: Mc2Group<'t>,
    /// `expandX`.
    pub expand_x: &'t AclTensor<'a>,
    /// `expertIds`.
    pub expert_ids: &'t AclTensor<'a>,
    /// V2's `assistInfoForCombine`, V1's `expandIdx`.
    pub assist_info: &'t AclTensor<'a>,
    /// `epSendCounts`.
    pub send_counts: &'t AclTensor<'a>,
    /// `expertScales`.
    pub weights: &'t AclTensor<'a>,
    /// `xActiveMaskOptional`: V2 only.
    pub mask: Option<&'t AclTensor<'a>>,
    /// `tpSendCounts`: V1 only, `[1]`.
    pub tp_send_counts: Option<&'t AclTensor<'a>>,
    /// `xOut` (V2), `x` (V1).
    pub out: &'t AclTensor<'a>,
}

impl<'a> Mc2Combine<'_, 'a> {
    /// Phase one on `stream`, of the group's version.
    pub fn plan(&self, stream: &Stream) -> Result<Plan<'a>> {
        let v = self.group.version;
        takes(v, "xActiveMaskOptional", self.mask.is_some(), [false, true])?;
        takes(
            v,
            "tpSendCounts",
            self.tp_send_counts.is_some(),
            [true, false],
        )?;
        let mut tensors: Vec<&dyn TensorUses<'a>> = vec![
            self.expand_x,
            self.expert_ids,
            self.assist_info,
            self.send_counts,
            self.weights,
            self.out,
        ];
        for t in [self.mask, self.tp_send_counts].into_iter().flatten() {
            tensors.push(t);
        }
        let g = self.group;
        let null = std::ptr::null();
        match v {
            Mc2Version::V1 => Plan::new::<MoeDistributeCombine>(stream, &tensors, |f, ws, exec| {
                // SAFETY: live tensor handles (or NULL where optional) and NUL-terminated
                // names; no quantisation, no shared experts.
                unsafe {
                    f(
                        self.expand_x.as_ptr(),
                        self.expert_ids.as_ptr(),
                        self.assist_info.as_ptr(),
                        self.send_counts.as_ptr(),
                        self.weights.as_ptr(),
                        ptr(self.tp_send_counts),
                        null,
                        null,
                        null,
                        null,
                        null,
                        g.name.as_ptr(),
                        g.ranks,
                        g.rank,
                        g.experts,
                        g.tp_name(),
                        g.tp_ranks,
                        0,
                        0,
                        g.shared_experts,
                        0,
                        g.global_bs,
                        0,
                        0,
                        0,
                        self.out.as_ptr().cast_mut(),
                        ws,
                        exec,
                    )
                }
            }),
            Mc2Version::V2 => {
                Plan::new::<MoeDistributeCombineV2>(stream, &tensors, |f, ws, exec| {
                    // SAFETY: live tensor handles (or NULL where optional) and NUL-terminated
                    // names (or NULL); no TP, no quantisation, no shared experts.
                    unsafe {
                        f(
                            self.expand_x.as_ptr(),
                            self.expert_ids.as_ptr(),
                            self.assist_info.as_ptr(),
                            self.send_counts.as_ptr(),
                            self.weights.as_ptr(),
                            null,
                            ptr(self.mask),
                            null,
                            null,
                            null,
                            null,
                            null,
                            g.name.as_ptr(),
                            g.ranks,
                            g.rank,
                            g.experts,
                            g.tp_name(),
                            g.tp_ranks,
                            0,
                            0,
                            g.shared_experts,
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
    }
}
