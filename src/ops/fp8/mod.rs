//! FP8-emulated block-scaled GEMM for chips without FP8 units (910B/910C): DeepSeek's FP8
//! checkpoints (E4M3 weights with 128×128 `weight_scale_inv` blocks) run as they are, with the
//! weights crossing from global memory as one byte per element.
//!
//! `C[m,n] = Σ_kb (Σ_{k∈kb} A[m,k]·B[n,k]) · sa[m,kb] · sb[n/128,kb]` in fp32, the scales applied
//! per 128-long K block (DeepGEMM's NT layout), output bf16 or f32:
//!
//! - **W8A16** (the main inference path): bf16 activations, FP8 weights;
//! - **W8A8**: activations quantized per token in 1×128 tiles ([`Fp8Activations::quantize`]).
//!
//! Grouped forms serve MoE experts: rows sorted by expert with offsets (contiguous), or
//! `[groups, max_m, K]` with a valid row count per group (masked).
//!
//! ```
//! use ascend_npu::{select_backend, Backend, Device};
//! use ascend_npu::fp8::{quantize_weight, ScaleFormat};
//! use ascend_npu::kernels::Kernels;
//! use ascend_npu::ops::fp8::{fp8_gemm, Fp8Groups, Fp8Input, Fp8Weight};
//! use half::bf16;
//! select_backend(Backend::Sim)?;
//! let device = Device::open(0)?;
//! let stream = device.new_stream()?;
//! let kernels = Kernels::load(&device)?;
//! let (m, n, k) = (2, 3, 4);
//! let w = quantize_weight(&[0.5f32; 3 * 4], n, k, ScaleFormat::Fp32).unwrap();
//! let w = Fp8Weight::from_quantized(&stream, &w)?;
//! let a = stream.upload(&[bf16::ONE; 2 * 4])?;
//! let mut c = stream.alloc_zeroed::<f32>(m * n)?;
//! fp8_gemm(&kernels, &stream, m, Fp8Input::Bf16(a.as_view()), &w, Fp8Groups::None, &mut c)?;
//! assert!(c.to_vec()?.iter().all(|&v| (v - 2.0).abs() < 1e-6));
//! # Ok::<(), ascend_npu::Error>(())
//! ```

mod activations;
mod checkpoint;
mod gemm;
mod weight;

pub use activations::Fp8Activations;
pub use gemm::{Fp8Groups, Fp8Input, fp8_gemm};
pub use weight::Fp8Weight;
