//! The safe runtime API, exercised through whichever backend the suite selected.

use ascend_npu::{Device, DeviceSlice, Event, HostBuffer, take_drop_errors};
use half::{bf16, f16};

use super::{Rng, tasks_during};

fn device() -> Device {
    Device::open(0).expect("device 0 opens")
}

/// No test may leave errors behind in Drop; each case checks at its end.
fn assert_no_drop_errors() {
    let (errors, discarded) = take_drop_errors();
    assert!(
        errors.is_empty() && discarded == 0,
        "errors in Drop: {errors:?} (+{discarded})"
    );
}

pub fn device_reports_count_soc_and_memory() {
    let count = Device::count().unwrap();
    assert!(count >= 1);
    let device = device();
    assert_eq!(device.id(), 0);
    let soc = device.soc_name().unwrap();
    assert!(soc.starts_with("Ascend"), "SoC name {soc:?}");
    if ascend_npu::active_backend().unwrap() == ascend_npu::Backend::Sim {
        assert!(
            soc.contains("sim"),
            "the simulator must say so in the SoC name: {soc:?}"
        );
    }
    let info = device.memory_info().unwrap();
    assert!(info.total > 0 && info.free <= info.total, "{info:?}");
    device.synchronize().unwrap();
    let err = Device::open(count).unwrap_err();
    assert!(
        err.to_string().contains(&format!("device id {count}")),
        "{err}"
    );
}

pub fn allocation_reduces_free_memory_and_drop_returns_it() {
    let device = device();
    let stream = device.new_stream().unwrap();
    device.synchronize().unwrap();
    let before = device.memory_info().unwrap().free;
    let buffer = stream.alloc_zeroed::<u8>(1 << 20).unwrap();
    let during = device.memory_info().unwrap().free;
    // Other tests allocate concurrently, so compare with slack rather than exactly.
    assert!(
        during + (1 << 20) <= before + (64 << 20),
        "{before} -> {during}"
    );
    drop(buffer);
    stream.synchronize().unwrap();
    assert_no_drop_errors();
}

pub fn upload_download_round_trips_every_element_type() {
    let stream = device().new_stream().unwrap();
    let mut rng = Rng::new(1);
    for len in [1usize, 3, 31, 32, 33, 1000] {
        let f: Vec<f32> = rng.vec_f32(len);
        assert_eq!(stream.upload(&f).unwrap().to_vec().unwrap(), f);
        let h: Vec<f16> = f.iter().map(|&x| f16::from_f32(x)).collect();
        assert_eq!(stream.upload(&h).unwrap().to_vec().unwrap(), h);
        let b: Vec<bf16> = f.iter().map(|&x| bf16::from_f32(x)).collect();
        assert_eq!(stream.upload(&b).unwrap().to_vec().unwrap(), b);
        let u: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        assert_eq!(stream.upload(&u).unwrap().to_vec().unwrap(), u);
        let i: Vec<i64> = (0..len as i64).map(|i| i * -3_000_000_007).collect();
        assert_eq!(stream.upload(&i).unwrap().to_vec().unwrap(), i);
    }
    assert_no_drop_errors();
}

pub fn empty_buffers_need_no_device_memory() {
    let stream = device().new_stream().unwrap();
    let empty = stream.upload::<f32>(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.to_vec().unwrap(), Vec::<f32>::new());
    let mut zeroed = stream.alloc_zeroed::<u32>(0).unwrap();
    stream.memset(&mut zeroed, 1).unwrap();
    assert_eq!(zeroed.slice(..).unwrap().len(), 0);
    assert_no_drop_errors();
}

pub fn zeroed_allocation_and_memset() {
    let stream = device().new_stream().unwrap();
    let mut buffer = stream.alloc_zeroed::<u32>(37).unwrap();
    assert_eq!(buffer.to_vec().unwrap(), vec![0u32; 37]);
    stream
        .memset(&mut buffer.slice_mut(5..9).unwrap(), 0xAB)
        .unwrap();
    let expected: Vec<u32> = (0..37)
        .map(|i| if (5..9).contains(&i) { 0xABAB_ABAB } else { 0 })
        .collect();
    assert_eq!(buffer.to_vec().unwrap(), expected);
    assert_no_drop_errors();
}

pub fn views_copy_exactly_their_range() {
    let stream = device().new_stream().unwrap();
    let src: Vec<i32> = (0..100).collect();
    let source = stream.upload(&src).unwrap();
    let mut dest = stream.alloc_zeroed::<i32>(100).unwrap();
    stream
        .memcpy_dtod(
            &source.slice(10..40).unwrap(),
            &mut dest.slice_mut(60..90).unwrap(),
        )
        .unwrap();
    let got = dest.to_vec().unwrap();
    for (i, v) in got.iter().enumerate() {
        let want = if (60..90).contains(&i) {
            i as i32 - 50
        } else {
            0
        };
        assert_eq!(*v, want, "element {i}");
    }
    let (left, right) = dest.split_at_mut(50).unwrap();
    assert_eq!((left.len(), right.len()), (50, 50));
    let mut host = vec![0i32; 30];
    stream
        .memcpy_dtoh(&source.slice(70..).unwrap(), &mut host)
        .unwrap();
    assert_eq!(host, (70..100).collect::<Vec<_>>());
    assert_no_drop_errors();
}

pub fn out_of_range_views_and_mismatched_lengths_are_errors() {
    let stream = device().new_stream().unwrap();
    let mut buffer = stream.upload(&[1u16, 2, 3, 4]).unwrap();
    for err in [
        buffer.slice(2..5).unwrap_err(),
        #[allow(clippy::reversed_empty_ranges)] // a reversed range must be an error, not a panic
        buffer.slice(3..2).unwrap_err(),
        buffer.slice_mut(..=4).unwrap_err(),
        buffer.split_at_mut(5).unwrap_err(),
    ] {
        assert!(err.to_string().contains("buffer of 4 elements"), "{err}");
    }
    let err = buffer.copy_from_host(&[1, 2, 3]).unwrap_err();
    assert!(
        err.to_string().contains("copy of 3 elements into 4"),
        "{err}"
    );
    let mut short = vec![0u16; 3];
    let err = stream.memcpy_dtoh(&buffer, &mut short).unwrap_err();
    assert!(
        err.to_string().contains("copy of 4 elements into 3"),
        "{err}"
    );
    let err = buffer.to_array((3, 2)).unwrap_err();
    assert!(err.to_string().contains("6 elements"), "{err}");
    // Still usable afterwards.
    buffer.copy_from_host(&[9, 8, 7, 6]).unwrap();
    assert_eq!(buffer.to_vec().unwrap(), [9, 8, 7, 6]);
    assert_no_drop_errors();
}

pub fn async_copies_through_pinned_memory() {
    let device = device();
    let stream = device.new_stream().unwrap();
    let mut rng = Rng::new(2);
    let data = rng.vec_f32(4099);
    let pinned = HostBuffer::from_slice(&device, &data).unwrap();
    let mut on_device = stream.alloc_zeroed::<f32>(data.len()).unwrap();
    stream.memcpy_htod_async(&pinned, &mut on_device).unwrap();
    let mut back = HostBuffer::<f32>::zeroed(&device, data.len()).unwrap();
    stream.memcpy_dtoh_async(&on_device, &mut back).unwrap();
    // as_slice waits for the copy recorded in `back`; no explicit synchronize.
    assert_eq!(back.as_slice().unwrap(), &data[..]);
    // Dropping the source while nothing is pending is fine; so is dropping a buffer whose
    // copy is still queued (Drop waits).
    let mut again = HostBuffer::<f32>::zeroed(&device, data.len()).unwrap();
    stream.memcpy_dtoh_async(&on_device, &mut again).unwrap();
    drop(again);
    let err = stream
        .memcpy_htod_async(&pinned, &mut stream.alloc_zeroed::<f32>(3).unwrap())
        .unwrap_err();
    assert!(
        err.to_string().contains("copy of 4099 elements into 3"),
        "{err}"
    );
    assert_no_drop_errors();
}

pub fn dropping_a_buffer_with_queued_work_is_stream_ordered() {
    let stream = device().new_stream().unwrap();
    let data: Vec<u64> = (0..(1 << 16)).collect();
    let pinned = HostBuffer::from_slice(stream.device(), &data).unwrap();
    for _ in 0..8 {
        let mut scratch = stream.alloc_uninit::<u64>(data.len()).unwrap();
        stream.memcpy_htod_async(&pinned, &mut scratch).unwrap();
        let mut copy = stream.alloc_uninit::<u64>(data.len()).unwrap();
        stream.memcpy_dtod(&scratch, &mut copy).unwrap();
        drop(scratch); // still read by the queued dtod copy
        assert_eq!(copy.to_vec().unwrap(), data);
    }
    stream.synchronize().unwrap();
    assert_no_drop_errors();
}

pub fn events_order_streams_and_time_work() {
    let device = device();
    let producer = device.new_stream().unwrap();
    let consumer = device.new_stream().unwrap();
    let data: Vec<u32> = (0..50_000).collect();
    let pinned = HostBuffer::from_slice(&device, &data).unwrap();
    let mut shared = producer.alloc_zeroed::<u32>(data.len()).unwrap();
    let start = producer.record_event().unwrap();
    producer.memcpy_htod_async(&pinned, &mut shared).unwrap();
    let written = producer.record_event().unwrap();
    consumer.wait(&written).unwrap();
    let mut out = consumer.alloc_zeroed::<u32>(data.len()).unwrap();
    consumer.memcpy_dtod(&shared, &mut out).unwrap();
    assert_eq!(out.to_vec().unwrap(), data);
    written.synchronize().unwrap();
    assert!(written.is_complete().unwrap());
    let ms = Event::elapsed_ms(&start, &written).unwrap();
    assert!(ms.is_finite() && ms >= 0.0, "elapsed {ms} ms");
    assert_no_drop_errors();
}

pub fn ndarray_round_trip_in_any_layout() {
    let stream = device().new_stream().unwrap();
    let a = ndarray::Array::from_shape_fn((3, 5, 2), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
    let permuted = a.clone().permuted_axes([2, 0, 1]);
    let on_device = stream.upload_array(&permuted).unwrap();
    let back = on_device.to_array((2, 3, 5)).unwrap();
    assert_eq!(back, permuted);
    assert_no_drop_errors();
}

pub fn handles_move_across_threads() {
    let device = device();
    let stream = device.new_stream().unwrap();
    let buffer = stream.upload(&[5u8; 64]).unwrap();
    let handle = std::thread::spawn(move || {
        let v = buffer.to_vec().unwrap();
        drop(buffer);
        drop(stream);
        v
    });
    assert_eq!(handle.join().unwrap(), vec![5u8; 64]);
    drop(device);
    assert_no_drop_errors();
}

pub fn many_streams_chained_by_events_give_exact_results() {
    let device = device();
    let streams: Vec<_> = (0..8).map(|_| device.new_stream().unwrap()).collect();
    let len = 10_007;
    for round in 0..4u32 {
        let data: Vec<u32> = (0..len as u32)
            .map(|i| i.wrapping_mul(2_654_435_761) ^ round)
            .collect();
        let pinned = HostBuffer::from_slice(&device, &data).unwrap();
        let mut stages: Vec<_> = streams
            .iter()
            .map(|s| s.alloc_zeroed::<u32>(len).unwrap())
            .collect();
        streams[0]
            .memcpy_htod_async(&pinned, &mut stages[0])
            .unwrap();
        let mut ready = streams[0].record_event().unwrap();
        // Each stage copies the previous stage's buffer on its own stream, after the previous
        // stream's copy: only the events order them.
        for i in 1..streams.len() {
            streams[i].wait(&ready).unwrap();
            let (done, rest) = stages.split_at_mut(i);
            streams[i].memcpy_dtod(&done[i - 1], &mut rest[0]).unwrap();
            ready = streams[i].record_event().unwrap();
        }
        let last = stages.last().unwrap();
        let mut out = HostBuffer::<u32>::zeroed(&device, len).unwrap();
        streams
            .last()
            .unwrap()
            .memcpy_dtoh_async(last, &mut out)
            .unwrap();
        assert_eq!(out.as_slice().unwrap(), &data[..], "round {round}");
        // Stage buffers were allocated on different streams than the ones that read them
        // last: order the owners after the readers before dropping.
        for stream in &streams {
            stream.wait(&ready).unwrap();
        }
    }
    assert_no_drop_errors();
}

pub fn threads_allocate_copy_and_free_concurrently() {
    let device = device();
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let device = device.clone();
            std::thread::spawn(move || {
                let stream = device.new_stream().unwrap();
                let mut rng = Rng::new(100 + t);
                for _ in 0..40 {
                    let len = 1 + (rng.next_u64() % 5000) as usize;
                    let data: Vec<u64> = (0..len).map(|_| rng.next_u64()).collect();
                    let a = stream.upload(&data).unwrap();
                    let mut b = stream.alloc_uninit::<u64>(len).unwrap();
                    stream.memcpy_dtod(&a, &mut b).unwrap();
                    drop(a);
                    assert_eq!(b.to_vec().unwrap(), data);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    device.synchronize().unwrap();
    assert_no_drop_errors();
}

/// Holds a stream at a host function until released (or dropped), so the work queued after it
/// stays pending: races between streams become deterministic.
struct Gate {
    open: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

unsafe extern "C" fn wait_for_gate(args: *mut std::ffi::c_void) {
    // SAFETY: `args` is the Arc leaked by `Gate::hold` for this one call.
    let open = unsafe {
        std::sync::Arc::from_raw(args as *const (std::sync::Mutex<bool>, std::sync::Condvar))
    };
    let mut is_open = open.0.lock().unwrap();
    while !*is_open {
        is_open = open.1.wait(is_open).unwrap();
    }
}

impl Gate {
    fn hold(stream: &ascend_npu::Stream) -> Gate {
        let open = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let args = std::sync::Arc::into_raw(open.clone()) as *mut std::ffi::c_void;
        stream.is_idle().unwrap(); // binds the device's context on this thread
        let launch = ascend_npu::raw_api()
            .unwrap()
            .aclrtLaunchHostFunc()
            .unwrap();
        // SAFETY: a live stream; the function takes back the Arc leaked above and makes no
        // runtime call.
        let code = unsafe { launch(stream.as_raw(), Some(wait_for_gate), args) };
        assert_eq!(code, 0, "aclrtLaunchHostFunc");
        Gate { open }
    }

    fn release(&self) {
        *self.open.0.lock().unwrap() = true;
        self.open.1.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.release();
    }
}

fn pattern(len: usize, seed: u32) -> Vec<u32> {
    (0..len as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) ^ seed)
        .collect()
}

pub fn host_buffer_uses_are_ordered_across_streams() {
    let device = device();
    let (a, b) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    let len = 4099;
    let (first, second) = (pattern(len, 1), pattern(len, 2));

    // Read after write: an upload on B from a host buffer a download on A still fills.
    let on_a = a.upload(&first).unwrap();
    let mut host = HostBuffer::<u32>::zeroed(&device, len).unwrap();
    let gate = Gate::hold(&a);
    a.memcpy_dtoh_async(&on_a, &mut host).unwrap();
    let mut on_b = b.alloc_zeroed::<u32>(len).unwrap();
    b.memcpy_htod_async(&host, &mut on_b).unwrap();
    gate.release();
    assert_eq!(
        on_b.to_vec().unwrap(),
        first,
        "B read the host buffer early"
    );

    // Write after read: a download on B into a host buffer an upload on A still reads.
    let host = {
        let mut h = HostBuffer::from_slice(&device, &first).unwrap();
        let gate = Gate::hold(&a);
        let mut target = a.alloc_zeroed::<u32>(len).unwrap();
        a.memcpy_htod_async(&h, &mut target).unwrap();
        let source = b.upload(&second).unwrap();
        b.memcpy_dtoh_async(&source, &mut h).unwrap();
        gate.release();
        assert_eq!(
            target.to_vec().unwrap(),
            first,
            "B overwrote the source early"
        );
        h
    };
    assert_eq!(host.as_slice().unwrap(), &second[..]);

    // Write after write: two downloads into one host buffer land in queue order.
    let mut host = HostBuffer::<u32>::zeroed(&device, len).unwrap();
    let on_b = b.upload(&second).unwrap();
    let gate = Gate::hold(&a);
    a.memcpy_dtoh_async(&on_a, &mut host).unwrap();
    b.memcpy_dtoh_async(&on_b, &mut host).unwrap();
    gate.release();
    assert_eq!(
        host.as_slice().unwrap(),
        &second[..],
        "the earlier write won"
    );
    assert_no_drop_errors();
}

pub fn device_buffer_uses_are_ordered_across_streams() {
    let device = device();
    let (a, b) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    let len = 4099;
    let (first, second) = (pattern(len, 3), pattern(len, 4));
    let pinned_first = HostBuffer::from_slice(&device, &first).unwrap();
    let pinned_second = HostBuffer::from_slice(&device, &second).unwrap();

    // Read after write: B copies a buffer A is still filling.
    let mut shared = a.alloc_zeroed::<u32>(len).unwrap();
    let gate = Gate::hold(&a);
    a.memcpy_htod_async(&pinned_first, &mut shared).unwrap();
    let mut out = b.alloc_zeroed::<u32>(len).unwrap();
    b.memcpy_dtod(&shared, &mut out).unwrap();
    gate.release();
    assert_eq!(out.to_vec().unwrap(), first, "B read before A's write");

    // Write after read: B clears a buffer A is still copying out.
    let gate = Gate::hold(&a);
    let mut copy = a.alloc_zeroed::<u32>(len).unwrap();
    a.memcpy_dtod(&shared, &mut copy).unwrap();
    b.memset(&mut shared, 0).unwrap();
    gate.release();
    assert_eq!(copy.to_vec().unwrap(), first, "B wrote before A's read");
    assert_eq!(shared.to_vec().unwrap(), vec![0; len]);

    // Write after write: the later write on B wins over the earlier, held one on A.
    let gate = Gate::hold(&a);
    a.memcpy_htod_async(&pinned_first, &mut shared).unwrap();
    b.memcpy_htod_async(&pinned_second, &mut shared).unwrap();
    gate.release();
    assert_eq!(shared.to_vec().unwrap(), second, "the earlier write won");

    // And the other way round: A, the owner, reads what B is still writing.
    let gate = Gate::hold(&b);
    b.memcpy_htod_async(&pinned_first, &mut shared).unwrap();
    let mut back = a.alloc_zeroed::<u32>(len).unwrap();
    a.memcpy_dtod(&shared, &mut back).unwrap();
    gate.release();
    assert_eq!(back.to_vec().unwrap(), first, "A read before B's write");
    assert_no_drop_errors();
}

pub fn buffers_used_on_other_streams_are_freed_after_that_use() {
    let device = device();
    let (owner, user) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    let data = pattern(10_007, 5);

    // A device buffer read by a copy on a non-owner stream, then dropped while the owner is
    // idle: the free must wait for the copy.
    let source = owner.upload(&data).unwrap();
    let mut out = user.alloc_zeroed::<u32>(data.len()).unwrap();
    let gate = Gate::hold(&user);
    user.memcpy_dtod(&source, &mut out).unwrap();
    drop(source);
    owner.synchronize().unwrap();
    gate.release();
    user.synchronize().unwrap();
    assert_eq!(out.to_vec().unwrap(), data);

    // A device buffer written on a non-owner stream and dropped unread.
    let mut target = owner.alloc_zeroed::<u32>(data.len()).unwrap();
    let gate = Gate::hold(&user);
    user.memcpy_dtod(&out, &mut target).unwrap();
    drop(target);
    owner.synchronize().unwrap();
    gate.release();
    user.synchronize().unwrap();

    // A pinned host buffer dropped while a copy on another stream reads it: Drop neither
    // blocks (the gate is still shut) nor frees early.
    let pinned = HostBuffer::from_slice(&device, &data).unwrap();
    let mut landed = owner.alloc_zeroed::<u32>(data.len()).unwrap();
    let gate = Gate::hold(&user);
    user.memcpy_htod_async(&pinned, &mut landed).unwrap();
    drop(pinned);
    gate.release();
    user.synchronize().unwrap();
    assert_eq!(landed.to_vec().unwrap(), data);
    device.synchronize().unwrap();
    assert_no_drop_errors();
}

pub fn kernels_on_other_streams_are_ordered_and_keep_buffers_alive() {
    let device = device();
    let kernels = ascend_npu::kernels::Kernels::load(&device).unwrap();
    let (owner, user) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    let len = 3001;
    let gate_values: Vec<f32> = (0..len).map(|i| (i % 17) as f32 * 0.25 - 2.0).collect();
    let up_values: Vec<f32> = (0..len).map(|i| (i % 5) as f32 - 1.5).collect();
    let pinned = HostBuffer::from_slice(&device, &gate_values).unwrap();
    let mut gate_in = owner.alloc_zeroed::<f32>(len).unwrap();
    let up = owner.upload(&up_values).unwrap();
    let mut out = user.alloc_zeroed::<f32>(len).unwrap();
    // The owner's upload is held; the kernel on the other stream must wait for it, and the
    // inputs, dropped right after the launch, must outlive the kernel.
    let gate = Gate::hold(&owner);
    owner.memcpy_htod_async(&pinned, &mut gate_in).unwrap();
    ascend_npu::kernels::swiglu(&kernels, &user, &gate_in, &up, &mut out).unwrap();
    drop((gate_in, up));
    gate.release();
    user.synchronize().unwrap();
    let got = out.to_vec().unwrap();
    for (i, (&g, &u)) in gate_values.iter().zip(&up_values).enumerate() {
        // f32 SiLU on the device vs f64 here: a few ulp of exp and the division.
        let want = (g as f64 / (1.0 + (-(g as f64)).exp())) * u as f64;
        assert!(
            (got[i] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
            "element {i}: {} vs {want}",
            got[i]
        );
    }
    device.synchronize().unwrap();
    assert_no_drop_errors();
}

pub fn same_stream_work_creates_no_event_and_cross_stream_events_are_pooled() {
    let device = device();
    let stream = device.new_stream().unwrap();
    let len = 1024;
    let data = pattern(len, 6);
    let pinned = HostBuffer::from_slice(&device, &data).unwrap();
    let mut back = HostBuffer::<u32>::zeroed(&device, len).unwrap();
    let mut x = stream.alloc_zeroed::<u32>(len).unwrap();
    let mut y = stream.alloc_zeroed::<u32>(len).unwrap();
    let before = device.runtime_events_created();
    for _ in 0..20 {
        stream.memcpy_htod_async(&pinned, &mut x).unwrap();
        stream.memcpy_dtod(&x, &mut y).unwrap();
        stream.memset(&mut x, 1).unwrap();
        stream.memcpy_dtoh_async(&y, &mut back).unwrap();
    }
    assert_eq!(back.as_slice().unwrap(), &data[..]);
    assert_eq!(
        device.runtime_events_created(),
        before,
        "work on one stream created events"
    );

    // A read on another stream waits for the write once; after that, reads on either stream
    // do not conflict.
    let other = device.new_stream().unwrap();
    let mut z = other.alloc_zeroed::<u32>(len).unwrap();
    other.memcpy_dtod(&y, &mut z).unwrap();
    let after_first = device.runtime_events_created();
    assert!(after_first <= before + 1, "{before} -> {after_first}");
    for _ in 0..10 {
        other.memcpy_dtod(&y, &mut z).unwrap();
        stream.memcpy_dtoh_async(&y, &mut back).unwrap();
    }
    assert_eq!(device.runtime_events_created(), after_first);

    // Ping-pong between streams needs an event per hand-over, from the pool: after the first
    // few, none is created.
    for i in 0..50 {
        let s = if i % 2 == 0 { &stream } else { &other };
        s.memcpy_dtod(&z, &mut y).unwrap();
        s.memcpy_dtod(&y, &mut z).unwrap();
        s.synchronize().unwrap();
    }
    let created = device.runtime_events_created() - before;
    assert!(
        (1..=8).contains(&created),
        "{created} events for 50 hand-overs"
    );
    assert_eq!(z.to_vec().unwrap(), data);
    assert_no_drop_errors();
}

pub fn pooled_blocks_are_reused_only_after_other_streams_finish_with_them() {
    let device = device();
    let (owner, user) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    let data = pattern(4096, 7);
    let mut pooled = owner.alloc_pooled::<u32>(data.len()).unwrap();
    pooled.copy_from_host(&data).unwrap();
    let mut out = user.alloc_zeroed::<u32>(data.len()).unwrap();
    let gate = Gate::hold(&user);
    user.memcpy_dtod(&pooled, &mut out).unwrap();
    drop(pooled);
    // The same size class from the owner's pool: the block may come back, but the owner's
    // writes must wait for the user's read.
    let mut again = owner.alloc_pooled::<u32>(data.len()).unwrap();
    owner.memset(&mut again, 0xFF).unwrap();
    gate.release();
    assert_eq!(
        out.to_vec().unwrap(),
        data,
        "the block was overwritten early"
    );
    assert_eq!(again.to_vec().unwrap(), vec![u32::MAX; data.len()]);
    let zeroed = owner.alloc_pooled_zeroed::<u32>(7).unwrap();
    assert_eq!(zeroed.to_vec().unwrap(), vec![0; 7]);
    assert!(owner.alloc_pooled::<u32>(0).unwrap().is_empty());
    drop((again, zeroed));
    assert!(owner.pooled_bytes() >= data.len() * 4);
    owner.trim_pool().unwrap();
    assert_eq!(owner.pooled_bytes(), 0);
    device.synchronize().unwrap();
    assert_no_drop_errors();
}

pub fn raw_handles_interoperate_with_use_tracking() {
    let device = device();
    let (a, b) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    let data = pattern(2048, 8);
    let pinned = HostBuffer::from_slice(&device, &data).unwrap();
    let mut shared = a.alloc_zeroed::<u32>(data.len()).unwrap();
    let mut out = b.alloc_zeroed::<u32>(data.len()).unwrap();
    // A tracked write held on A; then a copy queued by hand on B through raw handles.
    let gate = Gate::hold(&a);
    a.memcpy_htod_async(&pinned, &mut shared).unwrap();
    b.prepare_raw_read(&shared).unwrap();
    b.prepare_raw_write(&mut out).unwrap();
    let copy = ascend_npu::raw_api().unwrap().aclrtMemcpyAsync().unwrap();
    let bytes = data.len() * 4;
    // SAFETY: both are live device allocations of `bytes` bytes, prepared for this stream; the
    // buffers outlive the copy (their frees wait for B's work).
    let code = unsafe {
        copy(
            out.device_ptr() as *mut std::ffi::c_void,
            bytes,
            shared.device_ptr() as *const std::ffi::c_void,
            bytes,
            ascend_npu::sys::ACL_MEMCPY_DEVICE_TO_DEVICE,
            b.as_raw(),
        )
    };
    assert_eq!(code, 0);
    gate.release();
    assert_eq!(
        out.to_vec().unwrap(),
        data,
        "the raw copy ran before A's write"
    );
    let event = b.record_event().unwrap();
    assert!(!event.as_raw().is_null());
    assert_no_drop_errors();
}

/// The bound context is cached per thread: work on one device from one thread makes its
/// context current once; alternating devices switches it each time, and every result lands on
/// the right device; a dropped handle's cache entry never matches a new one; a raw context
/// change is repaired after `forget_bound_context`.
pub fn the_bound_context_is_cached_per_thread_and_follows_device_switches() {
    use ascend_npu::runtime::{context_sets_on_this_thread, forget_bound_context};
    let d0 = device();
    let s0 = d0.new_stream().unwrap();
    let a = s0.upload(&[1u32, 2, 3]).unwrap();
    let before = context_sets_on_this_thread();
    for _ in 0..5 {
        assert_eq!(a.to_vec().unwrap(), [1, 2, 3]);
        s0.synchronize().unwrap();
    }
    assert_eq!(
        context_sets_on_this_thread(),
        before,
        "same device, same thread: no re-bind"
    );
    if Device::count().unwrap() >= 2 {
        // Device 1 is shared with the cases that count its tasks: one at a time.
        let _serial = quiet_device_lock();
        let d1 = Device::open(1).unwrap();
        let s1 = d1.new_stream().unwrap();
        let b = s1.upload(&[7u32; 4]).unwrap();
        let before = context_sets_on_this_thread();
        for i in 0..3u32 {
            let x = s0.upload(&[i]).unwrap();
            let y = s1.upload(&[i + 10]).unwrap();
            assert_eq!(
                (x.to_vec().unwrap(), y.to_vec().unwrap()),
                (vec![i], vec![i + 10])
            );
            assert_eq!(x.device().id(), 0);
            assert_eq!(y.device().id(), 1);
        }
        assert!(
            context_sets_on_this_thread() > before,
            "switching devices re-binds"
        );
        assert_eq!(b.to_vec().unwrap(), [7; 4]);
        // A raw switch to device 1's context, announced: device 0's next call re-binds.
        let api = ascend_npu::raw_api().unwrap();
        let set = api.aclrtSetCurrentContext().unwrap();
        let get = api.aclrtGetCurrentContext().unwrap();
        let mut ctx1 = std::ptr::null_mut();
        s1.synchronize().unwrap();
        // SAFETY: a valid out-pointer; device 1's context is current after its last call.
        assert_eq!(unsafe { get(&mut ctx1) }, ascend_npu::sys::ACL_SUCCESS);
        s0.synchronize().unwrap();
        // SAFETY: device 1's live default context (d1 is open).
        assert_eq!(unsafe { set(ctx1) }, ascend_npu::sys::ACL_SUCCESS);
        forget_bound_context();
        assert_eq!(a.to_vec().unwrap(), [1, 2, 3]);
        assert_eq!(s0.upload(&[9u8]).unwrap().device().id(), 0);
    }
    // A handle opened after another was dropped starts from a fresh cache entry.
    drop((a, s0, d0));
    let again = device();
    let s = again.new_stream().unwrap();
    assert_eq!(s.upload(&[4u16]).unwrap().to_vec().unwrap(), [4]);
    assert_no_drop_errors();
}

/// Device 1, which other cases of this suite use only under [`quiet_device_lock`], so its task
/// counts and free memory are exact. `None` (the case is skipped, with a message) where there is no second device.
fn quiet_device() -> Option<Device> {
    if Device::count().unwrap() < 2 {
        eprintln!("skipped: needs a second device");
        return None;
    }
    Some(Device::open(1).unwrap())
}

/// Cases on the quiet device run one at a time.
fn quiet_device_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn dropping_a_plain_buffer_gives_its_memory_back_to_the_device() {
    let _serial = quiet_device_lock();
    let Some(device) = quiet_device() else { return };
    let stream = device.new_stream().unwrap();
    device.synchronize().unwrap();
    let before = device.memory_info().unwrap().free;
    let size = 3 << 20;
    let buffer = stream.alloc_zeroed::<u8>(size).unwrap();
    assert!(device.memory_info().unwrap().free + size <= before);
    drop(buffer);
    stream.synchronize().unwrap();
    // Only pooled allocations stay with their stream; a plain one is freed.
    assert_eq!(device.memory_info().unwrap().free, before);
    assert_no_drop_errors();
}

/// A plain buffer last written on another stream is still freed after the work queued on its
/// own stream (the crate queues its workspaces there without tracking them): with its stream held,
/// dropping it frees nothing until the stream moves on.
pub fn a_plain_buffer_is_freed_after_its_own_streams_queued_work() {
    let _serial = quiet_device_lock();
    let Some(device) = quiet_device() else { return };
    let (owner, other) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    let size = 3 << 20;
    let mut buffer = owner.alloc_zeroed::<u8>(size).unwrap();
    // A write on the other stream: the owner's zeroing is waited for and forgotten, so the
    // other stream is the buffer's only tracked user.
    other.memset(&mut buffer, 7).unwrap();
    other.synchronize().unwrap();
    let gate = Gate::hold(&owner);
    let held = device.memory_info().unwrap().free;
    drop(buffer);
    assert_eq!(
        device.memory_info().unwrap().free,
        held,
        "freed while its stream still had work queued"
    );
    gate.release();
    owner.synchronize().unwrap();
    assert!(device.memory_info().unwrap().free >= held + size);
    assert_no_drop_errors();
}

pub fn a_stream_waits_once_for_another_streams_use_and_never_again() {
    let _serial = quiet_device_lock();
    let Some(device) = quiet_device() else { return };
    let [w, a, b, c] = [(); 4].map(|()| device.new_stream().unwrap());
    let len = 257;
    let mut x = w.alloc_zeroed::<u32>(len).unwrap();
    let pinned = HostBuffer::from_slice(&device, &pattern(len, 11)).unwrap();
    w.memcpy_htod_async(&pinned, &mut x).unwrap();
    let mut on_a = a.alloc_zeroed::<u32>(len).unwrap();
    let mut only_a = a.alloc_zeroed::<u32>(len).unwrap();
    let mut on_b = b.alloc_zeroed::<u32>(len).unwrap();
    // What the same operations cost between buffers no other stream touches.
    let Some(copy) = tasks_during(&device, || a.memcpy_dtod(&only_a, &mut on_a).unwrap()) else {
        return;
    };
    let memset = tasks_during(&device, || a.memset(&mut only_a, 3).unwrap()).unwrap();

    // A read after a write on another stream waits (an event record and a wait more); reading
    // again, the stream is already ordered after that write.
    let first = tasks_during(&device, || a.memcpy_dtod(&x, &mut on_a).unwrap()).unwrap();
    assert!(first > copy, "the first read did not wait: {first} tasks");
    let one_wait = first - copy;
    let again = tasks_during(&device, || a.memcpy_dtod(&x, &mut on_a).unwrap()).unwrap();
    assert_eq!(again, copy, "the second read waited again");

    // A write after a read on another stream waits for it once (the stream already follows
    // the first write): a second write follows the first in stream order. Three streams use
    // `x`, below the four past which idle streams are forgotten, so nothing is pruned here.
    b.memcpy_dtod(&x, &mut on_b).unwrap();
    let first = tasks_during(&device, || a.memset(&mut x, 1).unwrap()).unwrap();
    assert_eq!(
        first,
        memset + one_wait,
        "the write did not wait for the read"
    );
    let again = tasks_during(&device, || a.memset(&mut x, 2).unwrap()).unwrap();
    assert_eq!(again, memset, "the second write waited again");
    // The write followed every earlier use: a write on another stream waits for it only.
    let on_c_write = tasks_during(&device, || c.memset(&mut x, 3).unwrap()).unwrap();
    assert_eq!(
        on_c_write,
        memset + one_wait,
        "waited for uses an earlier write followed"
    );

    // After the host has read what another stream wrote, that write is complete: a write on a
    // third stream need not wait for it.
    let mut host = HostBuffer::<u32>::zeroed(&device, len).unwrap();
    let mut only_a_host = HostBuffer::<u32>::zeroed(&device, len).unwrap();
    let download = tasks_during(&device, || {
        a.memcpy_dtoh_async(&only_a, &mut only_a_host).unwrap()
    })
    .unwrap();
    c.memcpy_dtoh_async(&on_b, &mut host).unwrap();
    assert_eq!(host.as_slice().unwrap(), &pattern(len, 11)[..]);
    let after_host_read =
        tasks_during(&device, || a.memcpy_dtoh_async(&on_a, &mut host).unwrap()).unwrap();
    assert_eq!(
        after_host_read, download,
        "the write waited for a completed use"
    );
    assert_eq!(host.as_slice().unwrap(), &pattern(len, 11)[..]);
    assert_no_drop_errors();
}

pub fn a_busy_streams_use_survives_pruning_of_idle_ones() {
    let _serial = quiet_device_lock();
    let Some(device) = quiet_device() else { return };
    let [owner, held, writer] = [(); 3].map(|()| device.new_stream().unwrap());
    let len = 1031;
    let old = pattern(len, 12);
    let mut x = owner.upload(&old).unwrap();
    let mut on_held = held.alloc_zeroed::<u32>(len).unwrap();
    held.synchronize().unwrap();
    let gate = Gate::hold(&held);
    held.memcpy_dtod(&x, &mut on_held).unwrap();
    // Readers on more streams, all finished: past four users the idle ones are forgotten.
    for _ in 0..4 {
        let s = device.new_stream().unwrap();
        let mut y = s.alloc_zeroed::<u32>(len).unwrap();
        s.memcpy_dtod(&x, &mut y).unwrap();
        s.synchronize().unwrap();
    }
    // The write must wait for the held stream's pending read, which the gate releases later.
    let opener = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        gate.release();
    });
    writer.memset(&mut x, 0xff).unwrap();
    writer.synchronize().unwrap();
    opener.join().unwrap();
    assert_eq!(
        on_held.to_vec().unwrap(),
        old,
        "the held read saw the later write"
    );
    assert_no_drop_errors();
}

pub fn a_host_read_keeps_other_streams_pending_reads_tracked() {
    let _serial = quiet_device_lock();
    let Some(device) = quiet_device() else { return };
    let [producer, held] = [(); 2].map(|()| device.new_stream().unwrap());
    let len = 1033;
    let (old, new) = (pattern(len, 13), pattern(len, 14));
    let source = producer.upload(&old).unwrap();
    let mut host = HostBuffer::<u32>::zeroed(&device, len).unwrap();
    let mut on_held = held.alloc_zeroed::<u32>(len).unwrap();
    held.synchronize().unwrap();
    producer.memcpy_dtoh_async(&source, &mut host).unwrap();
    let gate = Gate::hold(&held);
    held.memcpy_htod_async(&host, &mut on_held).unwrap();
    // The host read waits for the producer's write only; the held upload still reads.
    assert_eq!(host.as_slice().unwrap(), &old[..]);
    let opener = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        gate.release();
    });
    host.as_mut_slice().unwrap().copy_from_slice(&new);
    opener.join().unwrap();
    assert_eq!(
        on_held.to_vec().unwrap(),
        old,
        "the host wrote under a pending upload"
    );
    assert_no_drop_errors();
}
