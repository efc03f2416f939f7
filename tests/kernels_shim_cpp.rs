//! Runs the standalone C++ tests of the Ascend C shim and kernels (`kernels-ascendc/`): numerics,
//! SwiGLU and matmul against double references, and every deliberately broken kernel failing
//! with its rule. The kernels carry no registration: it is generated here from their signatures
//! with ascend-kernel-build, as every build does.

use std::path::Path;
use std::process::Command;

use ascend_kernel_build::{SimKernels, cpp_files, registration_cpp};

#[test]
fn shim_and_kernels_pass_their_cpp_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kernels = root.join("kernels-ascendc");
    let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernels-ascendc");
    // The same list as KERNEL_SRCS in kernels-ascendc/Makefile.
    let mut sources = cpp_files(&kernels).unwrap();
    sources.extend(cpp_files(kernels.join("broken")).unwrap());
    sources.push(kernels.join("shim/tests/probe_kernels.cpp"));
    let scanned = SimKernels::new("shim_tests")
        .files(&sources)
        .out_dir(build.join("scan"))
        .cargo_metadata(false)
        .scan()
        .unwrap_or_else(|e| panic!("{e}"));
    let registration = build.join("registration.generated.cpp");
    std::fs::write(&registration, registration_cpp(&scanned)).unwrap();
    let output = Command::new("make")
        .args(["-C", &kernels.display().to_string(), "-j2", "quick"])
        .arg(format!("BUILD={}", build.display()))
        .arg(format!("REGISTRATION={}", registration.display()))
        .output()
        .expect("this test needs make and a C++17 compiler (g++)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "kernels-ascendc tests failed:\n{text}"
    );
    assert!(text.contains(" 0 failures"), "no summary line:\n{text}");
}
