// Arithmetic of the shim's Mmad: unpack the 16-bit fractals of L0A/L0B to fp32, multiply with an
// FMA micro-kernel picked at run time for the CPU it runs on, accumulate straight into the NZ
// layout of L0C. Checks stay in cube.h; this file only computes.
//
// Why FMA is exact here: every product of two fp16 or two bf16 values (11 x 11 or 8 x 8
// significand bits) is exact in fp32, so a fused multiply-add rounds exactly where a multiply
// followed by an add does. Each C element is summed over k in order, as before, so results are
// bit-identical on every ISA (tests/shim compare the paths).
//
// Why run-time dispatch: the library is built once (no -march=native) and must run on any x86-64;
// the AVX2/AVX-512 kernels are compiled with target attributes and only called when
// __builtin_cpu_supports says the CPU has them. Other architectures use the portable kernel.
//
// Unpacking costs as much as it computes unless it works a fractal at a time: at 256 x 128 x 64
// (the 1024^3 matmul's Mmad) A and B are 24K values against 2M multiply-adds, and converting them
// 16 values per call took half as long as the FMA tile itself. AVX-512 converts and transposes
// each B fractal in registers.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernel_operator.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ASCEND_SHIM_X86 1
#include <immintrin.h>
#endif

namespace ascend_shim {

namespace {

// Operands of one micro-tile: A rows (row-major, lda = k), B as 16-wide panels ([k][16] each,
// bPanel floats apart), C as 16-wide panels of L0C ([rows][16] each, cPanel floats apart).
struct Tile {
    const float* a;
    size_t lda;
    const float* b;
    size_t bPanel;
    float* c;
    size_t cPanel;
    uint32_t k;
    bool init;
};

// Portable kernel: one row, one 16-wide panel, four 4-wide vectors (SSE2 on x86-64).
void tile_generic(const Tile& t, uint32_t rows, uint32_t panels) {
    typedef float v4f __attribute__((vector_size(16)));
    auto load = [](const float* p) {
        v4f v;
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    for (uint32_t r = 0; r < rows; ++r)
        for (uint32_t p = 0; p < panels; ++p) {
            float* cp = t.c + p * t.cPanel + r * 16;
            v4f c0 = {0, 0, 0, 0}, c1 = c0, c2 = c0, c3 = c0;
            if (!t.init) c0 = load(cp), c1 = load(cp + 4), c2 = load(cp + 8), c3 = load(cp + 12);
            const float* bp = t.b + p * t.bPanel;
            const float* ar = t.a + r * t.lda;
            for (uint32_t kk = 0; kk < t.k; ++kk, bp += 16) {
                const v4f av = {ar[kk], ar[kk], ar[kk], ar[kk]};
                c0 += av * load(bp);
                c1 += av * load(bp + 4);
                c2 += av * load(bp + 8);
                c3 += av * load(bp + 12);
            }
            std::memcpy(cp, &c0, sizeof c0);
            std::memcpy(cp + 4, &c1, sizeof c1);
            std::memcpy(cp + 8, &c2, sizeof c2);
            std::memcpy(cp + 12, &c3, sizeof c3);
        }
}

#ifdef ASCEND_SHIM_X86
// AVX-512: R rows x P panels of 16 floats = R * P zmm accumulators (8 x 2 = 16 of 32 registers).
template <int R, int P>
__attribute__((target("avx512f"))) void tile512(const Tile& t) {
    __m512 acc[R][P];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int p = 0; p < P; ++p)
            acc[r][p] = t.init ? _mm512_setzero_ps() : _mm512_loadu_ps(t.c + p * t.cPanel + r * 16);
    const float* b = t.b;
    for (uint32_t kk = 0; kk < t.k; ++kk, b += 16) {
        __m512 bv[P];
#pragma GCC unroll 2
        for (int p = 0; p < P; ++p) bv[p] = _mm512_loadu_ps(b + p * t.bPanel);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m512 av = _mm512_set1_ps(t.a[r * t.lda + kk]);
#pragma GCC unroll 2
            for (int p = 0; p < P; ++p) acc[r][p] = _mm512_fmadd_ps(av, bv[p], acc[r][p]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int p = 0; p < P; ++p) _mm512_storeu_ps(t.c + p * t.cPanel + r * 16, acc[r][p]);
}

// AVX2 + FMA: R rows x one panel (two ymm per row), 6 x 2 = 12 of 16 registers.
template <int R>
__attribute__((target("avx2,fma"))) void tile256(const Tile& t) {
    __m256 lo[R], hi[R];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        lo[r] = t.init ? _mm256_setzero_ps() : _mm256_loadu_ps(t.c + r * 16);
        hi[r] = t.init ? _mm256_setzero_ps() : _mm256_loadu_ps(t.c + r * 16 + 8);
    }
    const float* b = t.b;
    for (uint32_t kk = 0; kk < t.k; ++kk, b += 16) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            const __m256 av = _mm256_set1_ps(t.a[r * t.lda + kk]);
            lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
            hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(t.c + r * 16, lo[r]);
        _mm256_storeu_ps(t.c + r * 16 + 8, hi[r]);
    }
}

template <int P>
void rows512(const Tile& t, uint32_t rows) {
    switch (rows) {
        case 1: return tile512<1, P>(t);
        case 2: return tile512<2, P>(t);
        case 3: return tile512<3, P>(t);
        case 4: return tile512<4, P>(t);
        case 5: return tile512<5, P>(t);
        case 6: return tile512<6, P>(t);
        case 7: return tile512<7, P>(t);
        default: return tile512<8, P>(t);
    }
}

void tile_avx512(const Tile& t, uint32_t rows, uint32_t panels) {
    for (uint32_t r0 = 0; r0 < rows; r0 += 8) {
        Tile u = t;
        u.a = t.a + r0 * t.lda;
        u.c = t.c + r0 * 16;
        const uint32_t rs = std::min(8u, rows - r0);
        uint32_t p = 0;
        for (; p + 2 <= panels; p += 2) {
            Tile v = u;
            v.b = u.b + p * t.bPanel;
            v.c = u.c + p * t.cPanel;
            rows512<2>(v, rs);
        }
        if (p < panels) {
            Tile v = u;
            v.b = u.b + p * t.bPanel;
            v.c = u.c + p * t.cPanel;
            rows512<1>(v, rs);
        }
    }
}

void tile_avx2(const Tile& t, uint32_t rows, uint32_t panels) {
    for (uint32_t p = 0; p < panels; ++p)
        for (uint32_t r0 = 0; r0 < rows; r0 += 6) {
            Tile v = t;
            v.a = t.a + r0 * t.lda;
            v.b = t.b + p * t.bPanel;
            v.c = t.c + p * t.cPanel + r0 * 16;
            switch (std::min(6u, rows - r0)) {
                case 1: tile256<1>(v); break;
                case 2: tile256<2>(v); break;
                case 3: tile256<3>(v); break;
                case 4: tile256<4>(v); break;
                case 5: tile256<5>(v); break;
                default: tile256<6>(v); break;
            }
        }
}

__attribute__((target("f16c,avx"))) void half_to_float_f16c(const uint8_t* s, float* d, uint32_t n) {
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i * 2))));
    for (; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, s + i * 2, 2);
        d[i] = f16_to_f32(h);
    }
}

// 16 rows of one fractal (16 values each, half or bf16 bits) as 16 zmm of fp32; AVX-512F has the
// half -> float conversion, and bf16 -> float is a shift into the high half.
__attribute__((target("avx512f"))) inline __m512 row512(const uint8_t* s, bool bf16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}

// A fractal's rows < `rows`, values < `cnt` of each, to dst + r * pitch.
__attribute__((target("avx512f"))) void fractal_rows_avx512(const uint8_t* s, bool bf16, bool, float* dst,
                                                            size_t pitch, uint32_t rows, uint32_t cnt) {
    const __mmask16 keep = __mmask16((1u << cnt) - 1u);
    for (uint32_t r = 0; r < rows; ++r) _mm512_mask_storeu_ps(dst + r * pitch, keep, row512(s + r * 32, bf16));
}

// A fractal transposed: dst[kk * 16 + jj] = fractal[jj][kk] for kk < cnt, zero for jj >= cols.
// The loops are unrolled so the 32 vectors stay in registers (-O2 keeps them on the stack).
__attribute__((target("avx512f"))) void fractal_cols_avx512(const uint8_t* s, bool bf16, bool, float* dst,
                                                            uint32_t cols, uint32_t cnt) {
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (uint32_t i = 0; i < 16; ++i) r[i] = i < cols ? row512(s + i * 32, bf16) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (uint32_t i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (uint32_t i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    // Each 128-bit lane L of r[4q + c] now holds column 4L + c of rows 4q..4q+3.
#pragma GCC unroll 16
    for (uint32_t h = 0; h < 16; h += 8)
#pragma GCC unroll 16
        for (uint32_t c = 0; c < 4; ++c) {
            t[h + c] = _mm512_shuffle_f32x4(r[h + c], r[h + 4 + c], 0x88);
            t[h + 4 + c] = _mm512_shuffle_f32x4(r[h + c], r[h + 4 + c], 0xDD);
        }
#pragma GCC unroll 16
    for (uint32_t c = 0; c < 8; ++c) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
    }
#pragma GCC unroll 16
    for (uint32_t kk = 0; kk < cnt; ++kk) _mm512_storeu_ps(dst + kk * 16, r[kk]);
}

// AVX2 + F16C: the same transpose as four 8 x 8 blocks of ymm.
__attribute__((target("avx2,f16c"))) inline __m256 row256(const uint8_t* s, bool bf16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
}

__attribute__((target("avx2,f16c"))) void fractal_cols_avx2(const uint8_t* s, bool bf16, bool, float* dst,
                                                            uint32_t cols, uint32_t cnt) {
#pragma GCC unroll 16
    for (uint32_t jh = 0; jh < 16; jh += 8)
        for (uint32_t kh = 0; kh < cnt; kh += 8) {
            __m256 r[8], t[8];
#pragma GCC unroll 16
            for (uint32_t i = 0; i < 8; ++i)
                r[i] = jh + i < cols ? row256(s + (jh + i) * 32 + kh * 2, bf16) : _mm256_setzero_ps();
#pragma GCC unroll 16
            for (uint32_t i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
#pragma GCC unroll 16
            for (uint32_t i = 0; i < 8; i += 4) {
                r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
                r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            // Each 128-bit half h of r[4q + c] holds column 4h + c of rows 4q..4q+3.
#pragma GCC unroll 16
            for (uint32_t c = 0; c < 4; ++c) {
                t[c] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x20);
                t[4 + c] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x31);
            }
#pragma GCC unroll 16
            for (uint32_t c = 0; c < 8; ++c)
                if (kh + c < cnt) _mm256_storeu_ps(dst + (kh + c) * 16 + jh, t[c]);
        }
}
#endif

using TileFn = void (*)(const Tile&, uint32_t, uint32_t);
using RowsFn = void (*)(const uint8_t*, bool bf16, bool f16c, float*, size_t pitch, uint32_t rows, uint32_t cnt);
using ColsFn = void (*)(const uint8_t*, bool bf16, bool f16c, float*, uint32_t cols, uint32_t cnt);
void fractal_rows(const uint8_t* s, bool bf16, bool f16c, float* dst, size_t pitch, uint32_t rows, uint32_t cnt);
void fractal_cols(const uint8_t* s, bool bf16, bool f16c, float* dst, uint32_t cols, uint32_t cnt);

// The micro-kernel and the fractal unpackers of A (rows) and B (transposed) for one ISA.
struct Isa {
    TileFn tile;
    bool f16c;
    const char* name;
    RowsFn rows = fractal_rows;
    ColsFn cols = fractal_cols;
};

// ASCEND_SHIM_MMAD=generic|avx2|avx512 caps the choice (for comparing the paths); the CPU's
// features always bound it.
Isa pick_isa() {
    Isa isa{tile_generic, false, "generic"};
#ifdef ASCEND_SHIM_X86
    __builtin_cpu_init();
    const char* cap = std::getenv("ASCEND_SHIM_MMAD");
    const bool allow512 = cap == nullptr || std::strcmp(cap, "avx512") == 0;
    const bool allow2 = allow512 || std::strcmp(cap, "avx2") == 0;
    if (__builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c")) isa.f16c = allow2;
    if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isa = {tile_avx2, isa.f16c, "avx2", fractal_rows, isa.f16c ? fractal_cols_avx2 : fractal_cols};
    if (allow512 && __builtin_cpu_supports("avx512f"))
        isa = {tile_avx512, isa.f16c, "avx512", fractal_rows_avx512, fractal_cols_avx512};
#endif
    return isa;
}

const Isa& isa() {
    static const Isa chosen = pick_isa();
    return chosen;
}

// n contiguous 16-bit values to fp32 (half or bf16 bits). Callers pass whole fractals (256
// values), so the per-call cost is paid once per 512 bytes rather than once per 16 values.
void widen(const uint8_t* src, bool bf16, bool f16c, float* dst, uint32_t n) {
#ifdef ASCEND_SHIM_X86
    if (!bf16 && f16c) return half_to_float_f16c(src, dst, n);
#else
    (void)f16c;
#endif
    for (uint32_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + size_t(i) * 2, 2);
        dst[i] = bf16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
}

// The portable unpackers: the fractal widened whole (padding included: converting undefined
// bytes is harmless, they are never copied out), then placed.
void fractal_rows(const uint8_t* s, bool bf16, bool f16c, float* dst, size_t pitch, uint32_t rows, uint32_t cnt) {
    float f[256];
    widen(s, bf16, f16c, f, 256);
    for (uint32_t r = 0; r < rows; ++r) {
        if (cnt == 16)
            std::memcpy(dst + r * pitch, f + r * 16, 16 * sizeof(float));  // fixed size: inlined
        else
            std::memcpy(dst + r * pitch, f + r * 16, cnt * sizeof(float));
    }
}

void fractal_cols(const uint8_t* s, bool bf16, bool f16c, float* dst, uint32_t cols, uint32_t cnt) {
    float f[256];
    widen(s, bf16, f16c, f, 256);
    std::fill(f + cols * 16, f + 256, 0.0f);
    for (uint32_t kk = 0; kk < cnt; ++kk)
        for (uint32_t jj = 0; jj < 16; ++jj) dst[kk * 16 + jj] = f[jj * 16 + kk];
}

struct Scratch {
    std::vector<float> a, b, c;
};

}  // namespace

const char* mmad_isa_name() { return isa().name; }

namespace {
void compute(const MmadJob& j, const Isa& isa);
}

void mmad_compute(const MmadJob& j) { compute(j, isa()); }

bool mmad_compute_with(const MmadJob& j, const char* name) {
    Isa chosen{tile_generic, false, "generic"};
#ifdef ASCEND_SHIM_X86
    __builtin_cpu_init();
    if (std::strcmp(name, "avx2") == 0) {
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c"))
            return false;
        chosen = {tile_avx2, true, "avx2", fractal_rows, fractal_cols_avx2};
    } else if (std::strcmp(name, "avx512") == 0) {
        if (!__builtin_cpu_supports("avx512f")) return false;
        chosen = {tile_avx512, true, "avx512", fractal_rows_avx512, fractal_cols_avx512};
    }
#endif
    if (std::strcmp(chosen.name, name) != 0) return false;
    compute(j, chosen);
    return true;
}

namespace {
void compute(const MmadJob& j, const Isa& isa) {
    thread_local Scratch w;
    const uint32_t m = j.m, n = j.n, k = j.k;
    const uint32_t mp = (m + 15) / 16 * 16, np = (n + 15) / 16 * 16, kp = (k + 15) / 16 * 16;
    const uint32_t panels = np / 16;
    w.a.resize(size_t(m) * k);
    w.b.resize(size_t(panels) * k * 16);
    float* wa = w.a.data();
    float* wb = w.b.data();
    // A: row-major m x k (GEMV mode: the plain row; else zZ fractals, 16 k values contiguous),
    // placed fractal by fractal: rows < m, columns < k.
    if (j.gemv) {
        widen(j.a, j.bf16, isa.f16c, wa, k);
    } else {
        for (uint32_t ib = 0; ib < mp / 16; ++ib)
            for (uint32_t kb = 0; kb < kp / 16; ++kb)
                isa.rows(j.a + size_t((ib * (kp / 16) + kb) * 256) * 2, j.bf16, isa.f16c, &wa[size_t(ib * 16) * k + kb * 16],
                         k, std::min(16u, m - ib * 16), std::min(16u, k - kb * 16));
    }
    // B: zN fractal (k, j) at (kb * np/16 + jb) * 256 + (j % 16) * 16 + k % 16, transposed into
    // panels [jb][k][16]; columns at or beyond n are zero (their results are never stored).
    for (uint32_t jb = 0; jb < panels; ++jb)
        for (uint32_t kb = 0; kb < kp / 16; ++kb)
            isa.cols(j.b + size_t((kb * panels + jb) * 256) * 2, j.bf16, isa.f16c, &wb[(size_t(jb) * k + kb * 16) * 16],
                     std::min(16u, n - jb * 16), std::min(16u, k - kb * 16));
    Tile t{wa, k, wb, size_t(k) * 16, j.c, size_t(mp) * 16, k, j.init};
    const uint32_t full = n / 16;  // panels whose 16 columns are all stored
    if (full > 0) isa.tile(t, m, full);
    if (full < panels) {
        // The last, partial panel goes through a scratch so columns >= n of L0C keep their bytes.
        w.c.resize(size_t(m) * 16);
        float* cp = j.c + size_t(full) * mp * 16;
        if (!j.init) std::memcpy(w.c.data(), cp, size_t(m) * 16 * sizeof(float));
        Tile u = t;
        u.b = t.b + size_t(full) * t.bPanel;
        u.c = w.c.data();
        isa.tile(u, m, 1);
        const uint32_t cols = n - full * 16;
        for (uint32_t i = 0; i < m; ++i) std::memcpy(cp + i * 16, &w.c[size_t(i) * 16], cols * sizeof(float));
    }
}
}  // namespace

}  // namespace ascend_shim
