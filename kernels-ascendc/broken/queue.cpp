// Deliberately broken kernels: TQue discipline. Parameters: in = float[256], out = float[256].
#include "kernel_operator.h"
#include "../common/kernel_common.h"

using namespace AscendC;

// [deque-empty] DeQue with nothing enqueued.
extern "C" __global__ __aicore__ void broken_deque_empty(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    pipe.InitBuffer(q, 2, 1024);
    LocalTensor<float> t = q.DeQue<float>();
    q.FreeTensor(t);
}

// [alloc-exhausted] three tensors held from a queue with two buffers.
extern "C" __global__ __aicore__ void broken_alloc_exhausted(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 2> q;
    pipe.InitBuffer(q, 2, 1024);
    LocalTensor<float> a = q.AllocTensor<float>();
    LocalTensor<float> b = q.AllocTensor<float>();
    LocalTensor<float> c = q.AllocTensor<float>();
    q.FreeTensor(a);
    q.FreeTensor(b);
    q.FreeTensor(c);
}

// [enque-depth] two EnQue without DeQue on a depth-1 queue.
extern "C" __global__ __aicore__ void broken_enque_depth(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> q;
    pipe.InitBuffer(q, 2, 1024);
    LocalTensor<float> a = q.AllocTensor<float>();
    LocalTensor<float> b = q.AllocTensor<float>();
    Duplicate(a, 0.0f, 256);
    Duplicate(b, 0.0f, 256);
    q.EnQue(a);
    q.EnQue(b);
}

// [tensor-leak] a tensor still held when the kernel returns.
extern "C" __global__ __aicore__ void broken_tensor_leak(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 1024);
    GlobalTensor<float> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(in), 256);
    LocalTensor<float> t = q.AllocTensor<float>();
    DataCopy(t, g, 256);
    q.EnQue(t);
}

// [use-after-free] a vector op on a tensor after FreeTensor.
extern "C" __global__ __aicore__ void broken_use_after_free(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> q;
    pipe.InitBuffer(q, 1, 1024);
    LocalTensor<float> t = q.AllocTensor<float>();
    Duplicate(t, 1.0f, 256);
    q.FreeTensor(t);
    Duplicate(t, 2.0f, 256);
}
