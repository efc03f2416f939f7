//! A case that needs its own simulator (one is configured per process: another SoC, device
//! count or missing functions) runs in a child process of its test binary, on the compiled-in
//! simulator that the `ASCEND_SIM_*` variables describe.

/// Set in a child process: run the case instead of spawning children.
pub const CHILD_VAR: &str = "ASCEND_NPU_TEST_CHILD";

/// Whether this process is such a child.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

/// Runs test `name` of this binary again, alone, on the compiled-in simulator with the
/// variables `vars`, and checks that it passed.
pub fn in_child(name: &str, vars: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe);
    child
        .args(["--exact", name, "--test-threads=1"])
        .env(CHILD_VAR, "1")
        // CI also runs the suites through the drop-in libraries; the case is the compiled-in
        // simulator's.
        .env_remove(ascend_npu::BACKEND_VAR);
    for (key, value) in vars {
        child.env(key, value);
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{vars:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
