//! The aclnn base (tensors, arrays, executors) and the operators we call, on the CPU.
//!
//! The two-phase protocol is kept as documented: `aclnn<Op>GetWorkspaceSize` validates the
//! arguments, captures the tensors' descriptions and creates an executor; `aclnn<Op>` checks the
//! workspace and queues the executor on a stream, where the operator runs over the tensors'
//! device memory. An executor runs once and is destroyed by its launch, unless it was made
//! repeatable, in which case `aclDestroyAclOpExecutor` releases it.
//!
//! Operators read and write tensors through their view (dims, strides, offset), so transposed or
//! sliced views work; arithmetic is done in f64 and rounded once to the output type, unless the
//! documented semantics say fp32 accumulation (then f32).

pub(crate) mod executor;
pub(crate) mod objects;
pub(crate) mod ops;
pub(crate) mod view;
