//! MoE on one device: routing (`aclnnMoeGatingTopK`), dispatch (`aclnnMoeInitRoutingV2`),
//! combine (`aclnnMoeFinalizeRoutingV2`) and a whole layer, against `ascend_npu::reference::moe`.

use ascend_npu::DeviceBuffer;
use ascend_npu::moe::{MoeConfig, Scoring, TopKMethod};
use ascend_npu::ops::moe::{self, CombineInputs, FfnWeights, MoeLayer, MoeShape, MoeWeights};
use ascend_npu::reference::moe::{
    self as reference, ExpertWeights, MoeLayerWeights, Permutation, PermuteOptions,
};
use ascend_npu::sys::CannVersion;
use half::bf16;

use super::{Family, Run};
use crate::check::{self, BF16, Elem, FP32, Outcome, Verdict};
use crate::preset::MoeCase;

/// Routing.
pub const ROUTING: Family = Family {
    name: "moe-routing",
    summary: "MoE routing: DeepSeek-V3 noaux_tc and V2 group-limited greedy, ids and weights",
    kernels: true,
    aclnn: &["aclnnMoeGatingTopK"],
    run: routing,
};

/// Dispatch.
pub const DISPATCH: Family = Family {
    name: "moe-dispatch",
    summary: "MoE dispatch: expert-sorted rows, row indices and group sizes, bit for bit",
    kernels: false,
    aclnn: &["aclnnMoeInitRoutingV2", "aclnnCast"],
    run: dispatch,
};

/// Combine.
pub const COMBINE: Family = Family {
    name: "moe-combine",
    summary: "MoE combine: weighted sum of expert outputs (+ shared), f32/bf16, vs f64",
    kernels: false,
    aclnn: &["aclnnMoeFinalizeRoutingV2"],
    run: combine,
};

/// The whole layer.
pub const LAYER: Family = Family {
    name: "moe-layer",
    summary: "a DeepSeek MoE layer (router, routing, experts, shared expert), bf16, vs f64",
    kernels: true,
    aclnn: &[
        "aclnnMoeGatingTopK",
        "aclnnMoeInitRoutingV2",
        "aclnnCast",
        "aclnnGroupedMatmulV4",
        "aclnnMoeFinalizeRoutingV2",
    ],
    run: layer,
};

fn device(e: ascend_npu::Error) -> String {
    e.to_string()
}

fn reference_error(e: reference::MoeError) -> String {
    format!("the reference refused the case: {e}")
}

/// The two routings DeepSeek uses, at the case's sizes.
fn routings(case: &MoeCase) -> [(&'static str, MoeConfig); 2] {
    let sized = |c: MoeConfig| MoeConfig {
        n_routed_experts: case.experts,
        n_group: case.groups,
        topk_group: case.topk_groups,
        top_k: case.top_k,
        ..c
    };
    [
        ("v3 noaux_tc", sized(MoeConfig::deepseek_v3())),
        ("v2 greedy", sized(MoeConfig::deepseek_v2())),
    ]
}

fn routing(run: &mut Run<'_>) {
    for shape in run.preset.moe.clone() {
        for (name, config) in routings(&shape) {
            // CANN 8.1 ignores the method and always routes V3 style (errata 2); route refuses
            // the others there, so they are not conformance cases on that release.
            if config.method != TopKMethod::NoauxTc
                && run.session.cann_version < CannVersion::V8_2_RC1
            {
                continue;
            }
            routing_case(run, &shape, name, &config);
        }
    }
}

fn routing_case(run: &mut Run<'_>, shape: &MoeCase, name: &str, config: &MoeConfig) {
    let (tokens, e, k) = (shape.tokens, config.n_routed_experts, config.top_k);
    let case = format!("{name} f32 T={tokens} E={e} K={k}");
    run.cases("routing", &case, |run, op, case| {
        let mut rng = run.rng(case);
        let logits: Vec<f32> = check::round_to(&rng.vec(tokens * e, 4.0));
        let bias: Vec<f32> = check::round_to(&rng.vec(e, 0.5));
        let bias = (config.scoring == Scoring::Sigmoid).then_some(bias);
        let stream = &run.session.stream;
        let dl = stream.upload(&logits).map_err(device)?;
        let db = bias
            .as_ref()
            .map(|b| stream.upload(b))
            .transpose()
            .map_err(device)?;
        let (w, ids) =
            moe::route(run.kernels()?, stream, config, tokens, &dl, db.as_ref()).map_err(device)?;
        let (w, ids) = (w.to_vec().map_err(device)?, ids.to_vec().map_err(device)?);
        let want = reference::route(config, &logits, bias.as_deref()).map_err(reference_error)?;
        // The device's biased scores are fp32: sigmoid or softmax within a few ulps, plus the
        // bias, so within ε = 8·2^-24·(1 + max|bias|). A selection can differ only where the
        // reference's margin is ≤ 4ε (see reference::moe::Routing::margins); those tokens are
        // not compared.
        let max_bias = bias
            .iter()
            .flatten()
            .fold(0.0f64, |m, b| m.max(f64::from(b.abs())));
        let threshold = 4.0 * 8.0 * FP32.u * (1.0 + max_bias);
        let decided: Vec<usize> = (0..tokens)
            .filter(|&t| want.margins[t] > threshold)
            .collect();
        let wrong = decided
            .iter()
            .filter(|&&t| ids[t * k..(t + 1) * k] != *want.ids(t))
            .count();
        let ids_outcome = Outcome::exact(
            op,
            case,
            "tokens' expert ids",
            wrong,
            &format!(
                "exact where the reference margin > 4ε = {threshold:.1e} ({} of {tokens} tokens)",
                decided.len()
            ),
        );
        // Weights of the tokens whose choice agrees: fp32 score (≤ 4 ulps), a K-term sum and a
        // division and the scale (K + 2 roundings): (K + 6)·2^-24 relative.
        let same: Vec<usize> = decided
            .into_iter()
            .filter(|&t| ids[t * k..(t + 1) * k] == *want.ids(t))
            .collect();
        let got: Vec<f64> = same
            .iter()
            .flat_map(|&t| w[t * k..(t + 1) * k].iter().map(|&v| f64::from(v)))
            .collect();
        let expected: Vec<f64> = same
            .iter()
            .flat_map(|&t| want.weights(t).to_vec())
            .collect();
        let rel = (k + 6) as f64 * FP32.u;
        let weights_outcome = check::within(
            op,
            case,
            &got,
            &expected,
            |i| rel * expected[i].abs() + FP32.tiny,
            "fp32 scores (4u) + K-term sum, divide, scale: (K+6)·2^-24 rel",
        );
        Ok(vec![ids_outcome, weights_outcome])
    });
}

/// `top_k` distinct experts per token, uniformly.
fn random_ids(run: &Run<'_>, case: &str, tokens: usize, experts: usize, top_k: usize) -> Vec<i32> {
    let mut rng = run.rng(&format!("{case} ids"));
    let mut ids = Vec::with_capacity(tokens * top_k);
    for _ in 0..tokens {
        let mut row: Vec<i32> = Vec::with_capacity(top_k);
        while row.len() < top_k {
            let e = ((rng.uniform(1.0) + 1.0) / 2.0 * experts as f64) as i32;
            let e = e.min(experts as i32 - 1);
            if !row.contains(&e) {
                row.push(e);
            }
        }
        ids.extend(row);
    }
    ids
}

fn dispatch(run: &mut Run<'_>) {
    for shape in run.preset.moe.clone() {
        for sizes in [moe::GroupSizes::Counts, moe::GroupSizes::Cumsum] {
            dispatch_case(run, &shape, sizes);
        }
    }
}

fn dispatch_case(run: &mut Run<'_>, case: &MoeCase, sizes: moe::GroupSizes) {
    let MoeCase {
        tokens,
        hidden,
        experts,
        top_k,
        ..
    } = *case;
    let case = format!("bf16 {sizes:?} T={tokens} H={hidden} E={experts} K={top_k}");
    run.case("dispatch", &case, |run, op, case| {
        let x: Vec<bf16> = check::round_to(&run.rng(case).vec(tokens * hidden, 1.0));
        let ids = random_ids(run, case, tokens, experts, top_k);
        let stream = &run.session.stream;
        let dx = stream.upload(&x).map_err(device)?;
        let did = stream.upload(&ids).map_err(device)?;
        let shape = MoeShape {
            tokens,
            hidden,
            top_k,
            experts,
        };
        let d = moe::dispatch(stream, shape, sizes, &dx, &did).map_err(device)?;
        let perm = reference::permute(&ids, top_k, experts, &PermuteOptions::default())
            .map_err(reference_error)?;
        let want_x = reference::gather(&x, hidden, &perm).map_err(reference_error)?;
        let got_x = d.expanded_x.to_vec().map_err(device)?;
        let mut wrong = differing(&got_x, &want_x, |a, b| a.to_bits() == b.to_bits());
        let rows = d.expanded_row_idx.to_vec().map_err(device)?;
        wrong += differing(&rows, perm.expanded_row_idx(), |a, b| i64::from(*a) == *b);
        wrong += match &d.group_sizes {
            moe::GroupSizesBuffer::Counts(c) => {
                differing(&c.to_vec().map_err(device)?, perm.counts(), |a, b| {
                    *a as usize == *b
                })
            }
            moe::GroupSizesBuffer::Cumsum(c) => {
                let ends: Vec<usize> = perm.offsets()[1..].to_vec();
                differing(&c.to_vec().map_err(device)?, &ends, |a, b| {
                    *a as usize == *b
                })
            }
        };
        Ok(Outcome::exact(
            op,
            case,
            "expanded rows, row indices and group sizes",
            wrong,
            "a stable sort by expert and row copies: exact",
        ))
    });
}

/// Elements of `got` that differ from `want` under `same`, plus the difference in length.
fn differing<A, B>(got: &[A], want: &[B], same: impl Fn(&A, &B) -> bool) -> usize {
    got.iter().zip(want).filter(|(a, b)| !same(a, b)).count() + got.len().abs_diff(want.len())
}

fn combine(run: &mut Run<'_>) {
    for shape in run.preset.moe.clone() {
        for shared in [false, true] {
            combine_case::<f32>(run, &shape, shared);
            combine_case::<bf16>(run, &shape, shared);
        }
    }
}

fn combine_case<T: Elem + ascend_npu::aclnn::AclElement>(
    run: &mut Run<'_>,
    case: &MoeCase,
    with_shared: bool,
) {
    let MoeCase {
        tokens,
        hidden,
        experts,
        top_k,
        ..
    } = *case;
    let case = format!(
        "{}{} T={tokens} H={hidden} K={top_k}",
        T::FORMAT.name,
        if with_shared { " +shared" } else { "" }
    );
    run.case("combine", &case, |run, op, case| {
        let mut rng = run.rng(case);
        let pairs = tokens * top_k;
        let y: Vec<T> = check::round_to(&rng.vec(pairs * hidden, 2.0));
        let weights: Vec<f32> = check::round_to(&rng.vec(pairs, 1.0));
        let shared: Vec<T> = check::round_to(&rng.vec(tokens * hidden, 1.0));
        let ids = random_ids(run, case, tokens, experts, top_k);
        let perm: Permutation =
            reference::permute(&ids, top_k, experts, &PermuteOptions::default())
                .map_err(reference_error)?;
        let rows: Vec<i32> = perm.expanded_row_idx().iter().map(|&r| r as i32).collect();
        let stream = &run.session.stream;
        let dy = stream.upload(&y).map_err(device)?;
        let drows = stream.upload(&rows).map_err(device)?;
        let dw = stream.upload(&weights).map_err(device)?;
        let dshared = stream.upload(&shared).map_err(device)?;
        let mut out = stream.alloc_uninit::<T>(tokens * hidden).map_err(device)?;
        let inputs = CombineInputs {
            y: dy.as_view(),
            expanded_row_idx: drows.as_view(),
            weights: dw.as_view(),
            shared: with_shared.then(|| dshared.as_view()),
        };
        let shape = MoeShape {
            tokens,
            hidden,
            top_k,
            experts,
        };
        moe::combine(stream, shape, inputs, &mut out).map_err(device)?;
        let got = check::widen(&out.to_vec().map_err(device)?);
        let y64 = check::widen(&y);
        let w64: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
        let mut want =
            reference::unpermute_f64(&y64, hidden, &perm, &w64).map_err(reference_error)?;
        // Σ|w·y| (+ |shared|) per element, for the bound.
        let mut magnitude = reference::unpermute_f64(
            &y64.iter().map(|v| v.abs()).collect::<Vec<_>>(),
            hidden,
            &perm,
            &w64.iter().map(|v| v.abs()).collect::<Vec<_>>(),
        )
        .map_err(reference_error)?;
        if with_shared {
            for (i, s) in shared.iter().enumerate() {
                want[i] += s.to_f64();
                magnitude[i] += s.to_f64().abs();
            }
        }
        let t = T::FORMAT;
        let u_out = if t.name == BF16.name { t.u } else { 0.0 };
        // K products and K (+1) adds in fp32, each 2^-24 of at most Σ|w·y| (+|shared|); then
        // one rounding to the output type.
        let terms = (2 * top_k + 1) as f64 * FP32.u;
        Ok(check::within(
            op,
            case,
            &got,
            &want,
            |i| terms * magnitude[i] + u_out * (want[i].abs() + terms * magnitude[i]) + t.tiny,
            &format!("fp32 sum (2K+1)·2^-24·Σ|w·y|, {} out", t.name),
        ))
    });
}

fn layer(run: &mut Run<'_>) {
    for shape in run.preset.moe_layer.clone() {
        run.case("layer", &LayerCase::name(&shape), |run, op, case| {
            let layer = LayerCase::new(run, &shape, case)?;
            let stream = &run.session.stream;
            let weights = layer.upload(stream, 0..shape.experts)?;
            let kernels = run.kernels()?.clone();
            let model =
                MoeLayer::new(layer.config, shape.hidden, weights, kernels).map_err(device)?;
            let x: DeviceBuffer<bf16> = stream.upload(&layer.x).map_err(device)?;
            let got = model
                .forward(stream, &x, shape.tokens)
                .map_err(device)?
                .to_vec()
                .map_err(device)?;
            // Each path rounds to bf16 about four times (gate/up GEMM outputs, SwiGLU, the
            // down GEMM, the combine), each 2^-8 relative, while every sum is fp32.
            Ok(layer.outcome(
                op,
                case,
                &check::widen(&got),
                4.0,
                "4 bf16 roundings per path (GEMMs, SwiGLU, combine) × 2^-8",
            ))
        });
    }
}

/// The host side of a MoE layer case: bf16 weights, an input whose routing is decided, and
/// the f64 layer's output on it.
pub struct LayerCase {
    /// DeepSeek-V3 routing at the case's sizes.
    pub config: MoeConfig,
    shape: MoeCase,
    router: Vec<bf16>,
    bias: Vec<f32>,
    gate: Vec<bf16>,
    up: Vec<bf16>,
    down: Vec<bf16>,
    shared: [Vec<bf16>; 3],
    /// `[tokens, hidden]`.
    pub x: Vec<bf16>,
    want: Vec<f64>,
}

impl LayerCase {
    /// The case's name in the table.
    pub fn name(shape: &MoeCase) -> String {
        let MoeCase {
            tokens,
            hidden,
            intermediate,
            experts,
            top_k,
            shared_intermediate,
            ..
        } = *shape;
        format!(
            "bf16 T={tokens} H={hidden} I={intermediate} E={experts} K={top_k} shared \
             I={shared_intermediate}"
        )
    }

    /// Draws the weights and an input from case `case`'s random source.
    pub fn new(run: &Run<'_>, shape: &MoeCase, case: &str) -> Result<LayerCase, String> {
        let MoeCase {
            tokens,
            hidden,
            intermediate,
            experts,
            ..
        } = *shape;
        let shared_i = shape.shared_intermediate;
        let config = routings(shape)[0].1;
        let mut rng = run.rng(case);
        // Weights of size ~1/sqrt(fan-in) keep every activation of order one.
        let matrix = |rng: &mut crate::rng::CaseRng, len: usize, fan_in: usize| -> Vec<bf16> {
            check::round_to(&rng.vec(len, 1.0 / (fan_in as f64).sqrt()))
        };
        let router = matrix(&mut rng, experts * hidden, hidden);
        let bias: Vec<f32> = check::round_to(&rng.vec(experts, 0.1));
        let gate = matrix(&mut rng, experts * intermediate * hidden, hidden);
        let up = matrix(&mut rng, experts * intermediate * hidden, hidden);
        let down = matrix(&mut rng, experts * hidden * intermediate, intermediate);
        let shared = [
            matrix(&mut rng, shared_i * hidden, hidden),
            matrix(&mut rng, shared_i * hidden, hidden),
            matrix(&mut rng, hidden * shared_i, shared_i),
        ];
        let wide = |v: &[bf16]| check::widen(v);
        let (router64, bias64) = (
            wide(&router),
            bias.iter().map(|&b| f64::from(b)).collect::<Vec<_>>(),
        );
        let per = intermediate * hidden;
        let expert_refs: Vec<ExpertWeights> = (0..experts)
            .map(|e| {
                ExpertWeights::new(
                    hidden,
                    intermediate,
                    wide(&gate[e * per..(e + 1) * per]),
                    wide(&up[e * per..(e + 1) * per]),
                    wide(&down[e * per..(e + 1) * per]),
                )
            })
            .collect::<Result<_, _>>()
            .map_err(reference_error)?;
        let shared_ref = (shared_i > 0)
            .then(|| {
                let [g, u, d] = &shared;
                ExpertWeights::new(hidden, shared_i, wide(g), wide(u), wide(d))
            })
            .transpose()
            .map_err(reference_error)?;
        let weights_ref = MoeLayerWeights {
            gate_weight: &router64,
            bias: Some(&bias64),
            experts: &expert_refs,
            shared: shared_ref.as_ref(),
        };
        // Inputs whose routing is decided: the device's router logits are an fp32 sum of H
        // exact products, within H·2^-24·Σ|x·w| ≤ H·2^-24·max Σ|x·w|; a token closer than 4× that
        // to another choice is redrawn, so the comparison never depends on a coin flip.
        let (x, want) = (0..16)
            .find_map(|_| {
                let x: Vec<bf16> = check::round_to(&rng.vec(tokens * hidden, 1.0));
                let x64 = wide(&x);
                let out = reference::moe_layer_reference(&config, &weights_ref, &x64).ok()?;
                let worst = (0..tokens)
                    .map(|t| {
                        (0..experts)
                            .map(|e| {
                                (0..hidden)
                                    .map(|h| (x64[t * hidden + h] * router64[e * hidden + h]).abs())
                                    .sum::<f64>()
                            })
                            .fold(0.0, f64::max)
                    })
                    .fold(0.0, f64::max);
                let threshold = 4.0 * hidden as f64 * FP32.u * worst;
                out.routing
                    .margins
                    .iter()
                    .all(|&m| m > threshold)
                    .then_some((x, out.out))
            })
            .ok_or("no input among 16 draws routes clear of ties; use other shapes")?;
        Ok(LayerCase {
            config,
            shape: *shape,
            router,
            bias,
            gate,
            up,
            down,
            shared,
            x,
            want,
        })
    }

    /// The router, its bias and the shared expert whole, and the routed experts `experts`
    /// (all of them on one device, a rank's share under expert parallelism), on `stream`.
    pub fn upload(
        &self,
        stream: &ascend_npu::Stream,
        experts: std::ops::Range<usize>,
    ) -> Result<MoeWeights, String> {
        let (hidden, inter) = (self.shape.hidden, self.shape.intermediate);
        let shared_i = self.shape.shared_intermediate;
        let load = |v: &[bf16]| stream.upload(v).map_err(device);
        let per = inter * hidden;
        let part = |v: &[bf16]| load(&v[experts.start * per..experts.end * per]);
        let [s_gate, s_up, s_down] = &self.shared;
        Ok(MoeWeights {
            router: load(&self.router)?,
            bias: Some(stream.upload(&self.bias).map_err(device)?),
            experts: FfnWeights::Bf16 {
                gate: part(&self.gate)?,
                up: part(&self.up)?,
                down: part(&self.down)?,
                intermediate: inter,
            },
            shared: if shared_i > 0 {
                Some(FfnWeights::Bf16 {
                    gate: load(s_gate)?,
                    up: load(s_up)?,
                    down: load(s_down)?,
                    intermediate: shared_i,
                })
            } else {
                None
            },
        })
    }

    /// The relative L2 error of `got` (one or more copies of the output, one per rank that
    /// ran the same tokens) against the f64 layer, within `roundings` bf16 roundings.
    pub fn outcome(
        &self,
        op: &str,
        case: &str,
        got: &[f64],
        roundings: f64,
        source: &str,
    ) -> Outcome {
        let want = self
            .want
            .iter()
            .cycle()
            .take(got.len().max(self.want.len()));
        let (err2, ref2) = got.iter().zip(want).fold((0.0, 0.0), |(e, r), (g, w)| {
            (e + (g - w) * (g - w), r + w * w)
        });
        let rel_l2 = (err2 / ref2.max(f64::MIN_POSITIVE)).sqrt();
        let tolerance = roundings * BF16.u;
        // Whole copies only: a short result must not pass by comparing fewer elements.
        let complete = got.len() >= self.want.len() && got.len() % self.want.len().max(1) == 0;
        Outcome {
            op: op.to_string(),
            case: case.to_string(),
            metric: "relative L2 error of the output".to_string(),
            measured: Some(rel_l2),
            tolerance: Some(tolerance),
            source: source.to_string(),
            verdict: if rel_l2 <= tolerance && complete {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
        }
    }
}
