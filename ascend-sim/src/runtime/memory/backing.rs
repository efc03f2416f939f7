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
        let layout = Layout::from_size_align(len.max(1), ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        // SAFETY: `ptr` is a fresh allocation of `layout.size()` bytes.
        unsafe { ptr.as_ptr().write_bytes(fill, layout.size()) };
        Some(Backing {
            ptr,
            len: layout.size(),
        })
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
        let layout = Layout::from_size_align(self.len, ALIGN).expect("validated in new");
        // SAFETY: allocated in `new` with this exact layout, and dropped once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
    }
}
