// MoE routing weights without renormalisation: out[t, k] = scores[t, ids[t, k]] * scale.
// aclnnMoeGatingTopK always renormalises the chosen scores; DeepSeek-V2's group_limited_greedy
// and plain softmax top-k do not. Their weights are the chosen scores themselves (times the
// routed scaling factor), which this gathers from the operator's full score output (outOut).
// Vector-only kernel; block b handles rows [b * rows_per_block, ...), one row at a time (a row
// is at most 2048 scores, so there is nothing to overlap).
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "tiling/moe_gather_scores_tiling.h"

using namespace AscendC;

namespace {

class GatherScores {
public:
    __aicore__ inline void Init(GM_ADDR scores, GM_ADDR ids, GM_ADDR out, const MoeGatherScoresTiling& t) {
        t_ = t;
        const uint64_t first = uint64_t(GetBlockIdx()) * t.rows_per_block;
        rows_ = first >= t.rows ? 0 : kernels::Min<uint64_t>(t.rows_per_block, t.rows - first);
        if (rows_ == 0) return;
        scores_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(scores) + first * t.experts, rows_ * t.experts);
        ids_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(ids) + first * t.k, rows_ * t.k);
        out_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(out) + first * t.k, rows_ * t.k);
        // Local sizes rounded up to 32-byte blocks, as UB allocation requires.
        pipe_.InitBuffer(scoreBuf_, Round32(t.experts * sizeof(float)));
        pipe_.InitBuffer(idBuf_, Round32(t.k * sizeof(int32_t)));
        pipe_.InitBuffer(outBuf_, Round32(t.k * sizeof(float)));
    }

    __aicore__ inline void Process() {
        const float scale = *reinterpret_cast<const float*>(&t_.scale_bits);
        for (uint64_t r = 0; r < rows_; ++r) {
            LocalTensor<float> s = scoreBuf_.Get<float>();
            LocalTensor<int32_t> id = idBuf_.Get<int32_t>();
            LocalTensor<float> o = outBuf_.Get<float>();
            DataCopyPad(s, scores_[r * t_.experts], DataCopyExtParams(1, t_.experts * sizeof(float), 0, 0, 0),
                        DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
            DataCopyPad(id, ids_[r * t_.k], DataCopyExtParams(1, t_.k * sizeof(int32_t), 0, 0, 0),
                        DataCopyPadExtParams<int32_t>(false, 0, 0, 0));
            SetFlag<HardEvent::MTE2_V>(0);
            WaitFlag<HardEvent::MTE2_V>(0);
            Muls(id, id, int32_t(sizeof(float)), int32_t(t_.k));  // byte offsets into the row
            PipeBarrier<PIPE_V>();
            Gather(o, s, id.ReinterpretCast<uint32_t>(), 0u, t_.k);
            PipeBarrier<PIPE_V>();
            Muls(o, o, scale, int32_t(t_.k));
            SetFlag<HardEvent::V_MTE3>(0);
            WaitFlag<HardEvent::V_MTE3>(0);
            DataCopyPad(out_[r * t_.k], o, DataCopyExtParams(1, t_.k * sizeof(float), 0, 0, 0));
            // The next row's loads overwrite these buffers only after this row's store.
            SetFlag<HardEvent::MTE3_MTE2>(0);
            WaitFlag<HardEvent::MTE3_MTE2>(0);
        }
    }

private:
    static __aicore__ inline uint32_t Round32(uint32_t bytes) { return (bytes + 31u) / 32u * 32u; }

    MoeGatherScoresTiling t_{};
    uint64_t rows_ = 0;
    TPipe pipe_;
    TBuf<QuePosition::VECCALC> scoreBuf_, idBuf_, outBuf_;
    GlobalTensor<float> scores_, out_;
    GlobalTensor<int32_t> ids_;
};

}  // namespace

extern "C" __global__ __aicore__ void moe_gather_scores(GM_ADDR scores, GM_ADDR ids, GM_ADDR out, GM_ADDR tiling) {
    MoeGatherScoresTiling t;
    kernels::LoadTiling(t, tiling);
    GatherScores k;
    k.Init(scores, ids, out, t);
    k.Process();
}
