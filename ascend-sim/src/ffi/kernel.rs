//! Kernel binaries and launch: `aclrtBinaryLoadFromFile`/`FromData`, `aclrtBinaryGetFunction`,
//! `aclrtKernelArgs*`, `aclrtLaunchKernel*`. A launch is a stream task that runs every block
//! through the shim.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ascend_sys::{
    ACL_ERROR_RT_FEATURE_NOT_SUPPORT, StaticSymbols, aclError, aclrtArgsHandle, aclrtBinHandle,
    aclrtBinaryLoadOptions, aclrtFuncHandle, aclrtLaunchKernelCfg, aclrtParamHandle,
    aclrtPlaceHolderInfo, aclrtStream,
};

use super::stream::for_submit;
use super::{guard, read_cstr, write_out};
use crate::base::error::{SimError, SimResult};
use crate::ffi::state::sim;
use crate::operators::kernel_launch;
use crate::runtime::device::Device;
use crate::runtime::handles::{KERNEL_PARAM_TAG, as_ptr};
use crate::runtime::kernel::{Binary, Function};
use crate::runtime::kernel_args::{ArgsSource, KernelArgs, check_host_param};
use crate::runtime::task::Task;

/// Blocks per launch allowed by the runtime (`numBlocks` in [1, 65535]).
const MAX_BLOCKS: u32 = 65535;

unsafe extern "C" fn aclrtBinaryLoadFromFile(
    bin_path: *const std::ffi::c_char,
    _options: *mut aclrtBinaryLoadOptions,
    bin_handle: *mut aclrtBinHandle,
) -> aclError {
    guard("aclrtBinaryLoadFromFile", || {
        // SAFETY: NULL or a NUL-terminated path, per the C contract.
        let path =
            unsafe { read_cstr(bin_path) }.ok_or_else(|| SimError::param("binPath is NULL"))?;
        let sim = sim()?;
        let binary = Arc::new(Binary::load(&path)?);
        let handle = sim.binaries.reserve();
        sim.binaries.insert(handle, binary);
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(bin_handle, as_ptr(handle), "binHandle") }
    })
}

unsafe extern "C" fn aclrtBinaryLoadFromData(
    data: *const c_void,
    length: usize,
    _options: *const aclrtBinaryLoadOptions,
    bin_handle: *mut aclrtBinHandle,
) -> aclError {
    guard("aclrtBinaryLoadFromData", || {
        if data.is_null() || length == 0 {
            return Err(SimError::param(format!(
                "data is {data:p} with length {length}; expected a host buffer holding a whole \
                 kernel binary"
            )));
        }
        if crate::runtime::memory::is_device_address(data as u64) {
            return Err(SimError::param(format!(
                "data {data:p} is device memory; the binary is read from host memory"
            )));
        }
        // SAFETY: `data` holds `length` readable host bytes (C contract).
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length) };
        let sim = sim()?;
        let binary = Arc::new(Binary::from_bytes(bytes, format!("data ({length} bytes)"))?);
        let handle = sim.binaries.reserve();
        sim.binaries.insert(handle, binary);
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(bin_handle, as_ptr(handle), "binHandle") }
    })
}

unsafe extern "C" fn aclrtBinaryUnLoad(bin_handle: aclrtBinHandle) -> aclError {
    guard("aclrtBinaryUnLoad", || {
        let sim = sim()?;
        sim.binaries.remove(bin_handle)?;
        // Its functions and their argument lists die with it; launches already queued keep
        // the library loaded.
        let binary = bin_handle as u64;
        for function in sim.functions.collect(|f| f.binary_handle == binary) {
            let _ = sim.functions.remove(as_ptr(function.handle));
            for args in sim.kernel_args.collect(|a| a.function == function.handle) {
                let _ = sim.kernel_args.remove(as_ptr(args.handle));
            }
        }
        Ok(())
    })
}

unsafe extern "C" fn aclrtBinaryGetFunction(
    bin_handle: aclrtBinHandle,
    kernel_name: *const std::ffi::c_char,
    func_handle: *mut aclrtFuncHandle,
) -> aclError {
    guard("aclrtBinaryGetFunction", || {
        let sim = sim()?;
        let binary = sim.binaries.get(bin_handle)?;
        // SAFETY: NULL or a NUL-terminated name, per the C contract.
        let name = unsafe { read_cstr(kernel_name) }
            .ok_or_else(|| SimError::param("kernelName is NULL"))?;
        let handle = sim.functions.reserve();
        let function = Function::find(binary, bin_handle as u64, &name, handle)?;
        sim.functions.insert(handle, Arc::new(function));
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(func_handle, as_ptr(handle), "funcHandle") }
    })
}

/// Validates a launch and queues it on `stream`; the arguments come from `args` (host bytes
/// copied at the call, or a device blob read when the launch executes).
fn launch(
    api: &'static str,
    func_handle: aclrtFuncHandle,
    num_blocks: u32,
    args: impl FnOnce(&'static Device) -> SimResult<ArgsSource>,
    stream: aclrtStream,
) -> SimResult<()> {
    let sim = sim()?;
    let function = sim.functions.get(func_handle)?;
    if num_blocks == 0 || num_blocks > MAX_BLOCKS {
        return Err(SimError::param(format!(
            "numBlocks {num_blocks} for kernel {}; expected 1..={MAX_BLOCKS}",
            function.name
        )));
    }
    let (s, device) = for_submit(stream)?;
    let dev = &sim.machine.devices[device];
    let args = args(dev)?;
    s.submit(Task::work(api, move |_| {
        let result = args
            .read()
            .and_then(|bytes| kernel_launch::run(&function, dev, num_blocks, &bytes));
        let done = result.as_ref().copied().unwrap_or_default();
        let estimate = crate::base::cost::kernel(&dev.soc, &done.work);
        if result.is_ok() && cost_trace() {
            eprintln!(
                "[cost] kernel {} blocks {num_blocks}: {}; HBM {} B, kept in L2 {} B",
                function.name,
                estimate.breakdown(),
                estimate.hbm_bytes,
                estimate.l2_bytes
            );
        }
        dev.counters.kernel_done(&done.counters, &estimate);
        result.map(|_| ())
    }))?;
    Ok(())
}

/// Whether `ASCEND_SIM_COST_TRACE=1` asks for every launch's modelled time by resource.
fn cost_trace() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var(crate::base::config::COST_TRACE_VAR).is_ok_and(|v| v == "1"))
}

/// Host argument bytes, copied now as the runtime does for host-argument launches.
///
/// # Safety
/// `args` is NULL or points to `size` readable bytes (C contract).
unsafe fn host_bytes(args: *const c_void, size: usize) -> SimResult<ArgsSource> {
    if args.is_null() && size > 0 {
        return Err(SimError::param(format!(
            "hostArgs is NULL but argsSize is {size}"
        )));
    }
    if size > 0 && crate::runtime::memory::is_device_address(args as u64) {
        return Err(SimError::param(format!(
            "hostArgs {args:p} is device memory; aclrtLaunchKernelWithHostArgs copies the \
             arguments from host memory (use aclrtLaunchKernel for a device blob)"
        )));
    }
    Ok(ArgsSource::Host(if size == 0 {
        Vec::new()
    } else {
        // SAFETY: the caller passes `size` readable bytes at `args` (C contract).
        unsafe { std::slice::from_raw_parts(args.cast::<u8>(), size) }.to_vec()
    }))
}

/// The device-args check shared by `aclrtLaunchKernel` and `V2`.
fn device_args(
    args: *const c_void,
    size: usize,
) -> impl FnOnce(&'static Device) -> SimResult<ArgsSource> {
    move |device| {
        if args.is_null() && size > 0 {
            return Err(SimError::param(format!(
                "argsData is NULL but argsSize is {size}"
            )));
        }
        ArgsSource::device(args as u64, size, device)
    }
}

unsafe extern "C" fn aclrtLaunchKernel(
    func_handle: aclrtFuncHandle,
    num_blocks: u32,
    args_data: *const std::ffi::c_void,
    args_size: usize,
    stream: aclrtStream,
) -> aclError {
    guard("aclrtLaunchKernel", || {
        launch(
            "aclrtLaunchKernel",
            func_handle,
            num_blocks,
            device_args(args_data, args_size),
            stream,
        )
    })
}

unsafe extern "C" fn aclrtLaunchKernelV2(
    func_handle: aclrtFuncHandle,
    num_blocks: u32,
    args_data: *const std::ffi::c_void,
    args_size: usize,
    _cfg: *mut aclrtLaunchKernelCfg,
    stream: aclrtStream,
) -> aclError {
    // The launch attributes (scheduling mode, dynamic UB, timeouts, ...) change nothing the
    // simulator models.
    guard("aclrtLaunchKernelV2", || {
        launch(
            "aclrtLaunchKernelV2",
            func_handle,
            num_blocks,
            device_args(args_data, args_size),
            stream,
        )
    })
}

unsafe extern "C" fn aclrtLaunchKernelWithHostArgs(
    func_handle: aclrtFuncHandle,
    num_blocks: u32,
    stream: aclrtStream,
    _cfg: *mut aclrtLaunchKernelCfg,
    host_args: *mut std::ffi::c_void,
    args_size: usize,
    _place_holder_array: *mut aclrtPlaceHolderInfo,
    place_holder_num: usize,
) -> aclError {
    guard("aclrtLaunchKernelWithHostArgs", || {
        if place_holder_num != 0 {
            return Err(SimError::new(
                ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
                "placeholders are not simulated; pass device pointers in hostArgs",
            ));
        }
        // SAFETY: hostArgs holds argsSize readable bytes (C contract).
        let bytes = unsafe { host_bytes(host_args, args_size) }?;
        launch(
            "aclrtLaunchKernelWithHostArgs",
            func_handle,
            num_blocks,
            |_| Ok(bytes),
            stream,
        )
    })
}

unsafe extern "C" fn aclrtKernelArgsInit(
    func_handle: aclrtFuncHandle,
    args_handle: *mut aclrtArgsHandle,
) -> aclError {
    guard("aclrtKernelArgsInit", || {
        let sim = sim()?;
        let function = sim.functions.get(func_handle)?;
        let handle = sim.kernel_args.reserve();
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(args_handle, as_ptr(handle), "argsHandle") }?;
        sim.kernel_args
            .insert(handle, Arc::new(KernelArgs::new(handle, function.handle)));
        Ok(())
    })
}

/// Parameter handles are never reused.
static NEXT_PARAM: AtomicU64 = AtomicU64::new(1);

/// The `size` bytes of a host parameter value.
///
/// # Safety
/// `param` points to `size` readable host bytes (C contract), checked non-NULL here.
unsafe fn param_bytes<'a>(param: *const c_void, size: usize, api: &str) -> SimResult<&'a [u8]> {
    check_host_param(param as u64, size, api)?;
    // SAFETY: non-NULL host pointer to `size` readable bytes (C contract).
    Ok(unsafe { std::slice::from_raw_parts(param.cast::<u8>(), size) })
}

unsafe extern "C" fn aclrtKernelArgsAppend(
    args_handle: aclrtArgsHandle,
    param: *mut c_void,
    param_size: usize,
    param_handle: *mut aclrtParamHandle,
) -> aclError {
    guard("aclrtKernelArgsAppend", || {
        let args = sim()?.kernel_args.get(args_handle)?;
        // SAFETY: param holds paramSize readable bytes (C contract).
        let value = unsafe { param_bytes(param, param_size, "aclrtKernelArgsAppend") }?;
        if param_handle.is_null() {
            return Err(SimError::param("output pointer paramHandle is NULL"));
        }
        let handle = KERNEL_PARAM_TAG | NEXT_PARAM.fetch_add(1, Ordering::Relaxed);
        args.append(handle, value)?;
        // SAFETY: output pointer per the C contract (checked non-NULL above).
        unsafe { write_out(param_handle, as_ptr(handle), "paramHandle") }
    })
}

unsafe extern "C" fn aclrtKernelArgsParaUpdate(
    args_handle: aclrtArgsHandle,
    param_handle: aclrtParamHandle,
    param: *mut c_void,
    param_size: usize,
) -> aclError {
    guard("aclrtKernelArgsParaUpdate", || {
        let args = sim()?.kernel_args.get(args_handle)?;
        // SAFETY: param holds paramSize readable bytes (C contract).
        let value = unsafe { param_bytes(param, param_size, "aclrtKernelArgsParaUpdate") }?;
        args.update(param_handle as u64, value)
    })
}

unsafe extern "C" fn aclrtKernelArgsFinalize(args_handle: aclrtArgsHandle) -> aclError {
    guard("aclrtKernelArgsFinalize", || {
        sim()?.kernel_args.get(args_handle)?.finalize()
    })
}

unsafe extern "C" fn aclrtLaunchKernelWithConfig(
    func_handle: aclrtFuncHandle,
    num_blocks: u32,
    stream: aclrtStream,
    _cfg: *mut aclrtLaunchKernelCfg,
    args_handle: aclrtArgsHandle,
    reserve: *mut c_void,
) -> aclError {
    guard("aclrtLaunchKernelWithConfig", || {
        if !reserve.is_null() {
            return Err(SimError::param(format!(
                "reserve is {reserve:p}; it is reserved and must be NULL"
            )));
        }
        let args = sim()?.kernel_args.get(args_handle)?;
        // The list lives in runtime-owned host memory and is copied at the call, so it may be
        // updated right after.
        let bytes = args.snapshot(func_handle as u64)?;
        launch(
            "aclrtLaunchKernelWithConfig",
            func_handle,
            num_blocks,
            |_| Ok(ArgsSource::Host(bytes)),
            stream,
        )
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtKernelArgsInit = Some(aclrtKernelArgsInit);
    s.aclrtKernelArgsAppend = Some(aclrtKernelArgsAppend);
    s.aclrtKernelArgsParaUpdate = Some(aclrtKernelArgsParaUpdate);
    s.aclrtKernelArgsFinalize = Some(aclrtKernelArgsFinalize);
    s.aclrtLaunchKernelWithConfig = Some(aclrtLaunchKernelWithConfig);
    s.aclrtBinaryLoadFromFile = Some(aclrtBinaryLoadFromFile);
    s.aclrtBinaryLoadFromData = Some(aclrtBinaryLoadFromData);
    s.aclrtBinaryUnLoad = Some(aclrtBinaryUnLoad);
    s.aclrtBinaryGetFunction = Some(aclrtBinaryGetFunction);
    s.aclrtLaunchKernel = Some(aclrtLaunchKernel);
    s.aclrtLaunchKernelV2 = Some(aclrtLaunchKernelV2);
    s.aclrtLaunchKernelWithHostArgs = Some(aclrtLaunchKernelWithHostArgs);
}
