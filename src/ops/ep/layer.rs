//! The DeepSeek MoE layer with its routed experts sharded over the ranks of a communicator.

use half::bf16;

use super::exchange::{RowSum, sum_rows};
use super::{
    EpConfig, EpShape, LowLatencyInt8Received, NormalReceived, Payload, PayloadKind, Rows, Tokens,
    low_latency_combine, low_latency_dispatch_int8, normal_combine, normal_dispatch,
};
use crate::error::{Error, Result};
use crate::fp8::ScaleFormat;
use crate::kernels::Kernels;
use crate::ops::fp8::{Fp8Activations, Fp8Input};
use crate::ops::moe::{
    FfnWeights, GroupSizesBuffer, MoeConfig, MoeLayer, MoeShape, MoeWeights, dispatch_local,
};
use crate::runtime::comm::Comm;
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// One rank's part of an expert-parallel MoE layer: the router and the shared expert whole,
/// the routed experts `rank·L .. (rank+1)·L` only (`L = E/R`).
///
/// [`forward`](Self::forward) routes the rank's tokens, dispatches them (normal mode, bf16 or
/// FP8), runs the local experts on what arrived and weights their outputs per token, and
/// combines the partial sums back, adding the shared expert.
///
/// With a bf16 dispatch it equals [`MoeLayer::forward`] on the same tokens except for one
/// extra bf16 rounding per rank of each token's partial sum (DeepEP's bf16 combine): at most
/// `2^-8 · Σ_k |w_k·y_k|` per element, plus one bf16 ulp of the result where the two final
/// roundings differ.
///
/// With an FP8 dispatch ([`with_fp8_dispatch`](Self::with_fp8_dispatch)) the routed experts
/// see each token as its 1×128 quantization `x̃` (routing and the shared expert still see
/// `x`): FP8 expert weights read the codes directly (W8A8), bf16 weights read `x̃` rounded to
/// bf16.
///
/// With an INT8 dispatch ([`with_int8_dispatch`](Self::with_int8_dispatch)), where the MC2
/// operators run, the routed experts see each `(token, k)` row as its per-row INT8
/// quantization, dequantized at the receiver (`code · scale`, rounded once to bf16) before the
/// expert GEMMs.
pub struct EpMoeLayer {
    layer: MoeLayer,
    config: EpConfig,
    rank: usize,
    dispatch: Dispatch,
}

/// How [`EpMoeLayer`] dispatches its tokens.
#[derive(Clone, Copy)]
enum Dispatch {
    /// Normal mode, bf16 rows.
    Bf16,
    /// Normal mode, FP8 rows with 1×128 scales in this format.
    Fp8(ScaleFormat),
    /// Low-latency mode on the MC2 ops with per-row INT8 (at most this many tokens per rank),
    /// else as `Bf16`.
    Int8 { max_tokens_per_rank: usize },
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
            dispatch: Dispatch::Bf16,
        })
    }

    /// Dispatches FP8 E4M3 rows with 1×128 scales in `format` instead of bf16 rows, as
    /// DeepSeek-V3 does: about half the bytes (`H + 4·⌈H/128⌉` per row against `2·H`). Each rank
    /// quantizes its own tokens ([`Fp8Activations::quantize`]) before sending them. Every rank
    /// of a communicator must choose the same format.
    pub fn with_fp8_dispatch(mut self, format: ScaleFormat) -> Self {
        self.dispatch = Dispatch::Fp8(format);
        self
    }

    /// Dispatches each `(token, k)` row quantized per row to INT8 on the MC2 operators (their
    /// quantMode 2, [`low_latency_dispatch_int8`]: `H + 4` bytes a row against `2·H`) where
    /// they run ([`EpTransport::Auto`](super::EpTransport::Auto)'s limits, with every rank
    /// passing at most `max_tokens_per_rank` tokens to [`forward`](Self::forward)); elsewhere
    /// the bf16 normal dispatch, on every rank alike. Every rank of a communicator must choose
    /// the same.
    pub fn with_int8_dispatch(mut self, max_tokens_per_rank: usize) -> Self {
        self.dispatch = Dispatch::Int8 {
            max_tokens_per_rank,
        };
        self
    }

    /// The payload format of the dispatch (INT8 where the MC2 operators run, else bf16).
    pub fn dispatch_kind(&self) -> PayloadKind {
        match self.dispatch {
            Dispatch::Bf16 => PayloadKind::Bf16,
            Dispatch::Fp8(_) => PayloadKind::Fp8,
            Dispatch::Int8 { .. } => PayloadKind::Int8,
        }
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
        if let Dispatch::Int8 {
            max_tokens_per_rank,
        } = self.dispatch
        {
            let tokens_in = Tokens {
                x: Payload::Bf16(x),
                topk_idx: &ids,
                topk_weights: &weights,
            };
            // Unsupported is decided alike on every rank (what they share, one all-reduce).
            match low_latency_dispatch_int8(comm, stream, &shape, tokens_in, max_tokens_per_rank) {
                Ok(recv) => return self.forward_int8(comm, stream, &recv, (x, tokens), &weights),
                Err(Error::Unsupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let quantized;
        let payload = match self.dispatch {
            Dispatch::Fp8(format) => {
                let kernels = self.layer.kernels();
                quantized = Fp8Activations::quantize(kernels, stream, tokens, hidden, format, x)?;
                Payload::Fp8(&quantized)
            }
            Dispatch::Bf16 | Dispatch::Int8 { .. } => Payload::Bf16(x),
        };
        let tokens_in = Tokens {
            x: payload,
            topk_idx: &ids,
            topk_weights: &weights,
        };
        let recv = normal_dispatch(comm, stream, &shape, tokens_in)?;
        let partial = self.local_experts(stream, &recv)?;
        let shared = self.layer.shared_expert_of(stream, x, tokens)?;
        normal_combine(comm, stream, &recv.handle, &partial, shared.as_ref())
    }

    /// The rest of [`forward`](Self::forward) after an INT8 dispatch: the local experts on
    /// the dequantized rows, in the masked layout; the weighted low-latency combine; the
    /// shared expert added (one more bf16 rounding, as a rank's partial sum gets in normal
    /// mode).
    fn forward_int8(
        &self,
        comm: &Comm,
        stream: &Stream,
        recv: &LowLatencyInt8Received,
        (x, tokens): (&DeviceBuffer<bf16>, usize),
        weights: &DeviceBuffer<f32>,
    ) -> Result<DeviceBuffer<bf16>> {
        let h = self.layer.hidden();
        let slab = recv.handle.slab_rows();
        let rows: usize = recv.recv_count.iter().sum();
        // Experts' outputs in the masked layout; rows past recv_count stay unwritten (the
        // combine never reads them).
        let mut y = stream.alloc_pooled::<bf16>(self.config.local_experts() * slab * h)?;
        if rows > 0 {
            let x = dequantize_rows(stream, recv, h)?;
            let sizes = self.group_sizes(stream, &recv.recv_count)?;
            let packed =
                self.layer
                    .routed_experts(stream, Fp8Input::Bf16(x.as_view()), &sizes, rows)?;
            let mut at = 0;
            for (e, &n) in recv.recv_count.iter().enumerate() {
                if n > 0 {
                    let from = packed.slice(at * h..(at + n) * h)?;
                    let mut to = y.slice_mut(e * slab * h..(e * slab + n) * h)?;
                    stream.memcpy_dtod(&from, &mut to)?;
                }
                at += n;
            }
        }
        let routed = low_latency_combine(comm, stream, &recv.handle, &y, weights)?;
        let Some(shared) = self.layer.shared_expert_of(stream, x, tokens)? else {
            return Ok(routed);
        };
        let ones = stream.upload(&vec![1f32; tokens])?;
        scaled_rows(stream, (&routed, &ones), Some(&shared), (tokens, h))
    }

    /// The grouped GEMMs' group sizes for `counts` rows per local expert, in the form the
    /// expert weights take (counts for bf16, cumulative for FP8).
    fn group_sizes(&self, stream: &Stream, counts: &[usize]) -> Result<GroupSizesBuffer> {
        Ok(match self.layer.expert_weights() {
            FfnWeights::Bf16 { .. } => {
                let counts: Vec<i64> = counts.iter().map(|&c| c as i64).collect();
                GroupSizesBuffer::Counts(stream.upload(&counts)?)
            }
            FfnWeights::Fp8 { .. } => {
                let cumsum: Vec<i32> = counts
                    .iter()
                    .scan(0i32, |acc, &c| {
                        *acc += c as i32;
                        Some(*acc)
                    })
                    .collect();
                GroupSizesBuffer::Cumsum(stream.upload(&cumsum)?)
            }
        })
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
        let ids: Vec<i32> = recv.topk_idx.to_vec()?;
        let sorted = ExpertOrder::of(&ids, k, l)?;
        let rows = sorted.rows.len();
        if rows == 0 {
            return Ok(partial);
        }
        let sizes = self.group_sizes(stream, &sorted.counts)?;
        let (y, index) = match &recv.x {
            Rows::Bf16(x) => {
                // aclnnMoeInitRoutingV3 wants every id in 0..expertNum: experts of other ranks
                // (-1) go to an extra bin `L`, outside the active range, so they are not placed.
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
                let expanded = d.expanded_x.slice(..rows * h)?;
                let y =
                    self.layer
                        .routed_experts(stream, Fp8Input::Bf16(expanded), &sizes, rows)?;
                (y, d.expanded_row_idx)
            }
            // FP8 rows are permuted by the host's order, codes and scales alike: the device
            // permutation (aclnnMoeInitRoutingV3) moves one element type only.
            Rows::Fp8(x) => {
                let Rows::Fp8(expanded) = Payload::Fp8(x).pack(stream, &sorted.rows, h)? else {
                    unreachable!("an FP8 payload packs into FP8 rows")
                };
                let y =
                    self.layer
                        .routed_experts(stream, Fp8Input::Fp8(&expanded), &sizes, rows)?;
                (y, stream.upload(&sorted.index)?)
            }
        };
        // Pairs of other ranks are −1 in the gather index: they add nothing.
        let sum = RowSum {
            rows: &y,
            count: rows,
            index: &index,
            weights: &recv.topk_weights,
            residual: None,
        };
        sum_rows(stream, sum, &mut partial, (n, h))?;
        Ok(partial)
    }
}

/// The valid rows of an INT8 dispatch, packed expert after expert: `[Σ recv_count, H]` bf16,
/// each `code · scale` formed in fp32 and rounded once (codes are exact in bf16; the scaling is
/// [`sum_rows`] of one part weighted by the row's scale). Rows past `recv_count` are not read.
fn dequantize_rows(
    stream: &Stream,
    recv: &LowLatencyInt8Received,
    h: usize,
) -> Result<DeviceBuffer<bf16>> {
    let slab = recv.handle.slab_rows();
    let rows: usize = recv.recv_count.iter().sum();
    let mut codes = stream.alloc_pooled::<bf16>(rows * h)?;
    let mut scales = stream.alloc_pooled::<f32>(rows)?;
    let mut at = 0;
    for (e, &n) in recv.recv_count.iter().enumerate() {
        if n > 0 {
            let from = recv.codes.slice(e * slab * h..(e * slab + n) * h)?;
            crate::aclnn::cast(stream, &from, &mut codes.slice_mut(at * h..(at + n) * h)?)?;
            let from = recv.scales.slice(e * slab..e * slab + n)?;
            stream.memcpy_dtod(&from, &mut scales.slice_mut(at..at + n)?)?;
        }
        at += n;
    }
    scaled_rows(stream, (&codes, &scales), None, (rows, h))
}

/// `residual[i] + w[i] · rows[i]` for `n` rows of `h`, in fp32, rounded once to bf16
/// ([`sum_rows`] with one part per row).
fn scaled_rows(
    stream: &Stream,
    (rows, weights): (&DeviceBuffer<bf16>, &DeviceBuffer<f32>),
    residual: Option<&DeviceBuffer<bf16>>,
    (n, h): (usize, usize),
) -> Result<DeviceBuffer<bf16>> {
    let mut out = stream.alloc_pooled_zeroed::<bf16>(n * h)?;
    let index: Vec<i32> = (0..n as i32).collect();
    let sum = RowSum {
        rows,
        count: n,
        index: &stream.upload(&index)?,
        weights,
        residual,
    };
    sum_rows(stream, sum, &mut out, (n, h))?;
    Ok(out)
}

/// The received `(row, k)` pairs of the local experts sorted by expert, then by pair (the order
/// `aclnnMoeInitRoutingV3` gives its expanded rows).
struct ExpertOrder {
    /// The received row of each sorted pair.
    rows: Vec<usize>,
    /// `[N, K]`: each pair's sorted position, or −1 for an expert elsewhere or none.
    index: Vec<i32>,
    /// `[L]` pairs per local expert.
    counts: Vec<usize>,
}

impl ExpertOrder {
    /// From the received local ids `[N, K]` (`-1` or `0..l`).
    fn of(ids: &[i32], k: usize, l: usize) -> Result<ExpertOrder> {
        let mut counts = vec![0usize; l];
        for (p, &e) in ids.iter().enumerate() {
            match usize::try_from(e) {
                Ok(e) if e < l => counts[e] += 1,
                _ if e == -1 => {}
                _ => {
                    return Err(Error::invalid(
                        format!("received topk_idx[{}][{}] = {e}", p / k, p % k),
                        format!("-1 or a local expert id in 0..{l}"),
                    ));
                }
            }
        }
        let mut next: Vec<usize> = counts
            .iter()
            .scan(0, |acc, &c| {
                *acc += c;
                Some(*acc - c)
            })
            .collect();
        let mut rows = vec![0; counts.iter().sum()];
        let mut index = vec![-1i32; ids.len()];
        for (p, &e) in ids.iter().enumerate() {
            if let Ok(e) = usize::try_from(e) {
                rows[next[e]] = p / k;
                index[p] = next[e] as i32;
                next[e] += 1;
            }
        }
        Ok(ExpertOrder {
            rows,
            index,
            counts,
        })
    }
}
