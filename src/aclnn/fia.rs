//! `aclnnFusedInferAttentionScoreV3` in the MLA decode form (cann-api-facts §4.9; the op doc's
//! constraints on queryRope/keyRope): the absorbed query `q_N [B, S, N, 512]` with its rope
//! part, against a paged latent cache of one KV head (`[blocks, block_size, 512]` and
//! `[blocks, block_size, 64]`), the value being the latent itself.
//!
//! The op's limits for this form: N a power of two up to 128, S 1..=16 (S > 1 with the
//! bottom-right causal mask, sparseMode 3), block size 16 or 128, BF16 or FP16.

use std::ffi::CStr;

use super::{AclIntArray, AclTensor, AclTensorList, FusedInferAttentionScoreV3, Plan, SparseMode};
use crate::error::Result;
use crate::runtime::Stream;

/// `inputLayout` of the query (and the output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputLayout {
    /// `[B, S, N, D]`.
    Bsnd,
    /// `[B, N, S, D]`.
    Bnsd,
}

impl InputLayout {
    /// The string the C call takes.
    pub const fn as_cstr(self) -> &'static CStr {
        match self {
            InputLayout::Bsnd => c"BSND",
            InputLayout::Bnsd => c"BNSD",
        }
    }
}

/// The tensors of one MLA decode call: `B` sequences of `S` query tokens, `N` heads.
pub struct MlaDecodeTensors<'t, 'a> {
    /// `query`: the absorbed query `[B, S, N, 512]` (BSND) or `[B, N, S, 512]` (BNSD).
    pub query: &'t AclTensor<'a>,
    /// `queryRope`: the query's rope part, the query's dims with d = 64.
    pub query_rope: &'t AclTensor<'a>,
    /// `key`: the cache's latent rows, `[blocks, block_size, 512]` (BnBsH).
    pub key: AclTensorList<'a>,
    /// `value`: the same latent rows (the values are the latent, MLA's absorbed form).
    pub value: AclTensorList<'a>,
    /// `keyRope`: the cache's rope rows `[blocks, block_size, 64]`.
    pub key_rope: &'t AclTensor<'a>,
    /// `blockTable`: INT32 `[B, max_blocks]`.
    pub block_table: &'t AclTensor<'a>,
    /// `attenMask`: the optimised 2048 × 2048 causal mask when `S > 1`, else None.
    pub atten_mask: Option<&'t AclTensor<'a>>,
    /// `attentionOut`: the query's dims, d = 512.
    pub out: &'t mut AclTensor<'a>,
    /// `softmaxLse`: FLOAT `[B, N, S, 1]`, the natural-log LSE, when wanted.
    pub softmax_lse: Option<&'t mut AclTensor<'a>>,
}

/// The scalar attributes of an MLA decode call.
#[derive(Clone, Debug, PartialEq)]
pub struct MlaDecodeAttrs<'v> {
    /// `numHeads`, N.
    pub heads: usize,
    /// `scaleValue`: the softmax scale (0.13523378 for DeepSeek-V3; always explicit).
    pub scale: f64,
    /// `inputLayout`.
    pub layout: InputLayout,
    /// `blockSize`.
    pub block_size: usize,
    /// `actualSeqLengthsKv`: cached tokens per sequence.
    pub kv_lens: &'v [i64],
    /// `sparseMode`: [`SparseMode::NoMask`] for S = 1, [`SparseMode::RightDownCausal`] above.
    pub sparse: SparseMode,
}

/// Queues `aclnnFusedInferAttentionScoreV3` in the MLA decode form on `stream`.
pub fn mla_decode_v3(
    stream: &Stream,
    t: MlaDecodeTensors<'_, '_>,
    a: &MlaDecodeAttrs<'_>,
) -> Result<()> {
    let null = std::ptr::null::<ascend_sys::aclTensor>;
    let kv_lens = AclIntArray::new(stream, a.kv_lens)?;
    let out = t.out.as_ptr();
    let lse = t.softmax_lse.as_ref().map_or(null(), |l| l.as_ptr());
    let mask = t.atten_mask.map_or(null(), |m| m.as_ptr());
    let layout = a.layout.as_cstr();
    let heads = i64::try_from(a.heads).unwrap_or(i64::MAX);
    let block = i64::try_from(a.block_size).unwrap_or(i64::MAX);
    let plan = Plan::new::<FusedInferAttentionScoreV3>(
        stream,
        &[
            t.query,
            t.query_rope,
            &t.key,
            &t.value,
            t.key_rope,
            t.block_table,
            &t.atten_mask,
            &*t.out,
            &t.softmax_lse.as_deref(),
        ],
        |f, ws, exec| {
            // SAFETY: live tensor, list and array handles; NULL for every input the MLA form
            // does not take; `layout` is a static NUL-terminated string the op only reads (the
            // prototype declares it `char*`); out-pointers from Plan::new.
            unsafe {
                f(
                    t.query.as_ptr(),
                    t.key.as_ptr(),
                    t.value.as_ptr(),
                    null(),
                    mask,
                    std::ptr::null(),
                    kv_lens.as_ptr(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    t.block_table.as_ptr(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    std::ptr::null(),
                    t.query_rope.as_ptr(),
                    t.key_rope.as_ptr(),
                    null(),
                    heads,
                    a.scale,
                    i64::from(i32::MAX),
                    i64::from(i32::MAX),
                    layout.as_ptr().cast_mut(),
                    1,
                    a.sparse.value(),
                    0,
                    block,
                    0,
                    t.softmax_lse.is_some(),
                    0,
                    0,
                    out,
                    lse,
                    ws,
                    exec,
                )
            }
        },
    )?;
    plan.launch()
}
