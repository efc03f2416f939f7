//! The experts: a dense `f64` SwiGLU FFN per expert, and its grouped application over the
//! expanded layout.

use super::error::{MoeError, Result, check_len, element_count, filled};
use super::permute::Permutation;

/// One SwiGLU FFN's weights, row-major `f64`: `gate` and `up` are `[I, H]`, `down` is
/// `[H, I]` (the `nn.Linear` layout, `y = W·x`). Built by [`new`](Self::new), which checks
/// the shapes, so the forward pass cannot index out of bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertWeights {
    hidden: usize,
    intermediate: usize,
    gate: Vec<f64>,
    up: Vec<f64>,
    down: Vec<f64>,
}

impl ExpertWeights {
    /// Wraps the three matrices of an expert with hidden size `H = hidden` and
    /// intermediate size `I = intermediate`.
    ///
    /// DeepSeek-V2's two shared experts are one of these with `I = 2 × 1536`: the sum of
    /// two SwiGLU FFNs is the FFN over their stacked rows.
    ///
    /// # Errors
    /// [`MoeError::ZeroDimension`] if `hidden` or `intermediate` is 0;
    /// [`MoeError::LengthMismatch`] if a matrix has the wrong number of elements.
    pub fn new(
        hidden: usize,
        intermediate: usize,
        gate: Vec<f64>,
        up: Vec<f64>,
        down: Vec<f64>,
    ) -> Result<Self> {
        if hidden == 0 {
            return Err(MoeError::ZeroDimension { what: "hidden" });
        }
        if intermediate == 0 {
            return Err(MoeError::ZeroDimension {
                what: "intermediate",
            });
        }
        check_len("gate", gate.len(), &[("I", intermediate), ("H", hidden)])?;
        check_len("up", up.len(), &[("I", intermediate), ("H", hidden)])?;
        check_len("down", down.len(), &[("H", hidden), ("I", intermediate)])?;
        Ok(Self {
            hidden,
            intermediate,
            gate,
            up,
            down,
        })
    }

    /// Hidden size `H`.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Intermediate size `I`.
    pub fn intermediate(&self) -> usize {
        self.intermediate
    }

    /// `[I, H]` gate projection.
    pub fn gate(&self) -> &[f64] {
        &self.gate
    }

    /// `[I, H]` up projection.
    pub fn up(&self) -> &[f64] {
        &self.up
    }

    /// `[H, I]` down projection.
    pub fn down(&self) -> &[f64] {
        &self.down
    }

    /// One row: `out = down · (silu(gate · x) ⊙ (up · x))`. Both `x` and `out` have `H`
    /// elements; the caller guarantees it.
    fn forward_row(&self, x: &[f64], out: &mut [f64]) {
        let (h, i_size) = (self.hidden, self.intermediate);
        let act: Vec<f64> = (0..i_size)
            .map(|i| {
                let g = dot(&self.gate[i * h..(i + 1) * h], x);
                let u = dot(&self.up[i * h..(i + 1) * h], x);
                silu(g) * u
            })
            .collect();
        for (j, o) in out.iter_mut().enumerate() {
            *o = dot(&self.down[j * i_size..(j + 1) * i_size], &act);
        }
    }
}

/// `Σ a_i·b_i`, in index order.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `silu(x) = x · sigmoid(x) = x / (1 + e^-x)`, written to avoid `∞/∞` for very negative
/// `x` (where it tends to `-0`).
pub fn silu(x: f64) -> f64 {
    if x >= 0.0 {
        x / (1.0 + (-x).exp())
    } else {
        let ex = x.exp();
        x * ex / (1.0 + ex)
    }
}

/// Applies one expert to `n` rows: `x` is `[n, H]` row-major (`n = x.len() / H`), the
/// result `[n, H]`. NaN and ∞ propagate (no check: nothing is selected here).
///
/// ```
/// use ascend_npu::reference::moe::{ExpertWeights, expert_ffn, silu};
/// // H = I = 1: y = down · silu(gate · x) · (up · x).
/// let w = ExpertWeights::new(1, 1, vec![2.0], vec![3.0], vec![0.5])?;
/// let y = expert_ffn(&w, &[1.5])?;
/// assert_eq!(y, vec![0.5 * silu(3.0) * 4.5]);
/// # Ok::<(), ascend_npu::reference::moe::MoeError>(())
/// ```
///
/// # Errors
/// [`MoeError::NotWholeRows`] if `x.len()` is not a multiple of `H`.
pub fn expert_ffn(weights: &ExpertWeights, x: &[f64]) -> Result<Vec<f64>> {
    let h = weights.hidden;
    if x.len() % h != 0 {
        return Err(MoeError::NotWholeRows {
            what: "x",
            len: x.len(),
            row_len: h,
            row: "hidden",
        });
    }
    let mut out = filled("expert output", x.len(), 0.0)?;
    for (xr, or) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        weights.forward_row(xr, or);
    }
    Ok(out)
}

/// The grouped GEMM of the reference: each expanded row goes through its expert's FFN,
/// `y[i] = FFN_{row_expert[i]}(expanded_x[i])`; padding rows give zeros.
///
/// `expanded_x` is `[rows, H]` (from [`gather`](super::gather)); `experts` holds the
/// weights of the permutation's **active** experts in order (`experts[e − start]` for
/// expert `e`), so under expert parallelism a device passes only its local experts.
///
/// # Errors
/// [`MoeError::ExpertCount`] if `experts.len()` differs from the active range's length,
/// [`MoeError::HiddenMismatch`] if the experts disagree on `H`, and
/// [`MoeError::LengthMismatch`] if `expanded_x` is not `[rows, H]`.
pub fn grouped_expert_ffn(
    expanded_x: &[f64],
    perm: &Permutation,
    experts: &[ExpertWeights],
) -> Result<Vec<f64>> {
    let active = perm.active_experts();
    if experts.len() != active.len() {
        return Err(MoeError::ExpertCount {
            actual: experts.len(),
            expected: active.len(),
        });
    }
    let Some(first) = experts.first() else {
        // No active experts: no rows.
        check_len("expanded_x", expanded_x.len(), &[("rows", perm.num_rows())])?;
        return Ok(Vec::new());
    };
    let h = first.hidden;
    for (j, w) in experts.iter().enumerate() {
        if w.hidden != h {
            return Err(MoeError::HiddenMismatch {
                what: format!("expert {}", active.start + j),
                actual: w.hidden,
                expected: h,
            });
        }
    }
    check_len(
        "expanded_x",
        expanded_x.len(),
        &[("rows", perm.num_rows()), ("H", h)],
    )?;
    let len = element_count("expert output", &[("rows", perm.num_rows()), ("H", h)])?;
    let mut out = filled("expert output", len, 0.0)?;
    for (i, &e) in perm.row_expert().iter().enumerate() {
        // Padding rows (-1) stay zero; placed rows have an active expert by construction.
        let local = usize::try_from(e)
            .ok()
            .and_then(|e| e.checked_sub(active.start));
        let Some(w) = local.and_then(|j| experts.get(j)) else {
            continue;
        };
        w.forward_row(
            &expanded_x[i * h..(i + 1) * h],
            &mut out[i * h..(i + 1) * h],
        );
    }
    Ok(out)
}
