//! Tiling structs live in device memory; each distinct tiling is uploaded once and reused, so a
//! launch never waits for a host-to-device copy.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::Result;
use crate::runtime::{Device, DeviceBuffer, DeviceSlice, KernelArg, Stream};

pub(crate) struct TilingCache {
    /// The cache's buffers belong to this stream; it never runs kernels.
    stream: Stream,
    buffers: Mutex<HashMap<Vec<u8>, DeviceBuffer<u8>>>,
    /// Streams whose kernels read the tilings; the buffers are freed only after their work.
    readers: Mutex<Vec<Stream>>,
}

impl TilingCache {
    pub(crate) fn new(device: &Device) -> Result<Self> {
        Ok(TilingCache {
            stream: device.new_stream()?,
            buffers: Mutex::new(HashMap::new()),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// A kernel argument pointing at `tiling`'s bytes in device memory, uploaded the first
    /// time, for a launch on `reader`. The bytes stay alive as long as the cache (the owning
    /// `Kernels`) and, after it, until `reader`'s work queued so far is done.
    pub(crate) fn arg(&self, tiling: &[u8], reader: &Stream) -> Result<KernelArg<'static>> {
        {
            let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            if !readers.iter().any(|s| s.same_as(reader)) {
                readers.push(reader.clone());
            }
        }
        let mut buffers = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let address = match buffers.get(tiling) {
            Some(buffer) => buffer.device_ptr(),
            None => {
                let buffer = self.stream.upload(tiling)?;
                let address = buffer.device_ptr();
                buffers.insert(tiling.to_vec(), buffer);
                address
            }
        };
        Ok(KernelArg::owned_by_crate(
            address,
            self.stream.device().id(),
            tiling.len(),
        ))
    }
}

impl Drop for TilingCache {
    fn drop(&mut self) {
        // Kernels on the readers' streams may still read the tilings: order the cache's stream,
        // which frees the buffers, after their work. (A device-wide synchronize would block and
        // would collect other streams' errors.)
        let readers = std::mem::take(self.readers.get_mut().unwrap_or_else(|p| p.into_inner()));
        for reader in readers {
            let ordered = reader
                .record_event()
                .and_then(|event| self.stream.wait(&event));
            if let Err(e) = ordered {
                crate::runtime::record_drop_error(e);
            }
        }
    }
}
