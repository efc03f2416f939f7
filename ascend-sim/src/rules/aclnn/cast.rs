//! aclnnCast (hicann ops-math `math/cast/docs/aclnnCast.md`). `self` may be any dtype the
//! simulator holds, all of which the A2/A3 cast supports; others are refused by
//! `aclCreateTensor` already.

use ascend_sys::{
    ACL_BF16, ACL_BOOL, ACL_DOUBLE, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT16, ACL_INT32,
    ACL_INT64, ACL_UINT8, ACL_UINT16, ACL_UINT32, ACL_UINT64,
};

use super::{dims_are, one};
use crate::rules::Requirement::{IntIn, Relation};
use crate::rules::{Arg, Call, INVALID, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnCast";
const DOC: &str =
    "hicann ops-math math/cast/docs/aclnnCast.md (A2/A3 dtype list; 161001/161002 cases)";
/// The A2/A3 target dtypes (COMPLEX64/128 are not simulated).
const TYPES_I64: &[i64] = &[
    ACL_FLOAT16 as i64,
    ACL_FLOAT as i64,
    ACL_DOUBLE as i64,
    ACL_INT8 as i64,
    ACL_UINT8 as i64,
    ACL_INT16 as i64,
    ACL_UINT16 as i64,
    ACL_INT32 as i64,
    ACL_UINT32 as i64,
    ACL_INT64 as i64,
    ACL_UINT64 as i64,
    ACL_BOOL as i64,
    ACL_BF16 as i64,
];

pub(super) const RULES: &[Rule] = &[
    required!(OP, "cast.self-required", "self", DOC),
    required!(OP, "cast.out-required", "out", DOC),
    one(
        OP,
        "cast.dtype",
        "dtype is one the A2/A3 cast supports",
        DOC,
        INVALID,
        IntIn("dtype", TYPES_I64),
        |c| c.set("dtype", Arg::Int(36)),
    ),
    one(
        OP,
        "cast.out-dtype",
        "out's dtype is dtype",
        DOC,
        INVALID,
        Relation(|c| match c.tensor_of("out") {
            Some(o) if i64::from(o.dtype) != c.int_of("dtype") => Err(format!(
                "out is {} for dtype {}",
                o.dtype,
                c.int_of("dtype")
            )),
            _ => Ok(()),
        }),
        |c| c.edit_tensor("out", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "cast.shape",
        "out has self's shape (0 to 8 dims)",
        DOC,
        INVALID,
        Relation(|c| {
            let dims = c
                .tensor_of("self")
                .map(|s| s.dims.clone())
                .unwrap_or_default();
            if dims.len() > 8 {
                return Err(format!("self dims {dims:?}"));
            }
            dims_are(c, "out", &dims)
        }),
        |c| c.edit_tensor("out", |t| t.dims = vec![6]),
    ),
];

/// Five INT32 values to INT64.
pub(super) fn sample() -> Call {
    Call::new(OP)
        .tensor("self", Some(TensorMeta::new(&[5], ACL_INT32)))
        .int("dtype", i64::from(ACL_INT64))
        .tensor("out", Some(TensorMeta::new(&[5], ACL_INT64)))
}
