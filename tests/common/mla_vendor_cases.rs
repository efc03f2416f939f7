//! The MLA vendor operators (`aclnnMlaPrologV3WeightNz`) against the f64 reference
//! (`reference::mla`): the cases of `mla_vendor_sim.rs` and of its hardware twins
//! `mla_vendor_hardware.rs`. The op's limits force DeepSeek's widths, so the cases use the
//! smallest documented hidden size (1024) and few tokens.

use super::Rng;
use ascend_npu::Stream;
use ascend_npu::aclnn::{
    self, AclTensor, AclTensorList, CacheMode, InputLayout, MlaDecodeAttrs, MlaDecodeTensors,
    MlaPrologAttrs, MlaPrologTensors, PrologShape, SparseMode,
};
use ascend_npu::ops::mla::MlaStep;
use ascend_npu::reference::mla::{self, MlaConfig, MlaWeights, QueryWeights, Rope};
use half::bf16;

pub(crate) fn stream() -> Stream {
    super::moe::stream()
}

/// DeepSeek-V3's attention with hidden 1024 and `heads` heads: the smallest shape the op takes.
fn config(heads: usize) -> MlaConfig {
    MlaConfig {
        hidden_size: 1024,
        ..MlaConfig::deepseek_v3().with_heads(heads)
    }
}

fn shape(cfg: &MlaConfig) -> PrologShape {
    PrologShape {
        hidden: cfg.hidden_size,
        heads: cfg.num_heads,
        q_lora: cfg.q_lora_rank.unwrap_or(0),
        kv_lora: cfg.kv_lora_rank,
        nope: cfg.qk_nope_head_dim,
        rope: cfg.qk_rope_head_dim,
        v: cfg.v_head_dim,
    }
}

/// `len` BF16 values uniform in ±`scale`, and the same values in f64.
pub(crate) fn bf16_vec(rng: &mut Rng, len: usize, scale: f32) -> (Vec<bf16>, Vec<f64>) {
    let v: Vec<bf16> = (0..len)
        .map(|_| bf16::from_f32(rng.f32() * scale))
        .collect();
    let f = v.iter().map(|x| x.to_f64()).collect();
    (v, f)
}

/// Checkpoint weights in BF16 (and their f64 values for the reference); scales keep every
/// projection's output of order 1 (`1/√fan_in`), norms' weights near 1.
pub(crate) struct Weights {
    pub q_a: Vec<bf16>,
    pub q_b: Vec<bf16>,
    pub kv_a: Vec<bf16>,
    pub kv_b: Vec<bf16>,
    pub q_norm: Vec<bf16>,
    pub kv_norm: Vec<bf16>,
    pub reference: MlaWeights,
}

pub(crate) fn weights(cfg: &MlaConfig, rng: &mut Rng) -> Weights {
    let (he, h, ql) = (cfg.hidden_size, cfg.num_heads, cfg.q_lora_rank.unwrap());
    let inv = |n: usize| 1.0 / (n as f32).sqrt();
    let (q_a, q_a_f) = bf16_vec(rng, ql * he, inv(he));
    let (q_b, q_b_f) = bf16_vec(rng, h * cfg.qk_head_dim() * ql, inv(ql));
    let (kv_a, kv_a_f) = bf16_vec(rng, cfg.cache_row() * he, inv(he));
    let rows = h * (cfg.qk_nope_head_dim + cfg.v_head_dim);
    let (kv_b, kv_b_f) = bf16_vec(rng, rows * cfg.kv_lora_rank, inv(cfg.kv_lora_rank));
    let near_one = |rng: &mut Rng, n: usize| -> (Vec<bf16>, Vec<f64>) {
        let v: Vec<bf16> = (0..n)
            .map(|_| bf16::from_f32(1.0 + 0.25 * rng.f32()))
            .collect();
        let f = v.iter().map(|x| x.to_f64()).collect();
        (v, f)
    };
    let (q_norm, q_norm_f) = near_one(rng, ql);
    let (kv_norm, kv_norm_f) = near_one(rng, cfg.kv_lora_rank);
    let reference = MlaWeights {
        query: QueryWeights::LowRank {
            q_a_proj: q_a_f,
            q_a_layernorm: q_norm_f,
            q_b_proj: q_b_f,
        },
        kv_a_proj_with_mqa: kv_a_f,
        kv_a_layernorm: kv_norm_f,
        kv_b_proj: kv_b_f,
        o_proj: vec![0.0; cfg.hidden_size * h * cfg.v_head_dim],
    };
    Weights {
        q_a,
        q_b,
        kv_a,
        kv_b,
        q_norm,
        kv_norm,
        reference,
    }
}

/// The op's RoPE output order: each rotated vector's even elements, then its odd ones.
fn evens_then_odds(x: &[f64]) -> Vec<f64> {
    x.iter()
        .step_by(2)
        .chain(x.iter().skip(1).step_by(2))
        .copied()
        .collect()
}

/// `‖got − want‖ / ‖want‖`.
pub(crate) fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den).sqrt()
}

pub(crate) fn to_f64(v: &[bf16]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// The device outputs of one prolog call.
struct PrologRun {
    query: Vec<f64>,
    query_rope: Vec<f64>,
    kv_cache: Vec<f64>,
    kr_cache: Vec<f64>,
}

/// Runs the prolog on `x` (`[T, He]`) for tokens at `positions`, writing cache rows `slots`
/// of a NaN-filled cache of `blocks` blocks of `block_size`.
#[allow(clippy::too_many_arguments)]
fn run_prolog(
    stream: &Stream,
    cfg: &MlaConfig,
    w: &Weights,
    x: &[bf16],
    positions: &[usize],
    slots: &[i64],
    blocks: usize,
    block_size: usize,
) -> ascend_npu::Result<PrologRun> {
    let s = shape(cfg);
    let t = positions.len();
    let packed = aclnn::pack_prolog_weights(s, &w.q_a, &w.q_b, &w.kv_a, &w.kv_b)?;
    let rope = Rope::new(cfg);
    let (cos, sin) = aclnn::prolog_rope_tables(&rope.inv_freq, rope.amplitude, positions);
    let to_bf16 = |v: &[f64]| -> Vec<bf16> { v.iter().map(|&x| bf16::from_f64(x)).collect() };
    let up = |v: &[bf16]| stream.upload(v);
    let (dx, ddq, duqqr, duk, ddkvkr) = (
        up(x)?,
        up(&packed.weight_dq)?,
        up(&packed.weight_uq_qr)?,
        up(&packed.weight_uk)?,
        up(&packed.weight_dkv_kr)?,
    );
    let (dgq, dgkv, dcos, dsin) = (
        up(&w.q_norm)?,
        up(&w.kv_norm)?,
        up(&to_bf16(&cos))?,
        up(&to_bf16(&sin))?,
    );
    let dslots = stream.upload(slots)?;
    let nan = bf16::NAN;
    let mut dkv = stream.upload(&vec![nan; blocks * block_size * s.kv_lora])?;
    let mut dkr = stream.upload(&vec![nan; blocks * block_size * s.rope])?;
    let mut dq = stream.alloc_zeroed::<bf16>(t * s.heads * s.kv_lora)?;
    let mut dqr = stream.alloc_zeroed::<bf16>(t * s.heads * s.rope)?;
    {
        let token_x = AclTensor::new(&dx, &[t, s.hidden])?;
        let weight_dq = AclTensor::new_nz(&ddq, s.hidden, s.q_lora)?;
        let weight_uq_qr = AclTensor::new_nz(&duqqr, s.q_lora, s.heads * (s.nope + s.rope))?;
        let weight_uk = AclTensor::new(&duk, &[s.heads, s.nope, s.kv_lora])?;
        let weight_dkv_kr = AclTensor::new_nz(&ddkvkr, s.hidden, s.kv_lora + s.rope)?;
        let gamma_cq = AclTensor::new(&dgq, &[s.q_lora])?;
        let gamma_ckv = AclTensor::new(&dgkv, &[s.kv_lora])?;
        let rope_cos = AclTensor::new(&dcos, &[t, s.rope])?;
        let rope_sin = AclTensor::new(&dsin, &[t, s.rope])?;
        let cache_index = AclTensor::new(&dslots, &[t])?;
        let mut kv_cache = AclTensor::new_mut(&mut dkv, &[blocks, block_size, 1, s.kv_lora])?;
        let mut kr_cache = AclTensor::new_mut(&mut dkr, &[blocks, block_size, 1, s.rope])?;
        let mut query = AclTensor::new_mut(&mut dq, &[t, s.heads, s.kv_lora])?;
        let mut query_rope = AclTensor::new_mut(&mut dqr, &[t, s.heads, s.rope])?;
        aclnn::mla_prolog_v3(
            stream,
            MlaPrologTensors {
                token_x: &token_x,
                weight_dq: &weight_dq,
                weight_uq_qr: &weight_uq_qr,
                weight_uk: &weight_uk,
                weight_dkv_kr: &weight_dkv_kr,
                gamma_cq: &gamma_cq,
                gamma_ckv: &gamma_ckv,
                rope_sin: &rope_sin,
                rope_cos: &rope_cos,
                cache_index: &cache_index,
                kv_cache: &mut kv_cache,
                kr_cache: &mut kr_cache,
                query: &mut query,
                query_rope: &mut query_rope,
            },
            &MlaPrologAttrs {
                eps_cq: cfg.rms_norm_eps,
                eps_ckv: cfg.rms_norm_eps,
                cache_mode: CacheMode::PaBsnd,
                qc_qr_scale: 1.0,
                kc_scale: 1.0,
            },
        )?;
    }
    stream.synchronize()?;
    Ok(PrologRun {
        query: to_f64(&dq.to_vec()?),
        query_rope: to_f64(&dqr.to_vec()?),
        kv_cache: to_f64(&dkv.to_vec()?),
        kr_cache: to_f64(&dkr.to_vec()?),
    })
}

/// The prolog matches the reference for 3 tokens and 2 heads: the absorbed query, the rotated
/// query rope (in the op's `[evens, odds]` order), and the cache rows at shuffled slots; the
/// other (NaN) slots are untouched.
pub fn prolog_matches_the_reference() {
    let stream = stream();
    for heads in [2] {
        let cfg = config(heads);
        let mut rng = Rng::new(11 + heads as u64);
        let w = weights(&cfg, &mut rng);
        let positions = [0usize, 7, 4100];
        let (x, xf) = bf16_vec(&mut rng, positions.len() * cfg.hidden_size, 1.0);
        let (blocks, block_size) = (2, 16);
        let slots = [17i64, 3, 30];
        let got = run_prolog(
            &stream, &cfg, &w, &x, &positions, &slots, blocks, block_size,
        )
        .unwrap();
        let want = mla::prolog(&cfg, &w.reference, &xf, &positions).unwrap();
        let kv_b = &w.reference.kv_b_proj;
        let absorbed = mla::absorb_query(&cfg, kv_b, &want.query).unwrap();
        let (kvr, dr, h) = (cfg.kv_lora_rank, cfg.qk_rope_head_dim, cfg.num_heads);
        let want_q: Vec<f64> = absorbed
            .chunks(kvr + dr)
            .flat_map(|r| r[..kvr].to_vec())
            .collect();
        let want_qr: Vec<f64> = want
            .query
            .q_pe
            .chunks(dr)
            .flat_map(evens_then_odds)
            .collect();
        // Tolerances: inputs and weights are the same BF16 values on both sides; BF16's unit
        // roundoff is u = 2^-8 (8 significant bits). The device rounds c_Q and q_C to BF16
        // before the matmuls that take them (cube operands) and every output to BF16: three
        // roundings of relative u each bound the absorbed query's relative L2 error by 3u.
        // The query rope sees c_Q's rounding, the BF16 cos/sin (u on each product, √2·u on
        // the rotated vector's norm) and the output's: under 3u too.
        let u = 2f64.powi(-8);
        let bound = 3.0 * u;
        let e = rel_l2(&got.query, &want_q);
        assert!(e < bound, "{heads} heads: queryOut rel L2 {e}");
        let e = rel_l2(&got.query_rope, &want_qr);
        assert!(e < bound, "{heads} heads: queryRopeOut rel L2 {e}");
        assert_eq!(got.query.len(), positions.len() * h * kvr);
        for (t, &slot) in slots.iter().enumerate() {
            let row = &want.cache_rows[t * (kvr + dr)..][..kvr + dr];
            let got_kv = &got.kv_cache[slot as usize * kvr..][..kvr];
            // The latent is normalised in f64 and rounded once: each value within u.
            for (g, w) in got_kv.iter().zip(&row[..kvr]) {
                assert!((g - w).abs() <= u * w.abs(), "token {t}: {g} vs {w}");
            }
            let got_kr = &got.kr_cache[slot as usize * dr..][..dr];
            // The rope key: BF16 cos/sin (√2·u on the norm) and one output rounding.
            let e = rel_l2(got_kr, &evens_then_odds(&row[kvr..]));
            assert!(e < 3.0 * u, "token {t}: krCache rel L2 {e}");
        }
        let written: Vec<usize> = slots.iter().map(|&s| s as usize).collect();
        for slot in (0..blocks * block_size).filter(|s| !written.contains(s)) {
            assert!(got.kv_cache[slot * kvr..][..kvr].iter().all(|v| v.is_nan()));
            assert!(got.kr_cache[slot * dr..][..dr].iter().all(|v| v.is_nan()));
        }
    }
}

/// A NeoX (half-split) reading of the op's rope output does not match: the layout is the
/// interleaved rotation permuted to `[evens, odds]`, not `rotate_half` of the raw vector.
pub fn prolog_rope_is_not_neox() {
    let stream = stream();
    let cfg = config(1);
    let mut rng = Rng::new(5);
    let w = weights(&cfg, &mut rng);
    let positions = [3usize, 900];
    let (x, xf) = bf16_vec(&mut rng, positions.len() * cfg.hidden_size, 1.0);
    let got = run_prolog(&stream, &cfg, &w, &x, &positions, &[0, 1], 1, 16).unwrap();
    let want = mla::prolog(&cfg, &w.reference, &xf, &positions).unwrap();
    let dr = cfg.qk_rope_head_dim;
    // Rebuild the pre-rotation q_R from the reference by undoing the interleaved rotation,
    // then apply NeoX's rotate-half with the same angles.
    let rope = Rope::new(&cfg);
    let mut neox = Vec::new();
    for (t, q) in want.query.q_pe.chunks(dr).enumerate() {
        let mut raw = q.to_vec();
        let back = Rope {
            inv_freq: rope.inv_freq.iter().map(|f| -f).collect(),
            amplitude: 1.0 / rope.amplitude,
        };
        back.apply(&mut raw, positions[t]);
        let half = dr / 2;
        for j in 0..dr {
            let a = positions[t] as f64 * rope.inv_freq[j % half];
            let rot = if j < half {
                -raw[j + half]
            } else {
                raw[j - half]
            };
            neox.push(raw[j] * a.cos() + rot * a.sin());
        }
    }
    let e = rel_l2(&got.query_rope, &neox);
    assert!(e > 0.1, "the op's rope matches NeoX (rel L2 {e})");
}

/// A cache index outside the cache fails the launch's stream with the rule's id.
pub fn prolog_rejects_a_cache_index_out_of_range() {
    let stream = stream();
    let cfg = config(1);
    let mut rng = Rng::new(9);
    let w = weights(&cfg, &mut rng);
    let (x, _) = bf16_vec(&mut rng, cfg.hidden_size, 1.0);
    let err = run_prolog(&stream, &cfg, &w, &x, &[0], &[16], 1, 16)
        .err()
        .expect("slot 16 of a 16-row cache is refused");
    let text = err.to_string();
    assert!(
        text.contains("mla-prolog-v3.cache-index-range") || !cfg!(feature = "sim"),
        "{text}"
    );
}

/// A head count the op does not take (3) is refused in phase one with the rule's id.
pub fn prolog_rejects_three_heads() {
    let stream = stream();
    let cfg = config(3);
    let mut rng = Rng::new(10);
    let w = weights(&cfg, &mut rng);
    let (x, _) = bf16_vec(&mut rng, cfg.hidden_size, 1.0);
    let err = run_prolog(&stream, &cfg, &w, &x, &[0], &[0], 1, 16)
        .err()
        .expect("3 heads are refused");
    let text = err.to_string();
    assert!(
        text.contains("161002") || text.contains("mla-prolog-v3.heads"),
        "{text}"
    );
}

/// One MLA decode problem on a paged cache: host data and the reference's answer.
struct Decode {
    heads: usize,
    q_len: usize,
    block_size: usize,
    blocks: usize,
    lens: Vec<i64>,
    max_blocks: usize,
    table: Vec<i32>,
    latent: Vec<bf16>,
    rope: Vec<bf16>,
    q: Vec<bf16>,
    q_rope: Vec<bf16>,
    scale: f64,
}

const LATENT: usize = 512;
const ROPE: usize = 64;

impl Decode {
    /// Sequences of `lens` tokens in a cache of 16-token blocks, placed at shuffled blocks;
    /// unused slots hold NaN and unused table entries garbage (2147480000, FlashMLA's test
    /// value), which must never be read.
    fn new(rng: &mut Rng, heads: usize, q_len: usize, lens: &[i64]) -> Decode {
        let block_size = 16;
        let per_seq: Vec<usize> = lens
            .iter()
            .map(|&l| (l as usize).div_ceil(block_size))
            .collect();
        let max_blocks = per_seq.iter().copied().max().unwrap_or(0).max(1);
        let blocks = per_seq.iter().sum::<usize>() + 2;
        // A shuffled assignment of blocks to sequences.
        let mut ids: Vec<i32> = (0..blocks as i32).collect();
        for i in (1..ids.len()).rev() {
            ids.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let mut next = ids.into_iter();
        let mut table = vec![2_147_480_000i32; lens.len() * max_blocks];
        let mut latent = vec![bf16::NAN; blocks * block_size * LATENT];
        let mut rope = vec![bf16::NAN; blocks * block_size * ROPE];
        for (b, (&len, &n)) in lens.iter().zip(&per_seq).enumerate() {
            for col in 0..n {
                table[b * max_blocks + col] = next.next().unwrap();
            }
            for t in 0..len as usize {
                let row =
                    table[b * max_blocks + t / block_size] as usize * block_size + t % block_size;
                for v in &mut latent[row * LATENT..(row + 1) * LATENT] {
                    *v = bf16::from_f32(rng.f32());
                }
                for v in &mut rope[row * ROPE..(row + 1) * ROPE] {
                    *v = bf16::from_f32(rng.f32());
                }
            }
        }
        let per_q = lens.len() * q_len * heads;
        let (q, _) = bf16_vec(rng, per_q * LATENT, 1.0);
        let (q_rope, _) = bf16_vec(rng, per_q * ROPE, 1.0);
        Decode {
            heads,
            q_len,
            block_size,
            blocks,
            lens: lens.to_vec(),
            max_blocks,
            table,
            latent,
            rope,
            q,
            q_rope,
            scale: MlaConfig::deepseek_v3().softmax_scale(),
        }
    }

    /// The reference: per sequence, MQA of `[q; q_rope]` over its `[latent; rope]` rows
    /// (`[S, H, 512]` outputs and `[H, S]` LSEs, sequence after sequence), BSND order.
    fn reference(&self) -> (Vec<f64>, Vec<f64>) {
        let row = LATENT + ROPE;
        let mut cache = Vec::with_capacity(self.blocks * self.block_size * row);
        for (l, r) in self.latent.chunks(LATENT).zip(self.rope.chunks(ROPE)) {
            cache.extend(to_f64(l));
            cache.extend(to_f64(r));
        }
        let mut q = Vec::new();
        for (a, r) in self.q.chunks(LATENT).zip(self.q_rope.chunks(ROPE)) {
            q.extend(to_f64(a));
            q.extend(to_f64(r));
        }
        let mqa = mla::Mqa {
            heads: self.heads,
            d: row,
            dv: LATENT,
            mask: if self.q_len > 1 {
                mla::Mask::Causal
            } else {
                mla::Mask::None
            },
            scale: self.scale,
        };
        let lens: Vec<i32> = self.lens.iter().map(|&l| l as i32).collect();
        let paged = mla::PagedCache {
            data: &cache,
            block_size: self.block_size,
            row,
        };
        let tables = mla::BlockTable {
            table: &self.table,
            max_blocks: self.max_blocks,
            seq_lens: &lens,
        };
        let outs = mla::paged_mqa_decode(&mqa, &q, &paged, &tables).unwrap();
        let out = outs.iter().flat_map(|o| o.out.clone()).collect();
        let lse = outs.iter().flat_map(|o| o.lse.clone()).collect();
        (out, lse)
    }

    /// Runs the vendor op; returns `out` in BSND order and `lse` `[B, N, S]`.
    fn run(
        &self,
        stream: &Stream,
        layout: InputLayout,
    ) -> ascend_npu::Result<(Vec<f64>, Vec<f64>)> {
        let (b, s, n) = (self.lens.len(), self.q_len, self.heads);
        // BNSD inputs are the BSND data transposed.
        let to_layout = |v: &[bf16], d: usize| -> Vec<bf16> {
            match layout {
                InputLayout::Bsnd => v.to_vec(),
                InputLayout::Bnsd => (0..b * n * s)
                    .flat_map(|i| {
                        let (bi, ni, si) = (i / (n * s), (i / s) % n, i % s);
                        v[((bi * s + si) * n + ni) * d..][..d].to_vec()
                    })
                    .collect(),
            }
        };
        let dims = |d: usize| match layout {
            InputLayout::Bsnd => [b, s, n, d],
            InputLayout::Bnsd => [b, n, s, d],
        };
        let (dq, dqr) = (
            stream.upload(&to_layout(&self.q, LATENT))?,
            stream.upload(&to_layout(&self.q_rope, ROPE))?,
        );
        let (dlat, drope, dtable) = (
            stream.upload(&self.latent)?,
            stream.upload(&self.rope)?,
            stream.upload(&self.table)?,
        );
        let mask: Vec<u8> = (0..2048 * 2048)
            .map(|i| u8::from(i % 2048 > i / 2048))
            .collect();
        let dmask = stream.upload(&mask)?;
        let mut dout = stream.alloc_zeroed::<bf16>(b * s * n * LATENT)?;
        let mut dlse = stream.alloc_zeroed::<f32>(b * n * s)?;
        {
            let query = AclTensor::new(&dq, &dims(LATENT))?;
            let query_rope = AclTensor::new(&dqr, &dims(ROPE))?;
            let cache = [self.blocks, self.block_size, LATENT];
            let key = AclTensorList::new(vec![AclTensor::new(&dlat, &cache)?])?;
            let value = AclTensorList::new(vec![AclTensor::new(&dlat, &cache)?])?;
            let key_rope = AclTensor::new(&drope, &[self.blocks, self.block_size, ROPE])?;
            let block_table = AclTensor::new(&dtable, &[b, self.max_blocks])?;
            let atten_mask = AclTensor::new(&dmask, &[2048, 2048])?;
            let mut out = AclTensor::new_mut(&mut dout, &dims(LATENT))?;
            let mut lse = AclTensor::new_mut(&mut dlse, &[b, n, s, 1])?;
            aclnn::mla_decode_v3(
                stream,
                MlaDecodeTensors {
                    query: &query,
                    query_rope: &query_rope,
                    key,
                    value,
                    key_rope: &key_rope,
                    block_table: &block_table,
                    atten_mask: (s > 1).then_some(&atten_mask),
                    out: &mut out,
                    softmax_lse: Some(&mut lse),
                },
                &MlaDecodeAttrs {
                    heads: n,
                    scale: self.scale,
                    layout,
                    block_size: self.block_size,
                    kv_lens: &self.lens,
                    sparse: if s > 1 {
                        SparseMode::RightDownCausal
                    } else {
                        SparseMode::NoMask
                    },
                },
            )?;
        }
        stream.synchronize()?;
        let out = to_f64(&dout.to_vec()?);
        // Back to BSND order.
        let out = match layout {
            InputLayout::Bsnd => out,
            InputLayout::Bnsd => (0..b * s * n)
                .flat_map(|i| {
                    let (bi, si, ni) = (i / (s * n), (i / n) % s, i % n);
                    out[((bi * n + ni) * s + si) * LATENT..][..LATENT].to_vec()
                })
                .collect(),
        };
        let lse = dlse.to_vec()?.iter().map(|&x| f64::from(x)).collect();
        Ok((out, lse))
    }
}

/// MLA decode through the vendor op against the reference's paged MQA: shuffled block
/// tables, sequences of 0, 1 (or 2), 17 and 33 tokens in 16-token blocks, NaN in every unused
/// slot, garbage in unused table entries; one query token (BSND and BNSD) and two (causal).
pub fn decode_matches_the_reference() {
    let stream = stream();
    let mut rng = Rng::new(21);
    let cases = [
        (1, InputLayout::Bsnd, vec![0i64, 1, 17, 33]),
        (1, InputLayout::Bnsd, vec![0, 1, 17, 33]),
        (2, InputLayout::Bsnd, vec![0, 2, 17, 33]),
    ];
    for (q_len, layout, lens) in cases {
        let d = Decode::new(&mut rng, 2, q_len, &lens);
        let (out, lse) = d.run(&stream, layout).unwrap();
        let (want_out, want_lse) = d.reference();
        // Inputs are the same BF16 values on both sides. The device rounds each probability to
        // BF16 before it weights the values (relative u = 2^-8 on each weight, so at most u on
        // the convex combination) and the output once more: rel L2 below 2u.
        let u = 2f64.powi(-8);
        let e = rel_l2(&out, &want_out);
        assert!(e < 2.0 * u, "S {q_len}, {layout:?}: out rel L2 {e}");
        assert!(
            out.iter().all(|v| v.is_finite()),
            "NaN leaked from unused slots"
        );
        // The LSE is computed in f64 and stored as f32 (relative 2^-24); the reference's is
        // [H, S] per sequence, the device's [B, N, S]: the same order.
        for (i, (g, w)) in lse.iter().zip(&want_lse).enumerate() {
            if w.is_infinite() {
                assert!(g.is_infinite() && *g > 0.0, "lse[{i}] {g}, expected +inf");
            } else {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "lse[{i}] {g} vs {w}"
                );
            }
        }
        // The empty sequence's output is exactly 0.
        let per_seq = q_len * 2 * LATENT;
        assert!(out[..per_seq].iter().all(|&v| v == 0.0));
    }
}

/// A block id outside the cache, in a block a sequence uses, fails the launch's stream with
/// the rule's id.
pub fn decode_rejects_a_block_id_out_of_range() {
    let stream = stream();
    let mut rng = Rng::new(22);
    let mut d = Decode::new(&mut rng, 2, 1, &[5, 20]);
    d.table[d.max_blocks + 1] = d.blocks as i32;
    let err = d.run(&stream, InputLayout::Bsnd).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("fia-v3.block-table-range") || !cfg!(feature = "sim"),
        "{text}"
    );
}

/// The vendor path end to end (`ops::mla::vendor_prolog` then `vendor_attend`), against the
/// reference: two sequences written token by token into an AscendSplit cache of 16-token
/// blocks (the second over a block boundary), then one decode token each; the latent output
/// `ō` and the LSE match the reference's absorbed attention.
pub fn vendor_path_matches_the_reference() {
    use ascend_npu::ops::mla::{
        BlockTable, BlockTableSpec, CacheFormat, CacheLayout, DecodeParams, LatentCache,
        SlotMapping, VendorPrologWeights, vendor_attend, vendor_fit, vendor_prolog,
    };
    let stream = stream();
    let cfg = config(2);
    let mut rng = Rng::new(31);
    let w = weights(&cfg, &mut rng);
    let layout = CacheLayout::for_config(&cfg, 4, 16, CacheFormat::AscendSplit);
    vendor_fit(&cfg, &layout).unwrap();
    let vw = VendorPrologWeights::upload(&stream, &cfg, &checkpoint(&w)).unwrap();
    let mut cache = LatentCache::new(&stream, layout).unwrap();
    // Sequence 0 in block 2, sequence 1 in blocks 0 and 3; 3 and 18 tokens, then one more each.
    let lens = [4usize, 19];
    let table = [2i32, -1, 0, 3];
    let slot = |b: usize, t: usize| table[b * 2 + t / 16] as usize * 16 + t % 16;
    let he = cfg.hidden_size;
    let mut x_all = Vec::new();
    let mut pos_all = Vec::new();
    let mut slot_all = Vec::new();
    for (b, &len) in lens.iter().enumerate() {
        for t in 0..len {
            pos_all.push(t);
            slot_all.push(slot(b, t) as i32);
        }
        let (x, _) = bf16_vec(&mut rng, len * he, 1.0);
        x_all.push(x);
    }
    // Prefill: every token but each sequence's last, in one prolog call.
    let mut prefill_x = Vec::new();
    let (mut prefill_pos, mut prefill_slots) = (Vec::new(), Vec::new());
    let mut k = 0;
    for (b, &len) in lens.iter().enumerate() {
        prefill_x.extend_from_slice(&x_all[b][..(len - 1) * he]);
        prefill_pos.extend_from_slice(&pos_all[k..k + len - 1]);
        prefill_slots.extend_from_slice(&slot_all[k..k + len - 1]);
        k += len;
    }
    let dx = stream.upload(&prefill_x).unwrap();
    let slots = SlotMapping::new(&stream, &layout, &prefill_slots).unwrap();
    vendor_prolog(&stream, &vw, &dx, &prefill_pos, &slots, &mut cache).unwrap();
    // Decode: each sequence's last token.
    let mut dec_x = Vec::new();
    for (b, &len) in lens.iter().enumerate() {
        dec_x.extend_from_slice(&x_all[b][(len - 1) * he..]);
    }
    let dec_pos: Vec<usize> = lens.iter().map(|&l| l - 1).collect();
    let dec_slots: Vec<i32> = lens
        .iter()
        .enumerate()
        .map(|(b, &l)| slot(b, l - 1) as i32)
        .collect();
    let dx = stream.upload(&dec_x).unwrap();
    let slots = SlotMapping::new(&stream, &layout, &dec_slots).unwrap();
    let q = vendor_prolog(&stream, &vw, &dx, &dec_pos, &slots, &mut cache).unwrap();
    let bt = BlockTable::new(
        &stream,
        &layout,
        BlockTableSpec {
            table: &table,
            max_blocks: 2,
            seq_lens: &lens,
        },
    )
    .unwrap();
    let scale = cfg.softmax_scale();
    let params = DecodeParams {
        softmax_scale: scale as f32,
        causal: false,
    };
    let got = vendor_attend(&stream, &q, 1, &cache, &bt, params).unwrap();
    let (out, lse) = on_host(&got);
    // Reference: the absorbed attention of each sequence's last token over all its rows.
    let mut want_out = Vec::new();
    let mut want_lse = Vec::new();
    let mut bound = 0f64;
    for (b, &len) in lens.iter().enumerate() {
        let xf = to_f64(&x_all[b]);
        let positions: Vec<usize> = (0..len).collect();
        let p = mla::prolog(&cfg, &w.reference, &xf, &positions).unwrap();
        let mut last = p.query.clone();
        let (h, dn, dr) = (cfg.num_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim);
        last.tokens = 1;
        last.q_nope = p.query.q_nope[(len - 1) * h * dn..].to_vec();
        last.q_pe = p.query.q_pe[(len - 1) * h * dr..].to_vec();
        let q_abs = mla::absorb_query(&cfg, &w.reference.kv_b_proj, &last).unwrap();
        let mqa = mla::Mqa {
            heads: h,
            d: cfg.cache_row(),
            dv: cfg.kv_lora_rank,
            mask: mla::Mask::None,
            scale,
        };
        let r = mla::mqa_attention(&mqa, &q_abs, &p.cache_rows).unwrap();
        want_out.extend(r.out);
        want_lse.extend(r.lse);
        // Score error bound: the query carries 3 BF16 roundings (3u relative on each term's
        // factor), the cache row one (u): |δs| ≤ 4u · scale · Σ|q_i k_i|.
        let u = 2f64.powi(-8);
        for qh in q_abs.chunks(cfg.cache_row()) {
            for row in p.cache_rows.chunks(cfg.cache_row()) {
                let s: f64 = qh.iter().zip(row).map(|(a, b)| (a * b).abs()).sum();
                bound = bound.max(4.0 * u * scale * s);
            }
        }
    }
    // Each softmax weight is then off by at most a factor e^{±2·bound}; the values carry one
    // BF16 rounding (u), the weights another before the value product (u), the output one (u):
    // rel L2 ≤ (e^{2·bound} − 1) + 3u.
    let u = 2f64.powi(-8);
    let tol = (2.0 * bound).exp() - 1.0 + 3.0 * u;
    let e = rel_l2(&out, &want_out);
    assert!(e < tol, "vendor path out rel L2 {e} (bound {tol})");
    for (g, w) in lse.iter().zip(&want_lse) {
        // The LSE moves by at most the largest score error.
        assert!(
            (g - w).abs() <= bound + 1e-6 * w.abs(),
            "lse {g} vs {w} (bound {bound})"
        );
    }
}

/// The vendor path's own checks, each alone, are `InvalidArgument` before any op runs: the
/// prolog's cache (AscendSplit, of the config's widths) and its slot and `x` counts; the
/// decode's cache form, `s_q` in 1..=16, the causal mask above one query token, the token
/// count and the head count (a power of two up to 128).
pub fn vendor_path_refuses_bad_calls_with_clear_errors() {
    use super::mla_cases::assert_invalid;
    use ascend_npu::ops::mla::{
        BlockTable, BlockTableSpec, CacheFormat, CacheLayout, DecodeParams, LatentCache,
        SlotMapping, VendorPrologWeights, VendorQuery, vendor_attend, vendor_prolog,
    };
    let stream = stream();
    let cfg = config(2);
    let w = weights(&cfg, &mut Rng::new(33));
    let vw = VendorPrologWeights::upload(&stream, &cfg, &checkpoint(&w)).unwrap();
    let split = CacheLayout::for_config(&cfg, 4, 16, CacheFormat::AscendSplit);
    let he = cfg.hidden_size;
    let x = |tokens: usize| stream.upload(&vec![bf16::ONE; tokens * he]).unwrap();

    // The prolog: a bf16 cache, then an AscendSplit one of latent 256.
    for layout in [
        CacheLayout {
            format: CacheFormat::Bf16,
            ..split
        },
        CacheLayout {
            latent: 256,
            ..split
        },
    ] {
        let mut cache = LatentCache::new(&stream, layout).unwrap();
        let slots = SlotMapping::new(&stream, &layout, &[0, 1]).unwrap();
        assert_invalid(
            vendor_prolog(&stream, &vw, &x(2), &[0, 1], &slots, &mut cache),
            "for the vendor path",
        );
    }
    let mut cache = LatentCache::new(&stream, split).unwrap();
    let two = SlotMapping::new(&stream, &split, &[0, 1]).unwrap();
    let one = SlotMapping::new(&stream, &split, &[0]).unwrap();
    // One slot for two positions with x of two tokens; two slots with x of three tokens.
    for (slots, tokens) in [(&one, 2), (&two, 3)] {
        assert_invalid(
            vendor_prolog(&stream, &vw, &x(tokens), &[0, 1], slots, &mut cache),
            "one slot per position",
        );
    }

    // The decode: two sequences of 17 and 20 tokens in blocks 0-1 and 2-3.
    let table = |layout: &CacheLayout| {
        BlockTable::new(
            &stream,
            layout,
            BlockTableSpec {
                table: &[0, 1, 2, 3],
                max_blocks: 2,
                seq_lens: &[17, 20],
            },
        )
        .unwrap()
    };
    let query = |tokens: usize, heads: usize| VendorQuery {
        q: stream.alloc_zeroed(tokens * heads * 512).unwrap(),
        q_rope: stream.alloc_zeroed(tokens * heads * 64).unwrap(),
        tokens,
        heads,
    };
    let (open, causal) = (
        DecodeParams {
            softmax_scale: 0.1,
            causal: false,
        },
        DecodeParams {
            softmax_scale: 0.1,
            causal: true,
        },
    );
    let bf16_layout = CacheLayout {
        format: CacheFormat::Bf16,
        ..split
    };
    let bf16_cache = LatentCache::new(&stream, bf16_layout).unwrap();
    let needle = "an AscendSplit cache";
    assert_invalid(
        vendor_attend(
            &stream,
            &query(2, 2),
            1,
            &bf16_cache,
            &table(&bf16_layout),
            open,
        ),
        needle,
    );
    let t = table(&split);
    for (q, s_q, params) in [
        (query(34, 2), 17, causal),
        (query(4, 2), 2, open),
        (query(3, 2), 1, open),
        (query(2, 3), 1, open),
        (query(2, 256), 1, open),
    ] {
        let what = format!("{} tokens of {} heads, s_q {s_q}", q.tokens, q.heads);
        match vendor_attend(&stream, &q, s_q, &cache, &t, params) {
            Err(e @ ascend_npu::Error::InvalidArgument { .. }) => {
                assert!(e.to_string().contains(needle), "{what}: {e}")
            }
            Err(other) => panic!("{what}: expected InvalidArgument, got {other}"),
            Ok(_) => panic!("{what}: taken"),
        }
    }
    // The edges it takes: 16 causal query tokens, 128 heads.
    vendor_attend(&stream, &query(32, 2), 16, &cache, &t, causal).unwrap();
    vendor_attend(&stream, &query(2, 128), 1, &cache, &t, open).unwrap();
}

/// A decode's output and LSE, read back in f64.
pub(crate) fn on_host(r: &ascend_npu::ops::mla::DecodeOutput) -> (Vec<f64>, Vec<f64>) {
    super::mla_cases::on_host_rows(&r.out, &r.lse)
}

/// The checkpoint of `w` as `ops::mla` takes it.
pub(crate) fn checkpoint(w: &Weights) -> ascend_npu::ops::mla::PrologCheckpoint<'_> {
    ascend_npu::ops::mla::PrologCheckpoint {
        q_a_proj: &w.q_a,
        q_a_layernorm: &w.q_norm,
        q_b_proj: &w.q_b,
        kv_a_proj_with_mqa: &w.kv_a,
        kv_a_layernorm: &w.kv_norm,
        kv_b_proj: &w.kv_b,
    }
}

/// One step of `MlaAttention::decode`: the sequences it runs (their index in `Sequences`),
/// their lengths after it, and the new tokens per sequence.
pub(crate) struct Step {
    pub seqs: Vec<usize>,
    pub lens: Vec<usize>,
    pub s_q: usize,
}

impl Step {
    /// `s_q` new tokens for each of `seqs`, whose lengths after the step are `lens`.
    pub(crate) fn new(seqs: &[usize], lens: &[usize], s_q: usize) -> Step {
        Step {
            seqs: seqs.to_vec(),
            lens: lens.to_vec(),
            s_q,
        }
    }
}

/// Hidden states of whole sequences (bf16, and f64 for the reference).
pub(crate) struct Sequences {
    pub x: Vec<Vec<bf16>>,
}

impl Sequences {
    pub(crate) fn random(rng: &mut Rng, cfg: &MlaConfig, lens: &[usize]) -> Sequences {
        let x = lens
            .iter()
            .map(|&l| bf16_vec(rng, l * cfg.hidden_size, 1.0).0)
            .collect();
        Sequences { x }
    }

    /// `x` of a step: each sequence's tokens `len − s_q .. len`; an empty slot (length 0)
    /// gets `s_q` rows of padding that hold NaN, which must not reach anything.
    fn step_x(&self, cfg: &MlaConfig, step: &Step) -> Vec<bf16> {
        let he = cfg.hidden_size;
        step.seqs
            .iter()
            .zip(&step.lens)
            .flat_map(|(&b, &len)| match len {
                0 => vec![bf16::NAN; step.s_q * he],
                _ => self.x[b][(len - step.s_q) * he..len * he].to_vec(),
            })
            .collect()
    }

    /// The reference of a step, per sequence of it: out `[s_q, H, v]`, lse `[H, s_q]`, and
    /// the worst-case score error bound (see `ATTENTION_ROUNDINGS`).
    fn reference(&self, cfg: &MlaConfig, w: &Weights, step: &Step) -> (Vec<f64>, Vec<f64>, f64) {
        let prologs: Vec<mla::Prolog> = (0..self.x.len())
            .map(|b| {
                let len = step
                    .seqs
                    .iter()
                    .position(|&s| s == b)
                    .map_or(0, |i| step.lens[i]);
                self.prolog(cfg, w, b, len)
            })
            .collect();
        self.reference_over(cfg, w, step, &prologs, |_, rows| rows.to_vec())
    }

    /// The reference prolog of sequence `b`'s first `len` tokens (positions `0..len`); the
    /// prolog of a token depends on nothing else, so a longer one holds every shorter one.
    pub(crate) fn prolog(&self, cfg: &MlaConfig, w: &Weights, b: usize, len: usize) -> mla::Prolog {
        let xf = to_f64(&self.x[b][..len * cfg.hidden_size]);
        let positions: Vec<usize> = (0..len).collect();
        mla::prolog(cfg, &w.reference, &xf, &positions).unwrap()
    }

    /// [`reference`](Self::reference) from `prologs[b]`, each covering at least sequence `b`'s
    /// tokens in the step (see [`prolog`](Self::prolog)), with the keys each sequence attends
    /// to replaced: `keys(b, rows)` gets sequence `b`'s reference cache rows `[len, 576]` and
    /// returns the rows to attend to (an FP8 cache's dequantized rows, say).
    pub(crate) fn reference_over(
        &self,
        cfg: &MlaConfig,
        w: &Weights,
        step: &Step,
        prologs: &[mla::Prolog],
        keys: impl Fn(usize, &[f64]) -> Vec<f64>,
    ) -> (Vec<f64>, Vec<f64>, f64) {
        let (h, dn, dr) = (cfg.num_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim);
        let scale = cfg.softmax_scale() as f32 as f64;
        let (mut out, mut lse, mut bound) = (Vec::new(), Vec::new(), 0f64);
        for (&b, &len) in step.seqs.iter().zip(&step.lens) {
            if len == 0 {
                // An empty slot: output 0, LSE +inf (FlashMLA's rule for a zero length).
                out.extend(vec![0.0; step.s_q * h * cfg.v_head_dim]);
                lse.extend(vec![f64::INFINITY; h * step.s_q]);
                continue;
            }
            let p = &prologs[b];
            let from = len - step.s_q;
            let q = mla::MlaQuery {
                tokens: step.s_q,
                heads: h,
                q_nope: p.query.q_nope[from * h * dn..len * h * dn].to_vec(),
                q_pe: p.query.q_pe[from * h * dr..len * h * dr].to_vec(),
            };
            let att = mla::LatentAttention {
                cfg,
                kv_b_proj: &w.reference.kv_b_proj,
                mask: mla::Mask::Causal,
                scale,
            };
            let rows = keys(b, &p.cache_rows[..len * cfg.cache_row()]);
            let r = att.absorbed(&q, &rows).unwrap();
            out.extend(r.out);
            lse.extend(r.lse);
            let q_abs = mla::absorb_query(cfg, &w.reference.kv_b_proj, &q).unwrap();
            for qh in q_abs.chunks(cfg.cache_row()) {
                for row in rows.chunks(cfg.cache_row()) {
                    let s: f64 = qh.iter().zip(row).map(|(a, b)| (a * b).abs()).sum();
                    bound = bound.max(ATTENTION_ROUNDINGS * 2f64.powi(-8) * scale * s);
                }
            }
        }
        (out, lse, bound)
    }
}

/// BF16 roundings (unit roundoff u = 2^-8 each, relative) between the checkpoint and a score,
/// on the longer of the two paths (our kernels'): on the query c_Q, its RMS, the normed c_Q,
/// q_nope / q_pe, q̃ / the rotated q_pe (5); on the key the kv projection, its RMS, the
/// normed latent or the rotated key (3, the vendor path's bf16 cos/sin included); one more
/// for the f32 sums (γ_1552 < 0.03u each) and the f32 cos/sin. A score moves by at most
/// this many u times scale·Σ|q̃_i k_i| (the worst case, used for the LSE).
const ATTENTION_ROUNDINGS: f64 = 9.0;

/// The relative L2 bound of a step's output. The worst case (every rounding aligned, the
/// bound the LSE check uses) is of order 1 here, too loose to test anything, so the output
/// uses the probabilistic model of rounding errors (Higham & Mary 2019: independent, mean
/// zero): each of the R = 12 roundings on the longest path (the 9 of `ATTENTION_ROUNDINGS`,
/// the value's, ō's and o's) perturbs its vector by relative RMS u/√3 (uniform in ±u);
/// independent perturbations add in quadrature, √R·u/√3 = 2u, and the projections between
/// them (random weights scaled by 1/√fan_in, condition of their operator norm against the
/// vectors below 2) at most double it: 4u. (Measured: 0.9u on either path.)
pub(crate) fn attention_tolerance() -> f64 {
    4.0 * 2f64.powi(-8)
}

/// The block table of a step over `tables` (one row per sequence, `max_blocks` columns).
pub(crate) fn step_table(
    stream: &Stream,
    layout: &ascend_npu::ops::mla::CacheLayout,
    (tables, max_blocks): (&[Vec<i32>], usize),
    step: &Step,
) -> ascend_npu::ops::mla::BlockTable {
    let table: Vec<i32> = step.seqs.iter().flat_map(|&b| tables[b].clone()).collect();
    ascend_npu::ops::mla::BlockTable::new(
        stream,
        layout,
        ascend_npu::ops::mla::BlockTableSpec {
            table: &table,
            max_blocks,
            seq_lens: &step.lens,
        },
    )
    .unwrap()
}

/// Runs `steps` through `att` on a fresh NaN-filled cache; returns each step's output and
/// LSE.
pub(crate) fn run_steps(
    stream: &Stream,
    att: &ascend_npu::ops::mla::MlaAttention,
    seqs: &Sequences,
    (tables, max_blocks): (&[Vec<i32>], usize),
    steps: &[Step],
) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut cache = att.new_cache(stream).unwrap();
    run_steps_on(stream, att, &mut cache, seqs, (tables, max_blocks), steps)
}

/// [`run_steps`] on `cache`, which it first fills with NaN and leaves as the steps wrote it.
pub(crate) fn run_steps_on(
    stream: &Stream,
    att: &ascend_npu::ops::mla::MlaAttention,
    cache: &mut ascend_npu::ops::mla::LatentCache,
    seqs: &Sequences,
    (tables, max_blocks): (&[Vec<i32>], usize),
    steps: &[Step],
) -> Vec<(Vec<f64>, Vec<f64>)> {
    let kernels = super::mla_cases::setup().1;
    let cfg = att.config();
    // Unwritten rows are NaN (bf16 0xFFFF, and a NaN FP8 code): none may leak.
    let bytes = ascend_npu::DeviceSlice::len(cache.data());
    stream
        .memcpy_htod(&vec![0xFFu8; bytes], cache.data_mut())
        .unwrap();
    steps
        .iter()
        .map(|step| {
            let table = step_table(stream, att.cache_layout(), (tables, max_blocks), step);
            let x = stream.upload(&seqs.step_x(cfg, step)).unwrap();
            let r = att
                .decode(
                    &kernels,
                    stream,
                    MlaStep {
                        x: &x,
                        s_q: step.s_q,
                        cache: &mut *cache,
                        table: &table,
                    },
                )
                .unwrap();
            on_host(&r)
        })
        .collect()
}

/// Checks a step's device output against the reference; returns the bound used.
pub(crate) fn assert_step(
    cfg: &MlaConfig,
    (out, lse): &(Vec<f64>, Vec<f64>),
    (want_out, want_lse, bound): &(Vec<f64>, Vec<f64>, f64),
    label: &str,
) -> f64 {
    let tol = attention_tolerance();
    let e = rel_l2(out, want_out);
    assert!(e < tol, "{label}: out rel L2 {e} (bound {tol})");
    // Device LSE [batch, H, s_q] and the reference's [H, s_q] per sequence: the same order.
    assert_eq!(lse.len(), want_lse.len(), "{label}");
    for (g, w) in lse.iter().zip(want_lse) {
        if w.is_infinite() {
            assert_eq!(g, w, "{label}: the LSE of an empty sequence");
            continue;
        }
        assert!(
            (g - w).abs() <= bound + 1e-6 * w.abs(),
            "{label}: lse {g} vs {w} (bound {bound})"
        );
    }
    assert_eq!(
        out.len(),
        want_out.len(),
        "{label} for {} heads",
        cfg.num_heads
    );
    tol
}

/// The steps of the attention cases: three prompt tokens for two sequences at once (causal,
/// s_q 3), then fourteen for the second alone (across a 16-token block), then one token each
/// and two speculative tokens each.
fn attention_steps() -> Vec<Step> {
    vec![
        Step::new(&[0, 1], &[3, 3], 3),
        Step::new(&[1], &[17], 14),
        Step::new(&[0, 1], &[4, 18], 1),
        Step::new(&[0, 1], &[6, 20], 2),
    ]
}

/// `MlaAttention` on DeepSeek's widths picks the vendor ops for a 16-token-block cache and
/// our kernels for FlashMLA's 64-token blocks; both match the f64 reference (prolog,
/// absorbed attention, W_UV) at every step, and each other within the sum of their bounds.
pub fn attention_paths_match_the_reference_and_each_other() {
    use ascend_npu::ops::mla::{MlaAttention, MlaCacheSpec, MlaPath};
    let stream = stream();
    let cfg = config(2);
    let mut rng = Rng::new(41);
    let w = weights(&cfg, &mut rng);
    let steps = attention_steps();
    let seqs = Sequences::random(&mut rng, &cfg, &[6, 20]);
    let spec = |block_size| MlaCacheSpec {
        blocks: 4,
        block_size,
        fp8: false,
        max_positions: 64,
    };
    let vendor = MlaAttention::new(&stream, &cfg, &checkpoint(&w), spec(16)).unwrap();
    assert_eq!(*vendor.path(), MlaPath::Vendor);
    let ours = MlaAttention::new(&stream, &cfg, &checkpoint(&w), spec(64)).unwrap();
    match ours.path() {
        MlaPath::Kernels { why } => assert!(why.contains("blocks of 64"), "{why}"),
        MlaPath::Vendor => panic!("64-token blocks are not the vendor ops'"),
    }
    // Shuffled blocks: sequence 0 in block 2, sequence 1 in blocks 0 and 3 (16-token blocks);
    // in 64-token blocks, sequence 0 in block 3 and sequence 1 in block 1.
    let got_v = run_steps(
        &stream,
        &vendor,
        &seqs,
        (&[vec![2, 1], vec![0, 3]], 2),
        &steps,
    );
    let got_k = run_steps(&stream, &ours, &seqs, (&[vec![3], vec![1]], 1), &steps);
    for (i, step) in steps.iter().enumerate() {
        let want = seqs.reference(&cfg, &w, step);
        let tv = assert_step(&cfg, &got_v[i], &want, &format!("vendor step {i}"));
        let tk = assert_step(&cfg, &got_k[i], &want, &format!("kernels step {i}"));
        // ‖v − k‖ ≤ ‖v − r‖ + ‖k − r‖ ≤ (tv + tk)·‖r‖ (measured: 1.3u).
        let norm = want.0.iter().map(|v| v * v).sum::<f64>().sqrt();
        let diff = got_v[i]
            .0
            .iter()
            .zip(&got_k[i].0)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        assert!(
            diff <= (tv + tk) * norm,
            "step {i}: paths differ by {} relative",
            diff / norm
        );
    }
    // An empty batch slot is our kernels' only (see `MlaAttention::decode`): the vendor path
    // refuses it with the reason, before touching the cache.
    let empty = Step::new(&[0, 1], &[6, 0], 1);
    let kernels = super::mla_cases::setup().1;
    let table = step_table(
        &stream,
        vendor.cache_layout(),
        (&[vec![2, 1], vec![0, 3]], 2),
        &empty,
    );
    let x = stream.upload(&seqs.step_x(&cfg, &empty)).unwrap();
    let mut cache = vendor.new_cache(&stream).unwrap();
    match vendor.decode(
        &kernels,
        &stream,
        MlaStep {
            x: &x,
            s_q: 1,
            cache: &mut cache,
            table: &table,
        },
    ) {
        Err(e @ ascend_npu::Error::Unsupported { .. }) => {
            assert!(e.to_string().contains("no padding cacheIndex"), "{e}")
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("the vendor path took an empty batch slot"),
    }
    assert!(
        cache.data().to_vec().unwrap().iter().all(|&b| b == 0),
        "the refused step wrote sequence 0's row into the cache"
    );
}

/// Three heads (a tensor-parallel split the vendor ops do not take) fall back to our kernels
/// on a 16-token-block cache, and still match the reference; inputs that do not fit the
/// attention are refused with what was expected.
pub fn attention_falls_back_to_our_kernels_for_three_heads() {
    use ascend_npu::ops::mla::{
        CacheFormat, CacheLayout, LatentCache, MlaAttention, MlaCacheSpec, MlaPath,
    };
    let stream = stream();
    let cfg = config(3);
    let mut rng = Rng::new(42);
    let w = weights(&cfg, &mut rng);
    let spec = MlaCacheSpec {
        blocks: 3,
        block_size: 16,
        fp8: false,
        max_positions: 64,
    };
    let att = MlaAttention::new(&stream, &cfg, &checkpoint(&w), spec).unwrap();
    match att.path() {
        MlaPath::Kernels { why } => assert!(why.contains("3 heads"), "{why}"),
        MlaPath::Vendor => panic!("3 heads are not the vendor ops'"),
    }
    assert_eq!(att.cache_layout().format, CacheFormat::Bf16);
    let steps = [Step::new(&[0], &[17], 17), Step::new(&[0], &[19], 2)];
    let seqs = Sequences::random(&mut rng, &cfg, &[19]);
    let got = run_steps(&stream, &att, &seqs, (&[vec![2, 0]], 2), &steps);
    for (i, step) in steps.iter().enumerate() {
        let want = seqs.reference(&cfg, &w, step);
        assert_step(&cfg, &got[i], &want, &format!("3 heads step {i}"));
    }
    // A cache of another layout, x of the wrong size, a sequence shorter than its new tokens.
    let kernels = super::mla_cases::setup().1;
    let table = step_table(&stream, att.cache_layout(), (&[vec![2, 0]], 2), &steps[1]);
    let x = stream
        .upload(&vec![bf16::ZERO; 2 * cfg.hidden_size])
        .unwrap();
    let other = CacheLayout::for_config(&cfg, 3, 16, CacheFormat::Fp8);
    let mut wrong = LatentCache::new(&stream, other).unwrap();
    super::mla_cases::assert_invalid(
        att.decode(
            &kernels,
            &stream,
            MlaStep {
                x: &x,
                s_q: 2,
                cache: &mut wrong,
                table: &table,
            },
        ),
        "the cache this attention was built for",
    );
    let mut cache = att.new_cache(&stream).unwrap();
    super::mla_cases::assert_invalid(
        att.decode(
            &kernels,
            &stream,
            MlaStep {
                x: &x,
                s_q: 1,
                cache: &mut cache,
                table: &table,
            },
        ),
        "[batch · s_q, hidden] = [1 · 1, 1024]",
    );
    let short = Step::new(&[0], &[2], 2);
    let table = step_table(&stream, att.cache_layout(), (&[vec![2, 0]], 2), &short);
    super::mla_cases::assert_invalid(
        att.decode(
            &kernels,
            &stream,
            MlaStep {
                x: &x,
                s_q: 3,
                cache: &mut cache,
                table: &table,
            },
        ),
        "with 3 causal query tokens",
    );
}

/// `x` rotated back by the interleaved RoPE at `pos`, then forward by NeoX's half split.
fn interleaved_to_neox(rope: &Rope, x: &mut [f64], pos: usize) {
    let back = Rope {
        inv_freq: rope.inv_freq.iter().map(|f| -f).collect(),
        amplitude: 1.0 / rope.amplitude,
    };
    back.apply(x, pos);
    let half = x.len() / 2;
    let raw = x.to_vec();
    for (j, v) in x.iter_mut().enumerate() {
        let a = pos as f64 * rope.inv_freq[j % half];
        let rot = if j < half {
            -raw[j + half]
        } else {
            raw[j - half]
        };
        *v = rope.amplitude * (raw[j] * a.cos() + rot * a.sin());
    }
}

/// Both paths of `MlaAttention` rotate in interleaved pairs: a reference that rotates the
/// same queries and keys NeoX-style (half split) misses their output by far more than the
/// tolerance (positions up to 40, where the fast pairs have turned many times).
pub fn attention_rope_is_interleaved_not_neox() {
    use ascend_npu::ops::mla::{MlaAttention, MlaCacheSpec};
    let stream = stream();
    let cfg = config(2);
    let mut rng = Rng::new(43);
    let w = weights(&cfg, &mut rng);
    let len = 40;
    let seqs = Sequences::random(&mut rng, &cfg, &[len]);
    // The prompt in chunks the vendor decode takes (s_q up to 16), then one decoded token.
    let steps: Vec<Step> = [(16, 16), (32, 16), (39, 7), (40, 1)]
        .into_iter()
        .map(|(l, s_q)| Step::new(&[0], &[l], s_q))
        .collect();
    let (h, dn, dr) = (cfg.num_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim);
    let xf = to_f64(&seqs.x[0]);
    let positions: Vec<usize> = (0..len).collect();
    let p = mla::prolog(&cfg, &w.reference, &xf, &positions).unwrap();
    let rope = Rope::new(&cfg);
    let mut rows = p.cache_rows.clone();
    for (t, r) in rows.chunks_mut(cfg.cache_row()).enumerate() {
        interleaved_to_neox(&rope, &mut r[cfg.kv_lora_rank..], t);
    }
    let mut q_pe = p.query.q_pe[(len - 1) * h * dr..].to_vec();
    for qh in q_pe.chunks_mut(dr) {
        interleaved_to_neox(&rope, qh, len - 1);
    }
    let q = mla::MlaQuery {
        tokens: 1,
        heads: h,
        q_nope: p.query.q_nope[(len - 1) * h * dn..].to_vec(),
        q_pe,
    };
    let att = mla::LatentAttention {
        cfg: &cfg,
        kv_b_proj: &w.reference.kv_b_proj,
        mask: mla::Mask::Causal,
        scale: cfg.softmax_scale(),
    };
    let neox = att.absorbed(&q, &rows).unwrap().out;
    for block_size in [16, 64] {
        let spec = MlaCacheSpec {
            blocks: 4,
            block_size,
            fp8: false,
            max_positions: 64,
        };
        let a = MlaAttention::new(&stream, &cfg, &checkpoint(&w), spec).unwrap();
        let table = (&[vec![1, 2, 3, 0]][..], 4);
        let got = run_steps(&stream, &a, &seqs, table, &steps);
        let want = seqs.reference(&cfg, &w, &steps[3]);
        assert_step(&cfg, &got[3], &want, &format!("{:?}", a.path()));
        let e = rel_l2(&got[3].0, &neox);
        // Measured 0.20 on both paths: 12 times the tolerance; 8 keeps a margin either way.
        assert!(
            e > 8.0 * attention_tolerance(),
            "{:?}: the output matches a NeoX rotation (rel L2 {e})",
            a.path()
        );
    }
}

/// Where the device cannot run the vendor ops (`missing` is the text of the reason: a product
/// their docs do not list, a CANN without one of them), `MlaAttention` on DeepSeek's widths and
/// a 16-token-block cache (the vendor ops' on an A2 that has them) takes our kernels, says why,
/// and matches the reference at every step.
pub fn attention_takes_our_kernels_where_the_device_lacks_the_vendor_ops(missing: &str) {
    use ascend_npu::ops::mla::{CacheFormat, MlaAttention, MlaCacheSpec, MlaPath};
    let stream = stream();
    let cfg = config(2);
    let mut rng = Rng::new(43);
    let w = weights(&cfg, &mut rng);
    let spec = MlaCacheSpec {
        blocks: 4,
        block_size: 16,
        fp8: false,
        max_positions: 64,
    };
    let att = MlaAttention::new(&stream, &cfg, &checkpoint(&w), spec).unwrap();
    match att.path() {
        MlaPath::Kernels { why } => assert!(why.contains(missing), "{why}"),
        MlaPath::Vendor => panic!("the vendor path on a device without {missing}"),
    }
    assert_eq!(att.cache_layout().format, CacheFormat::Bf16);
    let steps = attention_steps();
    let seqs = Sequences::random(&mut rng, &cfg, &[6, 20]);
    let got = run_steps(&stream, &att, &seqs, (&[vec![2, 1], vec![0, 3]], 2), &steps);
    for (i, step) in steps.iter().enumerate() {
        let want = seqs.reference(&cfg, &w, step);
        assert_step(&cfg, &got[i], &want, &format!("step {i}"));
    }
}

/// On a device their docs do not list, both vendor ops refuse to plan, each with its product
/// rule.
pub fn vendor_ops_refuse_a_product_they_do_not_list() {
    let stream = stream();
    let cfg = config(2);
    let mut rng = Rng::new(44);
    let w = weights(&cfg, &mut rng);
    let (x, _) = bf16_vec(&mut rng, 2 * cfg.hidden_size, 1.0);
    let err = run_prolog(&stream, &cfg, &w, &x, &[0, 1], &[0, 1], 1, 16)
        .err()
        .expect("the prolog planned on a product its doc does not list");
    let text = err.to_string();
    assert!(text.contains("mla-prolog-v3.products"), "{text}");
    let decode = Decode::new(&mut rng, 2, 1, &[5]);
    let err = decode
        .run(&stream, InputLayout::Bsnd)
        .expect_err("the decode planned on a product its doc does not list");
    let text = err.to_string();
    assert!(text.contains("fia-v3.products"), "{text}");
}
