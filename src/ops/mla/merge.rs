//! The LSE merge of two partial attentions on the device: chunked prefill attends to the
//! cached prefix and to the new chunk separately, then merges (FlashAttention's
//! `merge_attn_states`), on our `mla_lse_merge_bf16` kernel.

use half::bf16;

use super::prefill::PrefillOutput;
use crate::error::{Error, Result, elements};
use crate::kernels::Kernels;
use crate::kernels::mla::LseMergeArgs;
use crate::runtime::{DeviceSlice, KernelArg, Stream};

/// Merges `a` and `b`, the attentions of the same `[tokens, heads, width]` query rows over
/// two disjoint key sets, into their attention over the union: per row
/// `out = (e^{lse_a} out_a + e^{lse_b} out_b) / (e^{lse_a} + e^{lse_b})` and
/// `lse = ln(e^{lse_a} + e^{lse_b})`, in f32 from the bf16 inputs, `out` rounded once to bf16.
/// A part whose LSE is `+∞` (it saw no key) weighs 0; a row neither part saw gets 0 and `+∞`.
/// LSEs are `[heads, tokens]` (natural log), as [`prefill`](super::prefill) returns them.
pub fn merge_attention(
    kernels: &Kernels,
    stream: &Stream,
    a: &PrefillOutput,
    b: &PrefillOutput,
    heads: usize,
) -> Result<PrefillOutput> {
    let (n_out, n_lse) = (a.out.len(), a.lse.len());
    let tokens = n_lse.checked_div(heads).unwrap_or(0);
    let width = n_out.checked_div(n_lse).unwrap_or(0);
    let rows = elements("merged rows", &[tokens, heads])?;
    if heads == 0
        || rows != n_lse
        || rows * width != n_out
        || (b.out.len(), b.lse.len()) != (n_out, n_lse)
    {
        return Err(Error::invalid(
            format!(
                "partial attentions of {n_out} and {} values with {n_lse} and {} LSEs, {heads} heads",
                b.out.len(),
                b.lse.len()
            ),
            "two outputs [tokens, heads, width] and LSEs [heads, tokens] of the same shape",
        ));
    }
    let mut out = stream.alloc_pooled_zeroed::<bf16>(n_out)?;
    let mut lse = stream.alloc_pooled_zeroed::<f32>(n_lse)?;
    if rows == 0 {
        return Ok(PrefillOutput { out, lse });
    }
    kernels.mla_lse_merge(
        stream,
        (rows, width, heads),
        LseMergeArgs {
            out_a: KernelArg::buffer(&a.out),
            lse_a: KernelArg::buffer(&a.lse),
            out_b: KernelArg::buffer(&b.out),
            lse_b: KernelArg::buffer(&b.lse),
            out: KernelArg::buffer_mut(&mut out),
            lse: KernelArg::buffer_mut(&mut lse),
        },
    )?;
    Ok(PrefillOutput { out, lse })
}
