//! Making aclnn calls from a rules::Call: device memory and C objects for every argument,
//! both phases through the C table.

use std::ffi::c_void;

use ascend_sim::rules::{Arg, Call, TensorMeta};
use ascend_sys::*;

use crate::acl;
use crate::common::{free, malloc, recent};

/// One C argument, created.
#[derive(Clone, Copy)]
enum Handle {
    Tensor(*mut aclTensor),
    List(*mut aclTensorList),
    Ints(*mut aclIntArray),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(*mut std::ffi::c_char),
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
    fn s(self) -> *mut std::ffi::c_char {
        match self {
            Handle::Str(v) => v,
            _ => panic!("not a string"),
        }
    }
}

/// The device memory and objects of one call, released on drop.
#[derive(Default)]
pub struct Made {
    /// The workspace phase one asked for.
    pub workspace: u64,
    /// Device memory of each tensor argument by name (the first tensor of a list).
    pub data: Vec<(&'static str, *mut c_void)>,
    memory: Vec<*mut c_void>,
    tensors: Vec<*mut aclTensor>,
    lists: Vec<*mut aclTensorList>,
    arrays: Vec<*mut aclIntArray>,
    strings: Vec<std::ffi::CString>,
}

impl Made {
    fn tensor(&mut self, meta: &TensorMeta, own: bool) -> *mut aclTensor {
        let size = match meta.dtype {
            ACL_FLOAT | ACL_INT32 => 4,
            ACL_FLOAT16 | ACL_BF16 | ACL_INT16 => 2,
            ACL_DOUBLE | ACL_INT64 => 8,
            _ => 1,
        };
        // ND tensors are stored as viewed (violations edit the view only); fractal formats
        // carry their storage dims.
        let storage = if meta.format == ACL_FORMAT_ND {
            &meta.dims
        } else {
            &meta.storage
        };
        let elems = storage.iter().map(|&d| d.max(0)).product::<i64>();
        let p = malloc((elems.max(meta.numel()) as usize * size).max(32));
        self.memory.push(p);
        let t = acl!(aclCreateTensor(
            meta.dims.as_ptr(),
            meta.dims.len() as u64,
            meta.dtype,
            std::ptr::null(),
            0,
            meta.format,
            storage.as_ptr(),
            storage.len() as u64,
            p
        ));
        assert!(!t.is_null(), "aclCreateTensor {meta:?}: {}", recent());
        if own {
            self.tensors.push(t);
        }
        t
    }

    /// Device memory of tensor argument `name`.
    pub fn ptr(&self, name: &str) -> *mut c_void {
        self.data
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, p)| p)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }

    fn arg(&mut self, name: &'static str, arg: &Arg) -> Handle {
        let before = self.memory.len();
        let h = self.arg_inner(arg);
        if self.memory.len() > before {
            self.data.push((name, self.memory[before]));
        }
        h
    }

    fn arg_inner(&mut self, arg: &Arg) -> Handle {
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
            Arg::Str(None) => Handle::Str(std::ptr::null_mut()),
            Arg::Str(Some(v)) => {
                self.strings
                    .push(std::ffi::CString::new(v.as_str()).expect("no NUL"));
                Handle::Str(self.strings.last().expect("pushed").as_ptr().cast_mut())
            }
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

/// The device to make `call` on: 0, or for a V1 MC2 call of A3's form (its `socForm` NULL)
/// the A3 device, which the `cann` provider does not have (`None`). V1 takes no `commAlg`: its
/// rules follow the SoC it runs on.
pub fn device_for(call: &Call) -> Option<i32> {
    let v1 = matches!(
        call.op,
        "aclnnMoeDistributeDispatch" | "aclnnMoeDistributeCombine"
    );
    if v1 && call.str_of("socForm").is_none() {
        super::a3_device()
    } else {
        Some(0)
    }
}

/// Makes `call` through the C entry point of its operator's first phase; returns the status
/// and the recent error message. A successful call's executor is released.
pub fn invoke(call: &Call) -> (i32, String) {
    let (rc, msg, exec, _made) = phase_one(call);
    if rc == ACL_SUCCESS {
        assert!(!exec.is_null());
        acl!(aclSetAclOpExecutorRepeatable(exec));
        acl!(aclDestroyAclOpExecutor(exec));
    }
    (rc, msg)
}

/// Phase one of `call`: the status, the recent error message, the executor (on success) and
/// the arguments' memory and objects.
pub fn phase_one(call: &Call) -> (i32, String, *mut aclOpExecutor, Made) {
    let mut made = Made::default();
    let h: Vec<Handle> = call.args.iter().map(|(n, a)| made.arg(n, a)).collect();
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
        "aclnnMlaPrologV3WeightNz" => acl!(aclnnMlaPrologV3WeightNzGetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].t(),
            h[5].t(),
            h[6].t(),
            h[7].t(),
            h[8].t(),
            h[9].t(),
            h[10].t(),
            h[11].t(),
            h[12].t(),
            h[13].t(),
            h[14].t(),
            h[15].t(),
            h[16].t(),
            h[17].t(),
            h[18].t(),
            h[19].t(),
            h[20].f(),
            h[21].f(),
            h[22].s(),
            h[23].b(),
            h[24].i(),
            h[25].i(),
            h[26].i(),
            h[27].i(),
            h[28].i(),
            h[29].i(),
            h[30].f(),
            h[31].f(),
            h[32].f(),
            h[33].t(),
            h[34].t(),
            h[35].t(),
            h[36].t(),
            h[37].t(),
            w,
            e
        )),
        "aclnnMoeDistributeDispatchV2" => acl!(aclnnMoeDistributeDispatchV2GetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].t(),
            h[5].s(),
            h[6].i(),
            h[7].i(),
            h[8].i(),
            h[9].s(),
            h[10].i(),
            h[11].i(),
            h[12].i(),
            h[13].i(),
            h[14].i(),
            h[15].i(),
            h[16].i(),
            h[17].i(),
            h[18].s(),
            h[19].t(),
            h[20].t(),
            h[21].t(),
            h[22].t(),
            h[23].t(),
            h[24].t(),
            h[25].t(),
            w,
            e
        )),
        "aclnnMoeDistributeCombineV2" => acl!(aclnnMoeDistributeCombineV2GetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].t(),
            h[5].t(),
            h[6].t(),
            h[7].t(),
            h[8].t(),
            h[9].t(),
            h[10].t(),
            h[11].t(),
            h[12].s(),
            h[13].i(),
            h[14].i(),
            h[15].i(),
            h[16].s(),
            h[17].i(),
            h[18].i(),
            h[19].i(),
            h[20].i(),
            h[21].i(),
            h[22].i(),
            h[23].i(),
            h[24].i(),
            h[25].i(),
            h[26].s(),
            h[27].t(),
            w,
            e
        )),
        // h[18] is `socForm`, which the device gives V1 (see `device_for`), not an argument.
        "aclnnMoeDistributeDispatch" => acl!(aclnnMoeDistributeDispatchGetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].t(),
            h[5].s(),
            h[6].i(),
            h[7].i(),
            h[8].i(),
            h[9].s(),
            h[10].i(),
            h[11].i(),
            h[12].i(),
            h[13].i(),
            h[14].i(),
            h[15].i(),
            h[16].i(),
            h[17].i(),
            h[19].t(),
            h[20].t(),
            h[21].t(),
            h[22].t(),
            h[23].t(),
            h[24].t(),
            h[25].t(),
            w,
            e
        )),
        // h[25] is `socForm`.
        "aclnnMoeDistributeCombine" => acl!(aclnnMoeDistributeCombineGetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].t(),
            h[5].t(),
            h[6].t(),
            h[7].t(),
            h[8].t(),
            h[9].t(),
            h[10].t(),
            h[11].s(),
            h[12].i(),
            h[13].i(),
            h[14].i(),
            h[15].s(),
            h[16].i(),
            h[17].i(),
            h[18].i(),
            h[19].i(),
            h[20].i(),
            h[21].i(),
            h[22].i(),
            h[23].i(),
            h[24].i(),
            h[26].t(),
            w,
            e
        )),
        "aclnnFusedInferAttentionScoreV3" => acl!(aclnnFusedInferAttentionScoreV3GetWorkspaceSize(
            h[0].t(),
            h[1].l(),
            h[2].l(),
            h[3].t(),
            h[4].t(),
            h[5].a(),
            h[6].a(),
            h[7].t(),
            h[8].t(),
            h[9].t(),
            h[10].t(),
            h[11].t(),
            h[12].t(),
            h[13].t(),
            h[14].t(),
            h[15].t(),
            h[16].t(),
            h[17].t(),
            h[18].t(),
            h[19].t(),
            h[20].t(),
            h[21].t(),
            h[22].t(),
            h[23].a(),
            h[24].t(),
            h[25].t(),
            h[26].t(),
            h[27].i(),
            h[28].f(),
            h[29].i(),
            h[30].i(),
            h[31].s(),
            h[32].i(),
            h[33].i(),
            h[34].i(),
            h[35].i(),
            h[36].i(),
            h[37].b(),
            h[38].i(),
            h[39].i(),
            h[40].t(),
            h[41].t(),
            w,
            e
        )),
        "aclnnMatmul" => acl!(aclnnMatmulGetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].i() as i8,
            w,
            e
        )),
        "aclnnWeightQuantBatchMatmulV2" => acl!(aclnnWeightQuantBatchMatmulV2GetWorkspaceSize(
            h[0].t(),
            h[1].t(),
            h[2].t(),
            h[3].t(),
            h[4].t(),
            h[5].t(),
            h[6].t(),
            h[7].i() as i32,
            h[8].t(),
            w,
            e
        )),
        other => panic!("no invoker for {other}: add one when adding its rule table"),
    };
    let msg = if rc == ACL_SUCCESS {
        String::new()
    } else {
        recent()
    };
    made.workspace = ws;
    (rc, msg, exec, made)
}

/// Phase two of `op` on `stream` (with the workspace `made` records), then a synchronisation; the status of the
/// launch and of the synchronisation.
pub fn phase_two(
    op: &str,
    exec: *mut aclOpExecutor,
    made: &mut Made,
    stream: aclrtStream,
) -> (i32, i32) {
    let api = crate::common::api();
    let f = match op {
        "aclnnMoeGatingTopK" => api.aclnnMoeGatingTopK(),
        "aclnnMoeInitRoutingV2" => api.aclnnMoeInitRoutingV2(),
        "aclnnMoeInitRoutingV3" => api.aclnnMoeInitRoutingV3(),
        "aclnnGroupedMatmulV4" => api.aclnnGroupedMatmulV4(),
        "aclnnMoeFinalizeRoutingV2" => api.aclnnMoeFinalizeRoutingV2(),
        "aclnnCast" => api.aclnnCast(),
        "aclnnMlaPrologV3WeightNz" => api.aclnnMlaPrologV3WeightNz(),
        "aclnnFusedInferAttentionScoreV3" => api.aclnnFusedInferAttentionScoreV3(),
        "aclnnMatmul" => api.aclnnMatmul(),
        "aclnnWeightQuantBatchMatmulV2" => api.aclnnWeightQuantBatchMatmulV2(),
        other => panic!("no launcher for {other}"),
    }
    .unwrap();
    let workspace = if made.workspace > 0 {
        let p = malloc(made.workspace as usize);
        made.memory.push(p);
        p
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: an executor from phase one, launched once, with the workspace it asked for.
    let launched = unsafe { f(workspace, made.workspace, exec, stream) };
    (launched, acl!(aclrtSynchronizeStream(stream)))
}
