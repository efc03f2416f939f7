//! Ranks for the expert-parallel family: one device, one thread and one HCCL rank each, as in
//! a multi-process job on an NPU server (the simulator runs them in this process).

use ascend_npu::runtime::comm::{Comm, RootInfo};
use ascend_npu::{Device, Stream};

/// Runs `body(comm, stream)` on ranks `0..n` (devices `0..n`) of a fresh communicator and
/// returns each rank's result in rank order, or the first rank's error, named by its rank.
/// A rank that fails leaves its peers waiting in their next collective until HCCL's timeout,
/// which then fails them too, so the whole case ends.
pub fn on_ranks<R: Send>(
    n: usize,
    body: impl Fn(&Comm, &Stream) -> Result<R, String> + Sync,
) -> Result<Vec<R>, String> {
    let device = |id: usize| Device::open(id).map_err(|e| format!("device {id}: {e}"));
    let root = RootInfo::new(&device(0)?).map_err(|e| e.to_string())?;
    // Ranks get the root info as bytes, as they would from another process.
    let bytes = root.as_bytes().to_vec();
    let size = u32::try_from(n).map_err(|_| format!("{n} ranks; expected at most 2^32 - 1"))?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..size)
            .map(|rank| {
                let (bytes, body) = (&bytes, &body);
                scope.spawn(move || -> Result<R, String> {
                    let device = device(rank as usize)?;
                    let root = RootInfo::from_bytes(bytes).map_err(|e| e.to_string())?;
                    let comm = Comm::init(&device, &root, rank, size).map_err(|e| e.to_string())?;
                    let stream = device.new_stream().map_err(|e| e.to_string())?;
                    body(&comm, &stream)
                })
            })
            .collect();
        let results: Vec<Result<R, String>> = handles
            .into_iter()
            .enumerate()
            .map(|(rank, h)| {
                h.join()
                    .map_err(|_| "panicked".to_string())
                    .and_then(|r| r)
                    .map_err(|e| format!("rank {rank}: {e}"))
            })
            .collect();
        results.into_iter().collect()
    })
}

/// How many ranks a case of `wanted` ranks can have on this backend: all of them when there
/// are enough devices, else the devices there are, or `None` below two.
pub fn available(wanted: usize) -> Option<usize> {
    let devices = Device::count().unwrap_or(0);
    let n = wanted.min(devices);
    (n >= 2).then_some(n)
}
