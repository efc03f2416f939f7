// Absorbed MLA decode over a paged latent cache, FlashMLA's dense decode semantics
// (tiling/mla_decode_tiling.h): MQA with one key/value head of latent + rope values, the value
// being the latent part of the same row; online softmax; out and LSE (natural log).
//
// Why this shape (Mix 1:2, one AIC + two AIVs per group):
//   - One work item is (sequence, group of up to 128 query rows: all heads and speculative
//     tokens). It walks the sequence's visible cache rows in chunks of chunk_tokens; each chunk
//     is loaded into L1 once and serves both products of all the item's rows, so with
//     s_q * heads <= 128 (DeepSeek's 128 heads at s_q = 1) the cache is read once per sequence,
//     as FlashMLA does.
//   - The cube does the products: S = Q K^T (rows x tokens, K = latent + rope; Q stays in L1
//     for the whole item) and O_c = P V (rows x latent, V = the chunk's first latent columns,
//     the same L1 tile loaded transposed). The vector cores do what the cube cannot: the
//     online softmax (scale, row max, exp, row sum, rescale) and, for the FP8 cache, the
//     dequantization of each chunk once (E4M3 through the exact 256-entry table, times the
//     row's power-of-two scales: exact in bf16, FlashMLA's dequantize-then-attend).
//   - 910B's AIC and AIV share no local memory, so S (f32), P (bf16), the partial outputs O_c
//     (f32) and the decoded FP8 chunk cross through a per-group GM ring (L2-resident, but
//     counted by the simulator). O is accumulated on the AIVs in f32 (acc = acc * alpha + O_c):
//     128 rows x 512 f32 do not fit L0C (128 KiB), and L0C cannot be rescaled in place.
//   - Only visible keys are loaded: tokens >= the item's longest visible prefix are never read,
//     so NaN or garbage in unused slots and unused block-table entries cannot leak.
//   - A chunk never ends between two rows' causal limits (ChunkEnd): each row sees all of a
//     chunk or none of it. A row that sees none takes no part in the chunk's softmax and its
//     O_c is not accumulated, so a key masked for it cannot reach it even when the key holds
//     Inf (the cube's P V would give 0 * Inf = NaN in every row of the tile). Keys seen by all
//     rows of the item go in chunks of chunk_tokens; the few past the shortest row's limit (at
//     most one per extra query token of the item) in chunks between consecutive limits.
//   - Every cube tile is padded to 16 rows with zeros (Q, P, and the key rows past the chunk), so
//     no Mmad runs in 910B's GEMV mode (m = 1, ascendc-facts.md errata 1) and no padding is NaN.
//   - Flags (cross-core, mode 2), strictly alternating per chunk, which also orders the ring's
//     reuse: K_READY (AIV -> AIC, FP8 only: the decoded chunk is in the ring), S_READY (AIC -> AIV),
//     P_READY (AIV -> AIC), O_READY (AIC -> AIV). The AIVs write chunk c + 1's keys only after
//     S_READY of chunk c (the AIC read chunk c before computing S); the AIC writes S and O of
//     the next chunk only after P_READY, which the AIVs set after consuming the previous O.
// f32 softmax and accumulation, bf16 out with CAST_RINT.
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "tiling/mla_decode_tiling.h"

using namespace AscendC;

namespace {

constexpr uint32_t kMaxRows = 128;          // query rows of one item
constexpr uint32_t kMaxAivRows = 64;        // rows one AIV owns
constexpr uint32_t kCubeTile = 128;         // N and K steps of the cube
constexpr uint32_t kSoftmaxRows = MLA_DECODE_SOFTMAX_ROWS;
constexpr uint32_t kAccRows = MLA_DECODE_ACC_ROWS;
constexpr uint32_t kFp8Rows = MLA_DECODE_FP8_ROWS;
constexpr uint16_t kFlagKReady = 0;
constexpr uint16_t kFlagSReady = 1;
constexpr uint16_t kFlagPReady = 2;
constexpr uint16_t kFlagOReady = 3;

using kernels::Load2D;
using kernels::Nd2Nz;

// Zero-fills rows [row0, row0 + rows) of an NZ tile of bf16 in L1 (column blocks of `padded`
// rows, `cols` columns).
__aicore__ inline void ZeroRowsNz(const LocalTensor<bfloat16_t>& nz, uint32_t row0, uint32_t rows, uint32_t padded,
                                  uint32_t cols) {
    if (rows == 0) return;
    InitConstValueParams<bfloat16_t> p;
    p.repeatTimes = uint16_t((cols + 15) / 16);
    p.blockNum = uint16_t(rows);
    p.dstGap = uint16_t(padded - rows);
    p.initValue = bfloat16_t(0.0f);
    InitConstValue(nz[row0 * 16], p);
}

// The rows of one work item and which keys each sees.
struct Item {
    uint32_t b = 0, r0 = 0, rows = 0, len = 0, minVis = 0, maxVis = 0;
    uint32_t vis[kMaxRows];
};

template <bool kFp8>
class MlaDecode {
public:
    __aicore__ inline void Init(GM_ADDR qLat, GM_ADDR qRope, GM_ADDR cache, GM_ADDR table, GM_ADDR lens, GM_ADDR out,
                                GM_ADDR lse, GM_ADDR ws, const MlaDecodeTiling& t) {
        t_ = t;
        D_ = t.latent + t.rope;
        T_ = t.chunk_tokens;
        Gp_ = kernels::RoundUp(t.group_rows, 16);
        group_ = ASCEND_IS_AIC ? uint32_t(GetBlockIdx()) : uint32_t(GetBlockIdx() / GetSubBlockNum());
        qLatBase_ = qLat;
        cacheBase_ = cache;
        qRopeBase_ = qRope;
        outBase_ = out;
        cache_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(cache), uint64_t(t.cache_blocks) * t.block_size * t.row_bytes);
        table_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(table) + uint64_t(t.seq_off) * t.max_blocks,
                               uint64_t(t.batch) * t.max_blocks);
        lens_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(lens) + t.seq_off, t.batch);
        const uint32_t G = t.group_rows, L = t.latent;
        GM_ADDR base = ws + uint64_t(group_) * t.ws_bytes;
        wsS_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(base), G * T_);
        wsP_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(base + G * T_ * 4), 2 * G * T_);  // hi, then lo
        wsO_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(base + G * T_ * 8), G * L);
        if constexpr (kFp8) wsK_.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(base + G * T_ * 8 + G * L * 4), T_ * D_);
        if ASCEND_IS_AIC {
            pipe_.InitBuffer(qL1_, 1, Gp_ * D_ * 2);
            pipe_.InitBuffer(kL1_, 1, T_ * D_ * 2);
            pipe_.InitBuffer(pL1_, 1, 2 * Gp_ * T_ * 2);
            pipe_.InitBuffer(a2_, 2, Gp_ * kCubeTile * 2);
            pipe_.InitBuffer(b2_, 2, kCubeTile * kCubeTile * 2);
            pipe_.InitBuffer(co1_, 2, Gp_ * kCubeTile * 4);
        } else {
            sub_ = uint32_t(GetSubBlockIdx());
            lse_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(lse), t.lse_len);
            pipe_.InitBuffer(acc_, (G + 1) / 2 * L * 4);
            uint32_t scratch = MLA_DECODE_SCRATCH_SOFTMAX(T_);
            scratch = scratch > MLA_DECODE_SCRATCH_ACC(L) ? scratch : MLA_DECODE_SCRATCH_ACC(L);
            if constexpr (kFp8) scratch = scratch > MLA_DECODE_SCRATCH_FP8(L, t.rope) ? scratch : MLA_DECODE_SCRATCH_FP8(L, t.rope);
            pipe_.InitBuffer(scratch_, scratch);
            pipe_.InitBuffer(small_, 64 * 48);
            if constexpr (kFp8) {
                latPitch_ = MLA_DECODE_FP8_PITCH(L);
                pipe_.InitBuffer(lut_, 256 * 4);
                LocalTensor<uint32_t> lut = lut_.Get<uint32_t>();
                for (uint32_t c = 0; c < 256; ++c) lut.SetValue(c, kernels::fp8::E4m3Bits(c, 23, 8, 127));
                SetFlag<HardEvent::S_V>(EVENT_ID0);
                WaitFlag<HardEvent::S_V>(EVENT_ID0);
            }
        }
    }

    __aicore__ inline void Process() {
        const uint32_t items = t_.batch * t_.groups;
        for (uint32_t w = group_; w < items; w += uint32_t(GetBlockNum())) {
            PlanItem(w / t_.groups, w % t_.groups);
            if ASCEND_IS_AIC {
                CubeItem();
            } else {
                VectorItem();
            }
        }
    }

private:
    static __aicore__ inline float kInf() { return kernels::fp8::BitsFloat(0x7F800000u); }

    // Every core of the group computes the same item plan from the lengths.
    __aicore__ inline void PlanItem(uint32_t b, uint32_t g) {
        const uint32_t rowsTotal = t_.s_q * t_.heads;
        it_.b = b;
        it_.r0 = g * t_.group_rows;
        it_.rows = kernels::Min(t_.group_rows, rowsTotal - it_.r0);
        const int32_t lenRaw = lens_.GetValue(b);
        it_.len = lenRaw > 0 ? uint32_t(lenRaw) : 0u;
        it_.maxVis = 0;
        it_.minVis = it_.len;
        for (uint32_t r = 0; r < it_.rows; ++r) {
            const uint32_t i = (it_.r0 + r) / t_.heads;
            int32_t v = int32_t(it_.len);
            if (t_.causal != 0) v = int32_t(it_.len) - int32_t(t_.s_q) + int32_t(i) + 1;
            uint32_t vis = v > 0 ? uint32_t(v) : 0u;
            vis = vis > it_.len ? it_.len : vis;
            it_.vis[r] = vis;
            it_.maxVis = vis > it_.maxVis ? vis : it_.maxVis;
            it_.minVis = vis < it_.minVis ? vis : it_.minVis;
        }
    }

    // The end of the chunk that starts at key t0: at most chunk_tokens keys, and never past a
    // row's causal limit that lies beyond t0 (so every row sees the whole chunk or none of it).
    __aicore__ inline uint32_t ChunkEnd(uint32_t t0) {
        uint32_t end = kernels::Min(t0 + T_, it_.maxVis);
        if (t0 + T_ <= it_.minVis) return end;
        for (uint32_t r = 0; r < it_.rows; ++r)
            if (it_.vis[r] > t0 && it_.vis[r] < end) end = it_.vis[r];
        return end;
    }

    // The cache block id of token t of the item's sequence, or -1 when the entry is out of range
    // (the host checked every used entry; the kernel still never reads outside the cache).
    __aicore__ inline int32_t BlockOf(uint32_t t) {
        const int32_t blk = table_.GetValue(uint64_t(it_.b) * t_.max_blocks + t / t_.block_size);
        return blk >= 0 && uint32_t(blk) < t_.cache_blocks ? blk : -1;
    }

    // The first row of the item that sees key t0 (the rows' limits grow with their query token,
    // so the rows that see a chunk are a suffix of the item).
    __aicore__ inline uint32_t FirstRowSeeing(uint32_t t0) {
        uint32_t r = 0;
        while (r < it_.rows && it_.vis[r] <= t0) ++r;
        return r;
    }

    // ---- AIC -------------------------------------------------------------------------------------
    __aicore__ inline void CubeItem() {
        if (it_.maxVis == 0) return;
        LocalTensor<bfloat16_t> q = qL1_.AllocTensor<bfloat16_t>();
        LoadQueries(q);
        qL1_.EnQue(q);
        q = qL1_.DeQue<bfloat16_t>();
        for (uint32_t t0 = 0, n = 0; t0 < it_.maxVis; t0 += n) {
            n = ChunkEnd(t0) - t0;
            drainFrom_ = FirstRowSeeing(t0) / 16 * 16;
            const uint32_t np = kernels::RoundUp(n, 16);
            LocalTensor<bfloat16_t> k = kL1_.AllocTensor<bfloat16_t>();
            LoadKeys(k, t0, n, np);
            kL1_.EnQue(k);
            k = kL1_.DeQue<bfloat16_t>();
            Scores(q, k, n, np);
            CrossCoreSetFlag<2, PIPE_FIX>(kFlagSReady);
            CrossCoreWaitFlag(kFlagPReady);
            LocalTensor<bfloat16_t> p = pL1_.AllocTensor<bfloat16_t>();
            for (uint32_t part = 0; part < 2; ++part) {
                DataCopy(p[part * Gp_ * np], wsP_[part * t_.group_rows * T_], Nd2Nz(it_.rows, np, T_, Gp_));
                ZeroRowsNz(p[part * Gp_ * np], it_.rows, Gp_ - it_.rows, Gp_, np);
            }
            pL1_.EnQue(p);
            p = pL1_.DeQue<bfloat16_t>();
            Values(p, k, n, np);
            pL1_.FreeTensor(p);
            kL1_.FreeTensor(k);
            CrossCoreSetFlag<2, PIPE_FIX>(kFlagOReady);
        }
        qL1_.FreeTensor(q);
    }

    // Q [Gp, latent + rope] NZ: one row at a time (the rows' strides are arbitrary), then zero
    // padding rows.
    __aicore__ inline void LoadQueries(const LocalTensor<bfloat16_t>& q) {
        GlobalTensor<bfloat16_t> src;
        for (uint32_t r = 0; r < it_.rows; ++r) {
            const uint32_t i = (it_.r0 + r) / t_.heads, h = (it_.r0 + r) % t_.heads;
            const uint64_t tok = uint64_t(it_.b) * t_.s_q + i;
            src.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(qLatBase_) + t_.q_lat_off + tok * t_.q_lat_tok +
                                    uint64_t(h) * t_.q_lat_head,
                                t_.latent);
            DataCopy(q[r * 16], src, Nd2Nz(1, t_.latent, t_.latent, Gp_));
            src.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(qRopeBase_) + t_.q_rope_off + tok * t_.q_rope_tok +
                                    uint64_t(h) * t_.q_rope_head,
                                t_.rope);
            DataCopy(q[(t_.latent / 16) * Gp_ * 16 + r * 16], src, Nd2Nz(1, t_.rope, t_.rope, Gp_));
        }
        ZeroRowsNz(q, it_.rows, Gp_ - it_.rows, Gp_, D_);
    }

    // K [np, latent + rope] NZ: the chunk's rows, block run by block run (bf16: straight from
    // the cache; FP8: the AIVs' decoded chunk from the ring), then zero padding rows.
    __aicore__ inline void LoadKeys(const LocalTensor<bfloat16_t>& k, uint32_t t0, uint32_t n, uint32_t np) {
        if constexpr (kFp8) {
            CrossCoreWaitFlag(kFlagKReady);
            DataCopy(k, wsK_, Nd2Nz(n, D_, D_, np));
        } else {
            GlobalTensor<bfloat16_t> src;
            for (uint32_t j = 0; j < n;) {
                const uint32_t t = t0 + j, run = kernels::Min(n - j, t_.block_size - t % t_.block_size);
                const int32_t blk = BlockOf(t);
                if (blk < 0) {
                    ZeroRowsNz(k, j, run, np, D_);
                } else {
                    const uint64_t slot = uint64_t(uint32_t(blk)) * t_.block_size + t % t_.block_size;
                    src.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(cacheBase_) + slot * D_, uint64_t(run) * D_);
                    DataCopy(k[j * 16], src, Nd2Nz(run, D_, D_, np));
                }
                j += run;
            }
        }
        ZeroRowsNz(k, n, np - n, np, D_);
    }

    // S [rows, n] = Q K^T in f32 to the ring, 128 tokens at a time, K in 128-column steps.
    __aicore__ inline void Scores(const LocalTensor<bfloat16_t>& q, const LocalTensor<bfloat16_t>& k, uint32_t n,
                                  uint32_t np) {
        for (uint32_t j0 = 0; j0 < n; j0 += kCubeTile) {
            const uint32_t nj = kernels::Min(kCubeTile, n - j0), njp = kernels::RoundUp(nj, 16);
            LocalTensor<float> c = co1_.AllocTensor<float>();
            for (uint32_t k0 = 0; k0 < D_; k0 += kCubeTile) {
                const uint32_t kt = kernels::Min(kCubeTile, D_ - k0), kp = kernels::RoundUp(kt, 16);
                LocalTensor<bfloat16_t> a2 = a2_.AllocTensor<bfloat16_t>();
                for (uint32_t mb = 0; mb < Gp_ / 16; ++mb)
                    LoadData(a2[mb * kp * 16], q, Load2D((k0 / 16) * (Gp_ / 16) + mb, kp / 16, Gp_ / 16, false));
                a2_.EnQue(a2);
                // K's NZ tile [tokens, columns] already is zN for K^T: each 16-column band is a run.
                LocalTensor<bfloat16_t> b2 = b2_.AllocTensor<bfloat16_t>();
                for (uint32_t kb = 0; kb < kp / 16; ++kb)
                    LoadData(b2[kb * njp * 16], k, Load2D((k0 / 16 + kb) * (np / 16) + j0 / 16, njp / 16, 1, false));
                b2_.EnQue(b2);
                Multiply(c, nj, kt, k0 == 0);
            }
            Drain(wsS_[j0], c, nj, T_);
        }
    }

    // O_c [rows, latent] = P V in f32 to the ring, 128 value columns at a time, the chunk's
    // tokens in 128-token steps. V is the keys' tile read transposed (its first latent columns).
    __aicore__ inline void Values(const LocalTensor<bfloat16_t>& p, const LocalTensor<bfloat16_t>& k, uint32_t n,
                                  uint32_t np) {
        for (uint32_t v0 = 0; v0 < t_.latent; v0 += kCubeTile) {
            const uint32_t vn = kernels::Min(kCubeTile, t_.latent - v0), vnp = kernels::RoundUp(vn, 16);
            LocalTensor<float> c = co1_.AllocTensor<float>();
            for (uint32_t step = 0; step < 2 * ((n + kCubeTile - 1) / kCubeTile); ++step) {
                // P = P_hi + P_lo (two bf16 terms, exact to 2^-17 relative): each K step twice.
                const uint32_t part = step % 2, j0 = step / 2 * kCubeTile;
                const uint32_t kt = kernels::Min(kCubeTile, n - j0), kp = kernels::RoundUp(kt, 16);
                LocalTensor<bfloat16_t> a2 = a2_.AllocTensor<bfloat16_t>();
                for (uint32_t mb = 0; mb < Gp_ / 16; ++mb)
                    LoadData(a2[mb * kp * 16], p[part * Gp_ * np], Load2D((j0 / 16) * (Gp_ / 16) + mb, kp / 16, Gp_ / 16, false));
                a2_.EnQue(a2);
                // V [tokens, columns] is K-major: each fractal is transposed on the way to zN.
                LocalTensor<bfloat16_t> b2 = b2_.AllocTensor<bfloat16_t>();
                for (uint32_t kb = 0; kb < kp / 16; ++kb)
                    LoadData(b2[kb * vnp * 16], k, Load2D((v0 / 16) * (np / 16) + j0 / 16 + kb, vnp / 16, np / 16, true));
                b2_.EnQue(b2);
                Multiply(c, vn, kt, step == 0);
            }
            Drain(wsO_[v0], c, vn, t_.latent);
        }
    }

    // c (+)= the queued A2 [Gp, k] x B2 [k, n] (init: overwrite), m = Gp_ zero-padded rows: never
    // GEMV mode.
    __aicore__ inline void Multiply(const LocalTensor<float>& c, uint32_t n, uint32_t k, bool init) {
        LocalTensor<bfloat16_t> a2 = a2_.DeQue<bfloat16_t>();
        LocalTensor<bfloat16_t> b2 = b2_.DeQue<bfloat16_t>();
        MmadParams mm;
        mm.m = Gp_;
        mm.n = n;
        mm.k = k;
        mm.cmatrixInitVal = init;
        Mmad(c, a2, b2, mm);
        a2_.FreeTensor(a2);
        b2_.FreeTensor(b2);
    }

    // The item's rows of the f32 tile c (n columns) to the ring at dst, `pitch` floats a row,
    // from the 16-row block of the chunk's first seeing row on (the AIVs read no other row's S or
    // O_c of the chunk); frees c.
    __aicore__ inline void Drain(const GlobalTensor<float>& dst, LocalTensor<float>& c, uint32_t n, uint32_t pitch) {
        co1_.EnQue(c);
        c = co1_.DeQue<float>();
        const uint32_t r0 = drainFrom_;
        Fixpipe<float, float, CFG_ROW_MAJOR>(dst[uint64_t(r0) * pitch], c[r0 * 16],
                                             kernels::FixRows(it_.rows - r0, n, Gp_, pitch, QuantMode_t::NoQuant));
        co1_.FreeTensor(c);
    }

    // ---- AIV -------------------------------------------------------------------------------------
    __aicore__ inline void VectorItem() {
        const uint32_t half = (it_.rows + 1) / 2;
        a0_ = sub_ * half;
        an_ = it_.rows > a0_ ? kernels::Min(half, it_.rows - a0_) : 0u;
        for (uint32_t r = 0; r < an_; ++r) {
            m_[r] = -kInf();
            l_[r] = 0.0f;
        }
        if (an_ > 0) {
            PipeBarrier<PIPE_V>();
            Duplicate(acc_.Get<float>(), 0.0f, int32_t(an_ * t_.latent));
        }
        for (uint32_t t0 = 0, n = 0; t0 < it_.maxVis; t0 += n) {
            n = ChunkEnd(t0) - t0;
            if constexpr (kFp8) {
                DecodeChunk(t0, n);
                CrossCoreSetFlag<2, PIPE_MTE3>(kFlagKReady);
            }
            CrossCoreWaitFlag(kFlagSReady);
            Softmax(t0, n);
            CrossCoreSetFlag<2, PIPE_MTE3>(kFlagPReady);
            CrossCoreWaitFlag(kFlagOReady);
            Accumulate();
        }
        Finish();
    }

    // This AIV's half of the chunk's FP8 rows -> bf16 [latent + rope] rows of the ring.
    __aicore__ inline void DecodeChunk(uint32_t t0, uint32_t n) {
        const uint32_t L = t_.latent, R = t_.rope, tiles = L / kernels::fp8::kBlock, latBytes = L + 4 * tiles;
        const uint32_t nh = (n + 1) / 2, j0 = sub_ * nh, j1 = kernels::Min(n, j0 + nh);
        LocalTensor<uint8_t> s = scratch_.Get<uint8_t>();
        const uint32_t P = kFp8Rows;
        LocalTensor<uint8_t> raw = s;
        LocalTensor<bfloat16_t> rope = s[P * latPitch_].ReinterpretCast<bfloat16_t>();
        const uint32_t ropeBytes = MLA_DECODE_R32(2 * R);
        LocalTensor<half> h = s[P * (latPitch_ + ropeBytes)].ReinterpretCast<half>();
        LocalTensor<int32_t> idx = s[P * (latPitch_ + ropeBytes + 2 * L)].ReinterpretCast<int32_t>();
        LocalTensor<float> deq = s[P * (latPitch_ + ropeBytes + 6 * L)].ReinterpretCast<float>();
        LocalTensor<bfloat16_t> o = s[P * (latPitch_ + ropeBytes + 10 * L)].ReinterpretCast<bfloat16_t>();
        LocalTensor<float> sc = raw.ReinterpretCast<float>();
        for (uint32_t j = j0; j < j1;) {
            const uint32_t t = t0 + j, run = kernels::Min(kernels::Min(P, j1 - j), t_.block_size - t % t_.block_size);
            const int32_t blk = BlockOf(t);
            PipeBarrier<PIPE_ALL>();  // the previous run's reads of the scratch and its copies out are done
            if (blk < 0) {
                // Out of range (the host rejects it): zero keys, never a read outside the cache.
                Duplicate(o.ReinterpretCast<uint16_t>(), uint16_t(0), int32_t(run * L));
                Duplicate(rope.ReinterpretCast<uint16_t>(), uint16_t(0), int32_t(run * R));
            } else {
                const uint64_t at = (uint64_t(uint32_t(blk)) * t_.block_size + t % t_.block_size) * t_.row_bytes;
                DataCopyPad(raw, cache_[at], DataCopyExtParams(uint16_t(run), latBytes, t_.row_bytes - latBytes, 0, 0),
                            DataCopyPadExtParams<uint8_t>(false, 0, 0, 0));
                DataCopyPad(rope.ReinterpretCast<uint8_t>(), cache_[at + latBytes],
                            DataCopyExtParams(uint16_t(run), R * 2, t_.row_bytes - R * 2, 0, 0),
                            DataCopyPadExtParams<uint8_t>(false, 0, 0, 0));
                SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
                WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
                for (uint32_t r = 0; r < run; ++r) Cast(h[r * L], raw[r * latPitch_], RoundMode::CAST_NONE, int32_t(L));
                PipeBarrier<PIPE_V>();
                kernels::fp8::TableOffsets(idx, h, sizeof(float), int32_t(run * L));
                PipeBarrier<PIPE_V>();
                Gather(deq, lut_.Get<float>(), idx.ReinterpretCast<uint32_t>(), 0u, run * L);
                PipeBarrier<PIPE_V>();
                SetFlag<HardEvent::MTE2_S>(EVENT_ID0);
                WaitFlag<HardEvent::MTE2_S>(EVENT_ID0);
                for (uint32_t r = 0; r < run; ++r)
                    for (uint32_t c = 0; c < tiles; ++c) {
                        const float scale = sc.GetValue((r * latPitch_ + L) / 4 + c);
                        LocalTensor<float> v = deq[r * L + c * kernels::fp8::kBlock];
                        Muls(v, v, scale, int32_t(kernels::fp8::kBlock));
                    }
                PipeBarrier<PIPE_V>();
                // code x power-of-two scale is exact in bf16.
                Cast(o, deq, RoundMode::CAST_RINT, int32_t(run * L));
            }
            SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
            DataCopyPad(wsK_[uint64_t(j) * D_], o, DataCopyExtParams(uint16_t(run), L * 2, 0, R * 2, 0));
            DataCopyPad(wsK_[uint64_t(j) * D_ + L], rope, DataCopyExtParams(uint16_t(run), R * 2, 0, L * 2, 0));
            j += run;
        }
        PipeBarrier<PIPE_ALL>();
    }

    // Scores of this AIV's rows -> probabilities P = exp(scale * S - m_new) (bf16, zero past
    // each row's visible keys and past the chunk), with the running max m, sum l and the
    // rescale factors alpha = exp(m_old - m_new).
    __aicore__ inline void Softmax(uint32_t t0, uint32_t n) {
        const uint32_t np = kernels::RoundUp(n, 16), Tp = T_;
        const float scale = kernels::fp8::BitsFloat(t_.scale_bits);
        LocalTensor<float> sm = small_.Get<float>();
        LocalTensor<float> alphaArg = sm;                    // 64 floats
        LocalTensor<float> red = sm[64 * 2];                 // kSoftmaxRows max slots then sum slots
        LocalTensor<float> s = scratch_.Get<float>();
        LocalTensor<bfloat16_t> p = s[kSoftmaxRows * Tp].ReinterpretCast<bfloat16_t>();  // hi rows, then lo rows
        LocalTensor<float> back = s[kSoftmaxRows * Tp * 2];
        LocalTensor<float> work = s[kSoftmaxRows * Tp * 3];
        for (uint32_t q0 = 0; q0 < an_; q0 += kSoftmaxRows) {
            const uint32_t rows = kernels::Min(kSoftmaxRows, an_ - q0);
            PipeBarrier<PIPE_ALL>();  // the previous step's copies out of p are done
            DataCopyPad(s, wsS_[uint64_t(a0_ + q0) * T_],
                        DataCopyExtParams(uint16_t(rows), n * 4, (T_ - n) * 4, (Tp - kernels::RoundUp(n, 8)) / 8, 0),
                        DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
            SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
            WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
            uint32_t nr[kSoftmaxRows];
            for (uint32_t j = 0; j < rows; ++j) {
                const uint32_t v = it_.vis[a0_ + q0 + j];
                nr[j] = v > t0 ? kernels::Min(n, v - t0) : 0u;
                LocalTensor<float> row = s[j * Tp];
                if (nr[j] == 0) continue;
                Muls(row, row, scale, int32_t(nr[j]));
                PipeBarrier<PIPE_V>();
                ReduceMax(red[j * 8], row, work, int32_t(nr[j]));
            }
            SetFlag<HardEvent::V_S>(EVENT_ID0);
            WaitFlag<HardEvent::V_S>(EVENT_ID0);
            float mNew[kSoftmaxRows];
            for (uint32_t j = 0; j < rows; ++j) {
                const uint32_t r = q0 + j;
                mNew[j] = m_[r];
                if (nr[j] > 0) {
                    const float mc = red.GetValue(j * 8);
                    mNew[j] = mc > mNew[j] ? mc : mNew[j];
                }
                alphaArg.SetValue(r, nr[j] > 0 ? m_[r] - mNew[j] : 0.0f);
            }
            SetFlag<HardEvent::S_V>(EVENT_ID0);
            WaitFlag<HardEvent::S_V>(EVENT_ID0);
            for (uint32_t j = 0; j < rows; ++j) {
                LocalTensor<float> row = s[j * Tp];
                if (nr[j] > 0) {
                    Adds(row, row, -mNew[j], int32_t(nr[j]));
                    PipeBarrier<PIPE_V>();
                    Exp(row, row, int32_t(nr[j]));
                    PipeBarrier<PIPE_V>();
                    ReduceSum(red[(kSoftmaxRows + j) * 8], row, work, int32_t(nr[j]));
                }
                // Zero from the next 32-byte boundary on (vector), the few before it below (scalar).
                const uint32_t z = kernels::RoundUp(nr[j], 8);
                if (z < np) Duplicate(row[z], 0.0f, int32_t(np - z));
            }
            SetFlag<HardEvent::V_S>(EVENT_ID0);
            WaitFlag<HardEvent::V_S>(EVENT_ID0);
            for (uint32_t j = 0; j < rows; ++j)
                for (uint32_t c = nr[j]; c < kernels::Min(kernels::RoundUp(nr[j], 8), np); ++c) s.SetValue(j * Tp + c, 0.0f);
            SetFlag<HardEvent::S_V>(EVENT_ID0);
            WaitFlag<HardEvent::S_V>(EVENT_ID0);
            // P = P_hi + P_lo: bf16 of p, then bf16 of what it missed (the cube multiplies bf16 only;
            // one bf16 term alone would cost 2^-9 of each weight).
            LocalTensor<bfloat16_t> lo = p[kSoftmaxRows * Tp];
            for (uint32_t j = 0; j < rows; ++j) Cast(p[j * Tp], s[j * Tp], RoundMode::CAST_RINT, int32_t(np));
            PipeBarrier<PIPE_V>();
            for (uint32_t j = 0; j < rows; ++j) Cast(back[j * Tp], p[j * Tp], RoundMode::CAST_NONE, int32_t(np));
            PipeBarrier<PIPE_V>();
            for (uint32_t j = 0; j < rows; ++j) Sub(back[j * Tp], s[j * Tp], back[j * Tp], int32_t(np));
            PipeBarrier<PIPE_V>();
            for (uint32_t j = 0; j < rows; ++j) Cast(lo[j * Tp], back[j * Tp], RoundMode::CAST_RINT, int32_t(np));
            Exp(alphaArg[q0], alphaArg[q0], int32_t(rows));
            SetFlag<HardEvent::V_S>(EVENT_ID0);
            WaitFlag<HardEvent::V_S>(EVENT_ID0);
            for (uint32_t j = 0; j < rows; ++j) {
                const uint32_t r = q0 + j;
                if (nr[j] == 0) continue;
                l_[r] = l_[r] * alphaArg.GetValue(r) + red.GetValue((kSoftmaxRows + j) * 8);
                m_[r] = mNew[j];
                active_[r] = true;
            }
            for (uint32_t j = 0; j < rows; ++j)
                if (nr[j] == 0) active_[q0 + j] = false;
            SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
            for (uint32_t part = 0; part < 2; ++part)
                DataCopyPad(wsP_[uint64_t(part) * t_.group_rows * T_ + uint64_t(a0_ + q0) * T_], p[part * kSoftmaxRows * Tp],
                            DataCopyExtParams(uint16_t(rows), np * 2, (Tp - np) * 2 / 32, (T_ - np) * 2, 0));
        }
        PipeBarrier<PIPE_ALL>();
    }

    // acc = acc * alpha + O_c for this AIV's rows that saw keys of the chunk.
    __aicore__ inline void Accumulate() {
        const uint32_t L = t_.latent;
        LocalTensor<float> alpha = small_.Get<float>();
        LocalTensor<float> o = scratch_.Get<float>(), acc = acc_.Get<float>();
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        for (uint32_t q0 = 0; q0 < an_; q0 += kAccRows) {
            const uint32_t rows = kernels::Min(kAccRows, an_ - q0);
            bool any = false;
            for (uint32_t j = 0; j < rows; ++j) any = any || active_[q0 + j];
            if (!any) continue;
            PipeBarrier<PIPE_ALL>();
            DataCopyPad(o, wsO_[uint64_t(a0_ + q0) * L], DataCopyExtParams(uint16_t(rows), L * 4, 0, 0, 0),
                        DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
            SetFlag<HardEvent::MTE2_V>(EVENT_ID0);
            WaitFlag<HardEvent::MTE2_V>(EVENT_ID0);
            for (uint32_t j = 0; j < rows; ++j) {
                const uint32_t r = q0 + j;
                if (!active_[r]) continue;
                LocalTensor<float> a = acc[r * L];
                Muls(a, a, alpha.GetValue(r), int32_t(L));
                PipeBarrier<PIPE_V>();
                Add(a, a, o[j * L], int32_t(L));
            }
        }
        PipeBarrier<PIPE_ALL>();
    }

    // out = acc / l (bf16), lse = m + ln l; rows that saw nothing: 0 and +inf.
    __aicore__ inline void Finish() {
        if (an_ == 0) return;
        const uint32_t L = t_.latent;
        LocalTensor<float> sm = small_.Get<float>();
        LocalTensor<float> lnv = sm[64];
        LocalTensor<float> lseSlots = sm[64 * 4];  // one 32-byte slot per row
        // A row that saw keys keeps l even when it is NaN (an Inf among its keys), as the f64
        // reference does; only a row that saw no key gives 0 and +inf.
        for (uint32_t r = 0; r < an_; ++r) lnv.SetValue(r, it_.vis[a0_ + r] > 0 ? l_[r] : 1.0f);
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
        Ln(lnv, lnv, int32_t(an_));
        SetFlag<HardEvent::V_S>(EVENT_ID0);
        WaitFlag<HardEvent::V_S>(EVENT_ID0);
        LocalTensor<float> acc = acc_.Get<float>();
        LocalTensor<bfloat16_t> o = scratch_.Get<bfloat16_t>();
        for (uint32_t r = 0; r < an_; ++r) {
            const uint32_t row = it_.r0 + a0_ + r, i = row / t_.heads, h = row % t_.heads;
            const bool seen = it_.vis[a0_ + r] > 0;
            lseSlots.SetValue(r * 8, seen ? m_[r] + lnv.GetValue(r) : kInf());
            LocalTensor<float> a = acc[r * L];
            SetFlag<HardEvent::S_V>(EVENT_ID0);
            WaitFlag<HardEvent::S_V>(EVENT_ID0);
            if (seen) {
                Muls(a, a, 1.0f / l_[r], int32_t(L));
                PipeBarrier<PIPE_V>();
            }
            Cast(o, a, RoundMode::CAST_RINT, int32_t(L));
            SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
            GlobalTensor<bfloat16_t> dst;
            dst.SetGlobalBuffer(reinterpret_cast<__gm__ bfloat16_t*>(outBase_) + t_.out_off +
                                    (uint64_t(it_.b) * t_.s_q + i) * t_.out_tok + uint64_t(h) * t_.out_head,
                                L);
            DataCopyPad(dst, o, DataCopyExtParams(1, L * 2, 0, 0, 0));
            SetFlag<HardEvent::S_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
            const uint64_t at = t_.lse_off + uint64_t(it_.b) * t_.lse_seq + uint64_t(h) * t_.lse_head + i;
            DataCopyPad(lse_[at], lseSlots[r * 8], DataCopyExtParams(1, 4, 0, 0, 0));
            // o is rewritten by the next row's cast.
            SetFlag<HardEvent::MTE3_V>(EVENT_ID0);
            WaitFlag<HardEvent::MTE3_V>(EVENT_ID0);
        }
        // The next item's loads and scalar writes reuse the scratch and the slots.
        SetFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_MTE2>(EVENT_ID0);
        SetFlag<HardEvent::MTE3_S>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_S>(EVENT_ID0);
    }

    MlaDecodeTiling t_{};
    uint32_t D_ = 0, T_ = 0, Gp_ = 0, group_ = 0, sub_ = 0, latPitch_ = 0;
    uint32_t a0_ = 0, an_ = 0;  // this AIV's first row in the item and its row count
    uint32_t drainFrom_ = 0;    // AIC: the first row of the chunk's tiles written back
    Item it_;
    float m_[kMaxAivRows], l_[kMaxAivRows];
    bool active_[kMaxAivRows];
    GM_ADDR qLatBase_ = nullptr;
    GM_ADDR cacheBase_ = nullptr;
    GM_ADDR qRopeBase_ = nullptr;
    GM_ADDR outBase_ = nullptr;
    TPipe pipe_;
    // AIC
    TQue<QuePosition::A1, 1> qL1_, pL1_;
    TQue<QuePosition::B1, 1> kL1_;
    TQue<QuePosition::A2, 1> a2_;
    TQue<QuePosition::B2, 1> b2_;
    TQue<QuePosition::CO1, 1> co1_;
    // AIV
    TBuf<QuePosition::VECCALC> acc_, scratch_, small_, lut_;
    GlobalTensor<uint8_t> cache_;
    GlobalTensor<int32_t> table_, lens_;
    GlobalTensor<float> lse_, wsS_, wsO_;
    GlobalTensor<bfloat16_t> wsP_, wsK_;
};

template <bool kFp8>
__aicore__ inline void RunDecode(GM_ADDR qLat, GM_ADDR qRope, GM_ADDR cache, GM_ADDR table, GM_ADDR lens, GM_ADDR out,
                                 GM_ADDR lse, GM_ADDR ws, GM_ADDR tiling) {
    MlaDecodeTiling t;
    kernels::LoadTiling(t, tiling);
    MlaDecode<kFp8> k;
    k.Init(qLat, qRope, cache, table, lens, out, lse, ws, t);
    k.Process();
}

}  // namespace

extern "C" __global__ __aicore__ void mla_decode_bf16(GM_ADDR q_lat, GM_ADDR q_rope, GM_ADDR cache, GM_ADDR block_table,
                                                      GM_ADDR seq_lens, GM_ADDR out, GM_ADDR lse, GM_ADDR workspace,
                                                      GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    RunDecode<false>(q_lat, q_rope, cache, block_table, seq_lens, out, lse, workspace, tiling);
}
extern "C" __global__ __aicore__ void mla_decode_fp8(GM_ADDR q_lat, GM_ADDR q_rope, GM_ADDR cache, GM_ADDR block_table,
                                                     GM_ADDR seq_lens, GM_ADDR out, GM_ADDR lse, GM_ADDR workspace,
                                                     GM_ADDR tiling) {
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    RunDecode<true>(q_lat, q_rope, cache, block_table, seq_lens, out, lse, workspace, tiling);
}
