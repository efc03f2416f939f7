// Helpers shared by our kernels that compile both with CANN's toolchain and with the shim.
#pragma once

#include "kernel_operator.h"

#ifndef ASCEND_SHIM
// CANN builds: registration with the CPU shim is a no-op.
#define ASCEND_SHIM_KERNEL(name, kind)
#endif

namespace kernels {

// Reads a tiling struct of uint32_t fields from GM with scalar loads. Works on both compilers: the
// shim cannot dereference device addresses, and on the NPU scalar GM reads go through the data
// cache like a plain struct dereference would.
template <typename T>
__aicore__ inline void LoadTiling(T& out, GM_ADDR tiling) {
    static_assert(sizeof(T) % sizeof(uint32_t) == 0, "tiling structs hold uint32_t fields only");
    AscendC::GlobalTensor<uint32_t> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ uint32_t*>(tiling), sizeof(T) / sizeof(uint32_t));
    uint32_t* words = reinterpret_cast<uint32_t*>(&out);
    for (uint32_t i = 0; i < sizeof(T) / sizeof(uint32_t); ++i) words[i] = g.GetValue(i);
}

template <typename T>
__aicore__ inline T Min(T a, T b) { return a < b ? a : b; }

__aicore__ inline uint32_t RoundUp(uint32_t x, uint32_t a) { return (x + a - 1) / a * a; }

}  // namespace kernels
