//! aclnnMoeGatingTopK (cann-api-facts §4.6, errata 2).

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32};

use super::{dim, dims_are, ensure, one, same_dtype};
use crate::rules::Requirement::{DTypes, IntIn, Present, Rank, Relation};
use crate::rules::{Arg, Call, Enforcement, INVALID, NULLPTR, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnMoeGatingTopK";
const DOC: &str =
    "cann-api-facts §4.6; ops-transformer moe/moe_gating_top_k/docs/aclnnMoeGatingTopK.md";
const ERRATUM: &str = "cann-api-facts errata 2; op def (out required), op_api CheckNotNull(outOut)";
const FLOATS: &[i32] = &[ACL_FLOAT, ACL_FLOAT16, ACL_BF16];
const MAX_EXPERTS: i64 = 2048;

pub(super) const RULES: &[Rule] = &[
    required!(OP, "moe-gating-topk.x-required", "x", DOC),
    required!(OP, "moe-gating-topk.y-required", "yOut", DOC),
    required!(
        OP,
        "moe-gating-topk.expert-idx-required",
        "expertIdxOut",
        DOC
    ),
    one(
        OP,
        "moe-gating-topk.out-required",
        "outOut is required (an FP32 tensor of x's shape) whatever outFlag says; outFlag only says whether it is written",
        ERRATUM,
        NULLPTR,
        Present("outOut"),
        |c| c.set("outOut", Arg::Tensor(None)),
    ),
    one(
        OP,
        "moe-gating-topk.x-rank",
        "x is 2-D [rows, experts]",
        DOC,
        INVALID,
        Rank("x", 2),
        |c| c.edit_tensor("x", |t| t.dims.push(1)),
    ),
    one(
        OP,
        "moe-gating-topk.x-dtype",
        "x is FLOAT, FLOAT16 or BF16",
        DOC,
        INVALID,
        DTypes("x", FLOATS),
        |c| c.edit_tensor("x", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "moe-gating-topk.experts-range",
        "the expert count (x's last dim) is 1..=2048",
        DOC,
        INVALID,
        Relation(|c| {
            let e = dim(c, "x", 1);
            ensure((1..=MAX_EXPERTS).contains(&e), || format!("{e} experts"))
        }),
        |c| c.edit_tensor("x", |t| t.dims[1] = MAX_EXPERTS + 2),
    ),
    one(
        OP,
        "moe-gating-topk.group-count",
        "groupCount divides the expert count and leaves more than 2 experts per group",
        DOC,
        INVALID,
        Relation(|c| {
            let (e, g) = (dim(c, "x", 1), c.int_of("groupCount"));
            ensure(g >= 1 && e % g == 0 && e / g > 2, || {
                format!("groupCount {g} for {e} experts")
            })
        }),
        |c| c.set("groupCount", Arg::Int(4)),
    ),
    one(
        OP,
        "moe-gating-topk.k-group-range",
        "kGroup is 1..=groupCount",
        DOC,
        INVALID,
        Relation(|c| {
            let (kg, g) = (c.int_of("kGroup"), c.int_of("groupCount"));
            ensure((1..=g).contains(&kg), || {
                format!("kGroup {kg} with groupCount {g}")
            })
        }),
        |c| c.set("kGroup", Arg::Int(3)),
    ),
    one(
        OP,
        "moe-gating-topk.k-range",
        "k is 1..=kGroup·experts/groupCount (the experts of the kept groups)",
        DOC,
        INVALID,
        Relation(|c| {
            let (k, kg, g) = (c.int_of("k"), c.int_of("kGroup"), c.int_of("groupCount"));
            let reachable = kg * (dim(c, "x", 1) / g);
            ensure((1..=reachable).contains(&k), || {
                format!("k {k} with {reachable} experts in the kept groups")
            })
        }),
        |c| c.set("k", Arg::Int(5)),
    ),
    one(
        OP,
        "moe-gating-topk.renorm-zero",
        "renorm is 0",
        DOC,
        INVALID,
        IntIn("renorm", &[0]),
        |c| c.set("renorm", Arg::Int(1)),
    ),
    one(
        OP,
        "moe-gating-topk.norm-type",
        "normType is 0 (softmax) or 1 (sigmoid)",
        DOC,
        INVALID,
        IntIn("normType", &[0, 1]),
        |c| c.set("normType", Arg::Int(2)),
    ),
    one(
        OP,
        "moe-gating-topk.group-select-mode",
        "groupSelectMode is 0 (group max) or 1 (sum of the group's top two)",
        DOC,
        INVALID,
        IntIn("groupSelectMode", &[0, 1]),
        |c| c.set("groupSelectMode", Arg::Int(2)),
    ),
    one(
        OP,
        "moe-gating-topk.bias-dtype",
        "biasOptional has x's dtype (the kernel reads it as x's type)",
        "ops-transformer moe/moe_gating_top_k/op_kernel/moe_gating_top_k_generalized.h (biasGm_ of x's type T)",
        INVALID,
        Relation(|c| same_dtype(c, "biasOptional", "x")),
        |c| c.edit_tensor("biasOptional", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "moe-gating-topk.bias-shape",
        "biasOptional is [experts]",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "biasOptional", &[dim(c, "x", 1)])),
        |c| c.edit_tensor("biasOptional", |t| t.dims = vec![1, 8]),
    ),
    one(
        OP,
        "moe-gating-topk.y-dtype",
        "yOut has x's dtype",
        DOC,
        INVALID,
        Relation(|c| same_dtype(c, "yOut", "x")),
        |c| c.edit_tensor("yOut", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "moe-gating-topk.y-shape",
        "yOut is [rows, k]",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "yOut", &[dim(c, "x", 0), c.int_of("k")])),
        |c| c.edit_tensor("yOut", |t| t.dims = vec![3, 3]),
    ),
    one(
        OP,
        "moe-gating-topk.expert-idx-dtype",
        "expertIdxOut is INT32",
        DOC,
        INVALID,
        DTypes("expertIdxOut", &[ACL_INT32]),
        |c| c.edit_tensor("expertIdxOut", |t| t.dtype = ascend_sys::ACL_INT64),
    ),
    one(
        OP,
        "moe-gating-topk.expert-idx-shape",
        "expertIdxOut is [rows, k]",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "expertIdxOut", &[dim(c, "x", 0), c.int_of("k")])),
        |c| c.edit_tensor("expertIdxOut", |t| t.dims = vec![2, 2]),
    ),
    one(
        OP,
        "moe-gating-topk.out-dtype",
        "outOut is FLOAT",
        ERRATUM,
        INVALID,
        DTypes("outOut", &[ACL_FLOAT]),
        |c| c.edit_tensor("outOut", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "moe-gating-topk.out-shape",
        "outOut has x's shape [rows, experts]",
        ERRATUM,
        INVALID,
        Relation(|c| dims_are(c, "outOut", &[dim(c, "x", 0), dim(c, "x", 1)])),
        |c| c.edit_tensor("outOut", |t| t.dims = vec![3, 4]),
    ),
    Rule {
        id: "moe-gating-topk.cann-8.1-kernel",
        call: OP,
        statement: "under CANN 8.1.RC1 the kernel ignores normType and groupSelectMode: sigmoid scores, top-2-sum groups and renormalised weights whatever they say",
        source: "cann-api-facts errata 2; ops-transformer moe_gating_top_k_e_k_fullload.h (8.1.RC1)",
        test: "ascend-sim/tests/gating_top_k_cann_8_1.rs::cann_8_1_computes_sigmoid_top2_renormalised",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/operators/aclnn/ops/moe_gating_top_k.rs",
        },
    },
];

/// 3 rows of 8 experts in 2 groups, 1 group and 2 experts per row, sigmoid, top-2 sums.
pub(super) fn sample() -> Call {
    Call::new(OP)
        .tensor("x", Some(TensorMeta::new(&[3, 8], ACL_FLOAT)))
        .tensor("biasOptional", Some(TensorMeta::new(&[8], ACL_FLOAT)))
        .int("k", 2)
        .int("kGroup", 1)
        .int("groupCount", 2)
        .int("groupSelectMode", 1)
        .int("renorm", 0)
        .int("normType", 1)
        .with("outFlag", Arg::Bool(true))
        .with("routedScalingFactor", Arg::Float(1.0))
        .with("eps", Arg::Float(1e-20))
        .tensor("yOut", Some(TensorMeta::new(&[3, 2], ACL_FLOAT)))
        .tensor("expertIdxOut", Some(TensorMeta::new(&[3, 2], ACL_INT32)))
        .tensor("outOut", Some(TensorMeta::new(&[3, 8], ACL_FLOAT)))
}
