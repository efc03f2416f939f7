//! The NPU build of `kernels-ascendc/` is planned from the environment: opt-in, CANN found like
//! the libraries are, clear errors otherwise. (The build itself needs CANN.)

#[path = "../build-support/device_kernels.rs"]
mod device_kernels;

use std::path::{Path, PathBuf};

use device_kernels::{SOC_VAR, plan};

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
