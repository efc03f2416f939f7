//! The aclnn base: tensors, scalars, arrays, tensor lists and executors (libnnopbase).

use std::ffi::c_void;
use std::sync::Arc;

use ascend_sys::{
    ACL_BF16, ACL_BOOL, ACL_DOUBLE, ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT16, ACL_INT32,
    ACL_INT64, ACL_UINT8, ACLNN_SUCCESS, StaticSymbols, aclBoolArray, aclDataType, aclFloatArray,
    aclFormat, aclIntArray, aclOpExecutor, aclScalar, aclTensor, aclTensorList, aclnnStatus,
    aclrtStream,
};

use super::context::current;
use super::stream::for_submit;
use super::{guard, guard_value};
use crate::base::error::{SimError, SimResult};
use crate::ffi::state::sim;
use crate::operators::aclnn::executor::{Executor, execute};
use crate::operators::aclnn::objects::{
    Array, Scalar, TensorDesc, TensorList, dtype_name, invalid, null,
};
use crate::operators::aclnn::ops::Planned;
use crate::runtime::handles::as_ptr;
use crate::runtime::task::Task;

/// Copies a C array of `len` elements, rejecting NULL with a non-zero length.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable elements (C contract).
unsafe fn c_slice<'a, T>(ptr: *const T, len: u64, what: &str) -> SimResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(format!("{what} is NULL but its length is {len}")));
    }
    let len =
        usize::try_from(len).map_err(|_| invalid(format!("{what} length {len} is too large")))?;
    // SAFETY: non-null and `len` elements long per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclCreateTensor(
    view_dims: *const i64,
    view_dims_num: u64,
    data_type: aclDataType,
    stride: *const i64,
    offset: i64,
    format: aclFormat,
    storage_dims: *const i64,
    storage_dims_num: u64,
    tensor_data: *mut c_void,
) -> *mut aclTensor {
    guard_value("aclCreateTensor", std::ptr::null_mut(), || {
        // SAFETY: the C contract: each array has the given number of elements.
        let (dims, storage) = unsafe {
            (
                c_slice(view_dims, view_dims_num, "viewDims")?,
                c_slice(storage_dims, storage_dims_num, "storageDims")?,
            )
        };
        let strides = if stride.is_null() {
            // NULL strides: contiguous row-major.
            let mut s = vec![1i64; dims.len()];
            for i in (0..dims.len().saturating_sub(1)).rev() {
                s[i] = s[i + 1].saturating_mul(dims[i + 1].max(1));
            }
            s
        } else {
            // SAFETY: one stride per view dim (C contract).
            unsafe { c_slice(stride, view_dims_num, "stride")? }.to_vec()
        };
        let desc = TensorDesc::new(
            dims.to_vec(),
            strides,
            offset,
            data_type,
            format,
            storage.to_vec(),
            tensor_data as u64,
        )?;
        let sim = sim()?;
        let handle = sim.tensors.reserve();
        sim.tensors.insert(handle, Arc::new(desc));
        Ok(as_ptr(handle).cast())
    })
}

unsafe extern "C" fn aclDestroyTensor(tensor: *const aclTensor) -> aclnnStatus {
    guard("aclDestroyTensor", || {
        sim()?.tensors.remove(tensor as *mut c_void).map(drop)
    })
}

unsafe extern "C" fn aclCreateScalar(value: *mut c_void, data_type: aclDataType) -> *mut aclScalar {
    guard_value("aclCreateScalar", std::ptr::null_mut(), || {
        let size = match data_type {
            ACL_FLOAT | ACL_INT32 => 4,
            ACL_FLOAT16 | ACL_BF16 | ACL_INT16 => 2,
            ACL_DOUBLE | ACL_INT64 => 8,
            ACL_INT8 | ACL_UINT8 | ACL_BOOL => 1,
            other => {
                return Err(invalid(format!(
                    "{} scalars are not simulated",
                    dtype_name(other)
                )));
            }
        };
        // SAFETY: `value` points to one scalar of `data_type` (C contract); copied now.
        let bytes = unsafe { c_slice(value.cast::<u8>(), size as u64, "value")? }.to_vec();
        let sim = sim()?;
        let handle = sim.scalars.reserve();
        sim.scalars.insert(
            handle,
            Arc::new(Scalar {
                dtype: data_type,
                bytes,
            }),
        );
        Ok(as_ptr(handle).cast())
    })
}

unsafe extern "C" fn aclDestroyScalar(scalar: *const aclScalar) -> aclnnStatus {
    guard("aclDestroyScalar", || {
        sim()?.scalars.remove(scalar as *mut c_void).map(drop)
    })
}

fn create_array(array: Array) -> SimResult<*mut c_void> {
    let sim = sim()?;
    let handle = sim.arrays.reserve();
    sim.arrays.insert(handle, Arc::new(array));
    Ok(as_ptr(handle))
}

unsafe extern "C" fn aclCreateIntArray(value: *const i64, size: u64) -> *mut aclIntArray {
    guard_value("aclCreateIntArray", std::ptr::null_mut(), || {
        // SAFETY: `size` elements (C contract); copied now.
        let v = unsafe { c_slice(value, size, "value")? }.to_vec();
        create_array(Array::Int(v)).map(|p| p.cast())
    })
}

unsafe extern "C" fn aclCreateFloatArray(value: *const f32, size: u64) -> *mut aclFloatArray {
    guard_value("aclCreateFloatArray", std::ptr::null_mut(), || {
        // SAFETY: as above.
        let v = unsafe { c_slice(value, size, "value")? }.to_vec();
        create_array(Array::Float(v)).map(|p| p.cast())
    })
}

unsafe extern "C" fn aclCreateBoolArray(value: *const bool, size: u64) -> *mut aclBoolArray {
    guard_value("aclCreateBoolArray", std::ptr::null_mut(), || {
        // SAFETY: as above.
        let v = unsafe { c_slice(value, size, "value")? }.to_vec();
        create_array(Array::Bool(v)).map(|p| p.cast())
    })
}

fn destroy_array(api: &'static str, array: *const c_void) -> aclnnStatus {
    guard(api, || sim()?.arrays.remove(array as *mut c_void).map(drop))
}

unsafe extern "C" fn aclDestroyIntArray(array: *const aclIntArray) -> aclnnStatus {
    destroy_array("aclDestroyIntArray", array.cast())
}

unsafe extern "C" fn aclDestroyFloatArray(array: *const aclFloatArray) -> aclnnStatus {
    destroy_array("aclDestroyFloatArray", array.cast())
}

unsafe extern "C" fn aclDestroyBoolArray(array: *const aclBoolArray) -> aclnnStatus {
    destroy_array("aclDestroyBoolArray", array.cast())
}

unsafe extern "C" fn aclCreateTensorList(
    value: *const *const aclTensor,
    size: u64,
) -> *mut aclTensorList {
    guard_value("aclCreateTensorList", std::ptr::null_mut(), || {
        // SAFETY: `size` tensor handles (C contract).
        let handles = unsafe { c_slice(value, size, "value")? };
        let sim = sim()?;
        for &h in handles {
            sim.tensors.get(h as *mut c_void)?;
        }
        let tensors = handles.iter().map(|&h| h as u64).collect();
        let handle = sim.tensor_lists.reserve();
        sim.tensor_lists
            .insert(handle, Arc::new(TensorList { tensors }));
        Ok(as_ptr(handle).cast())
    })
}

unsafe extern "C" fn aclDestroyTensorList(array: *const aclTensorList) -> aclnnStatus {
    guard("aclDestroyTensorList", || {
        let sim = sim()?;
        let list = sim.tensor_lists.remove(array as *mut c_void)?;
        // The list owns its tensors (documented): they go with it.
        for &t in &list.tensors {
            let _ = sim.tensors.remove(as_ptr(t));
        }
        Ok(())
    })
}

unsafe extern "C" fn aclSetAclOpExecutorRepeatable(executor: *mut aclOpExecutor) -> aclnnStatus {
    guard("aclSetAclOpExecutorRepeatable", || {
        sim()?.executors.get(executor.cast())?.set_repeatable();
        Ok(())
    })
}

unsafe extern "C" fn aclDestroyAclOpExecutor(executor: *mut aclOpExecutor) -> aclnnStatus {
    guard("aclDestroyAclOpExecutor", || {
        let sim = sim()?;
        let exec = sim.executors.get(executor.cast())?;
        if !exec.is_repeatable() {
            return Err(invalid(format!(
                "executor of {} is not repeatable: its launch destroys it, and the caller must not",
                exec.op
            )));
        }
        sim.executors.remove(executor.cast()).map(drop)
    })
}

fn rebind(
    api: &'static str,
    executor: *mut aclOpExecutor,
    output: bool,
    index: usize,
    addr: *mut c_void,
) -> aclnnStatus {
    guard(api, || {
        let exec = sim()?.executors.get(executor.cast())?;
        exec.rebind(output, index, addr as u64).map_err(|count| {
            invalid(format!(
                "index {index}, but the executor of {} has {count} such tensors",
                exec.op
            ))
        })
    })
}

unsafe extern "C" fn aclSetInputTensorAddr(
    executor: *mut aclOpExecutor,
    index: usize,
    _tensor: *mut aclTensor,
    addr: *mut c_void,
) -> aclnnStatus {
    rebind("aclSetInputTensorAddr", executor, false, index, addr)
}

unsafe extern "C" fn aclSetOutputTensorAddr(
    executor: *mut aclOpExecutor,
    index: usize,
    _tensor: *mut aclTensor,
    addr: *mut c_void,
) -> aclnnStatus {
    rebind("aclSetOutputTensorAddr", executor, true, index, addr)
}

unsafe extern "C" fn aclnnInit(_config_path: *const std::ffi::c_char) -> aclnnStatus {
    ACLNN_SUCCESS
}

unsafe extern "C" fn aclnnFinalize() -> aclnnStatus {
    ACLNN_SUCCESS
}

/// Looks a tensor handle up (NULL = absent optional tensor).
pub(super) fn tensor(handle: *const aclTensor) -> SimResult<Option<TensorDesc>> {
    if handle.is_null() {
        return Ok(None);
    }
    Ok(Some((*sim()?.tensors.get(handle as *mut c_void)?).clone()))
}

/// The values of an `aclIntArray` argument (None when NULL).
pub(super) fn int_array(handle: *const aclIntArray, what: &str) -> SimResult<Option<Vec<i64>>> {
    if handle.is_null() {
        return Ok(None);
    }
    match &*sim()?.arrays.get(handle as *mut c_void)? {
        Array::Int(v) => Ok(Some(v.clone())),
        other => Err(invalid(format!(
            "{what} is {other:?}; expected an int array"
        ))),
    }
}

/// The tensors of a list handle (NULL = absent).
pub(super) fn list(handle: *const aclTensorList) -> SimResult<Option<Vec<TensorDesc>>> {
    if handle.is_null() {
        return Ok(None);
    }
    let sim = sim()?;
    let list = sim.tensor_lists.get(handle as *mut c_void)?;
    list.tensors
        .iter()
        .map(|&t| sim.tensors.get_id(t).map(|d| (*d).clone()))
        .collect::<SimResult<Vec<_>>>()
        .map(Some)
}

/// Phase one: registers the planned executor and reports its workspace.
///
/// # Safety
/// The out-pointers are valid or NULL (C contract).
pub(super) unsafe fn finish_plan(
    op: &'static str,
    planned: Planned,
    workspace_size: *mut u64,
    executor: *mut *mut aclOpExecutor,
) -> SimResult<()> {
    if workspace_size.is_null() || executor.is_null() {
        return Err(null("workspaceSize or executor is NULL"));
    }
    let device = current()?.device;
    let workspace = planned.workspace;
    let exec = Executor::new(op, device, planned);
    let sim = sim()?;
    let handle = sim.executors.reserve();
    sim.executors.insert(handle, Arc::new(exec));
    // SAFETY: both checked non-NULL; host out-pointers per the C contract.
    unsafe {
        *workspace_size = workspace;
        *executor = as_ptr(handle).cast();
    }
    Ok(())
}

/// Phase two: checks the workspace and queues the executor on the stream.
pub(super) fn launch(
    op: &'static str,
    workspace: *mut c_void,
    workspace_size: u64,
    executor: *mut aclOpExecutor,
    stream: aclrtStream,
) -> SimResult<()> {
    let sim = sim()?;
    let exec = sim.executors.get(executor.cast())?;
    if exec.op != op {
        return Err(invalid(format!(
            "the executor was planned for {}, not {op}",
            exec.op
        )));
    }
    if exec.workspace > 0 {
        if workspace.is_null() || workspace_size < exec.workspace {
            return Err(invalid(format!(
                "{op} needs a workspace of {} bytes (from its GetWorkspaceSize); got {workspace_size} bytes at {workspace:p}",
                exec.workspace
            )));
        }
        sim.machine
            .map_device(workspace as u64, exec.workspace as usize)
            .map_err(|e| SimError::new(e.code, format!("workspace: {}", e.message)))?;
    }
    let (s, device) = for_submit(stream)?;
    if device != exec.device {
        return Err(invalid(format!(
            "the executor was planned on device {}, launched on device {device}",
            exec.device
        )));
    }
    if !exec.is_repeatable() {
        sim.executors.remove(executor.cast())?;
    }
    let (inputs, outputs) = exec.snapshot();
    let run = exec.run.clone();
    let names = exec.names.clone();
    let machine = &sim.machine;
    s.submit(Task::work(op, move |_| {
        execute(machine, device, &names, &run, &inputs, &outputs)
    }))?;
    Ok(())
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclCreateTensor = Some(aclCreateTensor);
    s.aclDestroyTensor = Some(aclDestroyTensor);
    s.aclCreateScalar = Some(aclCreateScalar);
    s.aclDestroyScalar = Some(aclDestroyScalar);
    s.aclCreateIntArray = Some(aclCreateIntArray);
    s.aclCreateFloatArray = Some(aclCreateFloatArray);
    s.aclCreateBoolArray = Some(aclCreateBoolArray);
    s.aclDestroyIntArray = Some(aclDestroyIntArray);
    s.aclDestroyFloatArray = Some(aclDestroyFloatArray);
    s.aclDestroyBoolArray = Some(aclDestroyBoolArray);
    s.aclCreateTensorList = Some(aclCreateTensorList);
    s.aclDestroyTensorList = Some(aclDestroyTensorList);
    s.aclSetAclOpExecutorRepeatable = Some(aclSetAclOpExecutorRepeatable);
    s.aclDestroyAclOpExecutor = Some(aclDestroyAclOpExecutor);
    s.aclSetInputTensorAddr = Some(aclSetInputTensorAddr);
    s.aclSetOutputTensorAddr = Some(aclSetOutputTensorAddr);
    s.aclnnInit = Some(aclnnInit);
    s.aclnnFinalize = Some(aclnnFinalize);
}
