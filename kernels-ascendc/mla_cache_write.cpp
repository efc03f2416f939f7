// MLA latent-cache write, the npu_kv_rmsnorm_rope_cache analogue (tiling/mla_cache_write_tiling.h):
// per token, RMSNorm of the latent (x / sqrt(mean(x^2) + eps) * gamma), interleaved RoPE of the
// shared rope key at the token's position, and the row stored at its slot of the paged cache.
//
// Why this shape:
//   - DeepSeek normalises the latent only and rotates k_pe in GPT-J pairs (2i, 2i+1)
//     (deepseek-ops.md 3.2). The pairs are split with Gather (even / odd offsets), rotated with
//     four Mul and one Sub / Add in f32, and interleaved again with a third Gather: the 910B vector
//     unit has no strided lanes in the level-2 API.
//   - cos / sin come from host-built tables indexed by position (YaRN ramp and amplitude folded
//     in), so the kernel needs no transcendental functions of positions.
//   - Everything is computed in f32 and rounded once to bf16 (RINT). The FP8 variant quantizes
//     the bf16-rounded latent, so its rows are exactly FlashMLA's quantizer applied to the bf16
//     cache: per 128 values s = 2^ceil(log2(max(amax / 448, 1e-4))) (a power of two, so x / s is
//     exact and at most 448), codes = e4m3(x / s) (common/fp8_common.h), the rope key stays bf16.
//   - Slots and positions are scalar GM reads (one pair per token); a negative slot is padding.
//     The host validated both, but the kernel also skips slots and positions out of range so a
//     bad device-side index can never write outside the cache.
// Vector-only; one token at a time (a row is at most 4.5 KiB; nothing to overlap at these sizes).
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "tiling/mla_cache_write_tiling.h"

using namespace AscendC;

namespace {

template <bool kFp8>
class CacheWrite {
public:
    __aicore__ inline void Init(GM_ADDR kv, GM_ADDR gamma, GM_ADDR cosT, GM_ADDR sinT, GM_ADDR positions,
                                GM_ADDR slots, GM_ADDR cache, const MlaCacheWriteTiling& t) {
        t_ = t;
        const uint64_t first = uint64_t(GetBlockIdx()) * t.tokens_per_block;
        count_ = first >= t.tokens ? 0u : uint32_t(kernels::Min<uint64_t>(t.tokens_per_block, t.tokens - first));
        first_ = uint32_t(first);
        if (count_ == 0) return;
        const uint32_t d = t.latent + t.rope, half = t.rope / 2;
        kv_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(kv), uint64_t(t.tokens) * d);
        gamma_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(gamma), t.latent);
        cos_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(cosT), uint64_t(t.positions) * half);
        sin_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(sinT), uint64_t(t.positions) * half);
        pos_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(positions), t.tokens);
        slot_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(slots), t.tokens);
        cache_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(cache), uint64_t(t.slots) * t.row_bytes);
        pipe_.InitBuffer(raw_, d * 2);          // the bf16 input row, then the bf16 output row
        pipe_.InitBuffer(xf_, d * 4);           // the row in f32
        pipe_.InitBuffer(gammaF_, t.latent * 4);
        pipe_.InitBuffer(sq_, t.latent * 4);
        pipe_.InitBuffer(red_, 64 + 256);       // reduction result, then its work area
        pipe_.InitBuffer(trig_, 2 * half * 4);  // cos then sin of the token's position
        pipe_.InitBuffer(pairs_, 6 * half * 4); // a, b, a*c, b*s, a*s, b*c
        pipe_.InitBuffer(rot_, t.rope * 4);     // re then im
        pipe_.InitBuffer(idx_, 2 * t.rope * 4); // even offsets, odd offsets, interleave offsets
        if constexpr (kFp8) {
            pipe_.InitBuffer(work_, 5 * t.latent * 4);
            pipe_.InitBuffer(codes_, t.latent);
            pipe_.InitBuffer(scales_, kernels::RoundUp(t.latent / kernels::fp8::kBlock * 4, 32));
        }
        LoadGamma();
        BuildOffsets();
    }

    __aicore__ inline void Process() {
        for (uint32_t i = 0; i < count_; ++i) {
            const uint32_t tok = first_ + i;
            const int32_t slot = slot_.GetValue(tok), pos = pos_.GetValue(tok);
            if (slot < 0 || uint32_t(slot) >= t_.slots || pos < 0 || uint32_t(pos) >= t_.positions) continue;
            Row(tok, uint32_t(slot), uint32_t(pos));
        }
    }

private:
    __aicore__ inline void LoadGamma() {
        LocalTensor<bfloat16_t> raw = raw_.Get<bfloat16_t>();
        DataCopyPad(raw, gamma_, DataCopyExtParams(1, t_.latent * 2, 0, 0, 0),
                    DataCopyPadExtParams<bfloat16_t>(false, 0, 0, bfloat16_t(0.0f)));
        SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
        WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
        Cast(gammaF_.Get<float>(), raw, RoundMode::CAST_NONE, int32_t(t_.latent));
        // The first row's load overwrites raw: wait for the cast to read it.
        SetFlag<HardEvent::V_MTE2>(EVENT_ID0);
        WaitFlag<HardEvent::V_MTE2>(EVENT_ID0);
    }

    // Byte offsets for Gather: idx[i] = 8i (even lanes), idx[half + i] = 8i + 4 (odd lanes), and
    // idx[rope + 2i] = 4i, idx[rope + 2i + 1] = 4(half + i) (re / im back into pairs).
    __aicore__ inline void BuildOffsets() {
        LocalTensor<uint32_t> idx = idx_.Get<uint32_t>();
        const uint32_t half = t_.rope / 2;
        for (uint32_t i = 0; i < half; ++i) {
            idx.SetValue(i, 8u * i);
            idx.SetValue(half + i, 8u * i + 4u);
            idx.SetValue(t_.rope + 2 * i, 4u * i);
            idx.SetValue(t_.rope + 2 * i + 1, 4u * (half + i));
        }
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
    }

    __aicore__ inline void Row(uint32_t tok, uint32_t slot, uint32_t pos) {
        const uint32_t L = t_.latent, R = t_.rope, half = R / 2, d = L + R;
        LocalTensor<bfloat16_t> raw = raw_.Get<bfloat16_t>();
        LocalTensor<float> xf = xf_.Get<float>(), trig = trig_.Get<float>();
        DataCopyPad(raw, kv_[uint64_t(tok) * d], DataCopyExtParams(1, d * 2, 0, 0, 0),
                    DataCopyPadExtParams<bfloat16_t>(false, 0, 0, bfloat16_t(0.0f)));
        DataCopyPad(trig, cos_[uint64_t(pos) * half], DataCopyExtParams(1, half * 4, 0, 0, 0),
                    DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
        DataCopyPad(trig[half], sin_[uint64_t(pos) * half], DataCopyExtParams(1, half * 4, 0, 0, 0),
                    DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
        SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
        WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
        Cast(xf, raw, RoundMode::CAST_NONE, int32_t(d));  // exact
        PipeBarrier<PIPE_V>();

        // RMSNorm of the latent: inv = 1 / sqrt(sum(x^2) / L + eps), computed on the vector unit.
        LocalTensor<float> sq = sq_.Get<float>(), red = red_.Get<float>();
        Mul(sq, xf, xf, int32_t(L));
        PipeBarrier<PIPE_V>();
        ReduceSum(red, sq, red[16], int32_t(L));
        PipeBarrier<PIPE_V>();
        Muls(red, red, 1.0f / float(L), 1);
        PipeBarrier<PIPE_V>();
        Adds(red, red, kernels::fp8::BitsFloat(t_.eps_bits), 1);
        PipeBarrier<PIPE_V>();
        Sqrt(red, red, 1);
        PipeBarrier<PIPE_V>();
        Duplicate(red[8], 1.0f, 8);
        PipeBarrier<PIPE_V>();
        Div(red, red[8], red, 1);
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        const float inv = red.GetValue(0);
        Muls(xf, xf, inv, int32_t(L));
        PipeBarrier<PIPE_V>();
        Mul(xf, xf, gammaF_.Get<float>(), int32_t(L));

        Rope(xf[L], trig, half);
        PipeBarrier<PIPE_V>();
        Cast(raw, xf, RoundMode::CAST_RINT, int32_t(d));  // the bf16 row
        if constexpr (kFp8) {
            StoreFp8(raw, slot);
        } else {
            SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
            DataCopyPad(cache_[uint64_t(slot) * t_.row_bytes], raw.template ReinterpretCast<uint8_t>(),
                        DataCopyExtParams(1, d * 2, 0, 0, 0));
        }
        // The next row's loads overwrite raw and trig: wait for this row's store.
        SetFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
    }

    // pe (R values, pairs interleaved) <- (a c - b s, a s + b c) per pair, c / s from trig.
    __aicore__ inline void Rope(const LocalTensor<float>& pe, const LocalTensor<float>& trig, uint32_t half) {
        LocalTensor<uint32_t> idx = idx_.Get<uint32_t>();
        LocalTensor<float> p = pairs_.Get<float>(), rot = rot_.Get<float>();
        LocalTensor<float> a = p, b = p[half], ac = p[2 * half], bs = p[3 * half], as = p[4 * half], bc = p[5 * half];
        const LocalTensor<float> c = trig, s = trig[half];
        Gather(a, pe, idx, 0u, half);
        Gather(b, pe, idx[half], 0u, half);
        PipeBarrier<PIPE_V>();
        Mul(ac, a, c, int32_t(half));
        Mul(bs, b, s, int32_t(half));
        Mul(as, a, s, int32_t(half));
        Mul(bc, b, c, int32_t(half));
        PipeBarrier<PIPE_V>();
        Sub(rot, ac, bs, int32_t(half));
        Add(rot[half], as, bc, int32_t(half));
        PipeBarrier<PIPE_V>();
        Gather(pe, rot, idx[2 * half], 0u, 2 * half);
    }

    // FP8 row from the bf16 row: codes, then the scales, then the rope key in bf16.
    __aicore__ inline void StoreFp8(const LocalTensor<bfloat16_t>& row, uint32_t slot) {
        const uint32_t L = t_.latent, R = t_.rope, tiles = L / kernels::fp8::kBlock;
        LocalTensor<float> w = work_.Get<float>();
        LocalTensor<float> w0 = w, w1 = w[L], w2 = w[2 * L], w3 = w[3 * L], w4 = w[4 * L];
        LocalTensor<float> red = red_.Get<float>(), sc = scales_.Get<float>();
        PipeBarrier<PIPE_V>();
        Cast(w0, row, RoundMode::CAST_NONE, int32_t(L));  // the bf16 latent, exactly
        PipeBarrier<PIPE_V>();
        Abs(w1, w0, int32_t(L));
        PipeBarrier<PIPE_V>();
        for (uint32_t j = 0; j < tiles; ++j) {
            ReduceMax(w2[j * 8], w1[j * kernels::fp8::kBlock], red, int32_t(kernels::fp8::kBlock));
            PipeBarrier<PIPE_V>();
        }
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        float inv[16];
        for (uint32_t j = 0; j < tiles; ++j) {
            float s = w2.GetValue(j * 8) / kernels::fp8::kE4m3Max;
            s = s > kernels::fp8::kAmaxFloor ? s : kernels::fp8::kAmaxFloor;
            s = kernels::fp8::CeilToUe8m0(s);  // 2^ceil(log2 s)
            sc.SetValue(j, s);
            inv[j] = kernels::fp8::BitsFloat((254u << 23) - kernels::fp8::FloatBits(s));  // 1 / s, exact
        }
        for (uint32_t j = 0; j < tiles; ++j)
            Muls(w3[j * kernels::fp8::kBlock], w0[j * kernels::fp8::kBlock], inv[j], int32_t(kernels::fp8::kBlock));
        PipeBarrier<PIPE_V>();
        LocalTensor<uint8_t> codes = codes_.Get<uint8_t>();
        kernels::fp8::EncodeE4m3(codes, w0, w1, w2, w3, w4, L);
        SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
        WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
        SetFlag<HardEvent::S_MTE3>(EVENT_ID0);
        WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
        const uint64_t base = uint64_t(slot) * t_.row_bytes;
        DataCopyPad(cache_[base], codes, DataCopyExtParams(1, L, 0, 0, 0));
        DataCopyPad(cache_[base + L], sc.template ReinterpretCast<uint8_t>(), DataCopyExtParams(1, tiles * 4, 0, 0, 0));
        DataCopyPad(cache_[base + L + tiles * 4], row[L].template ReinterpretCast<uint8_t>(),
                    DataCopyExtParams(1, R * 2, 0, 0, 0));
        // The next row's scalar unit rewrites the scales: wait for the copy out.
        SetFlag<HardEvent::MTE3_S>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_S>(EVENT_ID0);
    }

    MlaCacheWriteTiling t_{};
    uint32_t count_ = 0, first_ = 0;
    TPipe pipe_;
    TBuf<QuePosition::VECCALC> raw_, xf_, gammaF_, sq_, red_, trig_, pairs_, rot_, idx_, work_, codes_, scales_;
    GlobalTensor<bfloat16_t> kv_, gamma_;
    GlobalTensor<float> cos_, sin_;
    GlobalTensor<int32_t> pos_, slot_;
    GlobalTensor<uint8_t> cache_;
};

template <bool kFp8>
__aicore__ inline void RunCacheWrite(GM_ADDR kv, GM_ADDR gamma, GM_ADDR cosT, GM_ADDR sinT, GM_ADDR positions,
                                     GM_ADDR slots, GM_ADDR cache, GM_ADDR tiling) {
    MlaCacheWriteTiling t;
    kernels::LoadTiling(t, tiling);
    CacheWrite<kFp8> k;
    k.Init(kv, gamma, cosT, sinT, positions, slots, cache, t);
    k.Process();
}

}  // namespace

extern "C" __global__ __aicore__ void mla_cache_write_bf16(GM_ADDR kv, GM_ADDR gamma, GM_ADDR cos_table,
                                                           GM_ADDR sin_table, GM_ADDR positions, GM_ADDR slots,
                                                           GM_ADDR cache, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunCacheWrite<false>(kv, gamma, cos_table, sin_table, positions, slots, cache, tiling);
}
extern "C" __global__ __aicore__ void mla_cache_write_fp8(GM_ADDR kv, GM_ADDR gamma, GM_ADDR cos_table,
                                                          GM_ADDR sin_table, GM_ADDR positions, GM_ADDR slots,
                                                          GM_ADDR cache, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunCacheWrite<true>(kv, gamma, cos_table, sin_table, positions, slots, cache, tiling);
}
