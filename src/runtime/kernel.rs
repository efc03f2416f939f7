//! Loading kernel binaries and launching kernels.
//!
//! The same code launches our `kernels-ascendc/` kernels on an NPU (device binaries built with
//! CANN's toolchain) and in the simulator (the host library `build.rs` builds against our shim,
//! embedded in the crate): a binary loaded by [`KernelBinary`], `aclrtBinaryGetFunction`, then, as the device reads arguments
//! from device memory, `aclrtLaunchKernelWithHostArgs` (CANN 9.x) or an `aclrtKernelArgs*`
//! list with `aclrtLaunchKernelWithConfig` (8.2 on); never `aclrtLaunchKernel` with a host
//! blob.

use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::Mutex;

use ascend_sys::{Api, aclrtArgsHandle, aclrtFuncHandle, aclrtParamHandle};

use super::device_buffer::{DeviceSlice, DeviceSliceMut, read_access, write_access};
use super::stream::Stream;
use super::tracking::Access;
use crate::checked_call::c_call;
use crate::error::{Error, Result};

/// The most blocks one launch may have.
pub const MAX_BLOCKS: u32 = 65535;

mod binary;

pub use binary::{DEVICE_KERNELS_VAR, KernelBinary};

impl KernelBinary {
    /// The kernel `name`, whose parameters are `params` in declaration order.
    ///
    /// The parameter list is what launches are checked against: a wrong count or kind is an
    /// error before anything reaches the device.
    pub fn kernel(&self, name: &str, params: &[Param]) -> Result<Kernel> {
        let c_name = CString::new(name).map_err(|_| {
            Error::invalid(
                format!("kernel name {name:?} contains NUL"),
                "a C identifier",
            )
        })?;
        let device = &self.inner.device;
        device.inner.bind()?;
        let api = device.inner.api;
        let mut raw: aclrtFuncHandle = std::ptr::null_mut();
        // SAFETY: live binary handle, NUL-terminated name, valid out-pointer.
        unsafe {
            c_call!(
                api,
                aclrtBinaryGetFunction(self.inner.raw, c_name.as_ptr(), &mut raw)
            )
        }?;
        Ok(Kernel {
            binary: self.clone(),
            raw,
            name: name.to_string(),
            params: params.to_vec(),
            args_list: Mutex::new(None),
        })
    }
}

/// The kind of one kernel parameter, as the kernel declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// A global-memory address (`GM_ADDR`).
    Ptr,
    /// `uint32_t`.
    U32,
    /// `int32_t`.
    I32,
    /// `uint64_t`.
    U64,
    /// `int64_t`.
    I64,
    /// `float`.
    F32,
}

impl Param {
    fn size(self) -> usize {
        match self {
            Param::U32 | Param::I32 | Param::F32 => 4,
            Param::Ptr | Param::U64 | Param::I64 => 8,
        }
    }
}

/// One argument of a launch; buffer arguments borrow their buffer for the call.
#[derive(Clone, Copy, Debug)]
pub struct KernelArg<'a> {
    value: ArgValue,
    /// The buffer's use tracking, for ordering the launch against other streams.
    access: Option<Access<'a>>,
    _borrow: PhantomData<&'a ()>,
}

#[derive(Clone, Copy, Debug)]
enum ArgValue {
    Ptr {
        addr: u64,
        device: usize,
        len: usize,
    },
    Scalar {
        kind: Param,
        bits: u64,
    },
}

impl<'a> KernelArg<'a> {
    /// A buffer the kernel reads.
    pub fn buffer<T>(buffer: &'a impl DeviceSlice<T>) -> Self {
        let arg = Self::ptr(buffer.device_ptr(), buffer.device().id(), buffer.len());
        arg.tracked(read_access(buffer))
    }

    /// A buffer the kernel writes.
    pub fn buffer_mut<T>(buffer: &'a mut impl DeviceSliceMut<T>) -> Self {
        let addr = buffer.device_ptr_mut();
        let arg = Self::ptr(addr, buffer.device().id(), buffer.len());
        arg.tracked(write_access(buffer))
    }

    fn tracked(self, access: Access<'a>) -> Self {
        KernelArg {
            access: Some(access),
            ..self
        }
    }

    /// Device memory the crate itself keeps alive for longer than the launch (tiling caches).
    pub(crate) fn owned_by_crate(addr: u64, device: usize, len: usize) -> Self {
        Self::ptr(addr, device, len)
    }

    fn ptr(addr: u64, device: usize, len: usize) -> Self {
        KernelArg {
            value: ArgValue::Ptr { addr, device, len },
            access: None,
            _borrow: PhantomData,
        }
    }

    fn scalar(kind: Param, bits: u64) -> Self {
        KernelArg {
            value: ArgValue::Scalar { kind, bits },
            access: None,
            _borrow: PhantomData,
        }
    }

    /// A `uint32_t`.
    pub fn u32(v: u32) -> Self {
        Self::scalar(Param::U32, v.into())
    }

    /// An `int32_t`.
    pub fn i32(v: i32) -> Self {
        Self::scalar(Param::I32, u64::from(v as u32))
    }

    /// A `uint64_t`.
    pub fn u64(v: u64) -> Self {
        Self::scalar(Param::U64, v)
    }

    /// An `int64_t`.
    pub fn i64(v: i64) -> Self {
        Self::scalar(Param::I64, v as u64)
    }

    /// A `float`.
    pub fn f32(v: f32) -> Self {
        Self::scalar(Param::F32, v.to_bits().into())
    }

    fn kind(&self) -> Param {
        match self.value {
            ArgValue::Ptr { .. } => Param::Ptr,
            ArgValue::Scalar { kind, .. } => kind,
        }
    }
}

/// One kernel of a [`KernelBinary`], with its declared parameter list.
pub struct Kernel {
    binary: KernelBinary,
    raw: aclrtFuncHandle,
    name: String,
    params: Vec<Param>,
    /// The argument list of launches through `aclrtKernelArgs*`, made on first use.
    args_list: Mutex<Option<ArgsList>>,
}

// SAFETY: the function handle belongs to the process-wide runtime and stays valid while the
// binary (held here) is loaded; launches bind the device's context first.
unsafe impl Send for Kernel {}
// SAFETY: launching only reads the handle.
unsafe impl Sync for Kernel {}

impl Kernel {
    /// The raw `aclrtFuncHandle`, for launching through CANN functions this crate does not wrap.
    ///
    /// Valid while this `Kernel` lives. A launch through it is unchecked and untracked: its
    /// arguments must match the kernel's parameters, and buffers must be prepared with
    /// [`Stream::prepare_raw_read`] / [`Stream::prepare_raw_write`].
    pub fn as_raw(&self) -> aclrtFuncHandle {
        self.raw
    }

    /// The kernel's name in its binary.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared parameters.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Packs `args` as the device expects them: declaration order, each at its natural
    /// alignment, after checking them against the declared parameters and `device`.
    fn pack(&self, device: usize, args: &[KernelArg<'_>]) -> Result<Packed> {
        if args.len() != self.params.len() {
            return Err(Error::invalid(
                format!("{} arguments for kernel {}", args.len(), self.name),
                format!("{} arguments ({:?})", self.params.len(), self.params),
            ));
        }
        let mut blob = Vec::with_capacity(8 * args.len());
        let mut ranges = Vec::with_capacity(args.len());
        for (i, (arg, param)) in args.iter().zip(&self.params).enumerate() {
            if arg.kind() != *param {
                return Err(Error::invalid(
                    format!("argument {i} of kernel {} is a {:?}", self.name, arg.kind()),
                    format!("a {param:?}"),
                ));
            }
            let size = param.size();
            blob.resize(blob.len().next_multiple_of(size), 0);
            ranges.push(blob.len()..blob.len() + size);
            match arg.value {
                ArgValue::Ptr {
                    addr,
                    device: d,
                    len,
                } => {
                    if len == 0 || addr == 0 {
                        return Err(Error::invalid(
                            format!("argument {i} of kernel {} is an empty buffer", self.name),
                            "a non-empty device buffer (skip the launch when there is no work)",
                        ));
                    }
                    if d != device {
                        return Err(Error::invalid(
                            format!(
                                "argument {i} of kernel {} is memory of device {d}",
                                self.name
                            ),
                            format!("memory of the launching device {device}"),
                        ));
                    }
                    blob.extend_from_slice(&addr.to_ne_bytes());
                }
                ArgValue::Scalar { bits, .. } => {
                    blob.extend_from_slice(&bits.to_ne_bytes()[..size])
                }
            }
        }
        Ok(Packed { blob, ranges })
    }

    /// Launches with this kernel's runtime-owned argument list (`aclrtKernelArgs*`, CANN 8.2
    /// on): built once (padding appended as zero parameters, so the layout is the packed one
    /// whatever the runtime's alignment), then updated per launch. The runtime copies the
    /// list at the launch call, so the next launch may update it at once.
    fn launch_with_list(&self, stream: &Stream, blocks: u32, packed: &Packed) -> Result<()> {
        let api = stream.device().inner.api;
        let mut list = self.args_list.lock().unwrap_or_else(|p| p.into_inner());
        match list.as_ref() {
            Some(list) => {
                for (param, range) in list.params.iter().zip(&packed.ranges) {
                    let mut value = packed.blob[range.clone()].to_vec();
                    // SAFETY: live list and parameter handles of this kernel; `value` is a host
                    // buffer of the appended size, copied by the call.
                    unsafe {
                        c_call!(
                            api,
                            aclrtKernelArgsParaUpdate(
                                list.handle,
                                *param,
                                value.as_mut_ptr().cast(),
                                value.len()
                            )
                        )
                    }?;
                }
            }
            None => *list = Some(ArgsList::build(api, self.raw, packed)?),
        }
        let handle = list
            .as_ref()
            .map(|l| l.handle)
            .unwrap_or(std::ptr::null_mut());
        // SAFETY: live function handle of the stream's device, a finalized argument list of
        // it; no launch configuration; `reserve` is NULL as documented.
        unsafe {
            c_call!(
                api,
                aclrtLaunchKernelWithConfig(
                    self.raw,
                    blocks,
                    stream.raw(),
                    std::ptr::null_mut(),
                    handle,
                    std::ptr::null_mut(),
                )
            )
        }
    }
}

/// Packed arguments and the byte range of each parameter in the blob.
struct Packed {
    blob: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
}

/// A runtime-owned argument list (`aclrtArgsHandle`) and the handle of each real parameter.
/// The runtime has no call to free a list it owns; one list per kernel keeps that bounded.
struct ArgsList {
    handle: aclrtArgsHandle,
    params: Vec<aclrtParamHandle>,
}

impl ArgsList {
    fn build(api: &Api, func: aclrtFuncHandle, packed: &Packed) -> Result<ArgsList> {
        let mut handle: aclrtArgsHandle = std::ptr::null_mut();
        // SAFETY: live function handle and a valid out-pointer.
        unsafe { c_call!(api, aclrtKernelArgsInit(func, &mut handle)) }?;
        let mut params = Vec::with_capacity(packed.ranges.len());
        let mut cursor = 0;
        for range in &packed.ranges {
            let mut pad = vec![0u8; range.start - cursor];
            let mut value = packed.blob[range.clone()].to_vec();
            for (bytes, real) in [(&mut pad, false), (&mut value, true)] {
                if bytes.is_empty() {
                    continue;
                }
                let mut param: aclrtParamHandle = std::ptr::null_mut();
                // SAFETY: live list; `bytes` is a host buffer of the given size, copied by the
                // call; valid out-pointer.
                unsafe {
                    c_call!(
                        api,
                        aclrtKernelArgsAppend(
                            handle,
                            bytes.as_mut_ptr().cast(),
                            bytes.len(),
                            &mut param
                        )
                    )
                }?;
                if real {
                    params.push(param);
                }
            }
            cursor = range.end;
        }
        // SAFETY: live list, every parameter appended.
        unsafe { c_call!(api, aclrtKernelArgsFinalize(handle)) }?;
        Ok(ArgsList { handle, params })
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("name", &self.name)
            .field("params", &self.params)
            .finish()
    }
}

impl Stream {
    /// Queues `kernel` on this stream with `blocks` blocks (1..=65535), trusting the parameter
    /// list `kernel` was declared with.
    ///
    /// Arguments are checked against that list (count, kinds, buffers of this device, not
    /// empty), packed at their natural alignment and handed to the runtime the way the
    /// device reads them: `aclrtLaunchKernelWithHostArgs` from CANN 9.0 (the runtime copies
    /// the host blob), else the kernel's `aclrtKernelArgs*` list with
    /// `aclrtLaunchKernelWithConfig` (8.2 on). Never a host pointer as `argsData`.
    ///
    /// Buffer arguments are use-tracked: the launch waits for conflicting work on other streams,
    /// and dropping them after the call is safe.
    ///
    /// # Safety
    ///
    /// The parameter list given to [`KernelBinary::kernel`] must be the kernel's real one
    /// (its `extern "C"` signature), and the kernel must only touch memory it is handed with
    /// the sizes it assumes. On an NPU a wrong declaration or an out-of-range access is
    /// undefined behaviour on the device; the simulator catches most of it, the hardware
    /// does not. The typed launchers of [`crate::kernels`] uphold this for our kernels.
    pub unsafe fn launch(
        &self,
        kernel: &Kernel,
        blocks: u32,
        args: &[KernelArg<'_>],
    ) -> Result<()> {
        self.launch_trusted(kernel, blocks, args)
    }

    /// [`Stream::launch`] for the crate's own typed launchers, whose parameter lists and
    /// argument sizes are the kernels' real ones.
    pub(crate) fn launch_trusted(
        &self,
        kernel: &Kernel,
        blocks: u32,
        args: &[KernelArg<'_>],
    ) -> Result<()> {
        if kernel.binary.device() != self.device() {
            return Err(Error::invalid(
                format!(
                    "kernel {} of device {} launched on a stream of device {}",
                    kernel.name,
                    kernel.binary.device().id(),
                    self.device().id()
                ),
                "a kernel loaded for the stream's device",
            ));
        }
        if blocks == 0 || blocks > MAX_BLOCKS {
            return Err(Error::invalid(
                format!("{blocks} blocks for kernel {}", kernel.name),
                format!("1..={MAX_BLOCKS} blocks"),
            ));
        }
        let mut packed = kernel.pack(self.device().id(), args)?;
        let version = self.device().cann_version()?;
        let accesses: Vec<Access<'_>> = args.iter().filter_map(|a| a.access).collect();
        self.track(&accesses, || {
            self.bind()?;
            if !version.has_binary_from_data() {
                return kernel.launch_with_list(self, blocks, &packed);
            }
            let api = self.device().inner.api;
            // SAFETY: live function handle of this device; `packed.blob` is a host buffer of
            // the packed arguments, copied by the call; no placeholders; every pointer argument
            // is a live buffer of this device borrowed by `args`, ordered after and freed after
            // every conflicting use by its use tracking.
            unsafe {
                c_call!(
                    api,
                    aclrtLaunchKernelWithHostArgs(
                        kernel.raw,
                        blocks,
                        self.raw(),
                        std::ptr::null_mut(),
                        packed.blob.as_mut_ptr().cast(),
                        packed.blob.len(),
                        std::ptr::null_mut(),
                        0,
                    )
                )
            }
        })
    }
}
