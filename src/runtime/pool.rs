//! Per-stream memory caches: a stream-ordered caching pool for intermediates, and device copies
//! of small constant blobs (kernel tilings).
//!
//! Both live inside the stream and hold raw device addresses, not buffers (a buffer holds its
//! stream, so holding buffers here would keep the stream alive forever).
//!
//! The pool is stream-ordered, as CUDA's: a pooled buffer that is dropped gives its block back
//! to its stream's pool at once, because any later work on that stream runs after the work
//! queued so far; if other streams used the buffer, the stream first waits for them (use
//! tracking says which). So after warm-up, a loop that allocates the same intermediates on one
//! stream makes no device allocation and no synchronisation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytemuck::{AnyBitPattern, Zeroable};

use super::device::Memory;
use super::device_buffer::{DeviceBuffer, DeviceSlice, byte_len};
use super::drop_errors;
use super::host_buffer::HostBuffer;
use super::stream::Stream;
use crate::error::Result;

/// Pool blocks are sized in multiples of this, so slightly different requests share blocks.
const GRANULE: usize = 512;

/// How many distinct constant blobs one stream keeps on the device; the least recently used
/// goes first.
const MAX_CONSTANTS: usize = 256;

#[derive(Default)]
pub(crate) struct StreamMemory {
    /// Idle pool blocks by size in bytes.
    blocks: Mutex<HashMap<usize, Vec<u64>>>,
    /// Bytes in `blocks`.
    cached: AtomicUsize,
    constants: Mutex<Constants>,
    /// Caller-supplied memory that new blocks are carved from before asking the device.
    workspaces: Mutex<Vec<Workspace>>,
}

/// One caller-supplied allocation: blocks are carved from `[base, base + next)`.
struct Workspace {
    base: u64,
    len: usize,
    next: usize,
}

#[derive(Default)]
struct Constants {
    /// Blob → (device address, last use).
    by_bytes: HashMap<Vec<u8>, (u64, u64)>,
    clock: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The pool block size for `bytes` (non-zero).
pub(crate) fn block_size(bytes: usize) -> usize {
    bytes.div_ceil(GRANULE).saturating_mul(GRANULE)
}

impl StreamMemory {
    fn take(&self, size: usize) -> Option<u64> {
        let ptr = lock(&self.blocks).get_mut(&size)?.pop()?;
        self.cached.fetch_sub(size, Ordering::Relaxed);
        Some(ptr)
    }

    fn put(&self, size: usize, ptr: u64) {
        lock(&self.blocks).entry(size).or_default().push(ptr);
        self.cached.fetch_add(size, Ordering::Relaxed);
    }

    /// A new block of `size` bytes carved from a caller-supplied workspace, if one has room.
    fn carve(&self, size: usize) -> Option<u64> {
        let mut workspaces = lock(&self.workspaces);
        let ws = workspaces.iter_mut().find(|w| w.len - w.next >= size)?;
        let ptr = ws.base + ws.next as u64;
        ws.next += size;
        Some(ptr)
    }

    /// Whether `ptr` lies in a caller-supplied workspace (and so cannot be freed on its own).
    fn in_workspace(&self, ptr: u64) -> bool {
        lock(&self.workspaces)
            .iter()
            .any(|w| (w.base..w.base + w.len as u64).contains(&ptr))
    }

    /// A block of `size` bytes: cached, carved from a workspace, or allocated.
    fn block(&self, stream: &Stream, size: usize) -> Result<u64> {
        match self.take(size).or_else(|| self.carve(size)) {
            Some(ptr) => Ok(ptr),
            None => stream.malloc(size),
        }
    }

    /// Empties the idle blocks out of the pool and returns those the device can free, as
    /// (size, address); blocks carved from workspaces stay.
    fn drain_idle(&self) -> Vec<(usize, u64)> {
        let blocks = std::mem::take(&mut *lock(&self.blocks));
        let mut freeable = Vec::new();
        for (size, ptrs) in blocks {
            for ptr in ptrs {
                self.cached.fetch_sub(size, Ordering::Relaxed);
                if self.in_workspace(ptr) {
                    self.put(size, ptr);
                } else {
                    freeable.push((size, ptr));
                }
            }
        }
        freeable
    }
}

impl Stream {
    /// Allocates `len` elements from this stream's caching pool; contents are unspecified.
    ///
    /// When the buffer is dropped, its memory goes back to the pool, ready for the next pooled
    /// allocation of the same size class on this stream, with no device call. Use it for
    /// intermediates that are allocated again and again; [`Stream::trim_pool`] gives the cached
    /// memory back to the device.
    pub fn alloc_pooled<T: AnyBitPattern>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        self.alloc_pooled_raw(len)
    }

    /// [`Stream::alloc_pooled`], zero-filled on this stream (so any `Zeroable` type will do:
    /// every later use is ordered after the fill).
    pub fn alloc_pooled_zeroed<T: Zeroable>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let mut buffer = self.alloc_pooled_raw(len)?;
        self.memset(&mut buffer, 0)?;
        Ok(buffer)
    }

    fn alloc_pooled_raw<T>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let bytes = byte_len::<T>(len)?;
        if bytes == 0 {
            return self.alloc_raw(0);
        }
        let ptr = self.memory().block(self, block_size(bytes))?;
        Ok(DeviceBuffer::pooled(ptr, len, self.clone()))
    }

    /// Bytes of device memory this stream's pool holds for reuse.
    pub fn pooled_bytes(&self) -> usize {
        self.memory().cached.load(Ordering::Relaxed)
    }

    /// Gives the pool's idle memory back to the device, in stream order: freed once the work
    /// queued so far on this stream has completed. Supplied workspaces stay with the stream.
    pub fn trim_pool(&self) -> Result<()> {
        let device = &self.device().inner;
        let mut result = Ok(());
        for (_, ptr) in self.memory().drain_idle() {
            let freed = device.free_after(Memory::Device(ptr as usize), std::slice::from_ref(self));
            result = result.and(freed);
        }
        result
    }

    /// Gives the device back the idle pool blocks of its other streams whose queued work has
    /// all completed, and says how many bytes that freed. A stream with work still queued keeps
    /// its blocks: that work may use them (a block returns to its pool when its buffer is
    /// dropped, possibly before the work queued on it has run).
    pub(crate) fn trim_idle_pools_of_other_streams(&self) -> Result<usize> {
        let mut freed = 0;
        for other in self.others_on_device() {
            if other.pooled_bytes() == 0 {
                continue;
            }
            let blocks = other.memory().drain_idle();
            // Queried after draining: every use of a drained block was queued before the block
            // came back to the pool, so a stream idle now has completed all of them. (Queried
            // first, a block given back in between could still be in use.)
            let idle = other.is_idle();
            if !matches!(idle, Ok(true)) {
                for (size, ptr) in blocks {
                    other.memory().put(size, ptr);
                }
                idle?;
                continue;
            }
            let device = &other.device().inner;
            for (size, ptr) in blocks {
                device.free_now(Memory::Device(ptr as usize))?;
                freed += size;
            }
        }
        Ok(freed)
    }

    /// Supplies `workspace` to this stream's pool: new blocks are carved from it before the pool
    /// asks the device, so an engine that sizes its memory once (for instance from
    /// [`Stream::pooled_bytes`] after a warm-up call on another stream) makes no device
    /// allocation even in its first calls. The memory stays with the stream until the stream
    /// is destroyed; the stream is first ordered after every use of `workspace` elsewhere.
    pub fn supply_workspace(&self, mut workspace: DeviceBuffer<u8>) -> Result<()> {
        if workspace.stream().device() != self.device() {
            return Err(crate::Error::invalid(
                format!(
                    "a workspace on device {} for a stream of device {}",
                    workspace.stream().device().id(),
                    self.device().id()
                ),
                format!("memory of device {}", self.device().id()),
            ));
        }
        self.prepare_raw_write(&mut workspace)?;
        let len = workspace.len();
        let Some(base) = workspace.take_memory() else {
            return Ok(());
        };
        lock(&self.memory().workspaces).push(Workspace { base, len, next: 0 });
        Ok(())
    }

    /// Takes back the block of a dropped pooled buffer of `bytes` bytes that `users` (this
    /// stream among them, or not) may still use.
    pub(crate) fn return_block(&self, ptr: u64, bytes: usize, users: &[Stream]) {
        // Order this stream after the other users; then stream order covers every later user.
        for other in users.iter().filter(|s| !s.same_as(self)) {
            if let Err(e) = self.wait_for_current_end(other) {
                drop_errors::record(e);
                // Not ordered: the block must not be reused; free it after every user.
                let mut all = users.to_vec();
                all.push(self.clone());
                let device = &self.device().inner;
                if let Err(e) = device.free_after(Memory::Device(ptr as usize), &all) {
                    drop_errors::record(e);
                }
                return;
            }
        }
        self.memory().put(block_size(bytes), ptr);
    }

    /// The device address of a copy of `bytes` for work on this stream, uploaded the first time
    /// without blocking (through pinned memory, an async copy on this stream). At most
    /// `MAX_CONSTANTS` blobs are kept; the least recently used one is freed in stream order.
    pub(crate) fn constant(&self, bytes: &[u8]) -> Result<u64> {
        let memory = self.memory();
        let mut constants = lock(&memory.constants);
        constants.clock += 1;
        let now = constants.clock;
        if let Some((ptr, used)) = constants.by_bytes.get_mut(bytes) {
            *used = now;
            return Ok(*ptr);
        }
        if constants.by_bytes.len() >= MAX_CONSTANTS {
            let oldest = constants
                .by_bytes
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some((k, (ptr, _))) = oldest.and_then(|k| constants.by_bytes.remove_entry(&k)) {
                // Read only on this stream: stream order makes the block reusable at once.
                memory.put(block_size(k.len().max(1)), ptr);
            }
        }
        let staged = HostBuffer::from_slice(self.device(), bytes)?;
        let ptr = memory.block(self, block_size(bytes.len().max(1)))?;
        let copied = self.track(&[staged.read_access()], || {
            // SAFETY: `ptr` is a fresh allocation of at least `bytes.len()` bytes, owned by this
            // cache; `staged` is pinned memory of that size, kept alive by its use tracking
            // until the copy completes.
            unsafe {
                self.memcpy_async(
                    ptr as *mut std::ffi::c_void,
                    staged.host_ptr().cast(),
                    bytes.len(),
                    ascend_sys::ACL_MEMCPY_HOST_TO_DEVICE,
                )
            }
        });
        if let Err(e) = copied {
            memory.put(block_size(bytes.len().max(1)), ptr);
            return Err(e);
        }
        constants.by_bytes.insert(bytes.to_vec(), (ptr, now));
        Ok(ptr)
    }

    /// Frees every cached block and constant. Called by the stream's destructor once its work
    /// has completed.
    pub(crate) fn release_memory(memory: &StreamMemory, device: &super::device::DeviceInner) {
        let mut ptrs: Vec<u64> = memory
            .drain_idle()
            .into_iter()
            .map(|(_, ptr)| ptr)
            .collect();
        let constants = std::mem::take(&mut lock(&memory.constants).by_bytes);
        ptrs.extend(
            constants
                .into_values()
                .map(|(ptr, _)| ptr)
                .filter(|&ptr| !memory.in_workspace(ptr)),
        );
        ptrs.extend(lock(&memory.workspaces).drain(..).map(|w| w.base));
        for ptr in ptrs {
            if let Err(e) = device.free_now(Memory::Device(ptr as usize)) {
                drop_errors::record(e);
            }
        }
    }
}
