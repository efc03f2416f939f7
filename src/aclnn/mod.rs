//! Safe handles for the aclnn operator interface: tensor descriptors over device buffers, tensor
//! lists, and plans (the executor of an operator's first phase, launched on a stream).
//!
//! Every aclnn operator is called in two phases: `aclnn<Op>GetWorkspaceSize` validates, tiles and
//! creates an executor; `aclnn<Op>` launches it with a workspace on a stream. [`Plan`] owns the
//! executor between the two and allocates the workspace from the launching stream, so the
//! workspace is freed in stream order.

mod attrs;
mod cast;
mod fia;
mod matmul;
mod mla_prolog;
mod moe_distribute;
mod plan;
mod tensor;

pub use attrs::{
    CubeMathType, DropPad, FinalizeLayout, GatingNorm, GmmAct, GroupListType, GroupSelect,
    GroupType, QuantMode, RowIdxType, SparseMode, SplitItem, TokenCounts, TokensNumType,
};
pub use cast::cast;
pub use fia::{InputLayout, MlaDecodeAttrs, MlaDecodeTensors, mla_decode_v3};
pub use matmul::{Int8Weight, matmul, weight_quant_matmul};
pub use mla_prolog::{
    CacheMode, MlaPrologAttrs, MlaPrologTensors, PrologShape, PrologWeights, mla_prolog_v3,
    pack_nz, pack_prolog_weights, prolog_rope_tables,
};
pub use moe_distribute::{Mc2Combine, Mc2Dispatch, Mc2Group, Mc2Version};
pub(crate) use plan::{
    Cast, FusedInferAttentionScoreV3, GroupedMatmulV4, Matmul, MlaPrologV3WeightNz,
    MoeDistributeCombine, MoeDistributeCombineV2, MoeDistributeDispatch, MoeDistributeDispatchV2,
    MoeFinalizeRoutingV2, MoeGatingTopK, MoeInitRoutingV2, MoeInitRoutingV3, Operator,
    WeightQuantBatchMatmulV2,
};
pub use plan::{LaunchFn, Plan};
pub(crate) use tensor::TensorUses;
pub use tensor::{AclBool, AclElement, AclIntArray, AclTensor, AclTensorList};
