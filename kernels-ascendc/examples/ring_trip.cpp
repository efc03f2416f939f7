// A workspace round trip, as a Mix kernel's ring makes one between cores: x -> UB -> ws, then
// ws -> UB -> z, n floats in one block. With peek = 1 the block first reads ws, before it has
// written it. tests/kernels_sim.rs checks the shim's exchange-memory counters against it: ws is
// exchange memory (written before it is read) without the peek, and not with it. n must be a
// multiple of 8.
#include "kernel_operator.h"

using namespace AscendC;

extern "C" __global__ __aicore__ void ring_trip(GM_ADDR x, GM_ADDR ws, GM_ADDR z, uint32_t n, uint32_t peek) {
    TPipe pipe;
    TBuf<QuePosition::VECCALC> buf;
    pipe.InitBuffer(buf, n * sizeof(float));
    GlobalTensor<float> gx, gws, gz;
    gx.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), n);
    gws.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(ws), n);
    gz.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(z), n);
    LocalTensor<float> t = buf.Get<float>();
    if (peek) DataCopy(t, gws, n);  // MTE2 like the next copy: in order, no flag needed
    DataCopy(t, gx, n);
    SetFlag<HardEvent::MTE2_MTE3>(EVENT_ID0);
    WaitFlag<HardEvent::MTE2_MTE3>(EVENT_ID0);
    DataCopy(gws, t, n);
    SetFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
    WaitFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
    DataCopy(t, gws, n);
    SetFlag<HardEvent::MTE2_MTE3>(EVENT_ID0);
    WaitFlag<HardEvent::MTE2_MTE3>(EVENT_ID0);
    DataCopy(gz, t, n);
}
