//! aclrtMemcpy*, aclrtMemset*.

use std::ffi::c_void;
use std::sync::mpsc;

use ascend_sys::{
    ACL_ERROR_RT_FEATURE_NOT_SUPPORT, StaticSymbols, aclError, aclrtMemcpyKind, aclrtStream,
};

use super::context::current;
use super::guard;
use super::stream::for_submit;
use crate::base::error::{SimError, SimResult};
use crate::ffi::state::machine;
use crate::runtime::copy::{CopyPlan, CopyShape, MemsetPlan};
use crate::runtime::stream::Stream;
use crate::runtime::task::Task;

/// Queues a checked copy. Copies touching pageable host memory complete before returning (the
/// documented behaviour), in stream order; the others run asynchronously.
fn submit_copy(api: &'static str, s: &Stream, plan: CopyPlan) -> SimResult<()> {
    if plan.is_host_to_host() {
        return Err(SimError::new(
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
            "asynchronous host-to-host copies are not supported in this run mode (ACL_HOST); \
             use aclrtMemcpy or a host memcpy",
        ));
    }
    if !plan.touches_pageable() {
        s.submit(Task::work(api, move |_| plan.execute()))?;
        return Ok(());
    }
    s.not_from_worker(api)?;
    let (tx, rx) = mpsc::channel();
    s.submit(Task::work(api, move |_| {
        // The caller gets this error directly, so it must not also become sticky.
        let _ = tx.send(plan.execute());
        Ok(())
    }))?;
    rx.recv().unwrap_or_else(|_| {
        Err(SimError::handle(
            "the stream was destroyed before the copy from/to pageable memory ran",
        ))
    })
}

unsafe extern "C" fn aclrtMemcpy(
    dst: *mut c_void,
    dest_max: usize,
    src: *const c_void,
    count: usize,
    kind: aclrtMemcpyKind,
) -> aclError {
    guard("aclrtMemcpy", || {
        let device = current()?.device;
        CopyPlan::plan_1d(
            machine()?,
            device,
            dst as u64,
            dest_max,
            src as u64,
            count,
            kind,
        )?
        .execute()
    })
}

unsafe extern "C" fn aclrtMemcpyAsync(
    dst: *mut c_void,
    dest_max: usize,
    src: *const c_void,
    count: usize,
    kind: aclrtMemcpyKind,
    stream: aclrtStream,
) -> aclError {
    guard("aclrtMemcpyAsync", || {
        let (s, device) = for_submit(stream)?;
        let plan = CopyPlan::plan_1d(
            machine()?,
            device,
            dst as u64,
            dest_max,
            src as u64,
            count,
            kind,
        )?;
        submit_copy("aclrtMemcpyAsync", &s, plan)
    })
}

unsafe extern "C" fn aclrtMemcpy2d(
    dst: *mut c_void,
    dpitch: usize,
    src: *const c_void,
    spitch: usize,
    width: usize,
    height: usize,
    kind: aclrtMemcpyKind,
) -> aclError {
    guard("aclrtMemcpy2d", || {
        let device = current()?.device;
        let shape = CopyShape {
            dst: dst as u64,
            dpitch,
            src: src as u64,
            spitch,
            width,
            height,
        };
        CopyPlan::plan(machine()?, device, shape, kind)?.execute()
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn aclrtMemcpy2dAsync(
    dst: *mut c_void,
    dpitch: usize,
    src: *const c_void,
    spitch: usize,
    width: usize,
    height: usize,
    kind: aclrtMemcpyKind,
    stream: aclrtStream,
) -> aclError {
    guard("aclrtMemcpy2dAsync", || {
        let (s, device) = for_submit(stream)?;
        let shape = CopyShape {
            dst: dst as u64,
            dpitch,
            src: src as u64,
            spitch,
            width,
            height,
        };
        let plan = CopyPlan::plan(machine()?, device, shape, kind)?;
        submit_copy("aclrtMemcpy2dAsync", &s, plan)
    })
}

unsafe extern "C" fn aclrtMemset(
    dev_ptr: *mut c_void,
    max_count: usize,
    value: i32,
    count: usize,
) -> aclError {
    guard("aclrtMemset", || {
        let device = current()?.device;
        MemsetPlan::plan(machine()?, device, dev_ptr as u64, max_count, value, count)?.execute()
    })
}

unsafe extern "C" fn aclrtMemsetAsync(
    dev_ptr: *mut c_void,
    max_count: usize,
    value: i32,
    count: usize,
    stream: aclrtStream,
) -> aclError {
    guard("aclrtMemsetAsync", || {
        let (s, device) = for_submit(stream)?;
        let plan = MemsetPlan::plan(machine()?, device, dev_ptr as u64, max_count, value, count)?;
        s.submit(Task::work("aclrtMemsetAsync", move |_| plan.execute()))?;
        Ok(())
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtMemcpy = Some(aclrtMemcpy);
    s.aclrtMemcpyAsync = Some(aclrtMemcpyAsync);
    s.aclrtMemcpy2d = Some(aclrtMemcpy2d);
    s.aclrtMemcpy2dAsync = Some(aclrtMemcpy2dAsync);
    s.aclrtMemset = Some(aclrtMemset);
    s.aclrtMemsetAsync = Some(aclrtMemsetAsync);
}
