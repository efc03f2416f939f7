// Deliberately broken kernels: flags, barriers, types and kernel kinds.
// Parameters: in = float[256], out = float[256].
#include "kernel_operator.h"
#include "../common/kernel_common.h"

using namespace AscendC;

// [flag-wait-unset] WaitFlag with no SetFlag (hangs on the NPU).
extern "C" __global__ __aicore__ void broken_wait_unset(GM_ADDR in, GM_ADDR out) {
    WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
}

// [flag-left-set] SetFlag never waited.
extern "C" __global__ __aicore__ void broken_flag_left_set(GM_ADDR in, GM_ADDR out) {
    SetFlag<HardEvent::V_MTE3>(EVENT_ID1);
}

// [flag-double-set] the same flag set twice.
extern "C" __global__ __aicore__ void broken_flag_double_set(GM_ADDR in, GM_ADDR out) {
    SetFlag<HardEvent::MTE2_V>(EVENT_ID2);
    SetFlag<HardEvent::MTE2_V>(EVENT_ID2);
}

// [pipe-barrier] PipeBarrier<PIPE_S> is illegal.
extern "C" __global__ __aicore__ void broken_barrier_s(GM_ADDR in, GM_ADDR out) {
    PipeBarrier<PIPE_S>();
}

// [cast-mode] float -> bfloat16 has no CAST_NONE on 910B.
extern "C" __global__ __aicore__ void broken_cast_mode(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TBuf<QuePosition::VECCALC> b;
    pipe.InitBuffer(b, 2048);
    LocalTensor<float> f = b.Get<float>(256);
    LocalTensor<bfloat16_t> h = b.GetWithOffset<bfloat16_t>(256, 1024);
    Duplicate(f, 1.0f, 256);
    Cast(h, f, RoundMode::CAST_NONE, 256);
}

// [position] an AIC-only kernel asking for UB.
extern "C" __global__ __aicore__ void broken_position(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 1024);
}

// [kernel-type] declares two kinds: it is registered as the first (vector-only, see the kernel
// manifest), so the second declaration disagrees with the registration.
extern "C" __global__ __aicore__ void broken_kernel_type(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
}

// [event-pool] a seventh AllocEventID of one event type: the pool holds ids 0..5.
extern "C" __global__ __aicore__ void broken_event_pool(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    for (int i = 0; i < 7; ++i) pipe.AllocEventID<HardEvent::V_MTE3>();
}
