//! MLA prefill on our kernels against the f64 reference of the same form (the absorbed and the
//! naive form agree to 1e-10 relative):
//! a varlen batch (a whole prompt, chunks after a cached prefix, a sequence with nothing new,
//! one token after a full block, a chunk of one block's length across two blocks), causal
//! aligned bottom-right, through
//!
//! * `ops::mla::prefill` (the absorbed form) over a bf16 and an FP8 cache that hold prefix
//!   and chunk, so a chunk needs no merge;
//! * `ops::mla::prefill_naive` (per-head keys and values) over a bf16 cache (it refuses an
//!   FP8 one, by design);
//! * chunked prefill with the LSE merge: the new tokens over the cached prefix (no mask) and
//!   over themselves (causal), each from its own cache, merged by `merge_attention`.
//!
//! Every element has its own bound, derived from the roundings of the device's path
//! (`reference::mla::bounds`, which the test suites use too); the reference sees the same bf16
//! (or FP8-dequantized) inputs.

use ascend_npu::ops::mla::{
    CacheFormat, DecodeParams, LatentProjection, NaiveProjection, PrefillOutput, PrefillQuery,
    merge_attention, prefill, prefill_naive,
};
use ascend_npu::reference::mla::bounds::{
    AttentionBounds, absorbed_bounds, merged_bounds, naive_bounds,
};
use ascend_npu::reference::mla::{LatentAttention, Mask, MlaConfig, MlaQuery, naive_attention};
use half::bf16;

use super::paged::{Paged, Rows, bf16_exact, device, reference};
use crate::check::{self, Outcome};
use crate::conformance::{Family, Run};

/// The family.
pub const PREFILL: Family = Family {
    name: "mla-prefill",
    summary: "MLA varlen prefill, causal bottom-right: absorbed (bf16, FP8 cache), naive, \
              chunked with the LSE merge, vs the f64 reference",
    kernels: true,
    aclnn: &[],
    run,
};

fn run(run: &mut Run<'_>) {
    for [heads, block_size] in run.preset.mla_prefill.clone() {
        let name = format!("heads={heads} block={block_size}");
        let batch = Batch::random(&mut run.rng(&name), heads, block_size);
        for format in [CacheFormat::Bf16, CacheFormat::Fp8] {
            let label = if format == CacheFormat::Fp8 {
                "fp8"
            } else {
                "bf16"
            };
            run.cases("absorbed", &format!("{label} {name}"), |run, op, case| {
                absorbed(run, (op, case), batch.as_ref()?, format)
            });
        }
        run.cases("naive", &format!("bf16 {name}"), |run, op, case| {
            naive(run, (op, case), batch.as_ref()?)
        });
        run.cases("chunked", &format!("bf16 {name}"), |run, op, case| {
            chunked(run, (op, case), batch.as_ref()?)
        });
    }
}

/// The inputs of one preset case, shared by its four checks.
struct Batch {
    cfg: MlaConfig,
    block_size: usize,
    /// Cached length of each sequence, its new tokens included.
    lens: [usize; 6],
    /// New tokens of each sequence: the last of its cached length.
    q_lens: [usize; 6],
    /// Each sequence's `[len, 576]` cache rows, bf16-exact.
    seqs: Vec<Vec<f64>>,
    /// `[tokens, heads, 128]` and `[tokens, heads, 64]`, bf16-exact.
    q_nope: Vec<f64>,
    q_pe: Vec<f64>,
    /// `kv_b_proj [heads·256, 512]`, bf16-exact.
    kv_b: Vec<f64>,
    /// The softmax scale as the device has it (f32).
    scale: f64,
}

impl Batch {
    /// For blocks of `B` tokens, (cached, new): a whole prompt (B − 3, B − 3), a chunk of 6
    /// after a prefix spanning blocks (B + 8, 6), nothing new (5, 0), an empty sequence (0, 0),
    /// one token after a full block (B + 1, 1), a chunk of one block's length across two
    /// blocks (B + 4, B).
    fn random(
        rng: &mut crate::rng::CaseRng,
        heads: usize,
        block_size: usize,
    ) -> Result<Batch, String> {
        if heads == 0 || block_size < 4 {
            return Err(format!(
                "a prefill case of {heads} heads and blocks of {block_size}; expected at least \
                 one head and blocks of at least 4 tokens"
            ));
        }
        let b = block_size;
        let lens = [b - 3, b + 8, 5, 0, b + 1, b + 4];
        let q_lens = [b - 3, 6, 0, 0, 1, b];
        let cfg = MlaConfig::deepseek_v3().with_heads(heads);
        let row = cfg.cache_row();
        // Values of ±0.5 (queries, cache) and ±0.1 (weights) keep the scores of order one.
        let seqs = lens
            .iter()
            .map(|&l| bf16_exact(rng, l * row, 0.5))
            .collect();
        let n: usize = q_lens.iter().sum();
        let q_nope = bf16_exact(rng, n * heads * cfg.qk_nope_head_dim, 0.5);
        let q_pe = bf16_exact(rng, n * heads * cfg.qk_rope_head_dim, 0.5);
        let kv_b = bf16_exact(
            rng,
            heads * (cfg.qk_nope_head_dim + cfg.v_head_dim) * cfg.kv_lora_rank,
            0.1,
        );
        Ok(Batch {
            scale: f64::from(cfg.softmax_scale() as f32),
            cfg,
            block_size,
            lens,
            q_lens,
            seqs,
            q_nope,
            q_pe,
            kv_b,
        })
    }

    fn tokens(&self) -> usize {
        self.q_lens.iter().sum()
    }

    /// Sequence `b`'s new tokens as the reference's query, and the first token's index.
    fn query(&self, b: usize) -> (MlaQuery, usize) {
        let start: usize = self.q_lens[..b].iter().sum();
        let (h, dn, dr) = (
            self.cfg.num_heads,
            self.cfg.qk_nope_head_dim,
            self.cfg.qk_rope_head_dim,
        );
        let (a, z) = (start * h, (start + self.q_lens[b]) * h);
        let q = MlaQuery {
            tokens: self.q_lens[b],
            heads: h,
            q_nope: self.q_nope[a * dn..z * dn].to_vec(),
            q_pe: self.q_pe[a * dr..z * dr].to_vec(),
        };
        (q, start)
    }

    fn attention(&self, mask: Mask) -> LatentAttention<'_> {
        LatentAttention {
            cfg: &self.cfg,
            kv_b_proj: &self.kv_b,
            mask,
            scale: self.scale,
        }
    }

    /// Runs `f` with the queries on the device.
    fn with_query<T>(
        &self,
        stream: &ascend_npu::Stream,
        f: impl FnOnce(&PrefillQuery<'_>) -> Result<T, String>,
    ) -> Result<T, String> {
        let up = |v: &[f64]| stream.upload(&check::round_to::<bf16>(v)).map_err(device);
        let (q_nope, q_pe) = (up(&self.q_nope)?, up(&self.q_pe)?);
        f(&PrefillQuery {
            q_nope: q_nope.as_view(),
            q_pe: q_pe.as_view(),
            q_lens: &self.q_lens,
        })
    }

    /// Compares a device prefill's output (`[tokens, heads, v]`, LSE `[heads, tokens]`) with
    /// each sequence's bounded reference.
    fn compare(
        &self,
        got: &PrefillOutput,
        expect: impl Fn(usize, &MlaQuery) -> Result<AttentionBounds, String>,
    ) -> Result<Rows, String> {
        let out = check::widen(&got.out.to_vec().map_err(device)?);
        let lse = got.lse.to_vec().map_err(device)?;
        self.compare_host(&out, &lse, expect)
    }

    /// [`Batch::compare`] on the host's copy of the output.
    fn compare_host(
        &self,
        out: &[f64],
        lse: &[f32],
        expect: impl Fn(usize, &MlaQuery) -> Result<AttentionBounds, String>,
    ) -> Result<Rows, String> {
        let (h, dv, n) = (self.cfg.num_heads, self.cfg.v_head_dim, self.tokens());
        if (out.len(), lse.len()) != (n * h * dv, n * h) {
            return Err(format!(
                "an output of {} values and {} LSEs; expected [{n}, {h}, {dv}] and [{h}, {n}]",
                out.len(),
                lse.len()
            ));
        }
        let mut rows = Rows::default();
        for b in 0..self.lens.len() {
            let (q, start) = self.query(b);
            if q.tokens == 0 {
                continue;
            }
            let want = expect(b, &q)?;
            for i in 0..q.tokens {
                for head in 0..h {
                    let at = (i * h + head) * dv;
                    let device_row = ((start + i) * h + head) * dv;
                    for c in 0..dv {
                        rows.out(
                            out[device_row + c],
                            want.reference.out[at + c],
                            want.out_tol[at + c],
                        );
                    }
                    let r = head * q.tokens + i;
                    rows.lse(
                        f64::from(lse[head * n + start + i]),
                        want.reference.lse[r],
                        want.lse_tol[r],
                    );
                }
            }
        }
        Ok(rows)
    }
}

fn absorbed(
    run: &Run<'_>,
    (op, case): (&str, &str),
    batch: &Batch,
    format: CacheFormat,
) -> Result<Vec<Outcome>, String> {
    let stream = &run.session.stream;
    let paged = Paged::new(&batch.cfg, batch.block_size, format, &batch.seqs)?;
    let (cache, table) = paged.upload(stream)?;
    let kv_b = stream
        .upload(&check::round_to::<bf16>(&batch.kv_b))
        .map_err(device)?;
    let proj = LatentProjection::new(&batch.cfg, kv_b).map_err(device)?;
    let got = batch.with_query(stream, |q| {
        prefill(
            run.kernels()?,
            stream,
            &proj,
            q,
            (&cache, &table),
            batch.scale as f32,
        )
        .map_err(device)
    })?;
    // The reference attends to the rows the cache holds: FP8 rows dequantized (E4M3 codes
    // times power-of-two scales, exact in bf16), which the kernel reads as it attends.
    let rows = batch.compare(&got, |b, q| {
        absorbed_bounds(&batch.attention(Mask::Causal), q, &paged.seqs[b]).map_err(reference)
    })?;
    let over = if format == CacheFormat::Fp8 {
        " over the dequantized FP8 rows"
    } else {
        ""
    };
    let mut outcomes = rows.outcomes(
        (op, case),
        &format!(
            "bf16 q̃ (2^-8 + γ_128), f32 scores γ_576 → weights e^{{2δ}}, bf16 ō, f32 W_UV \
             γ_512, bf16 out 2^-8{over}"
        ),
        LSE_SOURCE,
    );
    // q̃, ō and the output round to bf16 (P reaches the cube as two bf16 parts: f32-close).
    outcomes.push(rows.rel_l2((op, case), 3));
    Ok(outcomes)
}

fn naive(run: &Run<'_>, (op, case): (&str, &str), batch: &Batch) -> Result<Vec<Outcome>, String> {
    let got = naive_run(run, batch, &batch.seqs, true)?;
    let rows = batch.compare(&got, |b, q| {
        naive_bounds(&batch.attention(Mask::Causal), q, &batch.seqs[b]).map_err(reference)
    })?;
    let mut outcomes = rows.outcomes((op, case), NAIVE_SOURCE, LSE_SOURCE);
    // The keys, the values and the output round to bf16.
    outcomes.push(rows.rel_l2((op, case), 3));
    Ok(outcomes)
}

const LSE_SOURCE: &str = "δ + f32 log-sum-exp (4 + len)·2^-24";

const NAIVE_SOURCE: &str =
    "bf16 keys/values (2^-8 + γ_512), f32 scores γ_320 → weights e^{2δ}, f32 sums, bf16 out 2^-8";

/// `prefill_naive` over a bf16 cache holding `seqs`.
fn naive_run(
    run: &Run<'_>,
    batch: &Batch,
    seqs: &[Vec<f64>],
    causal: bool,
) -> Result<PrefillOutput, String> {
    let stream = &run.session.stream;
    let paged = Paged::new(&batch.cfg, batch.block_size, CacheFormat::Bf16, seqs)?;
    let (cache, table) = paged.upload(stream)?;
    let proj = NaiveProjection::new(stream, &batch.cfg, &check::round_to::<bf16>(&batch.kv_b))
        .map_err(device)?;
    let params = DecodeParams {
        softmax_scale: batch.scale as f32,
        causal,
    };
    batch.with_query(stream, |q| {
        prefill_naive(run.kernels()?, stream, &proj, q, (&cache, &table), params).map_err(device)
    })
}

fn chunked(run: &Run<'_>, (op, case): (&str, &str), batch: &Batch) -> Result<Vec<Outcome>, String> {
    let row = batch.cfg.cache_row();
    let (prefix, chunk): (Vec<Vec<f64>>, Vec<Vec<f64>>) = batch
        .seqs
        .iter()
        .zip(batch.lens.iter().zip(&batch.q_lens))
        .map(|(s, (&len, &new))| {
            let (p, c) = s.split_at((len - new) * row);
            (p.to_vec(), c.to_vec())
        })
        .unzip();
    let parts = [
        naive_run(run, batch, &prefix, false)?,
        naive_run(run, batch, &chunk, true)?,
    ];
    let merged = merge_attention(
        run.kernels()?,
        &run.session.stream,
        &parts[0],
        &parts[1],
        batch.cfg.num_heads,
    )
    .map_err(device)?;
    // Each sequence's parts, bounded once: the parts' rows and the merge's bounds use them.
    let parts_of = |b: usize| -> Result<[AttentionBounds; 2], String> {
        let (q, _) = batch.query(b);
        Ok([
            naive_bounds(&batch.attention(Mask::None), &q, &prefix[b]).map_err(reference)?,
            naive_bounds(&batch.attention(Mask::Causal), &q, &chunk[b]).map_err(reference)?,
        ])
    };
    let bounds: Vec<[AttentionBounds; 2]> = (0..batch.lens.len())
        .map(parts_of)
        .collect::<Result<_, _>>()?;
    let part_rows = [
        batch.compare(&parts[0], |b, _| Ok(bounds[b][0].clone()))?,
        batch.compare(&parts[1], |b, _| Ok(bounds[b][1].clone()))?,
    ];
    let rows = batch.compare(&merged, |b, q| {
        let whole = naive_attention(&batch.attention(Mask::Causal), q, &batch.seqs[b])
            .map_err(reference)?;
        let [a, c] = &bounds[b];
        Ok(merged_bounds(a, c, whole))
    })?;
    let mut outcomes = Vec::new();
    for (rows, part) in part_rows.iter().zip(["prefix part", "chunk part"]) {
        outcomes.extend(rows.outcomes(
            (op, &format!("{case} {part}")),
            &format!("{NAIVE_SOURCE} (no mask over the prefix)"),
            LSE_SOURCE,
        ));
    }
    outcomes.extend(rows.outcomes(
        (op, case),
        "the parts' bounds; their LSE errors La + Lb move the weights by e^{2(La+Lb)} + \
         8·2^-24; bf16 out 2^-8",
        "max(La, Lb) + f32 log-sum-exp 4·2^-24",
    ));
    // Each part's three roundings (keys, values, its output) and the merged output's.
    outcomes.push(rows.rel_l2((op, case), 4));
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;

    /// The reference of `batch` under `mask` and `scale`, laid out as the device returns it
    /// (bf16 output, f32 LSE).
    fn as_device(batch: &Batch, mask: Mask, scale: f64) -> (Vec<f64>, Vec<f32>) {
        let (h, dv, n) = (batch.cfg.num_heads, batch.cfg.v_head_dim, batch.tokens());
        let mut out = vec![0.0; n * h * dv];
        let mut lse = vec![0.0f32; n * h];
        let att = LatentAttention {
            scale,
            ..batch.attention(mask)
        };
        for b in 0..batch.lens.len() {
            let (q, start) = batch.query(b);
            let want = naive_attention(&att, &q, &batch.seqs[b]).unwrap();
            for i in 0..q.tokens {
                for head in 0..h {
                    let from = (i * h + head) * dv;
                    let to = ((start + i) * h + head) * dv;
                    for c in 0..dv {
                        out[to + c] = bf16::from_f64(want.out[from + c]).to_f64();
                    }
                    lse[head * n + start + i] = want.lse[head * q.tokens + i] as f32;
                }
            }
        }
        (out, lse)
    }

    fn verdicts(batch: &Batch, (out, lse): (Vec<f64>, Vec<f32>)) -> Vec<Verdict> {
        let rows = batch
            .compare_host(&out, &lse, |b, q| {
                naive_bounds(&batch.attention(Mask::Causal), q, &batch.seqs[b]).map_err(reference)
            })
            .unwrap();
        let mut all = rows.outcomes(("op", "case"), "s", "s");
        all.push(rows.rel_l2(("op", "case"), 3));
        all.iter().map(|o| o.verdict).collect()
    }

    /// The exact attention rounded to bf16 passes every row; the same attention without the
    /// causal mask, or with FlashMLA's default scale 1/√576 instead of DeepSeek's, fails the
    /// relative L2 row at least (the per-element worst-case bounds may still hold).
    #[test]
    fn a_wrong_mask_or_scale_fails_the_prefill_rows() {
        let mut rng = crate::rng::CaseRng::new(7, "prefill");
        let batch = Batch::random(&mut rng, 2, 8).unwrap();
        let right = verdicts(&batch, as_device(&batch, Mask::Causal, batch.scale));
        assert!(right.iter().all(|v| *v == Verdict::Pass), "{right:?}");
        let no_mask = verdicts(&batch, as_device(&batch, Mask::None, batch.scale));
        assert_eq!(no_mask[2], Verdict::Fail, "{no_mask:?}");
        let flashmla = verdicts(&batch, as_device(&batch, Mask::Causal, 576f64.powf(-0.5)));
        assert_eq!(flashmla[2], Verdict::Fail, "{flashmla:?}");
    }

    #[test]
    fn blocks_under_four_tokens_are_refused() {
        let mut rng = crate::rng::CaseRng::new(7, "prefill");
        let e = Batch::random(&mut rng, 2, 3).err().unwrap();
        assert!(e.contains("blocks of at least 4 tokens"), "{e}");
    }
}
