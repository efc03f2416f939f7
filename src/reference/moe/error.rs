//! The one error type of the MoE reference, and the shape/allocation helpers that produce it.

/// Everything the MoE reference can reject. Each message says what was wrong and what was
/// expected; no input can make the reference panic instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MoeError {
    /// `n_routed_experts` is 0.
    #[error("MoE config: n_routed_experts is 0; expected at least 1 expert")]
    NoExperts,
    /// `n_group` is 0.
    #[error("MoE config: n_group is 0; expected at least 1 group")]
    NoGroups,
    /// The experts cannot be split into equal groups.
    #[error(
        "MoE config: n_routed_experts ({experts}) is not divisible by n_group ({groups}); \
         expected every group to hold the same number of experts"
    )]
    ExpertsNotDivisible {
        /// `n_routed_experts`.
        experts: usize,
        /// `n_group`.
        groups: usize,
    },
    /// `topk_group` is 0 or larger than `n_group`.
    #[error("MoE config: topk_group is {topk_group}; expected 1 ..= n_group ({n_group})")]
    TopkGroupOutOfRange {
        /// `topk_group`.
        topk_group: usize,
        /// `n_group`.
        n_group: usize,
    },
    /// `top_k` is 0.
    #[error("MoE: top_k is 0; expected at least 1 expert per token")]
    TopKZero,
    /// `top_k` is larger than the number of routed experts.
    #[error("MoE config: top_k ({top_k}) exceeds n_routed_experts ({experts})")]
    TopKExceedsExperts {
        /// `top_k`.
        top_k: usize,
        /// `n_routed_experts`.
        experts: usize,
    },
    /// A grouped method would have to pick experts from dropped groups.
    #[error(
        "MoE config: top_k ({top_k}) exceeds the experts left after group selection: \
         topk_group ({topk_group}) x experts per group ({per_group}) = {available}"
    )]
    TopKExceedsKeptExperts {
        /// `top_k`.
        top_k: usize,
        /// `topk_group`.
        topk_group: usize,
        /// `n_routed_experts / n_group`.
        per_group: usize,
        /// `topk_group · per_group`.
        available: usize,
    },
    /// `noaux_tc` scores a group by the sum of its two best experts, so it needs two.
    #[error(
        "MoE config: noaux_tc scores each group by the sum of its two largest scores, so it \
         needs at least 2 experts per group; n_routed_experts / n_group = {per_group}"
    )]
    GroupTooSmallForTop2 {
        /// `n_routed_experts / n_group`.
        per_group: usize,
    },
    /// Expert ids are `i32` (as on the device), so at most `i32::MAX` experts.
    #[error("MoE config: n_routed_experts ({experts}) exceeds i32::MAX; expert ids are int32")]
    TooManyExperts {
        /// `n_routed_experts`.
        experts: usize,
    },
    /// `routed_scaling_factor` is NaN, infinite, zero or negative.
    #[error("MoE config: routed_scaling_factor is {value}; expected a finite value > 0")]
    InvalidScalingFactor {
        /// The value given.
        value: f64,
    },
    /// A dimension that must be positive is 0.
    #[error("MoE: {what} is 0; expected at least 1")]
    ZeroDimension {
        /// Which dimension.
        what: &'static str,
    },
    /// A buffer's length does not match the shape the other arguments imply.
    #[error("MoE: {what} has {actual} elements; expected {expected} (shape {shape})")]
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// Its length.
        actual: usize,
        /// The length the shape implies.
        expected: usize,
        /// The shape, e.g. `[T=4, H=8]`.
        shape: String,
    },
    /// A buffer whose row count is implied by its length is not a whole number of rows.
    #[error("MoE: {what} has {len} elements, not a multiple of its row length {row_len} ({row})")]
    NotWholeRows {
        /// Which argument.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The row length.
        row_len: usize,
        /// What a row is, e.g. `n_routed_experts`.
        row: &'static str,
    },
    /// A shape's element count does not fit in `usize`.
    #[error("MoE: {what} of shape {shape} has more elements than usize can count")]
    SizeOverflow {
        /// Which buffer.
        what: &'static str,
        /// Its shape.
        shape: String,
    },
    /// The memory for an output could not be reserved.
    #[error("MoE: could not allocate {elements} elements for {what}")]
    Allocation {
        /// Which buffer.
        what: &'static str,
        /// How many elements were requested.
        elements: usize,
    },
    /// An input that selection depends on is NaN or infinite.
    #[error("MoE: {what}[{index}] is {value}; expected a finite value")]
    NonFinite {
        /// `"logits"` or `"bias"`.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
        /// The value.
        value: f64,
    },
    /// An expert id is negative or not below the number of experts.
    #[error("MoE: topk_ids[{index}] is {id}; expected an expert id in 0..{num_experts}")]
    ExpertIdOutOfRange {
        /// Flat (row-major `t·K + k`) index of the offending id.
        index: usize,
        /// The id.
        id: i64,
        /// The number of experts.
        num_experts: usize,
    },
    /// The active expert range is empty-reversed or reaches past the last expert.
    #[error(
        "MoE: active_expert_range is {start}..{end}; expected start <= end <= num_experts \
         ({num_experts})"
    )]
    InvalidExpertRange {
        /// Range start.
        start: usize,
        /// Range end (exclusive).
        end: usize,
        /// The number of experts.
        num_experts: usize,
    },
    /// The number of expert weight sets differs from `n_routed_experts`.
    #[error("MoE layer: {actual} expert weight sets given; expected n_routed_experts = {expected}")]
    ExpertCount {
        /// Sets given.
        actual: usize,
        /// `n_routed_experts`.
        expected: usize,
    },
    /// Weight sets disagree on the hidden size.
    #[error("MoE layer: {what} has hidden size {actual}; expected {expected} like expert 0")]
    HiddenMismatch {
        /// Which weight set.
        what: String,
        /// Its hidden size.
        actual: usize,
        /// Expert 0's hidden size.
        expected: usize,
    },
}

/// Shorthand for results of the MoE reference.
pub type Result<T, E = MoeError> = std::result::Result<T, E>;

/// Formats a shape as `[T=4, H=8]` for error messages.
fn shape_string(dims: &[(&str, usize)]) -> String {
    let parts: Vec<String> = dims.iter().map(|(n, d)| format!("{n}={d}")).collect();
    format!("[{}]", parts.join(", "))
}

/// The element count of `dims`, or [`MoeError::SizeOverflow`].
pub(crate) fn element_count(what: &'static str, dims: &[(&str, usize)]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &(_, d)| acc.checked_mul(d))
        .ok_or_else(|| MoeError::SizeOverflow {
            what,
            shape: shape_string(dims),
        })
}

/// Checks that `actual` equals the element count of `dims`.
pub(crate) fn check_len(what: &'static str, actual: usize, dims: &[(&str, usize)]) -> Result<()> {
    let expected = element_count(what, dims)?;
    if actual == expected {
        Ok(())
    } else {
        Err(MoeError::LengthMismatch {
            what,
            actual,
            expected,
            shape: shape_string(dims),
        })
    }
}

/// A vector of `n` copies of `value`, reserved fallibly: sizes can come from arguments
/// (expert counts, capacities) rather than from input lengths, and `vec![v; n]` would
/// abort or panic on an absurd one.
pub(crate) fn filled<T: Clone>(what: &'static str, n: usize, value: T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| MoeError::Allocation { what, elements: n })?;
    v.resize(n, value);
    Ok(v)
}
