//! A whole MLA layer loaded from a safetensors file with DeepSeek's tensor names (bf16 and
//! FP8 weights), prefill then decode steps against the f64 reference layer. Instantiated by
//! `mla_layer_sim.rs` and its hardware twin `mla_layer_hardware.rs`.

use super::Rng;
use super::checkpoint::Tensors;
use ascend_npu::ops::mla::{BlockTable, BlockTableSpec, MlaCacheSpec, MlaLayer, MlaPath, MlaStep};
use ascend_npu::reference::mla::{
    AttentionForm, MlaConfig, MlaWeights, QueryWeights, SequenceCache, mla_layer_forward,
};
use ascend_npu::{Error, Stream};
use half::bf16;
use safetensors::Dtype;

/// Every case of this file, for a suite to instantiate with its setup.
#[macro_export]
macro_rules! mla_layer_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            mla_layer_cases:
            a_bf16_layer_matches_the_f64_reference,
            an_fp8_layer_matches_the_f64_reference,
            a_layer_without_q_lora_matches_the_f64_reference,
            bad_checkpoints_name_the_tensor,
        }
    };
}

const PREFIX: &str = "model.layers.0.self_attn";

/// DeepSeek-V3's attention widths and YaRN on a reduced hidden size and q LoRA rank (which
/// only the f64 reference's cost depends on), with `heads` heads; without q LoRA as V2-Lite.
fn config(heads: usize, q_lora: bool) -> MlaConfig {
    MlaConfig {
        hidden_size: 256,
        q_lora_rank: q_lora.then_some(128),
        ..MlaConfig::deepseek_v3().with_heads(heads)
    }
}

/// A random checkpoint of `cfg` in bf16: projections scaled by `1/√fan_in` (outputs of order
/// 1), norm weights near 1.
fn checkpoint(cfg: &MlaConfig, rng: &mut Rng) -> Tensors {
    let (he, h) = (cfg.hidden_size, cfg.num_heads);
    let mut t = Tensors::default();
    let mut add = |t: &mut Tensors, name: &str, shape: [usize; 2], around_one: bool| {
        let fan_in = shape[1] as f32;
        let values = (0..shape[0] * shape[1])
            .map(|_| {
                let v = if around_one {
                    1.0 + 0.25 * rng.f32()
                } else {
                    rng.f32() / fan_in.sqrt()
                };
                bf16::from_f32(v).to_f64()
            })
            .collect();
        let dims: &[usize] = if around_one { &shape[1..] } else { &shape };
        t.push(name, dims, values, Dtype::BF16);
    };
    let q_rows = h * cfg.qk_head_dim();
    match cfg.q_lora_rank {
        Some(r) => {
            add(&mut t, "q_a_proj.weight", [r, he], false);
            add(&mut t, "q_a_layernorm.weight", [1, r], true);
            add(&mut t, "q_b_proj.weight", [q_rows, r], false);
        }
        None => add(&mut t, "q_proj.weight", [q_rows, he], false),
    }
    add(
        &mut t,
        "kv_a_proj_with_mqa.weight",
        [cfg.cache_row(), he],
        false,
    );
    add(&mut t, "kv_a_layernorm.weight", [1, cfg.kv_lora_rank], true);
    let kv_rows = h * (cfg.qk_nope_head_dim + cfg.v_head_dim);
    add(
        &mut t,
        "kv_b_proj.weight",
        [kv_rows, cfg.kv_lora_rank],
        false,
    );
    add(&mut t, "o_proj.weight", [he, h * cfg.v_head_dim], false);
    t
}

/// The reference's weights: the values the checkpoint holds (dequantized when FP8).
fn reference_weights(cfg: &MlaConfig, t: &Tensors) -> MlaWeights {
    let get = |name: &str| t.get(name).to_vec();
    MlaWeights {
        query: match cfg.q_lora_rank {
            Some(_) => QueryWeights::LowRank {
                q_a_proj: get("q_a_proj.weight"),
                q_a_layernorm: get("q_a_layernorm.weight"),
                q_b_proj: get("q_b_proj.weight"),
            },
            None => QueryWeights::Plain {
                q_proj: get("q_proj.weight"),
            },
        },
        kv_a_proj_with_mqa: get("kv_a_proj_with_mqa.weight"),
        kv_a_layernorm: get("kv_a_layernorm.weight"),
        kv_b_proj: get("kv_b_proj.weight"),
        o_proj: get("o_proj.weight"),
    }
}

fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den).sqrt()
}

/// The relative L2 bound of a step's output. As `mla_vendor_cases::attention_tolerance`
/// derives for the attention (independent roundings of relative RMS u/√3, u = 2^-8, in
/// quadrature, doubled for the projections between them), with `o_proj`'s f32 product and
/// bf16 output added: R = 13 roundings, 2·√13/√3·u = 4.2u. FP8 weights run on the FP8 GEMM
/// with their own codes and f32 scales, which the reference takes exactly (code × scale,
/// dequantized in f64): the GEMM's f32 products and per-block scaling add roundings of
/// 2^-24, nothing of order u, so the same R = 13 holds. (Had the four attention projections
/// been dequantized to bf16 at load, as before, their roundings would make R = 17, 4.8u.)
/// 5u bounds both. (Measured: 0.9u–1.1u bf16; FP8 1.0u–1.1u, and 0.9u–1.1u without q LoRA,
/// against 1.1u–1.3u with bf16-dequantized projections.)
fn layer_tolerance() -> f64 {
    5.0 * 2f64.powi(-8)
}

/// Runs prefill then decode steps of two sequences through the layer loaded from `t`, and
/// the f64 reference layer beside it; asserts every step's output within the tolerance.
/// Runs the layer of `t` over prefill and decode steps against the f64 reference layer,
/// after checking which projections run on the FP8 GEMM (`fp8`).
fn check_layer(cfg: &MlaConfig, t: &Tensors, label: &str, fp8: &[&str]) {
    let (stream, kernels) = super::mla_cases::setup();
    let spec = MlaCacheSpec {
        blocks: 5,
        block_size: 16,
        fp8: false,
        max_positions: 64,
    };
    let layer = MlaLayer::from_safetensors(&stream, &t.bytes(PREFIX), PREFIX, cfg, spec).unwrap();
    // DeepSeek's widths at a hidden size the vendor prolog lists take its path; ours else.
    let vendor = cfg.q_lora_rank == Some(1536) && cfg.hidden_size == 1024;
    assert_eq!(
        *layer.attention().path() == MlaPath::Vendor,
        vendor,
        "{label}"
    );
    assert_eq!(layer.fp8_projections(), fp8, "{label}");
    let w = reference_weights(cfg, t);
    let mut cache = layer.new_cache(&stream).unwrap();
    // Sequence 0 in blocks 3 and 1, sequence 1 in blocks 0 and 4 (block 2 unused).
    let table = [3, 1, 0, 4];
    let mut rng = Rng::new(7);
    let he = cfg.hidden_size;
    let mut refs = [SequenceCache::default(), SequenceCache::default()];
    let mut len = 0;
    // A prompt of 14 tokens, then single tokens and speculative pairs across the block edge.
    for s_q in [14, 1, 2, 1, 2] {
        len += s_q;
        let x: Vec<bf16> = (0..2 * s_q * he)
            .map(|_| bf16::from_f32(rng.f32()))
            .collect();
        let bt = BlockTable::new(
            &stream,
            layer.attention().cache_layout(),
            BlockTableSpec {
                table: &table,
                max_blocks: 2,
                seq_lens: &[len, len],
            },
        )
        .unwrap();
        let dx = stream.upload(&x).unwrap();
        let y = layer
            .forward(
                &kernels,
                &stream,
                MlaStep {
                    x: &dx,
                    s_q,
                    cache: &mut cache,
                    table: &bt,
                },
            )
            .unwrap();
        let got: Vec<f64> = y.to_vec().unwrap().iter().map(|v| v.to_f64()).collect();
        let mut want = Vec::new();
        for (b, seq) in refs.iter_mut().enumerate() {
            let xb: Vec<f64> = x[b * s_q * he..(b + 1) * s_q * he]
                .iter()
                .map(|v| v.to_f64())
                .collect();
            want.extend(mla_layer_forward(cfg, &w, &xb, seq, AttentionForm::Absorbed).unwrap());
        }
        let e = rel_l2(&got, &want);
        assert!(
            e < layer_tolerance(),
            "{label}: length {len} (s_q {s_q}): rel L2 {e} (bound {})",
            layer_tolerance()
        );
    }
}

/// bf16 weights, 3 heads (a tensor-parallel split only our kernels take).
pub fn a_bf16_layer_matches_the_f64_reference() {
    let cfg = config(3, true);
    let t = checkpoint(&cfg, &mut Rng::new(61));
    check_layer(&cfg, &t, "bf16", &[]);
}

/// `t` with each projection's magnitude changed by ×1/4, ×1 or ×4 every 64 rows and 128
/// columns, so neighbouring 128×128 scale blocks differ by up to 16× and a scale applied to
/// another block's codes (a head's rows split across blocks, a transposed block grid) is far
/// outside the tolerance; the 64-row step puts the change inside blocks too.
fn blocky(mut t: Tensors) -> Tensors {
    for (name, shape, values, _) in &mut t.0 {
        if name.contains("layernorm") {
            continue;
        }
        let cols = shape[1];
        for (i, v) in values.iter_mut().enumerate() {
            let (r, c) = (i / cols, i % cols);
            *v *= [0.25, 1.0, 4.0][(r / 64 + c / 128) % 3];
        }
    }
    t
}

/// FP8 projections with `weight_scale_inv` (norms bf16, as DeepSeek-V3 ships them): on our
/// kernels' path every one on the FP8 GEMM, at 3 heads (odd heads' `q_b_proj` rows straddle
/// the 128-row scale blocks) and with V2-Lite's plain `q_proj`; on the vendor path `kv_b_proj`
/// and `o_proj`. The reference takes the dequantized values.
pub fn an_fp8_layer_matches_the_f64_reference() {
    let cfg = config(3, true);
    let t = blocky(checkpoint(&cfg, &mut Rng::new(62))).quantized(|n| !n.contains("layernorm"));
    let all = [
        "q_a_proj",
        "q_b_proj",
        "kv_a_proj_with_mqa",
        "kv_b_proj",
        "o_proj",
    ];
    check_layer(&cfg, &t, "fp8", &all);
    let cfg = config(2, false);
    let t = blocky(checkpoint(&cfg, &mut Rng::new(65))).quantized(|n| !n.contains("layernorm"));
    let all = ["q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"];
    check_layer(&cfg, &t, "fp8 without q LoRA", &all);
    // A value head of 64 rows: W_UV_h is half a scale block, so kv_b_proj alone is
    // dequantized to bf16 at load (the other projections stay on the FP8 GEMM).
    let cfg = MlaConfig {
        v_head_dim: 64,
        ..config(2, true)
    };
    let t = blocky(checkpoint(&cfg, &mut Rng::new(67))).quantized(|n| !n.contains("layernorm"));
    let all = ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "o_proj"];
    check_layer(&cfg, &t, "fp8 with v 64", &all);
    // The vendor path (DeepSeek's widths, hidden 1024, 2 heads): its prolog takes bf16, so the
    // prolog's projections are dequantized at load (the R = 17 case of `layer_tolerance`);
    // kv_b_proj's W_UV products after the vendor attention and o_proj stay FP8.
    let cfg = MlaConfig {
        hidden_size: 1024,
        ..MlaConfig::deepseek_v3().with_heads(2)
    };
    let t = blocky(checkpoint(&cfg, &mut Rng::new(66))).quantized(|n| !n.contains("layernorm"));
    check_layer(&cfg, &t, "fp8 on the vendor path", &["kv_b_proj", "o_proj"]);
}

/// DeepSeek-V2-Lite's form: a plain `q_proj`, no q LoRA (2 heads), FP8 `o_proj` only.
pub fn a_layer_without_q_lora_matches_the_f64_reference() {
    let cfg = config(2, false);
    let t = checkpoint(&cfg, &mut Rng::new(63)).quantized(|n| n == "o_proj.weight");
    check_layer(&cfg, &t, "no q LoRA", &["o_proj"]);
}

/// A missing tensor, a wrong shape or dtype, an FP8 weight without its scales, and a file
/// that is not safetensors: each an `InvalidArgument` naming the tensor and what was expected.
pub fn bad_checkpoints_name_the_tensor() {
    let stream: Stream = super::mla_cases::setup().0;
    let cfg = config(3, true);
    let good = checkpoint(&cfg, &mut Rng::new(64));
    let spec = MlaCacheSpec {
        blocks: 2,
        block_size: 16,
        fp8: true,
        max_positions: 16,
    };
    let load_bytes = |bytes: &[u8], cfg: &MlaConfig| match MlaLayer::from_safetensors(
        &stream, bytes, PREFIX, cfg, spec,
    ) {
        Err(e @ Error::InvalidArgument { .. }) => e.to_string(),
        Err(other) => panic!("expected InvalidArgument, got {other}"),
        Ok(_) => panic!("a bad checkpoint loaded"),
    };
    let load = |t: &Tensors, cfg: &MlaConfig| load_bytes(&t.bytes(PREFIX), cfg);
    let mut missing = good.clone();
    missing.remove("kv_b_proj.weight");
    let err = load(&missing, &cfg);
    assert!(err.contains(&format!("{PREFIX}.kv_b_proj.weight")), "{err}");
    // Weights of 3 heads for a config of 4.
    let err = load(&good, &config(4, true));
    assert!(
        err.contains("q_b_proj.weight of shape [576, 128]") && err.contains("[768, 128]"),
        "{err}"
    );
    // A config without q LoRA for a checkpoint with it: no q_proj.
    let err = load(&good, &config(3, false));
    assert!(err.contains("q_proj.weight"), "{err}");
    let mut f32_norm = good.clone();
    for t in &mut f32_norm.0 {
        if t.0 == "kv_a_layernorm.weight" || t.0 == "q_a_proj.weight" {
            t.3 = Dtype::F32;
        }
    }
    let err = load(&f32_norm, &cfg);
    assert!(
        err.contains("q_a_proj.weight is F32") && err.contains("F8_E4M3"),
        "{err}"
    );
    f32_norm.0.retain(|t| t.0 != "q_a_proj.weight");
    f32_norm.push(
        "q_a_proj.weight",
        &[128, 256],
        good.get("q_a_proj.weight").to_vec(),
        Dtype::BF16,
    );
    let err = load(&f32_norm, &cfg);
    assert!(err.contains("kv_a_layernorm.weight is F32"), "{err}");
    let fp8 = good.quantized(|n| n == "o_proj.weight");
    let err = load_bytes(&fp8.bytes_without(PREFIX, "o_proj.weight_scale_inv"), &cfg);
    assert!(err.contains("o_proj.weight_scale_inv"), "{err}");
    let err = match MlaLayer::from_safetensors(&stream, b"not safetensors", PREFIX, &cfg, spec) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("garbage loaded"),
    };
    assert!(err.contains("safetensors"), "{err}");
}
