//! The expert-parallel reference against brute force and against itself: layouts by direct
//! counting, normal dispatch's order and deduplication, identity round trips, and the normal
//! path (weights applied per rank, unweighted combine) equal to the low-latency path
//! (weighted combine) for arbitrary expert functions.

use ascend_npu::reference::ep::{
    EpConfig, EpError, EpShape, RankTokens, dispatch_layout, low_latency_combine,
    low_latency_dispatch, normal_combine, normal_dispatch,
};

#[path = "common/rng.rs"]
mod rng;

use rng::Rng;

/// One rank's random tokens: distinct expert ids per token, some -1.
struct Tokens {
    x: Vec<f64>,
    ids: Vec<i64>,
    w: Vec<f64>,
}

fn tokens(rng: &mut Rng, shape: &EpShape, t: usize) -> Tokens {
    let e = shape.config.num_experts as u64;
    let mut ids = Vec::new();
    for _ in 0..t {
        let mut row: Vec<i64> = Vec::new();
        while row.len() < shape.top_k {
            let id = if rng.below(8) == 0 {
                -1
            } else {
                rng.below(e) as i64
            };
            if id < 0 || !row.contains(&id) {
                row.push(id);
            }
        }
        ids.extend(row);
    }
    Tokens {
        x: (0..t * shape.hidden)
            .map(|_| rng.unit() * 2.0 - 1.0)
            .collect(),
        w: (0..t * shape.top_k).map(|_| rng.unit()).collect(),
        ids,
    }
}

fn view(t: &Tokens) -> RankTokens<'_> {
    RankTokens {
        x: &t.x,
        topk_idx: &t.ids,
        topk_weights: &t.w,
    }
}

fn shapes() -> Vec<EpShape> {
    [(2, 8, 2), (4, 16, 4), (8, 32, 8), (8, 8, 3)]
        .into_iter()
        .map(|(r, e, k)| EpShape {
            config: EpConfig {
                num_ranks: r,
                num_experts: e,
            },
            hidden: 5,
            top_k: k,
        })
        .collect()
}

#[test]
fn layout_matches_a_brute_force_count() {
    let mut rng = Rng(1);
    for shape in shapes() {
        let cfg = shape.config;
        let t = tokens(&mut rng, &shape, 23);
        let layout = dispatch_layout(&cfg, &t.ids, shape.top_k).unwrap();
        for e in 0..cfg.num_experts {
            let n = t.ids.iter().filter(|&&id| id == e as i64).count();
            assert_eq!(layout.num_tokens_per_expert[e], n);
        }
        for r in 0..cfg.num_ranks {
            let mut per_rank = 0;
            for tok in 0..23 {
                let ids = &t.ids[tok * shape.top_k..(tok + 1) * shape.top_k];
                let here = ids
                    .iter()
                    .any(|&id| id >= 0 && id as usize / cfg.local_experts() == r);
                assert_eq!(layout.is_token_in_rank[tok * cfg.num_ranks + r], here);
                per_rank += usize::from(here);
            }
            assert_eq!(layout.num_tokens_per_rank[r], per_rank);
        }
    }
}

#[test]
fn normal_dispatch_dedups_per_rank_orders_by_source_and_round_trips() {
    let mut rng = Rng(2);
    for shape in shapes() {
        let (cfg, h, k) = (shape.config, shape.hidden, shape.top_k);
        let counts: Vec<usize> = (0..cfg.num_ranks).map(|r| [0, 1, 7, 13][r % 4]).collect();
        let ranks: Vec<Tokens> = counts
            .iter()
            .map(|&n| tokens(&mut rng, &shape, n))
            .collect();
        let inputs: Vec<RankTokens<'_>> = ranks.iter().map(view).collect();
        let recv = normal_dispatch(&shape, &inputs).unwrap();
        for (dest, got) in recv.iter().enumerate() {
            // Ordered by (source rank, source token), each at most once.
            assert!(got.src.windows(2).all(|p| p[0] < p[1]), "rank {dest}");
            let mut expert_pairs = vec![0; cfg.local_experts()];
            for (src, t) in ranks.iter().enumerate() {
                let layout = dispatch_layout(&cfg, &t.ids, k).unwrap();
                let expected: Vec<usize> = (0..counts[src])
                    .filter(|&tok| layout.is_token_in_rank[tok * cfg.num_ranks + dest])
                    .collect();
                let arrived: Vec<usize> =
                    got.src.iter().filter(|s| s.0 == src).map(|s| s.1).collect();
                assert_eq!(arrived, expected, "rank {dest} from {src}");
                for (l, n) in expert_pairs.iter_mut().enumerate() {
                    *n += layout.num_tokens_per_expert[dest * cfg.local_experts() + l];
                }
            }
            assert_eq!(got.num_recv_tokens_per_expert, expert_pairs);
            // Rows, weights and local ids come from their source token.
            for (row, &(src, tok)) in got.src.iter().enumerate() {
                assert_eq!(
                    &got.x[row * h..(row + 1) * h],
                    &ranks[src].x[tok * h..(tok + 1) * h]
                );
                assert_eq!(
                    &got.topk_weights[row * k..(row + 1) * k],
                    &ranks[src].w[tok * k..(tok + 1) * k]
                );
                for kk in 0..k {
                    let id = ranks[src].ids[tok * k + kk];
                    let local = got.topk_idx[row * k + kk];
                    let here = id >= 0 && id as usize / cfg.local_experts() == dest;
                    let want = if here {
                        id % cfg.local_experts() as i64
                    } else {
                        -1
                    };
                    assert_eq!(local, want);
                }
            }
        }
        // Identity experts: combine returns x times the number of ranks each token visited.
        let y: Vec<Vec<f64>> = recv.iter().map(|r| r.x.clone()).collect();
        let back = normal_combine(&shape, &recv, &y, &counts).unwrap();
        for (src, t) in ranks.iter().enumerate() {
            let layout = dispatch_layout(&cfg, &t.ids, k).unwrap();
            for tok in 0..counts[src] {
                let visits = (0..cfg.num_ranks)
                    .filter(|&r| layout.is_token_in_rank[tok * cfg.num_ranks + r])
                    .count() as f64;
                for i in 0..h {
                    // A sum of `visits` equal terms: within a few ulps of the product.
                    let (got, want) = (back[src][tok * h + i], t.x[tok * h + i] * visits);
                    assert!(
                        (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                        "{got} {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn normal_and_low_latency_paths_agree_for_any_expert_function() {
    // Expert e computes f_e(x) = (e + 1)·x + e. The normal path weights each rank's partial
    // result (Σ over its experts of w_k f_e(x)) before an unweighted combine; the low-latency
    // path runs each (token, k) row through its expert and combines with the weights. Both
    // are Σ_k w_k f_{e_k}(x), summed in different orders: 1e-12 covers the rounding of a few
    // terms of magnitude ≤ 60.
    let mut rng = Rng(3);
    for shape in shapes() {
        let (cfg, h, k, local) = (
            shape.config,
            shape.hidden,
            shape.top_k,
            shape.config.local_experts(),
        );
        let counts: Vec<usize> = (0..cfg.num_ranks).map(|r| 3 + r % 5).collect();
        let ranks: Vec<Tokens> = counts
            .iter()
            .map(|&n| tokens(&mut rng, &shape, n))
            .collect();
        let inputs: Vec<RankTokens<'_>> = ranks.iter().map(view).collect();
        let f = |e: usize, v: f64| (e + 1) as f64 * v + e as f64;

        let recv = normal_dispatch(&shape, &inputs).unwrap();
        let partial: Vec<Vec<f64>> = recv
            .iter()
            .enumerate()
            .map(|(dest, r)| {
                let mut y = vec![0.0; r.x.len()];
                for row in 0..r.src.len() {
                    for kk in 0..k {
                        let l = r.topk_idx[row * k + kk];
                        if l < 0 {
                            continue;
                        }
                        let (e, w) = (dest * local + l as usize, r.topk_weights[row * k + kk]);
                        for i in 0..h {
                            y[row * h + i] += w * f(e, r.x[row * h + i]);
                        }
                    }
                }
                y
            })
            .collect();
        let normal = normal_combine(&shape, &recv, &partial, &counts).unwrap();

        let max_tokens = *counts.iter().max().unwrap();
        let masked = low_latency_dispatch(&shape, &inputs, max_tokens).unwrap();
        let y: Vec<Vec<f64>> = masked
            .iter()
            .enumerate()
            .map(|(dest, m)| {
                let mut y = m.x.clone();
                for (l, rows) in m.src.iter().enumerate() {
                    for row in 0..rows.len() {
                        let at = (l * m.slab_rows + row) * h;
                        for v in &mut y[at..at + h] {
                            *v = f(dest * local + l, *v);
                        }
                    }
                }
                y
            })
            .collect();
        let ll = low_latency_combine(&shape, &inputs, &masked, &y).unwrap();

        for (src, t) in ranks.iter().enumerate() {
            for tok in 0..counts[src] {
                for i in 0..h {
                    let direct: f64 = (0..k)
                        .filter(|&kk| t.ids[tok * k + kk] >= 0)
                        .map(|kk| {
                            t.w[tok * k + kk] * f(t.ids[tok * k + kk] as usize, t.x[tok * h + i])
                        })
                        .sum();
                    let at = tok * h + i;
                    assert!(
                        (normal[src][at] - direct).abs() < 1e-12,
                        "normal {src} {tok}"
                    );
                    assert!(
                        (ll[src][at] - direct).abs() < 1e-12,
                        "low latency {src} {tok}"
                    );
                }
            }
        }
        // Slab accounting: recv_count per expert is its (token, k) pairs; rows past it unused.
        for (dest, m) in masked.iter().enumerate() {
            for l in 0..local {
                let e = (dest * local + l) as i64;
                let pairs: usize = ranks
                    .iter()
                    .map(|t| t.ids.iter().filter(|&&id| id == e).count())
                    .sum();
                assert_eq!(m.recv_count[l], pairs);
                assert_eq!(m.src[l].len(), pairs);
            }
        }
    }
}

#[test]
fn bad_inputs_get_clear_errors() {
    let cfg = EpConfig {
        num_ranks: 3,
        num_experts: 8,
    };
    assert!(matches!(
        cfg.validate(),
        Err(EpError::Config {
            ranks: 3,
            experts: 8
        })
    ));
    // No ranks, no experts: each alone is refused (not divided by, not split into nothing).
    for (ranks, experts) in [(0, 8), (2, 0)] {
        let cfg = EpConfig {
            num_ranks: ranks,
            num_experts: experts,
        };
        assert_eq!(cfg.validate(), Err(EpError::Config { ranks, experts }));
    }
    let ok = EpConfig {
        num_ranks: 2,
        num_experts: 8,
    };
    let err = dispatch_layout(&ok, &[0, 8], 2).unwrap_err();
    assert!(matches!(err, EpError::ExpertId { id: 8, .. }), "{err}");
    let err = dispatch_layout(&ok, &[0, -2], 2).unwrap_err();
    assert!(
        matches!(
            err,
            EpError::ExpertId {
                index: 1,
                id: -2,
                ..
            }
        ),
        "{err}"
    );
    let err = shape_error(dispatch_layout(&ok, &[0, 1, 2], 2));
    assert!(err.contains("topk_idx 3"), "{err}");
    let err = shape_error(dispatch_layout(&ok, &[0, 1], 0));
    assert!(err.contains("top_k 0 and hidden 1"), "{err}");
    let shape = EpShape {
        config: ok,
        hidden: 2,
        top_k: 1,
    };
    let x = [1.0, 2.0, 3.0, 4.0];
    let (ids, w) = ([0i64, 1], [1.0, 1.0]);
    let r = RankTokens {
        x: &x,
        topk_idx: &ids,
        topk_weights: &w,
    };
    // One rank's tokens for a two-rank config; too many tokens for the low-latency buffer.
    let err = shape_error(normal_dispatch(&shape, &[r]));
    assert!(
        err.contains("1 per-rank entries; expected one per rank (2)"),
        "{err}"
    );
    let err = shape_error(low_latency_dispatch(&shape, &[r, r], 1));
    assert!(
        err.contains("rank 0 dispatches 2 tokens; expected at most max_tokens_per_rank = 1"),
        "{err}"
    );
    let bad = RankTokens { x: &x[..3], ..r };
    let err = shape_error(normal_dispatch(&shape, &[r, bad]));
    assert!(err.contains("rank 1: x has 3, topk_idx 2"), "{err}");
    let recv = normal_dispatch(&shape, &[r, r]).unwrap();
    let err = shape_error(normal_combine(&shape, &recv, &[vec![], vec![]], &[2, 2]));
    assert!(err.contains("rank 0: y has 0 elements"), "{err}");
    let y: Vec<Vec<f64>> = recv.iter().map(|r| r.x.clone()).collect();
    let err = shape_error(normal_combine(&shape, &recv, &y, &[1, 1]));
    assert!(
        err.contains("expected the handle of the same dispatch"),
        "{err}"
    );
}

#[test]
fn low_latency_slabs_take_exactly_their_rows_and_refuse_one_more() {
    // Two ranks of one expert each, top_k 2, three tokens per rank: every token chooses the last
    // expert, so its slab (max_tokens · R = 6 rows) is exactly full.
    let shape = EpShape {
        config: EpConfig {
            num_ranks: 2,
            num_experts: 2,
        },
        hidden: 1,
        top_k: 2,
    };
    let (x, w) = ([1.0, 2.0, 3.0], [1.0; 6]);
    let ids = [1i64, 0, -1, 1, 1, -1];
    let r = RankTokens {
        x: &x,
        topk_idx: &ids,
        topk_weights: &w,
    };
    let masked = low_latency_dispatch(&shape, &[r, r], 3).unwrap();
    assert_eq!(masked[1].slab_rows, 6);
    assert_eq!(masked[1].recv_count, [6]);
    assert_eq!(masked[1].x, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    // A repeated id in one token: seven rows for a slab of six, refused rather than written
    // past the slab.
    let repeated = [1i64, 1, -1, 1, 1, -1];
    let bad = RankTokens {
        topk_idx: &repeated,
        ..r
    };
    let err = shape_error(low_latency_dispatch(&shape, &[r, bad], 3));
    assert!(
        err.contains("expert 1 receives 7 rows; expected at most 6"),
        "{err}"
    );
}

/// The message of an [`EpError::Shape`]; any other outcome fails the test.
fn shape_error<T: std::fmt::Debug>(r: Result<T, EpError>) -> String {
    match r {
        Err(EpError::Shape(msg)) => msg,
        other => panic!("expected EpError::Shape, got {other:?}"),
    }
}
