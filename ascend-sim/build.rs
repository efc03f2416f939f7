//! Generates from the shim's C ABI header (`kernels-ascendc/shim/include/ascend_shim_abi.h`)
//! `OUT_DIR/shim_abi.rs`, its integer constants, and `OUT_DIR/shim_counters_layout.rs`, the
//! layout checks of `KernelCounters`: the C and Rust sides of the ABI have one source.

use std::path::PathBuf;

use ascend_kernel_build::{abi, kernels_root};

fn main() {
    let header = kernels_root().join(abi::ABI_HEADER);
    println!("cargo:rerun-if-changed={}", header.display());
    let text = std::fs::read_to_string(&header)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", header.display()));
    let generated =
        |what: Result<String, String>| what.unwrap_or_else(|e| panic!("{}: {e}", header.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    for (file, text) in [
        // Constants for the foundation layer (base::shim_abi).
        (
            "shim_abi.rs",
            generated(abi::shim_abi_constants_rust(&text)),
        ),
        // Layout checks next to the mirror itself (runtime::kernel).
        (
            "shim_counters_layout.rs",
            generated(abi::shim_counters_layout_rust(
                &text,
                "crate::runtime::kernel::KernelCounters",
            )),
        ),
    ] {
        let path = out.join(file);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
