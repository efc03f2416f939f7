//! Bad input that only the device can see, and size products that overflow: each gets a typed
//! error (at the call, or at the stream's next synchronisation for values in device memory),
//! and the stream and device keep working afterwards. See docs/RELIABILITY.md. Instantiated by
//! `bad_input_sim.rs` and its hardware twin `bad_input_hardware.rs`.

use ascend_npu::fp8::{QuantError, ScaleFormat, quantize_act, quantize_weight};
use ascend_npu::kernels::Kernels;
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use ascend_npu::ops::moe::{self, CombineInputs, MoeShape};
use ascend_npu::{Device, DeviceBuffer, DeviceSlice, Error, Stream};
use half::bf16;

/// A stream and the kernels on device 0 of the backend the suite selected.
fn setup() -> (Stream, Kernels) {
    let device = Device::open(0).unwrap();
    (
        device.new_stream().unwrap(),
        Kernels::load(&device).unwrap(),
    )
}

fn invalid_text(e: &Error) -> String {
    match e {
        Error::InvalidArgument { what, expected } => format!("{what}; expected {expected}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// Deterministic small values, so results compare exactly between runs on one stream.
fn values(len: usize, salt: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(salt) >> 16) % 17) as f32 / 8.0 - 1.0)
        .collect()
}

/// Grouped GEMM over `m` rows with `offsets`, as `Contiguous` (`cumsum` false: `[groups + 1]`
/// from 0) or `ContiguousCumsum`; returns C after synchronising, or the synchronisation error.
fn grouped(
    stream: &Stream,
    kernels: &Kernels,
    w: &Fp8Weight,
    a: &DeviceBuffer<bf16>,
    offsets: &[i32],
    cumsum: bool,
    w8a8: Option<&Fp8Activations>,
) -> Result<Vec<f32>, Error> {
    let m = a.len() / w.k();
    let info = stream.upload(offsets).unwrap();
    let groups = if cumsum {
        Fp8Groups::ContiguousCumsum {
            cumsum: info.as_view(),
        }
    } else {
        Fp8Groups::Contiguous {
            offsets: info.as_view(),
        }
    };
    let input = match w8a8 {
        Some(q) => Fp8Input::Fp8(q),
        None => Fp8Input::Bf16(a.as_view()),
    };
    let mut c = stream.alloc_zeroed::<f32>(m * w.n()).unwrap();
    // Accepted at the call: the offsets are in device memory.
    fp8_gemm(kernels, stream, m, input, w, groups, &mut c).expect("queued");
    stream.synchronize()?;
    Ok(c.to_vec().unwrap())
}

pub fn bad_contiguous_offsets_are_reported_at_synchronisation_and_the_stream_recovers() {
    let (stream, kernels) = setup();
    let (groups, n, k, m) = (3, 40, 136, 7);
    let host_w = values(groups * n * k, 1);
    let stacked: Vec<_> = (0..groups)
        .flat_map(|g| {
            let q = quantize_weight(&host_w[g * n * k..(g + 1) * n * k], n, k, ScaleFormat::Fp32)
                .unwrap();
            [q]
        })
        .collect();
    let codes: Vec<_> = stacked.iter().flat_map(|q| q.codes().to_vec()).collect();
    let scales: Vec<_> = stacked.iter().flat_map(|q| q.scales().to_vec()).collect();
    let w = Fp8Weight::upload(&stream, groups, n, k, &codes, &scales).unwrap();
    let a_host: Vec<bf16> = values(m * k, 2).into_iter().map(bf16::from_f32).collect();
    let a = stream.upload(&a_host).unwrap();
    let a_f32: Vec<f32> = a_host.iter().map(|v| v.to_f32()).collect();
    let q = Fp8Activations::from_quantized(
        &stream,
        &quantize_act(&a_f32, m, k, ScaleFormat::Fp32).unwrap(),
    )
    .unwrap();

    for w8a8 in [None, Some(&q)] {
        let good = grouped(&stream, &kernels, &w, &a, &[0, 2, 2, 7], false, w8a8).unwrap();
        assert!(good.iter().any(|&v| v != 0.0));
        let bad: [(&[i32], bool, &str); 6] = [
            (&[0, 5, 2, 7], false, "group offset 2 at index 2"),
            (&[0, -1, 3, 7], false, "group offset -1 at index 1"),
            (&[0, 2, 3, 8], false, "group offset 8 at index 3"),
            (
                &[0, 2, i32::MAX],
                false,
                "group offset 2147483647 at index 2",
            ),
            (&[5, 2, 7], true, "group offset 2 at index 1"),
            (&[2, 3, 1000], true, "group offset 1000 at index 2"),
        ];
        for (offsets, cumsum, message) in bad {
            let offsets = if offsets.len() == groups + usize::from(!cumsum) {
                offsets.to_vec()
            } else {
                // [0, 2, MAX] has a group too few: pad with the last value.
                let mut o = offsets.to_vec();
                o.resize(groups + usize::from(!cumsum), *o.last().unwrap());
                o
            };
            let err = grouped(&stream, &kernels, &w, &a, &offsets, cumsum, w8a8)
                .expect_err(&format!("offsets {offsets:?} must be rejected"));
            let text = invalid_text(&err);
            assert!(text.contains(message), "{offsets:?}: {text}");
            assert!(text.contains("at most M = 7"), "{text}");
            // The stream, and the same launch with good offsets, still work.
            let again = grouped(&stream, &kernels, &w, &a, &[0, 2, 2, 7], false, w8a8).unwrap();
            assert_eq!(again, good, "after {offsets:?}");
            let cumsum_good = grouped(&stream, &kernels, &w, &a, &[2, 2, 7], true, w8a8).unwrap();
            assert_eq!(cumsum_good, good);
        }
    }
    // Offsets that end before M are allowed: the rows after them are not written.
    let partial = grouped(&stream, &kernels, &w, &a, &[0, 1, 1, 4], false, None).unwrap();
    assert!(partial[4 * n..].iter().all(|&v| v == 0.0));
}

pub fn device_quantization_of_non_finite_input_is_the_host_error() {
    let (stream, kernels) = setup();
    let (rows, k) = (5, 300);
    for (bad, at) in [
        (f32::NAN, (3, 257)),
        (f32::INFINITY, (0, 0)),
        (f32::NEG_INFINITY, (4, 299)),
    ] {
        let mut x = values(rows * k, 3);
        x[at.0 * k + at.1] = bad;
        let host = quantize_act(&x, rows, k, ScaleFormat::Fp32).unwrap_err();
        assert_eq!(
            host,
            QuantError::NonFinite {
                row: at.0,
                col: at.1
            }
        );
        for bf16_in in [false, true] {
            let result = if bf16_in {
                let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
                let dx = stream.upload(&xb).unwrap();
                Fp8Activations::quantize(&kernels, &stream, rows, k, ScaleFormat::Fp32, &dx)
            } else {
                let dx = stream.upload(&x).unwrap();
                Fp8Activations::quantize(&kernels, &stream, rows, k, ScaleFormat::Ue8m0, &dx)
            };
            let q = result.expect("accepted at the call: the values are on the device");
            match stream.synchronize() {
                Err(Error::Quant(e)) => assert_eq!(e, host, "bf16 {bf16_in}"),
                other => panic!("expected the host's NonFinite error, got {other:?}"),
            }
            drop(q);
        }

        // Weights: 128×128 blocks, same error kind and position.
        let (n, kw) = (130, 200);
        let mut w = values(n * kw, 4);
        let at = (at.0 * 31 % n, at.1 % kw);
        w[at.0 * kw + at.1] = bad;
        let host = quantize_weight(&w, n, kw, ScaleFormat::Fp32).unwrap_err();
        assert_eq!(
            host,
            QuantError::NonFinite {
                row: at.0,
                col: at.1
            }
        );
        let dw = stream.upload(&w).unwrap();
        let q = Fp8Weight::quantize(&kernels, &stream, n, kw, ScaleFormat::Fp32, &dw).unwrap();
        match q.codes().to_vec() {
            Err(Error::Quant(e)) => assert_eq!(e, host),
            other => panic!("a synchronous copy must report it too, got {other:?}"),
        }
    }
    // Afterwards the same stream quantizes finite input exactly like the host.
    let x = values(rows * k, 5);
    let dx = stream.upload(&x).unwrap();
    let q = Fp8Activations::quantize(&kernels, &stream, rows, k, ScaleFormat::Fp32, &dx).unwrap();
    let host = quantize_act(&x, rows, k, ScaleFormat::Fp32).unwrap();
    assert_eq!(q.codes().to_vec().unwrap(), host.codes());
    assert_eq!(q.scales().to_vec().unwrap(), host.scales());
}

pub fn an_unread_report_goes_to_the_drop_errors() {
    let (stream, kernels) = setup();
    let x = [f32::NAN; 128];
    let dx = stream.upload(&x).unwrap();
    let q = Fp8Activations::quantize(&kernels, &stream, 1, 128, ScaleFormat::Fp32, &dx).unwrap();
    // The kernels' tiling cache keeps the streams it served: the stream goes with them.
    drop((q, dx, stream, kernels));
    let (errors, _) = ascend_npu::take_drop_errors();
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, Error::Quant(QuantError::NonFinite { row: 0, col: 0 }))),
        "{errors:?}"
    );
}

pub fn size_products_that_overflow_are_errors() {
    let (stream, _kernels) = setup();
    let y = stream.alloc_zeroed::<f32>(4).unwrap();
    let idx = stream.alloc_zeroed::<i32>(4).unwrap();
    let w = stream.alloc_zeroed::<f32>(4).unwrap();
    let mut out = stream.alloc_zeroed::<f32>(4).unwrap();
    let huge = usize::MAX / 2;
    // The error text of a combine of `shape` into `out`: padded to `capacity` if given.
    let mut combine = |shape: MoeShape, capacity: Option<usize>| {
        let inputs = CombineInputs {
            y: y.as_view(),
            expanded_row_idx: idx.as_view(),
            weights: w.as_view(),
            shared: None,
        };
        let err = match capacity {
            None => moe::combine(&stream, shape, inputs, &mut out),
            Some(capacity) => moe::combine_padded(&stream, shape, capacity, inputs, &mut out),
        }
        .unwrap_err();
        invalid_text(&err)
    };
    let shape = |tokens, top_k, experts| MoeShape {
        tokens,
        hidden: 2,
        top_k,
        experts,
    };
    let err = combine(shape(huge, 3, 4), None);
    assert!(err.contains("overflows"), "{err}");
    let err = combine(shape(2, 2, huge), Some(4));
    assert!(err.contains("overflows") || err.contains("dims"), "{err}");
    let err = combine(shape(huge, 3, 2), Some(2));
    assert!(err.contains("overflows"), "{err}");
    // The stream still works.
    stream.synchronize().unwrap();
    assert_eq!(out.to_vec().unwrap(), [0.0; 4]);
}

pub fn layer_sizes_that_overflow_are_errors() {
    use ascend_npu::moe::MoeConfig;
    use ascend_npu::ops::moe::{FfnWeights, MoeLayer, MoeWeights};
    let (stream, _) = setup();
    let routing = MoeConfig {
        n_routed_experts: 32,
        n_group: 4,
        topk_group: 2,
        top_k: 4,
        ..MoeConfig::deepseek_v3()
    };
    let buffer = |len: usize| stream.alloc_zeroed::<bf16>(len).unwrap();
    let ffn = |intermediate: usize| FfnWeights::Bf16 {
        gate: buffer(8),
        up: buffer(8),
        down: buffer(8),
        intermediate,
    };
    let weights = |intermediate: usize| MoeWeights {
        router: buffer(64),
        bias: None,
        experts: ffn(intermediate),
        shared: None,
    };
    let kernels = || Kernels::load(stream.device()).unwrap();
    // experts × hidden overflows.
    let err = MoeLayer::new(routing, usize::MAX / 4, weights(1), kernels())
        .err()
        .expect("rejected");
    assert!(invalid_text(&err).contains("router weight"), "{err}");
    // stack × I × hidden overflows.
    let err = MoeLayer::new(routing, 2, weights(usize::MAX / 8), kernels())
        .err()
        .expect("rejected");
    assert!(invalid_text(&err).contains("overflows"), "{err}");
    // A consistent layer is still accepted.
    let good = MoeWeights {
        router: buffer(64),
        bias: None,
        experts: FfnWeights::Bf16 {
            gate: buffer(32 * 3 * 2),
            up: buffer(32 * 3 * 2),
            down: buffer(32 * 3 * 2),
            intermediate: 3,
        },
        shared: None,
    };
    assert!(MoeLayer::new(routing, 2, good, kernels()).is_ok());
}

/// The FP8 non-finite policy (src/fp8/mod.rs): scales must be finite when data reaches the
/// device; codes are data, so a NaN code propagates to exactly the outputs it touches.
pub fn non_finite_scales_are_rejected_and_nan_codes_propagate() {
    use ascend_npu::fp8::{BlockQuantized, F8E4M3, ScaleLayout};
    let (stream, kernels) = setup();
    let (n, k) = (2, 4);
    let codes = vec![F8E4M3::from_f32(1.0); n * k];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let err = Fp8Weight::upload(&stream, 1, n, k, &codes, &[bad])
            .err()
            .expect("rejected");
        assert!(invalid_text(&err).contains("finite scales"), "{err}");
        let q =
            BlockQuantized::from_parts(codes.clone(), vec![bad; n], n, k, ScaleLayout::Tile1x128)
                .unwrap();
        let err = Fp8Activations::from_quantized(&stream, &q)
            .err()
            .expect("rejected");
        assert!(invalid_text(&err).contains("finite scales"), "{err}");
    }
    // Weight row 1 holds a NaN code: column 1 of C is NaN, column 0 is exact.
    let mut codes = codes;
    codes[k + 2] = F8E4M3::from_bits(0x7F);
    let w = Fp8Weight::upload(&stream, 1, n, k, &codes, &[0.5]).unwrap();
    let a = stream.upload(&[bf16::ONE; 3 * 4]).unwrap();
    let mut c = stream.alloc_zeroed::<f32>(3 * n).unwrap();
    fp8_gemm(
        &kernels,
        &stream,
        3,
        Fp8Input::Bf16(a.as_view()),
        &w,
        Fp8Groups::None,
        &mut c,
    )
    .unwrap();
    let c = c.to_vec().expect("NaN data is not an error");
    for r in 0..3 {
        assert_eq!(c[r * n], 2.0);
        assert!(c[r * n + 1].is_nan());
    }
}
