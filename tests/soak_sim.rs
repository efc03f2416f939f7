//! A bounded soak test on the simulator (body in `common/soak_cases.rs`): threads and
//! streams mixing copies, kernels, an aclnn operator and frees. `ASCEND_NPU_SOAK_ITERS=N` sets the
//! iterations per thread (default 4), e.g. `ASCEND_NPU_SOAK_ITERS=500 cargo test --test soak_sim`.

mod common;

fn setup() {
    common::backend::select();
}

soak_suite!(setup = setup);
