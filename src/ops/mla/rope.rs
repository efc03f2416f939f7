//! The rotary tables on the device: cos and sin of every position for every pair, built once
//! from [`reference::mla::Rope`](crate::reference::mla::Rope) (YaRN ramp and amplitude folded
//! in), and the positions of a batch of tokens.

use crate::error::{Error, Result, elements};
use crate::reference::mla::Rope;
use crate::runtime::{DeviceBuffer, Stream};

/// `cos` and `sin` tables `[positions, pairs]` (f32) of one rotary configuration.
pub struct RopeTable {
    pub(crate) cos: DeviceBuffer<f32>,
    pub(crate) sin: DeviceBuffer<f32>,
    positions: usize,
    pairs: usize,
}

impl RopeTable {
    /// Tabulates `amplitude · cos(p · f_i)` and `amplitude · sin(p · f_i)` for positions
    /// `0..positions`, computed in f64 and rounded once to f32.
    pub fn new(stream: &Stream, rope: &Rope, positions: usize) -> Result<RopeTable> {
        let pairs = rope.inv_freq.len();
        let len = elements("rope table", &[positions, pairs])?;
        if len == 0 || positions > i32::MAX as usize {
            return Err(Error::invalid(
                format!("a rope table of {positions} positions and {pairs} pairs"),
                format!("at least one position (at most {}) and one pair", i32::MAX),
            ));
        }
        let (mut cos, mut sin) = (Vec::with_capacity(len), Vec::with_capacity(len));
        for p in 0..positions {
            for &f in &rope.inv_freq {
                let (s, c) = (p as f64 * f).sin_cos();
                cos.push((c * rope.amplitude) as f32);
                sin.push((s * rope.amplitude) as f32);
            }
        }
        Ok(RopeTable {
            cos: stream.upload(&cos)?,
            sin: stream.upload(&sin)?,
            positions,
            pairs,
        })
    }

    /// Positions tabulated.
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Rotated pairs per key: half the rope width.
    pub fn pairs(&self) -> usize {
        self.pairs
    }
}

/// The positions of a batch of tokens, checked against a [`RopeTable`].
pub struct Positions {
    pub(crate) positions: DeviceBuffer<i32>,
    tokens: usize,
    table_positions: usize,
}

impl Positions {
    /// Checks that every position is tabulated in `table` and uploads them on `stream`.
    pub fn new(stream: &Stream, table: &RopeTable, positions: &[usize]) -> Result<Positions> {
        if let Some((t, &p)) = positions
            .iter()
            .enumerate()
            .find(|(_, p)| **p >= table.positions())
        {
            return Err(Error::invalid(
                format!("position {p} of token {t}"),
                format!("a position below the rope table's {}", table.positions()),
            ));
        }
        let p32: Vec<i32> = positions.iter().map(|&p| p as i32).collect();
        Ok(Positions {
            positions: stream.upload(if p32.is_empty() { &[0] } else { &p32 })?,
            tokens: positions.len(),
            table_positions: table.positions(),
        })
    }

    /// Tokens.
    pub fn len(&self) -> usize {
        self.tokens
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }

    pub(crate) fn table_positions(&self) -> usize {
        self.table_positions
    }
}
