//! The process-wide simulator: devices and the registries of live objects.

use std::ffi::CString;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use ascend_sys::ACL_ERROR_RT_NO_DEVICE;

use crate::base::config::{SimConfig, with_startup_config};
use crate::base::error::{SimError, SimResult};
use crate::operators::aclnn::executor::Executor;
use crate::operators::aclnn::objects::{Array, Scalar, TensorDesc, TensorList};
use crate::runtime::callback::Reports;
use crate::runtime::context::Context;
use crate::runtime::device::Device;
use crate::runtime::event::Event;
use crate::runtime::handles::{
    ARRAY_TAG, BINARY_TAG, CONTEXT_TAG, EVENT_TAG, EXECUTOR_TAG, FUNCTION_TAG, KERNEL_ARGS_TAG,
    Registry, SCALAR_TAG, STREAM_TAG, TENSOR_LIST_TAG, TENSOR_TAG,
};
use crate::runtime::kernel::{Binary, Function};
use crate::runtime::kernel_args::KernelArgs;
use crate::runtime::memory::HostMemory;
use crate::runtime::stream::Stream;

/// Whether `aclInit` is in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InitState {
    Never,
    Initialized,
    Finalized,
}

pub(crate) struct Sim {
    pub(crate) config: SimConfig,
    pub(crate) devices: Vec<Device>,
    pub(crate) contexts: Registry<Context>,
    pub(crate) streams: Registry<Stream>,
    pub(crate) events: Registry<Event>,
    pub(crate) binaries: Registry<Binary>,
    pub(crate) functions: Registry<Function>,
    pub(crate) kernel_args: Registry<KernelArgs>,
    pub(crate) tensors: Registry<TensorDesc>,
    pub(crate) scalars: Registry<Scalar>,
    pub(crate) arrays: Registry<Array>,
    pub(crate) tensor_lists: Registry<TensorList>,
    pub(crate) executors: Registry<Executor>,
    pub(crate) host: HostMemory,
    pub(crate) reports: Reports,
    pub(crate) init: Mutex<InitState>,
    /// Zero point of event timestamps.
    pub(crate) epoch: Instant,
}

static SIM: OnceLock<Result<Sim, String>> = OnceLock::new();

fn start(config: Result<SimConfig, String>) -> Result<Sim, String> {
    let config = config?;
    config.validate()?;
    let devices = config
        .devices
        .iter()
        .enumerate()
        .map(|(i, soc)| Device::new(i, soc.clone()))
        .collect();
    Ok(Sim {
        config,
        devices,
        contexts: Registry::new("context", CONTEXT_TAG),
        streams: Registry::new("stream", STREAM_TAG),
        events: Registry::new("event", EVENT_TAG),
        binaries: Registry::new("kernel binary", BINARY_TAG),
        functions: Registry::new("kernel function", FUNCTION_TAG),
        kernel_args: Registry::new("kernel argument list", KERNEL_ARGS_TAG),
        tensors: Registry::new("aclTensor", TENSOR_TAG),
        scalars: Registry::new("aclScalar", SCALAR_TAG),
        arrays: Registry::new("aclnn array", ARRAY_TAG),
        tensor_lists: Registry::new("aclTensorList", TENSOR_LIST_TAG),
        executors: Registry::new("aclOpExecutor", EXECUTOR_TAG),
        host: HostMemory::default(),
        reports: Reports::default(),
        init: Mutex::new(InitState::Never),
        epoch: Instant::now(),
    })
}

/// The simulator, started on first use with the configured (or environment's) machine.
pub(crate) fn sim() -> SimResult<&'static Sim> {
    SIM.get_or_init(|| with_startup_config(start))
        .as_ref()
        .map_err(|e| {
            SimError::new(
                ACL_ERROR_RT_NO_DEVICE,
                format!("ascend-sim could not start: {e}"),
            )
        })
}

/// The running configuration, if the simulator has started.
pub(crate) fn running_config() -> Option<SimConfig> {
    SIM.get()
        .and_then(|s| s.as_ref().ok())
        .map(|s| s.config.clone())
}

impl Sim {
    /// The device with id `id`, or `ACL_ERROR_RT_INVALID_DEVICEID`.
    pub(crate) fn device(&self, id: i64) -> SimResult<&Device> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.devices.get(i))
            .ok_or_else(|| {
                SimError::device_id(format!(
                    "device id {id} is invalid; the simulator has {} device(s): 0..={}",
                    self.devices.len(),
                    self.devices.len() - 1
                ))
            })
    }

    pub(crate) fn soc_name_of(&self, device: usize) -> &CString {
        &self.devices[device].soc_name
    }
}
