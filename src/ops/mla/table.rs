//! Where tokens live in a [`LatentCache`](super::LatentCache): the block table and sequence
//! lengths decode reads, and the slot mapping the cache write scatters by. Both are built from
//! host values, checked once against the cache layout, and uploaded; the kernels trust them.

use super::cache::CacheLayout;
use crate::error::{Error, Result, elements};
use crate::runtime::{DeviceBuffer, Stream};

/// The host side of a [`BlockTable`]: FlashMLA's `block_table [batch, max_blocks]` and
/// `cache_seqlens [batch]`.
#[derive(Clone, Copy, Debug)]
pub struct BlockTableSpec<'a> {
    /// `[batch, max_blocks]` block ids. Entries past a sequence's last used block are never
    /// read and may hold anything (FlashMLA's tests fill them with 2147480000).
    pub table: &'a [i32],
    /// Columns of `table`.
    pub max_blocks: usize,
    /// `[batch]` tokens cached per sequence (0 is allowed: its output is 0, its LSE `+∞`).
    pub seq_lens: &'a [usize],
}

/// A checked block table and sequence lengths on the device.
pub struct BlockTable {
    table: DeviceBuffer<i32>,
    seq_lens: DeviceBuffer<i32>,
    lens: Vec<usize>,
    /// The host copy of the table, for the slots of new tokens.
    host: Vec<i32>,
    max_blocks: usize,
    layout: CacheLayout,
}

impl BlockTable {
    /// Checks `spec` against `layout` and uploads it on `stream`: every sequence fits in
    /// `max_blocks` blocks, and every block id a sequence uses is a block of the cache.
    pub fn new(stream: &Stream, layout: &CacheLayout, spec: BlockTableSpec<'_>) -> Result<Self> {
        layout.validate()?;
        let batch = spec.seq_lens.len();
        if spec.table.len() != elements("block table", &[batch, spec.max_blocks])? {
            return Err(Error::invalid(
                format!(
                    "a block table of {} entries for {batch} sequences of max_blocks {}",
                    spec.table.len(),
                    spec.max_blocks
                ),
                format!("[batch, max_blocks] = {} entries", batch * spec.max_blocks),
            ));
        }
        for (b, &len) in spec.seq_lens.iter().enumerate() {
            let needed = len.div_ceil(layout.block_size);
            if needed > spec.max_blocks || len > i32::MAX as usize {
                return Err(Error::invalid(
                    format!(
                        "sequence {b} of {len} tokens, which needs {needed} blocks of {}",
                        layout.block_size
                    ),
                    format!(
                        "at most max_blocks = {} blocks ({} tokens) per sequence",
                        spec.max_blocks,
                        spec.max_blocks * layout.block_size
                    ),
                ));
            }
            for j in 0..needed {
                let id = spec.table[b * spec.max_blocks + j];
                if id < 0 || id as usize >= layout.blocks {
                    return Err(Error::invalid(
                        format!(
                            "block table entry [{b}, {j}] = {id} (used by sequence {b} of {len} tokens)"
                        ),
                        format!("a block id in 0..{}", layout.blocks),
                    ));
                }
            }
        }
        let lens32: Vec<i32> = spec.seq_lens.iter().map(|&l| l as i32).collect();
        Ok(BlockTable {
            // An empty table still needs an address to pass: one unused entry.
            table: stream.upload(if spec.table.is_empty() {
                &[0]
            } else {
                spec.table
            })?,
            seq_lens: stream.upload(if lens32.is_empty() { &[0] } else { &lens32 })?,
            lens: spec.seq_lens.to_vec(),
            host: spec.table.to_vec(),
            max_blocks: spec.max_blocks,
            layout: *layout,
        })
    }

    /// Sequences in the batch.
    pub fn batch(&self) -> usize {
        self.lens.len()
    }

    /// Tokens cached per sequence.
    pub fn seq_lens(&self) -> &[usize] {
        &self.lens
    }

    /// Columns of the table.
    pub fn max_blocks(&self) -> usize {
        self.max_blocks
    }

    /// The layout the table was checked against.
    pub fn layout(&self) -> &CacheLayout {
        &self.layout
    }

    /// The cache row of token `t` of sequence `b`, for `t` below its length (checked by
    /// [`BlockTable::new`]).
    pub(crate) fn slot(&self, b: usize, t: usize) -> usize {
        let bs = self.layout.block_size;
        self.host[b * self.max_blocks + t / bs] as usize * bs + t % bs
    }

    /// The `[batch, max_blocks]` int32 table on the device (one unused entry when empty).
    pub fn device_table(&self) -> &DeviceBuffer<i32> {
        &self.table
    }

    /// The `[batch]` int32 lengths on the device (one unused entry when empty).
    pub fn device_seq_lens(&self) -> &DeviceBuffer<i32> {
        &self.seq_lens
    }
}

/// For each token of a cache write, its cache row: `block · block_size + offset`, or a
/// negative value for a padding token that is not written (vLLM's `slot_mapping`).
pub struct SlotMapping {
    pub(crate) slots: DeviceBuffer<i32>,
    tokens: usize,
    layout: CacheLayout,
}

impl SlotMapping {
    /// Checks `slots` against `layout` (each below `blocks · block_size`, no slot twice) and
    /// uploads them on `stream`.
    pub fn new(stream: &Stream, layout: &CacheLayout, slots: &[i32]) -> Result<Self> {
        layout.validate()?;
        let mut seen = std::collections::HashSet::new();
        for (t, &s) in slots.iter().enumerate() {
            if s >= 0 && s as usize >= layout.slots() {
                return Err(Error::invalid(
                    format!("slot {s} for token {t}"),
                    format!(
                        "a slot below blocks · block_size = {} · {} = {} (negative: padding)",
                        layout.blocks,
                        layout.block_size,
                        layout.slots()
                    ),
                ));
            }
            if s >= 0 && !seen.insert(s) {
                return Err(Error::invalid(
                    format!("slot {s} given to token {t} and to an earlier token"),
                    "each cache slot written by at most one token of a write",
                ));
            }
        }
        Ok(SlotMapping {
            slots: stream.upload(if slots.is_empty() { &[-1] } else { slots })?,
            tokens: slots.len(),
            layout: *layout,
        })
    }

    /// Tokens mapped.
    pub fn len(&self) -> usize {
        self.tokens
    }

    /// Whether no token is mapped.
    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }

    /// The layout the slots were checked against.
    pub fn layout(&self) -> &CacheLayout {
        &self.layout
    }
}
