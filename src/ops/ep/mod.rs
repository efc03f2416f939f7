//! Expert parallelism across devices: DeepEP's dispatch and combine over HCCL
//! (`shared/reference/deepseek-ops.md` §2.1), the same code on the simulator and on NPUs.
//!
//! Experts are split evenly and in order over the `R` ranks of a [`Comm`](crate::runtime::comm::Comm):
//! rank `r` holds experts `r·L .. (r+1)·L` with `L = E/R` ([`EpConfig`]). Every step is plain
//! stream work plus HCCL collectives:
//!
//! | step | function | how |
//! |---|---|---|
//! | layout | [`dispatch_layout`] | `topk_idx` downloaded, counted on the host (`-1` ignored) |
//! | normal dispatch | [`normal_dispatch`] | counts all-gathered, rows packed per destination by device copies, all-to-all-v of rows, ids, weights and source tokens |
//! | normal combine | [`normal_combine`] | the reverse all-to-all-v, then the per-token sum over ranks in fp32 (`aclnnMoeFinalizeRoutingV2`) |
//! | low-latency dispatch | [`low_latency_dispatch`] | one all-to-all-v per local expert straight into the masked layout |
//! | low-latency combine | [`low_latency_combine`] | the reverse, then `Σ_k w_k·y_k` in fp32 |
//! | either, on MC2 | the same two, where the MC2 ops fit ([`EpTransport`]) | `aclnnMoeDistributeDispatchV2` / `CombineV2` (V1's without V2) on a communicator of their own |
//! | INT8 low-latency dispatch | [`low_latency_dispatch_int8`] (MC2 only) | the dispatch's quantMode 2: per-row dynamic INT8 codes and scales |
//!
//! # Decisions
//!
//! * **Host counts.** HCCL's all-to-all-v takes its counts as host arrays, so each dispatch
//!   synchronises once on the routing (DeepEP's normal mode does the same; its low-latency mode
//!   avoids it with fixed-size RDMA buffers, which HCCL's portable collectives cannot express).
//!   The counts of all ranks travel in one all-gather.
//! * **Orders.** A normal dispatch sends a token once per destination rank, and a rank receives
//!   rows in (source rank, source token) order. A low-latency dispatch sends one row per
//!   `(token, k)` pair, and an expert's slab holds them in (source rank, source token, k)
//!   order, which is [`reference::ep`](crate::reference::ep)'s order, so the two compare row by row.
//! * **Payload.** bf16 rows, or FP8 E4M3 codes with their 1×128 fp32 scales
//!   ([`Fp8Activations`](crate::ops::fp8::Fp8Activations)), moved as bytes: HCCL's FP8 types
//!   exist only on Ascend 950.
//! * **Combine precision.** Each token's parts are summed in fp32 in rank order (normal) or
//!   `(rank, k)` order (low latency) and rounded once to bf16, so replaying a handle is
//!   bit-identical.
//! * **Garbage stays unread.** Rows of the masked layout past `recv_count` are never touched
//!   by dispatch nor read by combine.
//! * **Damage in flight.** A normal dispatch checks the rows' source tokens and local ids it
//!   received against the all-gathered counts, a low-latency dispatch the `(token, k)` pairs
//!   its experts received, and either fails with
//!   [`Error::Damaged`](crate::Error::Damaged) on the receiving rank; its peers then fail at
//!   their next collective (at once when it drops its communicator, else after HCCL's
//!   timeout). A short part fails every rank inside HCCL. Payload bytes and router weights
//!   carry no check: damage to them arrives as data.

mod exchange;
mod integrity;
mod layer;

mod layout;
mod low_latency;
mod mc2;
mod normal;
mod payload;
mod traffic;

pub use crate::reference::ep::{EpConfig, EpShape};

pub use exchange::counts_row;
pub use layer::EpMoeLayer;
pub use layout::{DispatchLayout, dispatch_layout};
pub use low_latency::{
    EpTransport, LowLatencyHandle, LowLatencyInt8Received, LowLatencyReceived, RowSource,
    low_latency_combine, low_latency_dispatch, low_latency_dispatch_int8,
    low_latency_dispatch_with,
};
pub use normal::{
    NormalHandle, NormalReceived, normal_combine, normal_dispatch, normal_redispatch,
};
pub use payload::{Payload, Rows};
pub use traffic::{
    PayloadKind, Traffic, low_latency_combine_traffic, low_latency_dispatch_traffic,
    normal_combine_traffic, normal_dispatch_traffic,
};

use crate::error::{Error, Result};
use crate::runtime::DeviceBuffer;

/// One rank's tokens for a dispatch: the payload `[T, H]`, `topk_idx [T, K]` (global expert ids,
/// `-1` for none) and `topk_weights [T, K]`, as [`ops::moe::route`](crate::ops::moe::route)
/// returns them.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    /// The hidden states.
    pub x: Payload<'a>,
    /// Expert ids.
    pub topk_idx: &'a DeviceBuffer<i32>,
    /// Router weights.
    pub topk_weights: &'a DeviceBuffer<f32>,
}

/// Checks `shape` against the communicator and returns `(R, L)`.
fn check_shape(shape: &EpShape, ranks: u32) -> Result<(usize, usize)> {
    let c = shape.config;
    c.validate()?;
    if c.num_ranks != ranks as usize {
        return Err(Error::invalid(
            format!(
                "an EP config of {} ranks on a {ranks}-rank communicator",
                c.num_ranks
            ),
            "as many ranks as the communicator",
        ));
    }
    if shape.hidden == 0 || shape.top_k == 0 {
        return Err(Error::invalid(
            format!("hidden {} and top_k {}", shape.hidden, shape.top_k),
            "both at least 1",
        ));
    }
    Ok((c.num_ranks, c.local_experts()))
}
