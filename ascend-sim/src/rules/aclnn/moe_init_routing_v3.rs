//! aclnnMoeInitRoutingV3 (cann-api-facts §4.6, errata 4).

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32, ACL_INT64};

use super::routing_inputs::{pairs, routing_inputs};
use super::{dim, dims_are, ensure, one, same_dtype};
use crate::rules::Requirement::{DTypes, IntIn, IntRange, Present, Rank, Relation};
use crate::rules::{Arg, Call, INVALID, NULLPTR, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnMoeInitRoutingV3";
const DOC: &str = "cann-api-facts §4.6; ops-transformer moe/moe_init_routing_v3 doc";
const ERRATUM: &str =
    "cann-api-facts errata 4; ops-transformer moe_init_routing_v3 op def, tiling and kernel";
const FLOATS: &[i32] = &[ACL_FLOAT, ACL_FLOAT16, ACL_BF16];

/// The rules shared with the other InitRouting version.
pub(super) const INPUTS: &[Rule] = routing_inputs!("moe-init-routing-v3", OP, DOC);

/// The active expert range, `[0, expertNum)` when NULL.
pub(crate) fn range(c: &Call) -> (i64, i64) {
    match c.ints_of("activeExpertRangeOptional") {
        Some([s, e]) => (*s, *e),
        Some(_) => (-1, -1),
        None => (0, c.int_of("expertNum")),
    }
}

pub(super) const RULES: &[Rule] = &[
    one(
        OP,
        "moe-init-routing-v3.expanded-scale-required",
        "expandedScaleOut is required (FLOAT [rows·k]) even without quantisation",
        ERRATUM,
        NULLPTR,
        Present("expandedScaleOut"),
        |c| c.set("expandedScaleOut", Arg::Tensor(None)),
    ),
    one(
        OP,
        "moe-init-routing-v3.active-num",
        "activeNum is -1 or rows·k (0 is a tiling error)",
        ERRATUM,
        ascend_sys::ACLNN_ERR_INNER_TILING_ERROR,
        Relation(|c| {
            let a = c.int_of("activeNum");
            ensure(a == -1 || a == pairs(c), || {
                format!("activeNum {a} with rows·k = {}", pairs(c))
            })
        }),
        |c| c.set("activeNum", Arg::Int(0)),
    ),
    one(
        OP,
        "moe-init-routing-v3.tokens-num-type",
        "expertTokensNumType is 1 (count) or 2 (key-value)",
        ERRATUM,
        INVALID,
        IntIn("expertTokensNumType", &[1, 2]),
        |c| c.set("expertTokensNumType", Arg::Int(0)),
    ),
    one(
        OP,
        "moe-init-routing-v3.row-idx-type",
        "rowIdxType is 0 (gather: source to destination, -1 pre-filled) or 1 (scatter: destination to source)",
        ERRATUM,
        INVALID,
        IntIn("rowIdxType", &[0, 1]),
        |c| c.set("rowIdxType", Arg::Int(2)),
    ),
    one(
        OP,
        "moe-init-routing-v3.active-expert-range",
        "activeExpertRangeOptional is two ints [start, end) with 0 <= start < end <= expertNum",
        DOC,
        INVALID,
        Relation(|c| {
            let (s, e) = range(c);
            ensure(0 <= s && s < e && e <= c.int_of("expertNum"), || {
                format!("{:?}", c.ints_of("activeExpertRangeOptional"))
            })
        }),
        |c| c.set("activeExpertRangeOptional", Arg::Ints(Some(vec![2, 2]))),
    ),
    one(
        OP,
        "moe-init-routing-v3.counts-required",
        "expertTokensCountOrCumsumOut is required when expertTokensNumFlag is set",
        DOC,
        NULLPTR,
        Relation(|c| {
            ensure(
                !c.bool_of("expertTokensNumFlag") || c.present("expertTokensCountOrCumsumOut"),
                || "expertTokensCountOrCumsumOut is NULL".into(),
            )
        }),
        |c| c.set("expertTokensCountOrCumsumOut", Arg::Tensor(None)),
    ),
    one(
        OP,
        "moe-init-routing-v3.counts-int64",
        "expertTokensCountOrCumsumOut is INT64",
        ERRATUM,
        INVALID,
        DTypes("expertTokensCountOrCumsumOut", &[ACL_INT64]),
        |c| c.edit_tensor("expertTokensCountOrCumsumOut", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "moe-init-routing-v3.counts-shape",
        "expertTokensCountOrCumsumOut is [end - start] (one count per active expert; type 1)",
        DOC,
        INVALID,
        Relation(|c| {
            let (s, e) = range(c);
            if c.int_of("expertTokensNumType") == 1 {
                dims_are(c, "expertTokensCountOrCumsumOut", &[e - s])
            } else {
                Ok(())
            }
        }),
        |c| c.edit_tensor("expertTokensCountOrCumsumOut", |t| t.dims = vec![4]),
    ),
    one(
        OP,
        "moe-init-routing-v3.expanded-scale-dtype",
        "expandedScaleOut is FLOAT",
        ERRATUM,
        INVALID,
        DTypes("expandedScaleOut", &[ACL_FLOAT]),
        |c| c.edit_tensor("expandedScaleOut", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "moe-init-routing-v3.expanded-scale-shape",
        "expandedScaleOut is [rows·k]",
        ERRATUM,
        INVALID,
        Relation(|c| dims_are(c, "expandedScaleOut", &[pairs(c)])),
        |c| c.edit_tensor("expandedScaleOut", |t| t.dims = vec![4]),
    ),
    one(
        OP,
        "moe-init-routing-v3.expanded-x-shape",
        "expandedXOut is [rows·k, hidden] (dropless)",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "expandedXOut", &[pairs(c), dim(c, "x", 1)])),
        |c| c.edit_tensor("expandedXOut", |t| t.dims = vec![7, 6]),
    ),
];

/// 4 rows of hidden 6, top-2 of 4 experts, experts 1..3 local, counts, gather row index.
pub(super) fn sample() -> Call {
    Call::new(OP)
        .tensor("x", Some(TensorMeta::new(&[4, 6], ACL_FLOAT)))
        .tensor("expertIdx", Some(TensorMeta::new(&[4, 2], ACL_INT32)))
        .tensor("scaleOptional", None)
        .tensor("offsetOptional", None)
        .int("activeNum", 8)
        .int("expertCapacity", 0)
        .int("expertNum", 4)
        .int("dropPadMode", 0)
        .int("expertTokensNumType", 1)
        .with("expertTokensNumFlag", Arg::Bool(true))
        .int("quantMode", -1)
        .with("activeExpertRangeOptional", Arg::Ints(Some(vec![1, 3])))
        .int("rowIdxType", 0)
        .tensor("expandedXOut", Some(TensorMeta::new(&[8, 6], ACL_FLOAT)))
        .tensor("expandedRowIdxOut", Some(TensorMeta::new(&[8], ACL_INT32)))
        .tensor(
            "expertTokensCountOrCumsumOut",
            Some(TensorMeta::new(&[2], ACL_INT64)),
        )
        .tensor("expandedScaleOut", Some(TensorMeta::new(&[8], ACL_FLOAT)))
}
