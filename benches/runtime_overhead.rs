//! Host overhead per call of the safe runtime on the simulator.
//!
//! What is measured is our layer plus the simulator's bookkeeping, not device time: allocate
//! and free, enqueue a 4 KiB async copy, record an event, synchronise an idle stream. The
//! `raw_*` baselines make the same calls straight through the function table in the same run,
//! so the ratio of each pair is the cost of the safe layer itself.

use std::hint::black_box;

use ascend_npu::{Backend, Device, HostBuffer, raw_api, select_backend};
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
    let event = device.new_event().unwrap();
    group.bench_function("event_record", |b| {
        b.iter(|| event.record(&stream).unwrap())
    });
    stream.synchronize().unwrap();
    group.bench_function("stream_sync_idle", |b| {
        b.iter(|| stream.synchronize().unwrap())
    });
    group.finish();

    // Baselines: the same runtime calls without the safe layer.
    let mut group = c.benchmark_group("raw");
    let malloc = api.aclrtMalloc().unwrap();
    let free = api.aclrtFree().unwrap();
    group.bench_function("alloc_free_4KiB", |b| {
        b.iter(|| {
            let mut ptr = std::ptr::null_mut();
            // SAFETY: valid out-pointer; the device context is current on this thread (bound by
            // the safe calls above) and the pointer is freed once.
            unsafe {
                assert_eq!(
                    malloc(
                        &mut ptr,
                        COPY_BYTES,
                        ascend_npu::sys::ACL_MEM_MALLOC_HUGE_FIRST
                    ),
                    0
                );
                assert_eq!(free(black_box(ptr)), 0);
            }
        })
    });
    group.finish();
    drop(target);
    drop(pinned);
    stream.synchronize().unwrap();
}

criterion_group!(benches, runtime_overhead);
criterion_main!(benches);
