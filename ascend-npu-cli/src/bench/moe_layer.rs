//! The whole DeepSeek MoE layer on one device (router, routing, dispatch, experts, combine,
//! shared expert), with the least work any routing of its tokens needs.

use ascend_npu::ops::moe::{FfnWeights, MoeLayer, MoeWeights};
use half::bf16;

use super::Work;
use super::ops::{BF16, Bench, F32, moe_config};
use crate::preset::MoeCase;

/// Random bf16 weights of size ~1/sqrt(fan-in), so activations stay of order one.
fn weights(b: &mut Bench, case: &MoeCase) -> ascend_npu::Result<MoeWeights> {
    let (h, e, i, si) = (
        case.hidden,
        case.experts,
        case.intermediate,
        case.shared_intermediate,
    );
    let scale = |fan_in: usize| 1.0 / (fan_in.max(1) as f64).sqrt();

    let ffn = |b: &mut Bench, stack: usize, inter: usize| -> ascend_npu::Result<FfnWeights> {
        Ok(FfnWeights::Bf16 {
            gate: b.random::<bf16>(stack * inter * h, scale(h))?,
            up: b.random::<bf16>(stack * inter * h, scale(h))?,
            down: b.random::<bf16>(stack * h * inter, scale(inter))?,
            intermediate: inter,
        })
    };
    let weights = MoeWeights {
        router: b.random::<bf16>(e * h, scale(h))?,
        bias: Some(b.random::<f32>(e, 0.1)?),
        experts: ffn(b, e, i)?,
        shared: if si > 0 { Some(ffn(b, 1, si)?) } else { None },
    };
    Ok(weights)
}

/// Benchmarks the layer at one preset case.
pub fn layer(b: &mut Bench, case: &MoeCase) {
    let config = moe_config(case);
    let set = |b: &mut Bench| -> ascend_npu::Result<_> {
        let weights = weights(b, case)?;
        let x = b.random::<bf16>(case.tokens * case.hidden, 1.0)?;
        let layer = MoeLayer::new(config, case.hidden, weights, b.kernels.clone())?;
        Ok((layer, x))
    };
    let (t, h, e, k, i, si) = (
        case.tokens as u64,
        case.hidden as u64,
        case.experts as u64,
        case.top_k as u64,
        case.intermediate as u64,
        case.shared_intermediate as u64,
    );
    match set(b) {
        Ok((layer, dx)) => {
            // Any routing sends a token to K distinct experts, so at least K experts' weights
            // are read (the input's routing may touch more; the simulator counts those).
            let active = k;
            // x, the router and its bias, the three matrices of those experts and of the shared
            // expert read once; the output written once. MACs: the
            // router's T·E·H, three H·I products per (token, k) pair and per token for the
            // shared expert. Vector: SwiGLU's 4 per intermediate element, the combine's 2 per
            // term, routing's 4 per logit.
            let minimum = Work {
                read_bytes: t * h * BF16
                    + e * h * BF16
                    + e * F32
                    + (active * i + si) * 3 * h * BF16,
                written_bytes: t * h * BF16,
                cube_macs: t * e * h + 3 * h * (t * k * i + t * si),
                vector_ops: 4 * (t * k * i + t * si) + 2 * t * (k + 1) * h + 4 * t * e,
                ..Work::default()
            };
            let stream = &b.stream;
            b.run.measure(
                "moe-layer",
                &format!(
                    "bf16 T={} H={} I={} E={} K={} shared I={}",
                    case.tokens,
                    case.hidden,
                    case.intermediate,
                    case.experts,
                    case.top_k,
                    case.shared_intermediate
                ),
                minimum,
                || layer.forward(stream, &dx, case.tokens).map(drop),
            );
        }
        Err(e) => b.run.failed("moe-layer", e),
    }
}
