//! Pinned host memory (`aclrtMallocHost`): real host blocks, registered so copies can check
//! their bounds and tell pinned from pageable memory.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use ascend_sys::{ACL_ERROR_RT_MEMORY_ALLOCATION, ACL_ERROR_RT_MEMORY_FREE};

use super::{Backing, FREED_BYTE, Mapped, UNINIT_BYTE};
use crate::base::error::{SimError, SimResult};
use crate::base::sync::lock;

/// Freed pinned blocks kept (poisoned) before going back to the system allocator. While a
/// block is quarantined its addresses cannot be handed out by `malloc`, so a late access to it
/// is reliably a use after free rather than a hit in unrelated memory.
const QUARANTINE_BYTES: usize = 64 << 20;

thread_local! {
    /// Offset of this thread's next pinned block past the simulator's alignment; 0 when no
    /// test armed it. Per thread, so tests running side by side do not take each other's.
    static MISALIGN_NEXT: Cell<usize> = const { Cell::new(0) };
}

/// Test hook: the next `aclrtMallocHost` called on this thread returns a block starting `offset`
/// bytes (1 to 63) past a 64-byte boundary, as a runtime with a weaker alignment than the
/// caller assumes might; later ones are 64-byte aligned again. For tests of what a caller does
/// with memory it cannot use.
pub fn misalign_next_pinned_alloc(offset: usize) -> Result<(), String> {
    if !(1..super::backing::ALIGN).contains(&offset) {
        return Err(format!(
            "offset {offset}; expected 1 to {} bytes",
            super::backing::ALIGN - 1
        ));
    }
    MISALIGN_NEXT.set(offset);
    Ok(())
}

#[derive(Default)]
struct Space {
    live: BTreeMap<usize, Arc<Backing>>,
    // Sizes of freed blocks that are still quarantined.
    freed: BTreeMap<usize, usize>,
    quarantine: VecDeque<(usize, Arc<Backing>)>,
    quarantine_bytes: usize,
}

/// All pinned host allocations of the process.
#[derive(Default)]
pub(crate) struct HostMemory {
    space: Mutex<Space>,
}

/// What a host address is.
pub(crate) enum HostPlace {
    /// Inside a live pinned block.
    Pinned,
    /// Ordinary host memory the simulator knows nothing about.
    Pageable,
}

impl HostMemory {
    pub(crate) fn alloc(&self, size: usize) -> SimResult<*mut u8> {
        let offset = MISALIGN_NEXT.replace(0);
        let backing = Backing::misaligned(size, UNINIT_BYTE, offset).ok_or_else(|| {
            SimError::new(
                ACL_ERROR_RT_MEMORY_ALLOCATION,
                format!("the host could not allocate {size} bytes of pinned memory"),
            )
        })?;
        let addr = backing.as_ptr() as usize;
        let mut s = lock(&self.space);
        s.freed.remove(&addr);
        s.live.insert(addr, Arc::new(backing));
        Ok(addr as *mut u8)
    }

    pub(crate) fn free(&self, addr: usize) -> SimResult<()> {
        let mut s = lock(&self.space);
        if let Some(b) = s.live.remove(&addr) {
            b.fill(FREED_BYTE);
            s.freed.insert(addr, b.len());
            s.quarantine_bytes += b.len();
            s.quarantine.push_back((addr, b));
            while s.quarantine_bytes > QUARANTINE_BYTES {
                let Some((old, b)) = s.quarantine.pop_front() else {
                    break;
                };
                s.quarantine_bytes -= b.len();
                s.freed.remove(&old);
            }
            return Ok(());
        }
        let message = if s.freed.contains_key(&addr) {
            format!("double free: pinned host block {addr:#x} was already freed by aclrtFreeHost")
        } else if let Some((base, _)) = containing(&s.live, addr) {
            format!(
                "{addr:#x} is {} bytes into the pinned block at {base:#x}; pass the address \
                 aclrtMallocHost returned",
                addr - base
            )
        } else if super::is_device_address(addr as u64) {
            format!("{addr:#x} is a device address; free it with aclrtFree")
        } else {
            format!("{addr:#x} was not returned by aclrtMallocHost")
        };
        Err(SimError::new(ACL_ERROR_RT_MEMORY_FREE, message))
    }

    /// Classifies a host address.
    pub(crate) fn place(&self, addr: usize) -> HostPlace {
        let s = lock(&self.space);
        if containing(&s.live, addr).is_some() {
            HostPlace::Pinned
        } else {
            HostPlace::Pageable
        }
    }

    /// Maps `[addr, addr + len)`: checked if it starts in a pinned (or recently freed) block,
    /// unchecked pageable memory otherwise.
    pub(crate) fn map(&self, addr: usize, len: usize) -> SimResult<Mapped> {
        let s = lock(&self.space);
        if let Some((base, b)) = containing(&s.live, addr) {
            let size = b.len();
            let end = addr.saturating_add(len);
            if end > base + size {
                return Err(SimError::param(format!(
                    "host range [{addr:#x}, +{len}) overflows the pinned block [{base:#x}, \
                     +{size}) by {} bytes",
                    end - (base + size)
                )));
            }
            return Ok(Mapped::new(b.clone(), addr - base));
        }
        if let Some((base, &size)) = s.freed.range(..=addr).next_back() {
            if addr < base + size {
                return Err(SimError::param(format!(
                    "use after free: host range [{addr:#x}, +{len}) is in the pinned block at \
                     {base:#x}, which was freed by aclrtFreeHost"
                )));
            }
        }
        Ok(Mapped::pageable(addr as *mut u8))
    }
}

fn containing(map: &BTreeMap<usize, Arc<Backing>>, addr: usize) -> Option<(usize, &Arc<Backing>)> {
    map.range(..=addr)
        .next_back()
        .filter(|(base, b)| addr < *base + b.len())
        .map(|(b, v)| (*b, v))
}
