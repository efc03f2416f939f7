//! The invariants of the `f64` MoE reference (`shared/reference/deepseek-ops.md` §6):
//! routing against a literal transcription of DeepSeek's `model.py` and against brute-force
//! subset enumeration, the bias and masking traps, ties, permute/gather/unpermute laws,
//! the experts and the whole layer against a per-token direct sum, and every error case.
//!
//! Random cases come from a seeded SplitMix64, so failures reproduce; sizes stay small
//! (T ≤ 64, E ≤ 64, H ≤ 32).

use std::ops::Range;

use ascend_npu::reference::moe::{
    ExpertWeights, FlatIndex, MoeConfig, MoeError, MoeLayerWeights, PermuteOptions, Routing,
    Scoring, TopKMethod, expert_ffn, gather, grouped_expert_ffn, moe_layer_reference, permute,
    route, route_f64, silu, unpermute, unpermute_f64,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

#[path = "common/rng.rs"]
mod rng;

use rng::Rng;

/// A random valid config with `E ≤ max_experts`.
fn random_config(rng: &mut Rng, method: TopKMethod, max_experts: usize) -> MoeConfig {
    let min_per_group = if method == TopKMethod::NoauxTc { 2 } else { 1 };
    let n_group = rng.range(1, 8.min(max_experts / min_per_group));
    let per_group = rng.range(min_per_group, (max_experts / n_group).min(16));
    let topk_group = rng.range(1, n_group);
    let e = n_group * per_group;
    let max_k = if method == TopKMethod::Greedy {
        e
    } else {
        topk_group * per_group
    };
    let cfg = MoeConfig {
        n_routed_experts: e,
        n_group,
        topk_group,
        top_k: rng.range(1, max_k.min(8)),
        routed_scaling_factor: rng.uniform(0.5, 20.0),
        scoring: if rng.next_u64() % 2 == 0 {
            Scoring::Sigmoid
        } else {
            Scoring::Softmax
        },
        method,
        norm_topk_prob: rng.next_u64() % 2 == 0,
    };
    cfg.validate().expect("random_config builds valid configs");
    cfg
}

const METHODS: [TopKMethod; 3] = [
    TopKMethod::NoauxTc,
    TopKMethod::GroupLimitedGreedy,
    TopKMethod::Greedy,
];

/// Unbiased scores, written independently of the library (naive formulas).
fn naive_scores(scoring: Scoring, logits: &[f64]) -> Vec<f64> {
    match scoring {
        Scoring::Sigmoid => logits.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect(),
        Scoring::Softmax => {
            let m = logits.iter().copied().fold(f64::MIN, f64::max);
            let z: f64 = logits.iter().map(|&l| (l - m).exp()).sum();
            logits.iter().map(|&l| (l - m).exp() / z).collect()
        }
    }
}

fn biased(scores: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
    match bias {
        Some(b) => scores.iter().zip(b).map(|(s, b)| s + b).collect(),
        None => scores.to_vec(),
    }
}

/// Descending by value, ties by ascending index (the documented rule).
fn rank_desc(values: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].partial_cmp(&values[a]).unwrap().then(a.cmp(&b)));
    idx
}

/// DeepSeek `model.py` `Gate.forward`, transcribed literally for one token: group scores by
/// sorting each group, masking dropped groups with `mask_value` (−∞ in `model.py`, 0.0 in
/// HF transformers), then a full sort. Returns the ids (best first) and weights.
fn model_py_route(
    cfg: &MoeConfig,
    logits: &[f64],
    bias: Option<&[f64]>,
    mask_value: f64,
) -> (Vec<usize>, Vec<f64>) {
    let s = naive_scores(cfg.scoring, logits);
    let mut sel = biased(&s, bias);
    if cfg.method != TopKMethod::Greedy {
        let per = cfg.n_routed_experts / cfg.n_group;
        let group_scores: Vec<f64> = sel
            .chunks(per)
            .map(|g| {
                let mut v = g.to_vec();
                v.sort_by(|a, b| b.partial_cmp(a).unwrap());
                match cfg.method {
                    TopKMethod::NoauxTc => v[0] + v[1],
                    _ => v[0],
                }
            })
            .collect();
        let kept = &rank_desc(&group_scores)[..cfg.topk_group];
        for (i, v) in sel.iter_mut().enumerate() {
            if !kept.contains(&(i / per)) {
                *v = mask_value;
            }
        }
    }
    let ids: Vec<usize> = rank_desc(&sel)[..cfg.top_k].to_vec();
    let chosen: Vec<f64> = ids.iter().map(|&i| s[i]).collect();
    let total: f64 = chosen.iter().sum();
    let weights = chosen
        .iter()
        .map(|w| if cfg.norm_topk_prob { w / total } else { *w } * cfg.routed_scaling_factor)
        .collect();
    (ids, weights)
}

fn ids_usize(r: &Routing, t: usize) -> Vec<usize> {
    r.ids(t)
        .iter()
        .map(|&i| usize::try_from(i).unwrap())
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

/// The structural invariants every routing must satisfy.
fn check_routing_invariants(cfg: &MoeConfig, logits: &[f64], bias: Option<&[f64]>, r: &Routing) {
    let (e, k) = (cfg.n_routed_experts, cfg.top_k);
    let per = cfg.n_routed_experts / cfg.n_group;
    assert_eq!(r.num_tokens * e, logits.len());
    assert_eq!((r.num_experts, r.top_k), (e, k));
    assert_eq!(r.topk_ids.len(), r.num_tokens * k);
    assert_eq!(r.margins.len(), r.num_tokens);
    for t in 0..r.num_tokens {
        let ids = ids_usize(r, t);
        let s = naive_scores(cfg.scoring, &logits[t * e..(t + 1) * e]);
        for (a, b) in s.iter().zip(r.token_scores(t)) {
            assert!(close(*a, *b, 1e-12), "scores differ: {a} vs {b}");
        }
        let sel = biased(r.token_scores(t), bias);
        // Distinct, in range, best first with ties by index.
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), k, "token {t}: duplicate ids {ids:?}");
        assert!(ids.iter().all(|&i| i < e));
        for w in ids.windows(2) {
            assert!(
                sel[w[0]] > sel[w[1]] || (sel[w[0]] == sel[w[1]] && w[0] < w[1]),
                "token {t}: ids {ids:?} not best first"
            );
        }
        // At most topk_group groups.
        if cfg.method != TopKMethod::Greedy {
            let mut groups: Vec<usize> = ids.iter().map(|i| i / per).collect();
            groups.sort_unstable();
            groups.dedup();
            assert!(groups.len() <= cfg.topk_group);
        }
        // Weights from the unbiased scores.
        let w = r.weights(t);
        let scale = cfg.routed_scaling_factor;
        if cfg.norm_topk_prob {
            let sum: f64 = w.iter().sum();
            assert!(
                close(sum, scale, 1e-12),
                "token {t}: Σw = {sum}, scale {scale}"
            );
            let total: f64 = ids.iter().map(|&i| s[i]).sum();
            for (j, &i) in ids.iter().enumerate() {
                assert!(close(w[j], s[i] / total * scale, 1e-12));
            }
        } else {
            for (j, &i) in ids.iter().enumerate() {
                assert!(close(w[j], s[i] * scale, 1e-12));
            }
        }
        assert!(r.margins[t] >= 0.0);
    }
}

// ---------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------

#[test]
fn default_is_deepseek_v3() {
    let c = MoeConfig::default();
    assert_eq!(c, MoeConfig::deepseek_v3());
    assert_eq!(
        (c.n_routed_experts, c.n_group, c.topk_group, c.top_k),
        (256, 8, 4, 8)
    );
    assert_eq!(c.routed_scaling_factor, 2.5);
    assert_eq!(
        (c.scoring, c.method, c.norm_topk_prob),
        (Scoring::Sigmoid, TopKMethod::NoauxTc, true)
    );
    assert_eq!(c.experts_per_group(), 32);
    c.validate().unwrap();
}

#[test]
fn deepseek_v2_and_v2_lite() {
    let c = MoeConfig::deepseek_v2();
    assert_eq!(
        (c.n_routed_experts, c.n_group, c.topk_group, c.top_k),
        (160, 8, 3, 6)
    );
    assert_eq!(c.routed_scaling_factor, 16.0);
    assert_eq!(
        (c.scoring, c.method, c.norm_topk_prob),
        (Scoring::Softmax, TopKMethod::GroupLimitedGreedy, false)
    );
    c.validate().unwrap();
    let l = MoeConfig::deepseek_v2_lite();
    assert_eq!(
        (l.n_routed_experts, l.n_group, l.topk_group, l.top_k),
        (64, 1, 1, 6)
    );
    assert_eq!(
        (l.method, l.routed_scaling_factor),
        (TopKMethod::Greedy, 1.0)
    );
    l.validate().unwrap();
}

#[test]
fn validate_rejects_each_bad_field_with_a_clear_error() {
    let v3 = MoeConfig::deepseek_v3();
    let cases: Vec<(MoeConfig, MoeError, &str)> = vec![
        (
            MoeConfig {
                n_routed_experts: 0,
                ..v3
            },
            MoeError::NoExperts,
            "at least 1 expert",
        ),
        (
            MoeConfig { n_group: 0, ..v3 },
            MoeError::NoGroups,
            "at least 1 group",
        ),
        (
            MoeConfig { n_group: 7, ..v3 },
            MoeError::ExpertsNotDivisible {
                experts: 256,
                groups: 7,
            },
            "256) is not divisible by n_group (7)",
        ),
        (
            MoeConfig {
                topk_group: 9,
                ..v3
            },
            MoeError::TopkGroupOutOfRange {
                topk_group: 9,
                n_group: 8,
            },
            "expected 1 ..= n_group (8)",
        ),
        (
            MoeConfig {
                topk_group: 0,
                ..v3
            },
            MoeError::TopkGroupOutOfRange {
                topk_group: 0,
                n_group: 8,
            },
            "topk_group is 0",
        ),
        (
            MoeConfig { top_k: 0, ..v3 },
            MoeError::TopKZero,
            "top_k is 0",
        ),
        (
            MoeConfig { top_k: 257, ..v3 },
            MoeError::TopKExceedsExperts {
                top_k: 257,
                experts: 256,
            },
            "exceeds n_routed_experts (256)",
        ),
        (
            MoeConfig {
                topk_group: 1,
                top_k: 33,
                ..v3
            },
            MoeError::TopKExceedsKeptExperts {
                top_k: 33,
                topk_group: 1,
                per_group: 32,
                available: 32,
            },
            "= 32",
        ),
        (
            MoeConfig {
                n_routed_experts: 8,
                n_group: 8,
                topk_group: 4,
                top_k: 2,
                ..v3
            },
            MoeError::GroupTooSmallForTop2 { per_group: 1 },
            "at least 2 experts per group",
        ),
        (
            MoeConfig {
                routed_scaling_factor: f64::NAN,
                ..v3
            },
            MoeError::InvalidScalingFactor { value: f64::NAN },
            "finite value > 0",
        ),
        (
            MoeConfig {
                routed_scaling_factor: 0.0,
                ..v3
            },
            MoeError::InvalidScalingFactor { value: 0.0 },
            "is 0",
        ),
        (
            MoeConfig {
                routed_scaling_factor: f64::INFINITY,
                ..v3
            },
            MoeError::InvalidScalingFactor {
                value: f64::INFINITY,
            },
            "inf",
        ),
        (
            MoeConfig {
                n_routed_experts: 1 << 32,
                n_group: 1,
                topk_group: 1,
                ..v3
            },
            MoeError::TooManyExperts { experts: 1 << 32 },
            "exceeds i32::MAX",
        ),
    ];
    for (cfg, expected, text) in cases {
        let err = cfg.validate().unwrap_err();
        // NaN != NaN, so compare the scaling-factor case through its message.
        if !matches!(expected, MoeError::InvalidScalingFactor { .. }) {
            assert_eq!(err, expected, "{cfg:?}");
        }
        let msg = err.to_string();
        assert!(msg.contains(text), "{msg:?} should mention {text:?}");
    }
}

#[test]
fn group_size_rule_depends_on_method() {
    // One expert per group: illegal for the top-2 sum, legal for group max and plain top-k.
    let base = MoeConfig {
        n_routed_experts: 8,
        n_group: 8,
        topk_group: 3,
        top_k: 3,
        ..MoeConfig::deepseek_v3()
    };
    assert!(base.validate().is_err());
    MoeConfig {
        method: TopKMethod::GroupLimitedGreedy,
        ..base
    }
    .validate()
    .unwrap();
    MoeConfig {
        method: TopKMethod::Greedy,
        ..base
    }
    .validate()
    .unwrap();
    // Two per group is legal for noaux_tc (the Ascend op's > 2 is the device's limit).
    MoeConfig {
        n_routed_experts: 16,
        ..base
    }
    .validate()
    .unwrap();
    // Greedy may choose more experts than the kept groups hold: it ignores groups.
    MoeConfig {
        method: TopKMethod::Greedy,
        top_k: 8,
        ..base
    }
    .validate()
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

#[test]
fn random_routing_matches_model_py_transcription() {
    let mut rng = Rng(1);
    let mut compared = 0;
    for case in 0..300 {
        let method = METHODS[case % 3];
        let cfg = random_config(&mut rng, method, 64);
        let e = cfg.n_routed_experts;
        let t = rng.range(1, 64);
        let logits = rng.vec(t * e, -4.0, 4.0);
        let bias = (rng.next_u64() % 2 == 0).then(|| rng.vec(e, -0.5, 0.5));
        let r = route_f64(&cfg, &logits, bias.as_deref()).unwrap();
        check_routing_invariants(&cfg, &logits, bias.as_deref(), &r);
        for tok in 0..t {
            // Only a near-tie may legitimately differ between two f64 formulations.
            if r.margins[tok] < 1e-12 {
                continue;
            }
            let (ids, w) = model_py_route(
                &cfg,
                &logits[tok * e..(tok + 1) * e],
                bias.as_deref(),
                f64::NEG_INFINITY,
            );
            assert_eq!(ids_usize(&r, tok), ids, "case {case} token {tok} {cfg:?}");
            for (a, b) in r.weights(tok).iter().zip(&w) {
                assert!(close(*a, *b, 1e-12));
            }
            compared += 1;
        }
    }
    assert!(compared > 5000, "only {compared} tokens compared");
}

/// Enumerates every subset: the kept groups must be the unique `topk_group`-subset that
/// beats every other group, and the chosen experts the unique `K`-subset of the kept
/// experts that beats every other kept expert ("beats" = larger, or equal with lower
/// index).
#[test]
fn routing_matches_brute_force_subset_enumeration() {
    let beats = |v: &[f64], a: usize, b: usize| v[a] > v[b] || (v[a] == v[b] && a < b);
    let dominant_subsets = |v: &[f64], size: usize, allowed: &[usize]| -> Vec<Vec<usize>> {
        let mut found = Vec::new();
        for mask in 0u32..(1 << v.len()) {
            let members: Vec<usize> = (0..v.len()).filter(|i| mask >> i & 1 == 1).collect();
            if members.len() != size || !members.iter().all(|m| allowed.contains(m)) {
                continue;
            }
            let others: Vec<usize> = allowed
                .iter()
                .copied()
                .filter(|o| !members.contains(o))
                .collect();
            if members
                .iter()
                .all(|&m| others.iter().all(|&o| beats(v, m, o)))
            {
                found.push(members);
            }
        }
        found
    };
    let mut rng = Rng(2);
    for case in 0..200 {
        let method = METHODS[case % 3];
        let cfg = random_config(&mut rng, method, 12);
        let e = cfg.n_routed_experts;
        let per = e / cfg.n_group;
        // Coarse logits (multiples of 0.5) make exact ties common.
        let logits: Vec<f64> = (0..4 * e)
            .map(|_| (rng.range(0, 8) as f64 - 4.0) * 0.5)
            .collect();
        let bias = (case % 2 == 0).then(|| rng.vec(e, -0.3, 0.3));
        let r = route_f64(&cfg, &logits, bias.as_deref()).unwrap();
        for t in 0..4 {
            let sel = biased(r.token_scores(t), bias.as_deref());
            let allowed: Vec<usize> = if method == TopKMethod::Greedy {
                (0..e).collect()
            } else {
                let gs: Vec<f64> = sel
                    .chunks(per)
                    .map(|g| {
                        let mut v = g.to_vec();
                        v.sort_by(|a, b| b.partial_cmp(a).unwrap());
                        if method == TopKMethod::NoauxTc {
                            v[0] + v[1]
                        } else {
                            v[0]
                        }
                    })
                    .collect();
                let all: Vec<usize> = (0..cfg.n_group).collect();
                let kept = dominant_subsets(&gs, cfg.topk_group, &all);
                assert_eq!(kept.len(), 1, "exactly one dominant group subset");
                (0..e).filter(|i| kept[0].contains(&(i / per))).collect()
            };
            let chosen = dominant_subsets(&sel, cfg.top_k, &allowed);
            assert_eq!(chosen.len(), 1);
            let mut ids = ids_usize(&r, t);
            ids.sort_unstable();
            assert_eq!(ids, chosen[0], "case {case} token {t} {cfg:?}");
        }
    }
}

#[test]
fn negative_biased_scores_never_pick_a_dropped_group() {
    // Every biased score is negative. Masking dropped groups with 0 (HF transformers)
    // would then prefer a dropped expert (0 > negative); −∞ masking never does.
    let cfg = MoeConfig {
        n_routed_experts: 32,
        n_group: 8,
        topk_group: 2,
        top_k: 4,
        ..MoeConfig::deepseek_v3()
    };
    let per = 4;
    let mut rng = Rng(3);
    let t = 64;
    let logits = rng.vec(t * 32, -3.0, 3.0);
    let bias = vec![-5.0; 32];
    let r = route_f64(&cfg, &logits, Some(&bias)).unwrap();
    let mut zero_mask_differs = 0;
    for tok in 0..t {
        let row = &logits[tok * 32..(tok + 1) * 32];
        let sel = biased(r.token_scores(tok), Some(&bias));
        assert!(sel.iter().all(|&v| v < 0.0));
        // The kept groups are the two best by top-2 sum; every id must be in one of them.
        let gs: Vec<f64> = sel
            .chunks(per)
            .map(|g| {
                let mut v = g.to_vec();
                v.sort_by(|a, b| b.partial_cmp(a).unwrap());
                v[0] + v[1]
            })
            .collect();
        let kept = &rank_desc(&gs)[..2];
        for id in ids_usize(&r, tok) {
            assert!(
                kept.contains(&(id / per)),
                "token {tok}: expert {id} from a dropped group"
            );
        }
        let (zero_ids, _) = model_py_route(&cfg, row, Some(&bias), 0.0);
        if zero_ids.iter().any(|id| !kept.contains(&(id / per))) {
            zero_mask_differs += 1;
        }
    }
    // The test has teeth: the 0-mask bug shows on every token here.
    assert_eq!(zero_mask_differs, t);
}

#[test]
fn huge_bias_expert_is_always_chosen_but_weighted_by_its_unbiased_score() {
    let cfg = MoeConfig::deepseek_v3();
    let mut rng = Rng(4);
    let t = 48;
    let logits = rng.vec(t * 256, -6.0, 6.0);
    let mut bias = rng.vec(256, -0.01, 0.01);
    let star = 137;
    bias[star] = 1e6;
    let r = route_f64(&cfg, &logits, Some(&bias)).unwrap();
    check_routing_invariants(&cfg, &logits, Some(&bias), &r);
    for tok in 0..t {
        let ids = ids_usize(&r, tok);
        assert_eq!(ids[0], star, "token {tok}");
        let s = r.token_scores(tok);
        let total: f64 = ids.iter().map(|&i| s[i]).sum();
        let expect = s[star] / total * 2.5;
        assert!(close(r.weights(tok)[0], expect, 1e-12));
        // Its weight is nothing like what the biased score would give (≈ 2.5).
        assert!(r.weights(tok)[0] < 1.0);
    }
}

#[test]
fn ties_go_to_the_lowest_index() {
    // All logits equal: every group ties, the first topk_group groups are kept, and the
    // first K experts win; the margin is 0.
    let cfg = MoeConfig::deepseek_v3();
    let r = route_f64(&cfg, &[0.25; 256], None).unwrap();
    assert_eq!(r.ids(0), &[0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(r.margins[0], 0.0);
    for w in r.weights(0) {
        assert!(close(*w, 2.5 / 8.0, 1e-15));
    }

    // A group tie: groups 1 and 3 score the same and better than the rest; with one group
    // kept, group 1 wins.
    let cfg = MoeConfig {
        n_routed_experts: 8,
        n_group: 4,
        topk_group: 1,
        top_k: 2,
        ..MoeConfig::deepseek_v3()
    };
    let logits = [0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0, 1.0];
    let r = route_f64(&cfg, &logits, None).unwrap();
    assert_eq!(r.ids(0), &[3, 2]);
    assert_eq!(r.margins[0], 0.0);

    // Expert tie inside the kept group: equal scores list the lower id first.
    let logits = [0.0, 0.0, 1.5, 1.5, 0.0, 0.0, 0.0, 0.0];
    let r = route_f64(&cfg, &logits, None).unwrap();
    assert_eq!(r.ids(0), &[2, 3]);
    // Group gap large; the two chosen are the whole group, so no expert gap: margin = group gap.
    assert!(r.margins[0] > 0.5);

    // −0.0 and +0.0 tie (bias can make the biased score either).
    let cfg = MoeConfig {
        method: TopKMethod::Greedy,
        top_k: 1,
        ..cfg
    };
    let bias = [0.0, 0.0, -0.5, -0.5, 0.0, 0.0, 0.0, 0.0];
    let logits = [-800.0, -800.0, 0.0, 0.0, -800.0, -800.0, -800.0, -800.0];
    let r = route_f64(&cfg, &logits, Some(&bias)).unwrap();
    // Sigmoid(-800) underflows to +0; sigmoid(0) − 0.5 = +0: all tie, expert 0 wins.
    assert_eq!(r.ids(0), &[0]);
}

#[test]
fn margins_flag_near_ties() {
    let cfg = MoeConfig {
        n_routed_experts: 4,
        n_group: 1,
        topk_group: 1,
        top_k: 1,
        method: TopKMethod::Greedy,
        ..MoeConfig::deepseek_v3()
    };
    let r = route_f64(&cfg, &[0.0, 1.0, 1.0 + 1e-9, -1.0], None).unwrap();
    assert_eq!(r.ids(0), &[2]);
    assert!(r.margins[0] > 0.0 && r.margins[0] < 1e-9);
    // Nothing left to drop: infinite margin.
    let cfg = MoeConfig { top_k: 4, ..cfg };
    let r = route_f64(&cfg, &[0.0, 1.0, 2.0, 3.0], None).unwrap();
    assert_eq!(r.margins[0], f64::INFINITY);
}

#[test]
fn v2_mode_is_softmax_group_max_unnormalised_times_16() {
    let cfg = MoeConfig::deepseek_v2();
    let mut rng = Rng(5);
    let t = 32;
    let logits = rng.vec(t * 160, -3.0, 3.0);
    let r = route_f64(&cfg, &logits, None).unwrap();
    check_routing_invariants(&cfg, &logits, None, &r);
    for tok in 0..t {
        let p = naive_scores(Scoring::Softmax, &logits[tok * 160..(tok + 1) * 160]);
        let ids = ids_usize(&r, tok);
        let sum: f64 = r.weights(tok).iter().sum();
        assert!(sum < 16.0);
        for (j, &i) in ids.iter().enumerate() {
            assert!(close(r.weights(tok)[j], p[i] * 16.0, 1e-12));
        }
        // Group max: the kept groups are the three with the largest member.
        let gmax: Vec<f64> = p
            .chunks(20)
            .map(|g| g.iter().copied().fold(f64::MIN, f64::max))
            .collect();
        let kept = &rank_desc(&gmax)[..3];
        assert!(ids.iter().all(|i| kept.contains(&(i / 20))));
    }
}

#[test]
fn one_token_and_one_expert_per_group() {
    let mut rng = Rng(6);
    for _ in 0..50 {
        let groups = rng.range(1, 16);
        let cfg = MoeConfig {
            n_routed_experts: groups,
            n_group: groups,
            topk_group: rng.range(1, groups),
            top_k: 1,
            routed_scaling_factor: 1.0,
            scoring: Scoring::Softmax,
            method: TopKMethod::GroupLimitedGreedy,
            norm_topk_prob: false,
        };
        let cfg = MoeConfig {
            top_k: rng.range(1, cfg.topk_group),
            ..cfg
        };
        let logits = rng.vec(groups, -2.0, 2.0);
        let r = route_f64(&cfg, &logits, None).unwrap();
        assert_eq!(r.num_tokens, 1);
        check_routing_invariants(&cfg, &logits, None, &r);
        // One expert per group: grouped selection equals plain top-k.
        let (ids, _) = model_py_route(&cfg, &logits, None, f64::NEG_INFINITY);
        let plain: Vec<usize> = rank_desc(&logits)[..cfg.top_k].to_vec();
        assert_eq!(ids_usize(&r, 0), ids);
        assert_eq!(ids, plain);
    }
}

#[test]
fn zero_tokens_route_to_nothing() {
    let r = route_f64(&MoeConfig::deepseek_v3(), &[], None).unwrap();
    assert_eq!(r.num_tokens, 0);
    assert!(r.topk_ids.is_empty() && r.topk_weights.is_empty() && r.scores.is_empty());
}

#[test]
fn extreme_logits_still_give_finite_weights_summing_to_the_scale() {
    let cfg = MoeConfig::deepseek_v3();
    for v in [-1e30, -1e4, -800.0, 800.0, 1e30, f64::MAX, f64::MIN] {
        let logits: Vec<f64> = (0..256).map(|i| v + i as f64).collect();
        let r = route_f64(&cfg, &logits, None).unwrap();
        let sum: f64 = r.weights(0).iter().sum();
        assert!(
            r.weights(0).iter().all(|w| w.is_finite() && *w >= 0.0),
            "{v}"
        );
        assert!(close(sum, 2.5, 1e-12), "{v}: Σw = {sum}");
    }
    // Softmax with huge spreads.
    let cfg = MoeConfig {
        scoring: Scoring::Softmax,
        ..cfg
    };
    let mut logits = vec![-1e300; 256];
    logits[3] = 1e300;
    let r = route_f64(&cfg, &logits, None).unwrap();
    assert_eq!(r.ids(0)[0], 3);
    assert!(r.topk_weights.iter().all(|w| w.is_finite()));
}

#[test]
fn one_huge_sigmoid_logit_gives_finite_scores_and_is_chosen_first() {
    // The other logits stay in (-3, 3), so their sigmoids are distinct and far from 1.0: a
    // wrong choice cannot hide behind ties, and a sigmoid evaluated as e^x / (1 + e^x) at
    // x = 1000 (∞/∞ = NaN) shows up as a non-finite score.
    let cfg = MoeConfig::deepseek_v3();
    let mut rng = Rng(709);
    for huge in [710.0, 1000.0, 1e30] {
        let mut logits = rng.vec(256, -3.0, 3.0);
        logits[77] = huge;
        let r = route_f64(&cfg, &logits, None).unwrap();
        assert!(
            r.token_scores(0)
                .iter()
                .all(|s| s.is_finite() && (0.0..=1.0).contains(s)),
            "logit {huge}: a score is not a probability"
        );
        assert_eq!(r.token_scores(0)[77], 1.0, "logit {huge}");
        assert_eq!(
            r.ids(0)[0],
            77,
            "logit {huge}: the huge logit must be chosen first"
        );
        assert!(r.weights(0).iter().all(|w| w.is_finite()), "logit {huge}");
    }
}

#[test]
fn f32_entry_point_equals_f64_on_widened_values() {
    let cfg = MoeConfig::deepseek_v3();
    let mut rng = Rng(7);
    let logits: Vec<f32> = (0..8 * 256)
        .map(|_| rng.uniform(-3.0, 3.0) as f32)
        .collect();
    let bias: Vec<f32> = (0..256).map(|_| rng.uniform(-0.1, 0.1) as f32).collect();
    let a = route(&cfg, &logits, Some(&bias)).unwrap();
    let wide: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
    let wide_bias: Vec<f64> = bias.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(a, route_f64(&cfg, &wide, Some(&wide_bias)).unwrap());
}

#[test]
fn route_rejects_bad_inputs() {
    let cfg = MoeConfig {
        n_routed_experts: 8,
        n_group: 2,
        topk_group: 1,
        top_k: 2,
        ..MoeConfig::deepseek_v3()
    };
    let ok = [0.0; 16];
    assert_eq!(
        route_f64(&cfg, &ok[..13], None).unwrap_err(),
        MoeError::NotWholeRows {
            what: "logits",
            len: 13,
            row_len: 8,
            row: "n_routed_experts"
        }
    );
    let err = route_f64(&cfg, &ok, Some(&[0.0; 7])).unwrap_err();
    assert!(matches!(
        err,
        MoeError::LengthMismatch {
            what: "bias",
            actual: 7,
            expected: 8,
            ..
        }
    ));
    assert!(err.to_string().contains("[E=8]"), "{err}");
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut l = ok;
        l[9] = bad;
        let err = route_f64(&cfg, &l, None).unwrap_err();
        assert!(
            matches!(
                err,
                MoeError::NonFinite {
                    what: "logits",
                    index: 9,
                    ..
                }
            ),
            "{err}"
        );
        let mut b = [0.0; 8];
        b[5] = bad;
        let err = route_f64(&cfg, &ok, Some(&b)).unwrap_err();
        assert!(
            matches!(
                err,
                MoeError::NonFinite {
                    what: "bias",
                    index: 5,
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = route(&cfg, &[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], None).unwrap_err();
    assert!(err.to_string().contains("logits[1] is NaN"), "{err}");
    // An invalid config is rejected before anything else.
    let bad = MoeConfig { top_k: 9, ..cfg };
    assert!(matches!(
        route_f64(&bad, &ok, None),
        Err(MoeError::TopKExceedsExperts { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Permute / gather / unpermute
// ---------------------------------------------------------------------------------------

/// Random ids `[T, K]`, distinct per token (as routing gives).
fn random_ids(rng: &mut Rng, t: usize, k: usize, e: usize) -> Vec<i32> {
    let mut ids = Vec::with_capacity(t * k);
    for _ in 0..t {
        let mut pool: Vec<i32> = (0..e as i32).collect();
        for j in 0..k {
            let pick = rng.range(j, e - 1);
            pool.swap(j, pick);
            ids.push(pool[j]);
        }
    }
    ids
}

fn bincount(ids: &[i32], e: usize) -> Vec<usize> {
    let mut c = vec![0; e];
    for &i in ids {
        c[i as usize] += 1;
    }
    c
}

#[test]
fn permute_is_a_stable_bijection_with_bincount_counts() {
    let mut rng = Rng(8);
    for _ in 0..200 {
        let e = rng.range(1, 64);
        let k = rng.range(1, e.min(8));
        let t = rng.range(0, 64);
        let ids = random_ids(&mut rng, t, k, e);
        let p = permute(&ids, k, e, &PermuteOptions::default()).unwrap();
        let n = t * k;
        assert_eq!(
            (p.num_tokens(), p.top_k(), p.num_experts(), p.num_rows()),
            (t, k, e, n)
        );
        // Bijection and inverse.
        let mut seen = vec![false; n];
        for (i, &f) in p.sorted_row_idx().iter().enumerate() {
            let f = usize::try_from(f).unwrap();
            assert!(!seen[f]);
            seen[f] = true;
            assert_eq!(p.expanded_row_idx()[f], i as i64);
        }
        // Counts, demand, offsets.
        assert_eq!(p.counts(), bincount(&ids, e).as_slice());
        assert_eq!(p.demand(), p.counts());
        assert_eq!(p.counts().iter().sum::<usize>(), n);
        let mut cumsum = vec![0];
        for c in p.counts() {
            cumsum.push(cumsum.last().unwrap() + c);
        }
        assert_eq!(p.offsets(), cumsum.as_slice());
        // Sorted by expert, stable (ascending flat index within an expert).
        for ex in 0..e {
            let seg = &p.sorted_row_idx()[p.offsets()[ex]..p.offsets()[ex + 1]];
            assert!(seg.windows(2).all(|w| w[0] < w[1]));
            for &f in seg {
                assert_eq!(ids[f as usize], ex as i32);
            }
            let rows = &p.row_expert()[p.offsets()[ex]..p.offsets()[ex + 1]];
            assert!(rows.iter().all(|&r| r == ex as i32));
        }
    }
}

#[test]
fn gather_copies_rows_bit_exactly() {
    let mut rng = Rng(9);
    let (t, k, e, h) = (17, 3, 9, 5);
    let ids = random_ids(&mut rng, t, k, e);
    let p = permute(&ids, k, e, &PermuteOptions::default()).unwrap();
    // Odd bit patterns: NaN payloads, −0, subnormals, infinities.
    let specials = [
        0x7FC0_1234u32,
        0xFFA0_0001,
        0x8000_0000,
        0x0000_0001,
        0x7F80_0000,
    ];
    let x: Vec<f32> = (0..t * h)
        .map(|i| {
            if i % 7 == 0 {
                f32::from_bits(specials[i % specials.len()])
            } else {
                f32::from_bits(rng.next_u64() as u32)
            }
        })
        .collect();
    let ex = gather(&x, h, &p).unwrap();
    assert_eq!(ex.len(), t * k * h);
    for (i, &f) in p.sorted_row_idx().iter().enumerate() {
        let tok = f as usize / k;
        for j in 0..h {
            assert_eq!(ex[i * h + j].to_bits(), x[tok * h + j].to_bits());
        }
    }
}

#[test]
fn round_trip_with_identity_experts_scales_by_the_weight_sum() {
    let mut rng = Rng(10);
    for _ in 0..100 {
        let e = rng.range(1, 64);
        let k = rng.range(1, e.min(8));
        let t = rng.range(1, 64);
        let h = rng.range(1, 32);
        let ids = random_ids(&mut rng, t, k, e);
        let p = permute(&ids, k, e, &PermuteOptions::default()).unwrap();
        let x = rng.vec(t * h, -2.0, 2.0);
        let w = rng.vec(t * k, 0.0, 1.0);
        let out = unpermute_f64(&gather(&x, h, &p).unwrap(), h, &p, &w).unwrap();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        let out32 = unpermute(&gather(&x32, h, &p).unwrap(), h, &p, &w32).unwrap();
        for tok in 0..t {
            let ws: f64 = w[tok * k..(tok + 1) * k].iter().sum();
            for j in 0..h {
                let expect = x[tok * h + j] * ws;
                let got = out[tok * h + j];
                assert!((got - expect).abs() <= 1e-14 * (1.0 + expect.abs()));
                let got32 = f64::from(out32[tok * h + j]);
                assert!((got32 - expect).abs() <= 1e-6 * (1.0 + expect.abs()) * k as f64);
            }
        }
    }
}

#[test]
fn round_trip_is_bit_exact_with_unit_weights_and_k_1() {
    let mut rng = Rng(11);
    let (t, e, h) = (40, 7, 9);
    let ids = random_ids(&mut rng, t, 1, e);
    let p = permute(&ids, 1, e, &PermuteOptions::default()).unwrap();
    let x: Vec<f32> = (0..t * h).map(|_| rng.uniform(-1e3, 1e3) as f32).collect();
    let out = unpermute(&gather(&x, h, &p).unwrap(), h, &p, &vec![1.0; t]).unwrap();
    assert!(out.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn unpermute_f32_follows_the_documented_order() {
    // acc = ((0 + w0·y0) + w1·y1) + w2·y2, each product rounded: recompute by hand.
    let mut rng = Rng(12);
    let (t, k, e, h) = (16, 3, 5, 4);
    let ids = random_ids(&mut rng, t, k, e);
    let p = permute(&ids, k, e, &PermuteOptions::default()).unwrap();
    let y: Vec<f32> = (0..t * k * h)
        .map(|_| rng.uniform(-1.0, 1.0) as f32)
        .collect();
    let w: Vec<f32> = (0..t * k).map(|_| rng.uniform(0.0, 1.0) as f32).collect();
    let out = unpermute(&y, h, &p, &w).unwrap();
    for tok in 0..t {
        for j in 0..h {
            let mut acc = 0.0f32;
            for kk in 0..k {
                let r = p.expanded_row_idx()[tok * k + kk] as usize;
                acc += w[tok * k + kk] * y[r * h + j];
            }
            assert_eq!(out[tok * h + j].to_bits(), acc.to_bits());
        }
    }
}

#[test]
fn active_expert_range_drops_exactly_the_out_of_range_pairs() {
    let mut rng = Rng(13);
    for _ in 0..100 {
        let e = rng.range(1, 64);
        let k = rng.range(1, e.min(8));
        let t = rng.range(1, 64);
        let start = rng.range(0, e);
        let end = rng.range(start, e);
        let ids = random_ids(&mut rng, t, k, e);
        let opts = PermuteOptions {
            active_expert_range: Some(start..end),
            ..Default::default()
        };
        let p = permute(&ids, k, e, &opts).unwrap();
        let in_range = ids
            .iter()
            .filter(|&&i| (start..end).contains(&(i as usize)))
            .count();
        assert_eq!(p.num_rows(), in_range);
        for (f, &id) in ids.iter().enumerate() {
            let placed = p.expanded_row_idx()[f] >= 0;
            assert_eq!(
                placed,
                (start..end).contains(&(id as usize)),
                "pair {f} id {id}"
            );
        }
        let demand = bincount(&ids, e);
        assert_eq!(p.demand(), demand.as_slice());
        for (ex, &d) in demand.iter().enumerate() {
            let want = if (start..end).contains(&ex) { d } else { 0 };
            assert_eq!(p.counts()[ex], want);
            assert_eq!(p.offsets()[ex + 1] - p.offsets()[ex], want);
        }
        // Dropped pairs contribute nothing to the combine.
        let h = 3;
        let x = rng.vec(t * h, -1.0, 1.0);
        let out = unpermute_f64(&gather(&x, h, &p).unwrap(), h, &p, &vec![1.0; t * k]).unwrap();
        for tok in 0..t {
            let kept = ids[tok * k..(tok + 1) * k]
                .iter()
                .filter(|&&i| (start..end).contains(&(i as usize)))
                .count() as f64;
            for j in 0..h {
                assert!((out[tok * h + j] - kept * x[tok * h + j]).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn capacity_truncates_in_flat_order_and_zero_pads() {
    let mut rng = Rng(14);
    for _ in 0..100 {
        let e = rng.range(1, 16);
        let k = rng.range(1, e.min(4));
        let t = rng.range(1, 64);
        let cap = rng.range(0, 12);
        let start = rng.range(0, e);
        let end = rng.range(start, e);
        let ids = random_ids(&mut rng, t, k, e);
        let opts = PermuteOptions {
            active_expert_range: Some(start..end),
            capacity: Some(cap),
            ..Default::default()
        };
        let p = permute(&ids, k, e, &opts).unwrap();
        assert_eq!(p.capacity(), Some(cap));
        assert_eq!(p.num_rows(), (end - start) * cap);
        for ex in 0..e {
            let active = (start..end).contains(&ex);
            let base = p.offsets()[ex];
            assert_eq!(base, (ex.clamp(start, end) - start) * cap);
            // The pairs routed to ex, in flat order: the first `cap` are kept, in order.
            let pairs: Vec<usize> = (0..t * k).filter(|&f| ids[f] == ex as i32).collect();
            let kept = if active { pairs.len().min(cap) } else { 0 };
            assert_eq!(p.counts()[ex], kept);
            for (j, &f) in pairs.iter().enumerate() {
                let want = if j < kept { (base + j) as i64 } else { -1 };
                assert_eq!(p.expanded_row_idx()[f], want);
            }
            if active {
                for j in 0..cap {
                    let r = base + j;
                    let got = (p.sorted_row_idx()[r], p.row_expert()[r]);
                    let want = match pairs.get(j).filter(|_| j < kept) {
                        Some(&f) => (f as i64, ex as i32),
                        None => (-1, -1),
                    };
                    assert_eq!(got, want);
                }
            }
        }
        // Padding rows gather as zeros; placed rows copy their token.
        let h = 2;
        let x: Vec<f64> = (0..t * h).map(|i| i as f64 + 1.0).collect();
        let ex = gather(&x, h, &p).unwrap();
        for (r, &src) in p.sorted_row_idx().iter().enumerate() {
            for j in 0..h {
                let want = if src < 0 {
                    0.0
                } else {
                    x[(src as usize / k) * h + j]
                };
                assert_eq!(ex[r * h + j], want);
            }
        }
    }
}

#[test]
fn k_major_convention_round_trips_and_differs_from_row_major() {
    let mut rng = Rng(15);
    let (t, k, e, h) = (23, 4, 10, 3);
    let ids = random_ids(&mut rng, t, k, e);
    let opts = PermuteOptions {
        flat_index: FlatIndex::KMajor,
        ..Default::default()
    };
    let p = permute(&ids, k, e, &opts).unwrap();
    let row_major = permute(&ids, k, e, &PermuteOptions::default()).unwrap();
    assert_eq!(p.flat_index(), FlatIndex::KMajor);
    assert_eq!(row_major.flat_index(), FlatIndex::RowMajor);
    assert_eq!(p.counts(), row_major.counts());
    assert_ne!(p.sorted_row_idx(), row_major.sorted_row_idx());
    for (i, &f) in p.sorted_row_idx().iter().enumerate() {
        let f = f as usize;
        // v1: f = k·T + t, the source token is f % T.
        let (tok, kk) = (f % t, f / t);
        assert_eq!(p.token_of(f), tok);
        assert_eq!(p.pair_index(tok, kk), f);
        assert_eq!(p.row_expert()[i], ids[tok * k + kk]);
        assert_eq!(p.expanded_row_idx()[f], i as i64);
    }
    // Stable in k-major order within an expert.
    for ex in 0..e {
        let seg = &p.sorted_row_idx()[p.offsets()[ex]..p.offsets()[ex + 1]];
        assert!(seg.windows(2).all(|w| w[0] < w[1]));
    }
    let x = rng.vec(t * h, -1.0, 1.0);
    let w = rng.vec(t * k, 0.0, 1.0);
    let a = unpermute_f64(&gather(&x, h, &p).unwrap(), h, &p, &w).unwrap();
    let b = unpermute_f64(&gather(&x, h, &row_major).unwrap(), h, &row_major, &w).unwrap();
    // Same pairs, same summation order over k: identical results.
    assert_eq!(a, b);
}

#[test]
fn repeated_expert_in_a_token_gets_a_row_per_pair() {
    let ids = [2, 2, 0, 2];
    let p = permute(&ids, 2, 3, &PermuteOptions::default()).unwrap();
    assert_eq!(p.sorted_row_idx(), &[2, 0, 1, 3]);
    assert_eq!(p.counts(), &[1, 0, 3]);
    let out = unpermute_f64(
        &gather(&[1.0, 10.0], 1, &p).unwrap(),
        1,
        &p,
        &[0.5, 0.25, 1.0, 2.0],
    )
    .unwrap();
    assert_eq!(out, vec![0.75, 30.0]);
}

#[test]
fn empty_inputs_permute_to_empty_layouts() {
    let p = permute(&[], 4, 8, &PermuteOptions::default()).unwrap();
    assert_eq!((p.num_tokens(), p.num_rows()), (0, 0));
    assert_eq!(p.offsets(), &[0; 9]);
    assert!(gather::<f32>(&[], 5, &p).unwrap().is_empty());
    assert!(unpermute(&[], 5, &p, &[]).unwrap().is_empty());
    let p = permute(&[], 1, 0, &PermuteOptions::default()).unwrap();
    assert_eq!(p.offsets(), &[0]);
}

#[test]
fn permute_gather_unpermute_reject_bad_inputs() {
    let d = PermuteOptions::default();
    assert_eq!(permute(&[0, 1], 0, 4, &d).unwrap_err(), MoeError::TopKZero);
    assert!(matches!(
        permute(&[0, 1, 2], 2, 4, &d).unwrap_err(),
        MoeError::NotWholeRows {
            what: "topk_ids",
            len: 3,
            row_len: 2,
            ..
        }
    ));
    assert_eq!(
        permute(&[0, 1, 4, 2], 2, 4, &d).unwrap_err(),
        MoeError::ExpertIdOutOfRange {
            index: 2,
            id: 4,
            num_experts: 4
        }
    );
    let err = permute(&[0, -1], 2, 4, &d).unwrap_err();
    assert_eq!(
        err,
        MoeError::ExpertIdOutOfRange {
            index: 1,
            id: -1,
            num_experts: 4
        }
    );
    assert!(
        err.to_string().contains("expected an expert id in 0..4"),
        "{err}"
    );
    // (`Range { .. }` rather than `3..2`: the reversed range is the point here.)
    for range in [Range { start: 3, end: 2 }, 0..5] {
        let opts = PermuteOptions {
            active_expert_range: Some(range.clone()),
            ..d.clone()
        };
        assert_eq!(
            permute(&[0, 1], 2, 4, &opts).unwrap_err(),
            MoeError::InvalidExpertRange {
                start: range.start,
                end: range.end,
                num_experts: 4
            }
        );
    }
    // An absurd capacity is an error, not a panic or an abort.
    let opts = PermuteOptions {
        capacity: Some(usize::MAX),
        ..d.clone()
    };
    assert!(matches!(
        permute(&[0, 1], 2, 4, &opts),
        Err(MoeError::SizeOverflow { .. })
    ));
    let opts = PermuteOptions {
        capacity: Some(1 << 60),
        ..d.clone()
    };
    assert!(matches!(
        permute(&[0, 1], 2, 4, &opts),
        Err(MoeError::Allocation { .. })
    ));
    // An absurd expert count likewise.
    assert!(matches!(
        permute(&[0], 1, usize::MAX, &d),
        Err(MoeError::Allocation { .. })
    ));

    let p = permute(&[0, 1, 1, 2], 2, 3, &d).unwrap();
    let err = gather(&[0.0f32; 5], 2, &p).unwrap_err();
    assert!(matches!(
        err,
        MoeError::LengthMismatch {
            what: "x",
            actual: 5,
            expected: 4,
            ..
        }
    ));
    assert!(err.to_string().contains("[T=2, H=2]"), "{err}");
    assert!(matches!(
        gather(&[0.0f32; 4], usize::MAX, &p),
        Err(MoeError::SizeOverflow { .. })
    ));
    assert!(matches!(
        unpermute(&[0.0; 7], 2, &p, &[1.0; 4]).unwrap_err(),
        MoeError::LengthMismatch {
            what: "y",
            actual: 7,
            expected: 8,
            ..
        }
    ));
    assert!(matches!(
        unpermute_f64(&[0.0; 8], 2, &p, &[1.0; 3]).unwrap_err(),
        MoeError::LengthMismatch {
            what: "weights",
            actual: 3,
            expected: 4,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// Experts and the layer
// ---------------------------------------------------------------------------------------

fn random_expert(rng: &mut Rng, h: usize, i: usize) -> ExpertWeights {
    let s = 1.0 / (h as f64).sqrt();
    ExpertWeights::new(
        h,
        i,
        rng.vec(i * h, -s, s),
        rng.vec(i * h, -s, s),
        rng.vec(h * i, -s, s),
    )
    .unwrap()
}

#[test]
fn silu_values() {
    assert_eq!(silu(0.0), 0.0);
    assert!(close(silu(1.0), 1.0 / (1.0 + (-1.0f64).exp()), 1e-15));
    assert!(close(silu(-2.0), -2.0 / (1.0 + 2.0f64.exp()), 1e-15));
    assert_eq!(silu(1000.0), 1000.0);
    let tiny = silu(-1000.0);
    assert!(tiny.is_finite() && tiny <= 0.0 && tiny > -1e-300);
    assert!(silu(f64::NAN).is_nan());
}

#[test]
fn expert_ffn_matches_a_hand_written_swiglu() {
    let mut rng = Rng(16);
    let (h, i, n) = (6, 5, 4);
    let w = random_expert(&mut rng, h, i);
    assert_eq!((w.hidden(), w.intermediate()), (h, i));
    let x = rng.vec(n * h, -1.0, 1.0);
    let y = expert_ffn(&w, &x).unwrap();
    for r in 0..n {
        let xr = &x[r * h..(r + 1) * h];
        let mut act = vec![0.0; i];
        for (a, act_a) in act.iter_mut().enumerate() {
            let g: f64 = (0..h).map(|c| w.gate()[a * h + c] * xr[c]).sum();
            let u: f64 = (0..h).map(|c| w.up()[a * h + c] * xr[c]).sum();
            *act_a = g / (1.0 + (-g).exp()) * u;
        }
        for o in 0..h {
            let want: f64 = (0..i).map(|a| w.down()[o * i + a] * act[a]).sum();
            assert!(close(y[r * h + o], want, 1e-13));
        }
    }
}

#[test]
fn expert_weights_reject_bad_shapes() {
    assert_eq!(
        ExpertWeights::new(0, 1, vec![], vec![], vec![]).unwrap_err(),
        MoeError::ZeroDimension { what: "hidden" }
    );
    assert_eq!(
        ExpertWeights::new(1, 0, vec![], vec![], vec![]).unwrap_err(),
        MoeError::ZeroDimension {
            what: "intermediate"
        }
    );
    let err = ExpertWeights::new(2, 3, vec![0.0; 6], vec![0.0; 5], vec![0.0; 6]).unwrap_err();
    assert!(matches!(
        err,
        MoeError::LengthMismatch {
            what: "up",
            actual: 5,
            expected: 6,
            ..
        }
    ));
    assert!(err.to_string().contains("[I=3, H=2]"), "{err}");
    let err = ExpertWeights::new(2, 3, vec![0.0; 6], vec![0.0; 6], vec![0.0; 7]).unwrap_err();
    assert!(matches!(err, MoeError::LengthMismatch { what: "down", .. }));
    let w = ExpertWeights::new(2, 3, vec![0.0; 6], vec![0.0; 6], vec![0.0; 6]).unwrap();
    assert!(matches!(
        expert_ffn(&w, &[0.0; 3]),
        Err(MoeError::NotWholeRows { .. })
    ));
}

#[test]
fn grouped_ffn_uses_local_experts_and_zero_padding() {
    let mut rng = Rng(17);
    let (t, k, e, h, i) = (20, 2, 6, 4, 3);
    let ids = random_ids(&mut rng, t, k, e);
    let experts: Vec<ExpertWeights> = (0..e).map(|_| random_expert(&mut rng, h, i)).collect();
    let opts = PermuteOptions {
        active_expert_range: Some(2..5),
        capacity: Some(4),
        ..Default::default()
    };
    let p = permute(&ids, k, e, &opts).unwrap();
    let x = rng.vec(t * h, -1.0, 1.0);
    let ex = gather(&x, h, &p).unwrap();
    let y = grouped_expert_ffn(&ex, &p, &experts[2..5]).unwrap();
    for (r, &src) in p.sorted_row_idx().iter().enumerate() {
        let row = &y[r * h..(r + 1) * h];
        if src < 0 {
            assert!(row.iter().all(|&v| v == 0.0));
        } else {
            let tok = src as usize / k;
            let want = expert_ffn(
                &experts[p.row_expert()[r] as usize],
                &x[tok * h..(tok + 1) * h],
            )
            .unwrap();
            assert_eq!(row, want.as_slice());
        }
    }
    assert_eq!(
        grouped_expert_ffn(&ex, &p, &experts).unwrap_err(),
        MoeError::ExpertCount {
            actual: 6,
            expected: 3
        }
    );
    let mut mixed = experts[2..5].to_vec();
    mixed[1] = random_expert(&mut rng, h + 1, i);
    let err = grouped_expert_ffn(&ex, &p, &mixed).unwrap_err();
    assert!(matches!(
        err,
        MoeError::HiddenMismatch {
            actual: 5,
            expected: 4,
            ..
        }
    ));
    assert!(err.to_string().contains("expert 3"), "{err}");
    assert!(matches!(
        grouped_expert_ffn(&ex[1..], &p, &experts[2..5]),
        Err(MoeError::LengthMismatch {
            what: "expanded_x",
            ..
        })
    ));
}

/// The layer against a per-token direct sum that skips permute entirely.
#[test]
fn layer_matches_per_token_direct_sum() {
    let mut rng = Rng(18);
    for case in 0..40 {
        let cfg = random_config(&mut rng, METHODS[case % 3], 64);
        let e = cfg.n_routed_experts;
        let h = rng.range(1, 32);
        let i = rng.range(1, 16);
        let t = rng.range(1, 24);
        let experts: Vec<ExpertWeights> = (0..e).map(|_| random_expert(&mut rng, h, i)).collect();
        let shared = (case % 2 == 0).then(|| random_expert(&mut rng, h, 2 * i));
        let gate_weight = rng.vec(e * h, -1.0, 1.0);
        let bias = (case % 4 < 2).then(|| rng.vec(e, -0.1, 0.1));
        let weights = MoeLayerWeights {
            gate_weight: &gate_weight,
            bias: bias.as_deref(),
            experts: &experts,
            shared: shared.as_ref(),
        };
        let x = rng.vec(t * h, -1.0, 1.0);
        let layer = moe_layer_reference(&cfg, &weights, &x).unwrap();
        assert_eq!(layer.out.len(), t * h);
        assert_eq!(layer.expert_out.len(), t * cfg.top_k * h);
        for tok in 0..t {
            let xt = &x[tok * h..(tok + 1) * h];
            let logits: Vec<f64> = (0..e)
                .map(|j| (0..h).map(|c| xt[c] * gate_weight[j * h + c]).sum())
                .collect();
            for (a, b) in logits.iter().zip(&layer.logits[tok * e..(tok + 1) * e]) {
                assert!(close(*a, *b, 1e-13));
            }
            let mut want = match &shared {
                Some(s) => expert_ffn(s, xt).unwrap(),
                None => vec![0.0; h],
            };
            for (&id, &w) in layer
                .routing
                .ids(tok)
                .iter()
                .zip(layer.routing.weights(tok))
            {
                let y = expert_ffn(&experts[id as usize], xt).unwrap();
                for (o, v) in want.iter_mut().zip(&y) {
                    *o += w * v;
                }
            }
            for (a, b) in layer.out[tok * h..(tok + 1) * h].iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "case {case}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn layer_rejects_bad_weights_and_inputs() {
    let cfg = MoeConfig {
        n_routed_experts: 4,
        n_group: 2,
        topk_group: 1,
        top_k: 2,
        ..MoeConfig::deepseek_v3()
    };
    let mut rng = Rng(19);
    let (h, i) = (3, 2);
    let experts: Vec<ExpertWeights> = (0..4).map(|_| random_expert(&mut rng, h, i)).collect();
    let gate = rng.vec(4 * h, -1.0, 1.0);
    let good = MoeLayerWeights {
        gate_weight: &gate,
        bias: None,
        experts: &experts,
        shared: None,
    };
    moe_layer_reference(&cfg, &good, &[0.1; 6]).unwrap();

    let few = MoeLayerWeights {
        experts: &experts[..3],
        ..good
    };
    assert_eq!(
        moe_layer_reference(&cfg, &few, &[0.1; 6]).unwrap_err(),
        MoeError::ExpertCount {
            actual: 3,
            expected: 4
        }
    );
    let wide_shared = random_expert(&mut rng, h + 1, i);
    let bad_shared = MoeLayerWeights {
        shared: Some(&wide_shared),
        ..good
    };
    let err = moe_layer_reference(&cfg, &bad_shared, &[0.1; 6]).unwrap_err();
    assert!(
        err.to_string()
            .contains("the shared expert has hidden size 4"),
        "{err}"
    );
    let short_gate = MoeLayerWeights {
        gate_weight: &gate[1..],
        ..good
    };
    assert!(matches!(
        moe_layer_reference(&cfg, &short_gate, &[0.1; 6]),
        Err(MoeError::LengthMismatch {
            what: "gate_weight",
            ..
        })
    ));
    assert!(matches!(
        moe_layer_reference(&cfg, &good, &[0.1; 5]),
        Err(MoeError::NotWholeRows { what: "x", .. })
    ));
    assert!(matches!(
        moe_layer_reference(&cfg, &good, &[0.1, f64::NAN, 0.1]),
        Err(MoeError::NonFinite { what: "logits", .. })
    ));
    let bad_bias = MoeLayerWeights {
        bias: Some(&[0.0; 3]),
        ..good
    };
    assert!(matches!(
        moe_layer_reference(&cfg, &bad_bias, &[0.1; 6]),
        Err(MoeError::LengthMismatch { what: "bias", .. })
    ));
    let bad_cfg = MoeConfig {
        topk_group: 3,
        ..cfg
    };
    assert!(matches!(
        moe_layer_reference(&bad_cfg, &good, &[0.1; 6]),
        Err(MoeError::TopkGroupOutOfRange { .. })
    ));
}

#[test]
fn softmax_weights_keep_logit_gaps_below_the_logits_ulp() {
    // Logits 2^53 and 2^53 − 1 differ by one unit; their sum with the maximum (2^54 − 1) would
    // round onto 2^54. Normalised over the two, the weights are 1 : e^-1 exactly.
    let cfg = MoeConfig {
        n_routed_experts: 4,
        n_group: 1,
        topk_group: 1,
        top_k: 2,
        routed_scaling_factor: 1.0,
        scoring: Scoring::Softmax,
        method: TopKMethod::GroupLimitedGreedy,
        norm_topk_prob: true,
    };
    let top = 2f64.powi(53);
    let r = route_f64(&cfg, &[0.0, top - 1.0, top, -5.0], None).unwrap();
    assert_eq!(r.ids(0), [2, 1]);
    let e = (-1f64).exp();
    let want = [1.0 / (1.0 + e), e / (1.0 + e)];
    for (got, want) in r.weights(0).iter().zip(want) {
        // A few f64 roundings of values ≤ 1.
        assert!((got - want).abs() <= 4.0 * f64::EPSILON, "{got} vs {want}");
    }
}
