//! Raw FFI to Huawei CANN: the ACL runtime, the aclnn base and HCCL, resolved at run time.
//!
//! Nothing here links against CANN, so the crate builds on any machine. The declarations come
//! from our own header (`include/ascend_npu_sys.h`); [`bindings`] is its bindgen output, checked
//! in and regenerated with `cargo run -p ascend-sys-codegen`.
//!
//! Every C function has exactly one spelling: a method of [`Api`] with the C name, returning the
//! function pointer or a [`LoadError`]. Which code stands behind the pointer depends on the
//! provider the `Api` was built for:
//!
//! - [`Api::cann`] opens the CANN libraries lazily, symbol by symbol, trying each library that
//!   may export the symbol ([`Library`]) in each directory of a [`CannSearch`];
//! - [`Api::from_static`] serves a table of functions compiled into the process, which is how
//!   the simulator (`ascend-sim`) plugs in.
//!
//! ```
//! use ascend_sys::{Api, CannSearch};
//!
//! // A search that finds nothing: every symbol is an error value, never a panic.
//! let api = Api::cann(CannSearch::in_dirs(["/nonexistent/cann/lib64"], false));
//! let err = api.aclrtGetDeviceCount().unwrap_err();
//! assert!(err.to_string().contains("aclrtGetDeviceCount"));
//! assert!(err.to_string().contains("/nonexistent/cann/lib64/libacl_rt.so"));
//! // Nothing was opened, so no library path was resolved.
//! assert!(api.opened_libraries().is_empty());
//! ```

#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

#[rustfmt::skip]
#[allow(missing_docs, clippy::all)]
pub mod bindings;
mod cann;
mod codes;
mod error;
mod library;
mod search;
mod table;

pub use bindings::*;
pub use cann::{BadCannVersion, CannRelease, CannVersion, SOC_CORES, soc_cores};
pub use codes::{ACL_ERROR_NAMES, ACLNN_STATUS_NAMES, HCCL_RESULT_NAMES};
pub use error::{Attempt, LoadError};
pub use library::Library;
pub use search::{CannSearch, OVERRIDE_VAR, ROOT_VARS};
pub use table::FnPtr;
use table::function_table;

// The list of functions, generated from the header; expands to `StaticSymbols` and `Api`.
include!("symbols.rs");

/// The documented name of an `aclError` value, if the header declares it.
pub fn acl_error_name(code: aclError) -> Option<&'static str> {
    lookup(ACL_ERROR_NAMES, code)
}

/// The documented name of an `aclnnStatus` value, if the header declares it.
pub fn aclnn_status_name(status: aclnnStatus) -> Option<&'static str> {
    lookup(ACLNN_STATUS_NAMES, status)
}

/// The documented name of a `HcclResult` value, if the header declares it.
pub fn hccl_result_name(result: HcclResult) -> Option<&'static str> {
    lookup(HCCL_RESULT_NAMES, result)
}

/// The documented name of a status returned by an `acl*` or `aclnn*` call, whichever of the two
/// tables declares it. The two sets of values are disjoint apart from success (0), which a test
/// keeps true, so one lookup serves both.
pub fn status_name(code: i32) -> Option<&'static str> {
    acl_error_name(code).or_else(|| aclnn_status_name(code))
}

fn lookup<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> Option<&'static str> {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod status_name_tests {
    use super::*;

    #[test]
    fn acl_and_aclnn_codes_are_disjoint_so_status_name_is_unambiguous() {
        for &(code, name) in ACLNN_STATUS_NAMES {
            match acl_error_name(code) {
                Some(acl) => assert!(code == 0, "{code} is both {acl} and {name}"),
                None => assert_eq!(status_name(code), Some(name)),
            }
        }
        assert_eq!(status_name(161002), Some("ACLNN_ERR_PARAM_INVALID"));
        assert_eq!(status_name(107000), Some("ACL_ERROR_RT_PARAM_INVALID"));
        assert_eq!(status_name(42), None);
    }
}
