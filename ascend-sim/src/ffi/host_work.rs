//! Host work on streams: aclrtLaunchHostFunc and the callback/report mechanism.

use std::ffi::c_void;

use ascend_sys::{
    ACL_CALLBACK_BLOCK, ACL_CALLBACK_NO_BLOCK, StaticSymbols, aclError, aclrtCallback,
    aclrtCallbackBlockType, aclrtHostFunc, aclrtStream,
};

use super::guard;
use super::stream::{for_submit, resolve};
use crate::base::error::SimError;
use crate::base::sync::Timeout;
use crate::ffi::state::sim;
use crate::runtime::callback::current_thread_id;
use crate::runtime::task::{Task, UserPtr};

unsafe extern "C" fn aclrtLaunchHostFunc(
    stream: aclrtStream,
    f: aclrtHostFunc,
    args: *mut c_void,
) -> aclError {
    guard("aclrtLaunchHostFunc", || {
        let f = f.ok_or_else(|| SimError::param("fn is NULL"))?;
        let (s, _) = for_submit(stream)?;
        if sim()?.reports.is_subscribed(s.handle) {
            return Err(SimError::param(format!(
                "stream {:#x} is subscribed for aclrtLaunchCallback; the documentation forbids \
                 mixing aclrtLaunchHostFunc with it on one stream",
                s.handle
            )));
        }
        let args = UserPtr(args);
        s.submit(Task::work("aclrtLaunchHostFunc", move |_| {
            let args = args;
            // SAFETY: the C contract of aclrtLaunchHostFunc: calling fn(args) on a runtime
            // thread in stream order is what the program asked for.
            unsafe { f(args.0) };
            Ok(())
        }))?;
        Ok(())
    })
}

unsafe extern "C" fn aclrtSubscribeReport(thread_id: u64, stream: aclrtStream) -> aclError {
    guard("aclrtSubscribeReport", || {
        let s = resolve(stream)?;
        sim()?.reports.subscribe(thread_id, s.handle)
    })
}

unsafe extern "C" fn aclrtUnSubscribeReport(thread_id: u64, stream: aclrtStream) -> aclError {
    guard("aclrtUnSubscribeReport", || {
        let s = resolve(stream)?;
        sim()?.reports.unsubscribe(thread_id, s.handle)
    })
}

unsafe extern "C" fn aclrtLaunchCallback(
    f: aclrtCallback,
    user_data: *mut c_void,
    block: aclrtCallbackBlockType,
    stream: aclrtStream,
) -> aclError {
    guard("aclrtLaunchCallback", || {
        let f = f.ok_or_else(|| SimError::param("fn is NULL"))?;
        let block = match block {
            ACL_CALLBACK_NO_BLOCK => false,
            ACL_CALLBACK_BLOCK => true,
            other => {
                return Err(SimError::param(format!(
                    "blockType {other} is invalid; expected ACL_CALLBACK_NO_BLOCK (0) or \
                     ACL_CALLBACK_BLOCK (1)"
                )));
            }
        };
        let (s, _) = for_submit(stream)?;
        sim()?.reports.deliver_check(s.handle)?;
        let data = UserPtr(user_data);
        let handle = s.handle;
        s.submit(Task::work("aclrtLaunchCallback", move |abort| {
            sim()?.reports.deliver(handle, f, data, block, abort)
        }))?;
        Ok(())
    })
}

unsafe extern "C" fn aclrtProcessReport(timeout: i32) -> aclError {
    guard("aclrtProcessReport", || {
        let timeout = Timeout::from_ms(timeout)?;
        sim()?.reports.process(current_thread_id(), timeout)
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtLaunchHostFunc = Some(aclrtLaunchHostFunc);
    s.aclrtSubscribeReport = Some(aclrtSubscribeReport);
    s.aclrtUnSubscribeReport = Some(aclrtUnSubscribeReport);
    s.aclrtLaunchCallback = Some(aclrtLaunchCallback);
    s.aclrtProcessReport = Some(aclrtProcessReport);
}
