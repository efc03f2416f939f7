// Absorbed MLA decode over a paged latent cache, FlashMLA's dense decode semantics
// (tiling/mla_decode_tiling.h): MQA with one key/value head of latent + rope values, the value
// being the latent part of the same row; online softmax; out and LSE (natural log).
//
// Why this shape:
//   - One work item is (sequence, group of query rows); it reads the sequence's cache rows once
//     for all its rows (all heads and speculative tokens of the group), tile_tokens rows at a
//     time, a tile never crossing a cache block. With s_q * heads <= group_rows that is once per
//     sequence, as FlashMLA; more rows re-read the cache once per group (the UB holds each row's
//     f32 query and accumulator). A cube (Mix 1:2) version would hold more rows in L1/L0C.
//   - Only visible keys are read: tokens >= seq_len are never loaded, and a causal row's keys
//     past its diagonal are never multiplied, so NaN or garbage in unused slots and unused
//     block-table entries cannot leak (nothing is masked by multiplying with 0).
//   - Scores are dot products (Mul + ReduceSum per (row, key)); the online softmax keeps the
//     running max m and sum l per row on the scalar unit, exp on the vector unit:
//     p = exp(s - m_new), alpha = exp(m_old - m_new), acc = acc * alpha + sum_t p_t * v_t.
//     Finally out = acc / l and lse = m + ln l; a row with no visible key writes 0 and +inf.
//   - FP8 rows are dequantized exactly (code * power-of-two scale is exact in bf16 and f32)
//     through the 256-entry E4M3 table and Gather, FlashMLA's dequantize-then-attend.
// Vector-only; f32 inside, bf16 out with CAST_RINT.
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "tiling/mla_decode_tiling.h"

using namespace AscendC;

namespace {

constexpr uint32_t kMaxRows = 32;

template <bool kFp8>
class MlaDecode {
public:
    __aicore__ inline void Init(GM_ADDR qLat, GM_ADDR qRope, GM_ADDR cache, GM_ADDR table, GM_ADDR lens, GM_ADDR out,
                                GM_ADDR lse, const MlaDecodeTiling& t) {
        t_ = t;
        D_ = t.latent + t.rope;
        const uint32_t G = t.group_rows, T = t.tile_tokens, L = t.latent, R = t.rope;
        qLatBase_ = qLat;
        qRopeBase_ = qRope;
        outBase_ = out;
        cache_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(cache), uint64_t(t.cache_blocks) * t.block_size * t.row_bytes);
        table_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(table) + uint64_t(t.seq_off) * t.max_blocks,
                               uint64_t(t.batch) * t.max_blocks);
        lens_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(lens) + t.seq_off, t.batch);
        lse_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(lse), t.lse_len);
        pipe_.InitBuffer(qf_, G * D_ * 4);
        pipe_.InitBuffer(acc_, G * L * 4);
        pipe_.InitBuffer(rowIn_, D_ * 2);
        pipe_.InitBuffer(kf_, T * D_ * 4);
        pipe_.InitBuffer(prod_, D_ * 4);
        pipe_.InitBuffer(red_, G * T * 32 + 256);  // scores, then ReduceSum's work (D <= 4096)
        pipe_.InitBuffer(ex_, kernels::RoundUp(G * T * 4, 32));
        pipe_.InitBuffer(small_, 2 * kernels::RoundUp(G * 4, 32) + G * 32);
        if constexpr (kFp8) {
            latPitch_ = kernels::RoundUp(L + 4 * L / kernels::fp8::kBlock, 32);
            pipe_.InitBuffer(rawQ_, 2, T * latPitch_);
            pipe_.InitBuffer(ropeQ_, 2, T * R * 2);
            pipe_.InitBuffer(half_, T * L * 2);
            pipe_.InitBuffer(idx_, T * L * 4);
            pipe_.InitBuffer(lut_, 256 * 4);
            LocalTensor<uint32_t> lut = lut_.Get<uint32_t>();
            for (uint32_t c = 0; c < 256; ++c) lut.SetValue(c, kernels::fp8::E4m3Bits(c, 23, 8, 127));
            SetFlag<HardEvent::S_V>(EVENT_ID0);
            WaitFlag<HardEvent::S_V>(EVENT_ID0);
        } else {
            pipe_.InitBuffer(rawQ_, 2, T * D_ * 2);
        }
    }

    __aicore__ inline void Process() {
        const uint32_t items = t_.batch * t_.groups;
        for (uint32_t w = GetBlockIdx(); w < items; w += GetBlockNum()) Item(w / t_.groups, w % t_.groups);
    }

private:
    __aicore__ inline void Item(uint32_t b, uint32_t g) {
        const uint32_t rowsTotal = t_.s_q * t_.heads, r0 = g * t_.group_rows;
        rows_ = kernels::Min(t_.group_rows, rowsTotal - r0);
        const int32_t lenRaw = lens_.GetValue(b);
        const uint32_t len = lenRaw > 0 ? uint32_t(lenRaw) : 0u;
        uint32_t maxVis = 0;
        for (uint32_t r = 0; r < rows_; ++r) {
            const uint32_t i = (r0 + r) / t_.heads;
            int32_t v = int32_t(len);
            if (t_.causal != 0) v = int32_t(len) - int32_t(t_.s_q) + int32_t(i) + 1;
            vis_[r] = v > 0 ? uint32_t(v) : 0u;
            if (vis_[r] > len) vis_[r] = len;
            maxVis = vis_[r] > maxVis ? vis_[r] : maxVis;
            m_[r] = -kInf();
            l_[r] = 0.0f;
        }
        LoadQueries(b, r0);
        PipeBarrier<PIPE_V>();
        Duplicate(acc_.Get<float>(), 0.0f, int32_t(rows_ * t_.latent));
        for (uint32_t t0 = 0; t0 < maxVis;) {
            const uint32_t inBlock = t0 % t_.block_size;
            const uint32_t n = kernels::Min(kernels::Min(t_.tile_tokens, maxVis - t0), t_.block_size - inBlock);
            const int32_t blk = table_.GetValue(uint64_t(b) * t_.max_blocks + t0 / t_.block_size);
            // The host checked every used entry; an entry out of range is skipped, never read.
            if (blk >= 0 && uint32_t(blk) < t_.cache_blocks) {
                LoadTile(uint64_t(uint32_t(blk)) * t_.block_size + inBlock, n);
                Attend(t0, n);
            }
            t0 += n;
        }
        Finish(b, r0);
    }

    static __aicore__ inline float kInf() { return kernels::fp8::BitsFloat(0x7F800000u); }

    // qf[r] = the f32 query row (latent then rope) of row r0 + r.
    __aicore__ inline void LoadQueries(uint32_t b, uint32_t r0) {
        GlobalTensor<bfloat16_t> qLat, qRope;
        LocalTensor<bfloat16_t> in = rowIn_.Get<bfloat16_t>();
        LocalTensor<float> qf = qf_.Get<float>();
        for (uint32_t r = 0; r < rows_; ++r) {
            const uint32_t i = (r0 + r) / t_.heads, h = (r0 + r) % t_.heads;
            const uint64_t tok = uint64_t(b) * t_.s_q + i;
            qLat.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(qLatBase_) + t_.q_lat_off + tok * t_.q_lat_tok + uint64_t(h) * t_.q_lat_head,
                                 t_.latent);
            qRope.SetGlobalBuffer(
                reinterpret_cast<__gm__ bfloat16_t*>(qRopeBase_) + t_.q_rope_off + tok * t_.q_rope_tok + uint64_t(h) * t_.q_rope_head, t_.rope);
            DataCopyPad(in, qLat, DataCopyExtParams(1, t_.latent * 2, 0, 0, 0),
                        DataCopyPadExtParams<bfloat16_t>(false, 0, 0, bfloat16_t(0.0f)));
            DataCopyPad(in[t_.latent], qRope, DataCopyExtParams(1, t_.rope * 2, 0, 0, 0),
                        DataCopyPadExtParams<bfloat16_t>(false, 0, 0, bfloat16_t(0.0f)));
            SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
            WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
            Cast(qf[r * D_], in, RoundMode::CAST_NONE, int32_t(D_));
            SetFlag<HardEvent::V_MTE2>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE2>(EVENT_ID0);
        }
    }

    // kf[0, n) = the f32 rows of cache slots [slot, slot + n) (consecutive within one block).
    __aicore__ inline void LoadTile(uint64_t slot, uint32_t n) {
        LocalTensor<float> kf = kf_.Get<float>();
        if constexpr (kFp8) {
            const uint32_t L = t_.latent, R = t_.rope, tiles = L / kernels::fp8::kBlock;
            const uint32_t latBytes = L + 4 * tiles;
            LocalTensor<uint8_t> raw = rawQ_.AllocTensor<uint8_t>();
            LocalTensor<uint8_t> ropeRaw = ropeQ_.AllocTensor<uint8_t>();
            const uint64_t at = slot * t_.row_bytes;
            DataCopyPad(raw, cache_[at], DataCopyExtParams(uint16_t(n), latBytes, t_.row_bytes - latBytes, 0, 0),
                        DataCopyPadExtParams<uint8_t>(false, 0, 0, 0));
            DataCopyPad(ropeRaw, cache_[at + latBytes], DataCopyExtParams(uint16_t(n), R * 2, t_.row_bytes - R * 2, 0, 0),
                        DataCopyPadExtParams<uint8_t>(false, 0, 0, 0));
            rawQ_.EnQue(raw);
            ropeQ_.EnQue(ropeRaw);
            raw = rawQ_.DeQue<uint8_t>();
            ropeRaw = ropeQ_.DeQue<uint8_t>();
            LocalTensor<bfloat16_t> rope = ropeRaw.template ReinterpretCast<bfloat16_t>();
            PipeBarrier<PIPE_V>();  // the previous tile's vector reads of kf are done
            LocalTensor<half> h = half_.Get<half>();
            LocalTensor<int32_t> idx = idx_.Get<int32_t>();
            for (uint32_t j = 0; j < n; ++j) Cast(h[j * L], raw[j * latPitch_], RoundMode::CAST_NONE, int32_t(L));
            for (uint32_t j = 0; j < n; ++j) Cast(kf[j * D_ + L], rope[j * R], RoundMode::CAST_NONE, int32_t(R));
            PipeBarrier<PIPE_V>();
            Cast(idx, h, RoundMode::CAST_RINT, int32_t(n * L));
            PipeBarrier<PIPE_V>();
            Muls(idx, idx, int32_t(4), int32_t(n * L));  // byte offsets into the f32 table
            PipeBarrier<PIPE_V>();
            for (uint32_t j = 0; j < n; ++j)
                Gather(kf[j * D_], lut_.Get<float>(), idx[j * L].template ReinterpretCast<uint32_t>(), 0u, L);
            PipeBarrier<PIPE_V>();
            // The scales: scalar reads of the DMA'd bytes.
            SetFlag<HardEvent::MTE2_S>(EVENT_ID0);
            WaitFlag<HardEvent::MTE2_S>(EVENT_ID0);
            LocalTensor<float> sc = raw.template ReinterpretCast<float>();
            for (uint32_t j = 0; j < n; ++j)
                for (uint32_t c = 0; c < tiles; ++c) {
                    const float s = sc.GetValue((j * latPitch_ + L) / 4 + c);
                    LocalTensor<float> v = kf[j * D_ + c * kernels::fp8::kBlock];
                    Muls(v, v, s, int32_t(kernels::fp8::kBlock));
                }
            PipeBarrier<PIPE_V>();
            rawQ_.FreeTensor(raw);
            ropeQ_.FreeTensor(ropeRaw);
        } else {
            LocalTensor<uint8_t> raw = rawQ_.AllocTensor<uint8_t>();
            DataCopyPad(raw, cache_[slot * t_.row_bytes], DataCopyExtParams(1, n * D_ * 2, 0, 0, 0),
                        DataCopyPadExtParams<uint8_t>(false, 0, 0, 0));
            rawQ_.EnQue(raw);
            raw = rawQ_.DeQue<uint8_t>();
            PipeBarrier<PIPE_V>();  // the previous tile's vector reads of kf are done
            Cast(kf, raw.template ReinterpretCast<bfloat16_t>(), RoundMode::CAST_NONE, int32_t(n * D_));
            PipeBarrier<PIPE_V>();
            rawQ_.FreeTensor(raw);
        }
    }

    // Folds keys [t0, t0 + n) into every row that sees any of them.
    __aicore__ inline void Attend(uint32_t t0, uint32_t n) {
        const uint32_t T = t_.tile_tokens, L = t_.latent;
        LocalTensor<float> qf = qf_.Get<float>(), kf = kf_.Get<float>(), prod = prod_.Get<float>();
        LocalTensor<float> red = red_.Get<float>(), redWork = red[t_.group_rows * T * 8];
        LocalTensor<float> ex = ex_.Get<float>(), al = small_.Get<float>();
        uint32_t nr[kMaxRows];
        for (uint32_t r = 0; r < rows_; ++r) nr[r] = vis_[r] > t0 ? kernels::Min(n, vis_[r] - t0) : 0u;
        // Scores (unscaled), one 32-byte slot each.
        SetFlag<HardEvent::S_V>(EVENT_ID0);  // the previous tile's scalar reads of red are done
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
        for (uint32_t r = 0; r < rows_; ++r)
            for (uint32_t t = 0; t < nr[r]; ++t) {
                Mul(prod, qf[r * D_], kf[t * D_], int32_t(D_));
                PipeBarrier<PIPE_V>();
                ReduceSum(red[(r * T + t) * 8], prod, redWork, int32_t(D_));
                PipeBarrier<PIPE_V>();
            }
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        // Running max on the scalar unit; exp arguments for the vector unit.
        const float scale = kernels::fp8::BitsFloat(t_.scale_bits);
        float mNew[kMaxRows];
        for (uint32_t r = 0; r < rows_; ++r) {
            mNew[r] = m_[r];
            for (uint32_t t = 0; t < nr[r]; ++t) {
                const float s = red.GetValue((r * T + t) * 8) * scale;
                mNew[r] = s > mNew[r] ? s : mNew[r];
            }
            for (uint32_t t = 0; t < T; ++t)
                ex.SetValue(r * T + t, t < nr[r] ? red.GetValue((r * T + t) * 8) * scale - mNew[r] : -kInf());
            al.SetValue(r, nr[r] > 0 ? m_[r] - mNew[r] : 0.0f);
        }
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
        Exp(ex, ex, int32_t(rows_ * T));
        Exp(al, al, int32_t(rows_));
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        LocalTensor<float> acc = acc_.Get<float>();
        for (uint32_t r = 0; r < rows_; ++r) {
            if (nr[r] == 0) continue;
            const float alpha = al.GetValue(r);
            LocalTensor<float> a = acc[r * L];
            Muls(a, a, alpha, int32_t(L));
            PipeBarrier<PIPE_V>();
            float sum = 0.0f;
            for (uint32_t t = 0; t < nr[r]; ++t) {
                const float p = ex.GetValue(r * T + t);
                sum += p;
                Muls(prod, kf[t * D_], p, int32_t(L));
                PipeBarrier<PIPE_V>();
                Add(a, a, prod, int32_t(L));
                PipeBarrier<PIPE_V>();
            }
            l_[r] = l_[r] * alpha + sum;
            m_[r] = mNew[r];
        }
    }

    // out = acc / l (bf16), lse = m + ln l; rows that saw nothing: 0 and +inf.
    __aicore__ inline void Finish(uint32_t b, uint32_t r0) {
        const uint32_t L = t_.latent, G = t_.group_rows;
        LocalTensor<float> lnv = small_.Get<float>()[kernels::RoundUp(G * 4, 32) / 4];
        LocalTensor<float> lseSlots = small_.Get<float>()[2 * kernels::RoundUp(G * 4, 32) / 4];
        for (uint32_t r = 0; r < rows_; ++r) lnv.SetValue(r, l_[r] > 0.0f ? l_[r] : 1.0f);
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
        Ln(lnv, lnv, int32_t(rows_));
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        LocalTensor<float> acc = acc_.Get<float>();
        LocalTensor<bfloat16_t> o = rowIn_.Get<bfloat16_t>();
        for (uint32_t r = 0; r < rows_; ++r) {
            const uint32_t i = (r0 + r) / t_.heads, h = (r0 + r) % t_.heads;
            const bool seen = l_[r] > 0.0f;
            lseSlots.SetValue(r * 8, seen ? m_[r] + lnv.GetValue(r) : kInf());
            LocalTensor<float> a = acc[r * L];
            if (seen) {
                Muls(a, a, 1.0f / l_[r], int32_t(L));
                PipeBarrier<PIPE_V>();
            }
            Cast(o, a, RoundMode::CAST_RINT, int32_t(L));
            SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
            GlobalTensor<bfloat16_t> dst;
            dst.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(outBase_) + t_.out_off + (uint64_t(b) * t_.s_q + i) * t_.out_tok +
                                    uint64_t(h) * t_.out_head,
                                L);
            DataCopyPad(dst, o, DataCopyExtParams(1, L * 2, 0, 0, 0));
            SetFlag<HardEvent::S_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
            const uint64_t at = t_.lse_off + uint64_t(b) * t_.lse_seq + uint64_t(h) * t_.lse_head + i;
            DataCopyPad(lse_[at], lseSlots[r * 8], DataCopyExtParams(1, 4, 0, 0, 0));
            // o is rewritten by the next row's cast.
            SetFlag<HardEvent::MTE3_V>(EVENT_ID0);
            WaitFlag<HardEvent::MTE3_V>(EVENT_ID0);
        }
        // The next item's query loads reuse rowIn; its scalar writes reuse the slots.
        SetFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        SetFlag<HardEvent::MTE3_S>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_S>(EVENT_ID0);
    }

    MlaDecodeTiling t_{};
    uint32_t D_ = 0, rows_ = 0, latPitch_ = 0;
    uint32_t vis_[kMaxRows];
    float m_[kMaxRows], l_[kMaxRows];
    GM_ADDR qLatBase_ = nullptr;
    GM_ADDR qRopeBase_ = nullptr;
    GM_ADDR outBase_ = nullptr;
    TPipe pipe_;
    TQue<QuePosition::VECIN, 1> rawQ_, ropeQ_;
    TBuf<QuePosition::VECCALC> qf_, acc_, rowIn_, kf_, prod_, red_, ex_, small_, half_, idx_, lut_;
    GlobalTensor<uint8_t> cache_;
    GlobalTensor<int32_t> table_, lens_;
    GlobalTensor<float> lse_;
};

template <bool kFp8>
__aicore__ inline void RunDecode(GM_ADDR qLat, GM_ADDR qRope, GM_ADDR cache, GM_ADDR table, GM_ADDR lens, GM_ADDR out,
                                 GM_ADDR lse, GM_ADDR tiling) {
    MlaDecodeTiling t;
    kernels::LoadTiling(t, tiling);
    MlaDecode<kFp8> k;
    k.Init(qLat, qRope, cache, table, lens, out, lse, t);
    k.Process();
}

}  // namespace

extern "C" __global__ __aicore__ void mla_decode_bf16(GM_ADDR q_lat, GM_ADDR q_rope, GM_ADDR cache, GM_ADDR block_table,
                                                      GM_ADDR seq_lens, GM_ADDR out, GM_ADDR lse, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunDecode<false>(q_lat, q_rope, cache, block_table, seq_lens, out, lse, tiling);
}
extern "C" __global__ __aicore__ void mla_decode_fp8(GM_ADDR q_lat, GM_ADDR q_rope, GM_ADDR cache, GM_ADDR block_table,
                                                     GM_ADDR seq_lens, GM_ADDR out, GM_ADDR lse, GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    RunDecode<true>(q_lat, q_rope, cache, block_table, seq_lens, out, lse, tiling);
}
