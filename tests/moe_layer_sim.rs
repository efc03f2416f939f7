//! A whole MoE layer, loaded from a safetensors file with DeepSeek's tensor names, run on the
//! simulator and compared with the f64 reference layer (bodies in `common/moe_layer_cases.rs`).

mod common;

fn setup() {
    common::backend::select();
}

moe_layer_suite!(setup = setup);
