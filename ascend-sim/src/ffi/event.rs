//! Events.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ascend_sys::{
    ACL_ERROR_RT_EVENT_TIMESTAMP_REVERSAL, ACL_ERROR_RT_NO_EVENT_RESOURCE,
    ACL_EVENT_CAPTURE_STREAM_PROGRESS, ACL_EVENT_DEVICE_USE_ONLY, ACL_EVENT_EXTERNAL,
    ACL_EVENT_IPC, ACL_EVENT_RECORDED_STATUS_COMPLETE, ACL_EVENT_RECORDED_STATUS_NOT_READY,
    ACL_EVENT_STATUS_COMPLETE, ACL_EVENT_STATUS_NOT_READY, ACL_EVENT_SYNC, ACL_EVENT_TIME_LINE,
    StaticSymbols, aclError, aclrtEvent, aclrtEventRecordedStatus, aclrtEventStatus, aclrtStream,
};

use super::context::current;
use super::stream::for_submit;
use super::{guard, write_out};
use crate::base::error::{SimError, SimResult};
use crate::base::sync::Timeout;
use crate::ffi::state::sim;
use crate::runtime::event::{Event, EventKind, MAX_EVENTS_PER_DEVICE};
use crate::runtime::handles::as_ptr;
use crate::runtime::task::Task;

const KNOWN_FLAGS: u32 = ACL_EVENT_SYNC
    | ACL_EVENT_CAPTURE_STREAM_PROGRESS
    | ACL_EVENT_TIME_LINE
    | ACL_EVENT_DEVICE_USE_ONLY
    | ACL_EVENT_EXTERNAL
    | ACL_EVENT_IPC;

fn create(out: *mut aclrtEvent, kind: EventKind) -> SimResult<()> {
    if out.is_null() {
        return Err(SimError::param("output pointer event is NULL"));
    }
    if let EventKind::Flagged(f) = kind {
        if f & !KNOWN_FLAGS != 0 {
            return Err(SimError::param(format!(
                "event flags {f:#x} contain unknown bits {:#x}; expected an OR of ACL_EVENT_* \
                 flags",
                f & !KNOWN_FLAGS
            )));
        }
    }
    let sim = sim()?;
    let device = current()?.device;
    let live = &sim.machine.devices[device].live_events;
    if live.fetch_add(1, Ordering::AcqRel) >= MAX_EVENTS_PER_DEVICE {
        live.fetch_sub(1, Ordering::AcqRel);
        return Err(SimError::new(
            ACL_ERROR_RT_NO_EVENT_RESOURCE,
            format!("device {device} already has {MAX_EVENTS_PER_DEVICE} live events"),
        ));
    }
    let handle = sim.events.reserve();
    sim.events
        .insert(handle, Arc::new(Event::new(handle, device, kind)));
    // SAFETY: output pointer per the C contract (checked non-NULL above).
    unsafe { write_out(out, as_ptr(handle), "event") }
}

unsafe extern "C" fn aclrtCreateEvent(event: *mut aclrtEvent) -> aclError {
    guard("aclrtCreateEvent", || create(event, EventKind::Plain))
}

unsafe extern "C" fn aclrtCreateEventWithFlag(event: *mut aclrtEvent, flag: u32) -> aclError {
    guard("aclrtCreateEventWithFlag", || {
        create(event, EventKind::Flagged(flag))
    })
}

unsafe extern "C" fn aclrtCreateEventExWithFlag(event: *mut aclrtEvent, flag: u32) -> aclError {
    guard("aclrtCreateEventExWithFlag", || {
        create(event, EventKind::Flagged(flag))
    })
}

unsafe extern "C" fn aclrtDestroyEvent(event: aclrtEvent) -> aclError {
    guard("aclrtDestroyEvent", || {
        let sim = sim()?;
        // Pending records keep the event alive until they run; only the handle dies here.
        let e = sim.events.remove(event)?;
        sim.machine.devices[e.device]
            .live_events
            .fetch_sub(1, Ordering::AcqRel);
        Ok(())
    })
}

unsafe extern "C" fn aclrtRecordEvent(event: aclrtEvent, stream: aclrtStream) -> aclError {
    guard("aclrtRecordEvent", || {
        let (s, _) = for_submit(stream)?;
        let event = sim()?.events.get(event)?;
        let seq = event.issue_record(s.handle);
        s.submit(Task::Record { event, seq })?;
        Ok(())
    })
}

unsafe extern "C" fn aclrtResetEvent(event: aclrtEvent, stream: aclrtStream) -> aclError {
    guard("aclrtResetEvent", || {
        let (s, _) = for_submit(stream)?;
        let event = sim()?.events.get(event)?;
        event.check_resettable()?;
        s.submit(Task::ResetEvent { event })?;
        Ok(())
    })
}

unsafe extern "C" fn aclrtQueryEvent(event: aclrtEvent, status: *mut aclrtEventStatus) -> aclError {
    guard("aclrtQueryEvent", || {
        let e = sim()?.events.get(event)?;
        // The deprecated enum numbers COMPLETE as 0, the opposite of the newer one.
        let v = if e.is_complete() {
            ACL_EVENT_STATUS_COMPLETE
        } else {
            ACL_EVENT_STATUS_NOT_READY
        };
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(status, v, "status") }
    })
}

unsafe extern "C" fn aclrtQueryEventStatus(
    event: aclrtEvent,
    status: *mut aclrtEventRecordedStatus,
) -> aclError {
    guard("aclrtQueryEventStatus", || {
        let e = sim()?.events.get(event)?;
        let v = if e.is_complete() {
            ACL_EVENT_RECORDED_STATUS_COMPLETE
        } else {
            ACL_EVENT_RECORDED_STATUS_NOT_READY
        };
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(status, v, "status") }
    })
}

unsafe extern "C" fn aclrtSynchronizeEvent(event: aclrtEvent) -> aclError {
    guard("aclrtSynchronizeEvent", || {
        sim()?.events.get(event)?.synchronize(Timeout::Forever)
    })
}

unsafe extern "C" fn aclrtSynchronizeEventWithTimeout(event: aclrtEvent, timeout: i32) -> aclError {
    guard("aclrtSynchronizeEventWithTimeout", || {
        let timeout = Timeout::from_ms(timeout)?;
        sim()?.events.get(event)?.synchronize(timeout)
    })
}

unsafe extern "C" fn aclrtEventElapsedTime(
    ms: *mut f32,
    start: aclrtEvent,
    end: aclrtEvent,
) -> aclError {
    guard("aclrtEventElapsedTime", || {
        let sim = sim()?;
        let (t0, s0) = sim.events.get(start)?.completed_at()?;
        let (t1, s1) = sim.events.get(end)?.completed_at()?;
        if s0 != s1 {
            return Err(SimError::param(format!(
                "startEvent was last recorded on stream {s0:#x} and endEvent on stream {s1:#x}; \
                 elapsed time is defined for two events recorded on the same stream"
            )));
        }
        let Some(d) = t1.checked_duration_since(t0) else {
            return Err(SimError::new(
                ACL_ERROR_RT_EVENT_TIMESTAMP_REVERSAL,
                "endEvent completed before startEvent; were the arguments swapped?",
            ));
        };
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(ms, d.as_secs_f32() * 1000.0, "ms") }
    })
}

unsafe extern "C" fn aclrtEventGetTimestamp(event: aclrtEvent, timestamp: *mut u64) -> aclError {
    guard("aclrtEventGetTimestamp", || {
        let sim = sim()?;
        let (t, _) = sim.events.get(event)?.completed_at()?;
        // Microseconds since the simulator started.
        let us = t.saturating_duration_since(sim.epoch).as_micros() as u64;
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(timestamp, us, "timestamp") }
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtCreateEvent = Some(aclrtCreateEvent);
    s.aclrtCreateEventWithFlag = Some(aclrtCreateEventWithFlag);
    s.aclrtCreateEventExWithFlag = Some(aclrtCreateEventExWithFlag);
    s.aclrtDestroyEvent = Some(aclrtDestroyEvent);
    s.aclrtRecordEvent = Some(aclrtRecordEvent);
    s.aclrtResetEvent = Some(aclrtResetEvent);
    s.aclrtQueryEvent = Some(aclrtQueryEvent);
    s.aclrtQueryEventStatus = Some(aclrtQueryEventStatus);
    s.aclrtSynchronizeEvent = Some(aclrtSynchronizeEvent);
    s.aclrtSynchronizeEventWithTimeout = Some(aclrtSynchronizeEventWithTimeout);
    s.aclrtEventElapsedTime = Some(aclrtEventElapsedTime);
    s.aclrtEventGetTimestamp = Some(aclrtEventGetTimestamp);
}
