//! The vendor's dense matmuls (aclnnMatmul, aclnnWeightQuantBatchMatmulV2) on the simulator,
//! against f64 products; cases in `common/vendor_matmul_cases.rs`.

mod common;

fn setup() {}

vendor_matmul_suite!(setup = setup);
