//! The vendor's dense matmuls (`aclnnMatmul`, `aclnnWeightQuantBatchMatmulV2`) against f64
//! products: the cases of `vendor_matmul_sim.rs` and of its hardware twins
//! `vendor_matmul_hardware.rs`.

use super::Rng;
use ascend_npu::aclnn::{self, AclElement, CubeMathType, Int8Weight};
use ascend_npu::kernels::{MatmulShape, WeightLayout};
use ascend_npu::{DeviceBuffer, Stream};
use half::{bf16, f16};

fn stream() -> Stream {
    super::moe::stream()
}

/// `len` values uniform in ±`scale`, rounded to bf16.
fn bf16s(rng: &mut Rng, len: usize, scale: f32) -> Vec<bf16> {
    (0..len)
        .map(|_| bf16::from_f32(rng.f32() * scale))
        .collect()
}

/// B[k][j] of a `[K, N]` or `[N, K]` buffer.
fn at<T: Copy>(b: &[T], layout: WeightLayout, shape: MatmulShape, kk: usize, j: usize) -> T {
    match layout {
        WeightLayout::KN => b[kk * shape.n + j],
        WeightLayout::NK => b[j * shape.k + kk],
    }
}

/// Checks `got` against the f64 `want` with per-element magnitudes `mag` (Σ|a·b|): the fp32
/// sum of K exact products is within K·2^-24·Σ|a·b| (recursive summation, any order), then
/// one rounding to the output format, `u_out` relative (2^-8 bf16, 2^-11 fp16).
fn assert_within(got: &[f64], want: &[f64], mag: &[f64], k: usize, u_out: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, ((g, w), m)) in got.iter().zip(want).zip(mag).enumerate() {
        let fp32 = k as f64 * 2f64.powi(-24) * m;
        let bound = u_out * (w.abs() + fp32) + fp32;
        assert!(
            (g - w).abs() <= bound,
            "{what} [{i}]: {g} vs {w} (bound {bound})"
        );
    }
}

pub fn matmul_matches_the_f64_product_in_both_layouts() {
    let stream = stream();
    let mut rng = Rng::new(21);
    for (m, n, k) in [(1, 1, 1), (3, 17, 40), (17, 33, 65)] {
        let shape = MatmulShape { m, n, k };
        for layout in [WeightLayout::KN, WeightLayout::NK] {
            let a = bf16s(&mut rng, m * k, 1.0);
            let b = bf16s(&mut rng, k * n, 1.0);
            let (da, db) = (stream.upload(&a).unwrap(), stream.upload(&b).unwrap());
            let mut dc = stream.alloc_zeroed::<bf16>(m * n).unwrap();
            aclnn::matmul(
                &stream,
                shape,
                layout,
                &da,
                &db,
                &mut dc,
                CubeMathType::KeepDtype,
            )
            .unwrap();
            let got: Vec<f64> = dc.to_vec().unwrap().iter().map(|v| v.to_f64()).collect();
            let (mut want, mut mag) = (vec![0.0; m * n], vec![0.0; m * n]);
            for i in 0..m {
                for j in 0..n {
                    for kk in 0..k {
                        let p = a[i * k + kk].to_f64() * at(&b, layout, shape, kk, j).to_f64();
                        want[i * n + j] += p;
                        mag[i * n + j] += p.abs();
                    }
                }
            }
            let what = format!("{m}x{n}x{k} {layout:?}");
            assert_within(&got, &want, &mag, k, 2f64.powi(-8), &what);
        }
    }
}

pub fn matmul_refuses_mismatched_operands() {
    let stream = stream();
    let err = matmul_refusal::<f16>(&stream, 11, CubeMathType::KeepDtype);
    assert!(err.contains("B of 11 elements"), "{err}");
    // USE_FP16 is not allowed for BF16 inputs: the operator's own rule.
    let err = matmul_refusal::<bf16>(&stream, 12, CubeMathType::UseFp16);
    assert!(err.contains("aclnnMatmulGetWorkspaceSize"), "{err}");
}

/// The error of a `[2, 4] @ [4, 3]` matmul of zeroed `T` operands whose B has `b_len`
/// elements, with `math`.
fn matmul_refusal<T: AclElement + bytemuck::Zeroable>(
    stream: &Stream,
    b_len: usize,
    math: CubeMathType,
) -> String {
    let shape = MatmulShape { m: 2, n: 3, k: 4 };
    let a: DeviceBuffer<T> = stream.alloc_zeroed(8).unwrap();
    let b: DeviceBuffer<T> = stream.alloc_zeroed(b_len).unwrap();
    let mut c: DeviceBuffer<T> = stream.alloc_zeroed(6).unwrap();
    aclnn::matmul(stream, shape, WeightLayout::KN, &a, &b, &mut c, math)
        .unwrap_err()
        .to_string()
}

/// W8A16 per channel (with offsets and a bias) and per group: the weight dequantized in f64,
/// rounded to bf16 as the cube reads it, then the f64 product.
pub fn w8a16_matches_the_dequantized_product() {
    let stream = stream();
    let mut rng = Rng::new(22);
    for (m, n, k, group) in [(3, 17, 40, 0), (5, 32, 96, 32), (1, 7, 65, 0)] {
        let shape = MatmulShape { m, n, k };
        for layout in [WeightLayout::KN, WeightLayout::NK] {
            let x = bf16s(&mut rng, m * k, 1.0);
            let codes: Vec<i8> = (0..k * n)
                .map(|_| (rng.f32() * 127.0).round() as i8)
                .collect();
            let scales = if group == 0 { n } else { k.div_ceil(group) * n };
            let scale: Vec<bf16> = (0..scales)
                .map(|_| bf16::from_f32(rng.f32().abs() * 0.02 + 0.001))
                .collect();
            let offset = bf16s(&mut rng, scales, 4.0);
            let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            let dx = stream.upload(&x).unwrap();
            let dw = stream.upload(&codes).unwrap();
            let ds = stream.upload(&scale).unwrap();
            let doff = stream.upload(&offset).unwrap();
            let dbias = stream.upload(&bias).unwrap();
            let mut dy = stream.alloc_zeroed::<bf16>(m * n).unwrap();
            let weight = Int8Weight {
                codes: dw.as_view(),
                scale: ds.as_view(),
                offset: Some(doff.as_view()),
                group,
            };
            aclnn::weight_quant_matmul(
                &stream,
                shape,
                layout,
                &dx,
                weight,
                Some(dbias.as_view()),
                &mut dy,
            )
            .unwrap();
            let got: Vec<f64> = dy.to_vec().unwrap().iter().map(|v| v.to_f64()).collect();
            // Per channel (group 0): one scale per column; per group: a row of scales per group.
            let s_at = |kk: usize, j: usize| kk.checked_div(group).map_or(j, |g| g * n + j);
            let (mut want, mut mag) = (vec![0.0; m * n], vec![0.0; m * n]);
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] = f64::from(bias[j]);
                    mag[i * n + j] = f64::from(bias[j]).abs();
                    for kk in 0..k {
                        let s = s_at(kk, j);
                        let code = f64::from(at(&codes, layout, shape, kk, j));
                        let w = (code + offset[s].to_f64()) * scale[s].to_f64();
                        // The dequantized weight enters the cube as bf16.
                        let p = x[i * k + kk].to_f64() * bf16::from_f64(w).to_f64();
                        want[i * n + j] += p;
                        mag[i * n + j] += p.abs();
                    }
                }
            }
            let what = format!("W8A16 {m}x{n}x{k} group {group} {layout:?}");
            // K products and the bias: K + 1 fp32 terms.
            assert_within(&got, &want, &mag, k + 1, 2f64.powi(-8), &what);
        }
    }
}

pub fn w8a16_refuses_bad_scales() {
    let stream = stream();
    let shape = MatmulShape { m: 2, n: 4, k: 64 };
    let x: DeviceBuffer<bf16> = stream.alloc_zeroed(2 * 64).unwrap();
    let w: DeviceBuffer<i8> = stream.alloc_zeroed(64 * 4).unwrap();
    let mut y: DeviceBuffer<bf16> = stream.alloc_zeroed(8).unwrap();
    // The error of a call with `scales` scales of group size `group`.
    let mut refusal = |scales: usize, group: usize| {
        let scale: DeviceBuffer<bf16> = stream.alloc_zeroed(scales).unwrap();
        let weight = Int8Weight {
            codes: w.as_view(),
            scale: scale.as_view(),
            offset: None,
            group,
        };
        aclnn::weight_quant_matmul(
            &stream,
            shape,
            WeightLayout::KN,
            &x,
            weight,
            None::<ascend_npu::DeviceView<'_, f32>>,
            &mut y,
        )
        .unwrap_err()
        .to_string()
    };
    let err = refusal(3, 0);
    assert!(err.contains("scale of 3 elements"), "{err}");
    // A group size that is not a multiple of 32: the operator's rule, named.
    let err = refusal(2 * 4, 40);
    assert!(
        err.contains("aclnnWeightQuantBatchMatmulV2GetWorkspaceSize"),
        "{err}"
    );
}
