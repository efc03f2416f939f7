//! Events: markers recorded into streams, for cross-stream ordering and timing.
//!
//! Each record gets a sequence number when it is queued; the event tracks how many records
//! have been issued and the highest one completed. A wait captures the latest issued record at
//! the time it is queued, so later re-records never satisfy or block an earlier wait.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ascend_sys::{
    ACL_ERROR_RT_EVENT_NOT_COMPLETE, ACL_ERROR_RT_EVENT_SYNC_TIMEOUT,
    ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID, ACL_EVENT_EXTERNAL, ACL_EVENT_IPC, ACL_EVENT_SYNC,
    ACL_EVENT_TIME_LINE,
};

use crate::base::error::{SimError, SimResult};
use crate::base::sync::{Timeout, lock};
use crate::runtime::task::Abort;

/// Live events allowed per device (the documented A2/A3/950 limit).
pub(crate) const MAX_EVENTS_PER_DEVICE: usize = 65536;

/// How long a stream waiting on an event sleeps between checks of its abort flag.
const ABORT_POLL: Duration = Duration::from_millis(20);

/// How the event was created, which decides what it may be used for (§2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// `aclrtCreateEvent`.
    Plain,
    /// `aclrtCreateEventWithFlag` / `aclrtCreateEventExWithFlag` with these flags.
    Flagged(u32),
}

#[derive(Default)]
struct State {
    issued: u64,
    done: u64,
    // Whether the latest completed record counts (cleared by a reset or a discarded record).
    valid: bool,
    at: Option<Instant>,
    stream: Option<u64>,
}

pub(crate) struct Event {
    pub(crate) handle: u64,
    pub(crate) device: usize,
    pub(crate) kind: EventKind,
    state: Mutex<State>,
    cv: Condvar,
}

impl Event {
    pub(crate) fn new(handle: u64, device: usize, kind: EventKind) -> Self {
        Event {
            handle,
            device,
            kind,
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        }
    }

    fn flags(&self) -> Option<u32> {
        match self.kind {
            EventKind::Plain => None,
            EventKind::Flagged(f) => Some(f),
        }
    }

    /// `aclrtStreamWaitEvent` needs an event created without flags or with `ACL_EVENT_SYNC`.
    pub(crate) fn check_waitable(&self) -> SimResult<()> {
        match self.flags() {
            Some(f) if f & ACL_EVENT_SYNC == 0 => Err(SimError::param(format!(
                "event {:#x} was created with flags {f:#x}, without ACL_EVENT_SYNC, so streams \
                 cannot wait on it; create it with ACL_EVENT_SYNC",
                self.handle
            ))),
            _ => Ok(()),
        }
    }

    /// `aclrtResetEvent` needs an event created with `ACL_EVENT_SYNC`.
    pub(crate) fn check_resettable(&self) -> SimResult<()> {
        match self.flags() {
            None => Err(SimError::param(format!(
                "event {:#x} was created by aclrtCreateEvent, which must not be used with \
                 aclrtResetEvent; create it with aclrtCreateEventWithFlag(ACL_EVENT_SYNC)",
                self.handle
            ))),
            Some(f) if f & ACL_EVENT_SYNC == 0 => Err(SimError::param(format!(
                "event {:#x} was created with flags {f:#x}, without ACL_EVENT_SYNC, so it cannot \
                 be reset",
                self.handle
            ))),
            _ => Ok(()),
        }
    }

    fn check_timed(&self) -> SimResult<()> {
        match self.flags() {
            Some(f) if f & (ACL_EVENT_EXTERNAL | ACL_EVENT_IPC) != 0 => {
                Err(SimError::param(format!(
                    "event {:#x} is an external/IPC event (flags {f:#x}); it carries no timestamp",
                    self.handle
                )))
            }
            Some(f) if f & ACL_EVENT_TIME_LINE == 0 => Err(SimError::param(format!(
                "event {:#x} was created with flags {f:#x}, without ACL_EVENT_TIME_LINE, so it \
                 records no timestamp",
                self.handle
            ))),
            _ => Ok(()),
        }
    }

    /// Issues a record on `stream`; the returned sequence number goes into the record task.
    pub(crate) fn issue_record(&self, stream: u64) -> u64 {
        let mut s = lock(&self.state);
        s.issued += 1;
        s.stream = Some(stream);
        s.issued
    }

    /// The latest issued record, or `None` if the event was never recorded.
    pub(crate) fn latest_record(&self) -> Option<u64> {
        let s = lock(&self.state);
        (s.issued > 0).then_some(s.issued)
    }

    /// Marks record `seq` complete; `ran` is false when the record was discarded.
    pub(crate) fn complete(&self, seq: u64, ran: bool) {
        let mut s = lock(&self.state);
        if seq >= s.done {
            s.done = seq;
            s.valid = ran;
            s.at = ran.then(Instant::now);
        }
        self.cv.notify_all();
    }

    pub(crate) fn reset_now(&self) {
        let mut s = lock(&self.state);
        s.valid = false;
        s.at = None;
    }

    /// Blocks a stream worker until record `seq` completes (or the stream is aborted).
    pub(crate) fn wait_in_stream(&self, seq: u64, abort: &Abort) -> SimResult<()> {
        let mut s = lock(&self.state);
        while s.done < seq && !abort.is_set() {
            s = self
                .cv
                .wait_timeout(s, ABORT_POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    /// Waits until the latest record issued before this call completes.
    pub(crate) fn synchronize(&self, timeout: Timeout) -> SimResult<()> {
        let s = lock(&self.state);
        let target = s.issued;
        let (_s, done) = timeout.wait_while(&self.cv, s, |s| s.done >= target);
        if done {
            Ok(())
        } else {
            Err(SimError::new(
                ACL_ERROR_RT_EVENT_SYNC_TIMEOUT,
                format!(
                    "event {:#x} did not complete before the timeout",
                    self.handle
                ),
            ))
        }
    }

    /// Whether the latest record has completed (false if never recorded or reset).
    pub(crate) fn is_complete(&self) -> bool {
        let s = lock(&self.state);
        s.issued > 0 && s.done >= s.issued && s.valid
    }

    /// The completion time of the latest record and the stream it was recorded on.
    pub(crate) fn completed_at(&self) -> SimResult<(Instant, u64)> {
        self.check_timed()?;
        let s = lock(&self.state);
        if s.issued == 0 {
            return Err(SimError::new(
                ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID,
                format!("event {:#x} was never recorded", self.handle),
            ));
        }
        if s.done < s.issued {
            return Err(SimError::new(
                ACL_ERROR_RT_EVENT_NOT_COMPLETE,
                format!(
                    "event {:#x} is recorded but has not completed; synchronize it (or its \
                     stream) first",
                    self.handle
                ),
            ));
        }
        match (s.valid, s.at, s.stream) {
            (true, Some(at), Some(stream)) => Ok((at, stream)),
            _ => Err(SimError::new(
                ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID,
                format!(
                    "event {:#x} has no timestamp: it was reset, or its record was discarded by \
                     a forced stream destroy",
                    self.handle
                ),
            )),
        }
    }
}
