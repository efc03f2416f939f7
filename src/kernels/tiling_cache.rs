//! Tiling structs live in device memory; each distinct tiling is uploaded once per stream that
//! reads it and reused, so a launch never waits for a host-to-device copy.
//!
//! The copies live in the reading stream's own constant cache (`Stream::constant`): bounded
//! (least recently used out), freed in that stream's order, and holding no stream alive, not
//! even the reader's. Each is read only on its own stream, so reuse needs no event.

use crate::error::Result;
use crate::runtime::{Device, KernelArg, Stream};

pub(crate) struct TilingCache;

impl TilingCache {
    pub(crate) fn new(_device: &Device) -> Result<Self> {
        Ok(TilingCache)
    }

    /// A kernel argument pointing at `tiling`'s bytes in device memory, for a launch on
    /// `reader`: valid for the work queued on `reader` until the tiling is evicted, which frees
    /// it after that work.
    pub(crate) fn arg(&self, tiling: &[u8], reader: &Stream) -> Result<KernelArg<'static>> {
        let address = reader.constant(tiling)?;
        Ok(KernelArg::owned_by_crate(
            address,
            reader.device().id(),
            tiling.len(),
        ))
    }
}
