//! The provider a simulator suite runs on.
//!
//! By default the simulator compiled into the test binary (`sim`). With `ASCEND_NPU_BACKEND=cann`
//! the same suite goes through the `cann` provider, the real `dlopen` and symbol resolution: in
//! CI against the drop-in simulator libraries (`scripts/sim-cann-libs.sh`, with
//! `ASCEND_NPU_CANN_PATH` naming their directory and `ASCEND_SIM_DEVICES` at least [`DEVICES`]).
//!
//! Checks that read the compiled-in simulator's own state cannot see the instance behind the
//! `cann` provider; they ask [`sim_only`] first, which skips them there with a message.

use std::sync::Once;

use ascend_npu::{BACKEND_VAR, Backend};

/// Devices the suites may use: device 1 is for tests that need a second device, or one with
/// nobody else's work on it.
pub const DEVICES: usize = 2;

/// Selects the backend named by `ASCEND_NPU_BACKEND` (`sim` when unset), giving the compiled-in
/// simulator [`DEVICES`] devices. Every test of a suite calls it first.
pub fn select() -> Backend {
    let backend = match std::env::var(BACKEND_VAR) {
        Ok(value) if !value.is_empty() => Backend::parse(&value).unwrap(),
        _ => Backend::Sim,
    };
    if backend == Backend::Sim {
        static CONFIGURE: Once = Once::new();
        CONFIGURE.call_once(|| {
            let config = ascend_npu::sim::SimConfig::uniform(
                ascend_npu::sim::SocModel::ascend910b2(),
                DEVICES,
            );
            ascend_npu::sim::configure(config).expect("configured before first use");
        });
    }
    ascend_npu::select_backend(backend).unwrap_or_else(|e| panic!("selecting {backend:?}: {e}"));
    backend
}

/// Whether a check of the compiled-in simulator's state (`ascend_npu::sim`) can run: only
/// under the `sim` provider. Otherwise prints why the check is skipped.
pub fn sim_only(check: &str) -> bool {
    let active = ascend_npu::active_backend().unwrap();
    if active == Backend::Sim {
        return true;
    }
    eprintln!(
        "skipped under the {} provider: {check} reads the compiled-in simulator",
        active.name()
    );
    false
}
