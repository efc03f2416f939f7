//! The cases of `kernels_sim.rs` and of its hardware twins `kernels_hardware.rs`.

use ascend_npu::kernels::{Kernels, MatmulInput, MatmulOutput, MatmulShape, WeightLayout};
use ascend_npu::sys;
use std::path::{Path, PathBuf};

use super::Rng;
use ascend_kernel_build::manifest::{KernelDecl, KernelKind, ParamType};
use ascend_kernel_build::{SimKernels, SimLibrary, cpp_files};
use ascend_npu::{AclCode, Device, Error, KernelArg, KernelBinary, Param, Stream};
use half::{bf16, f16};

/// Device 1 is reserved for the counter test, which needs nobody else's work on it.
fn setup() -> (Device, Stream, Kernels) {
    super::backend::select();
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let kernels = Kernels::load(&device).unwrap();
    (device, stream, kernels)
}

fn silu_mul(gate: f64, up: f64) -> f64 {
    gate / (1.0 + (-gate).exp()) * up
}

/// Element conversions for the generic tests.
trait Elem: bytemuck::Pod + std::fmt::Debug {
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// Half an ulp, relative: the rounding of one result to this type.
    const HALF_ULP: f64;
    /// The smallest subnormal: the absolute rounding error near zero.
    const TINY: f64;
}
impl Elem for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self.into()
    }
    const HALF_ULP: f64 = 0.0; // f32 output is the computation's own result, bounded below
    const TINY: f64 = 1.401_298_464_324_817e-45;
}
impl Elem for f16 {
    fn from_f64(x: f64) -> Self {
        f16::from_f64(x)
    }
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    const HALF_ULP: f64 = 4.8828125e-4; // 2^-11
    const TINY: f64 = 5.960_464_477_539_063e-8; // 2^-24
}
impl Elem for bf16 {
    fn from_f64(x: f64) -> Self {
        bf16::from_f64(x)
    }
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
    const HALF_ULP: f64 = 3.90625e-3; // 2^-8
    const TINY: f64 = 9.183_549_615_799_121e-41; // 2^-133
}

/// fp32 unit roundoff.
const U32: f64 = 5.960_464_477_539_063e-8; // 2^-24

fn check_swiglu<T: Elem + ascend_npu::kernels::SwigluElement>(
    stream: &Stream,
    kernels: &Kernels,
    len: usize,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let gate: Vec<T> = (0..len)
        .map(|_| T::from_f64(f64::from(rng.f32()) * 8.0))
        .collect();
    let up: Vec<T> = (0..len)
        .map(|_| T::from_f64(f64::from(rng.f32()) * 8.0))
        .collect();
    let g = stream.upload(&gate).unwrap();
    let u = stream.upload(&up).unwrap();
    let mut out = stream.alloc_uninit::<T>(len).unwrap();
    ascend_npu::kernels::swiglu(kernels, stream, &g, &u, &mut out).unwrap();
    let got = out.to_vec().unwrap();
    for i in 0..len {
        let want = silu_mul(gate[i].to_f64(), up[i].to_f64());
        // The kernel computes in fp32: exp, add, divide, multiply, each within about one fp32
        // rounding (exp's error is damped by the division), so 8 fp32 ulps of the result; then
        // one rounding to T, plus T's smallest subnormal near zero.
        let tol = (8.0 * U32 + T::HALF_ULP) * want.abs() + T::TINY;
        let err = (got[i].to_f64() - want).abs();
        assert!(
            err <= tol,
            "len {len} [{i}]: gate {:?} up {:?}: got {:?}, want {want} (err {err:e} > {tol:e})",
            gate[i],
            up[i],
            got[i]
        );
    }
}

pub fn swiglu_matches_the_f64_reference_in_every_type() {
    let (_device, stream, kernels) = setup();
    for (i, len) in [1usize, 7, 31, 64, 65, 1000, 4097, 70_001]
        .into_iter()
        .enumerate()
    {
        check_swiglu::<f32>(&stream, &kernels, len, 10 + i as u64);
        check_swiglu::<f16>(&stream, &kernels, len, 20 + i as u64);
        check_swiglu::<bf16>(&stream, &kernels, len, 30 + i as u64);
    }
}

pub fn swiglu_propagates_nan_and_handles_extremes() {
    let (_device, stream, kernels) = setup();
    let gate = [f32::NAN, 0.0, -0.0, 88.0, -88.0, 1e-30, f32::INFINITY, 3.0];
    let up = [1.0, 5.0, 5.0, 2.0, 2.0, 1e30, 1.0, f32::NAN];
    let g = stream.upload(&gate).unwrap();
    let u = stream.upload(&up).unwrap();
    let mut out = stream.alloc_uninit::<f32>(gate.len()).unwrap();
    ascend_npu::kernels::swiglu(&kernels, &stream, &g, &u, &mut out).unwrap();
    let got = out.to_vec().unwrap();
    assert!(got[0].is_nan() && got[7].is_nan(), "{got:?}");
    assert_eq!(got[1], 0.0);
    assert!(
        (f64::from(got[3]) - 176.0).abs() <= 176.0 * 8.0 * U32,
        "{}",
        got[3]
    );
    assert!(
        got[4].abs() < 1e-30,
        "silu(-88)·2 underflows towards 0: {}",
        got[4]
    );
    assert!((f64::from(got[5]) - silu_mul(1e-30f32.into(), 1e30f32.into())).abs() < 1e-6);
    assert_eq!(got[6], f32::INFINITY);
}

pub fn swiglu_of_nothing_launches_nothing_and_mismatches_are_errors() {
    let (_device, stream, kernels) = setup();
    let empty = stream.upload::<f32>(&[]).unwrap();
    let mut out = stream.alloc_zeroed::<f32>(0).unwrap();
    ascend_npu::kernels::swiglu(&kernels, &stream, &empty, &empty, &mut out).unwrap();
    let a = stream.upload(&[1.0f32; 4]).unwrap();
    let mut short = stream.alloc_zeroed::<f32>(3).unwrap();
    let err = ascend_npu::kernels::swiglu(&kernels, &stream, &a, &a, &mut short).unwrap_err();
    assert!(err.to_string().contains("out 3 elements"), "{err}");
}

fn check_matmul<I: Elem + MatmulInput, O: Elem + MatmulOutput>(
    stream: &Stream,
    kernels: &Kernels,
    shape: MatmulShape,
    layout: WeightLayout,
    seed: u64,
) {
    let MatmulShape { m, n, k } = shape;
    let mut rng = Rng::new(seed);
    let a: Vec<I> = (0..m * k).map(|_| I::from_f64(rng.f32().into())).collect();
    let b: Vec<I> = (0..k * n).map(|_| I::from_f64(rng.f32().into())).collect();
    let b_at = |kk: usize, j: usize| match layout {
        WeightLayout::KN => b[kk * n + j].to_f64(),
        WeightLayout::NK => b[j * k + kk].to_f64(),
    };
    let da = stream.upload(&a).unwrap();
    let db = stream.upload(&b).unwrap();
    let mut dc = stream.alloc_uninit::<O>(m * n).unwrap();
    ascend_npu::kernels::matmul(kernels, stream, shape, layout, &da, &db, &mut dc).unwrap();
    let got = dc.to_vec().unwrap();
    for i in 0..m {
        for j in 0..n {
            let (mut want, mut magnitude) = (0.0f64, 0.0f64);
            for kk in 0..k {
                let p = a[i * k + kk].to_f64() * b_at(kk, j);
                want += p;
                magnitude += p.abs();
            }
            // fp16/bf16 products are exact in fp32; a K-term fp32 sum in any order is within
            // K·u·Σ|a·b| (u = 2^-24); then one rounding of the result to the output type.
            let tol = k as f64 * U32 * magnitude
                + O::HALF_ULP * (want.abs() + k as f64 * U32 * magnitude)
                + O::TINY;
            let err = (got[i * n + j].to_f64() - want).abs();
            assert!(
                err <= tol,
                "{shape:?} {layout:?} C[{i},{j}] = {:?}, want {want} (err {err:e} > {tol:e})",
                got[i * n + j]
            );
        }
    }
}

pub fn matmul_matches_the_f64_reference_for_every_type_and_layout() {
    let (_device, stream, kernels) = setup();
    let shapes = [
        (1, 1, 1),
        (17, 33, 65),
        (5, 300, 7),
        (130, 250, 300),
        (64, 1, 200),
        (1, 129, 257),
        // The last M tile has one row: it must be padded, not run in GEMV mode.
        (129, 20, 40),
    ];
    for (s, &(m, n, k)) in shapes.iter().enumerate() {
        let shape = MatmulShape { m, n, k };
        for layout in [WeightLayout::KN, WeightLayout::NK] {
            let seed = 100 + s as u64;
            check_matmul::<f16, f32>(&stream, &kernels, shape, layout, seed);
            check_matmul::<bf16, f32>(&stream, &kernels, shape, layout, seed + 1);
            check_matmul::<f16, bf16>(&stream, &kernels, shape, layout, seed + 2);
            check_matmul::<bf16, bf16>(&stream, &kernels, shape, layout, seed + 3);
        }
    }
}

pub fn matmul_rejects_bad_shapes_and_zeroes_c_when_k_is_zero() {
    let (_device, stream, kernels) = setup();
    let a = stream.upload(&[f16::ONE; 6]).unwrap();
    let mut c = stream.upload(&[1.0f32; 4]).unwrap();
    let err = ascend_npu::kernels::matmul(
        &kernels,
        &stream,
        MatmulShape { m: 2, n: 2, k: 2 },
        WeightLayout::KN,
        &a,
        &a,
        &mut c,
    )
    .unwrap_err();
    assert!(err.to_string().contains("A of 6 elements"), "{err}");
    let empty = stream.upload::<f16>(&[]).unwrap();
    ascend_npu::kernels::matmul(
        &kernels,
        &stream,
        MatmulShape { m: 2, n: 2, k: 0 },
        WeightLayout::KN,
        &empty,
        &empty,
        &mut c,
    )
    .unwrap();
    assert_eq!(c.to_vec().unwrap(), [0.0; 4]);
    let big = MatmulShape {
        m: 1,
        n: 1,
        k: 70_000,
    };
    let err = ascend_npu::kernels::MatmulTiling::plan(big, WeightLayout::NK, 24).unwrap_err();
    assert!(err.to_string().contains("K <= 65535"), "{err}");
}

/// Each deliberately broken kernel breaks one rule of the chip; the launch fails with the
/// kernel, the block and the rule in the stream's error, and the stream stays usable.
pub fn every_broken_kernel_is_caught_with_its_rule() {
    let (device, stream, _kernels) = setup();
    // Broken kernels are built for tests only: the crate's own library does not have them.
    let builtin = KernelBinary::builtin(&device).unwrap();
    assert!(
        builtin
            .kernel("broken_ub_capacity", &[Param::Ptr, Param::Ptr])
            .is_err()
    );
    let library = build_test_kernels(
        "broken_kernels",
        cpp_files(kernels_dir().join("broken")).unwrap(),
    );
    let binary = KernelBinary::load(&device, &library.path).unwrap();
    let cases = [
        (
            "broken_ub_capacity",
            "[capacity]",
            "UB, which has 196608 bytes",
        ),
        (
            "broken_l0c_capacity",
            "[capacity]",
            "L0C, which has 131072 bytes",
        ),
        ("broken_misaligned", "[align]", "not 32-byte aligned"),
        ("broken_copy_len", "[datacopy-len]", "40 bytes"),
        ("broken_uninit_read", "[uninit-read]", "Add reads src0"),
        ("broken_gm_oob", "[gm-oob]", "[192, 320)"),
        (
            "broken_gm_outside_launch",
            "[gm-oob]",
            "not inside one buffer",
        ),
        ("broken_mmad_uninit", "[uninit-read]", "Mmad reads A (fm)"),
        (
            "broken_fixpipe_uninit",
            "[uninit-read]",
            "Fixpipe(L0C->GM) reads src: L0C bytes [512, 576)",
        ),
        ("broken_gemv_mode", "[gemv-mode]", "plain 1 x 32 row"),
        (
            "broken_mmad_size",
            "[cube-params]",
            "m 4096, n 16, k 16 must each be in [0,4095]",
        ),
        ("broken_deque_empty", "[deque-empty]", "DeQue without EnQue"),
        ("broken_alloc_exhausted", "[alloc-exhausted]", "2 buffer(s)"),
        ("broken_enque_depth", "[enque-depth]", "depth 1"),
        ("broken_tensor_leak", "[tensor-leak]", "still enqueued"),
        ("broken_use_after_free", "[use-after-free]", "Duplicate"),
        (
            "broken_wait_unset",
            "[flag-wait-unset]",
            "WaitFlag<MTE2_V>(0)",
        ),
        (
            "broken_flag_left_set",
            "[flag-left-set]",
            "SetFlag<V_MTE3>(1)",
        ),
        ("broken_flag_double_set", "[flag-double-set]", "MTE2_V"),
        ("broken_barrier_s", "[pipe-barrier]", "PIPE_S"),
        (
            "broken_cast_mode",
            "[cast-mode]",
            "float -> bfloat16 does not support CAST_NONE",
        ),
        ("broken_position", "[position]", "an AIC core"),
        ("broken_overlap", "[overlap]", "partially overlaps"),
        (
            "broken_kernel_type",
            "[kernel-type]",
            "KERNEL_TASK_TYPE_DEFAULT",
        ),
        (
            "broken_crosscore_deadlock",
            "[crosscore-deadlock]",
            "CrossCoreWaitFlag(3)",
        ),
        (
            "broken_crosscore_left_set",
            "[crosscore-left-set]",
            "flag 4 has 1 set(s) from the AIC",
        ),
        (
            "broken_crosscore_id",
            "[flag-id]",
            "cross-core flag ids are 0..15",
        ),
        (
            "broken_event_pool",
            "[event-pool]",
            "AllocEventID<V_MTE3>: no free id",
        ),
        (
            "broken_crosscore_not_mix",
            "[crosscore-mode]",
            "not KERNEL_TYPE_MIX_AIC_1_2",
        ),
    ];
    let input = stream.upload(&[1.0f32; 256]).unwrap();
    let mut output = stream.alloc_zeroed::<f32>(256).unwrap();
    for (name, rule, detail) in cases {
        let kernel = binary.kernel(name, &[Param::Ptr, Param::Ptr]).unwrap();
        for blocks in [1, 4] {
            // SAFETY: the broken kernels take (input, output) pointers; only the simulator runs
            // them, and it catches what they break.
            unsafe {
                stream.launch(
                    &kernel,
                    blocks,
                    &[
                        KernelArg::buffer(&input),
                        KernelArg::buffer_mut(&mut output),
                    ],
                )
            }
            .unwrap();
            let err = stream.synchronize().expect_err(name);
            let text = err.to_string();
            let code = err.acl_code().unwrap().0;
            assert!(
                code == sys::ACL_ERROR_RT_VECTOR_CORE_EXCEPTION
                    || code == sys::ACL_ERROR_RT_AICORE_EXCEPTION,
                "{name}: {text}"
            );
            assert!(
                text.contains(&format!("kernel '{name}' block ")),
                "{name}: {text}"
            );
            assert!(
                text.contains(rule) && text.contains(detail),
                "{name}: {text}"
            );
            // Reported once, then the stream works again.
            stream.synchronize().unwrap();
        }
    }
    assert_eq!(output.to_vec().unwrap().len(), 256);
}

pub fn launches_are_checked_before_they_reach_the_device() {
    let (device, stream, _kernels) = setup();
    let binary = KernelBinary::builtin(&device).unwrap();
    let err = binary.kernel("no_such_kernel", &[]).unwrap_err();
    assert_eq!(
        err.acl_code(),
        Some(AclCode(sys::ACL_ERROR_KERNEL_NOT_FOUND)),
        "{err}"
    );
    let swiglu = binary.kernel("swiglu_f32", &[Param::Ptr; 4]).unwrap();
    let x = stream.upload(&[1.0f32; 64]).unwrap();
    let mut y = stream.alloc_zeroed::<f32>(64).unwrap();
    let three = [
        KernelArg::buffer(&x),
        KernelArg::buffer(&x),
        KernelArg::buffer(&x),
    ];
    // SAFETY (this and the launches below): rejected before reaching the device, or run by
    // the simulator only, which catches a wrong declaration.
    let err = unsafe { stream.launch(&swiglu, 1, &three) }.unwrap_err();
    assert!(
        err.to_string()
            .contains("3 arguments for kernel swiglu_f32"),
        "{err}"
    );
    let wrong_kind = [
        KernelArg::buffer(&x),
        KernelArg::buffer(&x),
        KernelArg::u32(7),
        KernelArg::buffer(&x),
    ];
    let err = unsafe { stream.launch(&swiglu, 1, &wrong_kind) }.unwrap_err();
    assert!(
        err.to_string()
            .contains("argument 2 of kernel swiglu_f32 is a U32"),
        "{err}"
    );
    let empty = stream.upload::<f32>(&[]).unwrap();
    let with_empty = [
        KernelArg::buffer(&x),
        KernelArg::buffer(&empty),
        KernelArg::buffer(&x),
        KernelArg::buffer(&x),
    ];
    assert!(matches!(
        unsafe { stream.launch(&swiglu, 1, &with_empty) },
        Err(Error::InvalidArgument { .. })
    ));
    let args = [
        KernelArg::buffer(&x),
        KernelArg::buffer(&x),
        KernelArg::buffer_mut(&mut y),
        KernelArg::u64(0),
    ];
    for blocks in [0, 65536] {
        let kernel = binary
            .kernel(
                "swiglu_f32",
                &[Param::Ptr, Param::Ptr, Param::Ptr, Param::U64],
            )
            .unwrap();
        let err = unsafe { stream.launch(&kernel, blocks, &args) }.unwrap_err();
        assert!(err.to_string().contains("1..=65535 blocks"), "{err}");
    }
    // A parameter list that disagrees with the kernel's real one is caught by the shim.
    let lying = binary.kernel("swiglu_f32", &[Param::Ptr; 3]).unwrap();
    let mut z = stream.alloc_zeroed::<f32>(64).unwrap();
    unsafe {
        stream.launch(
            &lying,
            1,
            &[
                KernelArg::buffer(&x),
                KernelArg::buffer(&x),
                KernelArg::buffer_mut(&mut z),
            ],
        )
    }
    .unwrap();
    let err = stream.synchronize().unwrap_err();
    assert!(err.to_string().contains("[args]"), "{err}");
    stream.synchronize().unwrap();
}

pub fn counters_report_the_traffic_of_a_launch() {
    setup();
    let device = Device::open(1).unwrap();
    let stream = device.new_stream().unwrap();
    let kernels = Kernels::load(&device).unwrap();
    let len = 10_000;
    let g = stream.upload(&vec![0.5f32; len]).unwrap();
    let u = stream.upload(&vec![2.0f32; len]).unwrap();
    let mut out = stream.alloc_uninit::<f32>(len).unwrap();
    stream.synchronize().unwrap();
    let Some(before) = super::backend::counters(1) else {
        return;
    };
    ascend_npu::kernels::swiglu(&kernels, &stream, &g, &u, &mut out).unwrap();
    stream.synchronize().unwrap();
    let after = super::backend::counters(1).unwrap();
    assert_eq!(after.kernel_launches - before.kernel_launches, 1);
    // Gate and up are read once and out written once, 4 bytes each, plus the 16-byte tiling
    // struct that every block reads.
    let read = after.kernels.gm_to_local_bytes - before.kernels.gm_to_local_bytes;
    let written = after.kernels.local_to_gm_bytes - before.kernels.local_to_gm_bytes;
    assert_eq!(written, 4 * len as u64);
    assert!(
        read >= 8 * len as u64 && read <= 8 * len as u64 + 16 * 48,
        "{read}"
    );
    assert!(after.kernels.vector_elem_ops > before.kernels.vector_elem_ops);
    vector_repeats_are_counted_by_the_widest_operand(&device, &stream);
    memory_written_before_it_is_read_stays_in_l2(&device, &stream);
}

/// The shim records which global memory a launch writes before it reads it (a ring, a
/// workspace): the cost model keeps that traffic in L2, apart from HBM. Memory the launch reads
/// before writing it is not such memory, and counts at HBM. Runs on `device` with nobody else's
/// work (part of [`counters_report_the_traffic_of_a_launch`]).
fn memory_written_before_it_is_read_stays_in_l2(device: &Device, stream: &Stream) {
    let library = build_test_kernels(
        "ring_trip",
        vec![kernels_dir().join("examples/ring_trip.cpp")],
    );
    let params = launch_params(&library.kernels[0]);
    let binary = KernelBinary::load(device, &library.path).unwrap();
    let kernel = binary.kernel("ring_trip", &params).unwrap();
    let n = 2056usize; // not a whole 4 KiB page of floats
    let bytes = 4 * n as u64;
    let x: Vec<f32> = (0..n).map(|i| i as f32 - 7.5).collect();
    let dx = stream.upload(&x).unwrap();
    for peek in [false, true] {
        let mut ws = stream.alloc_zeroed::<f32>(n).unwrap();
        let mut dz = stream.alloc_zeroed::<f32>(n).unwrap();
        stream.synchronize().unwrap();
        let Some(before) = super::backend::counters(device.id()) else {
            return;
        };
        // SAFETY: the parameter list is the one read from the kernel's source; x, ws and z
        // hold n floats each, as the kernel reads and writes.
        unsafe {
            stream.launch(
                &kernel,
                1,
                &[
                    KernelArg::buffer(&dx),
                    KernelArg::buffer_mut(&mut ws),
                    KernelArg::buffer_mut(&mut dz),
                    KernelArg::u32(n as u32),
                    KernelArg::u32(peek.into()),
                ],
            )
        }
        .unwrap();
        stream.synchronize().unwrap();
        let after = super::backend::counters(device.id()).unwrap();
        assert_eq!(dz.to_vec().unwrap(), x, "peek {peek}");
        let (k1, k0) = (after.kernels, before.kernels);
        let read = k1.gm_to_local_bytes - k0.gm_to_local_bytes;
        let written = k1.local_to_gm_bytes - k0.local_to_gm_bytes;
        let exchange = (
            k1.gm_exchange_read_bytes - k0.gm_exchange_read_bytes,
            k1.gm_exchange_written_bytes - k0.gm_exchange_written_bytes,
            k1.gm_exchange_footprint - k0.gm_exchange_footprint,
        );
        let l2 = after.kernel_l2_bytes - before.kernel_l2_bytes;
        let hbm = after.kernel_hbm_bytes() - before.kernel_hbm_bytes();
        if peek {
            // ws was read before it was written: its old contents matter, so it is HBM memory
            // like any input, and all of the launch's traffic counts at HBM.
            assert_eq!((read, written), (3 * bytes, 2 * bytes));
            assert_eq!(exchange, (0, 0, 0));
            assert_eq!((l2, hbm), (0, 5 * bytes));
        } else {
            // x in and z out at HBM; ws's write and read back in L2.
            assert_eq!((read, written), (2 * bytes, 2 * bytes));
            assert_eq!(exchange, (bytes, bytes, bytes));
            assert_eq!((l2, hbm), (2 * bytes, 2 * bytes));
        }
    }
}

/// The shim counts a vector call's repeats by its widest operand, 256 bytes a repeat: the cost
/// model charges vector time by them, so 16-bit work must cost half of 32-bit work. Runs on
/// `device` with nobody else's work (part of [`counters_report_the_traffic_of_a_launch`]).
fn vector_repeats_are_counted_by_the_widest_operand(device: &Device, stream: &Stream) {
    let library = build_test_kernels(
        "widen_scale",
        vec![kernels_dir().join("examples/widen_scale.cpp")],
    );
    let params = launch_params(&library.kernels[0]);
    let binary = KernelBinary::load(device, &library.path).unwrap();
    let kernel = binary.kernel("widen_scale", &params).unwrap();
    for n in [256usize, 32, 288] {
        let x: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
        let dx = stream.upload(&x).unwrap();
        let mut dz = stream.alloc_zeroed::<f32>(n).unwrap();
        stream.synchronize().unwrap();
        let Some(before) = super::backend::counters(device.id()) else {
            return;
        };
        // SAFETY: the parameter list is the one read from the kernel's source; x holds n bytes
        // and z n floats, as the kernel reads and writes.
        unsafe {
            stream.launch(
                &kernel,
                1,
                &[
                    KernelArg::buffer(&dx),
                    KernelArg::buffer_mut(&mut dz),
                    KernelArg::u32(n as u32),
                    KernelArg::f32(0.5),
                ],
            )
        }
        .unwrap();
        stream.synchronize().unwrap();
        let after = super::backend::counters(device.id()).unwrap();
        // u8 -> half and the half Muls: 128 elements a repeat; half -> float: 64. Each call
        // rounds up to whole repeats.
        let repeats = |elems: usize, width: usize| (elems * width).div_ceil(256) as u64;
        let expected = 2 * repeats(n, 2) + repeats(n, 4);
        let k = (after.kernels, before.kernels);
        assert_eq!(k.0.vector_repeats - k.1.vector_repeats, expected, "n = {n}");
        assert_eq!(
            k.0.busiest_vector_repeats - k.1.busiest_vector_repeats,
            expected,
            "one block is the busiest, n = {n}"
        );
        assert_eq!(k.0.vector_elem_ops - k.1.vector_elem_ops, 3 * n as u64);
        let z = dz.to_vec().unwrap();
        for (i, (&zi, &xi)) in z.iter().zip(&x).enumerate() {
            // Every byte is an exact half and half of it too: no rounding anywhere.
            assert_eq!(zi, f32::from(xi) * 0.5, "z[{i}]");
        }
    }
}

/// Builds test-only kernel sources (never part of the crate's kernel library) exactly as a
/// user's `build.rs` would, with ascend-kernel-build.
fn build_test_kernels(name: &str, sources: Vec<PathBuf>) -> SimLibrary {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sim-kernels")
        .join(name);
    SimKernels::new(name)
        .files(sources)
        .out_dir(&out)
        .cargo_metadata(false)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The launch parameter list of a kernel, from its manifest entry.
fn launch_params(kernel: &KernelDecl) -> Vec<Param> {
    kernel
        .params
        .iter()
        .map(|p| match p.ty {
            ParamType::Ptr => Param::Ptr,
            ParamType::U32 => Param::U32,
            ParamType::I32 => Param::I32,
            ParamType::U64 => Param::U64,
            ParamType::I64 => Param::I64,
            ParamType::F32 => Param::F32,
        })
        .collect()
}

fn kernels_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels-ascendc")
}

/// A kernel written as plain Ascend C (no project macro) builds for the simulator with the
/// build helper and launches through the public API; its manifest entry is read from the source.
pub fn a_plain_ascend_c_kernel_builds_with_the_helper_and_launches() {
    let (device, stream, _kernels) = setup();
    let library = build_test_kernels(
        "user_example",
        vec![kernels_dir().join("examples/scaled_add.cpp")],
    );
    assert_eq!(library.kernels.len(), 1);
    let decl = &library.kernels[0];
    assert_eq!(decl.name, "scaled_add");
    assert_eq!(decl.kind, KernelKind::Aiv);
    let names: Vec<&str> = decl.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["x", "y", "z", "n", "alpha"]);
    let params = launch_params(decl);
    assert_eq!(
        params,
        [Param::Ptr, Param::Ptr, Param::Ptr, Param::U32, Param::F32]
    );
    let binary = KernelBinary::load(&device, &library.path).unwrap();
    let kernel = binary.kernel("scaled_add", &params).unwrap();
    let n = 296usize;
    let alpha = -1.75f32;
    let mut rng = Rng::new(77);
    let x: Vec<f32> = rng.vec_f32(n);
    let y: Vec<f32> = rng.vec_f32(n);
    let dx = stream.upload(&x).unwrap();
    let dy = stream.upload(&y).unwrap();
    let mut dz = stream.alloc_zeroed::<f32>(n).unwrap();
    // SAFETY: the parameter list is the one ascend-kernel-build read from the kernel's source,
    // and every chunk the kernel touches lies inside the three n-element buffers.
    unsafe {
        stream.launch(
            &kernel,
            4,
            &[
                KernelArg::buffer(&dx),
                KernelArg::buffer(&dy),
                KernelArg::buffer_mut(&mut dz),
                KernelArg::u32(n as u32),
                KernelArg::f32(alpha),
            ],
        )
    }
    .unwrap();
    let z = dz.to_vec().unwrap();
    for i in 0..n {
        let (xi, ay) = (f64::from(x[i]), f64::from(alpha) * f64::from(y[i]));
        // Two f32 roundings (alpha * y, then + x), each at most 2^-24 relative.
        let tol = 2.0 * 2f64.powi(-24) * (ay.abs() + (xi + ay).abs());
        assert!(
            (f64::from(z[i]) - (xi + ay)).abs() <= tol,
            "z[{i}] = {} vs {}",
            z[i],
            xi + ay
        );
    }
}
