//! MLA decode on the simulator at DeepSeek's widths (latent 512 + rope 64, the softmax scale
//! of V3): `ops::mla::mqa_decode`, FlashMLA's absorbed decode over the paged latent cache, for
//! b sequences of s_k = 4096 cached tokens, h = 16 and 128 query heads, one query token, a
//! bf16 (1,152 B/token) and an FP8 (656 B/token) cache of 64-token blocks.
//!
//! Per case: the global-memory bytes the kernels counted, split as the cost model splits them:
//! HBM bytes against the minimum (each sequence's cache rows read once for all its heads, q
//! read and the output and LSE written once), and beside them the L2 bytes, the ring the
//! launch writes before it reads it (scores, probabilities, partial outputs, FP8's decoded
//! chunks) that stays in the L2; the modelled time on Ascend910B2 (`ascend_sim::cost`) of the
//! launches as counted and of that minimum, and the simulator's wall time (criterion). The
//! issue's goals: HBM bytes at most 1.1× the minimum at h = 128, an FP8 cache's HBM bytes at
//! most 0.6× a bf16 one's. A CPU baseline (the same attention in f32 on one core) runs at
//! b = 1.
//!
//! By default b = 1: b = 64 and 128 take minutes per iteration on a CPU. Set
//! `ASCEND_NPU_BENCH_FULL=1` for b = 1, 64 and 128. Wall times are the CPU's.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use ascend_npu::kernels::Kernels;
use ascend_npu::ops::mla::{
    BlockTable, BlockTableSpec, CacheFormat, CacheLayout, DecodeParams, LatentCache, MqaQuery,
    mqa_decode,
};
use ascend_npu::reference::mla::MlaConfig;
use ascend_npu::{DeviceBuffer, Stream};
use ascend_sim::SocModel;
use ascend_sim::cost::{OperatorWork, operator};
use common::{counted, mb, median, secs};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use half::bf16;

const S_K: usize = 4096;
const BLOCK: usize = 64;
const LATENT: usize = 512;
const ROPE: usize = 64;

/// Pseudo-random bits (SplitMix64) for the cache and queries.
fn bits(seed: u64) -> impl FnMut() -> u64 {
    let mut z = seed;
    move || {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = z;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
}

/// A value in [-0.5, 0.5) from 64 random bits.
fn value(b: u64) -> f32 {
    ((b >> 40) as f32 / (1u64 << 24) as f32) - 0.5
}

/// One decode problem on the device: `batch` sequences of `S_K` tokens in shuffled blocks.
struct Problem {
    cache: LatentCache,
    table: BlockTable,
    q: DeviceBuffer<bf16>,
    heads: usize,
    /// The host cache rows in f32 (b = 1 only, for the CPU baseline) and the queries.
    host: Option<(Vec<f32>, Vec<f32>)>,
}

impl Problem {
    fn new(stream: &Stream, batch: usize, heads: usize, format: CacheFormat) -> Problem {
        let cfg = MlaConfig::deepseek_v3();
        let per_seq = S_K / BLOCK;
        let layout = CacheLayout::for_config(&cfg, batch * per_seq, BLOCK, format);
        let (slots, rb) = (layout.slots(), layout.row_bytes());
        let mut next = bits(7);
        let mut bytes = vec![0u8; slots * rb];
        for row in bytes.chunks_exact_mut(rb) {
            match format {
                CacheFormat::Fp8 => {
                    // E4M3 codes without the NaN codes (0x7F, 0xFF), power-of-two scales,
                    // then the bf16 rope key.
                    for c in &mut row[..LATENT] {
                        *c = next() as u8;
                        if *c & 0x7F == 0x7F {
                            *c -= 1;
                        }
                    }
                    for s in row[LATENT..LATENT + 16].chunks_exact_mut(4) {
                        s.copy_from_slice(&(2f32.powi(-8)).to_le_bytes());
                    }
                    for v in row[LATENT + 16..].chunks_exact_mut(2) {
                        v.copy_from_slice(&bf16::from_f32(value(next())).to_le_bytes());
                    }
                }
                _ => {
                    for v in row.chunks_exact_mut(2) {
                        v.copy_from_slice(&bf16::from_f32(value(next())).to_le_bytes());
                    }
                }
            }
        }
        let mut cache = LatentCache::new(stream, layout).unwrap();
        cache.data_mut().copy_from_host(&bytes).unwrap();
        // Blocks dealt in a shuffled order.
        let mut ids: Vec<i32> = (0..(batch * per_seq) as i32).collect();
        for i in (1..ids.len()).rev() {
            ids.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let table = BlockTable::new(
            stream,
            &layout,
            BlockTableSpec {
                table: &ids,
                max_blocks: per_seq,
                seq_lens: &vec![S_K; batch],
            },
        )
        .unwrap();
        let q: Vec<bf16> = (0..batch * heads * (LATENT + ROPE))
            .map(|_| bf16::from_f32(value(next())))
            .collect();
        let host = (batch == 1).then(|| {
            let rows = (0..S_K)
                .flat_map(|t| {
                    let slot = ids[t / BLOCK] as usize * BLOCK + t % BLOCK;
                    let row = &bytes[slot * rb..][..rb];
                    decode_row(format, row)
                })
                .collect();
            (rows, q.iter().map(|v| v.to_f32()).collect())
        });
        Problem {
            cache,
            table,
            q: stream.upload(&q).unwrap(),
            heads,
            host,
        }
    }

    fn run(&self, kernels: &Kernels, stream: &Stream) {
        let query = MqaQuery {
            q: self.q.as_view(),
            s_q: 1,
            heads: self.heads,
        };
        let params = DecodeParams {
            softmax_scale: MlaConfig::deepseek_v3().softmax_scale() as f32,
            causal: false,
        };
        mqa_decode(kernels, stream, &query, &self.cache, &self.table, params).unwrap();
    }
}

/// A cache row's 576 values in f32.
fn decode_row(format: CacheFormat, row: &[u8]) -> Vec<f32> {
    let bf = |b: &[u8]| bf16::from_le_bytes([b[0], b[1]]).to_f32();
    match format {
        CacheFormat::Fp8 => {
            let scale = f32::from_le_bytes(row[LATENT..LATENT + 4].try_into().unwrap());
            let codes = row[..LATENT]
                .iter()
                .map(|&c| ascend_npu::fp8::F8E4M3::from_bits(c).to_f32() * scale);
            codes
                .chain(row[LATENT + 16..].chunks_exact(2).map(bf))
                .collect()
        }
        _ => row.chunks_exact(2).map(bf).collect(),
    }
}

/// The same decode on one CPU core in f32: scores over every row, softmax, the weighted sum
/// of the latents.
fn cpu_decode(rows: &[f32], q: &[f32], heads: usize, scale: f32) -> Vec<f32> {
    let d = LATENT + ROPE;
    let mut out = vec![0f32; heads * LATENT];
    for (h, o) in out.chunks_exact_mut(LATENT).enumerate() {
        let qh = &q[h * d..][..d];
        let scores: Vec<f32> = rows
            .chunks_exact(d)
            .map(|r| r.iter().zip(qh).map(|(a, b)| a * b).sum::<f32>() * scale)
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (s, r) in scores.iter().zip(rows.chunks_exact(d)) {
            let p = (s - max).exp();
            sum += p;
            for (o, v) in o.iter_mut().zip(&r[..LATENT]) {
                *o += p * v;
            }
        }
        o.iter_mut().for_each(|v| *v /= sum);
    }
    out
}

fn mla(c: &mut Criterion) {
    let (device, stream) = common::setup();
    let kernels = Kernels::load(&device).unwrap();
    let soc = SocModel::ascend910b2();
    let full = std::env::var("ASCEND_NPU_BENCH_FULL").is_ok_and(|v| v == "1");
    let batches: &[usize] = if full { &[1, 64, 128] } else { &[1] };

    println!(
        "\n| b | h | cache | HBM bytes (× minimum) | L2 bytes (ring) | modelled as counted | modelled minimum | CPU f32, 1 core |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut group = c.benchmark_group("mla_decode");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for &batch in batches {
        for heads in [16usize, 128] {
            let mut bf16_hbm = None;
            for (format, name) in [(CacheFormat::Bf16, "bf16"), (CacheFormat::Fp8, "fp8")] {
                let p = Problem::new(&stream, batch, heads, format);
                let d = counted(&stream, || p.run(&kernels, &stream));
                let (b, h, s) = (batch as u64, heads as u64, S_K as u64);
                let rb = p.cache.layout().row_bytes() as u64;
                // Each sequence's rows once, the table and lengths, q once; out and LSE once.
                let least_read = b * s * rb + b * (s / BLOCK as u64 + 1) * 4 + b * h * 576 * 2;
                let least_written = b * h * (LATENT as u64 * 2 + 4);
                // The two products on the cube (scores over 576, the sum over 512); per score
                // the scale, max, exp and sum on the vector unit, and an FP8 cache's decode.
                let macs = b * h * s * (576 + 512);
                let dequant = if format == CacheFormat::Fp8 {
                    b * s * 512
                } else {
                    0
                };
                let least = operator(
                    &soc,
                    &OperatorWork {
                        read: least_read,
                        written: least_written,
                        macs,
                        vector_ops: 4 * b * h * s + dequant,
                    },
                );
                let cpu = p.host.as_ref().map(|(rows, q)| {
                    median(|| {
                        std::hint::black_box(cpu_decode(rows, q, heads, 0.135));
                    })
                });
                let fp8_vs_bf16 = match (format, bf16_hbm) {
                    (CacheFormat::Fp8, Some(r)) => {
                        format!(", {:.2}× bf16's", d.hbm() as f64 / r as f64)
                    }
                    _ => String::new(),
                };
                bf16_hbm.get_or_insert(d.hbm());
                println!(
                    "| {batch} | {heads} | {name} | {} ({:.2}×{fp8_vs_bf16}) | {} | {} | {} ({}-bound) | {} |",
                    mb(d.hbm()),
                    d.hbm() as f64 / (least_read + least_written) as f64,
                    mb(d.l2()),
                    secs(d.modelled_kernels()),
                    secs(least.total()),
                    least.bound(),
                    cpu.map_or("n/a".into(), secs),
                );
                group.bench_function(format!("b{batch}_h{heads}_{name}"), |bench| {
                    bench.iter(|| {
                        p.run(&kernels, &stream);
                        stream.synchronize().unwrap();
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, mla);
criterion_main!(benches);
