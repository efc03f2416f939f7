//! aclnnGroupedMatmulV4, the MoE-expert subset: one x `[M, K]` split along M into groups,
//! one weight tensor `[E, K, N]` (any strides, so `[E, N, K]` storage works through a
//! transposed view), one output `[M, N]`; `groupList` holds cumulative sums (type 0) or counts
//! (type 1), which must sum to M (cann-api-facts errata 5). fp32 accumulation. Bias,
//! quantisation and fused activations are not simulated and are rejected; the hardware rules
//! are in `crate::rules` (`grouped-matmul-v4.*`).

use std::sync::Arc;

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16};

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::{TensorDesc, invalid};
use crate::operators::aclnn::view::TensorView;
use crate::rules;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) split_item: i64,
    pub(crate) group_type: i64,
    pub(crate) group_list_type: i64,
    pub(crate) act_type: i64,
}

pub(crate) fn plan(
    x: Vec<TensorDesc>,
    weight: Vec<TensorDesc>,
    group_list: TensorDesc,
    a: Attrs,
    out: Vec<TensorDesc>,
) -> SimResult<Planned> {
    let [x] = <[TensorDesc; 1]>::try_from(x).map_err(|v| {
        invalid(format!(
            "x lists {} tensors; the simulator takes one [M, K] tensor",
            v.len()
        ))
    })?;
    let [w] = <[TensorDesc; 1]>::try_from(weight).map_err(|v| {
        invalid(format!(
            "weight lists {} tensors; the simulator takes one [E, K, N] tensor",
            v.len()
        ))
    })?;
    let [y] = <[TensorDesc; 1]>::try_from(out).map_err(|v| {
        invalid(format!(
            "out lists {} tensors; expected one [M, N] tensor",
            v.len()
        ))
    })?;
    if a.split_item != 2 && a.split_item != 3 {
        return Err(invalid(format!(
            "splitItem {}; the simulator supports 2 or 3 (one output tensor)",
            a.split_item
        )));
    }
    if a.group_type != 0 {
        return Err(invalid(format!(
            "groupType {}; expected 0 (split M)",
            a.group_type
        )));
    }
    if a.group_list_type != 0 && a.group_list_type != 1 {
        return Err(invalid(format!(
            "groupListType {}; expected 0 (cumulative sums) or 1 (counts)",
            a.group_list_type
        )));
    }
    if a.act_type != 0 {
        return Err(invalid(format!(
            "actType {}; fused activations are not simulated",
            a.act_type
        )));
    }
    x.expect("x[0]", 2, &[ACL_FLOAT16, ACL_BF16])?;
    w.expect("weight[0]", 3, &[x.dtype])?;
    y.expect("out[0]", 2, &[x.dtype, ACL_FLOAT])?;
    // Shapes (weight [E, K, N], groupList [E], out [M, N]) are hardware rules, checked already.
    let m = x.dim(0);
    let cumsum = a.group_list_type == 0;

    let run = Arc::new(move |inputs: &[TensorView], outputs: &[TensorView]| {
        let ends = group_ends(&inputs[2].read_i64(), cumsum, m)?;
        grouped_matmul(&inputs[0], &inputs[1], &ends, &outputs[0])
    });
    Ok(Planned::new(
        0,
        vec![("x[0]", x), ("weight[0]", w), ("groupList", group_list)],
        vec![("out[0]", y)],
        run,
    ))
}

/// The row after each group, from `groupList` (cumulative sums or counts), which must cover
/// exactly the `m` rows (a rule checked on device data, so when the operator runs).
fn group_ends(list: &[i64], cumsum: bool, m: usize) -> SimResult<Vec<usize>> {
    let mut ends = Vec::with_capacity(list.len());
    let mut end = 0i64;
    for (e, &v) in list.iter().enumerate() {
        end = if cumsum { v } else { end.saturating_add(v) };
        if v < 0 || ends.last().is_some_and(|&prev| end < prev as i64) {
            return Err(rules::violation(
                "grouped-matmul-v4.group-sum-equals-m",
                format!("groupList[{e}] = {v} (group {e} would end at row {end})"),
            ));
        }
        ends.push(end as usize);
    }
    if end != m as i64 {
        return Err(rules::violation(
            "grouped-matmul-v4.group-sum-equals-m",
            format!("groups ending at row {end} for M = {m}"),
        ));
    }
    Ok(ends)
}

/// `y[rows of group g] = x[rows of g] · w[g]` for every group with rows, accumulating in fp32
/// (the documented accumulation; fp16/bf16 products are exact in f32, so only the sums round,
/// in the GEMM's order). `ends[g]` is the row after group g; the groups cover `x`'s rows.
///
/// `x` is `[M, K]`, `w` `[E, K, N]` (any strides: an `[E, N, K]` storage is read as it lies
/// and handed to the GEMM with its strides), `y` `[M, N]`. Experts without rows are skipped:
/// only the weights of experts with rows are converted, and counted (with their multiply-adds).
pub(crate) fn grouped_matmul(
    x: &TensorView,
    w: &TensorView,
    ends: &[usize],
    y: &TensorView,
) -> SimResult<()> {
    let (m, k) = (x.dims()[0], x.dims()[1]);
    let n = w.dims()[2];
    let xs = x.read_f32();
    let mut out = vec![0f32; m * n];
    let mut we = Vec::new();
    let mut start = 0;
    for (g, &end) in ends.iter().enumerate() {
        let rows = end - start;
        if rows > 0 && k > 0 && n > 0 {
            // Counted as the least the vendor's kernel must do: the weights of the experts that
            // received rows (read once each) and their rows × K × N multiply-adds; an expert
            // without rows costs nothing.
            let strides = w.select(g).read_f32_into(&mut we);
            y.count_macs((rows * k * n) as u64);
            // SAFETY: `xs` holds rows `start..end` of `[M, K]` row-major, `we` the `[K, N]`
            // matrix at `strides` (every index in range, from the view), and `out` rows
            // `start..end` of `[M, N]` row-major; the three buffers are distinct.
            unsafe {
                matrixmultiply::sgemm(
                    rows,
                    k,
                    n,
                    1.0,
                    xs[start * k..].as_ptr(),
                    k as isize,
                    1,
                    we.as_ptr(),
                    strides[0],
                    strides[1],
                    0.0,
                    out[start * n..].as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
        }
        start = end;
    }
    y.write_f32(&out)
}

#[cfg(test)]
mod tests {
    use half::bf16;

    use super::*;

    /// Deterministic values in [-1, 1), rounded to bf16 (the operator's input format).
    fn values(seed: u64, len: usize) -> Vec<bf16> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                bf16::from_f64((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
            })
            .collect()
    }

    /// Checks `y` against the f64 product. Bound: the products of bf16 values are exact in
    /// f32, so only the K-term fp32 sum rounds: |err| <= K·2^-24·Σ|x·w| (the standard
    /// recursive-summation bound, whatever the GEMM's order), plus half an ulp of `out_eps`
    /// relative for the output format (2^-8 for bf16, 0 for f32).
    #[allow(clippy::too_many_arguments)]
    fn check(
        x: &[bf16],
        w_kn: impl Fn(usize, usize, usize) -> f64,
        ends: &[usize],
        k: usize,
        n: usize,
        y: &[f64],
        out_eps: f64,
    ) {
        let mut start = 0;
        for (g, &end) in ends.iter().enumerate() {
            for r in start..end {
                for c in 0..n {
                    let terms: Vec<f64> = (0..k)
                        .map(|kk| x[r * k + kk].to_f64() * w_kn(g, kk, c))
                        .collect();
                    let exact: f64 = terms.iter().sum();
                    let mag: f64 = terms.iter().map(|t| t.abs()).sum();
                    let bound =
                        k as f64 * 2f64.powi(-24) * mag * (1.0 + out_eps) + out_eps * exact.abs();
                    let got = y[r * n + c];
                    assert!(
                        (got - exact).abs() <= bound,
                        "y[{r}][{c}] = {got}, expected {exact} ± {bound}"
                    );
                }
            }
            start = end;
        }
    }

    #[test]
    fn row_major_weights_with_empty_groups_into_f32() {
        let (k, n, experts) = (37, 19, 4);
        // Groups of 0, 3, 0 and 2 rows: the first and third experts get no rows.
        let ends = [0, 3, 3, 5];
        let m = 5;
        let mut x = values(1, m * k);
        let mut w = values(2, experts * k * n);
        let w_kn = {
            let w = w.clone();
            move |g: usize, kk: usize, c: usize| w[(g * k + kk) * n + c].to_f64()
        };
        let x_host = x.clone();
        let mut y = vec![f32::NAN; m * n];
        grouped_matmul(
            &TensorView::host(&mut x, &[m, k]).unwrap(),
            &TensorView::host(&mut w, &[experts, k, n]).unwrap(),
            &ends,
            &TensorView::host(&mut y, &[m, n]).unwrap(),
        )
        .unwrap();
        let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        check(&x_host, w_kn, &ends, k, n, &y, 0.0);
    }

    #[test]
    fn transposed_weights_and_strided_x_into_bf16() {
        // Weights stored [E, N, K] and viewed [E, K, N]; x a column slice of a wider buffer
        // (row stride K + 3, offset 2), so both the dense-permutation and strided paths run.
        let (k, n, experts, m) = (33, 17, 3, 6);
        let ends = [2, 2, 6];
        let pitch = k + 3;
        let mut x_store = values(3, 2 + m * pitch);
        let x_host: Vec<bf16> = (0..m * k)
            .map(|i| x_store[2 + (i / k) * pitch + i % k])
            .collect();
        let mut w_nk = values(4, experts * n * k);
        let w_kn = {
            let w = w_nk.clone();
            move |g: usize, kk: usize, c: usize| w[(g * n + c) * k + kk].to_f64()
        };
        let mut y = vec![bf16::from_f32(f32::NAN); m * n];
        grouped_matmul(
            &TensorView::host_strided(&mut x_store, &[m, k], &[pitch, 1], 2).unwrap(),
            &TensorView::host_strided(&mut w_nk, &[experts, k, n], &[n * k, 1, k], 0).unwrap(),
            &ends,
            &TensorView::host(&mut y, &[m, n]).unwrap(),
        )
        .unwrap();
        let y: Vec<f64> = y.iter().map(|v| v.to_f64()).collect();
        // bf16 output: one rounding of the fp32 result, half an ulp = 2^-8 relative.
        check(&x_host, w_kn, &ends, k, n, &y, 2f64.powi(-8));
    }

    #[test]
    fn group_lists_must_cover_m() {
        assert_eq!(group_ends(&[2, 0, 3], false, 5).unwrap(), [2, 2, 5]);
        assert_eq!(group_ends(&[2, 2, 5], true, 5).unwrap(), [2, 2, 5]);
        for (list, cumsum) in [
            (&[2, 2][..], false),
            (&[3, 2][..], true),
            (&[-1, 6][..], false),
        ] {
            let e = group_ends(list, cumsum, 5).unwrap_err();
            assert!(
                e.message.contains("grouped-matmul-v4.group-sum-equals-m"),
                "{}",
                e.message
            );
        }
    }
}
