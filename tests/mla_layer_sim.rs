//! A whole MLA layer from a safetensors checkpoint (bf16 and FP8 weights) on the simulator,
//! against the f64 reference layer; cases in `common/mla_layer_cases.rs`.

mod common;

fn setup() {}

mla_layer_suite!(setup = setup);
