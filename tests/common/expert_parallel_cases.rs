//! Expert-parallel dispatch and combine on ranks (one device and one thread each), against
//! `reference::ep` on the same routings: exact where the device only moves bytes, within
//! bounds derived from the formats where it rounds.

use ascend_npu::fp8::{BlockQuantized, ScaleFormat, quantize_act};
use ascend_npu::ops::ep::{
    DispatchLayout, EpConfig, EpShape, EpTransport, Payload, PayloadKind, Tokens, counts_row,
    dispatch_layout, low_latency_combine, low_latency_combine_traffic, low_latency_dispatch,
    low_latency_dispatch_traffic, normal_combine, normal_combine_traffic, normal_dispatch,
    normal_dispatch_traffic, normal_redispatch,
};
use ascend_npu::ops::fp8::Fp8Activations;
use ascend_npu::reference::ep as reference;
use ascend_npu::{DeviceSlice, Error, Stream};
use half::bf16;

use super::Rng;
use super::ranks::{on_ranks, rank_counts};

/// Hidden size: two FP8 tiles, one of them partial.
const HIDDEN: usize = 200;
const TOP_K: usize = 3;

/// `ranks` ranks of `local` experts each.
pub fn ep_shape(ranks: u32, local: usize, hidden: usize, top_k: usize) -> EpShape {
    EpShape {
        config: EpConfig {
            num_ranks: ranks as usize,
            num_experts: local * ranks as usize,
        },
        hidden,
        top_k,
    }
}

/// Three experts per rank: an odd count.
fn shape(ranks: u32) -> EpShape {
    ep_shape(ranks, 3, HIDDEN, TOP_K)
}

/// One rank's tokens on the host: bf16 `x [T, H]`, distinct ids per token with some `-1`
/// (a whole token may go nowhere), f32 weights.
struct HostTokens {
    x: Vec<bf16>,
    ids: Vec<i32>,
    weights: Vec<f32>,
}

impl HostTokens {
    fn new(shape: &EpShape, rank: u32, seed: u64) -> Self {
        let mut rng = Rng::new(seed * 7919 + rank as u64);
        // Odd token counts that differ per rank; rank 1 has none at all in some seeds.
        let t = if rank == 1 && seed % 3 == 0 {
            0
        } else {
            5 + 4 * rank as usize + seed as usize % 3
        };
        let e = shape.config.num_experts;
        let x = (0..t * HIDDEN)
            .map(|_| bf16::from_f32(rng.f32() * 3.0))
            .collect();
        let mut ids = Vec::with_capacity(t * TOP_K);
        for tok in 0..t {
            let mut chosen: Vec<i32> = Vec::new();
            while chosen.len() < TOP_K {
                let pick = if tok % 5 == 4 || rng.next_u64() % 7 == 0 {
                    -1
                } else {
                    (rng.next_u64() % e as u64) as i32
                };
                if pick < 0 || !chosen.contains(&pick) {
                    chosen.push(pick);
                }
            }
            ids.extend(chosen);
        }
        let weights = (0..t * TOP_K).map(|_| rng.f32().abs() + 0.1).collect();
        HostTokens { x, ids, weights }
    }

    fn tokens(&self) -> usize {
        self.ids.len() / TOP_K
    }

    fn x_f64(&self) -> Vec<f64> {
        self.x.iter().map(|v| v.to_f64()).collect()
    }
}

/// Every rank's host tokens and their f64 forms, for the reference.
struct World {
    shape: EpShape,
    ranks: Vec<HostTokens>,
    x: Vec<Vec<f64>>,
    ids: Vec<Vec<i64>>,
    w: Vec<Vec<f64>>,
}

impl World {
    fn new(n: u32, seed: u64) -> Self {
        let shape = shape(n);
        let ranks: Vec<HostTokens> = (0..n).map(|r| HostTokens::new(&shape, r, seed)).collect();
        World {
            shape,
            x: ranks.iter().map(HostTokens::x_f64).collect(),
            ids: ranks
                .iter()
                .map(|t| t.ids.iter().map(|&e| e as i64).collect())
                .collect(),
            w: ranks
                .iter()
                .map(|t| t.weights.iter().map(|&w| w as f64).collect())
                .collect(),
            ranks,
        }
    }

    fn reference_inputs(&self) -> Vec<reference::RankTokens<'_>> {
        (0..self.ranks.len())
            .map(|r| reference::RankTokens {
                x: &self.x[r],
                topk_idx: &self.ids[r],
                topk_weights: &self.w[r],
            })
            .collect()
    }
}

/// The rank's tokens uploaded.
struct Uploaded {
    x: ascend_npu::DeviceBuffer<bf16>,
    ids: ascend_npu::DeviceBuffer<i32>,
    w: ascend_npu::DeviceBuffer<f32>,
}

impl Uploaded {
    fn new(stream: &Stream, t: &HostTokens) -> Self {
        Uploaded {
            x: stream.upload(&t.x).unwrap(),
            ids: stream.upload(&t.ids).unwrap(),
            w: stream.upload(&t.weights).unwrap(),
        }
    }

    fn tokens<'a>(&'a self, x: Payload<'a>) -> Tokens<'a> {
        Tokens {
            x,
            topk_idx: &self.ids,
            topk_weights: &self.w,
        }
    }
}

fn f64s(v: &[bf16]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

pub fn layout_matches_a_brute_force_count() {
    for n in rank_counts(&[2, 4, 8]) {
        let world = World::new(n, 1);
        let got = on_ranks(n, |comm, stream| {
            let t = &world.ranks[comm.rank() as usize];
            let ids = stream.upload(&t.ids).unwrap();
            dispatch_layout(&world.shape.config, &ids, TOP_K).unwrap()
        });
        for (r, layout) in got.iter().enumerate() {
            let want =
                reference::dispatch_layout(&world.shape.config, &world.ids[r], TOP_K).unwrap();
            assert_eq!(
                layout.num_tokens_per_rank, want.num_tokens_per_rank,
                "rank {r}"
            );
            assert_eq!(
                layout.num_tokens_per_expert, want.num_tokens_per_expert,
                "rank {r}"
            );
            assert_eq!(layout.is_token_in_rank, want.is_token_in_rank, "rank {r}");
            // Brute force again, from the definition: a token counted once per rank.
            let t = world.ranks[r].tokens();
            let l = world.shape.config.local_experts();
            for dest in 0..n as usize {
                let count = (0..t)
                    .filter(|&tok| {
                        world.ids[r][tok * TOP_K..(tok + 1) * TOP_K]
                            .iter()
                            .any(|&e| e >= 0 && e as usize / l == dest)
                    })
                    .count();
                assert_eq!(layout.num_tokens_per_rank[dest], count, "rank {r} → {dest}");
            }
        }
    }
}

pub fn normal_dispatch_orders_dedups_and_matches_the_reference() {
    for n in rank_counts(&[2, 4, 8]) {
        for seed in [2, 3] {
            let world = World::new(n, seed);
            let want = reference::normal_dispatch(&world.shape, &world.reference_inputs()).unwrap();
            let got = on_ranks(n, |comm, stream| {
                let up = Uploaded::new(stream, &world.ranks[comm.rank() as usize]);
                let recv =
                    normal_dispatch(comm, stream, &world.shape, up.tokens(Payload::Bf16(&up.x)))
                        .unwrap();
                (
                    recv.x.bf16().unwrap().to_vec().unwrap(),
                    recv.topk_idx.to_vec().unwrap(),
                    recv.topk_weights.to_vec().unwrap(),
                    recv.handle.recv_src().to_vec(),
                    recv.num_recv_tokens_per_expert,
                )
            });
            for (r, ((x, ids, w, src, per_expert), want)) in got.into_iter().zip(&want).enumerate()
            {
                let ctx = format!("{n} ranks, seed {seed}, rank {r}");
                // Bytes moved, not computed: exact.
                assert_eq!(
                    src, want.src,
                    "{ctx}: order (source rank, source token), deduped"
                );
                assert_eq!(f64s(&x), want.x, "{ctx}: rows");
                let ids: Vec<i64> = ids.iter().map(|&e| e as i64).collect();
                assert_eq!(ids, want.topk_idx, "{ctx}: local ids");
                let w: Vec<f64> = w.iter().map(|&v| v as f64).collect();
                assert_eq!(w, want.topk_weights, "{ctx}: weights");
                assert_eq!(per_expert, want.num_recv_tokens_per_expert, "{ctx}");
            }
        }
    }
}

pub fn identity_experts_round_trip_exactly_and_replay_bit_identically() {
    for n in rank_counts(&[2, 4, 8]) {
        let world = World::new(n, 4);
        let inputs = world.reference_inputs();
        let received = reference::normal_dispatch(&world.shape, &inputs).unwrap();
        let y: Vec<Vec<f64>> = received.iter().map(|r| r.x.clone()).collect();
        let tokens: Vec<usize> = world.ranks.iter().map(HostTokens::tokens).collect();
        let want = reference::normal_combine(&world.shape, &received, &y, &tokens).unwrap();
        let got = on_ranks(n, |comm, stream| {
            let up = Uploaded::new(stream, &world.ranks[comm.rank() as usize]);
            let recv = normal_dispatch(comm, stream, &world.shape, up.tokens(Payload::Bf16(&up.x)))
                .unwrap();
            let y = recv.x.bf16().unwrap();
            let once = normal_combine(comm, stream, &recv.handle, y, None).unwrap();
            // Replay: the same rows again through the cached handle, combined again.
            let again =
                normal_redispatch(comm, stream, &recv.handle, Payload::Bf16(&up.x)).unwrap();
            let twice =
                normal_combine(comm, stream, &recv.handle, again.bf16().unwrap(), None).unwrap();
            (once.to_vec().unwrap(), twice.to_vec().unwrap())
        });
        for (r, (once, twice)) in got.iter().enumerate() {
            assert_eq!(once, twice, "{n} ranks, rank {r}: replay is bit-identical");
            // x·(ranks visited), at most 8 bf16 terms: exact in fp32, so one rounding to
            // bf16 of the f64 reference is the exact expected value.
            let want: Vec<bf16> = want[r].iter().map(|&v| bf16::from_f64(v)).collect();
            assert_eq!(once, &want, "{n} ranks, rank {r}");
        }
    }
}

pub fn normal_combine_of_weighted_results_is_within_the_fp32_then_bf16_bound() {
    // Results that differ per rank (y = x · (1 + rank)), so order and rounding matter.
    for n in rank_counts(&[2, 4]) {
        let world = World::new(n, 5);
        let received = reference::normal_dispatch(&world.shape, &world.reference_inputs()).unwrap();
        let scale = |r: usize, v: f64| bf16::from_f64(v * (1.0 + r as f64) / 3.0);
        let y: Vec<Vec<f64>> = received
            .iter()
            .enumerate()
            .map(|(r, rec)| rec.x.iter().map(|&v| scale(r, v).to_f64()).collect())
            .collect();
        let tokens: Vec<usize> = world.ranks.iter().map(HostTokens::tokens).collect();
        let want = reference::normal_combine(&world.shape, &received, &y, &tokens).unwrap();
        let got = on_ranks(n, |comm, stream| {
            let r = comm.rank() as usize;
            let up = Uploaded::new(stream, &world.ranks[r]);
            let recv = normal_dispatch(comm, stream, &world.shape, up.tokens(Payload::Bf16(&up.x)))
                .unwrap();
            let x = recv.x.bf16().unwrap().to_vec().unwrap();
            let y: Vec<bf16> = x.iter().map(|v| scale(r, v.to_f64())).collect();
            let y = stream.upload(&y).unwrap();
            normal_combine(comm, stream, &recv.handle, &y, None)
                .unwrap()
                .to_vec()
                .unwrap()
        });
        for (r, out) in got.iter().enumerate() {
            for (i, (&g, &w)) in out.iter().zip(&want[r]).enumerate() {
                // At most R terms summed in fp32 (each step ≤ 2^-24 relative of the running
                // sum, bounded by Σ|y| ≤ R·R as |y| < R), then one bf16 rounding: half an ulp
                // of 8 significant bits, 2^-8 relative.
                let fp32 = n as f64 * 2f64.powi(-24) * (n * n) as f64;
                let bound = 2f64.powi(-8) * w.abs() + 2.0 * fp32;
                assert!(
                    (g.to_f64() - w).abs() <= bound,
                    "rank {r} [{i}]: {g} vs {w}"
                );
            }
        }
    }
}

/// The host quantization of rank `r`'s rows, as the rank dispatches them.
fn quantized(t: &HostTokens) -> BlockQuantized {
    quantize_act(&t.x, t.tokens(), HIDDEN, ScaleFormat::Fp32).unwrap()
}

pub fn fp8_payload_arrives_exactly_and_dequantizes_within_the_format_bound() {
    for n in rank_counts(&[2, 4, 8]) {
        let world = World::new(n, 6);
        let want = reference::normal_dispatch(&world.shape, &world.reference_inputs()).unwrap();
        let q: Vec<BlockQuantized> = world.ranks.iter().map(quantized).collect();
        let got = on_ranks(n, |comm, stream| {
            let r = comm.rank() as usize;
            let up = Uploaded::new(stream, &world.ranks[r]);
            let fp8 = Fp8Activations::from_quantized(stream, &q[r]).unwrap();
            let recv =
                normal_dispatch(comm, stream, &world.shape, up.tokens(Payload::Fp8(&fp8))).unwrap();
            let a = recv.x.fp8().unwrap();
            let codes: Vec<u8> = a
                .codes()
                .to_vec()
                .unwrap()
                .iter()
                .map(|c| c.to_bits())
                .collect();
            (
                codes,
                a.scales().to_vec().unwrap(),
                recv.handle.recv_src().to_vec(),
            )
        });
        let tiles = HIDDEN.div_ceil(128);
        for (r, (codes, scales, src)) in got.iter().enumerate() {
            assert_eq!(src, &want[r].src, "rank {r}");
            for (row, &(s, tok)) in src.iter().enumerate() {
                // The bytes travel unchanged.
                let sent: Vec<u8> = q[s].codes()[tok * HIDDEN..(tok + 1) * HIDDEN]
                    .iter()
                    .map(|c| c.to_bits())
                    .collect();
                assert_eq!(
                    &codes[row * HIDDEN..(row + 1) * HIDDEN],
                    &sent[..],
                    "rank {r} row {row}"
                );
                assert_eq!(
                    &scales[row * tiles..(row + 1) * tiles],
                    &q[s].scales()[tok * tiles..(tok + 1) * tiles]
                );
                // And dequantize to the reference row within E4M3's bound: half an ulp is
                // 2^-4 relative for normals, 2^-10·scale absolute for subnormals (3 mantissa
                // bits, minimum exponent -6), plus the f32 product's 2^-24.
                for c in 0..HIDDEN {
                    let s = scales[row * tiles + c / 128] as f64;
                    let code = ascend_npu::fp8::F8E4M3::from_bits(codes[row * HIDDEN + c]);
                    let deq = code.to_f32() as f64 * s;
                    let x = want[r].x[row * HIDDEN + c];
                    let bound = (2f64.powi(-4) * x.abs()).max(2f64.powi(-10) * s)
                        + 2f64.powi(-24) * x.abs();
                    assert!(
                        (deq - x).abs() <= bound,
                        "rank {r} row {row} col {c}: {deq} vs {x}"
                    );
                }
            }
        }
    }
}

pub fn low_latency_fills_the_masked_layout_and_never_reads_its_garbage() {
    for n in rank_counts(&[2, 4, 8]) {
        let world = World::new(n, 7);
        let max_tokens = world.ranks.iter().map(HostTokens::tokens).max().unwrap() + 2;
        let inputs = world.reference_inputs();
        let want = reference::low_latency_dispatch(&world.shape, &inputs, max_tokens).unwrap();
        let l = world.shape.config.local_experts();
        let got = on_ranks(n, |comm, stream| {
            let up = Uploaded::new(stream, &world.ranks[comm.rank() as usize]);
            let recv = low_latency_dispatch(
                comm,
                stream,
                &world.shape,
                up.tokens(Payload::Bf16(&up.x)),
                max_tokens,
            )
            .unwrap();
            let masked = recv.x.bf16().unwrap().to_vec().unwrap();
            // Identity experts whose garbage rows are NaN: a read of one would show.
            let slab = recv.handle.slab_rows();
            let mut y = vec![bf16::NAN; masked.len()];
            for (e, &count) in recv.recv_count.iter().enumerate() {
                let rows = e * slab * HIDDEN..(e * slab + count) * HIDDEN;
                y[rows.clone()].copy_from_slice(&masked[rows]);
            }
            let y = stream.upload(&y).unwrap();
            let out = low_latency_combine(comm, stream, &recv.handle, &y, &up.w).unwrap();
            (
                masked,
                recv.recv_count,
                recv.handle
                    .recv_src()
                    .expect("H 8 takes the portable path")
                    .to_vec(),
                out.to_vec().unwrap(),
            )
        });
        let y: Vec<Vec<f64>> = want.iter().map(|m| m.x.clone()).collect();
        let combined = reference::low_latency_combine(&world.shape, &inputs, &want, &y).unwrap();
        for (r, (masked, count, src, out)) in got.iter().enumerate() {
            let m = &want[r];
            assert_eq!(count, &m.recv_count, "{n} ranks, rank {r}");
            for e in 0..l {
                let src_e: Vec<(usize, usize, usize)> = src[e].clone();
                assert_eq!(
                    src_e, m.src[e],
                    "rank {r} expert {e}: (rank, token, k) order"
                );
                let rows = e * m.slab_rows * HIDDEN..(e * m.slab_rows + count[e]) * HIDDEN;
                assert_eq!(
                    f64s(&masked[rows.clone()]),
                    m.x[rows],
                    "rank {r} expert {e}"
                );
            }
            for (i, (&g, &w)) in out.iter().zip(&combined[r]).enumerate() {
                // Σ_k w_k·x over ≤ K terms in fp32 (products and sums each ≤ 2^-24 relative of
                // Σ|w x| ≤ K·1.1·3), then one bf16 rounding (2^-8 relative).
                let bound = 2f64.powi(-8) * w.abs()
                    + 2.0 * TOP_K as f64 * 2f64.powi(-24) * 3.3 * TOP_K as f64;
                assert!(g.is_finite(), "rank {r} [{i}]: a garbage row was read");
                assert!(
                    (g.to_f64() - w).abs() <= bound,
                    "rank {r} [{i}]: {g} vs {w}"
                );
            }
        }
    }
}

/// Every token of every rank chooses the last expert (the last slab of the last rank), so its
/// slab of `max_tokens · R` rows is exactly full: dispatched, counted, combined. One repeated id
/// more is one row past the slab, and every rank refuses it.
pub fn low_latency_slabs_fill_exactly_and_refuse_one_row_more() {
    const H: usize = 8;
    for n in rank_counts(&[2]) {
        // Three local experts: the last global expert, 3n - 1, is past n + 3 and 2n.
        let shape = ep_shape(n, 3, H, 2);
        let (e, max_tokens) = (shape.config.num_experts, 3);
        let last = e as i32 - 1;
        let ids = |repeat: bool| -> Vec<i32> {
            (0..max_tokens as i32)
                .flat_map(|t| [last, if repeat && t == 0 { last } else { t % last }])
                .collect()
        };
        let x_of = |rank: u32| -> Vec<bf16> {
            (0..max_tokens * H)
                .map(|i| bf16::from_f32((1 + rank as usize + i % 5) as f32 / 8.0))
                .collect()
        };
        let got = on_ranks(n, |comm, stream| {
            let rank = comm.rank();
            let x = stream.upload(&x_of(rank)).unwrap();
            let w = stream.upload(&[0.5f32, 0.25].repeat(max_tokens)).unwrap();
            let run = |ids: &[i32]| {
                let ids = stream.upload(ids).unwrap();
                let t = Tokens {
                    x: Payload::Bf16(&x),
                    topk_idx: &ids,
                    topk_weights: &w,
                };
                let recv = low_latency_dispatch(comm, stream, &shape, t, max_tokens)?;
                // H 8 is below the MC2 operators' 1024.
                assert_eq!(recv.handle.transport(), EpTransport::Portable);
                let y = recv.x.bf16().unwrap();
                let out = low_latency_combine(comm, stream, &recv.handle, y, &w)?;
                let sent = (recv.handle.sent_rows(), recv.handle.sent_rows_per_rank());
                Ok::<_, Error>((recv.recv_count, sent, out.to_vec().unwrap()))
            };
            let full = run(&ids(false)).unwrap();
            // Only rank 0 repeats the id; every rank sees the counts and refuses.
            let over = run(&ids(rank == 0)).err();
            (full, over)
        });
        let slab = max_tokens * n as usize;
        for (r, ((count, (sent, per_rank), out), over)) in got.into_iter().enumerate() {
            let mut want_count = vec![0; 3];
            let mut want_per_rank = vec![0; n as usize];
            for src in 0..n as usize {
                for &g in ids(false).iter() {
                    want_per_rank[g as usize / 3] += usize::from(src == r);
                    if g as usize / 3 == r {
                        want_count[g as usize % 3] += 1;
                    }
                }
            }
            if r == n as usize - 1 {
                assert_eq!(
                    want_count[2], slab,
                    "the last expert's slab is exactly full"
                );
            }
            assert_eq!(count, want_count, "rank {r}: recv_count");
            assert_eq!(sent, 2 * max_tokens, "rank {r}: sent_rows");
            assert_eq!(per_rank, want_per_rank, "rank {r}: sent_rows_per_rank");
            // Identity experts: 0.5·x + 0.25·x, exact in bf16 for these x.
            let want: Vec<bf16> = x_of(r as u32)
                .iter()
                .map(|v| bf16::from_f32(0.75 * v.to_f32()))
                .collect();
            assert_eq!(out, want, "rank {r}: combined");
            match over {
                Some(Error::InvalidArgument { what, expected }) => {
                    assert_eq!(
                        what,
                        format!("expert {last} receives more than {slab} rows")
                    );
                    assert!(
                        expected.contains("distinct ids within a token"),
                        "{expected}"
                    );
                }
                other => panic!("rank {r}: one row past the slab gave {other:?}"),
            }
        }
    }
}

pub fn bad_inputs_are_clear_errors_on_every_rank() {
    for n in rank_counts(&[2]) {
        let world = World::new(n, 8);
        let errs = on_ranks(n, |comm, stream| {
            let up = Uploaded::new(stream, &world.ranks[comm.rank() as usize]);
            let mut errs: Vec<Error> = Vec::new();
            // A config for another rank count.
            let mut wrong = world.shape;
            wrong.config.num_ranks = n as usize * 2;
            wrong.config.num_experts = n as usize * 4;
            errs.push(
                normal_dispatch(comm, stream, &wrong, up.tokens(Payload::Bf16(&up.x)))
                    .err()
                    .unwrap(),
            );
            // An expert id out of range (the same on every rank, so every rank refuses).
            let ids = stream
                .upload(&vec![
                    world.shape.config.num_experts as i32;
                    up.ids.len().max(TOP_K)
                ])
                .unwrap();
            let x = stream
                .upload(&vec![
                    bf16::ZERO;
                    (up.ids.len().max(TOP_K) / TOP_K) * HIDDEN
                ])
                .unwrap();
            let w = stream.upload(&vec![0f32; up.ids.len().max(TOP_K)]).unwrap();
            let t = Tokens {
                x: Payload::Bf16(&x),
                topk_idx: &ids,
                topk_weights: &w,
            };
            errs.push(
                normal_dispatch(comm, stream, &world.shape, t)
                    .err()
                    .unwrap(),
            );
            // A payload of the wrong size.
            let t = Tokens {
                x: Payload::Bf16(&w_as_x(stream)),
                topk_idx: &up.ids,
                topk_weights: &up.w,
            };
            errs.push(
                low_latency_dispatch(comm, stream, &world.shape, t, 64)
                    .err()
                    .unwrap(),
            );
            // A zero hidden size or top_k, each alone (the other valid).
            for (hidden, top_k) in [(0, TOP_K), (HIDDEN, 0)] {
                let mut zero = world.shape;
                (zero.hidden, zero.top_k) = (hidden, top_k);
                errs.push(
                    normal_dispatch(comm, stream, &zero, up.tokens(Payload::Bf16(&up.x)))
                        .err()
                        .unwrap(),
                );
            }
            errs.into_iter().map(|e| e.to_string()).collect::<Vec<_>>()
        });
        for e in &errs {
            assert!(e[0].contains("communicator"), "{}", e[0]);
            assert!(e[1].contains("expected -1 or an expert id"), "{}", e[1]);
            assert!(e[2].contains("payload"), "{}", e[2]);
            assert!(e[3].contains("hidden 0 and top_k 3"), "{}", e[3]);
            assert!(e[4].contains("both at least 1"), "{}", e[4]);
        }
    }
}

fn w_as_x(stream: &Stream) -> ascend_npu::DeviceBuffer<bf16> {
    stream.upload(&[bf16::ONE; 3]).unwrap()
}

/// A layout from the host counts, as benches use it.
pub fn host_layout_refuses_bad_ids() {
    let config = EpConfig {
        num_ranks: 2,
        num_experts: 4,
    };
    let err = DispatchLayout::from_host(&config, &[0, -2], 2).unwrap_err();
    assert!(err.to_string().contains("topk_idx[0][1] = -2"), "{err}");
    // Not whole rows of top_k ids, and a zero top_k: refused, not truncated or divided by.
    for (ids, top_k) in [(&[0, 1, 2][..], 2), (&[0, 1][..], 0)] {
        let err = DispatchLayout::from_host(&config, ids, top_k).unwrap_err();
        assert!(
            err.to_string().contains("[T, top_k] with top_k >= 1"),
            "{err}"
        );
    }
    let layout = DispatchLayout::from_host(&config, &[0, 1, -1, 3], 2).unwrap();
    assert_eq!(layout.num_tokens_per_rank, [1, 1]);
}

/// The traffic model's totals on one hand-counted layout: three ranks of two experts, rank 0's
/// four tokens going to ranks `[3, 2, 1]` times as tokens and `[4, 3, 1]` times as pairs.
pub fn traffic_totals_and_minimums_by_hand() {
    let shape = ep_shape(3, 2, 200, 2);
    let ids = [0, 1, 2, 0, 3, 2, 5, 1];
    let layout = DispatchLayout::from_host(&shape.config, &ids, 2).unwrap();
    assert_eq!(layout.num_tokens_per_rank, [3, 2, 1]);
    // A bf16 row is 2·H bytes; an FP8 row H codes and an f32 scale per started 128 columns.
    assert_eq!(PayloadKind::Bf16.row_bytes(200), 400);
    assert_eq!(PayloadKind::Fp8.row_bytes(200), 208);
    assert_eq!(PayloadKind::Fp8.row_bytes(256), 264);
    assert_eq!(PayloadKind::Fp8.row_bytes(257), 269);
    assert_eq!(PayloadKind::Int8.row_bytes(257), 261);
    // Counts: 8·(1 + R + E) and their check value, 8 more, = 88 bytes to every rank. Normal dispatch: per token a row, K i32
    // ids, K f32 weights and an i32 source token (8·K + 4 = 20 bytes).
    let t = normal_dispatch_traffic(&shape, &layout, 0, PayloadKind::Fp8);
    assert_eq!(t.rank, 0);
    assert_eq!(t.to_rank, [3 * 228 + 88, 2 * 228 + 88, 228 + 88]);
    assert_eq!(t.minimum_to_rank, [3 * 208, 2 * 208, 208]);
    assert_eq!((t.off_rank(), t.minimum_off_rank()), (860, 624));
    assert_eq!(t.busiest_link(), 544);
    // Low-latency dispatch: a row and an i32 pair index per (token, k) pair.
    let t = low_latency_dispatch_traffic(&shape, &layout, 1, PayloadKind::Bf16);
    assert_eq!(t.to_rank, [4 * 404 + 88, 3 * 404 + 88, 404 + 88]);
    assert_eq!(t.minimum_to_rank, [1200, 800, 400]);
    assert_eq!((t.off_rank(), t.minimum_off_rank()), (1704 + 492, 1600));
    assert_eq!(t.busiest_link(), 1704);
    // Combines, as if every rank had rank 0's layout: rank 1 sends back what it received.
    let layouts = vec![layout; 3];
    let t = normal_combine_traffic(&shape, &layouts, 1);
    assert_eq!(
        (t.to_rank.clone(), t.minimum_to_rank.clone()),
        (vec![800; 3], vec![800; 3])
    );
    let t = low_latency_combine_traffic(&shape, &layouts, 0);
    assert_eq!(t.to_rank, [1600; 3]);
    assert_eq!(t.minimum_to_rank, [1200; 3]);
    assert_eq!((t.off_rank(), t.busiest_link()), (3200, 1600));
}

/// The traffic model of `ops::ep` counts the rows the dispatches really send.
pub fn traffic_counts_the_rows_each_dispatch_sends() {
    for n in rank_counts(&[2, 4]) {
        let world = World::new(n, 9);
        let max_tokens = world.ranks.iter().map(HostTokens::tokens).max().unwrap();
        let got = on_ranks(n, |comm, stream| {
            let up = Uploaded::new(stream, &world.ranks[comm.rank() as usize]);
            let t = up.tokens(Payload::Bf16(&up.x));
            let normal = normal_dispatch(comm, stream, &world.shape, t).unwrap();
            let ll = low_latency_dispatch(comm, stream, &world.shape, t, max_tokens).unwrap();
            (
                normal.handle.layout().clone(),
                normal.handle.sent_rows_per_rank(),
                ll.handle.sent_rows_per_rank(),
            )
        });
        let shape = &world.shape;
        let layouts: Vec<DispatchLayout> = got.iter().map(|g| g.0.clone()).collect();
        // The counts exchange sends every rank one row of i64.
        let counts = 8 * counts_row(&layouts[0]).len() as u64;
        let row = PayloadKind::Bf16.row_bytes(HIDDEN);
        for (r, (layout, normal, ll)) in got.iter().enumerate() {
            let t = normal_dispatch_traffic(shape, layout, r, PayloadKind::Bf16);
            let meta = 8 * TOP_K as u64 + 4;
            let want: Vec<u64> = normal
                .iter()
                .map(|&rows| rows as u64 * (row + meta) + counts)
                .collect();
            assert_eq!(t.to_rank, want, "rank {r}: normal dispatch");
            let t = low_latency_dispatch_traffic(shape, layout, r, PayloadKind::Bf16);
            let want: Vec<u64> = ll
                .iter()
                .map(|&rows| rows as u64 * (row + 4) + counts)
                .collect();
            assert_eq!(t.to_rank, want, "rank {r}: low-latency dispatch");
            // Combine sends back what each rank received from `r`'s peers.
            let t = normal_combine_traffic(shape, &layouts, r);
            let want: Vec<u64> = got.iter().map(|g| g.1[r] as u64 * row).collect();
            assert_eq!(t.to_rank, want, "rank {r}: normal combine");
            let t = low_latency_combine_traffic(shape, &layouts, r);
            let want: Vec<u64> = got.iter().map(|g| g.2[r] as u64 * row).collect();
            assert_eq!(t.to_rank, want, "rank {r}: low-latency combine");
            assert!(t.minimum_off_rank() <= t.off_rank());
        }
    }
}
