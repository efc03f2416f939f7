//! Simulated ranks for the HCCL suites: one thread and one device per rank.

use ascend_npu::runtime::comm::{Comm, CommConfig, RootInfo};
use ascend_npu::{Device, Stream};

/// Devices the HCCL suites configure the simulator with.
pub const SIM_DEVICES: usize = 8;

/// Selects the backend named by `ASCEND_NPU_BACKEND` as [`super::backend::select`] does, but
/// gives the compiled-in simulator [`SIM_DEVICES`] devices (under the `cann` provider, the
/// cases use as many ranks as it reports devices).
#[cfg(feature = "sim")]
pub fn setup_ranks() {
    setup_ranks_with_hbm(None);
}

/// [`setup_ranks`], with `hbm_bytes` of memory on each simulated device if given (a suite
/// calls one of the two, always with the same value).
#[cfg(feature = "sim")]
pub fn setup_ranks_with_hbm(hbm_bytes: Option<u64>) {
    setup_ranks_on("Ascend910B2", hbm_bytes);
}

/// [`setup_ranks_with_hbm`] on the simulated SoC `soc` (a suite uses one).
#[cfg(feature = "sim")]
pub fn setup_ranks_on(soc: &str, hbm_bytes: Option<u64>) {
    setup_devices_on(soc, SIM_DEVICES, hbm_bytes);
}

/// [`setup_ranks_on`] with `devices` simulated devices (a suite uses one count).
#[cfg(feature = "sim")]
pub fn setup_devices_on(soc: &str, devices: usize, hbm_bytes: Option<u64>) {
    use ascend_npu::Backend;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use ascend_npu::sim::{SimConfig, SocModel, configure};
        let backend = match std::env::var(ascend_npu::BACKEND_VAR) {
            Ok(value) if !value.is_empty() => Backend::parse(&value).unwrap(),
            _ => Backend::Sim,
        };
        if backend == Backend::Sim {
            let mut config =
                SimConfig::uniform(SocModel::by_name(soc).expect("a known SoC"), devices)
                    .expect("a device count in 1..=64");
            if let Some(bytes) = hbm_bytes {
                config = config.with_hbm_bytes(bytes);
            }
            configure(config).expect("configured before first use");
        }
        ascend_npu::select_backend(backend).unwrap();
    });
}

/// The rank counts of `wanted` that the backend's devices allow; says which are skipped.
pub fn rank_counts(wanted: &[u32]) -> Vec<u32> {
    let available = Device::count().unwrap() as u32;
    for &n in wanted.iter().filter(|&&n| n > available) {
        eprintln!("skipped: {n} ranks need {n} devices, the backend has {available}");
    }
    wanted.iter().copied().filter(|&n| n <= available).collect()
}

/// Runs `body(comm, stream)` on `n` ranks (devices `0..n`, one thread each) of a fresh
/// communicator, and returns each rank's result in rank order.
pub fn on_ranks<R: Send>(n: u32, body: impl Fn(&Comm, &Stream) -> R + Sync) -> Vec<R> {
    on_new_ranks(n, None, body)
}

/// [`on_ranks`] on a communicator every rank builds with `config`.
pub fn on_ranks_with<R: Send>(
    n: u32,
    config: &CommConfig,
    body: impl Fn(&Comm, &Stream) -> R + Sync,
) -> Vec<R> {
    on_new_ranks(n, Some(config), body)
}

fn on_new_ranks<R: Send>(
    n: u32,
    config: Option<&CommConfig>,
    body: impl Fn(&Comm, &Stream) -> R + Sync,
) -> Vec<R> {
    let root = RootInfo::new(&Device::open(0).unwrap()).unwrap();
    // Ranks get the root info as bytes, as they would from another process.
    let bytes = root.as_bytes().to_vec();
    on_threads((0..n).collect(), |rank| {
        let device = Device::open(rank as usize).unwrap();
        let root = RootInfo::from_bytes(&bytes).unwrap();
        let comm = match config {
            None => Comm::init(&device, &root, rank, n),
            Some(config) => Comm::init_with(&device, &root, rank, n, config),
        };
        let stream = device.new_stream().unwrap();
        body(&comm.unwrap(), &stream)
    })
}

/// Runs `body(comm, stream)` on each of `comms` (one thread each, with a new stream of the
/// rank's device); results in the comms' order.
pub fn on_comms<R: Send>(comms: Vec<Comm>, body: impl Fn(&Comm, &Stream) -> R + Sync) -> Vec<R> {
    on_threads(comms, |comm| {
        let stream = comm.device().new_stream().unwrap();
        body(&comm, &stream)
    })
}

/// `body(item)` for each item on its own thread; results in the items' order.
pub fn on_threads<I: Send, R: Send>(items: Vec<I>, body: impl Fn(I) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let body = &body;
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || body(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a rank panicked"))
            .collect()
    })
}

/// Sets the compiled-in simulator's HCCL timeout (`Duration::ZERO` restores the default).
/// Returns false, with a message, under another provider, whose simulator instance (if any)
/// this process cannot configure.
#[cfg(feature = "sim")]
pub fn set_sim_hccl_timeout(timeout: std::time::Duration) -> bool {
    if ascend_npu::active_backend().unwrap() != ascend_npu::Backend::Sim {
        eprintln!("skipped: the HCCL timeout is set on the compiled-in simulator only");
        return false;
    }
    ascend_npu::sim::hccl::set_timeout(timeout);
    true
}
