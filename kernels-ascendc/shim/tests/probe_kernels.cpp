// Test-only kernels that expose shim behaviour the product kernels do not reach: mix-kernel core
// numbering, scalar parameters in the args blob, and a few vector APIs.
#include "kernel_operator.h"

using namespace AscendC;

// Every core writes (type, blockIdx, blockNum, subIdx, subNum, tag, tag2 low word) into its own
// 8-word record: AIC records first (num_blocks of them), then AIV records (2 * num_blocks).
extern "C" __global__ __aicore__ void probe_mix(GM_ADDR out, uint32_t tag, uint64_t tag2) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GlobalTensor<uint32_t> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ uint32_t*>(out));  // unsized: each access is translated
    const uint32_t rec = ASCEND_IS_AIC ? uint32_t(GetBlockIdx()) : uint32_t(GetBlockNum() + GetBlockIdx());
    g.SetValue(rec * 8 + 0, ASCEND_IS_AIC ? 1u : 2u);
    g.SetValue(rec * 8 + 1, uint32_t(GetBlockIdx()));
    g.SetValue(rec * 8 + 2, uint32_t(GetBlockNum()));
    g.SetValue(rec * 8 + 3, uint32_t(GetSubBlockIdx()));
    g.SetValue(rec * 8 + 4, uint32_t(GetSubBlockNum()));
    g.SetValue(rec * 8 + 5, tag);
    g.SetValue(rec * 8 + 6, uint32_t(tag2));
}

// in: x[n], y[n] (n = 256 floats). out (floats):
//   [0,256) Relu(x)  [256,512) Select(x > y ? x : y)  [512] ReduceSum(x)  [520] ReduceMax(x) + [521] index
//   [528,784) Cast(Cast(x, half, ODD), float)  [784,1040) Cast(x -> int32, FLOOR) as float
//   [1040, 1296) Sqrt(Abs(x)), [1296, 1552) Ln(Exp(x) + 1)
extern "C" __global__ __aicore__ void probe_vector(GM_ADDR xg, GM_ADDR yg, GM_ADDR outg) {
    constexpr int32_t n = 256;
    TPipe pipe;
    TBuf<QuePosition::VECCALC> bx, by, bo, bw, bm, bh, bi;
    pipe.InitBuffer(bx, n * 4);
    pipe.InitBuffer(by, n * 4);
    pipe.InitBuffer(bo, n * 4);
    pipe.InitBuffer(bw, n * 4);
    pipe.InitBuffer(bm, 64);
    pipe.InitBuffer(bh, n * 2);
    pipe.InitBuffer(bi, n * 4);
    GlobalTensor<float> gx, gy, go;
    gx.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(xg), n);
    gy.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(yg), n);
    go.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(outg), 1552);
    LocalTensor<float> x = bx.Get<float>(), y = by.Get<float>(), o = bo.Get<float>(), w = bw.Get<float>();
    DataCopy(x, gx, n);
    DataCopy(y, gy, n);
    SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
    WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
    Relu(o, x, n);
    SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
    WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
    DataCopy(go, o, n);
    LocalTensor<uint8_t> mask = bm.Get<uint8_t>();
    Compare(mask, x, y, CMPMODE::GT, n);
    PipeBarrier<PIPE_V>();
    Select(o, mask, x, y, SELMODE::VSEL_TENSOR_TENSOR_MODE, n);
    PipeBarrier<PIPE_ALL>();
    DataCopy(go[256], o, n);
    PipeBarrier<PIPE_ALL>();
    ReduceSum(o, x, w, n);
    ReduceMax(o[8], x, w, n, true);
    PipeBarrier<PIPE_ALL>();
    DataCopy(go[512], o, 16);
    LocalTensor<half> h = bh.Get<half>();
    Cast(h, x, RoundMode::CAST_ODD, n);
    PipeBarrier<PIPE_V>();
    Cast(o, h, RoundMode::CAST_NONE, n);
    PipeBarrier<PIPE_ALL>();
    DataCopy(go[528], o, n);
    LocalTensor<int32_t> iv = bi.Get<int32_t>();
    Cast(iv, x, RoundMode::CAST_FLOOR, n);
    PipeBarrier<PIPE_V>();
    Cast(o, iv, RoundMode::CAST_NONE, n);
    PipeBarrier<PIPE_ALL>();
    DataCopy(go[784], o, n);
    PipeBarrier<PIPE_ALL>();
    Abs(o, x, n);
    PipeBarrier<PIPE_V>();
    Sqrt(o, o, n);
    PipeBarrier<PIPE_ALL>();
    DataCopy(go[1040], o, n);
    PipeBarrier<PIPE_ALL>();
    Exp(o, x, n);
    PipeBarrier<PIPE_V>();
    Adds(o, o, 1.0f, n);
    PipeBarrier<PIPE_V>();
    Ln(o, o, n);
    PipeBarrier<PIPE_ALL>();
    DataCopy(go[1296], o, n);
}

// Strided/padded copies. in: float[5 * 7] (5 rows of 7). out: float[3 * 40].
//   out[0,40):   rows landed in UB at a 32-byte pitch by DataCopyPad with rightPadding 1 (= -1.0f),
//                copied out whole with DataCopy (count form).
//   out[40,80):  the same UB rows written back with DataCopyPad, GM gap of 4 bytes per row (the gap
//                words stay untouched).
//   out[80,96):  DataCopyParams: 2 bursts of 8 floats, every other 32-byte block of the UB rows
//                (srcStride 1), then UB -> UB copy, then out.
extern "C" __global__ __aicore__ void probe_copy(GM_ADDR in, GM_ADDR out) {
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> qin;
    TQue<QuePosition::VECOUT, 1> qout;
    pipe.InitBuffer(qin, 1, 40 * 4);
    pipe.InitBuffer(qout, 1, 16 * 4);
    GlobalTensor<float> gi, go;
    gi.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(in), 35);
    go.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(out), 120);
    LocalTensor<float> rows = qin.AllocTensor<float>();
    DataCopyPad(rows, gi, DataCopyExtParams(5, 7 * 4, 0, 0, 0), DataCopyPadExtParams<float>(true, 0, 1, -1.0f));
    qin.EnQue(rows);
    rows = qin.DeQue<float>();
    DataCopy(go, rows, 40);
    DataCopyPad(go[40], rows, DataCopyExtParams(5, 7 * 4, 0, 4, 0));
    LocalTensor<float> o = qout.AllocTensor<float>();
    DataCopy(o, rows, DataCopyParams(2, 1, 1, 0));
    qout.EnQue(o);
    o = qout.DeQue<float>();
    DataCopy(go[80], o, 16);
    qout.FreeTensor(o);
    qin.FreeTensor(rows);
}

// GET_TILING_DATA_WITH_STRUCT + a declared-but-unused CO2 queue (legal to declare on 910B).
struct ProbeTiling {
    uint32_t a, b;
};
extern "C" __global__ __aicore__ void probe_tiling(GM_ADDR out, GM_ADDR tiling) {
    REGISTER_TILING_DEFAULT(ProbeTiling);
    GET_TILING_DATA_WITH_STRUCT(ProbeTiling, t, tiling);
    TQue<TPosition::CO2, 1> unused;
    (void)unused;
    GlobalTensor<uint32_t> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ uint32_t*>(out), 1);
    g.SetValue(0, t.a + t.b);
}

// GEMV mode used as the hardware defines it (errata 1): A as a plain 1 x 40 row in L0A, B as
// [N = 20, K = 40] in zN; c[j] = sum_k a[k] * b[j, k]. a: half[64] (40 used), b: half[20 * 40],
// c: float[20].
extern "C" __global__ __aicore__ void probe_gemv(GM_ADDR a, GM_ADDR b, GM_ADDR c) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    constexpr uint32_t k = 40, n = 20, kp = 48, np = 32;
    TPipe pipe;
    TBuf<QuePosition::A1> a1;
    TBuf<QuePosition::B1> b1;
    TBuf<QuePosition::A2> a2;
    TBuf<QuePosition::B2> b2;
    TBuf<QuePosition::CO1> co1;
    pipe.InitBuffer(a1, 512);
    pipe.InitBuffer(b1, np * kp * 2);
    pipe.InitBuffer(a2, 512);
    pipe.InitBuffer(b2, np * kp * 2);
    pipe.InitBuffer(co1, 16 * np * 4);
    GlobalTensor<half> ga, gb;
    GlobalTensor<float> gc;
    ga.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(a), 64);
    gb.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(b), n * k);
    gc.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(c), n);
    DataCopy(a1.Get<half>(), ga, 64);  // the row, contiguous
    Nd2NzParams nz;
    nz.ndNum = 1;
    nz.nValue = n;
    nz.dValue = k;
    nz.srcDValue = k;
    nz.dstNzC0Stride = np;
    nz.dstNzNStride = 1;
    DataCopy(b1.Get<half>(), gb, nz);
    SetFlag<HardEvent::MTE2_MTE1>(EVENT_ID0);
    WaitFlag<HardEvent::MTE2_MTE1>(EVENT_ID0);
    LoadData2DParams ld;
    ld.startIndex = 0;
    ld.repeatTimes = 1;
    ld.srcStride = 1;
    LoadData(a2.Get<half>(), a1.Get<half>(), ld);  // 512 bytes: the 40 values and undefined rest
    for (uint32_t kb = 0; kb < kp / 16; ++kb) {
        ld.startIndex = kb * (np / 16);
        ld.repeatTimes = np / 16;
        LoadData(b2.Get<half>()[kb * np * 16], b1.Get<half>(), ld);
    }
    SetFlag<HardEvent::MTE1_M>(EVENT_ID0);
    WaitFlag<HardEvent::MTE1_M>(EVENT_ID0);
    Mmad(co1.Get<float>(), a2.Get<half>(), b2.Get<half>(), MmadParams(1, n, k));
    SetFlag<HardEvent::M_FIX>(EVENT_ID0);
    WaitFlag<HardEvent::M_FIX>(EVENT_ID0);
    FixpipeParamsV220 fp;
    fp.nSize = n;
    fp.mSize = 1;
    fp.srcStride = 16;  // each 1 x 16 slice of the result fills a whole fractal
    fp.dstStride = n;
    fp.quantPre = QuantMode_t::NoQuant;
    Fixpipe<float, float, CFG_ROW_MAJOR>(gc, co1.Get<float>(), fp);
}

// TPipe event ids (errata 2). out: int32[8] =
//   FetchEventID(V_MTE3), FetchEventID<V_MTE3>() (same: nothing reserved), AllocEventID<V_MTE3>()
//   (that id, now reserved), FetchEventID(V_MTE3) (the next one), FetchEventID(MTE2_V) (pools are
//   per event type), FetchEventID(V_MTE3) after ReleaseEventID (the first again), 0, 0.
extern "C" __global__ __aicore__ void probe_events(GM_ADDR out) {
    TPipe pipe;
    GlobalTensor<int32_t> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(out), 8);
    const TEventID first = pipe.FetchEventID(HardEvent::V_MTE3);
    g.SetValue(0, first);
    g.SetValue(1, pipe.FetchEventID<HardEvent::V_MTE3>());
    const TEventID held = pipe.AllocEventID<HardEvent::V_MTE3>();
    g.SetValue(2, held);
    g.SetValue(3, pipe.FetchEventID(HardEvent::V_MTE3));
    g.SetValue(4, pipe.FetchEventID(HardEvent::MTE2_V));
    SetFlag<HardEvent::V_MTE3>(held);
    WaitFlag<HardEvent::V_MTE3>(held);
    pipe.ReleaseEventID<HardEvent::V_MTE3>(held);
    g.SetValue(5, pipe.FetchEventID(HardEvent::V_MTE3));
    g.SetValue(6, 0);
    g.SetValue(7, 0);
}

// LoadData with repeatTimes = 0 is a no-op (errata 3): nothing read from the never-written L1
// tile, nothing moved (the launch succeeds and counts no local traffic).
extern "C" __global__ __aicore__ void probe_loaddata_noop(GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    TPipe pipe;
    TBuf<QuePosition::A1> a1;
    TBuf<QuePosition::A2> a2;
    pipe.InitBuffer(a1, 512);
    pipe.InitBuffer(a2, 512);
    LoadData2DParams ld;
    ld.repeatTimes = 0;
    LoadData(a2.Get<half>(), a1.Get<half>(), ld);
}

// Cross-core flag ids reach 15 (errata 4): the AIC signals its AIVs on id 15, they answer on 14.
extern "C" __global__ __aicore__ void probe_crosscore_ids(GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        CrossCoreSetFlag<2, PIPE_FIX>(15);
        CrossCoreWaitFlag(14);
    } else {
        CrossCoreWaitFlag(15);
        CrossCoreSetFlag<2, PIPE_MTE3>(14);
    }
}

// Mmad with a zero size (errata 5: m, n, k in [0, 4095]) computes and reads nothing: operands
// never written, and the launch succeeds with no cube work counted. out: uint32[1] = whether
// MmadParams().cmatrixInitVal is true (its documented default).
extern "C" __global__ __aicore__ void probe_mmad_zero(GM_ADDR out) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    TPipe pipe;
    TBuf<QuePosition::A2> a;
    TBuf<QuePosition::B2> b;
    TBuf<QuePosition::CO1> c;
    pipe.InitBuffer(a, 512);
    pipe.InitBuffer(b, 512);
    pipe.InitBuffer(c, 1024);
    MmadParams p;  // cmatrixInitVal defaults to true
    p.m = 0;
    p.n = 16;
    p.k = 16;
    Mmad(c.Get<float>(), a.Get<half>(), b.Get<half>(), p);
    p.m = 16;
    p.k = 0;
    Mmad(c.Get<float>(), a.Get<half>(), b.Get<half>(), p);
    GlobalTensor<uint32_t> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ uint32_t*>(out), 1);
    g.SetValue(0, MmadParams().cmatrixInitVal ? 1u : 0u);
}
