//! DeepEP's normal dispatch and combine: a token goes once to each rank holding one of its
//! experts; combine sums each token's per-rank results without weights.

use half::bf16;

use super::exchange::{Counts, RowSum, all_to_all_rows, reversed, sum_rows};
use super::integrity::{Received, check_received};
use super::{DispatchLayout, EpShape, Payload, Rows, Tokens, check_shape, dispatch_layout};
use crate::error::{Error, Result};
use crate::runtime::comm::{AllToAllV, Comm};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// What one rank receives from [`normal_dispatch`].
pub struct NormalReceived {
    /// `[N, H]` rows in (source rank, source token) order.
    pub x: Rows,
    /// `[N, K]` expert ids local to this rank (`0..L`), `-1` for experts elsewhere or none.
    pub topk_idx: DeviceBuffer<i32>,
    /// `[N, K]` the tokens' router weights.
    pub topk_weights: DeviceBuffer<f32>,
    /// `[L]` `(token, k)` pairs received per local expert.
    pub num_recv_tokens_per_expert: Vec<usize>,
    /// The layout, for [`normal_combine`] and [`normal_redispatch`].
    pub handle: NormalHandle,
}

/// The cached layout of one normal dispatch: combine sends results back along it, and
/// [`normal_redispatch`] replays it without exchanging counts again.
pub struct NormalHandle {
    shape: EpShape,
    layout: DispatchLayout,
    /// Source token of each sent row, in destination order.
    order: Vec<usize>,
    /// Rows sent to and received from each rank.
    rows: AllToAllV,
    /// `(source rank, source token)` of each received row.
    src: Vec<(usize, usize)>,
    /// `[T, R]`: the row of the returned results holding token `t`'s part from rank `r`, or −1.
    combine_idx: DeviceBuffer<i32>,
    /// `[T, R]` ones: the combine is unweighted.
    ones: DeviceBuffer<f32>,
}

impl NormalHandle {
    /// This rank's dispatch layout.
    pub fn layout(&self) -> &DispatchLayout {
        &self.layout
    }

    /// `(source rank, source token)` of each received row.
    pub fn recv_src(&self) -> &[(usize, usize)] {
        &self.src
    }

    /// Rows received (`N`).
    pub fn recv_rows(&self) -> usize {
        self.src.len()
    }

    /// Rows sent, over all destinations.
    pub fn sent_rows(&self) -> usize {
        self.order.len()
    }

    /// `[R]` rows sent to each rank.
    pub fn sent_rows_per_rank(&self) -> Vec<usize> {
        self.rows.send_counts.iter().map(|&n| n as usize).collect()
    }
}

/// DeepEP's normal dispatch of this rank's `tokens`; every rank of `comm` calls it. Synchronises
/// `stream` on the routing and on the received bookkeeping, which is checked against the
/// ranks' announced counts ([`Error::Damaged`] if it disagrees; see `integrity`).
pub fn normal_dispatch(
    comm: &Comm,
    stream: &Stream,
    shape: &EpShape,
    tokens: Tokens<'_>,
) -> Result<NormalReceived> {
    let (r, l) = check_shape(shape, comm.size())?;
    let (h, k, me) = (shape.hidden, shape.top_k, comm.rank() as usize);
    let layout = dispatch_layout(&shape.config, tokens.topk_idx, k)?;
    let t = layout.tokens();
    tokens.x.check(t, h)?;
    if tokens.topk_weights.len() != t * k {
        return Err(Error::invalid(
            format!("topk_weights of {} elements", tokens.topk_weights.len()),
            format!("[{t}, {k}] like topk_idx"),
        ));
    }
    let counts = Counts::gather(comm, stream, &layout)?;
    let weights = tokens.topk_weights.to_vec()?;

    // Rows in destination order, then token order; per row its ids made local, its weights
    // and its source token.
    let mut order = Vec::new();
    let (mut ids, mut w, mut src_tok) = (Vec::new(), Vec::new(), Vec::new());
    let mut combine_idx = vec![-1i32; t * r];
    for dest in 0..r {
        let local = dest * l..(dest + 1) * l;
        for tok in layout.tokens_to(dest) {
            combine_idx[tok * r + dest] = order.len() as i32;
            order.push(tok);
            src_tok.push(tok as i32);
            for &e in &layout.topk_idx[tok * k..(tok + 1) * k] {
                let here = e >= 0 && local.contains(&(e as usize));
                ids.push(if here { e - local.start as i32 } else { -1 });
            }
            w.extend_from_slice(&weights[tok * k..(tok + 1) * k]);
        }
    }
    let send_rows = layout
        .num_tokens_per_rank
        .iter()
        .map(|&n| n as u64)
        .collect();
    let recv_rows: Vec<u64> = (0..r).map(|s| counts.tokens_to(s, me) as u64).collect();
    let rows = AllToAllV::packed(send_rows, recv_rows);
    let n = rows.recv_counts.iter().sum::<u64>() as usize;

    let x = exchange_payload(comm, stream, tokens.x, &order, &rows, h)?;
    let mut recv_ids = stream.alloc_pooled::<i32>(n * k)?;
    all_to_all_rows(comm, stream, &stream.upload(&ids)?, &mut recv_ids, &rows, k)?;
    let mut recv_w = stream.alloc_pooled::<f32>(n * k)?;
    all_to_all_rows(comm, stream, &stream.upload(&w)?, &mut recv_w, &rows, k)?;
    let mut recv_src = stream.alloc_pooled::<i32>(n)?;
    all_to_all_rows(
        comm,
        stream,
        &stream.upload(&src_tok)?,
        &mut recv_src,
        &rows,
        1,
    )?;
    let src_tok = recv_src.to_vec()?;
    let got = Received {
        rows: &rows,
        src_tok: &src_tok,
        ids: &recv_ids.to_vec()?,
    };
    check_received(&counts, (me, l, k), &got)?;
    let mut src = Vec::with_capacity(n);
    for (s, (&count, &at)) in rows.recv_counts.iter().zip(&rows.recv_displs).enumerate() {
        for &tok in &src_tok[at as usize..(at + count) as usize] {
            src.push((s, tok as usize));
        }
    }
    let num_recv_tokens_per_expert = (0..l)
        .map(|e| (0..r).map(|s| counts.pairs(s, me * l + e)).sum())
        .collect();
    Ok(NormalReceived {
        x,
        topk_idx: recv_ids,
        topk_weights: recv_w,
        num_recv_tokens_per_expert,
        handle: NormalHandle {
            shape: *shape,
            layout,
            order,
            rows,
            src,
            combine_idx: stream.upload(&combine_idx)?,
            ones: stream.upload(&vec![1.0f32; t * r])?,
        },
    })
}

/// Packs `x`'s rows `order` and exchanges them along `rows`.
fn exchange_payload(
    comm: &Comm,
    stream: &Stream,
    x: Payload<'_>,
    order: &[usize],
    rows: &AllToAllV,
    hidden: usize,
) -> Result<Rows> {
    let packed = x.pack(stream, order, hidden)?;
    let n = rows.recv_counts.iter().sum::<u64>() as usize;
    let mut recv = Rows::alloc(stream, matches!(x, Payload::Fp8(_)), n, hidden)?;
    packed.exchange(comm, stream, &mut recv, rows, hidden)?;
    Ok(recv)
}

/// Dispatches `x` (`[T, H]`, the same tokens' new values) along `handle`'s cached layout,
/// with no count exchange and no synchronisation: the same rows land in the same places,
/// bit for bit.
pub fn normal_redispatch(
    comm: &Comm,
    stream: &Stream,
    handle: &NormalHandle,
    x: Payload<'_>,
) -> Result<Rows> {
    check_shape(&handle.shape, comm.size())?;
    x.check(handle.layout.tokens(), handle.shape.hidden)?;
    exchange_payload(
        comm,
        stream,
        x,
        &handle.order,
        &handle.rows,
        handle.shape.hidden,
    )
}

/// DeepEP's normal combine: `y` (`[N, H]`, one result per received row) goes back to the
/// rows' source ranks, where each token's parts are summed in fp32 in rank order (plus
/// `residual` `[T, H]` first, if given) and rounded once to bf16. Returns `[T, H]`; a token
/// that went nowhere gets zero (or its residual).
pub fn normal_combine(
    comm: &Comm,
    stream: &Stream,
    handle: &NormalHandle,
    y: &DeviceBuffer<bf16>,
    residual: Option<&DeviceBuffer<bf16>>,
) -> Result<DeviceBuffer<bf16>> {
    check_shape(&handle.shape, comm.size())?;
    let (h, t) = (handle.shape.hidden, handle.layout.tokens());
    if y.len() != handle.recv_rows() * h {
        return Err(Error::invalid(
            format!("combine input of {} elements", y.len()),
            format!("[{}, {h}], one row per received row", handle.recv_rows()),
        ));
    }
    if let Some(res) = residual.filter(|res| res.len() != t * h) {
        return Err(Error::invalid(
            format!("a residual of {} elements", res.len()),
            format!("[{t}, {h}]"),
        ));
    }
    let sent = handle.sent_rows();
    let mut back = stream.alloc_pooled::<bf16>(sent * h)?;
    all_to_all_rows(comm, stream, y, &mut back, &reversed(&handle.rows), h)?;
    let mut out = stream.alloc_pooled_zeroed::<bf16>(t * h)?;
    // A token's parts are its ranks', weighted 1; a rank it did not visit adds nothing.
    let sum = RowSum {
        rows: &back,
        count: sent,
        index: &handle.combine_idx,
        weights: &handle.ones,
        residual,
    };
    sum_rows(stream, sum, &mut out, (t, h))?;
    Ok(out)
}
