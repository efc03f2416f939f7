// Deliberately broken kernels: cube rules. Each must fail its launch with the rule named in its
// comment; shim/tests checks that. Parameters: in = float[256], out = float[256].
#include "kernel_operator.h"
#include "../common/kernel_common.h"

using namespace AscendC;

namespace {
// One 16 x 16 fractal each in L0A and L0B and `cBytes` of L0C, for the single-Mmad kernels.
struct L0Buffers {
    TPipe pipe;
    TBuf<QuePosition::A2> a;
    TBuf<QuePosition::B2> b;
    TBuf<QuePosition::CO1> c;
    __aicore__ explicit L0Buffers(uint32_t cBytes) {
        pipe.InitBuffer(a, 512);
        pipe.InitBuffer(b, 512);
        pipe.InitBuffer(c, cBytes);
    }
};
}  // namespace

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
    L0Buffers l0(1024);
    Mmad(l0.c.Get<float>(), l0.a.Get<half>(), l0.b.Get<half>(), MmadParams(4096, 16, 16));
}

// [uninit-read] Fixpipe moves 16 rows of L0C, of which the Mmad (m = 8) wrote only rows 0..7:
// the column block's one-run scan finds the hole, and the per-row scan names row 8 (byte 512).
extern "C" __global__ __aicore__ void broken_fixpipe_uninit(GM_ADDR in, GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    L0Buffers l0(16 * 16 * 4);
    InitConstValue(l0.a.Get<half>(), InitConstValueParams<half>(1, 1, 0, half(1.0f)));
    InitConstValue(l0.b.Get<half>(), InitConstValueParams<half>(1, 1, 0, half(1.0f)));
    SetFlag<HardEvent::MTE1_M>(EVENT_ID0);
    WaitFlag<HardEvent::MTE1_M>(EVENT_ID0);
    Mmad(l0.c.Get<float>(), l0.a.Get<half>(), l0.b.Get<half>(), MmadParams(8, 16, 16));
    SetFlag<HardEvent::M_FIX>(EVENT_ID0);
    WaitFlag<HardEvent::M_FIX>(EVENT_ID0);
    GlobalTensor<float> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(out), 256);
    FixpipeParamsV220 fp;
    fp.nSize = 16;
    fp.mSize = 16;
    fp.srcStride = 16;
    fp.dstStride = 16;
    fp.quantPre = QuantMode_t::NoQuant;
    Fixpipe<float, float, CFG_ROW_MAJOR>(g, l0.c.Get<float>(), fp);
}
