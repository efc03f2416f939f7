//! Kernel binaries: host libraries built from `kernels-ascendc/` against our Ascend C shim.
//!
//! A binary is a shared library exporting, per kernel `<name>`, the entry
//! `ascend_shim_entry_<name>` and the kind `ascend_shim_kind_<name>`, plus
//! `ascend_shim_abi_version`. The structs below mirror `kernels-ascendc/shim/include/
//! ascend_shim_abi.h`; the header's constants (`base::shim_abi`) and the layout checks of
//! [`KernelCounters`] are generated from it by the build script, so the two cannot drift.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ascend_sys::{ACL_ERROR_INVALID_FILE, ACL_ERROR_KERNEL_NOT_FOUND};

use crate::base::error::{SimError, SimResult};

pub(crate) use crate::base::shim_abi as abi;

// The layout of `KernelCounters`, checked field by field against the header.
include!(concat!(env!("OUT_DIR"), "/shim_counters_layout.rs"));

/// What the shim calls back into: device address translation for one launch.
#[repr(C)]
pub(crate) struct ShimHost {
    pub(crate) ctx: *mut c_void,
    pub(crate) translate:
        unsafe extern "C" fn(ctx: *mut c_void, device_addr: u64, len: u64) -> *mut c_void,
}

/// Work counted by the shim over every core of one launch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Bytes moved from global memory to UB/L1.
    pub gm_to_local_bytes: u64,
    /// Bytes moved from UB/L0C to global memory.
    pub local_to_gm_bytes: u64,
    /// Bytes moved between local memories (UB to UB, L1 to L0A/L0B).
    pub local_to_local_bytes: u64,
    /// Cube multiply-accumulates (m·n·k per Mmad).
    pub cube_macs: u64,
    /// Elements processed by vector instructions.
    pub vector_elem_ops: u64,
    /// AIC + AIV cores started.
    pub cores_run: u64,
    /// Global-memory bytes read by the busiest core (the largest per-core count).
    pub busiest_gm_read: u64,
    /// Global-memory bytes written by the busiest core.
    pub busiest_gm_written: u64,
    /// Cube MACs of the busiest core.
    pub busiest_cube_macs: u64,
    /// Vector element operations of the busiest core.
    pub busiest_vector_ops: u64,
    /// 256-byte repeats issued by vector instructions: per call, its elements times its widest
    /// operand's bytes, rounded up to whole repeats (so 16-bit work costs half of 32-bit work).
    pub vector_repeats: u64,
    /// Vector repeats of the busiest core.
    pub busiest_vector_repeats: u64,
    /// Of `gm_to_local_bytes`, the bytes read from exchange memory: 32-byte granules the launch
    /// wrote before it first read them (rings, workspaces; see the shim ABI header).
    pub gm_exchange_read_bytes: u64,
    /// Of `local_to_gm_bytes`, the bytes written to exchange memory (granules the launch later
    /// reads and never read before writing).
    pub gm_exchange_written_bytes: u64,
    /// Distinct bytes of the launch's exchange memory (whole granules).
    pub gm_exchange_footprint: u64,
}

/// One launch as the shim's entry receives it.
#[repr(C)]
pub(crate) struct ShimLaunch {
    pub(crate) num_blocks: u32,
    pub(crate) args: *const c_void,
    pub(crate) args_size: usize,
    pub(crate) host: *const ShimHost,
    pub(crate) counters_out: *mut KernelCounters,
    pub(crate) error_out: *mut c_char,
    pub(crate) error_capacity: usize,
}

const _: () = {
    assert!(std::mem::size_of::<ShimHost>() == 16);
    assert!(std::mem::size_of::<ShimLaunch>() == 56);
    assert!(std::mem::offset_of!(ShimLaunch, args_size) == 16);
    assert!(std::mem::offset_of!(ShimLaunch, error_capacity) == 48);
};

pub(crate) type Entry = unsafe extern "C" fn(launch: *const ShimLaunch) -> i32;
type Kind = unsafe extern "C" fn() -> u32;

/// A loaded kernel library.
pub(crate) struct Binary {
    /// Where it came from, for messages: a path or "data (N bytes)".
    path: String,
    library: libloading::Library,
}

/// A kernel binary is a whole ELF file: every header table and segment lies inside it.
pub(crate) const RULE_WHOLE_ELF: &str = "kernel-binary.whole-elf";

/// Checks that `bytes` is a whole 64-bit little-endian ELF file: the header, and every program
/// header's and the section header table's bytes lie inside the file. A truncated library would
/// otherwise be mapped past its end, and the first touch of the missing pages kills the process
/// with SIGBUS instead of failing the load.
pub(crate) fn validate_elf(bytes: &[u8], what: &str) -> SimResult<()> {
    let bad = |why: String| {
        SimError::new(
            ACL_ERROR_INVALID_FILE,
            format!("[{RULE_WHOLE_ELF}] {what} is not a loadable kernel binary: {why}"),
        )
    };
    const HEADER: usize = 64;
    if bytes.len() < HEADER || bytes[..4] != *b"\x7fELF" {
        return Err(bad(format!(
            "{} bytes without an ELF header; expected a shared library built for the host \
             (simulator) or the SoC (NPU)",
            bytes.len()
        )));
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(bad(format!(
            "ELF class {} / data encoding {}; expected 64-bit little-endian (2 / 1)",
            bytes[4], bytes[5]
        )));
    }
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([bytes[o], bytes[o + 1]]));
    let u64_at = |o: usize| -> Option<u64> {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let len = bytes.len() as u64;
    let table_end =
        |off: u64, count: u64, size: u64| count.checked_mul(size).and_then(|n| n.checked_add(off));
    let (phoff, phentsize, phnum) = (u64_at(32).unwrap_or(0), u16_at(54), u16_at(56));
    let (shoff, shentsize, shnum) = (u64_at(40).unwrap_or(0), u16_at(58), u16_at(60));
    for (name, off, size, count) in [
        ("program header table", phoff, phentsize, phnum),
        ("section header table", shoff, shentsize, shnum),
    ] {
        match table_end(off, count, size) {
            Some(end) if count == 0 || end <= len => {}
            _ => {
                return Err(bad(format!(
                    "its {name} ends at byte {off} + {count} x {size}, past the end of the \
                     {len}-byte file (truncated?)"
                )));
            }
        }
    }
    if phentsize < 56 && phnum > 0 {
        return Err(bad(format!(
            "program headers of {phentsize} bytes; expected 56"
        )));
    }
    for i in 0..phnum {
        let h = (phoff + i * phentsize) as usize;
        let (offset, filesz) = (u64_at(h + 8).unwrap_or(0), u64_at(h + 32).unwrap_or(0));
        if offset.checked_add(filesz).is_none_or(|end| end > len) {
            return Err(bad(format!(
                "segment {i} covers bytes {offset}..{offset}+{filesz}, past the end of the \
                 {len}-byte file (truncated?)"
            )));
        }
    }
    Ok(())
}

/// Private copies of loaded binaries are named uniquely per process.
static NEXT_COPY: AtomicU64 = AtomicU64::new(0);

impl Binary {
    /// `aclrtBinaryLoadFromFile`: the file is read once, validated, and loaded from a private
    /// copy, so what is mapped is what was checked even if the file changes meanwhile.
    pub(crate) fn load(path: &str) -> SimResult<Binary> {
        if !std::path::Path::new(path).is_absolute() {
            return Err(SimError::param(format!(
                "binPath {path:?} is relative; aclrtBinaryLoadFromFile expects an absolute path"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            SimError::new(
                ACL_ERROR_INVALID_FILE,
                format!("cannot read kernel binary {path}: {e}"),
            )
        })?;
        Self::from_bytes(&bytes, path.to_string())
    }

    /// `aclrtBinaryLoadFromData`, and the second half of [`Binary::load`].
    pub(crate) fn from_bytes(bytes: &[u8], what: String) -> SimResult<Binary> {
        validate_elf(bytes, &what)?;
        let copy = std::env::temp_dir().join(format!(
            "ascend-sim-kernels-{}-{}.so",
            std::process::id(),
            NEXT_COPY.fetch_add(1, Ordering::Relaxed)
        ));
        let written = {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&copy)
                .and_then(|mut f| f.write_all(bytes))
        };
        let loaded = written.map_err(|e| e.to_string()).and_then(|()| {
            // SAFETY: loading a kernel library runs no code of ours beyond its static
            // initialisers, which the shim keeps trivial; the file is our private,
            // validated copy.
            unsafe { libloading::Library::new(&copy) }.map_err(|e| e.to_string())
        });
        // The mapping outlives the name.
        let _ = std::fs::remove_file(&copy);
        let library = loaded.map_err(|e| {
            SimError::new(
                ACL_ERROR_INVALID_FILE,
                format!("cannot load kernel binary {what}: {e}"),
            )
        })?;
        let path = what;
        // SAFETY: `ascend_shim_abi_version` takes nothing and returns the header's version.
        let version = unsafe { library.get::<Kind>(b"ascend_shim_abi_version\0") }
            .map(|f| unsafe { f() })
            .map_err(|_| {
                SimError::new(
                    ACL_ERROR_INVALID_FILE,
                    format!(
                        "{path} is not a simulator kernel binary (no ascend_shim_abi_version); \
                         build kernels-ascendc for the host, or use the cann backend for NPU \
                         binaries"
                    ),
                )
            })?;
        if version != abi::ABI_VERSION {
            return Err(SimError::new(
                ACL_ERROR_INVALID_FILE,
                format!(
                    "{path} speaks shim ABI {version}; this simulator speaks {}",
                    abi::ABI_VERSION
                ),
            ));
        }
        Ok(Binary { path, library })
    }
}

/// One kernel of a loaded binary.
pub(crate) struct Function {
    pub(crate) handle: u64,
    pub(crate) name: String,
    pub(crate) binary_handle: u64,
    /// Keeps the library loaded while the function (or a launch using it) lives.
    _library: Arc<Binary>,
    entry: Entry,
    kind: u32,
}

impl Function {
    pub(crate) fn find(
        binary: Arc<Binary>,
        binary_handle: u64,
        name: &str,
        handle: u64,
    ) -> SimResult<Function> {
        let not_found = |what: &str| {
            SimError::new(
                ACL_ERROR_KERNEL_NOT_FOUND,
                format!("kernel {name:?} is not in {} ({what} missing)", binary.path),
            )
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(not_found("a C identifier as the name is"));
        }
        // SAFETY: the shim exports these with exactly these C signatures for every kernel.
        let (entry, kind) = unsafe {
            let entry = *binary
                .library
                .get::<Entry>(format!("ascend_shim_entry_{name}\0").as_bytes())
                .map_err(|_| not_found("its entry"))?;
            let kind = *binary
                .library
                .get::<Kind>(format!("ascend_shim_kind_{name}\0").as_bytes())
                .map_err(|_| not_found("its kind"))?;
            (entry, kind())
        };
        Ok(Function {
            handle,
            name: name.to_string(),
            binary_handle,
            _library: binary,
            entry,
            kind,
        })
    }

    /// The shim entry of the kernel.
    pub(crate) fn entry(&self) -> Entry {
        self.entry
    }

    /// Whether it is a vector (AIV) kernel, whose faults are vector-core exceptions.
    pub(crate) fn is_vector(&self) -> bool {
        self.kind == abi::KIND_VECTOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header with one program header covering `seg` bytes from offset 64.
    fn elf(len: usize, seg: u64) -> Vec<u8> {
        let mut b = vec![0u8; len.max(120)];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        b[64 + 8..64 + 16].copy_from_slice(&64u64.to_le_bytes()); // p_offset
        b[64 + 32..64 + 40].copy_from_slice(&seg.to_le_bytes()); // p_filesz
        b.truncate(len.max(120));
        b
    }

    #[test]
    fn elf_files_are_checked_whole() {
        assert!(validate_elf(&elf(200, 100), "x").is_ok());
        let e = validate_elf(&elf(150, 100), "x").unwrap_err();
        assert!(e.message.contains("segment 0") && e.message.contains("truncated"));
        let e = validate_elf(&elf(200, u64::MAX), "x").unwrap_err();
        assert!(e.message.contains("past the end"), "{}", e.message);
        let e = validate_elf(b"not an elf file at all", "x").unwrap_err();
        assert!(e.message.contains("without an ELF header"), "{}", e.message);
        let mut wrong_class = elf(200, 100);
        wrong_class[4] = 1;
        assert!(validate_elf(&wrong_class, "x").is_err());
        let mut table = elf(200, 100);
        table[40..48].copy_from_slice(&190u64.to_le_bytes()); // e_shoff
        table[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        table[60..62].copy_from_slice(&2u16.to_le_bytes()); // e_shnum
        let e = validate_elf(&table, "x").unwrap_err();
        assert!(e.message.contains("section header table"), "{}", e.message);
    }
}
