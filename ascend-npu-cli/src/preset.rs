//! The shapes a run uses: `small` (seconds on the simulator, the test suite's run),
//! `deepseek-v3` (the model's real shapes), or a TOML file with the same fields.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The shapes of every operator family. A TOML preset gives every field, e.g.
///
/// ```toml
/// name = "mine"
/// swiglu = [1, 4097]
/// matmul = [[1, 1, 1], [17, 33, 65]]
/// fp8_quant = [[3, 257]]
/// fp8_gemm = [[3, 129, 257]]
/// moe = []
/// moe_layer = []
/// mla_cache_write = [[9, 5]]
/// mla_decode = [[3, 2, 5]]
/// mla_prefill = [[2, 16]]
/// mla_attention = [[1024, 2, 16]]
/// mla_layer = []
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Name in reports.
    pub name: String,
    /// SwiGLU element counts.
    pub swiglu: Vec<usize>,
    /// Matmul `[m, n, k]`.
    pub matmul: Vec<[usize; 3]>,
    /// FP8 quantization and decode `[rows, k]`.
    pub fp8_quant: Vec<[usize; 2]>,
    /// FP8 GEMM `[m, n, k]` (`C[m,n] = A[m,k] · W[n,k]ᵀ`).
    pub fp8_gemm: Vec<[usize; 3]>,
    /// MoE routing, dispatch and combine.
    pub moe: Vec<MoeCase>,
    /// The whole MoE layer (its f64 reference holds every expert's weights).
    pub moe_layer: Vec<MoeCase>,
    /// MLA latent-cache writes `[tokens, block_size]` (DeepSeek-V3's latent 512 + rope 64).
    pub mla_cache_write: Vec<[usize; 2]>,
    /// MLA decode `[heads, s_q, block_size]` over sequences of 0, s_q, block ± 1 and
    /// 2·block + 3 tokens.
    pub mla_decode: Vec<[usize; 3]>,
    /// MLA prefill `[heads, block_size]` (block size at least 4) over six sequences: a whole
    /// prompt, chunks after a cached prefix, nothing new, an empty one, one token after a full
    /// block.
    #[serde(default)]
    pub mla_prefill: Vec<[usize; 2]>,
    /// `MlaAttention` `[hidden, heads, block_size]` (DeepSeek-V3's other widths) over a bf16
    /// cache (the vendor path where it fits: hidden of the prolog's list, a power-of-two head
    /// count, blocks of 16 or 128) and an FP8 one (our kernels).
    #[serde(default)]
    pub mla_attention: Vec<[usize; 3]>,
    /// `MlaLayer` `[hidden, heads, block_size]` with bf16 and FP8 weights (the f64 layer holds
    /// every weight in f64).
    #[serde(default)]
    pub mla_layer: Vec<[usize; 3]>,
    /// Expert-parallel dispatch and combine over ranks (none when absent from a TOML preset);
    /// the most ranks named here also run the `moe_layer` cases expert-parallel.
    #[serde(default)]
    pub ep: Vec<EpCase>,
}

/// The sizes of one expert-parallel case (a TOML `[[ep]]` table).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpCase {
    /// Ranks (one device each; fewer when the backend has fewer devices).
    pub ranks: usize,
    /// Tokens of rank 0; rank `r` has `tokens + r`, except rank 1, which has none.
    pub tokens: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Experts per rank.
    pub local_experts: usize,
    /// Experts per token.
    pub top_k: usize,
}

/// The sizes of one MoE case (a TOML `[[moe]]` or `[[moe_layer]]` table).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeCase {
    /// Tokens.
    pub tokens: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Routed experts.
    pub experts: usize,
    /// Expert groups.
    pub groups: usize,
    /// Groups kept per token.
    pub topk_groups: usize,
    /// Experts per token.
    pub top_k: usize,
    /// Routed experts' intermediate size (the layer only).
    pub intermediate: usize,
    /// The shared expert's intermediate size, 0 for none (the layer only).
    pub shared_intermediate: usize,
}

/// DeepSeek-V3's MoE sizes (`config_671B.json`).
const DEEPSEEK_V3_MOE: MoeCase = MoeCase {
    tokens: 16,
    hidden: 7168,
    experts: 256,
    groups: 8,
    topk_groups: 4,
    top_k: 8,
    intermediate: 2048,
    shared_intermediate: 2048,
};

impl Preset {
    /// `small`, `deepseek-v3`, or the path of a TOML preset.
    pub fn load(name: &str) -> Result<Preset, String> {
        match name {
            "small" => Ok(Preset::small()),
            "deepseek-v3" => Ok(Preset::deepseek_v3()),
            path => {
                let text = std::fs::read_to_string(Path::new(path)).map_err(|e| {
                    format!(
                        "preset {path:?} cannot be read ({e}); expected `small`, `deepseek-v3` \
                         or the path of a TOML preset"
                    )
                })?;
                toml::from_str(&text).map_err(|e| format!("preset {path:?} is not valid: {e}"))
            }
        }
    }

    /// Odd and edge sizes that finish in seconds on the simulator in a debug build.
    pub fn small() -> Preset {
        Preset {
            name: "small".to_string(),
            swiglu: vec![1, 31, 4097],
            matmul: vec![[1, 1, 1], [3, 17, 40], [17, 33, 65]],
            fp8_quant: vec![[1, 1], [3, 257], [130, 129]],
            fp8_gemm: vec![[1, 1, 1], [3, 129, 257]],
            moe: vec![MoeCase {
                tokens: 13,
                hidden: 40,
                experts: 32,
                groups: 4,
                topk_groups: 2,
                top_k: 4,
                intermediate: 24,
                shared_intermediate: 24,
            }],
            moe_layer: vec![MoeCase {
                tokens: 7,
                hidden: 64,
                experts: 16,
                groups: 4,
                topk_groups: 2,
                top_k: 4,
                intermediate: 32,
                shared_intermediate: 48,
            }],
            mla_cache_write: vec![[9, 5], [3, 64]],
            mla_decode: vec![[3, 2, 5], [16, 1, 64]],
            // An odd head count on small blocks, and the test suite's 2 heads in 16.
            mla_prefill: vec![[3, 8], [2, 16]],
            // The smallest hidden size the vendor prolog takes: 2 heads in 16-token blocks run
            // the vendor ops, in 8-token blocks our kernels.
            mla_attention: vec![[1024, 2, 16], [1024, 2, 8]],
            mla_layer: vec![[1024, 2, 16], [1024, 2, 8]],
            // Two FP8 tiles, one partial; three experts per rank, an odd count.
            ep: vec![EpCase {
                ranks: 4,
                tokens: 5,
                hidden: 200,
                local_experts: 3,
                top_k: 3,
            }],
        }
    }

    /// DeepSeek-V3's shapes (hidden 7168, MoE intermediate 2048, dense intermediate 18432), at
    /// a decode batch of 16 tokens.
    pub fn deepseek_v3() -> Preset {
        Preset {
            name: "deepseek-v3".to_string(),
            swiglu: vec![16 * 2048, 16 * 18432],
            matmul: vec![[16, 2048, 7168], [16, 7168, 2048]],
            fp8_quant: vec![[16, 7168], [2048, 7168]],
            fp8_gemm: vec![[16, 2048, 7168], [16, 7168, 2048]],
            moe: vec![MoeCase {
                tokens: 16,
                ..DEEPSEEK_V3_MOE
            }],
            // The real hidden and intermediate sizes with 24 experts (3 per group, the fewest
            // the gating operator takes): all 256 would need ~90 GB for the f64 reference.
            moe_layer: vec![MoeCase {
                tokens: 4,
                experts: 24,
                ..DEEPSEEK_V3_MOE
            }],
            mla_cache_write: vec![[16, 64], [2048, 64]],
            // 128 heads, one token and two speculative ones, FlashMLA's 64-token blocks.
            mla_decode: vec![[128, 1, 64], [128, 2, 64]],
            // 128 heads in FlashMLA's 64-token blocks (the f64 naive form expands every key
            // per head: ~40 G multiply-adds here).
            mla_prefill: vec![[128, 64]],
            // The vendor cache's 128-token blocks and FlashMLA's 64 (our kernels).
            mla_attention: vec![[7168, 128, 128], [7168, 128, 64]],
            mla_layer: vec![[7168, 128, 128]],
            // 256 experts over 8 ranks (32 each), top-8, hidden 7168, a decode batch.
            ep: vec![EpCase {
                ranks: 8,
                tokens: 16,
                hidden: 7168,
                local_experts: 32,
                top_k: 8,
            }],
        }
    }
}
