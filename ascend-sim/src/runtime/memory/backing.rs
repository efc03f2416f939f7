//! Host bytes standing behind a device or pinned-host allocation.

use std::alloc::Layout;
use std::ptr::NonNull;

/// Alignment of every backing block, so device and pinned pointers are 64-byte aligned.
pub(crate) const ALIGN: usize = 64;

/// A heap block accessed only through raw pointers.
///
/// The simulator never forms Rust references into it: device memory is shared by streams,
/// host threads and kernels, and, as on hardware, ordering accesses is the program's job.
pub(crate) struct Backing {
    ptr: NonNull<u8>,
    len: usize,
    /// Bytes between the aligned allocation and `ptr` (0 but for a test hook's misaligned
    /// pinned block, see `host::misalign_next_pinned_alloc`).
    offset: usize,
}

// SAFETY: `Backing` owns a plain byte buffer with no thread affinity. All access goes through
// raw pointers; the simulator synchronises its own bookkeeping, and concurrent conflicting
// accesses by the simulated program are that program's race, as on the device.
unsafe impl Send for Backing {}
// SAFETY: as above; `&Backing` only exposes the address and length.
unsafe impl Sync for Backing {}

impl Backing {
    /// A block of `len` bytes (at least one) filled with `fill`, or `None` if the host is out
    /// of memory.
    pub(crate) fn new(len: usize, fill: u8) -> Option<Backing> {
        Backing::misaligned(len, fill, 0)
    }

    /// [`Backing::new`], starting `offset` bytes (less than [`ALIGN`]) past an aligned
    /// address, so only `offset`'s own alignment holds.
    pub(crate) fn misaligned(len: usize, fill: u8, offset: usize) -> Option<Backing> {
        debug_assert!(offset < ALIGN);
        let len = len.max(1);
        let layout = Layout::from_size_align(len.checked_add(offset)?, ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        // SAFETY: `base` is a fresh allocation of `layout.size()` bytes.
        unsafe { base.as_ptr().write_bytes(fill, layout.size()) };
        // SAFETY: `offset` < `layout.size()`, so the pointer stays inside the allocation.
        let ptr = unsafe { base.add(offset) };
        Some(Backing { ptr, len, offset })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Overwrites the whole block, e.g. with the poison pattern after a free.
    pub(crate) fn fill(&self, byte: u8) {
        // SAFETY: the block is `len` bytes long and owned by `self`.
        unsafe { self.ptr.as_ptr().write_bytes(byte, self.len) };
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        let layout =
            Layout::from_size_align(self.len + self.offset, ALIGN).expect("validated in new");
        // SAFETY: allocated in `misaligned` with this exact layout at `ptr - offset`, and
        // dropped once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().sub(self.offset), layout) };
    }
}
