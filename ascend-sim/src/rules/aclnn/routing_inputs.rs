//! The argument rules aclnnMoeInitRoutingV2 and V3 share (x, expertIdx, expandedXOut,
//! expandedRowIdxOut), one macro so both tables carry them with their own ids.

/// rows·k, the flattened (token, k) pairs.
pub(super) fn pairs(c: &crate::rules::Call) -> i64 {
    super::dim(c, "x", 0) * super::dim(c, "expertIdx", 1)
}

/// The shared rules of an InitRouting version: `routing_inputs!("moe-init-routing-v2", OP, DOC)`.
macro_rules! routing_inputs {
    ($prefix:literal, $op:expr, $doc:expr) => {
        &[
            one(
                $op,
                concat!($prefix, ".x-required"),
                "x is required",
                $doc,
                NULLPTR,
                Present("x"),
                |c| c.set("x", Arg::Tensor(None)),
            ),
            one(
                $op,
                concat!($prefix, ".expert-idx-required"),
                "expertIdx is required",
                $doc,
                NULLPTR,
                Present("expertIdx"),
                |c| c.set("expertIdx", Arg::Tensor(None)),
            ),
            one(
                $op,
                concat!($prefix, ".expanded-x-required"),
                "expandedXOut is required",
                $doc,
                NULLPTR,
                Present("expandedXOut"),
                |c| c.set("expandedXOut", Arg::Tensor(None)),
            ),
            one(
                $op,
                concat!($prefix, ".expanded-row-idx-required"),
                "expandedRowIdxOut is required",
                $doc,
                NULLPTR,
                Present("expandedRowIdxOut"),
                |c| c.set("expandedRowIdxOut", Arg::Tensor(None)),
            ),
            one(
                $op,
                concat!($prefix, ".x-rank"),
                "x is 2-D [rows, hidden]",
                $doc,
                INVALID,
                Rank("x", 2),
                |c| c.edit_tensor("x", |t| t.dims.push(1)),
            ),
            one(
                $op,
                concat!($prefix, ".x-dtype"),
                "x is FLOAT, FLOAT16 or BF16 (without quantisation)",
                $doc,
                INVALID,
                DTypes("x", FLOATS),
                |c| c.edit_tensor("x", |t| t.dtype = ACL_INT32),
            ),
            one(
                $op,
                concat!($prefix, ".expert-idx-rank"),
                "expertIdx is 2-D [rows, k]",
                $doc,
                INVALID,
                Rank("expertIdx", 2),
                |c| c.edit_tensor("expertIdx", |t| t.dims = vec![8]),
            ),
            one(
                $op,
                concat!($prefix, ".expert-idx-dtype"),
                "expertIdx is INT32",
                $doc,
                INVALID,
                DTypes("expertIdx", &[ACL_INT32]),
                |c| c.edit_tensor("expertIdx", |t| t.dtype = ACL_INT64),
            ),
            one(
                $op,
                concat!($prefix, ".expert-idx-rows"),
                "expertIdx has one row per row of x",
                $doc,
                INVALID,
                Relation(|c| {
                    let (a, b) = (dim(c, "expertIdx", 0), dim(c, "x", 0));
                    super::ensure(a == b, || format!("{a} rows of ids for {b} rows of x"))
                }),
                |c| c.edit_tensor("expertIdx", |t| t.dims[0] = 3),
            ),
            one(
                $op,
                concat!($prefix, ".expert-num"),
                "expertNum is at least 1",
                $doc,
                INVALID,
                IntRange("expertNum", 1, i64::MAX),
                |c| c.set("expertNum", Arg::Int(0)),
            ),
            one(
                $op,
                concat!($prefix, ".expanded-x-dtype"),
                "expandedXOut has x's dtype",
                $doc,
                INVALID,
                Relation(|c| same_dtype(c, "expandedXOut", "x")),
                |c| c.edit_tensor("expandedXOut", |t| t.dtype = ACL_FLOAT16),
            ),
            one(
                $op,
                concat!($prefix, ".expanded-row-idx-dtype"),
                "expandedRowIdxOut is INT32",
                $doc,
                INVALID,
                DTypes("expandedRowIdxOut", &[ACL_INT32]),
                |c| c.edit_tensor("expandedRowIdxOut", |t| t.dtype = ACL_INT64),
            ),
            one(
                $op,
                concat!($prefix, ".expanded-row-idx-shape"),
                "expandedRowIdxOut is [rows·k]",
                $doc,
                INVALID,
                Relation(|c| {
                    dims_are(
                        c,
                        "expandedRowIdxOut",
                        &[crate::rules::aclnn::routing_inputs::pairs(c)],
                    )
                }),
                |c| c.edit_tensor("expandedRowIdxOut", |t| t.dims = vec![4, 2]),
            ),
        ]
    };
}

pub(super) use routing_inputs;
