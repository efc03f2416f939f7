//! The provider a simulator suite runs on.
//!
//! By default the simulator compiled into the test binary (`sim`). With `ASCEND_NPU_BACKEND=cann`
//! the same suite goes through the `cann` provider, the real `dlopen` and symbol resolution: in
//! CI against the drop-in simulator libraries (`scripts/sim-cann-libs.sh`, with
//! `ASCEND_NPU_CANN_PATH` naming their directory and `ASCEND_SIM_DEVICES` at least [`DEVICES`]).
//!
//! The compiled-in simulator's own state is another instance than the one behind the `cann`
//! provider: checks of it go through [`counters`], which reads whichever simulator is active.

use std::sync::Once;

use ascend_npu::sim::DeviceCounters;
use ascend_npu::sys::CannSearch;
use ascend_npu::{BACKEND_VAR, Backend};

/// Devices the suites may use: device 1 is for tests that need a second device, or one with
/// nobody else's work on it.
pub const DEVICES: usize = 2;

/// Selects the backend named by `ASCEND_NPU_BACKEND` (`sim` when unset), giving the compiled-in
/// simulator at least [`DEVICES`] devices of the `ASCEND_SIM_*` variables' SoC and release. Every test of a suite calls it first. Under a hardware twin
/// (whose setup, [`super::hardware`], chose `cann`) it keeps `cann`.
pub fn select() -> Backend {
    if super::on_hardware() {
        return Backend::Cann;
    }
    let backend = match std::env::var(BACKEND_VAR) {
        Ok(value) if !value.is_empty() => Backend::parse(&value).unwrap(),
        _ => Backend::Sim,
    };
    if backend == Backend::Sim {
        static CONFIGURE: Once = Once::new();
        CONFIGURE.call_once(|| {
            // The machine the `ASCEND_SIM_*` variables describe (one Ascend910B2 under the
            // newest release when unset), with at least DEVICES devices: a child process of
            // a test runs as another SoC or release, or without some functions, this way.
            let env = ascend_npu::sim::SimConfig::from_env().expect("the ASCEND_SIM_* variables");
            let count = env.devices.len().max(DEVICES);
            let config = ascend_npu::sim::SimConfig {
                devices: vec![env.devices[0].clone(); count],
                ..env
            };
            ascend_npu::sim::configure(config).expect("configured before first use");
        });
    }
    ascend_npu::select_backend(backend).unwrap_or_else(|e| panic!("selecting {backend:?}: {e}"));
    backend
}

/// Device `device`'s counters from the simulator behind the active provider: the compiled-in
/// one, or the drop-in libraries' through their extra C export `ascend_sim_device_counters`.
/// `None`, with a message, when the provider is not a simulator (CANN on an NPU).
pub fn counters(device: usize) -> Option<DeviceCounters> {
    if ascend_npu::active_backend().unwrap() == Backend::Sim {
        return Some(ascend_npu::sim::counters(device).expect("a simulated device"));
    }
    type Get = unsafe extern "C" fn(u32, *mut DeviceCounters, usize) -> i32;
    // The provider has opened the runtime library already; opening the same file again gives
    // the same instance.
    let search = CannSearch::from_env();
    let library = search
        .paths_for("libacl_rt.so")
        .into_iter()
        .find_map(|path| {
            // SAFETY: the library is loaded in this process already; opening it runs nothing new.
            unsafe { libloading::Library::new(path) }.ok()
        })?;
    // SAFETY: the drop-in libraries export this name with this prototype (ascend-sim-cann).
    let Ok(get) = (unsafe { library.get::<Get>(b"ascend_sim_device_counters\0") }) else {
        eprintln!(
            "skipped: the cann provider's runtime is not the drop-in simulator (no counters)"
        );
        return None;
    };
    let mut counters = DeviceCounters::default();
    // SAFETY: `counters` is writable and of the size passed.
    let rc = unsafe { get(device as u32, &mut counters, size_of::<DeviceCounters>()) };
    assert_eq!(rc, 0, "ascend_sim_device_counters({device}) failed");
    Some(counters)
}
