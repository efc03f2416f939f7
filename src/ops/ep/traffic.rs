//! Bytes each step of this module moves between ranks, counted from layouts, against the
//! minimum: each token's payload to each destination rank once (FP8 dispatch, bf16 combine in
//! DeepSeek's setting). Benches model interconnect time from it without moving the data.

use super::{DispatchLayout, EpShape};

/// The payload format of a dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// bf16 rows: `2·H` bytes.
    Bf16,
    /// FP8 E4M3 rows with 1×128 fp32 scales: `H + 4·⌈H/128⌉` bytes.
    Fp8,
    /// INT8 rows with one fp32 scale each (MC2's quantMode 2,
    /// [`low_latency_dispatch_int8`](super::low_latency_dispatch_int8)): `H + 4` bytes.
    Int8,
}

impl PayloadKind {
    /// Bytes of one row of `hidden`.
    pub fn row_bytes(self, hidden: usize) -> u64 {
        match self {
            PayloadKind::Bf16 => 2 * hidden as u64,
            PayloadKind::Fp8 => hidden as u64 + 4 * hidden.div_ceil(128) as u64,
            PayloadKind::Int8 => hidden as u64 + 4,
        }
    }
}

/// What one rank sends to each rank in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traffic {
    /// The sending rank.
    pub rank: usize,
    /// `[R]` bytes sent to each rank (the rank's own entry stays on the device).
    pub to_rank: Vec<u64>,
    /// `[R]` the minimum: the payload of each token that must reach each rank, once.
    pub minimum_to_rank: Vec<u64>,
}

impl Traffic {
    /// Bytes that cross the interconnect.
    pub fn off_rank(&self) -> u64 {
        sum_others(&self.to_rank, self.rank)
    }

    /// The minimum that must cross the interconnect.
    pub fn minimum_off_rank(&self) -> u64 {
        sum_others(&self.minimum_to_rank, self.rank)
    }

    /// The busiest link's bytes: with one link per peer (a full mesh), the step takes at
    /// least this over the link bandwidth.
    pub fn busiest_link(&self) -> u64 {
        let others = self
            .to_rank
            .iter()
            .enumerate()
            .filter(|&(r, _)| r != self.rank);
        others.map(|(_, &b)| b).max().unwrap_or(0)
    }
}

fn sum_others(v: &[u64], rank: usize) -> u64 {
    v.iter()
        .enumerate()
        .filter(|&(r, _)| r != rank)
        .map(|(_, &b)| b)
        .sum()
}

/// The counts all-gather that opens every dispatch: `1 + R + E` i64 and a check value to
/// every rank.
fn counts_bytes(shape: &EpShape) -> u64 {
    let c = shape.config;
    8 * super::exchange::Counts::width(c.num_ranks, c.num_experts) as u64
}

/// [`normal_dispatch`](super::normal_dispatch) by the rank of `layout`: per destination
/// rank, its tokens' rows, their `K` local ids (i32) and weights (f32) and source token
/// (i32), plus the counts.
pub fn normal_dispatch_traffic(
    shape: &EpShape,
    layout: &DispatchLayout,
    rank: usize,
    kind: PayloadKind,
) -> Traffic {
    let row = kind.row_bytes(shape.hidden);
    let meta = 8 * shape.top_k as u64 + 4;
    let rows = layout.num_tokens_per_rank.iter().map(|&n| n as u64);
    Traffic {
        rank,
        to_rank: rows
            .clone()
            .map(|n| n * (row + meta) + counts_bytes(shape))
            .collect(),
        minimum_to_rank: rows.map(|n| n * row).collect(),
    }
}

/// [`normal_combine`](super::normal_combine) by `rank`, given every rank's dispatch layout:
/// each received row goes back as bf16.
pub fn normal_combine_traffic(shape: &EpShape, layouts: &[DispatchLayout], rank: usize) -> Traffic {
    let row = PayloadKind::Bf16.row_bytes(shape.hidden);
    let back: Vec<u64> = layouts
        .iter()
        .map(|l| l.num_tokens_per_rank[rank] as u64 * row)
        .collect();
    Traffic {
        rank,
        to_rank: back.clone(),
        minimum_to_rank: back,
    }
}

/// `(t, k)` pairs of `layout` whose expert lives on each rank.
fn pairs_per_rank(shape: &EpShape, layout: &DispatchLayout) -> Vec<u64> {
    let l = shape.config.local_experts();
    layout
        .num_tokens_per_expert
        .chunks(l)
        .map(|c| c.iter().sum::<usize>() as u64)
        .collect()
}

/// [`low_latency_dispatch`](super::low_latency_dispatch) by the rank of `layout`: a row per
/// `(token, k)` pair (DeepEP's low-latency layout) with its pair index (i32), plus the counts.
/// Above the minimum by the pairs a rank gets per token.
pub fn low_latency_dispatch_traffic(
    shape: &EpShape,
    layout: &DispatchLayout,
    rank: usize,
    kind: PayloadKind,
) -> Traffic {
    let row = kind.row_bytes(shape.hidden);
    let pairs = pairs_per_rank(shape, layout);
    Traffic {
        rank,
        to_rank: pairs
            .iter()
            .map(|&p| p * (row + 4) + counts_bytes(shape))
            .collect(),
        minimum_to_rank: layout
            .num_tokens_per_rank
            .iter()
            .map(|&n| n as u64 * row)
            .collect(),
    }
}

/// [`low_latency_combine`](super::low_latency_combine) by `rank`: each received pair's row
/// goes back as bf16.
pub fn low_latency_combine_traffic(
    shape: &EpShape,
    layouts: &[DispatchLayout],
    rank: usize,
) -> Traffic {
    let row = PayloadKind::Bf16.row_bytes(shape.hidden);
    Traffic {
        rank,
        to_rank: layouts
            .iter()
            .map(|l| pairs_per_rank(shape, l)[rank] * row)
            .collect(),
        minimum_to_rank: layouts
            .iter()
            .map(|l| l.num_tokens_per_rank[rank] as u64 * row)
            .collect(),
    }
}
