//! MoE on one device through the aclnn operators, on the simulator, against plain f64
//! computations of the documented semantics.

mod common;

fn setup() {}

moe_device_suite!(setup = setup);
