// Deliberately broken kernels: cross-core flags of Mix kernels.
// Parameters: in = float[256], out = float[256].
#include "kernel_operator.h"
#include "../common/kernel_common.h"

using namespace AscendC;

// [crosscore-deadlock] the AIVs wait for a flag their AIC never sets (hangs on the NPU).
extern "C" __global__ __aicore__ void broken_crosscore_deadlock(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIV {
        CrossCoreWaitFlag(3);
    }
}

// [crosscore-left-set] the AIC sets a flag no AIV ever waits for.
extern "C" __global__ __aicore__ void broken_crosscore_left_set(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        CrossCoreSetFlag<2, PIPE_FIX>(4);
    }
}

// [crosscore-mode] cross-core flags in a vector-only kernel (there is no AIC to talk to).
extern "C" __global__ __aicore__ void broken_crosscore_not_mix(GM_ADDR in, GM_ADDR out) {
    CrossCoreSetFlag<2, PIPE_MTE3>(0);
}

// [flag-id] cross-core flag id 16: A2 has ids 0..15.
extern "C" __global__ __aicore__ void broken_crosscore_id(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        CrossCoreSetFlag<2, PIPE_FIX>(16);
    }
}
