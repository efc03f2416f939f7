//! Kernel binaries and launch: `aclrtBinaryLoadFromFile`, `aclrtBinaryGetFunction`,
//! `aclrtLaunchKernel*`. A launch is a stream task that runs every block through the shim.

use std::sync::Arc;

use ascend_sys::{
    ACL_ERROR_RT_FEATURE_NOT_SUPPORT, StaticSymbols, aclError, aclrtBinHandle,
    aclrtBinaryLoadOptions, aclrtFuncHandle, aclrtLaunchKernelCfg, aclrtPlaceHolderInfo,
    aclrtStream,
};

use super::stream::for_submit;
use super::{guard, read_cstr, write_out};
use crate::error::{SimError, SimResult};
use crate::handles::as_ptr;
use crate::kernel::{Binary, Function};
use crate::state::sim;
use crate::task::Task;

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

unsafe extern "C" fn aclrtBinaryUnLoad(bin_handle: aclrtBinHandle) -> aclError {
    guard("aclrtBinaryUnLoad", || {
        let sim = sim()?;
        sim.binaries.remove(bin_handle)?;
        // Its functions die with it; launches already queued keep the library loaded.
        let binary = bin_handle as u64;
        for function in sim.functions.collect(|f| f.binary_handle == binary) {
            let _ = sim.functions.remove(as_ptr(function.handle));
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

/// Validates a launch and queues it on `stream`. The argument bytes are copied now, as the
/// runtime does, so the caller may reuse its buffer as soon as the call returns.
fn launch(
    api: &'static str,
    func_handle: aclrtFuncHandle,
    num_blocks: u32,
    args: *const std::ffi::c_void,
    args_size: usize,
    stream: aclrtStream,
) -> SimResult<()> {
    let function = sim()?.functions.get(func_handle)?;
    if num_blocks == 0 || num_blocks > MAX_BLOCKS {
        return Err(SimError::param(format!(
            "numBlocks {num_blocks} for kernel {}; expected 1..={MAX_BLOCKS}",
            function.name
        )));
    }
    if args.is_null() && args_size > 0 {
        return Err(SimError::param(format!(
            "argsData is NULL but argsSize is {args_size}"
        )));
    }
    let bytes = if args_size == 0 {
        Vec::new()
    } else {
        // SAFETY: the caller passes `args_size` readable bytes at `args` (C contract).
        unsafe { std::slice::from_raw_parts(args.cast::<u8>(), args_size) }.to_vec()
    };
    let (s, device) = for_submit(stream)?;
    s.submit(Task::work(api, move |_| {
        let result = function.run(device, num_blocks, &bytes);
        let sim = sim()?;
        if let Some(d) = sim.devices.get(device) {
            d.counters
                .kernel_done(&result.as_ref().copied().unwrap_or_default());
        }
        result.map(|_| ())
    }))?;
    Ok(())
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
            args_data,
            args_size,
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
            args_data,
            args_size,
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
        launch(
            "aclrtLaunchKernelWithHostArgs",
            func_handle,
            num_blocks,
            host_args,
            args_size,
            stream,
        )
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtBinaryLoadFromFile = Some(aclrtBinaryLoadFromFile);
    s.aclrtBinaryUnLoad = Some(aclrtBinaryUnLoad);
    s.aclrtBinaryGetFunction = Some(aclrtBinaryGetFunction);
    s.aclrtLaunchKernel = Some(aclrtLaunchKernel);
    s.aclrtLaunchKernelV2 = Some(aclrtLaunchKernelV2);
    s.aclrtLaunchKernelWithHostArgs = Some(aclrtLaunchKernelWithHostArgs);
}
