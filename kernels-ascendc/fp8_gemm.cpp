// FP8-emulated block-scaled GEMM for 910B/910C (no FP8 in the cube or the vector unit), DeepGEMM
// "NT" layout with DeepSeek block scaling (tiling/fp8_gemm_tiling.h):
//
//   C[m, n] = sum_kb ( sum_{k in kb} A[m, k] * B[n, k] ) * sa[m, kb] * sb[n / 128, kb]
//
// B is E4M3FN codes [N, K] (1 byte per weight from GM) with 128x128 block scales sb (f32
// multipliers, `weight_scale_inv`). W8A16: A is bf16, sa = 1. W8A8: A is E4M3FN codes with
// per-token 1x128 scales sa. Plain, contiguous-grouped and masked-grouped (MoE) variants.
//
// Design: MIX 1:2 kernel, one output tile (base_m x base_n, base_n = 128 = one B scale block wide,
// or 64 / 32 for decode-sized M, see TileWidth) per group at a time, walked in 128-long K blocks
// ("steps"). Per step:
//   AIV s (s = 0, 1): DMA its base_n / 2 rows of the B block as bytes (GM -> UB), decode them exactly to
//       16-bit floats with a 256-entry table (Cast u8 -> half, x2 in half, Cast -> int32 byte offsets,
//       Gather; fp8_common.h TableOffsets)
//       and write them to the group's GM workspace ring (UB -> GM); W8A8 also decodes its half of
//       the A rows. CrossCoreSetFlag<2, PIPE_MTE3>(B_READY).
//   AIC: CrossCoreWaitFlag(B_READY) (both AIVs); GM -> L1 (Nd2Nz) for A (bf16 straight from A for
//       W8A16, decoded fp16 from the workspace for W8A8) and decoded B; LoadData -> L0A/L0B; Mmad
//       into a fresh L0C tile (cmatrixInitVal = true: the block's partial alone, fp32); Fixpipe
//       the fp32 partial to the workspace ring; CrossCoreSetFlag<2, PIPE_FIX>(P_READY).
//   AIV s: CrossCoreWaitFlag(P_READY); DMA its 64 columns of the partial, scale in fp32
//       ((P * sa[m, kb]) * sb[nb, kb], kernel.py's order) and add into an fp32 UB accumulator; on
//       the last K block cast (bf16: CAST_RINT) and write its part of the C tile.
// The AIVs decode step t + 1 before consuming step t, so decode overlaps the cube. The ring has
// 2 slots; program order makes the reuse safe without more flags: the AIVs write slot t % 2 for
// step t only after consuming the partial of step t - 2, which the AIC produced after reading
// slot t % 2 of step t - 2, and the AIC writes partial slot t % 2 only after B_READY of step t,
// which the AIVs set after consuming the partial of step t - 2. At most 2 sets are ever pending.
//
// Why this split: 910B's cube reads only L1/L0 and AIC and AIV share no local memory, so decoded
// operands and fp32 partials can only cross through GM (L2); scaling per K block is required for
// the fp32 scale application, and Fixpipe has no fp32 multiply by a per-block scalar. Exactness:
// every E4M3 value is exact in fp16 and in bf16 (3 mantissa bits, exponents 2^-9 .. 2^8), so the
// decoded operands are exact, their products are exact in fp32, and the only roundings are the
// fp32 sums, the two fp32 scale multiplications and the final bf16 rounding.
//
// Folded scales (tiling fold_scales = 1, W8A16 only; the host sets it when every weight scale is a
// power of two, e.g. UE8M0, whose products with E4M3 values stay normal bf16): the AIVs decode
// through a table already multiplied by the block's scale, so every decoded weight is exactly
// w * sb in bf16 and the cube accumulates all of K in one L0C tile (cmatrixInitVal only on the
// first K block) and Fixpipes the tile straight to C. No fp32 partials cross GM and the AIVs do no
// accumulation: per step the AIC reads the ring slot and sets B_FREE (PIPE_MTE2); an AIV writes
// slot t % 2 for step t >= 2 only after waiting B_FREE of step t - 2, and waits the last two at
// the end. The sums then run over all of K in fp32 of exact products, instead of per-block
// partials scaled afterwards: no less accurate than kernel.py's order.
//
// NaN codes (0x7F, 0xFF) decode to NaN and propagate to every output they touch; a zero scale
// gives exact zeros (unless the partial is NaN/Inf).
#include "kernel_operator.h"
#include "common/kernel_common.h"
#include "common/fp8_common.h"
#include "common/kernel_status.h"
#include "tiling/fp8_gemm_tiling.h"

using namespace AscendC;

namespace {

constexpr uint32_t kBlk = FP8_GEMM_BLOCK;  // K block, B scale block, widest output tile
constexpr uint32_t kHalfRows = kBlk / 2;   // most B rows / C columns per AIV (buffer sizes)

// Output tile width: the tiling's base_n (32, 64 or 128: a divisor of the scale block, so a tile
// never straddles two), 0 read as 128. Narrow tiles spread a decode-sized M over every core.
__aicore__ inline uint32_t TileWidth(const Fp8GemmTiling& t) { return t.base_n == 0 ? kBlk : t.base_n; }
constexpr uint16_t kFlagBReady = 0;
constexpr uint16_t kFlagPReady = 1;
constexpr uint16_t kFlagBFree = 2;  // folded scales only

enum class Layout { Plain, Contig, Masked };

struct Tile {
    uint32_t g, m0, mt, n0, nt;
    uint64_t rowBase;  // row of A / C (and sa) where group g starts
};

// Walks the output tiles of one Mix group: tiles are numbered group by group (M tile-major, then
// N) and tile t belongs to group t % blockNum. Every core of a group walks the same sequence.
class TileWalker {
public:
    __aicore__ inline void Init(Layout layout, const Fp8GemmTiling& t, const GlobalTensor<int32_t>& info,
                                uint32_t block, uint32_t blocks) {
        layout_ = layout;
        t_ = t;
        info_ = info;
        block_ = block;
        blocks_ = blocks;
        width_ = TileWidth(t);
        tilesN_ = (t.n + width_ - 1) / width_;
        g_ = 0;
        lt_ = 0;
        base_ = 0;
        LoadGroup();
    }
    __aicore__ inline bool Next(Tile& out) {
        while (g_ < t_.groups) {
            const uint64_t count = uint64_t(tilesM_) * tilesN_;
            lt_ += (block_ + blocks_ - uint32_t((base_ + lt_) % blocks_)) % blocks_;
            if (lt_ < count) {
                const uint32_t mi = uint32_t(lt_ / tilesN_), ni = uint32_t(lt_ % tilesN_);
                out.g = g_;
                out.rowBase = rowBase_;
                out.m0 = mi * t_.base_m;
                out.mt = kernels::Min(t_.base_m, rows_ - out.m0);
                out.n0 = ni * width_;
                out.nt = kernels::Min(width_, t_.n - out.n0);
                ++lt_;
                return true;
            }
            base_ += count;
            ++g_;
            lt_ = 0;
            LoadGroup();
        }
        return false;
    }

private:
    __aicore__ inline void LoadGroup() {
        if (g_ >= t_.groups) return;
        if (layout_ == Layout::Plain) {
            rowBase_ = 0;
            rows_ = t_.m;
        } else if (layout_ == Layout::Contig) {
            // Inclusive cumulative sums (aclnnMoeInitRoutingV2's layout) leave out the leading 0.
            const bool inclusive = t_.offsets_inclusive != 0;
            const int32_t o0 = inclusive ? (g_ == 0 ? 0 : info_.GetValue(g_ - 1)) : info_.GetValue(g_);
            const int32_t o1 = info_.GetValue(inclusive ? g_ : g_ + 1);
            // Clamped to [0, m] like the masked counts, so even offsets that escaped the check
            // in Init cannot address rows outside A and C.
            const uint32_t b = o0 <= 0 ? 0u : kernels::Min(uint32_t(o0), t_.m);
            const uint32_t e = o1 <= 0 ? 0u : kernels::Min(uint32_t(o1), t_.m);
            rowBase_ = b;
            rows_ = e > b ? e - b : 0u;
        } else {
            const int32_t c = info_.GetValue(g_);
            rowBase_ = uint64_t(g_) * t_.m;
            rows_ = c <= 0 ? 0u : kernels::Min(uint32_t(c), t_.m);
        }
        tilesM_ = (rows_ + t_.base_m - 1) / t_.base_m;
    }

    Layout layout_ = Layout::Plain;
    Fp8GemmTiling t_;
    GlobalTensor<int32_t> info_;
    uint32_t block_ = 0, blocks_ = 1, width_ = kBlk, tilesN_ = 0, g_ = 0, tilesM_ = 0, rows_ = 0;
    uint64_t lt_ = 0, base_ = 0, rowBase_ = 0;
};

// (tile, K block) steps of one group, with a running step index (the ring slot is index % 2).
struct StepCursor {
    TileWalker walker;
    Tile tile;
    uint32_t kb = 0, kbs = 0, index = 0;
    bool valid = false;
    __aicore__ inline void Init(Layout layout, const Fp8GemmTiling& t, const GlobalTensor<int32_t>& info,
                                uint32_t block, uint32_t blocks) {
        walker.Init(layout, t, info, block, blocks);
        kbs = (t.k + kBlk - 1) / kBlk;
        kb = 0;
        index = 0;
        valid = walker.Next(tile);
    }
    __aicore__ inline void Advance() {
        ++index;
        if (++kb < kbs) return;
        kb = 0;
        valid = walker.Next(tile);
    }
};

using kernels::Load2D;
using kernels::Nd2Nz;

// In: the 16-bit type the cube multiplies (bf16 for W8A16, matching A; fp16 for W8A8).
template <typename In, typename Out, bool W8A8>
class Fp8GemmKernel {
public:
    __aicore__ inline void Init(Layout L, GM_ADDR a, GM_ADDR aScale, GM_ADDR b, GM_ADDR bScale, GM_ADDR info,
                                GM_ADDR c, GM_ADDR status, GM_ADDR ws, const Fp8GemmTiling& t) {
        t_ = t;
        fold_ = !W8A8 && t.fold_scales != 0;
        kbs_ = (t.k + kBlk - 1) / kBlk;
        nbs_ = (t.n + kBlk - 1) / kBlk;
        const uint64_t rowsTotal = L == Layout::Masked ? uint64_t(t.groups) * t.m : uint64_t(t.m);
        if (L != Layout::Plain)
            info_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(info),
                                  L == Layout::Contig && t.offsets_inclusive == 0 ? t.groups + 1 : t.groups);
        const uint32_t group = ASCEND_IS_AIC ? uint32_t(GetBlockIdx()) : uint32_t(GetBlockIdx() / GetSubBlockNum());
        const uint32_t groups = uint32_t(GetBlockNum());
        if (L == Layout::Contig && !OffsetsValid(status)) return;  // every core agrees: no work
        cursorA_.Init(L, t, info_, group, groups);
        if (!cursorA_.valid) return;  // nothing for this group: touch no buffer
        cursorB_ = cursorA_;
        // Each ring is declared only as large as this launch uses it: slots of TileWidth rows, no
        // A ring without W8A8, no partial ring with folded scales. What a launch declares is its
        // global-memory footprint, which the simulator's cost model reads from HBM once; unused
        // ring space would count bytes no core moves (2.2 MB over 24 groups, 1.4 µs at M = 1).
        GM_ADDR wsBase = ws + uint64_t(group) * FP8_GEMM_WS_BYTES_PER_BLOCK(t.base_m);
        bSlot_ = TileWidth(t) * kBlk;
        wsB_.SetGlobalBuffer(reinterpret_cast<__gm__ In*>(wsBase), 2 * bSlot_);
        if constexpr (W8A8)
            wsA_.SetGlobalBuffer(reinterpret_cast<__gm__ In*>(wsBase + 4 * kBlk * kBlk), 2 * t.base_m * kBlk);
        if (!fold_)
            wsP_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(wsBase + 4 * kBlk * kBlk + 4 * t.base_m * kBlk),
                                 2 * t.base_m * kBlk);
        if ASCEND_IS_AIC {
            if constexpr (!W8A8) aBf16_.SetGlobalBuffer(reinterpret_cast<__gm__ In*>(a), rowsTotal * t.k);
            if (fold_) c_.SetGlobalBuffer(reinterpret_cast<__gm__ Out*>(c), rowsTotal * t.n);
            pipe_.InitBuffer(a1_, 2, t.base_m * kBlk * sizeof(In));
            pipe_.InitBuffer(b1_, 2, kBlk * kBlk * sizeof(In));
            pipe_.InitBuffer(a2_, 2, t.base_m * kBlk * sizeof(In));
            pipe_.InitBuffer(b2_, 2, kBlk * kBlk * sizeof(In));
            pipe_.InitBuffer(co1_, fold_ ? 1 : 2, t.base_m * kBlk * sizeof(float));
        } else {
            sub_ = uint32_t(GetSubBlockIdx());
            if constexpr (W8A8) {
                aCodes_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(a), rowsTotal * t.k);
                aScale_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(aScale), rowsTotal * kbs_);
            }
            bCodes_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(b), uint64_t(t.groups) * t.n * t.k);
            bScale_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(bScale), uint64_t(t.groups) * nbs_ * kbs_);
            c_.SetGlobalBuffer(reinterpret_cast<__gm__ Out*>(c), rowsTotal * t.n);
            const uint32_t decodeRows = kHalfRows;  // B: 64 rows per AIV; A (W8A8): ceil(base_m / 2) <= 64
            pipe_.InitBuffer(codeQ_, 2, decodeRows * kBlk);
            pipe_.InitBuffer(decQ_, 2, decodeRows * kBlk * sizeof(In));
            pipe_.InitBuffer(halfBuf_, decodeRows * kBlk * sizeof(half));
            pipe_.InitBuffer(idxBuf_, decodeRows * kBlk * sizeof(int32_t));
            pipe_.InitBuffer(table_, 256 * sizeof(In));
            if (fold_) {
                pipe_.InitBuffer(tableF32_, 256 * sizeof(float));
                pipe_.InitBuffer(scaledF32_, 256 * sizeof(float));
            } else {
                pipe_.InitBuffer(partQ_, 1, t.base_m * kHalfRows * sizeof(float));
                pipe_.InitBuffer(acc_, t.base_m * kHalfRows * sizeof(float));
                if constexpr (!std::is_same<Out, float>::value)
                    pipe_.InitBuffer(outBuf_, t.base_m * kHalfRows * sizeof(Out));
            }
            pipe_.InitBuffer(sbBuf_, kernels::RoundUp(kbs_ * 4, 32));
            if constexpr (W8A8) pipe_.InitBuffer(saBuf_, t.base_m * 32);
            BuildTable();
        }
    }

    __aicore__ inline void Process() {
        if (!cursorA_.valid) return;
        if ASCEND_IS_AIC {
            for (StepCursor& s = cursorA_; s.valid; s.Advance()) CubeStep(s);
        } else if (fold_) {
            // Decode only; the cube accumulates. Slot t % 2 is free once the AIC read step t - 2.
            uint32_t steps = 0;
            for (StepCursor& s = cursorA_; s.valid; s.Advance(), ++steps) {
                if (steps >= 2) CrossCoreWaitFlag(kFlagBFree);
                Produce(s);
            }
            for (uint32_t left = steps < 2 ? steps : 2; left > 0; --left) CrossCoreWaitFlag(kFlagBFree);
        } else {
            // Decode one step ahead of the consumption of partials.
            StepCursor& prod = cursorA_;
            StepCursor& cons = cursorB_;
            Produce(prod);
            prod.Advance();
            while (cons.valid) {
                if (prod.valid) {
                    Produce(prod);
                    prod.Advance();
                }
                Consume(cons);
                cons.Advance();
            }
        }
    }

private:
    static constexpr uint32_t kMant = std::is_same<In, half>::value ? 10u : 7u;
    static constexpr int32_t kBias = std::is_same<In, half>::value ? 15 : 127;

    __aicore__ inline uint32_t Kt(uint32_t kb) const { return kernels::Min(kBlk, t_.k - kb * kBlk); }
    // Row pitch of decoded K blocks in the workspace: the code rows land in UB at 32-byte slots.
    __aicore__ inline uint32_t WsPitch(uint32_t kb) const { return kernels::RoundUp(Kt(kb), 32); }

    // Offsets must be >= 0, non-decreasing and <= m. Every core checks them (they are read per
    // group anyway) so all skip the launch together; the first AIV reports the first bad one.
    __aicore__ inline bool OffsetsValid(GM_ADDR status) {
        const uint32_t count = t_.offsets_inclusive != 0 ? t_.groups : t_.groups + 1;
        int32_t prev = 0;
        for (uint32_t i = 0; i < count; ++i) {
            const int32_t o = info_.GetValue(i);
            if (o < prev || uint32_t(o) > t_.m) {
                if (ASCEND_IS_AIV && GetBlockIdx() == 0) {
                    pipe_.InitBuffer(statusBuf_, KERNEL_STATUS_SLOT_WORDS * 4);
                    kernels::WriteStatus(status, statusBuf_.template Get<uint32_t>(), KERNEL_STATUS_BAD_GROUP_OFFSETS, i,
                                         uint32_t(o), t_.m);
                }
                return false;
            }
            prev = o;
        }
        return true;
    }

    // ---- AIC ---------------------------------------------------------------------------------
    __aicore__ inline void CubeStep(const StepCursor& s) {
        const Tile& tl = s.tile;
        const uint32_t slot = s.index % 2, kt = Kt(s.kb), pitch = WsPitch(s.kb);
        const uint32_t mp = kernels::RoundUp(tl.mt, 16), np = kernels::RoundUp(tl.nt, 16), kp = kernels::RoundUp(kt, 16);
        CrossCoreWaitFlag(kFlagBReady);

        LocalTensor<In> a1 = a1_.template AllocTensor<In>();
        if constexpr (W8A8)
            DataCopy(a1, wsA_[slot * t_.base_m * kBlk], Nd2Nz(tl.mt, kt, pitch, mp));
        else
            DataCopy(a1, aBf16_[(tl.rowBase + tl.m0) * t_.k + uint64_t(s.kb) * kBlk], Nd2Nz(tl.mt, kt, t_.k, mp));
        kernels::ZeroPadRowsNz(a1, tl.mt, mp, kt);  // Mmad over mp rows: never GEMV mode (m = 1)
        a1_.EnQue(a1);
        LocalTensor<In> b1 = b1_.template AllocTensor<In>();
        DataCopy(b1, wsB_[slot * bSlot_], Nd2Nz(tl.nt, kt, pitch, np));
        b1_.EnQue(b1);
        if (fold_) CrossCoreSetFlag<2, PIPE_MTE2>(kFlagBFree);  // the slot is read

        a1 = a1_.template DeQue<In>();
        LocalTensor<In> a2 = a2_.template AllocTensor<In>();
        for (uint32_t mb = 0; mb < mp / 16; ++mb) LoadData(a2[mb * kp * 16], a1, Load2D(mb, kp / 16, mp / 16, false));
        a1_.FreeTensor(a1);
        a2_.EnQue(a2);
        b1 = b1_.template DeQue<In>();
        LocalTensor<In> b2 = b2_.template AllocTensor<In>();
        for (uint32_t kb16 = 0; kb16 < kp / 16; ++kb16)
            LoadData(b2[kb16 * np * 16], b1, Load2D(kb16 * (np / 16), np / 16, 1, false));
        b1_.FreeTensor(b1);
        b2_.EnQue(b2);

        a2 = a2_.template DeQue<In>();
        b2 = b2_.template DeQue<In>();
        if (fold_) {
            // One L0C tile accumulates all K blocks; it goes to C after the last.
            if (s.kb == 0) acc1_ = co1_.template AllocTensor<float>();
            MmadParams mm;
            mm.m = mp;
            mm.n = tl.nt;
            mm.k = kt;
            mm.cmatrixInitVal = s.kb == 0;
            Mmad(acc1_, a2, b2, mm);
            a2_.FreeTensor(a2);
            b2_.FreeTensor(b2);
            if (s.kb + 1 == kbs_) FixpipeOut(tl);
            return;
        }
        LocalTensor<float> c = co1_.template AllocTensor<float>();
        MmadParams mm;
        mm.m = mp;
        mm.n = tl.nt;
        mm.k = kt;
        mm.cmatrixInitVal = true;  // this K block's partial alone
        Mmad(c, a2, b2, mm);
        a2_.FreeTensor(a2);
        b2_.FreeTensor(b2);
        co1_.EnQue(c);
        c = co1_.template DeQue<float>();
        FixpipeParamsV220 fp;
        fp.nSize = tl.nt;
        fp.mSize = tl.mt;
        fp.srcStride = mp;
        fp.dstStride = kBlk;
        fp.quantPre = QuantMode_t::NoQuant;
        Fixpipe<float, float, CFG_ROW_MAJOR>(wsP_[slot * t_.base_m * kBlk], c, fp);
        co1_.FreeTensor(c);
        CrossCoreSetFlag<2, PIPE_FIX>(kFlagPReady);
    }

    __aicore__ inline void FixpipeOut(const Tile& tl) {
        co1_.EnQue(acc1_);
        LocalTensor<float> c = co1_.template DeQue<float>();
        FixpipeParamsV220 fp;
        fp.nSize = tl.nt;
        fp.mSize = tl.mt;
        fp.srcStride = kernels::RoundUp(tl.mt, 16);
        fp.dstStride = t_.n;
        fp.quantPre = std::is_same<Out, float>::value ? QuantMode_t::NoQuant : QuantMode_t::F322BF16;
        Fixpipe<Out, float, CFG_ROW_MAJOR>(c_[(tl.rowBase + tl.m0) * t_.n + tl.n0], c, fp);
        co1_.FreeTensor(c);
    }

    // ---- AIV: decode ---------------------------------------------------------------------------
    __aicore__ inline void BuildTable() {
        LocalTensor<uint16_t> tb = table_.template Get<uint16_t>();
        for (uint32_t code = 0; code < 256; ++code)
            tb.SetValue(code, uint16_t(kernels::fp8::E4m3Bits(code, kMant, 15u - kMant, kBias)));
        if (fold_) {
            // The exact E4M3 values as fp32 (bf16 bits widened), scaled per K block in ScaleTable.
            LocalTensor<uint32_t> tf = tableF32_.template Get<uint32_t>();
            for (uint32_t code = 0; code < 256; ++code)
                tf.SetValue(code, uint32_t(kernels::fp8::E4m3Bits(code, 7u, 8u, 127)) << 16);
        }
        SetFlag<HardEvent::S_V>(EVENT_ID0);
        WaitFlag<HardEvent::S_V>(EVENT_ID0);
    }

    // rows x kt codes (row pitch srcPitch bytes in GM) -> rows x pitch 16-bit values in the workspace.
    __aicore__ inline void DecodeRows(const GlobalTensor<uint8_t>& src, uint32_t rows, uint32_t kt, uint32_t srcPitch,
                                      uint32_t pitch, const GlobalTensor<In>& dst) {
        DecodeRows(src, rows, kt, srcPitch, pitch, dst, table_.template Get<In>());
    }
    __aicore__ inline void DecodeRows(const GlobalTensor<uint8_t>& src, uint32_t rows, uint32_t kt, uint32_t srcPitch,
                                      uint32_t pitch, const GlobalTensor<In>& dst, const LocalTensor<In>& table) {
        LocalTensor<uint8_t> codes = codeQ_.template AllocTensor<uint8_t>();
        // Each row lands at a 32-byte slot of `pitch` bytes; the tail of the slot repeats the row's
        // first code (defined, decoded harmlessly, never read by the cube).
        DataCopyPad(codes, src, DataCopyExtParams(uint16_t(rows), kt, srcPitch - kt, 0, 0),
                    DataCopyPadExtParams<uint8_t>(false, 0, 0, 0));
        codeQ_.EnQue(codes);
        codes = codeQ_.template DeQue<uint8_t>();
        const int32_t n = int32_t(rows * pitch);
        LocalTensor<half> h = halfBuf_.template Get<half>();
        LocalTensor<int32_t> idx = idxBuf_.template Get<int32_t>();
        Cast(h, codes, RoundMode::CAST_NONE, n);  // 0..255, exact
        PipeBarrier<PIPE_V>();
        codeQ_.FreeTensor(codes);
        kernels::fp8::TableOffsets(idx, h, sizeof(In), n);
        PipeBarrier<PIPE_V>();
        LocalTensor<In> out = decQ_.template AllocTensor<In>();
        Gather(out, table, idx.template ReinterpretCast<uint32_t>(), 0u, uint32_t(n));
        decQ_.EnQue(out);
        out = decQ_.template DeQue<In>();
        DataCopy(dst, out, uint32_t(n));
        decQ_.FreeTensor(out);
    }

    __aicore__ inline void Produce(const StepCursor& s) {
        const Tile& tl = s.tile;
        const uint32_t slot = s.index % 2, kt = Kt(s.kb), pitch = WsPitch(s.kb);
        const uint64_t k0 = uint64_t(s.kb) * kBlk;
        const uint32_t share = TileWidth(t_) / 2, r0 = sub_ * share;
        if (tl.nt > r0) {
            const uint32_t rows = kernels::Min(share, tl.nt - r0);
            const uint64_t src = (uint64_t(tl.g) * t_.n + tl.n0 + r0) * t_.k + k0;
            if (fold_)
                DecodeRows(bCodes_[src], rows, kt, t_.k, pitch, wsB_[slot * bSlot_ + r0 * pitch], ScaleTable(s));
            else
                DecodeRows(bCodes_[src], rows, kt, t_.k, pitch, wsB_[slot * bSlot_ + r0 * pitch]);
        }
        if constexpr (W8A8) {
            const uint32_t aHalf = (tl.mt + 1) / 2, a0 = sub_ * aHalf;
            if (tl.mt > a0) {
                const uint32_t rows = kernels::Min(aHalf, tl.mt - a0);
                const uint64_t src = (tl.rowBase + tl.m0 + a0) * t_.k + k0;
                DecodeRows(aCodes_[src], rows, kt, t_.k, pitch, wsA_[slot * t_.base_m * kBlk + a0 * pitch]);
            }
        }
        CrossCoreSetFlag<2, PIPE_MTE3>(kFlagBReady);
    }

    // The decode table of this step's B block times its scale: exact in bf16 (host-checked powers
    // of two), so the decoded weight is w * sb.
    __aicore__ inline LocalTensor<In> ScaleTable(const StepCursor& s) {
        const Tile& tl = s.tile;
        if (s.kb == 0) {
            const uint64_t row = (uint64_t(tl.g) * nbs_ + tl.n0 / kBlk) * kbs_;
            PipeBarrier<PIPE_V>();  // the previous tile's table build has read nothing from sbBuf_ late
            DataCopyPad(sbBuf_.template Get<float>(), bScale_[row], DataCopyExtParams(1, kbs_ * 4, 0, 0, 0),
                        DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
            SetFlag<HardEvent::MTE2_S>(EVENT_ID0);
            WaitFlag<HardEvent::MTE2_S>(EVENT_ID0);
        }
        const float sb = sbBuf_.template Get<float>().GetValue(s.kb);
        LocalTensor<float> scaled = scaledF32_.template Get<float>();
        LocalTensor<In> table = table_.template Get<In>();
        Muls(scaled, tableF32_.template Get<float>(), sb, 256);
        PipeBarrier<PIPE_V>();
        Cast(table, scaled, RoundMode::CAST_RINT, 256);
        PipeBarrier<PIPE_V>();
        return table;
    }

    // ---- AIV: scale and accumulate ---------------------------------------------------------------
    __aicore__ inline void Consume(const StepCursor& s) {
        const Tile& tl = s.tile;
        CrossCoreWaitFlag(kFlagPReady);
        const uint32_t share = TileWidth(t_) / 2, c0 = sub_ * share;
        if (tl.nt <= c0) return;
        const uint32_t cols = kernels::Min(share, tl.nt - c0), pitch = kernels::RoundUp(cols, 8);
        const int32_t n = int32_t(tl.mt * pitch);
        const uint32_t slot = s.index % 2;
        if (s.kb == 0) {
            const uint64_t row = (uint64_t(tl.g) * nbs_ + tl.n0 / kBlk) * kbs_;
            DataCopyPad(sbBuf_.template Get<float>(), bScale_[row], DataCopyExtParams(1, kbs_ * 4, 0, 0, 0),
                        DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
        }
        LocalTensor<float> part = partQ_.template AllocTensor<float>();
        DataCopyPad(part, wsP_[slot * t_.base_m * kBlk + c0],
                    DataCopyExtParams(uint16_t(tl.mt), cols * 4, (kBlk - cols) * 4, 0, 0),
                    DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
        if constexpr (W8A8) {
            DataCopyPad(saBuf_.template Get<float>(), aScale_[(tl.rowBase + tl.m0) * kbs_ + s.kb],
                        DataCopyExtParams(uint16_t(tl.mt), 4, (kbs_ - 1) * 4, 0, 0),
                        DataCopyPadExtParams<float>(false, 0, 0, 0.0f));
        }
        SetFlag<HardEvent::MTE2_S>(EVENT_ID0);
        WaitFlag<HardEvent::MTE2_S>(EVENT_ID0);
        const float sb = sbBuf_.template Get<float>().GetValue(s.kb);
        partQ_.EnQue(part);
        part = partQ_.template DeQue<float>();
        if constexpr (W8A8) {
            LocalTensor<float> sa = saBuf_.template Get<float>();
            for (uint32_t r = 0; r < tl.mt; ++r) Muls(part[r * pitch], part[r * pitch], sa.GetValue(r * 8), int32_t(pitch));
            PipeBarrier<PIPE_V>();
        }
        LocalTensor<float> acc = acc_.template Get<float>();
        if (s.kb == 0) {
            Muls(acc, part, sb, n);
        } else {
            Muls(part, part, sb, n);
            PipeBarrier<PIPE_V>();
            Add(acc, acc, part, n);
        }
        partQ_.FreeTensor(part);
        if (s.kb + 1 == kbs_) WriteOut(tl, c0, cols, pitch);
    }

    __aicore__ inline void WriteOut(const Tile& tl, uint32_t c0, uint32_t cols, uint32_t pitch) {
        LocalTensor<float> acc = acc_.template Get<float>();
        const uint64_t dst = (tl.rowBase + tl.m0) * t_.n + tl.n0 + c0;
        PipeBarrier<PIPE_V>();
        if constexpr (std::is_same<Out, float>::value) {
            SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
            DataCopyPad(c_[dst], acc, DataCopyExtParams(uint16_t(tl.mt), cols * 4, 0, (t_.n - cols) * 4, 0));
        } else {
            // bf16 rows must start at 32-byte UB slots: pitch rounded to 16 elements.
            LocalTensor<Out> o = outBuf_.template Get<Out>();
            const uint32_t opitch = kernels::RoundUp(cols, 16);
            if (opitch == pitch) {
                Cast(o, acc, RoundMode::CAST_RINT, int32_t(tl.mt * pitch));
            } else {
                for (uint32_t r = 0; r < tl.mt; ++r) Cast(o[r * opitch], acc[r * pitch], RoundMode::CAST_RINT, int32_t(pitch));
            }
            SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
            WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
            DataCopyPad(c_[dst], o, DataCopyExtParams(uint16_t(tl.mt), cols * sizeof(Out), 0, (t_.n - cols) * sizeof(Out), 0));
        }
        // The next tile overwrites acc / the cast buffer: wait for the copy out.
        SetFlag<HardEvent::MTE3_V>(EVENT_ID0);
        WaitFlag<HardEvent::MTE3_V>(EVENT_ID0);
    }

    TPipe pipe_;
    // AIC
    TQue<QuePosition::A1, 1> a1_;
    TQue<QuePosition::B1, 1> b1_;
    TQue<QuePosition::A2, 1> a2_;
    TQue<QuePosition::B2, 1> b2_;
    TQue<QuePosition::CO1, 1> co1_;
    // AIV
    TQue<QuePosition::VECIN, 1> codeQ_, partQ_;
    TQue<QuePosition::VECOUT, 1> decQ_;
    TBuf<QuePosition::VECCALC> halfBuf_, idxBuf_, table_, acc_, outBuf_, sbBuf_, saBuf_, statusBuf_, tableF32_, scaledF32_;

    GlobalTensor<In> aBf16_, wsB_, wsA_;
    GlobalTensor<uint8_t> aCodes_, bCodes_;
    GlobalTensor<float> aScale_, bScale_, wsP_;
    GlobalTensor<Out> c_;
    GlobalTensor<int32_t> info_;
    StepCursor cursorA_, cursorB_;
    LocalTensor<float> acc1_;  // folded scales: the L0C tile accumulating a whole K
    Fp8GemmTiling t_;
    uint32_t kbs_ = 0, nbs_ = 0, sub_ = 0, bSlot_ = 0;  // bSlot_: elements of one B ring slot
    bool fold_ = false;
};

template <typename In, typename Out, bool W8A8>
__aicore__ inline void RunFp8Gemm(Layout layout, GM_ADDR a, GM_ADDR aScale, GM_ADDR b, GM_ADDR bScale, GM_ADDR info, GM_ADDR c,
                                  GM_ADDR status, GM_ADDR ws, GM_ADDR tiling) {
    Fp8GemmTiling t;
    kernels::LoadTiling(t, tiling);
    Fp8GemmKernel<In, Out, W8A8> k;
    k.Init(layout, a, aScale, b, bScale, info, c, status, ws, t);
    k.Process();
}

}  // namespace

// The contiguous kernels take a status slot after C (kernel_status.h) for offsets they reject.
#define FP8_GEMM_ENTRY_W8A16(NAME, OUT, LAYOUT, INFO_PARAM, INFO_ARG, STATUS_PARAM, STATUS_ARG)                    \
    extern "C" __global__ __aicore__ void NAME(GM_ADDR a, GM_ADDR b, GM_ADDR b_scale INFO_PARAM,                    \
                                               GM_ADDR c STATUS_PARAM, GM_ADDR workspace, GM_ADDR tiling) {         \
        KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);                                                          \
        RunFp8Gemm<bfloat16_t, OUT, false>(Layout::LAYOUT, a, nullptr, b, b_scale, INFO_ARG, c, STATUS_ARG,          \
                                           workspace, tiling);                                                      \
    }
#define FP8_GEMM_ENTRY_W8A8(NAME, OUT, LAYOUT, INFO_PARAM, INFO_ARG, STATUS_PARAM, STATUS_ARG)                     \
    extern "C" __global__ __aicore__ void NAME(GM_ADDR a, GM_ADDR a_scale, GM_ADDR b, GM_ADDR b_scale INFO_PARAM,   \
                                               GM_ADDR c STATUS_PARAM, GM_ADDR workspace, GM_ADDR tiling) {         \
        KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);                                                          \
        RunFp8Gemm<half, OUT, true>(Layout::LAYOUT, a, a_scale, b, b_scale, INFO_ARG, c, STATUS_ARG, workspace,     \
                                    tiling);                                                                        \
    }
#define FP8_NO_INFO_PARAM
#define FP8_CONTIG_PARAM , GM_ADDR group_offsets
#define FP8_MASKED_PARAM , GM_ADDR masked_m
#define FP8_NO_STATUS_PARAM
#define FP8_STATUS_PARAM , GM_ADDR status

FP8_GEMM_ENTRY_W8A16(fp8_gemm_w8a16_bf16, bfloat16_t, Plain, FP8_NO_INFO_PARAM, nullptr, FP8_NO_STATUS_PARAM, nullptr)
FP8_GEMM_ENTRY_W8A16(fp8_gemm_w8a16_f32, float, Plain, FP8_NO_INFO_PARAM, nullptr, FP8_NO_STATUS_PARAM, nullptr)
FP8_GEMM_ENTRY_W8A8(fp8_gemm_w8a8_bf16, bfloat16_t, Plain, FP8_NO_INFO_PARAM, nullptr, FP8_NO_STATUS_PARAM, nullptr)
FP8_GEMM_ENTRY_W8A8(fp8_gemm_w8a8_f32, float, Plain, FP8_NO_INFO_PARAM, nullptr, FP8_NO_STATUS_PARAM, nullptr)
FP8_GEMM_ENTRY_W8A16(fp8_gemm_contig_w8a16_bf16, bfloat16_t, Contig, FP8_CONTIG_PARAM, group_offsets, FP8_STATUS_PARAM, status)
FP8_GEMM_ENTRY_W8A16(fp8_gemm_contig_w8a16_f32, float, Contig, FP8_CONTIG_PARAM, group_offsets, FP8_STATUS_PARAM, status)
FP8_GEMM_ENTRY_W8A8(fp8_gemm_contig_w8a8_bf16, bfloat16_t, Contig, FP8_CONTIG_PARAM, group_offsets, FP8_STATUS_PARAM, status)
FP8_GEMM_ENTRY_W8A8(fp8_gemm_contig_w8a8_f32, float, Contig, FP8_CONTIG_PARAM, group_offsets, FP8_STATUS_PARAM, status)
FP8_GEMM_ENTRY_W8A16(fp8_gemm_masked_w8a16_bf16, bfloat16_t, Masked, FP8_MASKED_PARAM, masked_m, FP8_NO_STATUS_PARAM, nullptr)
FP8_GEMM_ENTRY_W8A16(fp8_gemm_masked_w8a16_f32, float, Masked, FP8_MASKED_PARAM, masked_m, FP8_NO_STATUS_PARAM, nullptr)
FP8_GEMM_ENTRY_W8A8(fp8_gemm_masked_w8a8_bf16, bfloat16_t, Masked, FP8_MASKED_PARAM, masked_m, FP8_NO_STATUS_PARAM, nullptr)
FP8_GEMM_ENTRY_W8A8(fp8_gemm_masked_w8a8_f32, float, Masked, FP8_MASKED_PARAM, masked_m, FP8_NO_STATUS_PARAM, nullptr)
