//! HCCL in the simulator: the ranks of a communicator are devices of this process, each
//! driven by its own thread, and every collective meets its peers at a rendezvous when it
//! runs on a rank's stream.
//!
//! * **Init** is a blocking collective as in HCCL: `HcclCommInitRootInfo` returns once all
//!   `nRanks` ranks have joined with the same root info, or fails after the timeout.
//! * **Matching**: the k-th collective a rank enqueues on a communicator meets the k-th of
//!   every other rank; their kinds, counts, types, ops and roots must agree, or every rank
//!   gets `HCCL_E_PARA`. Point-to-point: the k-th send from `a` to `b` meets the k-th receive
//!   of `b` from `a`.
//! * **Data** moves when the op runs on the stream: each rank deposits what it sends, waits
//!   for the others, then writes its own output. Reductions fold in rank order (see
//!   [`reduce`]), so results are bit-identical from run to run.
//! * **Faults** never hang: a rank that does not arrive within the timeout fails the op on
//!   every waiting rank with `HCCL_E_TIMEOUT`; a rank that destroys its communicator, or whose
//!   op fails (a short buffer, an injected out-of-memory), fails its peers with
//!   `HCCL_E_REMOTE` at once. A failed communicator stays failed (as on hardware, where it
//!   must be rebuilt); a new one can be built from a fresh root info in the same process.
//!
//! The timeout is `ASCEND_SIM_HCCL_TIMEOUT_MS`, else HCCL's own `HCCL_EXEC_TIMEOUT` (seconds),
//! else 120 s; [`set_timeout`] overrides both.
//!
//! Tests damage data in flight (all-to-all-v and all-gather parts) with [`inject`] (see
//! [`fault`]).

pub mod fault;
pub(crate) mod reduce;

pub use fault::{Damage, Exchange, InFlightFault, disarm, inject};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ascend_sys::{HCCL_E_PARA, HCCL_E_REMOTE, HCCL_E_TIMEOUT, HCCL_SUCCESS, HcclResult};

use crate::runtime::task::Abort;

/// An HCCL failure: the code and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HcclError {
    pub(crate) code: HcclResult,
    pub(crate) message: String,
}

impl HcclError {
    pub(crate) fn new(code: HcclResult, message: impl Into<String>) -> Self {
        HcclError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn para(message: impl Into<String>) -> Self {
        Self::new(HCCL_E_PARA, message)
    }
}

pub(crate) type HcclResultOf<T> = Result<T, HcclError>;

static TIMEOUT_OVERRIDE_MS: AtomicU64 = AtomicU64::new(0);

/// Sets how long a rank waits for its peers (init, collectives, receives) before failing
/// with `HCCL_E_TIMEOUT`. `Duration::ZERO` restores the environment's value.
pub fn set_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    TIMEOUT_OVERRIDE_MS.store(ms, Ordering::Relaxed);
}

/// The timeout in force (see the module docs).
pub fn timeout() -> Duration {
    let ms = TIMEOUT_OVERRIDE_MS.load(Ordering::Relaxed);
    if ms > 0 {
        return Duration::from_millis(ms);
    }
    let var = |name| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(ms) = var("ASCEND_SIM_HCCL_TIMEOUT_MS").filter(|&ms| ms > 0) {
        return Duration::from_millis(ms);
    }
    if let Some(s) = var("HCCL_EXEC_TIMEOUT").filter(|&s| s > 0) {
        return Duration::from_secs(s);
    }
    Duration::from_secs(120)
}

/// What one rank brings to a rendezvous.
#[derive(Debug, Clone)]
pub(crate) struct Contribution {
    /// Everything that must agree across ranks (kind, counts, types, op, root).
    pub(crate) signature: String,
    /// The bytes sent: one part, or one per destination rank (all-to-all).
    pub(crate) parts: Vec<Vec<u8>>,
    /// All-to-all: the bytes this rank expects from each source rank, so that every rank can
    /// check every pair and all fail alike on a mismatch.
    pub(crate) expects: Vec<usize>,
}

/// The state of one collective, the `seq`-th on the communicator.
#[derive(Default)]
struct Round {
    arrived: Vec<Option<Arc<Contribution>>>,
    /// Ranks that took the result; the round is removed when all have.
    taken: usize,
    failed: Option<HcclError>,
}

#[derive(Default)]
struct GroupState {
    /// Per rank: the device it joined from (`None` again once it has left).
    joined: Vec<Option<usize>>,
    /// Every rank has joined: init is over, even if some have left since.
    formed: bool,
    /// Set for good when a rank fails or leaves: every later wait fails with it.
    broken: Option<HcclError>,
    rounds: HashMap<u64, Round>,
    /// Point-to-point messages by (source, destination, index).
    messages: HashMap<(u32, u32, u64), Vec<u8>>,
    /// What the communicator has run: MC2 operators or other operations, never both.
    used: Option<Use>,
}

/// What a communicator is used for (see [`Comm::claim`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    /// `aclnnMoeDistribute*`.
    Mc2,
    /// Collectives and point-to-point operations.
    Collectives,
}

/// The ranks of one communicator, shared by their [`Comm`]s.
pub(crate) struct Group {
    id: u64,
    size: u32,
    state: Mutex<GroupState>,
    changed: Condvar,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `ready` holds (returning its value), the group breaks, the stream
    /// aborts, or the timeout passes; `what` names the wait in the timeout error.
    fn wait<T>(
        &self,
        mut state: MutexGuard<'_, GroupState>,
        abort: Option<&Abort>,
        what: impl Fn(&GroupState) -> String,
        mut ready: impl FnMut(&mut GroupState) -> Option<HcclResultOf<T>>,
    ) -> HcclResultOf<T> {
        let deadline = Instant::now() + timeout();
        loop {
            if let Some(r) = ready(&mut state) {
                return r;
            }
            if let Some(e) = &state.broken {
                return Err(e.clone());
            }
            if abort.is_some_and(Abort::is_set) {
                return Err(HcclError::new(
                    HCCL_E_REMOTE,
                    "the stream was destroyed while the op waited for its peers",
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                let e = HcclError::new(
                    HCCL_E_TIMEOUT,
                    format!(
                        "{} within {:?} (ASCEND_SIM_HCCL_TIMEOUT_MS / HCCL_EXEC_TIMEOUT); the \
                         communicator is now failed and must be rebuilt",
                        what(&state),
                        timeout()
                    ),
                );
                state.broken = Some(e.clone());
                self.changed.notify_all();
                return Err(e);
            }
            // Wake up now and then to see an aborted stream.
            let slice = (deadline - now).min(Duration::from_millis(20));
            state = self
                .changed
                .wait_timeout(state, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Marks the group failed with `error` (unless it already is) and wakes every waiter.
    pub(crate) fn fail(&self, error: HcclError) {
        let mut state = self.lock();
        state.broken.get_or_insert(error);
        self.changed.notify_all();
    }
}

/// Root infos handed out and communicators being built, by root id.
fn groups() -> &'static Mutex<HashMap<u64, Arc<Group>>> {
    static GROUPS: OnceLock<Mutex<HashMap<u64, Arc<Group>>>> = OnceLock::new();
    GROUPS.get_or_init(Default::default)
}

/// The group of `root`, made for `size` ranks if it does not exist yet.
fn group_of(root: u64, size: u32) -> Arc<Group> {
    let mut all = groups().lock().unwrap_or_else(|p| p.into_inner());
    let group = all.entry(root).or_insert_with(|| {
        Arc::new(Group {
            id: root,
            size,
            state: Mutex::new(GroupState {
                joined: vec![None; size as usize],
                ..Default::default()
            }),
            changed: Condvar::new(),
        })
    });
    group.clone()
}

/// What names a communicator built without a root info.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Origin {
    /// `HcclCreateSubCommConfig`: the parent's group and the `subCommId`.
    Split { parent: u64, id: u64 },
    /// `HcclCommInitClusterInfo`: the rank table's canonical path.
    RankTable(std::path::PathBuf),
}

/// The root of the communicator `origin` names, with the members its first rank declared
/// (every rank must declare the same; a mismatch is a violation of rule `rule`). A root whose
/// ranks have all left is replaced, so the same origin builds a new communicator after a
/// fault.
pub(crate) fn root_of(origin: Origin, members: &[u32], rule: &str) -> HcclResultOf<u64> {
    /// Per origin: its root and the members its first rank declared.
    type Roots = HashMap<Origin, (u64, Vec<u32>)>;
    static ROOTS: OnceLock<Mutex<Roots>> = OnceLock::new();
    let mut roots = crate::base::sync::lock(ROOTS.get_or_init(Default::default));
    let live = |root: &u64| {
        groups()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(root)
    };
    if let Some((root, first)) = roots.get(&origin).filter(|(root, _)| live(root)) {
        if first != members {
            let e = HcclError::para(crate::rules::violation_text(
                rule,
                format!("ranks {members:?} for {origin:?}, whose first rank declared {first:?}"),
            ));
            // The ranks that joined already would wait for this one until the timeout: they
            // fail with the same error at once.
            let group = groups()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(root)
                .cloned();
            if let Some(group) = group {
                group.fail(e.clone());
            }
            return Err(e);
        }
        return Ok(*root);
    }
    let root = new_root();
    // Made now, so that a rank arriving before the first one joins finds it live.
    group_of(root, members.len() as u32);
    roots.insert(origin, (root, members.to_vec()));
    Ok(root)
}

static NEXT_ROOT: AtomicU64 = AtomicU64::new(1);

/// What `HcclGetRootInfo` writes at the start of the opaque 4108-byte blob.
pub(crate) const ROOT_MAGIC: &[u8; 8] = b"ASIMHCCL";

/// A fresh root id for `HcclGetRootInfo`.
pub(crate) fn new_root() -> u64 {
    NEXT_ROOT.fetch_add(1, Ordering::Relaxed)
}

/// What a rank's `HcclCommConfig` set (the version-2 fields; `None`: not set, HCCL's default).
/// The simulator always reduces in rank order, so `deterministic` changes no result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `hcclBufferSize`, MB.
    pub(crate) buffer_mb: Option<u32>,
    /// `hcclDeterministic`.
    pub(crate) deterministic: Option<bool>,
    /// `hcclCommName`: what `HcclGetCommName` reports instead of a made-up name.
    pub(crate) name: Option<String>,
}

/// One rank's handle on a communicator.
pub(crate) struct Comm {
    pub(crate) group: Arc<Group>,
    pub(crate) rank: u32,
    pub(crate) device: usize,
    next_collective: AtomicU64,
    /// Per peer: sends to it and receives from it enqueued so far.
    next_send: Vec<AtomicU64>,
    next_recv: Vec<AtomicU64>,
    /// The first asynchronous failure, for `HcclGetCommAsyncError`.
    async_error: AtomicU32,
    /// MC2 operators run so far (numbered when they run: an aclnn executor has no enqueue
    /// hook, and one stream per rank runs them in order).
    next_mc2: AtomicU64,
    /// What the rank's configuration set.
    settings: Settings,
}

impl Comm {
    /// Joins rank `rank` of the `size`-rank communicator `root` from `device`, waiting for
    /// all ranks.
    pub(crate) fn init(root: u64, size: u32, rank: u32, device: usize) -> HcclResultOf<Comm> {
        if size == 0 || rank >= size {
            return Err(HcclError::para(format!(
                "rank {rank} of nRanks {size}; expected nRanks >= 1 and rank < nRanks"
            )));
        }
        let group = group_of(root, size);
        if group.size != size {
            return Err(HcclError::para(format!(
                "nRanks {size} for a root info whose first rank said {}; expected every rank to \
                 pass the same nRanks",
                group.size
            )));
        }
        let mut state = group.lock();
        if state.formed {
            return Err(HcclError::para(format!(
                "rank {rank} joins a communicator whose ranks all joined already; expected a new \
                 root info to rebuild a communicator"
            )));
        }
        if let Some(d) = state.joined[rank as usize] {
            return Err(HcclError::para(format!(
                "rank {rank} of this root info already joined (from device {d}); expected each \
                 rank once per root info (get a new root info to rebuild a communicator)"
            )));
        }
        if let Some(other) = state.joined.iter().position(|j| *j == Some(device)) {
            return Err(HcclError::para(format!(
                "device {device} already holds rank {other} of this communicator; expected one \
                 rank per device"
            )));
        }
        state.joined[rank as usize] = Some(device);
        group.changed.notify_all();
        let waiting = |s: &GroupState| {
            let missing: Vec<usize> = (0..s.joined.len())
                .filter(|&r| s.joined[r].is_none())
                .collect();
            format!("HcclCommInitRootInfo: ranks {missing:?} did not join")
        };
        group.wait(state, None, waiting, |s| {
            s.formed |= s.joined.iter().all(Option::is_some);
            s.formed.then_some(Ok(()))
        })?;
        Ok(Comm::member(group, rank, device))
    }

    /// Every rank of a new communicator at once, rank `i` on `devices[i]` (`HcclCommInitAll`:
    /// one call makes them all, so nobody waits). The caller checked the devices.
    pub(crate) fn init_all(devices: &[usize]) -> Vec<Comm> {
        let group = Arc::new(Group {
            id: new_root(),
            size: devices.len() as u32,
            state: Mutex::new(GroupState {
                joined: devices.iter().map(|&d| Some(d)).collect(),
                formed: true,
                ..Default::default()
            }),
            changed: Condvar::new(),
        });
        groups()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.id, group.clone());
        let ranks = devices.iter().enumerate();
        ranks
            .map(|(rank, &device)| Comm::member(group.clone(), rank as u32, device))
            .collect()
    }

    /// Rank `rank`'s handle on the formed `group`.
    fn member(group: Arc<Group>, rank: u32, device: usize) -> Comm {
        let peers = || (0..group.size).map(|_| AtomicU64::new(0)).collect();
        Comm {
            rank,
            device,
            next_collective: AtomicU64::new(0),
            next_send: peers(),
            next_recv: peers(),
            async_error: AtomicU32::new(HCCL_SUCCESS),
            next_mc2: AtomicU64::new(0),
            settings: Settings::default(),
            group,
        }
    }

    /// This rank with what its configuration set.
    pub(crate) fn with_settings(mut self, settings: Settings) -> Comm {
        self.settings = settings;
        self
    }

    /// What the rank's configuration set.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn size(&self) -> u32 {
        self.group.size
    }

    /// The id of this communicator's group.
    pub(crate) fn group_id(&self) -> u64 {
        self.group.id
    }

    /// The name `HcclGetCommName` reports.
    pub(crate) fn name(&self) -> String {
        match &self.settings.name {
            Some(name) => name.clone(),
            None => format!("ascend-sim-hccl-{}", self.group.id),
        }
    }

    /// Numbers the next collective this rank enqueues.
    pub(crate) fn next_collective(&self) -> u64 {
        self.next_collective.fetch_add(1, Ordering::Relaxed)
    }

    /// Numbers the next send to (`send`) or receive from `peer`.
    pub(crate) fn next_p2p(&self, peer: u32, send: bool) -> u64 {
        let counters = if send {
            &self.next_send
        } else {
            &self.next_recv
        };
        counters[peer as usize].fetch_add(1, Ordering::Relaxed)
    }

    /// Records the first asynchronous failure and fails the peers with it.
    pub(crate) fn record_failure(&self, error: &HcclError) {
        let _ = self.async_error.compare_exchange(
            HCCL_SUCCESS,
            error.code,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.group.fail(HcclError::new(
            if error.code == HCCL_E_TIMEOUT {
                HCCL_E_TIMEOUT
            } else {
                HCCL_E_REMOTE
            },
            format!("rank {} failed: {}", self.rank, error.message),
        ));
    }

    /// Numbers the next MC2 operator this rank runs, in a space of its own (the top bit set),
    /// so that it never meets a collective numbered at enqueue.
    pub(crate) fn next_mc2(&self) -> u64 {
        (1 << 63) | self.next_mc2.fetch_add(1, Ordering::Relaxed)
    }

    /// Claims the communicator for `kind` (`Mc2` or other HCCL operations): MC2's EP
    /// communicator runs nothing else (rule `moe-distribute.exclusive-comm`). `Err` holds
    /// what it ran before.
    pub(crate) fn claim(&self, kind: Use) -> Result<(), &'static str> {
        let mut state = self.group.lock();
        match (state.used, kind) {
            (None, k) => {
                state.used = Some(k);
                Ok(())
            }
            (Some(was), k) if was == k => Ok(()),
            (Some(Use::Mc2), _) => Err("the MoeDistribute (MC2) operators"),
            (Some(Use::Collectives), _) => Err("other HCCL operations"),
        }
    }

    pub(crate) fn async_error(&self) -> HcclResult {
        self.async_error.load(Ordering::Relaxed)
    }

    /// The `seq`-th collective: deposits `mine`, waits for every rank's contribution, and
    /// returns them all in rank order.
    pub(crate) fn exchange(
        &self,
        seq: u64,
        mine: Contribution,
        abort: &Abort,
    ) -> HcclResultOf<Vec<Arc<Contribution>>> {
        let size = self.size() as usize;
        let mut state = self.group.lock();
        let round = state.rounds.entry(seq).or_insert_with(|| Round {
            arrived: vec![None; size],
            ..Default::default()
        });
        if let Some(other) = round.arrived.iter().flatten().next() {
            if other.signature != mine.signature && round.failed.is_none() {
                round.failed = Some(HcclError::para(crate::rules::violation_text(
                    "hccl.same-call-on-every-rank",
                    format!(
                        "collective #{seq} does not match across ranks: rank {} called {} while \
                         another rank called {}",
                        self.rank, mine.signature, other.signature
                    ),
                )));
            }
        }
        round.arrived[self.rank as usize] = Some(Arc::new(mine));
        self.group.changed.notify_all();
        let missing = |s: &GroupState| match s.rounds.get(&seq) {
            Some(r) => {
                let m: Vec<usize> = (0..size).filter(|&i| r.arrived[i].is_none()).collect();
                format!("collective #{seq}: ranks {m:?} did not arrive")
            }
            None => format!("collective #{seq}"),
        };
        self.group.wait(state, Some(abort), missing, |s| {
            let round = s.rounds.get_mut(&seq)?;
            if let Some(e) = &round.failed {
                return Some(Err(e.clone()));
            }
            if round.arrived.iter().any(Option::is_none) {
                return None;
            }
            let all: Vec<Arc<Contribution>> = round.arrived.iter().flatten().cloned().collect();
            round.taken += 1;
            if round.taken == size {
                s.rounds.remove(&seq);
            }
            Some(Ok(all))
        })
    }

    /// Deposits the `index`-th message from this rank to `peer`.
    pub(crate) fn post(&self, peer: u32, index: u64, data: Vec<u8>) -> HcclResultOf<()> {
        let mut state = self.group.lock();
        if let Some(e) = &state.broken {
            return Err(e.clone());
        }
        state.messages.insert((self.rank, peer, index), data);
        self.group.changed.notify_all();
        Ok(())
    }

    /// Takes the `index`-th message from `peer` to this rank, waiting for it.
    pub(crate) fn take(&self, peer: u32, index: u64, abort: &Abort) -> HcclResultOf<Vec<u8>> {
        let state = self.group.lock();
        let key = (peer, self.rank, index);
        let what = |_: &GroupState| format!("HcclRecv #{index} from rank {peer}: it was not sent");
        self.group.wait(state, Some(abort), what, |s| {
            s.messages.remove(&key).map(Ok)
        })
    }
}

impl Drop for Comm {
    fn drop(&mut self) {
        // A rank that leaves fails every later op of its peers at once (ops it took part in
        // have all their contributions and still complete), rather than letting them wait for
        // the timeout.
        let mut state = self.group.lock();
        state.joined[self.rank as usize] = None;
        let last = state.joined.iter().all(Option::is_none);
        state.broken.get_or_insert_with(|| {
            HcclError::new(
                HCCL_E_REMOTE,
                format!("rank {} destroyed its communicator", self.rank),
            )
        });
        self.group.changed.notify_all();
        drop(state);
        if last {
            groups()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.group.id);
        }
    }
}
