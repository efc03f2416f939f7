//! Damage to data in flight, armed by tests to check what receivers can detect.
//!
//! A hardware link checks its own frames; what gets past it, or a peer that sends from the
//! wrong buffer or with the wrong length, reaches the receiver as one of these: bytes changed,
//! or fewer bytes than agreed.

use std::sync::Mutex;

use crate::base::sync::lock;

/// What happens to the damaged part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Byte `offset` of the part is XORed with `mask` (nothing happens if the part is
    /// shorter).
    Flip {
        /// The byte.
        offset: usize,
        /// The bits to flip.
        mask: u8,
    },
    /// The part loses its last `bytes` bytes, as from a sender that stopped short.
    Truncate {
        /// Bytes dropped.
        bytes: usize,
    },
}

/// One damaged all-to-all-v part: what rank `from` sends to rank `to` in its `nth`
/// `HcclAlltoAllV` (counted from 0 when the fault is armed), on whichever communicator runs
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlightFault {
    /// The sending rank.
    pub from: u32,
    /// The receiving rank.
    pub to: u32,
    /// Which of the sender's all-to-all-v ops.
    pub nth: u64,
    /// What happens to the part.
    pub damage: Damage,
}

struct Armed {
    fault: InFlightFault,
    seen: u64,
}

static ARMED: Mutex<Option<Armed>> = Mutex::new(None);

/// Arms `fault`, replacing one armed before and not yet applied. It applies once.
pub fn inject(fault: InFlightFault) {
    *lock(&ARMED) = Some(Armed { fault, seen: 0 });
}

/// Disarms the armed fault; returns whether one was still waiting (it never applied).
pub fn disarm() -> bool {
    lock(&ARMED).take().is_some()
}

/// Applies the armed fault to the `parts` (one per destination rank) that rank `rank` sends
/// in an all-to-all-v, if this is the one it names.
pub(crate) fn damage_all_to_all(rank: u32, parts: &mut [Vec<u8>]) {
    let mut armed = lock(&ARMED);
    let Some(a) = armed.as_mut().filter(|a| a.fault.from == rank) else {
        return;
    };
    let nth = a.seen;
    a.seen += 1;
    if nth != a.fault.nth {
        return;
    }
    if let Some(part) = parts.get_mut(a.fault.to as usize) {
        match a.fault.damage {
            Damage::Flip { offset, mask } => {
                if let Some(byte) = part.get_mut(offset) {
                    *byte ^= mask;
                }
            }
            Damage::Truncate { bytes } => part.truncate(part.len().saturating_sub(bytes)),
        }
    }
    *armed = None;
}
