//! MLA from hidden states, against the f64 reference (`reference::mla::prolog`, the absorbed
//! attention, `mla_layer_forward`): [`MlaAttention`] (prolog, cache write, attention, `W_UV`)
//! on the path it picks — the vendor ops (`aclnnMlaPrologV3WeightNz`,
//! `aclnnFusedInferAttentionScoreV3`) where the shape fits, DeepSeek's widths in 16- or
//! 128-token blocks of a bf16 cache, our kernels elsewhere and for an FP8 cache — and the
//! whole [`MlaLayer`] loaded from a safetensors checkpoint with bf16 or FP8 weights.
//!
//! Two sequences run through decode steps in a NaN-filled cache: a three-token prompt for
//! both, the second's prompt continued in chunks of at most 14 tokens (the vendor decode takes
//! up to 16 new tokens) to one past a block, then one token each and two speculative tokens
//! each.

use ascend_npu::fp8::{ScaleFormat, quantize_weight};
use ascend_npu::ops::mla::{
    BlockTable, BlockTableSpec, CacheFormat, LatentCache, MlaAttention, MlaCacheSpec, MlaLayer,
    MlaPath, MlaStep, PrologCheckpoint,
};
use ascend_npu::reference::mla::{
    self as reference_mla, AttentionForm, LatentAttention, Mask, MlaConfig, MlaQuery, MlaWeights,
    QueryWeights, SequenceCache, absorb_query, mla_layer_forward, unpack_fp8_row,
};
use ascend_npu::{DeviceSlice, Stream};
use half::bf16;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::paged::{bf16_exact, device, reference};
use crate::check::{self, BF16, Outcome};
use crate::conformance::{Family, Run};
use crate::rng::CaseRng;

/// `MlaAttention` on both paths.
pub const ATTENTION: Family = Family {
    name: "mla-attention",
    summary: "MlaAttention from hidden states (prolog, cache write, attention, W_UV): the vendor \
              path where the shape fits, our kernels elsewhere and over an FP8 cache, vs f64",
    kernels: true,
    aclnn: &[
        "aclnnMlaPrologV3WeightNz",
        "aclnnFusedInferAttentionScoreV3",
    ],
    run: attention,
};

/// `MlaLayer` from a safetensors checkpoint.
pub const LAYER: Family = Family {
    name: "mla-layer",
    summary: "MlaLayer from a safetensors checkpoint (prolog → cache write → attention → o_proj), \
              bf16 and FP8 weights, vs the f64 layer",
    kernels: true,
    aclnn: &[
        "aclnnMlaPrologV3WeightNz",
        "aclnnFusedInferAttentionScoreV3",
    ],
    run: layer,
};

/// Unit roundoff of E4M3 (4 significand bits).
const E4M3_U: f64 = 0.0625;

/// One decode step: the sequences it runs, their lengths after it, the new tokens of each.
struct Step {
    seqs: Vec<usize>,
    lens: Vec<usize>,
    s_q: usize,
}

/// The steps for blocks of `block_size` tokens (see the module docs); final lengths 6 and
/// `block_size + 4`.
fn steps(block_size: usize) -> Vec<Step> {
    let step = |seqs: &[usize], lens: &[usize], s_q| Step {
        seqs: seqs.to_vec(),
        lens: lens.to_vec(),
        s_q,
    };
    let mut steps = vec![step(&[0, 1], &[3, 3], 3)];
    let mut len = 3;
    while len < block_size + 1 {
        let s_q = (block_size + 1 - len).min(14);
        len += s_q;
        steps.push(step(&[1], &[len], s_q));
    }
    steps.push(step(&[0, 1], &[4, block_size + 2], 1));
    steps.push(step(&[0, 1], &[6, block_size + 4], 2));
    steps
}

/// A model of `[hidden, heads, block_size]` with DeepSeek-V3's other widths, random weights and
/// two sequences' hidden states.
struct Model {
    cfg: MlaConfig,
    block_size: usize,
    /// `(name, [rows, cols], bf16-exact values)` in DeepSeek's names, `o_proj` included.
    tensors: Vec<(&'static str, [usize; 2], Vec<f64>)>,
    /// Each sequence's `[len, hidden]` hidden states, bf16-exact.
    x: Vec<Vec<f64>>,
    steps: Vec<Step>,
    /// Block ids of each sequence (dealt in reverse), `max_blocks` wide.
    tables: Vec<Vec<i32>>,
    max_blocks: usize,
    blocks: usize,
}

impl Model {
    fn new(rng: &mut CaseRng, [hidden, heads, block_size]: [usize; 3]) -> Result<Model, String> {
        if heads == 0 || block_size < 3 || hidden == 0 {
            return Err(format!(
                "hidden {hidden}, {heads} heads, blocks of {block_size}; expected at least one \
                 head and blocks of at least 3 tokens"
            ));
        }
        let cfg = MlaConfig {
            hidden_size: hidden,
            ..MlaConfig::deepseek_v3().with_heads(heads)
        };
        let q_lora = cfg.q_lora_rank.unwrap_or(cfg.hidden_size);
        let (h, lat) = (heads, cfg.kv_lora_rank);
        // Projections scaled by 1/√fan_in keep every activation of order one; norms near 1.
        let mut tensors = Vec::new();
        let mut add = |name, [rows, cols]: [usize; 2]| {
            let v = bf16_exact(rng, rows * cols, 1.0 / (cols as f64).sqrt());
            tensors.push((name, [rows, cols], v));
        };
        add("q_a_proj.weight", [q_lora, hidden]);
        add("q_b_proj.weight", [h * cfg.qk_head_dim(), q_lora]);
        add("kv_a_proj_with_mqa.weight", [cfg.cache_row(), hidden]);
        add(
            "kv_b_proj.weight",
            [h * (cfg.qk_nope_head_dim + cfg.v_head_dim), lat],
        );
        add("o_proj.weight", [hidden, h * cfg.v_head_dim]);
        for (name, n) in [
            ("q_a_layernorm.weight", q_lora),
            ("kv_a_layernorm.weight", lat),
        ] {
            let v: Vec<f64> = bf16_exact(rng, n, 0.25).iter().map(|g| 1.0 + g).collect();
            tensors.push((name, [1, n], check::widen(&check::round_to::<bf16>(&v))));
        }
        let lens = [6, block_size + 4];
        let x = lens
            .iter()
            .map(|&l| bf16_exact(rng, l * hidden, 1.0))
            .collect();
        let max_blocks = (block_size + 4).div_ceil(block_size);
        let used = [6usize.div_ceil(block_size), max_blocks];
        let blocks = used.iter().sum::<usize>() + 1;
        // Blocks dealt from the top down, block 0 nobody's; -1 in unused entries.
        let mut next = blocks;
        let tables = used
            .iter()
            .map(|&n| {
                (0..max_blocks)
                    .map(|j| {
                        if j < n {
                            next -= 1;
                            next as i32
                        } else {
                            -1
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(Model {
            cfg,
            block_size,
            tensors,
            x,
            steps: steps(block_size),
            tables,
            max_blocks,
            blocks,
        })
    }

    fn get(&self, name: &str) -> &[f64] {
        self.tensors
            .iter()
            .find(|t| t.0 == name)
            .map_or(&[], |t| &t.2)
    }

    fn bf16(&self, name: &str) -> Vec<bf16> {
        check::round_to(self.get(name))
    }

    /// The reference's weights, from `values(name)` (the bf16 ones, or FP8-dequantized).
    fn weights(&self, mut values: impl FnMut(&str) -> Vec<f64>) -> MlaWeights {
        MlaWeights {
            query: QueryWeights::LowRank {
                q_a_proj: values("q_a_proj.weight"),
                q_a_layernorm: values("q_a_layernorm.weight"),
                q_b_proj: values("q_b_proj.weight"),
            },
            kv_a_proj_with_mqa: values("kv_a_proj_with_mqa.weight"),
            kv_a_layernorm: values("kv_a_layernorm.weight"),
            kv_b_proj: values("kv_b_proj.weight"),
            o_proj: values("o_proj.weight"),
        }
    }

    fn spec(&self, fp8: bool) -> MlaCacheSpec {
        MlaCacheSpec {
            blocks: self.blocks,
            block_size: self.block_size,
            fp8,
            max_positions: self.block_size + 8,
        }
    }

    /// The hidden states of a step, sequence after sequence.
    fn step_x(&self, step: &Step) -> Vec<bf16> {
        let he = self.cfg.hidden_size;
        step.seqs
            .iter()
            .zip(&step.lens)
            .flat_map(|(&b, &len)| check::round_to(&self.x[b][(len - step.s_q) * he..len * he]))
            .collect()
    }

    fn table(
        &self,
        stream: &Stream,
        cache: &LatentCache,
        step: &Step,
    ) -> Result<BlockTable, String> {
        let table: Vec<i32> = step
            .seqs
            .iter()
            .flat_map(|&b| self.tables[b].clone())
            .collect();
        let spec = BlockTableSpec {
            table: &table,
            max_blocks: self.max_blocks,
            seq_lens: &step.lens,
        };
        BlockTable::new(stream, cache.layout(), spec).map_err(device)
    }
}

/// A new cache with every byte set (NaN in bf16 rows, E4M3 codes and f32 scales), so a row
/// read before it is written shows.
fn nan_filled(cache: ascend_npu::Result<LatentCache>) -> Result<LatentCache, String> {
    let mut cache = cache.map_err(device)?;
    let bytes = cache.data().len();
    cache
        .data_mut()
        .copy_from_host(&vec![0xFFu8; bytes])
        .map_err(device)?;
    Ok(cache)
}

fn attention(run: &mut Run<'_>) {
    for shape in run.preset.mla_attention.clone() {
        let [hidden, heads, block_size] = shape;
        let name = format!("H={hidden} heads={heads} block={block_size}");
        let model = Model::new(&mut run.rng(&name), shape);
        // The reference prolog of each whole sequence, shared by both caches (a token's prolog
        // depends on it and its position only).
        let prologs = model.as_ref().map_err(Clone::clone).and_then(|m| {
            let w = m.weights(|n| m.get(n).to_vec());
            (0..m.x.len())
                .map(|b| {
                    let positions: Vec<usize> = (0..m.x[b].len() / hidden).collect();
                    reference_mla::prolog(&m.cfg, &w, &m.x[b], &positions).map_err(reference)
                })
                .collect::<Result<Vec<_>, _>>()
        });
        for fp8 in [false, true] {
            // The case's name says which path ran, so it is known only once the attention is
            // built; an error before then names the cache.
            let format = if fp8 { "fp8" } else { "bf16" };
            let mut label = format!("{format} {name}");
            let mut outcomes = Vec::new();
            let result = (|| -> Result<(), String> {
                let (m, prologs) = (model.as_ref()?, prologs.as_ref()?);
                let stream = &run.session.stream;
                let ck = m.bf16_checkpoint();
                let att =
                    MlaAttention::new(stream, &m.cfg, &ck.view(), m.spec(fp8)).map_err(device)?;
                label = format!("{} {label}", path_name(att.path()));
                outcomes = attention_case(run, m, &att, prologs, &label)?;
                Ok(())
            })();
            let op = "mla-attention";
            match result {
                Ok(()) => run.cases(op, &label, |_, _, _| Ok(outcomes)),
                Err(e) => run.cases(op, &label, |_, _, _| Err(e)),
            }
        }
    }
}

fn path_name(path: &MlaPath) -> &'static str {
    match path {
        MlaPath::Vendor => "vendor",
        MlaPath::Kernels { .. } => "kernels",
    }
}

/// The checkpoint's bf16 tensors, kept for [`PrologCheckpoint`]'s borrows.
struct Bf16Checkpoint(Vec<Vec<bf16>>);

impl Bf16Checkpoint {
    fn view(&self) -> PrologCheckpoint<'_> {
        PrologCheckpoint {
            q_a_proj: &self.0[0],
            q_a_layernorm: &self.0[1],
            q_b_proj: &self.0[2],
            kv_a_proj_with_mqa: &self.0[3],
            kv_a_layernorm: &self.0[4],
            kv_b_proj: &self.0[5],
        }
    }
}

impl Model {
    fn bf16_checkpoint(&self) -> Bf16Checkpoint {
        Bf16Checkpoint(
            [
                "q_a_proj.weight",
                "q_a_layernorm.weight",
                "q_b_proj.weight",
                "kv_a_proj_with_mqa.weight",
                "kv_a_layernorm.weight",
                "kv_b_proj.weight",
            ]
            .iter()
            .map(|n| self.bf16(n))
            .collect(),
        )
    }
}

/// BF16 roundings between the checkpoint and a score on the longer path (our kernels'): the
/// query's c_Q, its RMS, the normed c_Q, q_nope / q_pe, q̃ (5); the key's projection, its
/// RMS, the normed latent or rotated key (3); one for the f32 sums and cos/sin. A score moves
/// by at most this many 2^-8 times scale·Σ|q̃_i k_i| (the worst case, used for the LSE).
const ATTENTION_ROUNDINGS: f64 = 9.0;

/// Runs the steps through `att` in a NaN-filled cache and compares each with the reference
/// over the rows the cache holds (the prolog's rows for bf16; for FP8 the rows the device
/// wrote, dequantized, which are themselves checked against the prolog's).
fn attention_case(
    run: &Run<'_>,
    m: &Model,
    att: &MlaAttention,
    prologs: &[reference_mla::Prolog],
    case: &str,
) -> Result<Vec<Outcome>, String> {
    let stream = &run.session.stream;
    let kernels = run.kernels()?;
    let cfg = &m.cfg;
    let mut cache = nan_filled(att.new_cache(stream))?;
    let mut got = Vec::new();
    for step in &m.steps {
        let table = m.table(stream, &cache, step)?;
        let x = stream.upload(&m.step_x(step)).map_err(device)?;
        let r = att
            .decode(
                kernels,
                stream,
                MlaStep {
                    x: &x,
                    s_q: step.s_q,
                    cache: &mut cache,
                    table: &table,
                },
            )
            .map_err(device)?;
        let out = check::widen(&r.out.to_vec().map_err(device)?);
        let lse: Vec<f64> = r
            .lse
            .to_vec()
            .map_err(device)?
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        got.push((out, lse));
    }
    let row = cfg.cache_row();
    let fp8 = cache.layout().format == CacheFormat::Fp8;
    let mut outcomes = Vec::new();
    // The rows each sequence attends to.
    let keys: Vec<Vec<f64>> = if fp8 {
        let bytes = cache.data().to_vec().map_err(device)?;
        let rb = cache.layout().row_bytes();
        let keys: Vec<Vec<f64>> = (0..m.x.len())
            .map(|b| {
                let len = prologs[b].cache_rows.len() / row;
                (0..len)
                    .map(|t| {
                        let slot = m.tables[b][t / m.block_size] as usize * m.block_size
                            + t % m.block_size;
                        unpack_fp8_row(cfg, &bytes[slot * rb..][..rb]).map_err(reference)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|rows| rows.concat())
            })
            .collect::<Result<_, _>>()?;
        outcomes.extend(fp8_rows(case, cfg, &keys, prologs));
        keys
    } else {
        prologs.iter().map(|p| p.cache_rows.clone()).collect()
    };
    let got_out: Vec<f64> = got.iter().flat_map(|g| g.0.clone()).collect();
    let got_lse: Vec<f64> = got.iter().flat_map(|g| g.1.clone()).collect();
    let want = Expected::of(m, prologs, &keys, Mask::Causal)?;
    let op = "mla-attention";
    // Twelve roundings on the longest path (the nine above, the value's, ō's and the
    // output's), independent: 2·√12/√3·2^-8 = 4·2^-8. Over an FP8 cache the key side's
    // roundings drop out (the reference reads the dequantized rows the kernel reads).
    outcomes.push(check::rel_l2(
        op,
        case,
        &got_out,
        &want.out,
        4.0 * BF16.u,
        "12 bf16 roundings (prolog, q̃, ō, out), independent: 2·√12/√3·2^-8",
    ));
    outcomes.push(check::within(
        op,
        &format!("{case} lse"),
        &got_lse,
        &want.lse,
        |i| want.lse_tol[i],
        "9 bf16 roundings on a score: 9·2^-8·scale·Σ|q̃k|, worst case",
    ));
    Ok(outcomes)
}

/// The reference of every step, in the device's order: `out [batch, s_q, H, v]` and
/// `lse [batch, H, s_q]` per step, with each LSE's worst-case bound.
struct Expected {
    out: Vec<f64>,
    lse: Vec<f64>,
    lse_tol: Vec<f64>,
}

impl Expected {
    /// The absorbed attention of the prolog's queries over `keys` (each sequence's rows)
    /// under `mask`, step by step.
    fn of(
        m: &Model,
        prologs: &[reference_mla::Prolog],
        keys: &[Vec<f64>],
        mask: Mask,
    ) -> Result<Expected, String> {
        let cfg = &m.cfg;
        let w_kv_b = m.get("kv_b_proj.weight");
        let scale = f64::from(cfg.softmax_scale() as f32);
        let (h, dn, dr, row) = (
            cfg.num_heads,
            cfg.qk_nope_head_dim,
            cfg.qk_rope_head_dim,
            cfg.cache_row(),
        );
        let mut want = Expected {
            out: Vec::new(),
            lse: Vec::new(),
            lse_tol: Vec::new(),
        };
        for step in &m.steps {
            for (&b, &len) in step.seqs.iter().zip(&step.lens) {
                let p = &prologs[b].query;
                let from = len - step.s_q;
                let q = MlaQuery {
                    tokens: step.s_q,
                    heads: h,
                    q_nope: p.q_nope[from * h * dn..len * h * dn].to_vec(),
                    q_pe: p.q_pe[from * h * dr..len * h * dr].to_vec(),
                };
                let att = LatentAttention {
                    cfg,
                    kv_b_proj: w_kv_b,
                    mask,
                    scale,
                };
                let rows = &keys[b][..len * row];
                let r = att.absorbed(&q, rows).map_err(reference)?;
                want.out.extend(r.out);
                let q_abs = absorb_query(cfg, w_kv_b, &q).map_err(reference)?;
                let mut bound = 0f64;
                for qh in q_abs.chunks(row) {
                    for k in rows.chunks(row) {
                        let s: f64 = qh.iter().zip(k).map(|(a, b)| (a * b).abs()).sum();
                        bound = bound.max(ATTENTION_ROUNDINGS * BF16.u * scale * s);
                    }
                }
                for x in r.lse {
                    want.lse_tol.push(if x.is_infinite() { 0.0 } else { bound });
                    want.lse.push(x);
                }
            }
        }
        Ok(want)
    }
}

/// The FP8 rows the device wrote against the reference's cache rows: E4M3 keeps 4
/// significand bits (2^-4 relative, nearest even) with power-of-two scales (exact), and the
/// tile's subnormals add < 6e-5 of its norm; the bf16 row the device quantizes carries the
/// key side's 3 roundings (2^-8 each): latent rel L2 ≤ 2^-4·1.01 + 3·2^-8·1.07. The rope
/// key stays bf16 (projection, rotation, output: 3·2^-8).
fn fp8_rows(
    case: &str,
    cfg: &MlaConfig,
    keys: &[Vec<f64>],
    prologs: &[reference_mla::Prolog],
) -> Vec<Outcome> {
    let (lat, row) = (cfg.kv_lora_rank, cfg.cache_row());
    let split = |rows: &[f64], latent: bool| -> Vec<f64> {
        rows.chunks(row)
            .flat_map(|r| if latent { &r[..lat] } else { &r[lat..] })
            .copied()
            .collect()
    };
    let all = |f: &dyn Fn(usize) -> Vec<f64>| (0..keys.len()).flat_map(f).collect::<Vec<_>>();
    let op = "mla-attention";
    vec![
        check::rel_l2(
            op,
            &format!("{case} cache latent"),
            &all(&|b| split(&keys[b], true)),
            &all(&|b| split(&prologs[b].cache_rows, true)),
            E4M3_U * 1.01 + 3.0 * BF16.u * 1.07,
            "E4M3 codes 2^-4 (power-of-two scales) + 3 bf16 roundings on the key",
        ),
        check::rel_l2(
            op,
            &format!("{case} cache rope"),
            &all(&|b| split(&keys[b], false)),
            &all(&|b| split(&prologs[b].cache_rows, false)),
            3.0 * BF16.u,
            "bf16 rope key: 3 roundings (projection, rotation, output)",
        ),
    ]
}

fn layer(run: &mut Run<'_>) {
    for shape in run.preset.mla_layer.clone() {
        let [hidden, heads, block_size] = shape;
        let name = format!("H={hidden} heads={heads} block={block_size}");
        let model = Model::new(&mut run.rng(&name), shape);
        for fp8 in [false, true] {
            let weights = if fp8 { "fp8" } else { "bf16" };
            let mut label = format!("{weights} weights {name}");
            let mut outcomes = Vec::new();
            let result = (|| -> Result<(), String> {
                let m = model.as_ref()?;
                let (bytes, w) = m.safetensors(fp8)?;
                let stream = &run.session.stream;
                let layer =
                    MlaLayer::from_safetensors(stream, &bytes, PREFIX, &m.cfg, m.spec(false))
                        .map_err(device)?;
                label = format!("{} {label}", path_name(layer.attention().path()));
                outcomes = vec![layer_case(run, m, &layer, &w, fp8, &label)?];
                Ok(())
            })();
            let op = "mla-layer";
            match result {
                Ok(()) => run.cases(op, &label, |_, _, _| Ok(outcomes)),
                Err(e) => run.cases(op, &label, |_, _, _| Err(e)),
            }
        }
    }
}

const PREFIX: &str = "model.layers.0.self_attn";

impl Model {
    /// The checkpoint as a safetensors file (every projection FP8 with 128×128
    /// `weight_scale_inv` blocks when `fp8`, the norms bf16, as DeepSeek-V3 ships them), and
    /// the reference's weights: the values it holds (dequantized when FP8).
    fn safetensors(&self, fp8: bool) -> Result<(Vec<u8>, MlaWeights), String> {
        let mut encoded: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = Vec::new();
        let mut values = Vec::new();
        for (name, [rows, cols], v) in &self.tensors {
            let full = format!("{PREFIX}.{name}");
            if fp8 && !name.contains("layernorm") {
                let w: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                let q = quantize_weight(&w, *rows, *cols, ScaleFormat::Fp32)
                    .map_err(|e| e.to_string())?;
                let codes = q.codes().iter().map(|c| c.to_bits()).collect();
                let (sn, sk) = q.scale_shape();
                let scales = q.scales().iter().flat_map(|s| s.to_le_bytes()).collect();
                encoded.push((full.clone(), vec![*rows, *cols], codes, Dtype::F8_E4M3));
                encoded.push((
                    format!("{full}_scale_inv"),
                    vec![sn, sk],
                    scales,
                    Dtype::F32,
                ));
                values.push((
                    name.to_string(),
                    q.dequantize().iter().map(|&x| f64::from(x)).collect(),
                ));
            } else {
                let shape = if name.contains("layernorm") {
                    vec![*cols]
                } else {
                    vec![*rows, *cols]
                };
                let bytes = v
                    .iter()
                    .flat_map(|&x| bf16::from_f64(x).to_le_bytes())
                    .collect();
                encoded.push((full, shape, bytes, Dtype::BF16));
                values.push((name.to_string(), v.clone()));
            }
        }
        let views = encoded
            .iter()
            .map(|(name, shape, bytes, dtype)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| format!("writing {name}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = safetensors::serialize(views, &None).map_err(|e| e.to_string())?;
        // Each tensor's values move into the weights (DeepSeek-V3's are ~1.5 GB in f64).
        let w = self.weights(|n| {
            values
                .iter()
                .position(|v: &(String, Vec<f64>)| v.0 == n)
                .map_or_else(Vec::new, |i| values.swap_remove(i).1)
        });
        Ok((bytes, w))
    }
}

/// Runs the steps through the layer and the f64 layer beside it (each sequence's reference
/// cache grows step by step); the relative L2 error over every step's output.
fn layer_case(
    run: &Run<'_>,
    m: &Model,
    layer: &MlaLayer,
    w: &MlaWeights,
    fp8: bool,
    case: &str,
) -> Result<Outcome, String> {
    let stream = &run.session.stream;
    let kernels = run.kernels()?;
    let cfg = &m.cfg;
    let mut cache = nan_filled(layer.new_cache(stream))?;
    let mut refs: Vec<SequenceCache> = m.x.iter().map(|_| SequenceCache::default()).collect();
    let he = cfg.hidden_size;
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for step in &m.steps {
        let table = m.table(stream, &cache, step)?;
        let x = stream.upload(&m.step_x(step)).map_err(device)?;
        let y = layer
            .forward(
                kernels,
                stream,
                MlaStep {
                    x: &x,
                    s_q: step.s_q,
                    cache: &mut cache,
                    table: &table,
                },
            )
            .map_err(device)?;
        got.extend(check::widen(&y.to_vec().map_err(device)?));
        for (&b, &len) in step.seqs.iter().zip(&step.lens) {
            let xb = &m.x[b][(len - step.s_q) * he..len * he];
            want.extend(
                mla_layer_forward(cfg, w, xb, &mut refs[b], AttentionForm::Absorbed)
                    .map_err(reference)?,
            );
        }
    }
    // The attention's 12 bf16 roundings (see `attention_case`) with o_proj's bf16 output:
    // R = 13, 2·√13/√3·2^-8 = 4.2·2^-8. FP8 weights on the FP8 GEMM (code × scale exact in
    // f32) add nothing of order 2^-8; where a path dequantizes the four attention projections
    // to bf16 at load (the vendor prolog takes bf16), each adds one rounding: R = 17,
    // 4.8·2^-8, bounds both.
    let roundings: f64 = if fp8 { 17.0 } else { 13.0 };
    Ok(check::rel_l2(
        "mla-layer",
        case,
        &got,
        &want,
        2.0 * (roundings / 3.0).sqrt() * BF16.u,
        &format!("{roundings} bf16 roundings, independent: 2·√{roundings}/√3·2^-8"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;

    /// The attention's relative L2 row tells a wrong mask apart: the causal reference against
    /// the same queries over every key (no mask) is beyond the 4·2^-8 tolerance.
    #[test]
    fn the_attention_tolerance_fails_a_missing_causal_mask() {
        let m = Model::new(&mut CaseRng::new(3, "attention"), [1024, 2, 4]).unwrap();
        let w = m.weights(|n| m.get(n).to_vec());
        let prologs: Vec<_> =
            m.x.iter()
                .map(|x| {
                    let positions: Vec<usize> = (0..x.len() / 1024).collect();
                    reference_mla::prolog(&m.cfg, &w, x, &positions).unwrap()
                })
                .collect();
        let keys: Vec<Vec<f64>> = prologs.iter().map(|p| p.cache_rows.clone()).collect();
        let right = Expected::of(&m, &prologs, &keys, Mask::Causal).unwrap();
        let wrong = Expected::of(&m, &prologs, &keys, Mask::None).unwrap();
        let o = check::rel_l2("o", "c", &wrong.out, &right.out, 4.0 * BF16.u, "s");
        assert_eq!(o.verdict, Verdict::Fail, "{o:?}");
        // Rounding the right output to bf16 passes.
        let rounded = check::widen(&check::round_to::<bf16>(&right.out));
        let o = check::rel_l2("o", "c", &rounded, &right.out, 4.0 * BF16.u, "s");
        assert_eq!(o.verdict, Verdict::Pass, "{o:?}");
    }

    #[test]
    fn steps_take_at_most_14_new_tokens_and_end_past_a_block() {
        for block in [3, 16, 128] {
            let s = steps(block);
            assert!(s.iter().all(|st| (1..=14).contains(&st.s_q)));
            assert_eq!(s.last().unwrap().lens, [6, block + 4]);
            // Lengths grow by s_q each step for every sequence in it.
            let mut len = [0usize; 2];
            for st in &s {
                for (&b, &l) in st.seqs.iter().zip(&st.lens) {
                    assert_eq!(l, len[b] + st.s_q, "block {block}");
                    len[b] = l;
                }
            }
        }
    }
}
