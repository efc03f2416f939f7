//! The DeepSeek MoE layer with its routed experts sharded over the ranks of a communicator.

use half::bf16;

use super::exchange::{RowSum, sum_rows};
use super::{EpConfig, EpShape, NormalReceived, Payload, Tokens, normal_combine, normal_dispatch};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::ops::moe::{
    FfnWeights, GroupSizesBuffer, MoeConfig, MoeLayer, MoeShape, MoeWeights, dispatch_local,
};
use crate::runtime::comm::Comm;
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// One rank's part of an expert-parallel MoE layer: the router and the shared expert whole,
/// the routed experts `rank·L .. (rank+1)·L` only (`L = E/R`).
///
/// [`forward`](Self::forward) routes the rank's tokens, dispatches them (normal mode, bf16),
/// runs the local experts on what arrived and weights their outputs per token, and combines
/// the partial sums back, adding the shared expert. It equals
/// [`MoeLayer::forward`] on the same tokens except for one extra bf16 rounding per rank of
/// each token's partial sum (DeepEP's bf16 combine): at most `2^-8 · Σ_k |w_k·y_k|` per
/// element, plus one bf16 ulp of the result where the two final roundings differ.
pub struct EpMoeLayer {
    layer: MoeLayer,
    config: EpConfig,
    rank: usize,
}

impl EpMoeLayer {
    /// Rank `rank` of `ranks`: `weights.experts` stacks this rank's `E/ranks` experts; the
    /// router, its bias and the shared expert are the whole layer's.
    pub fn new(
        moe: MoeConfig,
        hidden: usize,
        (ranks, rank): (usize, usize),
        weights: MoeWeights,
        kernels: Kernels,
    ) -> Result<Self> {
        let config = EpConfig {
            num_ranks: ranks,
            num_experts: moe.n_routed_experts,
        };
        config.validate()?;
        if rank >= ranks {
            return Err(Error::invalid(
                format!("rank {rank} of {ranks}"),
                "a rank below the rank count",
            ));
        }
        let layer = MoeLayer::new_sharded(moe, hidden, weights, kernels, config.local_experts())?;
        Ok(EpMoeLayer {
            layer,
            config,
            rank,
        })
    }

    /// The MoE configuration.
    pub fn config(&self) -> &MoeConfig {
        self.layer.config()
    }

    /// Enqueues the layer for this rank's `x` (`[tokens, hidden]`); every rank of `comm` calls
    /// it. Returns `[tokens, hidden]`. Synchronises `stream` on the routing (the dispatch's
    /// counts) and on the received ids.
    pub fn forward(
        &self,
        comm: &Comm,
        stream: &Stream,
        x: &DeviceBuffer<bf16>,
        tokens: usize,
    ) -> Result<DeviceBuffer<bf16>> {
        if comm.rank() as usize != self.rank {
            return Err(Error::invalid(
                format!(
                    "rank {} of the communicator for the layer of rank {}",
                    comm.rank(),
                    self.rank
                ),
                "the communicator rank the layer was built for",
            ));
        }
        let hidden = self.layer.hidden();
        if Some(x.len()) != tokens.checked_mul(hidden) {
            return Err(Error::invalid(
                format!("x of {} elements for {tokens} tokens", x.len()),
                format!("[{tokens}, {hidden}]"),
            ));
        }
        // A rank without tokens still takes part in the collectives.
        let (weights, ids) = if tokens == 0 {
            (
                stream.alloc_pooled::<f32>(0)?,
                stream.alloc_pooled::<i32>(0)?,
            )
        } else {
            self.layer.route_tokens(stream, x, tokens)?
        };
        let shape = EpShape {
            config: self.config,
            hidden,
            top_k: self.config().top_k,
        };
        let tokens_in = Tokens {
            x: Payload::Bf16(x),
            topk_idx: &ids,
            topk_weights: &weights,
        };
        let recv = normal_dispatch(comm, stream, &shape, tokens_in)?;
        let partial = self.local_experts(stream, &recv)?;
        let shared = self.layer.shared_expert_of(stream, x, tokens)?;
        normal_combine(comm, stream, &recv.handle, &partial, shared.as_ref())
    }

    /// `Σ_k w_k · expert_k(x)` over the local experts of each received row, `[N, H]` bf16.
    fn local_experts(&self, stream: &Stream, recv: &NormalReceived) -> Result<DeviceBuffer<bf16>> {
        let (h, k, l) = (
            self.layer.hidden(),
            self.config().top_k,
            self.config.local_experts(),
        );
        let n = recv.handle.recv_rows();
        let mut partial = stream.alloc_pooled_zeroed::<bf16>(n * h)?;
        let rows: usize = recv.num_recv_tokens_per_expert.iter().sum();
        let Some(x) = recv.x.bf16().filter(|_| rows > 0) else {
            return Ok(partial);
        };
        // aclnnMoeInitRoutingV3 wants every id in 0..expertNum: experts of other ranks (-1)
        // go to an extra bin `L`, outside the active range, so they are not placed.
        let ids: Vec<i32> = recv.topk_idx.to_vec()?;
        let ids: Vec<i32> = ids
            .iter()
            .map(|&e| if e < 0 { l as i32 } else { e })
            .collect();
        let ids = stream.upload(&ids)?;
        let shape = MoeShape {
            tokens: n,
            hidden: h,
            top_k: k,
            experts: (l + 1).max(k),
        };
        let d = dispatch_local(stream, shape, 0..l, x, &ids)?;
        let sizes = match self.layer.expert_weights() {
            FfnWeights::Bf16 { .. } => GroupSizesBuffer::Counts(d.counts),
            FfnWeights::Fp8 { .. } => {
                let cumsum: Vec<i32> = recv
                    .num_recv_tokens_per_expert
                    .iter()
                    .scan(0i32, |acc, &c| {
                        *acc += c as i32;
                        Some(*acc)
                    })
                    .collect();
                GroupSizesBuffer::Cumsum(stream.upload(&cumsum)?)
            }
        };
        let expanded = d.expanded_x.slice(..rows * h)?;
        let y = self.layer.routed_experts(stream, &expanded, &sizes, rows)?;
        // Pairs of other ranks are −1 in the gather index: they add nothing.
        let sum = RowSum {
            rows: &y,
            count: rows,
            index: &d.expanded_row_idx,
            weights: &recv.topk_weights,
            residual: None,
        };
        sum_rows(stream, sum, &mut partial, (n, h))?;
        Ok(partial)
    }
}
