//! The rule tables of the aclnn operators we call, one file per operator, each with a valid
//! sample call for the per-rule test.

/// The first-phase rule that tensor argument `$name` of `$op` is not NULL: status
/// ACLNN_ERR_PARAM_NULLPTR, statement "`$name` is required", violated by passing NULL.
macro_rules! required {
    ($op:expr, $id:literal, $name:literal, $doc:expr) => {
        super::one(
            $op,
            $id,
            concat!($name, " is required"),
            $doc,
            crate::rules::NULLPTR,
            crate::rules::Requirement::Present($name),
            |c| c.set($name, crate::rules::Arg::Tensor(None)),
        )
    };
}

mod cast;
mod fia_v3;
mod grouped_matmul_v4;
mod matmul;
mod mla_prolog_v3;
mod moe_distribute_v1;
mod moe_distribute_v2;
mod moe_finalize_routing_v2;
mod moe_gating_top_k;
mod moe_init_routing_v2;
mod moe_init_routing_v3;
mod routing_inputs;
mod weight_quant_bmm_v2;

pub(crate) use fia_v3::{
    kv_lens as fia_kv_lens, layout as fia_layout, query_bsnd as fia_query_bsnd,
};
pub(crate) use mla_prolog_v3::cache_mode as mla_prolog_cache_mode;
pub(crate) use moe_distribute_v2::Form as Mc2Form;
pub(crate) use moe_init_routing_v3::range as v3_active_range;

use super::{Call, Enforcement, Requirement, Rule};

/// The tables, in the order the document lists them.
pub(super) const TABLES: &[&[Rule]] = &[
    moe_gating_top_k::RULES,
    moe_init_routing_v2::INPUTS,
    moe_init_routing_v2::RULES,
    moe_init_routing_v3::INPUTS,
    moe_init_routing_v3::RULES,
    grouped_matmul_v4::RULES,
    moe_finalize_routing_v2::RULES,
    cast::RULES,
    mla_prolog_v3::RULES,
    mla_prolog_v3::AT_RUN,
    fia_v3::RULES,
    fia_v3::AT_RUN,
    matmul::RULES,
    weight_quant_bmm_v2::RULES,
    moe_distribute_v2::DISPATCH_INPUTS,
    moe_distribute_v2::DISPATCH_SHARED,
    moe_distribute_v2::DISPATCH_OUTPUTS,
    moe_distribute_v2::COMBINE_INPUTS,
    moe_distribute_v2::COMBINE_SHARED,
    moe_distribute_v2::COMBINE_OUTPUTS,
    moe_distribute_v2::AT_RUN,
    moe_distribute_v1::DISPATCH_INPUTS,
    moe_distribute_v1::DISPATCH_SHARED,
    moe_distribute_v1::DISPATCH_OUTPUTS,
    moe_distribute_v1::COMBINE_INPUTS,
    moe_distribute_v1::COMBINE_SHARED,
    moe_distribute_v1::COMBINE_OUTPUTS,
    moe_distribute_v1::AT_RUN,
];

/// A valid call of `op`.
pub(super) fn sample(op: &str) -> Option<Call> {
    Some(match op {
        moe_gating_top_k::OP => moe_gating_top_k::sample(),
        moe_init_routing_v2::OP => moe_init_routing_v2::sample(),
        moe_init_routing_v3::OP => moe_init_routing_v3::sample(),
        grouped_matmul_v4::OP => grouped_matmul_v4::sample(),
        moe_finalize_routing_v2::OP => moe_finalize_routing_v2::sample(),
        cast::OP => cast::sample(),
        mla_prolog_v3::OP => mla_prolog_v3::sample(),
        fia_v3::OP => fia_v3::sample(),
        matmul::OP => matmul::sample(),
        weight_quant_bmm_v2::OP => weight_quant_bmm_v2::sample(),
        moe_distribute_v2::DISPATCH => moe_distribute_v2::dispatch_sample(),
        moe_distribute_v2::COMBINE => moe_distribute_v2::combine_sample(),
        moe_distribute_v1::DISPATCH => moe_distribute_v1::dispatch_sample(),
        moe_distribute_v1::COMBINE => moe_distribute_v1::combine_sample(),
        _ => return None,
    })
}

/// The generic test that makes one violating call per first-phase rule.
const GENERIC: &str = "ascend-sim/tests/hardware_rules.rs::every_phase_one_rule_fires";

/// A first-phase rule checked by the generic test.
const fn one(
    call: &'static str,
    id: &'static str,
    statement: &'static str,
    source: &'static str,
    status: i32,
    requirement: Requirement,
    violate: fn(&mut Call),
) -> Rule {
    Rule {
        id,
        call,
        statement,
        source,
        test: GENERIC,
        enforcement: Enforcement::PhaseOne {
            status,
            requirement,
            violate,
        },
    }
}

/// `Ok` when a rule's condition holds, else `Err` with what was found instead.
fn ensure(holds: bool, found: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(found()) }
}

/// `Err` naming `name`'s dims unless they are `want`.
fn dims_are(call: &Call, name: &str, want: &[i64]) -> Result<(), String> {
    match call.tensor_of(name) {
        Some(t) if t.dims != want => Err(format!("{name} dims {:?}, expected {want:?}", t.dims)),
        _ => Ok(()),
    }
}

/// `Err` unless tensor `name` (when present) has the dtype of tensor `of`.
fn same_dtype(call: &Call, name: &str, of: &str) -> Result<(), String> {
    match (call.tensor_of(name), call.tensor_of(of)) {
        (Some(t), Some(o)) if t.dtype != o.dtype => Err(format!(
            "{name} is {} but {of} is {}",
            crate::rules::dtype_name(t.dtype),
            crate::rules::dtype_name(o.dtype)
        )),
        _ => Ok(()),
    }
}

/// Dim `i` of tensor `name` (−1 when absent; the presence and rank rules run first).
fn dim(call: &Call, name: &str, i: usize) -> i64 {
    call.tensor_of(name).map_or(-1, |t| t.dim(i))
}
