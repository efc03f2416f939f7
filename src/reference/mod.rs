//! Independent CPU references (oracles) for the operators the device paths implement.
//!
//! Everything here is written from the specification (`shared/reference/deepseek-ops.md`),
//! in plain loops over `f64`, and shares **no** code with the device kernels or the
//! simulator: a bug in a shared helper would otherwise cancel out of every comparison.
//! Speed is not a goal; clarity and exactly documented semantics (tie rules, index
//! conventions, error cases) are.
//!
//! * [`moe`]: DeepSeek mixture-of-experts on one device: routing (V3 `noaux_tc`, V2
//!   `group_limited_greedy`, plain top-k), permute / gather / unpermute, the SwiGLU
//!   experts, and the whole layer.
//! * [`ep`]: expert-parallel dispatch and combine across ranks with DeepEP's semantics
//!   (layout, normal and low-latency forms).
//! * [`mla`]: DeepSeek multi-head latent attention: the prolog with YaRN RoPE, the naive
//!   (prefill) and absorbed (decode) forms, the paged cache, the FP8 cache row, the layer.

pub mod ep;
pub mod mla;
pub mod moe;
