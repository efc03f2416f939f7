//! The drop-in libraries through the real dynamic loader: every CANN name opens one simulator,
//! the exports are exactly the simulator's functions, and a plain C program links and runs.

#[path = "../src/layout.rs"]
mod layout;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ascend_sys::{
    ACL_ERROR_REPEAT_INITIALIZE, ACL_ERROR_RT_MEMORY_FREE, ACL_SUCCESS, Api, CannSearch, Library,
};

/// The library cargo built for this test, in the test's own `deps/` directory.
fn built() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its executable");
    let built = exe.with_file_name(layout::BUILT_NAME);
    assert!(
        built.is_file(),
        "{} is missing; cargo builds it with this package's tests",
        built.display()
    );
    built
}

/// One laid-out directory for the whole test binary.
fn libs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim-cann-libs");
        layout::install(&built(), &dir).expect("lays out the drop-in directory")
    })
}

#[test]
fn every_cann_name_is_a_link_to_the_one_library() {
    let dir = libs();
    let names = Library::all_files();
    for required in [
        "libacl_rt.so",
        "libascendcl.so",
        "libnnopbase.so",
        "libopapi.so",
        "libopapi_nn.so",
        "libopapi_math.so",
        "libopapi_transformer.so",
        "libhccl.so",
        "libhcomm.so",
    ] {
        assert!(
            names.contains(&required),
            "{required} missing from {names:?}"
        );
    }
    for name in names {
        let target = std::fs::read_link(dir.join(name)).unwrap();
        assert_eq!(target, Path::new(layout::BUILT_NAME), "{name}");
    }
}

/// The exports are exactly what the simulator's table provides: what it implements resolves,
/// the rest is reported missing by the loader, as by an older CANN.
#[test]
fn exports_are_exactly_the_simulators_functions() {
    let loaded = Api::cann(CannSearch::in_dirs([libs()], false));
    let missing_loaded: BTreeSet<&str> = loaded.missing().iter().map(|e| e.symbol()).collect();
    let missing_static: BTreeSet<&str> = ascend_sim::api()
        .missing()
        .iter()
        .map(|e| e.symbol())
        .collect();
    assert_eq!(missing_loaded, missing_static);
    assert!(
        missing_loaded.len() < Api::SYMBOLS.len() / 2,
        "{missing_loaded:?}"
    );
    if let Some(absent) = missing_loaded.first() {
        let text = loaded
            .missing()
            .into_iter()
            .find(|e| e.symbol() == *absent)
            .unwrap()
            .to_string();
        assert!(text.contains("opened, but"), "{text}");
    }
}

/// Every CANN name opens the same instance (the loader matches the file's inode), so state set
/// through one is seen through the others.
#[test]
fn every_name_shares_one_simulator() {
    let dir = libs();
    let open = |name: &str| {
        // SAFETY: loading the simulator runs only its slot-filling constructor.
        unsafe { libloading::Library::new(dir.join(name)) }
            .unwrap_or_else(|e| panic!("dlopen {name}: {e}"))
    };
    type Init = unsafe extern "C" fn(*const std::ffi::c_char) -> i32;
    let first = open("libacl_rt.so");
    // SAFETY: aclInit has this prototype; the library stays open while it is used.
    let init: libloading::Symbol<Init> = unsafe { first.get(b"aclInit\0") }.unwrap();
    // SAFETY: a NULL config path is allowed.
    let rc = unsafe { init(std::ptr::null()) };
    assert!(
        rc == ACL_SUCCESS || rc == ACL_ERROR_REPEAT_INITIALIZE,
        "{rc}"
    );
    for name in Library::all_files() {
        let other = open(name);
        // SAFETY: as above.
        let again: libloading::Symbol<Init> = unsafe { other.get(b"aclInit\0") }.unwrap();
        assert_eq!(*again as usize, *init as usize, "{name} is another copy");
        // SAFETY: as above.
        assert_eq!(
            unsafe { again(std::ptr::null()) },
            ACL_ERROR_REPEAT_INITIALIZE,
            "{name}"
        );
    }
}

/// Under an older simulated release (`ASCEND_SIM_CANN_VERSION`), a function that release
/// lacks is still exported, and answers `ACL_ERROR_API_NOT_SUPPORT` instead of aborting. The
/// release is read when the library loads, so the check runs in a child process.
#[test]
fn functions_an_older_release_lacks_fail_cleanly() {
    const CHILD: &str = "ASCEND_SIM_CANN_DROP_IN_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "functions_an_older_release_lacks_fail_cleanly",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("ASCEND_SIM_CANN_VERSION", "8.1.RC1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    // SAFETY: loading the simulator runs only its slot-filling constructor.
    let lib = unsafe { libloading::Library::new(libs().join("libacl_rt.so")) }.unwrap();
    type GetDeviceInfo = unsafe extern "C" fn(u32, i32, *mut i64) -> i32;
    // SAFETY: the export has this prototype (CANN 8.2+; absent from 8.1.RC1).
    let get: libloading::Symbol<GetDeviceInfo> =
        unsafe { lib.get(b"aclrtGetDeviceInfo\0") }.unwrap();
    let mut value = 0i64;
    // SAFETY: a valid out-pointer; the stand-in ignores its arguments.
    let rc = unsafe { get(0, 1, &mut value) };
    assert_eq!(rc, ascend_sys::ACL_ERROR_API_NOT_SUPPORT);
}

/// A C program with its own ACL declarations links against the CANN names and runs.
#[test]
fn a_plain_c_program_links_and_runs() {
    let dir = libs();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/acl_round_trip.c");
    let program = Path::new(env!("CARGO_TARGET_TMPDIR")).join("acl_round_trip");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let output = Command::new(&compiler)
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .arg(format!("-L{}", dir.display()))
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        // CANN 8.x programs link the runtime as libascendcl.so.
        .arg("-lascendcl")
        .output()
        .unwrap_or_else(|e| panic!("this test needs a C compiler ({compiler}): {e}"));
    assert!(
        output.status.success(),
        "compiling {}: {}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let run = Command::new(&program)
        .env("ASCEND_SIM_DEVICES", "3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let expected =
        format!("devices=3 equal=1 double_free={ACL_ERROR_RT_MEMORY_FREE} message=aclrtFree");
    assert!(stdout.starts_with(&expected), "{stdout}");

    // The program depends on the CANN name, resolved into our directory.
    if let Ok(ldd) = Command::new("ldd").arg(&program).output() {
        let text = String::from_utf8_lossy(&ldd.stdout);
        let line = format!("libascendcl.so => {}", dir.join("libascendcl.so").display());
        assert!(text.contains(&line), "{text}");
    }
}
