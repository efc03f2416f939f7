//! Planning the NPU build of `kernels-ascendc/` (shared by `build.rs` and its test).
//!
//! The NPU build is opt-in: it runs when `ASCEND_NPU_KERNEL_SOC` names a SoC and a CANN root with
//! the Ascend C CMake support is found. A build never needs CANN: without either, nothing happens.

use std::path::{Path, PathBuf};

/// Names the SoC to build device binaries for, e.g. `Ascend910B2`.
pub const SOC_VAR: &str = "ASCEND_NPU_KERNEL_SOC";

/// CANN roots, in the order ascend-sys searches them for libraries.
const ROOT_VARS: [&str; 3] = [
    "ASCEND_NPU_CANN_PATH",
    "ASCEND_HOME_PATH",
    "ASCEND_TOOLKIT_HOME",
];
const DEFAULT_ROOTS: [&str; 2] = [
    "/usr/local/Ascend/cann",
    "/usr/local/Ascend/ascend-toolkit/latest",
];
/// Where CANN releases keep `ascendc.cmake`, relative to the root.
const CMAKE_DIRS: [&str; 2] = [
    "compiler/tikcpp/ascendc_kernel_cmake",
    "tools/tikcpp/ascendc_kernel_cmake",
];

/// What to run for the NPU build.
#[derive(Debug, PartialEq, Eq)]
pub struct DevicePlan {
    /// The CANN root used.
    pub root: PathBuf,
    /// The SoC built for.
    pub soc: String,
    /// `cmake` argument lists: configure, then build.
    pub commands: Vec<Vec<String>>,
    /// The binary the build produces.
    pub binary: PathBuf,
}

/// Plans the NPU build, or says why there is none (`Ok(None)`: not asked for).
pub fn plan(
    get: &dyn Fn(&str) -> Option<String>,
    exists: &dyn Fn(&Path) -> bool,
    kernels: &Path,
    out_dir: &Path,
) -> Result<Option<DevicePlan>, String> {
    let Some(soc) = get(SOC_VAR).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let known = ["Ascend910B", "Ascend910_93", "Ascend950"];
    if !known.iter().any(|prefix| soc.starts_with(prefix)) {
        return Err(format!(
            "{SOC_VAR}={soc:?}: expected an Ascend910B*, Ascend910_93* or Ascend950* SoC"
        ));
    }
    let roots: Vec<PathBuf> = ROOT_VARS
        .iter()
        .filter_map(|var| get(var).filter(|v| !v.is_empty()))
        .chain(DEFAULT_ROOTS.iter().map(|r| r.to_string()))
        .map(PathBuf::from)
        .collect();
    let root = roots
        .iter()
        .find(|root| CMAKE_DIRS.iter().any(|dir| exists(&root.join(dir).join("ascendc.cmake"))))
        .ok_or_else(|| {
            let tried: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            format!(
                "{SOC_VAR}={soc} asks for NPU kernels, but no CANN root with ascendc.cmake was found \
                 (tried {})",
                tried.join(", ")
            )
        })?
        .clone();
    let build_dir = out_dir.join("device-kernels");
    let commands = vec![
        vec![
            "-S".to_string(),
            kernels.display().to_string(),
            "-B".to_string(),
            build_dir.display().to_string(),
            format!("-DASCEND_CANN_PACKAGE_PATH={}", root.display()),
            format!("-DSOC_VERSION={soc}"),
        ],
        vec!["--build".to_string(), build_dir.display().to_string()],
    ];
    let binary = build_dir.join("ascend_npu_kernels.o");
    Ok(Some(DevicePlan {
        root,
        soc,
        commands,
        binary,
    }))
}
