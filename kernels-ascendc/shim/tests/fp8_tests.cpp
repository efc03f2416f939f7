// Tests of the FP8 kernels (fp8_gemm.cpp, fp8_quant.cpp) against plain double references written
// here from the format definitions (E4M3FN decoded from its bit fields, never through kernel code).
#include <algorithm>
#include <chrono>
#include <random>

#include "test_support.h"
#include "../../tiling/fp8_gemm_tiling.h"
#include "../../tiling/fp8_quant_tiling.h"

#define ENTRY(name) extern "C" int32_t ascend_shim_entry_##name(const AscendShimLaunch*);
ENTRY(fp8_gemm_w8a16_bf16) ENTRY(fp8_gemm_w8a16_f32) ENTRY(fp8_gemm_w8a8_bf16) ENTRY(fp8_gemm_w8a8_f32)
ENTRY(fp8_gemm_contig_w8a16_bf16) ENTRY(fp8_gemm_contig_w8a16_f32) ENTRY(fp8_gemm_contig_w8a8_bf16)
ENTRY(fp8_gemm_contig_w8a8_f32) ENTRY(fp8_gemm_masked_w8a16_bf16) ENTRY(fp8_gemm_masked_w8a16_f32)
ENTRY(fp8_gemm_masked_w8a8_bf16) ENTRY(fp8_gemm_masked_w8a8_f32)
ENTRY(fp8_act_quant_f32) ENTRY(fp8_act_quant_bf16)
#undef ENTRY

namespace {

// E4M3FN from its fields: S.EEEE.MMM, bias 7, no Inf, NaN = S.1111.111, subnormals m * 2^-9.
double e4m3_value(uint8_t c) {
    const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) return std::nan("");
    const double v = e == 0 ? std::ldexp(double(m), -9) : std::ldexp(double(8 + m), e - 10);
    return s ? -v : v;
}

// Round to nearest E4M3FN code, ties to the even code, saturating to 448; NaN keeps its sign.
uint8_t e4m3_encode_ref(float q) {
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

uint8_t random_code(std::mt19937& rng) {
    uint8_t c = uint8_t(rng());
    if ((c & 0x7F) == 0x7F) c ^= 1;  // no NaN unless a test asks for one
    return c;
}

enum class Mode { W8A16, W8A8 };
enum class Lay { Plain, Contig, Masked };

Entry gemm_entry(Mode mode, Lay lay, bool f32) {
    const Entry table[3][2][2] = {
        {{ascend_shim_entry_fp8_gemm_w8a16_bf16, ascend_shim_entry_fp8_gemm_w8a16_f32},
         {ascend_shim_entry_fp8_gemm_w8a8_bf16, ascend_shim_entry_fp8_gemm_w8a8_f32}},
        {{ascend_shim_entry_fp8_gemm_contig_w8a16_bf16, ascend_shim_entry_fp8_gemm_contig_w8a16_f32},
         {ascend_shim_entry_fp8_gemm_contig_w8a8_bf16, ascend_shim_entry_fp8_gemm_contig_w8a8_f32}},
        {{ascend_shim_entry_fp8_gemm_masked_w8a16_bf16, ascend_shim_entry_fp8_gemm_masked_w8a16_f32},
         {ascend_shim_entry_fp8_gemm_masked_w8a8_bf16, ascend_shim_entry_fp8_gemm_masked_w8a8_f32}}};
    return table[int(lay)][int(mode)][f32 ? 1 : 0];
}

const char* mode_name(Mode m) { return m == Mode::W8A16 ? "w8a16" : "w8a8"; }
const char* lay_name(Lay l) { return l == Lay::Plain ? "plain" : l == Lay::Contig ? "contig" : "masked"; }

struct GemmCase {
    Mode mode = Mode::W8A16;
    Lay lay = Lay::Plain;
    bool outF32 = false;
    uint32_t groups = 1, m = 1, n = 1, k = 1, baseM = 16, blocks = 1;
    std::vector<int32_t> info;  // contiguous: offsets [G + 1]; masked: valid rows [G]
    bool nanB = false, nanA = false, zeroScales = false;
    bool fold = false;  // W8A16 with power-of-two scales folded into the decode (fold_scales = 1)
    bool verify = true;
    uint32_t seed = 1;
};

struct GemmOutcome {
    double secs = 0;
    Result r;
};

// The rows [base, base + rows) group g computes, as the tiling header defines them.
void group_rows(const GemmCase& c, uint32_t g, uint64_t& base, uint32_t& rows) {
    if (c.lay == Lay::Plain) {
        base = 0;
        rows = c.m;
    } else if (c.lay == Lay::Contig) {
        base = uint64_t(c.info[g]);
        rows = uint32_t(std::max(0, c.info[g + 1] - c.info[g]));
    } else {
        base = uint64_t(g) * c.m;
        rows = uint32_t(std::clamp<int32_t>(c.info[g], 0, int32_t(c.m)));
    }
}

std::string case_name(const GemmCase& c) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "fp8 gemm %s %s ->%s G=%u m=%u n=%u k=%u base_m=%u blocks=%u%s%s%s%s", lay_name(c.lay),
                  mode_name(c.mode), c.outF32 ? "f32" : "bf16", c.groups, c.m, c.n, c.k, c.baseM, c.blocks,
                  c.nanB ? " nanB" : "", c.nanA ? " nanA" : "", c.zeroScales ? " zero-scales" : "",
                  c.fold ? " folded-scales" : "");
    return buf;
}

GemmOutcome run_gemm(const GemmCase& c) {
    GemmOutcome oc;
    std::mt19937 rng(c.seed);
    std::uniform_real_distribution<float> ua(-2.0f, 2.0f), us(0.5f, 2.0f);
    const bool w8a8 = c.mode == Mode::W8A8;
    const uint32_t G = c.groups, KB = (c.k + 127) / 128, NB = (c.n + 127) / 128;
    const uint64_t rowsTotal = c.lay == Lay::Masked ? uint64_t(G) * c.m : c.m;
    const size_t outSize = c.outF32 ? 4 : 2;

    std::vector<bfloat16_t> aBf(w8a8 ? 0 : rowsTotal * c.k);
    std::vector<uint8_t> aCodes(w8a8 ? rowsTotal * c.k : 0);
    std::vector<float> sa(w8a8 ? rowsTotal * KB : 0);
    std::vector<uint8_t> b(size_t(G) * c.n * c.k);
    std::vector<float> sb(size_t(G) * NB * KB);
    for (auto& x : aBf) x = bfloat16_t(ua(rng));
    for (auto& x : aCodes) x = random_code(rng);
    for (auto& x : sa) x = us(rng) * 0.125f;
    for (auto& x : b) x = random_code(rng);
    std::uniform_int_distribution<int> ue(-12, 2);
    for (auto& x : sb) x = c.fold ? std::ldexp(1.0f, ue(rng)) : us(rng) / 64.0f;
    // Special values go into the last group's first valid row / last column.
    uint64_t lastBase = 0;
    uint32_t lastRows = 0;
    group_rows(c, G - 1, lastBase, lastRows);
    if (c.zeroScales) {
        sb[(size_t(G - 1) * NB + NB - 1) * KB + 0] = 0.0f;  // one whole 128x128 block of B
        if (w8a8 && lastRows) sa[lastBase * KB + KB - 1] = 0.0f;
    }
    if (c.nanB) b[(size_t(G - 1) * c.n + (c.n - 1)) * c.k + c.k / 2] = 0xFF;
    if (c.nanA && lastRows) {
        if (w8a8) aCodes[lastBase * c.k] = 0x7F;
        else aBf[lastBase * c.k] = bfloat16_t(std::nanf(""));
    }

    FakeDevice dev;
    const uint64_t dA = w8a8 ? dev.upload(aCodes) : (c.verify || !aBf.empty() ? dev.upload(aBf) : 0);
    const uint64_t dSa = w8a8 ? dev.upload(sa) : 0;
    const uint64_t dB = dev.upload(b), dSb = dev.upload(sb);
    const uint64_t dInfo = c.lay == Lay::Plain ? 0 : dev.upload(c.info);
    const uint64_t dC = dev.alloc(rowsTotal * c.n * outSize + 1);  // 0xCD sentinel bytes
    const uint64_t dWs = dev.alloc(size_t(c.blocks) * FP8_GEMM_WS_BYTES_PER_BLOCK(c.baseM));
    Fp8GemmTiling t{c.m, c.n, c.k, G, c.baseM, 0, c.fold ? 1u : 0u, 0};
    const uint64_t dT = dev.upload(std::vector<Fp8GemmTiling>{t});
    ArgBlob args;
    args.ptr(dA);
    if (w8a8) args.ptr(dSa);
    args.ptr(dB).ptr(dSb);
    if (c.lay != Lay::Plain) args.ptr(dInfo);
    args.ptr(dC);
    if (c.lay == Lay::Contig) args.ptr(dev.upload(std::vector<uint32_t>(8, 0u)));  // status slot
    args.ptr(dWs).ptr(dT);

    auto t0 = std::chrono::steady_clock::now();
    oc.r = launch(dev, gemm_entry(c.mode, c.lay, c.outF32), c.blocks, args);
    oc.secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string name = case_name(c);
    CHECK(oc.r.rc == 0, "%s: rc %d: %s", name.c_str(), oc.r.rc, oc.r.error.c_str());
    if (oc.r.rc != 0 || !c.verify) return oc;

    // Tolerance (per output element, mag = sum_k |a * b * sa * sb| in double, u = 2^-24):
    //  - decoded operands are exact (E4M3 values are exact in fp16 and bf16; bf16 A is itself),
    //    and their products are exact in fp32 (at most 8 + 8 significant bits);
    //  - the partial of a K block is an fp32 sum of kt <= 128 exact products: error
    //    <= (kt - 1) u sum_{k in kb} |a b|;
    //  - (P * sa) * sb: two fp32 roundings, <= 2u |P sa sb| (plus the propagated partial error);
    //  - the fp32 accumulation over KB blocks: <= (KB - 1) u sum_kb |P sa sb|;
    //  => |C_f32 - ref| <= (min(k,128) + KB + 1) u mag (1 + O(u)); we allow (min(k,128) + KB + 3) u mag.
    //  - folded scales: the decoded weights are b * sb exactly and each product a * b * sb is exact
    //    in fp32, summed once over all of K: <= (k - 1) u mag; we allow (k + 3) u mag.
    //  - bf16 output: one more rounding to nearest even, relative 2^-8: + 2^-8 (|ref| + tol_f32).
    // Zero-scale blocks and all-zero sums must therefore be exact; NaN must match NaN exactly.
    const double u = std::ldexp(1.0, -24);
    std::vector<uint8_t> out = dev.download<uint8_t>(dC, rowsTotal * c.n * outSize);
    std::vector<uint8_t> written(rowsTotal, 0);
    int bad = 0, badNan = 0;
    double worst = 0;
    for (uint32_t g = 0; g < G; ++g) {
        uint64_t base;
        uint32_t rows;
        group_rows(c, g, base, rows);
        for (uint32_t r = 0; r < rows; ++r) {
            const uint64_t row = base + r;
            written[row] = 1;
            for (uint32_t j = 0; j < c.n; ++j) {
                double ref = 0, mag = 0;
                for (uint32_t kb = 0; kb < KB; ++kb) {
                    double p = 0, pm = 0;
                    for (uint32_t kk = kb * 128; kk < std::min(c.k, kb * 128 + 128); ++kk) {
                        const double av = w8a8 ? e4m3_value(aCodes[row * c.k + kk]) : double(float(aBf[row * c.k + kk]));
                        const double bv = e4m3_value(b[(size_t(g) * c.n + j) * c.k + kk]);
                        p += av * bv;
                        pm += std::fabs(av * bv);
                    }
                    const double s = double(sb[(size_t(g) * NB + j / 128) * KB + kb]) * (w8a8 ? double(sa[row * KB + kb]) : 1.0);
                    ref += p * s;
                    mag += pm * std::fabs(s);
                }
                double got;
                if (c.outF32) {
                    float f;
                    std::memcpy(&f, &out[(row * c.n + j) * 4], 4);
                    got = f;
                } else {
                    bfloat16_t h;
                    std::memcpy(&h, &out[(row * c.n + j) * 2], 2);
                    got = float(h);
                }
                if (std::isnan(ref) || std::isnan(got)) {
                    if (std::isnan(ref) != std::isnan(got)) ++badNan;
                    continue;
                }
                const double tol32 = (c.fold ? c.k + 3 : std::min(c.k, 128u) + KB + 3) * u * mag;
                const double tol = c.outF32 ? tol32 : tol32 + std::ldexp(std::fabs(ref) + tol32, -8);
                const double err = std::fabs(got - ref);
                if (err > tol) ++bad;
                if (mag > 0) worst = std::max(worst, err / mag);
            }
        }
    }
    CHECK(bad == 0 && badNan == 0, "%s: %d elements out of tolerance, %d NaN mismatches (worst err/mag %.3g)", name.c_str(),
          bad, badNan, worst);
    int touched = 0;
    for (uint64_t row = 0; row < rowsTotal; ++row)
        if (!written[row])
            for (uint64_t i = row * c.n * outSize; i < (row + 1) * c.n * outSize; ++i) touched += out[i] != 0xCD;
    CHECK(touched == 0, "%s: %d bytes written in rows outside the groups", name.c_str(), touched);
    if (c.nanB) {
        // The NaN weight sits in column n-1 of the last group: every valid row of it must be NaN.
        int notNan = 0;
        for (uint32_t r = 0; r < lastRows; ++r) {
            const uint64_t i = (lastBase + r) * c.n + c.n - 1;
            double v;
            if (c.outF32) { float f; std::memcpy(&f, &out[i * 4], 4); v = f; }
            else { bfloat16_t h; std::memcpy(&h, &out[i * 2], 2); v = float(h); }
            notNan += !std::isnan(v);
        }
        CHECK(notNan == 0, "%s: %d outputs of the NaN weight's column are not NaN", name.c_str(), notNan);
    }

    // Traffic. Per output tile (mt x nt) and K block (kt), GM -> local:
    //   B codes nt*kt (1 byte/weight, AIV) + decoded B nt*kt*2 (workspace -> L1, AIC)
    //   + A: W8A16 mt*kt*2 (GM -> L1); W8A8 mt*kt (codes, AIV) + mt*kt*2 (workspace -> L1)
    //   + fp32 partials mt*nt*4 (workspace -> UB) + W8A8 sa: mt*4 per AIV with columns;
    // per tile: sb row KB*4 per AIV with columns (AIV 1 has columns iff nt > 64).
    // So the weights cross from HBM exactly once per M tile: sum over tiles of nt*K = tilesM*N*K bytes
    // (a bf16 GEMM of the same shape reads 2*tilesM*N*K); the decoded copy lives in a 2-slot per-core
    // ring (L2-resident). local -> GM: decoded B nt*pitch*2 (+ A mt*pitch*2 for W8A8), partials
    // mt*nt*4, C mt*nt*sizeof(out), pitch = round_up(kt, 32).
    // The ring (decoded B and A, partials) is memory the launch writes before it reads it: the
    // shim's exchange counters must hold exactly its reads, and its writes less the pitch padding
    // that no one reads (whole 32-byte granules of it are written-only, like an output).
    uint64_t g2l = 0, l2g = 0, macs = 0, bBytes = 0, tilesM = 0, ringRead = 0, ringWritten = 0, unreadPad = 0;
    for (uint32_t g = 0; g < G; ++g) {
        uint64_t base;
        uint32_t rows;
        group_rows(c, g, base, rows);
        for (uint32_t m0 = 0; m0 < rows; m0 += c.baseM) {
            const uint64_t mt = std::min(c.baseM, rows - m0);
            ++tilesM;
            for (uint32_t n0 = 0; n0 < c.n; n0 += 128) {
                const uint64_t nt = std::min(128u, c.n - n0), aivs = nt > 64 ? 2 : 1;
                for (uint32_t kb = 0; kb < KB; ++kb) {
                    const uint64_t kt = std::min(128u, c.k - kb * 128), pitch = (kt + 31) / 32 * 32;
                    // Folded: no fp32 partials cross GM (the cube keeps all of K in L0C).
                    const uint64_t partials = c.fold ? 0 : 4 * mt * nt;
                    g2l += nt * kt + 2 * nt * kt + (w8a8 ? 3 * mt * kt + aivs * mt * 4 : 2 * mt * kt) + partials;
                    l2g += 2 * nt * pitch + (w8a8 ? 2 * mt * pitch : 0) + partials;
                    ringRead += 2 * nt * kt + (w8a8 ? 2 * mt * kt : 0) + partials;
                    ringWritten += 2 * nt * pitch + (w8a8 ? 2 * mt * pitch : 0) + partials;
                    unreadPad += (nt + (w8a8 ? mt : 0)) * 2 * (pitch - kt);
                    bBytes += nt * kt;
                }
                g2l += aivs * KB * 4;
                l2g += mt * nt * outSize;
                macs += (mt + 15) / 16 * 16 * nt * c.k;  // M tiles zero-padded to 16 rows (no GEMV mode)
            }
        }
    }
    CHECK(bBytes == tilesM * c.n * c.k, "%s: B bytes formula", name.c_str());
    CHECK(oc.r.counters.gm_to_local_bytes == g2l, "%s: gm->local %" PRIu64 " bytes, expected %" PRIu64, name.c_str(),
          oc.r.counters.gm_to_local_bytes, g2l);
    CHECK(oc.r.counters.local_to_gm_bytes == l2g, "%s: local->gm %" PRIu64 " bytes, expected %" PRIu64, name.c_str(),
          oc.r.counters.local_to_gm_bytes, l2g);
    const AscendShimCounters& x = oc.r.counters;
    CHECK(x.gm_exchange_read_bytes == ringRead && x.gm_exchange_written_bytes <= ringWritten &&
              x.gm_exchange_written_bytes + unreadPad >= ringWritten,
          "%s: exchange read %" PRIu64 " (ring %" PRIu64 "), written %" PRIu64 " (ring %" PRIu64 ", unread pad %" PRIu64 ")",
          name.c_str(), x.gm_exchange_read_bytes, ringRead, x.gm_exchange_written_bytes, ringWritten, unreadPad);
    CHECK(oc.r.counters.cube_macs == macs, "%s: cube_macs %" PRIu64 ", expected %" PRIu64, name.c_str(),
          oc.r.counters.cube_macs, macs);
    CHECK(oc.r.counters.cores_run == 3ull * c.blocks, "%s: cores_run %" PRIu64, name.c_str(), oc.r.counters.cores_run);
    // The busiest core carries at least an even share and at most everything.
    const AscendShimCounters& k = oc.r.counters;
    CHECK(k.busiest_cube_macs <= k.cube_macs && k.busiest_cube_macs * c.blocks >= k.cube_macs &&
              k.busiest_gm_read <= k.gm_to_local_bytes && k.busiest_gm_read * 3 * c.blocks >= k.gm_to_local_bytes &&
              k.busiest_gm_written <= k.local_to_gm_bytes && k.busiest_vector_ops <= k.vector_elem_ops,
          "%s: busiest-core counts %" PRIu64 " MACs, %" PRIu64 " B read out of %" PRIu64 " / %" PRIu64, name.c_str(),
          k.busiest_cube_macs, k.busiest_gm_read, k.cube_macs, k.gm_to_local_bytes);
    return oc;
}

}  // namespace

// Every one of the 256 codes through both decode tables: C[0, c] = 1 * decode(c) * 1, exactly.
void test_fp8_decode() {
    for (Mode mode : {Mode::W8A16, Mode::W8A8}) {
        const bool w8a8 = mode == Mode::W8A8;
        FakeDevice dev;
        std::vector<uint8_t> b(256);
        for (int i = 0; i < 256; ++i) b[i] = uint8_t(i);
        const uint64_t dA = w8a8 ? dev.upload(std::vector<uint8_t>{0x38}) : dev.upload(std::vector<bfloat16_t>{bfloat16_t(1.0f)});
        const uint64_t dSa = dev.upload(std::vector<float>{1.0f});
        const uint64_t dB = dev.upload(b), dSb = dev.upload(std::vector<float>{1.0f, 1.0f});
        const uint64_t dC = dev.alloc(256 * 4), dWs = dev.alloc(2 * FP8_GEMM_WS_BYTES_PER_BLOCK(16));
        const uint64_t dT = dev.upload(std::vector<Fp8GemmTiling>{{1, 256, 1, 1, 16, 0, 0, 0}});
        ArgBlob args;
        args.ptr(dA);
        if (w8a8) args.ptr(dSa);
        args.ptr(dB).ptr(dSb).ptr(dC).ptr(dWs).ptr(dT);
        Result r = launch(dev, gemm_entry(mode, Lay::Plain, true), 2, args);
        CHECK(r.rc == 0, "fp8 decode %s: rc %d: %s", mode_name(mode), r.rc, r.error.c_str());
        if (r.rc) continue;
        std::vector<float> c = dev.download<float>(dC, 256);
        int bad = 0;
        for (int i = 0; i < 256; ++i) {
            const double want = e4m3_value(uint8_t(i));
            if (std::isnan(want) ? !std::isnan(c[i]) : double(c[i]) != want) ++bad;
        }
        CHECK(bad == 0, "fp8 decode %s: %d of 256 codes decode wrongly", mode_name(mode), bad);
    }
}

void test_fp8_gemm() {
    uint32_t seed = 100;
    // The brief's odd shapes, every combination, in the two main configurations.
    for (uint32_t m : {1u, 3u, 17u})
        for (uint32_t n : {1u, 129u, 300u})
            for (uint32_t k : {1u, 100u, 129u, 257u}) {
                GemmCase c;
                c.m = m; c.n = n; c.k = k; c.seed = ++seed;
                c.mode = Mode::W8A16; c.outF32 = false; c.baseM = 16; c.blocks = 2;
                run_gemm(c);
                c.mode = Mode::W8A8; c.outF32 = true; c.baseM = 16; c.blocks = 3; c.seed = ++seed;
                run_gemm(c);
            }
    // Other output types, tile sizes, block counts, special values.
    struct S { Mode mode; bool f32; uint32_t m, n, k, baseM, blocks; bool nanB, nanA, zero; } cases[] = {
        {Mode::W8A16, true, 17, 300, 257, 16, 3, true, true, true},
        {Mode::W8A16, false, 40, 129, 300, 32, 2, true, true, true},
        {Mode::W8A8, false, 17, 300, 257, 16, 1, true, true, true},
        {Mode::W8A8, true, 33, 129, 129, 32, 4, true, true, true},
        {Mode::W8A8, false, 130, 200, 140, 128, 2, false, false, true},
        {Mode::W8A16, false, 130, 256, 256, 128, 3, false, false, false},
        {Mode::W8A16, true, 1, 64, 7, 16, 1, true, false, false},
        {Mode::W8A16, false, 0, 129, 100, 16, 2, false, false, false},  // M = 0: nothing to do
        {Mode::W8A16, false, 2, 65, 33, 16, 7, false, false, false},    // more groups than tiles
    };
    for (const S& s : cases) {
        GemmCase c;
        c.mode = s.mode; c.outF32 = s.f32; c.m = s.m; c.n = s.n; c.k = s.k; c.baseM = s.baseM; c.blocks = s.blocks;
        c.nanB = s.nanB; c.nanA = s.nanA; c.zeroScales = s.zero; c.seed = ++seed;
        run_gemm(c);
    }
    // Folded power-of-two scales (W8A16): odd sizes, both outputs, special values, M tiles of 16..128.
    struct F { bool f32; uint32_t m, n, k, baseM, blocks; bool special; } folded[] = {
        {false, 1, 129, 257, 16, 2, true}, {true, 3, 300, 100, 16, 3, true}, {false, 17, 1, 129, 32, 1, false},
        {true, 16, 200, 7, 16, 4, false},  {false, 130, 256, 300, 128, 3, true}, {false, 2, 65, 33, 16, 7, false},
    };
    for (const F& f : folded) {
        GemmCase c;
        c.fold = true; c.outF32 = f.f32; c.m = f.m; c.n = f.n; c.k = f.k; c.baseM = f.baseM; c.blocks = f.blocks;
        c.nanB = c.nanA = c.zeroScales = f.special; c.seed = ++seed;
        run_gemm(c);
    }
}

void test_fp8_grouped() {
    uint32_t seed = 500;
    for (Mode mode : {Mode::W8A16, Mode::W8A8})
        for (bool f32 : {false, true}) {
            // Contiguous: groups of 5, 0 (empty), 1 (one row), 17 rows; offsets int32 [G + 1].
            GemmCase c;
            c.mode = mode; c.outF32 = f32; c.lay = Lay::Contig; c.groups = 4; c.m = 23; c.n = 129; c.k = 257;
            c.info = {0, 5, 5, 6, 23}; c.baseM = 16; c.blocks = 3; c.nanB = true; c.nanA = true; c.zeroScales = true;
            c.seed = ++seed;
            run_gemm(c);
            // Empty first and last groups, one big group spanning two M tiles.
            c.groups = 3; c.m = 20; c.n = 300; c.k = 100; c.info = {0, 0, 20, 20}; c.nanB = c.nanA = false; c.seed = ++seed;
            run_gemm(c);
            // Masked: max_m 17, valid rows 3, 0, 1, 17 and 40 (clamped to 17); other rows untouched.
            GemmCase d;
            d.mode = mode; d.outF32 = f32; d.lay = Lay::Masked; d.groups = 5; d.m = 17; d.n = 129; d.k = 129;
            d.info = {3, 0, 1, 17, 40}; d.baseM = 16; d.blocks = 2; d.nanB = true; d.nanA = true; d.zeroScales = true;
            d.seed = ++seed;
            run_gemm(d);
            d.groups = 2; d.n = 1; d.k = 257; d.info = {-1, 2}; d.nanB = d.nanA = false; d.blocks = 1; d.seed = ++seed;
            run_gemm(d);
            if (mode == Mode::W8A16) {  // both grouped layouts with folded scales
                c.fold = d.fold = true;
                c.seed = ++seed;
                d.seed = ++seed;
                run_gemm(c);
                run_gemm(d);
            }
        }
}

// ---- activation quantization --------------------------------------------------------------------

namespace {

float ceil_to_ue8m0_ref(float s) {
    uint32_t bits;
    std::memcpy(&bits, &s, 4);
    uint32_t e = ((bits >> 23) & 0xFF) + ((bits & 0x7FFFFF) != 0);
    e = std::clamp<uint32_t>(e, 1, 254);
    bits = e << 23;
    float r;
    std::memcpy(&r, &bits, 4);
    return r;
}

template <typename T>
double run_quant(uint32_t m, uint32_t k, uint32_t tileK, uint32_t blocks, bool ue8m0, uint32_t seed, bool verify = true) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ue(-3.0f, 3.0f);
    const uint32_t KB = (k + 127) / 128;
    std::vector<T> x(size_t(m) * k);
    for (uint32_t r = 0; r < m; ++r)
        for (uint32_t tb = 0; tb < KB; ++tb) {
            const float mag = std::pow(10.0f, ue(rng));
            for (uint32_t j = tb * 128; j < std::min(k, tb * 128 + 128); ++j) x[size_t(r) * k + j] = T(nd(rng) * mag);
        }
    if (m > 1)  // an all-zero row (with a -0): scale 1e-4/448, codes 0 / 0x80
        for (uint32_t j = 0; j < k; ++j) x[size_t(1) * k + j] = T(j == 0 ? -0.0f : 0.0f);
    if (m > 2) {
        // amax 448 -> s = 1 exactly, then round-to-nearest-even ties and saturation edges.
        const float sp[] = {448.0f, 1.0625f, 1.1875f, 3.0f / 1024, 1.0f / 1024, 5.0f / 1024, 463.5f, -447.0f,
                            1e-7f, -1e-30f, 240.0f, -0.0f, 0.015625f, 0.0146484375f, 17.0f, -18.0f};
        for (uint32_t j = 0; j < std::min<uint32_t>(k, 16); ++j) x[size_t(2) * k + j] = T(sp[j]);
    }
    FakeDevice dev;
    const uint64_t dx = dev.upload(x), dc = dev.alloc(size_t(m) * k), ds = dev.alloc(size_t(m) * KB * 4);
    const uint32_t blockRows = (m + blocks - 1) / blocks;
    const uint64_t dt = dev.upload(std::vector<Fp8QuantTiling>{{m, k, blockRows, tileK, ue8m0 ? 1u : 0u, {0, 0, 0}}});
    ArgBlob args;
    args.ptr(dx).ptr(dc).ptr(ds).ptr(dev.upload(std::vector<uint32_t>(size_t(blocks) * 8, 0u))).ptr(dt);
    auto t0 = std::chrono::steady_clock::now();
    Result r = launch(dev, std::is_same<T, float>::value ? ascend_shim_entry_fp8_act_quant_f32 : ascend_shim_entry_fp8_act_quant_bf16,
                      blocks, args);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const char* tn = std::is_same<T, float>::value ? "f32" : "bf16";
    CHECK(r.rc == 0, "fp8 act quant %s m=%u k=%u tile_k=%u: rc %d: %s", tn, m, k, tileK, r.rc, r.error.c_str());
    if (r.rc || !verify) return secs;
    std::vector<uint8_t> codes = dev.download<uint8_t>(dc, size_t(m) * k);
    std::vector<float> scales = dev.download<float>(ds, size_t(m) * KB);
    int badS = 0, badC = 0;
    for (uint32_t row = 0; row < m; ++row)
        for (uint32_t tb = 0; tb < KB; ++tb) {
            const uint32_t j0 = tb * 128, j1 = std::min(k, j0 + 128);
            float amax = 0;
            for (uint32_t j = j0; j < j1; ++j) amax = std::max(amax, std::fabs(float(x[size_t(row) * k + j])));
            float s = std::max(amax, 1e-4f) / 448.0f;
            if (ue8m0) s = ceil_to_ue8m0_ref(s);
            const float got = scales[size_t(row) * KB + tb];
            if (std::memcmp(&got, &s, 4) != 0) ++badS;
            for (uint32_t j = j0; j < j1; ++j)
                if (codes[size_t(row) * k + j] != e4m3_encode_ref(float(x[size_t(row) * k + j]) / s)) ++badC;
        }
    CHECK(badS == 0 && badC == 0, "fp8 act quant %s m=%u k=%u tile_k=%u blocks=%u ue8m0=%d: %d scales, %d codes differ", tn,
          m, k, tileK, blocks, int(ue8m0), badS, badC);
    CHECK(r.counters.gm_to_local_bytes == uint64_t(m) * k * sizeof(T) &&
              r.counters.local_to_gm_bytes == uint64_t(m) * k + uint64_t(m) * KB * 4,
          "fp8 act quant counters %" PRIu64 " %" PRIu64, r.counters.gm_to_local_bytes, r.counters.local_to_gm_bytes);
    return secs;
}

}  // namespace

void test_fp8_quant() {
    uint32_t seed = 900;
    struct S { uint32_t m, k, tileK, blocks; } shapes[] = {
        {1, 1, 128, 1}, {3, 100, 128, 2}, {17, 129, 128, 3}, {5, 257, 256, 2}, {4, 1000, 5120, 3}, {3, 700, 256, 1},
    };
    for (const S& s : shapes)
        for (bool ue : {false, true}) {
            run_quant<float>(s.m, s.k, s.tileK, s.blocks, ue, ++seed);
            run_quant<bfloat16_t>(s.m, s.k, s.tileK, s.blocks, ue, ++seed);
        }
    // Every E4M3 rounding boundary once: x = each midpoint between neighbouring codes and its
    // float neighbours, in a tile whose amax is 448 (s = 1, so q = x exactly).
    std::vector<float> x;
    for (int c = 0; c < 0x7E; ++c) {
        const double lo = e4m3_value(uint8_t(c)), hi = e4m3_value(uint8_t(c + 1)), mid = (lo + hi) / 2;
        for (float v : {float(mid), std::nextafter(float(mid), 0.0f), std::nextafter(float(mid), 1e9f), float(lo)}) {
            x.push_back(v);
            x.push_back(-v);
        }
    }
    const uint32_t k = 127;  // tiles of 127 values + a leading 448 each
    std::vector<float> rows;
    for (size_t i = 0; i < x.size(); i += k) {
        rows.push_back(448.0f);
        for (size_t j = i; j < i + k; ++j) rows.push_back(j < x.size() ? x[j] : 0.0f);
    }
    const uint32_t m = uint32_t(rows.size() / 128);
    FakeDevice dev;
    const uint64_t dx = dev.upload(rows), dc = dev.alloc(rows.size()), ds = dev.alloc(m * 4);
    const uint64_t dt = dev.upload(std::vector<Fp8QuantTiling>{{m, 128, m, 128, 0, {0, 0, 0}}});
    ArgBlob args;
    args.ptr(dx).ptr(dc).ptr(ds).ptr(dev.upload(std::vector<uint32_t>(8, 0u))).ptr(dt);
    Result r = launch(dev, ascend_shim_entry_fp8_act_quant_f32, 1, args);
    CHECK(r.rc == 0, "fp8 act quant boundaries: %s", r.error.c_str());
    if (r.rc) return;
    std::vector<uint8_t> codes = dev.download<uint8_t>(dc, rows.size());
    int bad = 0;
    for (size_t i = 0; i < rows.size(); ++i) bad += codes[i] != e4m3_encode_ref(rows[i]);
    CHECK(bad == 0, "fp8 act quant boundaries: %d of %zu codes differ", bad, rows.size());
}

void fp8_timings() {
    // DeepSeek-V3 decode shapes: N = 2048, K = 7168 (e.g. an MoE expert's gate/up slice), W8A16.
    for (uint32_t m : {1u, 64u}) {
        GemmCase c;
        c.mode = Mode::W8A16; c.outF32 = false; c.m = m; c.n = 2048; c.k = 7168; c.baseM = m <= 16 ? 16 : 64;
        c.blocks = 24; c.verify = false; c.seed = 7;
        GemmOutcome oc = run_gemm(c);
        const uint64_t bCodes = uint64_t(c.n) * c.k;
        std::printf("  fp8 gemm w8a16->bf16 M=%u N=2048 K=7168, 24 groups: %.3f s; gm->local %.1f MB (weights %.1f MB "
                    "as FP8 = half of bf16's %.1f MB; rest: decoded ring + A + partials)\n",
                    m, oc.secs, oc.r.counters.gm_to_local_bytes / 1e6, bCodes / 1e6, 2.0 * bCodes / 1e6);
    }
    const double s = run_quant<bfloat16_t>(64, 7168, 3584, 48, false, 3, false);
    std::printf("  fp8 act quant bf16 64 x 7168, 48 blocks: %.3f s\n", s);
}
