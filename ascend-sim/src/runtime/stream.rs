//! Streams: in-order asynchronous task queues, one worker thread each.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, ThreadId};

use ascend_sys::{ACL_ERROR_RT_NO_STREAM_RESOURCE, ACL_ERROR_RT_STREAM_SYNC_TIMEOUT};

use crate::base::error::{SimError, SimResult};
use crate::base::sync::{Timeout, lock};
use crate::runtime::counters::Counters;
use crate::runtime::device::Device;
use crate::runtime::task::{Abort, Task};

/// Live streams allowed per device; more is almost certainly a leak.
pub(crate) const MAX_STREAMS_PER_DEVICE: usize = 2048;

#[derive(Default)]
struct Queue {
    tasks: VecDeque<(u64, Task)>,
    submitted: u64,
    completed: u64,
    error: Option<SimError>,
    later_errors: u64,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    cv: Condvar,
    abort: Abort,
}

/// One stream.
pub(crate) struct Stream {
    pub(crate) handle: u64,
    pub(crate) device: usize,
    dev: &'static Device,
    pub(crate) context: u64,
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_id: ThreadId,
}

impl Stream {
    /// Creates a stream of `context` on `dev`, its handle from `reserve` (the registry's).
    pub(crate) fn create(
        dev: &'static Device,
        context: u64,
        reserve: impl FnOnce() -> u64,
    ) -> SimResult<Arc<Stream>> {
        let device = dev.id;
        if dev.live_streams.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS_PER_DEVICE {
            dev.live_streams.fetch_sub(1, Ordering::AcqRel);
            return Err(SimError::new(
                ACL_ERROR_RT_NO_STREAM_RESOURCE,
                format!(
                    "device {device} already has {MAX_STREAMS_PER_DEVICE} live streams; destroy \
                     streams you no longer use"
                ),
            ));
        }
        let handle = reserve();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            cv: Condvar::new(),
            abort: Abort::default(),
        });
        let worker_shared = shared.clone();
        let counters = &dev.counters;
        let spawned = std::thread::Builder::new()
            .name(format!("ascend-sim-stream-{:x}", handle & 0xFFFF_FFFF))
            .spawn(move || run(&worker_shared, counters));
        let worker = match spawned {
            Ok(w) => w,
            Err(e) => {
                dev.live_streams.fetch_sub(1, Ordering::AcqRel);
                return Err(SimError::new(
                    ACL_ERROR_RT_NO_STREAM_RESOURCE,
                    format!("could not start a stream worker thread: {e}"),
                ));
            }
        };
        let stream = Arc::new(Stream {
            handle,
            device,
            dev,
            context,
            worker_id: worker.thread().id(),
            shared,
            worker: Mutex::new(Some(worker)),
        });
        Ok(stream)
    }

    /// Queues `task`; returns its sequence number.
    pub(crate) fn submit(&self, task: Task) -> SimResult<u64> {
        let mut q = lock(&self.shared.queue);
        if q.stop {
            drop(q);
            task.discard();
            return Err(SimError::handle(format!(
                "stream {:#x} is being destroyed",
                self.handle
            )));
        }
        q.submitted += 1;
        let seq = q.submitted;
        q.tasks.push_back((seq, task));
        self.shared.cv.notify_all();
        Ok(seq)
    }

    /// Rejects calls that would wait for this stream from inside one of its own tasks.
    pub(crate) fn not_from_worker(&self, what: &str) -> SimResult<()> {
        if std::thread::current().id() == self.worker_id {
            return Err(SimError::param(format!(
                "{what} was called from a task running on stream {:#x} itself, which would \
                 deadlock; host functions and callbacks must not synchronize their own stream",
                self.handle
            )));
        }
        Ok(())
    }

    /// Waits until the task with sequence number `seq` (and all before it) has run.
    pub(crate) fn wait_for(&self, seq: u64, timeout: Timeout) -> SimResult<()> {
        self.not_from_worker("a synchronizing call")?;
        let q = lock(&self.shared.queue);
        let (_q, done) = timeout.wait_while(&self.shared.cv, q, |q| q.completed >= seq);
        if done {
            Ok(())
        } else {
            Err(SimError::new(
                ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
                format!(
                    "stream {:#x} did not finish its work before the timeout",
                    self.handle
                ),
            ))
        }
    }

    /// Waits for all work queued so far, then reports (and clears) a sticky error.
    pub(crate) fn synchronize(&self, timeout: Timeout) -> SimResult<()> {
        let target = lock(&self.shared.queue).submitted;
        self.wait_for(target, timeout)?;
        self.take_error()
    }

    /// Waits for all work queued so far without collecting the sticky error.
    pub(crate) fn synchronize_quietly(&self, timeout: Timeout) -> SimResult<()> {
        let target = lock(&self.shared.queue).submitted;
        self.wait_for(target, timeout)
    }

    /// Reports and clears the first error of a task that failed since the last report.
    pub(crate) fn take_error(&self) -> SimResult<()> {
        let mut q = lock(&self.shared.queue);
        match q.error.take() {
            None => Ok(()),
            Some(mut e) => {
                if q.later_errors > 0 {
                    e.message += &format!(" ({} later task(s) failed too)", q.later_errors);
                }
                q.later_errors = 0;
                e.message = format!(
                    "an earlier asynchronous task on stream {:#x} failed: {}",
                    self.handle, e.message
                );
                Err(e)
            }
        }
    }

    /// Whether every queued task has run.
    pub(crate) fn is_idle(&self) -> bool {
        let q = lock(&self.shared.queue);
        q.completed >= q.submitted
    }

    /// Stops the worker. Unless `force`, waits for queued work first; with `force`, discards
    /// it. Returns a sticky error nobody collected, so it is not lost silently.
    pub(crate) fn shutdown(&self, force: bool) -> SimResult<()> {
        self.not_from_worker("destroying a stream")?;
        if force {
            self.shared.abort.set();
        }
        {
            let mut q = lock(&self.shared.queue);
            q.stop = true;
            self.shared.cv.notify_all();
        }
        if let Some(worker) = lock(&self.worker).take() {
            // A panicking worker was already turned into sticky errors task by task.
            let _ = worker.join();
            self.dev.live_streams.fetch_sub(1, Ordering::AcqRel);
        }
        self.take_error()
    }
}

/// The worker loop: runs tasks in order until stopped.
fn run(shared: &Shared, counters: &Counters) {
    loop {
        let (seq, task) = {
            let mut q = lock(&shared.queue);
            loop {
                if let Some(next) = q.tasks.pop_front() {
                    break next;
                }
                if q.stop {
                    return;
                }
                q = shared.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = if shared.abort.is_set() {
            task.discard();
            Ok(())
        } else {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                task.execute(&shared.abort)
            }));
            counters.task_done();
            r.unwrap_or_else(|p| {
                Err(SimError::new(
                    ascend_sys::ACL_ERROR_RT_INTERNAL_ERROR,
                    format!(
                        "internal error in ascend-sim while running a task: {}",
                        crate::base::error::panic_text(&*p)
                    ),
                ))
            })
        };
        let mut q = lock(&shared.queue);
        q.completed = seq;
        if let Err(e) = result {
            if q.error.is_none() {
                q.error = Some(e);
            } else {
                q.later_errors += 1;
            }
        }
        shared.cv.notify_all();
    }
}
