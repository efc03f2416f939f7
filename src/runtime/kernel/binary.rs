//! Kernel binaries: loaded from a checked file, or from bytes (our own kernels are embedded in
//! the crate, so a moved program still finds them).

use std::ffi::CString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ascend_sys::aclrtBinHandle;

use super::super::device::Device;
use super::super::drop_errors;
use crate::checked_call::c_call;
use crate::error::{Error, Result};

/// The simulator's build of `kernels-ascendc/` (made by `build.rs`), embedded.
#[cfg(feature = "sim")]
static SIM_KERNELS: &[u8] = include_bytes!(env!("ASCEND_NPU_SIM_KERNELS"));

/// The NPU build of `kernels-ascendc/` made by `build.rs`, if it was asked for and succeeded.
const DEVICE_KERNELS_BUILT: Option<&str> = option_env!("ASCEND_NPU_DEVICE_KERNELS_BUILT");

/// Names the NPU build of `kernels-ascendc/` for [`KernelBinary::builtin`] on the cann backend.
pub const DEVICE_KERNELS_VAR: &str = "ASCEND_NPU_DEVICE_KERNELS";

/// Bytes of a 64-bit ELF header: no kernel binary is shorter.
const ELF_HEADER_LEN: usize = 64;

/// A kernel binary loaded for one device. Cloning is cheap; the binary is unloaded when the
/// last clone and every [`Kernel`](super::Kernel) from it are gone.
#[derive(Clone)]
pub struct KernelBinary {
    pub(super) inner: Arc<BinaryInner>,
}

pub(super) struct BinaryInner {
    pub(super) device: Device,
    pub(super) raw: aclrtBinHandle,
    /// The file it was loaded from; `None` when loaded from bytes.
    path: Option<PathBuf>,
}

// SAFETY: the binary handle belongs to the process-wide runtime; every use binds the device's
// context first, from whichever thread.
unsafe impl Send for BinaryInner {}
// SAFETY: methods only pass the handle to thread-safe runtime calls.
unsafe impl Sync for BinaryInner {}

/// Checks that `head` (the first bytes of a binary of `len` bytes, from `what`) can be a kernel
/// binary: long enough for an ELF header, with the ELF magic. The runtime checks the rest of
/// the format (the simulator: that every segment lies inside the file).
fn check_header(head: &[u8], len: u64, what: &str) -> Result<()> {
    if len < ELF_HEADER_LEN as u64 || head.len() < 4 || head[..4] != *b"\x7fELF" {
        return Err(Error::invalid(
            format!("kernel binary {what} ({len} bytes) does not start with an ELF header"),
            format!(
                "an ELF kernel binary of at least {ELF_HEADER_LEN} bytes, built for the SoC \
                 (NPU) or the host (simulator)"
            ),
        ));
    }
    Ok(())
}

/// Fails with a clear error on a CANN release without the runtime's kernel-binary API.
fn require_kernel_binaries(device: &Device) -> Result<()> {
    let version = device.cann_version()?;
    if version.has_kernel_binaries() {
        Ok(())
    } else {
        Err(Error::invalid(
            format!(
                "CANN {version} has no runtime kernel-binary API (aclrtBinaryLoadFromFile, \
                 aclrtKernelArgs*, aclrtLaunchKernelWithConfig)"
            ),
            "CANN 8.2 or later to load and launch our kernels",
        ))
    }
}

/// Temporary copies of in-memory binaries are named uniquely per process.
static NEXT_COPY: AtomicU64 = AtomicU64::new(0);

impl KernelBinary {
    /// Loads the kernel binary at `path` (made absolute) for `device`.
    ///
    /// The file is checked first (a regular file with an ELF header), and the runtime checks
    /// the rest, so a truncated or foreign file is an error, never a crash.
    pub fn load(device: &Device, path: impl AsRef<Path>) -> Result<KernelBinary> {
        let path = std::path::absolute(path.as_ref()).map_err(|e| {
            Error::invalid(
                format!("kernel binary path {}: {e}", path.as_ref().display()),
                "a valid path",
            )
        })?;
        let shown = path.display().to_string();
        let unreadable = |e: std::io::Error| {
            Error::invalid(
                format!("kernel binary {shown} cannot be read: {e}"),
                "a readable kernel binary file",
            )
        };
        let file = std::fs::File::open(&path).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(Error::invalid(
                format!("kernel binary {shown} is not a regular file"),
                "a kernel binary file",
            ));
        }
        let mut head = Vec::with_capacity(ELF_HEADER_LEN);
        file.take(ELF_HEADER_LEN as u64)
            .read_to_end(&mut head)
            .map_err(unreadable)?;
        check_header(&head, meta.len(), &shown)?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
            Error::invalid(
                format!("kernel binary path {shown} contains NUL"),
                "a path without NUL",
            )
        })?;
        require_kernel_binaries(device)?;
        device.inner.bind()?;
        let api = device.inner.api;
        let mut raw: aclrtBinHandle = std::ptr::null_mut();
        // SAFETY: NUL-terminated path and valid out-pointer; no load options.
        unsafe {
            c_call!(
                api,
                aclrtBinaryLoadFromFile(c_path.as_ptr(), std::ptr::null_mut(), &mut raw)
            )
        }?;
        Ok(Self::wrap(device, raw, Some(path)))
    }

    /// Loads a kernel binary held in memory for `device`: `aclrtBinaryLoadFromData` where the
    /// CANN release has it (9.0 on), else through a private temporary file.
    pub fn from_bytes(device: &Device, data: &[u8]) -> Result<KernelBinary> {
        check_header(data, data.len() as u64, "data")?;
        require_kernel_binaries(device)?;
        if !device.cann_version()?.has_binary_from_data() {
            return Self::through_file(device, data);
        }
        device.inner.bind()?;
        let api = device.inner.api;
        let mut raw: aclrtBinHandle = std::ptr::null_mut();
        // SAFETY: `data` is a host buffer of `data.len()` bytes, read during the call; no load
        // options; valid out-pointer.
        unsafe {
            c_call!(
                api,
                aclrtBinaryLoadFromData(
                    data.as_ptr().cast(),
                    data.len(),
                    std::ptr::null(),
                    &mut raw
                )
            )
        }?;
        Ok(Self::wrap(device, raw, None))
    }

    /// [`KernelBinary::from_bytes`] for releases without `aclrtBinaryLoadFromData`.
    fn through_file(device: &Device, data: &[u8]) -> Result<KernelBinary> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let copy = std::env::temp_dir().join(format!(
            "ascend-npu-kernels-{}-{}.o",
            std::process::id(),
            NEXT_COPY.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .and_then(|mut f| f.write_all(data));
        let loaded = written
            .map_err(|e| {
                Error::invalid(
                    format!(
                        "cannot write a temporary kernel binary {}: {e}",
                        copy.display()
                    ),
                    "a writable temporary directory (TMPDIR)",
                )
            })
            .and_then(|()| Self::load(device, &copy));
        // The runtime has read the file by the time the load returns.
        let _ = std::fs::remove_file(&copy);
        let mut binary = loaded?;
        if let Some(inner) = Arc::get_mut(&mut binary.inner) {
            inner.path = None;
        }
        Ok(binary)
    }

    fn wrap(device: &Device, raw: aclrtBinHandle, path: Option<PathBuf>) -> KernelBinary {
        KernelBinary {
            inner: Arc::new(BinaryInner {
                device: device.clone(),
                raw,
                path,
            }),
        }
    }

    /// Loads this crate's own kernels (`kernels-ascendc/`) for the active backend: under the
    /// simulator, the host build embedded in the crate; on an NPU, the binary named by
    /// [`DEVICE_KERNELS_VAR`], else the one `build.rs` built when `ASCEND_NPU_KERNEL_SOC` was
    /// set.
    pub fn builtin(device: &Device) -> Result<KernelBinary> {
        match crate::active_backend()? {
            #[cfg(feature = "sim")]
            crate::Backend::Sim => Self::from_bytes(device, SIM_KERNELS),
            #[cfg(not(feature = "sim"))]
            crate::Backend::Sim => Err(Error::SimNotCompiled),
            crate::Backend::Cann => {
                let path = std::env::var_os(DEVICE_KERNELS_VAR)
                    .map(PathBuf::from)
                    .or_else(|| DEVICE_KERNELS_BUILT.map(PathBuf::from));
                match path {
                    Some(path) => Self::load(device, path),
                    None => Err(Error::invalid(
                        "no NPU build of kernels-ascendc",
                        format!(
                            "{DEVICE_KERNELS_VAR} naming one, or a build with \
                             ASCEND_NPU_KERNEL_SOC=<SoC> and CANN installed"
                        ),
                    )),
                }
            }
        }
    }

    /// The device the binary is loaded for.
    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// The file the binary was loaded from, or `None` when it was loaded from bytes.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }
}

impl std::fmt::Debug for KernelBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelBinary")
            .field("device", &self.inner.device.id())
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Drop for BinaryInner {
    fn drop(&mut self) {
        let api = self.device.inner.api;
        let result = self.device.inner.bind().and_then(|()| {
            // SAFETY: last owner of a live binary handle; queued launches keep what they need.
            unsafe { c_call!(api, aclrtBinaryUnLoad(self.raw)) }
        });
        if let Err(e) = result {
            drop_errors::record(e);
        }
    }
}
