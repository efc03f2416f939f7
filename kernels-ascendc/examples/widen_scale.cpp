// A kernel mixing operand widths, as the FP8 decode does: z = float(half(x) * alpha) for n bytes
// x, in one block. tests/kernels_sim.rs checks the shim's vector repeats against it: a 256-byte
// repeat holds 128 halfs or 64 floats, and a Cast is counted by its wider side, so n = 256 costs
// 2 (u8 -> half) + 2 (half Muls) + 4 (half -> float) repeats. n must be a multiple of 32.
#include "kernel_operator.h"

using namespace AscendC;

extern "C" __global__ __aicore__ void widen_scale(GM_ADDR x, GM_ADDR z, uint32_t n, float alpha) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> xQ;
    TQue<QuePosition::VECOUT, 1> zQ;
    TBuf<QuePosition::VECCALC> hBuf;
    pipe.InitBuffer(xQ, 1, n);
    pipe.InitBuffer(zQ, 1, n * sizeof(float));
    pipe.InitBuffer(hBuf, n * sizeof(half));
    GlobalTensor<uint8_t> gx;
    GlobalTensor<float> gz;
    gx.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(x), n);
    gz.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(z), n);

    LocalTensor<uint8_t> lx = xQ.AllocTensor<uint8_t>();
    DataCopy(lx, gx, n);
    xQ.EnQue(lx);
    lx = xQ.DeQue<uint8_t>();
    LocalTensor<half> h = hBuf.Get<half>();
    Cast(h, lx, RoundMode::CAST_NONE, int32_t(n));
    PipeBarrier<PIPE_V>();
    Muls(h, h, half(alpha), int32_t(n));
    PipeBarrier<PIPE_V>();
    LocalTensor<float> lz = zQ.AllocTensor<float>();
    Cast(lz, h, RoundMode::CAST_NONE, int32_t(n));
    zQ.EnQue(lz);
    xQ.FreeTensor(lx);
    lz = zQ.DeQue<float>();
    DataCopy(gz, lz, n);
    zQ.FreeTensor(lz);
}
