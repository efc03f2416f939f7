//! HCCL collectives on simulated ranks: the cases of `common::hccl_cases` on the simulator
//! (8 devices), or on the drop-in libraries with `ASCEND_NPU_BACKEND=cann`.

mod common;

hccl_suite!(setup = common::ranks::setup_ranks);
