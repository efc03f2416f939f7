//! `MlaAttention` over FlashMLA's FP8 latent cache against the f64 reference, and the naive
//! prefill's refusal of an FP8 cache: the cases of `mla_fp8_sim.rs` and of its hardware twins
//! `mla_fp8_hardware.rs`.

use super::Rng;
use super::mla_vendor_cases::{
    Sequences, Step, assert_step, attention_tolerance, checkpoint, rel_l2, run_steps_on, stream,
    weights,
};
use ascend_npu::ops::mla::{
    BlockTable, BlockTableSpec, CacheFormat, DecodeParams, LatentCache, MlaAttention, MlaCacheSpec,
    MlaPath, NaiveProjection, PrefillQuery, prefill_naive,
};
use ascend_npu::reference::mla::{self, FP8_TILE, MlaConfig, unpack_fp8_row};
use ascend_npu::{Error, Stream};
use half::bf16;

/// Every case of this file, for a suite to instantiate with its setup.
#[macro_export]
macro_rules! mla_fp8_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            mla_fp8_cases:
            attention_over_an_fp8_cache_attends_to_its_dequantized_rows,
            attention_at_128_heads_gives_an_empty_batch_slot_zero_and_infinite_lse,
            naive_prefill_refuses_an_fp8_cache_with_a_typed_error,
        }
    };
}

/// DeepSeek-V3's attention widths (latent 512, rope 64, nope and v 128, YaRN) on a reduced
/// hidden size and q LoRA rank, which only the f64 reference's cost depends on.
fn config(heads: usize) -> MlaConfig {
    MlaConfig {
        hidden_size: 256,
        q_lora_rank: Some(128),
        ..MlaConfig::deepseek_v3().with_heads(heads)
    }
}

/// Tokens per block: small, so a few dozen tokens span several blocks.
const BLOCK: usize = 16;

/// Steps over three sequences: one token each (length 1), a prompt chunk of 14 to
/// `BLOCK − 1`, two speculative tokens across the block edge (`BLOCK + 1`), three and four
/// new tokens, then a chunk of 16 into the third block. Every s_q in 1..=4 occurs.
fn fp8_steps() -> Vec<Step> {
    vec![
        Step::new(&[0, 1, 2], &[1, 1, 1], 1),
        Step::new(&[1, 2], &[BLOCK - 1, BLOCK - 1], BLOCK - 2),
        Step::new(&[1, 2], &[BLOCK + 1, BLOCK + 1], 2),
        Step::new(&[0, 2], &[4, BLOCK + 4], 3),
        Step::new(&[0, 1, 2], &[8, BLOCK + 5, BLOCK + 8], 4),
        Step::new(&[2], &[2 * BLOCK + 8], BLOCK),
    ]
}

/// The dequantized `[len, 576]` rows of a sequence in an FP8 cache's bytes.
fn dequantized_rows(
    cfg: &MlaConfig,
    bytes: &[u8],
    (table, row_bytes): (&[i32], usize),
    len: usize,
) -> Vec<f64> {
    (0..len)
        .flat_map(|t| {
            let slot = table[t / BLOCK] as usize * BLOCK + t % BLOCK;
            unpack_fp8_row(cfg, &bytes[slot * row_bytes..][..row_bytes]).unwrap()
        })
        .collect()
}

/// `MlaAttention` with an FP8 cache (our kernels: the vendor ops keep bf16 rows), at 1, 3 and
/// 16 heads over the steps of `fp8_steps` in a shuffled, NaN-filled cache with garbage in
/// unused table entries, checked in two parts against the f64 reference:
///
/// * **the rows it wrote** are the E4M3 quantization (power-of-two scale per 128 values) of
///   the reference's cache rows, to within the format;
/// * **the attention** is the reference's absorbed attention (f64 prolog queries, `W_UK`,
///   softmax, `W_UV`) over those very rows dequantized, FlashMLA's dequantize-then-attend.
pub fn attention_over_an_fp8_cache_attends_to_its_dequantized_rows() {
    let stream = stream();
    let steps = fp8_steps();
    let lens = [8, BLOCK + 5, 2 * BLOCK + 8];
    // Sequence 0 in block 4, sequence 1 in blocks 1 and 6, sequence 2 in 5, 0 and 3; block 2
    // is nobody's. Unused entries hold FlashMLA's garbage id.
    let g = 2_147_480_000;
    let tables = [vec![4, g, g], vec![1, 6, g], vec![5, 0, 3]];
    for heads in [1, 3, 16] {
        let cfg = config(heads);
        let mut rng = Rng::new(51 + heads as u64);
        let w = weights(&cfg, &mut rng);
        let seqs = Sequences::random(&mut rng, &cfg, &lens);
        let spec = MlaCacheSpec {
            blocks: 7,
            block_size: BLOCK,
            fp8: true,
            max_positions: 64,
        };
        let att = MlaAttention::new(&stream, &cfg, &checkpoint(&w), spec).unwrap();
        match att.path() {
            MlaPath::Kernels { why } => assert!(why.contains("FP8"), "{why}"),
            MlaPath::Vendor => panic!("an FP8 cache is our kernels'"),
        }
        assert_eq!(att.cache_layout().format, CacheFormat::Fp8);
        let mut cache = att.new_cache(&stream).unwrap();
        let got = run_steps_on(&stream, &att, &mut cache, &seqs, (&tables, 3), &steps);
        let bytes = cache.data().to_vec().unwrap();
        let rb = att.cache_layout().row_bytes();
        let rows = |b: usize, len: usize| dequantized_rows(&cfg, &bytes, (&tables[b], rb), len);
        let label = |what: &str| format!("{heads} heads: {what}");

        // The rows. The device quantizes its bf16 row y: E4M3 keeps 4 significand bits, so
        // each code is within its unit roundoff 2^-4 of y/s relative (nearest even) above
        // the subnormal edge 2^-6, and within half the subnormal step 2^-10 below it; the
        // scale s is a power of two (exact division and product), s ≤ 2·amax/448, so the
        // subnormals of a 128-value tile add at most √128·2^-10·2/448 < 6e-5 of its norm.
        // y carries the key side's bf16 roundings (the kv projection, its RMS, the normed
        // latent: 3u, u = 2^-8) against the reference row r. So ‖deq − r‖ ≤ (2^-4 + 6e-5)
        // ‖y‖ + 3u‖r‖, the latent's rel L2 below 2^-4·1.01 + 3u·1.07. The rope key is bf16
        // (projection, rotation, output: 3u).
        let u = 2f64.powi(-8);
        let (lat, row) = (cfg.kv_lora_rank, cfg.cache_row());
        let prologs: Vec<mla::Prolog> = (0..lens.len())
            .map(|b| seqs.prolog(&cfg, &w, b, lens[b]))
            .collect();
        for (b, (&len, want)) in lens.iter().zip(&prologs).enumerate() {
            let got_rows = rows(b, len);
            for (t, (g, r)) in got_rows
                .chunks(row)
                .zip(want.cache_rows.chunks(row))
                .enumerate()
            {
                let e = rel_l2(&g[..lat], &r[..lat]);
                let bound = 2f64.powi(-4) * 1.01 + 3.0 * u * 1.07;
                assert!(
                    e < bound,
                    "{}",
                    label(&format!("seq {b} token {t} latent rel L2 {e}"))
                );
                let e = rel_l2(&g[lat..], &r[lat..]);
                assert!(
                    e < 3.0 * u,
                    "{}",
                    label(&format!("seq {b} token {t} rope rel L2 {e}"))
                );
                // One power-of-two scale per 128 values, as FlashMLA's format has it.
                let at = tables[b][t / BLOCK] as usize * BLOCK + t % BLOCK;
                for s in bytes[at * rb + lat..][..4 * lat / FP8_TILE].chunks_exact(4) {
                    let s = f32::from_le_bytes(s.try_into().unwrap());
                    assert!(s > 0.0 && s.log2().fract() == 0.0, "scale {s}");
                }
            }
        }

        // The attention, per step, over the rows the device wrote. Against the bf16 cache's
        // derivation (`attention_tolerance`: 12 roundings in quadrature, 4u) this drops the
        // key side's (the reference reads the same dequantized values the kernel reads, and
        // code × power-of-two scale is exact in f32), so 4u bounds it a fortiori; the LSE
        // bound of `Sequences::reference` is the worst case over the same rows.
        // (At 16 heads the f64 reference of every step takes most of a minute in a debug
        // build: there, the steps of s_q 1, 2 and 4 only; the device runs them all.)
        let checked: &[usize] = if heads == 16 {
            &[0, 2, 4]
        } else {
            &[0, 1, 2, 3, 4, 5]
        };
        for (i, step) in steps
            .iter()
            .enumerate()
            .filter(|(i, _)| checked.contains(i))
        {
            let want = seqs.reference_over(&cfg, &w, step, &prologs, |b, r| rows(b, r.len() / row));
            assert_step(&cfg, &got[i], &want, &label(&format!("step {i}")));
            assert!(got[i].0.iter().all(|v| v.is_finite()), "NaN leaked");
        }
        // And the test can tell the formats apart: the attention over the unquantized rows is
        // further from the device's than the tolerance (measured 7.3u–7.8u against 4u; the
        // device's own error against the dequantized rows, 0.4u–0.8u).
        let last = checked[checked.len() - 1];
        let exact = seqs.reference_over(&cfg, &w, &steps[last], &prologs, |_, r| r.to_vec());
        let e = rel_l2(&got[last].0, &exact.0);
        assert!(
            e > attention_tolerance(),
            "{}",
            label(&format!(
                "FP8 output within {e} of the unquantized attention"
            ))
        );
    }
}

/// `MlaAttention` at DeepSeek's 128 heads over an FP8 and a bf16 cache (our kernels: the
/// reduced hidden size is not the vendor prolog's), on short sequences, with an empty batch
/// slot (length 0, NaN in its padding rows of `x`) in every step: its output is exactly 0 and
/// its LSE `+inf`, nothing of it reaches the cache or the other sequences, and the others
/// match the f64 reference (over the dequantized rows the device wrote, for FP8) within
/// `attention_tolerance` (derived there; the FP8 argument is the one above). 256 query rows
/// at s_q 2 split into two work items of 128.
pub fn attention_at_128_heads_gives_an_empty_batch_slot_zero_and_infinite_lse() {
    let stream = stream();
    let heads = 128;
    let cfg = config(heads);
    let mut rng = Rng::new(57);
    let w = weights(&cfg, &mut rng);
    let lens = [3, 2];
    let seqs = Sequences::random(&mut rng, &cfg, &lens);
    // Sequence 1 is empty in steps 0 and 2, one token (in block 0) in step 1.
    let tables = [vec![1], vec![0]];
    let steps = [
        Step::new(&[0, 1], &[2, 0], 2),
        Step::new(&[1, 0], &[1, 3], 1),
        Step::new(&[1, 0], &[0, 3], 1),
    ];
    let prologs: Vec<mla::Prolog> = (0..lens.len())
        .map(|b| seqs.prolog(&cfg, &w, b, lens[b]))
        .collect();
    for fp8 in [true, false] {
        let spec = MlaCacheSpec {
            blocks: 2,
            block_size: BLOCK,
            fp8,
            max_positions: 8,
        };
        let att = MlaAttention::new(&stream, &cfg, &checkpoint(&w), spec).unwrap();
        assert!(matches!(att.path(), MlaPath::Kernels { .. }));
        let mut cache = att.new_cache(&stream).unwrap();
        let label = |i: usize| format!("128 heads, fp8 {fp8}, step {i}");
        let rb = att.cache_layout().row_bytes();
        // The empty slot's padding rows write nothing: after step 0 alone, sequence 1's block
        // still holds the NaN (0xFF) the run filled it with.
        run_steps_on(&stream, &att, &mut cache, &seqs, (&tables, 1), &steps[..1]);
        let bytes = cache.data().to_vec().unwrap();
        assert!(
            bytes[..BLOCK * rb].iter().all(|&b| b == 0xFF),
            "padding written"
        );
        let got = run_steps_on(&stream, &att, &mut cache, &seqs, (&tables, 1), &steps);
        let bytes = cache.data().to_vec().unwrap();
        let row = cfg.cache_row();
        let keys = |b: usize, r: &[f64]| -> Vec<f64> {
            if !fp8 {
                return r.to_vec();
            }
            dequantized_rows(&cfg, &bytes, (&tables[b], rb), r.len() / row)
        };
        let v = cfg.v_head_dim;
        for (i, step) in steps.iter().enumerate() {
            let want = seqs.reference_over(&cfg, &w, step, &prologs, keys);
            assert_step(&cfg, &got[i], &want, &label(i));
            let (out, lse) = &got[i];
            for (k, &len) in step.lens.iter().enumerate() {
                let rows = step.s_q * heads;
                let o = &out[k * rows * v..][..rows * v];
                let l = &lse[k * rows..][..rows];
                if len == 0 {
                    assert!(o.iter().all(|&x| x == 0.0), "{}: empty slot out", label(i));
                    assert!(l.iter().all(|&x| x == f64::INFINITY), "{}", label(i));
                } else {
                    assert!(o.iter().all(|x| x.is_finite()), "{}: NaN leaked", label(i));
                }
            }
        }
    }
}

/// The naive prefill takes bf16 caches only (see `prefill_naive`'s docs): an FP8 cache is
/// `Error::Unsupported`, which names the absorbed `prefill` that reads it.
pub fn naive_prefill_refuses_an_fp8_cache_with_a_typed_error() {
    let (stream, kernels): (Stream, _) = super::mla_cases::setup();
    let cfg = config(2);
    let layout = ascend_npu::ops::mla::CacheLayout::for_config(&cfg, 2, BLOCK, CacheFormat::Fp8);
    let cache = LatentCache::new(&stream, layout).unwrap();
    let table = BlockTable::new(
        &stream,
        &layout,
        BlockTableSpec {
            table: &[0],
            max_blocks: 1,
            seq_lens: &[3],
        },
    )
    .unwrap();
    let kv_b = vec![bf16::ONE; 2 * 256 * 512];
    let proj = NaiveProjection::new(&stream, &cfg, &kv_b).unwrap();
    let qn = stream.upload(&vec![bf16::ONE; 3 * 2 * 128]).unwrap();
    let qp = stream.upload(&vec![bf16::ONE; 3 * 2 * 64]).unwrap();
    let query = PrefillQuery {
        q_nope: qn.as_view(),
        q_pe: qp.as_view(),
        q_lens: &[3],
    };
    let params = DecodeParams {
        softmax_scale: cfg.softmax_scale() as f32,
        causal: true,
    };
    match prefill_naive(&kernels, &stream, &proj, &query, (&cache, &table), params) {
        Err(e @ Error::Unsupported { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("Fp8") && text.contains("ops::mla::prefill"),
                "{text}"
            );
        }
        Err(other) => panic!("expected Unsupported, got {other}"),
        Ok(_) => panic!("an FP8 cache was taken by the naive prefill"),
    }
}
