//! Device memory is returned when buffers drop, and the edges of slicing behave. Instantiated by
//! `buffer_lifetime_sim.rs` and its hardware twin `buffer_lifetime_hardware.rs`, each a test in
//! its own process, so that free-memory readings are not disturbed by concurrent tests.

use ascend_npu::{Device, DeviceSlice, take_drop_errors};

pub fn dropped_buffers_return_their_memory_and_slices_split_at_the_edges() {
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    device.synchronize().unwrap();
    let free = || device.memory_info().unwrap().free;

    // Idle stream: the free happens in Drop itself.
    let before = free();
    let buffer = stream.alloc_zeroed::<u8>(3 << 20).unwrap();
    let during = free();
    assert!(
        during + (3 << 20) <= before,
        "allocation must take memory: {before} -> {during}"
    );
    stream.synchronize().unwrap(); // the zero-fill is queued work
    drop(buffer);
    assert_eq!(free(), before, "an idle stream's buffer is freed in Drop");

    // Busy stream: the free waits for the queued work, then the memory comes back.
    let mut buffer = stream.alloc_zeroed::<f32>(1 << 20).unwrap();
    buffer.copy_from_host(&vec![1.5f32; 1 << 20]).unwrap();
    let other = stream.alloc_zeroed::<f32>(1 << 20).unwrap();
    drop(buffer);
    drop(other);
    stream.synchronize().unwrap();
    device.synchronize().unwrap();
    assert_eq!(free(), before, "stream-ordered frees must complete");

    // Splitting at the full length leaves an empty right half; at 0, an empty left half.
    let mut buffer = stream.upload(&[1u32, 2, 3]).unwrap();
    assert!(!buffer.is_empty());
    {
        let (left, right) = buffer.split_at_mut(3).unwrap();
        assert_eq!((left.len(), right.len()), (3, 0));
        assert!(!left.is_empty() && right.is_empty());
    }
    {
        let (left, right) = buffer.split_at_mut(0).unwrap();
        assert_eq!((left.len(), right.len()), (0, 3));
        assert!(left.is_empty() && !right.is_empty());
    }
    assert!(buffer.split_at_mut(4).is_err());
    assert!(buffer.slice(3..).unwrap().is_empty());
    assert!(!buffer.slice(2..).unwrap().is_empty());
    let empty = stream.alloc_zeroed::<u32>(0).unwrap();
    assert!(empty.is_empty() && empty.view().is_empty());
    drop((buffer, empty));
    stream.synchronize().unwrap();
    assert_eq!(free(), before);

    let (errors, discarded) = take_drop_errors();
    assert!(errors.is_empty() && discarded == 0, "{errors:?}");
}
