// Deliberately broken kernels: cube rules. Each must fail its launch with the rule named in its
// comment; shim/tests checks that. Parameters: in = float[256], out = float[256].
#include "kernel_operator.h"
#include "../common/kernel_common.h"

using namespace AscendC;

// [gemv-mode] A 1 x 32 tile loaded the fractal way (Nd2Nz to L1, LoadData into zZ) and multiplied
// with m = 1, as matmul.cpp did for decode: on 910B that Mmad runs in GEMV mode and reads A as a
// plain 32-element row, whose second half is row 1 of the zZ fractal (never written).
extern "C" __global__ __aicore__ void broken_gemv_mode(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    constexpr uint32_t k = 32, n = 16;
    TPipe pipe;
    TBuf<QuePosition::A1> a1;
    TBuf<QuePosition::B1> b1;
    TBuf<QuePosition::A2> a2;
    TBuf<QuePosition::B2> b2;
    TBuf<QuePosition::CO1> c;
    pipe.InitBuffer(a1, 16 * k * 2);
    pipe.InitBuffer(b1, n * k * 2);
    pipe.InitBuffer(a2, 16 * k * 2);
    pipe.InitBuffer(b2, n * k * 2);
    pipe.InitBuffer(c, 16 * n * 4);
    GlobalTensor<half> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(in), 512);
    Nd2NzParams nz;
    nz.ndNum = 1;
    nz.nValue = 1;
    nz.dValue = k;
    nz.srcDValue = k;
    nz.dstNzC0Stride = 16;
    nz.dstNzNStride = 1;
    DataCopy(a1.Get<half>(), g, nz);
    nz.nValue = n;
    nz.dstNzC0Stride = n;
    DataCopy(b1.Get<half>(), g, nz);
    SetFlag<HardEvent::MTE2_MTE1>(EVENT_ID0);
    WaitFlag<HardEvent::MTE2_MTE1>(EVENT_ID0);
    LoadData2DParams ld;
    ld.startIndex = 0;
    ld.repeatTimes = k / 16;
    ld.srcStride = 1;
    LoadData(a2.Get<half>(), a1.Get<half>(), ld);
    for (uint32_t kb = 0; kb < k / 16; ++kb) {
        ld.startIndex = kb;
        ld.repeatTimes = 1;
        LoadData(b2.Get<half>()[kb * n * 16], b1.Get<half>(), ld);
    }
    SetFlag<HardEvent::MTE1_M>(EVENT_ID0);
    WaitFlag<HardEvent::MTE1_M>(EVENT_ID0);
    Mmad(c.Get<float>(), a2.Get<half>(), b2.Get<half>(), MmadParams(1, n, k));
}

// [cube-params] Mmad m = 4096: m, n and k each lie in [0, 4095].
extern "C" __global__ __aicore__ void broken_mmad_size(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    TPipe pipe;
    TBuf<QuePosition::A2> a;
    TBuf<QuePosition::B2> b;
    TBuf<QuePosition::CO1> c;
    pipe.InitBuffer(a, 512);
    pipe.InitBuffer(b, 512);
    pipe.InitBuffer(c, 1024);
    Mmad(c.Get<float>(), a.Get<half>(), b.Get<half>(), MmadParams(4096, 16, 16));
}
