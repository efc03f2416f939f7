//! Builds Ascend C kernel sources for the ascend-npu simulator, from a crate's `build.rs`.
//!
//! Kernels are plain Ascend C: `extern "C" __global__ __aicore__ void name(GM_ADDR ...)` with
//! `#include "kernel_operator.h"`, exactly as for CANN's compiler. [`SimKernels`] compiles them
//! with the host C++ compiler against ascend-npu's clean-room shim of the Ascend C API
//! ([`shim_include_dir`]) into one shared library that `ascend_npu::runtime::KernelBinary::load`
//! loads on the simulator. The registration the shim needs is generated from the kernels' own
//! signatures ([`manifest`]): kernel names, kinds (from `KERNEL_TASK_TYPE_DEFAULT`, vector-only
//! without one) and parameter lists.
//!
//! ```no_run
//! // build.rs of a crate with kernels in kernels/
//! let library = ascend_kernel_build::SimKernels::new("my_kernels")
//!     .file("kernels/scaled_add.cpp")
//!     .build()
//!     .unwrap_or_else(|e| panic!("{e}"));
//! println!("cargo:rustc-env=MY_KERNELS={}", library.path.display());
//! ```
//!
//! The crate code then loads `env!("MY_KERNELS")` with `KernelBinary::load` and launches the
//! kernels by name. Requirements: a C++17 compiler with exceptions (g++ or clang++), `-pthread`.

pub mod abi;
pub mod device;
mod generate;
pub mod manifest;
pub mod tiling;

use std::fmt;
use std::path::{Path, PathBuf};

pub use generate::{cmake_source_list, kernel_sources, registration_cpp, rust_manifest};
use manifest::KernelDecl;

/// The directory to put on the include path of kernels built for the simulator: it holds the
/// shim's `kernel_operator.h`.
pub fn shim_include_dir() -> PathBuf {
    kernels_root().join("shim/include")
}

/// `kernels-ascendc/` of ascend-npu: the shim and ascend-npu's own kernels.
pub fn kernels_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).join("kernels-ascendc")
}

/// Why a simulator kernel build failed.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A built simulator kernel library.
#[derive(Debug)]
pub struct SimLibrary {
    /// The shared library, for `KernelBinary::load`.
    pub path: PathBuf,
    /// Its kernels, read from the sources.
    pub kernels: Vec<KernelDecl>,
}

/// A set of Ascend C kernel sources to build into one simulator library.
#[derive(Clone, Debug)]
pub struct SimKernels {
    name: String,
    sources: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
    cargo_metadata: bool,
}

impl SimKernels {
    /// A library named `lib<name>.so`. Inside a build script, cargo's `OUT_DIR` receives it.
    pub fn new(name: &str) -> SimKernels {
        SimKernels {
            name: name.to_string(),
            sources: Vec::new(),
            includes: Vec::new(),
            out_dir: None,
            cargo_metadata: std::env::var_os("CARGO_MANIFEST_DIR").is_some()
                && std::env::var_os("OUT_DIR").is_some(),
        }
    }

    /// Adds a kernel source file.
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut SimKernels {
        self.sources.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds kernel source files.
    pub fn files<P: AsRef<Path>>(&mut self, paths: impl IntoIterator<Item = P>) -> &mut SimKernels {
        for p in paths {
            self.file(p);
        }
        self
    }

    /// Adds an include directory (the shim's is always there).
    pub fn include(&mut self, dir: impl AsRef<Path>) -> &mut SimKernels {
        self.includes.push(dir.as_ref().to_path_buf());
        self
    }

    /// Where objects and the library go (default: `OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl AsRef<Path>) -> &mut SimKernels {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Whether to print `cargo:` lines (rerun-if-changed); on by default inside build scripts.
    pub fn cargo_metadata(&mut self, on: bool) -> &mut SimKernels {
        self.cargo_metadata = on;
        self
    }

    fn out(&self) -> Result<PathBuf, Error> {
        match &self.out_dir {
            Some(d) => Ok(d.clone()),
            None => std::env::var_os("OUT_DIR")
                .map(|d| {
                    PathBuf::from(d)
                        .join("ascend-kernel-build")
                        .join(&self.name)
                })
                .ok_or_else(|| {
                    Error("no output directory: call out_dir(...) outside a build script".into())
                }),
        }
    }

    fn compiler(&self, out: &Path) -> cc::Build {
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .std("c++17")
            // Kernels must run fast enough for test suites even in debug builds.
            .opt_level(2)
            .debug(false)
            .pic(true)
            .flag("-pthread")
            // A failed check unwinds its block, so exceptions stay on.
            .flag_if_supported("-fexceptions")
            .include(shim_include_dir())
            .warnings(false)
            .out_dir(out)
            .cargo_metadata(self.cargo_metadata)
            .cargo_warnings(self.cargo_metadata);
        for dir in &self.includes {
            build.include(dir);
        }
        if std::env::var("CARGO_CFG_SANITIZE").is_ok_and(|s| s.split(',').any(|s| s == "address")) {
            // Under `-Zsanitizer=address` (cargo-fuzz) cc would compile with
            // `-fsanitize=address`, and g++ would then link GCC's libasan.so into this library.
            // The process that dlopens it already carries rustc's ASan runtime, and the two
            // cannot share a process ("ASan runtime does not come first"): the kernels stay
            // uninstrumented instead (the simulator bounds-checks their device memory anyway).
            build.flag("-fno-sanitize=address");
        }
        if std::env::var_os("TARGET").is_none() {
            build.target(env!("ASCEND_KERNEL_BUILD_TARGET"));
        }
        if std::env::var_os("HOST").is_none() {
            build.host(env!("ASCEND_KERNEL_BUILD_TARGET"));
        }
        build
    }

    /// The kernels the sources define, read from their signatures (preprocessed with the shim).
    pub fn scan(&self) -> Result<Vec<KernelDecl>, Error> {
        let out = self.out()?;
        std::fs::create_dir_all(&out)
            .map_err(|e| Error(format!("cannot create {}: {e}", out.display())))?;
        let base = self.compiler(&out);
        let mut kernels = Vec::new();
        for source in &self.sources {
            let text = base
                .clone()
                .file(source)
                .define("ASCEND_SHIM_SCAN", None)
                .try_expand()
                .map_err(|e| Error(format!("cannot preprocess {}: {e}", source.display())))?;
            let text = String::from_utf8_lossy(&text);
            kernels.extend(
                manifest::scan_preprocessed(&text, source).map_err(|e| Error(e.to_string()))?,
            );
        }
        manifest::check_unique(&kernels).map_err(|e| Error(e.to_string()))?;
        Ok(kernels)
    }

    /// Compiles the sources, the shim runtime and the generated registration into
    /// `lib<name>.so`.
    pub fn build(&self) -> Result<SimLibrary, Error> {
        let out = self.out()?;
        let kernels = self.scan()?;
        if self.cargo_metadata {
            for source in &self.sources {
                println!("cargo:rerun-if-changed={}", source.display());
            }
            for dir in self.includes.iter().chain([&shim_include_dir()]) {
                println!("cargo:rerun-if-changed={}", dir.display());
            }
            println!("cargo:rerun-if-changed={}", shim_src_dir().display());
        }
        let registration = out.join(format!("{}_registration.cpp", self.name));
        std::fs::write(&registration, registration_cpp(&kernels))
            .map_err(|e| Error(format!("cannot write {}: {e}", registration.display())))?;
        let mut build = self.compiler(&out);
        build
            .files(cpp_files(shim_src_dir())?)
            .files(&self.sources)
            .file(&registration);
        let objects = build.try_compile_intermediates().map_err(|e| {
            Error(format!(
                "compiling the kernels of {} failed: {e}",
                self.name
            ))
        })?;
        let path = out.join(format!("lib{}.so", self.name));
        let mut link = build
            .try_get_compiler()
            .map_err(|e| Error(format!("no C++ compiler: {e}")))?
            .to_command();
        link.arg("-shared")
            .arg("-pthread")
            .args(&objects)
            .arg("-o")
            .arg(&path);
        let status = link
            .status()
            .map_err(|e| Error(format!("cannot run the C++ linker: {e}")))?;
        if !status.success() {
            return Err(Error(format!(
                "linking {} failed: {status}",
                path.display()
            )));
        }
        Ok(SimLibrary { path, kernels })
    }
}

/// The `.cpp` files directly in `dir`, sorted so builds are reproducible.
pub fn cpp_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, Error> {
    let dir = dir.as_ref();
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error(format!("cannot read {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "cpp"))
        .collect();
    files.sort();
    Ok(files)
}

/// The shim's non-header sources (every `.cpp` in it is compiled into each simulator kernel
/// library): the runtime, and the arithmetic kept apart from it.
pub fn shim_src_dir() -> PathBuf {
    kernels_root().join("shim/src")
}
