//! The cache write: RMSNorm of the latent, RoPE of the rope key, scatter into the cache
//! (`npu_kv_rmsnorm_rope_cache`), on our `mla_cache_write_*` kernels.

use half::bf16;

use super::cache::LatentCache;
use super::rope::{Positions, RopeTable};
use super::table::SlotMapping;
use crate::error::{Error, Result, elements};
use crate::kernels::Kernels;
use crate::kernels::mla::CacheWriteArgs;
use crate::runtime::{DeviceSlice, DeviceView, KernelArg, Stream};

/// What a cache write reads.
pub struct CacheWriteInput<'a> {
    /// `[tokens, latent + rope]`: `kv_a_proj_with_mqa`'s output, the raw latent then the
    /// unrotated rope key.
    pub kv: DeviceView<'a, bf16>,
    /// `[latent]`: `kv_a_layernorm.weight`.
    pub norm_weight: DeviceView<'a, bf16>,
    /// The RMSNorm epsilon (`rms_norm_eps`, 1e-6 for DeepSeek).
    pub eps: f32,
    /// The rotary tables.
    pub rope: &'a RopeTable,
    /// Each token's position.
    pub positions: &'a Positions,
    /// Each token's cache row.
    pub slots: &'a SlotMapping,
}

/// The checked sizes of a write, as the kernel's tiling takes them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CacheWriteShape {
    pub tokens: usize,
    pub latent: usize,
    pub rope: usize,
    pub slots: usize,
    pub positions: usize,
    pub eps: f32,
    pub row_bytes: usize,
}

/// Queues the write of `input`'s tokens into `cache` on `stream`: per token the latent
/// becomes `x / √(mean(x²) + eps) · weight`, the rope key is rotated in interleaved pairs at
/// the token's position, and the row (bf16, or the FP8 format quantized from the bf16 row)
/// goes to its slot. Padding tokens (negative slots) are skipped.
pub fn write_cache(
    kernels: &Kernels,
    stream: &Stream,
    input: &CacheWriteInput<'_>,
    cache: &mut LatentCache,
) -> Result<()> {
    let layout = *cache.layout();
    layout.check_same(input.slots.layout(), "a slot mapping")?;
    let tokens = input.positions.len();
    if input.slots.len() != tokens {
        return Err(Error::invalid(
            format!("{} slots for {tokens} token positions", input.slots.len()),
            "one slot per token",
        ));
    }
    if input.positions.table_positions() > input.rope.positions()
        || input.rope.pairs() * 2 != layout.rope
    {
        return Err(Error::invalid(
            format!(
                "a rope table of {} positions and {} pairs for positions checked against {} \
                 positions and a cache rope key of {}",
                input.rope.positions(),
                input.rope.pairs(),
                input.positions.table_positions(),
                layout.rope
            ),
            "the table the positions were checked against, with rope / 2 pairs",
        ));
    }
    let row = layout.row();
    if input.kv.len() != elements("kv rows", &[tokens, row])? {
        return Err(Error::invalid(
            format!("kv of {} elements for {tokens} tokens", input.kv.len()),
            format!("[tokens, latent + rope] = [{tokens}, {row}]"),
        ));
    }
    if input.norm_weight.len() != layout.latent {
        return Err(Error::invalid(
            format!(
                "a latent norm weight of {} elements",
                input.norm_weight.len()
            ),
            format!("[latent] = [{}]", layout.latent),
        ));
    }
    if !input.eps.is_finite() || input.eps < 0.0 {
        return Err(Error::invalid(
            format!("RMSNorm epsilon {}", input.eps),
            "a finite epsilon >= 0",
        ));
    }
    let shape = CacheWriteShape {
        tokens,
        latent: layout.latent,
        rope: layout.rope,
        slots: layout.slots(),
        positions: input.rope.positions(),
        eps: input.eps,
        row_bytes: layout.row_bytes(),
    };
    let fp8 = layout.kernel_fp8()?;
    kernels.mla_cache_write(
        stream,
        &shape,
        fp8,
        CacheWriteArgs {
            kv: KernelArg::buffer(&input.kv),
            gamma: KernelArg::buffer(&input.norm_weight),
            cos: KernelArg::buffer(&input.rope.cos),
            sin: KernelArg::buffer(&input.rope.sin),
            positions: KernelArg::buffer(&input.positions.positions),
            slots: KernelArg::buffer(&input.slots.slots),
            cache: KernelArg::buffer_mut(cache.data_mut()),
        },
    )
}
