//! Errors seen in `Drop`, kept until the user asks for them.
//!
//! `Drop` cannot return an error and must not panic; surfacing the error on some later,
//! unrelated call would mislead. So it is kept here, and [`take_drop_errors`] hands it over.

use std::sync::Mutex;

use crate::error::Error;

/// How many errors are kept; older ones are dropped first, counted in the last message.
const CAPACITY: usize = 64;

static ERRORS: Mutex<(Vec<Error>, usize)> = Mutex::new((Vec::new(), 0));

/// Records an error that happened while releasing a resource.
pub(crate) fn record(error: Error) {
    let mut guard = ERRORS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (errors, dropped) = &mut *guard;
    if errors.len() == CAPACITY {
        errors.remove(0);
        *dropped += 1;
    }
    errors.push(error);
}

/// Takes every error recorded while dropping devices, streams, events and buffers, oldest
/// first, plus how many older ones were discarded because more than 64 were pending.
///
/// ```
/// let (errors, discarded) = ascend_npu::take_drop_errors();
/// assert!(errors.is_empty() && discarded == 0);
/// ```
pub fn take_drop_errors() -> (Vec<Error>, usize) {
    let mut guard = ERRORS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (errors, dropped) = &mut *guard;
    (std::mem::take(errors), std::mem::take(dropped))
}
