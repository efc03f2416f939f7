//! `aclrtSubscribeReport` / `aclrtLaunchCallback` / `aclrtProcessReport`: host callbacks run by
//! a thread of the program that subscribed to the stream.

use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ascend_sys::{
    ACL_ERROR_REPEAT_SUBSCRIBE, ACL_ERROR_STREAM_NOT_SUBSCRIBE, ACL_ERROR_THREAD_NOT_SUBSCRIBE,
    ACL_ERROR_WAIT_CALLBACK_TIMEOUT,
};

use crate::base::error::{SimError, SimResult};
use crate::base::sync::{Timeout, lock};
use crate::runtime::task::{Abort, UserPtr};

/// A callback waiting for its thread.
struct Pending {
    f: unsafe extern "C" fn(*mut c_void),
    data: UserPtr,
    done: Option<Arc<Done>>,
}

#[derive(Default)]
struct Done {
    flag: Mutex<bool>,
    cv: Condvar,
}

#[derive(Default)]
struct Inner {
    // stream handle -> subscribed thread id
    subscriptions: HashMap<u64, u64>,
    // thread id -> callbacks to run
    queues: HashMap<u64, VecDeque<Pending>>,
}

#[derive(Default)]
pub(crate) struct Reports {
    inner: Mutex<Inner>,
    cv: Condvar,
}

impl Reports {
    pub(crate) fn subscribe(&self, thread: u64, stream: u64) -> SimResult<()> {
        let mut inner = lock(&self.inner);
        if let Some(t) = inner.subscriptions.get(&stream) {
            return Err(SimError::new(
                ACL_ERROR_REPEAT_SUBSCRIBE,
                format!("stream {stream:#x} is already subscribed by thread {t:#x}"),
            ));
        }
        inner.subscriptions.insert(stream, thread);
        Ok(())
    }

    pub(crate) fn unsubscribe(&self, thread: u64, stream: u64) -> SimResult<()> {
        let mut inner = lock(&self.inner);
        match inner.subscriptions.get(&stream) {
            Some(&t) if t == thread => {
                inner.subscriptions.remove(&stream);
                Ok(())
            }
            Some(&t) => Err(SimError::new(
                ACL_ERROR_STREAM_NOT_SUBSCRIBE,
                format!(
                    "stream {stream:#x} is subscribed by thread {t:#x}, not by thread {thread:#x}"
                ),
            )),
            None => Err(not_subscribed(stream)),
        }
    }

    pub(crate) fn forget_stream(&self, stream: u64) {
        lock(&self.inner).subscriptions.remove(&stream);
    }

    /// The error `aclrtLaunchCallback` reports for a stream nobody subscribed to.
    pub(crate) fn deliver_check(&self, stream: u64) -> SimResult<()> {
        if self.is_subscribed(stream) {
            Ok(())
        } else {
            Err(not_subscribed(stream))
        }
    }

    pub(crate) fn is_subscribed(&self, stream: u64) -> bool {
        lock(&self.inner).subscriptions.contains_key(&stream)
    }

    /// Runs on the stream worker: hands the callback to the subscribed thread and, if
    /// `block`, waits until that thread has run it.
    pub(crate) fn deliver(
        &self,
        stream: u64,
        f: unsafe extern "C" fn(*mut c_void),
        data: UserPtr,
        block: bool,
        abort: &Abort,
    ) -> SimResult<()> {
        let done = block.then(|| Arc::new(Done::default()));
        {
            let mut inner = lock(&self.inner);
            let thread = *inner
                .subscriptions
                .get(&stream)
                .ok_or_else(|| not_subscribed(stream))?;
            inner.queues.entry(thread).or_default().push_back(Pending {
                f,
                data,
                done: done.clone(),
            });
            self.cv.notify_all();
        }
        if let Some(done) = done {
            let mut flag = lock(&done.flag);
            while !*flag && !abort.is_set() {
                flag = done
                    .cv
                    .wait_timeout(flag, Duration::from_millis(20))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        Ok(())
    }

    /// `aclrtProcessReport` on thread `thread`: runs one callback, waiting up to `timeout`.
    pub(crate) fn process(&self, thread: u64, timeout: Timeout) -> SimResult<()> {
        let inner = lock(&self.inner);
        let subscribed = inner.subscriptions.values().any(|&t| t == thread)
            || inner.queues.get(&thread).is_some_and(|q| !q.is_empty());
        if !subscribed {
            return Err(SimError::new(
                ACL_ERROR_THREAD_NOT_SUBSCRIBE,
                format!(
                    "thread {thread:#x} has no subscribed stream; call aclrtSubscribeReport with \
                     this thread's id first"
                ),
            ));
        }
        let (mut inner, ready) = timeout.wait_while(&self.cv, inner, |i| {
            i.queues.get(&thread).is_some_and(|q| !q.is_empty())
        });
        if !ready {
            return Err(SimError::new(
                ACL_ERROR_WAIT_CALLBACK_TIMEOUT,
                "no callback arrived before the timeout",
            ));
        }
        let pending = inner
            .queues
            .get_mut(&thread)
            .and_then(VecDeque::pop_front)
            .expect("wait_while saw a callback");
        drop(inner);
        // SAFETY: `f` and its argument were passed together to aclrtLaunchCallback, whose
        // contract is that calling `f(userData)` on the subscribed thread is valid.
        unsafe { (pending.f)(pending.data.0) };
        if let Some(done) = pending.done {
            *lock(&done.flag) = true;
            done.cv.notify_all();
        }
        Ok(())
    }
}

fn not_subscribed(stream: u64) -> SimError {
    SimError::new(
        ACL_ERROR_STREAM_NOT_SUBSCRIBE,
        format!(
            "stream {stream:#x} has no subscribed thread; call aclrtSubscribeReport before \
             aclrtLaunchCallback"
        ),
    )
}

/// The calling thread's id as C code names it (`pthread_self()`), used by
/// `aclrtSubscribeReport` / `aclrtProcessReport`.
#[cfg(unix)]
pub fn current_thread_id() -> u64 {
    unsafe extern "C" {
        // pthread_t is an integer or pointer the size of `unsigned long` on the unix targets
        // this crate supports.
        fn pthread_self() -> usize;
    }
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { pthread_self() as u64 }
}

/// The calling thread's id (a process-unique number on platforms without pthreads).
#[cfg(not(unix))]
pub fn current_thread_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    ID.with(|id| *id)
}
