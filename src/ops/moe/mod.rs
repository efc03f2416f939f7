//! MoE on one device: routing, dispatch (permute), grouped expert GEMMs, combine (unpermute).
//!
//! On an NPU these are CANN's fused operators (`aclnnMoeGatingTopK`, `aclnnMoeInitRoutingV2`,
//! `aclnnGroupedMatmulV4`, `aclnnMoeFinalizeRoutingV2`); the simulator implements the same entry
//! points with their documented semantics, so this code is the same on both.

mod combine;
mod dispatch;
mod experts;
mod layer;
mod routing;
mod shape;

pub use combine::{CombineInputs, combine, combine_padded};
pub use dispatch::{
    Dispatch, GroupSizes, GroupSizesBuffer, LocalDispatch, PaddedDispatch, dispatch,
    dispatch_local, dispatch_padded,
};
pub use experts::grouped_matmul;
pub use layer::{FfnWeights, MoeLayer, MoeWeights};
pub use routing::{check_config, route};
pub use shape::MoeShape;

/// The configuration is shared with the f64 reference.
pub use crate::moe::{MoeConfig, Scoring, TopKMethod};
