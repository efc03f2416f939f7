//! The simulated hardware as one value: its devices and the host's pinned memory. The registry
//! (`ffi::state`) owns the one instance; runtime and operator code receive it, or one of its
//! devices, as an argument.

use crate::base::error::{SimError, SimResult};
use crate::runtime::device::Device;
use crate::runtime::memory::{HostMemory, Mapped, device_of};

pub(crate) struct Machine {
    pub(crate) devices: Vec<Device>,
    pub(crate) host: HostMemory,
}

impl Machine {
    /// The device with id `id`, or `ACL_ERROR_RT_INVALID_DEVICEID`.
    pub(crate) fn device(&self, id: i64) -> SimResult<&Device> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.devices.get(i))
            .ok_or_else(|| {
                SimError::device_id(format!(
                    "device id {id} is invalid; the simulator has {} device(s): 0..={}",
                    self.devices.len(),
                    self.devices.len() - 1
                ))
            })
    }

    /// The device a device address belongs to.
    pub(crate) fn device_of_address(&self, addr: u64) -> SimResult<&Device> {
        let d = device_of(addr);
        self.devices.get(d).ok_or_else(|| {
            SimError::param(format!(
                "{addr:#x} is a device address of device {d}, but the simulator has {} \
                 device(s)",
                self.devices.len()
            ))
        })
    }

    /// Checks that `[addr, addr + len)` is inside one live device allocation and maps it.
    pub(crate) fn map_device(&self, addr: u64, len: usize) -> SimResult<Mapped> {
        self.device_of_address(addr)?.memory.map(addr, len)
    }
}
