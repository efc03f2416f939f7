// An example of a kernel written as plain Ascend C, as for CANN's compiler: no project macro, no
// registration. ascend-kernel-build reads its signature, registers it with the shim and builds it
// for the simulator (tests/kernels_sim.rs builds and launches it the way a user's build.rs would).
//
// z = x + alpha * y over n floats. Block b of the launch takes the b-th chunk of
// round_up(ceil(n / blocks), 8) elements, so every copy is a whole number of 32-byte blocks;
// n must be a multiple of 8.
#include "kernel_operator.h"

using namespace AscendC;

extern "C" __global__ __aicore__ void scaled_add(GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t n, float alpha) {
    const uint32_t blocks = uint32_t(GetBlockNum());
    const uint32_t chunk = ((n + blocks - 1) / blocks + 7) / 8 * 8;
    const uint32_t start = uint32_t(GetBlockIdx()) * chunk;
    if (start >= n) return;
    const uint32_t len = n - start < chunk ? n - start : chunk;

    TPipe pipe;
    TQue<QuePosition::VECIN, 1> xQ, yQ;
    TQue<QuePosition::VECOUT, 1> zQ;
    pipe.InitBuffer(xQ, 1, chunk * sizeof(float));
    pipe.InitBuffer(yQ, 1, chunk * sizeof(float));
    pipe.InitBuffer(zQ, 1, chunk * sizeof(float));
    GlobalTensor<float> gx, gy, gz;
    gx.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    gy.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y), n);
    gz.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(z), n);

    LocalTensor<float> lx = xQ.AllocTensor<float>();
    DataCopy(lx, gx[start], len);
    xQ.EnQue(lx);
    LocalTensor<float> ly = yQ.AllocTensor<float>();
    DataCopy(ly, gy[start], len);
    yQ.EnQue(ly);
    lx = xQ.DeQue<float>();
    ly = yQ.DeQue<float>();
    LocalTensor<float> lz = zQ.AllocTensor<float>();
    Muls(lz, ly, alpha, int32_t(len));
    PipeBarrier<PIPE_V>();
    Add(lz, lz, lx, int32_t(len));
    zQ.EnQue(lz);
    xQ.FreeTensor(lx);
    yQ.FreeTensor(ly);
    lz = zQ.DeQue<float>();
    DataCopy(gz[start], lz, len);
    zQ.FreeTensor(lz);
}
