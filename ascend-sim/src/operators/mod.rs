//! The operator layer: aclnn operators, kernel launch execution and HCCL collectives' data
//! movement. Operators receive what they need (tensor views, a device, its counters) as
//! arguments; they never reach the process-wide registry.

pub(crate) mod aclnn;
pub mod hccl;
pub(crate) mod kernel_launch;
