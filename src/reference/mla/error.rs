//! The one error type of the MLA reference.

/// Everything the MLA reference can reject. Each message says what was wrong and what was
/// expected; no input makes the reference panic instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MlaError {
    /// A configuration field is out of its range.
    #[error("MLA config: {field} is {value}; expected {expected}")]
    Config {
        /// The field, as `config.json` names it.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// `config.json` could not be read as a DeepSeek attention configuration.
    #[error("MLA config.json: {0}")]
    ConfigJson(String),
    /// A tensor has the wrong number of elements for the configuration.
    #[error("MLA: {what} has {actual} elements; expected {expected} ({shape})")]
    Length {
        /// The tensor.
        what: &'static str,
        /// Elements expected.
        expected: usize,
        /// Elements given.
        actual: usize,
        /// The expected shape, written out.
        shape: String,
    },
    /// A size product does not fit in `usize`.
    #[error("MLA: the size of {what} overflows usize; expected a shape that fits in memory")]
    Overflow {
        /// The tensor.
        what: &'static str,
    },
    /// A paged-cache argument is inconsistent.
    #[error("MLA paged cache: {0}")]
    Paged(String),
    /// More queries than keys under the bottom-right causal mask.
    #[error(
        "MLA: {s_q} queries against {s_k} cached tokens with a causal mask; expected s_q <= s_k \
         (the queries are the last s_q tokens of the sequence)"
    )]
    CausalQueries {
        /// Query tokens.
        s_q: usize,
        /// Cached tokens.
        s_k: usize,
    },
    /// An input value is NaN or infinite where the reference requires finite values.
    #[error("MLA: {what}[{index}] is {value}; expected a finite value")]
    NonFinite {
        /// The tensor.
        what: &'static str,
        /// The flat index of the first such value.
        index: usize,
        /// The value.
        value: f64,
    },
}

/// `Result` of the MLA reference.
pub type Result<T> = std::result::Result<T, MlaError>;

/// The product of `dims`, or [`MlaError::Overflow`] naming `what`.
pub(crate) fn product(what: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(MlaError::Overflow { what })
}

/// Checks that `data` has `dims`' product of elements.
pub(crate) fn check_len(what: &'static str, data: &[f64], dims: &[usize]) -> Result<()> {
    let expected = product(what, dims)?;
    if data.len() != expected {
        return Err(MlaError::Length {
            what,
            expected,
            actual: data.len(),
            shape: format!("{dims:?}"),
        });
    }
    Ok(())
}
