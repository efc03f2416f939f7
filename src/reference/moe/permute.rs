//! Permute (dispatch to experts on one device): the stable sort of `(token, k)` pairs by
//! expert, and the gather of token rows into that order.

use std::ops::Range;

use super::error::{MoeError, Result, check_len, element_count, filled};

/// How a `(token t, slot k)` pair is numbered in the flat index `f` that
/// [`Permutation::sorted_row_idx`] and [`Permutation::expanded_row_idx`] use.
///
/// The ids themselves are always given `[T, K]` row-major; only the numbering differs.
/// Mixing the two silently permutes rows, so the convention travels with the
/// [`Permutation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FlatIndex {
    /// `f = t·K + k`: `aclnnMoeInitRoutingV2/V3`, `moe_token_permute`, DeepEP.
    #[default]
    RowMajor,
    /// `f = k·T + t`: the v1 `moe_init_routing` / `moe_finalize_routing` convention (its
    /// caller-supplied `rowIdx`).
    KMajor,
}

/// Options of [`permute`]. [`Default`]: every expert active, dropless, row-major.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PermuteOptions {
    /// Only pairs whose expert is in `start..end` are placed (the experts local to this
    /// device under expert parallelism); the others are dropped (`expanded_row_idx = -1`).
    /// `None` means `0..num_experts`.
    pub active_expert_range: Option<Range<usize>>,
    /// Drop/pad mode (`dropPadMode = 1` of `aclnnMoeInitRoutingV2`): each active expert
    /// gets exactly `capacity` rows; its pairs beyond the first `capacity` (in flat-index
    /// order) are dropped and its unused rows are padding (`sorted_row_idx = -1`, zero in
    /// [`gather`]). `None` is dropless: exactly one row per placed pair, no padding.
    pub capacity: Option<usize>,
    /// The flat-index numbering.
    pub flat_index: FlatIndex,
}

/// The expanded (expert-sorted) layout of `T·K` `(token, k)` pairs, as [`permute`] returns
/// it. Only [`permute`] builds one, so [`gather`] and the unpermutes can rely on its
/// invariants; the accessors expose every array for comparison with a device's output.
///
/// Rows `offsets[e] .. offsets[e] + counts[e]` hold expert `e`'s pairs, in ascending flat
/// index (the sort is stable). Dropless, `offsets[e + 1] = offsets[e] + counts[e]` (the
/// cumsum form of the counts); with a capacity, `offsets[e + 1] − offsets[e]` is the
/// capacity for active experts and the rows after `counts[e]` are padding. Inactive
/// experts have empty segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permutation {
    num_tokens: usize,
    top_k: usize,
    num_experts: usize,
    flat_index: FlatIndex,
    active_experts: Range<usize>,
    capacity: Option<usize>,
    sorted_row_idx: Vec<i64>,
    expanded_row_idx: Vec<i64>,
    row_expert: Vec<i32>,
    counts: Vec<usize>,
    demand: Vec<usize>,
    offsets: Vec<usize>,
}

impl Permutation {
    /// Tokens `T`.
    pub fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Pairs per token `K`.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// Experts `E`.
    pub fn num_experts(&self) -> usize {
        self.num_experts
    }

    /// The numbering of flat indices.
    pub fn flat_index(&self) -> FlatIndex {
        self.flat_index
    }

    /// The experts that were placed.
    pub fn active_experts(&self) -> Range<usize> {
        self.active_experts.clone()
    }

    /// The capacity per expert, if in drop/pad mode.
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Expanded rows: the placed pairs dropless, `active experts × capacity` in drop/pad.
    pub fn num_rows(&self) -> usize {
        self.sorted_row_idx.len()
    }

    /// `[rows]` for each expanded row, the flat index of its source pair, or -1 for a
    /// padding row (the "gather" form, `rowIdxType = 0`).
    pub fn sorted_row_idx(&self) -> &[i64] {
        &self.sorted_row_idx
    }

    /// `[T·K]`, indexed by flat index: the expanded row of each pair, or -1 if it was
    /// dropped (expert inactive or over capacity). The inverse of
    /// [`sorted_row_idx`](Self::sorted_row_idx) (the "scatter" form, `rowIdxType = 1`),
    /// which unpermute consumes.
    pub fn expanded_row_idx(&self) -> &[i64] {
        &self.expanded_row_idx
    }

    /// `[rows]` the expert of each expanded row, or -1 for padding (DeepGEMM's
    /// `grouped_layout`).
    pub fn row_expert(&self) -> &[i32] {
        &self.row_expert
    }

    /// `[E]` pairs placed per expert (0 for inactive experts; at most the capacity).
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// `[E]` pairs routed to each expert before range and capacity: `bincount(ids)`
    /// (`expertTokensBeforeCapacity`).
    pub fn demand(&self) -> &[usize] {
        &self.demand
    }

    /// `[E + 1]` where each expert's segment starts; the last entry is the row count.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// The flat index of pair `(t, k)` under this permutation's [`FlatIndex`]. Meaningful
    /// for `t < T`, `k < K`; the arithmetic saturates rather than panics otherwise.
    pub fn pair_index(&self, t: usize, k: usize) -> usize {
        match self.flat_index {
            FlatIndex::RowMajor => t.saturating_mul(self.top_k).saturating_add(k),
            FlatIndex::KMajor => k.saturating_mul(self.num_tokens).saturating_add(t),
        }
    }

    /// The token of flat index `f`: `f / K` row-major, `f % T` k-major (what the v2 and
    /// v1 gather kernels compute). 0 for an empty permutation.
    pub fn token_of(&self, f: usize) -> usize {
        match self.flat_index {
            FlatIndex::RowMajor => f.checked_div(self.top_k).unwrap_or(0),
            FlatIndex::KMajor => f.checked_rem(self.num_tokens).unwrap_or(0),
        }
    }
}

/// Sorts the `(token, k)` pairs of `topk_ids` (`[T, K]` row-major, `T = len / top_k`) by
/// expert, stably in flat-index order, into the expanded layout described by
/// [`Permutation`]. This is `aclnnMoeInitRoutingV2/V3` without the data movement (see
/// [`gather`]).
///
/// A token may list an expert more than once; each pair still gets its own row.
///
/// # Errors
/// `top_k == 0`, `topk_ids.len()` not a multiple of `top_k`, an id outside
/// `0..num_experts` (negative ids included: this reference has no "-1 = none"), an
/// active range that is reversed or reaches past `num_experts`, or a drop/pad layout too
/// large to allocate.
pub fn permute(
    topk_ids: &[i32],
    top_k: usize,
    num_experts: usize,
    options: &PermuteOptions,
) -> Result<Permutation> {
    if top_k == 0 {
        return Err(MoeError::TopKZero);
    }
    if topk_ids.len() % top_k != 0 {
        return Err(MoeError::NotWholeRows {
            what: "topk_ids",
            len: topk_ids.len(),
            row_len: top_k,
            row: "top_k",
        });
    }
    let num_tokens = topk_ids.len() / top_k;
    let active = options
        .active_expert_range
        .clone()
        .unwrap_or(0..num_experts);
    if active.start > active.end || active.end > num_experts {
        return Err(MoeError::InvalidExpertRange {
            start: active.start,
            end: active.end,
            num_experts,
        });
    }
    // Validated expert ids, `[T, K]` row-major.
    let mut ids = filled("expert ids", topk_ids.len(), 0usize)?;
    for (index, (&id, slot)) in topk_ids.iter().zip(ids.iter_mut()).enumerate() {
        match usize::try_from(id) {
            Ok(e) if e < num_experts => *slot = e,
            _ => {
                return Err(MoeError::ExpertIdOutOfRange {
                    index,
                    id: i64::from(id),
                    num_experts,
                });
            }
        }
    }

    let pairs = ids.len();
    let flat_index = options.flat_index;
    // The expert of flat index `f`.
    let expert_of = |f: usize| -> usize {
        match flat_index {
            FlatIndex::RowMajor => ids[f],
            FlatIndex::KMajor => ids[(f % num_tokens) * top_k + f / num_tokens],
        }
    };

    // Counting sort: walking f upwards and appending to the expert's bucket is exactly a
    // stable sort by expert with the flat index as the tie-break.
    let mut buckets: Vec<Vec<usize>> = filled("expert buckets", num_experts, Vec::new())?;
    for f in 0..pairs {
        buckets[expert_of(f)].push(f);
    }
    let demand: Vec<usize> = buckets.iter().map(Vec::len).collect();

    let mut counts = filled("counts", num_experts, 0usize)?;
    for e in active.clone() {
        counts[e] = match options.capacity {
            Some(c) => demand[e].min(c),
            None => demand[e],
        };
    }
    let mut offsets = filled("offsets", num_experts.saturating_add(1), 0usize)?;
    let rows = match options.capacity {
        None => {
            // Counts are ≤ T·K in total, so the cumsum cannot overflow.
            for e in 0..num_experts {
                offsets[e + 1] = offsets[e] + counts[e];
            }
            offsets[num_experts]
        }
        Some(c) => {
            let rows = element_count("expanded rows", &[("active E", active.len()), ("C", c)])?;
            for (e, offset) in offsets.iter_mut().enumerate() {
                // Bounded by `rows`, computed above without overflow.
                *offset = (e.clamp(active.start, active.end) - active.start) * c;
            }
            rows
        }
    };

    let mut sorted_row_idx = filled("sorted_row_idx", rows, -1i64)?;
    let mut row_expert = filled("row_expert", rows, -1i32)?;
    let mut expanded_row_idx = filled("expanded_row_idx", pairs, -1i64)?;
    for e in active.clone() {
        for (j, &f) in buckets[e].iter().take(counts[e]).enumerate() {
            let r = offsets[e] + j;
            // Row and flat indices index allocated vectors, so they are far below i64::MAX.
            sorted_row_idx[r] = f as i64;
            expanded_row_idx[f] = r as i64;
            // An id that was an i32 and is below `num_experts` fits in i32.
            row_expert[r] = i32::try_from(e).unwrap_or(i32::MAX);
        }
    }

    Ok(Permutation {
        num_tokens,
        top_k,
        num_experts,
        flat_index,
        active_experts: active,
        capacity: options.capacity,
        sorted_row_idx,
        expanded_row_idx,
        row_expert,
        counts,
        demand,
        offsets,
    })
}

/// The expanded activations: `expanded_x[i] = x[token_of(sorted_row_idx[i])]`, a bit-exact
/// copy of the token's row (NaN payloads and signed zeros included), and
/// `X::default()` (zero) for padding rows. `x` is `[T, hidden]` row-major.
///
/// # Errors
/// [`MoeError::LengthMismatch`] if `x.len() != T · hidden`, or a size error if the output
/// cannot be allocated.
pub fn gather<X: Copy + Default>(x: &[X], hidden: usize, perm: &Permutation) -> Result<Vec<X>> {
    check_len("x", x.len(), &[("T", perm.num_tokens), ("H", hidden)])?;
    let len = element_count("expanded_x", &[("rows", perm.num_rows()), ("H", hidden)])?;
    let mut out = filled("expanded_x", len, X::default())?;
    for (i, &f) in perm.sorted_row_idx.iter().enumerate() {
        if let Ok(f) = usize::try_from(f) {
            let t = perm.token_of(f);
            out[i * hidden..(i + 1) * hidden].copy_from_slice(&x[t * hidden..(t + 1) * hidden]);
        }
    }
    Ok(out)
}
