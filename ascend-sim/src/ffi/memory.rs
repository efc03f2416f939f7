//! Device and pinned host allocation, memory info.

use std::ffi::c_void;

use ascend_sys::{
    ACL_DDR_MEM, ACL_DDR_MEM_HUGE, ACL_DDR_MEM_NORMAL, ACL_DDR_MEM_P2P_HUGE,
    ACL_DDR_MEM_P2P_NORMAL, ACL_ERROR_RT_MEMORY_ALLOCATION, ACL_ERROR_RT_MEMORY_FREE,
    ACL_MEM_MALLOC_HUGE1G_ONLY, ACL_MEM_MALLOC_HUGE1G_ONLY_P2P, ACL_MEM_P2P_HUGE1G, StaticSymbols,
    aclError, aclrtMemAttr, aclrtMemMallocPolicy,
};

use super::context::current;
use super::{guard, write_out};
use crate::base::error::{SimError, SimResult};
use crate::ffi::state::sim;
use crate::runtime::memory::{HostPlace, is_device_address};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Malloc,
    Align32,
}

fn malloc(
    out: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
    v: Variant,
) -> SimResult<()> {
    if out.is_null() {
        return Err(SimError::param("output pointer devPtr is NULL"));
    }
    if size == 0 {
        return Err(SimError::param(
            "size is 0; expected a non-zero number of bytes",
        ));
    }
    let device = &sim()?.machine.devices[current()?.device];
    // The +32 padding is not added for 1 GiB huge-page policies or by aclrtMallocAlign32.
    // Other policy values (including out-of-range ones, which CANN maps to a default) only
    // choose page sizes, which the simulator does not model.
    let huge1g = matches!(
        policy,
        ACL_MEM_MALLOC_HUGE1G_ONLY | ACL_MEM_MALLOC_HUGE1G_ONLY_P2P
    );
    let pad = v == Variant::Malloc && !huge1g;
    let reserved = device
        .soc
        .malloc_reserved(size as u64, pad)
        .ok_or_else(|| {
            SimError::new(
                ACL_ERROR_RT_MEMORY_ALLOCATION,
                format!("size {size} is too large"),
            )
        })?;
    let addr = device.memory.alloc(size as u64, reserved)?;
    // SAFETY: output pointer per the C contract (checked non-NULL above).
    let written = unsafe { write_out(out, addr as *mut c_void, "devPtr") };
    if written.is_err() {
        // Nobody can free what they never received.
        let _ = device.memory.free(addr);
    } else {
        device.counters.allocated();
    }
    written
}

unsafe extern "C" fn aclrtMalloc(
    dev_ptr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    guard("aclrtMalloc", || {
        malloc(dev_ptr, size, policy, Variant::Malloc)
    })
}

unsafe extern "C" fn aclrtMallocAlign32(
    dev_ptr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    guard("aclrtMallocAlign32", || {
        malloc(dev_ptr, size, policy, Variant::Align32)
    })
}

unsafe extern "C" fn aclrtMallocCached(
    dev_ptr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    guard("aclrtMallocCached", || {
        malloc(dev_ptr, size, policy, Variant::Malloc)
    })
}

unsafe extern "C" fn aclrtFree(dev_ptr: *mut c_void) -> aclError {
    guard("aclrtFree", || {
        let addr = dev_ptr as u64;
        if addr == 0 {
            return Err(SimError::param("devPtr is NULL"));
        }
        let sim = sim()?;
        if !is_device_address(addr) {
            let what = match sim.machine.host.place(addr as usize) {
                HostPlace::Pinned => "pinned host memory; free it with aclrtFreeHost",
                HostPlace::Pageable => "not a device address",
            };
            return Err(SimError::new(
                ACL_ERROR_RT_MEMORY_FREE,
                format!("{addr:#x} is {what}"),
            ));
        }
        let device = sim
            .machine
            .devices
            .get(crate::runtime::memory::device_of(addr))
            .ok_or_else(|| {
                SimError::new(
                    ACL_ERROR_RT_MEMORY_FREE,
                    format!("{addr:#x} belongs to no simulated device"),
                )
            })?;
        device.memory.free(addr)
    })
}

unsafe extern "C" fn aclrtMallocHost(host_ptr: *mut *mut c_void, size: usize) -> aclError {
    guard("aclrtMallocHost", || {
        if host_ptr.is_null() {
            return Err(SimError::param("output pointer hostPtr is NULL"));
        }
        if size == 0 {
            return Err(SimError::param(
                "size is 0; expected a non-zero number of bytes",
            ));
        }
        let host = &sim()?.machine.host;
        let p = host.alloc(size)?;
        // SAFETY: output pointer per the C contract (checked non-NULL above).
        let written = unsafe { write_out(host_ptr, p.cast::<c_void>(), "hostPtr") };
        if written.is_err() {
            let _ = host.free(p as usize);
        }
        written
    })
}

unsafe extern "C" fn aclrtFreeHost(host_ptr: *mut c_void) -> aclError {
    guard("aclrtFreeHost", || {
        if host_ptr.is_null() {
            return Err(SimError::param("hostPtr is NULL"));
        }
        sim()?.machine.host.free(host_ptr as usize)
    })
}

unsafe extern "C" fn aclrtGetMemInfo(
    attr: aclrtMemAttr,
    free: *mut usize,
    total: *mut usize,
) -> aclError {
    guard("aclrtGetMemInfo", || {
        if attr > ACL_MEM_P2P_HUGE1G {
            return Err(SimError::param(format!(
                "memory attribute {attr} is not an aclrtMemAttr value (0..=17)"
            )));
        }
        let device = &sim()?.machine.devices[current()?.device];
        // A2/A3/950 devices have HBM only: DDR attributes report no memory.
        let ddr = matches!(
            attr,
            ACL_DDR_MEM
                | ACL_DDR_MEM_HUGE
                | ACL_DDR_MEM_NORMAL
                | ACL_DDR_MEM_P2P_HUGE
                | ACL_DDR_MEM_P2P_NORMAL
        );
        let (f, t) = if ddr { (0, 0) } else { device.memory.info() };
        // SAFETY: output pointers per the C contract.
        unsafe {
            write_out(free, f as usize, "free")?;
            write_out(total, t as usize, "total")
        }
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtMalloc = Some(aclrtMalloc);
    s.aclrtMallocAlign32 = Some(aclrtMallocAlign32);
    s.aclrtMallocCached = Some(aclrtMallocCached);
    s.aclrtFree = Some(aclrtFree);
    s.aclrtMallocHost = Some(aclrtMallocHost);
    s.aclrtFreeHost = Some(aclrtFreeHost);
    s.aclrtGetMemInfo = Some(aclrtGetMemInfo);
}
