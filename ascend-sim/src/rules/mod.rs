//! Hardware rules as data: every documented requirement of a call we make, with its public
//! source and the test that proves the simulator enforces it.
//!
//! Each [`Rule`] has a stable id (`op.what`, e.g. `moe-gating-topk.out-required`) that a
//! violating call's error message carries in brackets (`[moe-gating-topk.out-required]`), so a
//! failure names the rule and a test can assert it. Rules of aclnn operators' first phase are
//! declarative ([`Requirement`]) and applied by one validator, [`check`]; rules that depend on
//! device data are checked when the operator runs and report through [`violation`]; rules of
//! the runtime, kernel launches or the C++ shim are enforced by that code and listed here with
//! their test, so `docs/HARDWARE_RULES.md` ([`markdown`]) covers them all.
//!
//! Adding a rule: add an entry to the table of its call (`aclnn/<op>.rs`, or `runtime.rs` for
//! rules enforced elsewhere), with a `violate` edit for first-phase rules; the generic test
//! (`ascend-sim/tests/hardware_rules.rs`) makes the violating call, and the docs test says how
//! to regenerate the document.

mod aclnn;
mod call;
mod cann;
mod doc;
mod hccl;
mod runtime;

use ascend_sys::{ACLNN_ERR_PARAM_INVALID, ACLNN_ERR_PARAM_NULLPTR, aclDataType};

pub use call::{Arg, Call, TensorMeta, dtype_name, nz_storage};
pub use cann::{VersionRow, VersionTable, version_table};
pub use doc::markdown;

pub(crate) use aclnn::{
    Mc2Form, fia_kv_lens, fia_layout, fia_query_bsnd, mla_prolog_cache_mode, v3_active_range,
};

use crate::base::error::{SimError, SimResult};

/// One hardware rule.
#[derive(Debug)]
pub struct Rule {
    /// Stable id, `op.what`; violating calls carry it as `[id]` in their error message.
    pub id: &'static str,
    /// The C call (or family of calls) it applies to.
    pub call: &'static str,
    /// What must hold, in one line.
    pub statement: &'static str,
    /// The public source: an errata item or section of `cann-api-facts.md`, an op doc or an
    /// op definition file.
    pub source: &'static str,
    /// The test that proves a violating call fails with this rule: `path::function`.
    pub test: &'static str,
    /// Where and how it is enforced.
    pub enforcement: Enforcement,
}

/// How the simulator enforces a rule.
#[derive(Debug)]
pub enum Enforcement {
    /// Phase one of an aclnn operator (`GetWorkspaceSize`) fails with `status` when the
    /// requirement does not hold. `violate` turns the operator's [`sample`] call into one
    /// that breaks this rule only (for the generic per-rule test).
    PhaseOne {
        /// The aclnnStatus of a violating call.
        status: i32,
        /// What is checked.
        requirement: Requirement,
        /// Edits a valid sample call so that it breaks this rule, and no earlier one.
        violate: fn(&mut Call),
    },
    /// Checked on the device data when the operator runs; the launch's stream reports
    /// `status` at synchronisation.
    AtRun {
        /// The error code the stream reports.
        status: i32,
    },
    /// Enforced by other simulator code (runtime, kernel launch, the C++ shim).
    Elsewhere {
        /// Where, as a path in the repository.
        code: &'static str,
    },
}

/// A declarative first-phase requirement. Tensor requirements apply to a present tensor (and
/// to every tensor of a list); presence is a rule of its own.
#[derive(Debug)]
pub enum Requirement {
    /// The tensor (list, array) argument is not NULL.
    Present(&'static str),
    /// The tensor has this many dims.
    Rank(&'static str, usize),
    /// The tensor's dtype is one of these.
    DTypes(&'static str, &'static [aclDataType]),
    /// The integer attribute is one of these.
    IntIn(&'static str, &'static [i64]),
    /// The integer attribute lies in `[lo, hi]`.
    IntRange(&'static str, i64, i64),
    /// A relation between arguments; `Err` holds what was found.
    Relation(fn(&Call) -> Result<(), String>),
}

impl Requirement {
    /// `Ok`, or what was found instead.
    fn holds(&self, call: &Call) -> Result<(), String> {
        match *self {
            Requirement::Present(name) => {
                if call.present(name) {
                    Ok(())
                } else {
                    Err(format!("{name} is NULL"))
                }
            }
            Requirement::Rank(name, rank) => match call
                .tensors_of(name)
                .into_iter()
                .find(|t| t.dims.len() != rank)
            {
                Some(t) => Err(format!("{name} has dims {:?}", t.dims)),
                None => Ok(()),
            },
            Requirement::DTypes(name, dtypes) => match call
                .tensors_of(name)
                .into_iter()
                .find(|t| !dtypes.contains(&t.dtype))
            {
                Some(t) => Err(format!("{name} is {}", dtype_name(t.dtype))),
                None => Ok(()),
            },
            Requirement::IntIn(name, values) => {
                let v = call.int_of(name);
                if values.contains(&v) {
                    Ok(())
                } else {
                    Err(format!("{name} = {v}"))
                }
            }
            Requirement::IntRange(name, lo, hi) => {
                let v = call.int_of(name);
                if (lo..=hi).contains(&v) {
                    Ok(())
                } else {
                    Err(format!("{name} = {v}"))
                }
            }
            Requirement::Relation(f) => f(call),
        }
    }
}

/// Every rule: the aclnn operators' tables, then the rules enforced elsewhere.
pub fn all() -> impl Iterator<Item = &'static Rule> {
    aclnn::TABLES
        .iter()
        .flat_map(|t| t.iter())
        .chain(runtime::RULES)
        .chain(hccl::RULES)
}

/// The rule with id `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    all().find(|r| r.id == id)
}

/// A valid call of aclnn operator `op` (small shapes), which each first-phase rule's `violate`
/// edits; `None` for an operator without rules.
pub fn sample(op: &str) -> Option<Call> {
    aclnn::sample(op)
}

/// Applies every first-phase rule of `call.op`, in table order; the first that does not hold
/// fails the call with its status and `[id] statement; got ...`.
pub(crate) fn check(call: &Call) -> SimResult<()> {
    for rule in all().filter(|r| r.call == call.op) {
        if let Enforcement::PhaseOne {
            status,
            requirement,
            ..
        } = &rule.enforcement
        {
            if let Err(found) = requirement.holds(call) {
                return Err(SimError::new(*status, message(rule, &found)));
            }
        }
    }
    Ok(())
}

/// The error of a rule checked outside [`check`] (at run time or by other code): its status
/// (for run-time rules) and `[id] statement; got {found}`.
pub(crate) fn violation(id: &str, found: impl std::fmt::Display) -> SimError {
    match rule(id) {
        Some(rule) => {
            let status = match rule.enforcement {
                Enforcement::PhaseOne { status, .. } | Enforcement::AtRun { status } => status,
                Enforcement::Elsewhere { .. } => ACLNN_ERR_PARAM_INVALID,
            };
            SimError::new(status, message(rule, &found.to_string()))
        }
        None => SimError::new(
            ascend_sys::ACL_ERROR_RT_INTERNAL_ERROR,
            format!("internal: no hardware rule {id} (found {found})"),
        ),
    }
}

/// The text of a violation of rule `id`, for callers that report errors with their own codes
/// (HCCL).
pub(crate) fn violation_text(id: &str, found: impl std::fmt::Display) -> String {
    match rule(id) {
        Some(rule) => message(rule, &found.to_string()),
        None => format!("internal: no hardware rule {id} (found {found})"),
    }
}

fn message(rule: &Rule, found: &str) -> String {
    format!("[{}] {}; got {found}", rule.id, rule.statement)
}

/// Status of a NULL required argument.
const NULLPTR: i32 = ACLNN_ERR_PARAM_NULLPTR;
/// Status of any other invalid argument.
const INVALID: i32 = ACLNN_ERR_PARAM_INVALID;
