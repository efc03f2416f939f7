// Deliberately broken kernels: local/global memory rules. Each must fail its launch with the rule
// named in its comment; shim/tests checks that. Parameters: in = float[256], out = float[256].
#include "kernel_operator.h"
#include "../common/kernel_common.h"

using namespace AscendC;

// [capacity] 7 x 32 KiB of UB > 192 KiB.
extern "C" __global__ __aicore__ void broken_ub_capacity(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    pipe.InitBuffer(q, 7, 32 * 1024);
}

// [capacity] two 64 KiB L0C accumulators + one more > 128 KiB.
extern "C" __global__ __aicore__ void broken_l0c_capacity(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    TPipe pipe;
    TQue<QuePosition::CO1, 1> q;
    pipe.InitBuffer(q, 3, 64 * 1024);
}

// [align] a vector op on a sub-view 3 floats (12 bytes) into a buffer.
extern "C" __global__ __aicore__ void broken_misaligned(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TBuf<QuePosition::VECCALC> b;
    pipe.InitBuffer(b, 1024);
    LocalTensor<float> t = b.Get<float>();
    Duplicate(t[3], 1.0f, 8);
}

// [datacopy-len] DataCopy of 10 floats = 40 bytes, not a multiple of 32.
extern "C" __global__ __aicore__ void broken_copy_len(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 1024);
    GlobalTensor<float> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(in), 256);
    LocalTensor<float> t = q.AllocTensor<float>();
    DataCopy(t, g, 10);
    q.FreeTensor(t);
}

// [uninit-read] Add reads a freshly allocated (never written) tensor.
extern "C" __global__ __aicore__ void broken_uninit_read(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    TBuf<QuePosition::VECCALC> b;
    pipe.InitBuffer(q, 1, 1024);
    pipe.InitBuffer(b, 1024);
    GlobalTensor<float> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(in), 256);
    LocalTensor<float> x = q.AllocTensor<float>();
    DataCopy(x, g, 64);  // defines the first 64 floats only
    LocalTensor<float> y = b.Get<float>();
    Add(y, x, x, 128);
    q.FreeTensor(x);
}

// [gm-oob] DataCopy of elements [192, 256+64) from a 256-element GlobalTensor.
extern "C" __global__ __aicore__ void broken_gm_oob(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 1024);
    GlobalTensor<float> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(in), 256);
    LocalTensor<float> t = q.AllocTensor<float>();
    DataCopy(t, g[192], 128);
    q.FreeTensor(t);
}

// [gm-oob] SetGlobalBuffer claims 4096 floats of a 256-float launch buffer.
extern "C" __global__ __aicore__ void broken_gm_outside_launch(GM_ADDR in, GM_ADDR out) {
    GlobalTensor<float> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(in), 4096);
}

// [uninit-read] Mmad on an L0A tile nobody loaded.
extern "C" __global__ __aicore__ void broken_mmad_uninit(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    TPipe pipe;
    TBuf<QuePosition::A2> a;
    TBuf<QuePosition::B2> b;
    TBuf<QuePosition::CO1> c;
    pipe.InitBuffer(a, 16 * 16 * 2);
    pipe.InitBuffer(b, 16 * 16 * 2);
    pipe.InitBuffer(c, 16 * 16 * 4);
    Mmad(c.Get<float>(), a.Get<half>(), b.Get<half>(), MmadParams(16, 16, 16));
}

// [overlap] dst partially overlaps a source (only identical ranges may overlap).
extern "C" __global__ __aicore__ void broken_overlap(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TBuf<QuePosition::VECCALC> b;
    pipe.InitBuffer(b, 1024);
    LocalTensor<float> t = b.Get<float>();
    Duplicate(t, 1.0f, 256);
    Add(t[8], t, t, 64);
}
