//! Shared by the benches: the machine line (cores, load), wall-clock medians, the CPU baselines
//! (the same maths with `matrixmultiply`, and numpy when a `python3` with numpy is on PATH; CI
//! needs neither), and the modelled device time from the simulator's counters.
//!
//! Every table row these benches print is Markdown, ready for the README.

#![allow(dead_code)] // each bench uses part of it

use std::process::Command;
use std::time::Instant;

use ascend_npu::{Backend, Device, Stream, select_backend};
use ascend_sim::DeviceCounters;

/// The simulator backend, the machine line, device 0 and a stream on it.
pub fn setup() -> (Device, Stream) {
    select_backend(Backend::Sim).expect("sim backend");
    machine();
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    (device, stream)
}

/// Prints the machine the numbers come from: logical cores and the 1/5/15-minute load.
pub fn machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    println!("machine: {cores} logical cores, load average {load} (1/5/15 min)");
}

/// `ASCEND_NPU_BENCH_ITERS` (default 5) timed runs after one warm-up; the median, in seconds.
pub fn median(mut run: impl FnMut()) -> f64 {
    let iters = std::env::var("ASCEND_NPU_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    run();
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Device counters before and after `run` (synchronised on both sides).
pub fn counted(stream: &Stream, run: impl FnOnce()) -> Delta {
    stream.synchronize().unwrap();
    let before = ascend_npu::sim::counters(0).unwrap();
    run();
    stream.synchronize().unwrap();
    let after = ascend_npu::sim::counters(0).unwrap();
    Delta { before, after }
}

/// The work between two counter snapshots.
pub struct Delta {
    before: DeviceCounters,
    after: DeviceCounters,
}

impl Delta {
    /// Global-memory bytes kernels read and aclnn operators read.
    pub fn read(&self) -> u64 {
        (self.after.kernels.gm_to_local_bytes - self.before.kernels.gm_to_local_bytes)
            + (self.after.aclnn_read_bytes - self.before.aclnn_read_bytes)
    }
    /// Global-memory bytes written.
    pub fn written(&self) -> u64 {
        (self.after.kernels.local_to_gm_bytes - self.before.kernels.local_to_gm_bytes)
            + (self.after.aclnn_write_bytes - self.before.aclnn_write_bytes)
    }
    /// Of [`Delta::read`] + [`Delta::written`], the kernels' bytes the cost model keeps in L2:
    /// memory a launch writes before it reads it (rings, workspaces) that fits the L2.
    pub fn l2(&self) -> u64 {
        self.after.kernel_l2_bytes - self.before.kernel_l2_bytes
    }
    /// The rest of the global-memory traffic: what crosses HBM (before re-reads hit L2).
    pub fn hbm(&self) -> u64 {
        self.read() + self.written() - self.l2()
    }
    /// Cube MACs of kernels.
    pub fn macs(&self) -> u64 {
        self.after.kernels.cube_macs - self.before.kernels.cube_macs
    }
    /// Modelled device time of the kernel launches, seconds (`ascend_sim::cost`).
    pub fn modelled_kernels(&self) -> f64 {
        (self.after.modelled_kernel_ns - self.before.modelled_kernel_ns) as f64 * 1e-9
    }
}

/// `C[m, n] = A[m, k] · B[n, k]ᵀ` in f32 with `matrixmultiply` (single-threaded, as the crate
/// is built here); the seconds of the median run.
pub fn cpu_sgemm_nt(m: usize, n: usize, k: usize) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut c = vec![0f32; m * n];
    median(|| {
        // SAFETY: a is m×k (row stride k), b is read as k×n through strides (1, k), c is m×n;
        // all three live for the call and do not overlap.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                1,
                k as isize,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        std::hint::black_box(&c);
    })
}

/// Seconds numpy takes for `script`'s timed statement (median of the same iteration count),
/// or `None` without a `python3` that has numpy. `setup` runs once first.
pub fn numpy(setup: &str, stmt: &str) -> Option<f64> {
    let iters = std::env::var("ASCEND_NPU_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(5)
        .max(1);
    let script = format!(
        "import time, numpy as np\n{setup}\n{stmt}\nts=[]\nfor _ in range({iters}):\n    t=time.perf_counter()\n    {stmt}\n    ts.append(time.perf_counter()-t)\nts.sort()\nprint(ts[len(ts)//2])\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// numpy's E4M3FN decode table, built in Python from the format's definition.
pub const NUMPY_E4M3: &str = "def e4m3(c):\n    s=-1.0 if c&128 else 1.0\n    e=(c>>3)&15\n    m=c&7\n    if e==15 and m==7: return float('nan')\n    return s*(m/8*2.0**-6 if e==0 else (1+m/8)*2.0**(e-7))\nLUT=np.array([e4m3(c) for c in range(256)],dtype=np.float32)";

/// "12.3 ms"-style text of seconds.
pub fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// "33.5 MB"-style text of bytes.
pub fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// A ratio, or "n/a" without the peer.
pub fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or("n/a".into(), |b| format!("{:.2}×", a / b))
}
