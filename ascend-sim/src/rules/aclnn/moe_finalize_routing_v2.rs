//! aclnnMoeFinalizeRoutingV2 (cann-api-facts §4.6, errata 7).

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32, ACL_INT64};

use super::{dim, dims_are, one, same_dtype};
use crate::rules::Requirement::{DTypes, IntRange, Rank, Relation};
use crate::rules::{Arg, Call, INVALID, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnMoeFinalizeRoutingV2";
const DOC: &str =
    "cann-api-facts §4.6; ops-transformer moe/moe_finalize_routing_v2 header and _en.md";
const ERRATUM: &str = "cann-api-facts errata 7; aclnnMoeFinalizeRoutingV2_en.md dtype table";
const FLOATS: &[i32] = &[ACL_FLOAT, ACL_FLOAT16, ACL_BF16];

/// K: scales' second dim, 1 without scales.
fn k(c: &Call) -> i64 {
    c.tensor_of("scalesOptional").map_or(1, |s| s.dim(1))
}

pub(super) const RULES: &[Rule] = &[
    required!(
        OP,
        "moe-finalize-routing-v2.expanded-x-required",
        "expandedX",
        DOC
    ),
    required!(
        OP,
        "moe-finalize-routing-v2.expanded-row-idx-required",
        "expandedRowIdx",
        DOC
    ),
    required!(OP, "moe-finalize-routing-v2.out-required", "out", DOC),
    one(
        OP,
        "moe-finalize-routing-v2.out-rank",
        "out is 2-D [rows, hidden]",
        DOC,
        INVALID,
        Rank("out", 2),
        |c| c.edit_tensor("out", |t| t.dims.push(1)),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.out-dtype",
        "out is FLOAT, FLOAT16 or BF16",
        DOC,
        INVALID,
        DTypes("out", FLOATS),
        |c| c.edit_tensor("out", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.drop-pad-mode",
        "dropPadMode is 0..=3 (0/1 column layout of expandedRowIdx, 2/3 row layout; 1/3 drop/pad)",
        DOC,
        INVALID,
        IntRange("dropPadMode", 0, 3),
        |c| c.set("dropPadMode", Arg::Int(4)),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.expanded-x-dtype",
        "expandedX has out's dtype",
        DOC,
        INVALID,
        Relation(|c| same_dtype(c, "expandedX", "out")),
        |c| c.edit_tensor("expandedX", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.expanded-x-shape",
        "expandedX is [rows·k, hidden] (dropPadMode 0/2) or [experts, capacity, hidden] (1/3)",
        DOC,
        INVALID,
        Relation(|c| {
            let e = c
                .tensor_of("expandedX")
                .map(|t| t.dims.clone())
                .unwrap_or_default();
            let rank = if c.int_of("dropPadMode") % 2 == 1 {
                3
            } else {
                2
            };
            if e.len() == rank && e.last() == Some(&dim(c, "out", 1)) {
                Ok(())
            } else {
                Err(format!(
                    "expandedX dims {e:?} for hidden {}",
                    dim(c, "out", 1)
                ))
            }
        }),
        |c| c.edit_tensor("expandedX", |t| t.dims = vec![8, 5]),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.scales-dtype",
        "scalesOptional has expandedX's dtype, or is FLOAT with BF16 expandedX (FP16 with FLOAT scales is not listed)",
        ERRATUM,
        INVALID,
        Relation(|c| {
            let (Some(s), Some(e)) = (c.tensor_of("scalesOptional"), c.tensor_of("expandedX"))
            else {
                return Ok(());
            };
            if s.dtype == e.dtype || (s.dtype == ACL_FLOAT && e.dtype == ACL_BF16) {
                Ok(())
            } else {
                Err(format!(
                    "scalesOptional {} with expandedX {}",
                    crate::rules::dtype_name(s.dtype),
                    crate::rules::dtype_name(e.dtype)
                ))
            }
        }),
        |c| c.edit_tensor("scalesOptional", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.scales-shape",
        "scalesOptional is [rows, k]",
        DOC,
        INVALID,
        Relation(|c| match c.tensor_of("scalesOptional") {
            Some(s) if s.dims.len() != 2 || s.dim(0) != dim(c, "out", 0) => Err(format!(
                "scalesOptional dims {:?} for {} rows",
                s.dims,
                dim(c, "out", 0)
            )),
            _ => Ok(()),
        }),
        |c| c.edit_tensor("scalesOptional", |t| t.dims = vec![3, 2]),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.row-idx-dtype",
        "expandedRowIdx is INT32",
        DOC,
        INVALID,
        DTypes("expandedRowIdx", &[ACL_INT32]),
        |c| c.edit_tensor("expandedRowIdx", |t| t.dtype = ACL_INT64),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.row-idx-shape",
        "expandedRowIdx is [rows·k]",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "expandedRowIdx", &[dim(c, "out", 0) * k(c)])),
        |c| c.edit_tensor("expandedRowIdx", |t| t.dims = vec![7]),
    ),
    one(
        OP,
        "moe-finalize-routing-v2.residual",
        "x1Optional and x2Optional have out's dtype and shape",
        DOC,
        INVALID,
        Relation(|c| {
            for name in ["x1Optional", "x2Optional"] {
                same_dtype(c, name, "out")?;
                dims_are(c, name, &[dim(c, "out", 0), dim(c, "out", 1)])?;
            }
            Ok(())
        }),
        |c| {
            c.set(
                "x2Optional",
                Arg::Tensor(Some(TensorMeta::new(&[4, 5], ACL_FLOAT))),
            )
        },
    ),
    one(
        OP,
        "moe-finalize-routing-v2.bias",
        "biasOptional is [experts, hidden] of out's dtype and needs expertIdxOptional (INT32 [rows, k])",
        DOC,
        INVALID,
        Relation(|c| {
            let Some(b) = c.tensor_of("biasOptional") else {
                return Ok(());
            };
            same_dtype(c, "biasOptional", "out")?;
            if b.dims.len() != 2 || b.dim(1) != dim(c, "out", 1) {
                return Err(format!("biasOptional dims {:?}", b.dims));
            }
            match c.tensor_of("expertIdxOptional") {
                None => Err("biasOptional without expertIdxOptional".into()),
                Some(e) if e.dtype != ACL_INT32 => Err("expertIdxOptional is not INT32".into()),
                Some(_) => dims_are(c, "expertIdxOptional", &[dim(c, "out", 0), k(c)]),
            }
        }),
        |c| {
            c.set(
                "biasOptional",
                Arg::Tensor(Some(TensorMeta::new(&[4, 6], ACL_FLOAT))),
            )
        },
    ),
];

/// 4 rows of hidden 6, top-2, row layout (dropPadMode 2), FLOAT.
pub(super) fn sample() -> Call {
    Call::new(OP)
        .tensor("expandedX", Some(TensorMeta::new(&[8, 6], ACL_FLOAT)))
        .tensor("expandedRowIdx", Some(TensorMeta::new(&[8], ACL_INT32)))
        .tensor("x1Optional", None)
        .tensor("x2Optional", None)
        .tensor("biasOptional", None)
        .tensor("scalesOptional", Some(TensorMeta::new(&[4, 2], ACL_FLOAT)))
        .tensor("expertIdxOptional", None)
        .int("dropPadMode", 2)
        .tensor("out", Some(TensorMeta::new(&[4, 6], ACL_FLOAT)))
}
