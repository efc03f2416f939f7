//! The foundation every layer may use: errors and the recent-error message, lock helpers, the
//! SoC models and their cost model, and the machine's configuration. It imports nothing else of the crate.

pub(crate) mod config;
pub mod cost;
pub(crate) mod error;
pub(crate) mod error_msg;
pub(crate) mod soc;
pub(crate) mod sync;
