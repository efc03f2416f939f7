// Tests of the 128x128 weight quantization (fp8_weight_quant.cpp) and the dequantization
// (fp8_dequant.cpp) kernels against references written here (fp8_ref.h) that follow
// src/fp8/quantize.rs: scales and codes must be bit-identical, dequantized outputs too (NaN
// matching NaN), and quant -> dequant round trips stay within half an E4M3 ulp (times the scale).
#include <algorithm>
#include <chrono>
#include <random>

#include "fp8_ref.h"
#include "test_support.h"
#include "../../tiling/fp8_dequant_tiling.h"
#include "../../tiling/fp8_quant_tiling.h"
#include "../../tiling/fp8_weight_quant_tiling.h"

#define ENTRY(name) extern "C" int32_t ascend_shim_entry_##name(const AscendShimLaunch*);
ENTRY(fp8_weight_quant_f32) ENTRY(fp8_weight_quant_bf16) ENTRY(fp8_dequant_bf16) ENTRY(fp8_dequant_f32)
ENTRY(fp8_act_quant_f32)
#undef ENTRY

using namespace fp8ref;

namespace {

constexpr uint32_t kB = 128;
constexpr uint8_t kSentinel = 0xCD;  // FakeDevice fills fresh allocations with it
constexpr size_t kGuard = 64;        // bytes allocated past every output, checked untouched

uint32_t cdiv(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

int guard_damage(FakeDevice& dev, uint64_t d, size_t bytes) {
    int bad = 0;
    const uint8_t* p = dev.host(d);
    for (size_t i = bytes; i < bytes + kGuard; ++i) bad += p[i] != kSentinel;
    return bad;
}

template <typename T> const char* tname() { return std::is_same<T, float>::value ? "f32" : "bf16"; }

// ---- weight quantization --------------------------------------------------------------------------

struct WqCase {
    uint32_t n = 1, k = 1, blocks = 1, bpc = 0;  // bpc 0: ceil(total / blocks)
    bool ue8m0 = false;
    bool nonFinite = false;  // NaN/+Inf/-Inf in block 0 (out of contract: its values are not checked)
    bool verify = true;
    uint32_t seed = 1;
};

struct WqOut {
    std::vector<float> x;  // the input as f32 (exact for bf16)
    std::vector<uint8_t> codes;
    std::vector<float> scales;
    Result r;
    double secs = 0;
};

template <typename T>
WqOut run_weight_quant(const WqCase& c) {
    WqOut o;
    std::mt19937 rng(c.seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ue(-3.0f, 3.0f);
    const uint32_t NB = cdiv(c.n, kB), KB = cdiv(c.k, kB), total = NB * KB;
    std::vector<T> x(size_t(c.n) * c.k);
    // Each block gets its own magnitude 10^U(-3, 3), so scales differ and small q hit subnormal codes.
    for (uint32_t nb = 0; nb < NB; ++nb)
        for (uint32_t kb = 0; kb < KB; ++kb) {
            const float mag = std::pow(10.0f, ue(rng));
            for (uint32_t r = nb * kB; r < std::min(c.n, nb * kB + kB); ++r)
                for (uint32_t j = kb * kB; j < std::min(c.k, kb * kB + kB); ++j) x[size_t(r) * c.k + j] = T(nd(rng) * mag);
        }
    auto block_fill = [&](uint32_t t, auto f) {
        const uint32_t nb = t / KB, kb = t % KB;
        for (uint32_t r = nb * kB; r < std::min(c.n, nb * kB + kB); ++r)
            for (uint32_t j = kb * kB; j < std::min(c.k, kb * kB + kB); ++j) f(x[size_t(r) * c.k + j], r - nb * kB, j - kb * kB);
    };
    if (total > 1)  // an all-zero block (with -0s): scale 1e-4/448, codes 0x00 / 0x80
        block_fill(1, [&](T& v, uint32_t r, uint32_t j) { v = T((r + j) % 3 == 0 ? -0.0f : 0.0f); });
    if (total > 2)  // amax below the 1e-4 floor
        block_fill(2, [&](T& v, uint32_t, uint32_t) { v = T(nd(rng) * 1e-6f); });
    if (total > 3) {
        // amax exactly 448 (s = 1 exactly without UE8M0, q = x), then RNE ties and edges.
        const float sp[] = {448.0f, 1.0625f, 1.1875f, 3.0f / 1024, 1.0f / 1024, 5.0f / 1024, 463.5f / 2, -447.0f,
                            1e-7f, -1e-30f, 240.0f, -0.0f, 0.015625f, 0.0146484375f, 17.0f, -18.0f};
        int i = 0;
        block_fill(3, [&](T& v, uint32_t, uint32_t) { v = T(sp[i++ % 16]); });
    }
    if (c.nonFinite) {
        const float bad[] = {std::nanf(""), INFINITY, -INFINITY};
        int i = 0;
        block_fill(0, [&](T& v, uint32_t r, uint32_t j) { if (i < 3 && (r + j) % 5 == 0) v = T(bad[i++]); });
    }
    o.x.resize(x.size());
    for (size_t i = 0; i < x.size(); ++i) o.x[i] = float(x[i]);

    FakeDevice dev;
    const uint64_t dx = dev.upload(x), dc = dev.alloc(x.size() + kGuard), ds = dev.alloc(size_t(total) * 4 + kGuard);
    const uint32_t blocks = std::max(1u, c.blocks), bpc = c.bpc ? c.bpc : std::max(1u, cdiv(total, blocks));
    const uint64_t dt = dev.upload(std::vector<Fp8WeightQuantTiling>{{c.n, c.k, bpc, c.ue8m0 ? 1u : 0u, {0, 0, 0, 0}}});
    const uint64_t dStatus = dev.upload(std::vector<uint32_t>(size_t(blocks) * 8, 0u));  // kernel_status.h
    ArgBlob args;
    args.ptr(dx).ptr(dc).ptr(ds).ptr(dStatus).ptr(dt);
    auto t0 = std::chrono::steady_clock::now();
    o.r = launch(dev, std::is_same<T, float>::value ? ascend_shim_entry_fp8_weight_quant_f32 : ascend_shim_entry_fp8_weight_quant_bf16,
                 blocks, args);
    o.secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char name[160];
    std::snprintf(name, sizeof name, "fp8 weight quant %s n=%u k=%u blocks=%u bpc=%u ue8m0=%d%s", tname<T>(), c.n, c.k, blocks,
                  bpc, int(c.ue8m0), c.nonFinite ? " non-finite" : "");
    CHECK(o.r.rc == 0, "%s: rc %d: %s", name, o.r.rc, o.r.error.c_str());
    if (o.r.rc) return o;
    o.codes = dev.download<uint8_t>(dc, x.size());
    o.scales = dev.download<float>(ds, total);
    CHECK(guard_damage(dev, dc, x.size()) == 0 && guard_damage(dev, ds, size_t(total) * 4) == 0,
          "%s: bytes written past the outputs", name);
    // Traffic: each input byte read once; codes and scales written once.
    // (+ one 32-byte status slot from the core that finds the non-finite block)
    const uint64_t g2l = uint64_t(c.n) * c.k * sizeof(T),
                   l2g = uint64_t(c.n) * c.k + uint64_t(total) * 4 + (c.nonFinite ? 32u : 0u);
    const std::vector<uint32_t> status = dev.download<uint32_t>(dStatus, size_t(blocks) * 8);
    CHECK(status[0] == (c.nonFinite ? 2u : 0u), "%s: status %u (2 = KERNEL_STATUS_NON_FINITE)", name, status[0]);
    CHECK(o.r.counters.gm_to_local_bytes == g2l && o.r.counters.local_to_gm_bytes == l2g,
          "%s: counters gm->local %" PRIu64 " (expected %" PRIu64 "), local->gm %" PRIu64 " (expected %" PRIu64 ")", name,
          o.r.counters.gm_to_local_bytes, g2l, o.r.counters.local_to_gm_bytes, l2g);
    CHECK(o.r.counters.cores_run == blocks, "%s: cores_run %" PRIu64, name, o.r.counters.cores_run);
    if (!c.verify) return o;

    int badS = 0, badC = 0;
    for (uint32_t t = 0; t < total; ++t) {
        if (c.nonFinite && t == 0) continue;  // out of contract: unspecified scale and codes
        const uint32_t nb = t / KB, kb = t % KB, r1 = std::min(c.n, nb * kB + kB), j1 = std::min(c.k, kb * kB + kB);
        float amax = 0;
        for (uint32_t r = nb * kB; r < r1; ++r)
            for (uint32_t j = kb * kB; j < j1; ++j) amax = std::max(amax, std::fabs(o.x[size_t(r) * c.k + j]));
        const float s = quant_scale(amax, c.ue8m0);
        if (f32_bits(o.scales[t]) != f32_bits(s)) ++badS;
        for (uint32_t r = nb * kB; r < r1; ++r)
            for (uint32_t j = kb * kB; j < j1; ++j) {
                const size_t i = size_t(r) * c.k + j;
                if (o.codes[i] != e4m3_encode(o.x[i] / s)) ++badC;
            }
    }
    CHECK(badS == 0 && badC == 0, "%s: %d scales, %d codes differ", name, badS, badC);
    return o;
}

// ---- dequantization -------------------------------------------------------------------------------

struct DqCase {
    uint32_t rows = 1, k = 1, layout = 0, blocks = 1, blockRows = 0, chunkRows = 16, tileK = 128;
    bool verify = true;
    uint32_t seed = 1;
};

struct DqOut {
    std::vector<float> out;  // the output as f32 (exact for bf16)
    Result r;
    double secs = 0;
};

// Scale bytes the kernel loads (tiling/fp8_dequant_tiling.h): per row chunk, the scale rows it spans.
uint64_t dequant_scale_bytes(uint32_t rows, uint32_t k, uint32_t layout, uint32_t blocks, uint32_t blockRows,
                             uint32_t chunkRows) {
    uint64_t bytes = 0;
    for (uint32_t b = 0; b < blocks; ++b) {
        const uint64_t r0 = uint64_t(b) * blockRows;
        if (r0 >= rows) continue;
        const uint32_t end = uint32_t(std::min<uint64_t>(rows, r0 + blockRows));
        for (uint32_t r = uint32_t(r0); r < end; r += chunkRows) {
            const uint32_t last = std::min(end, r + chunkRows) - 1;
            const uint32_t spanned = layout ? last / kB - r / kB + 1 : last - r + 1;
            bytes += uint64_t(spanned) * cdiv(k, kB) * 4;
        }
    }
    return bytes;
}

template <typename Out>
DqOut run_dequant(const DqCase& c, const std::vector<uint8_t>& codes, const std::vector<float>& scales) {
    DqOut o;
    const uint32_t KB = cdiv(c.k, kB);
    FakeDevice dev;
    const size_t outBytes = size_t(c.rows) * c.k * sizeof(Out);
    const uint64_t dc = dev.upload(codes), ds = dev.upload(scales), dout = dev.alloc(outBytes + kGuard);
    const uint32_t blocks = std::max(1u, c.blocks), blockRows = c.blockRows ? c.blockRows : std::max(1u, cdiv(c.rows, blocks));
    const uint64_t dt =
        dev.upload(std::vector<Fp8DequantTiling>{{c.rows, c.k, c.layout, blockRows, c.chunkRows, c.tileK, {0, 0}}});
    ArgBlob args;
    args.ptr(dc).ptr(ds).ptr(dout).ptr(dt);
    auto t0 = std::chrono::steady_clock::now();
    o.r = launch(dev, std::is_same<Out, float>::value ? ascend_shim_entry_fp8_dequant_f32 : ascend_shim_entry_fp8_dequant_bf16,
                 blocks, args);
    o.secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char name[200];
    std::snprintf(name, sizeof name, "fp8 dequant ->%s rows=%u k=%u layout=%s blocks=%u block_rows=%u chunk_rows=%u tile_k=%u",
                  tname<Out>(), c.rows, c.k, c.layout ? "128x128" : "1x128", blocks, blockRows, c.chunkRows, c.tileK);
    CHECK(o.r.rc == 0, "%s: rc %d: %s", name, o.r.rc, o.r.error.c_str());
    if (o.r.rc) return o;
    CHECK(guard_damage(dev, dout, outBytes) == 0, "%s: bytes written past the output", name);
    const uint64_t g2l = uint64_t(c.rows) * c.k + dequant_scale_bytes(c.rows, c.k, c.layout, blocks, blockRows, c.chunkRows);
    const uint64_t l2g = outBytes;
    CHECK(o.r.counters.gm_to_local_bytes == g2l && o.r.counters.local_to_gm_bytes == l2g,
          "%s: counters gm->local %" PRIu64 " (expected %" PRIu64 "), local->gm %" PRIu64 " (expected %" PRIu64 ")", name,
          o.r.counters.gm_to_local_bytes, g2l, o.r.counters.local_to_gm_bytes, l2g);
    if (c.layout == 0) CHECK(g2l == uint64_t(c.rows) * c.k + uint64_t(c.rows) * KB * 4, "%s: layout 0 scale bytes", name);
    const std::vector<Out> out = dev.download<Out>(dout, size_t(c.rows) * c.k);
    o.out.resize(out.size());
    for (size_t i = 0; i < out.size(); ++i) o.out[i] = float(out[i]);
    if (!c.verify) return o;
    int bad = 0, badNan = 0;
    for (uint32_t r = 0; r < c.rows; ++r)
        for (uint32_t j = 0; j < c.k; ++j) {
            const size_t i = size_t(r) * c.k + j;
            const float s = scales[size_t(c.layout ? r / kB : r) * KB + j / kB];
            const float prod = float(e4m3_value(codes[i])) * s;  // the f32 multiply of the reference
            uint32_t want, got;
            if (std::is_same<Out, float>::value) {
                want = f32_bits(prod);
                std::memcpy(&got, &out[i], 4);
            } else {
                uint16_t g16;
                std::memcpy(&g16, &out[i], 2);
                want = bf16_rne(prod);
                got = g16;
            }
            if (std::isnan(prod) || std::isnan(o.out[i])) {
                if (std::isnan(prod) != std::isnan(o.out[i])) ++badNan;
            } else if (want != got) {
                ++bad;
            }
        }
    CHECK(bad == 0 && badNan == 0, "%s: %d outputs differ, %d NaN mismatches", name, bad, badNan);
    return o;
}

// Random codes (all 256, NaN codes included) and scales over many binades, some zero, some powers of two.
void dequant_inputs(const DqCase& c, std::vector<uint8_t>& codes, std::vector<float>& scales) {
    std::mt19937 rng(c.seed);
    std::uniform_real_distribution<float> us(0.5f, 2.0f);
    std::uniform_int_distribution<int> ue(-30, 10);
    const uint32_t KB = cdiv(c.k, kB), SR = c.layout ? cdiv(c.rows, kB) : c.rows;
    codes.resize(size_t(c.rows) * c.k);
    for (auto& v : codes) v = uint8_t(rng());
    scales.resize(size_t(SR) * KB);
    for (size_t i = 0; i < scales.size(); ++i) {
        const int kind = int(rng() % 8);
        scales[i] = kind == 0 ? 0.0f : kind == 1 ? std::ldexp(1.0f, ue(rng)) : std::ldexp(us(rng), ue(rng));
    }
}

template <typename Out>
void dequant_case(const DqCase& c) {
    std::vector<uint8_t> codes;
    std::vector<float> scales;
    dequant_inputs(c, codes, scales);
    run_dequant<Out>(c, codes, scales);
}

// ---- round trips ----------------------------------------------------------------------------------

// |y - x| <= s * half_ulp_e4m3(min(|x / s|, 448)) + 2^-24 (|x| + |y|): the encode's rounding of
// q = x / s (saturation at 448 only ever removes the f32 overshoot of q, at most one f32 ulp),
// plus the f32 roundings of the quotient and of the product y = code * s.
int round_trip_violations(const std::vector<float>& x, const std::vector<float>& y, uint32_t rows, uint32_t k,
                          const std::vector<float>& scales, bool block) {
    const uint32_t KB = cdiv(k, kB);
    int bad = 0;
    for (uint32_t r = 0; r < rows; ++r)
        for (uint32_t j = 0; j < k; ++j) {
            const size_t i = size_t(r) * k + j;
            const double s = scales[size_t(block ? r / kB : r) * KB + j / kB];
            const double q = std::fabs(double(float(x[i] / float(s))));
            const double tol = (s * e4m3_half_ulp(std::min(q, 448.0)) + std::ldexp(std::fabs(x[i]) + std::fabs(y[i]), -24)) *
                               (1 + 1e-12);
            // q may exceed 448 by an f32 ulp (s = amax / 448 rounded down); the encoder saturates it.
            if (!(q <= 448.0 * (1 + std::ldexp(1.0, -22))) || !(std::fabs(double(y[i]) - double(x[i])) <= tol)) {
                if (bad < 3) std::printf("  r=%u j=%u x=%.9g y=%.9g s=%.9g q=%.9g tol=%.3g\n", r, j, x[i], y[i], s, q, tol);
                ++bad;
            }
        }
    return bad;
}

}  // namespace

void test_fp8_weight_quant() {
    // The fast reference encoder against the exhaustive one: every midpoint between neighbouring
    // codes, its float neighbours and the codes themselves, both signs, plus saturation and NaN.
    {
        std::vector<float> v = {0.0f, -0.0f, 448.0f, 464.0f, 1e30f, INFINITY, -INFINITY, std::nanf(""), 1e-30f};
        for (int c = 0; c < 0x7E; ++c) {
            const double lo = e4m3_value(uint8_t(c)), hi = e4m3_value(uint8_t(c + 1)), mid = (lo + hi) / 2;
            for (float f : {float(mid), std::nextafter(float(mid), 0.0f), std::nextafter(float(mid), 1e9f), float(lo)}) {
                v.push_back(f);
                v.push_back(-f);
            }
        }
        int bad = 0;
        for (float f : v) bad += e4m3_encode(f) != e4m3_encode_slow(f);
        CHECK(bad == 0, "fp8 reference encoders disagree on %d of %zu values", bad, v.size());
    }
    uint32_t seed = 1300;
    const uint32_t dims[] = {1, 100, 128, 129, 300};
    for (uint32_t n : dims)
        for (uint32_t k : dims)
            for (bool ue : {false, true}) {
                WqCase c;
                c.n = n; c.k = k; c.ue8m0 = ue; c.blocks = 1 + (seed % 3); c.seed = ++seed;
                run_weight_quant<float>(c);
                c.blocks = 1 + (seed % 4); c.seed = ++seed;
                run_weight_quant<bfloat16_t>(c);
            }
    // More cores than blocks; uneven runs; scale stash flushes (> 256 blocks on one core).
    struct S { uint32_t n, k, blocks, bpc; bool ue; } cases[] = {
        {129, 129, 7, 1, false}, {300, 300, 2, 5, true}, {1, 128 * 300, 1, 0, false}, {2, 128 * 260 + 5, 2, 0, true},
        {257, 385, 3, 0, false},
    };
    for (const S& s : cases) {
        WqCase c;
        c.n = s.n; c.k = s.k; c.blocks = s.blocks; c.bpc = s.bpc; c.ue8m0 = s.ue; c.seed = ++seed;
        run_weight_quant<float>(c);
        c.seed = ++seed;
        run_weight_quant<bfloat16_t>(c);
    }
    // NaN / +-Inf are outside the contract (the Rust reference rejects them): the launch must still
    // succeed, write nothing outside its outputs, and leave every other block exact.
    for (bool ue : {false, true}) {
        WqCase c;
        c.n = 200; c.k = 300; c.blocks = 2; c.ue8m0 = ue; c.nonFinite = true; c.seed = ++seed;
        run_weight_quant<float>(c);
        c.seed = ++seed;
        run_weight_quant<bfloat16_t>(c);
    }
}

void test_fp8_dequant() {
    // Every code once, scale 1: the exact E4M3 values (NaN for 0x7F / 0xFF), both outputs and layouts.
    for (uint32_t layout : {0u, 1u}) {
        DqCase c;
        c.rows = 2; c.k = 256; c.layout = layout;
        std::vector<uint8_t> codes(512);
        for (int i = 0; i < 512; ++i) codes[i] = uint8_t(i);
        std::vector<float> scales(layout ? 2 : 4, 1.0f);
        DqOut f = run_dequant<float>(c, codes, scales);
        DqOut b = run_dequant<bfloat16_t>(c, codes, scales);
        int bad = 0;
        for (int i = 0; i < 512 && !f.out.empty() && !b.out.empty(); ++i) {
            const double want = e4m3_value(uint8_t(i));
            for (float got : {f.out[i], b.out[i]}) bad += std::isnan(want) ? !std::isnan(got) : double(got) != want;
        }
        CHECK(bad == 0, "fp8 dequant layout %u: %d code values wrong", layout, bad);
    }
    uint32_t seed = 1700;
    const uint32_t dims[] = {1, 100, 128, 129, 300};
    // (chunk_rows, tile_k) pairs, chunk_rows * tile_k <= 8192; 7 and 3 make chunks cross 128-row bands.
    const uint32_t tilings[][2] = {{16, 128}, {7, 256}, {64, 128}, {3, 384}, {1, 8192}, {8, 1024}, {128 / 4, 256}};
    int ti = 0;
    for (uint32_t rows : dims)
        for (uint32_t k : dims)
            for (uint32_t layout : {0u, 1u}) {
                DqCase c;
                c.rows = rows; c.k = k; c.layout = layout;
                c.chunkRows = tilings[ti % 7][0]; c.tileK = tilings[ti % 7][1]; ++ti;
                c.blocks = 1 + (seed % 3); c.seed = ++seed;
                dequant_case<bfloat16_t>(c);
                c.chunkRows = tilings[ti % 7][0]; c.tileK = tilings[ti % 7][1]; ++ti;
                c.blocks = 1 + (seed % 4); c.seed = ++seed;
                dequant_case<float>(c);
            }
    // Layout 1 the recommended way (block_rows a multiple of 128, chunk_rows dividing 128, tile_k 128:
    // one Muls per chunk, one scale row per chunk), more cores than rows, rows = 0.
    struct S { uint32_t rows, k, layout, blocks, blockRows, chunkRows, tileK; } cases[] = {
        {300, 300, 1, 3, 128, 64, 128}, {257, 129, 1, 3, 128, 16, 128}, {3, 300, 0, 5, 1, 1, 128},
        {0, 100, 0, 2, 1, 4, 128},      {0, 100, 1, 1, 1, 4, 128},
    };
    for (const S& s : cases) {
        DqCase c;
        c.rows = s.rows; c.k = s.k; c.layout = s.layout; c.blocks = s.blocks; c.blockRows = s.blockRows;
        c.chunkRows = s.chunkRows; c.tileK = s.tileK; c.seed = ++seed;
        dequant_case<bfloat16_t>(c);
        c.seed = ++seed;
        dequant_case<float>(c);
    }
    const uint64_t b = dequant_scale_bytes(300, 300, 1, 3, 128, 64);
    // rows [0,128) [128,256) [256,300): 2 + 2 + 1 chunks of 64 rows, one scale row of 3 each.
    CHECK(b == 5ull * 3 * 4, "fp8 dequant: band-aligned chunks load one scale row each (%" PRIu64 " bytes)", b);

    // Round trips: weight quant -> dequant (128x128) and act quant -> dequant (1x128), f32 out.
    for (bool ue : {false, true}) {
        for (uint32_t n : {129u, 300u}) {
            WqCase c;
            c.n = n; c.k = 300; c.blocks = 2; c.ue8m0 = ue; c.seed = ++seed;
            WqOut q = run_weight_quant<float>(c);
            if (q.r.rc) continue;
            DqCase d;
            d.rows = c.n; d.k = c.k; d.layout = 1; d.blocks = 3; d.chunkRows = 16; d.tileK = 128;
            DqOut y = run_dequant<float>(d, q.codes, q.scales);
            if (y.r.rc) continue;
            const int bad = round_trip_violations(q.x, y.out, c.n, c.k, q.scales, true);
            CHECK(bad == 0, "fp8 round trip weight quant -> dequant n=%u ue8m0=%d: %d elements beyond half an ulp", n, int(ue), bad);
        }
        // 1x128: per-token activations.
        const uint32_t m = 37, k = 300, KB = cdiv(k, kB);
        std::mt19937 rng(++seed);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::uniform_real_distribution<float> ue2(-3.0f, 3.0f);
        std::vector<float> x(size_t(m) * k);
        for (uint32_t r = 0; r < m; ++r) {
            const float mag = std::pow(10.0f, ue2(rng));
            for (uint32_t j = 0; j < k; ++j) x[size_t(r) * k + j] = nd(rng) * mag;
        }
        FakeDevice dev;
        const uint64_t dx = dev.upload(x), dc = dev.alloc(x.size()), ds = dev.alloc(size_t(m) * KB * 4);
        const uint64_t dt = dev.upload(std::vector<Fp8QuantTiling>{{m, k, 13, 256, ue ? 1u : 0u, {0, 0, 0}}});
        ArgBlob args;
        args.ptr(dx).ptr(dc).ptr(ds).ptr(dev.upload(std::vector<uint32_t>(3 * 8, 0u))).ptr(dt);
        Result r = launch(dev, ascend_shim_entry_fp8_act_quant_f32, 3, args);
        CHECK(r.rc == 0, "fp8 round trip act quant: %s", r.error.c_str());
        if (r.rc) continue;
        const std::vector<uint8_t> codes = dev.download<uint8_t>(dc, x.size());
        const std::vector<float> scales = dev.download<float>(ds, size_t(m) * KB);
        DqCase d;
        d.rows = m; d.k = k; d.layout = 0; d.blocks = 2; d.chunkRows = 5; d.tileK = 256;
        DqOut y = run_dequant<float>(d, codes, scales);
        if (y.r.rc) continue;
        const int bad = round_trip_violations(x, y.out, m, k, scales, false);
        CHECK(bad == 0, "fp8 round trip act quant -> dequant ue8m0=%d: %d elements beyond half an ulp", int(ue), bad);
    }
}

void fp8_weight_timings() {
    // A DeepSeek-V3 MoE expert projection [2048, 7168] (bf16 master weights), 40 cores.
    WqCase c;
    c.n = 2048; c.k = 7168; c.blocks = 40; c.verify = false; c.seed = 5;
    WqOut q = run_weight_quant<bfloat16_t>(c);
    std::printf("  fp8 weight quant bf16 2048 x 7168, 40 blocks: %.3f s; gm->local %.1f MB, local->gm %.1f MB\n", q.secs,
                q.r.counters.gm_to_local_bytes / 1e6, q.r.counters.local_to_gm_bytes / 1e6);
    if (q.r.rc) return;
    DqCase d;
    d.rows = 2048; d.k = 7168; d.layout = 1; d.blocks = 40; d.blockRows = 64; d.chunkRows = 64; d.tileK = 128;
    d.verify = false;
    DqOut y = run_dequant<bfloat16_t>(d, q.codes, q.scales);
    std::printf("  fp8 dequant ->bf16 2048 x 7168 (128x128 scales), 40 blocks: %.3f s; gm->local %.1f MB, local->gm %.1f MB\n",
                y.secs, y.r.counters.gm_to_local_bytes / 1e6, y.r.counters.local_to_gm_bytes / 1e6);
}
