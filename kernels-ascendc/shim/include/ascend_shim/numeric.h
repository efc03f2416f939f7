// IEEE binary16 `half` and `bfloat16_t`, plus the rounding helpers Cast and Fixpipe need.
// Arithmetic on these types is done in float and rounded once, which is exact for + - * / sqrt
// because float carries more than 2 * 11 + 2 significand bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ascend_shim {

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu;
    uint32_t m = h & 0x3FFu;
    if (e == 0) {
        float v = float(m) * 5.9604644775390625e-8f;  // m * 2^-24, exact
        return bits_f32(f32_bits(v) | sign);
    }
    if (e == 31) return bits_f32(sign | 0x7F800000u | (m << 13));
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

// Hot path of every half store: round-to-nearest-even, overflow to inf (IEEE).
inline uint16_t f32_to_f16_rne(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return uint16_t(sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u));
    if (ax >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // >= 65520 rounds to inf
    if (ax < 0x38800000u) {
        // Below 2^-14: adding 0.5 puts the half subnormal quantum (2^-24) at float's ulp, so the
        // FPU's own round-to-nearest-even does the rounding.
        float t = bits_f32(ax) + 0.5f;
        return uint16_t(sign | (f32_bits(t) - 0x3F000000u));
    }
    uint32_t odd = (ax >> 13) & 1u;
    ax += 0xC8000FFFu + odd;  // rebias exponent 127 -> 15 and add the rounding increment
    return uint16_t(sign | (ax >> 13));
}

inline float bf16_to_f32(uint16_t b) { return bits_f32(uint32_t(b) << 16); }

inline uint16_t f32_to_bf16_rne(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x40u);  // keep NaN quiet
    u += 0x7FFFu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

enum class Rounding { RINT, FLOOR, CEIL, ROUND, TRUNC, ODD };

// Rounds a double (every source value of a 910B Cast is exact in double, so rounding once from
// it is correct) to a binary format with `mant` fraction bits and `expBits` exponent bits.
// Finite overflow saturates to the largest finite value when `saturate`, else follows IEEE.
inline uint32_t round_to_format(double x, int mant, int expBits, Rounding rm, bool saturate) {
    const int bias = (1 << (expBits - 1)) - 1;
    const uint32_t signBit = std::signbit(x) ? (1u << (mant + expBits)) : 0u;
    const uint32_t infBits = ((1u << expBits) - 1u) << mant;
    if (std::isnan(x)) return signBit | infBits | (1u << (mant - 1));
    if (std::isinf(x)) return signBit | infBits;
    const bool neg = signBit != 0;
    double a = std::fabs(x);
    if (a == 0.0) return signBit;
    const int emin = 1 - bias;
    const int emax = bias;
    int e;
    std::frexp(a, &e);
    e -= 1;
    int q = (e > emin ? e : emin) - mant;
    double s = std::ldexp(a, -q);
    double n = std::floor(s);
    double frac = s - n;
    bool nOdd = std::fmod(n, 2.0) == 1.0;
    switch (rm) {
        case Rounding::RINT: if (frac > 0.5 || (frac == 0.5 && nOdd)) n += 1; break;
        case Rounding::ROUND: if (frac >= 0.5) n += 1; break;
        case Rounding::TRUNC: break;
        case Rounding::FLOOR: if (neg && frac > 0) n += 1; break;
        case Rounding::CEIL: if (!neg && frac > 0) n += 1; break;
        case Rounding::ODD: if (frac > 0 && !nOdd) n += 1; break;
    }
    double v = std::ldexp(n, q);
    double maxv = std::ldexp(double((1u << (mant + 1)) - 1u), emax - mant);
    if (v > maxv) {
        bool towardZero = rm == Rounding::TRUNC || rm == Rounding::ODD ||
                          (rm == Rounding::FLOOR && !neg) || (rm == Rounding::CEIL && neg);
        return signBit | ((saturate || towardZero) ? infBits - 1u : infBits);
    }
    if (v < std::ldexp(1.0, emin)) return signBit | uint32_t(std::ldexp(v, mant - emin));
    std::frexp(v, &e);
    e -= 1;
    uint32_t frac_bits = uint32_t(std::ldexp(v, mant - e) - double(1u << mant));
    return signBit | (uint32_t(e + bias) << mant) | frac_bits;
}

inline double round_integral(double x, Rounding rm) {
    switch (rm) {
        case Rounding::RINT: return std::nearbyint(x);  // default FP environment = nearest-even
        case Rounding::FLOOR: return std::floor(x);
        case Rounding::CEIL: return std::ceil(x);
        case Rounding::ROUND: return std::round(x);
        case Rounding::TRUNC: return std::trunc(x);
        case Rounding::ODD: break;
    }
    double t = std::trunc(x);
    return (t != x && std::fmod(t, 2.0) == 0.0) ? t + (x > 0 ? 1.0 : -1.0) : t;
}

}  // namespace ascend_shim

struct half {
    uint16_t bits_;
    half() = default;
    half(float f) : bits_(ascend_shim::f32_to_f16_rne(f)) {}
    half(double d)
        : bits_(uint16_t(ascend_shim::round_to_format(d, 10, 5, ascend_shim::Rounding::RINT, false))) {}
    template <typename U, typename std::enable_if<std::is_integral<U>::value, int>::type = 0>
    half(U v) : half(double(v)) {}
    operator float() const { return ascend_shim::f16_to_f32(bits_); }
    static half from_bits(uint16_t b) { half h; h.bits_ = b; return h; }
    half& operator+=(float o) { return *this = half(float(*this) + o); }
    half& operator-=(float o) { return *this = half(float(*this) - o); }
    half& operator*=(float o) { return *this = half(float(*this) * o); }
    half& operator/=(float o) { return *this = half(float(*this) / o); }
    half operator-() const { return from_bits(uint16_t(bits_ ^ 0x8000u)); }
};

struct bfloat16_t {
    uint16_t bits_;
    bfloat16_t() = default;
    bfloat16_t(float f) : bits_(ascend_shim::f32_to_bf16_rne(f)) {}
    bfloat16_t(double d)
        : bits_(uint16_t(ascend_shim::round_to_format(d, 7, 8, ascend_shim::Rounding::RINT, false))) {}
    template <typename U, typename std::enable_if<std::is_integral<U>::value, int>::type = 0>
    bfloat16_t(U v) : bfloat16_t(double(v)) {}
    operator float() const { return ascend_shim::bf16_to_f32(bits_); }
    static bfloat16_t from_bits(uint16_t b) { bfloat16_t h; h.bits_ = b; return h; }
    bfloat16_t operator-() const { return from_bits(uint16_t(bits_ ^ 0x8000u)); }
};

static_assert(sizeof(half) == 2 && std::is_trivially_copyable<half>::value, "half layout");
static_assert(sizeof(bfloat16_t) == 2 && std::is_trivially_copyable<bfloat16_t>::value, "bf16 layout");
