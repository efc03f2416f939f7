//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), shared with the corpus replay test
//! (`tests/fuzz_corpus_sim.rs`), so `cargo test` runs every checked-in input through the same
//! code as `cargo fuzz run`. Each body takes raw bytes, derives shapes, ids, offsets, configs and
//! values from them, calls the public API and checks that it returns (an `Err` is fine) and,
//! where cheap, that an accepted result is right. A panic or abort is a finding.

#![allow(dead_code)]

use ascend_npu::fp8::{
    F8E4M3, F8E5M2, Fp8, OverflowPolicy, QuantError, ScaleFormat, decode_slice, encode_slice,
    quantize_act, quantize_weight,
};
use ascend_npu::kernels::{
    Kernels, MatmulShape, MatmulTiling, SwigluElement, SwigluTiling, WeightLayout,
};
use ascend_npu::moe::{MoeConfig, Scoring, TopKMethod};
use ascend_npu::ops::fp8::{Fp8Activations, Fp8Groups, Fp8Input, Fp8Weight, fp8_gemm};
use ascend_npu::ops::moe::{self, CombineInputs, GroupSizes, MoeLayer, MoeShape};
use ascend_npu::{Backend, Device, DeviceBuffer, Stream};
use half::{bf16, f16};
use std::sync::OnceLock;

/// Reads fuzz bytes as numbers; past the end everything is zero.
pub struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes(data)
    }
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    pub fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    pub fn f32(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    /// A size: mostly small, sometimes 0, sometimes huge (to reach overflow checks).
    pub fn size(&mut self, small: usize) -> usize {
        match self.u8() % 16 {
            0 => 0,
            1 => usize::MAX / (1 + self.u8() as usize),
            2 => 1 << (self.u8() % 64),
            3 => u32::MAX as usize + self.u8() as usize,
            _ => self.u16() as usize % (small + 1),
        }
    }
    /// A value in [-4, 4], or now and then NaN, ±Inf, a huge or a tiny number.
    pub fn value(&mut self) -> f32 {
        match self.u8() % 32 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => self.f32(),
            _ => (self.u16() as f32 / 8192.0) - 4.0,
        }
    }
    pub fn values(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.value()).collect()
    }
    pub fn layout(&mut self) -> WeightLayout {
        if self.bool() {
            WeightLayout::KN
        } else {
            WeightLayout::NK
        }
    }
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }
}

/// The simulator's device 0 with a stream and the kernels, shared by every input.
/// The simulated device's memory: small, so an input asking for a huge buffer gets
/// `ACL_ERROR_RT_MEMORY_ALLOCATION` instead of gigabytes of host memory behind it (the fuzzer's
/// RSS limit is 2 GB), while every legitimate small shape still fits.
pub const FUZZ_HBM_BYTES: u64 = 256 << 20;

pub fn device() -> &'static (Stream, Kernels) {
    static DEVICE: OnceLock<(Stream, Kernels)> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let machine = ascend_npu::sim::SimConfig::default().with_hbm_bytes(FUZZ_HBM_BYTES);
        ascend_npu::sim::configure(machine).expect("a small simulated machine");
        ascend_npu::select_backend(Backend::Sim).expect("simulator");
        let device = Device::open(0).expect("device 0");
        (
            device.new_stream().expect("stream"),
            Kernels::load(&device).expect("kernels"),
        )
    })
}

/// After an input: the stream reports (or not) what the device found, and must still work.
fn settle(stream: &Stream) {
    let _ = stream.synchronize();
    let probe = stream.upload(&[7u32]).expect("the stream still works");
    assert_eq!(probe.to_vec().expect("the stream still works"), [7]);
    let _ = ascend_npu::take_drop_errors();
}

// ---- FP8 encode / decode and slice conversion --------------------------------------------------

fn nearest_ok<F: Fp8>(x: f64, got: F) {
    if x.is_nan() {
        assert!(got.decode_f32().is_nan(), "NaN must encode to NaN");
        return;
    }
    let max = f64::from(F::MAX_F32);
    let d = f64::from(got.decode_f32());
    if x.abs() > max {
        // Saturate: the largest finite value with the sign of x.
        assert_eq!(d, max.copysign(x), "saturation of {x}");
        return;
    }
    // No finite code is strictly nearer.
    for c in 0..=255u8 {
        let v = f64::from(F::from_code(c).decode_f32());
        if v.is_finite() {
            assert!(
                (v - x).abs() >= (d - x).abs(),
                "{x} encoded to {d}, but {v} is nearer"
            );
        }
    }
}

pub fn fp8_codec(data: &[u8]) {
    let mut b = Bytes::new(data);
    let n = (b.u8() % 16) as usize;
    let xs: Vec<f32> = (0..n).map(|_| b.f32()).collect();
    for &x in &xs {
        nearest_ok(
            f64::from(x),
            F8E4M3::encode_f32(x, OverflowPolicy::Saturate),
        );
        nearest_ok(
            f64::from(x),
            F8E5M2::encode_f32(x, OverflowPolicy::Saturate),
        );
        let e4 = F8E4M3::encode_f32(x, OverflowPolicy::NonFinite);
        if x.is_finite() && x.abs() <= 448.0 {
            assert_eq!(e4, F8E4M3::encode_f32(x, OverflowPolicy::Saturate));
        }
        // Narrower sources round once, from their own (exact) value.
        let h = bf16::from_f32(x);
        assert_eq!(
            F8E4M3::encode_f64(h.to_f64(), OverflowPolicy::Saturate),
            F8E4M3::encode_f32(h.to_f32(), OverflowPolicy::Saturate)
        );
        let h = f16::from_f32(x);
        assert_eq!(
            F8E5M2::encode_f64(h.to_f64(), OverflowPolicy::Saturate),
            F8E5M2::encode_f32(h.to_f32(), OverflowPolicy::Saturate)
        );
        // Decoding is exact in every wide format.
        for c in [e4.code(), b.u8()] {
            let v = F8E4M3::from_code(c);
            let f = v.decode_f32();
            assert!(f.is_nan() || f64::from(v.decode_f16().to_f32()) == f64::from(f));
        }
    }
    // Slices: a length mismatch is an error, never a panic; equal lengths round-trip.
    let dst_len = if b.bool() { n } else { (b.u8() % 16) as usize };
    let mut dst = vec![F8E4M3::default(); dst_len];
    let r = encode_slice(&xs, &mut dst, OverflowPolicy::Saturate);
    assert_eq!(r.is_ok(), dst_len == n);
    if r.is_ok() {
        for (x, c) in xs.iter().zip(&dst) {
            assert_eq!(*c, F8E4M3::encode_f32(*x, OverflowPolicy::Saturate));
        }
    }
    let mut back = vec![0f32; (b.u8() % 16) as usize];
    let r = decode_slice(&dst, &mut back);
    assert_eq!(r.is_ok(), back.len() == dst.len());
    let mut wide = vec![bf16::ZERO; dst.len()];
    decode_slice(&dst, &mut wide).expect("same length");
}

// ---- Block quantization -----------------------------------------------------------------------

/// |code·s − x| for an accepted quantization: half an E4M3 step (2^-4 relative for normals,
/// 2^-10·s absolute for subnormals), plus the f32 rounding of x/s and of the check itself.
fn quant_error_ok(x: f32, code: F8E4M3, s: f32) {
    let (x, got) = (f64::from(x), f64::from(code.decode_f32()) * f64::from(s));
    let tol = x.abs() * (2f64.powi(-4) + 2f64.powi(-20)) + f64::from(s) * 2f64.powi(-9);
    assert!(
        (got - x).abs() <= tol,
        "x {x} quantized to {got} (scale {s})"
    );
}

pub fn block_quant(data: &[u8]) {
    let mut b = Bytes::new(data);
    let rows = b.size(5);
    let cols = b.size(300);
    let len = match rows.checked_mul(cols) {
        Some(l) if l <= 2048 && !b.bool() => l,
        _ => (b.u16() % 2048) as usize,
    };
    let x = b.values(len);
    let format = if b.bool() {
        ScaleFormat::Ue8m0
    } else {
        ScaleFormat::Fp32
    };
    let any_non_finite = x.iter().any(|v| !v.is_finite());
    for weight in [false, true] {
        let r = if weight {
            quantize_weight(&x, rows, cols, format)
        } else {
            quantize_act(&x, rows, cols, format)
        };
        match r {
            Ok(q) => {
                assert_eq!(q.codes().len(), len);
                assert!(!any_non_finite, "non-finite input accepted");
                let (sr, sc) = q.scale_shape();
                // Element by element, not row by row: an accepted empty input may have a huge
                // row count and no columns, and an unoptimised build would walk those rows.
                for (i, &value) in x.iter().enumerate() {
                    // len > 0 here, so cols > 0 (an accepted input has rows × cols = len).
                    let (r, c) = (i / cols, i % cols);
                    let s = if weight {
                        q.scales()[(r / 128) * sc + c / 128]
                    } else {
                        q.scales()[r * sc + c / 128]
                    };
                    assert!(s.is_finite() && s > 0.0);
                    quant_error_ok(value, q.codes()[i], s);
                }
                assert!(sr * sc == q.scales().len());
            }
            Err(QuantError::NonFinite { row, col }) => {
                assert!(!x[row * cols + col].is_finite());
            }
            Err(_) => assert!(rows.checked_mul(cols) != Some(len) || len == 0),
        }
    }
}

// ---- safetensors loading ----------------------------------------------------------------------

/// A safetensors file built from fuzz bytes: tensor names, dtypes and shapes the loaders look
/// for, with shapes and payload sizes that may or may not agree.
fn structured_file(b: &mut Bytes<'_>) -> Vec<u8> {
    let names = [
        "w",
        "w_scale_inv",
        "v",
        "v_scale_inv",
        "m.gate.weight",
        "m.gate.e_score_correction_bias",
        "m.experts.0.gate_proj.weight",
        "m.experts.0.up_proj.weight",
        "m.experts.0.down_proj.weight",
        "m.experts.0.gate_proj.weight_scale_inv",
        "m.shared_experts.gate_proj.weight",
    ];
    let dtypes = ["F8_E4M3", "F32", "BF16", "I32", "F16", "U8"];
    let count = 1 + b.u8() as usize % names.len();
    let mut header = String::from("{");
    let mut payload = Vec::new();
    for (i, name) in names.iter().take(count).enumerate() {
        let dtype = dtypes[b.u8() as usize % dtypes.len()];
        let size = match dtype {
            "F32" | "I32" => 4,
            "BF16" | "F16" => 2,
            _ => 1,
        };
        let rank = b.u8() % 4;
        let dims: Vec<usize> = (0..rank).map(|_| b.size(160).min(1 << 40)).collect();
        let elements = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(usize::MAX);
        // Usually the right payload size, capped so a file stays small.
        let bytes = if b.bool() {
            elements.saturating_mul(size).min(1 << 16)
        } else {
            b.u16() as usize
        };
        let start = payload.len();
        payload.extend((0..bytes).map(|j| (j as u8) ^ b.u8()));
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{dims:?},\"data_offsets\":[{start},{}]}}",
            payload.len()
        ));
    }
    header.push('}');
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header.as_bytes());
    file.extend(payload);
    file
}

pub fn safetensors_load(data: &[u8]) {
    let (stream, kernels) = device();
    let mut b = Bytes::new(data);
    let file = if b.bool() {
        structured_file(&mut b)
    } else {
        b.rest().to_vec()
    };
    let names: &[&str] = match b.u8() % 3 {
        0 => &["w"],
        1 => &["w", "v"],
        _ => &[],
    };
    let _ = Fp8Weight::from_safetensors(stream, &file, names);
    let routing = MoeConfig {
        n_routed_experts: 1 + b.u8() as usize % 4,
        n_group: 1,
        topk_group: 1,
        top_k: 1,
        ..MoeConfig::deepseek_v3()
    };
    // The layer takes its own `Kernels` (a load per call is slow): only for files that parse.
    if safetensors::SafeTensors::deserialize(&file).is_ok() {
        let _ = MoeLayer::from_safetensors(
            stream,
            &file,
            "m",
            routing,
            Kernels::load(kernels.device()).expect("kernels"),
        );
    }
    settle(stream);
}

// ---- Operator validation ----------------------------------------------------------------------

/// A device buffer of at most 4096 elements, its length from the fuzz bytes.
fn buffer<T: bytemuck::Pod>(
    stream: &Stream,
    b: &mut Bytes<'_>,
    fill: impl Fn(usize) -> T,
) -> DeviceBuffer<T> {
    let len = (b.u16() % 4097) as usize;
    let host: Vec<T> = (0..len).map(fill).collect();
    stream.upload(&host).expect("upload")
}

fn ids(b: &mut Bytes<'_>) -> impl Fn(usize) -> i32 + use<> {
    let (base, spread) = (b.u8() as i32 - 8, 1 + b.u8() as i32 % 40);
    move |i| base + (i as i32 * 7) % spread
}

/// Deterministic finite values in [-3, 3].
fn vals(i: usize) -> f32 {
    ((i * 37 % 97) as f32 - 48.0) / 16.0
}

pub fn op_validation(data: &[u8]) {
    let (stream, kernels) = device();
    let mut b = Bytes::new(data);
    let op = b.u8() % 9;
    match op {
        0 => {
            // FP8 GEMM: every layout with arbitrary shapes, lengths and group data.
            let (groups, n, k) = (1 + b.size(3).min(8), 1 + b.size(200).min(300), b.size(300));
            let wlen = groups.saturating_mul(n).saturating_mul(k).min(1 << 16);
            let codes: Vec<F8E4M3> = (0..wlen)
                .map(|i| F8E4M3::from_code((i * 13) as u8 & 0x7E))
                .collect();
            // Right-sized when that is small; a huge K gets a short (wrong) scale list instead.
            let slen = groups
                .checked_mul(n.div_ceil(128))
                .and_then(|x| x.checked_mul(k.div_ceil(128)))
                .filter(|&l| l <= 1 << 16)
                .unwrap_or(3);
            let scales = vec![0.5f32; slen];
            let Ok(w) = Fp8Weight::upload(stream, groups, n, k, &codes, &scales) else {
                return settle(stream);
            };
            let a = buffer(stream, &mut b, |i| bf16::from_f32(vals(i)));
            let f = ids(&mut b);
            let info = buffer(stream, &mut b, f);
            let mut c = buffer(stream, &mut b, |_| 0f32);
            let m = b.size(40);
            let groups_arg = match b.u8() % 4 {
                0 => Fp8Groups::None,
                1 => Fp8Groups::Contiguous {
                    offsets: info.as_view(),
                },
                2 => Fp8Groups::ContiguousCumsum {
                    cumsum: info.as_view(),
                },
                _ => Fp8Groups::Masked {
                    counts: info.as_view(),
                },
            };
            let _ = fp8_gemm(
                kernels,
                stream,
                m,
                Fp8Input::Bf16(a.as_view()),
                &w,
                groups_arg,
                &mut c,
            );
        }
        1 => {
            // Device quantization and dequantization.
            let x = buffer(
                stream,
                &mut b,
                |i| if i % 97 == 3 { f32::NAN } else { vals(i) },
            );
            let (rows, k) = (b.size(40), b.size(300));
            let format = if b.bool() {
                ScaleFormat::Ue8m0
            } else {
                ScaleFormat::Fp32
            };
            if let Ok(q) = Fp8Activations::quantize(kernels, stream, rows, k, format, &x) {
                let mut out = buffer(stream, &mut b, |_| 0f32);
                let _ = q.dequantize(kernels, stream, &mut out);
            }
            if let Ok(w) = Fp8Weight::quantize(kernels, stream, rows, k, format, &x) {
                let mut out = buffer(stream, &mut b, |_| bf16::ZERO);
                let _ = w.dequantize(kernels, stream, &mut out);
            }
        }
        2 | 3 => {
            // Combine, dropless or padded.
            let y = buffer(stream, &mut b, vals);
            let f = ids(&mut b);
            let idx = buffer(stream, &mut b, f);
            let w = buffer(stream, &mut b, vals);
            let shared = b.bool().then(|| buffer(stream, &mut b, vals));
            let mut out = buffer(stream, &mut b, |_| 0f32);
            let (tokens, hidden, top_k) = (b.size(16), b.size(64), b.size(8));
            if op == 2 {
                let _ = moe::combine(
                    stream,
                    MoeShape {
                        tokens,
                        hidden,
                        top_k,
                        experts: top_k,
                    },
                    CombineInputs {
                        y: y.as_view(),
                        expanded_row_idx: idx.as_view(),
                        weights: w.as_view(),
                        shared: shared.as_ref().map(|s| s.as_view()),
                    },
                    &mut out,
                );
            } else {
                let (experts, capacity) = (b.size(16), b.size(16));
                let _ = moe::combine_padded(
                    stream,
                    MoeShape {
                        tokens,
                        hidden,
                        top_k,
                        experts,
                    },
                    capacity,
                    CombineInputs {
                        y: y.as_view(),
                        expanded_row_idx: idx.as_view(),
                        weights: w.as_view(),
                        shared: shared.as_ref().map(|s| s.as_view()),
                    },
                    &mut out,
                );
            }
        }
        4 => {
            // Dispatch, dropless or padded, with arbitrary expert ids.
            let x = buffer(stream, &mut b, vals);
            let f = ids(&mut b);
            let expert_ids = buffer(stream, &mut b, f);
            let (tokens, hidden, top_k, experts) = (b.size(16), b.size(64), b.size(8), b.size(40));
            if b.bool() {
                let sizes = if b.bool() {
                    GroupSizes::Counts
                } else {
                    GroupSizes::Cumsum
                };
                let _ = moe::dispatch(
                    stream,
                    MoeShape {
                        tokens,
                        hidden,
                        top_k,
                        experts,
                    },
                    sizes,
                    &x,
                    &expert_ids,
                );
            } else {
                let _ = moe::dispatch_padded(
                    stream,
                    MoeShape {
                        tokens,
                        hidden,
                        top_k,
                        experts,
                    },
                    b.size(16),
                    &x,
                    &expert_ids,
                );
            }
        }
        5 => {
            // Routing with arbitrary configs and logits (NaN included).
            let routing = MoeConfig {
                n_routed_experts: b.size(64),
                n_group: b.size(8),
                topk_group: b.size(8),
                top_k: b.size(8),
                scoring: if b.bool() {
                    Scoring::Sigmoid
                } else {
                    Scoring::Softmax
                },
                method: match b.u8() % 3 {
                    0 => TopKMethod::GroupLimitedGreedy,
                    1 => TopKMethod::NoauxTc,
                    _ => TopKMethod::Greedy,
                },
                norm_topk_prob: b.bool(),
                routed_scaling_factor: f64::from(b.value()),
            };
            let logits = buffer(stream, &mut b, |i| {
                if i % 89 == 5 { f32::INFINITY } else { vals(i) }
            });
            let bias = b.bool().then(|| buffer(stream, &mut b, vals));
            let _ = moe::route(
                kernels,
                stream,
                &routing,
                b.size(16),
                &logits,
                bias.as_ref(),
            );
        }
        6 => {
            // Grouped matmul (aclnn) with arbitrary counts.
            let x = buffer(stream, &mut b, vals);
            let w = buffer(stream, &mut b, vals);
            let counts = buffer(stream, &mut b, |i| {
                i64::from(ids(&mut Bytes::new(&[3, 9]))(i))
            });
            let mut out = buffer(stream, &mut b, |_| 0f32);
            let layout = b.layout();
            let _ = moe::grouped_matmul(
                stream,
                MatmulShape {
                    m: b.size(64),
                    n: b.size(64),
                    k: b.size(64),
                },
                layout,
                &x,
                &w,
                &counts,
                &mut out,
            );
        }
        7 => {
            // SwiGLU and the dense matmul with arbitrary lengths and shapes.
            let g = buffer(stream, &mut b, vals);
            let u = buffer(stream, &mut b, vals);
            let mut out = buffer(stream, &mut b, |_| 0f32);
            let _ = ascend_npu::kernels::swiglu(kernels, stream, &g, &u, &mut out);
            let a = buffer(stream, &mut b, |i| bf16::from_f32(vals(i)));
            let w = buffer(stream, &mut b, |i| bf16::from_f32(vals(i)));
            let shape = MatmulShape {
                m: b.size(64),
                n: b.size(64),
                k: b.size(64),
            };
            let layout = b.layout();
            let _ = ascend_npu::kernels::matmul(kernels, stream, shape, layout, &a, &w, &mut out);
        }
        _ => {
            // Host-side uploads of pre-quantized data with arbitrary shapes and scales.
            let (groups, n, k) = (b.size(4), b.size(300), b.size(300));
            let codes: Vec<F8E4M3> = (0..(b.u16() % 4097) as usize)
                .map(|i| F8E4M3::from_code(i as u8))
                .collect();
            let count = (b.u8() % 32) as usize;
            let scales: Vec<f32> = b.values(count);
            let _ = Fp8Weight::upload(stream, groups, n, k, &codes, &scales);
        }
    }
    settle(stream);
}

// ---- Tiling functions -------------------------------------------------------------------------

fn swiglu_tiling_ok<T: SwigluElement>(len: usize, cores: u32) {
    if let Ok((t, blocks)) = SwigluTiling::plan::<T>(len, cores) {
        assert_eq!(t.total_len as usize, len);
        // Exactly the blocks that have work (none for an empty input), within the cores.
        assert!(t.block_len >= 1, "block_len 0 for {len} elements");
        assert_eq!(blocks as usize, len.div_ceil(t.block_len as usize));
        assert!(blocks <= cores.max(1), "{blocks} blocks for {cores} cores");
        assert!(
            t.tile_len >= 1 && u64::from(t.tile_len) <= u64::from(t.block_len).next_multiple_of(64)
        );
    }
}

pub fn tiling(data: &[u8]) {
    let mut b = Bytes::new(data);
    let cores = match b.u8() % 4 {
        0 => 0,
        1 => u32::MAX,
        _ => u32::from(b.u8()),
    };
    let shape = MatmulShape {
        m: b.size(70000),
        n: b.size(70000),
        k: b.size(70000),
    };
    let layout = b.layout();
    if let Ok((t, blocks)) = MatmulTiling::plan(shape, layout, cores) {
        for base in [t.base_m, t.base_n, t.base_k] {
            assert!(base % 16 == 0 && (16..=256).contains(&base), "base {base}");
        }
        // The buffer rules of tiling/matmul_tiling.h: double-buffered L0A/L0B and L1, one L0C tile.
        let (bm, bn, bk) = (t.base_m, t.base_n, t.base_k);
        assert!(
            2 * bm * bk * 2 <= 65536 && 2 * bk * bn * 2 <= 65536,
            "L0A/L0B {bm}/{bn}/{bk}"
        );
        assert!(bm * bn * 4 <= 131072, "L0C {bm}x{bn}");
        assert!(2 * (bm + bn) * bk * 2 <= 524288, "L1 {bm}/{bn}/{bk}");
        assert!(blocks >= 1 && blocks <= cores.max(1));
        assert_eq!(
            (t.m as usize, t.n as usize, t.k as usize),
            (shape.m, shape.n, shape.k)
        );
    }
    let len = b.size(100_000);
    swiglu_tiling_ok::<f32>(len, cores);
    swiglu_tiling_ok::<f16>(len, cores);
    swiglu_tiling_ok::<bf16>(len, cores);
}

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: [(&str, Body); 5] = [
    ("fp8_codec", fp8_codec),
    ("block_quant", block_quant),
    ("safetensors_load", safetensors_load),
    ("op_validation", op_validation),
    ("tiling", tiling),
];
