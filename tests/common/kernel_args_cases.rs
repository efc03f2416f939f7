//! Kernel arguments in device memory, through raw calls: the cases of
//! `runtime_kernel_args_sim.rs` and of its hardware twins `runtime_kernel_args_hardware.rs`.

use std::ffi::{CStr, CString, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ascend_npu::sys::{self, Api};
use ascend_npu::{Device, DeviceBuffer, DeviceSlice, Stream};

const N: usize = 64;

fn silu_mul(g: f32, u: f32) -> f32 {
    g / (1.0 + (-g).exp()) * u
}

/// The raw pieces of one SwiGLU launch on a raw stream.
struct Raw {
    api: &'static Api,
    stream: sys::aclrtStream,
    func: sys::aclrtFuncHandle,
    binary: sys::aclrtBinHandle,
}

impl Raw {
    fn new() -> Raw {
        let api = ascend_npu::raw_api().unwrap();
        let path = CString::new(env!("ASCEND_NPU_SIM_KERNELS")).unwrap();
        let mut binary = std::ptr::null_mut();
        let mut func = std::ptr::null_mut();
        let mut stream = std::ptr::null_mut();
        let name = CString::new("swiglu_f32").unwrap();
        // SAFETY: valid C strings and out-pointers; the device's context is current on this
        // thread (Device::open set it).
        unsafe {
            assert_eq!(
                api.aclrtBinaryLoadFromFile().unwrap()(
                    path.as_ptr(),
                    std::ptr::null_mut(),
                    &mut binary
                ),
                0
            );
            assert_eq!(
                api.aclrtBinaryGetFunction().unwrap()(binary, name.as_ptr(), &mut func),
                0
            );
            assert_eq!(api.aclrtCreateStream().unwrap()(&mut stream), 0);
        }
        Raw {
            api,
            stream,
            func,
            binary,
        }
    }

    /// `aclrtLaunchKernel` of swiglu_f32 with `args` as `argsData`.
    fn launch(&self, args: *const c_void, size: usize) -> sys::aclError {
        // SAFETY: live handles; the pointer is what the test means to pass.
        unsafe { self.api.aclrtLaunchKernel().unwrap()(self.func, 1, args, size, self.stream) }
    }

    /// `aclGetRecentErrMsg` of this thread, through whichever provider is active.
    fn recent_message(&self) -> String {
        // SAFETY: no arguments; NULL or a NUL-terminated string owned by the runtime.
        let ptr = unsafe { self.api.aclGetRecentErrMsg().unwrap()() };
        if ptr.is_null() {
            return String::new();
        }
        // SAFETY: checked non-NULL; copied before any other call.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }

    fn synchronize(&self) -> sys::aclError {
        // SAFETY: live stream.
        unsafe { self.api.aclrtSynchronizeStream().unwrap()(self.stream) }
    }

    /// Synchronous host-to-device copy of `bytes` to `dst`.
    fn write(&self, dst: u64, bytes: &[u8]) {
        // SAFETY: `dst` is a live device buffer of at least `bytes.len()` bytes.
        let rc = unsafe {
            self.api.aclrtMemcpy().unwrap()(
                dst as *mut c_void,
                bytes.len(),
                bytes.as_ptr().cast(),
                bytes.len(),
                sys::ACL_MEMCPY_HOST_TO_DEVICE,
            )
        };
        assert_eq!(rc, 0);
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: live handles, destroyed once, after their work.
        unsafe {
            self.api.aclrtSynchronizeStream().unwrap()(self.stream);
            self.api.aclrtDestroyStream().unwrap()(self.stream);
            self.api.aclrtBinaryUnLoad().unwrap()(self.binary);
        }
    }
}

/// Inputs, a tiling and two outputs of one SwiGLU of `N` elements.
struct Data {
    gate: DeviceBuffer<f32>,
    up: DeviceBuffer<f32>,
    tiling: DeviceBuffer<u32>,
    out: [DeviceBuffer<f32>; 2],
    expected: Vec<f32>,
}

impl Data {
    fn new(stream: &Stream) -> Data {
        let g: Vec<f32> = (0..N).map(|i| i as f32 / 8.0 - 4.0).collect();
        let u: Vec<f32> = (0..N).map(|i| 1.0 + i as f32 / 16.0).collect();
        let data = Data {
            gate: stream.upload(&g).unwrap(),
            up: stream.upload(&u).unwrap(),
            // SwigluTiling { total_len, block_len, tile_len, reserved }
            tiling: stream.upload(&[N as u32, N as u32, N as u32, 0]).unwrap(),
            out: [
                stream.alloc_zeroed(N).unwrap(),
                stream.alloc_zeroed(N).unwrap(),
            ],
            expected: g.iter().zip(&u).map(|(&g, &u)| silu_mul(g, u)).collect(),
        };
        stream.synchronize().unwrap();
        data
    }

    /// The packed arguments writing into `out[which]`.
    fn blob(&self, which: usize) -> Vec<u8> {
        [
            self.gate.device_ptr(),
            self.up.device_ptr(),
            self.out[which].device_ptr(),
            self.tiling.device_ptr(),
        ]
        .iter()
        .flat_map(|p| p.to_ne_bytes())
        .collect()
    }

    fn check(&self, which: usize) {
        for (i, (&got, &want)) in self.out[which]
            .to_vec()
            .unwrap()
            .iter()
            .zip(&self.expected)
            .enumerate()
        {
            // fp32 SwiGLU: a few ulps of exp and division.
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "out[{which}][{i}] = {got}, expected {want}"
            );
        }
        assert!(
            self.out[1 - which]
                .to_vec()
                .unwrap()
                .iter()
                .all(|&x| x == 0.0)
        );
    }
}

fn setup() -> (Device, Stream, Raw) {
    super::backend::select();
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let raw = Raw::new();
    (device, stream, raw)
}

pub fn a_host_blob_as_args_data_is_rejected_with_its_rule() {
    let (_device, stream, raw) = setup();
    let data = Data::new(&stream);
    let blob = data.blob(0);
    let rc = raw.launch(blob.as_ptr().cast(), blob.len());
    assert_eq!(rc, sys::ACL_ERROR_RT_PARAM_INVALID);
    let message = raw.recent_message();
    assert!(
        message.contains("launch.args-in-device-memory") && message.contains("host memory"),
        "{message}"
    );
    assert_eq!(raw.synchronize(), 0);
    assert!(data.out[0].to_vec().unwrap().iter().all(|&x| x == 0.0));
}

pub fn a_device_blob_launches() {
    let (_device, stream, raw) = setup();
    let data = Data::new(&stream);
    let blob = stream.upload(&data.blob(0)).unwrap();
    stream.synchronize().unwrap();
    assert_eq!(
        raw.launch(blob.device_ptr() as *const c_void, blob.len()),
        0
    );
    assert_eq!(raw.synchronize(), 0);
    data.check(0);
}

/// Releases the raw stream's gate.
static OPEN: AtomicBool = AtomicBool::new(false);

/// Holds the stream until [`OPEN`] is set (at most 10 s, so a broken test cannot hang).
unsafe extern "C" fn hold(_: *mut c_void) {
    let start = Instant::now();
    while !OPEN.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn the_blob_is_read_when_the_kernel_starts_not_at_the_call() {
    let (_device, stream, raw) = setup();
    let data = Data::new(&stream);
    let blob = stream.upload(&data.blob(0)).unwrap();
    stream.synchronize().unwrap();
    // SAFETY: live stream; `hold` takes no argument and returns within 10 s.
    let rc = unsafe {
        raw.api.aclrtLaunchHostFunc().unwrap()(raw.stream, Some(hold), std::ptr::null_mut())
    };
    assert_eq!(rc, 0);
    assert_eq!(
        raw.launch(blob.device_ptr() as *const c_void, blob.len()),
        0
    );
    // Rewritten after the launch call, before the kernel can start: the kernel writes out[1].
    raw.write(blob.device_ptr(), &data.blob(1));
    OPEN.store(true, Ordering::Release);
    assert_eq!(raw.synchronize(), 0);
    data.check(1);
}
