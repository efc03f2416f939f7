// Swaps the two leading axes of a bf16 [outer, inner, width] tensor (tiling/mla_swap_axes_tiling.h):
// dst[b][a][:] = src[a][b][:]. The absorbed MLA decode multiplies per head on the cube, whose
// operands must be contiguous, so it moves [tokens, heads, w] rows to head-major
// [heads, tokens, w] before the W_UK products and back after the W_UV ones.
// Vector-only and pure data movement: per work item one DMA in (src rows are contiguous) and one
// strided DMA out (a burst per row, GM gap (outer - 1) * width elements). No vector work, so the
// buffer goes straight from MTE2 to MTE3 with explicit flags.
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "tiling/mla_swap_axes_tiling.h"

using namespace AscendC;

namespace {

class SwapAxes {
public:
    __aicore__ inline void Init(GM_ADDR src, GM_ADDR dst, const MlaSwapAxesTiling& t) {
        t_ = t;
        const uint64_t len = uint64_t(t.outer) * t.inner * t.width;
        src_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(src), len);
        dst_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(dst), len);
        pipe_.InitBuffer(buf_, t.chunk_rows * t.width * 2);
    }

    __aicore__ inline void Process() {
        const uint32_t items = t_.outer * t_.chunks, W = t_.width;
        LocalTensor<bfloat16_t> b = buf_.Get<bfloat16_t>();
        for (uint32_t w = GetBlockIdx(); w < items; w += GetBlockNum()) {
            const uint32_t a = w / t_.chunks, r0 = (w % t_.chunks) * t_.chunk_rows;
            const uint32_t rows = kernels::Min(t_.chunk_rows, t_.inner - r0);
            DataCopyPad(b, src_[(uint64_t(a) * t_.inner + r0) * W], DataCopyExtParams(1, rows * W * 2, 0, 0, 0),
                        DataCopyPadExtParams<bfloat16_t>(false, 0, 0, bfloat16_t(0.0f)));
            SetFlag<HardEvent::MTE2_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::MTE2_MTE3>(EVENT_ID0);
            DataCopyPad(dst_[(uint64_t(r0) * t_.outer + a) * W], b,
                        DataCopyExtParams(uint16_t(rows), W * 2, 0, (t_.outer - 1) * W * 2, 0));
            // The next item's load overwrites the buffer: wait for this store.
            SetFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
            WaitFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        }
    }

private:
    MlaSwapAxesTiling t_{};
    TPipe pipe_;
    TBuf<QuePosition::VECCALC> buf_;
    GlobalTensor<bfloat16_t> src_, dst_;
};

}  // namespace

extern "C" __global__ __aicore__ void mla_swap_axes_bf16(GM_ADDR src, GM_ADDR dst, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    MlaSwapAxesTiling t;
    kernels::LoadTiling(t, tiling);
    SwapAxes k;
    k.Init(src, dst, t);
    k.Process();
}
