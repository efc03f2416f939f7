//! The one error type of the expert-parallel reference.

/// Everything the expert-parallel reference rejects, saying what was wrong and what was
/// expected; no input makes it panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EpError {
    /// Experts cannot be split evenly over the ranks.
    #[error(
        "EP config: {experts} experts over {ranks} ranks; expected at least one rank and a \
         positive number of experts divisible by the rank count"
    )]
    Config {
        /// Ranks.
        ranks: usize,
        /// Experts.
        experts: usize,
    },
    /// An array has the wrong size.
    #[error("EP: {0}")]
    Shape(String),
    /// An expert id is out of range.
    #[error(
        "EP: rank {rank} topk_idx[{index}] is {id}; expected -1 or an expert id in 0..{experts}"
    )]
    ExpertId {
        /// The rank.
        rank: usize,
        /// Flat index into its `topk_idx`.
        index: usize,
        /// The id.
        id: i64,
        /// Experts.
        experts: usize,
    },
}

/// `Result` of the expert-parallel reference.
pub type Result<T> = std::result::Result<T, EpError>;
