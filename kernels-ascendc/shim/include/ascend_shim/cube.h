// Cube path: LoadData (L1 -> L0A/L0B, 512-byte fractals), Mmad (fp32 accumulation in L0C), Fixpipe
// (L0C NZ -> GM ND with optional fp32 -> half/bf16 conversion).
//
// Layouts (16-bit inputs, C0 = 16 elements = 32 bytes):
//   L1 NZ  element (r, c) at (c / 16) * C0Stride * 16 + r * 16 + c % 16   (column blocks of rows)
//   L0A zZ element (i, k) at ((i / 16) * Kp / 16 + k / 16) * 256 + (i % 16) * 16 + k % 16
//   L0B zN element (k, j) at ((k / 16) * Np / 16 + j / 16) * 256 + (j % 16) * 16 + k % 16
//   L0C NZ element (i, j) at ((j / 16) * Mp / 16 + i / 16) * 256 + (i % 16) * 16 + j % 16
// where Mp, Np, Kp are m, n, k rounded up to 16.
//
// GEMV mode (ascendc-facts.md, errata 1): on 910B an Mmad with m == 1 cannot run in the fractal
// mode. The cube reads A as a plain 1 x K row (element k at L0A offset k, the start 512-byte
// aligned) and writes each 1 x 16 slice of the result into a full L0C fractal of which only row 0
// is valid (so C is laid out as NZ with Mp = 16; the other 15 rows become undefined). The shim
// models exactly that, so a kernel that loads a one-row tile as zZ fractals reads the wrong
// elements there and fails with [gemv-mode] as soon as the row reaches undefined bytes. Kernels
// avoid the mode by padding M tiles to 16 with zero rows (InitConstValue on the L1 tile).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor.h"
#include "vector.h"

namespace AscendC {

struct LoadData2DParams {
    uint16_t startIndex = 0;  // first source fractal (512-byte units)
    uint8_t repeatTimes = 0;  // fractals to move, 1..255
    uint16_t srcStride = 0;   // source fractals between consecutive repeats
    uint8_t sid = 0;
    uint16_t dstGap = 0;      // destination fractals skipped between repeats
    bool ifTranspose = false; // transpose each 16 x 16 fractal (16-bit types)
    uint8_t addrMode = 0;
    LoadData2DParams() = default;
    LoadData2DParams(uint16_t start, uint8_t repeat, uint16_t stride, uint8_t s, uint16_t gap, bool transpose,
                     uint8_t mode)
        : startIndex(start), repeatTimes(repeat), srcStride(stride), sid(s), dstGap(gap), ifTranspose(transpose),
          addrMode(mode) {}
};

struct MmadParams {
    uint16_t m = 0, n = 0, k = 0;
    bool isBias = false;
    int32_t fmOffset = 0;
    bool enSsparse = false, enWinogradA = false, enWinogradB = false;
    uint8_t unitFlag = 0;
    bool kDirectionAlign = false;
    bool cmatrixSource = false;
    bool cmatrixInitVal = true;  // true: C = A * B; false: C += A * B
    MmadParams() = default;
    MmadParams(uint16_t mm, uint16_t nn, uint16_t kk, bool bias = false, int32_t fm = 0, bool sparse = false,
               bool wa = false, bool wb = false, uint8_t unit = 0, bool kAlign = false, bool cSrc = false,
               bool cInit = true)
        : m(mm), n(nn), k(kk), isBias(bias), fmOffset(fm), enSsparse(sparse), enWinogradA(wa), enWinogradB(wb),
          unitFlag(unit), kDirectionAlign(kAlign), cmatrixSource(cSrc), cmatrixInitVal(cInit) {}
};

struct FixpipeParamsV220 {
    uint16_t nSize = 0;
    uint16_t mSize = 0;
    uint16_t srcStride = 0;  // rows between L0C column blocks (>= mSize rounded up to 16)
    uint32_t dstStride = 0;  // elements per GM row (ND)
    QuantMode_t quantPre = QuantMode_t::NoQuant;
    uint64_t deqScalar = 0;
    uint16_t ndNum = 1;
    uint16_t srcNdStride = 0;
    uint16_t dstNdStride = 0;
    bool reluEn = false;
    uint8_t unitFlag = 0;
    bool isChannelSplit = false;
};

enum class CO2Layout : uint8_t { ROW_MAJOR = 0, NZ };
struct FixpipeConfig {
    CO2Layout format;
};
inline constexpr FixpipeConfig CFG_ROW_MAJOR = {CO2Layout::ROW_MAJOR};
inline constexpr FixpipeConfig CFG_NZ = {CO2Layout::NZ};

template <typename T>
void LoadData(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LoadData2DParams& p) {
    using namespace ascend_shim;
    const char* api = "LoadData(L1->L0)";
    if (p.repeatTimes == 0) return;  // errata 3: no-op (nothing read, nothing written)
    if (p.ifTranspose && sizeof(T) != 2) fail("cube-params", "%s: ifTranspose is only modelled for 16-bit types", api);
    const uint64_t srcEnd = (uint64_t(p.startIndex) + uint64_t(p.repeatTimes - 1) * p.srcStride + 1) * 512;
    const uint64_t dstEnd = (uint64_t(p.repeatTimes - 1) * (1u + p.dstGap) + 1) * 512;
    const uint8_t* s = reinterpret_cast<const uint8_t*>(operand(src, srcEnd / sizeof(T), false, api, "src", mem_bit(MEM_L1)));
    uint8_t* d = reinterpret_cast<uint8_t*>(operand(dst, dstEnd / sizeof(T), false, api, "dst", mem_bit(MEM_L0A) | mem_bit(MEM_L0B)));
    const uint8_t* ss = core().arenas[MEM_L1].defined.data() + src.off_;
    uint8_t* ds = core().arenas[dst.mem_].defined.data() + dst.off_;
    if (!p.ifTranspose && p.srcStride == 1 && p.dstGap == 0) {
        // Consecutive fractals to consecutive fractals: one run.
        const uint64_t so = uint64_t(p.startIndex) * 512, len = uint64_t(p.repeatTimes) * 512;
        std::memcpy(d, s + so, len);
        std::memcpy(ds, ss + so, len);
        core().counters.local_to_local_bytes += len;
        return;
    }
    for (uint32_t r = 0; r < p.repeatTimes; ++r) {
        const uint64_t so = (uint64_t(p.startIndex) + uint64_t(r) * p.srcStride) * 512;
        const uint64_t dO = uint64_t(r) * (1u + p.dstGap) * 512;
        if (!p.ifTranspose) {
            std::memcpy(d + dO, s + so, 512);
            std::memcpy(ds + dO, ss + so, 512);
        } else {
            // Undefined bytes travel with the data: copying garbage is legal, computing on it is not.
            for (uint32_t i = 0; i < 16; ++i)
                for (uint32_t j = 0; j < 16; ++j) {
                    std::memcpy(d + dO + (j * 16 + i) * 2, s + so + (i * 16 + j) * 2, 2);
                    std::memcpy(ds + dO + (j * 16 + i) * 2, ss + so + (i * 16 + j) * 2, 2);
                }
        }
    }
    core().counters.local_to_local_bytes += uint64_t(p.repeatTimes) * 512;
}

// Fills repeatTimes runs of blockNum blocks, dstGap blocks apart, with initValue. A block is
// 32 bytes in L1 (A1/B1) and 512 bytes in L0A/L0B (A2/B2). repeatTimes, blockNum and dstGap each
// lie in [0, 32767]; zero repeats or zero blocks write nothing.
template <typename T>
struct InitConstValueParams {
    uint16_t repeatTimes = 0;
    uint16_t blockNum = 0;
    uint16_t dstGap = 0;
    T initValue = T(0.0f);
    InitConstValueParams() = default;
    InitConstValueParams(uint16_t repeat, uint16_t blocks, uint16_t gap, T value)
        : repeatTimes(repeat), blockNum(blocks), dstGap(gap), initValue(value) {}
};

template <typename T, typename U>
void InitConstValue(const LocalTensor<T>& dst, const InitConstValueParams<U>& p) {
    static_assert(std::is_same<T, U>::value, "InitConstValue: the value type must be the tensor's element type");
    static_assert(ascend_shim::one_of<T, half, bfloat16_t, int16_t, uint16_t, float, int32_t, uint32_t>,
                  "InitConstValue on 910B: half/bfloat16_t/int16_t/uint16_t/float/int32_t/uint32_t");
    using namespace ascend_shim;
    const char* api = "InitConstValue";
    if (p.repeatTimes > 32767 || p.blockNum > 32767 || p.dstGap > 32767)
        fail("cube-params", "%s: repeatTimes %u, blockNum %u, dstGap %u must each be in [0,32767]", api, p.repeatTimes,
             p.blockNum, p.dstGap);
    const uint32_t block = dst.mem_ == MEM_L1 ? 32u : 512u;
    const uint64_t bytes = p.repeatTimes == 0 || p.blockNum == 0
                               ? 0
                               : (uint64_t(p.repeatTimes) * (p.blockNum + p.dstGap) - p.dstGap) * block;
    uint8_t* d = reinterpret_cast<uint8_t*>(
        operand(dst, bytes / sizeof(T), false, api, "dst", mem_bit(MEM_L1) | mem_bit(MEM_L0A) | mem_bit(MEM_L0B)));
    if (bytes == 0) return;
    for (uint32_t r = 0; r < p.repeatTimes; ++r) {
        const uint64_t o = uint64_t(r) * (p.blockNum + p.dstGap) * block;
        T* e = reinterpret_cast<T*>(d + o);
        for (uint64_t i = 0; i < uint64_t(p.blockNum) * block / sizeof(T); ++i) e[i] = p.initValue;
        set_defined(Mem(dst.mem_), uint32_t(dst.off_ + o), p.blockNum * block, true);
    }
}

}  // namespace AscendC

namespace ascend_shim {

// One Mmad's operands after its checks (shim_mmad.cpp computes it): A and B are the 16-bit
// fractals as laid out in L0A/L0B, C the fp32 NZ tile in L0C (rows beyond m and columns beyond n
// are neither read nor written).
struct MmadJob {
    const uint8_t* a;
    const uint8_t* b;
    float* c;
    uint32_t m, n, k;
    bool bf16;  // else half
    bool gemv;  // m == 1: A is a plain row
    bool init;  // cmatrixInitVal: C = A * B instead of C += A * B
};
void mmad_compute(const MmadJob& job);
// The same with a named micro-kernel ("generic", "avx2", "avx512"); false if this CPU lacks it.
bool mmad_compute_with(const MmadJob& job, const char* isa);
// The micro-kernel the CPU got ("avx512", "avx2" or "generic"), for benches and tests.
const char* mmad_isa_name();

}  // namespace ascend_shim

namespace AscendC {

template <typename T, typename U, typename S>
void Mmad(const LocalTensor<T>& dst, const LocalTensor<U>& fm, const LocalTensor<S>& filter, const MmadParams& p) {
    static_assert(std::is_same<T, float>::value && std::is_same<U, S>::value && ascend_shim::one_of<U, half, bfloat16_t>,
                  "Mmad in the shim: half x half -> float or bfloat16 x bfloat16 -> float");
    using namespace ascend_shim;
    const char* api = "Mmad";
    const uint32_t m = p.m, n = p.n, k = p.k;
    if (m > 4095 || n > 4095 || k > 4095)
        fail("cube-params", "%s: m %u, n %u, k %u must each be in [0,4095]", api, m, n, k);
    if (p.isBias) fail("cube-params", "%s: isBias is not modelled by the shim", api);
    // Errata 5 allows zero sizes; the shim then computes and writes nothing (the documentation
    // leaves the L0C contents open, so a kernel must not read them).
    if (m == 0 || n == 0 || k == 0) return;
    const bool gemv = m == 1;
    const uint32_t mp = (m + 15) / 16 * 16, np = (n + 15) / 16 * 16, kp = (k + 15) / 16 * 16;
    const uint8_t* pa = reinterpret_cast<const uint8_t*>(
        operand(fm, gemv ? uint64_t(k) : uint64_t(mp) * kp, false, api, "A (fm)", mem_bit(MEM_L0A)));
    const uint8_t* pb = reinterpret_cast<const uint8_t*>(operand(filter, uint64_t(kp) * np, false, api, "B (filter)", mem_bit(MEM_L0B)));
    float* pc = operand(dst, uint64_t(mp) * np, false, api, "C (dst)", mem_bit(MEM_L0C), 1024);
    const uint8_t* sa = core().arenas[MEM_L0A].defined.data() + fm.off_;
    const uint8_t* sb = core().arenas[MEM_L0B].defined.data() + filter.off_;
    uint8_t* sc = core().arenas[MEM_L0C].defined.data() + dst.off_;
    auto undefined = [&](const char* what, int32_t slot, uint32_t off, uint32_t len) {
        fail_operand(api, what, "uninit", slot, off, len);
    };
    // Only the logical m x k and k x n parts must be defined: rows/columns beyond m and n stay out
    // of the result, and k is honoured exactly. One scan of the whole tile settles the usual case;
    // the exact scans below run only when it finds a hole, so they report the first hole that
    // matters (or find that only padding is undefined).
    if (gemv) {
        const void* hole = std::memchr(sa, 0, size_t(k) * 2);
        if (hole != nullptr) {
            const uint32_t at = uint32_t(static_cast<const uint8_t*>(hole) - sa);
            fail("gemv-mode",
                 "%s: m = 1 runs in GEMV mode on 910B, which reads A as a plain 1 x %u row (K values contiguous "
                 "from the L0A start, not zZ fractals); byte %u of that row (L0A offset %u) was never written. "
                 "Pad the M tile to 16 with zero rows, or load A as a row",
                 api, k, at, fm.off_ + at);
        }
    } else if (std::memchr(sa, 0, size_t(mp) * kp * 2)) {
        for (uint32_t i = 0; i < m; ++i)
            for (uint32_t kb = 0; kb < kp / 16; ++kb) {
                const uint32_t e = ((i / 16) * (kp / 16) + kb) * 256 + (i % 16) * 16;
                const uint32_t cnt = std::min(16u, k - kb * 16);
                if (std::memchr(sa + e * 2, 0, cnt * 2)) undefined("A (fm)", fm.slot_, fm.off_ + e * 2, cnt * 2);
            }
    }
    if (std::memchr(sb, 0, size_t(kp) * np * 2)) {
        for (uint32_t kb = 0; kb < kp / 16; ++kb)
            for (uint32_t j = 0; j < n; ++j) {
                const uint32_t e = (kb * (np / 16) + j / 16) * 256 + (j % 16) * 16;
                const uint32_t cnt = std::min(16u, k - kb * 16);
                if (std::memchr(sb + e * 2, 0, cnt * 2)) undefined("B (filter)", filter.slot_, filter.off_ + e * 2, cnt * 2);
            }
    }
    // An accumulating Mmad over a wholly defined C tile (every K step after the first) leaves
    // the definedness of L0C as it was, so the marking below is skipped for it.
    const bool cWhollyDefined = !p.cmatrixInitVal && std::memchr(sc, 0, size_t(mp) * np * 4) == nullptr;
    if (!p.cmatrixInitVal && !cWhollyDefined) {
        for (uint32_t i = 0; i < m; ++i)
            for (uint32_t jb = 0; jb < np / 16; ++jb) {
                const uint32_t e = (jb * (mp / 16) + i / 16) * 256 + (i % 16) * 16;
                const uint32_t cnt = std::min(16u, n - jb * 16);
                if (std::memchr(sc + e * 4, 0, cnt * 4)) undefined("C (accumulator)", dst.slot_, dst.off_ + e * 4, cnt * 4);
            }
    }
    mmad_compute(MmadJob{pa, pb, pc, m, n, k, std::is_same<U, bfloat16_t>::value, gemv, p.cmatrixInitVal});
    // L0C column block jb holds rows 0..mp-1 of 16 floats: rows < m of it are now defined.
    for (uint32_t jb = 0; jb < (cWhollyDefined ? 0 : np / 16); ++jb) {
        const uint32_t cnt = std::min(16u, n - jb * 16);
        uint8_t* block = sc + size_t(jb) * mp * 64;
        if (cnt == 16)
            std::memset(block, 1, size_t(m) * 64);
        else
            for (uint32_t i = 0; i < m; ++i) std::memset(block + i * 64, 1, cnt * 4);
    }
    if (gemv) {
        // Rows 1..15 of every result fractal hold nothing valid after a GEMV.
        for (uint32_t jb = 0; jb < np / 16; ++jb) {
            std::memset(pc + jb * 256 + 16, 0xFF, 240 * sizeof(float));
            std::memset(sc + (jb * 256 + 16) * 4, 0, 240 * sizeof(float));
        }
    }
    core().counters.cube_macs += uint64_t(m) * n * k;
}

template <typename T, typename U, const FixpipeConfig& config = CFG_ROW_MAJOR>
void Fixpipe(const GlobalTensor<T>& dst, const LocalTensor<U>& src, const FixpipeParamsV220& p) {
    static_assert(std::is_same<U, float>::value, "Fixpipe in the shim: fp32 L0C source");
    static_assert(ascend_shim::one_of<T, float, half, bfloat16_t>, "Fixpipe in the shim: float/half/bfloat16 output");
    using namespace ascend_shim;
    const char* api = "Fixpipe(L0C->GM)";
    if (config.format != CO2Layout::ROW_MAJOR) fail("cube-params", "%s: only CFG_ROW_MAJOR (NZ -> ND) is modelled", api);
    const QuantMode_t want = std::is_same<T, float>::value  ? QuantMode_t::NoQuant
                             : std::is_same<T, half>::value ? QuantMode_t::F322F16
                                                            : QuantMode_t::F322BF16;
    if (p.quantPre != want)
        fail("fixpipe-quant", "%s: quantPre %d does not match the %s destination (expected %d)", api, int(p.quantPre),
             type_name<T>(), int(want));
    if (p.ndNum != 1) fail("cube-params", "%s: ndNum %u > 1 is not modelled", api, p.ndNum);
    const uint32_t m = p.mSize, n = p.nSize;
    if (m == 0 || n == 0 || p.srcStride < m || p.srcStride % 16 != 0 || p.dstStride < n)
        fail("cube-params", "%s: mSize %u, nSize %u, srcStride %u (multiple of 16, >= mSize), dstStride %u (>= nSize)",
             api, m, n, p.srcStride, p.dstStride);
    const uint32_t nb = (n + 15) / 16;
    const float* c = operand(src, (uint64_t(nb - 1) * p.srcStride + m) * 16, false, api, "src", mem_bit(MEM_L0C));
    const uint8_t* sc = core().arenas[MEM_L0C].defined.data() + src.off_;
    T* g = dst.span(0, uint64_t(m - 1) * p.dstStride + n, api);
    // The m rows of a full column block are one run of L0C: one scan each settles the usual
    // case; the per-row scans below then only run to name the first undefined row.
    bool defined = true;
    for (uint32_t jb = 0; jb < nb && defined; ++jb) {
        const uint32_t cnt = std::min(16u, n - jb * 16);
        if (cnt == 16)
            defined = std::memchr(sc + size_t(jb) * p.srcStride * 64, 0, size_t(m) * 64) == nullptr;
        else
            for (uint32_t i = 0; i < m && defined; ++i)
                defined = std::memchr(sc + (size_t(jb) * p.srcStride + i) * 64, 0, cnt * 4) == nullptr;
    }
    for (uint32_t i = 0; i < m; ++i)
        for (uint32_t jb = 0; jb < nb; ++jb) {
            const uint32_t e = (jb * p.srcStride + i) * 16;
            const uint32_t cnt = std::min(16u, n - jb * 16);
            if (!defined && std::memchr(sc + e * 4, 0, cnt * 4))
                fail_operand(api, "src", "uninit", src.slot_, src.off_ + e * 4, cnt * 4);
            T* out = g + uint64_t(i) * p.dstStride + jb * 16;
            if (std::is_same<T, float>::value && !p.reluEn) {
                std::memcpy(out, c + e, cnt * sizeof(float));  // fp32 out without ReLU: the bits as they are
                continue;
            }
            for (uint32_t t = 0; t < cnt; ++t) {
                float v = c[e + t];
                if (p.reluEn && v < 0) v = 0;
                out[t] = T(v);
            }
        }
    for (uint32_t i = 0; i < m; ++i) gm_note_write(gm_addr(dst.GetPhyAddr(uint64_t(i) * p.dstStride)), uint64_t(n) * sizeof(T));
    core().counters.local_to_gm_bytes += uint64_t(m) * n * sizeof(T);
}

}  // namespace AscendC
