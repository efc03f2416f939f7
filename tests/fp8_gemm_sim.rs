//! The FP8-emulated GEMM on the simulator, against f64 GEMMs of the dequantized operands and
//! of the unquantized bf16 inputs; the device activation quantization against the host
//! reference; grouped layouts; checkpoints; bad inputs.

mod common;

fn setup() {}

fp8_gemm_suite!(setup = setup);
