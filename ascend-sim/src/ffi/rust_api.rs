//! The Rust entry points that need the process-wide machine: device memory for code outside
//! the simulator's tasks (kernels through the shim, tests) and the devices' counters.

use crate::ffi::state::sim;
use crate::runtime::counters::DeviceCounters;
use crate::runtime::memory::{DeviceRange, is_device_address};

/// A snapshot of device `device`'s counters, or `None` for an invalid id or a simulator that
/// could not start.
pub fn counters(device: usize) -> Option<DeviceCounters> {
    let sim = sim().ok()?;
    sim.machine
        .devices
        .get(device)
        .map(|d| d.counters.snapshot())
}

/// Maps the device range `[ptr, ptr + len)` to host memory, checking that it lies inside one
/// live allocation; the error says which allocation was overrun, freed, or not found.
pub fn map_device_range(ptr: u64, len: usize) -> Result<DeviceRange, String> {
    if !is_device_address(ptr) {
        return Err(format!("{ptr:#x} is not a simulated device address"));
    }
    sim()
        .and_then(|sim| sim.machine.map_device(ptr, len))
        .map(|mapped| DeviceRange::new(mapped, len))
        .map_err(|e| e.message)
}

/// Translates the device range `[ptr, ptr + len)` to the host address backing it, after
/// checking that the range lies inside one live allocation.
///
/// # Safety contract for the returned pointer
///
/// The pointer is valid for reads and writes of `len` bytes only while the allocation stays
/// live: the caller must make sure it is not freed (`aclrtFree`, device reset) while the
/// pointer is in use, for example by using it only inside a stream task that the program
/// ordered before the free. Freed blocks stay in a bounded quarantine filled with
/// [`crate::FREED_BYTE`], which makes most late accesses visible but is not a guarantee. Prefer
/// [`map_device_range`], whose guard keeps the memory alive. Accesses from several threads
/// must be ordered by the program, as on the device.
pub fn translate(ptr: u64, len: usize) -> Result<*mut u8, String> {
    map_device_range(ptr, len).map(|r| r.as_ptr())
}
