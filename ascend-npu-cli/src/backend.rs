//! Loading the backend the user chose, and what it tells about itself.

use ascend_npu::kernels::Kernels;
use ascend_npu::sim::SocModel;
use ascend_npu::sys::CannVersion;
use ascend_npu::{Backend, Device, Stream};

use crate::Failure;

/// `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The installed CANN toolkit on a machine with an NPU.
    Cann,
    /// The CPU simulator compiled into this tool.
    Sim,
}

impl BackendChoice {
    fn backend(self) -> Backend {
        match self {
            BackendChoice::Cann => Backend::Cann,
            BackendChoice::Sim => Backend::Sim,
        }
    }
}

/// Device 0 of the chosen backend, with the facts every command reports.
pub struct Session {
    /// The backend in use.
    pub backend: Backend,
    /// Device 0.
    pub device: Device,
    /// A stream on it.
    pub stream: Stream,
    /// `aclrtGetSocName`.
    pub soc: String,
    /// The CANN release (the simulator answers as the one it simulates).
    pub cann_version: CannVersion,
    /// The simulator's model of this SoC: clock, memories (known for every SoC we support).
    pub soc_model: Option<SocModel>,
}

impl Session {
    /// Selects and initialises `choice` and opens device 0. Any failure is
    /// [`Failure::Backend`], with the loader's message naming the libraries and paths tried.
    pub fn open(choice: BackendChoice) -> Result<Session, Failure> {
        let backend = choice.backend();
        let load = |e: ascend_npu::Error| Failure::Backend(format!("{}: {e}", backend.name()));
        if backend == Backend::Sim {
            configure_simulator().map_err(|e| Failure::Backend(format!("sim: {e}")))?;
        }
        ascend_npu::select_backend(backend).map_err(load)?;
        let device = Device::open(0).map_err(load)?;
        let stream = device.new_stream().map_err(load)?;
        let soc = device.soc_name().map_err(load)?;
        let cann_version = device.cann_version().map_err(load)?;
        let soc_model = soc.split_whitespace().next().and_then(SocModel::by_name);
        Ok(Session {
            backend,
            device,
            stream,
            soc,
            cann_version,
            soc_model,
        })
    }

    /// Our kernels for device 0; an error (e.g. a release without the kernel-binary API) is
    /// reported by the cases that need them.
    pub fn kernels(&self) -> ascend_npu::Result<Kernels> {
        Kernels::load(&self.device)
    }
}

/// Devices the simulator gets unless `ASCEND_SIM_DEVICES` says otherwise: enough ranks for
/// the expert-parallel cases of every preset (memory is allocated only as used).
const SIM_DEVICES: usize = 8;

/// The environment's simulator configuration, with [`SIM_DEVICES`] devices unless it names a
/// count.
fn configure_simulator() -> Result<(), String> {
    use ascend_npu::sim::{DEVICES_VAR, SimConfig, configure};
    let mut config = SimConfig::from_env()?;
    if std::env::var_os(DEVICES_VAR).is_none() {
        let soc = config
            .devices
            .first()
            .cloned()
            .unwrap_or_else(SocModel::ascend910b2);
        config.devices = vec![soc; SIM_DEVICES];
    }
    configure(config)
}

/// Each CANN library file the cann provider opened, with its path; empty on the simulator.
/// Resolves every function first, so every library that serves one is opened.
pub fn resolved_libraries() -> Vec<(&'static str, String)> {
    let Ok(api) = ascend_npu::raw_api() else {
        return Vec::new();
    };
    let _ = api.missing();
    api.opened_libraries()
}
