//! MLA against `reference::mla`: on our kernels (`ops::mla`) the paged latent-cache write
//! (RMSNorm of the latent, interleaved YaRN RoPE of the key, scatter to slots) in the bf16 and
//! FP8 row formats, the absorbed paged decode (FlashMLA's MQA) and the prefill forms
//! ([`prefill`]).

mod attention;
mod paged;
mod prefill;

use ascend_npu::ops::mla::{
    CacheFormat, CacheLayout, CacheWriteInput, DecodeParams, LatentCache, MqaQuery, Positions,
    RopeTable, SlotMapping, mqa_decode, write_cache,
};
use ascend_npu::reference::mla::bounds::{lse_tolerance, weight_error};
use ascend_npu::reference::mla::{
    BlockTable as RefBlockTable, Mask, MlaConfig, Mqa, PagedCache, Rope, pack_fp8_row,
    paged_mqa_decode, rms_norm,
};
use half::bf16;

use super::{Family, Run};
use crate::check::{self, BF16, FP32, Outcome};
pub use attention::{ATTENTION, LAYER};
use paged::{Paged, Rows, bf16_exact, device};
pub use prefill::PREFILL;

/// The cache write.
pub const CACHE_WRITE: Family = Family {
    name: "mla-cache-write",
    summary: "MLA latent-cache write (RMSNorm + YaRN RoPE + scatter), bf16 and FP8 rows",
    kernels: true,
    aclnn: &[],
    run,
};

/// Positions past YaRN's original 4096-token context, so the stretched pairs turn too.
const MAX_POS: usize = 4200;

fn run(run: &mut Run<'_>) {
    for [tokens, block_size] in run.preset.mla_cache_write.clone() {
        let case = format!("bf16 T={tokens} block={block_size}");
        run.cases("cache-write", &case, |run, op, case| {
            let cfg = MlaConfig::deepseek_v3().with_heads(1);
            let mut rng = run.rng(case);
            let row = cfg.cache_row();
            let kv: Vec<bf16> = check::round_to(&rng.vec(tokens * row, 3.0));
            let gamma: Vec<bf16> = check::round_to(
                &rng.vec(cfg.kv_lora_rank, 0.5)
                    .iter()
                    .map(|g| 1.0 + g)
                    .collect::<Vec<_>>(),
            );
            let positions: Vec<usize> = (0..tokens)
                .map(|_| ((rng.uniform(1.0) + 1.0) / 2.0 * (MAX_POS - 1) as f64) as usize)
                .collect();
            // Distinct slots, spread over the blocks.
            let blocks = tokens.div_ceil(block_size) + 1;
            let layout = CacheLayout::for_config(&cfg, blocks, block_size, CacheFormat::Bf16);
            let stride = (layout.slots() / tokens.max(1)).max(1);
            let slots: Vec<i32> = (0..tokens).map(|t| (t * stride) as i32).collect();

            let stream = &run.session.stream;
            let kernels = run.kernels()?;
            let reference_rope = Rope::new(&cfg);
            let rope = RopeTable::new(stream, &reference_rope, MAX_POS).map_err(device)?;
            let d_kv = stream.upload(&kv).map_err(device)?;
            let d_gamma = stream.upload(&gamma).map_err(device)?;
            let d_positions = Positions::new(stream, &rope, &positions).map_err(device)?;
            let write = |format: CacheFormat| -> Result<(CacheLayout, Vec<u8>), String> {
                let layout = CacheLayout { format, ..layout };
                let mut cache = LatentCache::new(stream, layout).map_err(device)?;
                let d_slots = SlotMapping::new(stream, &layout, &slots).map_err(device)?;
                let input = CacheWriteInput {
                    kv: d_kv.as_view(),
                    norm_weight: d_gamma.as_view(),
                    eps: cfg.rms_norm_eps as f32,
                    rope: &rope,
                    positions: &d_positions,
                    slots: &d_slots,
                };
                write_cache(kernels, stream, &input, &mut cache).map_err(device)?;
                Ok((layout, cache.data().to_vec().map_err(device)?))
            };
            let (bf16_layout, bf16_bytes) = write(CacheFormat::Bf16)?;
            let (fp8_layout, fp8_bytes) = write(CacheFormat::Fp8)?;

            let gamma64 = check::widen(&gamma);
            let (mut got, mut want, mut bound) = (Vec::new(), Vec::new(), Vec::new());
            let mut fp8_wrong = 0;
            for (t, &slot) in slots.iter().enumerate() {
                let mut expected = check::widen(&kv[t * row..(t + 1) * row]);
                let (latent, k_pe) = expected.split_at_mut(cfg.kv_lora_rank);
                rms_norm(latent, &gamma64, cfg.rms_norm_eps);
                reference_rope.apply(k_pe, positions[t]);
                let rb = bf16_layout.row_bytes();
                let bytes = &bf16_bytes[slot as usize * rb..][..rb];
                let row16: Vec<f64> = bytes
                    .chunks_exact(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f64())
                    .collect();
                let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for (g, w) in row16.iter().zip(&expected) {
                    got.push(*g);
                    want.push(*w);
                    // f32 arithmetic within (L + 8)·2^-24 of the row's magnitude (a sum of L
                    // squares, then a few products), then one rounding to bf16.
                    bound.push(
                        BF16.u * w.abs() + (cfg.kv_lora_rank + 8) as f64 * FP32.u * scale * 1.01,
                    );
                }
                // FlashMLA's FP8 row is its quantizer applied to the bf16 row, bit for bit.
                let fb = fp8_layout.row_bytes();
                let row8 = &fp8_bytes[slot as usize * fb..][..fb];
                let packed = pack_fp8_row(&cfg, &row16).map_err(|e| e.to_string())?;
                fp8_wrong += row8.iter().zip(&packed).filter(|(a, b)| a != b).count()
                    + row8.len().abs_diff(packed.len());
            }
            let rows = check::within(
                op,
                case,
                &got,
                &want,
                |i| bound[i],
                "f32 RMSNorm/RoPE (L+8)·2^-24·max|row| + bf16 out 2^-8",
            );
            let fp8 = Outcome::exact(
                op,
                &format!("fp8 T={tokens} block={block_size}"),
                "FP8 row bytes",
                fp8_wrong,
                "FlashMLA's quantizer on the bf16 row (power-of-two scales): exact",
            );
            Ok(vec![rows, fp8])
        });
    }
}

/// The absorbed (MQA) paged decode.
pub const DECODE: Family = Family {
    name: "mla-decode",
    summary: "MLA absorbed paged decode (FlashMLA's MQA over the latent cache), bf16, out and LSE",
    kernels: true,
    aclnn: &[],
    run: decode,
};

fn decode(run: &mut Run<'_>) {
    for [heads, s_q, block_size] in run.preset.mla_decode.clone() {
        let case = format!("bf16 heads={heads} s_q={s_q} block={block_size}");
        run.cases("decode", &case, |run, op, case| {
            decode_case(run, op, case, [heads, s_q, block_size])
        });
    }
}

fn decode_case(
    run: &Run<'_>,
    op: &str,
    case: &str,
    [heads, s_q, block_size]: [usize; 3],
) -> Result<Vec<Outcome>, String> {
    let cfg = MlaConfig::deepseek_v3().with_heads(1);
    let mut rng = run.rng(case);
    let row = cfg.cache_row();
    // Lengths 0, s_q, block ± 1 and a few blocks: empty rows, partial and several blocks.
    let seq_lens = [
        0,
        s_q.max(1),
        block_size - 1,
        block_size + 1,
        2 * block_size + 3,
    ];
    // Values of ±0.5 keep the scores of order one, so the f32 error bound stays small.
    let seqs: Vec<Vec<f64>> = seq_lens
        .iter()
        .map(|&l| bf16_exact(&mut rng, l * row, 0.5))
        .collect();
    let paged = Paged::new(&cfg, block_size, CacheFormat::Bf16, &seqs)?;
    let q64 = bf16_exact(&mut rng, seq_lens.len() * s_q * heads * row, 0.5);
    let q: Vec<bf16> = check::round_to(&q64);
    let stream = &run.session.stream;
    let (cache, d_table) = paged.upload(stream)?;
    let dq = stream.upload(&q).map_err(device)?;
    let query = MqaQuery {
        q: dq.as_view(),
        s_q,
        heads,
    };
    let scale = cfg.softmax_scale() as f32;
    let causal = s_q > 1;
    let params = DecodeParams {
        softmax_scale: scale,
        causal,
    };
    let result =
        mqa_decode(run.kernels()?, stream, &query, &cache, &d_table, params).map_err(device)?;
    let out = check::widen(&result.out.to_vec().map_err(device)?);
    let lse = result.lse.to_vec().map_err(device)?;

    let dv = paged.layout.latent;
    let mqa = Mqa {
        heads,
        d: row,
        dv,
        mask: if causal { Mask::Causal } else { Mask::None },
        scale: f64::from(scale),
    };
    let lens_i32: Vec<i32> = seq_lens.iter().map(|&l| l as i32).collect();
    let want = paged_mqa_decode(
        &mqa,
        &q64,
        &PagedCache {
            data: &paged.rows,
            block_size,
            row,
        },
        &RefBlockTable {
            table: &paged.table,
            max_blocks: paged.max_blocks,
            seq_lens: &lens_i32,
        },
    )
    .map_err(|e| e.to_string())?;

    let mut rows = Rows::default();
    for (b, w) in want.iter().enumerate() {
        let (len, keys) = (seq_lens[b], &paged.seqs[b]);
        let vmax = keys
            .chunks_exact(row)
            .flat_map(|k| &k[..dv])
            .fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..s_q {
            let visible = if causal {
                (len + i + 1).saturating_sub(s_q).min(len)
            } else {
                len
            };
            for h in 0..heads {
                let qrow = &q64[((b * s_q + i) * heads + h) * row..][..row];
                // Each score is an f32 dot product of d terms, within γ_d·Σ|q·k| (times the
                // scale): δ; a shift δ moves each softmax weight by at most a factor e^{2δ}.
                let delta = keys
                    .chunks_exact(row)
                    .take(visible)
                    .map(|k| qrow.iter().zip(k).map(|(a, c)| (a * c).abs()).sum::<f64>())
                    .fold(0.0, f64::max)
                    * check::gamma(row)
                    * f64::from(scale);
                let weights = weight_error(delta, visible);
                let r = (b * s_q + i) * heads + h;
                for c in 0..dv {
                    let x = w.out[(i * heads + h) * dv + c];
                    rows.out(out[r * dv + c], x, BF16.u * x.abs() * 1.01 + weights * vmax);
                }
                let x = w.lse[h * s_q + i];
                rows.lse(
                    f64::from(lse[(b * heads + h) * s_q + i]),
                    x,
                    lse_tolerance(delta, x, visible),
                );
            }
        }
    }
    Ok(rows.outcomes(
        (op, case),
        "f32 scores γ_d·Σ|qk| → weights e^{2δ}, f32 sums, bf16 out 2^-8",
        "δ + f32 log-sum-exp (4 + len)·2^-24",
    ))
}
