//! aclnnMatmul (cann-api-facts §4.1; ops-nn `matmul/mat_mul_v3` doc `aclnnMatmul.md`).

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32};

use super::{dims_are, ensure, one, same_dtype};
use crate::rules::Requirement::{DTypes, IntIn, Relation};
use crate::rules::{Arg, Call, INVALID, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnMatmul";
const DOC: &str = "cann-api-facts §4.1; ops-nn matmul/mat_mul_v3 aclnnMatmul.md";
/// The A2/A3 dtypes.
const TYPES: &[i32] = &[ACL_FLOAT16, ACL_BF16, ACL_FLOAT];

/// Dims of tensor `name` (empty when absent).
fn dims(c: &Call, name: &str) -> Vec<i64> {
    c.tensor_of(name)
        .map(|t| t.dims.clone())
        .unwrap_or_default()
}

pub(super) const RULES: &[Rule] = &[
    required!(OP, "matmul.self-required", "self", DOC),
    required!(OP, "matmul.mat2-required", "mat2", DOC),
    required!(OP, "matmul.out-required", "out", DOC),
    one(
        OP,
        "matmul.dtype",
        "self is FLOAT16, BF16 or FLOAT (A2/A3)",
        DOC,
        INVALID,
        DTypes("self", TYPES),
        |c| c.edit_tensor("self", |t| t.dtype = ACL_INT32),
    ),
    one(
        OP,
        "matmul.same-dtype",
        "mat2 and out have self's dtype",
        DOC,
        INVALID,
        Relation(|c| same_dtype(c, "mat2", "self").and_then(|()| same_dtype(c, "out", "self"))),
        |c| c.edit_tensor("mat2", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "matmul.rank",
        "self and mat2 have 1 to 6 dims",
        DOC,
        INVALID,
        Relation(|c| {
            for name in ["self", "mat2"] {
                let d = dims(c, name);
                if !(1..=6).contains(&d.len()) {
                    return Err(format!("{name} dims {d:?}"));
                }
            }
            Ok(())
        }),
        |c| c.edit_tensor("mat2", |t| t.dims = vec![1; 7]),
    ),
    one(
        OP,
        "matmul.k-match",
        "self's last dim (K) equals mat2's first dim of its last two (a 1-D mat2 is [K])",
        DOC,
        INVALID,
        Relation(|c| {
            let (a, b) = (dims(c, "self"), dims(c, "mat2"));
            let k_a = a.last().copied().unwrap_or(0);
            let k_b = if b.len() == 1 { b[0] } else { b[b.len() - 2] };
            ensure(k_a == k_b, || format!("self {a:?} and mat2 {b:?}"))
        }),
        |c| c.edit_tensor("mat2", |t| t.dims[0] += 1),
    ),
    one(
        OP,
        "matmul.out-shape",
        "out is [M, N] for self [M, K] and mat2 [K, N] (2-D operands)",
        DOC,
        INVALID,
        Relation(|c| {
            let (a, b) = (dims(c, "self"), dims(c, "mat2"));
            if a.len() == 2 && b.len() == 2 {
                dims_are(c, "out", &[a[0], b[1]])
            } else {
                Ok(())
            }
        }),
        |c| c.edit_tensor("out", |t| t.dims[1] += 1),
    ),
    one(
        OP,
        "matmul.cube-math-type",
        "cubeMathType is 0 KEEP_DTYPE, 1 ALLOW_FP32_DOWN_PRECISION, 2 USE_FP16, 3 USE_HF32 or 4 \
         USE_FP32_ADD",
        DOC,
        INVALID,
        IntIn("cubeMathType", &[0, 1, 2, 3, 4]),
        |c| c.set("cubeMathType", Arg::Int(5)),
    ),
    one(
        OP,
        "matmul.use-fp16-not-bf16",
        "cubeMathType 2 (USE_FP16) is not allowed for BF16 inputs",
        DOC,
        INVALID,
        Relation(|c| match c.tensor_of("self") {
            Some(t) if t.dtype == ACL_BF16 && c.int_of("cubeMathType") == 2 => {
                Err("BF16 self with cubeMathType 2".to_string())
            }
            _ => Ok(()),
        }),
        |c| c.set("cubeMathType", Arg::Int(2)),
    ),
    one(
        OP,
        "matmul.hf32-float-only",
        "cubeMathType 3 (USE_HF32) is for FLOAT inputs only",
        DOC,
        INVALID,
        Relation(|c| match c.tensor_of("self") {
            Some(t) if t.dtype != ACL_FLOAT && c.int_of("cubeMathType") == 3 => Err(format!(
                "{} self with cubeMathType 3",
                crate::rules::dtype_name(t.dtype)
            )),
            _ => Ok(()),
        }),
        |c| c.set("cubeMathType", Arg::Int(3)),
    ),
];

/// `[3, 5] @ [5, 4]` in BF16, KEEP_DTYPE.
pub(super) fn sample() -> Call {
    Call::new(OP)
        .tensor("self", Some(TensorMeta::new(&[3, 5], ACL_BF16)))
        .tensor("mat2", Some(TensorMeta::new(&[5, 4], ACL_BF16)))
        .tensor("out", Some(TensorMeta::new(&[3, 4], ACL_BF16)))
        .int("cubeMathType", 0)
}
