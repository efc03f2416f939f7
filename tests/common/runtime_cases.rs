//! The safe runtime API, exercised through whichever backend the suite selected.

use ascend_npu::{Device, DeviceSlice, Event, HostBuffer, take_drop_errors};
use half::{bf16, f16};

use super::Rng;

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
