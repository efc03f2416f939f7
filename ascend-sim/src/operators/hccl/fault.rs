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

/// The kind of exchange a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// `HcclAlltoAllV`, and the exchange of each MC2 operator (aclnnMoeDistribute*).
    AllToAllV,
    /// `HcclAllGather`: the part of the sender that the one receiver gets (the others get it
    /// intact). A part cut short fails the receiver's all-gather.
    AllGather,
}

/// One damaged part: what rank `from` sends to rank `to` in its `nth` exchange of kind
/// `exchange` (counted from 0 when the fault is armed), on whichever communicator runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlightFault {
    /// The kind of exchange.
    pub exchange: Exchange,
    /// The sending rank.
    pub from: u32,
    /// The receiving rank.
    pub to: u32,
    /// Which of the sender's exchanges of that kind.
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
    if let Some((to, damage)) = take(Exchange::AllToAllV, rank) {
        if let Some(part) = parts.get_mut(to as usize) {
            damage.apply(part);
        }
    }
}

/// What rank `rank` sends in an all-gather of `ranks` ranks: `[data]` for every receiver, or,
/// if the armed fault names this one, one part per receiver with the named receiver's damaged.
pub(crate) fn damage_all_gather(rank: u32, ranks: usize, data: Vec<u8>) -> Vec<Vec<u8>> {
    match take(Exchange::AllGather, rank) {
        Some((to, damage)) if (to as usize) < ranks => {
            let mut parts = vec![data; ranks];
            damage.apply(&mut parts[to as usize]);
            parts
        }
        _ => vec![data],
    }
}

/// Counts an exchange of kind `exchange` by rank `rank`; if it is the one the armed fault
/// names, disarms it and returns its receiver and damage.
fn take(exchange: Exchange, rank: u32) -> Option<(u32, Damage)> {
    let mut armed = lock(&ARMED);
    let a = armed
        .as_mut()
        .filter(|a| a.fault.from == rank && a.fault.exchange == exchange)?;
    let nth = a.seen;
    a.seen += 1;
    if nth != a.fault.nth {
        return None;
    }
    let hit = (a.fault.to, a.fault.damage);
    *armed = None;
    Some(hit)
}

impl Damage {
    fn apply(self, part: &mut Vec<u8>) {
        match self {
            Damage::Flip { offset, mask } => {
                if let Some(byte) = part.get_mut(offset) {
                    *byte ^= mask;
                }
            }
            Damage::Truncate { bytes } => part.truncate(part.len().saturating_sub(bytes)),
        }
    }
}
