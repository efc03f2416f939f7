//! The runtime core: devices, contexts, streams, events, memory, copies, callbacks, kernel
//! binaries and argument lists. It builds on `base` and `rules`; it never reaches the
//! process-wide registry (that is `ffi`'s) nor the operators above it.

pub(crate) mod callback;
pub(crate) mod context;
pub(crate) mod copy;
pub(crate) mod counters;
pub(crate) mod device;
pub(crate) mod event;
pub(crate) mod handles;
pub(crate) mod kernel;
pub(crate) mod kernel_args;
pub(crate) mod machine;
pub(crate) mod memory;
pub(crate) mod stream;
pub(crate) mod task;
