//! Builds `kernels-ascendc/` for the simulator: every kernel, compiled with the host C++ compiler
//! against our Ascend C shim, into one shared library that ascend-sim loads through
//! `aclrtBinaryLoadFromFile` (so the safe layer's launch code is the one used on an NPU).
//!
//! The library's path reaches the crate as `ASCEND_NPU_SIM_KERNELS`. A build never needs CANN.
//!
//! With `ASCEND_NPU_KERNEL_SOC` set and CANN installed, it also builds the NPU binary with CANN's
//! Ascend C CMake support (`kernels-ascendc/CMakeLists.txt`) and passes its path as
//! `ASCEND_NPU_DEVICE_KERNELS_BUILT`.

use std::path::{Path, PathBuf};

#[path = "build-support/device_kernels.rs"]
mod device_kernels;

const KERNELS: &str = "kernels-ascendc";

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let kernels = root.join(KERNELS);
    println!("cargo:rerun-if-changed={KERNELS}");

    let mut sources = vec![kernels.join("shim/src/shim_runtime.cpp")];
    sources.extend(cpp_files(&kernels));
    sources.extend(cpp_files(&kernels.join("broken")));

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        // Kernels must run fast enough for the test suite even in debug builds of the crate.
        .opt_level(2)
        .debug(false)
        .pic(true)
        .flag("-pthread")
        // A failed check unwinds its block, so exceptions stay on.
        .flag_if_supported("-fexceptions")
        .include(kernels.join("shim/include"))
        .files(&sources)
        .warnings(false);
    let objects = build.compile_intermediates();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let library = out_dir.join("libascend_npu_sim_kernels.so");
    let mut link = build.get_compiler().to_command();
    link.arg("-shared")
        .arg("-pthread")
        .args(&objects)
        .arg("-o")
        .arg(&library);
    let status = link
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C++ linker: {e}"));
    assert!(status.success(), "linking {} failed", library.display());
    println!(
        "cargo:rustc-env=ASCEND_NPU_SIM_KERNELS={}",
        library.display()
    );

    build_device_kernels(&kernels, &out_dir);
}

/// The NPU build, when asked for; failures are warnings, because the simulator build above is
/// all the crate needs to compile.
fn build_device_kernels(kernels: &Path, out_dir: &Path) {
    for var in [
        device_kernels::SOC_VAR,
        "ASCEND_NPU_CANN_PATH",
        "ASCEND_HOME_PATH",
        "ASCEND_TOOLKIT_HOME",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let get = |name: &str| std::env::var(name).ok();
    let plan = match device_kernels::plan(&get, &|p: &Path| p.exists(), kernels, out_dir) {
        Ok(Some(plan)) => plan,
        Ok(None) => return,
        Err(message) => {
            println!("cargo:warning={message}");
            return;
        }
    };
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

/// The `.cpp` files directly in `dir`, sorted so builds are reproducible.
fn cpp_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "cpp"))
        .collect();
    files.sort();
    files
}
