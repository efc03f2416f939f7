//! A whole DeepSeek MoE layer on one device, in bf16: router, dispatch, experts, combine and
//! the shared expert, enqueued on one stream.

use half::bf16;
use safetensors::SafeTensors;

use super::{Routing, combine, dispatch, grouped_matmul, route};
use crate::error::{Error, Result};
use crate::kernels::{Kernels, MatmulShape, WeightLayout};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// A dense SwiGLU FFN's weights, as checkpoints store them (`[out, in]`, row-major).
pub struct FfnWeights {
    /// `[intermediate, hidden]`.
    pub gate: DeviceBuffer<bf16>,
    /// `[intermediate, hidden]`.
    pub up: DeviceBuffer<bf16>,
    /// `[hidden, intermediate]`.
    pub down: DeviceBuffer<bf16>,
    /// The intermediate size.
    pub intermediate: usize,
}

/// The weights of one MoE layer on the device, in the form an engine holds between calls.
pub struct MoeWeights {
    /// Router `[experts, hidden]`.
    pub router: DeviceBuffer<bf16>,
    /// `e_score_correction_bias` `[experts]` (fp32, selection only), if the model has one.
    pub bias: Option<DeviceBuffer<f32>>,
    /// The routed experts, stacked: gate and up `[experts, intermediate, hidden]`, down
    /// `[experts, hidden, intermediate]`.
    pub experts: FfnWeights,
    /// The shared expert, run on every token with weight 1.
    pub shared: Option<FfnWeights>,
}

/// One MoE layer ready to run: its routing, sizes, weights and kernels.
pub struct MoeLayer {
    routing: Routing,
    hidden: usize,
    weights: MoeWeights,
    kernels: Kernels,
}

impl MoeLayer {
    /// Checks the weights' sizes against `routing` and `hidden`.
    pub fn new(
        routing: Routing,
        hidden: usize,
        weights: MoeWeights,
        kernels: Kernels,
    ) -> Result<Self> {
        routing.validate()?;
        let e = routing.experts;
        let expect = |what: &str, len: usize, want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("{what} of {len} elements"),
                    format!("{want} elements"),
                ))
            }
        };
        expect("router weight", weights.router.len(), e * hidden)?;
        if let Some(b) = &weights.bias {
            expect("router bias", b.len(), e)?;
        }
        let check_ffn = |what: &str, f: &FfnWeights, stacked: usize| {
            let n = stacked * f.intermediate * hidden;
            expect(&format!("{what} gate"), f.gate.len(), n)?;
            expect(&format!("{what} up"), f.up.len(), n)?;
            expect(&format!("{what} down"), f.down.len(), n)
        };
        check_ffn("experts", &weights.experts, e)?;
        if let Some(s) = &weights.shared {
            check_ffn("shared expert", s, 1)?;
        }
        Ok(MoeLayer {
            routing,
            hidden,
            weights,
            kernels,
        })
    }

    /// Loads layer `prefix` (e.g. `model.layers.3.mlp`) from a safetensors file's bytes, with
    /// DeepSeek's tensor names: `gate.weight`, `gate.e_score_correction_bias`,
    /// `experts.{e}.{gate,up,down}_proj.weight`, `shared_experts.{gate,up,down}_proj.weight`.
    /// Weights must be BF16; the bias F32.
    pub fn from_safetensors(
        stream: &Stream,
        bytes: &[u8],
        prefix: &str,
        routing: Routing,
        kernels: Kernels,
    ) -> Result<Self> {
        routing.validate()?;
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::invalid(format!("safetensors: {e}"), "a valid safetensors file"))?;
        let tensor = |name: &str, dtype: safetensors::Dtype| -> Result<(Vec<usize>, &[u8])> {
            let full = format!("{prefix}.{name}");
            let t = file.tensor(&full).map_err(|e| {
                Error::invalid(format!("tensor {full}: {e}"), "the DeepSeek tensor names")
            })?;
            if t.dtype() != dtype {
                return Err(Error::invalid(
                    format!("{full} is {:?}", t.dtype()),
                    format!("{dtype:?}"),
                ));
            }
            Ok((t.shape().to_vec(), t.data()))
        };
        let (router_shape, router) = tensor("gate.weight", safetensors::Dtype::BF16)?;
        if router_shape.len() != 2 || router_shape[0] != routing.experts {
            return Err(Error::invalid(
                format!("{prefix}.gate.weight of shape {router_shape:?}"),
                format!("[{}, hidden]", routing.experts),
            ));
        }
        let hidden = router_shape[1];
        let bias = match file.tensor(&format!("{prefix}.gate.e_score_correction_bias")) {
            Ok(_) => Some(stream.upload(&bf_f32(
                tensor("gate.e_score_correction_bias", safetensors::Dtype::F32)?.1,
            ))?),
            Err(_) => None,
        };
        let ffn = |names: &[String]| -> Result<FfnWeights> {
            let mut parts: [Vec<u8>; 3] = Default::default();
            let mut intermediate = None;
            for name in names {
                for (i, proj) in ["gate_proj", "up_proj", "down_proj"].iter().enumerate() {
                    let (shape, data) =
                        tensor(&format!("{name}.{proj}.weight"), safetensors::Dtype::BF16)?;
                    let (rows, cols) = if i == 2 {
                        (hidden, shape.get(1).copied())
                    } else {
                        (shape[0], Some(hidden))
                    };
                    let inter = if i == 2 {
                        shape.get(1).copied().unwrap_or(0)
                    } else {
                        shape[0]
                    };
                    if shape.len() != 2
                        || shape[0] != rows
                        || Some(shape[1]) != cols
                        || intermediate.is_some_and(|v| v != inter)
                    {
                        return Err(Error::invalid(
                            format!("{prefix}.{name}.{proj}.weight of shape {shape:?}"),
                            format!(
                                "a [{}] matrix matching hidden {hidden} and the other projections",
                                if i == 2 { "hidden, I" } else { "I, hidden" }
                            ),
                        ));
                    }
                    intermediate = Some(inter);
                    parts[i].extend_from_slice(data);
                }
            }
            let [gate, up, down] = parts;
            Ok(FfnWeights {
                gate: stream.upload(&bf_bf16(&gate))?,
                up: stream.upload(&bf_bf16(&up))?,
                down: stream.upload(&bf_bf16(&down))?,
                intermediate: intermediate.unwrap_or(0),
            })
        };
        let expert_names: Vec<String> = (0..routing.experts)
            .map(|e| format!("experts.{e}"))
            .collect();
        let experts = ffn(&expert_names)?;
        let shared = match file.tensor(&format!("{prefix}.shared_experts.gate_proj.weight")) {
            Ok(_) => Some(ffn(&["shared_experts".to_string()])?),
            Err(_) => None,
        };
        let router = stream.upload(&bf_bf16(router))?;
        Self::new(
            routing,
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

    /// The routing configuration.
    pub fn routing(&self) -> &Routing {
        &self.routing
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
        let (h, k, e) = (self.hidden, self.routing.top_k, self.routing.experts);
        if x.len() != tokens * h {
            return Err(Error::invalid(
                format!("x of {} elements for {tokens} tokens", x.len()),
                format!("{} elements", tokens * h),
            ));
        }
        let mut out = stream.alloc_zeroed::<bf16>(tokens * h)?;
        if tokens == 0 {
            return Ok(out);
        }
        // Router logits in fp32 (the selection is sensitive to their precision).
        let mut logits = stream.alloc_uninit::<f32>(tokens * e)?;
        let shape = MatmulShape {
            m: tokens,
            n: e,
            k: h,
        };
        self.kernels.matmul(
            stream,
            x,
            &self.weights.router,
            &mut logits,
            shape,
            WeightLayout::NK,
        )?;
        let (weights, ids) = route(
            stream,
            &self.routing,
            &logits,
            self.weights.bias.as_ref(),
            tokens,
        )?;

        let d = dispatch(stream, x, &ids, tokens, h, k, e)?;
        let rows = tokens * k;
        let experts = &self.weights.experts;
        let y = self.ffn_grouped(stream, &d.expanded_x, &d.counts, experts, rows)?;

        let shared = match &self.weights.shared {
            Some(s) => Some(self.ffn_dense(stream, x, s, tokens)?),
            None => None,
        };
        combine(
            stream,
            &y,
            &d.expanded_row_idx,
            &weights,
            shared.as_ref(),
            &mut out,
            tokens,
            h,
            k,
        )?;
        Ok(out)
    }

    /// The routed experts over the dispatched rows: down(silu(gate·x) ⊙ up·x).
    fn ffn_grouped(
        &self,
        stream: &Stream,
        x: &DeviceBuffer<bf16>,
        counts: &DeviceBuffer<i64>,
        w: &FfnWeights,
        rows: usize,
    ) -> Result<DeviceBuffer<bf16>> {
        let (h, i) = (self.hidden, w.intermediate);
        let mut gate = stream.alloc_uninit::<bf16>(rows * i)?;
        let mut up = stream.alloc_uninit::<bf16>(rows * i)?;
        grouped_matmul(
            stream,
            x,
            &w.gate,
            WeightLayout::NK,
            counts,
            &mut gate,
            rows,
            h,
            i,
        )?;
        grouped_matmul(
            stream,
            x,
            &w.up,
            WeightLayout::NK,
            counts,
            &mut up,
            rows,
            h,
            i,
        )?;
        let mut act = stream.alloc_uninit::<bf16>(rows * i)?;
        self.kernels.swiglu(stream, &gate, &up, &mut act)?;
        let mut y = stream.alloc_uninit::<bf16>(rows * h)?;
        grouped_matmul(
            stream,
            &act,
            &w.down,
            WeightLayout::NK,
            counts,
            &mut y,
            rows,
            i,
            h,
        )?;
        Ok(y)
    }

    /// A dense expert over every token.
    fn ffn_dense(
        &self,
        stream: &Stream,
        x: &impl DeviceSlice<bf16>,
        w: &FfnWeights,
        tokens: usize,
    ) -> Result<DeviceBuffer<bf16>> {
        let (h, i) = (self.hidden, w.intermediate);
        let mut gate = stream.alloc_uninit::<bf16>(tokens * i)?;
        let mut up = stream.alloc_uninit::<bf16>(tokens * i)?;
        let proj = MatmulShape {
            m: tokens,
            n: i,
            k: h,
        };
        self.kernels
            .matmul(stream, x, &w.gate, &mut gate, proj, WeightLayout::NK)?;
        self.kernels
            .matmul(stream, x, &w.up, &mut up, proj, WeightLayout::NK)?;
        let mut act = stream.alloc_uninit::<bf16>(tokens * i)?;
        self.kernels.swiglu(stream, &gate, &up, &mut act)?;
        let mut y = stream.alloc_uninit::<bf16>(tokens * h)?;
        self.kernels.matmul(
            stream,
            &act,
            &w.down,
            &mut y,
            MatmulShape {
                m: tokens,
                n: h,
                k: i,
            },
            WeightLayout::NK,
        )?;
        Ok(y)
    }
}

/// Little-endian BF16 bytes as values.
fn bf_bf16(bytes: &[u8]) -> Vec<bf16> {
    bytes
        .chunks_exact(2)
        .map(|b| bf16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Little-endian F32 bytes as values.
fn bf_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
