//! The MLA vendor operators (aclnnMlaPrologV3WeightNz) on the simulator, against the f64
//! reference `reference::mla`; cases in `common/mla_vendor_cases.rs`.

mod common;

fn setup() {}

mla_vendor_suite!(setup = setup);
