//! The hardware rule table (`ascend_sim::rules`): one violating call per first-phase rule fails
//! with that rule's id, the valid sample of each operator passes, every rule names a test that
//! exists, and `docs/HARDWARE_RULES.md` is what the table generates.

// The `acl!` helper calls the C table with test arguments; every call site is an FFI call
// by design, so the arguments being expanded inside its unsafe block is intended.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;

use std::path::PathBuf;

use ascend_sim::rules::{self, Enforcement};
use ascend_sys::*;
use common::aclnn::{device_for, invoke};
use common::{Device, free, malloc, recent};

fn phase_one_ops() -> Vec<&'static str> {
    let mut ops = Vec::new();
    for r in rules::all() {
        if matches!(r.enforcement, Enforcement::PhaseOne { .. }) && !ops.contains(&r.call) {
            ops.push(r.call);
        }
    }
    ops
}

/// The device `call` is made on ([`device_for`]), set for the guard's lifetime; `None` (and a
/// note) where this provider has no such device.
fn device(call: &rules::Call, what: &str) -> Option<Device> {
    let Some(id) = device_for(call) else {
        eprintln!("skipped under the cann provider, which has no A3 device: {what}");
        return None;
    };
    Some(Device::set(id))
}

#[test]
fn every_operator_sample_is_valid() {
    for op in phase_one_ops() {
        let call = rules::sample(op).unwrap_or_else(|| panic!("{op} has rules but no sample"));
        let Some(_d) = device(&call, op) else {
            continue;
        };
        let (rc, msg) = invoke(&call);
        assert_eq!(rc, ACL_SUCCESS, "the sample call of {op} fails: {msg}");
    }
}

#[test]
fn every_phase_one_rule_fires() {
    let mut checked = 0;
    for rule in rules::all() {
        let Enforcement::PhaseOne {
            status, violate, ..
        } = &rule.enforcement
        else {
            continue;
        };
        let mut call = rules::sample(rule.call).expect("sample");
        violate(&mut call);
        let Some(_d) = device(&call, rule.id) else {
            continue;
        };
        let (rc, msg) = invoke(&call);
        assert_eq!(
            rc, *status,
            "violating {} gave status {rc} ({msg}); expected {status}",
            rule.id
        );
        let tag = format!("[{}]", rule.id);
        assert!(msg.contains(&tag), "violating {} gave {msg:?}", rule.id);
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} first-phase rules");
}

#[test]
fn rule_ids_are_unique_and_name_their_operator() {
    let mut seen = std::collections::HashSet::new();
    for r in rules::all() {
        assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
        // Ids are lowercase kebab case; those the table's validator reports are `op.what`
        // (rules of other code keep the tag that code already prints, e.g. `gemv-mode`).
        let (prefix, what) = r.id.split_once('.').unwrap_or(("", ""));
        let phase_one = matches!(r.enforcement, Enforcement::PhaseOne { .. });
        assert!(
            (!phase_one || (!prefix.is_empty() && !what.is_empty()))
                && !r.id.is_empty()
                && r.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c)),
            "rule id {} is not lowercase kebab case (`op.what` for phase-one rules)",
            r.id
        );
        assert!(!r.statement.is_empty() && !r.source.is_empty());
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_rule_names_a_test_that_exists() {
    for r in rules::all() {
        let (path, function) = r
            .test
            .split_once("::")
            .unwrap_or_else(|| panic!("{}: test {:?} is not path::function", r.id, r.test));
        let text = std::fs::read_to_string(repo_root().join(path))
            .unwrap_or_else(|e| panic!("{}: test file {path}: {e}", r.id));
        assert!(
            text.contains(&format!("fn {function}(")),
            "{}: {path} has no fn {function}",
            r.id
        );
        if let Enforcement::Elsewhere { code } = r.enforcement {
            assert!(repo_root().join(code).exists(), "{}: no {code}", r.id);
        }
    }
}

#[test]
fn document_is_fresh() {
    let path = repo_root().join("docs/HARDWARE_RULES.md");
    let want = rules::markdown();
    if std::env::var_os("UPDATE_HARDWARE_RULES").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/HARDWARE_RULES.md is stale; regenerate it with \
         UPDATE_HARDWARE_RULES=1 cargo test -p ascend-sim --test hardware_rules document_is_fresh"
    );
}

#[test]
fn create_tensor_rejects_unaligned_data() {
    let _d = Device::set(0);
    let p = malloc(256);
    let dims = [4i64];
    let t = acl!(aclCreateTensor(
        dims.as_ptr(),
        1,
        ACL_FLOAT,
        std::ptr::null(),
        0,
        ACL_FORMAT_ND,
        dims.as_ptr(),
        1,
        common::offset(p, 16)
    ));
    assert!(t.is_null());
    assert!(
        recent().contains("[acl-create-tensor.data-aligned]"),
        "{}",
        recent()
    );
    let t = acl!(aclCreateTensor(
        dims.as_ptr(),
        1,
        ACL_FLOAT,
        std::ptr::null(),
        0,
        ACL_FORMAT_ND,
        dims.as_ptr(),
        1,
        common::offset(p, 32)
    ));
    assert!(!t.is_null(), "{}", recent());
    acl!(aclDestroyTensor(t));
    free(p);
}

/// `TensorMeta`'s helpers that relations use: a dim past the rank reads −1 (so a relation on a
/// tensor of the wrong rank fails instead of indexing out of bounds), and the element count
/// treats negative dims as empty.
#[test]
fn tensor_meta_dims_and_element_counts() {
    let t = rules::TensorMeta::new(&[2, 3, 5], ACL_FLOAT);
    assert_eq!((t.dim(0), t.dim(2), t.dim(3)), (2, 5, -1));
    assert_eq!(t.numel(), 30);
    assert_eq!(rules::TensorMeta::new(&[4, -1], ACL_FLOAT).numel(), 0);
    assert_eq!(rules::TensorMeta::new(&[], ACL_FLOAT).numel(), 1);
}

/// Editing the first tensor of an empty list is a defect of the rule table, reported as such
/// (not as an index out of bounds).
#[test]
#[should_panic(expected = "has no present tensor x")]
fn editing_an_empty_tensor_list_names_the_table_defect() {
    let mut call = rules::Call::new("aclnnTest").with("x", rules::Arg::List(Some(Vec::new())));
    call.edit_tensor("x", |t| t.dims.clear());
}

/// The typed accessors a relation reads attributes with (no rule reads a float attribute yet,
/// so nothing else holds `float_of`).
#[test]
fn call_accessors_return_the_arguments() {
    use rules::Arg;
    let call = rules::Call::new("aclnnTest")
        .with("eps", Arg::Float(-0.25))
        .with("flag", Arg::Bool(true))
        .with("layout", Arg::Str(Some("BSND".into())))
        .with("lens", Arg::Ints(Some(vec![3, 7])))
        .int("k", -5);
    assert_eq!(call.float_of("eps"), -0.25);
    assert!(call.bool_of("flag"));
    assert_eq!(call.int_of("flag"), 1);
    assert_eq!(call.str_of("layout"), Some("BSND"));
    assert_eq!(call.ints_of("lens"), Some(&[3i64, 7][..]));
    assert_eq!(call.int_of("k"), -5);
}

/// Violations name dtypes as CANN's enum does (without the `ACL_` prefix), and unknown codes
/// by number.
#[test]
fn dtype_names_in_messages() {
    for (dtype, name) in [
        (ACL_FLOAT, "FLOAT"),
        (ACL_FLOAT16, "FLOAT16"),
        (ACL_BF16, "BF16"),
        (ACL_DOUBLE, "DOUBLE"),
        (ACL_INT32, "INT32"),
        (ACL_INT64, "INT64"),
        (ACL_INT16, "INT16"),
        (ACL_INT8, "INT8"),
        (ACL_UINT8, "UINT8"),
        (ACL_BOOL, "BOOL"),
    ] {
        assert_eq!(rules::dtype_name(dtype), name);
    }
    assert_eq!(rules::dtype_name(9999), "aclDataType 9999");
}
