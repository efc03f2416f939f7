// GmExchange: per-granule first-access states of one launch's global memory (gm_exchange.h).
#include "gm_exchange.h"

#include <algorithm>

namespace ascend_shim {

GmExchange::Page& GmExchange::page(uint64_t index) {
    Shard& s = shards_[index % kShards];
    std::lock_guard<std::mutex> g(s.mu);
    std::unique_ptr<Page>& p = s.pages[index];
    if (!p) p.reset(new Page());
    return *p;
}

uint64_t GmExchange::access(uint64_t dev, uint64_t len, bool write, bool counted) {
    uint64_t exchanged = 0;
    const uint64_t end = dev + len;
    for (uint64_t at = dev; at < end;) {
        Page& p = page(at / kPageBytes);
        const uint64_t pageEnd = std::min(end, (at / kPageBytes + 1) * kPageBytes);
        for (; at < pageEnd; at = std::min(pageEnd, (at / kGranule + 1) * kGranule)) {
            const uint64_t g = at % kPageBytes / kGranule;
            const uint64_t bytes = std::min(pageEnd, (at / kGranule + 1) * kGranule) - at;
            if (write) {
                p.state[g].fetch_or(kWritten, std::memory_order_relaxed);
                if (counted) p.written[g].fetch_add(uint32_t(bytes), std::memory_order_relaxed);
                continue;
            }
            const uint8_t s = p.state[g].load(std::memory_order_relaxed);
            if ((s & kWritten) && !(s & kReadFirst)) {
                if (!(s & kReadAfterWrite)) p.state[g].fetch_or(kReadAfterWrite, std::memory_order_relaxed);
                if (counted) exchanged += bytes;
            } else if (!(s & (kWritten | kReadFirst))) {
                p.state[g].fetch_or(kReadFirst, std::memory_order_relaxed);
            }
        }
    }
    return exchanged;
}

void GmExchange::totals(uint64_t& written, uint64_t& footprint) const {
    written = footprint = 0;
    for (const Shard& s : shards_) {
        std::lock_guard<std::mutex> g(s.mu);
        for (const auto& kv : s.pages)
            for (uint64_t i = 0; i < kPerPage; ++i) {
                const uint8_t st = kv.second->state[i].load(std::memory_order_relaxed);
                if (st == (kWritten | kReadAfterWrite)) {
                    written += kv.second->written[i].load(std::memory_order_relaxed);
                    footprint += kGranule;
                }
            }
    }
}

}  // namespace ascend_shim
