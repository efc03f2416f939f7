//! A whole DeepSeek MoE layer on one device: router, dispatch, experts, combine and the shared
//! expert, enqueued on one stream. Activations are bf16; expert weights are bf16 or FP8 (E4M3
//! with 128×128 block scales, run by the FP8-emulated GEMM, W8A16).

use half::bf16;
use safetensors::Dtype;

use super::{
    CombineInputs, GroupSizes, GroupSizesBuffer, MoeShape, check_config, combine, dispatch,
    grouped_matmul, route,
};
use crate::error::{Error, Result};
use crate::kernels::{Kernels, MatmulShape, WeightLayout, matmul, swiglu};
use crate::moe::MoeConfig;
use crate::ops::checkpoint::{Checkpoint, le_bf16, le_f32};
use crate::ops::fp8::{Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// SwiGLU FFN weights as checkpoints store them (`[out, in]`, row-major), stacked over experts
/// when there are several: gate and up `[stack, I, H]`, down `[stack, H, I]`.
// Held once per layer, never in bulk: the size gap between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum FfnWeights {
    /// bf16 weights.
    Bf16 {
        /// `[stack, I, H]`.
        gate: DeviceBuffer<bf16>,
        /// `[stack, I, H]`.
        up: DeviceBuffer<bf16>,
        /// `[stack, H, I]`.
        down: DeviceBuffer<bf16>,
        /// The intermediate size `I`.
        intermediate: usize,
    },
    /// FP8 weights with block scales.
    Fp8 {
        /// `[stack, I, H]`.
        gate: Fp8Weight,
        /// `[stack, I, H]`.
        up: Fp8Weight,
        /// `[stack, H, I]`.
        down: Fp8Weight,
    },
}

impl FfnWeights {
    /// The intermediate size `I`.
    pub fn intermediate(&self) -> usize {
        match self {
            FfnWeights::Bf16 { intermediate, .. } => *intermediate,
            FfnWeights::Fp8 { gate, .. } => gate.n(),
        }
    }

    fn check(&self, what: &str, stack: usize, hidden: usize) -> Result<()> {
        let i = self.intermediate();
        let bad = |detail: String| {
            Err(Error::invalid(
                format!("{what}: {detail}"),
                format!("{stack} × [{i}, {hidden}] gate/up and [{hidden}, {i}] down"),
            ))
        };
        match self {
            FfnWeights::Bf16 { gate, up, down, .. } => {
                let n = crate::error::elements(what, &[stack, i, hidden])?;
                if gate.len() != n || up.len() != n || down.len() != n {
                    return bad(format!(
                        "{} / {} / {} elements",
                        gate.len(),
                        up.len(),
                        down.len()
                    ));
                }
            }
            FfnWeights::Fp8 { gate, up, down } => {
                let shapes = [(gate, i, hidden), (up, i, hidden), (down, hidden, i)];
                for (w, n, k) in shapes {
                    if (w.groups(), w.n(), w.k()) != (stack, n, k) {
                        return bad(format!(
                            "an FP8 weight of {} × [{}, {}]",
                            w.groups(),
                            w.n(),
                            w.k()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The weights of one MoE layer on the device, in the form an engine holds between calls.
pub struct MoeWeights {
    /// Router `[experts, hidden]` (bf16 in DeepSeek's checkpoints).
    pub router: DeviceBuffer<bf16>,
    /// `e_score_correction_bias` `[experts]` (fp32, selection only), if the model has one.
    pub bias: Option<DeviceBuffer<f32>>,
    /// The routed experts, stacked.
    pub experts: FfnWeights,
    /// The shared expert, run on every token with weight 1.
    pub shared: Option<FfnWeights>,
}

/// One MoE layer ready to run: its configuration, sizes, weights and kernels.
pub struct MoeLayer {
    config: MoeConfig,
    hidden: usize,
    weights: MoeWeights,
    kernels: Kernels,
}

impl MoeLayer {
    /// Checks `config` ([`check_config`]) and the weights' sizes against it and `hidden`.
    pub fn new(
        config: MoeConfig,
        hidden: usize,
        weights: MoeWeights,
        kernels: Kernels,
    ) -> Result<Self> {
        let experts = config.n_routed_experts;
        Self::new_sharded(config, hidden, weights, kernels, experts)
    }

    /// [`new`](Self::new) for a layer whose `weights.experts` stack only `stack` of the
    /// experts (expert parallelism: one rank's share).
    pub(crate) fn new_sharded(
        config: MoeConfig,
        hidden: usize,
        weights: MoeWeights,
        kernels: Kernels,
        stack: usize,
    ) -> Result<Self> {
        check_config(&config)?;
        let e = config.n_routed_experts;
        if weights.router.len() != crate::error::elements("router weight", &[e, hidden])? {
            return Err(Error::invalid(
                format!("router weight of {} elements", weights.router.len()),
                format!("[{e}, {hidden}]"),
            ));
        }
        if let Some(b) = &weights.bias {
            if b.len() != e {
                return Err(Error::invalid(
                    format!("router bias of {} elements", b.len()),
                    format!("[{e}]"),
                ));
            }
        }
        weights.experts.check("experts", stack, hidden)?;
        if let Some(s) = &weights.shared {
            s.check("shared expert", 1, hidden)?;
        }
        Ok(MoeLayer {
            config,
            hidden,
            weights,
            kernels,
        })
    }

    /// Loads layer `prefix` (e.g. `model.layers.3.mlp`) from a safetensors file's bytes, with
    /// DeepSeek's tensor names: `gate.weight` (BF16), `gate.e_score_correction_bias` (F32),
    /// `experts.{e}.{gate,up,down}_proj.weight` and `shared_experts.{gate,up,down}_proj.weight`,
    /// either BF16 or F8_E4M3 with their `weight_scale_inv` (F32) block scales.
    pub fn from_safetensors(
        stream: &Stream,
        bytes: &[u8],
        prefix: &str,
        config: MoeConfig,
        kernels: Kernels,
    ) -> Result<Self> {
        check_config(&config)?;
        let ck = Checkpoint::parse(bytes, prefix)?;
        let (router_shape, router) = ck.tensor("gate.weight", Dtype::BF16)?;
        if router_shape.len() != 2 || router_shape[0] != config.n_routed_experts {
            return Err(Error::invalid(
                format!("{prefix}.gate.weight of shape {router_shape:?}"),
                format!("[{}, hidden]", config.n_routed_experts),
            ));
        }
        let hidden = router_shape[1];
        let bias = match ck.dtype("gate.e_score_correction_bias") {
            Some(_) => Some(stream.upload(&le_f32(
                ck.tensor("gate.e_score_correction_bias", Dtype::F32)?.1,
            ))?),
            None => None,
        };
        let ffn = |names: &[String]| -> Result<FfnWeights> {
            let first = format!("{}.gate_proj.weight", names[0]);
            if ck.dtype(&first) == Some(Dtype::F8_E4M3) {
                let load = |proj: &str| {
                    let full: Vec<String> =
                        names.iter().map(|n| format!("{n}.{proj}.weight")).collect();
                    Fp8Weight::from_checkpoint(stream, &ck, &full)
                };
                return Ok(FfnWeights::Fp8 {
                    gate: load("gate_proj")?,
                    up: load("up_proj")?,
                    down: load("down_proj")?,
                });
            }
            let mut parts: [Vec<u8>; 3] = Default::default();
            let mut intermediate = None;
            for name in names {
                for (i, proj) in ["gate_proj", "up_proj", "down_proj"].iter().enumerate() {
                    let (shape, data) = ck.tensor(&format!("{name}.{proj}.weight"), Dtype::BF16)?;
                    // gate/up are [I, H]; down is [H, I].
                    let (inter, other) = match (i, shape.as_slice()) {
                        (2, [h, inter]) => (*inter, *h),
                        (_, [inter, h]) => (*inter, *h),
                        _ => (0, 0),
                    };
                    if shape.len() != 2
                        || other != hidden
                        || intermediate.is_some_and(|v| v != inter)
                    {
                        return Err(Error::invalid(
                            format!("{prefix}.{name}.{proj}.weight of shape {shape:?}"),
                            format!("a matrix of hidden {hidden} matching the other projections"),
                        ));
                    }
                    intermediate = Some(inter);
                    parts[i].extend_from_slice(data);
                }
            }
            let [gate, up, down] = parts;
            Ok(FfnWeights::Bf16 {
                gate: stream.upload(&le_bf16(&gate))?,
                up: stream.upload(&le_bf16(&up))?,
                down: stream.upload(&le_bf16(&down))?,
                intermediate: intermediate.unwrap_or(0),
            })
        };
        let expert_names: Vec<String> = (0..config.n_routed_experts)
            .map(|e| format!("experts.{e}"))
            .collect();
        let experts = ffn(&expert_names)?;
        let shared = match ck.dtype("shared_experts.gate_proj.weight") {
            Some(_) => Some(ffn(&["shared_experts".to_string()])?),
            None => None,
        };
        let router = stream.upload(&le_bf16(router))?;
        Self::new(
            config,
            hidden,
            MoeWeights {
                router,
                bias,
                experts,
                shared,
            },
            kernels,
        )
    }

    /// The configuration.
    pub fn config(&self) -> &MoeConfig {
        &self.config
    }

    /// The hidden size.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Enqueues the layer for `x` (`[tokens, hidden]`) on `stream`; returns `[tokens, hidden]`.
    pub fn forward(
        &self,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        tokens: usize,
    ) -> Result<DeviceBuffer<bf16>> {
        let (h, k, e) = (self.hidden, self.config.top_k, self.config.n_routed_experts);
        // Every size below is bounded by these three checked products.
        crate::error::elements(
            "the layer's expert rows",
            &[tokens, k, h.max(self.weights.experts.intermediate())],
        )?;
        if let Some(shared) = &self.weights.shared {
            crate::error::elements("the shared expert's rows", &[tokens, shared.intermediate()])?;
        }
        crate::error::elements("the router logits", &[tokens, e])?;
        if x.len() != crate::error::elements("x", &[tokens, h])? {
            return Err(Error::invalid(
                format!("x of {} elements for {tokens} tokens", x.len()),
                format!("{} elements", tokens * h),
            ));
        }
        let mut out = stream.alloc_pooled_zeroed::<bf16>(tokens * h)?;
        if tokens == 0 {
            return Ok(out);
        }
        let (weights, ids) = self.route_tokens(stream, x, tokens)?;

        let sizes = match self.weights.experts {
            FfnWeights::Bf16 { .. } => GroupSizes::Counts,
            FfnWeights::Fp8 { .. } => GroupSizes::Cumsum,
        };
        let shape = MoeShape {
            tokens,
            hidden: h,
            top_k: k,
            experts: e,
        };
        let d = dispatch(stream, shape, sizes, x, &ids)?;
        let expanded = Fp8Input::Bf16(d.expanded_x.as_view());
        let y = self.routed_experts(stream, expanded, &d.group_sizes, tokens * k)?;
        let shared = self.shared_expert_of(stream, x, tokens)?;
        let inputs = CombineInputs {
            y: y.view(),
            expanded_row_idx: d.expanded_row_idx.view(),
            weights: weights.view(),
            shared: shared.as_ref().map(|s| s.view()),
        };
        combine(stream, shape, inputs, &mut out)?;
        Ok(out)
    }

    /// Router logits (fp32) and the routing of `x` (`[tokens, hidden]`, checked by the
    /// caller): weights and expert ids, `[tokens, top_k]` each.
    pub(crate) fn route_tokens(
        &self,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        tokens: usize,
    ) -> Result<(DeviceBuffer<f32>, DeviceBuffer<i32>)> {
        let (h, e) = (self.hidden, self.config.n_routed_experts);
        // Router logits in fp32: the selection is sensitive to their precision.
        let mut logits = stream.alloc_pooled::<f32>(tokens * e)?;
        let shape = MatmulShape {
            m: tokens,
            n: e,
            k: h,
        };
        matmul(
            &self.kernels,
            stream,
            shape,
            WeightLayout::NK,
            x,
            &self.weights.router,
            &mut logits,
        )?;
        route(
            &self.kernels,
            stream,
            &self.config,
            tokens,
            &logits,
            self.weights.bias.as_ref(),
        )
    }

    /// The shared expert over `x`, if the layer has one.
    pub(crate) fn shared_expert_of(
        &self,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        tokens: usize,
    ) -> Result<Option<DeviceBuffer<bf16>>> {
        match &self.weights.shared {
            Some(s) => Ok(Some(self.shared_expert(stream, x, s, tokens)?)),
            None => Ok(None),
        }
    }

    /// The routed experts' weights (all of them, or one rank's share).
    pub(crate) fn expert_weights(&self) -> &FfnWeights {
        &self.weights.experts
    }

    /// The kernels the layer launches.
    pub(crate) fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// The routed experts over the dispatched rows: down(silu(gate·x) ⊙ up·x).
    ///
    /// FP8 rows (an FP8 dispatch's) feed FP8 weights' gate and up GEMMs as they are (W8A8, as
    /// DeepSeek runs them); bf16 weights get them dequantized once (code × scale in fp32,
    /// rounded to bf16). The down GEMM always reads the bf16 SwiGLU output.
    pub(crate) fn routed_experts(
        &self,
        stream: &Stream,
        x: Fp8Input<'_>,
        sizes: &GroupSizesBuffer,
        rows: usize,
    ) -> Result<DeviceBuffer<bf16>> {
        let w = &self.weights.experts;
        let (h, i) = (self.hidden, w.intermediate());
        let mut gate = stream.alloc_pooled::<bf16>(rows * i)?;
        let mut up = stream.alloc_pooled::<bf16>(rows * i)?;
        let mut act = stream.alloc_pooled::<bf16>(rows * i)?;
        let mut y = stream.alloc_pooled::<bf16>(rows * h)?;
        let dequantized;
        let x = match (w, x) {
            (FfnWeights::Bf16 { .. }, Fp8Input::Fp8(q)) => {
                let mut d = stream.alloc_pooled::<bf16>(rows * h)?;
                q.dequantize(&self.kernels, stream, &mut d)?;
                dequantized = d;
                Fp8Input::Bf16(dequantized.as_view())
            }
            (_, x) => x,
        };
        match (w, sizes) {
            (
                FfnWeights::Bf16 {
                    gate: wg,
                    up: wu,
                    down: wd,
                    ..
                },
                GroupSizesBuffer::Counts(counts),
            ) => {
                let (proj, down) = (
                    MatmulShape {
                        m: rows,
                        n: i,
                        k: h,
                    },
                    MatmulShape {
                        m: rows,
                        n: h,
                        k: i,
                    },
                );
                let Fp8Input::Bf16(x) = x else {
                    unreachable!("FP8 rows were dequantized for bf16 weights above")
                };
                let nk = WeightLayout::NK;
                grouped_matmul(stream, proj, nk, &x, wg, counts, &mut gate)?;
                grouped_matmul(stream, proj, nk, &x, wu, counts, &mut up)?;
                swiglu(&self.kernels, stream, &gate, &up, &mut act)?;
                grouped_matmul(stream, down, nk, &act, wd, counts, &mut y)?;
            }
            (
                FfnWeights::Fp8 {
                    gate: wg,
                    up: wu,
                    down: wd,
                },
                GroupSizesBuffer::Cumsum(cumsum),
            ) => {
                let groups = || Fp8Groups::ContiguousCumsum {
                    cumsum: cumsum.as_view(),
                };
                let k = &self.kernels;
                fp8_gemm(k, stream, rows, reborrow(&x), wg, groups(), &mut gate)?;
                fp8_gemm(k, stream, rows, x, wu, groups(), &mut up)?;
                swiglu(k, stream, &gate, &up, &mut act)?;
                fp8_gemm(
                    k,
                    stream,
                    rows,
                    Fp8Input::Bf16(act.as_view()),
                    wd,
                    groups(),
                    &mut y,
                )?;
            }
            _ => unreachable!("forward asks dispatch for the group sizes the expert format needs"),
        }
        Ok(y)
    }

    /// A dense expert over every token.
    fn shared_expert(
        &self,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        w: &FfnWeights,
        tokens: usize,
    ) -> Result<DeviceBuffer<bf16>> {
        let (h, i) = (self.hidden, w.intermediate());
        let mut gate = stream.alloc_pooled::<bf16>(tokens * i)?;
        let mut up = stream.alloc_pooled::<bf16>(tokens * i)?;
        let mut act = stream.alloc_pooled::<bf16>(tokens * i)?;
        let mut y = stream.alloc_pooled::<bf16>(tokens * h)?;
        let k = &self.kernels;
        match w {
            FfnWeights::Bf16 {
                gate: wg,
                up: wu,
                down: wd,
                ..
            } => {
                let proj = MatmulShape {
                    m: tokens,
                    n: i,
                    k: h,
                };
                matmul(k, stream, proj, WeightLayout::NK, x, wg, &mut gate)?;
                matmul(k, stream, proj, WeightLayout::NK, x, wu, &mut up)?;
                swiglu(k, stream, &gate, &up, &mut act)?;
                matmul(
                    k,
                    stream,
                    MatmulShape {
                        m: tokens,
                        n: h,
                        k: i,
                    },
                    WeightLayout::NK,
                    &act,
                    wd,
                    &mut y,
                )?;
            }
            FfnWeights::Fp8 {
                gate: wg,
                up: wu,
                down: wd,
            } => {
                fp8_gemm(
                    k,
                    stream,
                    tokens,
                    Fp8Input::Bf16(x.view()),
                    wg,
                    Fp8Groups::None,
                    &mut gate,
                )?;
                fp8_gemm(
                    k,
                    stream,
                    tokens,
                    Fp8Input::Bf16(x.view()),
                    wu,
                    Fp8Groups::None,
                    &mut up,
                )?;
                swiglu(k, stream, &gate, &up, &mut act)?;
                fp8_gemm(
                    k,
                    stream,
                    tokens,
                    Fp8Input::Bf16(act.as_view()),
                    wd,
                    Fp8Groups::None,
                    &mut y,
                )?;
            }
        }
        Ok(y)
    }
}

/// The same activations again, for a second GEMM.
fn reborrow<'a>(x: &'a Fp8Input<'_>) -> Fp8Input<'a> {
    match x {
        Fp8Input::Bf16(v) => Fp8Input::Bf16(v.view()),
        Fp8Input::Fp8(q) => Fp8Input::Fp8(q),
    }
}
