//! Without a working provider every entry point returns an error that says what was searched,
//! and nothing panics.
//!
//! The backend is process-wide, so the global cases run in child processes of this test binary
//! with a controlled environment.

use std::process::Command;

use ascend_npu::sys::{Api, CannSearch};
use ascend_npu::{Device, Error};

const CHILD_VAR: &str = "ASCEND_NPU_TEST_CHILD";

/// Runs the ignored test `name` of this binary in a child with `ASCEND_NPU_BACKEND` and the CANN
/// variables replaced by `env`.
fn run_child(name: &str, env: &[(&str, &str)]) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for var in [
        "ASCEND_NPU_BACKEND",
        "ASCEND_NPU_CANN_PATH",
        "ASCEND_HOME_PATH",
        "ASCEND_TOOLKIT_HOME",
    ] {
        command.env_remove(var);
    }
    command.env(CHILD_VAR, "1").envs(env.iter().copied());
    let output = command.output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "child {name} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child {name} did not run its test:\n{text}"
    );
}

fn is_child() -> bool {
    std::env::var(CHILD_VAR).is_ok()
}

#[test]
fn no_backend_selected() {
    run_child("child_no_backend_selected", &[]);
}

#[test]
#[ignore = "run by no_backend_selected in a child process"]
fn child_no_backend_selected() {
    if !is_child() {
        return;
    }
    let errors = [
        Device::count().unwrap_err(),
        Device::open(0).unwrap_err(),
        ascend_npu::active_backend().unwrap_err(),
        ascend_npu::raw_api().err().unwrap(),
    ];
    for err in errors {
        assert!(matches!(err, Error::NoBackend), "{err}");
        assert!(
            err.to_string().contains("ASCEND_NPU_BACKEND=sim|cann"),
            "{err}"
        );
    }
}

#[test]
fn bad_backend_variable() {
    run_child(
        "child_bad_backend_variable",
        &[("ASCEND_NPU_BACKEND", "npu")],
    );
}

#[test]
#[ignore = "run by bad_backend_variable in a child process"]
fn child_bad_backend_variable() {
    if !is_child() {
        return;
    }
    let err = Device::count().unwrap_err();
    assert!(
        err.to_string()
            .contains("ASCEND_NPU_BACKEND=\"npu\" is not a backend"),
        "{err}"
    );
}

#[test]
fn cann_selected_without_cann() {
    run_child(
        "child_cann_selected_without_cann",
        &[
            ("ASCEND_NPU_BACKEND", "cann"),
            ("ASCEND_NPU_CANN_PATH", "/nonexistent/ascend-npu-test"),
        ],
    );
}

#[test]
#[ignore = "run by cann_selected_without_cann in a child process"]
fn child_cann_selected_without_cann() {
    if !is_child() {
        return;
    }
    let errors = [
        Device::count().unwrap_err(),
        Device::open(0).unwrap_err(),
        ascend_npu::select_backend(ascend_npu::Backend::Cann).unwrap_err(),
    ];
    for err in errors {
        let text = err.to_string();
        assert!(matches!(err, Error::Load(_)), "{text}");
        for needle in [
            "`aclInit`",
            "libacl_rt.so, libascendcl.so",
            "tried /nonexistent/ascend-npu-test/libacl_rt.so",
            "tried /nonexistent/ascend-npu-test/lib64/libascendcl.so",
            "tried /usr/local/Ascend/cann/lib64/libacl_rt.so",
            "tried /usr/local/Ascend/ascend-toolkit/latest/lib64/libacl_rt.so",
            "tried libacl_rt.so",
            "ASCEND_NPU_CANN_PATH=/nonexistent/ascend-npu-test",
            "ASCEND_HOME_PATH=<unset>",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }
    // A failed selection leaves the process free to choose the simulator explicitly.
    #[cfg(feature = "sim")]
    {
        ascend_npu::select_backend(ascend_npu::Backend::Sim).unwrap();
        assert!(Device::count().unwrap() >= 1);
    }
}

#[test]
fn every_symbol_of_an_empty_search_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("ascend-npu-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let api = Api::cann(CannSearch::in_dirs([&dir], false));
    let missing = api.missing();
    assert_eq!(missing.len(), Api::SYMBOLS.len());
    for (err, symbol) in missing.iter().zip(Api::SYMBOLS) {
        assert_eq!(err.symbol(), *symbol);
        let text = err.to_string();
        assert!(text.contains(&format!("`{symbol}`")), "{text}");
        assert!(text.contains(&dir.display().to_string()), "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A stand-in `libacl_rt.so` that exports one function proves the real loading path works:
/// symbols it has resolve and run, the others name the library that lacked them.
#[test]
fn a_partial_library_serves_what_it_exports() {
    let dir = std::env::temp_dir().join(format!("ascend-npu-fake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("fake.c");
    std::fs::write(
        &source,
        "int aclrtGetDeviceCount(unsigned *count) { *count = 3; return 0; }\n",
    )
    .unwrap();
    let library = dir.join("libacl_rt.so");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("this test needs a C compiler ({compiler}): {e}"));
    assert!(status.success());

    let api = Api::cann(CannSearch::in_dirs([&dir], false));
    let count = api.aclrtGetDeviceCount().unwrap();
    let mut n = 0u32;
    // SAFETY: the stand-in implements the documented prototype; `n` is a valid out-pointer.
    assert_eq!(unsafe { count(&mut n) }, 0);
    assert_eq!(n, 3);
    let err = api.aclrtSetDevice().unwrap_err().to_string();
    assert!(err.contains("tried libacl_rt.so: opened, but"), "{err}");
    assert!(err.contains("libascendcl.so"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
