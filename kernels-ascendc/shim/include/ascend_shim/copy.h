// DataCopy (aligned bursts), DataCopyPad (byte-exact GM side), DataCopy with ND -> NZ conversion.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor.h"

namespace AscendC {

struct DataCopyParams {
    uint16_t blockCount = 1;
    uint16_t blockLen = 0;  // 32-byte blocks per burst
    uint16_t srcStride = 0;  // 32-byte blocks between the end of one burst and the next
    uint16_t dstStride = 0;
    DataCopyParams() = default;
    DataCopyParams(uint16_t count, uint16_t len, uint16_t srcGap, uint16_t dstGap)
        : blockCount(count), blockLen(len), srcStride(srcGap), dstStride(dstGap) {}
};

struct DataCopyExtParams {
    uint16_t blockCount = 1;
    uint32_t blockLen = 0;   // bytes per burst
    uint32_t srcStride = 0;  // GM side: bytes; UB side: 32-byte blocks
    uint32_t dstStride = 0;
    uint32_t rsv = 0;
    DataCopyExtParams() = default;
    DataCopyExtParams(uint16_t count, uint32_t len, uint32_t srcGap, uint32_t dstGap, uint32_t r = 0)
        : blockCount(count), blockLen(len), srcStride(srcGap), dstStride(dstGap), rsv(r) {}
};

template <typename T>
struct DataCopyPadExtParams {
    bool isPad = false;
    uint8_t leftPadding = 0;   // elements
    uint8_t rightPadding = 0;  // elements
    T paddingValue{};
    DataCopyPadExtParams() = default;
    DataCopyPadExtParams(bool pad, uint8_t left, uint8_t right, T value)
        : isPad(pad), leftPadding(left), rightPadding(right), paddingValue(value) {}
};

struct Nd2NzParams {
    uint16_t ndNum = 1;
    uint16_t nValue = 0;             // rows
    uint16_t dValue = 0;             // columns
    uint16_t srcNdMatrixStride = 0;  // elements between source matrices
    uint16_t srcDValue = 0;          // source row pitch, elements
    uint16_t dstNzC0Stride = 0;      // 32-byte blocks between column blocks (= padded row count)
    uint16_t dstNzNStride = 1;       // 32-byte blocks between rows
    uint16_t dstNzMatrixStride = 0;  // elements between destination matrices
    Nd2NzParams() = default;
    Nd2NzParams(uint16_t nd, uint16_t n, uint16_t d, uint16_t srcMat, uint16_t srcD, uint16_t c0Stride,
                uint16_t nStride, uint16_t dstMat)
        : ndNum(nd), nValue(n), dValue(d), srcNdMatrixStride(srcMat), srcDValue(srcD), dstNzC0Stride(c0Stride),
          dstNzNStride(nStride), dstNzMatrixStride(dstMat) {}
};

}  // namespace AscendC

namespace ascend_shim {

void check_datacopy_params(const char* api, uint32_t blockCount, uint32_t blockLen);

template <typename T>
void copy_in_bursts(const AscendC::LocalTensor<T>& dst, const AscendC::GlobalTensor<T>& src,
                    const AscendC::DataCopyParams& p, const char* api) {
    check_datacopy_params(api, p.blockCount, p.blockLen);
    const uint64_t len = uint64_t(p.blockLen) * 32, sp = len + p.srcStride * 32ull, dp = len + p.dstStride * 32ull;
    const uint64_t dstBytes = (p.blockCount - 1) * dp + len, srcBytes = (p.blockCount - 1) * sp + len;
    T* d = operand(dst, dstBytes / sizeof(T), false, api, "dst", mem_bit(MEM_UB) | mem_bit(MEM_L1));
    uint8_t* s = reinterpret_cast<uint8_t*>(src.span(0, srcBytes / sizeof(T), api));
    for (uint32_t i = 0; i < p.blockCount; ++i) {
        std::memcpy(reinterpret_cast<uint8_t*>(d) + i * dp, s + i * sp, len);
        set_defined(Mem(dst.mem_), uint32_t(dst.off_ + i * dp), uint32_t(len), true);
        gm_note_read(gm_addr(src.GetPhyAddr()) + i * sp, len);
    }
    core().counters.gm_to_local_bytes += len * p.blockCount;
}

template <typename T>
void copy_out_bursts(const AscendC::GlobalTensor<T>& dst, const AscendC::LocalTensor<T>& src,
                     const AscendC::DataCopyParams& p, const char* api) {
    check_datacopy_params(api, p.blockCount, p.blockLen);
    const uint64_t len = uint64_t(p.blockLen) * 32, sp = len + p.srcStride * 32ull, dp = len + p.dstStride * 32ull;
    const uint64_t srcBytes = (p.blockCount - 1) * sp + len, dstBytes = (p.blockCount - 1) * dp + len;
    const uint8_t* s =
        reinterpret_cast<const uint8_t*>(operand(src, srcBytes / sizeof(T), false, api, "src", mem_bit(MEM_UB)));
    uint8_t* d = reinterpret_cast<uint8_t*>(dst.span(0, dstBytes / sizeof(T), api));
    for (uint32_t i = 0; i < p.blockCount; ++i) {
        if (!is_defined(Mem(src.mem_), uint32_t(src.off_ + i * sp), uint32_t(len)))
            fail_operand(api, "src", "uninit", src.slot_, uint32_t(src.off_ + i * sp), uint32_t(len));
        std::memcpy(d + i * dp, s + i * sp, len);
        gm_note_write(gm_addr(dst.GetPhyAddr()) + i * dp, len);
    }
    core().counters.local_to_gm_bytes += len * p.blockCount;
}

template <typename T>
void copy_local_bursts(const AscendC::LocalTensor<T>& dst, const AscendC::LocalTensor<T>& src,
                       const AscendC::DataCopyParams& p, const char* api) {
    check_datacopy_params(api, p.blockCount, p.blockLen);
    const uint64_t len = uint64_t(p.blockLen) * 32, sp = len + p.srcStride * 32ull, dp = len + p.dstStride * 32ull;
    const uint8_t* s = reinterpret_cast<const uint8_t*>(
        operand(src, ((p.blockCount - 1) * sp + len) / sizeof(T), false, api, "src", mem_bit(MEM_UB)));
    uint8_t* d = reinterpret_cast<uint8_t*>(
        operand(dst, ((p.blockCount - 1) * dp + len) / sizeof(T), false, api, "dst", mem_bit(MEM_UB)));
    for (uint32_t i = 0; i < p.blockCount; ++i) {
        if (!is_defined(Mem(src.mem_), uint32_t(src.off_ + i * sp), uint32_t(len)))
            fail_operand(api, "src", "uninit", src.slot_, uint32_t(src.off_ + i * sp), uint32_t(len));
        std::memmove(d + i * dp, s + i * sp, len);
        set_defined(Mem(dst.mem_), uint32_t(dst.off_ + i * dp), uint32_t(len), true);
    }
    core().counters.local_to_local_bytes += len * p.blockCount;
}

// The NPU silently rounds a count form's length down to 32 bytes; a kernel relying on that has
// lost its tail, so the shim refuses it.
template <typename T>
AscendC::DataCopyParams count_params(uint32_t count, const char* api) {
    uint64_t bytes = uint64_t(count) * sizeof(T);
    if (count == 0 || bytes % 32 != 0)
        fail("datacopy-len",
             "%s of %u elements = %llu bytes: the length must be a non-zero multiple of 32 bytes (the NPU would "
             "silently drop the last %llu bytes); use DataCopyPad for unaligned lengths",
             api, count, (unsigned long long)bytes, (unsigned long long)(bytes % 32));
    if (bytes / 32 > 65535) fail("datacopy-len", "%s of %llu bytes exceeds 65535 blocks of 32 bytes", api,
                                 (unsigned long long)bytes);
    return AscendC::DataCopyParams(1, uint16_t(bytes / 32), 0, 0);
}

}  // namespace ascend_shim

namespace AscendC {

template <typename T>
void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, uint32_t count) {
    ascend_shim::copy_in_bursts(dst, src, ascend_shim::count_params<T>(count, "DataCopy(GM->local)"), "DataCopy(GM->local)");
}
template <typename T>
void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src, uint32_t count) {
    ascend_shim::copy_out_bursts(dst, src, ascend_shim::count_params<T>(count, "DataCopy(UB->GM)"), "DataCopy(UB->GM)");
}
template <typename T>
void DataCopy(const LocalTensor<T>& dst, const LocalTensor<T>& src, uint32_t count) {
    ascend_shim::copy_local_bursts(dst, src, ascend_shim::count_params<T>(count, "DataCopy(UB->UB)"), "DataCopy(UB->UB)");
}
template <typename T>
void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyParams& p) {
    ascend_shim::copy_in_bursts(dst, src, p, "DataCopy(GM->local, DataCopyParams)");
}
template <typename T>
void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyParams& p) {
    ascend_shim::copy_out_bursts(dst, src, p, "DataCopy(UB->GM, DataCopyParams)");
}
template <typename T>
void DataCopy(const LocalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyParams& p) {
    ascend_shim::copy_local_bursts(dst, src, p, "DataCopy(UB->UB, DataCopyParams)");
}

template <typename T>
void DataCopyPad(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyExtParams& p,
                 const DataCopyPadExtParams<T>& pad) {
    using namespace ascend_shim;
    const char* api = "DataCopyPad(GM->UB)";
    const uint32_t sz = sizeof(T);
    if (p.blockCount < 1 || p.blockCount > 4095 || p.blockLen < 1 || p.blockLen > 2097151)
        fail("datacopy-params", "%s: blockCount %u must be in [1,4095] and blockLen %u bytes in [1,2097151]", api,
             p.blockCount, p.blockLen);
    if (p.blockLen % sz != 0 || p.srcStride % sz != 0)
        fail("datacopy-params", "%s: blockLen %u and srcStride %u bytes must be multiples of the element size %u",
             api, p.blockLen, p.srcStride, sz);
    const uint32_t left = pad.leftPadding * sz, right = pad.rightPadding * sz;
    if (left > 32 || right > 32)
        fail("datacopy-params", "%s: left/right padding of %u/%u elements exceeds 32 bytes", api, pad.leftPadding,
             pad.rightPadding);
    const uint64_t burst = (uint64_t(left) + p.blockLen + right + 31) / 32 * 32;
    const uint64_t dp = burst + uint64_t(p.dstStride) * 32, sp = uint64_t(p.blockLen) + p.srcStride;
    const uint64_t dstBytes = (p.blockCount - 1) * dp + burst, srcBytes = (p.blockCount - 1) * sp + p.blockLen;
    uint8_t* d = reinterpret_cast<uint8_t*>(operand(dst, dstBytes / sz, false, api, "dst", mem_bit(MEM_UB) | mem_bit(MEM_L1)));
    const uint8_t* s = reinterpret_cast<const uint8_t*>(src.span(0, srcBytes / sz, api));
    const Mem m = Mem(dst.mem_);
    for (uint32_t i = 0; i < p.blockCount; ++i) {
        uint8_t* b = d + i * dp;
        const uint32_t boff = uint32_t(dst.off_ + i * dp);
        std::memcpy(b + left, s + i * sp, p.blockLen);
        gm_note_read(gm_addr(src.GetPhyAddr()) + i * sp, p.blockLen);
        set_defined(m, boff, uint32_t(burst), false);
        set_defined(m, boff + left, p.blockLen, true);
        if (pad.isPad) {
            for (uint32_t k = 0; k < pad.leftPadding; ++k) std::memcpy(b + k * sz, &pad.paddingValue, sz);
            for (uint32_t k = 0; k < pad.rightPadding; ++k)
                std::memcpy(b + left + p.blockLen + k * sz, &pad.paddingValue, sz);
            set_defined(m, boff, left, true);
            set_defined(m, boff + left + p.blockLen, right, true);
        }
        if (left == 0 && right == 0) {
            // Documented "dummy" fill of the rest of the last 32-byte block: the burst's first element.
            for (uint64_t k = p.blockLen; k + sz <= burst; k += sz) std::memcpy(b + k, b, sz);
            set_defined(m, boff, uint32_t(burst), true);
        }
    }
    core().counters.gm_to_local_bytes += uint64_t(p.blockLen) * p.blockCount;
}

template <typename T>
void DataCopyPad(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyExtParams& p) {
    using namespace ascend_shim;
    const char* api = "DataCopyPad(UB->GM)";
    const uint32_t sz = sizeof(T);
    if (p.blockCount < 1 || p.blockCount > 4095 || p.blockLen < 1 || p.blockLen > 2097151)
        fail("datacopy-params", "%s: blockCount %u must be in [1,4095] and blockLen %u bytes in [1,2097151]", api,
             p.blockCount, p.blockLen);
    if (p.blockLen % sz != 0 || p.dstStride % sz != 0)
        fail("datacopy-params", "%s: blockLen %u and dstStride %u bytes must be multiples of the element size %u",
             api, p.blockLen, p.dstStride, sz);
    const uint64_t burst = (uint64_t(p.blockLen) + 31) / 32 * 32;
    const uint64_t sp = burst + uint64_t(p.srcStride) * 32, dp = uint64_t(p.blockLen) + p.dstStride;
    const uint64_t srcBytes = (p.blockCount - 1) * sp + p.blockLen, dstBytes = (p.blockCount - 1) * dp + p.blockLen;
    const uint8_t* s = reinterpret_cast<const uint8_t*>(operand(src, srcBytes / sz, false, api, "src", mem_bit(MEM_UB)));
    uint8_t* d = reinterpret_cast<uint8_t*>(dst.span(0, dstBytes / sz, api));
    for (uint32_t i = 0; i < p.blockCount; ++i) {
        if (!is_defined(Mem(src.mem_), uint32_t(src.off_ + i * sp), p.blockLen))
            fail_operand(api, "src", "uninit", src.slot_, uint32_t(src.off_ + i * sp), p.blockLen);
        std::memcpy(d + i * dp, s + i * sp, p.blockLen);
        gm_note_write(gm_addr(dst.GetPhyAddr()) + i * dp, p.blockLen);
    }
    core().counters.local_to_gm_bytes += uint64_t(p.blockLen) * p.blockCount;
}

// GM (ND, row-major) -> L1 (NZ: column blocks of 32 bytes, rows inside). Column padding up to
// 32 bytes is zero-filled; rows beyond nValue are left untouched.
template <typename T>
void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const Nd2NzParams& p) {
    using namespace ascend_shim;
    const char* api = "DataCopy(GM->L1, Nd2NzParams)";
    const uint64_t c0 = 32 / sizeof(T);
    if (p.ndNum == 0 || p.nValue == 0 || p.dValue == 0 || p.nValue > 16384 || p.dValue > 65535 || p.dValue > p.srcDValue)
        fail("datacopy-params", "%s: ndNum %u, nValue %u, dValue %u, srcDValue %u out of range", api, p.ndNum,
             p.nValue, p.dValue, p.srcDValue);
    const uint64_t cBlocks = (p.dValue + c0 - 1) / c0;
    if (p.dstNzNStride == 0 || (cBlocks > 1 && p.dstNzC0Stride < p.nValue * uint64_t(p.dstNzNStride)))
        fail("datacopy-params", "%s: dstNzC0Stride %u is smaller than the %u rows of a column block", api,
             p.dstNzC0Stride, p.nValue);
    const uint64_t dstEnd = (p.ndNum - 1) * uint64_t(p.dstNzMatrixStride) + (cBlocks - 1) * p.dstNzC0Stride * c0 +
                            (p.nValue - 1) * uint64_t(p.dstNzNStride) * c0 + c0;
    const uint64_t srcEnd =
        (p.ndNum - 1) * uint64_t(p.srcNdMatrixStride) + (p.nValue - 1) * uint64_t(p.srcDValue) + p.dValue;
    T* d = operand(dst, dstEnd, false, api, "dst", mem_bit(MEM_L1));
    const T* s = src.span(0, srcEnd, api);
    uint8_t* defined = core().arenas[MEM_L1].defined.data() + dst.off_;
    // Row by row, so each source row is read front to back once (column blocks inside a row are
    // neighbours in GM; rows are a pitch apart).
    for (uint32_t j = 0; j < p.ndNum; ++j) {
        for (uint32_t r = 0; r < p.nValue; ++r) {
            const T* from = s + j * uint64_t(p.srcNdMatrixStride) + r * uint64_t(p.srcDValue);
            const uint64_t row = j * uint64_t(p.dstNzMatrixStride) + r * uint64_t(p.dstNzNStride) * c0;
            for (uint64_t cb = 0; cb < cBlocks; ++cb) {
                const uint64_t cols = (cb + 1) * c0 <= p.dValue ? c0 : p.dValue - cb * c0;
                const uint64_t di = row + cb * p.dstNzC0Stride * c0;
                if (cols == c0) {
                    std::memcpy(d + di, from + cb * c0, 32);  // fixed size: inlined
                } else {
                    std::memcpy(d + di, from + cb * c0, cols * sizeof(T));
                    std::memset(static_cast<void*>(d + di + cols), 0, (c0 - cols) * sizeof(T));
                }
                if (p.dstNzNStride != 1) std::memset(defined + di * sizeof(T), 1, 32);
            }
        }
        // Rows one block apart: each column block is one run of defined bytes.
        if (p.dstNzNStride == 1)
            for (uint64_t cb = 0; cb < cBlocks; ++cb)
                std::memset(defined + (j * uint64_t(p.dstNzMatrixStride) + cb * p.dstNzC0Stride * c0) * sizeof(T), 1,
                            size_t(p.nValue) * 32);
    }
    for (uint32_t j = 0; j < p.ndNum; ++j)
        for (uint32_t r = 0; r < p.nValue; ++r)
            gm_note_read(gm_addr(src.GetPhyAddr(j * uint64_t(p.srcNdMatrixStride) + r * uint64_t(p.srcDValue))),
                         uint64_t(p.dValue) * sizeof(T));
    core().counters.gm_to_local_bytes += uint64_t(p.ndNum) * p.nValue * p.dValue * sizeof(T);
}

}  // namespace AscendC
