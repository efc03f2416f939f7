//! What a rank can check of what a normal dispatch brought it, and what it cannot.
//!
//! The ranks agree on every count first (one all-gather; each rank's row carries a check
//! value, so a row damaged on its way fails the receiving rank with [`Error::Damaged`] before
//! any exchange is laid out from it), so the rows' bookkeeping that arrives afterwards must
//! match it. [`check_received`] compares, per source rank:
//!
//! * the source tokens: increasing (rows arrive in source order) and below the source's
//!   announced token count;
//! * the local expert ids: each `-1` or a local expert, at least one local per row (a token
//!   goes only where one of its experts is), and as many `(row, k)` pairs per expert as the
//!   source announced.
//!
//! A short or long part of any all-to-all-v is caught before this, by HCCL's count check on
//! every rank. What no receiver can see: changed payload bytes (bf16 rows, FP8 codes and
//! scales), changed router weights, and a change to the ids or source tokens that keeps them
//! consistent (two rows' tokens swapped within bounds and order is impossible, but an id moved
//! to another row of the same source still adds up). Those need a checksum, which neither
//! HCCL's collectives nor DeepEP carry.

use super::exchange::Counts;
use crate::error::{Error, Result};
use crate::runtime::comm::AllToAllV;

/// What rank `me` received, downloaded.
pub(super) struct Received<'a> {
    /// Rows from each source rank (in rows).
    pub(super) rows: &'a AllToAllV,
    /// `[N]` source token of each row.
    pub(super) src_tok: &'a [i32],
    /// `[N, K]` local expert ids.
    pub(super) ids: &'a [i32],
}

/// Checks `got` against the all-gathered `counts` (see the module docs); `l` local experts
/// per rank, `k` ids per row.
pub(super) fn check_received(
    counts: &Counts,
    (me, l, k): (usize, usize, usize),
    got: &Received<'_>,
) -> Result<()> {
    let layout = got.rows;
    for (s, (&count, &at)) in layout
        .recv_counts
        .iter()
        .zip(&layout.recv_displs)
        .enumerate()
    {
        let (count, at) = (count as usize, at as usize);
        let damaged = |what: String, expected: String| Error::Damaged {
            from: s,
            what,
            expected,
        };
        let tokens = counts.tokens(s);
        let mut prev: Option<i32> = None;
        let mut per_expert = vec![0usize; l];
        for row in at..at + count {
            let tok = got.src_tok[row];
            if tok < 0 || tok as usize >= tokens || prev.is_some_and(|p| tok <= p) {
                return Err(damaged(
                    format!(
                        "row {row} comes from token {tok}{}",
                        prev.map_or(String::new(), |p| format!(", after token {p}"))
                    ),
                    format!("increasing tokens below rank {s}'s {tokens}"),
                ));
            }
            prev = Some(tok);
            let ids = &got.ids[row * k..(row + 1) * k];
            let mut local = false;
            for &e in ids {
                match usize::try_from(e) {
                    Ok(e) if e < l => {
                        per_expert[e] += 1;
                        local = true;
                    }
                    _ if e == -1 => {}
                    _ => {
                        return Err(damaged(
                            format!("row {row} has expert id {e}"),
                            format!("-1 or a local expert id in 0..{l}"),
                        ));
                    }
                }
            }
            if !local {
                return Err(damaged(
                    format!("row {row} (token {tok}) chooses no expert of rank {me}: {ids:?}"),
                    "at least one local expert per row".to_string(),
                ));
            }
        }
        let announced: Vec<usize> = (0..l).map(|e| counts.pairs(s, me * l + e)).collect();
        if per_expert != announced {
            return Err(damaged(
                format!("ids choosing {per_expert:?} rows per local expert"),
                format!("{announced:?}, as rank {s} announced"),
            ));
        }
    }
    Ok(())
}

/// Checks the `(token, k)` pairs a low-latency dispatch brought rank `me`'s local experts
/// against the all-gathered `counts`: per expert and source rank, flat pair indices
/// `t·K + k` strictly increasing (rows arrive in the source's pair order) with `t` below the
/// source's announced token count. The number of pairs per source and expert is HCCL's to
/// check (every rank checks every count), and the payload carries no check (module docs).
pub(super) fn check_low_latency_received(
    counts: &Counts,
    k: usize,
    per_expert: &[AllToAllV],
    recv_pairs: &[i32],
) -> Result<()> {
    for (e, layout) in per_expert.iter().enumerate() {
        let parts = layout.recv_counts.iter().zip(&layout.recv_displs);
        for (s, (&n, &at)) in parts.enumerate() {
            let limit = counts.tokens(s) * k;
            let mut prev: Option<i32> = None;
            for &f in &recv_pairs[at as usize..(at + n) as usize] {
                if f < 0 || f as usize >= limit || prev.is_some_and(|p| f <= p) {
                    return Err(Error::Damaged {
                        from: s,
                        what: format!(
                            "local expert {e} receives pair {f}{}",
                            prev.map_or(String::new(), |p| format!(" after pair {p}"))
                        ),
                        expected: format!(
                            "increasing (token, k) pairs below rank {s}'s {} tokens × {k}",
                            counts.tokens(s)
                        ),
                    });
                }
                prev = Some(f);
            }
        }
    }
    Ok(())
}
