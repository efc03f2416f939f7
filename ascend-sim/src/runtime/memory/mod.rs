//! Device memory (fake addresses backed by host blocks) and pinned host memory.

mod address_space;
mod backing;
mod host;

use std::sync::Arc;

pub(crate) use address_space::AddressSpace;
pub(crate) use backing::Backing;
pub use host::misalign_next_pinned_alloc;
pub(crate) use host::{HostMemory, HostPlace};

/// Byte written into fresh device and pinned host memory: the contents are documented as
/// uninitialised, and a recognisable non-zero pattern makes reads of them stand out.
pub const UNINIT_BYTE: u8 = 0xA5;
/// Byte written over freed memory still held in quarantine.
pub const FREED_BYTE: u8 = 0xDD;

/// Where device addresses live: bit 62 set and bit 63 clear, non-canonical on x86-64 and above
/// the 48/52-bit user space of AArch64 once the device number is added, so a device pointer is
/// never a valid host pointer.
pub(crate) const DEVICE_BASE: u64 = 0x4000_0000_0000_0000;
const DEVICE_SHIFT: u32 = 48;
const DEVICE_REGION_MASK: u64 = 0xFF00_0000_0000_0000;

/// Whether `addr` is in the simulator's device address region (valid device or not).
pub(crate) fn is_device_address(addr: u64) -> bool {
    addr & DEVICE_REGION_MASK == DEVICE_BASE
}

/// The device number encoded in a device address.
pub(crate) fn device_of(addr: u64) -> usize {
    ((addr & !DEVICE_REGION_MASK) >> DEVICE_SHIFT) as usize
}

/// The first address of device `d`'s region.
pub(crate) fn device_base(d: usize) -> u64 {
    DEVICE_BASE | ((d as u64) << DEVICE_SHIFT)
}

/// Size of each device's region.
pub(crate) const DEVICE_SPAN: u64 = 1 << DEVICE_SHIFT;

/// Host bytes standing behind a checked range; holding it keeps them alive.
pub(crate) struct Mapped {
    backing: Option<Arc<Backing>>,
    ptr: *mut u8,
}

impl Mapped {
    pub(crate) fn new(backing: Arc<Backing>, offset: usize) -> Self {
        // `offset` was checked against the allocation, which is within the backing.
        let ptr = backing.as_ptr().wrapping_add(offset);
        Mapped {
            backing: Some(backing),
            ptr,
        }
    }

    /// A range of ordinary (pageable) host memory the simulator cannot check.
    pub(crate) fn pageable(ptr: *mut u8) -> Self {
        Mapped { backing: None, ptr }
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(crate) fn is_checked(&self) -> bool {
        self.backing.is_some()
    }
}

/// A checked view of device memory that keeps its host backing alive while held.
///
/// Obtained from [`crate::map_device_range`]; the pointer stays valid for `len` bytes as long as the
/// `DeviceRange` lives, even if the allocation is freed meanwhile (the simulated program's
/// use-after-free then reads and writes memory nobody else sees).
pub struct DeviceRange {
    mapped: Mapped,
    len: usize,
}

// SAFETY: the range only carries a pointer into a `Backing`, which is Send + Sync, plus an
// `Arc` keeping that backing alive.
unsafe impl Send for DeviceRange {}

impl DeviceRange {
    pub(crate) fn new(mapped: Mapped, len: usize) -> Self {
        DeviceRange { mapped, len }
    }

    /// The host address of the range's first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.mapped.ptr()
    }

    /// The range's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
