//! aclnnMoeInitRoutingV2 (cann-api-facts §4.6, errata 3).

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32, ACL_INT64};

use super::routing_inputs::{pairs, routing_inputs};
use super::{dim, dims_are, ensure, one, same_dtype};
use crate::rules::Requirement::{DTypes, IntIn, IntRange, Present, Rank, Relation};
use crate::rules::{Arg, Call, INVALID, NULLPTR, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnMoeInitRoutingV2";
const DOC: &str = "cann-api-facts §4.6; ops-transformer moe/moe_init_routing_v2 op_api header and aclnnMoeInitRoutingV2_en.md";
const ERRATUM: &str =
    "cann-api-facts errata 3; op def moe_init_routing_v2_def.cpp (INT32 count outputs)";
const FLOATS: &[i32] = &[ACL_FLOAT, ACL_FLOAT16, ACL_BF16];

/// The rules shared with the other InitRouting version.
pub(super) const INPUTS: &[Rule] = routing_inputs!("moe-init-routing-v2", OP, DOC);

pub(super) const RULES: &[Rule] = &[
    one(
        OP,
        "moe-init-routing-v2.drop-pad-mode",
        "dropPadMode is 0 (dropless) or 1 (drop/pad)",
        DOC,
        INVALID,
        IntIn("dropPadMode", &[0, 1]),
        |c| c.set("dropPadMode", Arg::Int(2)),
    ),
    one(
        OP,
        "moe-init-routing-v2.active-num",
        "activeNum is not negative",
        DOC,
        INVALID,
        IntRange("activeNum", 0, i64::MAX),
        |c| c.set("activeNum", Arg::Int(-1)),
    ),
    one(
        OP,
        "moe-init-routing-v2.capacity-range",
        "in drop/pad mode expertCapacity lies in (0, numRows], numRows being x's rows",
        ERRATUM,
        INVALID,
        Relation(|c| {
            let (cap, rows) = (c.int_of("expertCapacity"), dim(c, "x", 0));
            ensure(
                c.int_of("dropPadMode") != 1 || (1..=rows).contains(&cap),
                || format!("expertCapacity {cap} with {rows} rows"),
            )
        }),
        |c| {
            c.set("dropPadMode", Arg::Int(1));
            c.set("expertCapacity", Arg::Int(5));
        },
    ),
    one(
        OP,
        "moe-init-routing-v2.count-flag",
        "expertTokensCountOrCumsumFlag is 0 (none), 1 (cumsum) or 2 (counts)",
        DOC,
        INVALID,
        IntIn("expertTokensCountOrCumsumFlag", &[0, 1, 2]),
        |c| c.set("expertTokensCountOrCumsumFlag", Arg::Int(3)),
    ),
    one(
        OP,
        "moe-init-routing-v2.counts-dropless-only",
        "expert token counts or cumsums are produced in dropless mode only",
        DOC,
        INVALID,
        Relation(|c| {
            ensure(
                c.int_of("expertTokensCountOrCumsumFlag") == 0 || c.int_of("dropPadMode") == 0,
                || "counts requested with dropPadMode 1".into(),
            )
        }),
        |c| {
            c.set("dropPadMode", Arg::Int(1));
            c.set("expertCapacity", Arg::Int(2));
        },
    ),
    one(
        OP,
        "moe-init-routing-v2.counts-required",
        "expertTokensCountOrCumsumOut is required when expertTokensCountOrCumsumFlag is not 0",
        DOC,
        NULLPTR,
        Relation(|c| {
            if c.int_of("expertTokensCountOrCumsumFlag") == 0
                || c.present("expertTokensCountOrCumsumOut")
            {
                Ok(())
            } else {
                Err("expertTokensCountOrCumsumOut is NULL".into())
            }
        }),
        |c| c.set("expertTokensCountOrCumsumOut", Arg::Tensor(None)),
    ),
    one(
        OP,
        "moe-init-routing-v2.counts-int32",
        "expertTokensCountOrCumsumOut is INT32 only (an INT64 output is rejected)",
        ERRATUM,
        INVALID,
        DTypes("expertTokensCountOrCumsumOut", &[ACL_INT32]),
        |c| c.edit_tensor("expertTokensCountOrCumsumOut", |t| t.dtype = ACL_INT64),
    ),
    one(
        OP,
        "moe-init-routing-v2.counts-shape",
        "expertTokensCountOrCumsumOut is [expertNum]",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "expertTokensCountOrCumsumOut", &[c.int_of("expertNum")])),
        |c| c.edit_tensor("expertTokensCountOrCumsumOut", |t| t.dims = vec![5]),
    ),
    one(
        OP,
        "moe-init-routing-v2.before-capacity-required",
        "expertTokensBeforeCapacityOut is required when expertTokensBeforeCapacityFlag is set",
        DOC,
        NULLPTR,
        Relation(|c| {
            if !c.bool_of("expertTokensBeforeCapacityFlag")
                || c.present("expertTokensBeforeCapacityOut")
            {
                Ok(())
            } else {
                Err("expertTokensBeforeCapacityOut is NULL".into())
            }
        }),
        |c| c.set("expertTokensBeforeCapacityFlag", Arg::Bool(true)),
    ),
    one(
        OP,
        "moe-init-routing-v2.before-capacity-int32",
        "expertTokensBeforeCapacityOut is INT32, like the other count output",
        ERRATUM,
        INVALID,
        DTypes("expertTokensBeforeCapacityOut", &[ACL_INT32]),
        |c| {
            c.set("expertTokensBeforeCapacityFlag", Arg::Bool(true));
            c.set(
                "expertTokensBeforeCapacityOut",
                Arg::Tensor(Some(TensorMeta::new(&[4], ACL_INT64))),
            );
        },
    ),
    one(
        OP,
        "moe-init-routing-v2.before-capacity-shape",
        "expertTokensBeforeCapacityOut is [expertNum]",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "expertTokensBeforeCapacityOut", &[c.int_of("expertNum")])),
        |c| {
            c.set("expertTokensBeforeCapacityFlag", Arg::Bool(true));
            c.set(
                "expertTokensBeforeCapacityOut",
                Arg::Tensor(Some(TensorMeta::new(&[3], ACL_INT32))),
            );
        },
    ),
    one(
        OP,
        "moe-init-routing-v2.expanded-x-shape",
        "expandedXOut is [min(activeNum, rows·k) or rows·k, hidden] when dropless, [expertNum, expertCapacity, hidden] in drop/pad mode",
        DOC,
        INVALID,
        Relation(|c| {
            let (n, hidden, active) = (pairs(c), dim(c, "x", 1), c.int_of("activeNum"));
            let want = if c.int_of("dropPadMode") == 0 {
                vec![if active > 0 { n.min(active) } else { n }, hidden]
            } else {
                vec![c.int_of("expertNum"), c.int_of("expertCapacity"), hidden]
            };
            dims_are(c, "expandedXOut", &want)
        }),
        |c| c.edit_tensor("expandedXOut", |t| t.dims = vec![7, 6]),
    ),
];

/// 4 rows of hidden 6, top-2 of 4 experts, dropless, counts.
pub(super) fn sample() -> Call {
    Call::new(OP)
        .tensor("x", Some(TensorMeta::new(&[4, 6], ACL_FLOAT)))
        .tensor("expertIdx", Some(TensorMeta::new(&[4, 2], ACL_INT32)))
        .int("activeNum", 0)
        .int("expertCapacity", 0)
        .int("expertNum", 4)
        .int("dropPadMode", 0)
        .int("expertTokensCountOrCumsumFlag", 2)
        .with("expertTokensBeforeCapacityFlag", Arg::Bool(false))
        .tensor("expandedXOut", Some(TensorMeta::new(&[8, 6], ACL_FLOAT)))
        .tensor("expandedRowIdxOut", Some(TensorMeta::new(&[8], ACL_INT32)))
        .tensor(
            "expertTokensCountOrCumsumOut",
            Some(TensorMeta::new(&[4], ACL_INT32)),
        )
        .tensor("expertTokensBeforeCapacityOut", None)
}
