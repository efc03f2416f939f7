//! Devices: set/reset, queries, device-wide synchronisation, peer access, topology.

use ascend_sys::{
    ACL_DEV_ATTR_AICORE_CORE_NUM, ACL_DEV_ATTR_AICPU_CORE_NUM, ACL_DEV_ATTR_CUBE_CORE_NUM,
    ACL_DEV_ATTR_IS_VIRTUAL, ACL_DEV_ATTR_L2_CACHE_SIZE, ACL_DEV_ATTR_MAX_THREAD_PER_VECTOR_CORE,
    ACL_DEV_ATTR_NPU_ARCH, ACL_DEV_ATTR_TOTAL_GLOBAL_MEM_SIZE, ACL_DEV_ATTR_UBUF_PER_VECTOR_CORE,
    ACL_DEV_ATTR_VECTOR_CORE_NUM, ACL_DEV_ATTR_WARP_SIZE, ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
    ACL_HOST, StaticSymbols, aclError, aclrtDevAttr, aclrtRunMode,
};

use super::context::current;
use super::{guard, write_out};
use crate::base::error::{SimError, SimResult};
use crate::base::soc::SocFamily;
use crate::base::sync::Timeout;
use crate::ffi::state::sim;
use crate::runtime::context::set_current;

/// `aclrtGetDevicesTopo` values (RT acl_rt.h): HCCS link, and SIO between the two dies of one
/// A3 chip.
pub(crate) const TOPOLOGY_HCCS: u64 = 0x01;
pub(crate) const TOPOLOGY_SIO: u64 = 0x20;

unsafe extern "C" fn aclrtSetDevice(device_id: i32) -> aclError {
    guard("aclrtSetDevice", || {
        let sim = sim()?;
        let device = sim.machine.device(device_id.into())?.id;
        super::init::require_init()?;
        let ctx = sim.set_device(device)?;
        set_current(ctx.handle);
        Ok(())
    })
}

fn reset(device_id: i32, force: bool) -> SimResult<()> {
    let sim = sim()?;
    let device = sim.machine.device(device_id.into())?.id;
    sim.reset_device(device, force)
}

unsafe extern "C" fn aclrtResetDevice(device_id: i32) -> aclError {
    guard("aclrtResetDevice", || reset(device_id, false))
}

unsafe extern "C" fn aclrtResetDeviceForce(device_id: i32) -> aclError {
    guard("aclrtResetDeviceForce", || reset(device_id, true))
}

unsafe extern "C" fn aclrtGetDevice(device_id: *mut i32) -> aclError {
    guard("aclrtGetDevice", || {
        let ctx = current()?;
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(device_id, ctx.device as i32, "deviceId") }
    })
}

unsafe extern "C" fn aclrtGetDeviceCount(count: *mut u32) -> aclError {
    guard("aclrtGetDeviceCount", || {
        let n = sim()?.machine.devices.len() as u32;
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(count, n, "count") }
    })
}

/// Waits for every stream of the current device, then reports the first sticky error.
fn synchronize_device(timeout: Timeout) -> SimResult<()> {
    let device = current()?.device;
    let streams = sim()?.streams.collect(|s| s.device == device);
    for s in &streams {
        s.synchronize_quietly(timeout)?;
    }
    let mut result = Ok(());
    for s in &streams {
        let r = s.take_error();
        if result.is_ok() {
            result = r;
        }
    }
    result
}

unsafe extern "C" fn aclrtSynchronizeDevice() -> aclError {
    guard("aclrtSynchronizeDevice", || {
        synchronize_device(Timeout::Forever)
    })
}

unsafe extern "C" fn aclrtSynchronizeDeviceWithTimeout(timeout: i32) -> aclError {
    guard("aclrtSynchronizeDeviceWithTimeout", || {
        synchronize_device(Timeout::from_ms(timeout)?)
    })
}

unsafe extern "C" fn aclrtGetRunMode(run_mode: *mut aclrtRunMode) -> aclError {
    // SAFETY: output pointer per the C contract.
    guard("aclrtGetRunMode", || unsafe {
        write_out(run_mode, ACL_HOST, "runMode")
    })
}

/// Names the rule that rejects a device attribute the simulated CANN release does not list.
pub(crate) const RULE_DEVICE_ATTR_VERSION: &str = "device-info.attr-by-cann-version";

fn device_info(device_id: u32, attr: aclrtDevAttr) -> SimResult<i64> {
    let sim = sim()?;
    let soc = &sim.machine.device(device_id.into())?.soc;
    let version = sim.config.cann_version;
    if !version.has_device_attr(attr) {
        return Err(SimError::param(format!(
            "device attribute {attr} does not exist in CANN {version} (8.2/8.3 list 1, 101 and \
             201 only; ACL_DEV_ATTR_CUBE_CORE_NUM (102) and the rest come with 8.5); fall back \
             to ACL_DEV_ATTR_AICORE_CORE_NUM / VECTOR_CORE_NUM [{RULE_DEVICE_ATTR_VERSION}]"
        )));
    }
    Ok(match attr {
        ACL_DEV_ATTR_AICPU_CORE_NUM => soc.aicpu_cores.into(),
        ACL_DEV_ATTR_AICORE_CORE_NUM | ACL_DEV_ATTR_CUBE_CORE_NUM => soc.aic_cores.into(),
        ACL_DEV_ATTR_VECTOR_CORE_NUM => soc.aiv_cores.into(),
        ACL_DEV_ATTR_UBUF_PER_VECTOR_CORE => soc.ub_bytes as i64,
        ACL_DEV_ATTR_TOTAL_GLOBAL_MEM_SIZE => soc.hbm_bytes as i64,
        ACL_DEV_ATTR_L2_CACHE_SIZE => soc.l2_bytes as i64,
        ACL_DEV_ATTR_IS_VIRTUAL => 0,
        ACL_DEV_ATTR_NPU_ARCH => soc.npu_arch,
        ACL_DEV_ATTR_WARP_SIZE | ACL_DEV_ATTR_MAX_THREAD_PER_VECTOR_CORE => {
            return Err(SimError::new(
                ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
                format!("attribute {attr} (SIMT) is not simulated for {}", soc.name),
            ));
        }
        _ => {
            return Err(SimError::param(format!(
                "device attribute {attr} is not an aclrtDevAttr value the simulator knows"
            )));
        }
    })
}

unsafe extern "C" fn aclrtGetDeviceInfo(
    device_id: u32,
    attr: aclrtDevAttr,
    value: *mut i64,
) -> aclError {
    guard("aclrtGetDeviceInfo", || {
        let v = device_info(device_id, attr)?;
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(value, v, "value") }
    })
}

unsafe extern "C" fn aclrtDeviceCanAccessPeer(
    can: *mut i32,
    device_id: i32,
    peer: i32,
) -> aclError {
    guard("aclrtDeviceCanAccessPeer", || {
        let sim = sim()?;
        let a = sim.machine.device(device_id.into())?.id;
        let b = sim.machine.device(peer.into())?.id;
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(can, i32::from(a != b), "canAccessPeer") }
    })
}

/// The current device and the validated peer id.
fn peer_pair(peer: i32) -> SimResult<(usize, usize)> {
    let sim = sim()?;
    let current = current()?.device;
    let peer = sim.machine.device(peer.into())?.id;
    if peer == current {
        return Err(SimError::param(format!(
            "peerDeviceId {peer} is the current device; peer access is between two devices"
        )));
    }
    Ok((current, peer))
}

unsafe extern "C" fn aclrtDeviceEnablePeerAccess(peer: i32, flags: u32) -> aclError {
    guard("aclrtDeviceEnablePeerAccess", || {
        if flags != 0 {
            return Err(SimError::param(format!(
                "flags is {flags:#x}; it must be 0"
            )));
        }
        let (current, peer) = peer_pair(peer)?;
        sim()?.machine.devices[current].enable_peer(peer);
        Ok(())
    })
}

unsafe extern "C" fn aclrtDeviceDisablePeerAccess(peer: i32) -> aclError {
    guard("aclrtDeviceDisablePeerAccess", || {
        let (current, peer) = peer_pair(peer)?;
        sim()?.machine.devices[current].disable_peer(peer)
    })
}

unsafe extern "C" fn aclrtGetDevicesTopo(device_id: u32, other: u32, value: *mut u64) -> aclError {
    guard("aclrtGetDevicesTopo", || {
        let sim = sim()?;
        let a = sim.machine.device(device_id.into())?;
        let b = sim.machine.device(other.into())?;
        if a.id == b.id {
            return Err(SimError::param(format!(
                "deviceId and otherDeviceId are both {}; expected two different devices",
                a.id
            )));
        }
        let same_chip = a.id / 2 == b.id / 2;
        let topo = if a.soc.family == SocFamily::A3 && b.soc.family == SocFamily::A3 && same_chip {
            TOPOLOGY_SIO
        } else {
            TOPOLOGY_HCCS
        };
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(value, topo, "value") }
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtSetDevice = Some(aclrtSetDevice);
    s.aclrtResetDevice = Some(aclrtResetDevice);
    s.aclrtResetDeviceForce = Some(aclrtResetDeviceForce);
    s.aclrtGetDevice = Some(aclrtGetDevice);
    s.aclrtGetDeviceCount = Some(aclrtGetDeviceCount);
    s.aclrtSynchronizeDevice = Some(aclrtSynchronizeDevice);
    s.aclrtSynchronizeDeviceWithTimeout = Some(aclrtSynchronizeDeviceWithTimeout);
    s.aclrtGetRunMode = Some(aclrtGetRunMode);
    s.aclrtGetDeviceInfo = Some(aclrtGetDeviceInfo);
    s.aclrtDeviceCanAccessPeer = Some(aclrtDeviceCanAccessPeer);
    s.aclrtDeviceEnablePeerAccess = Some(aclrtDeviceEnablePeerAccess);
    s.aclrtDeviceDisablePeerAccess = Some(aclrtDeviceDisablePeerAccess);
    s.aclrtGetDevicesTopo = Some(aclrtGetDevicesTopo);
}
