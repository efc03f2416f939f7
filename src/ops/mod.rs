//! Operators on the device: validate inputs, plan, launch aclnn operators or our own kernels.

pub(crate) mod checkpoint;
pub mod ep;
pub mod fp8;
pub mod mla;
pub mod moe;
