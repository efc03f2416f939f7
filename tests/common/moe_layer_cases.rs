//! A whole MoE layer, loaded from a safetensors file with DeepSeek's tensor names, compared with
//! the f64 reference layer. Instantiated by `moe_layer_sim.rs` and its hardware twin
//! `moe_layer_hardware.rs`.

use super::Rng;
use ascend_npu::Device;
use ascend_npu::kernels::Kernels;
use ascend_npu::ops::moe::MoeLayer;
use ascend_npu::reference::moe::{ExpertWeights, MoeConfig, MoeLayerWeights, moe_layer_reference};
use half::bf16;
use safetensors::Dtype;

use super::checkpoint::Tensors;

const PREFIX: &str = "model.layers.3.mlp";

#[derive(Clone)]
struct Model {
    routing: MoeConfig,
    hidden: usize,
    inter: usize,
    shared_inter: usize,
    /// name -> (shape, bf16 or f32 values as f64, dtype)
    tensors: Tensors,
}

impl Model {
    fn random(seed: u64) -> Model {
        let routing = MoeConfig {
            n_routed_experts: 16,
            n_group: 4,
            topk_group: 2,
            top_k: 3,
            ..MoeConfig::deepseek_v3()
        };
        let (hidden, inter, shared_inter) = (64, 32, 16);
        let mut rng = Rng::new(seed);
        let mut bf = |n: usize, scale: f32| -> Vec<f64> {
            (0..n)
                .map(|_| bf16::from_f32(rng.f32() * scale).to_f64())
                .collect()
        };
        let mut tensors = Vec::new();
        // Small router logits plus well-separated biases keep every selection far from a tie,
        // so fp32 device logits and f64 reference logits choose the same experts.
        tensors.push((
            "gate.weight".to_string(),
            vec![routing.n_routed_experts, hidden],
            bf(routing.n_routed_experts * hidden, 0.002),
            Dtype::BF16,
        ));
        let bias: Vec<f64> = (0..routing.n_routed_experts)
            .map(|e| f64::from(((e * 7) % 16) as f32 * 0.05))
            .collect();
        tensors.push((
            "gate.e_score_correction_bias".to_string(),
            vec![routing.n_routed_experts],
            bias,
            Dtype::F32,
        ));
        for e in 0..routing.n_routed_experts {
            for (proj, shape) in [
                ("gate_proj", [inter, hidden]),
                ("up_proj", [inter, hidden]),
                ("down_proj", [hidden, inter]),
            ] {
                let n = shape[0] * shape[1];
                tensors.push((
                    format!("experts.{e}.{proj}.weight"),
                    shape.to_vec(),
                    bf(n, 0.25),
                    Dtype::BF16,
                ));
            }
        }
        for (proj, shape) in [
            ("gate_proj", [shared_inter, hidden]),
            ("up_proj", [shared_inter, hidden]),
            ("down_proj", [hidden, shared_inter]),
        ] {
            tensors.push((
                format!("shared_experts.{proj}.weight"),
                shape.to_vec(),
                bf(shape[0] * shape[1], 0.25),
                Dtype::BF16,
            ));
        }
        Model {
            routing,
            hidden,
            inter,
            shared_inter,
            tensors: Tensors(tensors),
        }
    }

    /// The same model with FP8 expert and shared-expert weights (128×128 block scales); the
    /// values the reference sees become the dequantized ones.
    fn quantized(&self) -> Model {
        Model {
            tensors: self
                .tensors
                .quantized(|name| name.ends_with("_proj.weight")),
            ..self.clone()
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.tensors.bytes(PREFIX)
    }

    fn get(&self, name: &str) -> &[f64] {
        self.tensors.get(name)
    }

    fn reference(&self, x: &[f64]) -> Vec<f64> {
        // The layer's own configuration drives the reference.
        let cfg = self.routing;
        let ffn = |name: &str, inter: usize| {
            ExpertWeights::new(
                self.hidden,
                inter,
                self.get(&format!("{name}.gate_proj.weight")).to_vec(),
                self.get(&format!("{name}.up_proj.weight")).to_vec(),
                self.get(&format!("{name}.down_proj.weight")).to_vec(),
            )
            .unwrap()
        };
        let experts: Vec<ExpertWeights> = (0..self.routing.n_routed_experts)
            .map(|e| ffn(&format!("experts.{e}"), self.inter))
            .collect();
        let shared = ffn("shared_experts", self.shared_inter);
        let weights = MoeLayerWeights {
            gate_weight: self.get("gate.weight"),
            bias: Some(self.get("gate.e_score_correction_bias")),
            experts: &experts,
            shared: Some(&shared),
        };
        moe_layer_reference(&cfg, &weights, x).unwrap().out
    }
}

pub fn a_safetensors_layer_matches_the_f64_reference() {
    check_layer(Model::random(42));
}

pub fn an_fp8_safetensors_layer_matches_the_f64_reference() {
    check_layer(Model::random(43).quantized());
}

fn check_layer(model: Model) {
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let bytes = model.bytes();
    let layer = MoeLayer::from_safetensors(
        &stream,
        &bytes,
        PREFIX,
        model.routing,
        Kernels::load(&device).unwrap(),
    )
    .unwrap();
    assert_eq!(layer.hidden(), model.hidden);
    for tokens in [1usize, 7] {
        let mut rng = Rng::new(tokens as u64);
        let x: Vec<bf16> = (0..tokens * model.hidden)
            .map(|_| bf16::from_f32(rng.f32()))
            .collect();
        let dx = stream.upload(&x).unwrap();
        let out = layer
            .forward(&stream, &dx, tokens)
            .unwrap()
            .to_vec()
            .unwrap();
        let want = model.reference(&x.iter().map(|v| v.to_f64()).collect::<Vec<_>>());
        let (mut err2, mut ref2, mut dot, mut got2) = (0.0, 0.0, 0.0, 0.0);
        for (g, w) in out.iter().map(|v| v.to_f64()).zip(&want) {
            err2 += (g - w) * (g - w);
            ref2 += w * w;
            got2 += g * g;
            dot += g * w;
        }
        let rel_l2 = (err2 / ref2).sqrt();
        // DeepGEMM's calc_diff: 1 - 2·Σxy / (Σx² + Σy²).
        let calc_diff = 1.0 - 2.0 * dot / (got2 + ref2);
        // Each path rounds to bf16 about four times (the gate/up GEMMs, SwiGLU, the down GEMM,
        // the combine); bf16's unit roundoff is 2^-8, so the error is at most ~4·2^-8 of the
        // output's size, and calc_diff ≈ rel_l2²/2.
        assert!(
            rel_l2 <= 4.0 / 256.0,
            "{tokens} tokens: relative L2 error {rel_l2:e}"
        );
        assert!(calc_diff < 1e-3, "{tokens} tokens: calc_diff {calc_diff:e}");
    }
}

pub fn bad_checkpoints_are_clear_errors() {
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let mut model = Model::random(1);
    let load = |bytes: &[u8], routing| {
        MoeLayer::from_safetensors(
            &stream,
            bytes,
            PREFIX,
            routing,
            Kernels::load(&device).unwrap(),
        )
        .err()
        .unwrap()
        .to_string()
    };
    let err = load(b"not a safetensors file", model.routing);
    assert!(err.contains("safetensors"), "{err}");
    let err = load(
        &model.bytes(),
        MoeConfig {
            n_routed_experts: 32,
            n_group: 4,
            ..model.routing
        },
    );
    assert!(err.contains("gate.weight of shape [16, 64]"), "{err}");
    model.tensors.remove("experts.5.up_proj.weight");
    let err = load(&model.bytes(), model.routing);
    assert!(err.contains("experts.5.up_proj.weight"), "{err}");
    let x = stream.upload(&[bf16::ZERO; 3]).unwrap();
    let full = Model::random(2);
    let layer = MoeLayer::from_safetensors(
        &stream,
        &full.bytes(),
        PREFIX,
        full.routing,
        Kernels::load(&device).unwrap(),
    )
    .unwrap();
    let err = layer.forward(&stream, &x, 1).err().unwrap().to_string();
    assert!(err.contains("x of 3 elements for 1 tokens"), "{err}");
}
