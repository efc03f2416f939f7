//! Streams: in-order queues of device work.

use std::sync::{Arc, Mutex, Weak};

use ascend_sys::aclrtStream;

use super::device::Device;
use super::drop_errors;
use super::event::Event;
use super::pool::StreamMemory;
use super::status::StatusWords;
use crate::checked_call::c_call;
use crate::error::Result;

/// An in-order queue of work on one device. Cloning is cheap and shares the stream; the stream
/// is destroyed (after its work completes) when the last clone and every buffer allocated on it
/// are gone.
///
/// Allocations belong to a stream, but any stream of the device may use them: every buffer
/// tracks the streams that used it, an operation is ordered after conflicting uses on other
/// streams, and a dropped buffer is freed only after all of its uses. [`Stream::wait`] orders
/// streams explicitly, for work the runtime cannot see (raw handles).
#[derive(Clone)]
pub struct Stream {
    inner: Arc<StreamInner>,
}

struct StreamInner {
    device: Device,
    raw: aclrtStream,
    /// The stream's caching pool and constants.
    memory: StreamMemory,
    /// Status words of launches not yet read (see `runtime::status`).
    status: StatusWords,
}

// SAFETY: a stream handle belongs to the process-wide runtime and is usable from any thread
// once the device's context is bound, which every method does first.
unsafe impl Send for StreamInner {}
// SAFETY: methods take &self and only make thread-safe runtime calls with the handle.
unsafe impl Sync for StreamInner {}

/// Every stream of the process by device id (dead entries are dropped when a stream is made),
/// so that an allocation finding its device full can ask the device's other streams for their
/// idle pool blocks (see `Stream::malloc`). Weak: the registry keeps no stream alive.
static LIVE: Mutex<Vec<(i32, Weak<StreamInner>)>> = Mutex::new(Vec::new());

impl Stream {
    pub(crate) fn new(device: &Device) -> Result<Stream> {
        device.inner.bind()?;
        let api = device.inner.api;
        let mut raw: aclrtStream = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; the device's context is bound.
        unsafe { c_call!(api, aclrtCreateStream(&mut raw)) }?;
        let stream = Stream {
            inner: Arc::new(StreamInner {
                device: device.clone(),
                raw,
                memory: StreamMemory::default(),
                status: StatusWords::default(),
            }),
        };
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|(_, stream)| stream.strong_count() > 0);
        live.push((device.inner.id, Arc::downgrade(&stream.inner)));
        Ok(stream)
    }

    /// The other live streams of this stream's device, whichever [`Device`] handle made them.
    pub(crate) fn others_on_device(&self) -> Vec<Stream> {
        let id = self.inner.device.inner.id;
        let live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        live.iter()
            .filter(|(device, _)| *device == id)
            .filter_map(|(_, stream)| stream.upgrade())
            .filter(|inner| !Arc::ptr_eq(inner, &self.inner))
            .map(|inner| Stream { inner })
            .collect()
    }

    /// The device this stream runs on.
    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// Blocks until all queued work has completed; then frees buffers whose last use it was.
    ///
    /// # Errors
    /// Besides a failing runtime call: bad input a kernel found in device memory since the last
    /// synchronisation (see the operators' docs and `docs/RELIABILITY.md`), for example decreasing FP8 GEMM group offsets or NaN given to device quantization.
    /// The stream stays usable.
    pub fn synchronize(&self) -> Result<()> {
        self.bind()?;
        let mark = self.inner.status.mark();
        let api = self.inner.device.inner.api;
        // SAFETY: live stream handle of the bound device.
        unsafe { c_call!(api, aclrtSynchronizeStream(self.inner.raw)) }?;
        self.inner.device.inner.reclaim();
        self.inner.status.take(&self.inner.device.inner, mark)
    }

    pub(crate) fn status_words(&self) -> &StatusWords {
        &self.inner.status
    }

    /// Whether all queued work has completed, without blocking.
    pub fn is_idle(&self) -> Result<bool> {
        self.bind()?;
        let api = self.inner.device.inner.api;
        let mut status = ascend_sys::ACL_STREAM_STATUS_NOT_READY;
        // SAFETY: live stream handle; `status` is a valid out-pointer.
        unsafe { c_call!(api, aclrtStreamQuery(self.inner.raw, &mut status)) }?;
        Ok(status == ascend_sys::ACL_STREAM_STATUS_COMPLETE)
    }

    /// Makes work queued on this stream from now on wait until `event` completes.
    pub fn wait(&self, event: &Event) -> Result<()> {
        self.bind()?;
        let api = self.inner.device.inner.api;
        // SAFETY: both handles are live; the runtime orders the streams.
        unsafe { c_call!(api, aclrtStreamWaitEvent(self.inner.raw, event.raw())) }
    }

    /// Creates an event and records it at the current end of this stream.
    pub fn record_event(&self) -> Result<Event> {
        let event = self.inner.device.new_event()?;
        event.record(self)?;
        Ok(event)
    }

    /// Makes work queued on this stream from now on wait for the work queued so far on `other`,
    /// with a pooled event.
    pub(crate) fn wait_for_current_end(&self, other: &Stream) -> Result<()> {
        let device = &self.inner.device.inner;
        self.bind()?;
        let event = device.events.take(device.api)?;
        let result = event.record(device.api, other.raw()).and_then(|()| {
            // SAFETY: both handles are live and belong to the bound device.
            unsafe { c_call!(device.api, aclrtStreamWaitEvent(self.inner.raw, event.0)) }
        });
        device.events.retire(event);
        result
    }

    /// The raw `aclrtStream`, for calling CANN functions this crate does not wrap.
    ///
    /// The handle stays valid while this `Stream` (or a clone) lives. Work queued on it through
    /// the raw handle is not use-tracked: order it yourself with events, and do not destroy
    /// the stream.
    pub fn as_raw(&self) -> aclrtStream {
        self.inner.raw
    }

    pub(crate) fn raw(&self) -> aclrtStream {
        self.inner.raw
    }

    pub(crate) fn memory(&self) -> &StreamMemory {
        &self.inner.memory
    }

    /// An identity of the stream, unique while it lives.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Whether both handles share one stream.
    pub(crate) fn same_as(&self, other: &Stream) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn bind(&self) -> Result<()> {
        self.inner.device.inner.bind()
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("device", &self.inner.device.id())
            .field("raw", &self.inner.raw)
            .finish()
    }
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let device = &self.device.inner;
        let result = device.bind().and_then(|()| {
            let api = device.api;
            // The runtime asks for a synchronised stream before destruction.
            // SAFETY: live stream handle of the bound device.
            let synced = unsafe { c_call!(api, aclrtSynchronizeStream(self.raw)) };
            if synced.is_ok() {
                Stream::release_memory(&self.memory, device);
            } // else the cached memory may still be in use: leaked, which is sound.
            // SAFETY: last owner of a live stream handle, destroyed once.
            unsafe { c_call!(api, aclrtDestroyStream(self.raw)) }?;
            synced
        });
        if let Err(e) = result {
            drop_errors::record(e);
        }
        for e in self.status.drain(device) {
            drop_errors::record(e);
        }
        device.reclaim();
    }
}
