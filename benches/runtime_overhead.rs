//! Host overhead per call of the safe runtime on the simulator.
//!
//! What is measured is our layer plus the simulator's bookkeeping, not device time: allocate
//! and free, enqueue a 4 KiB async copy (on the buffer's stream, and handed over between two
//! streams, which needs an event and a wait per copy), record an event, synchronise an idle
//! stream. The
//! `raw_*` baselines make the same calls straight through the function table in the same run,
//! so the ratio of each pair is the cost of the safe layer itself.

use std::hint::black_box;

use ascend_npu::{Backend, Device, HostBuffer, raw_api, select_backend, sys};
use criterion::{Criterion, criterion_group, criterion_main};

const COPY_BYTES: usize = 4096;

fn runtime_overhead(c: &mut Criterion) {
    select_backend(Backend::Sim).expect("sim backend");
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let api = raw_api().unwrap();

    let mut group = c.benchmark_group("safe");
    group.bench_function("alloc_free_4KiB", |b| {
        b.iter(|| drop(black_box(stream.alloc_uninit::<u8>(COPY_BYTES).unwrap())))
    });
    let pinned = HostBuffer::<u8>::zeroed(&device, COPY_BYTES).unwrap();
    let mut target = stream.alloc_uninit::<u8>(COPY_BYTES).unwrap();
    group.bench_function("memcpy_htod_async_enqueue_4KiB", |b| {
        b.iter(|| stream.memcpy_htod_async(&pinned, &mut target).unwrap());
        stream.synchronize().unwrap();
    });
    let other = device.new_stream().unwrap();
    let mut flip = false;
    group.bench_function("memcpy_htod_async_handover_4KiB", |b| {
        b.iter(|| {
            flip = !flip;
            let s = if flip { &stream } else { &other };
            s.memcpy_htod_async(&pinned, &mut target).unwrap()
        });
        stream.synchronize().unwrap();
        other.synchronize().unwrap();
    });
    let event = device.new_event().unwrap();
    group.bench_function("event_record", |b| {
        b.iter(|| event.record(&stream).unwrap())
    });
    stream.synchronize().unwrap();
    group.bench_function("stream_sync_idle", |b| {
        b.iter(|| stream.synchronize().unwrap())
    });
    group.finish();

    // Baselines: the same runtime calls without the safe layer, on raw handles. The safe calls
    // above left the device's context current on this thread.
    let mut group = c.benchmark_group("raw");
    let malloc = api.aclrtMalloc().unwrap();
    let free = api.aclrtFree().unwrap();
    group.bench_function("alloc_free_4KiB", |b| {
        b.iter(|| {
            let mut ptr = std::ptr::null_mut();
            // SAFETY: valid out-pointer; the pointer is freed once.
            unsafe {
                assert_eq!(
                    malloc(&mut ptr, COPY_BYTES, sys::ACL_MEM_MALLOC_HUGE_FIRST),
                    0
                );
                assert_eq!(free(black_box(ptr)), 0);
            }
        })
    });
    let mut raw_stream = std::ptr::null_mut();
    let mut raw_other = std::ptr::null_mut();
    let mut raw_event = std::ptr::null_mut();
    let mut host = std::ptr::null_mut();
    let mut dev = std::ptr::null_mut();
    // SAFETY: valid out-pointers; everything created here is destroyed below.
    unsafe {
        assert_eq!(api.aclrtCreateStream().unwrap()(&mut raw_stream), 0);
        assert_eq!(api.aclrtCreateStream().unwrap()(&mut raw_other), 0);
        assert_eq!(api.aclrtCreateEvent().unwrap()(&mut raw_event), 0);
        assert_eq!(api.aclrtMallocHost().unwrap()(&mut host, COPY_BYTES), 0);
        assert_eq!(
            malloc(&mut dev, COPY_BYTES, sys::ACL_MEM_MALLOC_HUGE_FIRST),
            0
        );
    }
    let memcpy_async = api.aclrtMemcpyAsync().unwrap();
    let record = api.aclrtRecordEvent().unwrap();
    let sync = api.aclrtSynchronizeStream().unwrap();
    group.bench_function("memcpy_htod_async_enqueue_4KiB", |b| {
        // SAFETY: pinned source and device destination of COPY_BYTES each, alive until the
        // stream is synchronised below.
        b.iter(|| unsafe {
            assert_eq!(
                memcpy_async(
                    dev,
                    COPY_BYTES,
                    host,
                    COPY_BYTES,
                    sys::ACL_MEMCPY_HOST_TO_DEVICE,
                    raw_stream
                ),
                0
            )
        });
        // SAFETY: live stream.
        assert_eq!(unsafe { sync(raw_stream) }, 0);
    });
    let wait = api.aclrtStreamWaitEvent().unwrap();
    let mut flip = false;
    group.bench_function("memcpy_htod_async_handover_4KiB", |b| {
        // The same hand-over by hand: record on the previous stream, wait on the next, copy.
        b.iter(|| {
            flip = !flip;
            let (prev, next) = if flip {
                (raw_other, raw_stream)
            } else {
                (raw_stream, raw_other)
            };
            // SAFETY: live handles; pinned source and device destination of COPY_BYTES each,
            // alive until both streams are synchronised below.
            unsafe {
                assert_eq!(record(raw_event, prev), 0);
                assert_eq!(wait(next, raw_event), 0);
                assert_eq!(
                    memcpy_async(
                        dev,
                        COPY_BYTES,
                        host,
                        COPY_BYTES,
                        sys::ACL_MEMCPY_HOST_TO_DEVICE,
                        next
                    ),
                    0
                );
            }
        });
        // SAFETY: live streams.
        unsafe {
            assert_eq!(sync(raw_stream), 0);
            assert_eq!(sync(raw_other), 0);
        }
    });
    // SAFETY: live event and stream.
    group.bench_function("event_record", |b| {
        b.iter(|| unsafe { assert_eq!(record(raw_event, raw_stream), 0) })
    });
    // SAFETY: live stream.
    unsafe { assert_eq!(sync(raw_stream), 0) };
    // SAFETY: live stream.
    group.bench_function("stream_sync_idle", |b| {
        b.iter(|| unsafe { assert_eq!(sync(raw_stream), 0) })
    });
    group.finish();
    // SAFETY: each handle is live, idle and released once.
    unsafe {
        assert_eq!(api.aclrtDestroyEvent().unwrap()(raw_event), 0);
        assert_eq!(api.aclrtDestroyStream().unwrap()(raw_stream), 0);
        assert_eq!(api.aclrtDestroyStream().unwrap()(raw_other), 0);
        assert_eq!(api.aclrtFreeHost().unwrap()(host), 0);
        assert_eq!(free(dev), 0);
    }
    drop(target);
    drop(pinned);
    stream.synchronize().unwrap();
}

criterion_group!(benches, runtime_overhead);
criterion_main!(benches);
