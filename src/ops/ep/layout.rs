//! DeepEP's dispatch layout of one rank's routing, counted on the host.

use super::EpConfig;
use crate::error::{Error, Result};
use crate::runtime::DeviceBuffer;

/// Where one rank's tokens go (DeepEP's `get_dispatch_layout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchLayout {
    /// `[R]`: tokens with at least one expert on each rank, a token counted once per rank.
    pub num_tokens_per_rank: Vec<usize>,
    /// `[E]`: `(t, k)` pairs choosing each expert.
    pub num_tokens_per_expert: Vec<usize>,
    /// `[T, R]`: whether token `t` goes to rank `r`.
    pub is_token_in_rank: Vec<bool>,
    /// `[T, K]`: the expert ids it was counted from (`-1` for none).
    pub topk_idx: Vec<i32>,
    /// Experts per token `K`.
    pub top_k: usize,
}

impl DispatchLayout {
    /// Counts `topk_idx [T, K]` (global ids, `-1` ignored); any other id outside `0..E` is an
    /// error.
    pub fn from_host(config: &EpConfig, topk_idx: &[i32], top_k: usize) -> Result<Self> {
        config.validate()?;
        if top_k == 0 || topk_idx.len() % top_k != 0 {
            return Err(Error::invalid(
                format!("topk_idx of {} elements with top_k {top_k}", topk_idx.len()),
                "[T, top_k] with top_k >= 1",
            ));
        }
        let (r, e) = (config.num_ranks, config.num_experts);
        if let Some((i, id)) = topk_idx
            .iter()
            .enumerate()
            .find(|&(_, &id)| id < -1 || id as i64 >= e as i64)
        {
            return Err(Error::invalid(
                format!("topk_idx[{}][{}] = {id}", i / top_k, i % top_k),
                format!("-1 or an expert id in 0..{e}"),
            ));
        }
        let tokens = topk_idx.len() / top_k;
        let mut layout = DispatchLayout {
            num_tokens_per_rank: vec![0; r],
            num_tokens_per_expert: vec![0; e],
            is_token_in_rank: vec![false; tokens * r],
            topk_idx: topk_idx.to_vec(),
            top_k,
        };
        for (t, ids) in topk_idx.chunks_exact(top_k).enumerate() {
            for &id in ids.iter().filter(|&&id| id >= 0) {
                let id = id as usize;
                layout.num_tokens_per_expert[id] += 1;
                let in_rank = &mut layout.is_token_in_rank[t * r + config.rank_of(id)];
                if !*in_rank {
                    *in_rank = true;
                    layout.num_tokens_per_rank[config.rank_of(id)] += 1;
                }
            }
        }
        Ok(layout)
    }

    /// Tokens `T`.
    pub fn tokens(&self) -> usize {
        self.topk_idx.len() / self.top_k
    }

    /// Ranks `R`.
    pub fn ranks(&self) -> usize {
        self.num_tokens_per_rank.len()
    }

    /// The tokens going to rank `dest`, ascending.
    pub fn tokens_to(&self, dest: usize) -> impl Iterator<Item = usize> + '_ {
        let r = self.ranks();
        (0..self.tokens()).filter(move |t| self.is_token_in_rank[t * r + dest])
    }
}

/// The layout of `topk_idx` (`[T, top_k]` on the device), after the stream's queued work
/// (the ids are downloaded: HCCL's all-to-all-v needs its counts on the host).
pub fn dispatch_layout(
    config: &EpConfig,
    topk_idx: &DeviceBuffer<i32>,
    top_k: usize,
) -> Result<DispatchLayout> {
    let ids = topk_idx.to_vec()?;
    DispatchLayout::from_host(config, &ids, top_k)
}
