//! Generates `OUT_DIR/shim_abi.rs` from the shim's C ABI header (`kernels-ascendc/shim/include/
//! ascend_shim_abi.h`): its integer constants and the layout checks of `KernelCounters`, so the
//! C and Rust sides of the ABI have one source.

use std::path::PathBuf;

use ascend_kernel_build::{abi, kernels_root};

fn main() {
    let header = kernels_root().join(abi::ABI_HEADER);
    println!("cargo:rerun-if-changed={}", header.display());
    let text = std::fs::read_to_string(&header)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", header.display()));
    let rust = abi::shim_abi_rust(&text, "crate::runtime::kernel::KernelCounters")
        .unwrap_or_else(|e| panic!("{}: {e}", header.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("shim_abi.rs");
    std::fs::write(&out, rust).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
