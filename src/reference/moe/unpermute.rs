//! Unpermute (combine on one device): the weighted sum of each token's expert outputs.

use std::ops::{Add, Mul};

use super::error::{Result, check_len, element_count, filled};
use super::permute::Permutation;

/// `out[t] = Σ_k w[t,k] · y[expanded_row_idx[f(t,k)]]` in `f32`, the precision the device
/// accumulates in (`moe_token_unpermute`, `aclnnMoeFinalizeRoutingV2` without `x1`, `x2`
/// and bias). Pairs that were dropped (`expanded_row_idx = -1`) contribute nothing.
///
/// The order is fixed so a device can be matched bit for bit: per element, start from
/// `+0.0` and for `k = 0, 1, …, K−1` do `acc = acc + (w · y)`, the product rounded to
/// `f32` before the add (no fused multiply-add).
///
/// `y` is `[rows, H]` (the expert outputs in expanded order), `weights` `[T, K]` row-major
/// whatever the permutation's [`FlatIndex`](super::FlatIndex); `H` is `hidden`. Use
/// [`unpermute_f64`] as the oracle; this function models the device's rounding.
///
/// # Errors
/// [`MoeError::LengthMismatch`](super::MoeError::LengthMismatch) if `y` or `weights` does
/// not match the permutation's shape.
pub fn unpermute(
    y: &[f32],
    hidden: usize,
    perm: &Permutation,
    weights: &[f32],
) -> Result<Vec<f32>> {
    combine(y, hidden, perm, weights)
}

/// [`unpermute`] in `f64`: the **oracle** the device combine is checked against, with the
/// same summation order (`k` ascending from `+0.0`).
///
/// # Errors
/// As [`unpermute`].
pub fn unpermute_f64(
    y: &[f64],
    hidden: usize,
    perm: &Permutation,
    weights: &[f64],
) -> Result<Vec<f64>> {
    combine(y, hidden, perm, weights)
}

/// The one loop both precisions share; `V::default()` is `+0.0` for floats.
fn combine<V>(y: &[V], hidden: usize, perm: &Permutation, weights: &[V]) -> Result<Vec<V>>
where
    V: Copy + Default + Add<Output = V> + Mul<Output = V>,
{
    let (t_count, k_count) = (perm.num_tokens(), perm.top_k());
    check_len("y", y.len(), &[("rows", perm.num_rows()), ("H", hidden)])?;
    check_len("weights", weights.len(), &[("T", t_count), ("K", k_count)])?;
    let len = element_count("out", &[("T", t_count), ("H", hidden)])?;
    let mut out = filled("out", len, V::default())?;
    let rows = perm.expanded_row_idx();
    for t in 0..t_count {
        let acc = &mut out[t * hidden..(t + 1) * hidden];
        for k in 0..k_count {
            // A negative row (dropped pair) fails the conversion and is skipped.
            let Ok(r) = usize::try_from(rows[perm.pair_index(t, k)]) else {
                continue;
            };
            let w = weights[t * k_count + k];
            for (a, &v) in acc.iter_mut().zip(&y[r * hidden..(r + 1) * hidden]) {
                *a = *a + w * v;
            }
        }
    }
    Ok(out)
}
