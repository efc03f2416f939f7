//! Where a launch reads its kernel arguments, and the runtime-managed argument lists of
//! `aclrtKernelArgsInit` / `Append` / `ParaUpdate` / `Finalize`.
//!
//! `aclrtLaunchKernel` and `aclrtLaunchKernelV2` take `argsData` as a DEVICE address: the AI
//! Core reads it when the kernel starts, so the simulator reads it through its address
//! translation only when the launch executes (a blob rewritten before then is seen rewritten;
//! one freed before then is a fault). Host pointers are rejected at the call
//! ([`RULE_ARGS_IN_DEVICE_MEMORY`]). An argument list (`aclrtArgsHandle`) lives in host memory
//! the runtime owns; `aclrtLaunchKernelWithConfig` copies it when called, so the list may be
//! updated and launched again right after.
//!
//! Appended parameters are laid out back to back in append order, without padding (the
//! runtime's doc says it appends a copy; whether it aligns is UNVERIFIED, so callers pad
//! explicitly).

use std::borrow::Cow;
use std::sync::Mutex;

use crate::base::error::{SimError, SimResult};
use crate::base::sync::lock;
use crate::runtime::device::Device;
use crate::runtime::memory::{device_of, is_device_address};

/// `argsData` of `aclrtLaunchKernel`/`V2` must be device memory of the launching device.
pub(crate) const RULE_ARGS_IN_DEVICE_MEMORY: &str = "launch.args-in-device-memory";
/// `aclrtKernelArgsAppend`/`ParaUpdate` take the parameter's value in host memory.
pub(crate) const RULE_PARAM_IN_HOST_MEMORY: &str = "kernel-args.param-in-host-memory";
/// An argument list is launched only after `aclrtKernelArgsFinalize`, and appended to only
/// before it.
pub(crate) const RULE_FINALIZE: &str = "kernel-args.finalize-before-launch";
/// An argument list is launched with the function it was initialised for.
pub(crate) const RULE_SAME_FUNCTION: &str = "kernel-args.same-function";

/// The argument bytes of one queued launch.
pub(crate) enum ArgsSource {
    /// Copied from host memory at the call.
    Host(Vec<u8>),
    /// A device blob of `dev`, read when the launch executes.
    Device {
        dev: &'static Device,
        addr: u64,
        len: usize,
    },
}

impl ArgsSource {
    /// Checks `argsData`/`argsSize` of a device-args launch on `dev`.
    pub(crate) fn device(addr: u64, len: usize, dev: &'static Device) -> SimResult<ArgsSource> {
        let device = dev.id;
        if len == 0 {
            return Ok(ArgsSource::Host(Vec::new()));
        }
        if !is_device_address(addr) {
            return Err(SimError::param(format!(
                "[{RULE_ARGS_IN_DEVICE_MEMORY}] argsData {addr:#x} is host memory; \
                 aclrtLaunchKernel reads the arguments as \
                 device memory when the kernel starts: copy them to a device buffer (freed in \
                 stream order), or use aclrtKernelArgs* + aclrtLaunchKernelWithConfig"
            )));
        }
        if device_of(addr) != device {
            return Err(SimError::param(format!(
                "argsData {addr:#x} is memory of device {}, but the launch is on device \
                 {device}; expected memory of the launching device [\
                 {RULE_ARGS_IN_DEVICE_MEMORY}]",
                device_of(addr)
            )));
        }
        // Checked now as well as at execution, so a plainly wrong range fails at the call.
        dev.memory.map(addr, len)?;
        Ok(ArgsSource::Device { dev, addr, len })
    }

    /// The bytes, read now (at execution for a device blob).
    pub(crate) fn read(&self) -> SimResult<Cow<'_, [u8]>> {
        match self {
            ArgsSource::Host(bytes) => Ok(Cow::Borrowed(bytes)),
            ArgsSource::Device { dev, addr, len } => {
                let mapped = dev.memory.map(*addr, *len).map_err(|e| {
                    SimError::param(format!(
                        "the kernel's argsData {addr:#x} ({len} bytes) cannot be read when it \
                         starts: {}",
                        e.message
                    ))
                })?;
                // SAFETY: `mapped` is a checked view of `len` live bytes, kept alive while
                // the copy is made.
                let bytes = unsafe { std::slice::from_raw_parts(mapped.ptr(), *len) }.to_vec();
                Ok(Cow::Owned(bytes))
            }
        }
    }
}

/// Rejects a parameter value that is not host memory.
pub(crate) fn check_host_param(param: u64, size: usize, api: &str) -> SimResult<()> {
    if param == 0 || size == 0 {
        return Err(SimError::param(format!(
            "{api}: param is {param:#x} with paramSize {size}; expected a non-NULL host \
             pointer to a non-empty value"
        )));
    }
    if is_device_address(param) {
        return Err(SimError::param(format!(
            "{api}: param {param:#x} is device memory; the value is copied from host memory \
             (pass the address of a host variable holding it) [\
             {RULE_PARAM_IN_HOST_MEMORY}]"
        )));
    }
    Ok(())
}

/// One `aclrtArgsHandle`.
pub(crate) struct KernelArgs {
    pub(crate) handle: u64,
    /// The function handle it was initialised for.
    pub(crate) function: u64,
    state: Mutex<ArgsState>,
}

#[derive(Default)]
struct ArgsState {
    bytes: Vec<u8>,
    /// (param handle, offset, size) per appended parameter.
    params: Vec<(u64, usize, usize)>,
    finalized: bool,
}

impl KernelArgs {
    pub(crate) fn new(handle: u64, function: u64) -> Self {
        KernelArgs {
            handle,
            function,
            state: Mutex::new(ArgsState::default()),
        }
    }

    /// Appends `value` as parameter `param_handle`.
    pub(crate) fn append(&self, param_handle: u64, value: &[u8]) -> SimResult<()> {
        let mut s = lock(&self.state);
        if s.finalized {
            return Err(SimError::param(format!(
                "argument list {:#x} is finalized; append every parameter before \
                 aclrtKernelArgsFinalize [{RULE_FINALIZE}]",
                self.handle
            )));
        }
        let offset = s.bytes.len();
        s.bytes.extend_from_slice(value);
        s.params.push((param_handle, offset, value.len()));
        Ok(())
    }

    /// Overwrites parameter `param_handle` with `value` of the appended size.
    pub(crate) fn update(&self, param_handle: u64, value: &[u8]) -> SimResult<()> {
        let mut s = lock(&self.state);
        let Some(&(_, offset, size)) = s.params.iter().find(|p| p.0 == param_handle) else {
            return Err(SimError::handle(format!(
                "paramHandle {param_handle:#x} was not appended to argument list {:#x}",
                self.handle
            )));
        };
        if value.len() != size {
            return Err(SimError::param(format!(
                "paramSize {} for a parameter appended with {size} bytes; expected {size}",
                value.len()
            )));
        }
        s.bytes[offset..offset + size].copy_from_slice(value);
        Ok(())
    }

    pub(crate) fn finalize(&self) -> SimResult<()> {
        let mut s = lock(&self.state);
        if s.finalized {
            return Err(SimError::param(format!(
                "argument list {:#x} is already finalized; finalize once, then update \
                 parameters with aclrtKernelArgsParaUpdate",
                self.handle
            )));
        }
        s.finalized = true;
        Ok(())
    }

    /// A copy of the finalized list for a launch of `function`.
    pub(crate) fn snapshot(&self, function: u64) -> SimResult<Vec<u8>> {
        if function != self.function {
            return Err(SimError::param(format!(
                "argument list {:#x} was initialised for function {:#x}, not {function:#x} \
                 [{RULE_SAME_FUNCTION}]",
                self.handle, self.function
            )));
        }
        let s = lock(&self.state);
        if !s.finalized {
            return Err(SimError::param(format!(
                "argument list {:#x} is not finalized; call aclrtKernelArgsFinalize before \
                 launching [{RULE_FINALIZE}]",
                self.handle
            )));
        }
        Ok(s.bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_append_update_finalize_in_order() {
        let args = KernelArgs::new(1, 7);
        args.append(10, &[1, 2, 3, 4]).unwrap();
        args.append(11, &[5; 8]).unwrap();
        let e = args.snapshot(7).unwrap_err();
        assert!(e.message.contains(RULE_FINALIZE), "{}", e.message);
        args.finalize().unwrap();
        assert!(args.finalize().is_err());
        assert!(
            args.append(12, &[0])
                .unwrap_err()
                .message
                .contains(RULE_FINALIZE)
        );
        args.update(10, &[9, 9, 9, 9]).unwrap();
        assert!(args.update(10, &[9]).is_err());
        assert!(args.update(99, &[9, 9, 9, 9]).is_err());
        let bytes = args.snapshot(7).unwrap();
        assert_eq!(bytes, [9, 9, 9, 9, 5, 5, 5, 5, 5, 5, 5, 5]);
        let e = args.snapshot(8).unwrap_err();
        assert!(e.message.contains(RULE_SAME_FUNCTION), "{}", e.message);
    }

    #[test]
    fn host_args_for_a_device_launch_name_the_rule() {
        let host = [0u8; 16];
        // A device of its own: the check fails before any memory is touched.
        let dev: &'static Device = Box::leak(Box::new(Device::new(
            0,
            crate::base::soc::SocModel::ascend910b2(),
        )));
        let Err(e) = ArgsSource::device(host.as_ptr() as u64, host.len(), dev) else {
            panic!("a host pointer was accepted as argsData");
        };
        assert!(
            e.message.contains(RULE_ARGS_IN_DEVICE_MEMORY),
            "{}",
            e.message
        );
        let e =
            check_host_param(crate::runtime::memory::device_base(0) + 64, 8, "append").unwrap_err();
        assert!(
            e.message.contains(RULE_PARAM_IN_HOST_MEMORY),
            "{}",
            e.message
        );
        assert!(check_host_param(host.as_ptr() as u64, 8, "append").is_ok());
    }
}
