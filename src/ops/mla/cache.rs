//! The paged latent cache on the device: its layout (blocks, block size, row widths, format)
//! and its storage.

use crate::error::{Error, Result, elements};
use crate::reference::mla::{FP8_TILE, MlaConfig};
use crate::runtime::{DeviceBuffer, Stream};

/// How a cache row is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheFormat {
    /// `latent + rope` bf16 values (1,152 bytes for DeepSeek).
    Bf16,
    /// FlashMLA's "FP8 with scale" row: `latent` E4M3 codes, one power-of-two f32 scale per
    /// 128 of them, then `rope` bf16 values, never quantized (656 bytes for DeepSeek).
    Fp8,
    /// The Ascend vendor ops' split form (`aclnnMlaPrologV3WeightNz`,
    /// `aclnnFusedInferAttentionScoreV3`): all latent rows `[blocks, block_size, latent]` bf16,
    /// then all rope rows `[blocks, block_size, rope]` bf16, the rope key in the order the
    /// vendor prolog writes it (each rotated vector's even elements, then its odd ones).
    /// Written by [`vendor_prolog`](super::vendor_prolog), read by
    /// [`vendor_attend`](super::vendor_attend) only.
    AscendSplit,
}

/// The shape of a paged latent cache: `[blocks, block_size]` rows of a latent and a rope key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLayout {
    /// Blocks in the cache.
    pub blocks: usize,
    /// Tokens per block (64 as FlashMLA, 128 as the Ascend ops; any size from 1 works).
    pub block_size: usize,
    /// Latent width (`kv_lora_rank`, 512).
    pub latent: usize,
    /// Rope-key width (`qk_rope_head_dim`, 64).
    pub rope: usize,
    /// The row format.
    pub format: CacheFormat,
}

/// The largest latent the kernels keep in UB (a multiple of 128).
pub(crate) const MAX_LATENT: usize = 2048;
/// The largest rope key.
pub(crate) const MAX_ROPE: usize = 256;

impl CacheLayout {
    /// The layout for `cfg`'s rows (`kv_lora_rank` latent, `qk_rope_head_dim` rope key).
    ///
    /// ```
    /// use ascend_npu::ops::mla::{CacheFormat, CacheLayout};
    /// use ascend_npu::reference::mla::MlaConfig;
    /// let cfg = MlaConfig::deepseek_v3();
    /// assert_eq!(CacheLayout::for_config(&cfg, 8, 64, CacheFormat::Bf16).row_bytes(), 1152);
    /// assert_eq!(CacheLayout::for_config(&cfg, 8, 64, CacheFormat::Fp8).row_bytes(), 656);
    /// ```
    pub fn for_config(
        cfg: &MlaConfig,
        blocks: usize,
        block_size: usize,
        format: CacheFormat,
    ) -> CacheLayout {
        CacheLayout {
            blocks,
            block_size,
            latent: cfg.kv_lora_rank,
            rope: cfg.qk_rope_head_dim,
            format,
        }
    }

    /// Values per row: `latent + rope` (576).
    pub fn row(&self) -> usize {
        self.latent + self.rope
    }

    /// Bytes per row: 1,152 (bf16) or 656 (FP8) for DeepSeek.
    pub fn row_bytes(&self) -> usize {
        match self.format {
            CacheFormat::Bf16 | CacheFormat::AscendSplit => 2 * self.row(),
            CacheFormat::Fp8 => self.latent + 4 * self.latent / FP8_TILE + 2 * self.rope,
        }
    }

    /// Rows (token slots) in the cache: `blocks · block_size`.
    pub fn slots(&self) -> usize {
        self.blocks.saturating_mul(self.block_size)
    }

    /// Checks the widths the kernels support and that the cache's size fits.
    pub(crate) fn validate(&self) -> Result<()> {
        let latent_step = match self.format {
            CacheFormat::Bf16 | CacheFormat::AscendSplit => 16,
            CacheFormat::Fp8 => FP8_TILE,
        };
        if self.latent == 0 || self.latent % latent_step != 0 || self.latent > MAX_LATENT {
            return Err(Error::invalid(
                format!(
                    "an MLA cache latent of {} ({:?} rows)",
                    self.latent, self.format
                ),
                format!(
                    "a latent width that is a positive multiple of {latent_step} and at most \
                     {MAX_LATENT} (512 for DeepSeek)"
                ),
            ));
        }
        if self.rope == 0 || self.rope % 16 != 0 || self.rope > MAX_ROPE {
            return Err(Error::invalid(
                format!("an MLA cache rope key of {}", self.rope),
                format!("a positive multiple of 16 of at most {MAX_ROPE} (64 for DeepSeek)"),
            ));
        }
        if self.blocks == 0 || self.block_size == 0 {
            return Err(Error::invalid(
                format!(
                    "an MLA cache of {} blocks of {} tokens",
                    self.blocks, self.block_size
                ),
                "at least one block of at least one token",
            ));
        }
        let slots = elements("MLA cache slots", &[self.blocks, self.block_size])?;
        elements("MLA cache bytes", &[slots, self.row_bytes()])?;
        if slots > i32::MAX as usize {
            return Err(Error::invalid(
                format!("an MLA cache of {slots} slots"),
                format!("at most {} slots, addressable by int32 slot ids", i32::MAX),
            ));
        }
        Ok(())
    }

    /// Whether our kernels read FP8 rows; an error for the vendor ops' AscendSplit form,
    /// which only the vendor path reads and writes.
    pub(crate) fn kernel_fp8(&self) -> Result<bool> {
        match self.format {
            CacheFormat::Bf16 => Ok(false),
            CacheFormat::Fp8 => Ok(true),
            CacheFormat::AscendSplit => Err(Error::invalid(
                "an AscendSplit cache given to our kernels",
                "a Bf16 or Fp8 cache (AscendSplit is read and written by the vendor path, ops::mla::vendor_*)",
            )),
        }
    }

    /// The error for a cache whose layout differs from what `what` was built for.
    pub(crate) fn check_same(&self, other: &CacheLayout, what: &str) -> Result<()> {
        if (self.blocks, self.block_size) != (other.blocks, other.block_size) {
            return Err(Error::invalid(
                format!(
                    "{what} built for {} blocks of {} tokens used with a cache of {} blocks of {}",
                    other.blocks, other.block_size, self.blocks, self.block_size
                ),
                "the cache it was built for",
            ));
        }
        Ok(())
    }
}

/// A paged latent cache in device memory: `[blocks, block_size]` rows of
/// [`CacheLayout::row_bytes`] bytes. Created zeroed; [`write_cache`](super::write_cache) fills
/// rows, [`decode`](super::decode) reads them.
pub struct LatentCache {
    layout: CacheLayout,
    data: DeviceBuffer<u8>,
}

impl LatentCache {
    /// Allocates a zeroed cache of `layout` on `stream`'s device.
    pub fn new(stream: &Stream, layout: CacheLayout) -> Result<LatentCache> {
        layout.validate()?;
        let data = stream.alloc_zeroed::<u8>(layout.slots() * layout.row_bytes())?;
        Ok(LatentCache { layout, data })
    }

    /// The layout.
    pub fn layout(&self) -> &CacheLayout {
        &self.layout
    }

    /// The rows' bytes, `[blocks, block_size, row_bytes]`.
    pub fn data(&self) -> &DeviceBuffer<u8> {
        &self.data
    }

    /// The rows' bytes, to fill from elsewhere (an engine's own writer, a test's garbage).
    pub fn data_mut(&mut self) -> &mut DeviceBuffer<u8> {
        &mut self.data
    }
}
