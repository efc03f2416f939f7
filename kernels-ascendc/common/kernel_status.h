// Per-launch status slots: how a kernel reports bad input it finds in device memory. The safe
// layer's side is src/runtime/status.rs; the codes are decoded in src/kernels/fp8.rs, whose test
// reads this header so the two cannot drift.
//
// The host zeroes one slot of KERNEL_STATUS_SLOT_WORDS uint32 words per writing core; a kernel that
// rejects its input stays in bounds, writes the code into word 0 and details into the next words,
// and the host turns the first non-zero slot into an error when the stream is synchronised.
// Slots are written with one 32-byte DMA (UB -> GM), never with scalar GM stores, so no data-cache
// flush is needed and no two cores write the same block.
#pragma once

#include "kernel_operator.h"

#define KERNEL_STATUS_SLOT_WORDS 8u
// Contiguous FP8 GEMM: words 1..3 = index of the first bad offset, its value (int32 bits), m.
#define KERNEL_STATUS_BAD_GROUP_OFFSETS 1u
// FP8 quantization: words 1..2 = row and column of the first NaN or +-Inf input found.
#define KERNEL_STATUS_NON_FINITE 2u

namespace kernels {

// Writes {code, d1, d2, d3, 0...} to the slot at `slot` through `buf` (>= 32 bytes of UB).
__aicore__ inline void WriteStatus(GM_ADDR slot, const AscendC::LocalTensor<uint32_t>& buf, uint32_t code,
                                   uint32_t d1, uint32_t d2, uint32_t d3) {
    using namespace AscendC;
    GlobalTensor<uint32_t> gm;
    gm.SetGlobalBuffer(reinterpret_cast<__gm__ uint32_t*>(slot), KERNEL_STATUS_SLOT_WORDS);
    const uint32_t words[KERNEL_STATUS_SLOT_WORDS] = {code, d1, d2, d3, 0u, 0u, 0u, 0u};
    for (uint32_t i = 0; i < KERNEL_STATUS_SLOT_WORDS; ++i) buf.SetValue(i, words[i]);
    SetFlag<HardEvent::S_MTE3>(EVENT_ID0);
    WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
    DataCopyPad(gm, buf, DataCopyExtParams(1, KERNEL_STATUS_SLOT_WORDS * 4, 0, 0, 0));
    // The buffer may be reused by the caller's scalar code: wait for the copy out.
    SetFlag<HardEvent::MTE3_S>(EVENT_ID0);
    WaitFlag<HardEvent::MTE3_S>(EVENT_ID0);
}

}  // namespace kernels
