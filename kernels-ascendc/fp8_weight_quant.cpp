// 128x128 block FP8 (E4M3FN) weight quantization (tiling/fp8_weight_quant_tiling.h): per block
// s = max(amax, 1e-4) / 448 (optionally UE8M0), codes = e4m3(x / s), RNE with saturation, the same
// rules and encoder as the per-token activation kernel (fp8_quant.cpp, common/fp8_common.h).
//
// AIV-only. Each core owns a contiguous run of blocks in row-major block order (so its scales are
// one contiguous run of the scale matrix). A block's amax needs all of its up to 128 rows before
// any code can be written, so the whole block is kept in UB instead of being read twice:
//   - one DMA (DataCopyPad, one burst per row, GM row stride k) brings the block to UB at a row
//     pitch P = round_up(kt, 32) elements (kt = the block's columns), so the codes of a row are a
//     whole number of 32-byte blocks on the way out. Columns past kt are zeros (DataCopyPad right
//     padding up to the next 32 bytes, a vector Duplicate before the DMA for the rest of the
//     pitch, only in edge blocks where round_up(kt * sizeof(x), 32) < P * sizeof(x)); zeros never
//     change amax and their codes are not stored;
//   - amax pass: per 16-row chunk (2048 elements) Abs and an elementwise running Max, one
//     ReduceMax at the end -> scalar unit -> s;
//   - encode pass: per 16-row chunk q = x / s (IEEE Div, kernel.py's x / s), EncodeE4m3, one DMA
//     of the chunk's codes out (16 bursts of kt bytes, GM row stride k).
// Non-finite input: the amax pass uses |x| with NaN mapped to +Inf (AbsInfForNan), so a block holding
// NaN or +-Inf has amax = +Inf; the core then scans that block (scalar, only on this error path)
// for the first such element and reports its row and column in its status slot (kernel_status.h).
// bf16 inputs are cast to f32 (exact) once per pass. Block t + 1's DMA is issued right after
// block t is dequeued (input queue with 2 buffers), so on the NPU the load of block t + 1 overlaps
// the vector work of block t.
//
// Traffic: every input byte crosses GM -> UB exactly once (n * k * sizeof(x)); UB -> GM is the
// codes (n * k bytes) and the scales (4 bytes per block, flushed in runs of up to 256 from a UB
// stash). Reading each block twice instead would double the input traffic; UB holds it: 2 input
// buffers of 64 KiB (f32; 32 KiB bf16) + 5 x 8 KiB work + 2 x 2 KiB codes + 1 KiB scales + 544 B
// reductions = 173.5 KiB (f32), within the 184 KiB library APIs assume.
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "common/kernel_status.h"
#include "tiling/fp8_weight_quant_tiling.h"

using namespace AscendC;

namespace {

constexpr uint32_t kBlk = kernels::fp8::kBlock;
constexpr uint32_t kChunkRows = 16;              // rows per vector chunk
constexpr uint32_t kChunk = kChunkRows * kBlk;   // elements per vector chunk (max)
constexpr uint32_t kStash = 256;                 // scales per flush

template <typename T>
class WeightQuantKernel {
public:
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status,
                                const Fp8WeightQuantTiling& t) {
        t_ = t;
        nb_ = (t.n + kBlk - 1) / kBlk;
        kb_ = (t.k + kBlk - 1) / kBlk;
        const uint64_t total = uint64_t(nb_) * kb_;
        const uint64_t b0 = uint64_t(GetBlockIdx()) * t.blocks_per_core;
        count_ = b0 >= total ? 0u : uint32_t(kernels::Min<uint64_t>(t.blocks_per_core, total - b0));
        first_ = uint32_t(b0);
        if (count_ == 0) return;
        status_ = status + uint64_t(GetBlockIdx()) * KERNEL_STATUS_SLOT_WORDS * 4;
        const uint64_t len = uint64_t(t.n) * t.k;
        x_.SetGlobalBuffer(reinterpret_cast<__gm__ T*>(x), len);
        codes_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(codes), len);
        scales_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(scales), total);
        pipe_.InitBuffer(inQ_, 2, kBlk * kBlk * sizeof(T));
        pipe_.InitBuffer(codeQ_, 2, kChunk);
        pipe_.InitBuffer(work_, 5 * kChunk * sizeof(float));
        // ReduceMax result (one 32-byte slot), then its work area (2 x 32 repeats of f32 -> 256 B).
        pipe_.InitBuffer(red_, 32 + 512);
        pipe_.InitBuffer(stash_, kStash * sizeof(float));
        pipe_.InitBuffer(statusBuf_, KERNEL_STATUS_SLOT_WORDS * 4);
        stashBase_ = first_;
        stashed_ = 0;
    }

    __aicore__ inline void Process() {
        if (count_ == 0) return;
        CopyIn(first_);
        for (uint32_t i = 0; i < count_; ++i) {
            LocalTensor<T> in = inQ_.template DeQue<T>();
            if (i + 1 < count_) CopyIn(first_ + i + 1);  // prefetch into the other buffer
            Compute(first_ + i, in);
            inQ_.FreeTensor(in);
        }
        FlushScales();
    }

private:
    struct Geom {
        uint32_t r0, rows, c0, cols, pitch;  // pitch = round_up(cols, 32) elements
    };
    __aicore__ inline Geom BlockGeom(uint32_t t) const {
        Geom g;
        g.r0 = (t / kb_) * kBlk;
        g.c0 = (t % kb_) * kBlk;
        g.rows = kernels::Min(kBlk, t_.n - g.r0);
        g.cols = kernels::Min(kBlk, t_.k - g.c0);
        g.pitch = kernels::RoundUp(g.cols, 32);
        return g;
    }

    __aicore__ inline void CopyIn(uint32_t t) {
        const Geom g = BlockGeom(t);
        LocalTensor<T> in = inQ_.template AllocTensor<T>();
        const uint32_t rowBytes = g.cols * sizeof(T);
        const uint32_t slot = kernels::RoundUp(rowBytes, 32);  // what one DMA burst fills
        const uint32_t pitchBytes = g.pitch * sizeof(T);
        if (slot < pitchBytes) {
            // Edge block: the columns between the burst's 32-byte slot and the pitch stay zero.
            Duplicate(in, T(0.0f), int32_t(g.rows * g.pitch));
            SetFlag<HardEvent::V_MTE2>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE2>(EVENT_ID0);
        }
        const uint8_t rightPad = uint8_t((slot - rowBytes) / sizeof(T));
        DataCopyPad(in, x_[uint64_t(g.r0) * t_.k + g.c0],
                    DataCopyExtParams(uint16_t(g.rows), rowBytes, (t_.k - g.cols) * uint32_t(sizeof(T)),
                                      (pitchBytes - slot) / 32, 0),
                    DataCopyPadExtParams<T>(rightPad != 0, 0, rightPad, T(0.0f)));
        inQ_.EnQue(in);
    }

    // Chunk c of the block as f32: the input itself (f32) or its exact cast into `tmp` (bf16).
    __aicore__ inline LocalTensor<float> AsFloat(const LocalTensor<T>& in, uint32_t off, uint32_t n,
                                                 const LocalTensor<float>& tmp) {
        if constexpr (std::is_same<T, float>::value) {
            return in[off];
        } else {
            Cast(tmp, in[off], RoundMode::CAST_NONE, int32_t(n));  // bf16 -> f32 is exact
            PipeBarrier<PIPE_V>();
            return tmp;
        }
    }

    __aicore__ inline void Compute(uint32_t t, const LocalTensor<T>& in) {
        const Geom g = BlockGeom(t);
        LocalTensor<float> w = work_.template Get<float>();
        LocalTensor<float> w0 = w, w1 = w[kChunk], w2 = w[2 * kChunk], w3 = w[3 * kChunk], w4 = w[4 * kChunk];
        const uint32_t chunks = (g.rows + kChunkRows - 1) / kChunkRows;

        // amax pass: w4 = elementwise max of |x| over the chunks, then one reduction.
        for (uint32_t c = 0; c < chunks; ++c) {
            const uint32_t n = kernels::Min(kChunkRows, g.rows - c * kChunkRows) * g.pitch;
            LocalTensor<float> xf = AsFloat(in, c * kChunkRows * g.pitch, n, w0);
            if (c == 0) {
                kernels::fp8::AbsInfForNan(w4, xf, n);
            } else {
                kernels::fp8::AbsInfForNan(w1, xf, n);
                PipeBarrier<PIPE_V>();
                Max(w4, w4, w1, int32_t(n));
            }
            PipeBarrier<PIPE_V>();
        }
        LocalTensor<float> red = red_.template Get<float>();
        ReduceMax(red, w4, red[8], int32_t(kernels::Min(kChunkRows, g.rows) * g.pitch));
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        const float amax = red.GetValue(0);
        if (kernels::fp8::NonFinite(amax)) ReportNonFinite(in, g);
        const float s = kernels::fp8::QuantScale(amax, t_.ue8m0 != 0);
        StashScale(s);

        // encode pass
        for (uint32_t c = 0; c < chunks; ++c) {
            const uint32_t rows = kernels::Min(kChunkRows, g.rows - c * kChunkRows), n = rows * g.pitch;
            LocalTensor<float> xf = AsFloat(in, c * kChunkRows * g.pitch, n, w0);
            Duplicate(w2, s, int32_t(n));
            PipeBarrier<PIPE_V>();
            Div(w3, xf, w2, int32_t(n));  // q = x / s, the f32 quotient kernel.py computes
            PipeBarrier<PIPE_V>();
            LocalTensor<uint8_t> codes = codeQ_.template AllocTensor<uint8_t>();
            kernels::fp8::EncodeE4m3(codes, w0, w1, w2, w3, w4, n);
            codeQ_.EnQue(codes);
            codes = codeQ_.template DeQue<uint8_t>();
            // rows bursts of cols bytes; UB rows are pitch = round_up(cols, 32) bytes apart.
            DataCopyPad(codes_[uint64_t(g.r0 + c * kChunkRows) * t_.k + g.c0], codes,
                        DataCopyExtParams(uint16_t(rows), g.cols, 0, t_.k - g.cols, 0));
            codeQ_.FreeTensor(codes);
        }
    }

    // The first non-finite element of block g (its amax is +Inf), reported once per core.
    __aicore__ inline void ReportNonFinite(const LocalTensor<T>& in, const Geom& g) {
        if (reported_) return;
        reported_ = true;
        PipeBarrier<PIPE_ALL>();  // the block was written by DMA; read it from the scalar unit
        for (uint32_t r = 0; r < g.rows; ++r)
            for (uint32_t c = 0; c < g.cols; ++c)
                if (kernels::fp8::NonFinite(float(in.GetValue(r * g.pitch + c)))) {
                    kernels::WriteStatus(status_, statusBuf_.template Get<uint32_t>(), KERNEL_STATUS_NON_FINITE,
                                         g.r0 + r, g.c0 + c, 0u);
                    return;
                }
    }

    __aicore__ inline void StashScale(float s) {
        if (stashed_ == kStash) FlushScales();
        stash_.template Get<float>().SetValue(stashed_++, s);
    }

    __aicore__ inline void FlushScales() {
        if (stashed_ == 0) return;
        LocalTensor<float> st = stash_.template Get<float>();
        SetFlag<HardEvent::S_MTE3>(EVENT_ID0);  // the scales were written by the scalar unit
        WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
        DataCopyPad(scales_[stashBase_], st, DataCopyExtParams(1, stashed_ * 4, 0, 0, 0));
        SetFlag<HardEvent::MTE3_S>(EVENT_ID0);  // before the scalar unit refills the stash
        WaitFlag<HardEvent::MTE3_S>(EVENT_ID0);
        stashBase_ += stashed_;
        stashed_ = 0;
    }

    TPipe pipe_;
    TQue<QuePosition::VECIN, 1> inQ_;  // 2 buffers: block t + 1 loads while block t is computed
    TQue<QuePosition::VECOUT, 1> codeQ_;
    TBuf<QuePosition::VECCALC> work_, red_, stash_, statusBuf_;
    GlobalTensor<T> x_;
    GlobalTensor<uint8_t> codes_;
    GlobalTensor<float> scales_;
    Fp8WeightQuantTiling t_;
    uint32_t nb_ = 0, kb_ = 0, first_ = 0, count_ = 0, stashBase_ = 0, stashed_ = 0;
    GM_ADDR status_ = nullptr;
    bool reported_ = false;
};

template <typename T>
__aicore__ inline void RunWeightQuant(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status, GM_ADDR tiling) {
    Fp8WeightQuantTiling t;
    kernels::LoadTiling(t, tiling);
    WeightQuantKernel<T> k;
    k.Init(x, codes, scales, status, t);
    k.Process();
}

}  // namespace

// status: one slot (kernel_status.h) per launched block.
extern "C" __global__ __aicore__ void fp8_weight_quant_f32(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status,
                                                           GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunWeightQuant<float>(x, codes, scales, status, tiling);
}
extern "C" __global__ __aicore__ void fp8_weight_quant_bf16(GM_ADDR x, GM_ADDR codes, GM_ADDR scales, GM_ADDR status,
                                                            GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunWeightQuant<bfloat16_t>(x, codes, scales, status, tiling);
}
