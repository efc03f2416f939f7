// SwiGLU of an expert: out = silu(gate) * up = gate * up / (1 + exp(-gate)), elementwise.
// fp32 computes in place; fp16/bf16 are cast up to fp32 (exact), computed, and cast back once with
// CAST_RINT (the 910B vector unit has no bf16 arithmetic, and fp16 would lose accuracy in exp).
// Vector-only kernel, one block per AIV core, double-buffered 3-stage pipeline per tile.
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "tiling/swiglu_tiling.h"

using namespace AscendC;

namespace {

template <typename T>
class SwigluKernel {
public:
    __aicore__ inline void Init(GM_ADDR gate, GM_ADDR up, GM_ADDR out, const SwigluTiling& t) {
        const uint64_t start = uint64_t(GetBlockIdx()) * t.block_len;
        len_ = start >= t.total_len ? 0 : kernels::Min<uint64_t>(t.block_len, t.total_len - start);
        tile_ = t.tile_len;
        if (len_ == 0) return;
        gate_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(gate) + start, len_);
        up_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(up) + start, len_);
        out_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(out) + start, len_);
        pipe_.InitBuffer(inGate_, 2, tile_ * sizeof(T));
        pipe_.InitBuffer(inUp_, 2, tile_ * sizeof(T));
        pipe_.InitBuffer(outQ_, 2, tile_ * sizeof(T));
        pipe_.InitBuffer(calc_, (kIsFloat ? 1 : 2) * tile_ * sizeof(float));
    }

    __aicore__ inline void Process() {
        for (uint64_t off = 0; off < len_; off += tile_) {
            const uint32_t n = uint32_t(kernels::Min<uint64_t>(tile_, len_ - off));
            CopyIn(off, n);
            Compute(n);
            CopyOut(off, n);
        }
    }

private:
    static constexpr bool kIsFloat = std::is_same<T, float>::value;

    __aicore__ inline void Load(const LocalTensor<T>& dst, const GlobalTensor<T>& src, uint32_t n) {
        if ((n * sizeof(T)) % 32 == 0) {
            DataCopy(dst, src, n);
        } else {
            // Tail not a multiple of 32 bytes: DataCopyPad moves exactly n elements from GM.
            DataCopyPad(dst, src, DataCopyExtParams(1, n * sizeof(T), 0, 0, 0), DataCopyPadExtParams<T>(false, 0, 0, T(0)));
        }
    }

    __aicore__ inline void CopyIn(uint64_t off, uint32_t n) {
        LocalTensor<T> g = inGate_.template AllocTensor<T>();
        LocalTensor<T> u = inUp_.template AllocTensor<T>();
        Load(g, gate_[off], n);
        Load(u, up_[off], n);
        inGate_.EnQue(g);
        inUp_.EnQue(u);
    }

    __aicore__ inline void Compute(uint32_t n) {
        LocalTensor<T> g = inGate_.template DeQue<T>();
        LocalTensor<T> u = inUp_.template DeQue<T>();
        LocalTensor<T> o = outQ_.template AllocTensor<T>();
        LocalTensor<float> a = calc_.template Get<float>();
        if constexpr (kIsFloat) {
            // a = g * u; o = 1 + exp(-g); o = a / o
            Mul(a, g, u, n);
            Muls(o, g, -1.0f, n);
            PipeBarrier<PIPE_V>();
            Exp(o, o, n);
            PipeBarrier<PIPE_V>();
            Adds(o, o, 1.0f, n);
            PipeBarrier<PIPE_V>();
            Div(o, a, o, n);
        } else {
            LocalTensor<float> b = a[tile_];
            Cast(a, g, RoundMode::CAST_NONE, n);
            Cast(b, u, RoundMode::CAST_NONE, n);
            PipeBarrier<PIPE_V>();
            Mul(b, a, b, n);
            Muls(a, a, -1.0f, n);
            PipeBarrier<PIPE_V>();
            Exp(a, a, n);
            PipeBarrier<PIPE_V>();
            Adds(a, a, 1.0f, n);
            PipeBarrier<PIPE_V>();
            Div(b, b, a, n);
            PipeBarrier<PIPE_V>();
            Cast(o, b, RoundMode::CAST_RINT, n);
        }
        outQ_.EnQue(o);
        inGate_.FreeTensor(g);
        inUp_.FreeTensor(u);
    }

    __aicore__ inline void CopyOut(uint64_t off, uint32_t n) {
        LocalTensor<T> o = outQ_.template DeQue<T>();
        if ((n * sizeof(T)) % 32 == 0) {
            DataCopy(out_[off], o, n);
        } else {
            DataCopyPad(out_[off], o, DataCopyExtParams(1, n * sizeof(T), 0, 0, 0));
        }
        outQ_.FreeTensor(o);
    }

    TPipe pipe_;
    TQue<QuePosition::VECIN, 2> inGate_, inUp_;
    TQue<QuePosition::VECOUT, 2> outQ_;
    TBuf<QuePosition::VECCALC> calc_;
    GlobalTensor<T> gate_, up_, out_;
    uint64_t len_ = 0;
    uint32_t tile_ = 0;
};

template <typename T>
__aicore__ inline void RunSwiglu(GM_ADDR gate, GM_ADDR up, GM_ADDR out, GM_ADDR tiling) {
    SwigluTiling t;
    kernels::LoadTiling(t, tiling);
    SwigluKernel<T> k;
    k.Init(gate, up, out, t);
    k.Process();
}

}  // namespace

extern "C" __global__ __aicore__ void swiglu_f32(GM_ADDR gate, GM_ADDR up, GM_ADDR out, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunSwiglu<float>(gate, up, out, tiling);
}
extern "C" __global__ __aicore__ void swiglu_f16(GM_ADDR gate, GM_ADDR up, GM_ADDR out, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunSwiglu<half>(gate, up, out, tiling);
}
extern "C" __global__ __aicore__ void swiglu_bf16(GM_ADDR gate, GM_ADDR up, GM_ADDR out, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunSwiglu<bfloat16_t>(gate, up, out, tiling);
}
