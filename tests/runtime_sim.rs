//! The safe runtime API on the simulator.

mod common;

fn setup() {
    ascend_npu::select_backend(ascend_npu::Backend::Sim).expect("the sim backend is compiled in");
}

runtime_suite!(setup = setup);
