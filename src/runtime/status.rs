//! Status words: how a kernel reports bad input that only the device can see (values that live
//! in device memory, such as group offsets written by an earlier operator, or NaN in activations
//! being quantized).
//!
//! A launch that can find such input gets zeroed slots of [`STATUS_SLOT_WORDS`] words, one slot
//! per writer so no two cores write the same bytes. A kernel that rejects its input keeps every
//! access in bounds, finishes, and writes a non-zero code (plus details) into its slot. The
//! stream reads the slots back the next time it is synchronised ([`Stream::synchronize`], which
//! every synchronous copy calls first) and returns the first report as the error of that call.
//! The outputs of the reporting launch are then unspecified; the stream and the device keep
//! working. Reports still unread when the stream is dropped go to
//! [`take_drop_errors`](crate::take_drop_errors).

use std::ffi::c_void;
use std::sync::Mutex;

use super::device::{DeviceInner, Memory};
use super::device_buffer::DeviceBuffer;
use super::stream::Stream;
use crate::checked_call::c_call;
use crate::error::{Error, Result};

/// Words in one slot: one 32-byte DMA block, so slots of different cores never share a block.
pub(crate) const STATUS_SLOT_WORDS: usize = 8;

/// Turns a slot whose first word is non-zero into the error it reports.
pub(crate) type DecodeStatus = fn(&[u32]) -> Error;

struct Pending {
    /// Order of registration: a synchronisation covers the entries registered before it began.
    seq: u64,
    ptr: u64,
    words: usize,
    decode: DecodeStatus,
}

/// The unread status words of one stream.
#[derive(Default)]
pub(crate) struct StatusWords {
    inner: Mutex<(u64, Vec<Pending>)>,
}

impl StatusWords {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Pending>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The position a synchronisation starting now covers.
    pub(crate) fn mark(&self) -> u64 {
        self.lock().0
    }

    /// Reads and frees the words registered before `mark`, whose launches have completed, and
    /// returns the first report among them.
    pub(crate) fn take(&self, device: &DeviceInner, mark: u64) -> Result<()> {
        let done: Vec<Pending> = {
            let mut guard = self.lock();
            let (covered, later) = std::mem::take(&mut guard.1)
                .into_iter()
                .partition(|p| p.seq < mark);
            guard.1 = later;
            covered
        };
        let mut first = Ok(());
        for p in done {
            let result = read_and_free(device, &p);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    /// Reads and frees every entry (the stream has completed all its work): for `Drop`.
    pub(crate) fn drain(&self, device: &DeviceInner) -> Vec<Error> {
        let all = std::mem::take(&mut self.lock().1);
        all.iter()
            .filter_map(|p| read_and_free(device, p).err())
            .collect()
    }
}

fn read_and_free(device: &DeviceInner, p: &Pending) -> Result<()> {
    let mut words = vec![0u32; p.words];
    let read = device.bind().and_then(|()| {
        let bytes = std::mem::size_of_val(words.as_slice());
        // SAFETY: `p.ptr` is a live allocation of `bytes` bytes on this device whose only writer
        // (the launch it was registered after) has completed; `words` is a host buffer of the
        // same size, exclusively borrowed for the synchronous call.
        unsafe {
            c_call!(
                device.api,
                aclrtMemcpy(
                    words.as_mut_ptr().cast::<c_void>(),
                    bytes,
                    p.ptr as *const c_void,
                    bytes,
                    ascend_sys::ACL_MEMCPY_DEVICE_TO_HOST,
                )
            )
        }
    });
    let freed = device.free_now(Memory::Device(p.ptr as usize));
    read?;
    freed?;
    match words
        .chunks(STATUS_SLOT_WORDS)
        .find(|slot| slot.first().is_some_and(|&w| w != 0))
    {
        Some(slot) => Err((p.decode)(slot)),
        None => Ok(()),
    }
}

impl Stream {
    /// `slots` zeroed status slots for one launch (the memset is queued on this stream).
    pub(crate) fn status_slots(&self, slots: usize) -> Result<DeviceBuffer<u32>> {
        self.alloc_zeroed(crate::error::elements(
            "status words",
            &[slots, STATUS_SLOT_WORDS],
        )?)
    }

    /// After the launch that writes `slots` was queued on this stream: makes the next
    /// synchronisation read them and report the first non-zero slot with `decode`.
    pub(crate) fn check_status_at_sync(&self, slots: DeviceBuffer<u32>, decode: DecodeStatus) {
        let (ptr, words) = slots.into_raw();
        if ptr == 0 {
            return;
        }
        let mut guard = self.status_words().lock();
        let seq = guard.0;
        guard.0 += 1;
        guard.1.push(Pending {
            seq,
            ptr,
            words,
            decode,
        });
    }
}
