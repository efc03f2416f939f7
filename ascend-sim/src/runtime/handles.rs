//! Opaque handles for contexts, streams and events.
//!
//! A handle is `tag | id` with a per-kind tag in non-canonical address space, so C code that
//! dereferences one faults instead of reading garbage, and ids are never reused, so a destroyed
//! handle stays detectably dead. Every use goes through a [`Registry`] lookup; nothing is ever
//! reached by dereferencing a handle.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::base::error::{SimError, SimResult};
use crate::base::sync::{read, write};

const TAG_MASK: u64 = 0xFF00_0000_0000_0000;
pub(crate) const CONTEXT_TAG: u64 = 0x7100_0000_0000_0000;
pub(crate) const STREAM_TAG: u64 = 0x7200_0000_0000_0000;
pub(crate) const EVENT_TAG: u64 = 0x7300_0000_0000_0000;
pub(crate) const BINARY_TAG: u64 = 0x7400_0000_0000_0000;
pub(crate) const FUNCTION_TAG: u64 = 0x7500_0000_0000_0000;
pub(crate) const TENSOR_TAG: u64 = 0x7600_0000_0000_0000;
pub(crate) const SCALAR_TAG: u64 = 0x7700_0000_0000_0000;
pub(crate) const ARRAY_TAG: u64 = 0x7800_0000_0000_0000;
pub(crate) const TENSOR_LIST_TAG: u64 = 0x7900_0000_0000_0000;
pub(crate) const EXECUTOR_TAG: u64 = 0x7A00_0000_0000_0000;
pub(crate) const KERNEL_ARGS_TAG: u64 = 0x7B00_0000_0000_0000;
pub(crate) const KERNEL_PARAM_TAG: u64 = 0x7C00_0000_0000_0000;

/// What kind of handle a raw value looks like, for messages about mixed-up handles.
fn kind_of(raw: u64) -> Option<&'static str> {
    match raw & TAG_MASK {
        CONTEXT_TAG => Some("context"),
        STREAM_TAG => Some("stream"),
        EVENT_TAG => Some("event"),
        BINARY_TAG => Some("kernel binary"),
        FUNCTION_TAG => Some("kernel function"),
        TENSOR_TAG => Some("aclTensor"),
        SCALAR_TAG => Some("aclScalar"),
        ARRAY_TAG => Some("aclnn array"),
        TENSOR_LIST_TAG => Some("aclTensorList"),
        EXECUTOR_TAG => Some("aclOpExecutor"),
        KERNEL_ARGS_TAG => Some("kernel argument list"),
        KERNEL_PARAM_TAG => Some("kernel parameter"),
        _ if crate::runtime::memory::is_device_address(raw) => Some("device memory address"),
        _ => None,
    }
}

/// The live objects of one kind.
pub(crate) struct Registry<T> {
    kind: &'static str,
    tag: u64,
    next: AtomicU64,
    live: RwLock<HashMap<u64, Arc<T>>>,
}

impl<T> Registry<T> {
    pub(crate) fn new(kind: &'static str, tag: u64) -> Self {
        Registry {
            kind,
            tag,
            next: AtomicU64::new(1),
            live: RwLock::new(HashMap::new()),
        }
    }

    /// A fresh handle value, never handed out before.
    pub(crate) fn reserve(&self) -> u64 {
        self.tag | self.next.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn insert(&self, handle: u64, value: Arc<T>) {
        write(&self.live).insert(handle, value);
    }

    fn missing(&self, raw: u64) -> SimError {
        if raw == 0 {
            return SimError::param(format!("the {} handle is NULL", self.kind));
        }
        if raw & TAG_MASK != self.tag {
            let looks = kind_of(raw).map_or(String::new(), |k| format!(" (it is a {k})"));
            return SimError::handle(format!(
                "{raw:#x} is not a {} handle{looks}; expected a handle returned by the \
                 matching create call",
                self.kind
            ));
        }
        let id = raw & !TAG_MASK;
        if id < self.next.load(Ordering::Relaxed) {
            SimError::handle(format!(
                "{} handle {raw:#x} was destroyed; it cannot be used any more",
                self.kind
            ))
        } else {
            SimError::handle(format!("{raw:#x} is not a live {} handle", self.kind))
        }
    }

    pub(crate) fn get(&self, raw: *mut c_void) -> SimResult<Arc<T>> {
        let raw = raw as u64;
        read(&self.live)
            .get(&raw)
            .cloned()
            .ok_or_else(|| self.missing(raw))
    }

    pub(crate) fn get_id(&self, raw: u64) -> SimResult<Arc<T>> {
        self.get(raw as *mut c_void)
    }

    pub(crate) fn remove(&self, raw: *mut c_void) -> SimResult<Arc<T>> {
        let raw = raw as u64;
        write(&self.live)
            .remove(&raw)
            .ok_or_else(|| self.missing(raw))
    }

    /// The live objects matching `keep`, collected so no lock is held while using them.
    pub(crate) fn collect(&self, mut keep: impl FnMut(&T) -> bool) -> Vec<Arc<T>> {
        read(&self.live)
            .values()
            .filter(|v| keep(v))
            .cloned()
            .collect()
    }
}

/// Turns a handle value into the pointer type C sees.
pub(crate) fn as_ptr(handle: u64) -> *mut c_void {
    handle as *mut c_void
}
