//! Events: points in a stream's work that other streams and the host can wait for and time.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ascend_sys::{Api, aclrtEvent};

use super::device::Device;
use super::drop_errors;
use super::stream::Stream;
use crate::checked_call::c_call;
use crate::error::{Error, Result};

/// An event of one device. Record it on a stream, then wait for it from the host
/// ([`Event::synchronize`]), from another stream ([`Stream::wait`]), or time the work between
/// two events ([`Event::elapsed_ms`]).
pub struct Event {
    device: Device,
    raw: RawEvent,
}

impl Event {
    pub(crate) fn new(device: &Device) -> Result<Event> {
        device.inner.bind()?;
        let raw = RawEvent::create(device.inner.api)?;
        Ok(Event {
            device: device.clone(),
            raw,
        })
    }

    /// Marks the current end of `stream`'s queued work; the event completes when that work has.
    pub fn record(&self, stream: &Stream) -> Result<()> {
        if stream.device() != &self.device {
            return Err(Error::invalid(
                format!(
                    "recording an event of device {} on a stream of device {}",
                    self.device.id(),
                    stream.device().id()
                ),
                "an event and a stream of the same device",
            ));
        }
        self.device.inner.bind()?;
        self.raw.record(self.device.inner.api, stream.raw())
    }

    /// Blocks the host until the recorded work has completed.
    pub fn synchronize(&self) -> Result<()> {
        self.device.inner.bind()?;
        self.raw.synchronize(self.device.inner.api)
    }

    /// Whether the recorded work has completed. Ask only about recorded events: CANN leaves
    /// the answer for a never-recorded event open (the simulator says "not ready").
    pub fn is_complete(&self) -> Result<bool> {
        self.device.inner.bind()?;
        self.raw.is_complete(self.device.inner.api)
    }

    /// Milliseconds of device time between `start` and `end`, both recorded and completed.
    pub fn elapsed_ms(start: &Event, end: &Event) -> Result<f32> {
        if start.device != end.device {
            return Err(Error::invalid(
                "timing events of two different devices",
                "two events of the same device",
            ));
        }
        start.device.inner.bind()?;
        let api = start.device.inner.api;
        let mut ms = 0f32;
        // SAFETY: both handles are live events of this device; `ms` is a valid out-pointer.
        unsafe { c_call!(api, aclrtEventElapsedTime(&mut ms, start.raw.0, end.raw.0)) }?;
        Ok(ms)
    }

    /// The device this event belongs to.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The raw `aclrtEvent`, for CANN functions this crate does not wrap. Valid while this
    /// `Event` lives; do not destroy it.
    pub fn as_raw(&self) -> aclrtEvent {
        self.raw.0
    }

    pub(crate) fn raw(&self) -> aclrtEvent {
        self.raw.0
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        let result = self
            .device
            .inner
            .bind()
            .and_then(|()| self.raw.destroy(self.device.inner.api));
        if let Err(e) = result {
            drop_errors::record(e);
        }
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("device", &self.device.id())
            .finish()
    }
}

// SAFETY: an event handle belongs to the process-wide runtime and may be used from any thread
// once the device's context is bound, which every method does first.
unsafe impl Send for Event {}
// SAFETY: all methods take &self and only make thread-safe runtime calls on the handle.
unsafe impl Sync for Event {}

/// An event handle without a device reference, for bookkeeping inside the device itself
/// (deferred frees), where holding a `Device` would keep the device alive forever. Callers bind
/// the device's context before each call.
pub(crate) struct RawEvent(pub(crate) aclrtEvent);

impl RawEvent {
    pub(crate) fn create(api: &Api) -> Result<RawEvent> {
        let mut raw: aclrtEvent = std::ptr::null_mut();
        // SYNC lets streams wait on it; TIME_LINE gives it a timestamp for elapsed time.
        let flags = ascend_sys::ACL_EVENT_SYNC | ascend_sys::ACL_EVENT_TIME_LINE;
        // SAFETY: `raw` is a valid out-pointer; the caller bound the device's context.
        unsafe { c_call!(api, aclrtCreateEventWithFlag(&mut raw, flags)) }?;
        Ok(RawEvent(raw))
    }

    pub(crate) fn record(&self, api: &Api, stream: ascend_sys::aclrtStream) -> Result<()> {
        // SAFETY: both handles are live and belong to the bound device.
        unsafe { c_call!(api, aclrtRecordEvent(self.0, stream)) }
    }

    pub(crate) fn synchronize(&self, api: &Api) -> Result<()> {
        // SAFETY: live event handle.
        unsafe { c_call!(api, aclrtSynchronizeEvent(self.0)) }
    }

    pub(crate) fn is_complete(&self, api: &Api) -> Result<bool> {
        let mut status = ascend_sys::ACL_EVENT_RECORDED_STATUS_NOT_READY;
        // SAFETY: live event handle; `status` is a valid out-pointer.
        unsafe { c_call!(api, aclrtQueryEventStatus(self.0, &mut status)) }?;
        Ok(status == ascend_sys::ACL_EVENT_RECORDED_STATUS_COMPLETE)
    }

    pub(crate) fn destroy(&self, api: &Api) -> Result<()> {
        // SAFETY: live event handle, destroyed once (by the single owner).
        unsafe { c_call!(api, aclrtDestroyEvent(self.0)) }
    }
}

/// Reusable events of one device, for the ordering the runtime does on its own (cross-stream
/// waits and deferred frees), so that no operation creates an event.
///
/// An event goes back to the pool only once its record has completed: a stream that was told
/// to wait for it has then passed (or never needs) that point, whatever the runtime's rule for
/// waits on re-recorded events.
#[derive(Default)]
pub(crate) struct EventPool {
    /// Completed events, ready to be recorded again.
    idle: Mutex<Vec<RawEvent>>,
    /// Recorded events no one refers to any more, oldest first; reused once complete.
    retired: Mutex<VecDeque<RawEvent>>,
    created: AtomicU64,
}

/// How many completed events the pool keeps; more are destroyed.
const POOL_CAPACITY: usize = 256;

impl EventPool {
    /// An event that is not recorded or whose record has completed. The caller bound the
    /// device's context.
    pub(crate) fn take(&self, api: &Api) -> Result<RawEvent> {
        if let Some(event) = lock(&self.idle).pop() {
            return Ok(event);
        }
        {
            let mut retired = lock(&self.retired);
            if let Some(oldest) = retired.front() {
                if matches!(oldest.is_complete(api), Ok(true)) {
                    return Ok(retired.pop_front().expect("front exists"));
                }
            }
        }
        self.created.fetch_add(1, Ordering::Relaxed);
        RawEvent::create(api)
    }

    /// Returns an event whose record is known to have completed.
    pub(crate) fn put_complete(&self, api: &Api, event: RawEvent) {
        let mut idle = lock(&self.idle);
        if idle.len() < POOL_CAPACITY {
            idle.push(event);
        } else {
            drop(idle);
            if let Err(e) = event.destroy(api) {
                drop_errors::record(e);
            }
        }
    }

    /// Returns an event whose record may still be pending.
    pub(crate) fn retire(&self, event: RawEvent) {
        lock(&self.retired).push_back(event);
    }

    /// Events this pool has created so far.
    pub(crate) fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Destroys every pooled event. Called when no stream of the device is left, so no queued
    /// work refers to them; the caller bound the device's context.
    pub(crate) fn destroy_all(&mut self, api: &Api) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        let retired = std::mem::take(self.retired.get_mut().unwrap_or_else(|p| p.into_inner()));
        for event in idle.into_iter().chain(retired) {
            if let Err(e) = event.destroy(api) {
                drop_errors::record(e);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
