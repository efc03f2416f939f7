//! Runs a few runtime calls on the simulator and prints what it did.
//!
//! `cargo run --example quickstart` (on a machine with an NPU:
//! `ASCEND_NPU_BACKEND=cann cargo run --example quickstart --no-default-features`).

use ascend_npu::{Backend, Device, Event, HostBuffer, select_backend};

fn main() -> Result<(), ascend_npu::Error> {
    // An explicit choice; the environment variable wins when set.
    let backend = match std::env::var(ascend_npu::BACKEND_VAR) {
        Ok(value) => Backend::parse(&value)?,
        Err(_) => Backend::Sim,
    };
    select_backend(backend)?;

    let device = Device::open(0)?;
    let memory = device.memory_info()?;
    println!(
        "backend {}: {} device(s); device 0 is {} with {:.1} GiB free of {:.1} GiB",
        backend.name(),
        Device::count()?,
        device.soc_name()?,
        memory.free as f64 / (1u64 << 30) as f64,
        memory.total as f64 / (1u64 << 30) as f64,
    );

    let len = 1 << 20;
    let host: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
    let pinned = HostBuffer::from_slice(&device, &host)?;
    let stream = device.new_stream()?;
    let mut a = stream.alloc_uninit::<f32>(len)?;
    let mut b = stream.alloc_zeroed::<f32>(len)?;

    let start = stream.record_event()?;
    stream.memcpy_htod_async(&pinned, &mut a)?;
    stream.memcpy_dtod(&a, &mut b)?;
    let end = stream.record_event()?;
    let back = b.to_vec()?;
    let ms = Event::elapsed_ms(&start, &end)?;

    let same = back == host;
    println!(
        "copied {} MiB host -> device -> device -> host in {ms:.3} ms of stream time: {}",
        (len * 4) >> 20,
        if same { "identical" } else { "MISMATCH" }
    );
    let (drop_errors, _) = ascend_npu::take_drop_errors();
    println!(
        "errors seen while releasing resources: {}",
        drop_errors.len()
    );
    if same { Ok(()) } else { std::process::exit(1) }
}
