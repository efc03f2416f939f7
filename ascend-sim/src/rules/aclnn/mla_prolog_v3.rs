//! aclnnMlaPrologV3WeightNz (cann-api-facts §4.8; deepseek-ops §3.7).
//!
//! The op's shapes are DeepSeek's: the documented limits fix every width but the hidden size
//! and the head count, so the sample call is DeepSeek-sized (He 1024, 1 head, 2 tokens).

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FORMAT_FRACTAL_NZ, ACL_FORMAT_ND, ACL_INT8, ACL_INT64};

use super::{dim, dims_are, ensure, one};
use crate::rules::Requirement::{DTypes, IntIn, Rank, Relation};
use crate::rules::{Arg, Call, INVALID, NULLPTR, Rule, TensorMeta, nz_storage};

pub(super) const OP: &str = "aclnnMlaPrologV3WeightNz";
const DOC: &str = "cann-api-facts §4.8; ops-transformer attention/mla_prolog_v3/docs/aclnnMlaPrologV3WeightNz.md (parameters, constraints)";

/// The documented hidden sizes He.
pub const HIDDEN: &[i64] = &[1024, 2048, 3072, 4096, 5120, 6144, 7168, 7680, 8192];
/// The documented head counts N.
pub const HEADS: &[i64] = &[1, 2, 4, 8, 16, 32, 64, 128];
/// Hcq, Hckv, D, Dr: fixed by the doc.
pub const Q_LORA: i64 = 1536;
/// Hckv, the latent width.
pub const KV_LORA: i64 = 512;
/// D, the per-head width without position.
pub const NOPE: i64 = 128;
/// Dr, the rotary width.
pub const ROPE: i64 = 64;
/// The documented cache modes.
pub const CACHE_MODES: &[&str] = &[
    "PA_BSND",
    "PA_NZ",
    "PA_BLK_BSND",
    "PA_BLK_NZ",
    "BSND",
    "TND",
];

const BF16: &[i32] = &[ACL_BF16];
const BF16_INT8: &[i32] = &[ACL_BF16, ACL_INT8];

/// The leading (token) dims of tokenX: `[T]` or `[B, S]`.
fn token_dims(c: &Call) -> Vec<i64> {
    c.tensor_of("tokenX")
        .map(|t| t.dims[..t.dims.len().saturating_sub(1)].to_vec())
        .unwrap_or_default()
}

/// T = B·S, the tokens.
fn tokens(c: &Call) -> i64 {
    token_dims(c).iter().product()
}

/// He, tokenX's last dim.
fn hidden(c: &Call) -> i64 {
    c.tensor_of("tokenX")
        .and_then(|t| t.dims.last().copied())
        .unwrap_or(-1)
}

/// `Err` naming `what` unless `value` is one of `allowed`.
fn one_of(what: &str, value: i64, allowed: &[i64]) -> Result<(), String> {
    ensure(allowed.contains(&value), || format!("{what} {value}"))
}

/// N, from weightUk `[N, D, Hckv]`.
fn heads(c: &Call) -> i64 {
    dim(c, "weightUk", 0)
}

/// `Err` unless `name` has the token dims followed by `tail`.
fn token_shaped(c: &Call, name: &str, tail: &[i64]) -> Result<(), String> {
    let mut want = token_dims(c);
    want.extend_from_slice(tail);
    dims_are(c, name, &want)
}

/// `Err` unless `name` is a FRACTAL_NZ matrix `[k, n]` stored as such.
fn nz_matrix(c: &Call, name: &str) -> Result<(), String> {
    match c.tensor_of(name) {
        Some(t) if t.format != ACL_FORMAT_FRACTAL_NZ => {
            Err(format!("{name} has format {}", t.format))
        }
        Some(t) if t.storage != nz_storage(t.dim(0), t.dim(1), t.dtype) => Err(format!(
            "{name} of dims {:?} has storage dims {:?}",
            t.dims, t.storage
        )),
        _ => Ok(()),
    }
}

/// The cache mode, PA_BSND when NULL (the doc's default).
pub(crate) fn cache_mode(c: &Call) -> &str {
    c.str_of("cacheModeOptional").unwrap_or("PA_BSND")
}

/// The optional inputs the non-quantised modes take as NULL.
const QUANT_INPUTS: &[&str] = &[
    "dequantScaleXOptional",
    "dequantScaleWDqOptional",
    "dequantScaleWUqQrOptional",
    "dequantScaleWDkvKrOptional",
    "quantScaleCkvOptional",
    "quantScaleCkrOptional",
    "smoothScalesCqOptional",
];

pub(super) const RULES: &[Rule] = &[
    required!(OP, "mla-prolog-v3.token-x-required", "tokenX", DOC),
    required!(OP, "mla-prolog-v3.weight-dq-required", "weightDq", DOC),
    required!(OP, "mla-prolog-v3.weight-uq-qr-required", "weightUqQr", DOC),
    required!(OP, "mla-prolog-v3.weight-uk-required", "weightUk", DOC),
    required!(
        OP,
        "mla-prolog-v3.weight-dkv-kr-required",
        "weightDkvKr",
        DOC
    ),
    required!(OP, "mla-prolog-v3.gamma-cq-required", "rmsnormGammaCq", DOC),
    required!(
        OP,
        "mla-prolog-v3.gamma-ckv-required",
        "rmsnormGammaCkv",
        DOC
    ),
    required!(OP, "mla-prolog-v3.rope-sin-required", "ropeSin", DOC),
    required!(OP, "mla-prolog-v3.rope-cos-required", "ropeCos", DOC),
    required!(OP, "mla-prolog-v3.kv-cache-required", "kvCacheRef", DOC),
    required!(OP, "mla-prolog-v3.kr-cache-required", "krCacheRef", DOC),
    required!(OP, "mla-prolog-v3.query-required", "queryOut", DOC),
    required!(OP, "mla-prolog-v3.query-rope-required", "queryRopeOut", DOC),
    one(
        OP,
        "mla-prolog-v3.cache-index-required",
        "cacheIndexOptional is required in the paged cache modes (PA_*) and NULL in BSND/TND",
        DOC,
        NULLPTR,
        Relation(|c| {
            let paged = cache_mode(c).starts_with("PA_");
            match (paged, c.present("cacheIndexOptional")) {
                (true, false) => Err(format!("cacheIndexOptional NULL in {}", cache_mode(c))),
                (false, true) => Err(format!("cacheIndexOptional given in {}", cache_mode(c))),
                _ => Ok(()),
            }
        }),
        |c| c.set("cacheIndexOptional", Arg::Tensor(None)),
    ),
    one(
        OP,
        "mla-prolog-v3.cache-mode",
        "cacheModeOptional is PA_BSND (the default when NULL), PA_NZ, PA_BLK_BSND, PA_BLK_NZ, BSND or TND",
        DOC,
        INVALID,
        Relation(|c| {
            let m = cache_mode(c);
            ensure(CACHE_MODES.contains(&m), || format!("cacheMode {m:?}"))
        }),
        |c| c.set("cacheModeOptional", Arg::Str(Some("PA_BNSD".into()))),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-quant-mode",
        "weightQuantMode is 0 (none), 1 (weightUqQr) or 2 (weightDq, weightUqQr, weightDkvKr)",
        DOC,
        INVALID,
        IntIn("weightQuantMode", &[0, 1, 2]),
        |c| c.set("weightQuantMode", Arg::Int(3)),
    ),
    one(
        OP,
        "mla-prolog-v3.kv-cache-quant-mode",
        "kvCacheQuantMode is 0 (none), 1 (per tensor), 2 (per channel) or 3 (per tile)",
        DOC,
        INVALID,
        IntIn("kvCacheQuantMode", &[0, 1, 2, 3]),
        |c| c.set("kvCacheQuantMode", Arg::Int(4)),
    ),
    one(
        OP,
        "mla-prolog-v3.query-quant-mode",
        "queryQuantMode is 0 (none) or 1 (per token and head)",
        DOC,
        INVALID,
        IntIn("queryQuantMode", &[0, 1]),
        |c| c.set("queryQuantMode", Arg::Int(2)),
    ),
    one(
        OP,
        "mla-prolog-v3.token-x-rank",
        "tokenX is (T, He) with B and S fused, or (B, S, He)",
        DOC,
        INVALID,
        Relation(|c| match c.tensor_of("tokenX").map(|t| t.dims.len()) {
            Some(2 | 3) | None => Ok(()),
            Some(r) => Err(format!("tokenX of rank {r}")),
        }),
        |c| c.edit_tensor("tokenX", |t| t.dims = vec![2]),
    ),
    one(
        OP,
        "mla-prolog-v3.token-x-dtype",
        "tokenX is BF16, or INT8 in full quantisation",
        DOC,
        INVALID,
        DTypes("tokenX", BF16_INT8),
        |c| c.edit_tensor("tokenX", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "mla-prolog-v3.hidden",
        "He (tokenX's last dim) is 1024, 2048, 3072, 4096, 5120, 6144, 7168, 7680 or 8192",
        DOC,
        INVALID,
        Relation(|c| one_of("He", hidden(c), HIDDEN)),
        |c| c.edit_tensor("tokenX", |t| t.dims[1] = 1000),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-dq-rank",
        "weightDq is 2-D (He, Hcq)",
        DOC,
        INVALID,
        Rank("weightDq", 2),
        |c| c.edit_tensor("weightDq", |t| t.dims.push(1)),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-uq-qr-rank",
        "weightUqQr is 2-D (Hcq, N·(D+Dr))",
        DOC,
        INVALID,
        Rank("weightUqQr", 2),
        |c| c.edit_tensor("weightUqQr", |t| t.dims.push(1)),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-uk-rank",
        "weightUk is 3-D (N, D, Hckv)",
        DOC,
        INVALID,
        Rank("weightUk", 3),
        |c| c.edit_tensor("weightUk", |t| t.dims = vec![128, 512]),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-dkv-kr-rank",
        "weightDkvKr is 2-D (He, Hckv+Dr)",
        DOC,
        INVALID,
        Rank("weightDkvKr", 2),
        |c| c.edit_tensor("weightDkvKr", |t| t.dims.push(1)),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-dtypes",
        "the weights' dtypes match weightQuantMode: 0 all BF16; 1 weightUqQr INT8, weightDq and weightDkvKr BF16; 2 weightDq, weightUqQr, weightDkvKr and tokenX INT8",
        DOC,
        INVALID,
        Relation(|c| {
            let dt = |n: &str| c.tensor_of(n).map_or(ACL_BF16, |t| t.dtype);
            let want = match c.int_of("weightQuantMode") {
                0 => [ACL_BF16, ACL_BF16, ACL_BF16, ACL_BF16],
                1 => [ACL_BF16, ACL_BF16, ACL_INT8, ACL_BF16],
                _ => [ACL_INT8, ACL_INT8, ACL_INT8, ACL_INT8],
            };
            let have = [
                dt("tokenX"),
                dt("weightDq"),
                dt("weightUqQr"),
                dt("weightDkvKr"),
            ];
            if have == want {
                Ok(())
            } else {
                Err(format!(
                    "tokenX, weightDq, weightUqQr, weightDkvKr of dtypes {have:?} with weightQuantMode {}",
                    c.int_of("weightQuantMode")
                ))
            }
        }),
        |c| c.edit_tensor("weightUqQr", |t| t.dtype = ACL_INT8),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-uk-dtype",
        "weightUk is BF16",
        DOC,
        INVALID,
        DTypes("weightUk", BF16),
        |c| c.edit_tensor("weightUk", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "mla-prolog-v3.weights-nz",
        "weightDq, weightUqQr and weightDkvKr are FRACTAL_NZ: view (k, n), storage [n/c0, k/16, 16, c0] (c0 = 32 bytes of elements)",
        DOC,
        INVALID,
        Relation(|c| {
            nz_matrix(c, "weightDq")?;
            nz_matrix(c, "weightUqQr")?;
            nz_matrix(c, "weightDkvKr")
        }),
        |c| {
            c.edit_tensor("weightDq", |t| {
                t.format = ACL_FORMAT_ND;
                t.storage = t.dims.clone();
            })
        },
    ),
    one(
        OP,
        "mla-prolog-v3.weight-dq-shape",
        "weightDq is (He, Hcq) with Hcq = 1536",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "weightDq", &[hidden(c), Q_LORA])),
        |c| {
            c.edit_tensor("weightDq", |t| {
                t.dims[1] = 1024;
                t.storage = nz_storage(t.dims[0], 1024, t.dtype);
            })
        },
    ),
    one(
        OP,
        "mla-prolog-v3.heads",
        "N (weightUk's first dim) is 1, 2, 4, 8, 16, 32, 64 or 128",
        DOC,
        INVALID,
        Relation(|c| one_of("N", heads(c), HEADS)),
        |c| c.edit_tensor("weightUk", |t| t.dims[0] = 3),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-uk-shape",
        "weightUk is (N, D, Hckv) with D = 128, Hckv = 512",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "weightUk", &[heads(c), NOPE, KV_LORA])),
        |c| c.edit_tensor("weightUk", |t| t.dims[2] = 256),
    ),
    one(
        OP,
        "mla-prolog-v3.weight-uq-qr-shape",
        "weightUqQr is (Hcq, N·(D+Dr)) = (1536, N·192)",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "weightUqQr", &[Q_LORA, heads(c) * (NOPE + ROPE)])),
        |c| {
            c.edit_tensor("weightUqQr", |t| {
                t.dims[1] = 2 * (NOPE + ROPE);
                t.storage = nz_storage(t.dims[0], t.dims[1], t.dtype);
            })
        },
    ),
    one(
        OP,
        "mla-prolog-v3.weight-dkv-kr-shape",
        "weightDkvKr is (He, Hckv+Dr) = (He, 576)",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "weightDkvKr", &[hidden(c), KV_LORA + ROPE])),
        |c| {
            c.edit_tensor("weightDkvKr", |t| {
                t.dims[1] = KV_LORA;
                t.storage = nz_storage(t.dims[0], t.dims[1], t.dtype);
            })
        },
    ),
    one(
        OP,
        "mla-prolog-v3.gamma-cq-dtype",
        "rmsnormGammaCq is BF16",
        DOC,
        INVALID,
        DTypes("rmsnormGammaCq", BF16),
        |c| c.edit_tensor("rmsnormGammaCq", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "mla-prolog-v3.gamma-ckv-dtype",
        "rmsnormGammaCkv is BF16",
        DOC,
        INVALID,
        DTypes("rmsnormGammaCkv", BF16),
        |c| c.edit_tensor("rmsnormGammaCkv", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "mla-prolog-v3.gamma-cq-shape",
        "rmsnormGammaCq is (Hcq) = (1536)",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "rmsnormGammaCq", &[Q_LORA])),
        |c| c.edit_tensor("rmsnormGammaCq", |t| t.dims = vec![1, Q_LORA]),
    ),
    one(
        OP,
        "mla-prolog-v3.gamma-ckv-shape",
        "rmsnormGammaCkv is (Hckv) = (512)",
        DOC,
        INVALID,
        Relation(|c| dims_are(c, "rmsnormGammaCkv", &[KV_LORA])),
        |c| c.edit_tensor("rmsnormGammaCkv", |t| t.dims = vec![576]),
    ),
    one(
        OP,
        "mla-prolog-v3.rope-sin-dtype",
        "ropeSin is BF16",
        DOC,
        INVALID,
        DTypes("ropeSin", BF16),
        |c| c.edit_tensor("ropeSin", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "mla-prolog-v3.rope-cos-dtype",
        "ropeCos is BF16",
        DOC,
        INVALID,
        DTypes("ropeCos", BF16),
        |c| c.edit_tensor("ropeCos", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "mla-prolog-v3.rope-shape",
        "ropeSin and ropeCos are (T, Dr) or (B, S, Dr), tokenX's token dims, Dr = 64",
        DOC,
        INVALID,
        Relation(|c| {
            token_shaped(c, "ropeSin", &[ROPE])?;
            token_shaped(c, "ropeCos", &[ROPE])
        }),
        |c| c.edit_tensor("ropeCos", |t| t.dims = vec![2, 32]),
    ),
    one(
        OP,
        "mla-prolog-v3.cache-rank",
        "kvCacheRef and krCacheRef are 4-D (BlockNum, BlockSize, Nkv, D) in the paged modes",
        DOC,
        INVALID,
        Relation(|c| {
            for n in ["kvCacheRef", "krCacheRef"] {
                if let Some(t) = c.tensor_of(n).filter(|t| t.dims.len() != 4) {
                    return Err(format!("{n} has dims {:?}", t.dims));
                }
            }
            Ok(())
        }),
        |c| c.edit_tensor("kvCacheRef", |t| t.dims = vec![16, 512]),
    ),
    one(
        OP,
        "mla-prolog-v3.cache-dtypes",
        "kvCacheRef and krCacheRef are BF16 without kv-cache quantisation (kvCacheQuantMode 0), kvCacheRef INT8 with it",
        DOC,
        INVALID,
        Relation(|c| {
            let quant = c.int_of("kvCacheQuantMode") != 0;
            let kv = c.tensor_of("kvCacheRef").map_or(ACL_BF16, |t| t.dtype);
            let kr = c.tensor_of("krCacheRef").map_or(ACL_BF16, |t| t.dtype);
            let ok = if quant {
                kv == ACL_INT8 && [ACL_BF16, ACL_INT8].contains(&kr)
            } else {
                kv == ACL_BF16 && kr == ACL_BF16
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "kvCacheRef {kv}, krCacheRef {kr} with kvCacheQuantMode {}",
                    c.int_of("kvCacheQuantMode")
                ))
            }
        }),
        |c| c.edit_tensor("kvCacheRef", |t| t.dtype = ACL_INT8),
    ),
    one(
        OP,
        "mla-prolog-v3.cache-shape",
        "kvCacheRef is (BlockNum, BlockSize, 1, 512) and krCacheRef (BlockNum, BlockSize, 1, 64): Nkv = 1, the same blocks",
        DOC,
        INVALID,
        Relation(|c| {
            let (bn, bs) = (dim(c, "kvCacheRef", 0), dim(c, "kvCacheRef", 1));
            dims_are(c, "kvCacheRef", &[bn, bs, 1, KV_LORA])?;
            dims_are(c, "krCacheRef", &[bn, bs, 1, ROPE])
        }),
        |c| c.edit_tensor("krCacheRef", |t| t.dims[2] = 2),
    ),
    one(
        OP,
        "mla-prolog-v3.block-size",
        "BlockSize is a multiple of 16 in 16..=1024",
        DOC,
        INVALID,
        Relation(|c| {
            let bs = dim(c, "kvCacheRef", 1);
            ensure((16..=1024).contains(&bs) && bs % 16 == 0, || {
                format!("BlockSize {bs}")
            })
        }),
        |c| {
            c.edit_tensor("kvCacheRef", |t| t.dims[1] = 24);
            c.edit_tensor("krCacheRef", |t| t.dims[1] = 24);
        },
    ),
    one(
        OP,
        "mla-prolog-v3.block-num",
        "BlockNum is at least ceil(T / BlockSize) in PA_BSND and PA_NZ",
        DOC,
        INVALID,
        Relation(|c| {
            let (bn, bs) = (dim(c, "kvCacheRef", 0), dim(c, "kvCacheRef", 1));
            let t = tokens(c);
            ensure(bs <= 0 || bn * bs >= t, || {
                format!("{bn} blocks of {bs} for {t} tokens")
            })
        }),
        |c| {
            c.edit_tensor("tokenX", |t| t.dims[0] = 17);
            c.edit_tensor("ropeSin", |t| t.dims[0] = 17);
            c.edit_tensor("ropeCos", |t| t.dims[0] = 17);
            c.edit_tensor("cacheIndexOptional", |t| t.dims[0] = 17);
            c.edit_tensor("queryOut", |t| t.dims[0] = 17);
            c.edit_tensor("queryRopeOut", |t| t.dims[0] = 17);
        },
    ),
    one(
        OP,
        "mla-prolog-v3.cache-index",
        "cacheIndexOptional is INT64 of tokenX's token dims, (T) or (B, S)",
        DOC,
        INVALID,
        Relation(|c| match c.tensor_of("cacheIndexOptional") {
            Some(t) if t.dtype != ACL_INT64 => Err(format!(
                "cacheIndexOptional is {}",
                crate::rules::dtype_name(t.dtype)
            )),
            _ => token_shaped(c, "cacheIndexOptional", &[]),
        }),
        |c| c.edit_tensor("cacheIndexOptional", |t| t.dtype = ascend_sys::ACL_INT32),
    ),
    one(
        OP,
        "mla-prolog-v3.query-out",
        "queryOut is BF16 (INT8 with per-token-head query quantisation), (T, N, Hckv) or (B, S, N, Hckv)",
        DOC,
        INVALID,
        Relation(|c| {
            let want = if c.int_of("queryQuantMode") == 1 {
                ACL_INT8
            } else {
                ACL_BF16
            };
            match c.tensor_of("queryOut") {
                Some(t) if t.dtype != want => {
                    Err(format!("queryOut is {}", crate::rules::dtype_name(t.dtype)))
                }
                _ => token_shaped(c, "queryOut", &[heads(c), KV_LORA]),
            }
        }),
        |c| c.edit_tensor("queryOut", |t| t.dims = vec![2, 1, 128]),
    ),
    one(
        OP,
        "mla-prolog-v3.query-rope-out",
        "queryRopeOut is BF16, (T, N, Dr) or (B, S, N, Dr)",
        DOC,
        INVALID,
        Relation(|c| match c.tensor_of("queryRopeOut") {
            Some(t) if t.dtype != ACL_BF16 => Err(format!(
                "queryRopeOut is {}",
                crate::rules::dtype_name(t.dtype)
            )),
            _ => token_shaped(c, "queryRopeOut", &[heads(c), ROPE]),
        }),
        |c| c.edit_tensor("queryRopeOut", |t| t.dtype = ACL_FLOAT),
    ),
    one(
        OP,
        "mla-prolog-v3.repo-modes",
        "ckvkrRepoMode and quantScaleRepoMode are 0 (separate) or 1 (together), both 1 in per-tile kv quantisation",
        DOC,
        INVALID,
        Relation(|c| {
            let (a, b) = (c.int_of("ckvkrRepoMode"), c.int_of("quantScaleRepoMode"));
            let tile = c.int_of("kvCacheQuantMode") == 3;
            if [0, 1].contains(&a) && [0, 1].contains(&b) && (!tile || (a == 1 && b == 1)) {
                Ok(())
            } else {
                Err(format!(
                    "ckvkrRepoMode {a}, quantScaleRepoMode {b}, kvCacheQuantMode {}",
                    c.int_of("kvCacheQuantMode")
                ))
            }
        }),
        |c| c.set("ckvkrRepoMode", Arg::Int(2)),
    ),
    one(
        OP,
        "mla-prolog-v3.non-quant-inputs-null",
        "without weight quantisation (weightQuantMode 0) the dequant, quant and smooth scale inputs are NULL",
        DOC,
        INVALID,
        Relation(|c| {
            if c.int_of("weightQuantMode") != 0 {
                return Ok(());
            }
            match QUANT_INPUTS.iter().find(|n| c.present(n)) {
                Some(n) => Err(format!("{n} given without quantisation")),
                None => Ok(()),
            }
        }),
        |c| {
            c.set(
                "smoothScalesCqOptional",
                Arg::Tensor(Some(TensorMeta::new(&[1, Q_LORA], ACL_FLOAT))),
            )
        },
    ),
];

/// Rules checked when the operator runs, and the SoC rule, checked in phase one from the
/// planning device (a [`Call`] carries no SoC).
pub(super) const AT_RUN: &[Rule] = &[
    Rule {
        id: "mla-prolog-v3.cache-index-range",
        call: OP,
        statement: "in PA_BSND/PA_NZ every cacheIndex value lies in [0, BlockNum·BlockSize)",
        source: DOC,
        test: "tests/mla_vendor_sim.rs::prolog_cache_index_out_of_range_fails_the_stream",
        enforcement: crate::rules::Enforcement::AtRun { status: INVALID },
    },
    Rule {
        id: "mla-prolog-v3.products",
        call: OP,
        statement: "the device is Atlas A2 or A3 (Ascend910B*, Ascend910_93*); the doc lists no other product (V3: not Ascend 950)",
        source: DOC,
        test: "tests/mla_vendor_fallback_sim.rs::the_vendor_ops_refuse_an_ascend_950_and_attention_takes_our_kernels",
        enforcement: crate::rules::Enforcement::Elsewhere {
            code: "ascend-sim/src/ffi/aclnn_mla.rs",
        },
    },
];

/// 2 tokens of He 1024, 1 head, one block of 16, BF16, PA_BSND.
pub(super) fn sample() -> Call {
    let t = |dims: &[i64], dtype| Some(TensorMeta::new(dims, dtype));
    let none = || Arg::Tensor(None);
    Call::new(OP)
        .tensor("tokenX", t(&[2, 1024], ACL_BF16))
        .tensor("weightDq", Some(TensorMeta::nz(1024, Q_LORA, ACL_BF16)))
        .tensor(
            "weightUqQr",
            Some(TensorMeta::nz(Q_LORA, NOPE + ROPE, ACL_BF16)),
        )
        .tensor("weightUk", t(&[1, NOPE, KV_LORA], ACL_BF16))
        .tensor(
            "weightDkvKr",
            Some(TensorMeta::nz(1024, KV_LORA + ROPE, ACL_BF16)),
        )
        .tensor("rmsnormGammaCq", t(&[Q_LORA], ACL_BF16))
        .tensor("rmsnormGammaCkv", t(&[KV_LORA], ACL_BF16))
        .tensor("ropeSin", t(&[2, ROPE], ACL_BF16))
        .tensor("ropeCos", t(&[2, ROPE], ACL_BF16))
        .tensor("kvCacheRef", t(&[1, 16, 1, KV_LORA], ACL_BF16))
        .tensor("krCacheRef", t(&[1, 16, 1, ROPE], ACL_BF16))
        .tensor("cacheIndexOptional", t(&[2], ACL_INT64))
        .with("dequantScaleXOptional", none())
        .with("dequantScaleWDqOptional", none())
        .with("dequantScaleWUqQrOptional", none())
        .with("dequantScaleWDkvKrOptional", none())
        .with("quantScaleCkvOptional", none())
        .with("quantScaleCkrOptional", none())
        .with("smoothScalesCqOptional", none())
        .with("actualSeqLenOptional", none())
        .with("rmsnormEpsilonCq", Arg::Float(1e-6))
        .with("rmsnormEpsilonCkv", Arg::Float(1e-6))
        .with("cacheModeOptional", Arg::Str(Some("PA_BSND".into())))
        .with("queryNormFlag", Arg::Bool(false))
        .int("weightQuantMode", 0)
        .int("kvCacheQuantMode", 0)
        .int("queryQuantMode", 0)
        .int("ckvkrRepoMode", 0)
        .int("quantScaleRepoMode", 0)
        .int("tileSize", 128)
        .with("kNopeClipAlpha", Arg::Float(1.0))
        .with("qcQrScale", Arg::Float(1.0))
        .with("kcScale", Arg::Float(1.0))
        .tensor("queryOut", t(&[2, 1, KV_LORA], ACL_BF16))
        .tensor("queryRopeOut", t(&[2, 1, ROPE], ACL_BF16))
        .with("dequantScaleQNopeOutOptional", none())
        .with("queryNormOutOptional", none())
        .with("dequantScaleQNormOutOptional", none())
}
