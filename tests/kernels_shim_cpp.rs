//! Runs the standalone C++ tests of the Ascend C shim and kernels (`kernels-ascendc/`): numerics,
//! SwiGLU and matmul against double references, and every deliberately broken kernel failing
//! with its rule. Until the simulator launches these kernels through `aclrtLaunchKernel*`
//! (the kernels issue), this is how `cargo test` covers them.

use std::process::Command;

#[test]
fn shim_and_kernels_pass_their_cpp_tests() {
    let root = env!("CARGO_MANIFEST_DIR");
    let build = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernels-ascendc");
    let output = Command::new("make")
        .args(["-C", &format!("{root}/kernels-ascendc"), "-j2", "quick"])
        .arg(format!("BUILD={}", build.display()))
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
