//! A DeepSeek-shaped MLA layer on the simulator: its `config.json` and safetensors written to
//! a temporary directory and loaded back as `ops::mla::MlaLayer`, then a chunked prefill of
//! two sequences and decode steps (single and speculative tokens), checked against the f64
//! reference layer.
//!
//! ```sh
//! cargo run --release --example mla_decode                 # reduced sizes, bf16 weights
//! cargo run --release --example mla_decode -- --fp8        # FP8 weights (weight_scale_inv)
//! cargo run --release --example mla_decode -- --fp8-cache  # FlashMLA's FP8 latent cache
//! cargo run --release --example mla_decode -- --full       # DeepSeek-V3's sizes (slow; a
//!                                                          # few GB of RAM)
//! ```

use std::time::Instant;

use ascend_npu::fp8::{ScaleFormat, quantize_weight};
use ascend_npu::kernels::Kernels;
use ascend_npu::ops::mla::{BlockTable, BlockTableSpec, MlaCacheSpec, MlaLayer, MlaPath, MlaStep};
use ascend_npu::reference::mla::{
    AttentionForm, MlaConfig, MlaWeights, QueryWeights, SequenceCache, mla_layer_forward,
};
use ascend_npu::{Backend, Device, Event, select_backend};
use half::bf16;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

const PREFIX: &str = "model.layers.0.self_attn";

/// Pseudo-random values uniform in [-scale, scale) from `seed` (SplitMix64): the example
/// needs no RNG crate, and unstructured values keep the error statistics typical.
fn values(seed: usize, len: usize, scale: f32) -> Vec<f32> {
    let mut z = (seed as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..len)
        .map(|_| {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * scale
        })
        .collect()
}

/// The tensors of the checkpoint (name, shape, dtype, little-endian bytes) and the values
/// the reference sees (bf16, or FP8 dequantized).
#[derive(Default)]
struct Checkpoint {
    tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)>,
    seen: Vec<(String, Vec<f64>)>,
}

impl Checkpoint {
    /// A projection `[n, k]` with values of order `1/√k` (outputs of order 1), bf16 or FP8
    /// with 128×128 `weight_scale_inv` blocks.
    fn projection(
        &mut self,
        name: &str,
        (n, k): (usize, usize),
        fp8: bool,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let w = values(self.tensors.len() + 1, n * k, 1.0 / (k as f32).sqrt());
        let full = format!("{PREFIX}.{name}.weight");
        if fp8 {
            let q = quantize_weight(&w, n, k, ScaleFormat::Fp32)?;
            let (sn, sk) = q.scale_shape();
            let seen = q.dequantize().into_iter().map(f64::from).collect();
            let scales = q.scales().iter().flat_map(|s| s.to_le_bytes()).collect();
            let codes = q.codes().iter().map(|c| c.to_bits()).collect();
            self.tensors
                .push((full.clone(), vec![n, k], Dtype::F8_E4M3, codes));
            self.tensors.push((
                format!("{full}_scale_inv"),
                vec![sn, sk],
                Dtype::F32,
                scales,
            ));
            self.seen.push((name.to_string(), seen));
        } else {
            self.bf16(name, &[n, k], &w);
        }
        Ok(())
    }

    /// An RMSNorm weight near 1.
    fn norm(&mut self, name: &str, len: usize) {
        let w: Vec<f32> = values(self.tensors.len() + 1, len, 0.25)
            .into_iter()
            .map(|v| 1.0 + v)
            .collect();
        self.bf16(name, &[len], &w);
    }

    fn bf16(&mut self, name: &str, shape: &[usize], w: &[f32]) {
        let b: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
        let bytes = b.iter().flat_map(|v| v.to_le_bytes()).collect();
        let full = format!("{PREFIX}.{name}.weight");
        self.tensors
            .push((full, shape.to_vec(), Dtype::BF16, bytes));
        self.seen
            .push((name.to_string(), b.iter().map(|v| v.to_f64()).collect()));
    }

    fn seen(&self, name: &str) -> Vec<f64> {
        let found = self.seen.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// The model of `cfg`'s shapes.
    fn model(cfg: &MlaConfig, fp8: bool) -> Result<Checkpoint, Box<dyn std::error::Error>> {
        let (he, h) = (cfg.hidden_size, cfg.num_heads);
        let mut ck = Checkpoint::default();
        let q_rows = h * cfg.qk_head_dim();
        match cfg.q_lora_rank {
            Some(r) => {
                ck.projection("q_a_proj", (r, he), fp8)?;
                ck.norm("q_a_layernorm", r);
                ck.projection("q_b_proj", (q_rows, r), fp8)?;
            }
            None => ck.projection("q_proj", (q_rows, he), fp8)?,
        }
        ck.projection("kv_a_proj_with_mqa", (cfg.cache_row(), he), fp8)?;
        ck.norm("kv_a_layernorm", cfg.kv_lora_rank);
        let kv_rows = h * (cfg.qk_nope_head_dim + cfg.v_head_dim);
        ck.projection("kv_b_proj", (kv_rows, cfg.kv_lora_rank), fp8)?;
        ck.projection("o_proj", (he, h * cfg.v_head_dim), fp8)?;
        Ok(ck)
    }

    fn reference_weights(&self, cfg: &MlaConfig) -> MlaWeights {
        MlaWeights {
            query: match cfg.q_lora_rank {
                Some(_) => QueryWeights::LowRank {
                    q_a_proj: self.seen("q_a_proj"),
                    q_a_layernorm: self.seen("q_a_layernorm"),
                    q_b_proj: self.seen("q_b_proj"),
                },
                None => QueryWeights::Plain {
                    q_proj: self.seen("q_proj"),
                },
            },
            kv_a_proj_with_mqa: self.seen("kv_a_proj_with_mqa"),
            kv_a_layernorm: self.seen("kv_a_layernorm"),
            kv_b_proj: self.seen("kv_b_proj"),
            o_proj: self.seen("o_proj"),
        }
    }

    fn write(&self, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
        let views = self
            .tensors
            .iter()
            .map(|(name, shape, dtype, bytes)| {
                Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        safetensors::serialize_to_file(views, &None, path)?;
        Ok(())
    }
}

/// DeepSeek-V3's `config.json` attention fields with `hidden` and `heads`.
fn config_json(hidden: usize, heads: usize) -> String {
    format!(
        r#"{{"hidden_size": {hidden}, "num_attention_heads": {heads}, "q_lora_rank": 1536,
  "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
  "rms_norm_eps": 1e-6, "rope_theta": 10000,
  "rope_scaling": {{"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
    "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}}}}"#
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let (full, fp8, fp8_cache) = (flag("--full"), flag("--fp8"), flag("--fp8-cache"));
    // Sequences, the prompt's chunks (at most 16 new tokens a step, the vendor decode's
    // limit), then decode steps: single tokens and a speculative pair.
    let (hidden, heads, batch, prompt, decode): (usize, usize, usize, &[usize], &[usize]) = if full
    {
        (7168, 128, 1, &[8], &[1, 2])
    } else {
        (1024, 16, 2, &[16, 8], &[1, 1, 2, 1])
    };
    let steps: Vec<(usize, &str)> = prompt
        .iter()
        .map(|&s| (s, "prefill"))
        .chain(decode.iter().map(|&s| (s, "decode")))
        .collect();

    let dir = std::env::temp_dir().join(format!("ascend-npu-mla-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("config.json"), config_json(hidden, heads))?;
    let cfg = MlaConfig::from_config_json(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let model = Checkpoint::model(&cfg, fp8)?;
    let file = dir.join("model.safetensors");
    model.write(&file)?;
    let bytes = std::fs::read(&file)?;
    std::fs::remove_dir_all(&dir)?;

    select_backend(Backend::Sim)?;
    let device = Device::open(0)?;
    let stream = device.new_stream()?;
    let kernels = Kernels::load(&device)?;
    let total: usize = steps.iter().map(|(s, _)| s).sum();
    let block_size = 128;
    let blocks_per_seq = total.div_ceil(block_size);
    let spec = MlaCacheSpec {
        blocks: batch * blocks_per_seq + 1,
        block_size,
        fp8: fp8_cache,
        max_positions: total,
    };
    let layer = MlaLayer::from_safetensors(&stream, &bytes, PREFIX, &cfg, spec)?;
    println!(
        "MLA layer on {}: hidden {hidden}, {heads} heads, q LoRA 1536, latent 512 + rope 64, \
         {} weights, {} cache of {block_size}-token blocks{}",
        device.soc_name()?,
        if fp8 {
            "FP8 E4M3 (128x128 scales)"
        } else {
            "bf16"
        },
        if fp8_cache {
            "an FP8 (656 B/token)"
        } else {
            "a bf16 (1,152 B/token)"
        },
        if full {
            ""
        } else {
            " (reduced sizes; --full for DeepSeek-V3's)"
        },
    );
    match layer.attention().path() {
        MlaPath::Vendor => println!("path: the vendor ops (aclnnMlaPrologV3WeightNz, FIA V3)"),
        MlaPath::Kernels { why } => println!("path: our kernels ({why})"),
    }
    let fp8 = layer.fp8_projections();
    if !fp8.is_empty() {
        println!("on the FP8 GEMM: {}", fp8.join(", "));
    }

    // Sequence b owns blocks b·blocks_per_seq.., in reverse order (the table is what counts).
    let table: Vec<i32> = (0..batch)
        .flat_map(|b| {
            (0..blocks_per_seq)
                .rev()
                .map(move |j| (b * blocks_per_seq + j) as i32)
        })
        .collect();
    let w = model.reference_weights(&cfg);
    let mut refs: Vec<SequenceCache> = (0..batch).map(|_| SequenceCache::default()).collect();
    let mut cache = layer.new_cache(&stream)?;
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let (mut len, mut stream_ms) = (0, 0.0);
    let wall = Instant::now();
    for (i, &(s_q, kind)) in steps.iter().enumerate() {
        len += s_q;
        let x: Vec<bf16> = values(100 + i, batch * s_q * hidden, 1.0)
            .into_iter()
            .map(bf16::from_f32)
            .collect();
        let bt = BlockTable::new(
            &stream,
            layer.attention().cache_layout(),
            BlockTableSpec {
                table: &table,
                max_blocks: blocks_per_seq,
                seq_lens: &vec![len; batch],
            },
        )?;
        let dx = stream.upload(&x)?;
        let start = stream.record_event()?;
        let y = layer.forward(
            &kernels,
            &stream,
            MlaStep {
                x: &dx,
                s_q,
                cache: &mut cache,
                table: &bt,
            },
        )?;
        let end = stream.record_event()?;
        got.extend(y.to_vec()?.iter().map(|v| v.to_f64()));
        stream_ms += Event::elapsed_ms(&start, &end)?;
        for (b, seq) in refs.iter_mut().enumerate() {
            let xb: Vec<f64> = x[b * s_q * hidden..(b + 1) * s_q * hidden]
                .iter()
                .map(|v| v.to_f64())
                .collect();
            want.extend(mla_layer_forward(
                &cfg,
                &w,
                &xb,
                seq,
                AttentionForm::Absorbed,
            )?);
        }
        println!("step {i} ({kind}): {s_q} new token(s) per sequence, {len} cached");
    }
    println!(
        "{} steps: {stream_ms:.1} ms of stream time, {:.1} s wall with the f64 reference (the \
         CPU simulator's, not an NPU's)",
        steps.len(),
        wall.elapsed().as_secs_f64()
    );

    let err: f64 = got.iter().zip(&want).map(|(g, w)| (g - w) * (g - w)).sum();
    let norm: f64 = want.iter().map(|w| w * w).sum();
    let dot: f64 = got.iter().zip(&want).map(|(g, w)| g * w).sum();
    let calc_diff = 1.0 - 2.0 * dot / (got.iter().map(|g| g * g).sum::<f64>() + norm);
    let rel_l2 = (err / norm).sqrt();
    println!(
        "against the f64 reference: relative L2 error {rel_l2:.2e}, calc_diff {calc_diff:.2e}"
    );
    // The layer tests' bound (5u for bf16 rows; an FP8 cache adds E4M3's rounding of the
    // latent, unit roundoff 2^-4) and DeepGEMM's calc_diff acceptance.
    let bound = if fp8_cache { 1.0 / 16.0 } else { 5.0 / 256.0 };
    if !(rel_l2 < bound && calc_diff < 1e-3) {
        return Err("the device layer disagrees with the reference".into());
    }
    Ok(())
}
