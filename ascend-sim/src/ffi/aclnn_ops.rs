//! aclnn operator entry points: phase one plans, phase two launches (see `crate::aclnn`).

use std::ffi::c_void;

use ascend_sys::{
    StaticSymbols, aclOpExecutor, aclTensor, aclTensorList, aclnnStatus, aclrtStream,
};

use super::aclnn_base::{finish_plan, launch, list, required, tensor};
use super::guard;
use crate::aclnn::objects::Array;
use crate::aclnn::objects::invalid;
use crate::aclnn::ops::{
    grouped_matmul, moe_finalize_routing, moe_gating_top_k, moe_init_routing, moe_init_routing_v3,
};
use crate::state::sim;

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeGatingTopKGetWorkspaceSize(
    x: *const aclTensor,
    bias: *const aclTensor,
    k: i64,
    k_group: i64,
    group_count: i64,
    group_select_mode: i64,
    renorm: i64,
    norm_type: i64,
    out_flag: bool,
    routed_scaling_factor: f64,
    eps: f64,
    y_out: *const aclTensor,
    expert_idx_out: *const aclTensor,
    out_out: *const aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeGatingTopKGetWorkspaceSize", || {
        let attrs = moe_gating_top_k::Attrs {
            k,
            k_group,
            group_count,
            group_select_mode,
            renorm,
            norm_type,
            out_flag,
            routed_scaling_factor,
            eps,
        };
        let planned = moe_gating_top_k::plan(
            required(x, "x")?,
            tensor(bias)?,
            attrs,
            required(y_out, "yOut")?,
            required(expert_idx_out, "expertIdxOut")?,
            tensor(out_out)?,
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnMoeGatingTopK", planned, workspace_size, executor) }
    })
}

unsafe extern "C" fn aclnnMoeGatingTopK(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeGatingTopK", || {
        launch(
            "aclnnMoeGatingTopK",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeInitRoutingV2GetWorkspaceSize(
    x: *const aclTensor,
    expert_idx: *const aclTensor,
    active_num: i64,
    expert_capacity: i64,
    expert_num: i64,
    drop_pad_mode: i64,
    count_flag: i64,
    before_capacity_flag: bool,
    expanded_x_out: *const aclTensor,
    expanded_row_idx_out: *const aclTensor,
    counts_out: *const aclTensor,
    before_capacity_out: *const aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeInitRoutingV2GetWorkspaceSize", || {
        let attrs = moe_init_routing::Attrs {
            active_num,
            expert_capacity,
            expert_num,
            drop_pad_mode,
            count_flag,
            before_capacity_flag,
        };
        let planned = moe_init_routing::plan(
            required(x, "x")?,
            required(expert_idx, "expertIdx")?,
            attrs,
            required(expanded_x_out, "expandedXOut")?,
            required(expanded_row_idx_out, "expandedRowIdxOut")?,
            tensor(counts_out)?,
            tensor(before_capacity_out)?,
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnMoeInitRoutingV2", planned, workspace_size, executor) }
    })
}

unsafe extern "C" fn aclnnMoeInitRoutingV2(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeInitRoutingV2", || {
        launch(
            "aclnnMoeInitRoutingV2",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeFinalizeRoutingV2GetWorkspaceSize(
    expanded_x: *const aclTensor,
    expanded_row_idx: *const aclTensor,
    x1: *const aclTensor,
    x2: *const aclTensor,
    bias: *const aclTensor,
    scales: *const aclTensor,
    expert_idx: *const aclTensor,
    drop_pad_mode: i64,
    out: *const aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeFinalizeRoutingV2GetWorkspaceSize", || {
        let planned = moe_finalize_routing::plan(
            required(expanded_x, "expandedX")?,
            required(expanded_row_idx, "expandedRowIdx")?,
            tensor(x1)?,
            tensor(x2)?,
            tensor(bias)?,
            tensor(scales)?,
            tensor(expert_idx)?,
            drop_pad_mode,
            required(out, "out")?,
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe {
            finish_plan(
                "aclnnMoeFinalizeRoutingV2",
                planned,
                workspace_size,
                executor,
            )
        }
    })
}

unsafe extern "C" fn aclnnMoeFinalizeRoutingV2(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeFinalizeRoutingV2", || {
        launch(
            "aclnnMoeFinalizeRoutingV2",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnGroupedMatmulV4GetWorkspaceSize(
    x: *const aclTensorList,
    weight: *const aclTensorList,
    bias: *const aclTensorList,
    scale: *const aclTensorList,
    offset: *const aclTensorList,
    antiquant_scale: *const aclTensorList,
    antiquant_offset: *const aclTensorList,
    per_token_scale: *const aclTensorList,
    group_list: *const aclTensor,
    activation_input: *const aclTensorList,
    activation_quant_scale: *const aclTensorList,
    activation_quant_offset: *const aclTensorList,
    split_item: i64,
    group_type: i64,
    group_list_type: i64,
    act_type: i64,
    out: *mut aclTensorList,
    activation_feature_out: *mut aclTensorList,
    dyn_quant_scale_out: *mut aclTensorList,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnGroupedMatmulV4GetWorkspaceSize", || {
        let unsupported = [
            ("biasOptional", bias),
            ("scaleOptional", scale),
            ("offsetOptional", offset),
            ("antiquantScaleOptional", antiquant_scale),
            ("antiquantOffsetOptional", antiquant_offset),
            ("perTokenScaleOptional", per_token_scale),
            ("activationInputOptional", activation_input),
            ("activationQuantScaleOptional", activation_quant_scale),
            ("activationQuantOffsetOptional", activation_quant_offset),
            (
                "activationFeatureOutOptional",
                activation_feature_out.cast_const(),
            ),
            ("dynQuantScaleOutOptional", dyn_quant_scale_out.cast_const()),
        ];
        if let Some((name, _)) = unsupported.iter().find(|(_, p)| !p.is_null()) {
            return Err(invalid(format!("{name} is not simulated; pass NULL")));
        }
        let attrs = grouped_matmul::Attrs {
            split_item,
            group_type,
            group_list_type,
            act_type,
        };
        let planned = grouped_matmul::plan(
            list(x)?.ok_or_else(|| invalid("x is NULL"))?,
            list(weight)?.ok_or_else(|| invalid("weight is NULL"))?,
            required(group_list, "groupListOptional (required by the simulator)")?,
            attrs,
            list(out)?.ok_or_else(|| invalid("out is NULL"))?,
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnGroupedMatmulV4", planned, workspace_size, executor) }
    })
}

unsafe extern "C" fn aclnnGroupedMatmulV4(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnGroupedMatmulV4", || {
        launch(
            "aclnnGroupedMatmulV4",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMoeInitRoutingV3GetWorkspaceSize(
    x: *const aclTensor,
    expert_idx: *const aclTensor,
    scale: *const aclTensor,
    offset: *const aclTensor,
    active_num: i64,
    expert_capacity: i64,
    expert_num: i64,
    drop_pad_mode: i64,
    tokens_num_type: i64,
    tokens_num_flag: bool,
    quant_mode: i64,
    active_expert_range: *const ascend_sys::aclIntArray,
    row_idx_type: i64,
    expanded_x_out: *const aclTensor,
    expanded_row_idx_out: *const aclTensor,
    counts_out: *const aclTensor,
    expanded_scale_out: *const aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMoeInitRoutingV3GetWorkspaceSize", || {
        if !scale.is_null() || !offset.is_null() || !expanded_scale_out.is_null() {
            return Err(invalid(
                "scale, offset and expandedScaleOut are for quantisation, which is not simulated; pass NULL",
            ));
        }
        if active_num != 0 || expert_capacity != 0 {
            return Err(invalid(
                "activeNum and expertCapacity must be 0 in the simulated dropless V3",
            ));
        }
        let range = if active_expert_range.is_null() {
            None
        } else {
            match &*sim()?.arrays.get(active_expert_range as *mut c_void)? {
                Array::Int(v) if v.len() == 2 => Some((v[0], v[1])),
                other => {
                    return Err(invalid(format!(
                        "activeExpertRange {other:?}; expected two ints [start, end)"
                    )));
                }
            }
        };
        let attrs = moe_init_routing_v3::Attrs {
            expert_num,
            drop_pad_mode,
            tokens_num_type,
            tokens_num_flag,
            quant_mode,
            range,
            row_idx_type,
        };
        let planned = moe_init_routing_v3::plan(
            required(x, "x")?,
            required(expert_idx, "expertIdx")?,
            attrs,
            required(expanded_x_out, "expandedXOut")?,
            required(expanded_row_idx_out, "expandedRowIdxOut")?,
            tensor(counts_out)?,
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnMoeInitRoutingV3", planned, workspace_size, executor) }
    })
}

unsafe extern "C" fn aclnnMoeInitRoutingV3(
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> aclnnStatus {
    guard("aclnnMoeInitRoutingV3", || {
        launch(
            "aclnnMoeInitRoutingV3",
            workspace,
            workspace_size,
            executor,
            stream,
        )
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclnnMoeInitRoutingV3GetWorkspaceSize = Some(aclnnMoeInitRoutingV3GetWorkspaceSize);
    s.aclnnMoeInitRoutingV3 = Some(aclnnMoeInitRoutingV3);
    s.aclnnMoeGatingTopKGetWorkspaceSize = Some(aclnnMoeGatingTopKGetWorkspaceSize);
    s.aclnnMoeGatingTopK = Some(aclnnMoeGatingTopK);
    s.aclnnMoeInitRoutingV2GetWorkspaceSize = Some(aclnnMoeInitRoutingV2GetWorkspaceSize);
    s.aclnnMoeInitRoutingV2 = Some(aclnnMoeInitRoutingV2);
    s.aclnnMoeFinalizeRoutingV2GetWorkspaceSize = Some(aclnnMoeFinalizeRoutingV2GetWorkspaceSize);
    s.aclnnMoeFinalizeRoutingV2 = Some(aclnnMoeFinalizeRoutingV2);
    s.aclnnGroupedMatmulV4GetWorkspaceSize = Some(aclnnGroupedMatmulV4GetWorkspaceSize);
    s.aclnnGroupedMatmulV4 = Some(aclnnGroupedMatmulV4);
}
