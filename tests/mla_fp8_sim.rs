//! `MlaAttention` over an FP8 latent cache on the simulator, against the f64 reference
//! `reference::mla` (dequantize-then-attend); cases in `common/mla_fp8_cases.rs`.

mod common;

fn setup() {}

mla_fp8_suite!(setup = setup);
