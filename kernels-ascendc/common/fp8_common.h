// Helpers shared by the FP8 (E4M3FN) kernels: fp8_quant.cpp, fp8_weight_quant.cpp, fp8_dequant.cpp
// and fp8_gemm.cpp. Compiles with CANN's toolchain and with the shim.
//
// Scale rule (DeepSeek inference/kernel.py act_quant / weight quantization, src/fp8/quantize.rs):
//   s = max(amax, 1e-4f) / 448.0f in f32, optionally rounded up to a power of two (UE8M0,
//   DeepGEMM's ceil_to_ue8m0 on the f32 bits); codes = e4m3(x / s) with an f32 quotient.
//
// Encoder (EncodeE4m3): 910B has no FP8 type, so the code is integer arithmetic on the f32 bits of
// q = x / s (all level-2 int32 ops the 910B vector unit has: Adds/Add/Sub/Max/Mins/Maxs, shifts):
//   a    = |q| bits, clamped to the bits of 448.0 (saturation; NaN/Inf bits are larger)
//   cn   = ((a + 0x7FFFF + ((a >> 20) & 1)) >> 20) - 960   round-to-nearest-even to 3 mantissa
//          bits and rebias 127 -> 7: the code for normal results (a >= 2^-6); for smaller a it is
//          <= the subnormal code below
//   cs   = rint(min(a * 512, 8))                         the code for subnormal results (<= 8)
//   code = max(cn, cs) + nan + sign * 128                nan = 1 for NaN inputs (448 -> 0x7E -> 0x7F)
// (max picks the right branch: for a >= 2^-6, cs = 8 <= cn; below, cn <= cs.) The int32 code is
// narrowed to a byte with Cast int32 -> int16 -> half -> uint8 (all exact for 0..255).
//
// Decoder (E4m3Bits): the bits of an E4M3FN code in a wider float format (exact for fp16, bf16 and
// f32: 3 mantissa bits, exponents 2^-9 .. 2^8); the kernels put all 256 in a UB table and Gather.
#pragma once

#include "kernel_operator.h"

namespace kernels {
namespace fp8 {

constexpr uint32_t kBlock = 128;     // 1x128 tile width, 128x128 block side
constexpr float kE4m3Max = 448.0f;   // the largest finite E4M3FN value
constexpr float kAmaxFloor = 1e-4f;  // kernel.py's tl.maximum(amax, 1e-4)

__aicore__ inline uint32_t FloatBits(float f) {
    union { float f; uint32_t u; } v;
    v.f = f;
    return v.u;
}
__aicore__ inline float BitsFloat(uint32_t u) {
    union { float f; uint32_t u; } v;
    v.u = u;
    return v.f;
}

// DeepGEMM's ceil_to_ue8m0: exponent + (mantissa != 0), clamped to [1, 254].
__aicore__ inline float CeilToUe8m0(float s) {
    const uint32_t bits = FloatBits(s);
    uint32_t e = ((bits >> 23) & 0xFFu) + ((bits & 0x7FFFFFu) != 0 ? 1u : 0u);
    e = e < 1u ? 1u : (e > 254u ? 254u : e);
    return BitsFloat(e << 23);
}

// The scale of a tile/block whose largest magnitude is amax. A NaN amax gives the floor's scale
// (as Rust's f32::max does); non-finite inputs are outside every kernel's contract anyway.
__aicore__ inline float QuantScale(float amax, bool ue8m0) {
    const float s = (amax > kAmaxFloor ? amax : kAmaxFloor) / kE4m3Max;
    return ue8m0 ? CeilToUe8m0(s) : s;
}

// dst = |src| with NaN replaced by +Inf, through the f32 bits (clear the sign, clamp to the bits of
// +Inf). Max and ReduceMax over the result are NaN-free, so a tile or block with any NaN or +-Inf
// input has amax = +Inf exactly, which the quantization kernels report (kernel_status.h) instead
// of writing NaN codes and Inf scales silently. For finite inputs it equals Abs.
__aicore__ inline void AbsInfForNan(const AscendC::LocalTensor<float>& dst, const AscendC::LocalTensor<float>& src,
                                    uint32_t n) {
    using namespace AscendC;
    const LocalTensor<uint32_t> du = dst.ReinterpretCast<uint32_t>();
    ShiftLeft(du, src.ReinterpretCast<uint32_t>(), uint32_t(1), int32_t(n));
    PipeBarrier<PIPE_V>();
    ShiftRight(du, du, uint32_t(1), int32_t(n));
    PipeBarrier<PIPE_V>();
    Mins(dst.ReinterpretCast<int32_t>(), dst.ReinterpretCast<int32_t>(), int32_t(0x7F800000), int32_t(n));
}

// Whether the f32 value v is NaN or +-Inf (exponent bits all ones).
__aicore__ inline bool NonFinite(float v) { return ((FloatBits(v) >> 23) & 0xFFu) == 0xFFu; }

// The bits of E4M3FN code c (low 8 bits) in a float format with `mant` fraction bits, `expBits`
// exponent bits and exponent bias `bias` (fp16: 10/5/15, bf16: 7/8/127, f32: 23/8/127). NaN codes
// (S.1111.111) give a quiet NaN with the sign; +-0 keep their sign; subnormals m * 2^-9 are
// normalised (every E4M3 value is a normal number in those formats).
__aicore__ inline uint32_t E4m3Bits(uint32_t c, uint32_t mant, uint32_t expBits, int32_t bias) {
    const uint32_t sign = ((c >> 7) & 1u) << (mant + expBits), e = (c >> 3) & 15u, m = c & 7u;
    if (e == 15u && m == 7u) return sign | (((1u << expBits) - 1u) << mant) | (1u << (mant - 1u));
    if (e == 0u && m == 0u) return sign;
    int32_t exp;
    uint32_t frac;
    if (e == 0u) {  // subnormal m * 2^-9: normalise
        const uint32_t lead = m >= 4u ? 2u : (m >= 2u ? 1u : 0u);
        exp = int32_t(lead) - 9;
        frac = (m << (3u - lead)) & 7u;
    } else {
        exp = int32_t(e) - 7;
        frac = m;
    }
    return sign | (uint32_t(exp + bias) << mant) | (frac << (mant - 3u));
}

// Byte offsets of n codes into a 256-entry decode table of `entryBytes`-wide entries, for Gather:
// h holds the codes as halfs (Cast u8 -> half, exact 0..255) and is clobbered. The scaling runs on
// the halfs (at most 255 * 4 = 1020, an exact integer) before the widening Cast, not on the int32
// offsets after it: 128 halfs per 256-byte repeat against 64 int32 (ascendc-facts.md §3.5), half
// the vector time of that step.
__aicore__ inline void TableOffsets(const AscendC::LocalTensor<int32_t>& idx, const AscendC::LocalTensor<half>& h,
                                    uint32_t entryBytes, int32_t n) {
    using namespace AscendC;
    Muls(h, h, half(float(entryBytes)), n);
    PipeBarrier<PIPE_V>();
    Cast(idx, h, RoundMode::CAST_RINT, n);
}

// codes[0, n) = e4m3(q) for the f32 q held in w3 (round to nearest even, saturating to +-448,
// NaN -> 0x7F/0xFF with the sign, -0 -> 0x80). w0..w4 are fp32 work arrays of >= n elements
// (all five are clobbered, w3 included); codes must not overlap them. Ends with the codes written
// by the vector pipe (the caller EnQues them).
__aicore__ inline void EncodeE4m3(const AscendC::LocalTensor<uint8_t>& codes, const AscendC::LocalTensor<float>& w0,
                                  const AscendC::LocalTensor<float>& w1, const AscendC::LocalTensor<float>& w2,
                                  const AscendC::LocalTensor<float>& w3, const AscendC::LocalTensor<float>& w4,
                                  uint32_t n) {
    using namespace AscendC;
    LocalTensor<int32_t> i0 = w0.ReinterpretCast<int32_t>(), i1 = w1.ReinterpretCast<int32_t>(),
                         i2 = w2.ReinterpretCast<int32_t>(), i3 = w3.ReinterpretCast<int32_t>(),
                         i4 = w4.ReinterpretCast<int32_t>();
    const int32_t cnt = int32_t(n);
    // i1 = sign * 128
    ShiftRight(w1.ReinterpretCast<uint32_t>(), w3.ReinterpretCast<uint32_t>(), uint32_t(31), cnt);
    PipeBarrier<PIPE_V>();
    ShiftLeft(i1, i1, int32_t(7), cnt);
    Abs(w3, w3, cnt);
    PipeBarrier<PIPE_V>();
    // i1 += (|q| is NaN): min(max(bits - 0x7F800000, 0), 1)
    Adds(i2, i3, int32_t(-0x7F800000), cnt);
    PipeBarrier<PIPE_V>();
    Maxs(i2, i2, int32_t(0), cnt);
    PipeBarrier<PIPE_V>();
    Mins(i2, i2, int32_t(1), cnt);
    PipeBarrier<PIPE_V>();
    Add(i1, i1, i2, cnt);
    // saturate: |q| bits <= bits(448.0f) (Inf and NaN included)
    Mins(i3, i3, int32_t(0x43E00000), cnt);
    PipeBarrier<PIPE_V>();
    // subnormal code: rint(min(|q| * 2^9, 8))
    Muls(w2, w3, 512.0f, cnt);
    PipeBarrier<PIPE_V>();
    Mins(w2, w2, 8.0f, cnt);
    PipeBarrier<PIPE_V>();
    Cast(i4, w2, RoundMode::CAST_RINT, cnt);
    // normal code: round the f32 bits to 3 mantissa bits (nearest even) and rebias
    ShiftRight(i2, i3, int32_t(20), cnt);
    ShiftRight(i0, i3, int32_t(21), cnt);
    PipeBarrier<PIPE_V>();
    ShiftLeft(i0, i0, int32_t(1), cnt);
    PipeBarrier<PIPE_V>();
    Sub(i2, i2, i0, cnt);  // bit 20 of the bits (the lsb kept)
    PipeBarrier<PIPE_V>();
    Add(i3, i3, i2, cnt);
    PipeBarrier<PIPE_V>();
    Adds(i3, i3, int32_t(0x7FFFF), cnt);
    PipeBarrier<PIPE_V>();
    ShiftRight(i3, i3, int32_t(20), cnt);
    PipeBarrier<PIPE_V>();
    Adds(i3, i3, int32_t(-960), cnt);
    PipeBarrier<PIPE_V>();
    Max(i3, i3, i4, cnt);
    PipeBarrier<PIPE_V>();
    Add(i3, i3, i1, cnt);
    PipeBarrier<PIPE_V>();
    // narrow to bytes: int32 -> int16 -> half -> uint8, exact for 0..255
    LocalTensor<int16_t> h16 = w0.ReinterpretCast<int16_t>();
    LocalTensor<half> hf = w1.ReinterpretCast<half>();
    Cast(h16, i3, RoundMode::CAST_NONE, cnt);
    PipeBarrier<PIPE_V>();
    Cast(hf, h16, RoundMode::CAST_NONE, cnt);
    PipeBarrier<PIPE_V>();
    Cast(codes, hf, RoundMode::CAST_NONE, cnt);
}

}  // namespace fp8
}  // namespace kernels
