//! Property tests of the operators' validation layers on the simulator (bodies in
//! `common/validation_props_cases.rs`).

mod common;

fn setup() {
    common::backend::select();
}

validation_props_suite!(setup = setup);
