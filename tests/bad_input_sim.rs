//! Bad input that only the device can see, and size products that overflow, on the
//! simulator (bodies in `common/bad_input_cases.rs`; see docs/RELIABILITY.md).

mod common;

fn setup() {
    common::backend::select();
}

bad_input_suite!(setup = setup);
