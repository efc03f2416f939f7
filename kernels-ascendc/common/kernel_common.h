// Helpers shared by our kernels that compile both with CANN's toolchain and with the shim.
#pragma once

#include "kernel_operator.h"

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

// Zero-fills rows [rows, paddedRows) of an NZ tile of 16-bit elements in L1 (column blocks of
// paddedRows rows x 32 bytes, `cols` columns), as Nd2Nz leaves them undefined. Cube kernels then
// issue every Mmad with m = paddedRows, a multiple of 16: an Mmad with m = 1 would run in GEMV
// mode on 910B, which reads A as a plain row instead of zZ fractals (ascendc-facts.md, errata 1),
// and padding rows must be defined to be multiplied at all.
template <typename T>
__aicore__ inline void ZeroPadRowsNz(const AscendC::LocalTensor<T>& nz, uint32_t rows, uint32_t paddedRows, uint32_t cols) {
    static_assert(sizeof(T) == 2, "NZ row padding is written for 16-bit cube inputs");
    if (rows >= paddedRows) return;
    constexpr uint32_t c0 = 32 / sizeof(T);  // elements per 32-byte block = per row of a column block
    AscendC::InitConstValueParams<T> p;
    p.repeatTimes = uint16_t((cols + c0 - 1) / c0);  // one run per column block
    p.blockNum = uint16_t(paddedRows - rows);        // the padding rows, one 32-byte block each
    p.dstGap = uint16_t(rows);                       // skip the next column block's real rows
    p.initValue = static_cast<T>(0.0f);
    AscendC::InitConstValue(nz[rows * c0], p);
}

// Cube parameter structs, filled field by field: the field names are the documented interface,
// constructor argument orders are not something to rely on across CANN versions.

// GM (row-major, `srcPitch` elements a row) -> L1 NZ: `rows` x `cols`, column blocks of
// `paddedRows` rows. A single row never uses its pitch, so a pitch below `cols` is taken as
// `cols`.
__aicore__ inline AscendC::Nd2NzParams Nd2Nz(uint32_t rows, uint32_t cols, uint32_t srcPitch, uint32_t paddedRows) {
    AscendC::Nd2NzParams p;
    p.ndNum = 1;
    p.nValue = rows;
    p.dValue = cols;
    p.srcNdMatrixStride = 0;
    p.srcDValue = srcPitch < cols ? cols : srcPitch;
    p.dstNzC0Stride = paddedRows;
    p.dstNzNStride = 1;
    p.dstNzMatrixStride = 0;
    return p;
}

// L1 -> L0A/L0B: `repeat` 16x16 fractals from fractal `start`, `srcStride` fractals apart,
// optionally transposed.
__aicore__ inline AscendC::LoadData2DParams Load2D(uint32_t start, uint32_t repeat, uint32_t srcStride, bool transpose) {
    AscendC::LoadData2DParams p;
    p.startIndex = start;
    p.repeatTimes = repeat;
    p.srcStride = srcStride;
    p.sid = 0;
    p.dstGap = 0;
    p.ifTranspose = transpose;
    p.addrMode = 0;
    return p;
}

// L0C -> GM row-major: the first `rows` rows and `cols` columns of a tile of `tileRows` rows per
// column block, `dstPitch` elements a row, converted by `quant`.
__aicore__ inline AscendC::FixpipeParamsV220 FixRows(uint32_t rows, uint32_t cols, uint32_t tileRows, uint32_t dstPitch,
                                                     QuantMode_t quant) {
    AscendC::FixpipeParamsV220 fp;
    fp.nSize = cols;
    fp.mSize = rows;
    fp.srcStride = tileRows;
    fp.dstStride = dstPitch;
    fp.quantPre = quant;
    return fp;
}

}  // namespace kernels
