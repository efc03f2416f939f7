//! The f64 MLA reference against DeepSeek's published semantics (`deepseek-ops.md` §3):
//! the configs and softmax scale, interleaved YaRN RoPE and its ramp edges, absorbed ==
//! naive, bottom-right causal masking, LSE merging, paged == contiguous with NaN in unused
//! slots, the FP8 cache row, and bad input.

use ascend_npu::reference::mla::Result as MlaResult;
use ascend_npu::reference::mla::bounds::{
    AttentionBounds, BF16_U, F32_U, absorbed_bounds, gamma, lse_tolerance, merged_bounds,
    naive_bounds, weight_error,
};
use ascend_npu::reference::mla::{
    AttentionForm, AttentionOutput, BlockTable, LatentAttention, Mask, MlaConfig, MlaError,
    MlaQuery, MlaWeights, Mqa, PagedCache, QueryWeights, Rope, SequenceCache, Yarn, fp8_row_bytes,
    fp8_tile_scale, merge_lse, mla_layer_forward, mqa_attention, pack_fp8_row, paged_mqa_decode,
    prolog, rms_norm, unpack_fp8_row,
};

#[path = "common/rng.rs"]
mod rng;

use rng::Rng;

/// A small DeepSeek-shaped config: every dimension distinct, so a swapped index shows.
fn small(heads: usize, q_lora: Option<usize>) -> MlaConfig {
    MlaConfig {
        hidden_size: 40,
        num_heads: heads,
        q_lora_rank: q_lora,
        kv_lora_rank: 24,
        qk_nope_head_dim: 12,
        qk_rope_head_dim: 8,
        v_head_dim: 10,
        ..MlaConfig::deepseek_v3()
    }
}

/// Random weights scaled like an initialised layer (about 1/√fan_in), norms near 1.
fn weights(cfg: &MlaConfig, rng: &mut Rng) -> MlaWeights {
    let (h, hid, kvr) = (cfg.num_heads, cfg.hidden_size, cfg.kv_lora_rank);
    let lin = |rng: &mut Rng, out: usize, inp: usize| {
        rng.vec_signed(out * inp, 1.0 / (inp as f64).sqrt())
    };
    let norm = |rng: &mut Rng, n: usize| (0..n).map(|_| rng.uniform(0.5, 1.5)).collect();
    let query = match cfg.q_lora_rank {
        Some(r) => QueryWeights::LowRank {
            q_a_proj: lin(rng, r, hid),
            q_a_layernorm: norm(rng, r),
            q_b_proj: lin(rng, h * cfg.qk_head_dim(), r),
        },
        None => QueryWeights::Plain {
            q_proj: lin(rng, h * cfg.qk_head_dim(), hid),
        },
    };
    MlaWeights {
        query,
        kv_a_proj_with_mqa: lin(rng, cfg.cache_row(), hid),
        kv_a_layernorm: norm(rng, kvr),
        kv_b_proj: lin(rng, h * (cfg.qk_nope_head_dim + cfg.v_head_dim), kvr),
        o_proj: lin(rng, hid, h * cfg.v_head_dim),
    }
}

fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Queries and cache rows of a random sequence, through the prolog.
fn sequence(
    cfg: &MlaConfig,
    w: &MlaWeights,
    rng: &mut Rng,
    s_q: usize,
    s_k: usize,
) -> (MlaQuery, Vec<f64>) {
    let x = rng.vec_signed(s_k * cfg.hidden_size, 1.0);
    let positions: Vec<usize> = (0..s_k).collect();
    let p = prolog(cfg, w, &x, &positions).unwrap();
    // The queries are the last s_q tokens.
    let (h, dn, dr) = (cfg.num_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim);
    let q = MlaQuery {
        tokens: s_q,
        heads: h,
        q_nope: p.query.q_nope[(s_k - s_q) * h * dn..].to_vec(),
        q_pe: p.query.q_pe[(s_k - s_q) * h * dr..].to_vec(),
    };
    (q, p.cache_rows)
}

#[test]
fn presets_and_the_softmax_scale() {
    let v3 = MlaConfig::deepseek_v3();
    // 192^-½ · (0.1·ln 40 + 1)² = 0.0721688 · 1.8738542.
    assert!(
        (v3.softmax_scale() - 0.135_233_78).abs() < 1e-8,
        "{}",
        v3.softmax_scale()
    );
    let no_yarn = MlaConfig { yarn: None, ..v3 };
    assert!((no_yarn.softmax_scale() - 0.072_168_78).abs() < 1e-8);
    assert_eq!((v3.qk_head_dim(), v3.cache_row()), (192, 576));
    let v2 = MlaConfig::deepseek_v2();
    let m = 0.1 * 0.707 * 40f64.ln() + 1.0;
    assert!((v2.softmax_scale() - m * m / 192f64.sqrt()).abs() < 1e-12);
    // The V2 preset's own fields (the rest is V3's).
    let yarn = v2.yarn.unwrap();
    assert_eq!(
        (v2.hidden_size, yarn.mscale, yarn.mscale_all_dim),
        (5120, 0.707, 0.707)
    );
    let lite = MlaConfig::deepseek_v2_lite();
    assert_eq!(
        (lite.hidden_size, lite.num_heads, lite.q_lora_rank),
        (2048, 16, None)
    );
    assert_eq!(v3.with_heads(16).num_heads, 16);
    for cfg in [v3, v2, lite, v3.with_heads(1), v3.with_heads(3)] {
        cfg.validate().unwrap();
    }
}

#[test]
fn config_json_of_v3_reads_back_the_preset() {
    let json = r#"{
        "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168,
        "num_attention_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
        "rms_norm_eps": 1e-06, "rope_theta": 10000, "max_position_embeddings": 163840,
        "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
            "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"}
    }"#;
    assert_eq!(
        MlaConfig::from_config_json(json).unwrap(),
        MlaConfig::deepseek_v3()
    );
    let bad = [
        ("not json", "config.json"),
        (r#"{"hidden_size": 7168}"#, "num_attention_heads"),
        (
            &json.replace(r#""type": "yarn""#, r#""type": "linear""#),
            "not supported",
        ),
        (
            &json.replace(r#""qk_rope_head_dim": 64"#, r#""qk_rope_head_dim": 63"#),
            "even",
        ),
        (
            &json.replace(r#""hidden_size": 7168"#, r#""hidden_size": -1"#),
            "hidden_size",
        ),
    ];
    for (text, needle) in bad {
        let err = MlaConfig::from_config_json(text).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn yarn_ramp_keeps_pairs_up_to_10_and_divides_from_23_by_40() {
    let v3 = MlaConfig::deepseek_v3();
    let rope = Rope::new(&v3);
    let plain = Rope::new(&MlaConfig { yarn: None, ..v3 });
    assert_eq!(rope.inv_freq.len(), 32);
    assert_eq!(rope.amplitude, 1.0);
    for i in 0..32 {
        let base = 10000f64.powf(-(2.0 * i as f64) / 64.0);
        assert!((plain.inv_freq[i] - base).abs() <= 1e-15 * base);
        let r = ((i as f64 - 10.0) / 13.0).clamp(0.0, 1.0);
        let expect = base * (1.0 - r) + base / 40.0 * r;
        assert!(
            (rope.inv_freq[i] - expect).abs() <= 1e-15 * base,
            "pair {i}"
        );
    }
    // The edges: 10 unchanged, 11 changed, 22 not yet fully divided, 23 fully divided.
    assert_eq!(rope.inv_freq[10], plain.inv_freq[10]);
    assert!(rope.inv_freq[11] < plain.inv_freq[11]);
    assert!(rope.inv_freq[22] > plain.inv_freq[22] / 40.0 * (1.0 + 1e-9));
    assert!((rope.inv_freq[23] - plain.inv_freq[23] / 40.0).abs() < 1e-18);
}

#[test]
fn rope_is_interleaved_and_a_neox_rope_fails() {
    let cfg = small(1, None);
    let rope = Rope::new(&cfg);
    let mut rng = Rng(3);
    let x = rng.vec_signed(8, 1.0);
    let pos = 7;
    let mut got = x.clone();
    rope.apply(&mut got, pos);
    // Pairs (2i, 2i+1) as complex numbers times e^{i·pos·f_i}.
    let interleaved: Vec<f64> = (0..4)
        .flat_map(|i| {
            let (s, c) = (pos as f64 * rope.inv_freq[i]).sin_cos();
            [
                x[2 * i] * c - x[2 * i + 1] * s,
                x[2 * i] * s + x[2 * i + 1] * c,
            ]
        })
        .collect();
    // NeoX pairs (i, i + d/2).
    let mut neox = x.clone();
    for i in 0..4 {
        let (s, c) = (pos as f64 * rope.inv_freq[i]).sin_cos();
        neox[i] = x[i] * c - x[i + 4] * s;
        neox[i + 4] = x[i] * s + x[i + 4] * c;
    }
    assert!(rel_l2(&got, &interleaved) < 1e-15);
    assert!(rel_l2(&neox, &interleaved) > 1e-2, "NeoX must not pass");
    // Position 0 is the identity; norms of pairs are kept.
    let mut same = x.clone();
    rope.apply(&mut same, 0);
    assert_eq!(same, x);
}

#[test]
fn absorbed_equals_naive_across_heads_and_query_counts() {
    // Both forms sum the same products in a different order: in f64 the difference is a few
    // ulps of each dot product (~1e-15 relative), so 1e-10 leaves a large margin while any
    // wrong index, transpose or missing term gives an O(1) error.
    let mut rng = Rng(11);
    for (heads, q_lora) in [(1, Some(16)), (3, Some(16)), (16, None), (5, None)] {
        let cfg = small(heads, q_lora);
        let w = weights(&cfg, &mut rng);
        for (s_q, s_k) in [(1, 1), (1, 9), (2, 9), (4, 4), (3, 17)] {
            let (q, rows) = sequence(&cfg, &w, &mut rng, s_q, s_k);
            for mask in [Mask::Causal, Mask::None] {
                let attn = LatentAttention {
                    cfg: &cfg,
                    kv_b_proj: &w.kv_b_proj,
                    mask,
                    scale: cfg.softmax_scale(),
                };
                let n = attn.naive(&q, &rows).unwrap();
                let a = attn.absorbed(&q, &rows).unwrap();
                let at = format!("h {heads} s_q {s_q} s_k {s_k} {mask:?}");
                assert!(rel_l2(&a.out, &n.out) < 1e-10, "{at}");
                assert!(rel_l2(&a.lse, &n.lse) < 1e-10, "{at}");
                assert!(n.out.iter().chain(&n.lse).all(|v| v.is_finite()), "{at}");
            }
        }
    }
}

#[test]
fn a_hand_computed_single_head_case() {
    // d = 2, dv = 1: keys (1, 0) and (0, 1); q = (ln 3, 0), scale 1: scores ln 3 and 0, so
    // p = (3/4, 1/4), out = 3/4·1 + 1/4·0, lse = ln(3 + 1).
    let rows = [1.0, 0.0, 0.0, 1.0];
    let open = Mqa {
        heads: 1,
        d: 2,
        dv: 1,
        mask: Mask::None,
        scale: 1.0,
    };
    let r = mqa_attention(&open, &[3f64.ln(), 0.0], &rows).unwrap();
    assert!((r.out[0] - 0.75).abs() < 1e-15);
    assert!((r.lse[0] - 4f64.ln()).abs() < 1e-15);
    // Causal with s_q = 2 over s_k = 2: the first query sees only the first key.
    let causal = Mqa {
        mask: Mask::Causal,
        ..open
    };
    let r = mqa_attention(&causal, &[0.0, 5.0, 0.0, 5.0], &rows).unwrap();
    assert_eq!(r.out[0], 1.0);
    assert!(r.lse[0].abs() < 1e-15);
    assert!(r.out[1] < 0.01);
}

#[test]
fn causal_is_bottom_right_aligned() {
    // Query i of s_q attends exactly to the first s_k − s_q + i + 1 keys: compare with an
    // unmasked attention over that prefix.
    let mut rng = Rng(5);
    let (s_q, s_k) = (3, 7);
    let causal = Mqa {
        heads: 3,
        d: 6,
        dv: 4,
        mask: Mask::Causal,
        scale: 0.7,
    };
    let open = Mqa {
        mask: Mask::None,
        ..causal
    };
    let (heads, d, dv) = (causal.heads, causal.d, causal.dv);
    let q = rng.vec_signed(s_q * heads * d, 1.0);
    let rows = rng.vec_signed(s_k * d, 1.0);
    let masked = mqa_attention(&causal, &q, &rows).unwrap();
    for i in 0..s_q {
        let prefix = &rows[..(s_k - s_q + i + 1) * d];
        let one = mqa_attention(&open, &q[i * heads * d..(i + 1) * heads * d], prefix).unwrap();
        assert_eq!(
            &masked.out[i * heads * dv..(i + 1) * heads * dv],
            &one.out[..]
        );
        for h in 0..heads {
            assert_eq!(masked.lse[h * s_q + i], one.lse[h]);
        }
    }
    // s_q = 1 makes causal a no-op.
    let q1 = &q[..heads * d];
    assert_eq!(
        mqa_attention(&causal, q1, &rows).unwrap(),
        mqa_attention(&open, q1, &rows).unwrap()
    );
    assert!(matches!(
        mqa_attention(&causal, &q, &rows[..2 * d]),
        Err(MlaError::CausalQueries { s_q: 3, s_k: 2 })
    ));
}

#[test]
fn empty_sequence_gives_zero_output_and_infinite_lse() {
    let mqa = Mqa {
        heads: 3,
        d: 4,
        dv: 2,
        mask: Mask::Causal,
        scale: 1.0,
    };
    let r = mqa_attention(&mqa, &[1.0; 2 * 3 * 4], &[]).unwrap();
    assert!(r.out.iter().all(|&v| v == 0.0) && r.out.len() == 2 * 3 * 2);
    assert!(r.lse.iter().all(|&v| v == f64::INFINITY));
}

#[test]
fn chunks_merged_by_lse_equal_the_whole() {
    let mut rng = Rng(8);
    let mqa = Mqa {
        heads: 4,
        d: 5,
        dv: 3,
        mask: Mask::None,
        scale: 0.9,
    };
    let d = mqa.d;
    let q = rng.vec_signed(2 * mqa.heads * d, 2.0);
    let rows = rng.vec_signed(11 * d, 2.0);
    let whole = mqa_attention(&mqa, &q, &rows).unwrap();
    for split in [0, 1, 6, 11] {
        let a = mqa_attention(&mqa, &q, &rows[..split * d]).unwrap();
        let b = mqa_attention(&mqa, &q, &rows[split * d..]).unwrap();
        let m = merge_lse(&a, &b).unwrap();
        assert!(rel_l2(&m.out, &whole.out) < 1e-14, "split {split}");
        assert!(rel_l2(&m.lse, &whole.lse) < 1e-14, "split {split}");
    }
    let other = mqa_attention(&mqa, &q[..mqa.heads * d], &rows).unwrap();
    assert!(matches!(
        merge_lse(&whole, &other),
        Err(MlaError::Length {
            what: "second attention output",
            ..
        })
    ));
}

#[test]
fn paged_equals_contiguous_with_shuffled_blocks_and_nan_in_unused_slots() {
    let mut rng = Rng(21);
    let mqa = Mqa {
        heads: 3,
        d: 10,
        dv: 8,
        mask: Mask::None,
        scale: 0.5,
    };
    let (heads, d, s_q) = (mqa.heads, mqa.d, 2);
    for block_size in [4usize, 64] {
        // Lengths around the block size: 0, 1, bs - 1, bs, bs + 1, several blocks.
        let lens = [
            0,
            1,
            block_size - 1,
            block_size,
            block_size + 1,
            3 * block_size + 2,
        ];
        let max_blocks = 4;
        let num_blocks = lens.len() * max_blocks + 3;
        let mut data = vec![f64::NAN; num_blocks * block_size * d];
        // A shuffled assignment of blocks to (sequence, block index).
        let mut ids: Vec<i32> = (0..num_blocks as i32).collect();
        for i in (1..ids.len()).rev() {
            ids.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let mut table = vec![i32::MAX; lens.len() * max_blocks]; // unused entries: garbage
        let mut contiguous = Vec::new();
        for (b, &len) in lens.iter().enumerate() {
            let rows = rng.vec_signed(len * d, 1.0);
            for t in 0..len {
                let slot = b * max_blocks + t / block_size;
                table[slot] = ids[slot];
                let start = (ids[slot] as usize * block_size + t % block_size) * d;
                data[start..start + d].copy_from_slice(&rows[t * d..(t + 1) * d]);
            }
            contiguous.push(rows);
        }
        let seq_lens: Vec<i32> = lens.iter().map(|&l| l as i32).collect();
        let q = rng.vec_signed(lens.len() * s_q * heads * d, 1.0);
        let cache = PagedCache {
            data: &data,
            block_size,
            row: d,
        };
        let tables = BlockTable {
            table: &table,
            max_blocks,
            seq_lens: &seq_lens,
        };
        let paged = paged_mqa_decode(&mqa, &q, &cache, &tables).unwrap();
        for (b, rows) in contiguous.iter().enumerate() {
            let qb = &q[b * s_q * heads * d..(b + 1) * s_q * heads * d];
            let want = mqa_attention(&mqa, qb, rows).unwrap();
            assert_eq!(paged[b], want, "block size {block_size}, sequence {b}");
            assert!(paged[b].out.iter().all(|v| v.is_finite()), "NaN leaked");
        }
        // Bad tables: an entry out of range, a sequence longer than its blocks, a negative
        // length, a width that is not the cache's.
        let mut bad = table.clone();
        bad[max_blocks] = num_blocks as i32; // sequence 1's first block
        let t2 = BlockTable {
            table: &bad,
            ..tables
        };
        let err = paged_mqa_decode(&mqa, &q, &cache, &t2).unwrap_err();
        assert!(
            err.to_string().contains("expected a block id in 0.."),
            "{err}"
        );
        let long = [0, 0, 0, 0, 0, (max_blocks * block_size + 1) as i32];
        let t3 = BlockTable {
            seq_lens: &long,
            ..tables
        };
        let err = paged_mqa_decode(&mqa, &q, &cache, &t3).unwrap_err();
        assert!(err.to_string().contains("at most max_blocks"), "{err}");
        let neg = [0, -1, 0, 0, 0, 0];
        let t4 = BlockTable {
            seq_lens: &neg,
            ..tables
        };
        let err = paged_mqa_decode(&mqa, &q, &cache, &t4).unwrap_err();
        assert!(err.to_string().contains("expected a length >= 0"), "{err}");
        let wide = Mqa { d: d + 1, ..mqa };
        let err = paged_mqa_decode(&wide, &q, &cache, &tables).unwrap_err();
        assert!(err.to_string().contains("expected the same width"), "{err}");
    }
}

#[test]
fn fp8_cache_row_is_656_bytes_and_round_trips_within_e4m3() {
    let cfg = MlaConfig::deepseek_v3();
    assert_eq!(fp8_row_bytes(&cfg), 656);
    let mut rng = Rng(4);
    for magnitude in [1e-6, 0.1, 3.0, 1e4] {
        let row = rng.vec_signed(576, magnitude);
        let packed = pack_fp8_row(&cfg, &row).unwrap();
        assert_eq!(packed.len(), 656);
        let back = unpack_fp8_row(&cfg, &packed).unwrap();
        // The rope part is bf16: 8 significant bits, so round-to-nearest is within 2^-8
        // relative.
        for (a, b) in row[512..].iter().zip(&back[512..]) {
            assert!((a - b).abs() <= a.abs() * 2f64.powi(-8), "{a} {b}");
        }
        // The latent: each tile's scale is a power of two with amax/scale in (224, 448], so
        // a normal e4m3 value (3 mantissa bits) is within 2^-4 relative, and values in the
        // subnormal range within half a subnormal step, 2^-10 · scale.
        for (tile, t) in row[..512].chunks(128).zip(0..) {
            let amax = tile.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let scale = fp8_tile_scale(amax);
            assert_eq!(scale.log2().fract(), 0.0);
            for (i, a) in tile.iter().enumerate() {
                let b = back[t * 128 + i];
                let bound = (a.abs() * 2f64.powi(-4)).max(scale * 2f64.powi(-10));
                assert!((a - b).abs() <= bound, "{magnitude}: {a} -> {b}");
            }
        }
    }
    let mut bad = vec![0.5; 576];
    bad[7] = f64::NAN;
    assert!(matches!(
        pack_fp8_row(&cfg, &bad),
        Err(MlaError::NonFinite { index: 7, .. })
    ));
    assert!(matches!(
        unpack_fp8_row(&cfg, &[0; 655]),
        Err(MlaError::Length {
            what: "FP8 cache row",
            expected: 656,
            actual: 655,
            ..
        })
    ));
    // kv_lora 24 is not whole 128-value tiles.
    assert!(matches!(
        pack_fp8_row(&small(1, None), &[0.0; 32]),
        Err(MlaError::Config {
            field: "kv_lora_rank",
            ..
        })
    ));
}

#[test]
fn the_layer_decodes_token_by_token_as_it_prefills() {
    // Prefilling T tokens at once (naive) and decoding them one by one (absorbed) give the
    // same outputs: the causal mask makes each token see exactly its prefix.
    let mut rng = Rng(31);
    for q_lora in [Some(16), None] {
        let cfg = small(4, q_lora);
        let w = weights(&cfg, &mut rng);
        let t = 6;
        let x = rng.vec_signed(t * cfg.hidden_size, 1.0);
        let mut prefill_cache = SequenceCache::default();
        let prefill =
            mla_layer_forward(&cfg, &w, &x, &mut prefill_cache, AttentionForm::Naive).unwrap();
        let mut decode_cache = SequenceCache::default();
        let mut decode = Vec::new();
        for tok in x.chunks(cfg.hidden_size) {
            decode.extend(
                mla_layer_forward(&cfg, &w, tok, &mut decode_cache, AttentionForm::Absorbed)
                    .unwrap(),
            );
        }
        assert_eq!(prefill_cache.len(&cfg), t);
        assert!(rel_l2(&prefill_cache.rows, &decode_cache.rows) < 1e-14);
        assert!(rel_l2(&decode, &prefill) < 1e-10);
    }
}

#[test]
fn rms_norm_applies_to_the_latent_only() {
    // With identity-like weights, the cached latent has unit RMS (times its norm weight) and
    // the rope part keeps its norm through the rotation.
    let cfg = small(1, None);
    let mut rng = Rng(2);
    let mut w = weights(&cfg, &mut rng);
    w.kv_a_layernorm = vec![1.0; cfg.kv_lora_rank];
    let x = rng.vec_signed(cfg.hidden_size, 3.0);
    let p = prolog(&cfg, &w, &x, &[5]).unwrap();
    let (c, k_pe) = p.cache_rows.split_at(cfg.kv_lora_rank);
    let rms = (c.iter().map(|v| v * v).sum::<f64>() / c.len() as f64).sqrt();
    assert!((rms - 1.0).abs() < 1e-5, "{rms}"); // eps 1e-6 against a mean square of O(1)
    let raw: Vec<f64> = w.kv_a_proj_with_mqa[cfg.kv_lora_rank * cfg.hidden_size..]
        .chunks(cfg.hidden_size)
        .map(|r| r.iter().zip(&x).map(|(a, b)| a * b).sum())
        .collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm(k_pe) - norm(&raw)).abs() < 1e-12 * norm(&raw));
    assert!(rel_l2(k_pe, &raw) > 1e-3, "position 5 must rotate the key");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let mut rng = Rng(9);
    let cfg = small(3, Some(16));
    let w = weights(&cfg, &mut rng);
    // Weights for 3 heads under a 4-head config.
    let err = prolog(&cfg.with_heads(4), &w, &[0.0; 40], &[0]).unwrap_err();
    assert!(
        matches!(
            err,
            MlaError::Length {
                what: "q_b_proj",
                ..
            }
        ),
        "{err}"
    );
    // A plain q_proj under a q-LoRA config.
    let plain = weights(&small(3, None), &mut rng);
    assert!(matches!(
        prolog(&cfg, &plain, &[0.0; 40], &[0]),
        Err(MlaError::Config {
            field: "q_lora_rank",
            ..
        })
    ));
    // x not [T, hidden].
    assert!(matches!(
        prolog(&cfg, &w, &[0.0; 39], &[0]),
        Err(MlaError::Length { what: "x", .. })
    ));
    let (q, rows) = sequence(&cfg, &w, &mut rng, 1, 3);
    let attn = LatentAttention {
        cfg: &cfg,
        kv_b_proj: &w.kv_b_proj,
        mask: Mask::None,
        scale: cfg.softmax_scale(),
    };
    // Cache rows one element short of whole rows: the error names the whole rows it could use.
    let row = cfg.cache_row();
    let err = attn.naive(&q, &rows[1..]).unwrap_err();
    assert!(
        matches!(
            err,
            MlaError::Length { what: "cache rows", expected, actual, .. }
                if expected == rows.len() - row && actual == rows.len() - 1
        ),
        "{err}"
    );
    let two_heads = cfg.with_heads(2);
    let mismatched = LatentAttention {
        cfg: &two_heads,
        ..attn
    };
    // A 2-head config against 3-head queries, and against 3-head weights with 2-head queries.
    assert!(matches!(
        mismatched.absorbed(&q, &rows),
        Err(MlaError::Config {
            field: "num_attention_heads",
            ..
        })
    ));
    let (q2, rows2) = sequence(&two_heads, &weights(&two_heads, &mut rng), &mut rng, 1, 3);
    assert!(matches!(
        mismatched.absorbed(&q2, &rows2),
        Err(MlaError::Length {
            what: "kv_b_proj",
            ..
        })
    ));
    let huge = MlaConfig {
        num_heads: usize::MAX / 2,
        ..cfg
    };
    assert!(matches!(huge.validate(), Err(MlaError::Overflow { .. })));
    let zero = MlaConfig {
        kv_lora_rank: 0,
        ..cfg
    };
    assert!(
        zero.validate()
            .unwrap_err()
            .to_string()
            .contains("kv_lora_rank")
    );
    let dv_too_wide = Mqa {
        heads: 1,
        d: 4,
        dv: 5,
        mask: Mask::None,
        scale: 1.0,
    };
    assert!(matches!(
        mqa_attention(&dv_too_wide, &[0.0; 4], &[0.0; 4]),
        Err(MlaError::Config {
            field: "head widths",
            ..
        })
    ));
}

#[test]
fn mqa_and_merge_refuse_each_bad_shape_alone() {
    let mqa = |heads, dv| Mqa {
        heads,
        d: 2,
        dv,
        mask: Mask::None,
        scale: 1.0,
    };
    // dv == d is the widest value head.
    let a = mqa_attention(&mqa(1, 2), &[1.0, 0.0, 0.0, 1.0], &[1.0, 0.0]).unwrap();
    let length = |r: Result<_, MlaError>| match r {
        Err(MlaError::Length { what, actual, .. }) => (what, actual),
        other => panic!("expected MlaError::Length, got {other:?}"),
    };
    // q not whole [H, d] rows; cache rows not whole rows of d, each with the other valid.
    assert_eq!(
        length(mqa_attention(&mqa(1, 2), &[0.0; 3], &[1.0, 0.0])),
        ("q", 3)
    );
    assert_eq!(
        length(mqa_attention(&mqa(1, 2), &[0.0; 2], &[1.0, 0.0, 0.5])),
        ("cache rows", 3)
    );
    // A second output of another shape, only its out or only its lse of another length.
    let others = [
        AttentionOutputLike::Shape,
        AttentionOutputLike::Out,
        AttentionOutputLike::Lse,
    ];
    for other in others {
        let mut b = a.clone();
        match other {
            AttentionOutputLike::Shape => (b.tokens, b.heads) = (1, 2),
            AttentionOutputLike::Out => b.out.pop().map(drop).unwrap(),
            AttentionOutputLike::Lse => b.lse.pop().map(drop).unwrap(),
        }
        let (what, _) = length(merge_lse(&a, &b));
        assert_eq!(what, "second attention output", "{other:?}");
    }
}

/// How [`mqa_and_merge_refuse_each_bad_shape_alone`] spoils a second attention output.
#[derive(Debug, Clone, Copy)]
enum AttentionOutputLike {
    Shape,
    Out,
    Lse,
}

#[test]
fn config_validation_refuses_each_bad_float_alone_and_takes_the_edges() {
    let v3 = MlaConfig::deepseek_v3();
    let y = v3.yarn.unwrap();
    let field_of = |cfg: MlaConfig| match cfg.validate() {
        Err(MlaError::Config { field, .. }) => field,
        other => panic!("expected MlaError::Config, got {other:?}"),
    };
    for eps in [0.0, f64::INFINITY, f64::NAN] {
        assert_eq!(
            field_of(MlaConfig {
                rms_norm_eps: eps,
                ..v3
            }),
            "rms_norm_eps"
        );
    }
    for theta in [1.0, f64::INFINITY, f64::NAN] {
        assert_eq!(
            field_of(MlaConfig {
                rope_theta: theta,
                ..v3
            }),
            "rope_theta"
        );
    }
    let bad_yarn = [
        Yarn {
            factor: f64::INFINITY,
            ..y
        },
        Yarn { factor: 0.5, ..y },
        Yarn {
            beta_fast: f64::INFINITY,
            ..y
        },
        Yarn {
            beta_slow: f64::NAN,
            ..y
        },
        Yarn {
            beta_fast: 0.0,
            ..y
        },
        Yarn {
            beta_slow: 0.0,
            ..y
        },
        Yarn {
            mscale: f64::NAN,
            ..y
        },
        Yarn {
            mscale_all_dim: f64::INFINITY,
            ..y
        },
        Yarn {
            original_max_position_embeddings: 0,
            ..y
        },
    ];
    for yarn in bad_yarn {
        let cfg = MlaConfig {
            yarn: Some(yarn),
            ..v3
        };
        assert_eq!(field_of(cfg), "rope_scaling", "{yarn:?}");
    }
    // The valid edges: a factor of exactly 1, and the smallest positive values.
    let edges = Yarn {
        factor: 1.0,
        beta_fast: f64::MIN_POSITIVE,
        beta_slow: f64::MIN_POSITIVE,
        original_max_position_embeddings: 1,
        ..y
    };
    let cfg = MlaConfig {
        yarn: Some(edges),
        rms_norm_eps: f64::MIN_POSITIVE,
        rope_theta: 1.0 + f64::EPSILON,
        ..v3
    };
    cfg.validate().unwrap();
}

#[test]
fn config_validation_sums_each_projections_widths_before_checking_its_size() {
    // kv_b_proj is [H·(nope + v), kv_lora]: with nope = v = 2^(bits−9) and kv_lora = 384 its
    // element count is 3·2^(bits−1), past usize, while q_b_proj's (H·(nope + rope)·384 =
    // 3·2^(bits−2) + 3072) still fits. A kv side of nope + 1 fits too.
    let big = 1usize << (usize::BITS - 9);
    let wide = MlaConfig {
        num_heads: 1,
        q_lora_rank: None,
        kv_lora_rank: 384,
        qk_nope_head_dim: big,
        v_head_dim: big,
        ..small(1, None)
    };
    assert_eq!(
        wide.validate(),
        Err(MlaError::Overflow {
            what: "the projection weights"
        })
    );
    MlaConfig {
        v_head_dim: 1,
        ..wide
    }
    .validate()
    .unwrap();
    // Widths whose sums alone pass usize are refused, never a panic.
    for cfg in [
        MlaConfig {
            qk_nope_head_dim: usize::MAX,
            ..small(1, None)
        },
        MlaConfig {
            v_head_dim: usize::MAX,
            ..small(1, None)
        },
        MlaConfig {
            qk_rope_head_dim: usize::MAX - 1,
            ..small(1, None)
        },
        MlaConfig {
            kv_lora_rank: usize::MAX,
            ..small(1, None)
        },
    ] {
        assert!(
            matches!(cfg.validate(), Err(MlaError::Overflow { .. })),
            "{cfg:?}"
        );
    }
}

#[test]
fn fp8_tile_scale_is_the_smallest_power_of_two_bringing_amax_within_448() {
    // 448 = E4M3's largest finite value: amax/scale lands in (224, 448], so the tile uses the
    // top binade; below amax = 448·1e-4 the scale stops at 2^⌈log2 1e-4⌉ = 2^-13.
    assert_eq!(fp8_tile_scale(448.0), 1.0);
    assert_eq!(fp8_tile_scale(449.0), 2.0);
    assert_eq!(fp8_tile_scale(224.0), 0.5);
    assert_eq!(fp8_tile_scale(1.0), 2f64.powi(-8));
    assert_eq!(fp8_tile_scale(0.0), 2f64.powi(-13));
    for amax in [0.0448, 0.05, 0.3, 3.0, 447.9, 1e4, 3.5e5] {
        let scale = fp8_tile_scale(amax);
        assert_eq!(scale.log2().fract(), 0.0, "{amax}");
        assert!(
            amax / scale <= 448.0 && amax / scale > 224.0,
            "{amax}: {scale}"
        );
    }
    // The scale the packed row stores is this one: a tile of amax 449 stores 2.0.
    let cfg = MlaConfig::deepseek_v3();
    let mut row = vec![0.0; cfg.cache_row()];
    row[128] = -449.0;
    let packed = pack_fp8_row(&cfg, &row).unwrap();
    let scales: Vec<f32> = packed[512..528]
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(
        scales,
        [2f32.powi(-13), 2.0, 2f32.powi(-13), 2f32.powi(-13)]
    );
}

#[test]
fn paged_lookups_refuse_each_bad_shape_alone() {
    let (block_size, row) = (2, 3);
    let data = vec![0.5; 4 * block_size * row];
    let cache = PagedCache {
        data: &data,
        block_size,
        row,
    };
    let table = [0, 1, 2, 3];
    let seq_lens = [3, 4];
    let tables = BlockTable {
        table: &table,
        max_blocks: 2,
        seq_lens: &seq_lens,
    };
    assert_eq!(cache.gather(&tables, 1).unwrap(), vec![0.5; 4 * row]);
    let paged = |r: Result<Vec<f64>, MlaError>| match r {
        Err(MlaError::Paged(message)) => message,
        other => panic!("expected MlaError::Paged, got {other:?}"),
    };
    // Storage of 3.5 blocks, and blocks of no rows: each is not a whole number of blocks.
    for (data, block_size) in [(&data[..7 * row], block_size), (&data[..], 0)] {
        let cache = PagedCache {
            data,
            block_size,
            row,
        };
        let message = paged(cache.gather(&tables, 0));
        assert!(
            message.contains("whole number of [block_size, row] blocks"),
            "{message}"
        );
    }
    // A sequence past the batch with a good table; a table one entry longer than [batch,
    // max_blocks] for a sequence in the batch.
    let message = paged(cache.gather(&tables, 2));
    assert!(message.contains("sequence 2 of 2"), "{message}");
    let longer = [0, 1, 2, 3, 0];
    let message = paged(cache.gather(
        &BlockTable {
            table: &longer,
            ..tables
        },
        0,
    ));
    assert!(message.contains("block table of 5 entries"), "{message}");
    // q for paged decode is [batch, s_q, H, row]: a length that does not split into the batch
    // (2·3 + 1 values) and one whose per-sequence part is not whole [H, row] rows (2·4).
    let mqa = Mqa {
        heads: 1,
        d: row,
        dv: row,
        mask: Mask::None,
        scale: 1.0,
    };
    paged_mqa_decode(&mqa, &[0.25; 2 * 3], &cache, &tables).unwrap();
    for len in [2 * 3 + 1, 2 * 4] {
        match paged_mqa_decode(&mqa, &vec![0.25; len], &cache, &tables) {
            Err(MlaError::Length {
                what: "q",
                actual,
                shape,
                ..
            }) => {
                assert_eq!(actual, len);
                assert!(shape.starts_with("[batch = 2, s_q"), "{shape}");
            }
            other => panic!("q of {len}: expected MlaError::Length, got {other:?}"),
        }
    }
}

#[test]
fn rms_norm_adds_eps_to_the_mean_square_and_scales_by_the_weight() {
    // A constant row c has mean square c²: with eps = c² every value becomes w/√2, and with
    // eps far below c² it becomes w·sign(c). Each row is normalised alone. A handful of f64
    // roundings on values near 1: within 1e-14 relative.
    let weight = [1.0, 2.0, 0.5, 3.0];
    let c = 1e-3;
    let mut x = [c, c, c, c, -2.0, -2.0, -2.0, -2.0];
    rms_norm(&mut x, &weight, c * c);
    for (i, (got, w)) in x.iter().zip(weight.iter().cycle()).enumerate() {
        let want = if i < 4 {
            w / 2f64.sqrt()
        } else {
            -w / (1.0 + c * c / 4.0).sqrt()
        };
        assert!(
            (got - want).abs() <= 1e-14 * want.abs(),
            "{i}: {got} {want}"
        );
    }
}

#[test]
fn rope_multiplies_each_pair_by_the_yarn_amplitude() {
    // With mscale ≠ mscale_all_dim the rotation also scales: amplitude = (0.1·1·ln 40 + 1) /
    // (0.1·0·ln 40 + 1) = 1.3689; every pair's length grows by it and its angle turns by
    // pos·f_i (a few roundings of values near 1: within 1e-14).
    let y = MlaConfig::deepseek_v3().yarn.unwrap();
    let cfg = MlaConfig {
        yarn: Some(Yarn {
            mscale: 1.0,
            mscale_all_dim: 0.0,
            ..y
        }),
        ..small(1, None)
    };
    let rope = Rope::new(&cfg);
    let amplitude = 0.1 * 40f64.ln() + 1.0;
    assert!((rope.amplitude - amplitude).abs() <= 1e-15 * amplitude);
    let x = Rng(5).vec_signed(8, 1.0);
    for pos in [0, 7] {
        let mut got = x.clone();
        rope.apply(&mut got, pos);
        for i in 0..4 {
            let (s, c) = (pos as f64 * rope.inv_freq[i]).sin_cos();
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            let want = [amplitude * (a * c - b * s), amplitude * (a * s + b * c)];
            for (g, w) in got[2 * i..2 * i + 2].iter().zip(want) {
                assert!((g - w).abs() <= 1e-14, "pos {pos}, pair {i}: {g} {w}");
            }
        }
    }
}

/// Relative agreement to 1e-12 (the bounds are sums of positive terms).
fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs(),
        "{what}: {got:e}, want {want:e}"
    );
}

#[test]
fn bound_helpers_take_their_documented_values() {
    let u = F32_U;
    assert_eq!(u, 2f64.powi(-24));
    assert_eq!(BF16_U, 2f64.powi(-8));
    // γ_n = n·u / (1 − n·u): 1/2 / (1 − 1/2) at n = 2^23, 1/4 / (3/4) at 2^22.
    assert_eq!(gamma(1 << 23), 1.0);
    assert_close(gamma(1 << 22), 1.0 / 3.0, "gamma(2^22)");
    assert_close(gamma(1), u / (1.0 - u), "gamma(1)");
    // 2(e^{2δ} − 1) + (visible + 4)·u: 4u with nothing, 2·1 + 2^24·u = 3 at δ = ln 2 / 2 and
    // 2^24 − 4 terms.
    assert_eq!(weight_error(0.0, 0), 4.0 * u);
    assert_close(
        weight_error(2f64.ln() / 2.0, (1 << 24) - 4),
        3.0,
        "weight_error",
    );
    assert_close(weight_error(0.0, 12), 16.0 * u, "weight_error(0, 12)");
    // δ + 4u·(1 + |lse|) + visible·u: 1/8 + 4u·2^20 + 2^23·u = 1/8 + 1/4 + 1/2.
    let lse = -(2f64.powi(20) - 1.0);
    assert_close(lse_tolerance(0.125, lse, 1 << 23), 0.875, "lse_tolerance");
    assert_close(
        lse_tolerance(0.0, 0.0, 0),
        4.0 * u,
        "lse_tolerance(0, 0, 0)",
    );
}

/// `small(1, None)` over 3 equal keys, every key value 3, row `j` of `kv_b_proj` all `j + 1`
/// (`W_UK` rows 1..=12, `W_UV` rows 13..=22, so a row read for another shows), the queries'
/// nope values 1/2 and rope values 1/4 (no factor of 1, which would hide a product turned
/// into a quotient): each bound by hand from the roundings its function's docs list (lat 24,
/// nope 12, v 10, rope 8, row 32). One query token sees all 3 keys; two causal ones see 2
/// and 3 (bottom-right).
#[test]
fn bounds_over_equal_keys_by_hand() {
    let cfg = small(1, None);
    let (u, s) = (BF16_U, 0.125);
    let kv_b: Vec<f64> = (0..22 * 24).map(|i| (i / 24 + 1) as f64).collect();
    let keys = vec![3.0; 3 * 32];
    // Σ_j (j + 1)/2 over the 12 W_UK rows: q̃'s latent value, and Σ|W_UK q_nope| per column.
    let qt = 39.0;
    for (mask, seen) in [(Mask::None, &[3][..]), (Mask::Causal, &[2, 3][..])] {
        let tokens = seen.len();
        let q = MlaQuery {
            tokens,
            heads: 1,
            q_nope: vec![0.5; 12 * tokens],
            q_pe: vec![0.25; 8 * tokens],
        };
        let attn = LatentAttention {
            cfg: &cfg,
            kv_b_proj: &kv_b,
            mask,
            scale: s,
        };
        // Every score is s·(24·39·3 + 8·¼·3) = s·2814: equal weights, LSE = s·2814 + ln(keys
        // seen); output row r (value row 13 + r) is 24·3·(13 + r).
        let lse = |i: usize| s * 2814.0 + (seen[i] as f64).ln();
        let out = |r: usize| 72.0 * (13 + r) as f64;
        // A form's bounds against the score shift δ it must find and `tol(w, r)`, output row
        // r's bound with the weights' error w over the keys seen.
        let check =
            |form: &str, b: AttentionBounds, delta: f64, tol: &dyn Fn(f64, usize) -> f64| {
                assert_eq!(b.reference.out.len(), 10 * tokens, "{form}");
                for (i, &n) in seen.iter().enumerate() {
                    let what = |x: &str| format!("{form} {mask:?}, token {i}: {x}");
                    let w = weight_error(delta, n);
                    for r in 0..10 {
                        assert_close(b.reference.out[i * 10 + r], out(r), &what("out"));
                        assert_close(b.out_tol[i * 10 + r], tol(w, r), &what("out_tol"));
                    }
                    assert_close(b.reference.lse[i], lse(i), &what("lse"));
                    let lse_tol = lse_tolerance(delta, lse(i), n);
                    assert_close(b.lse_tol[i], lse_tol, &what("lse_tol"));
                }
            };

        // Absorbed: q̃ = 39 in each latent column, within 39u + 39γ_12; each key shifted by
        // s·(24·3·39·(u + γ_12) + 1.01·γ_32·2814); ō = 3 (vmax 3), each output within
        // Σ_c (13 + r)·(1.01u·3 + 3w) + γ_24·24·(13 + r)·3 + 1.01u·|out|.
        let delta = s * (72.0 * qt * (u + gamma(12)) + 1.01 * gamma(32) * 2814.0);
        let tol = |w: f64, r: usize| {
            let row = (13 + r) as f64;
            row * 24.0 * (3.03 * u + 3.0 * w) + gamma(24) * row * 72.0 + 1.01 * u * out(r)
        };
        check(
            "absorbed",
            absorbed_bounds(&attn, &q, &keys).unwrap(),
            delta,
            &tol,
        );

        // Naive: key element j is 72·(j + 1), value element r 72·(13 + r), each within 72·
        // (its row)·(u + γ_24); the nope part of each score within ½·Σ_j 72(j + 1)(u + γ_24)
        // = 39·72·(u + γ_24), so δ = s·(that + γ_30·(2814 + that)); the largest value
        // 72·22·(1 + u + γ_24) and error 72·22·(u + γ_24).
        let g = u + gamma(24);
        let from_k = qt * 72.0 * g;
        let delta = s * (from_k + gamma(30) * (2814.0 + from_k));
        let (vmax, verr) = (72.0 * 22.0 * (1.0 + g), 72.0 * 22.0 * g);
        let tol = |w: f64, r: usize| w * vmax + verr + 1.01 * u * out(r);
        check(
            "naive",
            naive_bounds(&attn, &q, &keys).unwrap(),
            delta,
            &tol,
        );
    }
    // No query tokens: no bounds.
    let none = MlaQuery {
        tokens: 0,
        heads: 1,
        q_nope: vec![],
        q_pe: vec![],
    };
    let attn = LatentAttention {
        cfg: &cfg,
        kv_b_proj: &kv_b,
        mask: Mask::None,
        scale: s,
    };
    let b = naive_bounds(&attn, &none, &keys).unwrap();
    assert!(b.out_tol.is_empty() && b.lse_tol.is_empty());
}

/// Token `i`, head `h` of `b` (`heads` heads, `s_q` tokens, `dv` values) alone.
fn one_row(b: &AttentionBounds, i: usize, h: usize) -> AttentionBounds {
    let r = &b.reference;
    let (heads, s_q, dv) = (r.heads, r.tokens, r.dv);
    let at = (i * heads + h) * dv;
    AttentionBounds {
        reference: AttentionOutput {
            tokens: 1,
            heads: 1,
            dv,
            out: r.out[at..at + dv].to_vec(),
            lse: vec![r.lse[h * s_q + i]],
        },
        out_tol: b.out_tol[at..at + dv].to_vec(),
        lse_tol: vec![b.lse_tol[h * s_q + i]],
    }
}

fn assert_rows_close(got: &AttentionBounds, want: &AttentionBounds, what: &str) {
    let pairs = [
        (&got.reference.out, &want.reference.out, "out"),
        (&got.reference.lse, &want.reference.lse, "lse"),
        (&got.out_tol, &want.out_tol, "out_tol"),
        (&got.lse_tol, &want.lse_tol, "lse_tol"),
    ];
    for (g, w, field) in pairs {
        assert_eq!(g.len(), w.len(), "{what} {field}");
        for (k, (&g, &w)) in g.iter().zip(w).enumerate() {
            if g != w {
                assert_close(g, w, &format!("{what} {field}[{k}]"));
            }
        }
    }
}

/// The bounds of 3 causal query tokens of 2 heads over 5 keys are, token by token and head
/// by head, the bounds of that token alone over the keys it sees (bottom-right: 3, 4, 5)
/// with that head's weights; so a bound read from another token's, head's or key's values
/// shows. The largest latent value is in key 0, which every token sees (the absorbed form's
/// vmax is over all the sequence's keys).
#[test]
fn bounds_of_a_batch_are_each_token_and_head_alone() {
    let mut rng = Rng::new(404);
    let cfg = small(2, None);
    let one = small(1, None);
    let (dn, dv, dr, lat, row) = (12, 10, 8, 24, 32);
    let kv_b = rng.vec_signed(2 * (dn + dv) * lat, 0.3);
    let q = MlaQuery {
        tokens: 3,
        heads: 2,
        q_nope: rng.vec_signed(3 * 2 * dn, 1.0),
        q_pe: rng.vec_signed(3 * 2 * dr, 1.0),
    };
    let mut keys = rng.vec_signed(5 * row, 1.0);
    keys[3] = 4.0;
    fn attn<'a>(cfg: &'a MlaConfig, kv_b_proj: &'a [f64]) -> LatentAttention<'a> {
        LatentAttention {
            cfg,
            kv_b_proj,
            mask: Mask::Causal,
            scale: 0.3,
        }
    }
    type Bounds = fn(&LatentAttention<'_>, &MlaQuery, &[f64]) -> MlaResult<AttentionBounds>;
    let batch = attn(&cfg, &kv_b);
    let forms: [(&str, Bounds); 2] = [("absorbed", absorbed_bounds), ("naive", naive_bounds)];
    for (form, bounds) in forms {
        let all = bounds(&batch, &q, &keys).unwrap();
        for i in 0..3 {
            for h in 0..2 {
                let head_w = &kv_b[h * (dn + dv) * lat..][..(dn + dv) * lat];
                let qi = MlaQuery {
                    tokens: 1,
                    heads: 1,
                    q_nope: q.q_nope[(i * 2 + h) * dn..][..dn].to_vec(),
                    q_pe: q.q_pe[(i * 2 + h) * dr..][..dr].to_vec(),
                };
                let seen = &keys[..(3 + i) * row];
                let alone = bounds(&attn(&one, head_w), &qi, seen).unwrap();
                let what = format!("{form}, token {i}, head {h}");
                assert_rows_close(&one_row(&all, i, h), &alone, &what);
            }
        }
    }
}

/// `merged_bounds` by hand for one row (LSE bounds 1/8 and ln 2/2 − 1/8: the weights move by
/// e^{ln 2} − 1 = 1, plus 8u), then for 2 tokens of 2 heads (each row its own numbers) as
/// each row alone; a part that saw no key (LSE +∞) adds no LSE error.
#[test]
fn merged_bounds_by_hand_and_row_by_row() {
    let (u, b16) = (F32_U, BF16_U);
    let part = |out: Vec<f64>, lse: Vec<f64>, out_tol: Vec<f64>, lse_tol: Vec<f64>, heads| {
        AttentionBounds {
            reference: AttentionOutput {
                tokens: lse.len() / heads,
                heads,
                dv: out.len() / lse.len(),
                out,
                lse,
            },
            out_tol,
            lse_tol,
        }
    };
    let (la, lb) = (0.125, 2f64.ln() / 2.0 - 0.125);
    let a = part(vec![1.0, -2.0], vec![0.5], vec![0.25, 0.5], vec![la], 1);
    let b = part(vec![3.0, 0.5], vec![-1.0], vec![0.75, 0.125], vec![lb], 1);
    let whole = part(vec![2.0, -0.5], vec![-7.0], vec![], vec![], 1).reference;
    let m = merged_bounds(&a, &b, whole.clone());
    assert_eq!(m.reference, whole);
    let shift = 1.0 + 8.0 * u;
    // max(tol_a, tol_b) + shift·(|a| + tol_a + |b| + tol_b) + 1.01·2^-8·|whole|.
    let want = [
        0.75 + shift * (1.0 + 0.25 + 3.0 + 0.75) + 1.01 * b16 * 2.0,
        0.5 + shift * (2.0 + 0.5 + 0.5 + 0.125) + 1.01 * b16 * 0.5,
    ];
    for (k, (&g, w)) in m.out_tol.iter().zip(want).enumerate() {
        assert_close(g, w, &format!("merged out_tol[{k}]"));
    }
    // max(La, Lb) + 4u·(1 + |lse|).
    assert_close(m.lse_tol[0], lb + 32.0 * u, "merged lse_tol");
    // b saw no key: only a's LSE error moves the weights.
    let empty = part(
        vec![0.0, 0.0],
        vec![f64::INFINITY],
        vec![0.0; 2],
        vec![9.0],
        1,
    );
    let m = merged_bounds(&a, &empty, a.reference.clone());
    let shift = (2.0 * la).exp_m1() + 8.0 * u;
    assert_close(
        m.out_tol[0],
        0.25 + shift * 1.25 + 1.01 * b16,
        "merged with an empty part",
    );
    assert_close(
        m.lse_tol[0],
        la + 4.0 * u * 1.5,
        "merged lse_tol, empty part",
    );
    let m = merged_bounds(&empty, &a, a.reference.clone());
    assert_close(m.lse_tol[0], la + 4.0 * u * 1.5, "empty part first");

    // 2 tokens × 2 heads × 3 values, every number its own.
    let mut rng = Rng::new(77);
    let mut random = |heads| {
        part(
            rng.vec_signed(12, 2.0),
            rng.vec_signed(4, 3.0),
            rng.vec(12, 0.0, 0.1),
            rng.vec(4, 0.0, 0.05),
            heads,
        )
    };
    let (a, b, whole) = (random(2), random(2), random(2).reference);
    let m = merged_bounds(&a, &b, whole.clone());
    for i in 0..2 {
        for h in 0..2 {
            let alone = merged_bounds(
                &one_row(&a, i, h),
                &one_row(&b, i, h),
                one_row(
                    &AttentionBounds {
                        reference: whole.clone(),
                        out_tol: vec![0.0; 12],
                        lse_tol: vec![0.0; 4],
                    },
                    i,
                    h,
                )
                .reference,
            );
            assert_rows_close(&one_row(&m, i, h), &alone, &format!("merged row {i}, {h}"));
        }
    }
}
