//! A planned aclnn operator: the executor between phase one and phase two.

use std::marker::PhantomData;

use ascend_sys::{Api, aclOpExecutor};

use super::tensor::TensorUses;
use crate::checked_call::{CFn, c_call, c_fn};
use crate::error::{Error, Result};
use crate::runtime::{Access, Stream, record_drop_error, write_access};

/// The second phase of every aclnn operator: `aclnn<Op>(workspace, size, executor, stream)`.
pub type LaunchFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u64,
    *mut aclOpExecutor,
    ascend_sys::aclrtStream,
) -> ascend_sys::aclnnStatus;

/// One aclnn operator: both phases, resolved from the function table by one name, so a plan
/// can only be launched by its own operator's second phase.
pub(crate) trait Operator {
    /// The typed `aclnn<Op>GetWorkspaceSize`.
    type PhaseOne: Copy;
    /// `aclnn<Op>GetWorkspaceSize`, with its name for errors.
    fn phase_one(api: &Api) -> Result<CFn<'_, Self::PhaseOne>>;
    /// `aclnn<Op>`, with its name for errors.
    fn phase_two(api: &Api) -> Result<CFn<'_, LaunchFn>>;
    /// `Ok` when this CANN has both phases, else the error naming the one it lacks: how a
    /// caller with another path picks it before planning anything.
    fn available(api: &Api) -> Result<()> {
        Self::phase_one(api)?;
        Self::phase_two(api).map(|_| ())
    }
}

macro_rules! operators {
    ($($(#[$doc:meta])* $ty:ident = $one:ident: $pfn:ident, $two:ident;)*) => {$(
        $(#[$doc])*
        pub(crate) enum $ty {}

        impl Operator for $ty {
            type PhaseOne = <ascend_sys::$pfn as ascend_sys::FnPtr>::Target;
            fn phase_one(api: &Api) -> Result<CFn<'_, Self::PhaseOne>> {
                c_fn!(api, $one)
            }
            fn phase_two(api: &Api) -> Result<CFn<'_, LaunchFn>> {
                c_fn!(api, $two)
            }
        }
    )*};
}

operators! {
    /// `aclnnCast`.
    Cast = aclnnCastGetWorkspaceSize: PFN_aclnnCastGetWorkspaceSize, aclnnCast;
    /// `aclnnGroupedMatmulV4`.
    GroupedMatmulV4 = aclnnGroupedMatmulV4GetWorkspaceSize:
        PFN_aclnnGroupedMatmulV4GetWorkspaceSize, aclnnGroupedMatmulV4;
    /// `aclnnMoeGatingTopK`.
    MoeGatingTopK = aclnnMoeGatingTopKGetWorkspaceSize:
        PFN_aclnnMoeGatingTopKGetWorkspaceSize, aclnnMoeGatingTopK;
    /// `aclnnMoeInitRoutingV2`.
    MoeInitRoutingV2 = aclnnMoeInitRoutingV2GetWorkspaceSize:
        PFN_aclnnMoeInitRoutingV2GetWorkspaceSize, aclnnMoeInitRoutingV2;
    /// `aclnnMoeInitRoutingV3`.
    MoeInitRoutingV3 = aclnnMoeInitRoutingV3GetWorkspaceSize:
        PFN_aclnnMoeInitRoutingV3GetWorkspaceSize, aclnnMoeInitRoutingV3;
    /// `aclnnMoeFinalizeRoutingV2`.
    MoeFinalizeRoutingV2 = aclnnMoeFinalizeRoutingV2GetWorkspaceSize:
        PFN_aclnnMoeFinalizeRoutingV2GetWorkspaceSize, aclnnMoeFinalizeRoutingV2;
    /// `aclnnFusedInferAttentionScoreV3`.
    FusedInferAttentionScoreV3 = aclnnFusedInferAttentionScoreV3GetWorkspaceSize:
        PFN_aclnnFusedInferAttentionScoreV3GetWorkspaceSize, aclnnFusedInferAttentionScoreV3;
    /// `aclnnMatmul`.
    Matmul = aclnnMatmulGetWorkspaceSize: PFN_aclnnMatmulGetWorkspaceSize, aclnnMatmul;
    /// `aclnnWeightQuantBatchMatmulV2`.
    WeightQuantBatchMatmulV2 = aclnnWeightQuantBatchMatmulV2GetWorkspaceSize:
        PFN_aclnnWeightQuantBatchMatmulV2GetWorkspaceSize, aclnnWeightQuantBatchMatmulV2;
    /// `aclnnMoeDistributeDispatch` (V1).
    MoeDistributeDispatch = aclnnMoeDistributeDispatchGetWorkspaceSize:
        PFN_aclnnMoeDistributeDispatchGetWorkspaceSize, aclnnMoeDistributeDispatch;
    /// `aclnnMoeDistributeCombine` (V1).
    MoeDistributeCombine = aclnnMoeDistributeCombineGetWorkspaceSize:
        PFN_aclnnMoeDistributeCombineGetWorkspaceSize, aclnnMoeDistributeCombine;
    /// `aclnnMoeDistributeDispatchV2`.
    MoeDistributeDispatchV2 = aclnnMoeDistributeDispatchV2GetWorkspaceSize:
        PFN_aclnnMoeDistributeDispatchV2GetWorkspaceSize, aclnnMoeDistributeDispatchV2;
    /// `aclnnMoeDistributeCombineV2`.
    MoeDistributeCombineV2 = aclnnMoeDistributeCombineV2GetWorkspaceSize:
        PFN_aclnnMoeDistributeCombineV2GetWorkspaceSize, aclnnMoeDistributeCombineV2;
    /// `aclnnMlaPrologV3WeightNz`.
    MlaPrologV3WeightNz = aclnnMlaPrologV3WeightNzGetWorkspaceSize:
        PFN_aclnnMlaPrologV3WeightNzGetWorkspaceSize, aclnnMlaPrologV3WeightNz;
}

/// The executor an `aclnn<Op>GetWorkspaceSize` call created, its workspace size, and the
/// device buffers its tensors read and write.
///
/// Plans are made by this crate's operators only (the constructor is private), each for one
/// operator type, and [`Plan::launch`] runs that operator's second phase, use-tracked like
/// every other queued operation. Launching consumes the one-shot plan (the launch destroys the
/// executor, as documented); dropping an unlaunched plan destroys its executor.
#[must_use = "a plan does nothing until launched"]
pub struct Plan<'a> {
    stream: Stream,
    executor: *mut aclOpExecutor,
    workspace: u64,
    /// Phase two, `aclnn<Op>`.
    launch: CFn<'static, LaunchFn>,
    uses: Vec<Access<'a>>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a> Plan<'a> {
    /// Runs phase one of `O` on `stream`'s device: `phase_one(f, &mut size, &mut executor)`
    /// must call `f` (the operator's `aclnn<Op>GetWorkspaceSize`) with those out-pointers and
    /// every one of `tensors`, and return its status.
    pub(crate) fn new<O: Operator>(
        stream: &Stream,
        tensors: &[&dyn TensorUses<'a>],
        phase_one: impl FnOnce(O::PhaseOne, *mut u64, *mut *mut aclOpExecutor) -> i32,
    ) -> Result<Plan<'a>> {
        let api = stream.device().inner.api;
        let first = O::phase_one(api)?;
        let launch = O::phase_two(api)?;
        stream.bind()?;
        let mut workspace = 0u64;
        let mut executor = std::ptr::null_mut();
        first.check(phase_one(first.ptr(), &mut workspace, &mut executor))?;
        if executor.is_null() {
            return Err(Error::invalid(
                format!("{} returned no executor", first.name()),
                "an executor from phase one",
            ));
        }
        let mut uses = Vec::new();
        for t in tensors {
            t.uses_into(&mut uses);
        }
        Ok(Plan {
            stream: stream.clone(),
            executor,
            workspace,
            launch,
            uses,
            _borrow: PhantomData,
        })
    }

    /// Bytes of device workspace the launch needs.
    pub fn workspace_size(&self) -> u64 {
        self.workspace
    }

    /// The raw executor, for inspecting it with CANN functions this crate does not wrap.
    ///
    /// The plan still owns it: do not launch, destroy or make it repeatable through this
    /// handle, and do not use it after the plan is launched or dropped.
    pub fn as_raw(&self) -> *mut aclOpExecutor {
        self.executor
    }

    /// Runs phase two on the stream the plan was made for, after every conflicting use of the
    /// tensors' buffers on other streams. The workspace is allocated on that stream, so it is
    /// freed after the operator.
    pub fn launch(mut self) -> Result<()> {
        let stream = self.stream.clone();
        let size = usize::try_from(self.workspace).map_err(|_| {
            Error::invalid(
                format!(
                    "{} workspace of {} bytes",
                    self.launch.name(),
                    self.workspace
                ),
                "a size that fits usize",
            )
        })?;
        let workspace = stream.alloc_pooled::<u8>(size)?;
        let ptr = if size == 0 {
            std::ptr::null_mut()
        } else {
            crate::runtime::DeviceSlice::device_ptr(&workspace) as *mut std::ffi::c_void
        };
        let mut uses = std::mem::take(&mut self.uses);
        uses.push(write_access(&workspace));
        // Phase two consumes the executor, launched or not: Drop must not destroy it.
        let executor = std::mem::replace(&mut self.executor, std::ptr::null_mut());
        stream.track(&uses, || {
            stream.bind()?;
            // SAFETY: `executor` came from this plan's phase one of the same operator as
            // `launch`, and is launched once (taken out of the plan); `ptr` is a live device
            // allocation of the size phase one asked for (or null for none), freed after the
            // operator; the tensors' buffers are borrowed for 'a and ordered by use tracking.
            let status =
                unsafe { (self.launch.ptr())(ptr, self.workspace, executor, stream.raw()) };
            self.launch.check(status)
        })
    }
}

impl Drop for Plan<'_> {
    /// An unlaunched executor is destroyed: marking it repeatable first is what lets the caller
    /// destroy it (a one-shot executor belongs to its launch). If the operator refuses, the
    /// executor is leaked and the error kept for [`take_drop_errors`](crate::take_drop_errors).
    fn drop(&mut self) {
        if self.executor.is_null() {
            return;
        }
        let api = self.stream.device().inner.api;
        let result = self.stream.bind().and_then(|()| {
            // SAFETY: a live executor from phase one, never launched.
            unsafe { c_call!(api, aclSetAclOpExecutorRepeatable(self.executor)) }?;
            // SAFETY: the same executor, now repeatable, destroyed once and never used again.
            unsafe { c_call!(api, aclDestroyAclOpExecutor(self.executor)) }
        });
        if let Err(e) = result {
            record_drop_error(e);
        }
    }
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("op", &self.launch.name())
            .field("workspace", &self.workspace)
            .finish()
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::aclnn::AclTensor;
    use crate::{Backend, Device, select_backend};

    /// Whether the runtime still knows `executor`: marking it repeatable succeeds only on a live
    /// one (and is harmless on an unlaunched plan, whose Drop does the same).
    fn is_live(executor: *mut aclOpExecutor) -> bool {
        let api = crate::raw_api().unwrap();
        // SAFETY: the simulator validates the handle through its registry.
        unsafe { c_call!(api, aclSetAclOpExecutorRepeatable(executor)) }.is_ok()
    }

    #[test]
    fn dropping_an_unlaunched_plan_destroys_its_executor() {
        select_backend(Backend::Sim).unwrap();
        let device = Device::open(0).unwrap();
        let stream = device.new_stream().unwrap();
        let (tokens, experts, k) = (4, 8, 2);
        let logits = stream.upload(&vec![0.5f32; tokens * experts]).unwrap();
        let mut weights = stream.alloc_zeroed::<f32>(tokens * k).unwrap();
        let mut ids = stream.alloc_zeroed::<i32>(tokens * k).unwrap();
        let mut scores = stream.alloc_zeroed::<f32>(tokens * experts).unwrap();
        let x = AclTensor::new(&logits, &[tokens, experts]).unwrap();
        let y = AclTensor::new_mut(&mut weights, &[tokens, k]).unwrap();
        let idx = AclTensor::new_mut(&mut ids, &[tokens, k]).unwrap();
        let out = AclTensor::new_mut(&mut scores, &[tokens, experts]).unwrap();
        let plan = |stream: &Stream| {
            Plan::new::<MoeGatingTopK>(stream, &[&x, &y, &idx, &out], |f, ws, exec| {
                // SAFETY: live tensor handles, no bias; plain softmax top-2 in one group.
                unsafe {
                    f(
                        x.as_ptr(),
                        std::ptr::null(),
                        k as i64,
                        1,
                        1,
                        0,
                        0,
                        0,
                        false,
                        1.0,
                        1e-20,
                        y.as_ptr(),
                        idx.as_ptr(),
                        out.as_ptr(),
                        ws,
                        exec,
                    )
                }
            })
            .unwrap()
        };
        let unlaunched = plan(&stream);
        let executor = unlaunched.as_raw();
        assert!(is_live(executor));
        drop(unlaunched);
        assert!(!is_live(executor), "the dropped plan leaked its executor");

        let launched = plan(&stream);
        let executor = launched.as_raw();
        launched.launch().unwrap();
        stream.synchronize().unwrap();
        assert!(!is_live(executor), "the launch keeps the executor");
        let (errors, _) = crate::take_drop_errors();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
