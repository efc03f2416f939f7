//! Small synchronisation helpers shared by the runtime objects.

use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::base::error::{SimError, SimResult};

/// Locks ignoring poisoning: a panic caught at the FFI boundary must not turn every later call
/// into an internal error, and the state each lock protects is kept consistent between
/// statements that can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// A wait limit as the C API spells it: milliseconds, `-1` forever, `0` poll once.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timeout {
    Forever,
    Until(Instant),
}

impl Timeout {
    /// Parses the C convention; other negative values are rejected.
    pub(crate) fn from_ms(ms: i32) -> SimResult<Self> {
        match ms {
            -1 => Ok(Timeout::Forever),
            ms if ms >= 0 => Ok(Timeout::Until(
                Instant::now() + Duration::from_millis(ms as u64),
            )),
            ms => Err(SimError::param(format!(
                "timeout is {ms}; expected -1 (wait forever), 0 (poll) or a positive number of \
                 milliseconds"
            ))),
        }
    }

    /// Waits on `cv` until `done` holds or the limit passes; returns whether `done` holds.
    pub(crate) fn wait_while<'a, T>(
        self,
        cv: &Condvar,
        mut guard: MutexGuard<'a, T>,
        mut done: impl FnMut(&T) -> bool,
    ) -> (MutexGuard<'a, T>, bool) {
        loop {
            if done(&guard) {
                return (guard, true);
            }
            match self {
                Timeout::Forever => guard = cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Timeout::Until(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return (guard, false);
                    }
                    guard = cv
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}
