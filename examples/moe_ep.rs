//! An expert-parallel DeepSeek MoE layer on simulated devices: each rank routes its own tokens,
//! dispatches them (DeepEP's normal mode over HCCL all-to-all-v), runs its share of the routed
//! experts and combines the partial sums back. Each rank's output is compared with the
//! single-device layer on the same tokens and weights, and with the f64 reference.
//!
//! ```sh
//! cargo run --release --example moe_ep -- --ranks 4
//! cargo run --release --example moe_ep -- --ranks 4 --fp8   # FP8 (E4M3, 1x128) dispatch
//! ```

use ascend_npu::fp8::ScaleFormat;
use ascend_npu::kernels::Kernels;
use ascend_npu::moe::MoeConfig;
use ascend_npu::ops::ep::EpMoeLayer;
use ascend_npu::ops::moe::{FfnWeights, MoeLayer, MoeWeights};
use ascend_npu::reference::moe::{ExpertWeights, MoeLayerWeights, moe_layer_reference};
use ascend_npu::runtime::comm::{Comm, RootInfo};
use ascend_npu::sim::{SimConfig, SocModel, configure};
use ascend_npu::{Backend, Device, Stream, select_backend};
use half::bf16;

const TOKENS: usize = 12;
const HIDDEN: usize = 512;
const INTER: usize = 128;
const EXPERTS: usize = 64;

/// Deterministic bf16 values in [-scale, scale): the example needs no RNG crate.
fn values(seed: usize, len: usize, scale: f32) -> Vec<bf16> {
    (0..len)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 2003;
            bf16::from_f32((h as f32 / 1001.0 - 1.0) * scale)
        })
        .collect()
}

/// `stack` SwiGLU FFNs: gate, up `[stack, I, H]` and down `[stack, H, I]`, as bf16.
struct Ffn([Vec<bf16>; 3]);

impl Ffn {
    fn new(seed: usize, stack: usize) -> Ffn {
        let n = stack * INTER * HIDDEN;
        Ffn([0, 1, 2].map(|p| values(seed + p, n, 0.06)))
    }

    /// Experts `range` on the device.
    fn upload(
        &self,
        stream: &Stream,
        range: std::ops::Range<usize>,
    ) -> ascend_npu::Result<FfnWeights> {
        let per = INTER * HIDDEN;
        let part = |v: &Vec<bf16>| stream.upload(&v[range.start * per..range.end * per]);
        Ok(FfnWeights::Bf16 {
            gate: part(&self.0[0])?,
            up: part(&self.0[1])?,
            down: part(&self.0[2])?,
            intermediate: INTER,
        })
    }

    /// Expert `e` in f64.
    fn reference(&self, e: usize) -> ExpertWeights {
        let per = INTER * HIDDEN;
        let [g, u, d] = [0, 1, 2].map(|p| f64s(&self.0[p][e * per..(e + 1) * per]));
        ExpertWeights::new(HIDDEN, INTER, g, u, d).expect("consistent sizes")
    }
}

fn f64s(v: &[bf16]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// `(max |a − b|, ‖a − b‖ / ‖b‖)`.
fn distance(a: &[f64], b: &[f64]) -> (f64, f64) {
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let err: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (max, (err / norm).sqrt())
}

struct Model {
    config: MoeConfig,
    router: Vec<bf16>,
    bias: Vec<f32>,
    experts: Ffn,
    shared: Ffn,
}

impl Model {
    fn weights(
        &self,
        stream: &Stream,
        experts: std::ops::Range<usize>,
    ) -> ascend_npu::Result<MoeWeights> {
        Ok(MoeWeights {
            router: stream.upload(&self.router)?,
            bias: Some(stream.upload(&self.bias)?),
            experts: self.experts.upload(stream, experts)?,
            shared: Some(self.shared.upload(stream, 0..1)?),
        })
    }
}

/// One rank: the expert-parallel layer, the single-device layer on the same tokens, both as f64.
fn rank(
    model: &Model,
    (ranks, rank): (usize, usize),
    (root, fp8): (&[u8], bool),
    x: &[bf16],
) -> ascend_npu::Result<(Vec<f64>, Vec<f64>)> {
    let device = Device::open(rank)?;
    let comm = Comm::init(
        &device,
        &RootInfo::from_bytes(root)?,
        rank as u32,
        ranks as u32,
    )?;
    let stream = device.new_stream()?;
    let kernels = Kernels::load(&device)?;
    let local = EXPERTS / ranks;
    let share = rank * local..(rank + 1) * local;
    let ep = EpMoeLayer::new(
        model.config,
        HIDDEN,
        (ranks, rank),
        model.weights(&stream, share)?,
        kernels.clone(),
    )?;
    let ep = if fp8 {
        ep.with_fp8_dispatch(ScaleFormat::Fp32)
    } else {
        ep
    };
    let dx = stream.upload(x)?;
    let got = ep.forward(&comm, &stream, &dx, TOKENS)?.to_vec()?;
    let single = MoeLayer::new(
        model.config,
        HIDDEN,
        model.weights(&stream, 0..EXPERTS)?,
        kernels,
    )?;
    let want = single.forward(&stream, &dx, TOKENS)?.to_vec()?;
    Ok((f64s(&got), f64s(&want)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ranks = match args.iter().position(|a| a == "--ranks") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--ranks needs a number")?
            .parse::<usize>()?,
        None => 4,
    };
    let fp8 = args.iter().any(|a| a == "--fp8");
    if ranks == 0 || EXPERTS % ranks != 0 || ranks > 64 {
        return Err(format!("--ranks {ranks}: expected a divisor of {EXPERTS}").into());
    }
    configure(SimConfig::uniform(SocModel::ascend910b2(), ranks)?)?;
    select_backend(Backend::Sim)?;
    let model = Model {
        config: MoeConfig {
            n_routed_experts: EXPERTS,
            ..MoeConfig::deepseek_v3()
        },
        router: values(1, EXPERTS * HIDDEN, 0.05),
        bias: values(2, EXPERTS, 0.1).iter().map(|v| v.to_f32()).collect(),
        experts: Ffn::new(10, EXPERTS),
        shared: Ffn::new(20, 1),
    };
    println!(
        "expert-parallel MoE on {ranks} simulated {} devices: {TOKENS} tokens per rank, hidden \
         {HIDDEN}, {EXPERTS} experts ({} per rank), top-{} of {} groups (top-{}), moe_intermediate \
         {INTER}, 1 shared expert, {} dispatch",
        SocModel::ascend910b2().name,
        EXPERTS / ranks,
        model.config.top_k,
        model.config.n_group,
        model.config.topk_group,
        if fp8 {
            "FP8 E4M3 (1x128 scales)"
        } else {
            "bf16"
        },
    );
    let xs: Vec<Vec<bf16>> = (0..ranks)
        .map(|r| values(100 + r, TOKENS * HIDDEN, 1.0))
        .collect();
    let root = RootInfo::new(&Device::open(0)?)?.as_bytes().to_vec();
    let results: Vec<ascend_npu::Result<(Vec<f64>, Vec<f64>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ranks)
            .map(|r| {
                let (model, root, x) = (&model, &root, &xs[r]);
                s.spawn(move || rank(model, (ranks, r), (root, fp8), x))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a rank panicked"))
            .collect()
    });

    let gate = f64s(&model.router);
    let bias: Vec<f64> = model.bias.iter().map(|&b| f64::from(b)).collect();
    let experts: Vec<ExpertWeights> = (0..EXPERTS).map(|e| model.experts.reference(e)).collect();
    let shared = model.shared.reference(0);
    let weights = MoeLayerWeights {
        gate_weight: &gate,
        bias: Some(&bias),
        experts: &experts,
        shared: Some(&shared),
    };
    let mut ok = true;
    for (r, result) in results.into_iter().enumerate() {
        let (got, single) = result?;
        let reference = moe_layer_reference(&model.config, &weights, &f64s(&xs[r]))?.out;
        let (max_single, rel_single) = distance(&got, &single);
        let (_, rel_ref) = distance(&got, &reference);
        let (_, rel_single_ref) = distance(&single, &reference);
        println!(
            "rank {r}: from the single-device layer max |Δ| {max_single:.2e}, relative L2 \
             {rel_single:.2e}; from the f64 reference relative L2 {rel_ref:.2e} (single device: \
             {rel_single_ref:.2e})"
        );
        // The EP layer adds one bf16 rounding per rank to each token's partial sum (2^-8
        // relative): a few 2^-8 in relative L2 at most. Against f64, bf16 activations and
        // weights allow about 4/256, as for the single-device example.
        // An FP8 dispatch rounds each routed activation to E4M3 (3 mantissa bits: within 2^-4
        // relative); to first order the routed experts' outputs move by as much, so 2^-4 more.
        let bound = 4.0 / 256.0 + if fp8 { 1.0 / 16.0 } else { 0.0 };
        ok &= rel_single < bound && rel_ref < bound;
    }
    if !ok {
        return Err(
            "the expert-parallel layer disagrees with the single-device layer or the reference"
                .into(),
        );
    }
    Ok(())
}
