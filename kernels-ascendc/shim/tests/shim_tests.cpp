// Standalone tests of the shim and the first kernels, launched through the C ABI exactly as the
// Rust simulator will, with a tiny fake device: malloc'd blocks at non-canonical fake addresses.
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "ascend_shim_abi.h"
#include "ascend_shim/numeric.h"
#include "kernel_operator.h"
#include "test_support.h"
#include "../../tiling/matmul_tiling.h"
#include "../../tiling/swiglu_tiling.h"

#define ENTRY(name) extern "C" int32_t ascend_shim_entry_##name(const AscendShimLaunch*);
ENTRY(swiglu_f32) ENTRY(swiglu_f16) ENTRY(swiglu_bf16)
ENTRY(matmul_f16_f32) ENTRY(matmul_bf16_f32) ENTRY(matmul_f16_bf16) ENTRY(matmul_bf16_bf16)
ENTRY(probe_mix) ENTRY(probe_vector) ENTRY(probe_copy) ENTRY(probe_tiling) ENTRY(probe_gemv)
ENTRY(probe_events) ENTRY(probe_loaddata_noop) ENTRY(probe_mmad_zero) ENTRY(broken_mmad_size) ENTRY(probe_crosscore_ids) ENTRY(broken_crosscore_id) ENTRY(broken_event_pool)
ENTRY(broken_ub_capacity) ENTRY(broken_l0c_capacity) ENTRY(broken_misaligned) ENTRY(broken_copy_len)
ENTRY(broken_uninit_read) ENTRY(broken_gm_oob) ENTRY(broken_gm_outside_launch) ENTRY(broken_mmad_uninit)
ENTRY(broken_fixpipe_uninit)
ENTRY(broken_deque_empty) ENTRY(broken_alloc_exhausted) ENTRY(broken_enque_depth) ENTRY(broken_tensor_leak)
ENTRY(broken_use_after_free) ENTRY(broken_wait_unset) ENTRY(broken_flag_left_set) ENTRY(broken_flag_double_set)
ENTRY(broken_barrier_s) ENTRY(broken_overlap) ENTRY(broken_cast_mode) ENTRY(broken_position) ENTRY(broken_kernel_type)
ENTRY(broken_gemv_mode) ENTRY(broken_crosscore_deadlock) ENTRY(broken_crosscore_left_set) ENTRY(broken_crosscore_not_mix)
#undef ENTRY

// ---- numerics ---------------------------------------------------------------------------------------

static void test_numeric_types() {
    // Every half round-trips through float; every float -> half agrees with the exact reference.
    int bad = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
        float f = ascend_shim::f16_to_f32(uint16_t(h));
        if (std::isnan(f)) continue;
        if (ascend_shim::f32_to_f16_rne(f) != h) ++bad;
        // midpoints and their neighbours between h and the next half
        float g = ascend_shim::f16_to_f32(uint16_t(h + 1));
        if ((h & 0x7FFF) >= 0x7BFF || std::isnan(g) || (h & 0x8000) != ((h + 1) & 0x8000)) continue;
        double mid = (double(f) + double(g)) / 2;
        for (double x : {mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e9), std::nextafter(mid, -1e9)}) {
            float xf = float(x);
            if (double(xf) != x) continue;
            uint16_t want = uint16_t(ascend_shim::round_to_format(x, 10, 5, Rounding::RINT, false));
            if (ascend_shim::f32_to_f16_rne(xf) != want) ++bad;
        }
    }
    CHECK(bad == 0, "half conversions: %d mismatches", bad);
    std::mt19937 rng(1);
    bad = 0;
    int badB = 0;
    for (int i = 0; i < 2000000; ++i) {
        uint32_t u = rng();
        float f;
        std::memcpy(&f, &u, 4);
        if (std::isnan(f)) continue;
        if (ascend_shim::f32_to_f16_rne(f) != uint16_t(ascend_shim::round_to_format(f, 10, 5, Rounding::RINT, false))) ++bad;
        if (ascend_shim::f32_to_bf16_rne(f) != uint16_t(ascend_shim::round_to_format(f, 7, 8, Rounding::RINT, false))) ++badB;
    }
    CHECK(bad == 0 && badB == 0, "random float -> half/bf16: %d / %d mismatches", bad, badB);
    CHECK(ascend_shim::f32_to_f16_rne(65504.0f) == 0x7BFF && ascend_shim::f32_to_f16_rne(65520.0f) == 0x7C00,
          "half overflow threshold");
    CHECK(ascend_shim::f32_to_f16_rne(5.9604645e-8f) == 1 && ascend_shim::f32_to_f16_rne(2.9802322e-8f) == 0,
          "half smallest subnormal / tie to even at zero");
    CHECK(float(half(1.0f) + half(2.0f)) == 3.0f, "half arithmetic via float");
    CHECK(ascend_shim::round_to_format(1.0 + 1.0 / 4096, 10, 5, Rounding::ODD, false) == 0x3C01, "round-to-odd");
    CHECK(ascend_shim::round_to_format(-1.5, 7, 8, Rounding::FLOOR, false) == 0xBFC0, "bf16 floor exact");
    CHECK(ascend_shim::round_to_format(1e6, 10, 5, Rounding::RINT, true) == 0x7BFF, "half saturation");

    // Cast's fast paths agree with the general conversion on every input they take.
    bad = 0;
    const ascend_shim::CastTable8<uint8_t> u8;
    const ascend_shim::CastTable8<int8_t> i8;
    for (uint32_t c = 0; c < 256; ++c) {
        if (u8.bits[c] != ascend_shim::cast_one<half, uint8_t>(uint8_t(c), Rounding::RINT).bits_) ++bad;
        if (i8.bits[c] != ascend_shim::cast_one<half, int8_t>(int8_t(uint8_t(c)), Rounding::RINT).bits_) ++bad;
    }
    for (uint32_t h = 0; h < 65536; ++h)
        for (Rounding rm : {Rounding::RINT, Rounding::FLOOR, Rounding::CEIL, Rounding::ROUND, Rounding::TRUNC}) {
            const half v = half::from_bits(uint16_t(h));
            if (ascend_shim::cast_half_int32(v, rm) != ascend_shim::cast_one<int32_t, half>(v, rm)) ++bad;
        }
    CHECK(bad == 0, "Cast fast paths (8-bit -> half, half -> int32): %d mismatches", bad);
}

// ---- Mmad micro-kernels ----------------------------------------------------------------------------

// Every micro-kernel this CPU has gives the portable kernel's bits (products are exact in fp32, and
// each sum runs over k in order), for odd sizes, GEMV mode, fresh and accumulating C.
static void test_mmad_isas() {
    std::mt19937 rng(7);
    struct Shape { uint32_t m, n, k; };
    for (Shape sh : {Shape{1, 37, 53}, Shape{16, 16, 16}, Shape{23, 45, 77}, Shape{128, 128, 128}, Shape{9, 130, 5},
                     Shape{40, 17, 200}}) {
        for (int bf = 0; bf < 2; ++bf)
            for (int init = 0; init < 2; ++init) {
                const uint32_t mp = (sh.m + 15) / 16 * 16, np = (sh.n + 15) / 16 * 16, kp = (sh.k + 15) / 16 * 16;
                std::vector<uint16_t> a(size_t(mp) * kp), b(size_t(kp) * np);
                std::uniform_real_distribution<float> u(-2.0f, 2.0f);
                for (auto& v : a) v = bf ? ascend_shim::f32_to_bf16_rne(u(rng)) : ascend_shim::f32_to_f16_rne(u(rng));
                for (auto& v : b) v = bf ? ascend_shim::f32_to_bf16_rne(u(rng)) : ascend_shim::f32_to_f16_rne(u(rng));
                std::vector<float> c0(size_t(mp) * np);
                for (auto& v : c0) v = u(rng);
                std::vector<float> want = c0;
                ascend_shim::MmadJob job{reinterpret_cast<const uint8_t*>(a.data()), reinterpret_cast<const uint8_t*>(b.data()),
                                         want.data(), sh.m, sh.n, sh.k, bf == 1, sh.m == 1, init == 1};
                CHECK(ascend_shim::mmad_compute_with(job, "generic"), "generic Mmad kernel always exists");
                for (const char* isa : {"avx2", "avx512"}) {
                    std::vector<float> got = c0;
                    job.c = got.data();
                    if (!ascend_shim::mmad_compute_with(job, isa)) continue;
                    CHECK(std::memcmp(got.data(), want.data(), got.size() * 4) == 0,
                          "Mmad %s m=%u n=%u k=%u bf16=%d init=%d differs from the generic kernel", isa, sh.m, sh.n, sh.k,
                          bf, init);
                }
            }
    }
}

// ---- SwiGLU -------------------------------------------------------------------------------------------

template <typename T> struct Dt;
template <> struct Dt<float> { static constexpr Entry entry = ascend_shim_entry_swiglu_f32; static constexpr double tol = 1e-6; static const char* name() { return "f32"; } };
template <> struct Dt<half> { static constexpr Entry entry = ascend_shim_entry_swiglu_f16; static constexpr double tol = 1.0 / 1024; static const char* name() { return "f16"; } };
template <> struct Dt<bfloat16_t> { static constexpr Entry entry = ascend_shim_entry_swiglu_bf16; static constexpr double tol = 1.0 / 128; static const char* name() { return "bf16"; } };

template <typename T>
static void run_swiglu(uint32_t total, uint32_t blocks, uint32_t tile, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dg(-8.0f, 8.0f), du(-4.0f, 4.0f);
    std::vector<T> gate(total), up(total);
    for (uint32_t i = 0; i < total; ++i) { gate[i] = T(dg(rng)); up[i] = T(du(rng)); }
    FakeDevice dev;
    uint32_t blockLen = (total + blocks - 1) / blocks;
    SwigluTiling t{total, blockLen, tile, 0};
    uint64_t dg_ = dev.upload(gate), du_ = dev.upload(up), dout = dev.alloc(size_t(total) * sizeof(T));
    uint64_t dt = dev.upload(std::vector<SwigluTiling>{t});
    ArgBlob args;
    args.ptr(dg_).ptr(du_).ptr(dout).ptr(dt);
    Result r = launch(dev, Dt<T>::entry, blocks, args);
    CHECK(r.rc == 0, "swiglu %s n=%u blocks=%u tile=%u: rc %d: %s", Dt<T>::name(), total, blocks, tile, r.rc, r.error.c_str());
    if (r.rc != 0) return;
    std::vector<T> out = dev.download<T>(dout, total);
    double worst = 0;
    for (uint32_t i = 0; i < total; ++i) {
        double g = double(float(gate[i])), u = double(float(up[i]));
        double ref = g / (1.0 + std::exp(-g)) * u;
        double err = std::fabs(double(float(out[i])) - ref) / (std::fabs(ref) + 1e-3);
        worst = std::max(worst, err);
    }
    CHECK(worst <= Dt<T>::tol, "swiglu %s n=%u blocks=%u tile=%u: worst rel err %.3g > %.3g", Dt<T>::name(), total,
          blocks, tile, worst, Dt<T>::tol);
    CHECK(r.counters.gm_to_local_bytes == 2ull * total * sizeof(T),
          "swiglu counters gm->local %" PRIu64, r.counters.gm_to_local_bytes);
    CHECK(r.counters.local_to_gm_bytes == uint64_t(total) * sizeof(T), "swiglu counters local->gm %" PRIu64,
          r.counters.local_to_gm_bytes);
    CHECK(r.counters.cores_run == blocks, "swiglu cores_run %" PRIu64, r.counters.cores_run);
}

static void test_swiglu() {
    const uint32_t sizes[] = {1, 7, 8, 15, 16, 17, 63, 64, 100, 1000, 4097, 70001};
    uint32_t seed = 10;
    for (uint32_t n : sizes)
        for (uint32_t blocks : {1u, 3u, 8u})
            for (uint32_t tile : {64u, 1024u}) {
                run_swiglu<float>(n, blocks, tile, ++seed);
                run_swiglu<half>(n, blocks, tile, ++seed);
                run_swiglu<bfloat16_t>(n, blocks, tile, ++seed);
            }
    run_swiglu<float>(100000, 4, 6720, 99);
    run_swiglu<bfloat16_t>(100000, 4, 9408, 98);
}

// ---- matmul -----------------------------------------------------------------------------------------

template <typename In, typename Out>
static Entry matmul_entry() {
    if (std::is_same<In, half>::value) return std::is_same<Out, float>::value ? ascend_shim_entry_matmul_f16_f32 : ascend_shim_entry_matmul_f16_bf16;
    return std::is_same<Out, float>::value ? ascend_shim_entry_matmul_bf16_f32 : ascend_shim_entry_matmul_bf16_bf16;
}

template <typename In, typename Out>
static double run_matmul(uint32_t m, uint32_t n, uint32_t k, uint32_t trans, uint32_t blocks, uint32_t bm,
                         uint32_t bn, uint32_t bk, bool verify = true) {
    std::mt19937 rng(m * 131 + n * 7 + k + trans);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<In> a(size_t(m) * k), b(size_t(k) * n);
    for (auto& x : a) x = In(d(rng));
    for (auto& x : b) x = In(d(rng));
    FakeDevice dev;
    MatmulTiling t{m, n, k, bm, bn, bk, trans, 0};
    uint64_t da = dev.upload(a), db = dev.upload(b), dc = dev.alloc(size_t(m) * n * sizeof(Out));
    uint64_t dt = dev.upload(std::vector<MatmulTiling>{t});
    ArgBlob args;
    args.ptr(da).ptr(db).ptr(dc).ptr(dt);
    auto t0 = std::chrono::steady_clock::now();
    Result r = launch(dev, matmul_entry<In, Out>(), blocks, args);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(r.rc == 0, "matmul %ux%ux%u trans=%u: rc %d: %s", m, n, k, trans, r.rc, r.error.c_str());
    if (r.rc != 0 || !verify) return secs;
    std::vector<Out> c = dev.download<Out>(dc, size_t(m) * n);
    int bad = 0;
    double worst = 0;
    for (uint32_t i = 0; i < m; ++i)
        for (uint32_t j = 0; j < n; ++j) {
            double ref = 0, mag = 0;
            for (uint32_t kk = 0; kk < k; ++kk) {
                double av = float(a[size_t(i) * k + kk]);
                double bv = trans ? float(b[size_t(j) * k + kk]) : float(b[size_t(kk) * n + j]);
                ref += av * bv;
                mag += std::fabs(av * bv);
            }
            // fp32 accumulation over k terms, plus the output rounding for bf16.
            double tol = 2.0 * k * 6e-8 * mag + (std::is_same<Out, float>::value ? 0 : std::fabs(ref) / 256) + 1e-30;
            double err = std::fabs(double(float(c[size_t(i) * n + j])) - ref);
            worst = std::max(worst, err / (mag + 1e-30));
            if (err > tol) ++bad;
        }
    CHECK(bad == 0, "matmul %ux%ux%u trans=%u blocks=%u base=%u/%u/%u: %d elements out of tolerance (worst %.3g)", m,
          n, k, trans, blocks, bm, bn, bk, bad, worst);
    // M tiles are padded to 16 rows (no GEMV mode): the cube works on round_up(m, 16) rows.
    CHECK(r.counters.cube_macs == uint64_t((m + 15) / 16 * 16) * n * k, "matmul cube_macs %" PRIu64, r.counters.cube_macs);
    CHECK(r.counters.local_to_gm_bytes == uint64_t(m) * n * sizeof(Out), "matmul local->gm %" PRIu64,
          r.counters.local_to_gm_bytes);
    return secs;
}

static void test_matmul() {
    struct Shape { uint32_t m, n, k; } shapes[] = {{1, 1, 1}, {16, 16, 16}, {17, 33, 65}, {5, 300, 7},
                                                 {130, 250, 300}, {128, 128, 128}, {64, 1, 200},
                                                 {1, 40, 300}, {129, 20, 40}};
    for (auto s : shapes)
        for (uint32_t trans : {0u, 1u}) {
            run_matmul<half, float>(s.m, s.n, s.k, trans, 3, 128, 128, 128);
            run_matmul<bfloat16_t, float>(s.m, s.n, s.k, trans, 2, 32, 48, 32);
            run_matmul<half, bfloat16_t>(s.m, s.n, s.k, trans, 1, 64, 64, 64);
            run_matmul<bfloat16_t, bfloat16_t>(s.m, s.n, s.k, trans, 5, 16, 16, 16);
        }
}

// ---- probes -------------------------------------------------------------------------------------------

static void test_probe_mix() {
    FakeDevice dev;
    const uint32_t blocks = 3;
    uint64_t out = dev.alloc(blocks * 3 * 8 * 4);
    ArgBlob args;
    args.ptr(out).add<uint32_t>(0xBEEF).add<uint64_t>(0x1234567890ull);
    CHECK(args.bytes.size() == 24, "arg blob layout");
    Result r = launch(dev, ascend_shim_entry_probe_mix, blocks, args);
    CHECK(r.rc == 0, "probe_mix rc %d: %s", r.rc, r.error.c_str());
    std::vector<uint32_t> v = dev.download<uint32_t>(out, blocks * 3 * 8);
    for (uint32_t b = 0; b < blocks; ++b) {
        const uint32_t* rec = &v[b * 8];
        CHECK(rec[0] == 1 && rec[1] == b && rec[2] == blocks && rec[3] == 0 && rec[4] == 1 && rec[5] == 0xBEEF &&
                  rec[6] == 0x34567890u,
              "AIC record %u: %u %u %u %u %u %x %x", b, rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6]);
    }
    for (uint32_t i = 0; i < 2 * blocks; ++i) {
        const uint32_t* rec = &v[(blocks + i) * 8];
        CHECK(rec[0] == 2 && rec[1] == i && rec[2] == blocks && rec[3] == i % 2 && rec[4] == 2,
              "AIV record %u: %u %u %u %u %u", i, rec[0], rec[1], rec[2], rec[3], rec[4]);
    }
    CHECK(r.counters.cores_run == 9, "mix cores_run %" PRIu64, r.counters.cores_run);
}

static void test_probe_vector() {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> d(-3.0f, 3.0f);
    std::vector<float> x(256), y(256);
    for (auto& v : x) v = d(rng);
    for (auto& v : y) v = d(rng);
    x[17] = 2.5f;  // exact, FLOOR gives 2
    FakeDevice dev;
    uint64_t dx = dev.upload(x), dy = dev.upload(y), dout = dev.alloc(1552 * 4);
    ArgBlob args;
    args.ptr(dx).ptr(dy).ptr(dout);
    Result r = launch(dev, ascend_shim_entry_probe_vector, 1, args);
    CHECK(r.rc == 0, "probe_vector rc %d: %s", r.rc, r.error.c_str());
    if (r.rc) return;
    std::vector<float> o = dev.download<float>(dout, 1552);
    int bad = 0;
    double sum = 0;
    float mx = -1e30f;
    uint32_t mi = 0;
    for (int i = 0; i < 256; ++i) {
        if (o[i] != std::max(x[i], 0.0f)) ++bad;
        if (o[256 + i] != (x[i] > y[i] ? x[i] : y[i])) ++bad;
        float odd = float(half::from_bits(uint16_t(ascend_shim::round_to_format(x[i], 10, 5, Rounding::ODD, true))));
        if (o[528 + i] != odd) ++bad;
        if (o[784 + i] != std::floor(x[i])) ++bad;
        if (std::fabs(o[1040 + i] - std::sqrt(std::fabs(x[i]))) > 1e-6f) ++bad;
        if (std::fabs(o[1296 + i] - std::log1p(std::exp(double(x[i])))) > 1e-5) ++bad;
        sum += x[i];
        if (x[i] > mx) { mx = x[i]; mi = uint32_t(i); }
    }
    CHECK(bad == 0, "probe_vector: %d element mismatches", bad);
    CHECK(std::fabs(o[512] - sum) < 1e-4, "ReduceSum %g vs %g", o[512], sum);
    uint32_t idx;
    std::memcpy(&idx, &o[521], 4);
    CHECK(o[520] == mx && idx == mi, "ReduceMax %g@%u vs %g@%u", o[520], idx, mx, mi);
    CHECK(r.counters.vector_elem_ops > 0 && r.counters.local_to_gm_bytes == (256 * 6 + 16) * 4,
          "probe counters %" PRIu64 " %" PRIu64, r.counters.vector_elem_ops, r.counters.local_to_gm_bytes);
}

static void test_probe_copy() {
    std::vector<float> in(35);
    for (int i = 0; i < 35; ++i) in[i] = float(i + 1);
    FakeDevice dev;
    uint64_t di = dev.upload(in), dout = dev.upload(std::vector<float>(120, 7777.0f));
    ArgBlob args;
    args.ptr(di).ptr(dout);
    Result r = launch(dev, ascend_shim_entry_probe_copy, 1, args);
    CHECK(r.rc == 0, "probe_copy rc %d: %s", r.rc, r.error.c_str());
    if (r.rc) return;
    std::vector<float> o = dev.download<float>(dout, 120);
    int bad = 0;
    for (int rr = 0; rr < 5; ++rr)
        for (int c = 0; c < 8; ++c) {
            float want = c < 7 ? in[rr * 7 + c] : -1.0f;
            if (o[rr * 8 + c] != want) ++bad;
            if (o[40 + rr * 8 + c] != (c < 7 ? in[rr * 7 + c] : 7777.0f)) ++bad;
        }
    for (int c = 0; c < 8; ++c) {
        if (o[80 + c] != o[c]) ++bad;        // UB block 0 = row 0
        if (o[88 + c] != o[16 + c]) ++bad;   // UB block 2 = row 2 (block 1 skipped)
    }
    for (int c = 96; c < 120; ++c) if (o[c] != 7777.0f) ++bad;
    CHECK(bad == 0, "probe_copy: %d mismatches", bad);
    CHECK(r.counters.gm_to_local_bytes == 140 && r.counters.local_to_gm_bytes == 160 + 140 + 64 &&
              r.counters.local_to_local_bytes == 64,
          "probe_copy counters %" PRIu64 " %" PRIu64 " %" PRIu64, r.counters.gm_to_local_bytes,
          r.counters.local_to_gm_bytes, r.counters.local_to_local_bytes);
}

static void test_probe_tiling() {
    FakeDevice dev;
    uint64_t out = dev.alloc(4), t = dev.upload(std::vector<uint32_t>{40, 2});
    ArgBlob args;
    args.ptr(out).ptr(t);
    Result r = launch(dev, ascend_shim_entry_probe_tiling, 1, args);
    CHECK(r.rc == 0 && dev.download<uint32_t>(out, 1)[0] == 42, "probe_tiling: %d %s", r.rc, r.error.c_str());
    uint64_t small = dev.alloc(4);
    ArgBlob bad;
    bad.ptr(out).ptr(small);
    r = launch(dev, ascend_shim_entry_probe_tiling, 1, bad);
    CHECK(r.rc == ASCEND_SHIM_ERR_KERNEL && r.error.find("[gm-oob] tiling struct of 8 bytes") != std::string::npos,
          "probe_tiling small: %s", r.error.c_str());
}

static void test_probe_gemv() {
    std::mt19937 rng(8);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<half> a(64), b(20 * 40);
    for (auto& x : a) x = half(d(rng));
    for (auto& x : b) x = half(d(rng));
    FakeDevice dev;
    uint64_t da = dev.upload(a), db = dev.upload(b), dc = dev.alloc(20 * 4);
    ArgBlob args;
    args.ptr(da).ptr(db).ptr(dc);
    Result r = launch(dev, ascend_shim_entry_probe_gemv, 1, args);
    CHECK(r.rc == 0, "probe_gemv rc %d: %s", r.rc, r.error.c_str());
    if (r.rc) return;
    std::vector<float> c = dev.download<float>(dc, 20);
    int bad = 0;
    for (uint32_t j = 0; j < 20; ++j) {
        double ref = 0, mag = 0;
        for (uint32_t k = 0; k < 40; ++k) {
            ref += double(float(a[k])) * double(float(b[j * 40 + k]));
            mag += std::fabs(double(float(a[k])) * double(float(b[j * 40 + k])));
        }
        // Products of halves are exact in fp32; 40 fp32 additions each round by <= 2^-24 * mag.
        if (std::fabs(double(c[j]) - ref) > 40 * 6e-8 * mag) ++bad;
    }
    CHECK(bad == 0, "probe_gemv: %d of 20 results wrong", bad);
    CHECK(r.counters.cube_macs == 20 * 40, "probe_gemv cube_macs %" PRIu64, r.counters.cube_macs);
}

static void test_probe_fidelity() {
    FakeDevice dev;
    uint64_t out = dev.alloc(8 * 4);
    ArgBlob args;
    args.ptr(out);
    Result r = launch(dev, ascend_shim_entry_probe_events, 1, args);
    CHECK(r.rc == 0, "probe_events rc %d: %s", r.rc, r.error.c_str());
    if (r.rc == 0) {
        std::vector<int32_t> v = dev.download<int32_t>(out, 8);
        CHECK(v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 1 && v[4] == 0 && v[5] == 0,
              "event ids: fetch %d, fetch %d, alloc %d, fetch %d, other event %d, after release %d", v[0], v[1], v[2],
              v[3], v[4], v[5]);
    }
    r = launch(dev, ascend_shim_entry_probe_loaddata_noop, 1, args);
    CHECK(r.rc == 0 && r.counters.local_to_local_bytes == 0, "LoadData repeatTimes 0: rc %d, %" PRIu64 " bytes: %s",
          r.rc, r.counters.local_to_local_bytes, r.error.c_str());
    r = launch(dev, ascend_shim_entry_probe_mmad_zero, 1, args);
    CHECK(r.rc == 0 && r.counters.cube_macs == 0, "Mmad with a zero size: rc %d, %" PRIu64 " MACs: %s", r.rc,
          r.counters.cube_macs, r.error.c_str());
    CHECK(r.rc == 0 && dev.download<uint32_t>(out, 1)[0] == 1, "MmadParams::cmatrixInitVal defaults to true");
    r = launch(dev, ascend_shim_entry_probe_crosscore_ids, 2, args);
    CHECK(r.rc == 0, "cross-core ids 14 and 15: rc %d: %s", r.rc, r.error.c_str());
}

// ---- broken kernels and ABI errors ------------------------------------------------------------------

static void test_broken() {
    struct Case { const char* name; Entry e; const char* rule; const char* detail; } cases[] = {
        {"broken_ub_capacity", ascend_shim_entry_broken_ub_capacity, "[capacity]", "UB, which has 196608 bytes"},
        {"broken_l0c_capacity", ascend_shim_entry_broken_l0c_capacity, "[capacity]", "L0C, which has 131072 bytes"},
        {"broken_misaligned", ascend_shim_entry_broken_misaligned, "[align]", "not 32-byte aligned"},
        {"broken_copy_len", ascend_shim_entry_broken_copy_len, "[datacopy-len]", "40 bytes"},
        {"broken_uninit_read", ascend_shim_entry_broken_uninit_read, "[uninit-read]", "Add reads src0"},
        {"broken_gm_oob", ascend_shim_entry_broken_gm_oob, "[gm-oob]", "[192, 320)"},
        {"broken_gm_outside_launch", ascend_shim_entry_broken_gm_outside_launch, "[gm-oob]", "not inside one buffer"},
        {"broken_mmad_uninit", ascend_shim_entry_broken_mmad_uninit, "[uninit-read]", "Mmad reads A (fm)"},
        {"broken_fixpipe_uninit", ascend_shim_entry_broken_fixpipe_uninit, "[uninit-read]",
         "Fixpipe(L0C->GM) reads src: L0C bytes [512, 576)"},
        {"broken_deque_empty", ascend_shim_entry_broken_deque_empty, "[deque-empty]", "DeQue without EnQue"},
        {"broken_alloc_exhausted", ascend_shim_entry_broken_alloc_exhausted, "[alloc-exhausted]", "2 buffer(s)"},
        {"broken_enque_depth", ascend_shim_entry_broken_enque_depth, "[enque-depth]", "depth 1"},
        {"broken_tensor_leak", ascend_shim_entry_broken_tensor_leak, "[tensor-leak]", "still enqueued"},
        {"broken_use_after_free", ascend_shim_entry_broken_use_after_free, "[use-after-free]", "Duplicate"},
        {"broken_wait_unset", ascend_shim_entry_broken_wait_unset, "[flag-wait-unset]", "WaitFlag<MTE2_V>(0)"},
        {"broken_flag_left_set", ascend_shim_entry_broken_flag_left_set, "[flag-left-set]", "SetFlag<V_MTE3>(1)"},
        {"broken_flag_double_set", ascend_shim_entry_broken_flag_double_set, "[flag-double-set]", "MTE2_V"},
        {"broken_barrier_s", ascend_shim_entry_broken_barrier_s, "[pipe-barrier]", "PIPE_S"},
        {"broken_cast_mode", ascend_shim_entry_broken_cast_mode, "[cast-mode]", "float -> bfloat16 does not support CAST_NONE"},
        {"broken_position", ascend_shim_entry_broken_position, "[position]", "an AIC core"},
        {"broken_overlap", ascend_shim_entry_broken_overlap, "[overlap]", "partially overlaps"},
        {"broken_kernel_type", ascend_shim_entry_broken_kernel_type, "[kernel-type]", "KERNEL_TASK_TYPE_DEFAULT"},
        {"broken_mmad_size", ascend_shim_entry_broken_mmad_size, "[cube-params]", "m 4096, n 16, k 16 must each be in [0,4095]"},
        {"broken_gemv_mode", ascend_shim_entry_broken_gemv_mode, "[gemv-mode]", "plain 1 x 32 row"},
        {"broken_crosscore_id", ascend_shim_entry_broken_crosscore_id, "[flag-id]", "cross-core flag ids are 0..15"},
        {"broken_event_pool", ascend_shim_entry_broken_event_pool, "[event-pool]", "AllocEventID<V_MTE3>: no free id"},
        {"broken_crosscore_deadlock", ascend_shim_entry_broken_crosscore_deadlock, "[crosscore-deadlock]", "CrossCoreWaitFlag(3)"},
        {"broken_crosscore_left_set", ascend_shim_entry_broken_crosscore_left_set, "[crosscore-left-set]", "flag 4 has 1 set(s) from the AIC"},
        {"broken_crosscore_not_mix", ascend_shim_entry_broken_crosscore_not_mix, "[crosscore-mode]", "not KERNEL_TYPE_MIX_AIC_1_2"},
    };
    for (const Case& c : cases) {
        for (uint32_t blocks : {1u, 4u}) {
            FakeDevice dev;
            uint64_t in = dev.upload(std::vector<float>(256, 1.0f)), out = dev.alloc(256 * 4);
            ArgBlob args;
            args.ptr(in).ptr(out);
            Result r = launch(dev, c.e, blocks, args);
            std::string prefix = std::string("kernel '") + c.name + "' block ";
            bool ok = r.rc == ASCEND_SHIM_ERR_KERNEL && r.error.find(prefix) == 0 &&
                      r.error.find(c.rule) != std::string::npos && r.error.find(c.detail) != std::string::npos;
            CHECK(ok, "%s (blocks=%u): rc %d, message: %s", c.name, blocks, r.rc, r.error.c_str());
            if (ok && blocks == 1 && std::getenv("SHIM_TESTS_VERBOSE")) std::printf("  %s\n", r.error.c_str());
        }
    }
}

static void test_abi_errors() {
    FakeDevice dev;
    uint64_t p = dev.alloc(64);
    ArgBlob args;
    args.ptr(p).ptr(p).ptr(p).ptr(p);
    Result r = launch(dev, ascend_shim_entry_swiglu_f32, 1, args, 24);
    CHECK(r.rc == ASCEND_SHIM_ERR_ARGS && r.error.find("[args]") != std::string::npos, "args_size mismatch: %d %s", r.rc,
          r.error.c_str());
    r = launch(dev, ascend_shim_entry_swiglu_f32, 0, args);
    CHECK(r.rc == ASCEND_SHIM_ERR_INVALID_LAUNCH, "num_blocks 0: %d %s", r.rc, r.error.c_str());
    r = launch(dev, ascend_shim_entry_swiglu_f32, 70000, args);
    CHECK(r.rc == ASCEND_SHIM_ERR_INVALID_LAUNCH, "num_blocks 70000: %d", r.rc);
    AscendShimLaunch l{1, args.bytes.data(), args.bytes.size(), nullptr, nullptr, nullptr, 0};
    CHECK(ascend_shim_entry_swiglu_f32(&l) == ASCEND_SHIM_ERR_INVALID_LAUNCH, "null host");
    CHECK(ascend_shim_entry_swiglu_f32(nullptr) == ASCEND_SHIM_ERR_INVALID_LAUNCH, "null launch");
    // Tiling read from a buffer too small for the struct: the failure is a clean gm-oob.
    r = launch(dev, ascend_shim_entry_swiglu_f32, 2, args);
    CHECK(r.rc == ASCEND_SHIM_ERR_KERNEL && r.error.find("[gm-oob]") != std::string::npos, "tiny tiling: %s", r.error.c_str());
    // A truncated error buffer stays NUL-terminated.
    AscendShimHost host{&dev, &FakeDevice::translate};
    char small[16];
    std::memset(small, 'x', sizeof small);
    AscendShimLaunch l2{1, args.bytes.data(), 20, &host, nullptr, small, sizeof small};
    CHECK(ascend_shim_entry_swiglu_f32(&l2) == ASCEND_SHIM_ERR_ARGS && std::strlen(small) == 15, "truncation");
    CHECK(ascend_shim_abi_version() == ASCEND_SHIM_ABI_VERSION, "abi version");
}

static void timings() {
    std::printf("timings:\n");
    double s = run_matmul<half, float>(1024, 1024, 1024, 1, 24, 128, 128, 128, false);
    std::printf("  matmul f16->f32 1024^3 NT, 24 blocks: %.2f s\n", s);
    s = run_matmul<bfloat16_t, bfloat16_t>(1024, 1024, 1024, 0, 24, 128, 128, 128, false);
    std::printf("  matmul bf16->bf16 1024^3 NN, 24 blocks: %.2f s\n", s);
    for (int dt = 0; dt < 2; ++dt) {
        const uint32_t n = 1 << 22;
        FakeDevice dev;
        size_t es = dt == 0 ? 4 : 2;
        uint64_t g = dev.alloc(n * es), u = dev.alloc(n * es), o = dev.alloc(n * es);
        std::memset(dev.host(g), 0, n * es);
        std::memset(dev.host(u), 0, n * es);
        SwigluTiling t{n, n / 48, dt == 0 ? 6720u : 9408u, 0};
        uint64_t tg = dev.upload(std::vector<SwigluTiling>{t});
        ArgBlob args;
        args.ptr(g).ptr(u).ptr(o).ptr(tg);
        auto t0 = std::chrono::steady_clock::now();
        Result r = launch(dev, dt == 0 ? ascend_shim_entry_swiglu_f32 : ascend_shim_entry_swiglu_bf16, 48, args);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        CHECK(r.rc == 0, "swiglu timing run: %s", r.error.c_str());
        std::printf("  swiglu %s 4M elements, 48 blocks: %.3f s\n", dt == 0 ? "f32" : "bf16", secs);
    }
}

int main(int argc, char** argv) {
    bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    auto section = [](const char* name, void (*fn)()) {
        auto t0 = std::chrono::steady_clock::now();
        int before = g_failures;
        fn();
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%-18s %s (%.2f s)\n", name, g_failures == before ? "ok" : "FAILED", s);
    };
    section("numeric types", test_numeric_types);
    section("mmad kernels", test_mmad_isas);
    section("abi errors", test_abi_errors);
    section("probe mix", test_probe_mix);
    section("probe vector", test_probe_vector);
    section("probe copy", test_probe_copy);
    section("probe tiling", test_probe_tiling);
    section("probe gemv", test_probe_gemv);
    section("probe fidelity", test_probe_fidelity);
    section("broken kernels", test_broken);
    section("swiglu", test_swiglu);
    section("matmul", test_matmul);
    section("fp8 decode", test_fp8_decode);
    section("fp8 gemm", test_fp8_gemm);
    section("fp8 grouped gemm", test_fp8_grouped);
    section("fp8 act quant", test_fp8_quant);
    section("fp8 weight quant", test_fp8_weight_quant);
    section("fp8 dequant", test_fp8_dequant);
    if (!quick) {
        timings();
        fp8_timings();
        fp8_weight_timings();
    }
    std::printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
