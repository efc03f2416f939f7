//! Property tests of the operators' validation layers: any input (random shapes, lengths,
//! group offsets, values with NaN/Inf) is either rejected with an error — at the call, or at
//! the stream's synchronisation for values in device memory — or gives the f64 reference's
//! result. Small sizes and a few dozen cases each, so the suite stays fast. Instantiated by
//! `validation_props_sim.rs` and its hardware twin `validation_props_hardware.rs`.

use ascend_npu::fp8::{F8E4M3, QuantError, ScaleFormat, quantize_act, quantize_weight};
use ascend_npu::kernels::Kernels;
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use ascend_npu::ops::moe::{self, CombineInputs, MoeShape};
use ascend_npu::{Device, Error, Stream};
use half::bf16;
use proptest::prelude::*;
use std::sync::OnceLock;

/// The kernels on device 0 of the backend the suite selected, shared; each test has its own
/// stream, because a status report (bad input the device found) goes to whichever caller
/// synchronises the stream first.
fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| Kernels::load(&Device::open(0).unwrap()).unwrap())
}

thread_local! {
    // Never dropped: destroying it from a thread-local destructor would call the runtime while
    // the thread's own thread-locals (its current context) are being torn down.
    static STREAM: std::mem::ManuallyDrop<Stream> =
        std::mem::ManuallyDrop::new(kernels().device().new_stream().unwrap());
}

/// This test thread's stream.
fn stream() -> Stream {
    STREAM.with(|s| Stream::clone(s))
}

/// A length near `len`: usually exact, sometimes off by a little (the validation must notice).
fn near(len: usize, delta: i8) -> usize {
    len.saturating_add_signed(delta as isize)
}

/// Values in [-2, 2] from a seed, with an occasional NaN or ±Inf when `poison` says where.
fn values(len: usize, seed: u64, poison: Option<(usize, f32)>) -> Vec<f32> {
    let mut s = seed | 1;
    let mut v: Vec<f32> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    if let Some((at, bad)) = poison {
        if !v.is_empty() {
            let n = v.len();
            v[at % n] = bad;
        }
    }
    v
}

fn poison() -> impl Strategy<Value = Option<(usize, f32)>> {
    prop_oneof![
        4 => Just(None),
        1 => (any::<usize>(), prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)])
            .prop_map(Some),
    ]
}

/// Group boundaries for `groups` groups over `m` rows: sorted, from 0 to m; with `bad`, one
/// entry replaced by an arbitrary value (which may still happen to be valid).
fn offsets(m: usize, groups: usize, seed: u64, bad: Option<(usize, i32)>) -> Vec<i32> {
    let mut o: Vec<i32> = values(groups + 1, seed, None)
        .iter()
        .map(|v| ((v + 2.0) / 4.0 * m as f32) as i32)
        .collect();
    o.sort_unstable();
    o[0] = 0;
    o[groups] = m as i32;
    if let Some((at, value)) = bad {
        o[at % (groups + 1)] = value;
    }
    o
}

fn offsets_valid(o: &[i32], m: usize) -> bool {
    o.iter().all(|&v| v >= 0 && v as usize <= m) && o.windows(2).all(|w| w[0] <= w[1])
}

/// A few dozen cases each, so the suite stays fast; no failure files (the seeds are printed).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// FP8 GEMM (W8A16 and W8A8; plain, contiguous, cumulative and masked groups) against an
/// f64 GEMM of the dequantized operands. Tolerance: each 128-long K block is an fp32 sum of
/// exact products (≤ 128 roundings), then scaled twice and accumulated (≤ K/128 + 3 more),
/// each at most 2^-24 relative of Σ|a·b·sa·sb|; plus 2 for the reference's operands, which
/// `BlockQuantized::dequantize` rounds to f32 once each (code·scale).
pub fn fp8_gemm_rejects_or_matches_f64() {
    proptest!(config(), |(
        m in 0usize..12, n in 1usize..136, k in prop_oneof![1usize..260, Just(0usize)],
        groups in 1usize..4, layout in 0u8..4, w8a8 in any::<bool>(),
        a_delta in prop_oneof![4 => Just(0i8), 1 => -2i8..3], c_delta in prop_oneof![4 => Just(0i8), 1 => -2i8..3],
        info_delta in prop_oneof![4 => Just(0i8), 1 => -1i8..2],
        bad in prop_oneof![3 => Just(None), 1 => (any::<usize>(), -3i32..20).prop_map(Some)],
        seed in any::<u64>(),
    )| {
        let (stream, kernels) = (&stream(), kernels());
        let weights_ok = k > 0;
        let w_host = values(groups * n * k.max(1), seed, None);
        let w = if weights_ok {
            let q: Vec<_> = (0..groups)
                .map(|g| quantize_weight(&w_host[g * n * k..(g + 1) * n * k], n, k, ScaleFormat::Fp32).unwrap())
                .collect();
            let codes: Vec<F8E4M3> = q.iter().flat_map(|q| q.codes().to_vec()).collect();
            let scales: Vec<f32> = q.iter().flat_map(|q| q.scales().to_vec()).collect();
            let w = Fp8Weight::upload(stream, groups, n, k, &codes, &scales).unwrap();
            let dq: Vec<f64> = q.iter().flat_map(|q| q.dequantize().into_iter().map(f64::from)).collect();
            Some((w, dq))
        } else {
            prop_assert!(Fp8Weight::upload(stream, groups, n, k, &[], &[]).is_err());
            None
        };
        let Some((w, w_dq)) = w else { return Ok(()) };
        let a_rows = if layout == 3 { groups * m } else { m };
        let a_len = near(a_rows * k, a_delta);
        let a_f32 = values(a_len, seed ^ 7, None);
        let a_bf16: Vec<bf16> = a_f32.iter().map(|&v| bf16::from_f32(v)).collect();
        let a_dev = stream.upload(&a_bf16).unwrap();
        let a_vals: Vec<f32> = a_bf16.iter().map(|v| v.to_f32()).collect();
        // W8A8 quantizes the bf16 values on the host (when they form whole rows).
        let q_act = (w8a8 && a_len == a_rows * k && a_rows > 0)
            .then(|| quantize_act(&a_vals, a_rows, k, ScaleFormat::Fp32).unwrap());
        let q_dev = q_act.as_ref().map(|q| Fp8Activations::from_quantized(stream, q).unwrap());
        let a_ref: Vec<f64> = match &q_act {
            Some(q) => q.dequantize().into_iter().map(f64::from).collect(),
            None => a_vals.iter().map(|&v| f64::from(v)).collect(),
        };
        let o = offsets(m, groups, seed ^ 11, bad);
        let counts: Vec<i32> = (0..groups).map(|g| (o[g + 1] - o[g]).max(-1)).collect();
        let info_host: Vec<i32> = match layout {
            1 => o.clone(),
            2 => o[1..].to_vec(),
            3 => counts.clone(),
            _ => vec![],
        };
        let info_len = near(info_host.len(), info_delta);
        let mut info_vals = info_host.clone();
        info_vals.resize(info_len, 0);
        let info = stream.upload(&info_vals).unwrap();
        let group_arg = match layout {
            0 => Fp8Groups::None,
            1 => Fp8Groups::Contiguous { offsets: info.as_view() },
            2 => Fp8Groups::ContiguousCumsum { cumsum: info.as_view() },
            _ => Fp8Groups::Masked { counts: info.as_view() },
        };
        let c_len = near(a_rows * n, c_delta);
        let mut c = stream.alloc_zeroed::<f32>(c_len).unwrap();
        let input = match &q_dev {
            Some(q) => Fp8Input::Fp8(q),
            None => Fp8Input::Bf16(a_dev.as_view()),
        };
        let queued = fp8_gemm(kernels, stream, m, input, &w, group_arg, &mut c);
        let synced = stream.synchronize();
        let shapes_ok = a_len == a_rows * k
            && c_len == a_rows * n
            && (layout == 0 || info_len == info_host.len()) // no group data without groups
            && (layout != 0 || groups == 1);
        if !shapes_ok {
            prop_assert!(queued.is_err(), "a wrong shape was accepted");
            prop_assert!(synced.is_ok());
            return Ok(());
        }
        queued.map_err(|e| TestCaseError::fail(format!("rejected good shapes: {e}")))?;
        // What the kernel checks: the offsets as passed (the cumulative form has no leading 0).
        // With no rows nothing is launched, so nothing reads (or checks) them.
        if (layout == 1 || layout == 2) && m > 0 && !offsets_valid(&info_host, m) {
            prop_assert!(matches!(synced, Err(Error::InvalidArgument { .. })), "bad offsets {o:?} passed: {synced:?}");
            return Ok(());
        }
        prop_assert!(synced.is_ok(), "{synced:?}");
        let got = c.to_vec().unwrap();
        // The f64 reference: group of each row (None = not written).
        for r in 0..a_rows {
            let g = match layout {
                0 => Some(0),
                3 => {
                    let (g, i) = (r / m, r % m);
                    (i < counts[g].clamp(0, m as i32) as usize).then_some(g)
                }
                _ => {
                    let start = |g: usize| if layout == 2 && g == 0 { 0 } else { o[g] as usize };
                    (0..groups).find(|&g| r >= start(g) && r < o[g + 1] as usize)
                }
            };
            for j in 0..n {
                let out = f64::from(got[r * n + j]);
                let Some(g) = g else {
                    prop_assert_eq!(out, 0.0);
                    continue;
                };
                let (mut want, mut mag) = (0.0, 0.0);
                for kk in 0..k {
                    let p = a_ref[r * k + kk] * w_dq[(g * n + j) * k + kk];
                    want += p;
                    mag += p.abs();
                }
                let tol = (k.min(128) + k.div_ceil(128) + 5) as f64 * 2f64.powi(-24) * mag + 1e-30;
                prop_assert!((out - want).abs() <= tol, "C[{r},{j}] = {out}, f64 {want} ± {tol}");
            }
        }
    });
}

/// Device activation and weight quantization: rejected (shape at the call, NaN/Inf with the
/// host's `NonFinite` at synchronisation) or bit-equal to the host quantizer, which
/// `tests/fp8_numerics.rs` checks against f64.
pub fn device_quantize_rejects_or_matches_host() {
    proptest!(config(), |(
        rows in 0usize..6, k in 0usize..300, delta in prop_oneof![4 => Just(0i8), 1 => -2i8..3],
        weight in any::<bool>(), ue8m0 in any::<bool>(), poison in poison(), seed in any::<u64>(),
    )| {
        let (stream, kernels) = (&stream(), kernels());
        let format = if ue8m0 { ScaleFormat::Ue8m0 } else { ScaleFormat::Fp32 };
        let x = values(near(rows * k, delta), seed, poison);
        let dx = stream.upload(&x).unwrap();
        let host = if weight {
            quantize_weight(&x, rows, k, format)
        } else {
            quantize_act(&x, rows, k, format)
        };
        let device = || -> Result<(Vec<F8E4M3>, Vec<f32>), Error> {
            if weight {
                let q = Fp8Weight::quantize(kernels, stream, rows, k, format, &dx)?;
                Ok((q.codes().to_vec()?, q.scales().to_vec()?))
            } else {
                let q = Fp8Activations::quantize(kernels, stream, rows, k, format, &dx)?;
                Ok((q.codes().to_vec()?, q.scales().to_vec()?))
            }
        };
        let device = device();
        match host {
            Err(QuantError::NonFinite { .. }) => prop_assert!(
                matches!(device, Err(Error::Quant(QuantError::NonFinite { .. }))),
                "NaN/Inf must give NonFinite: {device:?}"
            ),
            Err(_) => prop_assert!(device.is_err()),
            // Empty input: the device refuses an empty weight and quantizes nothing for
            // activations; either is fine.
            Ok(_) if rows == 0 || k == 0 => {}
            Ok(q) => {
                let (codes, scales) = device.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&codes[..], q.codes());
                prop_assert_eq!(&scales[..], q.scales());
            }
        }
        stream.synchronize().unwrap();
    });
}

/// MoE combine: wrong lengths and overflowing sizes are errors; otherwise
/// `out[t] = Σ_k w[t,k] · y[idx[t·K+k]]` within fp32 summation error.
pub fn combine_rejects_or_matches_f64() {
    proptest!(config(), |(
        tokens in prop_oneof![0usize..6, Just(usize::MAX / 3)], top_k in 1usize..4, hidden in 1usize..40,
        deltas in (prop_oneof![4 => Just(0i8), 1 => -1i8..2], prop_oneof![4 => Just(0i8), 1 => -1i8..2]),
        seed in any::<u64>(),
    )| {
        let stream = &stream();
        let small = tokens < 1000;
        let pairs = if small { tokens * top_k } else { 4 };
        let y_host = values(near(pairs * hidden, deltas.0), seed, None);
        let w_host = values(near(pairs, deltas.1), seed ^ 3, None);
        let mut perm: Vec<i32> = (0..pairs as i32).collect();
        perm.rotate_left(if pairs > 0 { seed as usize % pairs } else { 0 });
        let y = stream.upload(&y_host).unwrap();
        let w = stream.upload(&w_host).unwrap();
        let idx = stream.upload(&perm).unwrap();
        let mut out = stream.alloc_zeroed::<f32>(if small { tokens * hidden } else { 4 }).unwrap();
        let r = moe::combine(stream, MoeShape { tokens, hidden, top_k, experts: top_k }, CombineInputs { y: y.as_view(), expanded_row_idx: idx.as_view(), weights: w.as_view(), shared: None }, &mut out);
        if !small || deltas != (0, 0) {
            prop_assert!(r.is_err() || tokens == 0, "accepted bad sizes");
            return Ok(());
        }
        r.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = out.to_vec().unwrap();
        for t in 0..tokens {
            for h in 0..hidden {
                let (mut want, mut mag) = (0.0f64, 0.0f64);
                for kk in 0..top_k {
                    let p = f64::from(w_host[t * top_k + kk]) * f64::from(y_host[perm[t * top_k + kk] as usize * hidden + h]);
                    want += p;
                    mag += p.abs();
                }
                let tol = (top_k + 1) as f64 * 2f64.powi(-24) * mag + 1e-30;
                prop_assert!((f64::from(got[t * hidden + h]) - want).abs() <= tol);
            }
        }
    });
}
