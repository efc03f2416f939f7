//! Expert-parallel dispatch and combine on 2, 4 and 8 simulated ranks: the cases of
//! `common::expert_parallel_cases` on the simulator, or on the drop-in libraries with
//! `ASCEND_NPU_BACKEND=cann` (as many ranks as they report devices).

mod common;

expert_parallel_suite!(setup = common::ranks::setup_ranks);
