//! `aclGetRecentErrMsg`: the last failure message of the calling thread.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

thread_local! {
    // Kept as a CString so the pointer handed to C stays valid until the next failure on this
    // thread, which is the lifetime CANN documents for the returned string.
    static RECENT: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `message` as the calling thread's most recent error.
pub(crate) fn set_recent(message: &str) {
    // Interior NULs would truncate the C string silently; replace them so nothing is lost.
    let clean = message.replace('\0', "\\0");
    let c = CString::new(clean).unwrap_or_default();
    RECENT.with(|r| *r.borrow_mut() = Some(c));
}

/// The calling thread's most recent error message, or NULL when no call has failed on it.
pub(crate) fn recent_ptr() -> *const c_char {
    RECENT.with(|r| r.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
}

/// The calling thread's most recent error message as a Rust string (for tests and tools).
pub fn recent_error_message() -> Option<String> {
    RECENT.with(|r| {
        r.borrow()
            .as_ref()
            .map(|c| c.to_string_lossy().into_owned())
    })
}
