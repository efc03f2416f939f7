//! A device opened by this process.

use std::cell::Cell;
use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ascend_sys::{Api, CannVersion, aclCANNPackageVersion, aclrtContext};

use super::drop_errors;
use super::event::{Event, EventPool, RawEvent};
use super::stream::Stream;
use crate::backend::api;
use crate::checked_call::c_call;
use crate::error::{Error, Result};

/// A device opened with `aclrtSetDevice`, kept open while any handle, stream or buffer of it
/// lives. Cloning is cheap and shares the device.
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: Arc<DeviceInner>,
}

pub(crate) struct DeviceInner {
    pub(crate) id: i32,
    pub(crate) api: &'static Api,
    /// The device's default context, made current before calls that act on the device because
    /// ACL's current context is per host thread (skipped when this thread already has it).
    context: aclrtContext,
    /// This handle's number, never reused: what [`BOUND`] remembers.
    serial: u64,
    /// Allocations that streams may still use; freed once all their events complete.
    pending_frees: Mutex<Vec<PendingFree>>,
    /// Events for the runtime's own ordering (cross-stream waits, deferred frees).
    pub(crate) events: EventPool,
    /// The CANN release, read once: launches choose their call by it.
    cann_version: OnceLock<CannVersion>,
}

/// Memory to free once `events` (recorded on every stream that may use it) have completed.
struct PendingFree {
    events: Vec<RawEvent>,
    memory: Memory,
}

/// An allocation of the runtime.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Memory {
    /// `aclrtMalloc`.
    Device(usize),
    /// `aclrtMallocHost`.
    Host(usize),
}

// SAFETY: `context` is an opaque handle of the process-wide runtime, not thread-affine memory:
// ACL lets any thread make a context current (aclrtSetCurrentContext), and we do so before each
// call. The rest of the fields are Send + Sync.
unsafe impl Send for DeviceInner {}
// SAFETY: all methods take &self and only pass the handles to thread-safe runtime calls; the
// mutable state (pending frees) is behind a Mutex.
unsafe impl Sync for DeviceInner {}

/// Serial numbers of device handles; 0 means "none".
static SERIALS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The serial of the device handle whose context this thread made current last, so
    /// `bind` skips `aclrtSetCurrentContext` when it is already current. Serials are never
    /// reused, so a dropped handle's entry matches nothing; whatever else changes the
    /// thread's context (opening or resetting a device, raw calls) resets it.
    static BOUND: Cell<u64> = const { Cell::new(0) };
    /// `aclrtSetCurrentContext` calls this thread made, for tests of the cache.
    static CONTEXT_SETS: Cell<u64> = const { Cell::new(0) };
}

/// Tells the safe layer that the calling thread's current context was changed behind its
/// back (through [`raw_api`](crate::raw_api): `aclrtSetCurrentContext`, `aclrtSetDevice`,
/// `aclrtCreateContext`, ...), so its next call makes its device's context current again
/// instead of trusting its per-thread cache.
pub fn forget_bound_context() {
    BOUND.set(0);
}

/// How many times this thread made a context current (the cache's misses).
#[doc(hidden)]
pub fn context_sets_on_this_thread() -> u64 {
    CONTEXT_SETS.get()
}

/// Free and total device memory, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Bytes not yet allocated.
    pub free: usize,
    /// Bytes the device offers to applications.
    pub total: usize,
}

impl Device {
    /// The number of devices the backend exposes.
    pub fn count() -> Result<usize> {
        let api = api()?;
        let mut count = 0u32;
        // SAFETY: `count` is a valid out-pointer for the duration of the call.
        unsafe { c_call!(api, aclrtGetDeviceCount(&mut count)) }?;
        Ok(count as usize)
    }

    /// Opens device `id` (`0..Device::count()`).
    pub fn open(id: usize) -> Result<Device> {
        let api = api()?;
        let count = Self::count()?;
        if id >= count {
            return Err(Error::invalid(
                format!("device id {id}"),
                format!("an id below the device count {count}"),
            ));
        }
        let id = id as i32;
        // SAFETY: plain integer argument, validated above.
        unsafe { c_call!(api, aclrtSetDevice(id)) }?;
        let mut context: aclrtContext = std::ptr::null_mut();
        // SAFETY: `context` is a valid out-pointer; aclrtSetDevice just made the device's
        // default context current on this thread.
        let got = unsafe { c_call!(api, aclrtGetCurrentContext(&mut context)) };
        if let Err(e) = got {
            reset_device(api, id);
            return Err(e);
        }
        let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
        // aclrtSetDevice made this device's default context current on this thread.
        BOUND.set(serial);
        Ok(Device {
            inner: Arc::new(DeviceInner {
                id,
                api,
                context,
                serial,
                pending_frees: Mutex::new(Vec::new()),
                events: EventPool::default(),
                cann_version: OnceLock::new(),
            }),
        })
    }

    /// The device id.
    pub fn id(&self) -> usize {
        self.inner.id as usize
    }

    /// The SoC name reported by the runtime, e.g. `Ascend910B2`; the simulator appends
    /// `(ascend-sim)`.
    pub fn soc_name(&self) -> Result<String> {
        self.inner.bind()?;
        // SAFETY: no arguments; the result is null or a NUL-terminated string owned by the
        // runtime, copied before any other call.
        let ptr = unsafe { c_call!(self.inner.api, aclrtGetSocName(), null_is ACL_ERROR_FAILURE) }?;
        // SAFETY: checked non-null by c_call!; a NUL-terminated string per the contract.
        Ok(unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned())
    }

    /// Free and total HBM of this device.
    pub fn memory_info(&self) -> Result<MemoryInfo> {
        self.inner.bind()?;
        let api = self.inner.api;
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: both out-pointers are valid for the call.
        unsafe {
            c_call!(
                api,
                aclrtGetMemInfo(ascend_sys::ACL_HBM_MEM, &mut free, &mut total)
            )
        }?;
        Ok(MemoryInfo { free, total })
    }

    /// Waits for all work on the device, then releases deferred frees.
    pub fn synchronize(&self) -> Result<()> {
        self.inner.bind()?;
        let api = self.inner.api;
        // SAFETY: no arguments; acts on the context bound above.
        unsafe { c_call!(api, aclrtSynchronizeDevice()) }?;
        self.inner.reclaim();
        Ok(())
    }

    /// Creates a stream on this device.
    pub fn new_stream(&self) -> Result<Stream> {
        Stream::new(self)
    }

    /// How many events the runtime has created for its own ordering through this handle
    /// (cross-stream waits of use tracking, deferred frees). They are pooled and reused, and
    /// work confined to one stream needs none.
    pub fn runtime_events_created(&self) -> u64 {
        self.inner.events.created()
    }

    /// Creates an event on this device, able to time and to order streams.
    pub fn new_event(&self) -> Result<Event> {
        Event::new(self)
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}

impl Eq for Device {}

impl DeviceInner {
    /// Makes this device's context current on the calling thread, unless this thread made it
    /// current last (see [`BOUND`]).
    pub(crate) fn bind(&self) -> Result<()> {
        if BOUND.get() == self.serial {
            return Ok(());
        }
        // SAFETY: `context` is the live default context of a device this handle keeps open.
        unsafe { c_call!(self.api, aclrtSetCurrentContext(self.context)) }?;
        CONTEXT_SETS.set(CONTEXT_SETS.get() + 1);
        BOUND.set(self.serial);
        Ok(())
    }

    /// Frees `memory` once the work queued so far on each of `streams` has completed, without
    /// blocking: at once if there is none, else by a later [`DeviceInner::reclaim`].
    pub(crate) fn free_after(&self, memory: Memory, streams: &[Stream]) -> Result<()> {
        let mut events = Vec::with_capacity(streams.len());
        for stream in streams {
            if stream.is_idle()? {
                continue;
            }
            let event = self.events.take(self.api)?;
            if let Err(e) = event.record(self.api, stream.raw()) {
                self.events.retire(event);
                // The memory may still be in use: leaking it is the sound choice.
                for event in events {
                    self.events.retire(event);
                }
                return Err(e);
            }
            events.push(event);
        }
        if events.is_empty() {
            return self.free_now(memory);
        }
        self.pending_frees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingFree { events, memory });
        Ok(())
    }

    /// Frees deferred allocations whose last use has completed.
    pub(crate) fn reclaim(&self) {
        let mut ready = Vec::new();
        {
            let mut pending = self.pending_frees.lock().unwrap_or_else(|p| p.into_inner());
            if pending.is_empty() {
                return;
            }
            if let Err(e) = self.bind() {
                drop_errors::record(e);
                return;
            }
            let mut i = 0;
            while i < pending.len() {
                match self.drain_complete(&mut pending[i].events) {
                    Ok(true) => ready.push(pending.swap_remove(i).memory),
                    Ok(false) => i += 1,
                    Err(e) => {
                        // An event is unusable, so we can never know the memory is idle:
                        // leaking it is the sound choice.
                        drop_errors::record(e);
                        for event in pending.swap_remove(i).events {
                            self.events.retire(event);
                        }
                    }
                }
            }
        }
        for memory in ready {
            if let Err(e) = self.free_now(memory) {
                drop_errors::record(e);
            }
        }
    }

    /// Returns the completed events of `events` to the pool; whether none is left.
    fn drain_complete(&self, events: &mut Vec<RawEvent>) -> Result<bool> {
        while let Some(event) = events.last() {
            if !event.is_complete(self.api)? {
                return Ok(false);
            }
            let event = events.pop().expect("last exists");
            self.events.put_complete(self.api, event);
        }
        Ok(true)
    }

    /// Frees an allocation immediately. The caller guarantees no queued work uses it.
    pub(crate) fn free_now(&self, memory: Memory) -> Result<()> {
        self.bind()?;
        match memory {
            Memory::Device(ptr) => {
                // SAFETY: `ptr` came from aclrtMalloc on this device and no queued work touches
                // it.
                unsafe { c_call!(self.api, aclrtFree(ptr as *mut std::ffi::c_void)) }
            }
            Memory::Host(ptr) => {
                // SAFETY: `ptr` came from aclrtMallocHost and no queued work touches it.
                unsafe { c_call!(self.api, aclrtFreeHost(ptr as *mut std::ffi::c_void)) }
            }
        }
    }
}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        // Streams and buffers hold the device, so only deferred frees can remain, and their
        // streams are already destroyed (which waits for their work).
        let pending = std::mem::take(
            self.pending_frees
                .get_mut()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if !pending.is_empty() {
            if let Err(e) = self.bind() {
                drop_errors::record(e);
            }
        }
        for PendingFree { events, memory } in pending {
            let mut result = Ok(());
            for event in events {
                result = result.and(event.synchronize(self.api));
                self.events.retire(event);
            }
            if let Err(e) = result.and_then(|()| self.free_now(memory)) {
                drop_errors::record(e);
            }
        }
        let api = self.api;
        if self.bind().is_ok() {
            self.events.destroy_all(api);
        }
        reset_device(self.api, self.id);
    }
}

fn reset_device(api: &Api, id: i32) {
    // Resetting may leave this thread without a current context.
    BOUND.set(0);
    // SAFETY: `id` is a device this process set once for this handle.
    if let Err(e) = unsafe { c_call!(api, aclrtResetDevice(id)) } {
        drop_errors::record(e);
    }
}

impl Device {
    /// The CANN release behind the backend (`aclsysGetCANNVersion` for the CANN package), e.g.
    /// `8.1.RC1` or `8.5.0`; under the simulator, the release it answers as. Calls and operator
    /// features that differ between releases are chosen with it.
    ///
    /// ```
    /// use ascend_npu::{select_backend, Backend, Device};
    /// select_backend(Backend::Sim)?;
    /// let version = Device::open(0)?.cann_version()?;
    /// assert!(version >= ascend_npu::sys::CannVersion::V8_1_RC1);
    /// # Ok::<(), ascend_npu::Error>(())
    /// ```
    pub fn cann_version(&self) -> Result<CannVersion> {
        if let Some(v) = self.inner.cann_version.get() {
            return Ok(*v);
        }
        let v = self.query_cann_version()?;
        Ok(*self.inner.cann_version.get_or_init(|| v))
    }

    fn query_cann_version(&self) -> Result<CannVersion> {
        let api = self.inner.api;
        // SAFETY: plain-data C struct of byte arrays; all zeros is a valid value.
        let mut record: aclCANNPackageVersion = unsafe { std::mem::zeroed() };
        // SAFETY: valid package name and a valid out-pointer to a whole record.
        unsafe {
            c_call!(
                api,
                aclsysGetCANNVersion(ascend_sys::ACL_PKG_NAME_CANN, &mut record)
            )
        }?;
        let bytes: Vec<u8> = record
            .version
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        text.parse().map_err(|e: ascend_sys::BadCannVersion| {
            Error::invalid(
                format!("aclsysGetCANNVersion reported {text:?}"),
                e.to_string(),
            )
        })
    }

    /// An `aclrtGetDeviceInfo` attribute of this device.
    fn info(&self, attr: ascend_sys::aclrtDevAttr) -> Result<i64> {
        let api = self.inner.api;
        let mut value = 0i64;
        // SAFETY: valid device id of an open device and a valid out-pointer.
        unsafe {
            c_call!(
                api,
                aclrtGetDeviceInfo(self.inner.id as u32, attr, &mut value)
            )
        }?;
        Ok(value)
    }

    /// `(cube, vector)` cores by the SoC name, for releases without the attribute.
    fn cores_by_soc(&self, version: CannVersion) -> Result<(u32, u32)> {
        let soc = self.soc_name()?;
        ascend_sys::soc_cores(&soc).ok_or_else(|| {
            Error::invalid(
                format!(
                    "SoC {soc:?} is not in the core-count table and CANN {version} has no \
                     aclrtGetDeviceInfo"
                ),
                format!(
                    "a SoC of ascend_sys::SOC_CORES ({}), or CANN 8.2 or later",
                    ascend_sys::SOC_CORES.len()
                ),
            )
        })
    }

    /// Cube (AIC) cores: the block count of a cube kernel that fills the chip.
    ///
    /// `ACL_DEV_ATTR_CUBE_CORE_NUM` exists from CANN 8.5; before, `ACL_DEV_ATTR_AICORE_CORE_NUM`
    /// (the cube cores on the split A2/A3 chips, 8.2 on), and on 8.1 the SoC table.
    pub fn cube_cores(&self) -> Result<u32> {
        let version = self.cann_version()?;
        let cores = if version.has_cube_core_attr() {
            self.info(ascend_sys::ACL_DEV_ATTR_CUBE_CORE_NUM)?
        } else if version.has_device_info() {
            self.info(ascend_sys::ACL_DEV_ATTR_AICORE_CORE_NUM)?
        } else {
            self.cores_by_soc(version)?.0.into()
        };
        Ok(cores.clamp(1, i64::from(u32::MAX)) as u32)
    }

    /// Vector (AIV) cores: the block count of a vector kernel that fills the chip.
    ///
    /// `ACL_DEV_ATTR_VECTOR_CORE_NUM` from CANN 8.2; on 8.1 the SoC table.
    pub fn vector_cores(&self) -> Result<u32> {
        let version = self.cann_version()?;
        let cores = if version.has_device_info() {
            self.info(ascend_sys::ACL_DEV_ATTR_VECTOR_CORE_NUM)?
        } else {
            self.cores_by_soc(version)?.1.into()
        };
        Ok(cores.clamp(1, i64::from(u32::MAX)) as u32)
    }
}
