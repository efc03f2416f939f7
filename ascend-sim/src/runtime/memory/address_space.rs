//! One device's memory: a bump allocator over a private range of fake addresses.
//!
//! Addresses are never reused, and a guard gap separates allocations, so every stray access
//! (past the end, into a freed block, into a gap) is detectable and can be named precisely.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use ascend_sys::{ACL_ERROR_RT_MEMORY_ALLOCATION, ACL_ERROR_RT_MEMORY_FREE};

use super::{Backing, FREED_BYTE, Mapped, UNINIT_BYTE, backing::ALIGN};
use crate::base::error::{SimError, SimResult};
use crate::base::sync::{read, write};
use crate::rules::violation_text;

/// Unused addresses after each allocation's reserved bytes.
const GUARD: u64 = 4096;
/// The first allocation's offset from the region base, so no device pointer looks small.
const FIRST_OFFSET: u64 = 0x1000_0000;
/// How many freed allocations are remembered by name (older ones are reported as unknown).
const FREED_RECORDS: usize = 1 << 16;
/// Freed blocks kept alive and poisoned, in bytes, for stale raw pointers from `translate`.
const QUARANTINE_BYTES: usize = 64 << 20;

struct Live {
    id: u64,
    size: u64,
    reserved: u64,
    backing: Arc<Backing>,
}

struct Freed {
    id: u64,
    size: u64,
    how: &'static str,
}

#[derive(Default)]
struct Space {
    next: u64,
    used: u64,
    next_id: u64,
    live: BTreeMap<u64, Live>,
    freed: BTreeMap<u64, Freed>,
    freed_order: VecDeque<u64>,
    quarantine: VecDeque<Arc<Backing>>,
    quarantine_bytes: usize,
}

/// The memory of one device.
pub(crate) struct AddressSpace {
    device: usize,
    base: u64,
    capacity: u64,
    space: RwLock<Space>,
}

impl AddressSpace {
    pub(crate) fn new(device: usize, capacity: u64) -> Self {
        let base = super::device_base(device);
        AddressSpace {
            device,
            base,
            capacity,
            space: RwLock::new(Space {
                next: base + FIRST_OFFSET,
                next_id: 1,
                ..Space::default()
            }),
        }
    }

    /// (free, total) bytes, counting each live allocation's reserved size.
    pub(crate) fn info(&self) -> (u64, u64) {
        let used = read(&self.space).used;
        (self.capacity.saturating_sub(used), self.capacity)
    }

    /// Allocates `size` bytes reserving `reserved` of the device's capacity.
    pub(crate) fn alloc(&self, size: u64, reserved: u64) -> SimResult<u64> {
        let (addr, id) = {
            let mut s = write(&self.space);
            if s.used.saturating_add(reserved) > self.capacity {
                return Err(SimError::new(
                    ACL_ERROR_RT_MEMORY_ALLOCATION,
                    violation_text(
                        "malloc.within-device-memory",
                        format_args!(
                            "out of device memory on device {}: {size} bytes requested \
                             ({reserved} reserved), {} of {} bytes already in use",
                            self.device, s.used, self.capacity
                        ),
                    ),
                ));
            }
            let addr = s.next.next_multiple_of(ALIGN as u64);
            let end = addr
                .checked_add(reserved)
                .and_then(|e| e.checked_add(GUARD))
                .filter(|&e| e <= self.base + super::DEVICE_SPAN)
                .ok_or_else(|| {
                    SimError::new(
                        ACL_ERROR_RT_MEMORY_ALLOCATION,
                        format!(
                            "device {} has used up its simulated address space (addresses are \
                             never reused)",
                            self.device
                        ),
                    )
                })?;
            s.next = end;
            s.used += reserved;
            let id = s.next_id;
            s.next_id += 1;
            (addr, id)
        };
        // Filling a large block takes a while: do it without holding the lock.
        let backing = usize::try_from(size)
            .ok()
            .and_then(|len| Backing::new(len, UNINIT_BYTE));
        let mut s = write(&self.space);
        match backing {
            Some(backing) => {
                s.live.insert(
                    addr,
                    Live {
                        id,
                        size,
                        reserved,
                        backing: Arc::new(backing),
                    },
                );
                Ok(addr)
            }
            None => {
                s.used -= reserved;
                Err(SimError::new(
                    ACL_ERROR_RT_MEMORY_ALLOCATION,
                    format!(
                        "the host could not back a {size}-byte allocation of device {}",
                        self.device
                    ),
                ))
            }
        }
    }

    /// Frees the allocation starting at `addr`.
    pub(crate) fn free(&self, addr: u64) -> SimResult<()> {
        let mut s = write(&self.space);
        if let Some(live) = s.live.remove(&addr) {
            s.used -= live.reserved;
            retire(&mut s, addr, live, "aclrtFree");
            return Ok(());
        }
        let message = if let Some(f) = s.freed.get(&addr) {
            format!(
                "double free: {addr:#x} (allocation #{} of {} bytes on device {}) was already \
                 freed by {}",
                f.id, f.size, self.device, f.how
            )
        } else if let Some((base, live)) = containing(&s.live, addr) {
            format!(
                "{addr:#x} is not the start of an allocation: it is {} bytes into allocation \
                 #{} at {base:#x} ({} bytes); pass the address aclrtMalloc returned",
                addr - base,
                live.id,
                live.size
            )
        } else {
            format!(
                "{addr:#x} was not returned by aclrtMalloc on device {}",
                self.device
            )
        };
        Err(SimError::new(ACL_ERROR_RT_MEMORY_FREE, message))
    }

    /// Frees every live allocation (device reset).
    pub(crate) fn free_all(&self, how: &'static str) {
        let mut s = write(&self.space);
        let live = std::mem::take(&mut s.live);
        for (addr, l) in live {
            s.used -= l.reserved;
            retire(&mut s, addr, l, how);
        }
    }

    /// Checks that `[addr, addr + len)` lies inside one live allocation and maps it.
    pub(crate) fn map(&self, addr: u64, len: usize) -> SimResult<Mapped> {
        let s = read(&self.space);
        let req_end = addr.saturating_add(len as u64);
        if let Some((base, live)) = containing_or_before(&s.live, addr) {
            let end = base + live.size;
            if addr < end {
                if req_end <= end {
                    return Ok(Mapped::new(live.backing.clone(), (addr - base) as usize));
                }
                return Err(SimError::param(format!(
                    "device range [{addr:#x}, +{len}) overflows allocation #{} [{base:#x}, \
                     +{}) on device {} by {} bytes",
                    live.id,
                    live.size,
                    self.device,
                    req_end - end
                )));
            }
        }
        if let Some((base, f)) = containing_or_before(&s.freed, addr) {
            if addr < base + f.size {
                return Err(SimError::param(format!(
                    "use after free: device range [{addr:#x}, +{len}) is in allocation #{} \
                     [{base:#x}, +{}) on device {}, freed by {}",
                    f.id, f.size, self.device, f.how
                )));
            }
        }
        let after = containing_or_before(&s.live, addr)
            .map(|(base, l)| {
                format!(
                    " (it is past the end of allocation #{} at {base:#x}, {} bytes)",
                    l.id, l.size
                )
            })
            .unwrap_or_default();
        Err(SimError::param(format!(
            "device range [{addr:#x}, +{len}) is not inside any live allocation on device \
             {}{after}",
            self.device
        )))
    }
}

/// Moves a live allocation to the freed records, poisoning and quarantining its backing.
fn retire(s: &mut Space, addr: u64, live: Live, how: &'static str) {
    live.backing.fill(FREED_BYTE);
    s.quarantine_bytes += live.backing.len();
    s.quarantine.push_back(live.backing);
    while s.quarantine_bytes > QUARANTINE_BYTES {
        match s.quarantine.pop_front() {
            Some(old) => s.quarantine_bytes -= old.len(),
            None => break,
        }
    }
    s.freed.insert(
        addr,
        Freed {
            id: live.id,
            size: live.size,
            how,
        },
    );
    s.freed_order.push_back(addr);
    if s.freed_order.len() > FREED_RECORDS {
        if let Some(old) = s.freed_order.pop_front() {
            s.freed.remove(&old);
        }
    }
}

/// The entry with the greatest base <= `addr`.
fn containing_or_before<T>(map: &BTreeMap<u64, T>, addr: u64) -> Option<(u64, &T)> {
    map.range(..=addr).next_back().map(|(b, v)| (*b, v))
}

/// The live allocation containing `addr`, if any.
fn containing(map: &BTreeMap<u64, Live>, addr: u64) -> Option<(u64, &Live)> {
    containing_or_before(map, addr).filter(|(base, l)| addr < base + l.size)
}
