//! The MC2 entry points (aclnnMoeDistributeDispatchV2 / CombineV2, and V1's
//! aclnnMoeDistributeDispatch / Combine): phase one checks the rules and plans; the op finds
//! its EP communicator by name when it runs.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use ascend_sys::{StaticSymbols, aclOpExecutor, aclTensor, aclnnStatus, aclrtStream};

use super::aclnn_base::{finish_plan, launch, tensor};
use super::aclnn_ops::{meta, must};
use super::context::current;
use super::guard;
use super::hccl::{comm_named, configured_buffer_mb};
use super::read_cstr;
use crate::base::error::SimResult;
use crate::base::soc::SocFamily;
use crate::ffi::state::sim;
use crate::operators::aclnn::ops::moe_distribute::{
    Attrs, CombineArgs, DispatchArgs, Form, Link, Version, plan_combine, plan_dispatch,
};
use crate::rules::{self, Arg, Call};

/// The EP attributes both ops take, as the rules name them.
struct Ep {
    group_ep: Option<String>,
    ep_world_size: i64,
    ep_rank_id: i64,
    moe_expert_num: i64,
    group_tp: Option<String>,
    tp_world_size: i64,
    tp_rank_id: i64,
    expert_shard_type: i64,
    shared_expert_num: i64,
    shared_expert_rank_num: i64,
    global_bs: i64,
    comm_alg: Option<String>,
    /// The `hcclBufferSize` the communicator `groupEp` was configured with, or 0.
    comm_buffer_mb: i64,
}

impl Ep {
    /// The attributes from their C arguments: the names `groupEp, groupTp, commAlg`, and
    /// `epWorldSize, epRankId, moeExpertNum, tpWorldSize, tpRankId, expertShardType,
    /// sharedExpertNum, sharedExpertRankNum, globalBs`.
    ///
    /// # Safety
    /// Each name is NULL or NUL-terminated.
    unsafe fn read(names: [*const c_char; 3], ints: [i64; 9]) -> Ep {
        let [ep, tp, alg] = names;
        let [
            ranks,
            rank,
            experts,
            tp_ranks,
            tp_rank,
            shard,
            shared,
            shared_ranks,
            bs,
        ] = ints;
        // SAFETY: per this function's contract.
        let (group_ep, group_tp, comm_alg) =
            unsafe { (read_cstr(ep), read_cstr(tp), read_cstr(alg)) };
        let comm_buffer_mb = group_ep
            .as_deref()
            .and_then(configured_buffer_mb)
            .map_or(0, i64::from);
        Ep {
            group_ep,
            ep_world_size: ranks,
            ep_rank_id: rank,
            moe_expert_num: experts,
            group_tp,
            tp_world_size: tp_ranks,
            tp_rank_id: tp_rank,
            expert_shard_type: shard,
            shared_expert_num: shared,
            shared_expert_rank_num: shared_ranks,
            global_bs: bs,
            comm_alg,
            comm_buffer_mb,
        }
    }

    /// Adds the attributes from `groupEp` to `sharedExpertRankNum`, which both ops take in
    /// this order.
    fn onto(&self, call: Call) -> Call {
        call.with("groupEp", Arg::Str(self.group_ep.clone()))
            .int("epWorldSize", self.ep_world_size)
            .int("epRankId", self.ep_rank_id)
            .int("moeExpertNum", self.moe_expert_num)
            .with("groupTp", Arg::Str(self.group_tp.clone()))
            .int("tpWorldSize", self.tp_world_size)
            .int("tpRankId", self.tp_rank_id)
            .int("expertShardType", self.expert_shard_type)
            .int("sharedExpertNum", self.shared_expert_num)
            .int("sharedExpertRankNum", self.shared_expert_rank_num)
            .int("commBufferMb", self.comm_buffer_mb)
    }

    /// The attributes of a V2 call, with the dispatch's `(expertTokenNumsType, quantMode)`
    /// (0s for a combine).
    fn attrs(&self, (expert_token_nums_type, quant_mode): (i64, i64)) -> Attrs {
        Attrs {
            version: Version::V2,
            // The rules have refused an unknown commAlg.
            form: Form::of(self.comm_alg.as_deref()).unwrap_or(Form::A3),
            ep_world_size: self.ep_world_size as usize,
            ep_rank_id: self.ep_rank_id as usize,
            moe_expert_num: self.moe_expert_num as usize,
            global_bs: self.global_bs as usize,
            expert_token_nums_type,
            quant_mode,
        }
    }
}

/// Whether the SoC takes the call's form: A3 takes no `commAlg`, A2 needs one named (rules
/// `moe-distribute.soc`, `moe-distribute.a3-comm-alg`, `moe-distribute.a2-comm-alg`,
/// `moe-distribute.a2-hierarchy-driver`).
fn soc_takes(form: Form, soc: &crate::base::soc::SocModel, device: usize) -> SimResult<()> {
    let on = |id: &str, what: &str| {
        Err(rules::violation(
            id,
            format!("device {device} is {} and {what}", soc.name),
        ))
    };
    match (soc.family, form) {
        (SocFamily::A3, Form::A3) | (SocFamily::A2, Form::Fullmesh) => Ok(()),
        (SocFamily::A3, _) => on(
            "moe-distribute.a3-comm-alg",
            &format!("commAlg names {form:?}"),
        ),
        (SocFamily::A2, Form::A3) => on("moe-distribute.a2-comm-alg", "commAlg is NULL or empty"),
        (SocFamily::A2, Form::Hierarchy) => on(
            "moe-distribute.a2-hierarchy-driver",
            "the simulator has no driver package to be 25.0.RC1.1 or newer",
        ),
        (SocFamily::Ascend950, _) => on("moe-distribute.soc", "the ops run on A2 and A3"),
    }
}

/// Finds, when the op runs, the rank of communicator `groupEp` on the planning device, and
/// checks the SoC ([`soc_takes`]) and the communicator (rule `moe-distribute.group-ep`).
fn link(ep: &Ep, attrs: Attrs) -> SimResult<Link> {
    let device = current()?.device;
    let name = ep.group_ep.clone().unwrap_or_default();
    Ok(Arc::new(move || {
        let sim = sim()?;
        soc_takes(attrs.form, &sim.machine.device(device as i64)?.soc, device)?;
        let found = |what: String| rules::violation("moe-distribute.group-ep", what);
        let comm = comm_named(&name, device).ok_or_else(|| {
            found(format!(
                "no live communicator {name:?} has a rank on device {device}"
            ))
        })?;
        if comm.size() as usize != attrs.ep_world_size || comm.rank as usize != attrs.ep_rank_id {
            return Err(found(format!(
                "{name:?} has {} ranks and device {device} is rank {}; epWorldSize {}, epRankId {}",
                comm.size(),
                comm.rank,
                attrs.ep_world_size,
                attrs.ep_rank_id
            )));
        }
        Ok(comm)
    }))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeDistributeDispatchV2GetWorkspaceSize(
    x: *const aclTensor,
    expert_ids: *const aclTensor,
    scales: *const aclTensor,
    x_active_mask: *const aclTensor,
    expert_scales: *const aclTensor,
    group_ep: *const c_char,
    ep_world_size: i64,
    ep_rank_id: i64,
    moe_expert_num: i64,
    group_tp: *const c_char,
    tp_world_size: i64,
    tp_rank_id: i64,
    expert_shard_type: i64,
    shared_expert_num: i64,
    shared_expert_rank_num: i64,
    quant_mode: i64,
    global_bs: i64,
    expert_token_nums_type: i64,
    comm_alg: *const c_char,
    expand_x_out: *mut aclTensor,
    dynamic_scales_out: *mut aclTensor,
    assist_info_out: *mut aclTensor,
    expert_token_nums_out: *mut aclTensor,
    ep_recv_counts_out: *mut aclTensor,
    tp_recv_counts_out: *mut aclTensor,
    expand_scales_out: *mut aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeDistributeDispatchV2GetWorkspaceSize", || {
        let ints = [
            ep_world_size,
            ep_rank_id,
            moe_expert_num,
            tp_world_size,
            tp_rank_id,
            expert_shard_type,
            shared_expert_num,
            shared_expert_rank_num,
            global_bs,
        ];
        // SAFETY: NULL or NUL-terminated strings (C contract).
        let ep = unsafe { Ep::read([group_ep, group_tp, comm_alg], ints) };
        let (x, ids, mask) = (tensor(x)?, tensor(expert_ids)?, tensor(x_active_mask)?);
        let (ex, assist) = (tensor(expand_x_out)?, tensor(assist_info_out)?);
        let (nums, recv) = (tensor(expert_token_nums_out)?, tensor(ep_recv_counts_out)?);
        let (scales, dynamic) = (tensor(scales)?, tensor(dynamic_scales_out)?);
        let call = Call::new("aclnnMoeDistributeDispatchV2")
            .tensor("x", meta(&x))
            .tensor("expertIds", meta(&ids))
            .tensor("scalesOptional", meta(&scales))
            .tensor("xActiveMaskOptional", meta(&mask))
            .tensor("expertScalesOptional", meta(&tensor(expert_scales)?));
        let call = ep
            .onto(call)
            .int("quantMode", quant_mode)
            .int("globalBs", global_bs)
            .int("expertTokenNumsType", expert_token_nums_type)
            .with("commAlg", Arg::Str(ep.comm_alg.clone()))
            .tensor("expandXOut", meta(&ex))
            .tensor("dynamicScalesOut", meta(&dynamic))
            .tensor("assistInfoForCombineOut", meta(&assist))
            .tensor("expertTokenNumsOut", meta(&nums))
            .tensor("epRecvCountsOut", meta(&recv))
            .tensor("tpRecvCountsOut", meta(&tensor(tp_recv_counts_out)?))
            .tensor("expandScalesOut", meta(&tensor(expand_scales_out)?));
        rules::check(&call)?;
        let attrs = ep.attrs((expert_token_nums_type, quant_mode));
        let args = DispatchArgs {
            x: must(x, "x")?,
            expert_ids: must(ids, "expertIds")?,
            mask,
            scales,
            expand_x: must(ex, "expandXOut")?,
            assist_info: must(assist, "assistInfoForCombineOut")?,
            expert_token_nums: must(nums, "expertTokenNumsOut")?,
            ep_recv_counts: must(recv, "epRecvCountsOut")?,
            // Written with quantMode 2 only (the rules require it then).
            dynamic_scales: dynamic.filter(|_| quant_mode == 2),
        };
        let planned = plan_dispatch(args, attrs, link(&ep, attrs)?)?;
        // SAFETY: out-pointers per the C contract.
        unsafe {
            finish_plan(
                "aclnnMoeDistributeDispatchV2",
                planned,
                workspace_size,
                executor,
            )
        }
    })
}

unsafe extern "C" fn aclnnMoeDistributeDispatchV2(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeDistributeDispatchV2", || {
        launch(
            "aclnnMoeDistributeDispatchV2",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeDistributeCombineV2GetWorkspaceSize(
    expand_x: *const aclTensor,
    expert_ids: *const aclTensor,
    assist_info: *const aclTensor,
    ep_send_counts: *const aclTensor,
    expert_scales: *const aclTensor,
    tp_send_counts: *const aclTensor,
    x_active_mask: *const aclTensor,
    activation_scale: *const aclTensor,
    weight_scale: *const aclTensor,
    group_list: *const aclTensor,
    expand_scales: *const aclTensor,
    shared_expert_x: *const aclTensor,
    group_ep: *const c_char,
    ep_world_size: i64,
    ep_rank_id: i64,
    moe_expert_num: i64,
    group_tp: *const c_char,
    tp_world_size: i64,
    tp_rank_id: i64,
    expert_shard_type: i64,
    shared_expert_num: i64,
    shared_expert_rank_num: i64,
    global_bs: i64,
    out_dtype: i64,
    comm_quant_mode: i64,
    group_list_type: i64,
    comm_alg: *const c_char,
    x_out: *mut aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeDistributeCombineV2GetWorkspaceSize", || {
        let ints = [
            ep_world_size,
            ep_rank_id,
            moe_expert_num,
            tp_world_size,
            tp_rank_id,
            expert_shard_type,
            shared_expert_num,
            shared_expert_rank_num,
            global_bs,
        ];
        // SAFETY: NULL or NUL-terminated strings (C contract).
        let ep = unsafe { Ep::read([group_ep, group_tp, comm_alg], ints) };
        let (ex, ids, assist) = (tensor(expand_x)?, tensor(expert_ids)?, tensor(assist_info)?);
        let (counts, scales, mask) = (
            tensor(ep_send_counts)?,
            tensor(expert_scales)?,
            tensor(x_active_mask)?,
        );
        let out = tensor(x_out)?;
        let call = Call::new("aclnnMoeDistributeCombineV2")
            .tensor("expandX", meta(&ex))
            .tensor("expertIds", meta(&ids))
            .tensor("assistInfoForCombine", meta(&assist))
            .tensor("epSendCounts", meta(&counts))
            .tensor("expertScales", meta(&scales))
            .tensor("tpSendCountsOptional", meta(&tensor(tp_send_counts)?))
            .tensor("xActiveMaskOptional", meta(&mask))
            .tensor("activationScaleOptional", meta(&tensor(activation_scale)?))
            .tensor("weightScaleOptional", meta(&tensor(weight_scale)?))
            .tensor("groupListOptional", meta(&tensor(group_list)?))
            .tensor("expandScalesOptional", meta(&tensor(expand_scales)?))
            .tensor("sharedExpertXOptional", meta(&tensor(shared_expert_x)?));
        let call = ep
            .onto(call)
            .int("globalBs", global_bs)
            .int("outDtype", out_dtype)
            .int("commQuantMode", comm_quant_mode)
            .int("groupListType", group_list_type)
            .with("commAlg", Arg::Str(ep.comm_alg.clone()))
            .tensor("xOut", meta(&out));
        rules::check(&call)?;
        let attrs = ep.attrs((0, 0));
        let args = CombineArgs {
            expand_x: must(ex, "expandX")?,
            expert_ids: must(ids, "expertIds")?,
            assist_info: must(assist, "assistInfoForCombine")?,
            ep_send_counts: must(counts, "epSendCounts")?,
            expert_scales: must(scales, "expertScales")?,
            mask,
            x_out: must(out, "xOut")?,
        };
        let planned = plan_combine(args, attrs, link(&ep, attrs)?)?;
        // SAFETY: out-pointers per the C contract.
        unsafe {
            finish_plan(
                "aclnnMoeDistributeCombineV2",
                planned,
                workspace_size,
                executor,
            )
        }
    })
}

unsafe extern "C" fn aclnnMoeDistributeCombineV2(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeDistributeCombineV2", || {
        launch(
            "aclnnMoeDistributeCombineV2",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

/// The form a V1 call takes on the planning device, which has no `commAlg` to name it, as
/// `commAlg` would name it (given to the rules as the call's `socForm`): A3's (`None`) on
/// Atlas A3, "fullmesh" on A2. A2 runs its layered algorithm instead when
/// `HCCL_INTRA_PCIE_ENABLE` is "1" and `HCCL_INTRA_ROCE_ENABLE` "0" (the ops' docs and
/// tiling), which the simulator refuses (rule `moe-distribute.v1-a2-layered`).
fn v1_form() -> SimResult<Option<String>> {
    let device = current()?.device;
    let sim = sim()?;
    let soc = &sim.machine.device(device as i64)?.soc;
    let var = |name| std::env::var(name).ok();
    let vars = (var("HCCL_INTRA_PCIE_ENABLE"), var("HCCL_INTRA_ROCE_ENABLE"));
    v1_form_of(soc, device, (vars.0.as_deref(), vars.1.as_deref()))
}

/// [`v1_form`] of `soc` (device `device`) with those two variables.
fn v1_form_of(
    soc: &crate::base::soc::SocModel,
    device: usize,
    (pcie, roce): (Option<&str>, Option<&str>),
) -> SimResult<Option<String>> {
    match soc.family {
        SocFamily::A3 => Ok(None),
        SocFamily::A2 if pcie == Some("1") && roce == Some("0") => Err(rules::violation(
            "moe-distribute.v1-a2-layered",
            format!(
                "device {device} is {} with HCCL_INTRA_PCIE_ENABLE=1 and HCCL_INTRA_ROCE_ENABLE=0 \
                 (the layered algorithm, not simulated)",
                soc.name
            ),
        )),
        SocFamily::A2 => Ok(Some("fullmesh".into())),
        SocFamily::Ascend950 => Err(rules::violation(
            "moe-distribute.soc",
            format!(
                "device {device} is {} and the ops run on A2 and A3",
                soc.name
            ),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeDistributeDispatchGetWorkspaceSize(
    x: *const aclTensor,
    expert_ids: *const aclTensor,
    scales: *const aclTensor,
    x_active_mask: *const aclTensor,
    expert_scales: *const aclTensor,
    group_ep: *const c_char,
    ep_world_size: i64,
    ep_rank_id: i64,
    moe_expert_num: i64,
    group_tp: *const c_char,
    tp_world_size: i64,
    tp_rank_id: i64,
    expert_shard_type: i64,
    shared_expert_num: i64,
    shared_expert_rank_num: i64,
    quant_mode: i64,
    global_bs: i64,
    expert_token_nums_type: i64,
    expand_x: *mut aclTensor,
    dynamic_scales: *mut aclTensor,
    expand_idx: *mut aclTensor,
    expert_token_nums: *mut aclTensor,
    ep_recv_counts: *mut aclTensor,
    tp_recv_counts: *mut aclTensor,
    expand_scales: *mut aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeDistributeDispatchGetWorkspaceSize", || {
        let ints = [
            ep_world_size,
            ep_rank_id,
            moe_expert_num,
            tp_world_size,
            tp_rank_id,
            expert_shard_type,
            shared_expert_num,
            shared_expert_rank_num,
            global_bs,
        ];
        // SAFETY: NULL or NUL-terminated strings (C contract); V1 has no commAlg.
        let mut ep = unsafe { Ep::read([group_ep, group_tp, std::ptr::null()], ints) };
        ep.comm_alg = v1_form()?;
        let (x, ids, mask) = (tensor(x)?, tensor(expert_ids)?, tensor(x_active_mask)?);
        let (ex, idx) = (tensor(expand_x)?, tensor(expand_idx)?);
        let (nums, recv) = (tensor(expert_token_nums)?, tensor(ep_recv_counts)?);
        let (scales, dynamic) = (tensor(scales)?, tensor(dynamic_scales)?);
        let call = Call::new("aclnnMoeDistributeDispatch")
            .tensor("x", meta(&x))
            .tensor("expertIds", meta(&ids))
            .tensor("scales", meta(&scales))
            .tensor("xActiveMask", meta(&mask))
            .tensor("expertScales", meta(&tensor(expert_scales)?));
        let call = ep
            .onto(call)
            .int("quantMode", quant_mode)
            .int("globalBs", global_bs)
            .int("expertTokenNumsType", expert_token_nums_type)
            .with("socForm", Arg::Str(ep.comm_alg.clone()))
            .tensor("expandX", meta(&ex))
            .tensor("dynamicScales", meta(&dynamic))
            .tensor("expandIdx", meta(&idx))
            .tensor("expertTokenNums", meta(&nums))
            .tensor("epRecvCounts", meta(&recv))
            .tensor("tpRecvCounts", meta(&tensor(tp_recv_counts)?))
            .tensor("expandScales", meta(&tensor(expand_scales)?));
        rules::check(&call)?;
        let attrs = Attrs {
            version: Version::V1,
            ..ep.attrs((expert_token_nums_type, quant_mode))
        };
        let args = DispatchArgs {
            x: must(x, "x")?,
            expert_ids: must(ids, "expertIds")?,
            mask: None,
            scales,
            expand_x: must(ex, "expandX")?,
            assist_info: must(idx, "expandIdx")?,
            expert_token_nums: must(nums, "expertTokenNums")?,
            ep_recv_counts: must(recv, "epRecvCounts")?,
            // Given always (V1 wants every output); written with quantMode 2 only.
            dynamic_scales: dynamic.filter(|_| quant_mode == 2),
        };
        let planned = plan_dispatch(args, attrs, link(&ep, attrs)?)?;
        // SAFETY: out-pointers per the C contract.
        unsafe {
            finish_plan(
                "aclnnMoeDistributeDispatch",
                planned,
                workspace_size,
                executor,
            )
        }
    })
}

unsafe extern "C" fn aclnnMoeDistributeDispatch(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeDistributeDispatch", || {
        launch(
            "aclnnMoeDistributeDispatch",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeDistributeCombineGetWorkspaceSize(
    expand_x: *const aclTensor,
    expert_ids: *const aclTensor,
    expand_idx: *const aclTensor,
    ep_send_counts: *const aclTensor,
    expert_scales: *const aclTensor,
    tp_send_counts: *const aclTensor,
    x_active_mask: *const aclTensor,
    activation_scale: *const aclTensor,
    weight_scale: *const aclTensor,
    group_list: *const aclTensor,
    expand_scales: *const aclTensor,
    group_ep: *const c_char,
    ep_world_size: i64,
    ep_rank_id: i64,
    moe_expert_num: i64,
    group_tp: *const c_char,
    tp_world_size: i64,
    tp_rank_id: i64,
    expert_shard_type: i64,
    shared_expert_num: i64,
    shared_expert_rank_num: i64,
    global_bs: i64,
    out_dtype: i64,
    comm_quant_mode: i64,
    group_list_type: i64,
    x_out: *mut aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeDistributeCombineGetWorkspaceSize", || {
        let ints = [
            ep_world_size,
            ep_rank_id,
            moe_expert_num,
            tp_world_size,
            tp_rank_id,
            expert_shard_type,
            shared_expert_num,
            shared_expert_rank_num,
            global_bs,
        ];
        // SAFETY: NULL or NUL-terminated strings (C contract); V1 has no commAlg.
        let mut ep = unsafe { Ep::read([group_ep, group_tp, std::ptr::null()], ints) };
        ep.comm_alg = v1_form()?;
        let (ex, ids, idx) = (tensor(expand_x)?, tensor(expert_ids)?, tensor(expand_idx)?);
        let (counts, scales) = (tensor(ep_send_counts)?, tensor(expert_scales)?);
        let out = tensor(x_out)?;
        let call = Call::new("aclnnMoeDistributeCombine")
            .tensor("expandX", meta(&ex))
            .tensor("expertIds", meta(&ids))
            .tensor("expandIdx", meta(&idx))
            .tensor("epSendCounts", meta(&counts))
            .tensor("expertScales", meta(&scales))
            .tensor("tpSendCounts", meta(&tensor(tp_send_counts)?))
            .tensor("xActiveMask", meta(&tensor(x_active_mask)?))
            .tensor("activationScale", meta(&tensor(activation_scale)?))
            .tensor("weightScale", meta(&tensor(weight_scale)?))
            .tensor("groupList", meta(&tensor(group_list)?))
            .tensor("expandScales", meta(&tensor(expand_scales)?));
        let call = ep
            .onto(call)
            .int("globalBs", global_bs)
            .int("outDtype", out_dtype)
            .int("commQuantMode", comm_quant_mode)
            .int("groupListType", group_list_type)
            .with("socForm", Arg::Str(ep.comm_alg.clone()))
            .tensor("x", meta(&out));
        rules::check(&call)?;
        let attrs = Attrs {
            version: Version::V1,
            ..ep.attrs((0, 0))
        };
        let args = CombineArgs {
            expand_x: must(ex, "expandX")?,
            expert_ids: must(ids, "expertIds")?,
            assist_info: must(idx, "expandIdx")?,
            ep_send_counts: must(counts, "epSendCounts")?,
            expert_scales: must(scales, "expertScales")?,
            mask: None,
            x_out: must(out, "x")?,
        };
        let planned = plan_combine(args, attrs, link(&ep, attrs)?)?;
        // SAFETY: out-pointers per the C contract.
        unsafe {
            finish_plan(
                "aclnnMoeDistributeCombine",
                planned,
                workspace_size,
                executor,
            )
        }
    })
}

unsafe extern "C" fn aclnnMoeDistributeCombine(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeDistributeCombine", || {
        launch(
            "aclnnMoeDistributeCombine",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclnnMoeDistributeDispatchV2GetWorkspaceSize =
        Some(aclnnMoeDistributeDispatchV2GetWorkspaceSize);
    s.aclnnMoeDistributeDispatchV2 = Some(aclnnMoeDistributeDispatchV2);
    s.aclnnMoeDistributeCombineV2GetWorkspaceSize =
        Some(aclnnMoeDistributeCombineV2GetWorkspaceSize);
    s.aclnnMoeDistributeCombineV2 = Some(aclnnMoeDistributeCombineV2);
    s.aclnnMoeDistributeDispatchGetWorkspaceSize = Some(aclnnMoeDistributeDispatchGetWorkspaceSize);
    s.aclnnMoeDistributeDispatch = Some(aclnnMoeDistributeDispatch);
    s.aclnnMoeDistributeCombineGetWorkspaceSize = Some(aclnnMoeDistributeCombineGetWorkspaceSize);
    s.aclnnMoeDistributeCombine = Some(aclnnMoeDistributeCombine);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::soc::SocModel;

    /// V1 takes A3's form on A3 and "fullmesh" on A2, whatever the variables say but for the
    /// one pair that picks A2's layered algorithm, which it refuses with its rule; Ascend 950
    /// takes neither.
    #[test]
    fn v1_takes_its_devices_form() {
        let soc = |name| SocModel::by_name(name).unwrap();
        let (a2, a3) = (soc("Ascend910B2"), soc("Ascend910_9392"));
        let layered = (Some("1"), Some("0"));
        assert_eq!(v1_form_of(&a3, 0, layered).unwrap(), None);
        for vars in [
            (None, None),
            (Some("1"), None),
            (Some("1"), Some("1")),
            (None, Some("0")),
        ] {
            assert_eq!(
                v1_form_of(&a2, 0, vars).unwrap().as_deref(),
                Some("fullmesh")
            );
        }
        let refused = v1_form_of(&a2, 1, layered).unwrap_err().message;
        assert!(
            refused.contains("[moe-distribute.v1-a2-layered]"),
            "{refused}"
        );
        let npu950 = soc("Ascend950PR_9599");
        let refused = v1_form_of(&npu950, 0, (None, None)).unwrap_err().message;
        assert!(refused.contains("[moe-distribute.soc]"), "{refused}");
    }

    /// A3 takes the A3 form only, A2 "fullmesh" only, Ascend 950 neither: each refusal names
    /// its rule.
    #[test]
    fn each_soc_takes_its_form() {
        let soc = |name| SocModel::by_name(name).unwrap();
        let refused = |form, name| soc_takes(form, &soc(name), 0).unwrap_err().message;
        let (a2, a3, npu950) = ("Ascend910B2", "Ascend910_9392", "Ascend950PR_9599");
        assert!(soc_takes(Form::A3, &soc(a3), 0).is_ok());
        assert!(soc_takes(Form::Fullmesh, &soc(a2), 0).is_ok());
        for (form, name, rule) in [
            (Form::Fullmesh, a3, "moe-distribute.a3-comm-alg"),
            (Form::Hierarchy, a3, "moe-distribute.a3-comm-alg"),
            (Form::A3, a2, "moe-distribute.a2-comm-alg"),
            (Form::Hierarchy, a2, "moe-distribute.a2-hierarchy-driver"),
            (Form::A3, npu950, "moe-distribute.soc"),
            (Form::Fullmesh, npu950, "moe-distribute.soc"),
        ] {
            let message = refused(form, name);
            assert!(
                message.contains(&format!("[{rule}]")),
                "{form:?} on {name}: {message}"
            );
        }
    }
}
