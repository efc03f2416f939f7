//! Kernel launch execution: every block of a loaded kernel runs through the shim, which reaches
//! device memory only through the launching device's allocation map.

use std::ffi::{CStr, c_void};
use std::sync::Mutex;

use ascend_sys::{
    ACL_ERROR_RT_AICORE_EXCEPTION, ACL_ERROR_RT_INTERNAL_ERROR, ACL_ERROR_RT_PARAM_INVALID,
    ACL_ERROR_RT_VECTOR_CORE_EXCEPTION,
};

use crate::base::cost::LaunchWork;
use crate::base::error::{SimError, SimResult};
use crate::runtime::device::Device;
use crate::runtime::kernel::{Function, KernelCounters, ShimHost, ShimLaunch, abi};
use crate::runtime::memory::{Mapped, device_of, is_device_address};

/// Runs every block of `function` now, on the calling (stream worker) thread and the shim's
/// pool. Device addresses are translated through `dev`'s allocation map (the kernel reaches
/// its own device's memory only); the mapped ranges stay alive until the launch returns.
pub(crate) fn run(
    function: &Function,
    dev: &Device,
    num_blocks: u32,
    args: &[u8],
) -> SimResult<Launched> {
    let translator = Translator {
        dev,
        mapped: Mutex::new(Vec::new()),
        ranges: Mutex::new(Vec::new()),
        first_error: Mutex::new(None),
    };
    let host = ShimHost {
        ctx: &translator as *const Translator<'_> as *mut c_void,
        translate,
    };
    let mut counters = KernelCounters::default();
    let mut error = vec![0u8; 4096];
    let launch = ShimLaunch {
        num_blocks,
        args: args.as_ptr().cast(),
        args_size: args.len(),
        host: &host,
        counters_out: &mut counters,
        error_out: error.as_mut_ptr().cast(),
        error_capacity: error.len(),
    };
    // SAFETY: `launch` and everything it points to outlive the call; the entry only reads
    // `args_size` bytes of `args` and writes within `error_capacity` and `counters_out`.
    let rc = unsafe { (function.entry())(&launch) };
    // The codes are small non-negative numbers; anything else is an internal error below.
    let rc = u32::try_from(rc).unwrap_or(u32::MAX);
    if rc == abi::OK {
        return Ok(Launched {
            counters,
            work: work(function, num_blocks, &counters, translator.footprint()),
        });
    }
    let message = CStr::from_bytes_until_nul(&error)
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_default();
    let detail = translator
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .map(|e| format!(" (simulator: {e})"))
        .unwrap_or_default();
    let code = match rc {
        abi::ERR_KERNEL if function.is_vector() => ACL_ERROR_RT_VECTOR_CORE_EXCEPTION,
        abi::ERR_KERNEL => ACL_ERROR_RT_AICORE_EXCEPTION,
        abi::ERR_ARGS | abi::ERR_INVALID_LAUNCH => ACL_ERROR_RT_PARAM_INVALID,
        _ => ACL_ERROR_RT_INTERNAL_ERROR,
    };
    Err(SimError::new(code, format!("{message}{detail}")))
}

/// What a successful launch did: the shim's counters and the inputs of the cost model.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Launched {
    pub(crate) counters: KernelCounters,
    pub(crate) work: LaunchWork,
}

fn work(function: &Function, blocks: u32, c: &KernelCounters, footprint: u64) -> LaunchWork {
    LaunchWork {
        blocks,
        vector_only: function.is_vector(),
        gm_read: c.gm_to_local_bytes,
        gm_written: c.local_to_gm_bytes,
        footprint,
        busiest_read: c.busiest_gm_read,
        busiest_written: c.busiest_gm_written,
        busiest_macs: c.busiest_cube_macs,
        busiest_vector_repeats: c.busiest_vector_repeats,
        exchange_read: c.gm_exchange_read_bytes,
        exchange_written: c.gm_exchange_written_bytes,
        exchange_footprint: c.gm_exchange_footprint,
    }
}

/// The shim's view of device memory for one launch.
struct Translator<'a> {
    dev: &'a Device,
    mapped: Mutex<Vec<Mapped>>,
    /// Device ranges the launch translated, for its footprint.
    ranges: Mutex<Vec<(u64, u64)>>,
    first_error: Mutex<Option<String>>,
}

impl Translator<'_> {
    /// Distinct device bytes the launch translated (the union of its ranges).
    fn footprint(&self) -> u64 {
        let mut ranges =
            std::mem::take(&mut *self.ranges.lock().unwrap_or_else(|p| p.into_inner()));
        ranges.sort_unstable();
        let (mut total, mut end) = (0u64, 0u64);
        for (a, b) in ranges {
            let a = a.max(end);
            if b > a {
                total += b - a;
                end = b;
            }
        }
        total
    }

    fn map(&self, addr: u64, len: u64) -> Result<*mut c_void, String> {
        if !is_device_address(addr) {
            return Err(format!("{addr:#x} is not a device address"));
        }
        if device_of(addr) != self.dev.id {
            return Err(format!(
                "{addr:#x} is memory of device {}, but the kernel runs on device {}",
                device_of(addr),
                self.dev.id
            ));
        }
        let len = usize::try_from(len).map_err(|_| format!("length {len} does not fit usize"))?;
        let mapped = self.dev.memory.map(addr, len).map_err(|e| e.message)?;
        let ptr = mapped.ptr().cast();
        self.ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((addr, addr.saturating_add(len as u64)));
        self.mapped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(mapped);
        Ok(ptr)
    }
}

unsafe extern "C" fn translate(ctx: *mut c_void, device_addr: u64, len: u64) -> *mut c_void {
    // SAFETY: `ctx` is the `Translator` that `run` passed in and keeps alive for the
    // whole launch; only shared references are made (its state is behind mutexes).
    let translator = unsafe { &*(ctx as *const Translator<'_>) };
    match std::panic::catch_unwind(|| translator.map(device_addr, len)) {
        Ok(Ok(ptr)) => ptr,
        Ok(Err(message)) => {
            let mut first = translator
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(message);
            std::ptr::null_mut()
        }
        Err(_) => std::ptr::null_mut(),
    }
}
