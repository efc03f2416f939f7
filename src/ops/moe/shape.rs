//! The sizes every MoE step shares, named once so no call passes them positionally.

use crate::error::{Error, Result};

/// The sizes of one MoE step on one device: `tokens` rows of `hidden` values, each routed to
/// `top_k` of `experts` experts. Dispatch, the expert GEMMs and combine all take it, so the
/// sizes never swap places between calls.
///
/// ```
/// use ascend_npu::ops::moe::MoeShape;
/// let shape = MoeShape { tokens: 4, hidden: 7168, top_k: 8, experts: 256 };
/// assert_eq!(shape.pairs()?, 32);
/// # Ok::<(), ascend_npu::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MoeShape {
    /// Tokens `T` (rows of `x`).
    pub tokens: usize,
    /// The hidden size `H` (columns of `x`).
    pub hidden: usize,
    /// Experts per token `K`.
    pub top_k: usize,
    /// Routed experts `E` (on every device: ids are global).
    pub experts: usize,
}

impl MoeShape {
    /// The token-expert pairs `T·K`, or [`Error::InvalidArgument`] when the product overflows.
    pub fn pairs(&self) -> Result<usize> {
        crate::error::elements("token-expert pairs", &[self.tokens, self.top_k])
    }

    /// Checks `1 <= top_k <= experts`, the rule every dispatch shares.
    pub(crate) fn check_top_k(&self) -> Result<()> {
        let MoeShape { top_k, experts, .. } = *self;
        if experts == 0 || top_k == 0 || top_k > experts {
            return Err(Error::invalid(
                format!("top_k {top_k} of {experts} experts"),
                "1 <= top_k <= experts",
            ));
        }
        Ok(())
    }
}
