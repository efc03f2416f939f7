//! Work queued on a stream.
//!
//! Everything a stream runs is a [`Task`]. Event operations are variants of their own because
//! the stream machinery must finish them even when it discards work (a forced destroy), so
//! other streams waiting on an event never hang; everything else (copies, host functions,
//! callbacks, and later kernel launches) is a [`Task::Work`] closure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::base::error::SimResult;
use crate::runtime::event::Event;

/// Set when a stream is destroyed with tasks pending: long waits inside tasks poll it so they
/// can give up.
#[derive(Default)]
pub(crate) struct Abort(AtomicBool);

impl Abort {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A closure run on the stream's worker; an `Err` becomes the stream's sticky error.
pub(crate) type Work = Box<dyn FnOnce(&Abort) -> SimResult<()> + Send>;

pub(crate) enum Task {
    /// General work, named after the API call that queued it (for error messages).
    Work { api: &'static str, run: Work },
    /// Completes the `seq`-th record of `event`.
    Record { event: Arc<Event>, seq: u64 },
    /// Blocks the stream until `event` has completed its `seq`-th record.
    Wait { event: Arc<Event>, seq: u64 },
    /// Returns `event` to the not-recorded state.
    ResetEvent { event: Arc<Event> },
}

impl Task {
    pub(crate) fn work(
        api: &'static str,
        run: impl FnOnce(&Abort) -> SimResult<()> + Send + 'static,
    ) -> Task {
        Task::Work {
            api,
            run: Box::new(run),
        }
    }

    /// Runs the task.
    pub(crate) fn execute(self, abort: &Abort) -> SimResult<()> {
        match self {
            Task::Work { api, run } => run(abort).map_err(|mut e| {
                e.message = format!("{api} failed on the device: {}", e.message);
                e
            }),
            Task::Record { event, seq } => {
                event.complete(seq, true);
                Ok(())
            }
            Task::Wait { event, seq } => event.wait_in_stream(seq, abort),
            Task::ResetEvent { event } => {
                event.reset_now();
                Ok(())
            }
        }
    }

    /// Drops the task without running it, finishing what others may be waiting for.
    pub(crate) fn discard(self) {
        if let Task::Record { event, seq } = self {
            event.complete(seq, false);
        }
    }
}

/// A user pointer (callback argument) carried to the worker thread.
pub(crate) struct UserPtr(pub(crate) *mut std::ffi::c_void);

// SAFETY: the simulator never dereferences it; it is handed back to the user's function, and
// the C API contract makes the program responsible for what that function does with it on
// another thread.
unsafe impl Send for UserPtr {}
