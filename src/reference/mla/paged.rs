//! A paged latent cache as FlashMLA and the Ascend ops address it: `[blocks, block_size,
//! row]` storage, a block table per sequence and per-sequence lengths. Only the slots below a
//! sequence's length are read, so garbage (NaN, huge values) elsewhere never leaks.

use super::attention::{AttentionOutput, Mqa, mqa_attention};
use super::error::{MlaError, Result, product};

/// A read-only paged cache: `data [num_blocks, block_size, row]`.
#[derive(Debug, Clone, Copy)]
pub struct PagedCache<'a> {
    /// The storage.
    pub data: &'a [f64],
    /// Tokens per block (64 in FlashMLA, 128 on Ascend).
    pub block_size: usize,
    /// Values per token (576 for DeepSeek: latent then rope key).
    pub row: usize,
}

/// The sequences of a batch in a [`PagedCache`].
#[derive(Debug, Clone, Copy)]
pub struct BlockTable<'a> {
    /// `[batch, max_blocks]`: block ids; entries past a sequence's last block are ignored.
    pub table: &'a [i32],
    /// Columns of `table`.
    pub max_blocks: usize,
    /// `[batch]` tokens cached per sequence.
    pub seq_lens: &'a [i32],
}

impl PagedCache<'_> {
    fn blocks(&self) -> Result<usize> {
        let per_block = product("a cache block", &[self.block_size, self.row])?;
        if per_block == 0 || self.data.len() % per_block != 0 {
            return Err(MlaError::Paged(format!(
                "the storage holds {} values, block_size {} and row {}; expected a positive \
                 whole number of [block_size, row] blocks",
                self.data.len(),
                self.block_size,
                self.row
            )));
        }
        Ok(self.data.len() / per_block)
    }

    /// The `[seq_len, row]` rows of sequence `b`, gathered through the block table.
    pub fn gather(&self, tables: &BlockTable<'_>, b: usize) -> Result<Vec<f64>> {
        let blocks = self.blocks()?;
        let batch = tables.seq_lens.len();
        if b >= batch || product("block table", &[batch, tables.max_blocks])? != tables.table.len()
        {
            return Err(MlaError::Paged(format!(
                "sequence {b} of {batch}, block table of {} entries; expected b < batch and a \
                 [batch, max_blocks] = [{batch}, {}] table",
                tables.table.len(),
                tables.max_blocks
            )));
        }
        let len = usize::try_from(tables.seq_lens[b]).map_err(|_| {
            MlaError::Paged(format!(
                "sequence {b} has length {}; expected a length >= 0",
                tables.seq_lens[b]
            ))
        })?;
        let needed = len.div_ceil(self.block_size);
        if needed > tables.max_blocks {
            return Err(MlaError::Paged(format!(
                "sequence {b} has {len} tokens, which need {needed} blocks of {}; expected at \
                 most max_blocks = {} blocks",
                self.block_size, tables.max_blocks
            )));
        }
        let mut rows = Vec::with_capacity(len * self.row);
        for t in 0..len {
            let entry = tables.table[b * tables.max_blocks + t / self.block_size];
            let block = usize::try_from(entry).ok().filter(|&k| k < blocks).ok_or_else(|| {
                MlaError::Paged(format!(
                    "block table entry [{b}, {}] is {entry}; expected a block id in 0..{blocks}",
                    t / self.block_size
                ))
            })?;
            let start = (block * self.block_size + t % self.block_size) * self.row;
            rows.extend_from_slice(&self.data[start..start + self.row]);
        }
        Ok(rows)
    }
}

/// FlashMLA's paged dense decode: for each sequence `b`, [`mqa_attention`] of `q[b]` (`[s_q,
/// H, row]`, so `q` is `[batch, s_q, H, row]`) over its gathered rows, values the first `dv`
/// columns.
pub fn paged_mqa_decode(
    mqa: &Mqa,
    q: &[f64],
    cache: &PagedCache<'_>,
    tables: &BlockTable<'_>,
) -> Result<Vec<AttentionOutput>> {
    let heads = mqa.heads;
    if mqa.d != cache.row {
        return Err(MlaError::Paged(format!(
            "attention width d = {} against cache rows of {}; expected the same width",
            mqa.d, cache.row
        )));
    }
    let batch = tables.seq_lens.len();
    if batch == 0 {
        return Ok(Vec::new());
    }
    let per_seq = q.len() / batch;
    if q.len() % batch != 0 || per_seq % product("q", &[heads.max(1), cache.row.max(1)])? != 0 {
        return Err(MlaError::Length {
            what: "q",
            expected: 0,
            actual: q.len(),
            shape: format!("[batch = {batch}, s_q, H = {heads}, row = {}]", cache.row),
        });
    }
    (0..batch)
        .map(|b| {
            let rows = cache.gather(tables, b)?;
            mqa_attention(mqa, &q[b * per_seq..(b + 1) * per_seq], &rows)
        })
        .collect()
}
