//! The CPU reference (the oracle) of expert-parallel MoE dispatch and combine across `R`
//! ranks, with DeepEP's semantics (`shared/reference/deepseek-ops.md` §2.1). Every rank's
//! inputs and outputs are plain host arrays, so the device path over HCCL can be checked rank
//! by rank.
//!
//! | step | function | DeepEP |
//! |---|---|---|
//! | layout | [`dispatch_layout`] | `get_dispatch_layout` |
//! | normal dispatch | [`normal_dispatch`] → [`Received`] | `dispatch` |
//! | normal combine | [`normal_combine`] | `combine` (unweighted) |
//! | low-latency dispatch | [`low_latency_dispatch`] → [`Masked`] | `low_latency_dispatch` |
//! | low-latency combine | [`low_latency_combine`] | `low_latency_combine` (weighted) |
//!
//! # Decisions
//!
//! * Experts are split evenly and in order: rank `r` holds experts `r·E/R .. (r+1)·E/R`.
//! * `-1` in `topk_idx` means no expert: such entries are ignored everywhere.
//! * **Normal dispatch** sends a token once per destination rank (however many of its experts
//!   live there) and receives rows ordered by source rank, then source token.
//! * **Low-latency dispatch** places one row per `(token, k)` pair in its expert's slab of
//!   `max_tokens_per_rank · R` rows, packed in (source rank, source token, k) order: DeepEP
//!   packs in arrival order, so a device path is compared slab by slab as a set, or
//!   follows this order. Rows past `recv_count` are unspecified and never read.
//! * **Combine**: normal combine sums each token's per-rank partial results unweighted (the
//!   caller weights them beforehand); low-latency combine sums `w_k · y_k`.

mod error;

pub use error::{EpError, Result};

/// How experts are spread over ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpConfig {
    /// Ranks `R`.
    pub num_ranks: usize,
    /// Routed experts `E`, a multiple of `R`.
    pub num_experts: usize,
}

impl EpConfig {
    /// Checks `E ≥ R ≥ 1` and `E % R == 0`.
    pub fn validate(&self) -> Result<()> {
        if self.num_ranks == 0 || self.num_experts == 0 || self.num_experts % self.num_ranks != 0 {
            return Err(EpError::Config {
                ranks: self.num_ranks,
                experts: self.num_experts,
            });
        }
        Ok(())
    }

    /// Experts per rank.
    pub fn local_experts(&self) -> usize {
        self.num_experts / self.num_ranks
    }

    /// The rank holding expert `e`.
    pub fn rank_of(&self, e: usize) -> usize {
        e / self.local_experts()
    }
}

/// One rank's tokens: `x [T, H]`, `topk_idx [T, K]` (global expert ids, `-1` for none) and
/// `topk_weights [T, K]`.
#[derive(Debug, Clone, Copy)]
pub struct RankTokens<'a> {
    /// Hidden states.
    pub x: &'a [f64],
    /// Expert ids.
    pub topk_idx: &'a [i64],
    /// Router weights.
    pub topk_weights: &'a [f64],
}

/// The shape every rank shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpShape {
    /// Experts and ranks.
    pub config: EpConfig,
    /// Hidden size `H`.
    pub hidden: usize,
    /// Experts per token `K`.
    pub top_k: usize,
}

impl EpShape {
    /// Checks one rank's arrays and ids; returns its token count.
    fn tokens(&self, rank: usize, t: &RankTokens<'_>) -> Result<usize> {
        self.config.validate()?;
        if self.top_k == 0 || self.hidden == 0 {
            return Err(EpError::Shape(format!(
                "top_k {} and hidden {}; expected both at least 1",
                self.top_k, self.hidden
            )));
        }
        let n = t.topk_idx.len() / self.top_k;
        let ok = t.topk_idx.len() == n * self.top_k
            && t.topk_weights.len() == t.topk_idx.len()
            && Some(t.x.len()) == n.checked_mul(self.hidden);
        if !ok {
            return Err(EpError::Shape(format!(
                "rank {rank}: x has {}, topk_idx {} and topk_weights {} elements; expected [T, \
                 {}], [T, {}] and [T, {}]",
                t.x.len(),
                t.topk_idx.len(),
                t.topk_weights.len(),
                self.hidden,
                self.top_k,
                self.top_k
            )));
        }
        if let Some((i, &e)) = t
            .topk_idx
            .iter()
            .enumerate()
            .find(|&(_, &e)| e < -1 || e >= self.config.num_experts as i64)
        {
            return Err(EpError::ExpertId {
                rank,
                index: i,
                id: e,
                experts: self.config.num_experts,
            });
        }
        Ok(n)
    }
}

/// DeepEP's dispatch layout of one rank's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchLayout {
    /// `[R]`: tokens with at least one expert on each rank, each token counted once per rank.
    pub num_tokens_per_rank: Vec<usize>,
    /// `[E]`: `(t, k)` pairs choosing each expert.
    pub num_tokens_per_expert: Vec<usize>,
    /// `[T, R]`: whether token `t` goes to rank `r`.
    pub is_token_in_rank: Vec<bool>,
}

/// The layout of `topk_idx [T, K]` (global ids, `-1` ignored).
pub fn dispatch_layout(
    config: &EpConfig,
    topk_idx: &[i64],
    top_k: usize,
) -> Result<DispatchLayout> {
    let shape = EpShape {
        config: *config,
        hidden: 1,
        top_k,
    };
    let tokens = topk_idx.len() / top_k.max(1);
    let zeros_x = vec![0.0; tokens];
    let zeros_w = vec![0.0; topk_idx.len()];
    let t = shape.tokens(
        0,
        &RankTokens {
            x: &zeros_x,
            topk_idx,
            topk_weights: &zeros_w,
        },
    )?;
    let r = config.num_ranks;
    let mut layout = DispatchLayout {
        num_tokens_per_rank: vec![0; r],
        num_tokens_per_expert: vec![0; config.num_experts],
        is_token_in_rank: vec![false; t * r],
    };
    for (tok, ids) in topk_idx.chunks_exact(top_k).enumerate() {
        for &e in ids.iter().filter(|&&e| e >= 0) {
            layout.num_tokens_per_expert[e as usize] += 1;
            layout.is_token_in_rank[tok * r + config.rank_of(e as usize)] = true;
        }
    }
    for tok in 0..t {
        for (rank, n) in layout.num_tokens_per_rank.iter_mut().enumerate() {
            *n += usize::from(layout.is_token_in_rank[tok * r + rank]);
        }
    }
    Ok(layout)
}

/// What one rank receives from a normal dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// `[N, H]` rows, ordered by source rank then source token.
    pub x: Vec<f64>,
    /// `[N, K]`: local expert ids on this rank, `-1` for experts elsewhere (or none).
    pub topk_idx: Vec<i64>,
    /// `[N, K]` the tokens' router weights.
    pub topk_weights: Vec<f64>,
    /// `[N]` `(source rank, source token)`: the handle combine replays.
    pub src: Vec<(usize, usize)>,
    /// `[local experts]` received `(token, k)` pairs per local expert.
    pub num_recv_tokens_per_expert: Vec<usize>,
}

/// DeepEP's normal dispatch over all ranks at once: `inputs[r]` is rank `r`'s tokens; returns
/// what each rank receives.
pub fn normal_dispatch(shape: &EpShape, inputs: &[RankTokens<'_>]) -> Result<Vec<Received>> {
    let cfg = shape.config;
    check_ranks(&cfg, inputs.len())?;
    let counts = inputs
        .iter()
        .enumerate()
        .map(|(r, t)| shape.tokens(r, t))
        .collect::<Result<Vec<_>>>()?;
    let (h, k, local) = (shape.hidden, shape.top_k, cfg.local_experts());
    let mut out: Vec<Received> = (0..cfg.num_ranks)
        .map(|_| Received {
            x: Vec::new(),
            topk_idx: Vec::new(),
            topk_weights: Vec::new(),
            src: Vec::new(),
            num_recv_tokens_per_expert: vec![0; local],
        })
        .collect();
    for (dest, recv) in out.iter_mut().enumerate() {
        let experts = dest * local..(dest + 1) * local;
        for (src, input) in inputs.iter().enumerate() {
            for tok in 0..counts[src] {
                let ids = &input.topk_idx[tok * k..(tok + 1) * k];
                if !ids
                    .iter()
                    .any(|&e| e >= 0 && experts.contains(&(e as usize)))
                {
                    continue;
                }
                recv.x.extend_from_slice(&input.x[tok * h..(tok + 1) * h]);
                recv.topk_weights
                    .extend_from_slice(&input.topk_weights[tok * k..(tok + 1) * k]);
                for &e in ids {
                    let local_id = (e >= 0 && experts.contains(&(e as usize)))
                        .then(|| e as usize - experts.start);
                    if let Some(l) = local_id {
                        recv.num_recv_tokens_per_expert[l] += 1;
                    }
                    recv.topk_idx.push(local_id.map_or(-1, |l| l as i64));
                }
                recv.src.push((src, tok));
            }
        }
    }
    Ok(out)
}

/// DeepEP's normal combine: `y[r]` is rank `r`'s `[N_r, H]` results for the rows it received
/// (`received[r]`); returns each source rank's `[T, H]`, the unweighted sum over the ranks its
/// token went to (zero for a token that went nowhere).
pub fn normal_combine(
    shape: &EpShape,
    received: &[Received],
    y: &[Vec<f64>],
    tokens_per_rank: &[usize],
) -> Result<Vec<Vec<f64>>> {
    let cfg = shape.config;
    check_ranks(&cfg, received.len())?;
    check_ranks(&cfg, y.len())?;
    check_ranks(&cfg, tokens_per_rank.len())?;
    let h = shape.hidden;
    let mut out: Vec<Vec<f64>> = tokens_per_rank.iter().map(|&t| vec![0.0; t * h]).collect();
    for (rank, (recv, y)) in received.iter().zip(y).enumerate() {
        if y.len() != recv.src.len() * h {
            return Err(EpError::Shape(format!(
                "rank {rank}: y has {} elements; expected [N = {}, H = {h}]",
                y.len(),
                recv.src.len()
            )));
        }
        for (row, &(src, tok)) in recv.src.iter().enumerate() {
            let dst = out
                .get_mut(src)
                .and_then(|o| o.get_mut(tok * h..(tok + 1) * h))
                .ok_or_else(|| {
                    EpError::Shape(format!(
                        "rank {rank} row {row} comes from token {tok} of rank {src}, outside \
                         tokens_per_rank; expected the handle of the same dispatch"
                    ))
                })?;
            for (d, v) in dst.iter_mut().zip(&y[row * h..(row + 1) * h]) {
                *d += v;
            }
        }
    }
    Ok(out)
}

/// What one rank receives from a low-latency dispatch: DeepEP's masked layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    /// Rows per expert slab: `max_tokens_per_rank · R`.
    pub slab_rows: usize,
    /// `[local experts, slab_rows, H]`; rows past `recv_count[e]` are zero here and
    /// unspecified on a device.
    pub x: Vec<f64>,
    /// `[local experts]` valid leading rows of each slab.
    pub recv_count: Vec<usize>,
    /// Per local expert, per valid row: `(source rank, source token, k)`.
    pub src: Vec<Vec<(usize, usize, usize)>>,
}

/// DeepEP's low-latency dispatch over all ranks; each rank sends at most
/// `max_tokens_per_rank` tokens.
pub fn low_latency_dispatch(
    shape: &EpShape,
    inputs: &[RankTokens<'_>],
    max_tokens_per_rank: usize,
) -> Result<Vec<Masked>> {
    let cfg = shape.config;
    check_ranks(&cfg, inputs.len())?;
    let (h, k, local, r) = (
        shape.hidden,
        shape.top_k,
        cfg.local_experts(),
        cfg.num_ranks,
    );
    for (rank, t) in inputs.iter().enumerate() {
        let n = shape.tokens(rank, t)?;
        if n > max_tokens_per_rank {
            return Err(EpError::Shape(format!(
                "rank {rank} dispatches {n} tokens; expected at most max_tokens_per_rank = \
                 {max_tokens_per_rank}"
            )));
        }
    }
    let slab_rows = max_tokens_per_rank * r;
    // Only repeated ids within a token can give an expert more rows than its slab holds.
    let mut rows_per_expert = vec![0usize; cfg.num_experts];
    for &e in inputs.iter().flat_map(|t| t.topk_idx).filter(|&&e| e >= 0) {
        rows_per_expert[e as usize] += 1;
    }
    if let Some(g) = rows_per_expert.iter().position(|&n| n > slab_rows) {
        return Err(EpError::Shape(format!(
            "expert {g} receives {} rows; expected at most {slab_rows}, one row per token and \
             expert (distinct ids within a token)",
            rows_per_expert[g]
        )));
    }
    let mut out: Vec<Masked> = (0..r)
        .map(|_| Masked {
            slab_rows,
            x: vec![0.0; local * slab_rows * h],
            recv_count: vec![0; local],
            src: vec![Vec::new(); local],
        })
        .collect();
    for (src, input) in inputs.iter().enumerate() {
        for (tok, ids) in input.topk_idx.chunks_exact(k).enumerate() {
            for (kk, &e) in ids.iter().enumerate().filter(|(_, e)| **e >= 0) {
                let (dest, l) = (cfg.rank_of(e as usize), e as usize % local);
                let m = &mut out[dest];
                let row = m.recv_count[l];
                let at = (l * slab_rows + row) * h;
                m.x[at..at + h].copy_from_slice(&input.x[tok * h..(tok + 1) * h]);
                m.recv_count[l] += 1;
                m.src[l].push((src, tok, kk));
            }
        }
    }
    Ok(out)
}

/// DeepEP's low-latency combine: `y[r]` is rank `r`'s `[local experts, slab_rows, H]` expert
/// outputs in the layout `masked[r]` describes; returns each source rank's `[T, H]`,
/// `Σ_k w_k · y_k`.
pub fn low_latency_combine(
    shape: &EpShape,
    inputs: &[RankTokens<'_>],
    masked: &[Masked],
    y: &[Vec<f64>],
) -> Result<Vec<Vec<f64>>> {
    let cfg = shape.config;
    check_ranks(&cfg, inputs.len())?;
    check_ranks(&cfg, masked.len())?;
    check_ranks(&cfg, y.len())?;
    let (h, k) = (shape.hidden, shape.top_k);
    let mut out = Vec::with_capacity(inputs.len());
    for (rank, t) in inputs.iter().enumerate() {
        out.push(vec![0.0; shape.tokens(rank, t)? * h]);
    }
    for (rank, (m, y)) in masked.iter().zip(y).enumerate() {
        if y.len() != m.x.len() {
            return Err(EpError::Shape(format!(
                "rank {rank}: y has {} elements; expected the masked layout's {}",
                y.len(),
                m.x.len()
            )));
        }
        for (l, rows) in m.src.iter().enumerate() {
            for (row, &(src, tok, kk)) in rows.iter().enumerate() {
                let w = inputs[src].topk_weights[tok * k + kk];
                let at = (l * m.slab_rows + row) * h;
                for (o, v) in out[src][tok * h..(tok + 1) * h]
                    .iter_mut()
                    .zip(&y[at..at + h])
                {
                    *o += w * v;
                }
            }
        }
    }
    Ok(out)
}

fn check_ranks(cfg: &EpConfig, given: usize) -> Result<()> {
    cfg.validate()?;
    if given != cfg.num_ranks {
        return Err(EpError::Shape(format!(
            "{given} per-rank entries; expected one per rank ({})",
            cfg.num_ranks
        )));
    }
    Ok(())
}
