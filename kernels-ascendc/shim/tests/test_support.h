// Shared by the standalone test files: a tiny fake device (malloc'd blocks at non-canonical fake
// addresses), the args blob builder, the launcher and the CHECK counters.
#pragma once

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "ascend_shim_abi.h"
#include "ascend_shim/numeric.h"

using Entry = int32_t (*)(const AscendShimLaunch*);
using ascend_shim::Rounding;

inline int g_failures = 0;
inline int g_checks = 0;
#define CHECK(cond, ...)                                               \
    do {                                                               \
        ++g_checks;                                                    \
        if (!(cond)) {                                                 \
            ++g_failures;                                              \
            std::printf("FAIL %s:%d: ", __FILE__, __LINE__);           \
            std::printf(__VA_ARGS__);                                  \
            std::printf("\n");                                         \
        }                                                              \
    } while (0)

// ---- fake device ----------------------------------------------------------------------------------

struct FakeDevice {
    struct Alloc {
        uint64_t dev;
        std::vector<uint8_t> mem;
    };
    std::vector<Alloc> allocs;
    std::mutex mu;

    uint64_t alloc(size_t bytes) {
        // Non-canonical addresses: dereferencing one on the host faults instead of hitting memory.
        uint64_t dev = 0xA5A5000000000000ull + (uint64_t(allocs.size() + 1) << 32);
        allocs.push_back({dev, std::vector<uint8_t>(bytes, 0xCD)});
        return dev;
    }
    template <typename T>
    uint64_t upload(const std::vector<T>& v) {
        uint64_t d = alloc(v.size() * sizeof(T));
        std::memcpy(host(d), v.data(), v.size() * sizeof(T));
        return d;
    }
    uint8_t* host(uint64_t dev) {
        for (auto& a : allocs)
            if (dev >= a.dev && dev < a.dev + a.mem.size()) return a.mem.data() + (dev - a.dev);
        return nullptr;
    }
    template <typename T>
    std::vector<T> download(uint64_t dev, size_t n) {
        std::vector<T> v(n);
        std::memcpy(v.data(), host(dev), n * sizeof(T));
        return v;
    }
    static void* translate(void* ctx, uint64_t dev, uint64_t len) {
        FakeDevice* d = static_cast<FakeDevice*>(ctx);
        std::lock_guard<std::mutex> g(d->mu);
        for (auto& a : d->allocs)
            if (dev >= a.dev && len <= a.mem.size() && dev - a.dev <= a.mem.size() - len)
                return a.mem.data() + (dev - a.dev);
        return nullptr;
    }
};

struct ArgBlob {
    std::vector<uint8_t> bytes;
    template <typename T>
    ArgBlob& add(T v) {
        size_t a = alignof(T) < 8 ? alignof(T) : 8;
        while (bytes.size() % a) bytes.push_back(0);
        size_t o = bytes.size();
        bytes.resize(o + sizeof(T));
        std::memcpy(bytes.data() + o, &v, sizeof(T));
        return *this;
    }
    ArgBlob& ptr(uint64_t dev) { return add<uint64_t>(dev); }
};

struct Result {
    int32_t rc;
    std::string error;
    AscendShimCounters counters;
};

inline Result launch(FakeDevice& dev, Entry e, uint32_t blocks, const ArgBlob& args, size_t sizeOverride = SIZE_MAX) {
    AscendShimHost host{&dev, &FakeDevice::translate};
    Result r{};
    char err[2048];
    AscendShimLaunch l{blocks, args.bytes.data(), sizeOverride == SIZE_MAX ? args.bytes.size() : sizeOverride,
                       &host, &r.counters, err, sizeof err};
    r.rc = e(&l);
    r.error = err;
    return r;
}

// Sections living in other test files.
void test_fp8_decode();
void test_fp8_gemm();
void test_fp8_grouped();
void test_fp8_quant();
void fp8_timings();
void test_fp8_weight_quant();
void test_fp8_dequant();
void fp8_weight_timings();
