//! A DeepSeek-V3-shaped MoE layer on the simulator: router (sigmoid, 8 groups, top-4 groups,
//! top-8 experts, selection bias, scale 2.5), dispatch, SwiGLU experts, the shared expert and
//! combine, checked against the f64 reference layer.
//!
//! ```sh
//! cargo run --release --example moe_layer            # reduced sizes, bf16 experts
//! cargo run --release --example moe_layer -- --fp8   # FP8 (W8A16) experts
//! cargo run --release --example moe_layer -- --full  # DeepSeek-V3 sizes, FP8 experts; needs
//!                                                    # about 25 GB of RAM, no f64 reference
//! ```

use std::time::Instant;

use ascend_npu::fp8::{ScaleFormat, quantize_weight};
use ascend_npu::kernels::Kernels;
use ascend_npu::moe::MoeConfig;
use ascend_npu::ops::fp8::Fp8Weight;
use ascend_npu::ops::moe::{FfnWeights, MoeLayer, MoeWeights};
use ascend_npu::reference::moe::{ExpertWeights, MoeLayerWeights, moe_layer_reference};
use ascend_npu::{Backend, Device, Event, Stream, select_backend};
use half::bf16;

/// Deterministic values in [-scale, scale): the example needs no RNG crate.
fn values(seed: usize, len: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let h = i
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503))
                % 2001;
            (h as f32 / 1000.0 - 1.0) * scale
        })
        .collect()
}

/// `stack` SwiGLU FFNs (gate/up `[inter, hidden]`, down `[hidden, inter]`) on the device, and
/// the values the device holds as f64 for the reference (when `keep`).
fn ffn(
    stream: &Stream,
    seed: usize,
    stack: usize,
    (hidden, inter): (usize, usize),
    fp8: bool,
    keep: bool,
) -> Result<(FfnWeights, Vec<ExpertWeights>), Box<dyn std::error::Error>> {
    let shapes = [(inter, hidden), (inter, hidden), (hidden, inter)];
    let mut codes: [Vec<_>; 3] = Default::default();
    let mut scales: [Vec<f32>; 3] = Default::default();
    let mut halves: [Vec<bf16>; 3] = Default::default();
    let mut kept = Vec::new();
    for e in 0..stack {
        let mut seen: Vec<Vec<f64>> = Vec::new();
        for (p, &(n, k)) in shapes.iter().enumerate() {
            let w = values(seed + 3 * e + p, n * k, 0.05);
            let on_device: Vec<f32> = if fp8 {
                let q = quantize_weight(&w, n, k, ScaleFormat::Fp32)?;
                let deq = if keep { q.dequantize() } else { Vec::new() };
                let (c, s) = q.into_parts();
                codes[p].extend(c);
                scales[p].extend(s);
                deq
            } else {
                let b: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
                let used = if keep {
                    b.iter().map(|v| v.to_f32()).collect()
                } else {
                    Vec::new()
                };
                halves[p].extend(b);
                used
            };
            seen.push(on_device.into_iter().map(f64::from).collect());
        }
        if keep {
            let [g, u, d]: [Vec<f64>; 3] = seen.try_into().map_err(|_| "three matrices")?;
            kept.push(ExpertWeights::new(hidden, inter, g, u, d)?);
        }
    }
    let weights = if fp8 {
        let w = |p: usize| {
            Fp8Weight::upload(
                stream,
                stack,
                shapes[p].0,
                shapes[p].1,
                &codes[p],
                &scales[p],
            )
        };
        FfnWeights::Fp8 {
            gate: w(0)?,
            up: w(1)?,
            down: w(2)?,
        }
    } else {
        FfnWeights::Bf16 {
            gate: stream.upload(&halves[0])?,
            up: stream.upload(&halves[1])?,
            down: stream.upload(&halves[2])?,
            intermediate: inter,
        }
    };
    Ok((weights, kept))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--full");
    let fp8 = full || args.iter().any(|a| a == "--fp8");
    let (tokens, hidden, inter, experts) = if full {
        (4, 7168, 2048, 256)
    } else {
        (16, 1024, 256, 64)
    };
    // One configuration for the device layer and its f64 reference.
    let config = MoeConfig {
        n_routed_experts: experts,
        ..MoeConfig::deepseek_v3()
    };

    select_backend(Backend::Sim)?;
    let device = Device::open(0)?;
    let stream = device.new_stream()?;
    println!(
        "MoE layer on {}: {tokens} tokens, hidden {hidden}, {experts} experts in {} groups (top-{} \
         groups, top-{}), moe_intermediate {inter}, 1 shared expert, {} expert weights{}",
        device.soc_name()?,
        config.n_group,
        config.topk_group,
        config.top_k,
        if fp8 {
            "FP8 E4M3 (128x128 scales)"
        } else {
            "bf16"
        },
        if full {
            ""
        } else {
            " (reduced sizes; --full for DeepSeek-V3's)"
        },
    );

    let keep = !full;
    let router: Vec<bf16> = values(1, experts * hidden, 0.02)
        .into_iter()
        .map(bf16::from_f32)
        .collect();
    let bias = values(2, experts, 0.1);
    let (routed, host_routed) = ffn(&stream, 10, experts, (hidden, inter), fp8, keep)?;
    let (shared, host_shared) = ffn(&stream, 1_000_000, 1, (hidden, inter), fp8, keep)?;
    let weights = MoeWeights {
        router: stream.upload(&router)?,
        bias: Some(stream.upload(&bias)?),
        experts: routed,
        shared: Some(shared),
    };
    let layer = MoeLayer::new(config, hidden, weights, Kernels::load(&device)?)?;

    let x: Vec<bf16> = values(3, tokens * hidden, 1.0)
        .into_iter()
        .map(bf16::from_f32)
        .collect();
    let dx = stream.upload(&x)?;
    let wall = Instant::now();
    let start = stream.record_event()?;
    let out = layer.forward(&stream, &dx, tokens)?;
    let end = stream.record_event()?;
    let got: Vec<f64> = out.to_vec()?.iter().map(|v| v.to_f64()).collect();
    println!(
        "forward: {:.1} ms of stream time, {:.1} ms wall (the CPU simulator's, not an NPU's)",
        Event::elapsed_ms(&start, &end)?,
        wall.elapsed().as_secs_f64() * 1e3
    );

    if keep {
        let gate_weight: Vec<f64> = router.iter().map(|v| v.to_f64()).collect();
        let bias64: Vec<f64> = bias.iter().map(|&v| f64::from(v)).collect();
        let reference = moe_layer_reference(
            &config,
            &MoeLayerWeights {
                gate_weight: &gate_weight,
                bias: Some(&bias64),
                experts: &host_routed,
                shared: host_shared.first(),
            },
            &x.iter().map(|v| v.to_f64()).collect::<Vec<_>>(),
        )?;
        let want = reference.out;
        let err: f64 = got.iter().zip(&want).map(|(g, w)| (g - w) * (g - w)).sum();
        let norm: f64 = want.iter().map(|w| w * w).sum();
        let dot: f64 = got.iter().zip(&want).map(|(g, w)| g * w).sum();
        let calc_diff = 1.0 - 2.0 * dot / (got.iter().map(|g| g * g).sum::<f64>() + norm);
        let rel_l2 = (err / norm).sqrt();
        println!(
            "against the f64 reference: relative L2 error {rel_l2:.2e}, calc_diff {calc_diff:.2e}"
        );
        if !(rel_l2 < 4.0 / 256.0 && calc_diff < 1e-3) {
            return Err("the device layer disagrees with the reference".into());
        }
    }
    Ok(())
}
