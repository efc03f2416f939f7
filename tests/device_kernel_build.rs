//! The NPU build of `kernels-ascendc/` is planned from the environment: opt-in, CANN found like
//! the libraries are, clear errors otherwise. (The build itself needs CANN.) Its source list is
//! the kernel manifest's.

use std::path::{Path, PathBuf};

use ascend_kernel_build::device::{SOC_VAR, plan};
use ascend_kernel_build::{SimKernels, cmake_source_list, cpp_files, kernel_sources};

fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn nothing_happens_unless_asked() {
    let none = plan(
        &env(&[]),
        &|_: &Path| true,
        Path::new("/k"),
        Path::new("/o"),
    )
    .unwrap();
    assert_eq!(none, None);
}

#[test]
fn the_first_root_with_ascendc_cmake_is_used() {
    let has =
        |p: &Path| p == Path::new("/opt/cann/compiler/tikcpp/ascendc_kernel_cmake/ascendc.cmake");
    let vars = [
        (SOC_VAR, "Ascend910B2"),
        ("ASCEND_NPU_CANN_PATH", "/mine"),
        ("ASCEND_HOME_PATH", "/opt/cann"),
    ];
    let plan = plan(
        &env(&vars),
        &has,
        Path::new("/src/kernels-ascendc"),
        Path::new("/out"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(plan.root, PathBuf::from("/opt/cann"));
    assert_eq!(plan.soc, "Ascend910B2");
    assert_eq!(
        plan.commands[0],
        [
            "-S",
            "/src/kernels-ascendc",
            "-B",
            "/out/device-kernels",
            "-DASCEND_CANN_PACKAGE_PATH=/opt/cann",
            "-DSOC_VERSION=Ascend910B2"
        ]
    );
    assert_eq!(plan.commands[1], ["--build", "/out/device-kernels"]);
    assert_eq!(
        plan.binary,
        PathBuf::from("/out/device-kernels/ascend_npu_kernels.o")
    );
}

#[test]
fn unknown_socs_and_missing_cann_are_explained() {
    let err = plan(
        &env(&[(SOC_VAR, "GPU")]),
        &|_: &Path| true,
        Path::new("/k"),
        Path::new("/o"),
    )
    .unwrap_err();
    assert!(err.contains("expected an Ascend910B*"), "{err}");
    let err = plan(
        &env(&[(SOC_VAR, "Ascend910_9392")]),
        &|_: &Path| false,
        Path::new("/k"),
        Path::new("/o"),
    )
    .unwrap_err();
    assert!(
        err.contains("no CANN root with ascendc.cmake") && err.contains("/usr/local/Ascend/cann"),
        "{err}"
    );
}

/// The kernel sources, the manifest read from them and the NPU build's source list agree: every
/// `.cpp` the simulator builds defines a kernel, and `kernel_sources.cmake` lists exactly the
/// files that define kernels (a kernel left out of CMake once made `Kernels::load` fail on every
/// NPU while the simulator, which builds every file, never noticed).
#[test]
fn cmake_source_list_matches_the_kernel_manifest() {
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels-ascendc");
    let files = cpp_files(&kernels).unwrap();
    let manifest = SimKernels::new("manifest_check")
        .files(&files)
        .out_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("manifest-check"))
        .cargo_metadata(false)
        .scan()
        .unwrap_or_else(|e| panic!("{e}"));
    let sources = kernel_sources(&manifest, &kernels);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            sources.iter().any(|s| *s == name),
            "{name} defines no extern \"C\" __global__ __aicore__ kernel; kernels-ascendc/*.cpp are kernel sources"
        );
    }
    for name in [
        "swiglu_f32",
        "matmul_bf16_bf16",
        "fp8_gemm_masked_w8a8_f32",
        "moe_gather_scores",
    ] {
        assert!(
            manifest.iter().any(|k| k.name == name),
            "{name} missing from the manifest"
        );
    }
    let want = cmake_source_list("ASCEND_NPU_KERNEL_SOURCES", &sources);
    let have = std::fs::read_to_string(kernels.join("kernel_sources.cmake")).unwrap_or_default();
    assert_eq!(
        have, want,
        "kernels-ascendc/kernel_sources.cmake must read:\n{want}"
    );
    let cmake = std::fs::read_to_string(kernels.join("CMakeLists.txt")).unwrap();
    assert!(
        cmake.contains("ascendc_fatbin_library(ascend_npu_kernels ${ASCEND_NPU_KERNEL_SOURCES})"),
        "CMakeLists.txt must build exactly the manifest's sources"
    );
}
