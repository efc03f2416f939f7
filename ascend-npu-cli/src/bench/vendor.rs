//! The vendor's operators for the maths our kernels do, at the same shapes, so the table and
//! the picture put them side by side: `aclnnMatmul` beside `matmul`,
//! `aclnnWeightQuantBatchMatmulV2` (INT8 weights) beside `fp8-gemm` (FP8 weights, both W8A16),
//! and `aclnnGroupedMatmulV4`, the MoE experts' GEMM. On the simulator their modelled time is
//! the cost model's for the bytes of their tensors and the MACs they must do.

use ascend_npu::aclnn::{self, CubeMathType, Int8Weight};
use ascend_npu::kernels::{MatmulShape, WeightLayout};
use ascend_npu::ops::moe;
use half::bf16;

use super::Work;
use super::ops::{BF16, Bench, bf16_gemm_operands, gemm_work};
use crate::preset::MoeCase;

/// `aclnnMatmul`, bf16, weights `[N, K]`.
pub fn matmul(b: &mut Bench, shape: MatmulShape) {
    let MatmulShape { m, n, k } = shape;
    match bf16_gemm_operands(b, shape) {
        Ok((a, w, mut c)) => {
            let stream = &b.stream;
            b.run.measure(
                "aclnnMatmul",
                &format!("bf16 NK m={m} n={n} k={k}"),
                gemm_work(shape, BF16),
                || {
                    aclnn::matmul(
                        stream,
                        shape,
                        WeightLayout::NK,
                        &a,
                        &w,
                        &mut c,
                        CubeMathType::KeepDtype,
                    )
                },
            )
        }
        Err(e) => b.run.failed("aclnnMatmul", e),
    }
}

/// `aclnnWeightQuantBatchMatmulV2`: bf16 activations, INT8 weights `[N, K]` with per-channel
/// bf16 scales (W8A16, the maths of our FP8 GEMM with another 8-bit format).
pub fn w8a16(b: &mut Bench, shape: MatmulShape) {
    let MatmulShape { m, n, k } = shape;
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let x = b.random::<bf16>(m * k, 1.0)?;
        let codes: Vec<i8> = b
            .rng
            .vec(n * k, 127.0)
            .iter()
            .map(|&v| v.round() as i8)
            .collect();
        let codes = b.stream.upload(&codes)?;
        let scale = b.random::<bf16>(n, 0.01)?;
        Ok((x, codes, scale, b.stream.alloc_uninit::<bf16>(m * n)?))
    };
    // x, the codes and one scale per column read once, y written once; each weight is
    // dequantized once (2 vector operations).
    let minimum = Work {
        read_bytes: gemm_work(shape, 1).read_bytes + n as u64 * BF16,
        vector_ops: 2 * (n * k) as u64,
        ..gemm_work(shape, 1)
    };
    match set(b) {
        Ok((x, codes, scale, mut y)) => {
            let stream = &b.stream;
            b.run.measure(
                "aclnnWeightQuantBatchMatmulV2",
                &format!("W8A16 bf16×INT8 m={m} n={n} k={k}"),
                minimum,
                || {
                    let weight = Int8Weight {
                        codes: codes.as_view(),
                        scale: scale.as_view(),
                        offset: None,
                        group: 0,
                    };
                    aclnn::weight_quant_matmul(
                        stream,
                        shape,
                        WeightLayout::NK,
                        &x,
                        weight,
                        None::<ascend_npu::DeviceView<'_, f32>>,
                        &mut y,
                    )
                },
            )
        }
        Err(e) => b.run.failed("aclnnWeightQuantBatchMatmulV2", e),
    }
}

/// `aclnnGroupedMatmulV4` (through `ops::moe::grouped_matmul`): the case's T·K dispatched
/// rows over its experts in equal groups, hidden → intermediate, weights `[E, N, K]`.
pub fn grouped(b: &mut Bench, case: &MoeCase) {
    let (rows, e, k, n) = (
        case.tokens * case.top_k,
        case.experts,
        case.hidden,
        case.intermediate,
    );
    let counts: Vec<i64> = (0..e)
        .map(|i| (rows / e + usize::from(i < rows % e)) as i64)
        .collect();
    let active = counts.iter().filter(|&&c| c > 0).count() as u64;
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let x = b.random::<bf16>(rows * k, 1.0)?;
        let w = b.random::<bf16>(e * n * k, 1.0)?;
        let c = b.stream.upload(&counts)?;
        Ok((x, w, c, b.stream.alloc_uninit::<bf16>(rows * n)?))
    };
    let (r, nu, ku, eu) = (rows as u64, n as u64, k as u64, e as u64);
    // The rows, the weights of the experts that received rows and the group sizes read once;
    // the result written once; rows·N·K MACs.
    let minimum = Work {
        read_bytes: r * ku * BF16 + active * nu * ku * BF16 + eu * 8,
        written_bytes: r * nu * BF16,
        cube_macs: r * nu * ku,
        vector_ops: 0,
        ..Work::default()
    };
    let shape = MatmulShape { m: rows, n, k };
    match set(b) {
        Ok((x, w, c, mut out)) => {
            let stream = &b.stream;
            b.run.measure(
                "aclnnGroupedMatmulV4",
                &format!("bf16 NK M={rows} E={e} K={k} N={n}"),
                minimum,
                || moe::grouped_matmul(stream, shape, WeightLayout::NK, &x, &w, &c, &mut out),
            )
        }
        Err(err) => b.run.failed("aclnnGroupedMatmulV4", err),
    }
}
