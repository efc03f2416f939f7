//! The vendor's dense matmuls (aclnnMatmul, aclnnWeightQuantBatchMatmulV2) on the simulator,
//! against f64 products; cases in `common/vendor_matmul_cases.rs`. Then each hardware rule of
//! the two operators (`ascend-sim/src/rules/aclnn/{matmul,weight_quant_bmm_v2}.rs`) broken by
//! a raw first-phase call that the safe wrappers would have refused, failing with the rule's id.

#![cfg(feature = "sim")]

mod common;

use std::collections::BTreeSet;

use ascend_npu::sim::rules::{self, Arg, Call, Enforcement, TensorMeta};
use ascend_npu::sys::{self, aclOpExecutor, aclTensor};
use ascend_npu::{Device, DeviceBuffer, DeviceSlice, Stream};

fn setup() {}

vendor_matmul_suite!(setup = setup);

const MATMUL: &str = "aclnnMatmul";
const WQBMM: &str = "aclnnWeightQuantBatchMatmulV2";

/// An edit of an operator's valid sample call (`rules::sample`) that breaks one rule, and no
/// rule checked before it.
type Violation = fn(&mut Call);

/// Rule id → the call that breaks it, for every rule of aclnnMatmul.
const MATMUL_CASES: &[(&str, Violation)] = &[
    ("matmul.self-required", |c| c.set("self", Arg::Tensor(None))),
    ("matmul.mat2-required", |c| c.set("mat2", Arg::Tensor(None))),
    ("matmul.out-required", |c| c.set("out", Arg::Tensor(None))),
    ("matmul.dtype", |c| {
        for name in ["self", "mat2", "out"] {
            c.edit_tensor(name, |t| t.dtype = sys::ACL_INT8);
        }
    }),
    ("matmul.same-dtype", |c| {
        c.edit_tensor("out", |t| t.dtype = sys::ACL_FLOAT16)
    }),
    ("matmul.rank", |c| {
        c.edit_tensor("self", |t| t.dims = vec![1, 1, 1, 1, 1, 3, 5])
    }),
    ("matmul.k-match", |c| {
        c.edit_tensor("mat2", |t| t.dims = vec![6, 4])
    }),
    ("matmul.out-shape", |c| {
        c.edit_tensor("out", |t| t.dims = vec![4, 3])
    }),
    ("matmul.cube-math-type", |c| {
        c.set("cubeMathType", Arg::Int(-1))
    }),
    ("matmul.use-fp16-not-bf16", |c| {
        c.set("cubeMathType", Arg::Int(2))
    }),
    ("matmul.hf32-float-only", |c| {
        for name in ["self", "mat2", "out"] {
            c.edit_tensor(name, |t| t.dtype = sys::ACL_FLOAT16);
        }
        c.set("cubeMathType", Arg::Int(3));
    }),
];

/// Rule id → the call that breaks it, for every rule of aclnnWeightQuantBatchMatmulV2.
const WQBMM_CASES: &[(&str, Violation)] = &[
    ("weight-quant-bmm-v2.x-required", |c| {
        c.set("x", Arg::Tensor(None))
    }),
    ("weight-quant-bmm-v2.weight-required", |c| {
        c.set("weight", Arg::Tensor(None))
    }),
    ("weight-quant-bmm-v2.antiquant-scale-required", |c| {
        c.set("antiquantScale", Arg::Tensor(None))
    }),
    ("weight-quant-bmm-v2.y-required", |c| {
        c.set("y", Arg::Tensor(None))
    }),
    ("weight-quant-bmm-v2.x-dtype", |c| {
        c.edit_tensor("x", |t| t.dtype = sys::ACL_INT8)
    }),
    ("weight-quant-bmm-v2.weight-dtype", |c| {
        c.edit_tensor("weight", |t| t.dtype = sys::ACL_FLOAT16)
    }),
    ("weight-quant-bmm-v2.x-rank", |c| {
        c.edit_tensor("x", |t| t.dims = vec![1, 3, 5])
    }),
    ("weight-quant-bmm-v2.weight-rank", |c| {
        c.edit_tensor("weight", |t| t.dims = vec![20])
    }),
    ("weight-quant-bmm-v2.k-match", |c| {
        c.edit_tensor("x", |t| t.dims = vec![3, 6])
    }),
    ("weight-quant-bmm-v2.kn-range", |c| {
        c.edit_tensor("weight", |t| t.dims = vec![5, 65536])
    }),
    ("weight-quant-bmm-v2.m-range", |c| {
        c.edit_tensor("x", |t| t.dims = vec![0, 5])
    }),
    // A multiple of 32, but not below k = 5.
    ("weight-quant-bmm-v2.group-size", |c| {
        c.set("antiquantGroupSize", Arg::Int(64))
    }),
    ("weight-quant-bmm-v2.scale-dtype", |c| {
        c.edit_tensor("antiquantScale", |t| t.dtype = sys::ACL_FLOAT16)
    }),
    ("weight-quant-bmm-v2.scale-shape", |c| {
        c.edit_tensor("antiquantScale", |t| t.dims = vec![2, 4])
    }),
    ("weight-quant-bmm-v2.offset-like-scale", |c| {
        c.edit_tensor("antiquantOffsetOptional", |t| t.dims = vec![1, 4])
    }),
    ("weight-quant-bmm-v2.quant-offset-needs-scale", |c| {
        c.set(
            "quantOffsetOptional",
            Arg::Tensor(Some(TensorMeta::new(&[4], sys::ACL_FLOAT))),
        )
    }),
    ("weight-quant-bmm-v2.no-output-quant", |c| {
        c.set(
            "quantScaleOptional",
            Arg::Tensor(Some(TensorMeta::new(&[4], sys::ACL_INT64))),
        )
    }),
    ("weight-quant-bmm-v2.bias", |c| {
        c.edit_tensor("biasOptional", |t| t.dtype = sys::ACL_FLOAT16)
    }),
    ("weight-quant-bmm-v2.y", |c| {
        c.edit_tensor("y", |t| t.dtype = sys::ACL_FLOAT16)
    }),
];

#[test]
fn each_vendor_matmul_rule_names_itself_when_violated() {
    common::backend::select();
    let stream = Device::open(0).unwrap().new_stream().unwrap();
    for (op, cases) in [(MATMUL, MATMUL_CASES), (WQBMM, WQBMM_CASES)] {
        let sample = rules::sample(op).unwrap();
        let (status, message) = first_phase(&stream, &sample);
        assert_eq!(status, 0, "the sample call of {op} fails: {message}");
        for &(id, violate) in cases {
            let rule = rules::rule(id).unwrap_or_else(|| panic!("no rule {id}"));
            let Enforcement::PhaseOne { status: want, .. } = rule.enforcement else {
                panic!("{id} is not checked in the first phase");
            };
            let mut call = sample.clone();
            violate(&mut call);
            let (status, message) = first_phase(&stream, &call);
            assert_eq!(status, want, "{id}: {message}");
            assert!(message.contains(&format!("[{id}]")), "{id}: {message}");
        }
    }
}

#[test]
fn the_cases_cover_every_rule_of_the_two_operators() {
    for (op, cases) in [(MATMUL, MATMUL_CASES), (WQBMM, WQBMM_CASES)] {
        let listed: BTreeSet<&str> = cases.iter().map(|&(id, _)| id).collect();
        assert_eq!(listed.len(), cases.len(), "{op}: an id listed twice");
        let table: BTreeSet<&str> = rules::all()
            .filter(|r| r.call == op)
            .map(|r| r.id)
            .collect();
        assert!(table.len() >= 10, "{op} has {} rules", table.len());
        assert_eq!(listed, table, "{op}: cases vs the rule table");
    }
}

/// The first phase (`…GetWorkspaceSize`) of `call`, one of the two operators with tensors as
/// `rules::Call` describes them (ND, contiguous, on zeroed device memory), through the active
/// provider's C table: its status and the runtime's recent error message.
fn first_phase(stream: &Stream, call: &Call) -> (i32, String) {
    let api = ascend_npu::raw_api().unwrap();
    stream.device().synchronize().unwrap(); // binds the device's context on this thread
    let mut memory: Vec<DeviceBuffer<u8>> = Vec::new();
    let mut tensors: Vec<*mut aclTensor> = Vec::new();
    let mut tensor = |name: &str| -> *mut aclTensor {
        let Arg::Tensor(Some(meta)) = call.arg(name) else {
            return std::ptr::null_mut();
        };
        let bytes = meta
            .dims
            .iter()
            .map(|&d| d.max(0) as usize)
            .product::<usize>()
            * 8;
        let buffer = stream.alloc_zeroed::<u8>(bytes.max(32)).unwrap();
        let create = api.aclCreateTensor().unwrap();
        // SAFETY: dims and storage dims of `len` elements; no strides (contiguous); the data
        // is device memory of at least 8 bytes per element, kept until the call returns.
        let t = unsafe {
            create(
                meta.dims.as_ptr(),
                meta.dims.len() as u64,
                meta.dtype,
                std::ptr::null(),
                0,
                sys::ACL_FORMAT_ND,
                meta.dims.as_ptr(),
                meta.dims.len() as u64,
                buffer.device_ptr() as *mut std::ffi::c_void,
            )
        };
        assert!(!t.is_null(), "aclCreateTensor {name} {meta:?}");
        memory.push(buffer);
        tensors.push(t);
        t
    };
    let int = |name: &str| match call.arg(name) {
        Arg::Int(v) => *v,
        other => panic!("{name} is {other:?}"),
    };
    let mut workspace = 0u64;
    let mut executor: *mut aclOpExecutor = std::ptr::null_mut();
    // SAFETY (both calls): tensors made above or NULL, valid out-pointers; the simulator checks
    // every argument before it uses one.
    let status = match call.op {
        MATMUL => {
            let f = api.aclnnMatmulGetWorkspaceSize().unwrap();
            let (a, b, out) = (tensor("self"), tensor("mat2"), tensor("out"));
            unsafe {
                f(
                    a,
                    b,
                    out,
                    int("cubeMathType") as i8,
                    &mut workspace,
                    &mut executor,
                )
            }
        }
        WQBMM => {
            let f = api.aclnnWeightQuantBatchMatmulV2GetWorkspaceSize().unwrap();
            let args = [
                "x",
                "weight",
                "antiquantScale",
                "antiquantOffsetOptional",
                "quantScaleOptional",
                "quantOffsetOptional",
                "biasOptional",
            ]
            .map(&mut tensor);
            let y = tensor("y");
            unsafe {
                f(
                    args[0],
                    args[1],
                    args[2],
                    args[3],
                    args[4],
                    args[5],
                    args[6],
                    int("antiquantGroupSize") as i32,
                    y,
                    &mut workspace,
                    &mut executor,
                )
            }
        }
        other => panic!("not a vendor matmul: {other}"),
    };
    let message = recent(api);
    if !executor.is_null() {
        // Released without a launch: only a repeatable executor may be destroyed by its caller.
        let repeatable = api.aclSetAclOpExecutorRepeatable().unwrap();
        let destroy = api.aclDestroyAclOpExecutor().unwrap();
        // SAFETY: the executor the successful first phase made, made repeatable, destroyed
        // once.
        unsafe {
            assert_eq!(repeatable(executor), 0);
            assert_eq!(destroy(executor), 0);
        }
    }
    let destroy = api.aclDestroyTensor().unwrap();
    for t in tensors {
        // SAFETY: tensors made above, destroyed once; their memory outlives them.
        assert_eq!(unsafe { destroy(t) }, 0);
    }
    drop(memory);
    (status, message)
}

/// The runtime's most recent error message on this thread (empty if none).
fn recent(api: &sys::Api) -> String {
    let get = api.aclGetRecentErrMsg().unwrap();
    // SAFETY: NULL or a NUL-terminated string owned by the runtime, copied at once.
    let p = unsafe { get() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: as above.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}
