//! aclnn entry points of the dense matmuls the benches compare with: aclnnMatmul and
//! aclnnWeightQuantBatchMatmulV2.

use ascend_sys::{StaticSymbols, aclOpExecutor, aclTensor, aclnnStatus};

use super::aclnn_base::{finish_plan, tensor};
use super::aclnn_ops::{meta, must};
use super::guard;
use crate::operators::aclnn::ops::{matmul, weight_quant_matmul};
use crate::rules::{self, Call};

unsafe extern "C" fn aclnnMatmulGetWorkspaceSize(
    self_: *const aclTensor,
    mat2: *const aclTensor,
    out: *mut aclTensor,
    cube_math_type: i8,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMatmulGetWorkspaceSize", || {
        let (a, b, c) = (tensor(self_)?, tensor(mat2)?, tensor(out.cast_const())?);
        rules::check(
            &Call::new("aclnnMatmul")
                .tensor("self", meta(&a))
                .tensor("mat2", meta(&b))
                .tensor("out", meta(&c))
                .int("cubeMathType", i64::from(cube_math_type)),
        )?;
        let planned = matmul::plan(
            must(a, "self")?,
            must(b, "mat2")?,
            must(c, "out")?,
            i64::from(cube_math_type),
        )?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan("aclnnMatmul", planned, workspace_size, executor) }
    })
}

second_phase!(aclnnMatmul);

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnWeightQuantBatchMatmulV2GetWorkspaceSize(
    x: *const aclTensor,
    weight: *const aclTensor,
    antiquant_scale: *const aclTensor,
    antiquant_offset: *const aclTensor,
    quant_scale: *const aclTensor,
    quant_offset: *const aclTensor,
    bias: *const aclTensor,
    antiquant_group_size: i32,
    y: *const aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnWeightQuantBatchMatmulV2GetWorkspaceSize", || {
        let (x, w, scale, offset) = (
            tensor(x)?,
            tensor(weight)?,
            tensor(antiquant_scale)?,
            tensor(antiquant_offset)?,
        );
        let (q_scale, q_offset, bias, y) = (
            tensor(quant_scale)?,
            tensor(quant_offset)?,
            tensor(bias)?,
            tensor(y)?,
        );
        rules::check(
            &Call::new("aclnnWeightQuantBatchMatmulV2")
                .tensor("x", meta(&x))
                .tensor("weight", meta(&w))
                .tensor("antiquantScale", meta(&scale))
                .tensor("antiquantOffsetOptional", meta(&offset))
                .tensor("quantScaleOptional", meta(&q_scale))
                .tensor("quantOffsetOptional", meta(&q_offset))
                .tensor("biasOptional", meta(&bias))
                .int("antiquantGroupSize", i64::from(antiquant_group_size))
                .tensor("y", meta(&y)),
        )?;
        let tensors = weight_quant_matmul::Tensors {
            x: must(x, "x")?,
            weight: must(w, "weight")?,
            scale: must(scale, "antiquantScale")?,
            offset,
            bias,
            y: must(y, "y")?,
        };
        let planned = weight_quant_matmul::plan(tensors, i64::from(antiquant_group_size))?;
        // SAFETY: out-pointers per the C contract.
        unsafe {
            finish_plan(
                "aclnnWeightQuantBatchMatmulV2",
                planned,
                workspace_size,
                executor,
            )
        }
    })
}

second_phase!(aclnnWeightQuantBatchMatmulV2);

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclnnMatmulGetWorkspaceSize = Some(aclnnMatmulGetWorkspaceSize);
    s.aclnnMatmul = Some(aclnnMatmul);
    s.aclnnWeightQuantBatchMatmulV2GetWorkspaceSize =
        Some(aclnnWeightQuantBatchMatmulV2GetWorkspaceSize);
    s.aclnnWeightQuantBatchMatmulV2 = Some(aclnnWeightQuantBatchMatmulV2);
}
