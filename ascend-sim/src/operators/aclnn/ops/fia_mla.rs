//! aclnnFusedInferAttentionScoreV3 in its MLA decode form (ops-transformer
//! `aclnnFusedInferAttentionScoreV3.md`, constraints on queryRope/keyRope): per sequence `b`,
//! query token `s` and head `n`,
//!
//! `score_t = (q[b,s,n]·key[t] + qRope[b,s,n]·keyRope[t]) · scaleValue`, `out = Σ_t p_t·value[t]`,
//! `lse = ln Σ_t e^{score_t}` (natural log),
//!
//! over the `actualSeqLengthsKv[b]` cached tokens `t`, found through the block table (row
//! `blockTable[b][t / blockSize]·blockSize + t % blockSize` of the cache). With one query
//! token every cached token is visible (sparseMode 0); with `S > 1` (sparseMode 3) the causal
//! mask is aligned bottom-right: query `s` sees the first `L − S + s + 1` tokens. A query that
//! sees no token (an empty sequence) gives output 0 and LSE `+∞`, as FlashMLA's reference
//! does (the doc says only that an empty KV gives zeros).
//!
//! Precision: scores and sums in f64; the probabilities are rounded to the query's type before
//! they multiply the values, as the cube takes them; the output is rounded once.

use std::sync::Arc;

use ascend_sys::ACL_FLOAT16;
use half::{bf16, f16};

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;
use crate::rules::violation;

/// The latent (value) width and the rope width of the MLA form.
const LATENT: usize = 512;
const ROPE: usize = 64;

/// The query layouts simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `[B, S, N, D]`.
    Bsnd,
    /// `[B, N, S, D]`.
    Bnsd,
}

/// What phase one fixed.
#[derive(Clone, Debug)]
pub(crate) struct Attrs {
    pub(crate) layout: Layout,
    pub(crate) batch: usize,
    pub(crate) q_len: usize,
    pub(crate) heads: usize,
    pub(crate) block_size: usize,
    pub(crate) scale: f64,
    /// Per sequence, the cached tokens.
    pub(crate) kv_lens: Vec<usize>,
    pub(crate) lse: bool,
}

/// The tensors of the MLA decode form.
pub(crate) struct Tensors {
    pub(crate) query: TensorDesc,
    pub(crate) key: TensorDesc,
    pub(crate) value: TensorDesc,
    pub(crate) query_rope: TensorDesc,
    pub(crate) key_rope: TensorDesc,
    pub(crate) block_table: TensorDesc,
    pub(crate) out: TensorDesc,
    pub(crate) softmax_lse: Option<TensorDesc>,
}

impl Attrs {
    /// Offset of (b, s, n) in a query-layout tensor of `width` per head.
    fn at(&self, b: usize, s: usize, n: usize, width: usize) -> usize {
        let (sn, nn) = (self.q_len, self.heads);
        match self.layout {
            Layout::Bsnd => ((b * sn + s) * nn + n) * width,
            Layout::Bnsd => ((b * nn + n) * sn + s) * width,
        }
    }
}

pub(crate) fn plan(t: Tensors, a: Attrs) -> SimResult<Planned> {
    let half = t.query.dtype == ACL_FLOAT16;
    let blocks = t.key.dim(0);
    let table_width = t.block_table.dim(1);
    let mut outputs = vec![("attentionOut", t.out)];
    outputs.extend(t.softmax_lse.map(|l| ("softmaxLse", l)));
    let inputs = vec![
        ("query", t.query),
        ("key", t.key),
        ("value", t.value),
        ("queryRopeOptional", t.query_rope),
        ("keyRopeOptional", t.key_rope),
        ("blockTableOptional", t.block_table),
    ];
    let run = Arc::new(move |i: &[TensorView], o: &[TensorView]| {
        let table = i[5].read_i64();
        // The rows of each sequence, checked against the cache before anything is read.
        let mut rows = Vec::with_capacity(a.batch);
        for (b, &len) in a.kv_lens.iter().enumerate() {
            let mut seq = Vec::with_capacity(len);
            for tok in 0..len {
                let col = tok / a.block_size;
                let id = table[b * table_width + col];
                if !(0..blocks as i64).contains(&id) {
                    return Err(violation(
                        "fia-v3.block-table-range",
                        format!("blockTable[{b}][{col}] = {id} with {blocks} blocks"),
                    ));
                }
                seq.push(id as usize * a.block_size + tok % a.block_size);
            }
            rows.push(seq);
        }
        let (q, key, value) = (i[0].read_f64(), i[1].read_f64(), i[2].read_f64());
        let (q_rope, k_rope) = (i[3].read_f64(), i[4].read_f64());
        let round = |p: f64| {
            if half {
                f16::from_f64(p).to_f64()
            } else {
                bf16::from_f64(p).to_f64()
            }
        };
        let mut out = vec![0.0; a.batch * a.q_len * a.heads * LATENT];
        let mut lse = vec![f64::INFINITY; a.batch * a.heads * a.q_len];
        for (b, seq) in rows.iter().enumerate() {
            let len = seq.len();
            for s in 0..a.q_len {
                // Bottom-right causal: the queries are the sequence's last q_len tokens.
                let visible = (len + s + 1).saturating_sub(a.q_len).min(len);
                // Per head: scores over LATENT + ROPE, then the LATENT-wide weighted sum.
                o[0].count_macs((a.heads * visible * (2 * LATENT + ROPE)) as u64);
                for n in 0..a.heads {
                    let qo = a.at(b, s, n, LATENT);
                    let qr = a.at(b, s, n, ROPE);
                    let (qv, qrv) = (&q[qo..qo + LATENT], &q_rope[qr..qr + ROPE]);
                    let scores: Vec<f64> = seq[..visible]
                        .iter()
                        .map(|&row| {
                            let k = &key[row * LATENT..][..LATENT];
                            let kr = &k_rope[row * ROPE..][..ROPE];
                            let dot: f64 = qv.iter().zip(k).map(|(x, y)| x * y).sum::<f64>()
                                + qrv.iter().zip(kr).map(|(x, y)| x * y).sum::<f64>();
                            dot * a.scale
                        })
                        .collect();
                    if scores.is_empty() {
                        continue;
                    }
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let p: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                    let sum: f64 = p.iter().sum();
                    let dst = &mut out[qo..qo + LATENT];
                    for (&pt, &row) in p.iter().zip(&seq[..visible]) {
                        let w = round(pt) / sum;
                        for (d, v) in dst.iter_mut().zip(&value[row * LATENT..][..LATENT]) {
                            *d += w * v;
                        }
                    }
                    lse[(b * a.heads + n) * a.q_len + s] = max + sum.ln();
                }
            }
        }
        o[0].write_f64(&out)?;
        if a.lse {
            o[1].write_f64(&lse)?;
        }
        Ok(())
    });
    Ok(Planned::new(0, inputs, outputs, run))
}
