//! Builds `kernels-ascendc/` for the simulator: every production kernel (the `.cpp` files directly
//! in `kernels-ascendc/`), compiled with the host C++ compiler against our Ascend C shim, into one
//! shared library that ascend-sim loads (so the safe layer's launch code is the one used on an NPU).
//! The deliberately broken kernels of `kernels-ascendc/broken/` are not in it: tests build them
//! with `ascend-kernel-build` themselves.
//!
//! The kernel manifest (names, kinds, parameter lists) is read from the kernels' own
//! `extern "C" __global__ __aicore__` signatures by `ascend-kernel-build`. It is the single source
//! of the shim registration, of `OUT_DIR/kernel_manifest.rs` (the parameter lists the typed
//! launchers in `src/kernels/` use) and of the NPU build's source list.
//!
//! The library's path reaches the crate as `ASCEND_NPU_SIM_KERNELS`. A build never needs CANN.
//!
//! With `ASCEND_NPU_KERNEL_SOC` set and CANN installed, it also builds the NPU binary with CANN's
//! Ascend C CMake support (`kernels-ascendc/CMakeLists.txt`) and passes its path as
//! `ASCEND_NPU_DEVICE_KERNELS_BUILT`.

use std::path::{Path, PathBuf};

use ascend_kernel_build::{
    SimKernels, cmake_source_list, cpp_files, device, kernel_sources, rust_manifest,
};

const KERNELS: &str = "kernels-ascendc";
/// The CMake variable holding the NPU build's kernel sources.
const CMAKE_SOURCES_VAR: &str = "ASCEND_NPU_KERNEL_SOURCES";

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let kernels = root.join(KERNELS);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed={KERNELS}");

    let library = SimKernels::new("ascend_npu_sim_kernels")
        .files(cpp_files(&kernels).unwrap_or_else(|e| panic!("{e}")))
        .out_dir(&out_dir)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "cargo:rustc-env=ASCEND_NPU_SIM_KERNELS={}",
        library.path.display()
    );
    let manifest = out_dir.join("kernel_manifest.rs");
    std::fs::write(
        &manifest,
        rust_manifest(&library.kernels, "crate::runtime::Param", &root),
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", manifest.display()));

    let sources = kernel_sources(&library.kernels, &kernels);
    let listed = std::fs::read_to_string(kernels.join("kernel_sources.cmake")).unwrap_or_default();
    if listed != cmake_source_list(CMAKE_SOURCES_VAR, &sources) {
        println!(
            "cargo:warning=kernels-ascendc/kernel_sources.cmake disagrees with the kernel sources; \
             the test `cmake_source_list_matches_the_kernel_manifest` prints the expected content"
        );
    }
    build_device_kernels(&kernels, &out_dir, &sources);
}

/// The NPU build, when asked for; failures are warnings, because the simulator build above is
/// all the crate needs to compile. The source list comes from the manifest, so a kernel file
/// cannot be left out of the NPU binary.
fn build_device_kernels(kernels: &Path, out_dir: &Path, sources: &[String]) {
    for var in [
        device::SOC_VAR,
        "ASCEND_NPU_CANN_PATH",
        "ASCEND_HOME_PATH",
        "ASCEND_TOOLKIT_HOME",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let get = |name: &str| std::env::var(name).ok();
    let mut plan = match device::plan(&get, &|p: &Path| p.exists(), kernels, out_dir) {
        Ok(Some(plan)) => plan,
        Ok(None) => return,
        Err(message) => {
            println!("cargo:warning={message}");
            return;
        }
    };
    plan.commands[0].push(format!("-D{CMAKE_SOURCES_VAR}={}", sources.join(";")));
    for args in &plan.commands {
        match std::process::Command::new("cmake").args(args).status() {
            Ok(status) if status.success() => {}
            outcome => {
                println!(
                    "cargo:warning=NPU kernel build for {} (CANN at {}) failed at cmake {args:?}: {outcome:?}",
                    plan.soc,
                    plan.root.display()
                );
                return;
            }
        }
    }
    println!(
        "cargo:rustc-env=ASCEND_NPU_DEVICE_KERNELS_BUILT={}",
        plan.binary.display()
    );
}
