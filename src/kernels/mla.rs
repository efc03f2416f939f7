//! The MLA kernels (`kernels-ascendc/mla_*.cpp`): the latent-cache write and the absorbed
//! decode. `ops::mla` validates every input once and calls these launchers; they only plan the
//! tiling and launch.

use bytemuck::{Pod, Zeroable};

use super::Kernels;
use crate::error::{Error, Result};
use crate::runtime::{Kernel, KernelArg, KernelBinary, Stream};

/// Mirrors `MlaCacheWriteTiling` of `kernels-ascendc/tiling/mla_cache_write_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MlaCacheWriteTiling {
    /// Rows of `kv`.
    pub tokens: u32,
    /// Latent width (512 for DeepSeek).
    pub latent: u32,
    /// Rope-key width (64).
    pub rope: u32,
    /// Rows of the cache (`blocks · block_size`).
    pub slots: u32,
    /// Rows of the cos / sin tables.
    pub positions: u32,
    /// Tokens per launched block.
    pub tokens_per_block: u32,
    /// The f32 bits of the RMSNorm epsilon.
    pub eps_bits: u32,
    /// Bytes per cache row.
    pub row_bytes: u32,
}

/// The MLA kernels of one binary.
pub(crate) struct MlaKernels {
    /// `[bf16, fp8]` cache formats.
    write: [Kernel; 2],
}

impl MlaKernels {
    pub(crate) fn load(binary: &KernelBinary) -> Result<Self> {
        let kernel = |name: &str| super::manifest::load(binary, name);
        Ok(MlaKernels {
            write: [
                kernel("mla_cache_write_bf16")?,
                kernel("mla_cache_write_fp8")?,
            ],
        })
    }
}

/// The device buffers of one cache write, already validated by `ops::mla`.
pub(crate) struct CacheWriteArgs<'a> {
    pub kv: KernelArg<'a>,
    pub gamma: KernelArg<'a>,
    pub cos: KernelArg<'a>,
    pub sin: KernelArg<'a>,
    pub positions: KernelArg<'a>,
    pub slots: KernelArg<'a>,
    pub cache: KernelArg<'a>,
}

fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(format!("{what} = {v}"), "at most u32::MAX"))
}

impl MlaCacheWriteTiling {
    /// Sizes in elements; `fp8` picks the 656-byte row format. Spreads the tokens over at most
    /// `cores` blocks; returns the tiling and the block count.
    pub(crate) fn plan(
        shape: &crate::ops::mla::CacheWriteShape,
        cores: u32,
    ) -> Result<(MlaCacheWriteTiling, u32)> {
        let tokens = u32_of("tokens", shape.tokens)?;
        let blocks = tokens.clamp(1, cores.max(1));
        let tokens_per_block = tokens.div_ceil(blocks).max(1);
        let blocks = tokens.div_ceil(tokens_per_block);
        Ok((
            MlaCacheWriteTiling {
                tokens,
                latent: u32_of("latent", shape.latent)?,
                rope: u32_of("rope", shape.rope)?,
                slots: u32_of("cache slots", shape.slots)?,
                positions: u32_of("rope positions", shape.positions)?,
                tokens_per_block,
                eps_bits: shape.eps.to_bits(),
                row_bytes: u32_of("row bytes", shape.row_bytes)?,
            },
            blocks,
        ))
    }
}

impl Kernels {
    /// Launches the cache write (`fp8`: the 656-byte format) with a validated shape.
    pub(crate) fn mla_cache_write(
        &self,
        stream: &Stream,
        shape: &crate::ops::mla::CacheWriteShape,
        fp8: bool,
        args: CacheWriteArgs<'_>,
    ) -> Result<()> {
        if shape.tokens == 0 {
            return Ok(());
        }
        let (tiling, blocks) = MlaCacheWriteTiling::plan(shape, self.inner.vector_cores)?;
        let tiling = self
            .inner
            .tilings
            .arg(bytemuck::bytes_of(&tiling), stream)?;
        stream.launch_trusted(
            &self.inner.mla.write[usize::from(fp8)],
            blocks,
            &[
                args.kv,
                args.gamma,
                args.cos,
                args.sin,
                args.positions,
                args.slots,
                args.cache,
                tiling,
            ],
        )
    }
}
