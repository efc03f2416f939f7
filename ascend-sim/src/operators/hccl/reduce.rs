//! Element types and reductions of the simulated collectives.
//!
//! A reduction folds the ranks' contributions in rank order, `((x₀ ∘ x₁) ∘ x₂) ∘ …`, each
//! step rounded to the element type: fp16/bf16 steps are computed in f32 and rounded once,
//! which equals a correctly rounded fp16/bf16 operation (f32 has more than twice their
//! precision plus two bits). Integer sums and products wrap. So results are bit-identical from
//! run to run, whatever order the ranks arrive in.

use ascend_sys::{
    HCCL_DATA_TYPE_BFP16, HCCL_DATA_TYPE_FP16, HCCL_DATA_TYPE_FP32, HCCL_DATA_TYPE_FP64,
    HCCL_DATA_TYPE_INT8, HCCL_DATA_TYPE_INT16, HCCL_DATA_TYPE_INT32, HCCL_DATA_TYPE_INT64,
    HCCL_DATA_TYPE_UINT8, HCCL_DATA_TYPE_UINT16, HCCL_DATA_TYPE_UINT32, HCCL_DATA_TYPE_UINT64,
    HCCL_REDUCE_MAX, HCCL_REDUCE_MIN, HCCL_REDUCE_PROD, HCCL_REDUCE_SUM, HcclDataType,
    HcclReduceOp,
};
use half::{bf16, f16};

/// Bytes per element of the data types A2/A3 move, or `None` for others (FP8 and HiF8 move
/// only on the 950 series; INT128 not at all).
pub(crate) fn element_size(dtype: HcclDataType) -> Option<usize> {
    Some(match dtype {
        HCCL_DATA_TYPE_INT8 | HCCL_DATA_TYPE_UINT8 => 1,
        HCCL_DATA_TYPE_INT16 | HCCL_DATA_TYPE_UINT16 | HCCL_DATA_TYPE_FP16 => 2,
        HCCL_DATA_TYPE_BFP16 => 2,
        HCCL_DATA_TYPE_INT32 | HCCL_DATA_TYPE_UINT32 | HCCL_DATA_TYPE_FP32 => 4,
        HCCL_DATA_TYPE_INT64 | HCCL_DATA_TYPE_UINT64 | HCCL_DATA_TYPE_FP64 => 8,
        _ => return None,
    })
}

/// Whether A2/A3 reduce `dtype` with `op` (AllReduce, ReduceScatter): int8/16/32/64, fp16,
/// fp32 and bf16 with sum, prod, max and min, but no prod for int16 and bf16 (rule
/// `hccl.reduce-type-op`); the error says what was found.
pub(crate) fn reducible(dtype: HcclDataType, op: HcclReduceOp) -> Result<(), String> {
    let types = [
        HCCL_DATA_TYPE_INT8,
        HCCL_DATA_TYPE_INT16,
        HCCL_DATA_TYPE_INT32,
        HCCL_DATA_TYPE_INT64,
        HCCL_DATA_TYPE_FP16,
        HCCL_DATA_TYPE_FP32,
        HCCL_DATA_TYPE_BFP16,
    ];
    if !types.contains(&dtype) {
        return Err(format!("data type {dtype}"));
    }
    if ![
        HCCL_REDUCE_SUM,
        HCCL_REDUCE_PROD,
        HCCL_REDUCE_MAX,
        HCCL_REDUCE_MIN,
    ]
    .contains(&op)
    {
        return Err(format!("reduce op {op}"));
    }
    if op == HCCL_REDUCE_PROD && [HCCL_DATA_TYPE_INT16, HCCL_DATA_TYPE_BFP16].contains(&dtype) {
        return Err(format!("prod of data type {dtype}"));
    }
    Ok(())
}

fn fold<T: bytemuck::Pod>(acc: &mut [u8], x: &[u8], size: usize, f: impl Fn(T, T) -> T) {
    for (a, b) in acc.chunks_exact_mut(size).zip(x.chunks_exact(size)) {
        let va: T = bytemuck::pod_read_unaligned(a);
        let vb: T = bytemuck::pod_read_unaligned(b);
        a.copy_from_slice(bytemuck::bytes_of(&f(va, vb)));
    }
}

macro_rules! int_op {
    ($t:ty, $acc:expr, $x:expr, $op:expr) => {
        match $op {
            HCCL_REDUCE_SUM => fold::<$t>($acc, $x, size_of::<$t>(), |a, b| a.wrapping_add(b)),
            HCCL_REDUCE_PROD => fold::<$t>($acc, $x, size_of::<$t>(), |a, b| a.wrapping_mul(b)),
            HCCL_REDUCE_MAX => fold::<$t>($acc, $x, size_of::<$t>(), |a, b| a.max(b)),
            _ => fold::<$t>($acc, $x, size_of::<$t>(), |a, b| a.min(b)),
        }
    };
}

/// IEEE max/min that propagate NaN, as a device reduction does.
fn fmax(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

fn fmin(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

fn f32_op(op: HcclReduceOp) -> fn(f32, f32) -> f32 {
    match op {
        HCCL_REDUCE_SUM => |a, b| a + b,
        HCCL_REDUCE_PROD => |a, b| a * b,
        HCCL_REDUCE_MAX => fmax,
        _ => fmin,
    }
}

/// `acc ∘= x` elementwise; both hold whole elements of `dtype`, which [`reducible`] accepted.
pub(crate) fn reduce_into(acc: &mut [u8], x: &[u8], dtype: HcclDataType, op: HcclReduceOp) {
    let f = f32_op(op);
    match dtype {
        HCCL_DATA_TYPE_INT8 => int_op!(i8, acc, x, op),
        HCCL_DATA_TYPE_INT16 => int_op!(i16, acc, x, op),
        HCCL_DATA_TYPE_INT32 => int_op!(i32, acc, x, op),
        HCCL_DATA_TYPE_INT64 => int_op!(i64, acc, x, op),
        HCCL_DATA_TYPE_FP32 => fold::<f32>(acc, x, 4, f),
        HCCL_DATA_TYPE_FP16 => fold::<u16>(acc, x, 2, |a, b| {
            f16::from_f32(f(f16::from_bits(a).to_f32(), f16::from_bits(b).to_f32())).to_bits()
        }),
        _ => fold::<u16>(acc, x, 2, |a, b| {
            bf16::from_f32(f(bf16::from_bits(a).to_f32(), bf16::from_bits(b).to_f32())).to_bits()
        }),
    }
}
