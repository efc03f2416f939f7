// Level-2 ("count" form) vector APIs on UB tensors, with the 910B type lists enforced at compile
// time and the round modes of Cast enforced at run time.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "tensor.h"

namespace AscendC {

enum class RoundMode : uint8_t { CAST_NONE = 0, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC, CAST_ODD, CAST_HYBRID };
enum class CMPMODE : uint8_t { LT = 0, GT, EQ, LE, GE, NE };
enum class SELMODE : uint8_t { VSEL_CMPMASK_SPR = 0, VSEL_TENSOR_SCALAR_MODE, VSEL_TENSOR_TENSOR_MODE };

}  // namespace AscendC

namespace ascend_shim {

template <typename T, typename... Ts>
constexpr bool one_of = (std::is_same<T, Ts>::value || ...);

// half computes in float and rounds once per result.
template <typename T> struct Calc { using type = T; };
template <> struct Calc<half> { using type = float; };
template <> struct Calc<bfloat16_t> { using type = float; };
template <> struct Calc<int16_t> { using type = int32_t; };

void check_overlap(const char* api, uint8_t memA, uint32_t offA, uint32_t lenA, uint8_t memB, uint32_t offB,
                   uint32_t lenB);
void check_count(const char* api, int64_t count);

// Counts one vector call: its elements, and its repeats of ASCEND_SHIM_VECTOR_REPEAT_BYTES by its
// widest operand element (`width` bytes), rounded up as the hardware issues whole repeats for the
// count form (ascendc-facts.md §3.5: 128 halfs or 64 floats per repeat).
inline void count_vector(uint64_t count, uint64_t width) {
    AscendShimCounters& c = core().counters;
    c.vector_elem_ops += count;
    c.vector_repeats += (count * width + ASCEND_SHIM_VECTOR_REPEAT_BYTES - 1) / ASCEND_SHIM_VECTOR_REPEAT_BYTES;
}

template <typename D, typename S>
void no_partial_overlap(const char* api, const AscendC::LocalTensor<D>& d, const AscendC::LocalTensor<S>& s,
                        uint64_t count) {
    check_overlap(api, d.mem_, d.off_, uint32_t(count * sizeof(D)), s.mem_, s.off_, uint32_t(count * sizeof(S)));
}

template <typename T, typename F>
void vec_binary(const AscendC::LocalTensor<T>& dst, const AscendC::LocalTensor<T>& a,
                const AscendC::LocalTensor<T>& b, int32_t count, const char* api, F f) {
    using C = typename Calc<T>::type;
    check_count(api, count);
    const T* pa = operand(a, count, true, api, "src0", mem_bit(MEM_UB));
    const T* pb = operand(b, count, true, api, "src1", mem_bit(MEM_UB));
    T* pd = operand(dst, count, false, api, "dst", mem_bit(MEM_UB));
    no_partial_overlap(api, dst, a, count);
    no_partial_overlap(api, dst, b, count);
    for (int32_t i = 0; i < count; ++i) pd[i] = T(f(C(pa[i]), C(pb[i])));
    define(dst, count);
    count_vector(uint64_t(count), sizeof(T));
}

template <typename T, typename F>
void vec_unary(const AscendC::LocalTensor<T>& dst, const AscendC::LocalTensor<T>& a, int32_t count,
               const char* api, F f) {
    using C = typename Calc<T>::type;
    check_count(api, count);
    const T* pa = operand(a, count, true, api, "src", mem_bit(MEM_UB));
    T* pd = operand(dst, count, false, api, "dst", mem_bit(MEM_UB));
    no_partial_overlap(api, dst, a, count);
    for (int32_t i = 0; i < count; ++i) pd[i] = T(f(C(pa[i])));
    define(dst, count);
    count_vector(uint64_t(count), sizeof(T));
}

}  // namespace ascend_shim

namespace AscendC {

#define ASCEND_SHIM_ARITH_TYPES(T) ascend_shim::one_of<T, half, int16_t, int32_t, float>
#define ASCEND_SHIM_FLOAT_TYPES(T) ascend_shim::one_of<T, half, float>

template <typename T>
void Add(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ASCEND_SHIM_ARITH_TYPES(T), "Add on 910B: half/int16/int32/float only (no bf16/int8 vector math)");
    ascend_shim::vec_binary(dst, a, b, count, "Add", [](auto x, auto y) { return x + y; });
}
template <typename T>
void Sub(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ASCEND_SHIM_ARITH_TYPES(T), "Sub on 910B: half/int16/int32/float only");
    ascend_shim::vec_binary(dst, a, b, count, "Sub", [](auto x, auto y) { return x - y; });
}
template <typename T>
void Mul(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ASCEND_SHIM_ARITH_TYPES(T), "Mul on 910B: half/int16/int32/float only");
    ascend_shim::vec_binary(dst, a, b, count, "Mul", [](auto x, auto y) { return x * y; });
}
template <typename T>
void Div(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ASCEND_SHIM_FLOAT_TYPES(T), "Div on 910B: half/float only");
    ascend_shim::vec_binary(dst, a, b, count, "Div", [](auto x, auto y) { return x / y; });
}
template <typename T>
void Max(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ASCEND_SHIM_ARITH_TYPES(T), "Max on 910B: half/int16/int32/float only");
    ascend_shim::vec_binary(dst, a, b, count, "Max", [](auto x, auto y) { return x > y ? x : y; });
}
template <typename T>
void Min(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ASCEND_SHIM_ARITH_TYPES(T), "Min on 910B: half/int16/int32/float only");
    ascend_shim::vec_binary(dst, a, b, count, "Min", [](auto x, auto y) { return x < y ? x : y; });
}

// The scalar is converted to T first (as the NPU receives it as a T), then computed with.
#define ASCEND_SHIM_SCALAR_OP(NAME, EXPR)                                                                  \
    template <typename T, typename U>                                                                      \
    void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& src, const U& scalar, const int32_t& count) { \
        static_assert(ASCEND_SHIM_ARITH_TYPES(T), #NAME " on 910B: half/int16/int32/float only");          \
        using C = typename ascend_shim::Calc<T>::type;                                                     \
        const C s = C(T(scalar));                                                                          \
        ascend_shim::vec_unary(dst, src, count, #NAME, [s](C x) { return EXPR; });                         \
    }
ASCEND_SHIM_SCALAR_OP(Adds, x + s)
ASCEND_SHIM_SCALAR_OP(Muls, x * s)
ASCEND_SHIM_SCALAR_OP(Maxs, x > s ? x : s)
ASCEND_SHIM_SCALAR_OP(Mins, x < s ? x : s)
#undef ASCEND_SHIM_SCALAR_OP

template <typename T>
void Exp(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {
    static_assert(ASCEND_SHIM_FLOAT_TYPES(T), "Exp on 910B: half/float only");
    ascend_shim::vec_unary(dst, src, count, "Exp", [](float x) { return std::exp(x); });
}
template <typename T>
void Ln(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {
    static_assert(ASCEND_SHIM_FLOAT_TYPES(T), "Ln on 910B: half/float only");
    ascend_shim::vec_unary(dst, src, count, "Ln", [](float x) { return std::log(x); });
}
template <typename T>
void Abs(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {
    static_assert(ASCEND_SHIM_FLOAT_TYPES(T), "Abs on 910B: half/float only");
    ascend_shim::vec_unary(dst, src, count, "Abs", [](float x) { return std::fabs(x); });
}
template <typename T>
void Sqrt(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {
    static_assert(ASCEND_SHIM_FLOAT_TYPES(T), "Sqrt on 910B: half/float only");
    ascend_shim::vec_unary(dst, src, count, "Sqrt", [](float x) { return std::sqrt(x); });
}
template <typename T>
void Rsqrt(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {
    static_assert(ASCEND_SHIM_FLOAT_TYPES(T), "Rsqrt on 910B: half/float only");
    ascend_shim::vec_unary(dst, src, count, "Rsqrt", [](float x) { return float(1.0 / std::sqrt(double(x))); });
}
template <typename T>
void Reciprocal(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {
    static_assert(ASCEND_SHIM_FLOAT_TYPES(T), "Reciprocal on 910B: half/float only");
    ascend_shim::vec_unary(dst, src, count, "Reciprocal", [](float x) { return 1.0f / x; });
}
template <typename T>
void Relu(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {
    static_assert(ascend_shim::one_of<T, half, int32_t, float>, "Relu on 910B: half/int32/float only");
    using C = typename ascend_shim::Calc<T>::type;
    ascend_shim::vec_unary(dst, src, count, "Relu", [](C x) { return x > C(0) ? x : C(0); });
}

// Bitwise ops: 16-bit integer types only on 910B (wider data is processed as pairs of uint16 via
// ReinterpretCast, which is what an elementwise bit op is anyway).
template <typename T>
void And(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ascend_shim::one_of<T, int16_t, uint16_t>, "And on 910B: int16/uint16 only");
    ascend_shim::vec_binary(dst, a, b, count, "And", [](auto x, auto y) { return x & y; });
}
template <typename T>
void Or(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b, const int32_t& count) {
    static_assert(ascend_shim::one_of<T, int16_t, uint16_t>, "Or on 910B: int16/uint16 only");
    ascend_shim::vec_binary(dst, a, b, count, "Or", [](auto x, auto y) { return x | y; });
}

// Shifts by a scalar bit count (0 .. bits-1). ShiftLeft drops the bits shifted out; ShiftRight is
// logical for unsigned and arithmetic for signed types (our kernels only shift non-negative signed
// values right, where the two agree).
template <typename T>
void ShiftLeft(const LocalTensor<T>& dst, const LocalTensor<T>& src, const T& bits, const int32_t& count) {
    static_assert(ascend_shim::one_of<T, int16_t, uint16_t, int32_t, uint32_t>,
                  "ShiftLeft on 910B: int16/uint16/int32/uint32 only");
    using U = typename std::make_unsigned<T>::type;
    const uint32_t n = uint32_t(bits);
    if (n >= sizeof(T) * 8) ascend_shim::fail("vector-params", "ShiftLeft by %u bits on a %zu-bit type", n, sizeof(T) * 8);
    ascend_shim::vec_unary(dst, src, count, "ShiftLeft", [n](auto x) { return T(U(U(T(x)) << n)); });
}
template <typename T>
void ShiftRight(const LocalTensor<T>& dst, const LocalTensor<T>& src, const T& bits, const int32_t& count,
                bool roundEn = false) {
    static_assert(ascend_shim::one_of<T, int16_t, uint16_t, int32_t, uint32_t>,
                  "ShiftRight on 910B: int16/uint16/int32/uint32 only");
    const uint32_t n = uint32_t(bits);
    if (n >= sizeof(T) * 8) ascend_shim::fail("vector-params", "ShiftRight by %u bits on a %zu-bit type", n, sizeof(T) * 8);
    if (roundEn) ascend_shim::fail("vector-params", "ShiftRight with roundEn is not modelled by the shim");
    ascend_shim::vec_unary(dst, src, count, "ShiftRight", [n](auto x) { return T(T(x) >> n); });
}

// Table lookup: dst[i] = the T at byte (srcBaseAddr + srcOffset[i]) from the start of src. Every
// offset must be T-aligned and inside src; the element read must have been written.
template <typename T>
void Gather(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<uint32_t>& srcOffset,
            const uint32_t srcBaseAddr, const uint32_t count) {
    static_assert(ascend_shim::one_of<T, int16_t, uint16_t, int32_t, uint32_t, float, half, bfloat16_t>,
                  "Gather on 910B: int16/uint16/int32/uint32/float/half/bfloat16 only");
    using namespace ascend_shim;
    const char* api = "Gather";
    const uint32_t* off = operand(srcOffset, count, true, api, "srcOffset", mem_bit(MEM_UB));
    const uint8_t* s = reinterpret_cast<const uint8_t*>(operand(src, 0, false, api, "src", mem_bit(MEM_UB)));
    T* d = operand(dst, count, false, api, "dst", mem_bit(MEM_UB));
    no_partial_overlap(api, dst, src, count);
    const uint64_t srcBytes = uint64_t(src.count_) * sizeof(T);
    const uint8_t* sd = core().arenas[src.mem_].defined.data() + src.off_;
    const bool allDefined = is_defined(Mem(src.mem_), src.off_, uint32_t(srcBytes));  // the usual table case
    for (uint32_t i = 0; i < count; ++i) {
        const uint64_t b = uint64_t(srcBaseAddr) + off[i];
        if (b % sizeof(T) != 0 || b + sizeof(T) > srcBytes)
            fail("tensor-extent", "%s: element %u reads byte offset %llu of a %llu-byte src (must be %zu-aligned and inside)",
                 api, i, (unsigned long long)b, (unsigned long long)srcBytes, sizeof(T));
        if (!allDefined && std::memchr(sd + b, 0, sizeof(T)))
            fail_operand(api, "src", "uninit", src.slot_, uint32_t(src.off_ + b), uint32_t(sizeof(T)));
        std::memcpy(&d[i], s + b, sizeof(T));
    }
    define(dst, count);
    count_vector(count, sizeof(uint32_t) > sizeof(T) ? sizeof(uint32_t) : sizeof(T));  // u32 offsets (UNVERIFIED: how Gather splits offsets and data into repeats)
}

template <typename T, typename U>
void Duplicate(const LocalTensor<T>& dst, const U& scalar, const int32_t& count) {
    static_assert(ascend_shim::one_of<T, int16_t, uint16_t, half, bfloat16_t, int32_t, uint32_t, float>,
                  "Duplicate on 910B: int16/uint16/half/bfloat16/int32/uint32/float only");
    const char* api = "Duplicate";
    ascend_shim::check_count(api, count);
    T* d = ascend_shim::operand(dst, count, false, api, "dst", ascend_shim::mem_bit(ascend_shim::MEM_UB));
    const T v = T(scalar);
    for (int32_t i = 0; i < count; ++i) d[i] = v;
    ascend_shim::define(dst, count);
    ascend_shim::count_vector(uint64_t(count), sizeof(T));
}

}  // namespace AscendC

namespace ascend_shim {

enum : uint32_t { RM_NONE = 1u << 0, RM_RINT = 1u << 1, RM_FLOOR = 1u << 2, RM_CEIL = 1u << 3,
                  RM_ROUND = 1u << 4, RM_TRUNC = 1u << 5, RM_ODD = 1u << 6 };
constexpr uint32_t RM_DIRECTED = RM_RINT | RM_FLOOR | RM_CEIL | RM_ROUND | RM_TRUNC;

// Allowed round modes per (src, dst) pair on dav-2201; 0 = pair not supported.
template <typename D, typename S>
constexpr uint32_t cast_modes() {
    if (std::is_same<S, half>::value) {
        if (std::is_same<D, float>::value) return RM_NONE;
        if (one_of<D, int32_t, int16_t>) return RM_DIRECTED;
        if (one_of<D, int8_t, uint8_t>) return RM_DIRECTED | RM_NONE;
    }
    if (std::is_same<S, float>::value) {
        if (std::is_same<D, float>::value) return RM_DIRECTED;
        if (std::is_same<D, half>::value) return RM_DIRECTED | RM_ODD | RM_NONE;
        if (std::is_same<D, bfloat16_t>::value) return RM_DIRECTED;
        if (one_of<D, int32_t, int64_t, int16_t>) return RM_DIRECTED;
    }
    if (std::is_same<S, bfloat16_t>::value) {
        if (std::is_same<D, float>::value) return RM_NONE;
        if (std::is_same<D, int32_t>::value) return RM_DIRECTED;
    }
    if (one_of<S, int8_t, uint8_t> && std::is_same<D, half>::value) return RM_NONE;
    if (std::is_same<S, int16_t>::value) {
        if (std::is_same<D, half>::value) return RM_DIRECTED | RM_NONE;
        if (std::is_same<D, float>::value) return RM_NONE;
    }
    if (std::is_same<S, int32_t>::value) {
        if (std::is_same<D, float>::value) return RM_DIRECTED | RM_NONE;
        if (one_of<D, int16_t, int64_t>) return RM_NONE;
    }
    if (std::is_same<S, int64_t>::value) {
        if (std::is_same<D, int32_t>::value) return RM_NONE;
        if (std::is_same<D, float>::value) return RM_DIRECTED;
    }
    return 0;
}

inline Rounding to_rounding(AscendC::RoundMode m) {
    switch (m) {
        case AscendC::RoundMode::CAST_FLOOR: return Rounding::FLOOR;
        case AscendC::RoundMode::CAST_CEIL: return Rounding::CEIL;
        case AscendC::RoundMode::CAST_ROUND: return Rounding::ROUND;
        case AscendC::RoundMode::CAST_TRUNC: return Rounding::TRUNC;
        case AscendC::RoundMode::CAST_ODD: return Rounding::ODD;
        default: return Rounding::RINT;  // CAST_NONE on a lossy pair means RINT
    }
}

template <typename T> inline double to_double(T v) { return double(v); }
inline double to_double(half v) { return double(float(v)); }
inline double to_double(bfloat16_t v) { return double(float(v)); }

// One element of a Cast: float targets round from the exact double value, integer targets
// saturate (NaN -> 0), as the 910B conversions do by default.
template <typename D, typename S>
inline D cast_one(S v, Rounding rm) {
    if constexpr (std::is_same<D, float>::value && std::is_same<S, float>::value) {
        return float(round_integral(double(v), rm));
    } else if constexpr (std::is_same<D, float>::value && one_of<S, half, bfloat16_t>) {
        return float(v);
    } else if constexpr (std::is_same<D, half>::value) {
        if constexpr (std::is_same<S, float>::value) {
            if (rm == Rounding::RINT) {
                uint16_t b = f32_to_f16_rne(v);
                if ((b & 0x7FFFu) == 0x7C00u && !std::isinf(v)) b = uint16_t((b & 0x8000u) | 0x7BFFu);
                return half::from_bits(b);
            }
        }
        if constexpr (one_of<S, int8_t, uint8_t>) {
            return half(float(v));  // exact: every 8-bit integer is a half
        }
        return half::from_bits(uint16_t(round_to_format(to_double(v), 10, 5, rm, true)));
    } else if constexpr (std::is_same<D, bfloat16_t>::value) {
        if (rm == Rounding::RINT) return bfloat16_t(float(v));
        return bfloat16_t::from_bits(uint16_t(round_to_format(to_double(v), 7, 8, rm, false)));
    } else if constexpr (std::is_same<D, float>::value) {
        // int32/int64/int16 -> float: exact in double, round once to float's 23 fraction bits.
        return bits_f32(round_to_format(to_double(v), 23, 8, rm, false));
    } else {
        double x = to_double(v);
        if (std::isnan(x)) return D(0);
        double r = std::is_floating_point<S>::value || one_of<S, half, bfloat16_t> ? round_integral(x, rm) : x;
        if (r <= double(std::numeric_limits<D>::min())) return std::numeric_limits<D>::min();
        if (r >= double(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
        return D(r);
    }
}

const char* round_mode_name(AscendC::RoundMode m);

// Fast paths of Cast, equal to cast_one for their pairs (shim tests compare them on every input).
// Indexed by the source byte (an int8 is read through its bit pattern).
template <typename S>
struct CastTable8 {
    uint16_t bits[256];
    CastTable8() {
        for (uint32_t c = 0; c < 256; ++c) {
            const uint8_t byte = uint8_t(c);
            S v;
            std::memcpy(&v, &byte, 1);
            bits[c] = f32_to_f16_rne(float(v));
        }
    }
};

// half -> int32: every half is exact in float and |half| < 2^17, so rounding the float is exact
// and no finite value saturates; NaN gives 0 and infinities saturate, as cast_one does.
inline int32_t cast_half_int32(half v, Rounding rm) {
    const float x = float(v);
    if (std::isnan(x)) return 0;
    if (std::isinf(x)) return x > 0 ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int32_t>::min();
    if (rm == Rounding::RINT) {
        // Adding and removing 1.5 * 2^23 rounds to an integer in the default (nearest-even) mode.
        return int32_t((x + 12582912.0f) - 12582912.0f);
    }
    return int32_t(round_integral(double(x), rm));
}

template <typename T>
inline const char* type_name() {
    if (std::is_same<T, half>::value) return "half";
    if (std::is_same<T, bfloat16_t>::value) return "bfloat16";
    if (std::is_same<T, float>::value) return "float";
    if (std::is_same<T, int8_t>::value) return "int8";
    if (std::is_same<T, uint8_t>::value) return "uint8";
    if (std::is_same<T, int16_t>::value) return "int16";
    if (std::is_same<T, uint16_t>::value) return "uint16";
    if (std::is_same<T, int32_t>::value) return "int32";
    if (std::is_same<T, uint32_t>::value) return "uint32";
    if (std::is_same<T, int64_t>::value) return "int64";
    return "?";
}


}  // namespace ascend_shim

namespace AscendC {

template <typename D, typename S>
void Cast(const LocalTensor<D>& dst, const LocalTensor<S>& src, const RoundMode& mode, const int32_t& count) {
    constexpr uint32_t allowed = ascend_shim::cast_modes<D, S>();
    static_assert(allowed != 0,
                  "Cast: this (src, dst) type pair does not exist on 910B (see the dav-2201 table; e.g. half<->bf16 "
                  "and int8->float go through an intermediate type)");
    using namespace ascend_shim;
    const char* api = "Cast";
    uint32_t bit = mode == RoundMode::CAST_NONE    ? RM_NONE
                   : mode == RoundMode::CAST_RINT  ? RM_RINT
                   : mode == RoundMode::CAST_FLOOR ? RM_FLOOR
                   : mode == RoundMode::CAST_CEIL  ? RM_CEIL
                   : mode == RoundMode::CAST_ROUND ? RM_ROUND
                   : mode == RoundMode::CAST_TRUNC ? RM_TRUNC
                   : mode == RoundMode::CAST_ODD   ? RM_ODD
                                                   : 0u;
    if (!(allowed & bit))
        fail("cast-mode", "Cast %s -> %s does not support %s on 910B", type_name<S>(), type_name<D>(),
             round_mode_name(mode));
    check_count(api, count);
    const S* s = operand(src, count, true, api, "src", mem_bit(MEM_UB));
    D* d = operand(dst, count, false, api, "dst", mem_bit(MEM_UB));
    no_partial_overlap(api, dst, src, count);  // differing widths can never overlap 100%
    const Rounding rm = to_rounding(mode);
    if constexpr (std::is_same<D, half>::value && one_of<S, uint8_t, int8_t>) {
        // The FP8 decode's first step: every 8-bit integer is an exact half, so a table says it.
        static const CastTable8<S> table;
        for (int32_t i = 0; i < count; ++i) d[i] = half::from_bits(table.bits[uint8_t(s[i])]);
    } else if constexpr (std::is_same<D, int32_t>::value && std::is_same<S, half>::value) {
        for (int32_t i = 0; i < count; ++i) d[i] = cast_half_int32(s[i], rm);
    } else {
        for (int32_t i = 0; i < count; ++i) d[i] = cast_one<D, S>(s[i], rm);
    }
    define(dst, count);
    count_vector(uint64_t(count), sizeof(D) > sizeof(S) ? sizeof(D) : sizeof(S));
}

// Full reduction to dst[0]. On the NPU each 256-byte repeat is reduced by a binary tree and the
// repeat results are combined in order; the shim follows that order so half rounding matches.
template <typename T>
void ReduceSum(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& work, const int32_t& count);
template <typename T>
void ReduceMax(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& work, const int32_t& count,
               bool calIndex = false);
template <typename T>
void ReduceMin(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& work, const int32_t& count,
               bool calIndex = false);

}  // namespace AscendC

namespace ascend_shim {

template <typename T, int Kind>
void vec_reduce(const AscendC::LocalTensor<T>& dst, const AscendC::LocalTensor<T>& src,
                const AscendC::LocalTensor<T>& work, int32_t count, bool calIndex, const char* api) {
    static_assert(one_of<T, half, float>, "Reduce on 910B: half/float only");
    check_count(api, count);
    if (count == 0) fail("vector-params", "%s with count 0", api);
    const uint32_t perRepeat = 256 / sizeof(T);
    const uint32_t repeats = (uint32_t(count) + perRepeat - 1) / perRepeat;
    const uint32_t perBlock = 32 / sizeof(T);
    const uint32_t workNeed = ((Kind == 0 ? repeats : 2 * repeats) + perBlock - 1) / perBlock * perBlock;
    const T* s = operand(src, count, true, api, "src", mem_bit(MEM_UB));
    T* w = operand(work, workNeed, false, api, "work", mem_bit(MEM_UB));
    T* d = operand(dst, calIndex ? 2 : 1, false, api, "dst", mem_bit(MEM_UB));
    (void)w;
    auto better = [](float a, float b) { return Kind == 1 ? (a > b) : (a < b); };
    float acc = 0;
    uint32_t idx = 0;
    float tree[128];
    for (uint32_t r = 0; r < repeats; ++r) {
        uint32_t n = std::min<uint32_t>(perRepeat, uint32_t(count) - r * perRepeat);
        if (Kind == 0) {
            for (uint32_t i = 0; i < n; ++i) tree[i] = float(s[r * perRepeat + i]);
            for (uint32_t w2 = n; w2 > 1;) {
                uint32_t h = (w2 + 1) / 2;
                for (uint32_t i = 0; i + h < w2; ++i) tree[i] = float(T(tree[i] + tree[i + h]));
                w2 = h;
            }
            acc = r == 0 ? tree[0] : float(T(acc + tree[0]));
            if (std::is_same<T, half>::value && std::isinf(acc)) acc = acc > 0 ? 65504.0f : -65504.0f;
        } else {
            for (uint32_t i = 0; i < n; ++i) {
                float v = float(s[r * perRepeat + i]);
                if ((r == 0 && i == 0) || better(v, acc)) { acc = v; idx = r * perRepeat + i; }
            }
        }
    }
    d[0] = T(acc);
    if (calIndex) {
        // The index comes back as the raw bits of an unsigned integer in the second element.
        if (sizeof(T) == 4) { uint32_t u = idx; std::memcpy(&d[1], &u, 4); }
        else { uint16_t u = uint16_t(idx); std::memcpy(&d[1], &u, 2); }
    }
    define(dst, calIndex ? 2 : 1);
    define(work, workNeed);
    count_vector(uint64_t(count), sizeof(T));
}

}  // namespace ascend_shim

namespace AscendC {

template <typename T>
void ReduceSum(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& work, const int32_t& count) {
    ascend_shim::vec_reduce<T, 0>(dst, src, work, count, false, "ReduceSum");
}
template <typename T>
void ReduceMax(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& work, const int32_t& count,
               bool calIndex) {
    ascend_shim::vec_reduce<T, 1>(dst, src, work, count, calIndex, "ReduceMax");
}
template <typename T>
void ReduceMin(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& work, const int32_t& count,
               bool calIndex) {
    ascend_shim::vec_reduce<T, 2>(dst, src, work, count, calIndex, "ReduceMin");
}

// Bit i of the uint8 mask = (a[i] op b[i]).
template <typename U, typename T>
void Compare(const LocalTensor<U>& dstMask, const LocalTensor<T>& a, const LocalTensor<T>& b, CMPMODE mode,
             uint32_t count) {
    static_assert(ascend_shim::one_of<T, half, float>, "Compare on 910B: half/float only");
    using namespace ascend_shim;
    const char* api = "Compare";
    if ((uint64_t(count) * sizeof(T)) % 256 != 0 || count == 0)
        fail("vector-params", "Compare: count %u * %zu bytes must be a non-zero multiple of 256 bytes", count, sizeof(T));
    const T* pa = operand(a, count, true, api, "src0", mem_bit(MEM_UB));
    const T* pb = operand(b, count, true, api, "src1", mem_bit(MEM_UB));
    const uint32_t maskBytes = count / 8;
    uint8_t* m = reinterpret_cast<uint8_t*>(
        operand(dstMask, (maskBytes + sizeof(U) - 1) / sizeof(U), false, api, "dst", mem_bit(MEM_UB)));
    for (uint32_t i = 0; i < maskBytes; ++i) m[i] = 0;
    for (uint32_t i = 0; i < count; ++i) {
        float x = float(pa[i]), y = float(pb[i]);
        bool r = mode == CMPMODE::LT ? x < y : mode == CMPMODE::GT ? x > y : mode == CMPMODE::EQ ? x == y
               : mode == CMPMODE::LE ? x <= y : mode == CMPMODE::GE ? x >= y : x != y;
        if (r) m[i / 8] |= uint8_t(1u << (i % 8));
    }
    set_defined(Mem(dstMask.mem_), dstMask.off_, maskBytes, true);
    count_vector(count, sizeof(T));
}

// dst[i] = mask bit i ? a[i] : b[i]  (or the scalar for VSEL_TENSOR_SCALAR_MODE).
template <typename T, typename U>
void Select(const LocalTensor<T>& dst, const LocalTensor<U>& selMask, const LocalTensor<T>& a,
            const LocalTensor<T>& b, SELMODE mode, uint32_t count) {
    static_assert(ascend_shim::one_of<T, half, float>, "Select on 910B: half/float only");
    using namespace ascend_shim;
    const char* api = "Select";
    if (mode != SELMODE::VSEL_TENSOR_TENSOR_MODE && mode != SELMODE::VSEL_CMPMASK_SPR)
        fail("vector-params", "Select(tensor, tensor) needs VSEL_TENSOR_TENSOR_MODE");
    check_count(api, count);
    const uint32_t maskBytes = (count + 7) / 8;
    const uint8_t* m = reinterpret_cast<const uint8_t*>(
        operand(selMask, (maskBytes + sizeof(U) - 1) / sizeof(U), true, api, "selMask", mem_bit(MEM_UB)));
    const T* pa = operand(a, count, true, api, "src0", mem_bit(MEM_UB));
    const T* pb = operand(b, count, true, api, "src1", mem_bit(MEM_UB));
    T* d = operand(dst, count, false, api, "dst", mem_bit(MEM_UB));
    for (uint32_t i = 0; i < count; ++i) d[i] = ((m[i / 8] >> (i % 8)) & 1) ? pa[i] : pb[i];
    define(dst, count);
    count_vector(count, sizeof(T));
}
template <typename T, typename U>
void Select(const LocalTensor<T>& dst, const LocalTensor<U>& selMask, const LocalTensor<T>& a, T scalar,
            SELMODE mode, uint32_t count) {
    static_assert(ascend_shim::one_of<T, half, float>, "Select on 910B: half/float only");
    using namespace ascend_shim;
    const char* api = "Select";
    if (mode != SELMODE::VSEL_TENSOR_SCALAR_MODE)
        fail("vector-params", "Select(tensor, scalar) needs VSEL_TENSOR_SCALAR_MODE");
    check_count(api, count);
    const uint32_t maskBytes = (count + 7) / 8;
    const uint8_t* m = reinterpret_cast<const uint8_t*>(
        operand(selMask, (maskBytes + sizeof(U) - 1) / sizeof(U), true, api, "selMask", mem_bit(MEM_UB)));
    const T* pa = operand(a, count, true, api, "src0", mem_bit(MEM_UB));
    T* d = operand(dst, count, false, api, "dst", mem_bit(MEM_UB));
    for (uint32_t i = 0; i < count; ++i) d[i] = ((m[i / 8] >> (i % 8)) & 1) ? pa[i] : scalar;
    define(dst, count);
    count_vector(count, sizeof(T));
}

}  // namespace AscendC
