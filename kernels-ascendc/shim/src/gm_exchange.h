// Which global memory a launch writes before it reads it (its "exchange" memory: rings between a
// Mix group's cores, workspaces), for the simulator's L2 model. See AscendShimCounters'
// gm_exchange_* fields in ascend_shim_abi.h for what is counted.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "ascend_shim_abi.h"

namespace ascend_shim {

class GmExchange {
public:
    static constexpr uint64_t kGranule = ASCEND_SHIM_GM_GRANULE_BYTES;

    // Records an access of [dev, dev + len). `counted`: the access is counted in the GM byte
    // counters (DataCopy, Fixpipe), not a scalar GetValue/SetValue. Returns the bytes of a counted
    // read that come from exchange granules (0 for writes and scalar accesses).
    uint64_t read(uint64_t dev, uint64_t len, bool counted) { return access(dev, len, false, counted); }
    void write(uint64_t dev, uint64_t len, bool counted) { access(dev, len, true, counted); }

    // After every core finished: the bytes written to exchange granules and their distinct bytes.
    void totals(uint64_t& written, uint64_t& footprint) const;

private:
    // Granule states, set once each: read before any write, written, read after a write.
    static constexpr uint8_t kReadFirst = 1, kWritten = 2, kReadAfterWrite = 4;
    static constexpr uint64_t kPageBytes = 4096, kPerPage = kPageBytes / kGranule;
    static constexpr unsigned kShards = 64;
    struct Page {
        std::atomic<uint8_t> state[kPerPage] = {};
        std::atomic<uint32_t> written[kPerPage] = {};  // counted bytes written to the granule
    };
    struct Shard {
        mutable std::mutex mu;
        std::unordered_map<uint64_t, std::unique_ptr<Page>> pages;
    };

    uint64_t access(uint64_t dev, uint64_t len, bool write, bool counted);
    Page& page(uint64_t index);

    Shard shards_[kShards];
};

}  // namespace ascend_shim
