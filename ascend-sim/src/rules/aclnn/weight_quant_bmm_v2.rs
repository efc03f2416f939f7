//! aclnnWeightQuantBatchMatmulV2 on A2/A3 (ops-nn `matmul/weight_quant_batch_matmul_v2` doc
//! `aclnnWeightQuantBatchMatmulV2.md`): the INT8-weight subset the simulator computes.

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT32};

use super::{dim, dims_are, ensure, one, same_dtype};
use crate::rules::Requirement::{DTypes, Rank, Relation};
use crate::rules::{Arg, Call, INVALID, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnWeightQuantBatchMatmulV2";
const DOC: &str = "ops-nn matmul/weight_quant_batch_matmul_v2 aclnnWeightQuantBatchMatmulV2.md (A2/A3 constraints)";
/// k and n lie in [1, 65535] (the doc's 161002 list).
const MAX_KN: i64 = 65535;

/// `Err` unless `name` (when present) is per tensor (`[1]`, `[1, 1]`), per channel (`[N]`,
/// `[1, N]`) or, with a group size, per group (`[⌈K/group⌉, N]`).
fn scale_shape(c: &Call, name: &str) -> Result<(), String> {
    let Some(t) = c.tensor_of(name) else {
        return Ok(());
    };
    let (k, n, g) = (
        dim(c, "weight", 0),
        dim(c, "weight", 1),
        c.int_of("antiquantGroupSize"),
    );
    let ok = if g > 0 {
        t.dims == [(k + g - 1) / g, n]
    } else {
        [vec![1], vec![1, 1], vec![n], vec![1, n]].contains(&t.dims)
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name} dims {:?} for weight [{k}, {n}] and antiquantGroupSize {g}",
            t.dims
        ))
    }
}

pub(super) const RULES: &[Rule] = &[
    required!(OP, "weight-quant-bmm-v2.x-required", "x", DOC),
    required!(OP, "weight-quant-bmm-v2.weight-required", "weight", DOC),
    required!(
        OP,
        "weight-quant-bmm-v2.antiquant-scale-required",
        "antiquantScale",
        DOC
    ),
    required!(OP, "weight-quant-bmm-v2.y-required", "y", DOC),
    one(
        OP,
        "weight-quant-bmm-v2.x-dtype",
        "x is FLOAT16 or BF16",
        DOC,
        INVALID,
        DTypes("x", &[ACL_FLOAT16, ACL_BF16]),
        |c| c.edit_tensor("x", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.weight-dtype",
        "weight is INT8 (INT4 and INT32-packed INT4 weights are not simulated)",
        DOC,
        INVALID,
        DTypes("weight", &[ACL_INT8]),
        |c| c.edit_tensor("weight", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.x-rank",
        "x is 2-D [M, K]",
        DOC,
        INVALID,
        Rank("x", 2),
        |c| c.edit_tensor("x", |t| t.dims = vec![3, 5, 1]),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.weight-rank",
        "weight is 2-D [K, N]",
        DOC,
        INVALID,
        Rank("weight", 2),
        |c| c.edit_tensor("weight", |t| t.dims = vec![5, 4, 1]),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.k-match",
        "x's K equals weight's K",
        DOC,
        INVALID,
        Relation(|c| {
            let (kx, kw) = (dim(c, "x", 1), dim(c, "weight", 0));
            ensure(kx == kw, || format!("x K = {kx}, weight K = {kw}"))
        }),
        |c| c.edit_tensor("x", |t| t.dims[1] += 1),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.kn-range",
        "k and n lie in [1, 65535] (no empty tensor)",
        DOC,
        INVALID,
        Relation(|c| {
            let (k, n) = (dim(c, "weight", 0), dim(c, "weight", 1));
            ensure(
                (1..=MAX_KN).contains(&k) && (1..=MAX_KN).contains(&n),
                || format!("k = {k}, n = {n}"),
            )
        }),
        |c| {
            c.edit_tensor("weight", |t| t.dims[1] = 65536);
            c.edit_tensor("y", |t| t.dims[1] = 65536);
        },
    ),
    one(
        OP,
        "weight-quant-bmm-v2.m-range",
        "m lies in [1, 2^31 - 1] (no empty tensor)",
        DOC,
        INVALID,
        Relation(|c| {
            let m = dim(c, "x", 0);
            ensure((1..=i64::from(i32::MAX)).contains(&m), || {
                format!("m = {m}")
            })
        }),
        |c| {
            c.edit_tensor("x", |t| t.dims[0] = 0);
            c.edit_tensor("y", |t| t.dims[0] = 0);
        },
    ),
    one(
        OP,
        "weight-quant-bmm-v2.group-size",
        "antiquantGroupSize is 0, or a multiple of 32 in [32, k - 1] (per group)",
        DOC,
        INVALID,
        Relation(|c| {
            let (g, k) = (c.int_of("antiquantGroupSize"), dim(c, "weight", 0));
            ensure(g == 0 || (g % 32 == 0 && (32..k).contains(&g)), || {
                format!("antiquantGroupSize {g} with k = {k}")
            })
        }),
        |c| c.set("antiquantGroupSize", Arg::Int(48)),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.scale-dtype",
        "antiquantScale has x's dtype (the UINT64/INT64 packed scales are not simulated)",
        DOC,
        INVALID,
        Relation(|c| same_dtype(c, "antiquantScale", "x")),
        |c| c.edit_tensor("antiquantScale", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.scale-shape",
        "antiquantScale is [1] or [1, 1] (per tensor), [N] or [1, N] (per channel), or \
         [⌈K/group⌉, N] (per group)",
        DOC,
        INVALID,
        Relation(|c| scale_shape(c, "antiquantScale")),
        |c| c.edit_tensor("antiquantScale", |t| t.dims = vec![3]),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.offset-like-scale",
        "antiquantOffsetOptional, when present, has antiquantScale's shape and x's dtype (INT32 \
         offsets are not simulated)",
        DOC,
        INVALID,
        Relation(|c| {
            let (Some(o), Some(s)) = (
                c.tensor_of("antiquantOffsetOptional"),
                c.tensor_of("antiquantScale"),
            ) else {
                return Ok(());
            };
            if o.dims != s.dims {
                return Err(format!(
                    "antiquantOffsetOptional dims {:?}, antiquantScale {:?}",
                    o.dims, s.dims
                ));
            }
            same_dtype(c, "antiquantOffsetOptional", "x")
        }),
        |c| c.edit_tensor("antiquantOffsetOptional", |t| t.dims = vec![1]),
    ),
    one(
        OP,
        "weight-quant-bmm-v2.quant-offset-needs-scale",
        "quantOffsetOptional is given only with quantScaleOptional",
        DOC,
        INVALID,
        Relation(|c| {
            if c.present("quantOffsetOptional") && !c.present("quantScaleOptional") {
                Err("quantOffsetOptional without quantScaleOptional".to_string())
            } else {
                Ok(())
            }
        }),
        |c| {
            c.set(
                "quantOffsetOptional",
                Arg::Tensor(Some(TensorMeta::new(&[4], ACL_FLOAT))),
            )
        },
    ),
    one(
        OP,
        "weight-quant-bmm-v2.no-output-quant",
        "quantScaleOptional is NULL: the INT8 output quantization is not simulated",
        DOC,
        INVALID,
        Relation(|c| {
            if c.present("quantScaleOptional") {
                Err("quantScaleOptional is given".to_string())
            } else {
                Ok(())
            }
        }),
        |c| {
            c.set(
                "quantScaleOptional",
                Arg::Tensor(Some(TensorMeta::new(&[4], ascend_sys::ACL_INT64))),
            )
        },
    ),
    one(
        OP,
        "weight-quant-bmm-v2.bias",
        "biasOptional is [N] or [1, N]; FLOAT for BF16 x, FLOAT16 for FLOAT16 x",
        DOC,
        INVALID,
        Relation(|c| {
            let Some(b) = c.tensor_of("biasOptional") else {
                return Ok(());
            };
            let n = dim(c, "weight", 1);
            if b.dims != [n] && b.dims != [1, n] {
                return Err(format!("biasOptional dims {:?} for n = {n}", b.dims));
            }
            let want = match c.tensor_of("x").map(|x| x.dtype) {
                Some(ACL_BF16) => ACL_FLOAT,
                _ => ACL_FLOAT16,
            };
            if b.dtype == want {
                Ok(())
            } else {
                Err(format!(
                    "biasOptional is {}, expected {}",
                    crate::rules::dtype_name(b.dtype),
                    crate::rules::dtype_name(want)
                ))
            }
        }),
        |c| {
            c.set(
                "biasOptional",
                Arg::Tensor(Some(TensorMeta::new(&[4], ACL_BF16))),
            )
        },
    ),
    one(
        OP,
        "weight-quant-bmm-v2.y",
        "y is [M, N] with x's dtype (no output quantization)",
        DOC,
        INVALID,
        Relation(|c| {
            same_dtype(c, "y", "x")?;
            dims_are(c, "y", &[dim(c, "x", 0), dim(c, "weight", 1)])
        }),
        |c| c.edit_tensor("y", |t| t.dims[1] += 1),
    ),
];

/// `[3, 5] @ dequant([5, 4] INT8)` in BF16 with per-channel scales and offsets and an FP32
/// bias.
pub(super) fn sample() -> Call {
    let none = || Arg::Tensor(None);
    Call::new(OP)
        .tensor("x", Some(TensorMeta::new(&[3, 5], ACL_BF16)))
        .tensor("weight", Some(TensorMeta::new(&[5, 4], ACL_INT8)))
        .tensor("antiquantScale", Some(TensorMeta::new(&[4], ACL_BF16)))
        .tensor(
            "antiquantOffsetOptional",
            Some(TensorMeta::new(&[4], ACL_BF16)),
        )
        .with("quantScaleOptional", none())
        .with("quantOffsetOptional", none())
        .tensor("biasOptional", Some(TensorMeta::new(&[4], ACL_FLOAT)))
        .int("antiquantGroupSize", 0)
        .tensor("y", Some(TensorMeta::new(&[3, 4], ACL_BF16)))
}
