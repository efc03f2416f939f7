//! The hardware rule table (`ascend_sim::rules`): one violating call per first-phase rule fails
//! with that rule's id, the valid sample of each operator passes, every rule names a test that
//! exists, and `docs/HARDWARE_RULES.md` is what the table generates.

// The `acl!` helper calls the C table with test arguments; every call site is an FFI call
// by design, so the arguments being expanded inside its unsafe block is intended.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;

use std::ffi::c_void;
use std::path::PathBuf;

use ascend_sim::rules::{self, Arg, Call, Enforcement, TensorMeta};
use ascend_sys::*;
use common::{Device, free, malloc, recent};

/// One C argument, created.
#[derive(Clone, Copy)]
enum Handle {
    Tensor(*mut aclTensor),
    List(*mut aclTensorList),
    Ints(*mut aclIntArray),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Handle {
    fn t(self) -> *mut aclTensor {
        match self {
            Handle::Tensor(t) => t,
            _ => panic!("not a tensor"),
        }
    }
    fn l(self) -> *mut aclTensorList {
        match self {
            Handle::List(l) => l,
            _ => panic!("not a list"),
        }
    }
    fn a(self) -> *mut aclIntArray {
        match self {
            Handle::Ints(a) => a,
            _ => panic!("not an int array"),
        }
    }
    fn i(self) -> i64 {
        match self {
            Handle::Int(v) => v,
            _ => panic!("not an int"),
        }
    }
    fn f(self) -> f64 {
        match self {
            Handle::Float(v) => v,
            _ => panic!("not a float"),
        }
    }
    fn b(self) -> bool {
        match self {
            Handle::Bool(v) => v,
            _ => panic!("not a bool"),
        }
    }
}

/// The device memory and objects of one call, released on drop.
#[derive(Default)]
struct Made {
    memory: Vec<*mut c_void>,
    tensors: Vec<*mut aclTensor>,
    lists: Vec<*mut aclTensorList>,
    arrays: Vec<*mut aclIntArray>,
}

impl Made {
    fn tensor(&mut self, meta: &TensorMeta, own: bool) -> *mut aclTensor {
        let size = match meta.dtype {
            ACL_FLOAT | ACL_INT32 => 4,
            ACL_FLOAT16 | ACL_BF16 | ACL_INT16 => 2,
            ACL_DOUBLE | ACL_INT64 => 8,
            _ => 1,
        };
        let p = malloc((meta.numel() as usize * size).max(32));
        self.memory.push(p);
        let t = acl!(aclCreateTensor(
            meta.dims.as_ptr(),
            meta.dims.len() as u64,
            meta.dtype,
            std::ptr::null(),
            0,
            ACL_FORMAT_ND,
            meta.dims.as_ptr(),
            meta.dims.len() as u64,
            p
        ));
        assert!(!t.is_null(), "aclCreateTensor {meta:?}: {}", recent());
        if own {
            self.tensors.push(t);
        }
        t
    }

    fn arg(&mut self, arg: &Arg) -> Handle {
        match arg {
            Arg::Tensor(None) => Handle::Tensor(std::ptr::null_mut()),
            Arg::Tensor(Some(m)) => Handle::Tensor(self.tensor(m, true)),
            Arg::List(None) => Handle::List(std::ptr::null_mut()),
            Arg::List(Some(ms)) => {
                let ts: Vec<*const aclTensor> = ms
                    .iter()
                    .map(|m| self.tensor(m, false).cast_const())
                    .collect();
                let l = acl!(aclCreateTensorList(ts.as_ptr(), ts.len() as u64));
                assert!(!l.is_null(), "aclCreateTensorList: {}", recent());
                self.lists.push(l);
                Handle::List(l)
            }
            Arg::Ints(None) => Handle::Ints(std::ptr::null_mut()),
            Arg::Ints(Some(v)) => {
                let a = acl!(aclCreateIntArray(v.as_ptr(), v.len() as u64));
                assert!(!a.is_null(), "aclCreateIntArray: {}", recent());
                self.arrays.push(a);
                Handle::Ints(a)
            }
            Arg::Int(v) => Handle::Int(*v),
            Arg::Float(v) => Handle::Float(*v),
            Arg::Bool(v) => Handle::Bool(*v),
        }
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for &t in &self.tensors {
            acl!(aclDestroyTensor(t));
        }
        for &l in &self.lists {
            acl!(aclDestroyTensorList(l));
        }
        for &a in &self.arrays {
            acl!(aclDestroyIntArray(a));
        }
        for &p in &self.memory {
            free(p);
        }
    }
}

/// Makes `call` through the C entry point of its operator's first phase; returns the status
/// and the recent error message. A successful call's executor is released.
fn invoke(call: &Call) -> (i32, String) {
    let mut made = Made::default();
    let h: Vec<Handle> = call.args.iter().map(|(_, a)| made.arg(a)).collect();
    let mut ws = 0u64;
    let mut exec: *mut aclOpExecutor = std::ptr::null_mut();
    let (w, e) = (&mut ws as *mut u64, &mut exec as *mut *mut aclOpExecutor);
    let rc = match call.op {
        "aclnnMoeGatingTopK" => acl!(aclnnMoeGatingTopKGetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].i(),
            h[3].i(),
            h[4].i(),
            h[5].i(),
            h[6].i(),
            h[7].i(),
            h[8].b(),
            h[9].f(),
            h[10].f(),
            h[11].t(),
            h[12].t(),
            h[13].t(),
            w,
            e
        )),
        "aclnnMoeInitRoutingV2" => acl!(aclnnMoeInitRoutingV2GetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].i(),
            h[3].i(),
            h[4].i(),
            h[5].i(),
            h[6].i(),
            h[7].b(),
            h[8].t(),
            h[9].t(),
            h[10].t(),
            h[11].t(),
            w,
            e
        )),
        "aclnnMoeInitRoutingV3" => acl!(aclnnMoeInitRoutingV3GetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].i(),
            h[5].i(),
            h[6].i(),
            h[7].i(),
            h[8].i(),
            h[9].b(),
            h[10].i(),
            h[11].a(),
            h[12].i(),
            h[13].t(),
            h[14].t(),
            h[15].t(),
            h[16].t(),
            w,
            e
        )),
        "aclnnGroupedMatmulV4" => acl!(aclnnGroupedMatmulV4GetWorkspaceSize(
            h[0].l(),
            h[1].l(),
            h[2].l(),
            h[3].l(),
            h[4].l(),
            h[5].l(),
            h[6].l(),
            h[7].l(),
            h[8].t(),
            h[9].l(),
            h[10].l(),
            h[11].l(),
            h[12].i(),
            h[13].i(),
            h[14].i(),
            h[15].i(),
            h[16].l(),
            h[17].l(),
            h[18].l(),
            w,
            e
        )),
        "aclnnMoeFinalizeRoutingV2" => acl!(aclnnMoeFinalizeRoutingV2GetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].t(),
            h[5].t(),
            h[6].t(),
            h[7].i(),
            h[8].t(),
            w,
            e
        )),
        "aclnnCast" => acl!(aclnnCastGetWorkspaceSize(
            h[0].t(),
            h[1].i() as aclDataType,
            h[2].t(),
            w,
            e
        )),
        other => panic!("no invoker for {other}: add one when adding its rule table"),
    };
    let msg = if rc == ACL_SUCCESS {
        assert!(!exec.is_null());
        acl!(aclSetAclOpExecutorRepeatable(exec));
        acl!(aclDestroyAclOpExecutor(exec));
        String::new()
    } else {
        recent()
    };
    (rc, msg)
}

fn phase_one_ops() -> Vec<&'static str> {
    let mut ops = Vec::new();
    for r in rules::all() {
        if matches!(r.enforcement, Enforcement::PhaseOne { .. }) && !ops.contains(&r.call) {
            ops.push(r.call);
        }
    }
    ops
}

#[test]
fn every_operator_sample_is_valid() {
    let _d = Device::set(0);
    for op in phase_one_ops() {
        let call = rules::sample(op).unwrap_or_else(|| panic!("{op} has rules but no sample"));
        let (rc, msg) = invoke(&call);
        assert_eq!(rc, ACL_SUCCESS, "the sample call of {op} fails: {msg}");
    }
}

#[test]
fn every_phase_one_rule_fires() {
    let _d = Device::set(0);
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
        let (prefix, what) = r.id.split_once('.').unwrap_or(("", ""));
        assert!(
            !prefix.is_empty()
                && !what.is_empty()
                && r.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c)),
            "rule id {} is not `op.what` in lowercase kebab case",
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
