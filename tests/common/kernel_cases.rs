//! Kernel binaries and shared kernels, shared by `runtime_kernel_binary_sim.rs` and its
//! hardware twin `runtime_kernel_hardware.rs`: binaries loaded from bytes, user files checked so
//! a truncated one is an error (it used to kill the process with SIGBUS), one `Kernels` shared
//! by clones across threads and streams, and the core counts under the installed CANN release.

use std::path::PathBuf;

use ascend_npu::kernels::Kernels;
use ascend_npu::sys::CannVersion;
use ascend_npu::{Backend, Device, Error, KernelBinary, Param};

fn device() -> Device {
    Device::open(0).unwrap()
}

fn on_sim() -> bool {
    ascend_npu::active_backend().unwrap() == Backend::Sim
}

/// Our kernels as a file of the active backend: the simulator build, or the NPU build named by
/// `ASCEND_NPU_DEVICE_KERNELS`.
fn library_bytes() -> Vec<u8> {
    let path = match std::env::var_os(ascend_npu::runtime::DEVICE_KERNELS_VAR) {
        Some(p) if !on_sim() => PathBuf::from(p),
        _ => PathBuf::from(env!("ASCEND_NPU_SIM_KERNELS")),
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file of `bytes` in the suites' scratch directory.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

pub fn a_truncated_binary_is_an_error_and_the_process_goes_on() {
    let device = device();
    let bytes = library_bytes();
    for (name, keep) in [
        ("truncated_half.so", bytes.len() / 2),
        ("truncated_tail.so", bytes.len() - 16),
        ("truncated_header.so", 100),
    ] {
        let path = scratch(name, &bytes[..keep]);
        let err = KernelBinary::load(&device, &path).unwrap_err();
        let text = err.to_string();
        assert!(err.acl_code().is_some(), "{name}: {text}");
        if on_sim() {
            assert!(text.contains("past the end"), "{name}: {text}");
        }
    }
    // The whole file still loads and its kernels are found.
    let whole = scratch("whole.so", &bytes);
    let binary = KernelBinary::load(&device, &whole).unwrap();
    assert_eq!(binary.path(), Some(whole.as_path()));
    binary.kernel("swiglu_f32", &[Param::Ptr; 4]).unwrap();
}

pub fn files_that_are_not_binaries_are_refused_before_the_runtime() {
    let device = device();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (path, expected) in [
        (
            scratch("empty.so", b""),
            "does not start with an ELF header",
        ),
        (
            scratch(
                "text.so",
                b"#!/bin/sh\necho this is not a kernel binary at all\n",
            ),
            "does not start with an ELF header",
        ),
        (tmp.clone(), "is not a regular file"),
        (tmp.join("no_such_file.so"), "cannot be read"),
    ] {
        let err = KernelBinary::load(&device, &path).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{path:?}: {err}");
    }
    let err = KernelBinary::from_bytes(&device, b"\x7fELF").unwrap_err();
    assert!(err.to_string().contains("ELF header"), "{err}");
}

pub fn binaries_load_from_bytes_and_ours_are_embedded() {
    let device = device();
    let bytes = library_bytes();
    let binary = KernelBinary::from_bytes(&device, &bytes).unwrap();
    assert_eq!(binary.path(), None);
    binary.kernel("matmul_f16_f32", &[Param::Ptr; 4]).unwrap();
    let err = KernelBinary::from_bytes(&device, &bytes[..bytes.len() / 3]).unwrap_err();
    assert!(err.acl_code().is_some(), "{err}");
    if on_sim() {
        assert!(err.to_string().contains("past the end"), "{err}");
        // No path baked into the program: a moved binary still has its kernels.
        assert_eq!(KernelBinary::builtin(&device).unwrap().path(), None);
    }
}

pub fn one_kernels_is_shared_by_clones_across_threads_and_streams() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Kernels>();
    let device = device();
    let kernels = Kernels::load(&device).unwrap();
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let kernels = kernels.clone();
            let device = device.clone();
            std::thread::spawn(move || {
                let stream = device.new_stream().unwrap();
                let n = 200 + 37 * t;
                let gate: Vec<f32> = (0..n).map(|i| (i as f32 - 100.0) / 25.0).collect();
                let up: Vec<f32> = (0..n).map(|i| 1.0 + (i + t) as f32 / 64.0).collect();
                let g = stream.upload(&gate).unwrap();
                let u = stream.upload(&up).unwrap();
                let mut out = stream.alloc_zeroed::<f32>(n).unwrap();
                for _ in 0..4 {
                    ascend_npu::kernels::swiglu(&kernels, &stream, &g, &u, &mut out).unwrap();
                }
                let got = out.to_vec().unwrap();
                for i in 0..n {
                    let x = f64::from(gate[i]);
                    let want = x / (1.0 + (-x).exp()) * f64::from(up[i]);
                    // fp32 SwiGLU: a few ulps of exp and division.
                    assert!((f64::from(got[i]) - want).abs() <= 1e-5 * want.abs().max(1.0));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(kernels.clone().device(), &device);
}

pub fn cann_version_and_core_counts_agree_with_the_soc() {
    let device = device();
    let version = device.cann_version().unwrap();
    assert!(version >= CannVersion::V8_1_RC1, "{version}");
    let (cube, vector) = (device.cube_cores().unwrap(), device.vector_cores().unwrap());
    assert!(
        cube >= 1 && vector >= cube,
        "{cube} cube, {vector} vector cores"
    );
    let soc = device.soc_name().unwrap();
    if let Some(known) = ascend_npu::sys::soc_cores(&soc) {
        assert_eq!((cube, vector), known, "{soc} under CANN {version}");
    }
}
