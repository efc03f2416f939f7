//! Expert-parallel traffic at DeepSeek-V3 shapes (hidden 7168, top-8 of 256 experts in 8
//! groups with 4 kept, EP 8, 128 and 4096 tokens per rank): the bytes each rank sends in
//! every step of `ops::ep`, counted from the layouts of random routings (no data moves: 4096
//! tokens of 7168 would need gigabytes per simulated rank), against the minimum (each token's
//! payload to each destination rank once; FP8 dispatch, bf16 combine), and the time they take
//! at the interconnect bandwidth, beside DeepEP's and DeepEP-Ascend's published figures
//! (`shared/reference/deepseek-ops.md` §2.1–2.2). Criterion times the host side of a dispatch
//! plan (the layout count), which an NPU run pays too.
//!
//! The bandwidth is an assumption, marked so: 910B's HCCS full mesh is commonly cited at
//! 56 GB/s per link (392 GB/s per device over 7 peers), unverified (cann-api-facts §7.3).

use ascend_npu::ops::ep::{
    DispatchLayout, EpConfig, EpShape, PayloadKind, Traffic, low_latency_combine_traffic,
    low_latency_dispatch_traffic, normal_combine_traffic, normal_dispatch_traffic,
};
use criterion::{Criterion, criterion_group, criterion_main};

const HIDDEN: usize = 7168;
const TOP_K: usize = 8;
const EXPERTS: usize = 256;
const GROUPS: usize = 8;
const KEPT_GROUPS: usize = 4;
const RANKS: usize = 8;
/// Bytes per second of one HCCS link (unverified, see the module doc).
const LINK: f64 = 56e9;

fn shape() -> EpShape {
    EpShape {
        config: EpConfig {
            num_ranks: RANKS,
            num_experts: EXPERTS,
        },
        hidden: HIDDEN,
        top_k: TOP_K,
    }
}

/// SplitMix64: deterministic routings.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    /// `k` distinct values of `0..n`.
    fn distinct(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut chosen = Vec::with_capacity(k);
        while chosen.len() < k {
            let v = self.below(n);
            if !chosen.contains(&v) {
                chosen.push(v);
            }
        }
        chosen
    }
}

/// DeepSeek-V3's node-limited routing with uniform scores: 4 of the 8 groups, then 8 of their
/// 128 experts. With EP 8 a group is a rank, so a token reaches at most 4 ranks.
fn routing(rng: &mut Rng, tokens: usize) -> Vec<i32> {
    let per_group = EXPERTS / GROUPS;
    let mut ids = Vec::with_capacity(tokens * TOP_K);
    for _ in 0..tokens {
        let groups = rng.distinct(GROUPS, KEPT_GROUPS);
        for i in rng.distinct(KEPT_GROUPS * per_group, TOP_K) {
            ids.push((groups[i / per_group] * per_group + i % per_group) as i32);
        }
    }
    ids
}

/// The busiest rank's traffic of a step.
fn worst(steps: impl Iterator<Item = Traffic>) -> Traffic {
    steps
        .max_by_key(Traffic::busiest_link)
        .expect("at least one rank")
}

fn report(step: &str, t: &Traffic, published: &str) {
    let (bytes, min) = (t.off_rank(), t.minimum_off_rank());
    let time = t.busiest_link() as f64 / LINK;
    println!(
        "  {step:<44} {:>8.2} MB sent ({:>8.2} MB minimum, {:.3}×), modelled {:>7.1} µs = {:>5.0} GB/s per rank; {published}",
        bytes as f64 / 1e6,
        min as f64 / 1e6,
        bytes as f64 / min as f64,
        time * 1e6,
        bytes as f64 / time / 1e9,
    );
}

fn traffic_table() {
    let shape = shape();
    println!(
        "expert-parallel traffic, EP {RANKS}, hidden {HIDDEN}, top-{TOP_K} of {EXPERTS} ({KEPT_GROUPS} of \
         {GROUPS} groups), busiest rank; time at {:.0} GB/s per HCCS link (unverified)",
        LINK / 1e9
    );
    for tokens in [128, 4096] {
        let mut rng = Rng(tokens as u64);
        let layouts: Vec<DispatchLayout> = (0..RANKS)
            .map(|_| {
                DispatchLayout::from_host(&shape.config, &routing(&mut rng, tokens), TOP_K).unwrap()
            })
            .collect();
        let ranks_per_token = layouts
            .iter()
            .map(|l| l.num_tokens_per_rank.iter().sum::<usize>())
            .sum::<usize>() as f64
            / (RANKS * tokens) as f64;
        println!("{tokens} tokens per rank ({ranks_per_token:.2} ranks per token):");
        let fp8 = PayloadKind::Fp8;
        let by_rank = |f: &dyn Fn(usize) -> Traffic| worst((0..RANKS).map(f));
        report(
            "normal dispatch (FP8)",
            &by_rank(&|r| normal_dispatch_traffic(&shape, &layouts[r], r, fp8)),
            "DeepEP EP8 153 GB/s (NVLink), DeepEP-Ascend EP8 146 GB/s (HCCS, INT8)",
        );
        report(
            "normal combine (bf16)",
            &by_rank(&|r| normal_combine_traffic(&shape, &layouts, r)),
            "DeepEP EP8 158 GB/s, DeepEP-Ascend EP8 125 GB/s",
        );
        report(
            "low-latency dispatch (FP8)",
            &by_rank(&|r| low_latency_dispatch_traffic(&shape, &layouts[r], r, fp8)),
            "DeepEP EP8 77 µs (RDMA), DeepEP-Ascend EP8 132 µs; a row per (token, expert)",
        );
        for (name, kind, note) in [
            (
                "low-latency dispatch (bf16)",
                PayloadKind::Bf16,
                "2·H bytes a row: the MC2 ops unquantized",
            ),
            (
                "low-latency dispatch (INT8, MC2 quantMode 2)",
                PayloadKind::Int8,
                "H + 4 bytes a row: half of bf16's, plus the row's fp32 scale",
            ),
        ] {
            let t = by_rank(&|r| low_latency_dispatch_traffic(&shape, &layouts[r], r, kind));
            report(name, &t, note);
        }
        report(
            "low-latency combine",
            &by_rank(&|r| low_latency_combine_traffic(&shape, &layouts, r)),
            "DeepEP EP8 114 µs, DeepEP-Ascend EP8 126 µs",
        );
    }
}

fn bench(c: &mut Criterion) {
    traffic_table();
    let shape = shape();
    let ids = routing(&mut Rng(1), 4096);
    c.bench_function(
        "dispatch layout on the host, 4096 tokens, top-8 of 256",
        |b| b.iter(|| DispatchLayout::from_host(&shape.config, &ids, TOP_K).unwrap()),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
