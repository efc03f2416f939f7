//! Use tracking across streams: which streams may still read or write a buffer.
//!
//! Every [`DeviceBuffer`](super::DeviceBuffer) and [`HostBuffer`](super::HostBuffer) keeps one
//! [`Uses`]: per stream, the latest use queued there and whether a reader must wait for it (a
//! write, or a read that was itself ordered after another stream's write). An operation on
//! stream `S` first orders `S` after every conflicting use on another stream: a write waits for
//! every use, a read for the writes. Events are recorded lazily, at the current end of the other
//! stream, only when such a conflict exists, so work confined to one stream pays no event at
//! all. (The event marks a point no earlier than the use, which is what soundness needs.)
//!
//! Once `S` has waited for another stream's use, `S` remembers it (by its registration
//! number), so later operations on `S` do not wait for it again. A write on `S` subsumes the
//! uses it waited for: anything that must later wait for them also waits for `S`, whose end is
//! after them. So each buffer holds at most one entry per stream that used it, and dropping the
//! buffer waits for exactly those streams.
//!
//! Safe code writes only through `&mut`, so a write never races another registration of the
//! same buffer; reads (and writes through disjoint views of one buffer) may register
//! concurrently, which is why an entry is only removed if it is unchanged since it was waited
//! for.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::stream::Stream;
use crate::error::Result;

/// The streams that may still use one buffer. Unnameable outside the crate.
#[derive(Default)]
pub struct Uses {
    /// Boxed, and only once used, to keep buffers small.
    state: Mutex<Option<Box<State>>>,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    /// The memory goes back to its stream's pool when the buffer drops (kept here, boxed, to
    /// keep buffers small).
    pooled: bool,
}

/// Past this many streams on one buffer, entries of idle streams are dropped on registration,
/// so a long-lived buffer (weights) read by many short-lived streams keeps at most a few of
/// them alive, and its entry list stays short.
const PRUNE_ABOVE: usize = 4;

/// Registration numbers, unique in the process (so a buffer needs no counter of its own).
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

struct Entry {
    stream: Stream,
    /// The latest use on `stream` (registration numbers grow with time across the process).
    seq: u64,
    /// The latest write on `stream` not yet subsumed by another stream's write: readers on
    /// other streams must be ordered after it.
    write_seq: Option<u64>,
    /// Per other stream (by [`Stream::id`]), the latest of its uses this stream has been
    /// ordered after. A stale id can never match a later stream's uses, which are all newer.
    seen: Vec<(usize, u64)>,
}

impl Entry {
    /// How far this stream is known to be ordered after `other`'s uses.
    fn seen_up_to(&self, other: &Entry) -> u64 {
        let id = other.stream.id();
        self.seen
            .iter()
            .find(|(s, _)| *s == id)
            .map_or(0, |&(_, seq)| seq)
    }

    fn see(&mut self, stream: &Stream, seq: u64) {
        let id = stream.id();
        match self.seen.iter_mut().find(|(s, _)| *s == id) {
            Some(seen) => seen.1 = seen.1.max(seq),
            None => self.seen.push((id, seq)),
        }
    }
}

/// One buffer used by one operation, as a read or as a write.
#[derive(Clone, Copy)]
pub(crate) struct Access<'a> {
    uses: &'a Uses,
    write: bool,
}

impl std::fmt::Debug for Access<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("write", &self.write)
            .finish()
    }
}

/// A use that the operation being queued must be ordered after: `stream`'s work up to `seq`.
struct Conflict {
    uses_index: usize,
    stream: Stream,
    seq: u64,
}

impl Uses {
    /// The tracking of a buffer from a stream's pool.
    pub(crate) fn pooled() -> Uses {
        Uses {
            state: Mutex::new(Some(Box::new(State {
                entries: Vec::new(),
                pooled: true,
            }))),
        }
    }

    /// Whether the buffer's memory belongs to its stream's pool.
    pub(crate) fn is_pooled(&mut self) -> bool {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        state.as_ref().is_some_and(|s| s.pooled)
    }

    pub(crate) fn read(&self) -> Access<'_> {
        Access {
            uses: self,
            write: false,
        }
    }

    pub(crate) fn write(&self) -> Access<'_> {
        Access {
            uses: self,
            write: true,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<State>>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The uses an access on `stream` (or on the host, for `None`) must wait for.
    fn conflicts(
        &self,
        index: usize,
        write: bool,
        stream: Option<&Stream>,
        out: &mut Vec<Conflict>,
    ) {
        let guard = self.lock();
        let Some(state) = guard.as_deref() else {
            return;
        };
        let own = stream.and_then(|s| state.entries.iter().find(|e| e.stream.same_as(s)));
        for entry in &state.entries {
            if stream.is_some_and(|s| s.same_as(&entry.stream)) {
                continue;
            }
            // A write follows every use; a read, the writes.
            let Some(need) = (if write {
                Some(entry.seq)
            } else {
                entry.write_seq
            }) else {
                continue;
            };
            if own.is_none_or(|o| o.seen_up_to(entry) < need) {
                out.push(Conflict {
                    uses_index: index,
                    stream: entry.stream.clone(),
                    seq: entry.seq,
                });
            }
        }
    }

    /// Registers a use on `stream` queued after the waits for `conflicts`.
    fn register(&self, index: usize, write: bool, stream: &Stream, conflicts: &[Conflict]) {
        let mut guard = self.lock();
        let state = guard.get_or_insert_with(Box::default);
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let pos = match state.entries.iter().position(|e| e.stream.same_as(stream)) {
            Some(pos) => pos,
            None => {
                state.entries.push(Entry {
                    stream: stream.clone(),
                    seq,
                    write_seq: None,
                    seen: Vec::new(),
                });
                state.entries.len() - 1
            }
        };
        let mut own = state.entries.swap_remove(pos);
        for c in conflicts.iter().filter(|c| c.uses_index == index) {
            own.see(&c.stream, c.seq);
        }
        if write {
            // What this stream is ordered after is subsumed by its write: later work that must
            // follow those uses follows this write.
            state.entries.retain_mut(|e| {
                let seen = own.seen_up_to(e);
                if e.write_seq.is_some_and(|w| w <= seen) {
                    e.write_seq = None;
                }
                e.seq > seen
            });
            own.write_seq = Some(seq);
        }
        own.seq = seq;
        if state.entries.len() >= PRUNE_ABOVE {
            // An idle stream's uses are complete: nothing needs to wait for them. A failed
            // query keeps the entry (conservative).
            state
                .entries
                .retain(|e| !matches!(e.stream.is_idle(), Ok(true)));
        }
        let live: Vec<usize> = state.entries.iter().map(|e| e.stream.id()).collect();
        own.seen.retain(|(id, _)| live.contains(id));
        state.entries.push(own);
    }

    /// Takes every stream that may still use the memory, for a free.
    pub(crate) fn take_users(&mut self) -> Vec<Stream> {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        state.take().map_or_else(Vec::new, |s| {
            s.entries.into_iter().map(|e| e.stream).collect()
        })
    }

    /// Blocks the host until the uses a host access must follow have completed (every use for
    /// a host write, the writes for a host read).
    pub(crate) fn wait_on_host(&self, write: bool) -> Result<()> {
        let mut conflicts = Vec::new();
        self.conflicts(0, write, None, &mut conflicts);
        if conflicts.is_empty() {
            return Ok(());
        }
        for stream in distinct(&conflicts) {
            stream.synchronize()?;
        }
        // Those uses are complete: nothing needs to wait for them any more.
        if let Some(state) = self.lock().as_deref_mut() {
            state.entries.retain_mut(|e| {
                let done = conflicts
                    .iter()
                    .filter(|c| c.stream.same_as(&e.stream))
                    .map(|c| c.seq)
                    .max()
                    .unwrap_or(0);
                if e.write_seq.is_some_and(|w| w <= done) {
                    e.write_seq = None;
                }
                e.seq > done
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for Uses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uses")
            .field(
                "streams",
                &self.lock().as_ref().map_or(0, |s| s.entries.len()),
            )
            .finish()
    }
}

/// The distinct streams of `conflicts`.
fn distinct(conflicts: &[Conflict]) -> Vec<&Stream> {
    let mut streams: Vec<&Stream> = Vec::new();
    for c in conflicts {
        if !streams.iter().any(|s| s.same_as(&c.stream)) {
            streams.push(&c.stream);
        }
    }
    streams
}

impl Stream {
    /// Queues an operation that uses `accesses`: first orders this stream after every
    /// conflicting use on another stream (one pooled event per such stream), then runs
    /// `enqueue`, then registers the accesses as uses on this stream.
    ///
    /// This is the hook every queued operation calls: copies, memsets, kernel launches and
    /// aclnn launches.
    pub(crate) fn track<R>(
        &self,
        accesses: &[Access<'_>],
        enqueue: impl FnOnce() -> Result<R>,
    ) -> Result<R> {
        let mut conflicts = Vec::new();
        for (i, access) in accesses.iter().enumerate() {
            access
                .uses
                .conflicts(i, access.write, Some(self), &mut conflicts);
        }
        for stream in distinct(&conflicts) {
            self.wait_for_current_end(stream)?;
        }
        let result = enqueue()?;
        // Reads first: an access list never names one buffer twice in safe code, but if a crate
        // caller does, the write must win.
        for write in [false, true] {
            for (i, access) in accesses.iter().enumerate() {
                if access.write == write {
                    access.uses.register(i, access.write, self, &conflicts);
                }
            }
        }
        Ok(result)
    }
}

impl Stream {
    /// Prepares `buffer` to be read by work you queue on this stream yourself, through raw
    /// handles ([`Stream::as_raw`], [`DeviceSlice::device_ptr`]): orders this stream after the
    /// writes of other streams, and records the read, so later tracked work and the free wait
    /// for it. Queue the raw work right after, while still borrowing the buffer.
    ///
    /// [`DeviceSlice::device_ptr`]: super::DeviceSlice::device_ptr
    pub fn prepare_raw_read<T>(&self, buffer: &impl super::DeviceSlice<T>) -> Result<()> {
        self.track(&[super::read_access(buffer)], || Ok(()))
    }

    /// [`Stream::prepare_raw_read`] for work that writes `buffer`: orders this stream after
    /// every use on other streams.
    pub fn prepare_raw_write<T>(&self, buffer: &mut impl super::DeviceSliceMut<T>) -> Result<()> {
        self.track(&[super::write_access(buffer)], || Ok(()))
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use crate::checked_call::c_call;
    use crate::{Backend, Device, select_backend};

    #[test]
    fn a_buffer_read_by_many_short_lived_streams_keeps_few_alive() {
        select_backend(Backend::Sim).unwrap();
        let device = Device::open(0).unwrap();
        let owner = device.new_stream().unwrap();
        let weights = owner.upload(&[1.5f32; 256]).unwrap();
        owner.synchronize().unwrap();
        let api = crate::raw_api().unwrap();
        let mut raws = Vec::new();
        for _ in 0..20 {
            let stream = device.new_stream().unwrap();
            let mut out = stream.alloc_zeroed::<f32>(256).unwrap();
            stream.memcpy_dtod(&weights, &mut out).unwrap();
            assert_eq!(out.to_vec().unwrap(), vec![1.5; 256]);
            raws.push(stream.as_raw());
        }
        let mut status = 0;
        let alive = raws
            .iter()
            // SAFETY: the simulator validates handles through its registry; a destroyed one is
            // an error, not undefined behaviour.
            .filter(|&&raw| unsafe { c_call!(api, aclrtStreamQuery(raw, &mut status)) }.is_ok())
            .count();
        assert!(
            alive <= super::PRUNE_ABOVE,
            "{alive} of 20 streams kept alive"
        );
        drop(weights);
        owner.synchronize().unwrap();
        let (errors, _) = crate::take_drop_errors();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
