//! Devices: reference-counted activation, default context, peer access.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use crate::base::error::{SimError, SimResult};
use crate::base::soc::SocModel;
use crate::base::sync::lock;
use crate::runtime::context::Context;
use crate::runtime::counters::Counters;
use crate::runtime::memory::AddressSpace;

#[derive(Default)]
struct State {
    refcount: u32,
    default_context: Option<Arc<Context>>,
    // Devices this device may access (enabled from this device).
    peers: BTreeSet<usize>,
}

pub(crate) struct Device {
    pub(crate) id: usize,
    pub(crate) soc: SocModel,
    pub(crate) soc_name: CString,
    pub(crate) memory: AddressSpace,
    pub(crate) counters: Counters,
    pub(crate) live_streams: AtomicUsize,
    pub(crate) live_events: AtomicUsize,
    state: Mutex<State>,
    /// Held across a whole set or reset: a reset tears the device down outside `state`'s lock
    /// (it waits for stream work), and a concurrent set must not create a fresh context and
    /// allocate memory that the tail of that teardown would then free.
    lifecycle: Mutex<()>,
}

impl Device {
    pub(crate) fn new(id: usize, soc: SocModel) -> Self {
        let soc_name =
            CString::new(format!("{} (ascend-sim)", soc.name)).expect("SoC names contain no NUL");
        Device {
            id,
            memory: AddressSpace::new(id, soc.hbm_bytes),
            soc,
            soc_name,
            counters: Counters::default(),
            live_streams: AtomicUsize::new(0),
            live_events: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            lifecycle: Mutex::new(()),
        }
    }

    /// `aclrtSetDevice`: one more reference; returns the default context, created on first use
    /// by `create`.
    pub(crate) fn acquire(
        &self,
        create: impl FnOnce() -> SimResult<Arc<Context>>,
    ) -> SimResult<Arc<Context>> {
        let _lifecycle = lock(&self.lifecycle);
        let mut s = lock(&self.state);
        let ctx = match &s.default_context {
            Some(ctx) => ctx.clone(),
            None => {
                let ctx = create()?;
                s.default_context = Some(ctx.clone());
                ctx
            }
        };
        s.refcount += 1;
        Ok(ctx)
    }

    /// `aclrtResetDevice` (or the forced variant): drops one (or every) reference; at zero,
    /// destroys the default context and its streams after their work (`destroy`), frees the
    /// device's memory and forgets peer access.
    pub(crate) fn release(
        &self,
        force: bool,
        destroy: impl FnOnce(&Context) -> SimResult<()>,
    ) -> SimResult<()> {
        let _lifecycle = lock(&self.lifecycle);
        let ctx = {
            let mut s = lock(&self.state);
            if s.refcount == 0 {
                return Err(SimError::param(format!(
                    "device {} is not set (reference count 0); every aclrtResetDevice must match \
                     an earlier aclrtSetDevice",
                    self.id
                )));
            }
            s.refcount = if force { 0 } else { s.refcount - 1 };
            if s.refcount > 0 {
                return Ok(());
            }
            s.peers.clear();
            s.default_context.take()
        };
        let result = match ctx {
            Some(ctx) => destroy(&ctx),
            None => Ok(()),
        };
        self.memory.free_all("aclrtResetDevice");
        result
    }

    pub(crate) fn refcount(&self) -> u32 {
        lock(&self.state).refcount
    }

    pub(crate) fn enable_peer(&self, peer: usize) {
        lock(&self.state).peers.insert(peer);
    }

    pub(crate) fn disable_peer(&self, peer: usize) -> SimResult<()> {
        if lock(&self.state).peers.remove(&peer) {
            Ok(())
        } else {
            Err(SimError::param(format!(
                "peer access from device {} to device {peer} is not enabled",
                self.id
            )))
        }
    }

    pub(crate) fn can_access(&self, peer: usize) -> bool {
        peer == self.id || lock(&self.state).peers.contains(&peer)
    }
}
