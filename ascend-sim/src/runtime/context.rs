//! Contexts and the calling thread's current context.

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use crate::base::sync::lock;
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
    /// A context with its default stream (registering both is the registry's job).
    pub(crate) fn new(
        handle: u64,
        device: usize,
        is_default: bool,
        default_stream: Arc<Stream>,
    ) -> Context {
        Context {
            handle,
            device,
            is_default,
            default_stream,
            streams: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn add_stream(&self, stream: u64) {
        lock(&self.streams).push(stream);
    }

    pub(crate) fn forget_stream(&self, stream: u64) {
        lock(&self.streams).retain(|&s| s != stream);
    }

    /// The explicitly created streams, handed over for destruction.
    pub(crate) fn take_streams(&self) -> Vec<u64> {
        std::mem::take(&mut *lock(&self.streams))
    }
}

/// Makes `handle` the calling thread's current context (0 clears it).
pub(crate) fn set_current(handle: u64) {
    CURRENT.with(|c| c.set(handle));
}

/// The handle of the calling thread's current context, 0 for none.
pub(crate) fn current_handle() -> u64 {
    CURRENT.with(Cell::get)
}

/// Clears the calling thread's current context if it is `handle` (being destroyed).
pub(crate) fn clear_current_if(handle: u64) {
    if CURRENT.with(Cell::get) == handle {
        CURRENT.with(|c| c.set(0));
    }
}
