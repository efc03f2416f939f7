//! Contexts.

use ascend_sys::{StaticSymbols, aclError, aclrtContext};

use super::{guard, write_out};
use crate::base::error::SimError;
use crate::ffi::state::sim;
use crate::runtime::context::{Context, current, set_current};
use crate::runtime::handles::as_ptr;

unsafe extern "C" fn aclrtCreateContext(context: *mut aclrtContext, device_id: i32) -> aclError {
    guard("aclrtCreateContext", || {
        if context.is_null() {
            return Err(SimError::param("output pointer context is NULL"));
        }
        let device = sim()?.device(device_id.into())?.id;
        super::init::require_init()?;
        let ctx = Context::create(device, false)?;
        set_current(ctx.handle);
        // SAFETY: output pointer per the C contract.
        unsafe { write_out(context, as_ptr(ctx.handle), "context") }
    })
}

unsafe extern "C" fn aclrtDestroyContext(context: aclrtContext) -> aclError {
    guard("aclrtDestroyContext", || {
        let ctx = sim()?.contexts.get(context)?;
        if ctx.is_default {
            return Err(SimError::param(format!(
                "context {:#x} is the default context of device {}; it is released by \
                 aclrtResetDevice, not aclrtDestroyContext",
                ctx.handle, ctx.device
            )));
        }
        ctx.destroy()
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
