// Merges two partial attentions of the same query rows over disjoint key sets by their LSEs
// (tiling/mla_lse_merge_tiling.h): chunked prefill attends to the cached prefix and to the new
// chunk separately and merges. Vector-only: per work item the chunk's weights on the scalar
// unit with Exp / Ln on the vector unit, then the weighted sum of the two bf16 row blocks in
// f32, rounded once to bf16.
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "tiling/mla_lse_merge_tiling.h"

using namespace AscendC;

namespace {

constexpr uint32_t kMaxRows = 64;

__aicore__ inline float kInf() { return kernels::fp8::BitsFloat(0x7F800000u); }

class LseMerge {
public:
    __aicore__ inline void Init(GM_ADDR outA, GM_ADDR lseA, GM_ADDR outB, GM_ADDR lseB, GM_ADDR out, GM_ADDR lse,
                                const MlaLseMergeTiling& t) {
        t_ = t;
        const uint64_t len = uint64_t(t.rows) * t.width;
        outA_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(outA), len);
        outB_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(outB), len);
        out_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(out), len);
        lseA_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(lseA), t.rows);
        lseB_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(lseB), t.rows);
        lse_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(lse), t.rows);
        const uint32_t n = t.chunk_rows * t.width;
        pipe_.InitBuffer(rawA_, n * 2);
        pipe_.InitBuffer(rawB_, n * 2);
        pipe_.InitBuffer(fa_, n * 4);
        pipe_.InitBuffer(fb_, n * 4);
        // Exp arguments (2 per row), Ln arguments, LSE slots (one 32-byte slot per row).
        pipe_.InitBuffer(ex_, kMaxRows * 2 * 4);
        pipe_.InitBuffer(lnv_, kMaxRows * 4);
        pipe_.InitBuffer(slots_, kMaxRows * 32);
    }

    __aicore__ inline void Process() {
        for (uint32_t w = GetBlockIdx(); w < t_.chunks; w += GetBlockNum()) {
            const uint32_t r0 = w * t_.chunk_rows;
            Merge(r0, kernels::Min(t_.chunk_rows, t_.rows - r0));
        }
    }

private:
    __aicore__ inline uint64_t LseAt(uint32_t r) const {
        const uint32_t h = t_.lse_heads, tokens = t_.rows / h;
        return uint64_t(r % h) * tokens + r / h;
    }

    __aicore__ inline void Merge(uint32_t r0, uint32_t n) {
        const uint32_t W = t_.width;
        LocalTensor<bfloat16_t> ra = rawA_.Get<bfloat16_t>(), rb = rawB_.Get<bfloat16_t>();
        LocalTensor<float> fa = fa_.Get<float>(), fb = fb_.Get<float>();
        LocalTensor<float> ex = ex_.Get<float>(), lnv = lnv_.Get<float>(), slots = slots_.Get<float>();
        // The rows load while the scalar unit computes the weights.
        DataCopyPad(ra, outA_[uint64_t(r0) * W], DataCopyExtParams(1, n * W * 2, 0, 0, 0),
                    DataCopyPadExtParams<bfloat16_t>(false, 0, 0, bfloat16_t(0.0f)));
        DataCopyPad(rb, outB_[uint64_t(r0) * W], DataCopyExtParams(1, n * W * 2, 0, 0, 0),
                    DataCopyPadExtParams<bfloat16_t>(false, 0, 0, bfloat16_t(0.0f)));
        float m[kMaxRows];
        for (uint32_t r = 0; r < n; ++r) {
            const float a = lseA_.GetValue(LseAt(r0 + r)), b = lseB_.GetValue(LseAt(r0 + r));
            // +inf marks a part that saw no key: it weighs 0.
            const bool ea = a == kInf(), eb = b == kInf();
            m[r] = ea ? (eb ? 0.0f : b) : (eb ? a : (a > b ? a : b));
            ex.SetValue(2 * r, ea ? -kInf() : a - m[r]);
            ex.SetValue(2 * r + 1, eb ? -kInf() : b - m[r]);
        }
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
        Exp(ex, ex, int32_t(2 * n));
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        for (uint32_t r = 0; r < n; ++r) {
            const float s = ex.GetValue(2 * r) + ex.GetValue(2 * r + 1);
            lnv.SetValue(r, s > 0.0f ? s : 1.0f);
        }
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
        Ln(lnv, lnv, int32_t(n));
        SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
        WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
        Cast(fa, ra, RoundMode::CAST_NONE, int32_t(n * W));
        Cast(fb, rb, RoundMode::CAST_NONE, int32_t(n * W));
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        PipeBarrier<PIPE_V>();  // the casts are done before the rows are scaled
        for (uint32_t r = 0; r < n; ++r) {
            const float pa = ex.GetValue(2 * r), pb = ex.GetValue(2 * r + 1), s = pa + pb;
            const float wa = s > 0.0f ? pa / s : 0.0f, wb = s > 0.0f ? pb / s : 0.0f;
            slots.SetValue(r * 8, s > 0.0f ? m[r] + lnv.GetValue(r) : kInf());
            Muls(fa[r * W], fa[r * W], wa, int32_t(W));
            Muls(fb[r * W], fb[r * W], wb, int32_t(W));
        }
        PipeBarrier<PIPE_V>();
        Add(fa, fa, fb, int32_t(n * W));
        PipeBarrier<PIPE_V>();
        Cast(ra, fa, RoundMode::CAST_RINT, int32_t(n * W));
        SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
        WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
        DataCopyPad(out_[uint64_t(r0) * W], ra, DataCopyExtParams(1, n * W * 2, 0, 0, 0));
        SetFlag<HardEvent::S_MTE3>(EVENT_ID0);
        WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
        for (uint32_t r = 0; r < n; ++r) DataCopyPad(lse_[LseAt(r0 + r)], slots[r * 8], DataCopyExtParams(1, 4, 0, 0, 0));
        // The next item's loads and scalar writes reuse these buffers.
        SetFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        SetFlag<HardEvent::MTE3_S>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_S>(EVENT_ID0);
    }

    MlaLseMergeTiling t_{};
    TPipe pipe_;
    TBuf<QuePosition::VECCALC> rawA_, rawB_, fa_, fb_, ex_, lnv_, slots_;
    GlobalTensor<bfloat16_t> outA_, outB_, out_;
    GlobalTensor<float> lseA_, lseB_, lse_;
};

}  // namespace

extern "C" __global__ __aicore__ void mla_lse_merge_bf16(GM_ADDR out_a, GM_ADDR lse_a, GM_ADDR out_b, GM_ADDR lse_b,
                                                         GM_ADDR out, GM_ADDR lse, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    MlaLseMergeTiling t;
    kernels::LoadTiling(t, tiling);
    LseMerge k;
    k.Init(out_a, lse_a, out_b, lse_b, out, lse, t);
    k.Process();
}
