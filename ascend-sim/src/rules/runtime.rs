//! Rules enforced outside the aclnn validator: the aclnn base objects, the runtime, kernel
//! launches and the C++ shim. Each names the code that enforces it and its test; the code
//! reports a violation with [`super::violation`] (or, in C++, the same `[id]` text) so the error
//! names the rule.

use super::{Enforcement, Rule};

pub(super) const RULES: &[Rule] = &[Rule {
    id: "acl-create-tensor.data-aligned",
    call: "aclCreateTensor",
    statement: "tensorData of a non-empty tensor is a 32-byte aligned device address",
    source: "cann-api-facts §3.2; opbase docs/en/api/nnopbase/aclnn/aclCreateTensor.md",
    test: "ascend-sim/tests/hardware_rules.rs::create_tensor_rejects_unaligned_data",
    enforcement: Enforcement::Elsewhere {
        code: "ascend-sim/src/aclnn/objects.rs",
    },
}];
