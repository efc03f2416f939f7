// Per-token 1x128 FP8 (E4M3FN) activation quantization, DeepSeek inference/kernel.py `act_quant`
// semantics (see tiling/fp8_quant_tiling.h): s = max(amax, 1e-4) / 448 (optionally rounded up to a
// power of two), codes = e4m3(x / s) rounded to nearest even with saturation.
//
// AIV-only. 910B has no FP8 type: the encoder (kernels::fp8::EncodeE4m3, common/fp8_common.h) is
// integer arithmetic on the f32 bits of q = x / s, shared with fp8_weight_quant.cpp.
//
// Non-finite input: amax is taken over |x| with NaN mapped to +Inf (AbsInfForNan), so a tile holding
// NaN or +-Inf has amax = +Inf; the core then finds the first such element of the tile (scalar scan,
// only on this error path) and reports its row and column in its status slot (kernel_status.h). The
// host returns QuantError::NonFinite at synchronisation, like the host quantizer at the call.
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "common/kernel_status.h"
#include "tiling/fp8_quant_tiling.h"

using namespace AscendC;

namespace {

constexpr uint32_t kTile = kernels::fp8::kBlock;

template <typename T>
class ActQuantKernel {
public:
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status, const Fp8QuantTiling& t) {
        t_ = t;
        kb_ = (t.k + kTile - 1) / kTile;
        const uint64_t r0 = uint64_t(GetBlockIdx()) * t.block_rows;
        rows_ = r0 >= t.m ? 0 : uint32_t(kernels::Min<uint64_t>(t.block_rows, t.m - r0));
        row0_ = uint32_t(r0);
        if (rows_ == 0) return;
        status_ = status + uint64_t(GetBlockIdx()) * KERNEL_STATUS_SLOT_WORDS * 4;
        x_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(x), uint64_t(t.m) * t.k);
        codes_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(codes), uint64_t(t.m) * t.k);
        scales_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(scales), uint64_t(t.m) * kb_);
        const uint32_t tk = t.tile_k;
        pipe_.InitBuffer(inQ_, 2, tk * sizeof(T));
        pipe_.InitBuffer(codeQ_, 2, tk);
        pipe_.InitBuffer(scaleQ_, 2, kernels::RoundUp(tk / kTile * 4, 32));
        pipe_.InitBuffer(work_, 5 * tk * 4);
        // ReduceMax results, one 32-byte slot per 128-tile of a chunk, then the reduction's work area.
        pipe_.InitBuffer(red_, (tk / kTile) * 32 + 64);
        pipe_.InitBuffer(statusBuf_, KERNEL_STATUS_SLOT_WORDS * 4);
    }

    __aicore__ inline void Process() {
        for (uint32_t r = 0; r < rows_; ++r)
            for (uint32_t k0 = 0; k0 < t_.k; k0 += t_.tile_k) {
                const uint32_t n = kernels::Min(t_.tile_k, t_.k - k0);
                const uint64_t off = uint64_t(row0_ + r) * t_.k + k0;
                CopyIn(off, n);
                Compute(row0_ + r, k0, n);
                CopyOut(off, uint64_t(row0_ + r) * kb_ + k0 / kTile, n);
            }
    }

private:
    __aicore__ inline void CopyIn(uint64_t off, uint32_t n) {
        LocalTensor<T> in = inQ_.template AllocTensor<T>();
        DataCopyPad(in, x_[off], DataCopyExtParams(1, n * sizeof(T), 0, 0, 0), DataCopyPadExtParams<T>(false, 0, 0, T(0)));
        inQ_.EnQue(in);
    }

    __aicore__ inline void Compute(uint32_t row, uint32_t k0, uint32_t n) {
        const uint32_t tk = t_.tile_k, tiles = (n + kTile - 1) / kTile;
        LocalTensor<T> in = inQ_.template DeQue<T>();
        LocalTensor<float> w = work_.template Get<float>();
        LocalTensor<float> w0 = w, w1 = w[tk], w2 = w[2 * tk], w3 = w[3 * tk], w4 = w[4 * tk];
        LocalTensor<float> xf;
        if constexpr (std::is_same<T, float>::value) {
            xf = in;
        } else {
            Cast(w0, in, RoundMode::CAST_NONE, n);  // bf16 -> f32 is exact
            PipeBarrier<PIPE_V>();
            xf = w0;
        }
        // amax per 128-tile (real elements only) -> scalar unit -> scales.
        kernels::fp8::AbsInfForNan(w1, xf, n);
        PipeBarrier<PIPE_V>();
        LocalTensor<float> red = red_.template Get<float>();
        LocalTensor<float> redWork = red[tiles * 8];
        for (uint32_t j = 0; j < tiles; ++j) {
            ReduceMax(red[j * 8], w1[j * kTile], redWork, int32_t(kernels::Min(kTile, n - j * kTile)));
            PipeBarrier<PIPE_V>();
        }
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        LocalTensor<float> sc = scaleQ_.template AllocTensor<float>();
        for (uint32_t j = 0; j < tiles; ++j) {
            const float amax = red.GetValue(j * 8);
            if (kernels::fp8::NonFinite(amax)) ReportNonFinite(xf, row, k0, j * kTile, kernels::Min(kTile, n - j * kTile));
            const float s = kernels::fp8::QuantScale(amax, t_.ue8m0 != 0);
            sc.SetValue(j, s);
            Duplicate(w2[j * kTile], s, int32_t(kernels::Min(kTile, n - j * kTile)));
        }
        PipeBarrier<PIPE_V>();
        Div(w3, xf, w2, n);  // q = x / s, the f32 quotient kernel.py computes
        PipeBarrier<PIPE_V>();
        inQ_.FreeTensor(in);

        LocalTensor<uint8_t> codes = codeQ_.template AllocTensor<uint8_t>();
        kernels::fp8::EncodeE4m3(codes, w0, w1, w2, w3, w4, n);
        codeQ_.EnQue(codes);
        scaleQ_.EnQue(sc);
    }

    // The first non-finite element of xf[c0, c0 + len) (a tile whose amax is +Inf), reported once.
    __aicore__ inline void ReportNonFinite(const LocalTensor<float>& xf, uint32_t row, uint32_t k0, uint32_t c0,
                                           uint32_t len) {
        if (reported_) return;
        reported_ = true;
        PipeBarrier<PIPE_ALL>();  // xf was written by DMA or the vector unit; read it from the scalar unit
        uint32_t c = c0;
        while (c + 1 < c0 + len && !kernels::fp8::NonFinite(xf.GetValue(c))) ++c;
        kernels::WriteStatus(status_, statusBuf_.template Get<uint32_t>(), KERNEL_STATUS_NON_FINITE, row, k0 + c, 0u);
    }

    __aicore__ inline void CopyOut(uint64_t codeOff, uint64_t scaleOff, uint32_t n) {
        LocalTensor<uint8_t> codes = codeQ_.template DeQue<uint8_t>();
        DataCopyPad(codes_[codeOff], codes, DataCopyExtParams(1, n, 0, 0, 0));
        codeQ_.FreeTensor(codes);
        LocalTensor<float> sc = scaleQ_.template DeQue<float>();
        SetFlag<HardEvent::S_MTE3>(EVENT_ID0);  // the scales were written by the scalar unit
        WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
        DataCopyPad(scales_[scaleOff], sc, DataCopyExtParams(1, ((n + kTile - 1) / kTile) * 4, 0, 0, 0));
        scaleQ_.FreeTensor(sc);
    }

    TPipe pipe_;
    TQue<QuePosition::VECIN, 1> inQ_;
    TQue<QuePosition::VECOUT, 1> codeQ_, scaleQ_;
    TBuf<QuePosition::VECCALC> work_, red_, statusBuf_;
    GlobalTensor<T> x_;
    GlobalTensor<uint8_t> codes_;
    GlobalTensor<float> scales_;
    Fp8QuantTiling t_;
    uint32_t kb_ = 0, rows_ = 0, row0_ = 0;
    GM_ADDR status_ = nullptr;
    bool reported_ = false;
};

template <typename T>
__aicore__ inline void RunActQuant(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status, GM_ADDR tiling) {
    Fp8QuantTiling t;
    kernels::LoadTiling(t, tiling);
    ActQuantKernel<T> k;
    k.Init(x, codes, scales, status, t);
    k.Process();
}

}  // namespace

// status: one slot (kernel_status.h) per launched block.
extern "C" __global__ __aicore__ void fp8_act_quant_f32(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status,
                                                        GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunActQuant<float>(x, codes, scales, status, tiling);
}
extern "C" __global__ __aicore__ void fp8_act_quant_bf16(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status,
                                                         GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunActQuant<bfloat16_t>(x, codes, scales, status, tiling);
}
