//! Contexts and the calling thread's current context.

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use crate::base::error::{SimError, SimResult};
use crate::base::sync::lock;
use crate::ffi::state::sim;
use crate::runtime::handles::as_ptr;
use crate::runtime::stream::Stream;

thread_local! {
    // The handle of the thread's current context, 0 for none. Kept as a handle (not an Arc)
    // so a context destroyed by another thread is detected on the next use.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

pub(crate) struct Context {
    pub(crate) handle: u64,
    pub(crate) device: usize,
    pub(crate) is_default: bool,
    pub(crate) default_stream: Arc<Stream>,
    // Streams created explicitly in this context.
    streams: Mutex<Vec<u64>>,
}

impl Context {
    /// Creates and registers a context with its default stream.
    pub(crate) fn create(device: usize, is_default: bool) -> SimResult<Arc<Context>> {
        let sim = sim()?;
        let handle = sim.contexts.reserve();
        let default_stream = Stream::create(device, handle)?;
        let ctx = Arc::new(Context {
            handle,
            device,
            is_default,
            default_stream,
            streams: Mutex::new(Vec::new()),
        });
        sim.contexts.insert(handle, ctx.clone());
        Ok(ctx)
    }

    pub(crate) fn add_stream(&self, stream: u64) {
        lock(&self.streams).push(stream);
    }

    pub(crate) fn forget_stream(&self, stream: u64) {
        lock(&self.streams).retain(|&s| s != stream);
    }

    /// Unregisters the context, then its streams, after their queued work has run.
    pub(crate) fn destroy(&self) -> SimResult<()> {
        let sim = sim()?;
        // Removal may fail if another thread destroyed it first; the streams are still ours.
        let _ = sim.contexts.remove(as_ptr(self.handle));
        let mut first_error = Ok(());
        let handles: Vec<u64> = std::mem::take(&mut *lock(&self.streams));
        let streams = handles
            .into_iter()
            .filter_map(|h| sim.streams.remove(as_ptr(h)).ok())
            .chain(sim.streams.remove(as_ptr(self.default_stream.handle)).ok());
        for stream in streams {
            sim.reports.forget_stream(stream.handle);
            let r = stream.shutdown(false);
            if first_error.is_ok() {
                first_error = r;
            }
        }
        if CURRENT.with(Cell::get) == self.handle {
            CURRENT.with(|c| c.set(0));
        }
        first_error
    }
}

/// Makes `handle` the calling thread's current context (0 clears it).
pub(crate) fn set_current(handle: u64) {
    CURRENT.with(|c| c.set(handle));
}

/// The calling thread's current context.
pub(crate) fn current() -> SimResult<Arc<Context>> {
    let handle = CURRENT.with(Cell::get);
    if handle == 0 {
        return Err(SimError::no_context(
            "the calling thread has no current context; call aclrtSetDevice (or \
             aclrtSetCurrentContext) on this thread first",
        ));
    }
    sim()?.contexts.get_id(handle).map_err(|_| {
        SimError::no_context(format!(
            "the calling thread's current context {handle:#x} was destroyed (by \
             aclrtDestroyContext or the last aclrtResetDevice of its device); set a device or \
             context again"
        ))
    })
}
