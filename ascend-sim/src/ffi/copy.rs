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
use crate::runtime::machine::Machine;
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

/// Plans a copy on the device it targets and runs it: at once on the calling thread for the
/// synchronous calls (`stream` `None`: the current context's device), else queued on `stream`.
fn copy(
    api: &'static str,
    stream: Option<aclrtStream>,
    plan: impl FnOnce(&'static Machine, usize) -> SimResult<CopyPlan>,
) -> SimResult<()> {
    match stream {
        None => plan(machine()?, current()?.device)?.execute(),
        Some(stream) => {
            let (s, device) = for_submit(stream)?;
            submit_copy(api, &s, plan(machine()?, device)?)
        }
    }
}

/// `aclrtMemcpy[Async]`: a 1-D copy on `stream`, or synchronous.
fn memcpy(
    api: &'static str,
    (dst, dest_max): (*mut c_void, usize),
    (src, count): (*const c_void, usize),
    kind: aclrtMemcpyKind,
    stream: Option<aclrtStream>,
) -> aclError {
    guard(api, || {
        copy(api, stream, |machine, device| {
            CopyPlan::plan_1d(
                machine, device, dst as u64, dest_max, src as u64, count, kind,
            )
        })
    })
}

unsafe extern "C" fn aclrtMemcpy(
    dst: *mut c_void,
    dest_max: usize,
    src: *const c_void,
    count: usize,
    kind: aclrtMemcpyKind,
) -> aclError {
    memcpy("aclrtMemcpy", (dst, dest_max), (src, count), kind, None)
}

unsafe extern "C" fn aclrtMemcpyAsync(
    dst: *mut c_void,
    dest_max: usize,
    src: *const c_void,
    count: usize,
    kind: aclrtMemcpyKind,
    stream: aclrtStream,
) -> aclError {
    memcpy(
        "aclrtMemcpyAsync",
        (dst, dest_max),
        (src, count),
        kind,
        Some(stream),
    )
}

/// The shape of an `aclrtMemcpy2d[Async]` call: destination and pitch, source and pitch,
/// (width, height) in bytes and rows.
fn shape_2d(
    (dst, dpitch): (*mut c_void, usize),
    (src, spitch): (*const c_void, usize),
    (width, height): (usize, usize),
) -> CopyShape {
    CopyShape {
        dst: dst as u64,
        dpitch,
        src: src as u64,
        spitch,
        width,
        height,
    }
}

/// `aclrtMemcpy2d[Async]`: a pitched copy on `stream`, or synchronous.
fn memcpy_2d(
    api: &'static str,
    shape: CopyShape,
    kind: aclrtMemcpyKind,
    stream: Option<aclrtStream>,
) -> aclError {
    guard(api, || {
        copy(api, stream, |machine, device| {
            CopyPlan::plan(machine, device, shape, kind)
        })
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
    let shape = shape_2d((dst, dpitch), (src, spitch), (width, height));
    memcpy_2d("aclrtMemcpy2d", shape, kind, None)
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
    let shape = shape_2d((dst, dpitch), (src, spitch), (width, height));
    memcpy_2d("aclrtMemcpy2dAsync", shape, kind, Some(stream))
}

/// `aclrtMemset[Async]`: `count` bytes of `value` at `dev_ptr` (`max_count` bytes there) on
/// `stream`, or at once.
fn memset(
    api: &'static str,
    (dev_ptr, max_count, value, count): (*mut c_void, usize, i32, usize),
    stream: Option<aclrtStream>,
) -> aclError {
    guard(api, || {
        let (queue, device) = match stream {
            Some(stream) => {
                let (s, device) = for_submit(stream)?;
                (Some(s), device)
            }
            None => (None, current()?.device),
        };
        let plan = MemsetPlan::plan(machine()?, device, dev_ptr as u64, max_count, value, count)?;
        match queue {
            Some(s) => s.submit(Task::work(api, move |_| plan.execute())).map(drop),
            None => plan.execute(),
        }
    })
}

unsafe extern "C" fn aclrtMemset(
    dev_ptr: *mut c_void,
    max_count: usize,
    value: i32,
    count: usize,
) -> aclError {
    memset("aclrtMemset", (dev_ptr, max_count, value, count), None)
}

unsafe extern "C" fn aclrtMemsetAsync(
    dev_ptr: *mut c_void,
    max_count: usize,
    value: i32,
    count: usize,
    stream: aclrtStream,
) -> aclError {
    memset(
        "aclrtMemsetAsync",
        (dev_ptr, max_count, value, count),
        Some(stream),
    )
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtMemcpy = Some(aclrtMemcpy);
    s.aclrtMemcpyAsync = Some(aclrtMemcpyAsync);
    s.aclrtMemcpy2d = Some(aclrtMemcpy2d);
    s.aclrtMemcpy2dAsync = Some(aclrtMemcpy2dAsync);
    s.aclrtMemset = Some(aclrtMemset);
    s.aclrtMemsetAsync = Some(aclrtMemsetAsync);
}
