//! The expert-parallel MoE layer (`EpMoeLayer`) on ranks, with bf16 or FP8 expert weights and a
//! bf16, FP8 or INT8 (MC2) dispatch, against the single-device layer on the same weights and tokens and
//! against the f64 reference, with error bounds derived per element from the formats.

use ascend_npu::fp8::{F8E4M3, ScaleFormat, quantize_act, quantize_weight};
use ascend_npu::kernels::Kernels;
use ascend_npu::moe::MoeConfig;
use ascend_npu::ops::ep::{EpMoeLayer, PayloadKind};
use ascend_npu::ops::fp8::Fp8Weight;
use ascend_npu::ops::moe::{FfnWeights, MoeLayer, MoeWeights};
use ascend_npu::reference::moe::{ExpertWeights, MoeLayerWeights, moe_layer_reference, silu};
use ascend_npu::{Error, Stream};
use half::bf16;

use super::Rng;
use super::ranks::{on_ranks, rank_counts};

const HIDDEN: usize = 128;
const INTER: usize = 48;
/// bf16's unit roundoff: half an ulp of 8 significant bits.
const U_BF16: f64 = 1.0 / 256.0;

/// The formats under test.
#[derive(Clone, Copy, Debug)]
struct Formats {
    fp8_weights: bool,
    fp8_dispatch: bool,
    /// MC2's per-row INT8 dispatch (A2 at 16 ranks here).
    int8_dispatch: bool,
}

/// `stack` SwiGLU FFNs as the device holds them (bf16, or E4M3 with 128×128 block scales), and
/// the exact values the device multiplies by, in f64, for the reference.
struct HostFfn {
    stack: usize,
    /// gate, up `[stack, I, H]`, down `[stack, H, I]`.
    values: [Vec<f64>; 3],
    bf16: [Vec<bf16>; 3],
    /// Per projection: codes and `[stack, ⌈n/128⌉, ⌈k/128⌉]` scales, if FP8.
    fp8: Option<[(Vec<F8E4M3>, Vec<f32>); 3]>,
}

/// `(n, k)` of gate, up and down.
const PROJ: [(usize, usize); 3] = [(INTER, HIDDEN), (INTER, HIDDEN), (HIDDEN, INTER)];

impl HostFfn {
    fn new(rng: &mut Rng, stack: usize, fp8: bool) -> Self {
        let bf16: [Vec<bf16>; 3] = PROJ.map(|(n, k)| {
            (0..stack * n * k)
                .map(|_| bf16::from_f32(rng.f32() * 0.1))
                .collect()
        });
        let mut values: [Vec<f64>; 3] =
            bf16.clone().map(|v| v.iter().map(|x| x.to_f64()).collect());
        let fp8 = fp8.then(|| {
            [0, 1, 2].map(|p| {
                let (n, k) = PROJ[p];
                let (mut codes, mut scales) = (Vec::new(), Vec::new());
                for e in 0..stack {
                    let m = &bf16[p][e * n * k..(e + 1) * n * k];
                    let q = quantize_weight(m, n, k, ScaleFormat::Fp32).unwrap();
                    let sk = k.div_ceil(128);
                    // code × scale exactly (4 + 24 significant bits fit an f64).
                    for (i, c) in q.codes().iter().enumerate() {
                        let s = q.scales()[(i / k) / 128 * sk + (i % k) / 128];
                        values[p][e * n * k + i] = c.to_f32() as f64 * s as f64;
                    }
                    codes.extend_from_slice(q.codes());
                    scales.extend_from_slice(q.scales());
                }
                (codes, scales)
            })
        });
        HostFfn {
            stack,
            values,
            bf16,
            fp8,
        }
    }

    /// Experts `range` of the stack on the device.
    fn upload(&self, stream: &Stream, range: std::ops::Range<usize>) -> FfnWeights {
        let [gate, up, down] = [0, 1, 2].map(|p| {
            let (n, k) = PROJ[p];
            let per = n * k;
            match &self.fp8 {
                None => (
                    Some(
                        stream
                            .upload(&self.bf16[p][range.start * per..range.end * per])
                            .unwrap(),
                    ),
                    None,
                ),
                Some(fp8) => {
                    let (codes, scales) = &fp8[p];
                    let blocks = n.div_ceil(128) * k.div_ceil(128);
                    let w = Fp8Weight::upload(
                        stream,
                        range.len(),
                        n,
                        k,
                        &codes[range.start * per..range.end * per],
                        &scales[range.start * blocks..range.end * blocks],
                    )
                    .unwrap();
                    (None, Some(w))
                }
            }
        });
        match (gate, up, down) {
            ((Some(gate), _), (Some(up), _), (Some(down), _)) => FfnWeights::Bf16 {
                gate,
                up,
                down,
                intermediate: INTER,
            },
            ((_, Some(gate)), (_, Some(up)), (_, Some(down))) => FfnWeights::Fp8 { gate, up, down },
            _ => unreachable!("all three projections share a format"),
        }
    }

    /// Expert `e` in f64.
    fn expert(&self, e: usize) -> ExpertWeights {
        assert!(e < self.stack);
        let [g, u, d] = [0, 1, 2].map(|p| {
            let per = PROJ[p].0 * PROJ[p].1;
            self.values[p][e * per..(e + 1) * per].to_vec()
        });
        ExpertWeights::new(HIDDEN, INTER, g, u, d).unwrap()
    }
}

/// fp32 accumulation of `n` products: at most `n·2^-24` of the sum of their magnitudes.
fn gamma(n: usize) -> f64 {
    n as f64 * 2f64.powi(-24)
}

/// The expert's output on `x` in f64 and, per element, a bound on a device's error when the
/// input it reads is off by at most `dx·|x| + ex` elementwise.
///
/// The device accumulates each GEMM in fp32 (`gamma`) and rounds the gate and up outputs, the
/// SwiGLU output and the down output to bf16 (`U_BF16` relative each). With `A = Σ|W||x|`, a
/// gate or up output is off by at most `(dx + γ)·A` before its rounding; SiLU's slope is below
/// 1.1, `|silu(g)| ≤ |g|`, and its fp32 evaluation adds at most `2^-22` relative.
fn expert_with_bound(f: &ExpertWeights, x: &[f64], (dx, ex): (f64, f64)) -> (Vec<f64>, Vec<f64>) {
    let u = U_BF16;
    let (mut act, mut dact) = (vec![0.0; INTER], vec![0.0; INTER]);
    for r in 0..INTER {
        let row = |m: &[f64]| m[r * HIDDEN..(r + 1) * HIDDEN].to_vec();
        let dot = |w: &[f64]| w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
        let abs = |w: &[f64]| w.iter().zip(x).map(|(a, b)| (a * b).abs()).sum::<f64>();
        let norm = |w: &[f64]| w.iter().map(|a| a.abs()).sum::<f64>();
        let (gw, uw) = (row(f.gate()), row(f.up()));
        let (g, up) = (dot(&gw), dot(&uw));
        let pre = |w: &[f64]| (dx + gamma(HIDDEN)) * abs(w) + ex * norm(w);
        let (pg, pu) = (pre(&gw), pre(&uw));
        let (dg, du) = (pg + u * (g.abs() + pg), pu + u * (up.abs() + pu));
        act[r] = silu(g) * up;
        let (ga, ua) = (g.abs() + 1.1 * dg, up.abs() + du);
        dact[r] = 1.1 * dg * ua + g.abs() * du + (u + 2f64.powi(-22)) * ga * ua;
    }
    let (mut y, mut dy) = (vec![0.0; HIDDEN], vec![0.0; HIDDEN]);
    for h in 0..HIDDEN {
        let d = &f.down()[h * INTER..(h + 1) * INTER];
        y[h] = d.iter().zip(&act).map(|(a, b)| a * b).sum();
        let spread: f64 = d.iter().zip(&dact).map(|(a, b)| a.abs() * b).sum();
        let size: f64 = d
            .iter()
            .zip(act.iter().zip(&dact))
            .map(|(a, (b, db))| a.abs() * (b.abs() + db))
            .sum();
        let pre = spread + gamma(INTER) * size;
        dy[h] = pre + u * (y[h].abs() + pre);
    }
    (y, dy)
}

/// The layer's weights on the host.
struct Model {
    config: MoeConfig,
    router: Vec<bf16>,
    bias: Vec<f32>,
    experts: HostFfn,
    shared: HostFfn,
}

impl Model {
    fn new(fp8_weights: bool) -> Self {
        let config = super::moe::small_v3();
        let e = config.n_routed_experts;
        let mut rng = Rng::new(11);
        Model {
            config,
            router: (0..e * HIDDEN)
                .map(|_| bf16::from_f32(rng.f32() * 0.2))
                .collect(),
            bias: (0..e).map(|_| rng.f32() * 0.05).collect(),
            experts: HostFfn::new(&mut rng, e, fp8_weights),
            shared: HostFfn::new(&mut rng, 1, fp8_weights),
        }
    }

    fn weights(&self, stream: &Stream, range: std::ops::Range<usize>) -> MoeWeights {
        MoeWeights {
            router: stream.upload(&self.router).unwrap(),
            bias: Some(stream.upload(&self.bias).unwrap()),
            experts: self.experts.upload(stream, range),
            shared: Some(self.shared.upload(stream, 0..1)),
        }
    }

    /// The f64 layer on `x` whose routed experts read `routed_x` (`x` itself, or its FP8 or
    /// INT8 dispatch's dequantization), with a per-element bound on a device's error; the rows
    /// the routed experts read are off by at most `dx` relative plus `ex[t]` absolute (token
    /// `t`'s, if given).
    fn reference(
        &self,
        x: &[f64],
        routed_x: &[f64],
        (dx, ex): (f64, Option<&[f64]>),
    ) -> (Vec<f64>, Vec<f64>) {
        let k = self.config.top_k;
        let experts: Vec<ExpertWeights> = (0..self.config.n_routed_experts)
            .map(|e| self.experts.expert(e))
            .collect();
        let shared = self.shared.expert(0);
        let router: Vec<f64> = self.router.iter().map(|v| v.to_f64()).collect();
        let bias: Vec<f64> = self.bias.iter().map(|&v| v as f64).collect();
        let weights = MoeLayerWeights {
            gate_weight: &router,
            bias: Some(&bias),
            experts: &experts,
            shared: Some(&shared),
        };
        let layer = moe_layer_reference(&self.config, &weights, x).unwrap();
        let (mut out, mut bound) = (Vec::new(), Vec::new());
        for (t, xt) in x.chunks(HIDDEN).enumerate() {
            // The device's fp32 logits are off by at most 128·2^-24 of Σ|x·r| (fp32
            // accumulation of bf16 products); sigmoid's slope is at most 1/4, and its fp32
            // evaluation adds a few 2^-24: the scores are off by at most `es`.
            let max_abs = router
                .chunks(HIDDEN)
                .map(|r| r.iter().zip(xt).map(|(a, b)| (a * b).abs()).sum::<f64>())
                .fold(0.0, f64::max);
            let es = 0.25 * 128.0 * 2f64.powi(-24) * max_abs + 2f64.powi(-22);
            // A selection can differ only where the margin is below 4·es (Routing::margins):
            // the data must stay clear of that for the comparison to mean anything.
            assert!(
                layer.routing.margins[t] > 4.0 * es,
                "token {t}: routing margin {} within the device's score error {es}: choose other data",
                layer.routing.margins[t]
            );
            // Weights s_k/Σs·2.5 in fp32: each score off by es relative es/s_min, the sum
            // by K·es; plus the fp32 division and scaling.
            let ids = layer.routing.ids(t);
            let s_min = ids
                .iter()
                .map(|&e| layer.routing.token_scores(t)[e as usize])
                .fold(f64::INFINITY, f64::min);
            let rel_w = (1.0 + k as f64) * es / s_min + 2f64.powi(-21);
            let rx = &routed_x[t * HIDDEN..(t + 1) * HIDDEN];
            let (mut o, b) = expert_with_bound(&shared, xt, (0.0, 0.0));
            let err = (dx, ex.map_or(0.0, |ex| ex[t]));
            let (mut sum_b, mut size) = (b, vec![0.0; HIDDEN]);
            for (&e, &w) in ids.iter().zip(layer.routing.weights(t)) {
                let (y, dy) = expert_with_bound(&experts[e as usize], rx, err);
                for h in 0..HIDDEN {
                    o[h] += w * y[h];
                    sum_b[h] += w * dy[h] + rel_w * w * y[h].abs();
                    size[h] += w * (y[h].abs() + dy[h]);
                }
            }
            for h in 0..HIDDEN {
                // fp32 products and sums of at most K + 1 terms, the ranks' partial sums
                // rounded to bf16 before they are added (at most U·Σ_k|w_k y_k|), then the
                // result's own rounding.
                let b = sum_b[h] + (U_BF16 + gamma(2 * (k + 1))) * size[h];
                bound.push(b + U_BF16 * (o[h].abs() + b));
            }
            out.extend(o);
        }
        (out, bound)
    }
}

/// Each rank's tokens: different counts, one rank with a single token.
fn tokens_of(ranks: u32) -> Vec<Vec<bf16>> {
    (0..ranks as usize)
        .map(|r| {
            let mut rng = Rng::new(100 + r as u64);
            let len = if r == 1 { 1 } else { 3 + 2 * r } * HIDDEN;
            (0..len).map(|_| bf16::from_f32(rng.f32())).collect()
        })
        .collect()
}

/// What the routed experts of an FP8 dispatch read: the host quantization of `x` (as the
/// device's, which `fp8_gemm_cases` pins bit for bit), dequantized exactly.
fn dispatched(x: &[bf16], fp8: bool) -> Vec<f64> {
    if !fp8 {
        return x.iter().map(|v| v.to_f64()).collect();
    }
    let q = quantize_act(x, x.len() / HIDDEN, HIDDEN, ScaleFormat::Fp32).unwrap();
    let tiles = HIDDEN.div_ceil(128);
    q.codes()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s = q.scales()[i / HIDDEN * tiles + (i % HIDDEN) / 128];
            c.to_f32() as f64 * s as f64
        })
        .collect()
}

/// What the routed experts of an INT8 dispatch read, quantized per token on the host in f64
/// (scale `max|x|/127`, codes rounded half to even) and dequantized exactly, and per token how
/// far the device's dequantization may lie from it besides its final bf16 rounding: the
/// device forms the scale in f32 (within 2^-22 relative), so a code may differ by one where
/// `x/scale` lies that close to a rounding boundary, `|Δ| ≤ scale·(1 + 127·2^-22)`.
fn int8_dispatched(x: &[bf16]) -> (Vec<f64>, Vec<f64>) {
    let (mut out, mut slack) = (Vec::new(), Vec::new());
    for row in x.chunks(HIDDEN) {
        let row: Vec<f64> = row.iter().map(|v| v.to_f64()).collect();
        let scale = row.iter().fold(0f64, |m, v| m.max(v.abs())) / 127.0;
        out.extend(row.iter().map(|v| (v / scale).round_ties_even() * scale));
        slack.push(scale * (1.0 + 127.0 * 2f64.powi(-22)));
    }
    (out, slack)
}

fn check_layer(formats: Formats, ranks: &[u32]) {
    let model = Model::new(formats.fp8_weights);
    let e = model.config.n_routed_experts;
    for n in rank_counts(ranks) {
        let l = e / n as usize;
        let xs = tokens_of(n);
        let max_tokens = xs.iter().map(|x| x.len() / HIDDEN).max().unwrap();
        let got = on_ranks(n, |comm, stream| {
            let r = comm.rank() as usize;
            let kernels = Kernels::load(stream.device()).unwrap();
            let tokens = xs[r].len() / HIDDEN;
            let x = stream.upload(&xs[r]).unwrap();
            let mut ep = EpMoeLayer::new(
                model.config,
                HIDDEN,
                (n as usize, r),
                model.weights(stream, r * l..(r + 1) * l),
                kernels.clone(),
            )
            .unwrap();
            if formats.fp8_dispatch {
                ep = ep.with_fp8_dispatch(ScaleFormat::Fp32);
                assert_eq!(ep.dispatch_kind(), PayloadKind::Fp8);
            }
            if formats.int8_dispatch {
                ep = ep.with_int8_dispatch(max_tokens);
                assert_eq!(ep.dispatch_kind(), PayloadKind::Int8);
            }
            let single =
                MoeLayer::new(model.config, HIDDEN, model.weights(stream, 0..e), kernels).unwrap();
            let got = ep.forward(comm, stream, &x, tokens).unwrap();
            let want = single.forward(stream, &x, tokens).unwrap();
            (got.to_vec().unwrap(), want.to_vec().unwrap())
        });
        for (r, (got, single)) in got.iter().enumerate() {
            let ctx = format!("{formats:?}, {n} ranks, rank {r}");
            let x: Vec<f64> = xs[r].iter().map(|v| v.to_f64()).collect();
            let (routed, slack) = if formats.int8_dispatch {
                let (routed, slack) = int8_dispatched(&xs[r]);
                (routed, Some(slack))
            } else {
                (dispatched(&xs[r], formats.fp8_dispatch), None)
            };
            // bf16 weights read FP8 rows dequantized to bf16: one more rounding of the input.
            // INT8 rows are dequantized to bf16 for either: code·scale rounded to fp32, then
            // to bf16.
            let dx = if formats.int8_dispatch {
                U_BF16 + 2f64.powi(-24)
            } else if formats.fp8_dispatch && !formats.fp8_weights {
                U_BF16
            } else {
                0.0
            };
            let (want, bound) = model.reference(&x, &routed, (dx, slack.as_deref()));
            // The single-device layer reads x itself, not its FP8 form; its bound is no larger
            // than the EP layer's (it has no per-rank rounding).
            let (want_single, bound_single) = model.reference(&x, &x, (0.0, None));
            for i in 0..got.len() {
                let (g, s) = (got[i].to_f64(), single[i].to_f64());
                assert!(
                    (g - want[i]).abs() <= bound[i],
                    "{ctx} [{i}]: EP {g} vs f64 {} (bound {})",
                    want[i],
                    bound[i]
                );
                assert!(
                    (s - want_single[i]).abs() <= bound_single[i],
                    "{ctx} [{i}]: single device {s} vs f64 {} (bound {})",
                    want_single[i],
                    bound_single[i]
                );
                // So the two layers differ by at most both bounds plus the FP8 or INT8
                // dispatch's own effect on the exact result.
                let fp8_effect = (want[i] - want_single[i]).abs();
                assert!(
                    (g - s).abs() <= bound[i] + bound_single[i] + fp8_effect,
                    "{ctx} [{i}]: EP {g} vs single device {s}"
                );
            }
            if formats.fp8_dispatch || formats.int8_dispatch {
                // The bounds above are worst cases, loose enough to hold the FP8 rounding of
                // x (up to 2^-4 relative, 16 bf16 roundings) or INT8's (half a step of
                // max|x|/127) too. So check also that the result follows x̃: its distance from
                // the exact layer on x̃ is well below its distance from the exact layer on x,
                // which a bf16 dispatch would follow. INT8's step (2^-7 of max|x|, about 2^-8
                // rms of x's spread here) is near the bf16 roundings inside the experts, so
                // its margin is smaller: nearer, not twice as near (measured 0.0043 against
                // 0.0062 on rank 0; a bf16 dispatch falls on the other side).
                let dist = |w: &[f64]| -> f64 {
                    got.iter()
                        .zip(w)
                        .map(|(g, w)| (g.to_f64() - w).powi(2))
                        .sum::<f64>()
                        .sqrt()
                };
                let (to_q, to_x) = (dist(&want), dist(&want_single));
                let margin = if formats.fp8_dispatch { 2.0 } else { 1.0 };
                assert!(
                    margin * to_q < to_x,
                    "{ctx}: ‖EP − f64(x̃)‖ = {to_q}, ‖EP − f64(x)‖ = {to_x}"
                );
            }
            assert!(got.iter().any(|v| v.to_f64() != 0.0), "{ctx}: all zero");
        }
    }
}

pub fn expert_parallel_layer_equals_the_single_device_layer() {
    let formats = Formats {
        fp8_weights: false,
        fp8_dispatch: false,
        int8_dispatch: false,
    };
    check_layer(formats, &[2, 4, 8]);
}

pub fn expert_parallel_layer_with_fp8_dispatch() {
    let formats = Formats {
        fp8_weights: false,
        fp8_dispatch: true,
        int8_dispatch: false,
    };
    check_layer(formats, &[2, 4]);
}

pub fn expert_parallel_layer_with_fp8_weights() {
    let formats = Formats {
        fp8_weights: true,
        fp8_dispatch: false,
        int8_dispatch: false,
    };
    check_layer(formats, &[2, 4]);
}

pub fn expert_parallel_layer_with_fp8_dispatch_and_weights() {
    let formats = Formats {
        fp8_weights: true,
        fp8_dispatch: true,
        int8_dispatch: false,
    };
    check_layer(formats, &[2, 8]);
}

/// The INT8 dispatch on the MC2 operators (16 ranks of an A2 SoC, "fullmesh"): the routed
/// experts read each row's INT8 dequantization.
pub fn expert_parallel_layer_with_int8_dispatch() {
    for fp8_weights in [false, true] {
        let formats = Formats {
            fp8_weights,
            fp8_dispatch: false,
            int8_dispatch: true,
        };
        check_layer(formats, &[16]);
    }
}

/// Where the MC2 operators do not run (2 ranks, below A2's 16), an INT8 layer dispatches bf16
/// on every rank: bit for bit the bf16 layer's result.
pub fn expert_parallel_layer_int8_falls_back_to_bf16() {
    let model = Model::new(false);
    let e = model.config.n_routed_experts;
    for n in rank_counts(&[2]) {
        let l = e / n as usize;
        let xs = tokens_of(n);
        let got = on_ranks(n, |comm, stream| {
            let r = comm.rank() as usize;
            let kernels = Kernels::load(stream.device()).unwrap();
            let (tokens, x) = (xs[r].len() / HIDDEN, stream.upload(&xs[r]).unwrap());
            let layer = || {
                let weights = model.weights(stream, r * l..(r + 1) * l);
                let rank = (n as usize, r);
                EpMoeLayer::new(model.config, HIDDEN, rank, weights, kernels.clone()).unwrap()
            };
            let int8 = layer().with_int8_dispatch(16);
            let [a, b] = [int8, layer()].map(|ep| {
                ep.forward(comm, stream, &x, tokens)
                    .unwrap()
                    .to_vec()
                    .unwrap()
            });
            (a, b)
        });
        for (r, (int8, bf16)) in got.iter().enumerate() {
            assert_eq!(int8, bf16, "{n} ranks, rank {r}");
        }
    }
}

/// A rank without tokens takes part and gets an empty result, and changes nothing for the others:
/// each token's result depends on its own routing only, so rank 1's is bit for bit the same as
/// when rank 0 has tokens. Bad arguments are refused before any collective.
pub fn expert_parallel_layer_takes_an_empty_rank_and_refuses_bad_arguments() {
    let model = Model::new(false);
    let e = model.config.n_routed_experts;
    for n in rank_counts(&[2]) {
        let l = e / n as usize;
        let xs = tokens_of(n);
        let got = on_ranks(n, |comm, stream| {
            let r = comm.rank() as usize;
            let kernels = Kernels::load(stream.device()).unwrap();
            let build = |rank: usize| {
                // Rank `n` (refused) gets the last rank's experts.
                let first = rank.min(n as usize - 1) * l;
                let weights = model.weights(stream, first..first + l);
                EpMoeLayer::new(
                    model.config,
                    HIDDEN,
                    (n as usize, rank),
                    weights,
                    kernels.clone(),
                )
            };
            let ep = build(r).unwrap();
            assert_eq!(ep.dispatch_kind(), PayloadKind::Bf16);
            assert_eq!(ep.config().n_routed_experts, e);
            let x = stream.upload(&xs[r]).unwrap();
            let tokens = xs[r].len() / HIDDEN;
            let with_all = ep
                .forward(comm, stream, &x, tokens)
                .unwrap()
                .to_vec()
                .unwrap();
            let empty = stream.upload(&[bf16::ZERO; 0]).unwrap();
            let (x0, t0) = if r == 0 { (&empty, 0) } else { (&x, tokens) };
            let without_0 = ep.forward(comm, stream, x0, t0).unwrap().to_vec().unwrap();
            let errors = [
                build(n as usize).err(),
                build(1 - r)
                    .unwrap()
                    .forward(comm, stream, &x, tokens)
                    .err(),
                ep.forward(comm, stream, &x, tokens + 1).err(),
            ];
            (with_all, without_0, errors.map(|e| invalid(e, r)))
        });
        for (r, (with_all, without_0, errors)) in got.into_iter().enumerate() {
            if r == 0 {
                assert!(without_0.is_empty(), "rank 0 without tokens");
            } else {
                assert_eq!(
                    without_0, with_all,
                    "rank {r}: rank 0's tokens changed its result"
                );
            }
            let tokens = xs[r].len() / HIDDEN;
            let want = [
                (
                    "rank 2 of 2".to_string(),
                    "a rank below the rank count".to_string(),
                ),
                (
                    format!(
                        "rank {r} of the communicator for the layer of rank {}",
                        1 - r
                    ),
                    "the communicator rank the layer was built for".to_string(),
                ),
                (
                    format!(
                        "x of {} elements for {} tokens",
                        tokens * HIDDEN,
                        tokens + 1
                    ),
                    format!("[{}, {HIDDEN}]", tokens + 1),
                ),
            ];
            assert_eq!(errors, want, "rank {r}");
        }
    }
}

/// The `(what, expected)` of an [`Error::InvalidArgument`]; anything else fails rank `r`.
fn invalid(e: Option<Error>, r: usize) -> (String, String) {
    match e {
        Some(Error::InvalidArgument { what, expected }) => (what, expected),
        other => panic!("rank {r}: expected InvalidArgument, got {other:?}"),
    }
}
