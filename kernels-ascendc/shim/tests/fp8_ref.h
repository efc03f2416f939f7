// Plain references for the FP8 (E4M3FN) tests, written from the format definition (never through
// kernel code): decode from the bit fields, exact round-to-nearest-even encode, the scale rule of
// src/fp8/quantize.rs, and f32 -> bf16 rounding.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace fp8ref {

// E4M3FN from its fields: S.EEEE.MMM, bias 7, no Inf, NaN = S.1111.111, subnormals m * 2^-9.
inline double e4m3_value(uint8_t c) {
    const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) return std::nan("");
    const double v = e == 0 ? std::ldexp(double(m), -9) : std::ldexp(double(8 + m), e - 10);
    return s ? -v : v;
}

// Round to the nearest E4M3FN code, ties to the even code, saturating to 448; NaN keeps its sign.
// The 127 non-negative finite codes are increasing in value, so a binary search finds the two
// neighbours of |q| (exact: q is a float, compared in double).
inline uint8_t e4m3_encode(float q) {
    static const std::array<double, 127> v = [] {
        std::array<double, 127> t{};
        for (int c = 0; c < 127; ++c) t[c] = e4m3_value(uint8_t(c));
        return t;
    }();
    const uint8_t sign = std::signbit(q) ? 0x80 : 0;
    if (std::isnan(q)) return sign | 0x7F;
    const double a = std::fabs(double(q));
    if (a >= 448.0) return sign | 0x7E;
    const int lo = int(std::upper_bound(v.begin(), v.end(), a) - v.begin()) - 1;  // v[lo] <= a < v[lo + 1]
    if (v[lo] == a) return uint8_t(sign | lo);
    const double dl = a - v[lo], dh = v[lo + 1] - a;
    const int c = dl < dh ? lo : dh < dl ? lo + 1 : ((lo & 1) == 0 ? lo : lo + 1);
    return uint8_t(sign | c);
}

// The same by exhaustive search (slow), to check the fast one.
inline uint8_t e4m3_encode_slow(float q) {
    const uint8_t sign = std::signbit(q) ? 0x80 : 0;
    if (std::isnan(q)) return sign | 0x7F;
    const double a = std::fabs(double(q));
    if (a >= 448.0) return sign | 0x7E;
    int best = 0;
    double bestD = 1e300;
    for (int c = 0; c <= 0x7E; ++c) {
        const double d = std::fabs(e4m3_value(uint8_t(c)) - a);
        if (d < bestD || (d == bestD && (c & 1) == 0)) {
            best = c;
            bestD = d;
        }
    }
    return uint8_t(sign | best);
}

inline uint32_t f32_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}
inline float bits_f32(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

// DeepGEMM's ceil_to_ue8m0 (src/fp8/quantize.rs).
inline float ceil_to_ue8m0(float s) {
    const uint32_t bits = f32_bits(s);
    uint32_t e = ((bits >> 23) & 0xFF) + ((bits & 0x7FFFFF) != 0);
    e = std::clamp<uint32_t>(e, 1, 254);
    return bits_f32(e << 23);
}

// tile_scale (src/fp8/quantize.rs): floor 1e-4, / 448 in f32, optional UE8M0 rounding up.
inline float quant_scale(float amax, bool ue8m0) {
    const float s = std::max(amax, 1e-4f) / 448.0f;
    return ue8m0 ? ceil_to_ue8m0(s) : s;
}

// f32 -> bf16 bits, round to nearest even, overflow to Inf, NaN stays NaN.
inline uint16_t bf16_rne(float f) {
    const uint32_t b = f32_bits(f);
    if (std::isnan(f)) return uint16_t((b >> 16) | 0x40);
    return uint16_t((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}
inline float bf16_value(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

// Half the spacing of E4M3 values in the binade of a (>= 0, <= 448): the largest error of a
// round-to-nearest encode of a.
inline double e4m3_half_ulp(double a) {
    if (a < std::ldexp(1.0, -6)) return std::ldexp(1.0, -10);
    return std::ldexp(1.0, int(std::floor(std::log2(a))) - 4);
}

}  // namespace fp8ref
