//! SwiGLU of an expert: `out = silu(gate) * up`, elementwise.

use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};

use super::Kernels;
use crate::error::{Error, Result};
use crate::runtime::{DeviceSlice, DeviceSliceMut, KernelArg, Stream};

/// Mirrors `SwigluTiling` of `kernels-ascendc/tiling/swiglu_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct SwigluTiling {
    /// Elements in gate, up and out.
    pub total_len: u32,
    /// Elements per block.
    pub block_len: u32,
    /// Elements per UB tile: a non-zero multiple of 64.
    pub tile_len: u32,
    /// Zero.
    pub reserved: u32,
}

/// Element types the SwiGLU kernel computes in (fp32 inside for every type).
pub trait SwigluElement: Pod + sealed::Sealed {
    /// Index of the kernel in `Kernels::swiglu`.
    #[doc(hidden)]
    const INDEX: usize;
    /// The largest tile the kernel's UB budget allows for this type.
    #[doc(hidden)]
    const MAX_TILE: u32;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

// UB budget per block is 184 KiB: 28 B per element of tile for fp32, 20 B for 16-bit types
// (double-buffered gate/up/out plus fp32 scratch), rounded down to a multiple of 64.
impl SwigluElement for f32 {
    const INDEX: usize = 0;
    const MAX_TILE: u32 = 6720;
}
impl SwigluElement for f16 {
    const INDEX: usize = 1;
    const MAX_TILE: u32 = 9408;
}
impl SwigluElement for bf16 {
    const INDEX: usize = 2;
    const MAX_TILE: u32 = 9408;
}

/// Elements below which another block costs more than it saves.
const MIN_BLOCK_LEN: usize = 1024;
/// Tiles this long keep two DMA transfers in flight while staying well inside UB.
const PREFERRED_TILE: u32 = 4096;

impl SwigluTiling {
    /// The tiling for `len` elements of `T` over at most `cores` vector cores.
    pub fn plan<T: SwigluElement>(len: usize, cores: u32) -> Result<(SwigluTiling, u32)> {
        let total_len = u32::try_from(len).map_err(|_| {
            Error::invalid(
                format!("SwiGLU over {len} elements"),
                "at most u32::MAX elements",
            )
        })?;
        let blocks = len.div_ceil(MIN_BLOCK_LEN).clamp(1, cores.max(1) as usize) as u32;
        // At least 1, so an empty input plans 0 blocks instead of dividing by zero below.
        let block_len = total_len.div_ceil(blocks).max(1);
        // Capped before rounding: a block near u32::MAX would overflow the rounding (found by
        // the `tiling` fuzz target). PREFERRED_TILE is a multiple of 64, so this is the same
        // tile as rounding first.
        let tile_len = block_len
            .min(PREFERRED_TILE)
            .next_multiple_of(64)
            .min(T::MAX_TILE);
        // Blocks past the end would do nothing; don't start them.
        let blocks = total_len.div_ceil(block_len);
        Ok((
            SwigluTiling {
                total_len,
                block_len,
                tile_len,
                reserved: 0,
            },
            blocks,
        ))
    }
}

/// Queues `out = silu(gate) * up` on `stream` (all three of the same length).
pub fn swiglu<T: SwigluElement>(
    kernels: &Kernels,
    stream: &Stream,
    gate: &impl DeviceSlice<T>,
    up: &impl DeviceSlice<T>,
    out: &mut impl DeviceSliceMut<T>,
) -> Result<()> {
    if gate.len() != up.len() || gate.len() != out.len() {
        return Err(Error::invalid(
            format!(
                "SwiGLU of gate {} / up {} / out {} elements",
                gate.len(),
                up.len(),
                out.len()
            ),
            "gate, up and out of the same length",
        ));
    }
    if gate.is_empty() {
        return Ok(());
    }
    let (tiling, blocks) = SwigluTiling::plan::<T>(gate.len(), kernels.inner.vector_cores)?;
    let tiling = kernels
        .inner
        .tilings
        .arg(bytemuck::bytes_of(&tiling), stream)?;
    stream.launch_trusted(
        &kernels.inner.swiglu[T::INDEX],
        blocks,
        &[
            KernelArg::buffer(gate),
            KernelArg::buffer(up),
            KernelArg::buffer_mut(out),
            tiling,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_every_element_with_legal_tiles() {
        for len in [
            1usize,
            63,
            64,
            65,
            1000,
            1024,
            1025,
            48 * 1024 + 1,
            10_000_000,
        ] {
            for cores in [1u32, 40, 48] {
                let (t, blocks) = SwigluTiling::plan::<f32>(len, cores).unwrap();
                assert!(blocks >= 1 && blocks <= cores);
                assert!(
                    u64::from(t.block_len) * u64::from(blocks) >= len as u64,
                    "{len} {cores}"
                );
                assert!(
                    u64::from(t.block_len) * u64::from(blocks - 1) < len as u64,
                    "idle block"
                );
                assert!(t.tile_len > 0 && t.tile_len % 64 == 0 && t.tile_len <= f32::MAX_TILE);
            }
        }
    }
}
