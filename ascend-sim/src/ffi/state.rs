//! The process-wide simulator: devices and the registries of live objects.

use std::ffi::CString;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ascend_sys::ACL_ERROR_RT_NO_DEVICE;

use crate::base::config::SimConfig;
use crate::base::error::{SimError, SimResult};
use crate::base::sync::lock;
use crate::operators::aclnn::executor::Executor;
use crate::operators::aclnn::objects::{Array, Scalar, TensorDesc, TensorList};
use crate::runtime::callback::Reports;
use crate::runtime::context::{Context, clear_current_if};
use crate::runtime::device::Device;
use crate::runtime::event::Event;
use crate::runtime::handles::{
    ARRAY_TAG, BINARY_TAG, CONTEXT_TAG, EVENT_TAG, EXECUTOR_TAG, FUNCTION_TAG, KERNEL_ARGS_TAG,
    Registry, SCALAR_TAG, STREAM_TAG, TENSOR_LIST_TAG, TENSOR_TAG, as_ptr,
};
use crate::runtime::kernel::{Binary, Function};
use crate::runtime::kernel_args::KernelArgs;
use crate::runtime::machine::Machine;
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
    /// The simulated hardware, which runtime and operator code receive as an argument.
    pub(crate) machine: Machine,
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
        machine: Machine {
            devices,
            host: HostMemory::default(),
        },
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
        reports: Reports::default(),
        init: Mutex::new(InitState::Never),
        epoch: Instant::now(),
    })
}

// The configuration chosen by `configure` before the simulator starts.
static PENDING: Mutex<Option<SimConfig>> = Mutex::new(None);

/// Sets the simulated machine. Call it before the first runtime call; once the simulator has
/// started, only a configuration equal to the running one is accepted (so independent callers,
/// e.g. tests in one process, can all ask for the same machine).
pub fn configure(config: SimConfig) -> Result<(), String> {
    config.validate()?;
    let mut pending = lock(&PENDING);
    if let Some(running) = running_config() {
        return if running == config {
            Ok(())
        } else {
            Err(format!(
                "the simulator is already running with {running:?}; it cannot switch to {config:?}"
            ))
        };
    }
    *pending = Some(config);
    Ok(())
}

/// Runs `start` with the configuration to start with (an explicit one, else the
/// environment's), holding the configuration lock so a concurrent [`configure`] either happens
/// before the start or sees the running configuration.
pub(crate) fn with_startup_config<R>(start: impl FnOnce(Result<SimConfig, String>) -> R) -> R {
    let mut pending = lock(&PENDING);
    let config = match pending.take() {
        Some(config) => Ok(config),
        None => SimConfig::from_env(),
    };
    start(config)
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

/// The simulated hardware, started on first use.
pub(crate) fn machine() -> SimResult<&'static Machine> {
    sim().map(|s| &s.machine)
}

/// The running configuration, if the simulator has started.
pub(crate) fn running_config() -> Option<SimConfig> {
    SIM.get()
        .and_then(|s| s.as_ref().ok())
        .map(|s| s.config.clone())
}

impl Sim {
    pub(crate) fn soc_name_of(&self, device: usize) -> &CString {
        &self.machine.devices[device].soc_name
    }

    /// Creates and registers a stream of `context` on `device`.
    pub(crate) fn new_stream(&'static self, device: usize, context: u64) -> SimResult<Arc<Stream>> {
        let stream = Stream::create(&self.machine.devices[device], context, || {
            self.streams.reserve()
        })?;
        self.streams.insert(stream.handle, stream.clone());
        Ok(stream)
    }

    /// Creates and registers a context with its default stream.
    pub(crate) fn new_context(
        &'static self,
        device: usize,
        is_default: bool,
    ) -> SimResult<Arc<Context>> {
        let handle = self.contexts.reserve();
        let default_stream = self.new_stream(device, handle)?;
        let ctx = Arc::new(Context::new(handle, device, is_default, default_stream));
        self.contexts.insert(handle, ctx.clone());
        Ok(ctx)
    }

    /// Unregisters a context, then its streams, after their queued work has run.
    pub(crate) fn destroy_context(&self, ctx: &Context) -> SimResult<()> {
        // Removal may fail if another thread destroyed it first; the streams are still ours.
        let _ = self.contexts.remove(as_ptr(ctx.handle));
        let mut first_error = Ok(());
        let streams = ctx
            .take_streams()
            .into_iter()
            .filter_map(|h| self.streams.remove(as_ptr(h)).ok())
            .chain(self.streams.remove(as_ptr(ctx.default_stream.handle)).ok());
        for stream in streams {
            self.reports.forget_stream(stream.handle);
            let r = stream.shutdown(false);
            if first_error.is_ok() {
                first_error = r;
            }
        }
        clear_current_if(ctx.handle);
        first_error
    }

    /// `aclrtSetDevice`: one more reference to device `id`; its default context.
    pub(crate) fn set_device(&'static self, id: usize) -> SimResult<Arc<Context>> {
        self.machine.devices[id].acquire(|| self.new_context(id, true))
    }

    /// `aclrtResetDevice` (or the forced variant) of device `id`.
    pub(crate) fn reset_device(&self, id: usize, force: bool) -> SimResult<()> {
        self.machine.devices[id].release(force, |ctx| self.destroy_context(ctx))
    }
}
