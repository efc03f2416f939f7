//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz targets'
//! bodies, so every input a fuzzer once found interesting stays a regression test of an
//! ordinary `cargo test`. Fuzzing itself: see `fuzz/README.md`.

#[path = "../fuzz/bodies.rs"]
mod bodies;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Held by the tests that fill most of the 256 MiB device on purpose, so they take turns.
static FILLING: Mutex<()> = Mutex::new(());

#[test]
fn every_corpus_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, body) in bodies::TARGETS {
        let dir = root.join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "no corpus for {target}");
        for input in inputs {
            let data = std::fs::read(&input).expect("a corpus file");
            let result = std::panic::catch_unwind(|| body(&data));
            assert!(result.is_ok(), "{target} fails on {}", input.display());
        }
    }
}

/// The op_validation input that once took the process past 4 GB of RSS (`fuzz/corpus/
/// op_validation/dispatch_beyond_device_memory`): a padded dispatch whose `experts × capacity ×
/// hidden` output exceeds the device's memory is refused by the allocation, as an NPU refuses
/// it, with a typed error at the call naming the rule (`malloc.within-device-memory`); the
/// device keeps working.
#[test]
fn an_output_beyond_device_memory_is_a_typed_allocation_error() {
    use ascend_npu::Error;
    use ascend_npu::ops::moe::{self, MoeShape};
    let (stream, _) = bodies::device();
    let x = stream.upload(&[1f32; 2 * 2048]).unwrap();
    let ids = stream.upload(&[0i32; 2]).unwrap();
    // 64 experts × 1024 rows × 2048 f32 = 512 MiB, twice the fuzzing machine's device memory.
    let shape = MoeShape {
        tokens: 2,
        hidden: 2048,
        top_k: 1,
        experts: 64,
    };
    match moe::dispatch_padded(stream, shape, 1024, &x, &ids) {
        Err(e @ Error::Acl { .. }) => {
            assert_eq!(
                e.acl_code().and_then(|c| c.name()),
                Some("ACL_ERROR_RT_MEMORY_ALLOCATION"),
                "{e}"
            );
            // The simulator (which `bodies::device` selects) names the rule it broke.
            assert!(
                e.to_string().contains("[malloc.within-device-memory]"),
                "{e}"
            );
        }
        Err(other) => panic!("expected an allocation error, got {other}"),
        Ok(_) => panic!("a {} byte output was allocated", 512u64 << 20),
    }
    stream.synchronize().unwrap();
    assert_eq!(stream.upload(&[5u8]).unwrap().to_vec().unwrap(), [5]);
}

/// The op_validation finding of 2026-12-02 (`fuzz/corpus/op_validation/pool_full_of_idle_blocks`
/// is the input that failed, after ~84,000 others): inputs of ever-new sizes left one idle pool
/// block per size class on the stream, until the 256 MiB device had no room for a plain upload.
/// An allocation that finds the device full now takes the stream's idle blocks back first.
#[test]
fn idle_pool_blocks_are_given_back_when_the_device_is_full() {
    let _filling = FILLING.lock().unwrap_or_else(|p| p.into_inner());
    let (stream, _) = bodies::device();
    let stream = stream.device().new_stream().unwrap();
    // 150 idle blocks of distinct sizes, 1 MiB + i·512 bytes each: about 150 MiB cached.
    let blocks: Vec<_> = (0..150)
        .map(|i| stream.alloc_pooled::<u8>((1 << 20) + i * 512).unwrap())
        .collect();
    drop(blocks);
    stream.synchronize().unwrap();
    assert!(stream.pooled_bytes() >= 150 << 20);
    // 160 MiB fits only once the pool has given its blocks back (256 MiB device).
    let big = stream
        .alloc_zeroed::<u8>(160 << 20)
        .expect("the pool gives way");
    assert_eq!(stream.pooled_bytes(), 0);
    drop(big);
    stream.synchronize().unwrap();
}

/// Other streams' pools give way too (issue 10's review): an allocation that finds the device
/// full takes back the idle blocks of the device's other streams, but only from a stream whose
/// queued work has all completed, since that work may still use blocks already back in its
/// pool. The busy stream here is held by a host function that waits for a gate.
#[test]
fn idle_pool_blocks_of_other_streams_are_given_back_when_the_device_is_full() {
    let _filling = FILLING.lock().unwrap_or_else(|p| p.into_inner());
    let (stream, _) = bodies::device();
    let device = stream.device();
    let (owner, asker) = (device.new_stream().unwrap(), device.new_stream().unwrap());
    // 150 idle blocks of distinct sizes on the owner's pool: about 150 MiB of 256 MiB.
    let blocks: Vec<_> = (0..150)
        .map(|i| owner.alloc_pooled::<u8>((1 << 20) + i * 512).unwrap())
        .collect();
    drop(blocks);
    owner.synchronize().unwrap();
    let cached = owner.pooled_bytes();
    assert!(cached >= 150 << 20, "{cached}");

    let gate = Gate::hold(&owner);
    assert!(!owner.is_idle().unwrap());
    let e = asker
        .alloc_zeroed::<u8>(160 << 20)
        .expect_err("a busy stream's blocks must stay");
    assert_eq!(
        e.acl_code().and_then(|c| c.name()),
        Some("ACL_ERROR_RT_MEMORY_ALLOCATION"),
        "{e}"
    );
    assert_eq!(owner.pooled_bytes(), cached);

    drop(gate);
    owner.synchronize().unwrap();
    let big = asker
        .alloc_zeroed::<u8>(160 << 20)
        .expect("the idle stream's pool gives way");
    assert_eq!(owner.pooled_bytes(), 0);
    // The owner still allocates (its pool starts again from the device).
    drop(owner.alloc_pooled::<u8>(4096).unwrap());
    drop(big);
    asker.synchronize().unwrap();
}

/// Keeps a stream busy until dropped: a host function on it spins until the gate opens.
struct Gate;

static GATE_OPEN: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn wait_for_gate(_: *mut std::ffi::c_void) {
    while !GATE_OPEN.load(Ordering::Acquire) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

impl Gate {
    fn hold(stream: &ascend_npu::Stream) -> Gate {
        GATE_OPEN.store(false, Ordering::Release);
        let launch = ascend_npu::raw_api()
            .unwrap()
            .aclrtLaunchHostFunc()
            .unwrap();
        // SAFETY: a live stream; the function takes no data and only reads a static.
        let rc = unsafe { launch(stream.as_raw(), Some(wait_for_gate), std::ptr::null_mut()) };
        assert_eq!(rc, 0, "aclrtLaunchHostFunc");
        Gate
    }
}

impl Drop for Gate {
    /// Opens the gate, also when the test fails while it is held (else the stream's drop
    /// would wait for the host function forever).
    fn drop(&mut self) {
        GATE_OPEN.store(true, Ordering::Release);
    }
}
