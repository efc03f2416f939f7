//! Streams.

use std::sync::Arc;

use ascend_sys::{
    ACL_ERROR_RT_STREAM_CONTEXT, ACL_STREAM_STATUS_COMPLETE, ACL_STREAM_STATUS_NOT_READY,
    StaticSymbols, aclError, aclrtEvent, aclrtStream, aclrtStreamStatus,
};

use super::context::current;
use super::{guard, write_out};
use crate::base::error::{SimError, SimResult};
use crate::base::sync::Timeout;
use crate::ffi::state::sim;
use crate::runtime::handles::as_ptr;
use crate::runtime::stream::Stream;
use crate::runtime::task::Task;

/// The stream a call refers to: NULL is the current context's default stream.
pub(super) fn resolve(stream: aclrtStream) -> SimResult<Arc<Stream>> {
    if stream.is_null() {
        return Ok(current()?.default_stream.clone());
    }
    sim()?.streams.get(stream)
}

/// The stream to queue work on, which must belong to the calling thread's current device.
pub(super) fn for_submit(stream: aclrtStream) -> SimResult<(Arc<Stream>, usize)> {
    let device = current()?.device;
    let s = resolve(stream)?;
    if s.device != device {
        return Err(SimError::new(
            ACL_ERROR_RT_STREAM_CONTEXT,
            format!(
                "stream {:#x} belongs to device {}, but the calling thread's current device is \
                 {device}; set its device (or context) on this thread first",
                s.handle, s.device
            ),
        ));
    }
    Ok((s, device))
}

fn create(out: *mut aclrtStream) -> SimResult<()> {
    if out.is_null() {
        return Err(SimError::param("output pointer stream is NULL"));
    }
    let ctx = current()?;
    let stream = sim()?.new_stream(ctx.device, ctx.handle)?;
    ctx.add_stream(stream.handle);
    // SAFETY: output pointer per the C contract.
    unsafe { write_out(out, as_ptr(stream.handle), "stream") }
}

unsafe extern "C" fn aclrtCreateStream(stream: *mut aclrtStream) -> aclError {
    guard("aclrtCreateStream", || create(stream))
}

unsafe extern "C" fn aclrtCreateStreamWithConfig(
    stream: *mut aclrtStream,
    _priority: u32,
    _flag: u32,
) -> aclError {
    // The priority is reserved and flags only tune scheduling on hardware (§2.5): both are
    // accepted and have no effect here.
    guard("aclrtCreateStreamWithConfig", || create(stream))
}

fn destroy(stream: aclrtStream, force: bool) -> SimResult<()> {
    if stream.is_null() {
        return Err(SimError::param(
            "stream is NULL; the default stream cannot be destroyed (it goes with its context)",
        ));
    }
    let sim = sim()?;
    let s = sim.streams.get(stream)?;
    s.not_from_worker("destroying a stream")?;
    let s = sim.streams.remove(stream)?;
    if let Ok(ctx) = sim.contexts.get_id(s.context) {
        ctx.forget_stream(s.handle);
    }
    sim.reports.forget_stream(s.handle);
    s.shutdown(force)
}

unsafe extern "C" fn aclrtDestroyStream(stream: aclrtStream) -> aclError {
    guard("aclrtDestroyStream", || destroy(stream, false))
}

unsafe extern "C" fn aclrtDestroyStreamForce(stream: aclrtStream) -> aclError {
    guard("aclrtDestroyStreamForce", || destroy(stream, true))
}

unsafe extern "C" fn aclrtSynchronizeStream(stream: aclrtStream) -> aclError {
    guard("aclrtSynchronizeStream", || {
        resolve(stream)?.synchronize(Timeout::Forever)
    })
}

unsafe extern "C" fn aclrtSynchronizeStreamWithTimeout(
    stream: aclrtStream,
    timeout: i32,
) -> aclError {
    guard("aclrtSynchronizeStreamWithTimeout", || {
        let timeout = Timeout::from_ms(timeout)?;
        resolve(stream)?.synchronize(timeout)
    })
}

unsafe extern "C" fn aclrtStreamQuery(
    stream: aclrtStream,
    status: *mut aclrtStreamStatus,
) -> aclError {
    guard("aclrtStreamQuery", || {
        let s = resolve(stream)?;
        let v = if s.is_idle() {
            ACL_STREAM_STATUS_COMPLETE
        } else {
            ACL_STREAM_STATUS_NOT_READY
        };
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(status, v, "status") }
    })
}

unsafe extern "C" fn aclrtStreamWaitEvent(stream: aclrtStream, event: aclrtEvent) -> aclError {
    guard("aclrtStreamWaitEvent", || {
        let (s, _) = for_submit(stream)?;
        let event = sim()?.events.get(event)?;
        event.check_waitable()?;
        // Waiting on an event that was never recorded is a no-op, as in CUDA: there is no
        // point in the stream's future to wait for.
        if let Some(seq) = event.latest_record() {
            s.submit(Task::Wait { event, seq })?;
        }
        Ok(())
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtCreateStream = Some(aclrtCreateStream);
    s.aclrtCreateStreamWithConfig = Some(aclrtCreateStreamWithConfig);
    s.aclrtDestroyStream = Some(aclrtDestroyStream);
    s.aclrtDestroyStreamForce = Some(aclrtDestroyStreamForce);
    s.aclrtSynchronizeStream = Some(aclrtSynchronizeStream);
    s.aclrtSynchronizeStreamWithTimeout = Some(aclrtSynchronizeStreamWithTimeout);
    s.aclrtStreamQuery = Some(aclrtStreamQuery);
    s.aclrtStreamWaitEvent = Some(aclrtStreamWaitEvent);
}
