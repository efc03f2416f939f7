//! DeepEP's low-latency dispatch into the masked layout `[L, max_tokens·R, H]`, and its
//! weighted combine.

use half::bf16;

use super::exchange::{Counts, RowSum, all_to_all_rows, reversed, sum_rows};
use super::integrity::check_low_latency_received;
use super::mc2::{self, Mc2Handle};
use super::{EpShape, Rows, Tokens, check_shape, dispatch_layout};
use crate::error::{Error, Result};
use crate::runtime::comm::{AllToAllV, Comm};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// What one rank receives from [`low_latency_dispatch`].
pub struct LowLatencyReceived {
    /// `[L, slab_rows, H]`: expert `l`'s rows are `l·slab_rows ..
    /// l·slab_rows + recv_count[l]`, in (source rank, source token, k) order; the rest is
    /// garbage (never written, never read).
    pub x: Rows,
    /// `[L]` valid leading rows of each expert's slab.
    pub recv_count: Vec<usize>,
    /// The layout, for [`low_latency_combine`].
    pub handle: LowLatencyHandle,
}

/// Where a received row comes from: `(source rank, source token, k)`.
pub type RowSource = (usize, usize, usize);

/// The layout of one low-latency dispatch.
pub struct LowLatencyHandle {
    shape: EpShape,
    tokens: usize,
    slab_rows: usize,
    /// `[R]` rows sent to each rank.
    sent_per_rank: Vec<usize>,
    /// How the rows travelled.
    path: Path,
}

/// The transport of one low-latency dispatch, which its combine takes back.
enum Path {
    /// All-to-all-v, one per local expert.
    Portable {
        /// Per local expert, the exchange of its rows: sent from the packed buffer
        /// (destination, expert, token, k order), received into its slab.
        per_expert: Vec<AllToAllV>,
        /// Rows sent in all.
        sent: usize,
        /// Per local expert, per valid row: `(source rank, source token, k)`.
        src: Vec<Vec<(usize, usize, usize)>>,
        /// `[T, K]`: the row of the returned results holding pair `(t, k)`, or −1.
        combine_idx: DeviceBuffer<i32>,
    },
    /// The MC2 operators.
    Mc2(Mc2Handle),
}

/// Which transport a low-latency dispatch uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EpTransport {
    /// The MC2 operators (`aclnnMoeDistributeDispatchV2`/`CombineV2`, or V1's
    /// `aclnnMoeDistributeDispatch`/`Combine` under a CANN without V2) where their documented
    /// limits fit, else all-to-all-v: on an A3 SoC (a bf16 payload, H in 1024..=8192, ...; V1:
    /// H 7168, 8 to 288 ranks), or on an A2 SoC with "fullmesh" (V2: 16, 32, 64, 128 or 256
    /// ranks; V1: 16, 32 or 64; at most 512 experts and 24 per rank, H a multiple of 32 up to
    /// 7168, at most 256 tokens per rank, and no `-1` expert id on any rank). V1 also needs
    /// tokens on every rank (it has no mask). One all-reduce asks every rank before the ops run.
    #[default]
    Auto,
    /// HCCL all-to-all-v on every SoC.
    Portable,
}

impl LowLatencyHandle {
    /// Rows per expert slab: `max_tokens_per_rank · R`.
    pub fn slab_rows(&self) -> usize {
        self.slab_rows
    }

    /// Per local expert, per valid row: `(source rank, source token, k)`; `None` after the
    /// MC2 operators, which keep the rows' sources in a form documented as opaque.
    pub fn recv_src(&self) -> Option<&[Vec<RowSource>]> {
        match &self.path {
            Path::Portable { src, .. } => Some(src),
            Path::Mc2(_) => None,
        }
    }

    /// The transport the dispatch used.
    pub fn transport(&self) -> EpTransport {
        match self.path {
            Path::Portable { .. } => EpTransport::Portable,
            Path::Mc2(_) => EpTransport::Auto,
        }
    }

    /// Rows sent, over all destinations.
    pub fn sent_rows(&self) -> usize {
        self.sent_per_rank.iter().sum()
    }

    /// `[R]` rows sent to each rank.
    pub fn sent_rows_per_rank(&self) -> Vec<usize> {
        self.sent_per_rank.clone()
    }
}

/// Rows a low-latency dispatch sends each of `r` ranks (`l` experts each): one per valid id.
fn rows_per_rank(topk_idx: &[i32], r: usize, l: usize) -> Vec<usize> {
    let mut rows = vec![0usize; r];
    for &e in topk_idx.iter().filter(|&&e| e >= 0) {
        rows[e as usize / l] += 1;
    }
    rows
}

/// DeepEP's low-latency dispatch: one row per `(token, k)` pair to its expert's slab on the
/// expert's rank; every rank of `comm` calls it, each with at most `max_tokens_per_rank`
/// tokens. Synchronises `stream` once, on the routing (and on the MC2 path once more, on the
/// received counts). Takes the MC2 operators where they fit ([`EpTransport::Auto`]).
pub fn low_latency_dispatch(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    tokens: Tokens<'_>,
    max_tokens_per_rank: usize,
) -> Result<LowLatencyReceived> {
    low_latency_dispatch_with(
        comm,
        stream,
        shape,
        tokens,
        max_tokens_per_rank,
        EpTransport::Auto,
    )
}

/// [`low_latency_dispatch`] over the given transport: every rank must pass the same.
pub fn low_latency_dispatch_with(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    tokens: Tokens<'_>,
    max_tokens_per_rank: usize,
    transport: EpTransport,
) -> Result<LowLatencyReceived> {
    let (r, l) = check_shape(shape, comm.size())?;
    let (h, k, me) = (shape.hidden, shape.top_k, comm.rank() as usize);
    let layout = dispatch_layout(&shape.config, tokens.topk_idx, k)?;
    let t = layout.tokens();
    tokens.x.check(t, h)?;
    if let (EpTransport::Auto, super::Payload::Bf16(x)) = (transport, tokens.x) {
        let ids = &layout.topk_idx[..];
        if let Some(form) = mc2::usable(comm, stream, shape, max_tokens_per_rank, ids)? {
            let (x, recv_count, handle) = on_mc2(
                comm,
                stream,
                shape,
                (x, ids),
                (max_tokens_per_rank, false, form),
            )?;
            let mc2::Mc2Rows::Bf16(x) = x else {
                unreachable!("an unquantized dispatch delivers bf16 rows")
            };
            return Ok(LowLatencyReceived {
                x: Rows::Bf16(x),
                recv_count,
                handle,
            });
        }
    }
    let sent_per_rank = rows_per_rank(&layout.topk_idx, r, l);
    let counts = Counts::gather(comm, stream, &layout)?;
    // Every rank sees every rank's count, so all refuse together rather than leave the others
    // waiting in a collective.
    if let Some(s) = (0..r).find(|&s| counts.tokens(s) > max_tokens_per_rank) {
        return Err(Error::invalid(
            format!("rank {s} dispatches {} tokens", counts.tokens(s)),
            format!("at most max_tokens_per_rank = {max_tokens_per_rank}"),
        ));
    }
    let slab_rows = crate::error::elements("a slab", &[max_tokens_per_rank, r])?;
    let into_me = |s: usize, e: usize| counts.pairs(s, me * l + e);
    let overflow =
        (0..r * l).find(|&g| (0..r).map(|s| counts.pairs(s, g)).sum::<usize>() > slab_rows);
    if let Some(g) = overflow {
        // Only with repeated ids in a token: then an expert can get more than one row per token.
        return Err(Error::invalid(
            format!("expert {g} receives more than {slab_rows} rows"),
            "at most one row per token and expert (distinct ids within a token)",
        ));
    }

    // Sent rows in (destination, local expert, token, k) order.
    let mut order = Vec::new();
    let mut pair_of_row = Vec::new();
    let mut combine_idx = vec![-1i32; t * k];
    let mut seg_start = vec![0usize; r * l];
    for (g, start) in seg_start.iter_mut().enumerate() {
        *start = order.len();
        for (f, &e) in layout.topk_idx.iter().enumerate() {
            if e == g as i32 {
                combine_idx[f] = order.len() as i32;
                order.push(f / k);
                pair_of_row.push(f as i32);
            }
        }
    }
    let per_expert: Vec<AllToAllV> = (0..l)
        .map(|e| {
            let mut recv_displs = Vec::with_capacity(r);
            let mut at = e * slab_rows;
            for s in 0..r {
                recv_displs.push(at as u64);
                at += into_me(s, e);
            }
            AllToAllV {
                send_counts: (0..r).map(|d| counts.pairs(me, d * l + e) as u64).collect(),
                send_displs: (0..r).map(|d| seg_start[d * l + e] as u64).collect(),
                recv_counts: (0..r).map(|s| into_me(s, e) as u64).collect(),
                recv_displs,
            }
        })
        .collect();

    let packed = tokens.x.pack(stream, &order, h)?;
    let is_fp8 = matches!(tokens.x, super::Payload::Fp8(_));
    let mut x = Rows::alloc(stream, is_fp8, l * slab_rows, h)?;
    let pairs = stream.upload(&pair_of_row)?;
    let mut recv_pairs = stream.alloc_pooled::<i32>(l * slab_rows)?;
    for layout in &per_expert {
        packed.exchange(comm, stream, &mut x, layout, h)?;
        all_to_all_rows(comm, stream, &pairs, &mut recv_pairs, layout, 1)?;
    }
    let recv_pairs = recv_pairs.to_vec()?;
    check_low_latency_received(&counts, k, &per_expert, &recv_pairs)?;
    let recv_count: Vec<usize> = (0..l)
        .map(|e| (0..r).map(|s| into_me(s, e)).sum())
        .collect();
    let src = per_expert
        .iter()
        .map(|layout| {
            let parts = layout.recv_counts.iter().zip(&layout.recv_displs);
            parts
                .enumerate()
                .flat_map(|(s, (&n, &at))| {
                    let flat = &recv_pairs[at as usize..(at + n) as usize];
                    flat.iter()
                        .map(move |&f| (s, f as usize / k, f as usize % k))
                })
                .collect()
        })
        .collect();
    Ok(LowLatencyReceived {
        x,
        recv_count,
        handle: LowLatencyHandle {
            shape: *shape,
            tokens: t,
            slab_rows,
            sent_per_rank,
            path: Path::Portable {
                per_expert,
                sent: order.len(),
                src,
                combine_idx: stream.upload(&combine_idx)?,
            },
        },
    })
}

/// What one rank receives from [`low_latency_dispatch_int8`]: the masked layout of
/// [`LowLatencyReceived`] with INT8 rows, each row `≈ codes · scale`.
pub struct LowLatencyInt8Received {
    /// `[L, slab_rows, H]` codes in `-127..=127`; rows past `recv_count` are garbage.
    pub codes: DeviceBuffer<i8>,
    /// `[L, slab_rows]`: each row's scale, `max|row| / 127` of the bf16 row sent.
    pub scales: DeviceBuffer<f32>,
    /// `[L]` valid leading rows of each expert's slab.
    pub recv_count: Vec<usize>,
    /// The layout, for [`low_latency_combine`] (whose input stays bf16).
    pub handle: LowLatencyHandle,
}

/// [`low_latency_dispatch`] with each `(token, k)` row quantized on the way to per-row
/// dynamic INT8, as DeepEP-Ascend's INT8 dispatch and the W8A8 experts of a DeepSeek engine on
/// A3 take it: the MC2 dispatch's quantMode 2 (`scale = max|x| / 127`, codes `x / scale`
/// rounded to the nearest integer), about half the bytes of a bf16 dispatch. A row of zeros
/// arrives as zero codes with scale 0.
///
/// Needs the MC2 operators (an A3 SoC, or an A2 SoC with every id routed, where their limits
/// fit, as [`EpTransport::Auto`] decides, and a bf16 payload); elsewhere it returns
/// [`Error::Unsupported`] and no rows moved, on every rank alike.
pub fn low_latency_dispatch_int8(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    tokens: Tokens<'_>,
    max_tokens_per_rank: usize,
) -> Result<LowLatencyInt8Received> {
    check_shape(shape, comm.size())?;
    let layout = dispatch_layout(&shape.config, tokens.topk_idx, shape.top_k)?;
    let t = layout.tokens();
    tokens.x.check(t, shape.hidden)?;
    let super::Payload::Bf16(x) = tokens.x else {
        return Err(Error::Unsupported {
            what: "an INT8 dispatch of an FP8 payload".into(),
            reason: "the MC2 operators quantize bf16 or fp16 rows".into(),
        });
    };
    let ids = &layout.topk_idx[..];
    let Some(form) = mc2::usable(comm, stream, shape, max_tokens_per_rank, ids)? else {
        return Err(Error::Unsupported {
            what: "an INT8 low-latency dispatch here".into(),
            reason: "it runs on the MC2 operators, which need an Atlas A3 SoC, or an A2 one at \
                     16 to 256 ranks with no -1 expert id on any rank, a CANN that has them and \
                     a shape within their limits (see EpTransport::Auto); use \
                     low_latency_dispatch"
                .into(),
        });
    };
    let on = (x, ids);
    let config = (max_tokens_per_rank, true, form);
    let (rows, recv_count, handle) = on_mc2(comm, stream, shape, on, config)?;
    let mc2::Mc2Rows::Int8 { codes, scales } = rows else {
        unreachable!("a quantized dispatch delivers INT8 rows")
    };
    Ok(LowLatencyInt8Received {
        codes,
        scales,
        recv_count,
        handle,
    })
}

/// A low-latency dispatch of `x` routed by `topk_idx` (host copy) on the MC2 operators,
/// quantized to INT8 if `int8`: the rows, the receive counts and the handle.
fn on_mc2(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    (x, topk_idx): (&DeviceBuffer<bf16>, &[i32]),
    config: (usize, bool, mc2::Route),
) -> Result<(mc2::Mc2Rows, Vec<usize>, LowLatencyHandle)> {
    let (r, l) = (shape.config.num_ranks, shape.config.local_experts());
    let max_tokens_per_rank = config.0;
    let (rows, recv_count, mc2) = mc2::dispatch(comm, stream, shape, (x, topk_idx), config)?;
    let handle = LowLatencyHandle {
        shape: *shape,
        tokens: topk_idx.len() / shape.top_k,
        slab_rows: max_tokens_per_rank * r,
        sent_per_rank: rows_per_rank(topk_idx, r, l),
        path: Path::Mc2(mc2),
    };
    Ok((rows, recv_count, handle))
}

/// DeepEP's low-latency combine: `y` (`[L, slab_rows, H]`, the experts' outputs in the masked
/// layout; only the `recv_count` leading rows of each slab are read) goes back to the rows'
/// source ranks, which return `[T, H]` = `Σ_k w_k · y_k` in fp32, in k order, rounded once to
/// bf16. `topk_weights` are the dispatching rank's `[T, K]` router weights.
pub fn low_latency_combine(
    comm: &Comm,
    stream: &Stream,
    handle: &LowLatencyHandle,
    y: &DeviceBuffer<bf16>,
    topk_weights: &DeviceBuffer<f32>,
) -> Result<DeviceBuffer<bf16>> {
    let (_, l) = check_shape(&handle.shape, comm.size())?;
    let (h, k, t) = (handle.shape.hidden, handle.shape.top_k, handle.tokens);
    if y.len() != l * handle.slab_rows * h {
        return Err(Error::invalid(
            format!("combine input of {} elements", y.len()),
            format!("the masked layout [{l}, {}, {h}]", handle.slab_rows),
        ));
    }
    if topk_weights.len() != t * k {
        return Err(Error::invalid(
            format!("topk_weights of {} elements", topk_weights.len()),
            format!("[{t}, {k}], the dispatched tokens'"),
        ));
    }
    let (per_expert, sent, combine_idx) = match &handle.path {
        Path::Portable {
            per_expert,
            sent,
            combine_idx,
            ..
        } => (per_expert, *sent, combine_idx),
        Path::Mc2(mc2) => {
            let y = (y, handle.slab_rows);
            return mc2::combine(comm, stream, &handle.shape, mc2, y, (topk_weights, t));
        }
    };
    let mut back = stream.alloc_pooled::<bf16>(sent * h)?;
    for layout in per_expert {
        all_to_all_rows(comm, stream, y, &mut back, &reversed(layout), h)?;
    }
    let mut out = stream.alloc_pooled_zeroed::<bf16>(t * h)?;
    let sum = RowSum {
        rows: &back,
        count: sent,
        index: combine_idx,
        weights: topk_weights,
        residual: None,
    };
    sum_rows(stream, sum, &mut out, (t, h))?;
    Ok(out)
}
