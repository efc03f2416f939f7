//! The safe runtime API on the simulator (or the provider `ASCEND_NPU_BACKEND` names: see
//! `common::backend`).

mod common;

fn setup() {
    common::backend::select();
}

runtime_suite!(setup = setup);
