//! The MLA operators' entry points (aclnnMlaPrologV3WeightNz, aclnnFusedInferAttentionScoreV3): phase one checks the rule table
//! and plans, phase two launches (see `crate::aclnn`).

use std::ffi::c_char;

use ascend_sys::{
    StaticSymbols, aclIntArray, aclOpExecutor, aclTensor, aclTensorList, aclnnStatus,
};

use super::aclnn_base::{finish_plan, int_array, list, tensor};
use super::aclnn_ops::{meta, metas, must};
use super::context::current;
use super::{guard, read_cstr};
use crate::base::error::SimResult;
use crate::base::soc::SocFamily;
use crate::ffi::state::sim;
use crate::operators::aclnn::objects::{TensorDesc, invalid};
use crate::operators::aclnn::ops::{fia_mla, mla_prolog};
use crate::rules::{self, Arg, Call};

const PROLOG: &str = "aclnnMlaPrologV3WeightNz";

/// Rules `mla-prolog-v3.products` and `fia-v3.products`: the planning device is one of the
/// products the ops' docs list, Atlas A2 or A3.
fn check_product(rule: &str) -> SimResult<()> {
    let device = current()?.device;
    let sim = sim()?;
    let soc = &sim.machine.device(device as i64)?.soc;
    match soc.family {
        SocFamily::A2 | SocFamily::A3 => Ok(()),
        _ => Err(rules::violation(
            rule,
            format!("device {device} is {}", soc.name),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnMlaPrologV3WeightNzGetWorkspaceSize(
    token_x: *const aclTensor,
    weight_dq: *const aclTensor,
    weight_uq_qr: *const aclTensor,
    weight_uk: *const aclTensor,
    weight_dkv_kr: *const aclTensor,
    gamma_cq: *const aclTensor,
    gamma_ckv: *const aclTensor,
    rope_sin: *const aclTensor,
    rope_cos: *const aclTensor,
    kv_cache: *mut aclTensor,
    kr_cache: *mut aclTensor,
    cache_index: *const aclTensor,
    dequant_scale_x: *const aclTensor,
    dequant_scale_w_dq: *const aclTensor,
    dequant_scale_w_uq_qr: *const aclTensor,
    dequant_scale_w_dkv_kr: *const aclTensor,
    quant_scale_ckv: *const aclTensor,
    quant_scale_ckr: *const aclTensor,
    smooth_scales_cq: *const aclTensor,
    actual_seq_len: *const aclTensor,
    eps_cq: f64,
    eps_ckv: f64,
    cache_mode: *mut c_char,
    query_norm_flag: bool,
    weight_quant_mode: i64,
    kv_cache_quant_mode: i64,
    query_quant_mode: i64,
    ckvkr_repo_mode: i64,
    quant_scale_repo_mode: i64,
    tile_size: i64,
    k_nope_clip_alpha: f64,
    qc_qr_scale: f64,
    kc_scale: f64,
    query_out: *const aclTensor,
    query_rope_out: *const aclTensor,
    dequant_scale_q_nope_out: *const aclTensor,
    query_norm_out: *const aclTensor,
    dequant_scale_q_norm_out: *const aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnMlaPrologV3WeightNzGetWorkspaceSize", || {
        let t = |p: *const aclTensor| tensor(p);
        let (x, dq, uqqr, uk, dkvkr) = (
            t(token_x)?,
            t(weight_dq)?,
            t(weight_uq_qr)?,
            t(weight_uk)?,
            t(weight_dkv_kr)?,
        );
        let (g_cq, g_ckv, sin, cos) = (t(gamma_cq)?, t(gamma_ckv)?, t(rope_sin)?, t(rope_cos)?);
        let (kv, kr, index) = (
            t(kv_cache.cast_const())?,
            t(kr_cache.cast_const())?,
            t(cache_index)?,
        );
        let quant = [
            t(dequant_scale_x)?,
            t(dequant_scale_w_dq)?,
            t(dequant_scale_w_uq_qr)?,
            t(dequant_scale_w_dkv_kr)?,
            t(quant_scale_ckv)?,
            t(quant_scale_ckr)?,
            t(smooth_scales_cq)?,
            t(actual_seq_len)?,
        ];
        let (query, query_rope) = (t(query_out)?, t(query_rope_out)?);
        let extra_out = [
            t(dequant_scale_q_nope_out)?,
            t(query_norm_out)?,
            t(dequant_scale_q_norm_out)?,
        ];
        // SAFETY: NULL or a NUL-terminated string (C contract).
        let mode = unsafe { read_cstr(cache_mode) };
        let call = Call::new(PROLOG)
            .tensor("tokenX", meta(&x))
            .tensor("weightDq", meta(&dq))
            .tensor("weightUqQr", meta(&uqqr))
            .tensor("weightUk", meta(&uk))
            .tensor("weightDkvKr", meta(&dkvkr))
            .tensor("rmsnormGammaCq", meta(&g_cq))
            .tensor("rmsnormGammaCkv", meta(&g_ckv))
            .tensor("ropeSin", meta(&sin))
            .tensor("ropeCos", meta(&cos))
            .tensor("kvCacheRef", meta(&kv))
            .tensor("krCacheRef", meta(&kr))
            .tensor("cacheIndexOptional", meta(&index))
            .tensor("dequantScaleXOptional", meta(&quant[0]))
            .tensor("dequantScaleWDqOptional", meta(&quant[1]))
            .tensor("dequantScaleWUqQrOptional", meta(&quant[2]))
            .tensor("dequantScaleWDkvKrOptional", meta(&quant[3]))
            .tensor("quantScaleCkvOptional", meta(&quant[4]))
            .tensor("quantScaleCkrOptional", meta(&quant[5]))
            .tensor("smoothScalesCqOptional", meta(&quant[6]))
            .tensor("actualSeqLenOptional", meta(&quant[7]))
            .with("rmsnormEpsilonCq", Arg::Float(eps_cq))
            .with("rmsnormEpsilonCkv", Arg::Float(eps_ckv))
            .with("cacheModeOptional", Arg::Str(mode))
            .with("queryNormFlag", Arg::Bool(query_norm_flag))
            .int("weightQuantMode", weight_quant_mode)
            .int("kvCacheQuantMode", kv_cache_quant_mode)
            .int("queryQuantMode", query_quant_mode)
            .int("ckvkrRepoMode", ckvkr_repo_mode)
            .int("quantScaleRepoMode", quant_scale_repo_mode)
            .int("tileSize", tile_size)
            .with("kNopeClipAlpha", Arg::Float(k_nope_clip_alpha))
            .with("qcQrScale", Arg::Float(qc_qr_scale))
            .with("kcScale", Arg::Float(kc_scale))
            .tensor("queryOut", meta(&query))
            .tensor("queryRopeOut", meta(&query_rope))
            .tensor("dequantScaleQNopeOutOptional", meta(&extra_out[0]))
            .tensor("queryNormOutOptional", meta(&extra_out[1]))
            .tensor("dequantScaleQNormOutOptional", meta(&extra_out[2]));
        rules::check(&call)?;
        check_product("mla-prolog-v3.products")?;
        // What the simulator computes: the documented non-quantised PA_BSND form.
        let mode = rules::mla_prolog_cache_mode(&call);
        if mode != "PA_BSND" {
            return Err(invalid(format!(
                "cacheMode {mode}; only PA_BSND is simulated"
            )));
        }
        if weight_quant_mode != 0 || kv_cache_quant_mode != 0 || query_quant_mode != 0 {
            return Err(invalid(
                "quantised MlaProlog (weightQuantMode, kvCacheQuantMode or queryQuantMode not 0) is not simulated",
            ));
        }
        if query_norm_flag || ckvkr_repo_mode != 0 || quant_scale_repo_mode != 0 {
            return Err(invalid(
                "queryNormFlag, ckvkrRepoMode and quantScaleRepoMode other than false/0 are not simulated",
            ));
        }
        let tensors = mla_prolog::Tensors {
            token_x: must(x, "tokenX")?,
            weight_dq: must(dq, "weightDq")?,
            weight_uq_qr: must(uqqr, "weightUqQr")?,
            weight_uk: must(uk, "weightUk")?,
            weight_dkv_kr: must(dkvkr, "weightDkvKr")?,
            gamma_cq: must(g_cq, "rmsnormGammaCq")?,
            gamma_ckv: must(g_ckv, "rmsnormGammaCkv")?,
            rope_sin: must(sin, "ropeSin")?,
            rope_cos: must(cos, "ropeCos")?,
            cache_index: must(index, "cacheIndexOptional")?,
            kv_cache: must(kv, "kvCacheRef")?,
            kr_cache: must(kr, "krCacheRef")?,
            query: must(query, "queryOut")?,
            query_rope: must(query_rope, "queryRopeOut")?,
        };
        let attrs = mla_prolog::Attrs {
            eps_cq,
            eps_ckv,
            qc_qr_scale,
            kc_scale,
        };
        let planned = mla_prolog::plan(tensors, attrs)?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan(PROLOG, planned, workspace_size, executor) }
    })
}

second_phase!(aclnnMlaPrologV3WeightNz);

const FIA: &str = "aclnnFusedInferAttentionScoreV3";

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclnnFusedInferAttentionScoreV3GetWorkspaceSize(
    query: *const aclTensor,
    key: *const aclTensorList,
    value: *const aclTensorList,
    pse_shift: *const aclTensor,
    atten_mask: *const aclTensor,
    actual_seq_lengths: *const aclIntArray,
    actual_seq_lengths_kv: *const aclIntArray,
    deq_scale1: *const aclTensor,
    quant_scale1: *const aclTensor,
    deq_scale2: *const aclTensor,
    quant_scale2: *const aclTensor,
    quant_offset2: *const aclTensor,
    antiquant_scale: *const aclTensor,
    antiquant_offset: *const aclTensor,
    block_table: *const aclTensor,
    query_padding_size: *const aclTensor,
    kv_padding_size: *const aclTensor,
    key_antiquant_scale: *const aclTensor,
    key_antiquant_offset: *const aclTensor,
    value_antiquant_scale: *const aclTensor,
    value_antiquant_offset: *const aclTensor,
    key_shared_prefix: *const aclTensor,
    value_shared_prefix: *const aclTensor,
    actual_shared_prefix_len: *const aclIntArray,
    query_rope: *const aclTensor,
    key_rope: *const aclTensor,
    key_rope_antiquant_scale: *const aclTensor,
    num_heads: i64,
    scale_value: f64,
    pre_tokens: i64,
    next_tokens: i64,
    input_layout: *mut c_char,
    num_key_value_heads: i64,
    sparse_mode: i64,
    inner_precise: i64,
    block_size: i64,
    antiquant_mode: i64,
    softmax_lse_flag: bool,
    key_antiquant_mode: i64,
    value_antiquant_mode: i64,
    attention_out: *const aclTensor,
    softmax_lse: *const aclTensor,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> aclnnStatus {
    guard("aclnnFusedInferAttentionScoreV3GetWorkspaceSize", || {
        let t = |p: *const aclTensor| tensor(p);
        let (q, k, v) = (t(query)?, list(key)?, list(value)?);
        let (q_rope, k_rope, table) = (t(query_rope)?, t(key_rope)?, t(block_table)?);
        let (out, lse) = (t(attention_out)?, t(softmax_lse)?);
        // SAFETY: NULL or a NUL-terminated string (C contract).
        let layout = unsafe { read_cstr(input_layout) };
        let mut call = Call::new(FIA)
            .tensor("query", meta(&q))
            .with("key", metas(&k))
            .with("value", metas(&v))
            .tensor("pseShiftOptional", meta(&t(pse_shift)?))
            .tensor("attenMaskOptional", meta(&t(atten_mask)?))
            .with(
                "actualSeqLengthsOptional",
                Arg::Ints(int_array(actual_seq_lengths, "actualSeqLengthsOptional")?),
            )
            .with(
                "actualSeqLengthsKvOptional",
                Arg::Ints(int_array(
                    actual_seq_lengths_kv,
                    "actualSeqLengthsKvOptional",
                )?),
            );
        let optional = [
            ("deqScale1Optional", deq_scale1),
            ("quantScale1Optional", quant_scale1),
            ("deqScale2Optional", deq_scale2),
            ("quantScale2Optional", quant_scale2),
            ("quantOffset2Optional", quant_offset2),
            ("antiquantScaleOptional", antiquant_scale),
            ("antiquantOffsetOptional", antiquant_offset),
            ("blockTableOptional", block_table),
            ("queryPaddingSizeOptional", query_padding_size),
            ("kvPaddingSizeOptional", kv_padding_size),
            ("keyAntiquantScaleOptional", key_antiquant_scale),
            ("keyAntiquantOffsetOptional", key_antiquant_offset),
            ("valueAntiquantScaleOptional", value_antiquant_scale),
            ("valueAntiquantOffsetOptional", value_antiquant_offset),
            ("keySharedPrefixOptional", key_shared_prefix),
            ("valueSharedPrefixOptional", value_shared_prefix),
        ];
        for (name, p) in optional {
            call = call.tensor(name, meta(&t(p)?));
        }
        let call = call
            .with(
                "actualSharedPrefixLenOptional",
                Arg::Ints(int_array(
                    actual_shared_prefix_len,
                    "actualSharedPrefixLenOptional",
                )?),
            )
            .tensor("queryRopeOptional", meta(&q_rope))
            .tensor("keyRopeOptional", meta(&k_rope))
            .tensor(
                "keyRopeAntiquantScaleOptional",
                meta(&t(key_rope_antiquant_scale)?),
            )
            .int("numHeads", num_heads)
            .with("scaleValue", Arg::Float(scale_value))
            .int("preTokens", pre_tokens)
            .int("nextTokens", next_tokens)
            .with("inputLayout", Arg::Str(layout))
            .int("numKeyValueHeads", num_key_value_heads)
            .int("sparseMode", sparse_mode)
            .int("innerPrecise", inner_precise)
            .int("blockSize", block_size)
            .int("antiquantMode", antiquant_mode)
            .with("softmaxLseFlag", Arg::Bool(softmax_lse_flag))
            .int("keyAntiquantMode", key_antiquant_mode)
            .int("valueAntiquantMode", value_antiquant_mode)
            .tensor("attentionOut", meta(&out))
            .tensor("softmaxLse", meta(&lse));
        rules::check(&call)?;
        check_product("fia-v3.products")?;
        // What the simulator computes: the MLA decode form, BSND or BNSD, paged.
        let layout = match rules::fia_layout(&call) {
            "BSND" => fia_mla::Layout::Bsnd,
            "BNSD" => fia_mla::Layout::Bnsd,
            other => {
                return Err(invalid(format!(
                    "inputLayout {other}; only BSND and BNSD are simulated"
                )));
            }
        };
        let (b, s, n, d) = rules::fia_query_bsnd(&call);
        if q_rope.is_none() || d != 512 || table.is_none() {
            return Err(invalid(
                "only the MLA decode form (query d 512 with queryRope/keyRope over a paged cache) is simulated",
            ));
        }
        let kv_lens = rules::fia_kv_lens(&call)
            .into_iter()
            .map(|l| l as usize)
            .collect();
        let attrs = fia_mla::Attrs {
            layout,
            batch: b as usize,
            q_len: s as usize,
            heads: n as usize,
            block_size: block_size as usize,
            scale: scale_value,
            kv_lens,
            lse: softmax_lse_flag,
        };
        let first = |l: Option<Vec<TensorDesc>>, name: &str| {
            must(l.and_then(|l| l.into_iter().next()), name)
        };
        let tensors = fia_mla::Tensors {
            query: must(q, "query")?,
            key: first(k, "key")?,
            value: first(v, "value")?,
            query_rope: must(q_rope, "queryRopeOptional")?,
            key_rope: must(k_rope, "keyRopeOptional")?,
            block_table: must(table, "blockTableOptional")?,
            out: must(out, "attentionOut")?,
            softmax_lse: if softmax_lse_flag { lse } else { None },
        };
        let planned = fia_mla::plan(tensors, attrs)?;
        // SAFETY: out-pointers per the C contract.
        unsafe { finish_plan(FIA, planned, workspace_size, executor) }
    })
}

second_phase!(aclnnFusedInferAttentionScoreV3);

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclnnMlaPrologV3WeightNzGetWorkspaceSize = Some(aclnnMlaPrologV3WeightNzGetWorkspaceSize);
    s.aclnnMlaPrologV3WeightNz = Some(aclnnMlaPrologV3WeightNz);
    s.aclnnFusedInferAttentionScoreV3GetWorkspaceSize =
        Some(aclnnFusedInferAttentionScoreV3GetWorkspaceSize);
    s.aclnnFusedInferAttentionScoreV3 = Some(aclnnFusedInferAttentionScoreV3);
}
