//! Parameter checks and execution of `aclrtMemcpy*` and `aclrtMemset*`.
//!
//! A copy is planned (and every check done) when it is issued, then executed (on the calling
//! thread or a stream worker), where the ranges are checked again: memory freed between issue
//! and execution is caught as a device-side error rather than touched.

use ascend_sys::{
    ACL_ERROR_RT_NO_PERMISSION, ACL_MEMCPY_DEFAULT, ACL_MEMCPY_DEVICE_TO_DEVICE,
    ACL_MEMCPY_DEVICE_TO_HOST, ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE, ACL_MEMCPY_HOST_TO_DEVICE,
    ACL_MEMCPY_HOST_TO_HOST, ACL_MEMCPY_INNER_DEVICE_TO_DEVICE, ACL_MEMCPY_INTER_DEVICE_TO_DEVICE,
    aclrtMemcpyKind,
};

use crate::base::error::{SimError, SimResult};
use crate::runtime::counters::Traffic;
use crate::runtime::machine::Machine;
use crate::runtime::memory::{self, HostPlace, Mapped};

/// Where a pointer points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Device { device: usize, addr: u64 },
    Host { addr: usize, pinned: bool },
}

impl Place {
    pub(crate) fn of(machine: &Machine, ptr: u64) -> SimResult<Place> {
        if memory::is_device_address(ptr) {
            let device = memory::device_of(ptr);
            if device >= machine.devices.len() {
                return Err(SimError::param(format!(
                    "{ptr:#x} is a device address of device {device}, but the simulator has {} \
                     device(s)",
                    machine.devices.len()
                )));
            }
            return Ok(Place::Device { device, addr: ptr });
        }
        let pinned = matches!(machine.host.place(ptr as usize), HostPlace::Pinned);
        Ok(Place::Host {
            addr: ptr as usize,
            pinned,
        })
    }

    fn describe(&self) -> String {
        match *self {
            Place::Device { device, addr } => {
                format!("device memory ({addr:#x} on device {device})")
            }
            Place::Host { addr, pinned: true } => format!("pinned host memory ({addr:#x})"),
            Place::Host { addr, .. } => format!("pageable host memory ({addr:#x})"),
        }
    }

    fn is_device(&self) -> bool {
        matches!(self, Place::Device { .. })
    }

    pub(crate) fn is_pageable(&self) -> bool {
        matches!(self, Place::Host { pinned: false, .. })
    }

    /// Checks and maps `len` bytes at this place.
    fn map(&self, machine: &Machine, len: usize) -> SimResult<Mapped> {
        match *self {
            Place::Device { addr, .. } => machine.map_device(addr, len),
            Place::Host { addr, .. } => machine.host.map(addr, len),
        }
    }
}

fn kind_name(kind: aclrtMemcpyKind) -> &'static str {
    match kind {
        ACL_MEMCPY_HOST_TO_HOST => "ACL_MEMCPY_HOST_TO_HOST",
        ACL_MEMCPY_HOST_TO_DEVICE => "ACL_MEMCPY_HOST_TO_DEVICE",
        ACL_MEMCPY_DEVICE_TO_HOST => "ACL_MEMCPY_DEVICE_TO_HOST",
        ACL_MEMCPY_DEVICE_TO_DEVICE => "ACL_MEMCPY_DEVICE_TO_DEVICE",
        ACL_MEMCPY_DEFAULT => "ACL_MEMCPY_DEFAULT",
        ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE => "ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE",
        ACL_MEMCPY_INNER_DEVICE_TO_DEVICE => "ACL_MEMCPY_INNER_DEVICE_TO_DEVICE",
        ACL_MEMCPY_INTER_DEVICE_TO_DEVICE => "ACL_MEMCPY_INTER_DEVICE_TO_DEVICE",
        _ => "an unknown kind",
    }
}

/// Checks `kind` against what the pointers are; returns which counter the copy adds to.
fn check_kind(kind: aclrtMemcpyKind, dst: &Place, src: &Place) -> SimResult<Option<Traffic>> {
    // (source on device, destination on device) the kind requires, None = any.
    let wanted = match kind {
        ACL_MEMCPY_HOST_TO_HOST => Some((false, false)),
        ACL_MEMCPY_HOST_TO_DEVICE | ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE => Some((false, true)),
        ACL_MEMCPY_DEVICE_TO_HOST => Some((true, false)),
        ACL_MEMCPY_DEVICE_TO_DEVICE
        | ACL_MEMCPY_INNER_DEVICE_TO_DEVICE
        | ACL_MEMCPY_INTER_DEVICE_TO_DEVICE => Some((true, true)),
        ACL_MEMCPY_DEFAULT => None,
        _ => {
            return Err(SimError::param(format!(
                "memcpy kind {kind} is invalid; expected an aclrtMemcpyKind value 0..=7"
            )));
        }
    };
    let actual = (src.is_device(), dst.is_device());
    if let Some(w) = wanted {
        if w != actual {
            let side = |d: bool| if d { "device" } else { "host" };
            return Err(SimError::param(format!(
                "{} needs a {} source and a {} destination, but the source is {} and the \
                 destination is {}",
                kind_name(kind),
                side(w.0),
                side(w.1),
                src.describe(),
                dst.describe()
            )));
        }
    }
    if let (Place::Device { device: s, .. }, Place::Device { device: d, .. }) = (src, dst) {
        if kind == ACL_MEMCPY_INNER_DEVICE_TO_DEVICE && s != d {
            return Err(SimError::param(format!(
                "ACL_MEMCPY_INNER_DEVICE_TO_DEVICE needs both pointers on one device, but the \
                 source is on device {s} and the destination on device {d}"
            )));
        }
        if kind == ACL_MEMCPY_INTER_DEVICE_TO_DEVICE && s == d {
            return Err(SimError::param(format!(
                "ACL_MEMCPY_INTER_DEVICE_TO_DEVICE needs pointers on two devices, but both are \
                 on device {s}"
            )));
        }
    }
    Ok(match actual {
        (false, false) => None,
        (false, true) => Some(Traffic::H2D),
        (true, false) => Some(Traffic::D2H),
        (true, true) => Some(Traffic::D2D),
    })
}

/// Device memory of another device needs peer access enabled from the current device.
fn check_peer(machine: &Machine, current: usize, place: &Place) -> SimResult<()> {
    if let Place::Device { device, addr } = *place {
        if !machine.devices[current].can_access(device) {
            return Err(SimError::new(
                ACL_ERROR_RT_NO_PERMISSION,
                format!(
                    "{addr:#x} is memory of device {device}, but the current device is \
                     {current} and peer access from device {current} to device {device} is not \
                     enabled; call aclrtDeviceEnablePeerAccess({device}, 0) on device {current}"
                ),
            ));
        }
    }
    Ok(())
}

fn nonnull(ptr: u64, name: &str) -> SimResult<()> {
    if ptr == 0 {
        Err(SimError::param(format!("{name} is NULL")))
    } else {
        Ok(())
    }
}

/// The addresses and geometry of a copy, as `aclrtMemcpy2d` takes them: `height` rows of
/// `width` bytes, rows `dpitch` bytes apart at `dst` and `spitch` bytes apart at `src`. A 1-D
/// copy is one row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopyShape {
    pub(crate) dst: u64,
    pub(crate) dpitch: usize,
    pub(crate) src: u64,
    pub(crate) spitch: usize,
    pub(crate) width: usize,
    pub(crate) height: usize,
}

/// A checked (possibly 2-D) copy.
#[derive(Clone, Copy)]
pub(crate) struct CopyPlan {
    machine: &'static Machine,
    dst: Place,
    src: Place,
    shape: CopyShape,
    traffic: Option<Traffic>,
}

impl CopyPlan {
    /// `aclrtMemcpy[Async]` parameters.
    pub(crate) fn plan_1d(
        machine: &'static Machine,
        current: usize,
        dst: u64,
        dest_max: usize,
        src: u64,
        count: usize,
        kind: aclrtMemcpyKind,
    ) -> SimResult<CopyPlan> {
        nonnull(dst, "dst")?;
        nonnull(src, "src")?;
        if count == 0 {
            return Err(SimError::param(
                "count is 0; expected a non-zero number of bytes",
            ));
        }
        if count > dest_max {
            return Err(SimError::param(format!(
                "count ({count}) is larger than destMax ({dest_max}); destMax must be the \
                 destination's capacity in bytes"
            )));
        }
        let shape = CopyShape {
            dst,
            dpitch: count,
            src,
            spitch: count,
            width: count,
            height: 1,
        };
        Self::plan(machine, current, shape, kind)
    }

    /// `aclrtMemcpy2d[Async]` parameters.
    pub(crate) fn plan(
        machine: &'static Machine,
        current: usize,
        shape: CopyShape,
        kind: aclrtMemcpyKind,
    ) -> SimResult<CopyPlan> {
        let CopyShape {
            dst,
            dpitch,
            src,
            spitch,
            width,
            height,
        } = shape;
        nonnull(dst, "dst")?;
        nonnull(src, "src")?;
        if width == 0 || height == 0 {
            return Err(SimError::param(format!(
                "width ({width}) and height ({height}) must both be non-zero"
            )));
        }
        if dpitch < width || spitch < width {
            return Err(SimError::param(format!(
                "pitches must be at least the width ({width} bytes), got dpitch {dpitch} and \
                 spitch {spitch}"
            )));
        }
        let dst_place = Place::of(machine, dst)?;
        let src_place = Place::of(machine, src)?;
        let traffic = check_kind(kind, &dst_place, &src_place)?;
        check_peer(machine, current, &src_place)?;
        check_peer(machine, current, &dst_place)?;
        let copy = CopyPlan {
            machine,
            dst: dst_place,
            src: src_place,
            shape,
            traffic,
        };
        copy.map()?;
        Ok(copy)
    }

    fn extent(pitch: usize, width: usize, height: usize) -> SimResult<usize> {
        pitch
            .checked_mul(height - 1)
            .and_then(|v| v.checked_add(width))
            .ok_or_else(|| SimError::param("the copy's extent overflows the address space"))
    }

    fn map(&self) -> SimResult<(Mapped, Mapped)> {
        let d = self
            .dst
            .map(
                self.machine,
                Self::extent(self.shape.dpitch, self.shape.width, self.shape.height)?,
            )
            .map_err(|e| prefix(e, "destination"))?;
        let s = self
            .src
            .map(
                self.machine,
                Self::extent(self.shape.spitch, self.shape.width, self.shape.height)?,
            )
            .map_err(|e| prefix(e, "source"))?;
        Ok((d, s))
    }

    /// Whether either side is pageable host memory (async copies then complete before
    /// returning).
    pub(crate) fn touches_pageable(&self) -> bool {
        self.dst.is_pageable() || self.src.is_pageable()
    }

    pub(crate) fn is_host_to_host(&self) -> bool {
        self.traffic.is_none()
    }

    /// Checks the ranges again and copies.
    pub(crate) fn execute(&self) -> SimResult<()> {
        let (d, s) = self.map()?;
        let CopyShape {
            dpitch,
            spitch,
            width,
            height,
            ..
        } = self.shape;
        for row in 0..height {
            // SAFETY: `map` just checked both extents: checked ranges lie inside live blocks
            // kept alive by `d`/`s`; unchecked ones are pageable host memory the caller
            // promised (C contract) to be valid for the extent until the copy completes.
            // `ptr::copy` tolerates overlap, as memmove.
            unsafe {
                std::ptr::copy(s.ptr().add(row * spitch), d.ptr().add(row * dpitch), width);
            }
        }
        let bytes = (width * height) as u64;
        match (self.traffic, self.dst, self.src) {
            (Some(t @ (Traffic::H2D | Traffic::D2D)), Place::Device { device, .. }, _)
            | (Some(t @ Traffic::D2H), _, Place::Device { device, .. }) => {
                self.machine.devices[device].counters.add(t, bytes)
            }
            _ => {}
        }
        debug_assert!(d.is_checked() || s.is_checked() || self.traffic.is_none());
        Ok(())
    }
}

fn prefix(mut e: SimError, side: &str) -> SimError {
    e.message = format!("{side}: {}", e.message);
    e
}

/// A checked memset.
#[derive(Clone, Copy)]
pub(crate) struct MemsetPlan {
    machine: &'static Machine,
    dst: Place,
    count: usize,
    byte: u8,
}

impl MemsetPlan {
    pub(crate) fn plan(
        machine: &'static Machine,
        current: usize,
        ptr: u64,
        max_count: usize,
        value: i32,
        count: usize,
    ) -> SimResult<MemsetPlan> {
        nonnull(ptr, "devPtr")?;
        if count == 0 {
            return Err(SimError::param(
                "count is 0; expected a non-zero number of bytes",
            ));
        }
        if count > max_count {
            return Err(SimError::param(format!(
                "count ({count}) is larger than maxCount ({max_count})"
            )));
        }
        let dst = Place::of(machine, ptr)?;
        if dst.is_pageable() {
            return Err(SimError::param(format!(
                "{} cannot be set: host memory for aclrtMemset must come from aclrtMallocHost",
                dst.describe()
            )));
        }
        check_peer(machine, current, &dst)?;
        let m = MemsetPlan {
            machine,
            dst,
            count,
            byte: value as u8,
        };
        m.dst.map(machine, count)?;
        Ok(m)
    }

    pub(crate) fn execute(&self) -> SimResult<()> {
        let d = self.dst.map(self.machine, self.count)?;
        // SAFETY: `map` checked that `count` bytes at `d` lie inside a live block it keeps
        // alive.
        unsafe { d.ptr().write_bytes(self.byte, self.count) };
        if let Place::Device { device, .. } = self.dst {
            self.machine.devices[device]
                .counters
                .add(Traffic::Memset, self.count as u64);
        }
        Ok(())
    }
}
