//! The safe layer under each CANN release the simulator can pretend to be: the version is read,
//! and core counts come from the call that release has.
//!
//! The simulator's release is fixed per process, so the test re-runs itself once per release
//! with `ASCEND_SIM_CANN_VERSION` set, and checks each child's verdict.

#![cfg(feature = "sim")]

use std::process::Command;

use ascend_npu::kernels::Kernels;
use ascend_npu::sys::{self, CannVersion};
use ascend_npu::{Backend, Device, select_backend};

/// Set in a child: the release it runs under.
const CHILD_VAR: &str = "ASCEND_NPU_TEST_CANN_CHILD";

/// A 910B4 (20 cube, 40 vector cores) so the counts differ from the default SoC.
const SOC: &str = "Ascend910B4";

const VERSIONS: [&str; 5] = ["8.1.RC1", "8.2.RC1", "8.3.RC1", "8.5.0", "9.0.0"];

/// `aclrtGetDeviceInfo(attr)` through the raw table: the code, or `None` if the release has no
/// such function.
fn raw_info(attr: sys::aclrtDevAttr) -> Option<(sys::aclError, i64)> {
    let f = ascend_npu::raw_api().unwrap().aclrtGetDeviceInfo().ok()?;
    let mut value = 0i64;
    // SAFETY: device 0 exists; `value` is a valid out-pointer.
    let code = unsafe { f(0, attr, &mut value) };
    Some((code, value))
}

/// A release the simulator cannot parse stops it with a message naming the variable.
fn bad_version_child() {
    let e = select_backend(Backend::Sim)
        .and_then(|()| Device::open(0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ASCEND_SIM_CANN_VERSION") && e.contains("8.x"),
        "{e}"
    );
}

fn child(expected: CannVersion) {
    select_backend(Backend::Sim).unwrap();
    let device = Device::open(0).unwrap();
    assert_eq!(device.cann_version().unwrap(), expected);
    assert_eq!(device.cube_cores().unwrap(), 20, "under CANN {expected}");
    assert_eq!(device.vector_cores().unwrap(), 40, "under CANN {expected}");

    let cube = raw_info(sys::ACL_DEV_ATTR_CUBE_CORE_NUM);
    let aicore = raw_info(sys::ACL_DEV_ATTR_AICORE_CORE_NUM);
    if expected < CannVersion::V8_2_RC1 {
        // 8.1.RC1 has no aclrtGetDeviceInfo at all.
        assert!(cube.is_none() && aicore.is_none());
    } else if expected < CannVersion::V8_5_0 {
        // 8.2/8.3 know attributes 1/101/201 only.
        assert_eq!(aicore, Some((sys::ACL_SUCCESS, 20)));
        let (code, _) = cube.unwrap();
        assert_ne!(code, sys::ACL_SUCCESS);
        let message = ascend_npu::sim::recent_error_message().unwrap_or_default();
        assert!(
            message.contains("device-info.attr-by-cann-version") && message.contains("102"),
            "{message}"
        );
    } else {
        assert_eq!(cube, Some((sys::ACL_SUCCESS, 20)));
    }

    // Kernel binaries: absent before 8.2; loading from memory only from 9.0.
    let api = ascend_npu::raw_api().unwrap();
    assert_eq!(
        api.aclrtBinaryLoadFromFile().is_ok(),
        expected.has_kernel_binaries()
    );
    assert_eq!(
        api.aclrtLaunchKernelWithConfig().is_ok(),
        expected.has_kernel_binaries()
    );
    assert_eq!(
        api.aclrtLaunchKernelWithHostArgs().is_ok(),
        expected.has_binary_from_data()
    );
    run_a_kernel(&device, expected);
}

/// Our kernels launch under every release that has the kernel API (through the
/// `aclrtKernelArgs*` list before 9.0, host arguments from 9.0), twice so a reused list is
/// updated, and fail clearly where it is missing.
fn run_a_kernel(device: &Device, version: CannVersion) {
    let kernels = match Kernels::load(device) {
        Ok(k) => k,
        Err(e) => {
            assert!(!version.has_kernel_binaries(), "{e}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("CANN {version} has no runtime kernel-binary API")),
                "{text}"
            );
            return;
        }
    };
    let stream = device.new_stream().unwrap();
    for scale in [1.0f32, -0.5] {
        let gate: Vec<f32> = (0..100).map(|i| scale * (i as f32 / 10.0 - 5.0)).collect();
        let up: Vec<f32> = (0..100).map(|i| 0.5 + i as f32 / 50.0).collect();
        let g = stream.upload(&gate).unwrap();
        let u = stream.upload(&up).unwrap();
        let mut out = stream.alloc_zeroed::<f32>(100).unwrap();
        ascend_npu::kernels::swiglu(&kernels, &stream, &g, &u, &mut out).unwrap();
        for ((&x, &y), &got) in gate.iter().zip(&up).zip(&out.to_vec().unwrap()) {
            let want = f64::from(x) / (1.0 + (-f64::from(x)).exp()) * f64::from(y);
            // fp32 SwiGLU: a few ulps of exp and division.
            assert!((f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1.0));
        }
    }
}

#[test]
fn core_counts_and_version_under_each_cann_release() {
    if let Ok(version) = std::env::var(CHILD_VAR) {
        match version.parse() {
            Ok(v) => child(v),
            Err(_) => bad_version_child(),
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for version in VERSIONS.iter().chain(&["8.x"]) {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "core_counts_and_version_under_each_cann_release",
                "--test-threads=1",
            ])
            .env(CHILD_VAR, version)
            .env(ascend_npu::sim::CANN_VERSION_VAR, version)
            .env(ascend_npu::sim::SOC_VAR, SOC)
            .env_remove(ascend_npu::sim::DEVICES_VAR)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "under CANN {version}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The child really ran the body (not a filtered-out empty run).
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
