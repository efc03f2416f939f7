//! The vendor's operators for the maths our kernels do, against the same f64 references:
//! `aclnnMatmul` (bf16 matmul), `aclnnWeightQuantBatchMatmulV2` (W8A16 with INT8 weights) and
//! `aclnnGroupedMatmulV4` (the MoE experts' grouped GEMM). The bench times them beside ours.

use ascend_npu::aclnn::{self, CubeMathType, Int8Weight};
use ascend_npu::kernels::{MatmulShape, WeightLayout};
use ascend_npu::ops::moe;
use half::bf16;

use super::{Family, Run};
use crate::check::{self, BF16, FP32, Outcome};

/// The family.
pub const VENDOR: Family = Family {
    name: "vendor",
    summary: "the vendor's matmul, W8A16 (INT8) matmul and grouped matmul, bf16, vs f64",
    kernels: false,
    aclnn: &[
        "aclnnMatmul",
        "aclnnWeightQuantBatchMatmulV2",
        "aclnnGroupedMatmulV4",
    ],
    run,
};

fn device(e: ascend_npu::Error) -> String {
    e.to_string()
}

fn run(run: &mut Run<'_>) {
    for [m, n, k] in run.preset.matmul.clone() {
        for layout in [WeightLayout::KN, WeightLayout::NK] {
            matmul(run, MatmulShape { m, n, k }, layout);
        }
    }
    for [m, n, k] in run.preset.fp8_gemm.clone() {
        w8a16(run, MatmulShape { m, n, k });
    }
    for case in run.preset.moe.clone() {
        grouped(
            run,
            case.tokens * case.top_k,
            case.experts,
            [case.hidden, case.intermediate],
        );
    }
}

/// B[k][j] of a `[K, N]` or `[N, K]` buffer of `n` columns and `k` rows.
fn b_at<T: Copy>(b: &[T], layout: WeightLayout, shape: MatmulShape, kk: usize, j: usize) -> T {
    match layout {
        WeightLayout::KN => b[kk * shape.n + j],
        WeightLayout::NK => b[j * shape.k + kk],
    }
}

/// `got` against the f64 product with magnitudes Σ|a·b| over `terms` fp32 terms: exact
/// products, an fp32 sum within terms·2^-24·Σ|a·b| in any order, one rounding to bf16.
fn product_outcome(
    op: &str,
    case: &str,
    got: &[f64],
    (want, magnitude): (Vec<f64>, Vec<f64>),
    terms: usize,
) -> Outcome {
    let ku = terms as f64 * FP32.u;
    check::within(
        op,
        case,
        got,
        &want,
        |i| ku * magnitude[i] + BF16.u * (want[i].abs() + ku * magnitude[i]) + BF16.tiny,
        "exact products, fp32 sum ≤ K·2^-24·Σ|ab| + rounding to bf16 (3.9e-3 rel)",
    )
}

fn matmul(run: &mut Run<'_>, shape: MatmulShape, layout: WeightLayout) {
    let MatmulShape { m, n, k } = shape;
    let case = format!("bf16 {layout:?} m={m} n={n} k={k}");
    run.case("aclnnMatmul", &case, |run, op, case| {
        let mut rng = run.rng(case);
        let a: Vec<bf16> = check::round_to(&rng.vec(m * k, 1.0));
        let b: Vec<bf16> = check::round_to(&rng.vec(k * n, 1.0));
        let stream = &run.session.stream;
        let da = stream.upload(&a).map_err(device)?;
        let db = stream.upload(&b).map_err(device)?;
        let mut dc = stream.alloc_uninit::<bf16>(m * n).map_err(device)?;
        aclnn::matmul(
            stream,
            shape,
            layout,
            &da,
            &db,
            &mut dc,
            CubeMathType::KeepDtype,
        )
        .map_err(device)?;
        let got = check::widen(&dc.to_vec().map_err(device)?);
        let want = check::gemm(
            m,
            n,
            k,
            |i, kk| a[i * k + kk].to_f64(),
            |kk, j| b_at(&b, layout, shape, kk, j).to_f64(),
        );
        Ok(product_outcome(op, case, &got, want, k))
    });
}

/// INT8 weights `[N, K]` (as checkpoints store them) with per-channel bf16 scales and
/// offsets: each weight dequantized in f64 and rounded to bf16, the format the cube reads.
fn w8a16(run: &mut Run<'_>, shape: MatmulShape) {
    let MatmulShape { m, n, k } = shape;
    let case = format!("bf16 × INT8 NK per-channel m={m} n={n} k={k}");
    run.case("aclnnWeightQuantBatchMatmulV2", &case, |run, op, case| {
        let mut rng = run.rng(case);
        let x: Vec<bf16> = check::round_to(&rng.vec(m * k, 1.0));
        let codes: Vec<i8> = rng
            .vec(n * k, 127.0)
            .iter()
            .map(|&v| v.round() as i8)
            .collect();
        let scale: Vec<bf16> = check::round_to(
            &rng.vec(n, 0.01)
                .iter()
                .map(|s| s.abs() + 0.001)
                .collect::<Vec<_>>(),
        );
        let offset: Vec<bf16> = check::round_to(&rng.vec(n, 4.0));
        let stream = &run.session.stream;
        let dx = stream.upload(&x).map_err(device)?;
        let dw = stream.upload(&codes).map_err(device)?;
        let ds = stream.upload(&scale).map_err(device)?;
        let doff = stream.upload(&offset).map_err(device)?;
        let mut dy = stream.alloc_uninit::<bf16>(m * n).map_err(device)?;
        let weight = Int8Weight {
            codes: dw.as_view(),
            scale: ds.as_view(),
            offset: Some(doff.as_view()),
            group: 0,
        };
        aclnn::weight_quant_matmul(
            stream,
            shape,
            WeightLayout::NK,
            &dx,
            weight,
            None::<ascend_npu::DeviceView<'_, f32>>,
            &mut dy,
        )
        .map_err(device)?;
        let got = check::widen(&dy.to_vec().map_err(device)?);
        let want = check::gemm(
            m,
            n,
            k,
            |i, kk| x[i * k + kk].to_f64(),
            |kk, j| {
                let code = f64::from(codes[j * k + kk]);
                bf16::from_f64((code + offset[j].to_f64()) * scale[j].to_f64()).to_f64()
            },
        );
        Ok(product_outcome(op, case, &got, want, k))
    });
}

/// `rows` rows split over `experts` groups of random sizes (some empty), `[K, N]` weights
/// stored `[E, N, K]`.
fn grouped(run: &mut Run<'_>, rows: usize, experts: usize, [k, n]: [usize; 2]) {
    let case = format!("bf16 NK M={rows} E={experts} K={k} N={n}");
    run.case("aclnnGroupedMatmulV4", &case, |run, op, case| {
        let mut rng = run.rng(case);
        // Group sizes: a random split of the rows, every third expert empty.
        let mut counts = vec![0i64; experts];
        for _ in 0..rows {
            let mut e = ((rng.uniform(0.5) + 0.5) * experts as f64) as usize % experts.max(1);
            if e % 3 == 2 {
                e = (e + 1) % experts;
            }
            counts[e] += 1;
        }
        let x: Vec<bf16> = check::round_to(&rng.vec(rows * k, 1.0));
        let w: Vec<bf16> = check::round_to(&rng.vec(experts * n * k, 1.0));
        let stream = &run.session.stream;
        let dx = stream.upload(&x).map_err(device)?;
        let dw = stream.upload(&w).map_err(device)?;
        let dc = stream.upload(&counts).map_err(device)?;
        let mut out = stream.alloc_uninit::<bf16>(rows * n).map_err(device)?;
        let shape = MatmulShape { m: rows, n, k };
        moe::grouped_matmul(stream, shape, WeightLayout::NK, &dx, &dw, &dc, &mut out)
            .map_err(device)?;
        let got = check::widen(&out.to_vec().map_err(device)?);
        // Row r's expert: the group whose cumulative range holds it.
        let mut expert_of = Vec::with_capacity(rows);
        for (e, &c) in counts.iter().enumerate() {
            expert_of.extend(std::iter::repeat_n(e, c as usize));
        }
        let (mut want, mut magnitude) = (vec![0.0; rows * n], vec![0.0; rows * n]);
        for (r, &e) in expert_of.iter().enumerate() {
            for j in 0..n {
                for kk in 0..k {
                    let p = x[r * k + kk].to_f64() * w[(e * n + j) * k + kk].to_f64();
                    want[r * n + j] += p;
                    magnitude[r * n + j] += p.abs();
                }
            }
        }
        Ok(product_outcome(op, case, &got, (want, magnitude), k))
    });
}
