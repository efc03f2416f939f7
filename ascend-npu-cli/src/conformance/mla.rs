//! MLA on our kernels (`ops::mla`), against `reference::mla`: the paged latent-cache write
//! (RMSNorm of the latent, interleaved YaRN RoPE of the key, scatter to slots) in the bf16 and
//! FP8 row formats, and the absorbed paged decode (FlashMLA's MQA).

use ascend_npu::ops::mla::{
    BlockTable, BlockTableSpec, CacheFormat, CacheLayout, CacheWriteInput, DecodeParams,
    LatentCache, MqaQuery, Positions, RopeTable, SlotMapping, mqa_decode, write_cache,
};
use ascend_npu::reference::mla::{
    BlockTable as RefBlockTable, Mask, MlaConfig, Mqa, PagedCache, Rope, pack_fp8_row,
    paged_mqa_decode, rms_norm,
};
use half::bf16;

use super::{Family, Run};
use crate::check::{self, BF16, FP32, Outcome};

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

fn device(e: ascend_npu::Error) -> String {
    e.to_string()
}

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
    // Lengths 0, s_q, block ± 1 and a few blocks: empty rows, partial and several blocks.
    let seq_lens = [
        0,
        s_q.max(1),
        block_size - 1,
        block_size + 1,
        2 * block_size + 3,
    ];
    let max_blocks = seq_lens
        .iter()
        .map(|l| l.div_ceil(block_size))
        .max()
        .unwrap_or(0)
        + 1;
    let used: usize = seq_lens.iter().map(|l| l.div_ceil(block_size)).sum();
    let layout = CacheLayout::for_config(&cfg, used + 1, block_size, CacheFormat::Bf16);
    let row = layout.row();
    // Blocks in reverse order, so the table's indirection matters.
    let mut table = vec![0i32; seq_lens.len() * max_blocks];
    let mut rows = vec![0.0f64; layout.slots() * row];
    let mut next = used;
    for (b, &len) in seq_lens.iter().enumerate() {
        for j in 0..len.div_ceil(block_size) {
            next -= 1;
            table[b * max_blocks + j] = next as i32;
        }
        for t in 0..len {
            let slot =
                table[b * max_blocks + t / block_size] as usize * block_size + t % block_size;
            // Values of ±0.5 keep the scores of order one, so the f32 error bound stays small.
            let values: Vec<bf16> = check::round_to(&rng.vec(row, 0.5));
            rows[slot * row..][..row].copy_from_slice(&check::widen(&values));
        }
    }
    let bytes: Vec<u8> = rows
        .iter()
        .flat_map(|&v| bf16::from_f64(v).to_le_bytes())
        .collect();
    let q: Vec<bf16> = check::round_to(&rng.vec(seq_lens.len() * s_q * heads * row, 0.5));
    let q64 = check::widen(&q);

    let stream = &run.session.stream;
    let mut cache = LatentCache::new(stream, layout).map_err(device)?;
    cache.data_mut().copy_from_host(&bytes).map_err(device)?;
    let spec = BlockTableSpec {
        table: &table,
        max_blocks,
        seq_lens: &seq_lens,
    };
    let d_table = BlockTable::new(stream, &layout, spec).map_err(device)?;
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
    let lse: Vec<f64> = result
        .lse
        .to_vec()
        .map_err(device)?
        .iter()
        .map(|&v| f64::from(v))
        .collect();

    let dv = layout.latent;
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
            data: &rows,
            block_size,
            row,
        },
        &RefBlockTable {
            table: &table,
            max_blocks,
            seq_lens: &lens_i32,
        },
    )
    .map_err(|e| e.to_string())?;

    let (mut got_o, mut want_o, mut bound_o) = (Vec::new(), Vec::new(), Vec::new());
    let (mut got_l, mut want_l, mut bound_l) = (Vec::new(), Vec::new(), Vec::new());
    let gamma = row as f64 * FP32.u / (1.0 - row as f64 * FP32.u);
    for (b, w) in want.iter().enumerate() {
        let len = seq_lens[b];
        let keys: Vec<&[f64]> = (0..len)
            .map(|t| {
                let slot =
                    table[b * max_blocks + t / block_size] as usize * block_size + t % block_size;
                &rows[slot * row..][..row]
            })
            .collect();
        let vmax = keys
            .iter()
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
                    .iter()
                    .take(visible)
                    .map(|k| qrow.iter().zip(*k).map(|(a, c)| (a * c).abs()).sum::<f64>())
                    .fold(0.0, f64::max)
                    * gamma
                    * f64::from(scale);
                let weights = (2.0 * delta).exp_m1() * 2.0 + (visible as f64 + 4.0) * FP32.u;
                let r = (b * s_q + i) * heads + h;
                for c in 0..dv {
                    let x = w.out[(i * heads + h) * dv + c];
                    got_o.push(out[r * dv + c]);
                    want_o.push(x);
                    bound_o.push(BF16.u * x.abs() * 1.01 + weights * vmax);
                }
                let x = w.lse[h * s_q + i];
                got_l.push(lse[(b * heads + h) * s_q + i]);
                want_l.push(x);
                bound_l.push(if x.is_infinite() {
                    0.0
                } else {
                    delta + 4.0 * FP32.u * (1.0 + x.abs()) + visible as f64 * FP32.u
                });
            }
        }
    }
    Ok(vec![
        check::within(
            op,
            case,
            &got_o,
            &want_o,
            |i| bound_o[i],
            "f32 scores γ_d·Σ|qk| → weights e^{2δ}, f32 sums, bf16 out 2^-8",
        ),
        check::within(
            op,
            &format!("{case} lse"),
            &got_l,
            &want_l,
            |i| bound_l[i],
            "δ + f32 log-sum-exp (4 + len)·2^-24",
        ),
    ])
}
