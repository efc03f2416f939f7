//! Device memory is returned when buffers drop, and the edges of slicing behave, on the
//! simulator (body in `common/buffer_lifetime_cases.rs`): one test in its own process, so that
//! free-memory readings are not disturbed by concurrent tests.

mod common;

fn setup() {
    common::backend::select();
}

buffer_lifetime_suite!(setup = setup);
