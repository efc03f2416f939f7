//! Contexts.

use std::sync::Arc;

use ascend_sys::{StaticSymbols, aclError, aclrtContext};

use super::{guard, write_out};
use crate::base::error::{SimError, SimResult};
use crate::ffi::state::sim;
use crate::runtime::context::{Context, current_handle, set_current};
use crate::runtime::handles::as_ptr;

/// The calling thread's current context.
pub(crate) fn current() -> SimResult<Arc<Context>> {
    let handle = current_handle();
    if handle == 0 {
        return Err(SimError::no_context(
            "the calling thread has no current context; call aclrtSetDevice (or \
             aclrtSetCurrentContext) on this thread first",
        ));
    }
    sim()?.contexts.get_id(handle).map_err(|_| {
        SimError::no_context(format!(
            "the calling thread's current context {handle:#x} was destroyed (by \
             aclrtDestroyContext or the last aclrtResetDevice of its device); set a device or \
             context again"
        ))
    })
}

unsafe extern "C" fn aclrtCreateContext(context: *mut aclrtContext, device_id: i32) -> aclError {
    guard("aclrtCreateContext", || {
        if context.is_null() {
            return Err(SimError::param("output pointer context is NULL"));
        }
        let sim = sim()?;
        let device = sim.machine.device(device_id.into())?.id;
        super::init::require_init()?;
        let ctx = sim.new_context(device, false)?;
        set_current(ctx.handle);
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(context, as_ptr(ctx.handle), "context") }
    })
}

unsafe extern "C" fn aclrtDestroyContext(context: aclrtContext) -> aclError {
    guard("aclrtDestroyContext", || {
        let sim = sim()?;
        let ctx = sim.contexts.get(context)?;
        if ctx.is_default {
            return Err(SimError::param(format!(
                "context {:#x} is the default context of device {}; it is released by \
                 aclrtResetDevice, not aclrtDestroyContext",
                ctx.handle, ctx.device
            )));
        }
        sim.destroy_context(&ctx)
    })
}

unsafe extern "C" fn aclrtSetCurrentContext(context: aclrtContext) -> aclError {
    guard("aclrtSetCurrentContext", || {
        let ctx = sim()?.contexts.get(context)?;
        set_current(ctx.handle);
        Ok(())
    })
}

unsafe extern "C" fn aclrtGetCurrentContext(context: *mut aclrtContext) -> aclError {
    guard("aclrtGetCurrentContext", || {
        let ctx = current()?;
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(context, as_ptr(ctx.handle), "context") }
    })
}

pub(super) fn fill(s: &mut StaticSymbols) {
    s.aclrtCreateContext = Some(aclrtCreateContext);
    s.aclrtDestroyContext = Some(aclrtDestroyContext);
    s.aclrtSetCurrentContext = Some(aclrtSetCurrentContext);
    s.aclrtGetCurrentContext = Some(aclrtGetCurrentContext);
}
