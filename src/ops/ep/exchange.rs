//! What every rank sends, known to every rank (one all-gather), and the row-wise all-to-all-v.

use half::bf16;

use super::DispatchLayout;
use crate::error::{Error, Result};
use crate::ops::moe::{CombineInputs, MoeShape, combine_padded};
use crate::runtime::comm::{AllToAllV, Comm, CommElement};
use crate::runtime::{DeviceBuffer, DeviceSlice, DeviceSliceMut, Stream};

/// Every rank's counts, all-gathered: per source rank its token count, its tokens per
/// destination rank and its `(t, k)` pairs per expert. Each rank's row ends with a check value
/// of the rest ([`row_check`]): every rank's layout follows from this table, so a row damaged
/// on its way to one rank is caught there ([`Error::Damaged`]) rather than sending that rank's
/// exchanges astray.
pub(super) struct Counts {
    ranks: usize,
    experts: usize,
    /// `[R, 1 + R + E + 1]`.
    table: Vec<i64>,
}

/// What a rank sends in the counts exchange that opens every dispatch (an all-gather of
/// `i64`s): its token count, its tokens per destination rank, its `(t, k)` pairs per expert
/// and a check value of those. A program taking part in the exchange by other means (a test
/// playing a rank) sends this row.
///
/// ```
/// use ascend_npu::ops::ep::{EpConfig, counts_row, dispatch_layout};
/// use ascend_npu::{select_backend, Backend, Device};
/// select_backend(Backend::Sim)?;
/// let stream = Device::open(0)?.new_stream()?;
/// let config = EpConfig { num_ranks: 2, num_experts: 4 };
/// // One token choosing experts 1 (rank 0) and 2 (rank 1).
/// let layout = dispatch_layout(&config, &stream.upload(&[1i32, 2])?, 2)?;
/// let row = counts_row(&layout);
/// assert_eq!(row[..7], [1, 1, 1, 0, 1, 1, 0]);
/// assert_eq!(row.len(), 1 + 2 + 4 + 1);
/// # Ok::<(), ascend_npu::Error>(())
/// ```
pub fn counts_row(layout: &DispatchLayout) -> Vec<i64> {
    let (ranks, experts) = (layout.ranks(), layout.num_tokens_per_expert.len());
    let mut row = Vec::with_capacity(Counts::width(ranks, experts));
    row.push(layout.tokens() as i64);
    let counts = layout.num_tokens_per_rank.iter();
    row.extend(
        counts
            .chain(&layout.num_tokens_per_expert)
            .map(|&n| n as i64),
    );
    row.push(row_check(&row));
    row
}

/// FNV-1a over the row's little-endian bytes: any changed byte changes it (with probability
/// 1 − 2⁻⁶⁴ for damage of more bytes), unlike a sum, which a pair of changes can keep.
fn row_check(row: &[i64]) -> i64 {
    let hash = row
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    hash as i64
}

impl Counts {
    /// Gathers every rank's `layout` counts. Every rank must call it (a collective).
    pub(super) fn gather(comm: &Comm, stream: &Stream, layout: &DispatchLayout) -> Result<Counts> {
        let (ranks, experts) = (layout.ranks(), layout.num_tokens_per_expert.len());
        let mine = counts_row(layout);
        let send = stream.upload(&mine)?;
        let mut all = stream.alloc_pooled::<i64>(mine.len() * ranks)?;
        comm.all_gather(stream, &send, &mut all)?;
        let counts = Counts {
            ranks,
            experts,
            table: all.to_vec()?,
        };
        for src in 0..ranks {
            let w = Counts::width(ranks, experts);
            let (row, check) = counts.table[src * w..(src + 1) * w].split_at(w - 1);
            if row_check(row) != check[0] {
                return Err(Error::Damaged {
                    from: src,
                    what: format!("its counts row {row:?} with check value {}", check[0]),
                    expected: format!("the check value of those counts, {}", row_check(row)),
                });
            }
        }
        Ok(counts)
    }

    /// Values per rank: the token count, `R` per-rank and `E` per-expert counts, the check.
    pub(super) fn width(ranks: usize, experts: usize) -> usize {
        1 + ranks + experts + 1
    }

    fn row(&self, src: usize) -> &[i64] {
        let w = Counts::width(self.ranks, self.experts);
        &self.table[src * w..(src + 1) * w]
    }

    /// Tokens rank `src` dispatches.
    pub(super) fn tokens(&self, src: usize) -> usize {
        self.row(src)[0] as usize
    }

    /// Tokens rank `src` sends to rank `dest` (normal dispatch).
    pub(super) fn tokens_to(&self, src: usize, dest: usize) -> usize {
        self.row(src)[1 + dest] as usize
    }

    /// `(t, k)` pairs of rank `src` choosing expert `e` (low-latency dispatch).
    pub(super) fn pairs(&self, src: usize, e: usize) -> usize {
        self.row(src)[1 + self.ranks + e] as usize
    }
}

/// `layout` (in rows) scaled to elements of `width` per row.
fn scaled(layout: &AllToAllV, width: usize) -> AllToAllV {
    let w = width as u64;
    let s = |v: &[u64]| v.iter().map(|&n| n * w).collect();
    AllToAllV {
        send_counts: s(&layout.send_counts),
        send_displs: s(&layout.send_displs),
        recv_counts: s(&layout.recv_counts),
        recv_displs: s(&layout.recv_displs),
    }
}

/// The same exchange backwards: what was received goes back where it came from.
pub(super) fn reversed(layout: &AllToAllV) -> AllToAllV {
    AllToAllV {
        send_counts: layout.recv_counts.clone(),
        send_displs: layout.recv_displs.clone(),
        recv_counts: layout.send_counts.clone(),
        recv_displs: layout.send_displs.clone(),
    }
}

/// All-to-all-v of rows of `width` elements, `layout` counted in rows.
pub(super) fn all_to_all_rows<T: CommElement>(
    comm: &Comm,
    stream: &Stream,
    send: &impl DeviceSlice<T>,
    recv: &mut impl DeviceSliceMut<T>,
    layout: &AllToAllV,
    width: usize,
) -> Result<()> {
    comm.all_to_all_v(stream, send, recv, &scaled(layout, width))
}

/// `dst` row `i` = `src` row `rows[i]` (rows of `width` elements), one device copy per run of
/// consecutive source rows.
pub(super) fn gather_rows<T>(
    stream: &Stream,
    src: &DeviceBuffer<T>,
    rows: &[usize],
    width: usize,
    dst: &mut DeviceBuffer<T>,
) -> Result<()> {
    if dst.len() != rows.len() * width {
        return Err(Error::invalid(
            format!("a packed buffer of {} elements", dst.len()),
            format!("{} rows of {width}", rows.len()),
        ));
    }
    let mut i = 0;
    while i < rows.len() {
        let start = rows[i];
        let mut len = 1;
        while i + len < rows.len() && rows[i + len] == start + len {
            len += 1;
        }
        let from = src.slice(start * width..(start + len) * width)?;
        let mut to = dst.slice_mut(i * width..(i + len) * width)?;
        stream.memcpy_dtod(&from, &mut to)?;
        i += len;
    }
    Ok(())
}

/// What [`sum_rows`] adds up per token.
pub(super) struct RowSum<'a> {
    /// `[count, H]` rows.
    pub(super) rows: &'a DeviceBuffer<bf16>,
    /// Valid leading rows of `rows`.
    pub(super) count: usize,
    /// `[T, J]`: per token and part, the row, or −1 for nothing.
    pub(super) index: &'a DeviceBuffer<i32>,
    /// `[T, J]` weights of the parts.
    pub(super) weights: &'a DeviceBuffer<f32>,
    /// `[T, H]` added first, if given.
    pub(super) residual: Option<&'a DeviceBuffer<bf16>>,
}

/// `out[t] = residual[t] + Σ_j w[t,j] · rows[index[t,j]]` in fp32, in `j` order, rounded once
/// to bf16 (`out` is `[T, H]`, zeroed by the caller): `aclnnMoeFinalizeRoutingV2`'s padded
/// mode, taking the rows as the `count`-row slab of a single "expert", where a −1 row is a
/// dropped pair.
pub(super) fn sum_rows(
    stream: &Stream,
    sum: RowSum<'_>,
    out: &mut DeviceBuffer<bf16>,
    (tokens, hidden): (usize, usize),
) -> Result<()> {
    if sum.count == 0 || tokens == 0 {
        if let Some(res) = sum.residual {
            stream.memcpy_dtod(res, out)?;
        }
        return Ok(());
    }
    let shape = MoeShape {
        tokens,
        hidden,
        top_k: sum.index.len() / tokens,
        experts: 1,
    };
    let inputs = CombineInputs {
        y: sum.rows.slice(..sum.count * hidden)?,
        expanded_row_idx: sum.index.as_view(),
        weights: sum.weights.as_view(),
        shared: sum.residual.map(DeviceBuffer::as_view),
    };
    combine_padded(stream, shape, sum.count, inputs, out)
}
