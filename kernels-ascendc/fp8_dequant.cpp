// FP8 (E4M3FN) dequantization (tiling/fp8_dequant_tiling.h): out = decode(code) * scale in f32,
// then RNE to bf16 (fp8_dequant_bf16) or kept (fp8_dequant_f32), with 1x128 per-row scales or
// 128x128 block scales. kernel.py's weight_dequant / src/fp8/quantize.rs dequantize_into.
//
// AIV-only. Block b owns a run of rows; per chunk (chunk_rows x tile_k):
//   - one DMA of the codes (a burst of cols bytes per row, GM row stride k; each row lands at a
//     32-byte slot, so the UB row pitch is P = round_up(cols, 32)) and one DMA of the scale rows
//     the chunk spans (a burst of ceil(cols/128) floats per scale row);
//   - decode exactly as fp8_gemm.cpp does, with an f32 table: Cast u8 -> half (exact), half ->
//     int32 (exact), x4 = byte offsets, Gather from the 256-entry table (NaN codes -> NaN). The
//     slot tails (columns cols .. P-1) decode whatever bytes are there, harmlessly (any byte is a
//     valid table index), and are never stored;
//   - Muls by the scale (one f32 multiply per element, as the reference): one op per (row, 128-
//     column tile), or one op for the whole chunk when it is one tile wide and inside one scale
//     row (128x128 layout with tile_k = 128);
//   - bf16: Cast f32 -> bf16 CAST_RINT; one DMA out (a burst per row, GM row stride k).
// Queues of 2 buffers for the codes in and the output, so on the NPU the DMAs of neighbouring
// chunks overlap the vector work.
//
// Traffic: GM -> UB codes rows * k + the scale rows of every chunk (tiling header); UB -> GM
// rows * k * sizeof(out).
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "tiling/fp8_dequant_tiling.h"

using namespace AscendC;

namespace {

constexpr uint32_t kBlk = kernels::fp8::kBlock;

template <typename Out>
class DequantKernel {
public:
    __aicore__ inline void Init(GM_ADDR codes, GM_ADDR scales, GM_ADDR out, const Fp8DequantTiling& t) {
        t_ = t;
        kb_ = (t.k + kBlk - 1) / kBlk;
        const uint64_t r0 = uint64_t(GetBlockIdx()) * t.block_rows;
        rows_ = r0 >= t.rows ? 0u : uint32_t(kernels::Min<uint64_t>(t.block_rows, t.rows - r0));
        row0_ = uint32_t(r0);
        if (rows_ == 0) return;
        const uint64_t len = uint64_t(t.rows) * t.k;
        const uint32_t scaleRows = t.scale_layout != 0 ? (t.rows + kBlk - 1) / kBlk : t.rows;
        codes_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(codes), len);
        scales_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(scales), uint64_t(scaleRows) * kb_);
        out_.SetGlobalBuffer(reinterpret_cast<__gm__ Out*>(out), len);
        const uint32_t e = t.chunk_rows * t.tile_k;
        pipe_.InitBuffer(codeQ_, 2, e);
        pipe_.InitBuffer(outQ_, 2, e * sizeof(Out));
        pipe_.InitBuffer(halfBuf_, e * sizeof(half));
        pipe_.InitBuffer(idxBuf_, e * sizeof(int32_t));
        if constexpr (!std::is_same<Out, float>::value) pipe_.InitBuffer(valBuf_, e * sizeof(float));
        pipe_.InitBuffer(table_, 256 * sizeof(float));
        // Scale rows a chunk spans: chunk_rows (layout 0) or at most 2 (layout 1, chunk_rows <= 64);
        // each lands at a 32-byte slot of round_up(tiles * 4, 32) bytes.
        scalePitch_ = kernels::RoundUp(t.tile_k / kBlk * 4, 32) / 4;
        pipe_.InitBuffer(scaleBuf_, (t.chunk_rows > 2 ? t.chunk_rows : 2) * scalePitch_ * 4);
        BuildTable();
    }

    __aicore__ inline void Process() {
        for (uint32_t r = 0; r < rows_; r += t_.chunk_rows) {
            const uint32_t rows = kernels::Min(t_.chunk_rows, rows_ - r), row = row0_ + r;
            for (uint32_t k0 = 0; k0 < t_.k; k0 += t_.tile_k) {
                const uint32_t cols = kernels::Min(t_.tile_k, t_.k - k0);
                CopyIn(row, rows, k0, cols);
                Compute(row, rows, k0, cols);
                CopyOut(row, rows, k0, cols);
            }
        }
    }

private:
    __aicore__ inline uint32_t ScaleRow(uint32_t row) const { return t_.scale_layout != 0 ? row / kBlk : row; }

    __aicore__ inline void BuildTable() {
        LocalTensor<uint32_t> tb = table_.template Get<uint32_t>();
        for (uint32_t code = 0; code < 256; ++code) tb.SetValue(code, kernels::fp8::E4m3Bits(code, 23, 8, 127));
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
    }

    __aicore__ inline void CopyIn(uint32_t row, uint32_t rows, uint32_t k0, uint32_t cols) {
        LocalTensor<uint8_t> codes = codeQ_.template AllocTensor<uint8_t>();
        DataCopyPad(codes, codes_[uint64_t(row) * t_.k + k0], DataCopyExtParams(uint16_t(rows), cols, t_.k - cols, 0, 0),
                    DataCopyPadExtParams<uint8_t>(false, 0, 0, 0));
        codeQ_.EnQue(codes);
        const uint32_t tiles = (cols + kBlk - 1) / kBlk, s0 = ScaleRow(row), sn = ScaleRow(row + rows - 1) - s0 + 1;
        SetFlag<HardEvent::S_MTE2>(EVENT_ID0);  // the scalar unit is done with the previous chunk's scales
        WaitFlag<HardEvent::S_MTE2>(EVENT_ID0);
        DataCopyPad(scaleBuf_.template Get<float>(), scales_[uint64_t(s0) * kb_ + k0 / kBlk],
                    DataCopyExtParams(uint16_t(sn), tiles * 4, (kb_ - tiles) * 4, 0, 0),
                    DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
        SetFlag<HardEvent::MTE2_S>(EVENT_ID0);
    }

    __aicore__ inline void Compute(uint32_t row, uint32_t rows, uint32_t k0, uint32_t cols) {
        const uint32_t pitch = kernels::RoundUp(cols, 32), n = rows * pitch, tiles = (cols + kBlk - 1) / kBlk;
        LocalTensor<uint8_t> codes = codeQ_.template DeQue<uint8_t>();
        LocalTensor<half> h = halfBuf_.template Get<half>();
        LocalTensor<int32_t> idx = idxBuf_.template Get<int32_t>();
        Cast(h, codes, RoundMode::CAST_NONE, int32_t(n));  // 0..255, exact
        PipeBarrier<PIPE_V>();
        codeQ_.FreeTensor(codes);
        kernels::fp8::TableOffsets(idx, h, sizeof(float), int32_t(n));
        PipeBarrier<PIPE_V>();
        LocalTensor<float> val;
        if constexpr (std::is_same<Out, float>::value)
            val = outQ_.template AllocTensor<float>();
        else
            val = valBuf_.template Get<float>();
        Gather(val, table_.template Get<float>(), idx.template ReinterpretCast<uint32_t>(), 0u, n);
        PipeBarrier<PIPE_V>();

        WaitFlag<HardEvent::MTE2_S>(EVENT_ID0);
        LocalTensor<float> sc = scaleBuf_.template Get<float>();
        const uint32_t s0 = ScaleRow(row);
        if (tiles == 1 && ScaleRow(row + rows - 1) == s0) {
            Muls(val, val, sc.GetValue(0), int32_t(n));  // one scale for the whole chunk
        } else {
            for (uint32_t r = 0; r < rows; ++r) {
                const uint32_t srow = (ScaleRow(row + r) - s0) * scalePitch_;
                for (uint32_t j = 0; j < tiles; ++j) {
                    LocalTensor<float> v = val[r * pitch + j * kBlk];
                    Muls(v, v, sc.GetValue(srow + j), int32_t(kernels::Min(kBlk, cols - j * kBlk)));
                }
            }
        }
        PipeBarrier<PIPE_V>();
        if constexpr (std::is_same<Out, float>::value) {
            outQ_.EnQue(val);
        } else {
            LocalTensor<Out> o = outQ_.template AllocTensor<Out>();
            Cast(o, val, RoundMode::CAST_RINT, int32_t(n));
            outQ_.EnQue(o);
        }
    }

    __aicore__ inline void CopyOut(uint32_t row, uint32_t rows, uint32_t k0, uint32_t cols) {
        const uint32_t pitchBytes = kernels::RoundUp(cols, 32) * sizeof(Out);
        const uint32_t rowBytes = cols * sizeof(Out), burst = kernels::RoundUp(rowBytes, 32);
        LocalTensor<Out> o = outQ_.template DeQue<Out>();
        DataCopyPad(out_[uint64_t(row) * t_.k + k0], o,
                    DataCopyExtParams(uint16_t(rows), rowBytes, (pitchBytes - burst) / 32, (t_.k - cols) * uint32_t(sizeof(Out)), 0));
        outQ_.FreeTensor(o);
    }

    TPipe pipe_;
    TQue<QuePosition::VECIN, 1> codeQ_;
    TQue<QuePosition::VECOUT, 1> outQ_;
    TBuf<QuePosition::VECCALC> halfBuf_, idxBuf_, valBuf_, table_, scaleBuf_;
    GlobalTensor<uint8_t> codes_;
    GlobalTensor<float> scales_;
    GlobalTensor<Out> out_;
    Fp8DequantTiling t_;
    uint32_t kb_ = 0, rows_ = 0, row0_ = 0, scalePitch_ = 0;
};

template <typename Out>
__aicore__ inline void RunDequant(GM_ADDR codes, GM_ADDR scales, GM_ADDR out, GM_ADDR tiling) {
    Fp8DequantTiling t;
    kernels::LoadTiling(t, tiling);
    DequantKernel<Out> k;
    k.Init(codes, scales, out, t);
    k.Process();
}

}  // namespace

extern "C" __global__ __aicore__ void fp8_dequant_bf16(GM_ADDR codes, GM_ADDR scales, GM_ADDR out, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunDequant<bfloat16_t>(codes, scales, out, tiling);
}
extern "C" __global__ __aicore__ void fp8_dequant_f32(GM_ADDR codes, GM_ADDR scales, GM_ADDR out, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunDequant<float>(codes, scales, out, tiling);
}
