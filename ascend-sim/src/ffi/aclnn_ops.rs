//! aclnn operator entry points: phase one plans, phase two launches (see `crate::operators::aclnn`).

use ascend_sys::{StaticSymbols, aclOpExecutor, aclTensor, aclTensorList, aclnnStatus};

use super::aclnn_base::{finish_plan, int_array, list, tensor};
use super::guard;
use crate::base::error::{SimError, SimResult};
use crate::ffi::state::sim;
use crate::operators::aclnn::objects::{TensorDesc, invalid};
use crate::operators::aclnn::ops::{
    cast, grouped_matmul, moe_finalize_routing, moe_gating_top_k, moe_init_routing,
    moe_init_routing_v3,
};
use crate::rules::{self, Arg, Call, TensorMeta};

/// What the rule validator sees of a tensor argument.
pub(super) fn meta(t: &Option<TensorDesc>) -> Option<TensorMeta> {
    t.as_ref().map(TensorMeta::from)
}

/// What the rule validator sees of a tensor-list argument.
pub(super) fn metas(l: &Option<Vec<TensorDesc>>) -> Arg {
    Arg::List(l.as_ref().map(|l| l.iter().map(TensorMeta::from).collect()))
}

/// A tensor the rules have already required.
pub(super) fn must<T>(t: Option<T>, name: &str) -> SimResult<T> {
    t.ok_or_else(|| {
        SimError::new(
            ascend_sys::ACL_ERROR_RT_INTERNAL_ERROR,
            format!("internal: {name} passed the rules but is NULL"),
        )
    })
}

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
        let (x, bias) = (tensor(x)?, tensor(bias)?);
        let (y, idx, out) = (tensor(y_out)?, tensor(expert_idx_out)?, tensor(out_out)?);
        rules::check(
            &Call::new("aclnnMoeGatingTopK")
                .tensor("x", meta(&x))
                .tensor("biasOptional", meta(&bias))
                .int("k", k)
                .int("kGroup", k_group)
                .int("groupCount", group_count)
                .int("groupSelectMode", group_select_mode)
                .int("renorm", renorm)
                .int("normType", norm_type)
                .with("outFlag", Arg::Bool(out_flag))
                .with("routedScalingFactor", Arg::Float(routed_scaling_factor))
                .with("eps", Arg::Float(eps))
                .tensor("yOut", meta(&y))
                .tensor("expertIdxOut", meta(&idx))
                .tensor("outOut", meta(&out)),
        )?;
        let attrs = moe_gating_top_k::Attrs {
            k,
            k_group,
            group_count,
            group_select_mode,
            norm_type,
            out_flag,
            routed_scaling_factor,
            eps,
        }
        .as_computed_by(sim()?.config.cann_version);
        let planned = moe_gating_top_k::plan(
            must(x, "x")?,
            bias,
            attrs,
            must(y, "yOut")?,
            must(idx, "expertIdxOut")?,
            must(out, "outOut")?,
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnMoeGatingTopK", planned, workspace_size, executor) }
    })
}

second_phase!(aclnnMoeGatingTopK);

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
        let (x, ids) = (tensor(x)?, tensor(expert_idx)?);
        let (ex, row_idx) = (tensor(expanded_x_out)?, tensor(expanded_row_idx_out)?);
        let (counts, before) = (tensor(counts_out)?, tensor(before_capacity_out)?);
        rules::check(
            &Call::new("aclnnMoeInitRoutingV2")
                .tensor("x", meta(&x))
                .tensor("expertIdx", meta(&ids))
                .int("activeNum", active_num)
                .int("expertCapacity", expert_capacity)
                .int("expertNum", expert_num)
                .int("dropPadMode", drop_pad_mode)
                .int("expertTokensCountOrCumsumFlag", count_flag)
                .with(
                    "expertTokensBeforeCapacityFlag",
                    Arg::Bool(before_capacity_flag),
                )
                .tensor("expandedXOut", meta(&ex))
                .tensor("expandedRowIdxOut", meta(&row_idx))
                .tensor("expertTokensCountOrCumsumOut", meta(&counts))
                .tensor("expertTokensBeforeCapacityOut", meta(&before)),
        )?;
        let attrs = moe_init_routing::Attrs {
            expert_capacity,
            expert_num,
            drop_pad_mode,
            count_flag,
            before_capacity_flag,
        };
        let planned = moe_init_routing::plan(
            must(x, "x")?,
            must(ids, "expertIdx")?,
            attrs,
            must(ex, "expandedXOut")?,
            must(row_idx, "expandedRowIdxOut")?,
            counts.filter(|_| count_flag != 0),
            before.filter(|_| before_capacity_flag),
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnMoeInitRoutingV2", planned, workspace_size, executor) }
    })
}

second_phase!(aclnnMoeInitRoutingV2);

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
        let (ex, row_idx) = (tensor(expanded_x)?, tensor(expanded_row_idx)?);
        let (x1, x2, bias) = (tensor(x1)?, tensor(x2)?, tensor(bias)?);
        let (scales, ids, out) = (tensor(scales)?, tensor(expert_idx)?, tensor(out)?);
        rules::check(
            &Call::new("aclnnMoeFinalizeRoutingV2")
                .tensor("expandedX", meta(&ex))
                .tensor("expandedRowIdx", meta(&row_idx))
                .tensor("x1Optional", meta(&x1))
                .tensor("x2Optional", meta(&x2))
                .tensor("biasOptional", meta(&bias))
                .tensor("scalesOptional", meta(&scales))
                .tensor("expertIdxOptional", meta(&ids))
                .int("dropPadMode", drop_pad_mode)
                .tensor("out", meta(&out)),
        )?;
        let planned = moe_finalize_routing::plan(
            moe_finalize_routing::Args {
                expanded_x: must(ex, "expandedX")?,
                expanded_row_idx: must(row_idx, "expandedRowIdx")?,
                x1,
                x2,
                bias,
                scales,
                expert_idx: ids,
                out: must(out, "out")?,
            },
            drop_pad_mode,
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

second_phase!(aclnnMoeFinalizeRoutingV2);

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
        let optional = [
            ("biasOptional", bias),
            ("scaleOptional", scale),
            ("offsetOptional", offset),
            ("antiquantScaleOptional", antiquant_scale),
            ("antiquantOffsetOptional", antiquant_offset),
            ("perTokenScaleOptional", per_token_scale),
            ("activationInputOptional", activation_input),
            ("activationQuantScaleOptional", activation_quant_scale),
            ("activationQuantOffsetOptional", activation_quant_offset),
        ];
        let (xs, ws, outs) = (list(x)?, list(weight)?, list(out)?);
        let group_list = tensor(group_list)?;
        let mut call = Call::new("aclnnGroupedMatmulV4")
            .with("x", metas(&xs))
            .with("weight", metas(&ws));
        for (name, l) in &optional[..6] {
            call = call.with(name, metas(&list(*l)?));
        }
        call = call.tensor("groupListOptional", meta(&group_list));
        for (name, l) in &optional[6..] {
            call = call.with(name, metas(&list(*l)?));
        }
        let call = call
            .int("splitItem", split_item)
            .int("groupType", group_type)
            .int("groupListType", group_list_type)
            .int("actType", act_type)
            .with("out", metas(&outs))
            .with(
                "activationFeatureOutOptional",
                metas(&list(activation_feature_out.cast_const())?),
            )
            .with(
                "dynQuantScaleOutOptional",
                metas(&list(dyn_quant_scale_out.cast_const())?),
            );
        rules::check(&call)?;
        let unsupported = optional
            .iter()
            .copied()
            .chain([
                (
                    "activationFeatureOutOptional",
                    activation_feature_out.cast_const(),
                ),
                ("dynQuantScaleOutOptional", dyn_quant_scale_out.cast_const()),
            ])
            .find(|(_, p)| !p.is_null());
        if let Some((name, _)) = unsupported {
            return Err(invalid(format!("{name} is not simulated; pass NULL")));
        }
        let attrs = grouped_matmul::Attrs {
            split_item,
            group_type,
            group_list_type,
            act_type,
        };
        let planned = grouped_matmul::plan(
            must(xs, "x")?,
            must(ws, "weight")?,
            group_list.ok_or_else(|| {
                invalid("groupListOptional is NULL; the simulator needs the group sizes")
            })?,
            attrs,
            must(outs, "out")?,
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnGroupedMatmulV4", planned, workspace_size, executor) }
    })
}

second_phase!(aclnnGroupedMatmulV4);

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
        let (x, ids) = (tensor(x)?, tensor(expert_idx)?);
        let (scale, offset) = (tensor(scale)?, tensor(offset)?);
        let (ex, row_idx) = (tensor(expanded_x_out)?, tensor(expanded_row_idx_out)?);
        let (counts, ex_scale) = (tensor(counts_out)?, tensor(expanded_scale_out)?);
        let range = int_array(active_expert_range, "activeExpertRangeOptional")?;
        let call = Call::new("aclnnMoeInitRoutingV3")
            .tensor("x", meta(&x))
            .tensor("expertIdx", meta(&ids))
            .tensor("scaleOptional", meta(&scale))
            .tensor("offsetOptional", meta(&offset))
            .int("activeNum", active_num)
            .int("expertCapacity", expert_capacity)
            .int("expertNum", expert_num)
            .int("dropPadMode", drop_pad_mode)
            .int("expertTokensNumType", tokens_num_type)
            .with("expertTokensNumFlag", Arg::Bool(tokens_num_flag))
            .int("quantMode", quant_mode)
            .with("activeExpertRangeOptional", Arg::Ints(range))
            .int("rowIdxType", row_idx_type)
            .tensor("expandedXOut", meta(&ex))
            .tensor("expandedRowIdxOut", meta(&row_idx))
            .tensor("expertTokensCountOrCumsumOut", meta(&counts))
            .tensor("expandedScaleOut", meta(&ex_scale));
        rules::check(&call)?;
        if scale.is_some() || offset.is_some() {
            return Err(invalid(
                "scaleOptional and offsetOptional are for quantisation, which is not simulated; pass NULL",
            ));
        }
        let attrs = moe_init_routing_v3::Attrs {
            expert_num,
            expert_capacity,
            drop_pad_mode,
            tokens_num_type,
            tokens_num_flag,
            quant_mode,
            range: rules::v3_active_range(&call),
            row_idx_type,
        };
        let tensors = moe_init_routing_v3::Tensors {
            x: must(x, "x")?,
            expert_idx: must(ids, "expertIdx")?,
            expanded_x: must(ex, "expandedXOut")?,
            expanded_row_idx: must(row_idx, "expandedRowIdxOut")?,
            counts: counts.filter(|_| tokens_num_flag),
            expanded_scale: must(ex_scale, "expandedScaleOut")?,
        };
        let planned = moe_init_routing_v3::plan(tensors, attrs)?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnMoeInitRoutingV3", planned, workspace_size, executor) }
    })
}

second_phase!(aclnnMoeInitRoutingV3);

unsafe extern "C" fn aclnnCastGetWorkspaceSize(
    self_: *const aclTensor,
    dtype: ascend_sys::aclDataType,
    out: *mut aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnCastGetWorkspaceSize", || {
        let (input, output) = (tensor(self_)?, tensor(out.cast_const())?);
        rules::check(
            &Call::new("aclnnCast")
                .tensor("self", meta(&input))
                .int("dtype", i64::from(dtype))
                .tensor("out", meta(&output)),
        )?;
        let planned = cast::plan(must(input, "self")?, must(output, "out")?)?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnCast", planned, workspace_size, executor) }
    })
}

second_phase!(aclnnCast);

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclnnCastGetWorkspaceSize = Some(aclnnCastGetWorkspaceSize);
    s.aclnnCast = Some(aclnnCast);
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
