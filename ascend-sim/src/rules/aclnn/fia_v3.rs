//! aclnnFusedInferAttentionScoreV3 (cann-api-facts §4.9): the argument rules that concern the
//! MLA decode form (query and key split into a 512-wide latent and a 64-wide rope part, a paged
//! cache, one KV head), the general rules those calls also meet, and the page-attention rules.

use ascend_sys::{ACL_BF16, ACL_BOOL, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT32, ACL_UINT8};

use super::{dim, dims_are, ensure, one};
use crate::rules::Requirement::{DTypes, IntRange, Present, Relation};
use crate::rules::{Arg, Call, INVALID, NULLPTR, Rule, TensorMeta};

pub(super) const OP: &str = "aclnnFusedInferAttentionScoreV3";
const DOC: &str = "cann-api-facts §4.9; ops-transformer attention/fused_infer_attention_score/docs/aclnnFusedInferAttentionScoreV3.md (parameters, constraints)";
const MLA_DOC: &str = "ops-transformer aclnnFusedInferAttentionScoreV3.md, constraints on queryRope and keyRope (MLA, d = 512)";
const PA_DOC: &str = "ops-transformer aclnnFusedInferAttentionScoreV3.md, page attention scenario";

/// The documented input layouts.
pub const LAYOUTS: &[&str] = &[
    "BSH",
    "BSND",
    "BNSD",
    "BNSD_BSND",
    "BSH_NBSD",
    "BSND_NBSD",
    "BNSD_NBSD",
    "TND",
    "TND_NTD",
    "NTD_TND",
];
/// The layouts the MLA form (query d = 512 with rope) takes.
pub const MLA_LAYOUTS: &[&str] = &[
    "BSH",
    "BSND",
    "BNSD",
    "BNSD_NBSD",
    "BSND_NBSD",
    "BSH_NBSD",
    "TND",
    "TND_NTD",
];
/// Query heads the MLA form takes.
const MLA_HEADS: &[i64] = &[1, 2, 4, 8, 16, 32, 64, 128];
/// The width of the rope parts.
const ROPE: i64 = 64;
/// The latent width of the MLA form.
const LATENT: i64 = 512;

/// Inputs the MLA form does not support (PSE, left padding, prefix, quantisation): NULL.
const NOT_WITH_MLA: &[&str] = &[
    "pseShiftOptional",
    "deqScale1Optional",
    "quantScale1Optional",
    "deqScale2Optional",
    "quantScale2Optional",
    "quantOffset2Optional",
    "antiquantScaleOptional",
    "antiquantOffsetOptional",
    "queryPaddingSizeOptional",
    "kvPaddingSizeOptional",
    "keyAntiquantScaleOptional",
    "keyAntiquantOffsetOptional",
    "valueAntiquantScaleOptional",
    "valueAntiquantOffsetOptional",
    "keySharedPrefixOptional",
    "valueSharedPrefixOptional",
    "keyRopeAntiquantScaleOptional",
];

/// The inputLayout string.
pub(crate) fn layout(c: &Call) -> &str {
    c.str_of("inputLayout").unwrap_or("")
}

/// The query's layout (the part before `_`).
fn q_layout(c: &Call) -> &str {
    layout(c).split('_').next().unwrap_or("")
}

/// The query's (B, S, N, D); for TND, B is actualSeqLengths' length and S the longest
/// sequence. −1 where the shape does not say.
pub(crate) fn query_bsnd(c: &Call) -> (i64, i64, i64, i64) {
    let q = |i| dim(c, "query", i);
    match q_layout(c) {
        "BSND" => (q(0), q(1), q(2), q(3)),
        "BNSD" => (q(0), q(2), q(1), q(3)),
        "BSH" => {
            let n = c.int_of("numHeads");
            (q(0), q(1), n, if n > 0 { q(2) / n } else { -1 })
        }
        "TND" | "NTD" => {
            let lens = c.ints_of("actualSeqLengthsOptional").unwrap_or(&[]);
            let per: Vec<i64> = lens
                .iter()
                .scan(0, |prev, &x| {
                    let d = x - *prev;
                    *prev = x;
                    Some(d)
                })
                .collect();
            let n_d = if q_layout(c) == "TND" {
                (q(1), q(2))
            } else {
                (q(0), q(2))
            };
            (
                lens.len() as i64,
                per.into_iter().max().unwrap_or(0),
                n_d.0,
                n_d.1,
            )
        }
        _ => (-1, -1, -1, -1),
    }
}

fn rope(c: &Call) -> bool {
    c.present("queryRopeOptional")
}

/// The MLA form: rope inputs and a 512-wide query.
fn mla(c: &Call) -> bool {
    rope(c) && query_bsnd(c).3 == LATENT
}

/// The cache's block size (dim 1 of BnBsH, dim 2 of BnNBsD).
fn cache_block(c: &Call) -> i64 {
    match c.tensor_of("key").map(|t| t.dims.len()) {
        Some(3) => dim(c, "key", 1),
        Some(4) => dim(c, "key", 2),
        _ => -1,
    }
}

/// Per-batch KV lengths (one value applies to every batch).
pub(crate) fn kv_lens(c: &Call) -> Vec<i64> {
    let b = query_bsnd(c).0.max(0) as usize;
    match c.ints_of("actualSeqLengthsKvOptional") {
        Some([one]) => vec![*one; b],
        Some(v) => v.iter().take(b).copied().collect(),
        None => Vec::new(),
    }
}

fn blocks_of(len: i64, block: i64) -> i64 {
    if block <= 0 {
        0
    } else {
        (len.max(0) + block - 1) / block
    }
}

/// Edits the sample to `s` query tokens with the causal sparse mode and a BOOL mask of
/// `[2048, mask_cols]`.
fn causal_queries(c: &mut Call, s: i64, mask_cols: i64) {
    c.edit_tensor("query", |t| t.dims[1] = s);
    c.edit_tensor("queryRopeOptional", |t| t.dims[1] = s);
    c.edit_tensor("attentionOut", |t| t.dims[1] = s);
    c.edit_tensor("softmaxLse", |t| t.dims[2] = s);
    c.set("sparseMode", Arg::Int(3));
    let mask = TensorMeta::new(&[2048, mask_cols], ACL_BOOL);
    c.set("attenMaskOptional", Arg::Tensor(Some(mask)));
}

pub(super) const RULES: &[Rule] = &[
    required!(OP, "fia-v3.query-required", "query", DOC),
    one(
        OP,
        "fia-v3.key-required",
        "key is required",
        DOC,
        NULLPTR,
        Present("key"),
        |c| c.set("key", Arg::List(None)),
    ),
    one(
        OP,
        "fia-v3.value-required",
        "value is required",
        DOC,
        NULLPTR,
        Present("value"),
        |c| c.set("value", Arg::List(None)),
    ),
    required!(OP, "fia-v3.attention-out-required", "attentionOut", DOC),
    one(
        OP,
        "fia-v3.input-layout",
        "inputLayout is BSH, BSND, BNSD, BNSD_BSND, BSH_NBSD, BSND_NBSD, BNSD_NBSD, TND, TND_NTD or NTD_TND",
        DOC,
        INVALID,
        Relation(|c| {
            let l = layout(c);
            ensure(LAYOUTS.contains(&l), || format!("inputLayout {l:?}"))
        }),
        |c| c.set("inputLayout", Arg::Str(Some("SBH".into()))),
    ),
    one(
        OP,
        "fia-v3.query-dtype",
        "query is FLOAT16, BF16 or INT8",
        DOC,
        INVALID,
        DTypes("query", &[ACL_FLOAT16, ACL_BF16, ACL_INT8]),
        |c| c.edit_tensor("query", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "fia-v3.kv-same-shape",
        "key and value have the same shapes",
        DOC,
        INVALID,
        Relation(|c| match (c.tensor_of("key"), c.tensor_of("value")) {
            (Some(k), Some(v)) if k.dims != v.dims => {
                Err(format!("key {:?}, value {:?}", k.dims, v.dims))
            }
            _ => Ok(()),
        }),
        |c| c.edit_tensor("value", |t| t.dims[0] += 1),
    ),
    one(
        OP,
        "fia-v3.rope-both",
        "queryRopeOptional and keyRopeOptional are both given or both NULL",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            ensure(
                c.present("queryRopeOptional") == c.present("keyRopeOptional"),
                || "one rope input without the other".into(),
            )
        }),
        |c| c.set("keyRopeOptional", Arg::Tensor(None)),
    ),
    one(
        OP,
        "fia-v3.rope-dtype",
        "queryRope has query's dtype and keyRope key's",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let dt = |n: &str| c.tensor_of(n).map(|t| t.dtype);
            let pairs = [("queryRopeOptional", "query"), ("keyRopeOptional", "key")];
            for (r, of) in pairs {
                if let (Some(a), Some(b)) = (dt(r), dt(of)) {
                    if a != b {
                        return Err(format!("{r} is {a}, {of} is {b}"));
                    }
                }
            }
            Ok(())
        }),
        |c| c.edit_tensor("queryRopeOptional", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "fia-v3.mla-dtype",
        "with rope inputs the query is FLOAT16 or BF16",
        MLA_DOC,
        INVALID,
        Relation(|c| match c.tensor_of("query") {
            Some(q) if rope(c) && ![ACL_FLOAT16, ACL_BF16].contains(&q.dtype) => {
                Err(format!("query is {}", crate::rules::dtype_name(q.dtype)))
            }
            _ => Ok(()),
        }),
        |c| {
            c.edit_tensor("query", |t| t.dtype = ACL_INT8);
            c.edit_tensor("queryRopeOptional", |t| t.dtype = ACL_INT8);
        },
    ),
    one(
        OP,
        "fia-v3.mla-query-d",
        "with rope inputs the query's d is 512 or 128",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let d = query_bsnd(c).3;
            ensure(!rope(c) || d == LATENT || d == 128, || {
                format!("query d {d}")
            })
        }),
        |c| {
            c.edit_tensor("query", |t| t.dims[3] = 256);
            c.edit_tensor("attentionOut", |t| t.dims[3] = 256);
        },
    ),
    one(
        OP,
        "fia-v3.mla-layout",
        "the MLA form (d 512) takes inputLayout BSH, BSND, BNSD, BNSD_NBSD, BSND_NBSD, BSH_NBSD, TND or TND_NTD",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let l = layout(c);
            ensure(!mla(c) || MLA_LAYOUTS.contains(&l), || {
                format!("inputLayout {l}")
            })
        }),
        |c| c.set("inputLayout", Arg::Str(Some("BNSD_BSND".into()))),
    ),
    one(
        OP,
        "fia-v3.num-heads",
        "numHeads is the query's N; numHeads is a multiple of numKeyValueHeads (0 meaning numHeads)",
        DOC,
        INVALID,
        Relation(|c| {
            let (n, kv) = (c.int_of("numHeads"), c.int_of("numKeyValueHeads"));
            let qn = query_bsnd(c).2;
            let kv = if kv == 0 { n } else { kv };
            ensure(n >= 1 && n == qn && kv >= 1 && n % kv == 0, || {
                format!("numHeads {n}, numKeyValueHeads {kv}, query N {qn}")
            })
        }),
        |c| c.set("numHeads", Arg::Int(4)),
    ),
    one(
        OP,
        "fia-v3.mla-query-shape",
        "the MLA form (d 512): the query's s is 1..=16 and its n 1, 2, 4, 8, 16, 32, 64 or 128",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let (_, s, n, _) = query_bsnd(c);
            ensure(
                !mla(c) || ((1..=16).contains(&s) && MLA_HEADS.contains(&n)),
                || format!("query s {s}, n {n}"),
            )
        }),
        |c| {
            causal_queries(c, 17, 2048);
        },
    ),
    one(
        OP,
        "fia-v3.mla-key",
        "the MLA form (d 512): one KV head (numKeyValueHeads 1) of d 512 in key and value",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            if !mla(c) {
                return Ok(());
            }
            let kv = c.int_of("numKeyValueHeads");
            let kd = c
                .tensor_of("key")
                .and_then(|t| t.dims.last().copied())
                .unwrap_or(-1);
            ensure(kv == 1 && kd == LATENT, || {
                format!("numKeyValueHeads {kv}, key d {kd}")
            })
        }),
        |c| c.set("numKeyValueHeads", Arg::Int(2)),
    ),
    one(
        OP,
        "fia-v3.query-rope-shape",
        "queryRope has the query's dims with d = 64",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let Some(q) = c.tensor_of("query") else {
                return Ok(());
            };
            let mut want = q.dims.clone();
            if let Some(d) = want.last_mut() {
                *d = if q_layout(c) == "BSH" {
                    q.dim(2) / query_bsnd(c).3.max(1) * ROPE
                } else {
                    ROPE
                };
            }
            dims_are(c, "queryRopeOptional", &want)
        }),
        |c| c.edit_tensor("queryRopeOptional", |t| t.dims[3] = 32),
    ),
    one(
        OP,
        "fia-v3.key-rope-shape",
        "keyRope has key's dims with d = 64",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let Some(k) = c.tensor_of("key") else {
                return Ok(());
            };
            let mut want = k.dims.clone();
            if let Some(d) = want.last_mut() {
                *d = ROPE;
            }
            dims_are(c, "keyRopeOptional", &want)
        }),
        |c| c.edit_tensor("keyRopeOptional", |t| t.dims[0] = 1),
    ),
    one(
        OP,
        "fia-v3.mla-unsupported-inputs",
        "with rope inputs: no PSE, left padding, shared prefix or (fake-)quantisation inputs, and keyRopeAntiquantScale (reserved) NULL",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            if !rope(c) {
                return Ok(());
            }
            match NOT_WITH_MLA.iter().find(|n| c.present(n)) {
                Some(n) => Err(format!("{n} given")),
                None => Ok(()),
            }
        }),
        |c| {
            c.set(
                "pseShiftOptional",
                Arg::Tensor(Some(TensorMeta::new(&[2, 2, 1, 32], ACL_BF16))),
            )
        },
    ),
    one(
        OP,
        "fia-v3.mla-page-attention",
        "the MLA form (d 512) needs page attention: blockTableOptional given, key and value one tensor each",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            if !mla(c) {
                return Ok(());
            }
            let lists = [c.tensors_of("key").len(), c.tensors_of("value").len()];
            if c.present("blockTableOptional") && lists == [1, 1] {
                Ok(())
            } else {
                Err(format!(
                    "blockTable given: {}, key/value lists of {lists:?}",
                    c.present("blockTableOptional")
                ))
            }
        }),
        |c| c.set("blockTableOptional", Arg::Tensor(None)),
    ),
    one(
        OP,
        "fia-v3.mla-block-size",
        "the MLA form (d 512): blockSize is 16 or 128",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let bs = c.int_of("blockSize");
            ensure(!mla(c) || bs == 16 || bs == 128, || {
                format!("blockSize {bs}")
            })
        }),
        |c| {
            c.set("blockSize", Arg::Int(32));
            for n in ["key", "value", "keyRopeOptional"] {
                c.edit_tensor(n, |t| t.dims[1] = 32);
            }
        },
    ),
    one(
        OP,
        "fia-v3.block-table",
        "blockTable is INT32 [B, max blocks per sequence]",
        PA_DOC,
        INVALID,
        Relation(|c| match c.tensor_of("blockTableOptional") {
            Some(t)
                if t.dtype != ACL_INT32 || t.dims.len() != 2 || t.dims[0] != query_bsnd(c).0 =>
            {
                Err(format!(
                    "blockTable {} of dims {:?}",
                    crate::rules::dtype_name(t.dtype),
                    t.dims
                ))
            }
            _ => Ok(()),
        }),
        |c| c.edit_tensor("blockTableOptional", |t| t.dtype = ascend_sys::ACL_INT64),
    ),
    one(
        OP,
        "fia-v3.kv-cache-layout",
        "with page attention key and value are BnBsH (BlockNum, blockSize, H) or, for BNSD and TND queries, BnNBsD (BlockNum, KV_N, blockSize, D); the block dim is blockSize",
        PA_DOC,
        INVALID,
        Relation(|c| {
            if !c.present("blockTableOptional") {
                return Ok(());
            }
            let Some(k) = c.tensor_of("key") else {
                return Ok(());
            };
            let bnnbsd_ok = ["BNSD", "TND"].contains(&q_layout(c));
            let ok = match k.dims.len() {
                3 => true,
                4 => bnnbsd_ok,
                _ => false,
            };
            if ok && cache_block(c) == c.int_of("blockSize") {
                Ok(())
            } else {
                Err(format!(
                    "key dims {:?} with blockSize {} and inputLayout {}",
                    k.dims,
                    c.int_of("blockSize"),
                    layout(c)
                ))
            }
        }),
        |c| c.set("blockSize", Arg::Int(128)),
    ),
    one(
        OP,
        "fia-v3.actual-seq-kv",
        "with page attention actualSeqLengthsKv is given: 1 or at least B non-negative lengths",
        PA_DOC,
        INVALID,
        Relation(|c| {
            if !c.present("blockTableOptional") {
                return Ok(());
            }
            let b = query_bsnd(c).0;
            match c.ints_of("actualSeqLengthsKvOptional") {
                Some(v) if (v.len() == 1 || v.len() as i64 >= b) && v.iter().all(|&x| x >= 0) => {
                    Ok(())
                }
                other => Err(format!("actualSeqLengthsKv {other:?} for B {b}")),
            }
        }),
        |c| c.set("actualSeqLengthsKvOptional", Arg::Ints(None)),
    ),
    one(
        OP,
        "fia-v3.block-table-width",
        "blockTable's second dim is at least the blocks of the longest sequence, ceil(actualSeqLengthsKv / blockSize)",
        PA_DOC,
        INVALID,
        Relation(|c| {
            let Some(t) = c.tensor_of("blockTableOptional") else {
                return Ok(());
            };
            let need = kv_lens(c)
                .iter()
                .map(|&l| blocks_of(l, c.int_of("blockSize")))
                .max()
                .unwrap_or(0);
            ensure(t.dim(1) >= need, || {
                format!("{} columns for {need} blocks", t.dim(1))
            })
        }),
        |c| c.edit_tensor("blockTableOptional", |t| t.dims[1] = 1),
    ),
    one(
        OP,
        "fia-v3.block-num",
        "BlockNum (key's first dim) is at least the sum over sequences of ceil(actualSeqLengthsKv / blockSize)",
        PA_DOC,
        INVALID,
        Relation(|c| {
            if !c.present("blockTableOptional") {
                return Ok(());
            }
            let need: i64 = kv_lens(c)
                .iter()
                .map(|&l| blocks_of(l, c.int_of("blockSize")))
                .sum();
            let have = dim(c, "key", 0);
            ensure(have >= need, || format!("{have} blocks for {need}"))
        }),
        |c| {
            for n in ["key", "value", "keyRopeOptional"] {
                c.edit_tensor(n, |t| t.dims[0] = 2);
            }
        },
    ),
    one(
        OP,
        "fia-v3.mla-sparse-mode",
        "the MLA form (d 512): sparseMode 0 without a mask when the query's s is 1, sparseMode 3 (bottom-right causal) with a mask when it is larger",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            if !mla(c) {
                return Ok(());
            }
            let (s, mode, mask) = (
                query_bsnd(c).1,
                c.int_of("sparseMode"),
                c.present("attenMaskOptional"),
            );
            let ok = if s == 1 {
                mode == 0 && !mask
            } else {
                mode == 3 && mask
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "sparseMode {mode}, mask given: {mask}, query s {s}"
                ))
            }
        }),
        |c| c.set("sparseMode", Arg::Int(3)),
    ),
    one(
        OP,
        "fia-v3.sparse-mask",
        "sparseMode 2, 3 and 4 take the optimised mask: BOOL, INT8 or UINT8 of (2048, 2048), (1, 2048, 2048) or (1, 1, 2048, 2048)",
        DOC,
        INVALID,
        Relation(|c| {
            if ![2, 3, 4].contains(&c.int_of("sparseMode")) {
                return Ok(());
            }
            match c.tensor_of("attenMaskOptional") {
                Some(m)
                    if [ACL_BOOL, ACL_INT8, ACL_UINT8].contains(&m.dtype)
                        && m.dims.len() >= 2
                        && m.dims[m.dims.len() - 2..] == [2048, 2048]
                        && m.dims[..m.dims.len() - 2].iter().all(|&d| d == 1) =>
                {
                    Ok(())
                }
                Some(m) => Err(format!(
                    "attenMask {} of dims {:?}",
                    crate::rules::dtype_name(m.dtype),
                    m.dims
                )),
                None => Err("no attenMask".into()),
            }
        }),
        |c| {
            causal_queries(c, 2, 1024);
        },
    ),
    one(
        OP,
        "fia-v3.mla-actual-seq-q",
        "the MLA form with query s > 1 takes actualSeqLengths only in the TND layout",
        MLA_DOC,
        INVALID,
        Relation(|c| {
            let tnd = q_layout(c) == "TND";
            if mla(c) && query_bsnd(c).1 > 1 && !tnd && c.present("actualSeqLengthsOptional") {
                Err(format!("actualSeqLengths with inputLayout {}", layout(c)))
            } else {
                Ok(())
            }
        }),
        |c| {
            causal_queries(c, 2, 2048);
            c.set("actualSeqLengthsOptional", Arg::Ints(Some(vec![2, 2])));
        },
    ),
    one(
        OP,
        "fia-v3.inner-precise",
        "innerPrecise is 0..=3",
        DOC,
        INVALID,
        IntRange("innerPrecise", 0, 3),
        |c| c.set("innerPrecise", Arg::Int(4)),
    ),
    one(
        OP,
        "fia-v3.attention-out",
        "attentionOut has the query's dtype (without post-quantisation) and dims, with value's d",
        DOC,
        INVALID,
        Relation(|c| {
            let (Some(q), Some(o)) = (c.tensor_of("query"), c.tensor_of("attentionOut")) else {
                return Ok(());
            };
            let vd = c
                .tensor_of("value")
                .and_then(|t| t.dims.last().copied())
                .unwrap_or(-1);
            let mut want = q.dims.clone();
            if q_layout(c) != "BSH" {
                if let Some(d) = want.last_mut() {
                    *d = vd;
                }
            }
            if o.dtype != q.dtype {
                return Err(format!(
                    "attentionOut is {}, query {}",
                    crate::rules::dtype_name(o.dtype),
                    crate::rules::dtype_name(q.dtype)
                ));
            }
            dims_are(c, "attentionOut", &want)
        }),
        |c| c.edit_tensor("attentionOut", |t| t.dtype = ACL_FLOAT16),
    ),
    one(
        OP,
        "fia-v3.softmax-lse",
        "with softmaxLseFlag, softmaxLse is FLOAT [B, N, Q_S, 1] ([T, N, 1] for TND)",
        DOC,
        INVALID,
        Relation(|c| {
            if !c.bool_of("softmaxLseFlag") {
                return Ok(());
            }
            let (b, s, n, _) = query_bsnd(c);
            let want = if q_layout(c) == "TND" {
                vec![dim(c, "query", 0), n, 1]
            } else {
                vec![b, n, s, 1]
            };
            match c.tensor_of("softmaxLse") {
                Some(t) if t.dtype != ACL_FLOAT => Err(format!(
                    "softmaxLse is {}",
                    crate::rules::dtype_name(t.dtype)
                )),
                Some(_) => dims_are(c, "softmaxLse", &want),
                None => Err("softmaxLse NULL".into()),
            }
        }),
        |c| c.edit_tensor("softmaxLse", |t| t.dims = vec![2, 2, 1]),
    ),
];

/// Rules checked when the operator runs, and the SoC rule, checked in phase one from the
/// planning device (a [`Call`] carries no SoC).
pub(super) const AT_RUN: &[Rule] = &[
    Rule {
        id: "fia-v3.block-table-range",
        call: OP,
        statement: "every blockTable entry a sequence uses (the first ceil(actualSeqLengthsKv / blockSize) of its row) names a block of the cache, 0..BlockNum (the op does not check them; a bad id reads another sequence's or unmapped memory)",
        source: PA_DOC,
        test: "tests/mla_vendor_sim.rs::decode_block_id_out_of_range_fails_the_stream",
        enforcement: crate::rules::Enforcement::AtRun { status: INVALID },
    },
    Rule {
        id: "fia-v3.products",
        call: OP,
        statement: "the device is Atlas A2 or A3 (Ascend910B*, Ascend910_93*), the products the doc lists",
        source: "cann-api-facts §4.9 (Products A3, A2)",
        test: "tests/mla_vendor_fallback_sim.rs::the_vendor_ops_refuse_an_ascend_950_and_attention_takes_our_kernels",
        enforcement: crate::rules::Enforcement::Elsewhere {
            code: "ascend-sim/src/ffi/aclnn_mla.rs",
        },
    },
];

/// MLA decode: 2 sequences (17 and 5 cached tokens) of 1 query token, 2 heads, BSND, a BnBsH
/// cache of 3 blocks of 16, BF16, with the LSE.
pub(super) fn sample() -> Call {
    let t = |dims: &[i64], dtype| Arg::Tensor(Some(TensorMeta::new(dims, dtype)));
    let none = || Arg::Tensor(None);
    let list = |dims: &[i64]| Arg::List(Some(vec![TensorMeta::new(dims, ACL_BF16)]));
    Call::new(OP)
        .with("query", t(&[2, 1, 2, LATENT], ACL_BF16))
        .with("key", list(&[3, 16, LATENT]))
        .with("value", list(&[3, 16, LATENT]))
        .with("pseShiftOptional", none())
        .with("attenMaskOptional", none())
        .with("actualSeqLengthsOptional", Arg::Ints(None))
        .with("actualSeqLengthsKvOptional", Arg::Ints(Some(vec![17, 5])))
        .with("deqScale1Optional", none())
        .with("quantScale1Optional", none())
        .with("deqScale2Optional", none())
        .with("quantScale2Optional", none())
        .with("quantOffset2Optional", none())
        .with("antiquantScaleOptional", none())
        .with("antiquantOffsetOptional", none())
        .with("blockTableOptional", t(&[2, 2], ACL_INT32))
        .with("queryPaddingSizeOptional", none())
        .with("kvPaddingSizeOptional", none())
        .with("keyAntiquantScaleOptional", none())
        .with("keyAntiquantOffsetOptional", none())
        .with("valueAntiquantScaleOptional", none())
        .with("valueAntiquantOffsetOptional", none())
        .with("keySharedPrefixOptional", none())
        .with("valueSharedPrefixOptional", none())
        .with("actualSharedPrefixLenOptional", Arg::Ints(None))
        .with("queryRopeOptional", t(&[2, 1, 2, ROPE], ACL_BF16))
        .with("keyRopeOptional", t(&[3, 16, ROPE], ACL_BF16))
        .with("keyRopeAntiquantScaleOptional", none())
        .int("numHeads", 2)
        .with("scaleValue", Arg::Float(0.1))
        .int("preTokens", i64::from(i32::MAX))
        .int("nextTokens", i64::from(i32::MAX))
        .with("inputLayout", Arg::Str(Some("BSND".into())))
        .int("numKeyValueHeads", 1)
        .int("sparseMode", 0)
        .int("innerPrecise", 0)
        .int("blockSize", 16)
        .int("antiquantMode", 0)
        .with("softmaxLseFlag", Arg::Bool(true))
        .int("keyAntiquantMode", 0)
        .int("valueAntiquantMode", 0)
        .with("attentionOut", t(&[2, 1, 2, LATENT], ACL_BF16))
        .with("softmaxLse", t(&[2, 2, 1, 1], ACL_FLOAT))
}
