//! aclnnGroupedMatmulV4 (cann-api-facts §4.5, errata 5).

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT32, ACL_INT64};

use super::{dim, ensure, one};
use crate::rules::Requirement::{DTypes, IntIn, Present, Relation};
use crate::rules::{Arg, Call, Enforcement, INVALID, NULLPTR, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnGroupedMatmulV4";
const DOC: &str =
    "cann-api-facts §4.5; ops-transformer gmm/grouped_matmul aclnnGroupedMatmulV4_en.md";
const ERRATUM: &str =
    "cann-api-facts errata 5; aclnnGroupedMatmulV4_en.md (sum of group sizes equals M)";
/// x and weight dtypes on A2/A3 that the simulator can hold (INT4 is not simulated).
const INPUTS: &[i32] = &[ACL_FLOAT16, ACL_BF16, ACL_FLOAT, ACL_INT8];
const MAX_LIST: usize = 128;

/// Tensors in list `name` (0 for NULL).
fn count(c: &Call, name: &str) -> usize {
    c.tensors_of(name).len()
}

pub(super) const RULES: &[Rule] = &[
    one(
        OP,
        "grouped-matmul-v4.x-required",
        "x is required",
        DOC,
        NULLPTR,
        Present("x"),
        |c| c.set("x", Arg::List(None)),
    ),
    one(
        OP,
        "grouped-matmul-v4.weight-required",
        "weight is required",
        DOC,
        NULLPTR,
        Present("weight"),
        |c| c.set("weight", Arg::List(None)),
    ),
    one(
        OP,
        "grouped-matmul-v4.out-required",
        "out is required",
        DOC,
        NULLPTR,
        Present("out"),
        |c| c.set("out", Arg::List(None)),
    ),
    one(
        OP,
        "grouped-matmul-v4.list-length",
        "x, weight and out list at most 128 tensors",
        DOC,
        INVALID,
        Relation(|c| {
            for name in ["x", "weight", "out"] {
                if count(c, name) > MAX_LIST {
                    return Err(format!("{name} lists {} tensors", count(c, name)));
                }
            }
            Ok(())
        }),
        |c| {
            let w = c.tensor_of("weight").cloned();
            c.set(
                "weight",
                Arg::List(Some(vec![
                    w.unwrap_or(TensorMeta::new(&[1], ACL_BF16));
                    MAX_LIST + 1
                ])),
            );
        },
    ),
    one(
        OP,
        "grouped-matmul-v4.split-item",
        "splitItem is 0..=3 (0/1 a list of outputs, 2/3 one concatenated output)",
        DOC,
        INVALID,
        IntIn("splitItem", &[0, 1, 2, 3]),
        |c| c.set("splitItem", Arg::Int(4)),
    ),
    one(
        OP,
        "grouped-matmul-v4.group-type",
        "groupType is -1 (none), 0 (split M) or 2 (split K); split N (1) is not supported on A2/A3",
        DOC,
        INVALID,
        IntIn("groupType", &[-1, 0, 2]),
        |c| c.set("groupType", Arg::Int(1)),
    ),
    one(
        OP,
        "grouped-matmul-v4.group-list-type",
        "groupListType is 0 (cumsum), 1 (counts) or 2 ([e, 2] index/size pairs)",
        DOC,
        INVALID,
        IntIn("groupListType", &[0, 1, 2]),
        |c| c.set("groupListType", Arg::Int(3)),
    ),
    one(
        OP,
        "grouped-matmul-v4.act-type",
        "actType is 0..=5 except 3 (GELU erf is not supported on A2/A3)",
        DOC,
        INVALID,
        IntIn("actType", &[0, 1, 2, 4, 5]),
        |c| c.set("actType", Arg::Int(3)),
    ),
    one(
        OP,
        "grouped-matmul-v4.x-dtype",
        "x is FLOAT16, BF16, FLOAT or INT8 (INT4 is not simulated)",
        DOC,
        INVALID,
        DTypes("x", INPUTS),
        |c| c.edit_tensor("x", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "grouped-matmul-v4.weight-dtype",
        "weight is FLOAT16, BF16, FLOAT or INT8 (INT4 is not simulated)",
        DOC,
        INVALID,
        DTypes("weight", INPUTS),
        |c| c.edit_tensor("weight", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "grouped-matmul-v4.out-dtype",
        "out is FLOAT16, BF16, INT8, FLOAT or INT32",
        DOC,
        INVALID,
        DTypes(
            "out",
            &[ACL_FLOAT16, ACL_BF16, ACL_INT8, ACL_FLOAT, ACL_INT32],
        ),
        |c| c.edit_tensor("out", |t| t.dtype = ACL_INT64),
    ),
    one(
        OP,
        "grouped-matmul-v4.bias-dtype",
        "biasOptional is FLOAT16, FLOAT or INT32",
        DOC,
        INVALID,
        DTypes("biasOptional", &[ACL_FLOAT16, ACL_FLOAT, ACL_INT32]),
        |c| {
            c.set(
                "biasOptional",
                Arg::List(Some(vec![TensorMeta::new(&[3, 5], ACL_BF16)])),
            )
        },
    ),
    one(
        OP,
        "grouped-matmul-v4.per-token-scale",
        "perTokenScaleOptional is FLOAT and only with single-tensor x, weight and out",
        DOC,
        INVALID,
        Relation(|c| {
            let Some(s) = c.tensor_of("perTokenScaleOptional") else {
                return Ok(());
            };
            if s.dtype != ACL_FLOAT {
                return Err(format!(
                    "perTokenScaleOptional is {}",
                    crate::rules::dtype_name(s.dtype)
                ));
            }
            match ["x", "weight", "out"]
                .into_iter()
                .find(|n| count(c, n) != 1)
            {
                Some(n) => Err(format!("{n} lists {} tensors", count(c, n))),
                None => Ok(()),
            }
        }),
        |c| {
            c.set(
                "perTokenScaleOptional",
                Arg::List(Some(vec![TensorMeta::new(&[10], ACL_BF16)])),
            )
        },
    ),
    one(
        OP,
        "grouped-matmul-v4.group-list-dtype",
        "groupListOptional is INT64",
        DOC,
        INVALID,
        DTypes("groupListOptional", &[ACL_INT64]),
        |c| c.edit_tensor("groupListOptional", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "grouped-matmul-v4.group-list-pairs",
        "groupListType 2 needs INT8 x and groupType 0 (split M) on A2/A3",
        DOC,
        INVALID,
        Relation(|c| {
            let int8 = c.tensor_of("x").is_some_and(|x| x.dtype == ACL_INT8);
            ensure(
                c.int_of("groupListType") != 2 || (int8 && c.int_of("groupType") == 0),
                || "groupListType 2 with non-INT8 x or groupType other than 0".into(),
            )
        }),
        |c| c.set("groupListType", Arg::Int(2)),
    ),
    one(
        OP,
        "grouped-matmul-v4.weight-k",
        "in the single-tensor split-M form weight is [groups, K, N] with x's K",
        DOC,
        INVALID,
        Relation(|c| {
            if count(c, "weight") != 1 || c.int_of("groupType") != 0 {
                return Ok(());
            }
            let w = c
                .tensor_of("weight")
                .map(|w| w.dims.clone())
                .unwrap_or_default();
            ensure(w.len() == 3 && w[1] == dim(c, "x", 1), || {
                format!("weight dims {w:?} for x of K = {}", dim(c, "x", 1))
            })
        }),
        |c| c.edit_tensor("weight", |t| t.dims[1] = 5),
    ),
    one(
        OP,
        "grouped-matmul-v4.group-list-length",
        "in the single-tensor form groupListOptional has one entry per weight group",
        DOC,
        INVALID,
        Relation(|c| {
            let (Some(g), Some(w)) = (c.tensor_of("groupListOptional"), c.tensor_of("weight"))
            else {
                return Ok(());
            };
            if count(c, "weight") != 1 || c.int_of("groupListType") == 2 || g.dims == [w.dim(0)] {
                Ok(())
            } else {
                Err(format!(
                    "groupListOptional dims {:?} for {} weight groups",
                    g.dims,
                    w.dim(0)
                ))
            }
        }),
        |c| c.edit_tensor("groupListOptional", |t| t.dims = vec![4]),
    ),
    one(
        OP,
        "grouped-matmul-v4.out-shape",
        "in the single-tensor split-M form out is [M, N]",
        DOC,
        INVALID,
        Relation(|c| {
            if count(c, "out") != 1 || count(c, "weight") != 1 || c.int_of("groupType") != 0 {
                return Ok(());
            }
            let n = dim(c, "weight", 2);
            let want = vec![dim(c, "x", 0), n];
            let got = c
                .tensor_of("out")
                .map(|o| o.dims.clone())
                .unwrap_or_default();
            ensure(got == want, || {
                format!("out dims {got:?}, expected {want:?}")
            })
        }),
        |c| c.edit_tensor("out", |t| t.dims = vec![10, 4]),
    ),
    Rule {
        id: "grouped-matmul-v4.group-sum-equals-m",
        call: OP,
        statement: "in the single-tensor form the group sizes sum to M (the last cumsum equals M); sizes are non-negative and cumsums non-decreasing",
        source: ERRATUM,
        test: "tests/common/moe_device_cases.rs::grouped_matmul_group_sizes_must_sum_to_m",
        enforcement: Enforcement::AtRun { status: INVALID },
    },
];

/// 10 rows of K 4 in 3 groups of N 5, BF16, counts, one output tensor.
pub(super) fn sample() -> Call {
    let none = || Arg::List(None);
    Call::new(OP)
        .with(
            "x",
            Arg::List(Some(vec![TensorMeta::new(&[10, 4], ACL_BF16)])),
        )
        .with(
            "weight",
            Arg::List(Some(vec![TensorMeta::new(&[3, 4, 5], ACL_BF16)])),
        )
        .with("biasOptional", none())
        .with("scaleOptional", none())
        .with("offsetOptional", none())
        .with("antiquantScaleOptional", none())
        .with("antiquantOffsetOptional", none())
        .with("perTokenScaleOptional", none())
        .tensor("groupListOptional", Some(TensorMeta::new(&[3], ACL_INT64)))
        .with("activationInputOptional", none())
        .with("activationQuantScaleOptional", none())
        .with("activationQuantOffsetOptional", none())
        .int("splitItem", 3)
        .int("groupType", 0)
        .int("groupListType", 1)
        .int("actType", 0)
        .with(
            "out",
            Arg::List(Some(vec![TensorMeta::new(&[10, 5], ACL_BF16)])),
        )
        .with("activationFeatureOutOptional", none())
        .with("dynQuantScaleOutOptional", none())
}
