// Per-core state of a running block and the error path every check goes through.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ascend_shim_abi.h"

// ---- Qualifiers and macros the NPU compiler provides -------------------------------------------
#ifdef ASCEND_SHIM_SCAN
// Manifest scan (ascend-kernel-build preprocesses kernel sources with ASCEND_SHIM_SCAN defined):
// markers it finds in the preprocessed text. Scan output is read, never compiled.
#define __global__ __ascend_shim_global__
#else
#define __global__
#endif
#define __aicore__
#define __gm__
#define __ubuf__
#define __cbuf__
#define __ca__
#define __cb__
#define __cc__
#define __fbuf__
#define __vector__
#define __cube__
#ifndef __NPU_ARCH__
#define __NPU_ARCH__ 2201
#endif
#ifndef ASCEND_SHIM
#define ASCEND_SHIM 1
#endif
#ifdef ASCEND_SHIM_SCAN
#define GM_ADDR __ascend_shim_gm_addr__
#else
#define GM_ADDR uint8_t*
#endif

enum pipe_t : int { PIPE_S = 0, PIPE_V, PIPE_M, PIPE_MTE1, PIPE_MTE2, PIPE_MTE3, PIPE_ALL, PIPE_FIX };
enum event_t : int {
    EVENT_ID0 = 0, EVENT_ID1, EVENT_ID2, EVENT_ID3, EVENT_ID4, EVENT_ID5, EVENT_ID6, EVENT_ID7
};
enum class QuantMode_t : int { NoQuant = 0, F322F16, F322BF16, DEQF16, VDEQF16, QF322B8_PRE, VQF322B8_PRE };

namespace ascend_shim {

enum class CoreType : uint8_t { AIC, AIV };
enum class KernelKind : uint8_t { Vector = ASCEND_SHIM_KIND_VECTOR, Cube = ASCEND_SHIM_KIND_CUBE, Mix12 = ASCEND_SHIM_KIND_MIX_1_2 };

// Physical local memories of one 910B core.
enum Mem : uint8_t { MEM_UB = 0, MEM_L1, MEM_L0A, MEM_L0B, MEM_L0C, MEM_COUNT, MEM_NONE = 0xFF };

constexpr uint32_t kMemCapacity[MEM_COUNT] = {196608u, 524288u, 65536u, 65536u, 131072u};
// Start-address alignment every API operand in that memory must have.
constexpr uint32_t kMemAlign[MEM_COUNT] = {32u, 32u, 512u, 512u, 64u};
constexpr const char* kMemName[MEM_COUNT] = {"UB", "L1", "L0A", "L0B", "L0C"};
constexpr uint32_t kMaxBuffersPerKernel = 64;
constexpr uint32_t kMaxSlotsPerPosition = 8;
constexpr uint32_t kNumHardEvents = 40;
constexpr uint32_t kEventIds = 8;

struct Arena {
    std::vector<uint8_t> data;
    std::vector<uint8_t> defined;  // 1 per byte written since the buffer was (re)allocated
    uint32_t used = 0;
};

enum class SlotState : uint8_t { Free, Held, Queued, Scratch };

struct Slot {
    uint32_t off;
    uint32_t len;
    uint32_t gen;
    int32_t queue;  // -1 for TBuf
    uint8_t mem;
    uint8_t position;
    SlotState state;
};

struct QueueState {
    std::vector<int32_t> slots;  // slot ids owned by this queue
    std::vector<int32_t> fifo;   // enqueued slot ids, oldest first
    uint32_t nextAlloc = 0;      // round-robin start, so consecutive allocs alternate buffers
    int32_t depth = 1;
    uint8_t position = 0;
};

struct LaunchState;
struct GroupSync;

struct CoreCtx {
    LaunchState* launch = nullptr;
    CoreType type = CoreType::AIV;
    uint32_t blockIdx = 0, blockNum = 1, subIdx = 0, subNum = 1;
    Arena arenas[MEM_COUNT];
    std::vector<Slot> slots;
    std::vector<QueueState> queues;
    uint8_t flags[kNumHardEvents][kEventIds];
    uint32_t positionSlots[16];
    uint32_t buffers = 0;
    int32_t pipes = 0;
    void* pipe = nullptr;
    GroupSync* group = nullptr;  // Mix kernels: the cross-core flags of this core's group
    AscendShimCounters counters;

    void reset_memory();  // local-memory bookkeeping only (TPipe construction/Reset)
    void reset_block();   // everything, before each block
};

extern thread_local CoreCtx* tl_core;

inline CoreCtx& core() { return *tl_core; }

// Records the first error of the launch ("kernel K, block B (AIV): [rule] ...") and unwinds the
// block. Kernel code between the check and the block runner must be exception-neutral, which
// plain Ascend C code is.
[[noreturn]] void fail(const char* rule, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

struct BlockAbort {};

inline bool is_defined(Mem m, uint32_t off, uint32_t len) {
    if (len == 0) return true;
    const uint8_t* d = core().arenas[m].defined.data() + off;
    return std::memchr(d, 0, len) == nullptr;
}
inline void set_defined(Mem m, uint32_t off, uint32_t len, bool v) {
    std::memset(core().arenas[m].defined.data() + off, v ? 1 : 0, len);
}
inline uint8_t* mem_ptr(Mem m, uint32_t off) { return core().arenas[m].data.data() + off; }

// Host view of a launch's GM range; NULL when the range is not inside one live allocation.
void* translate_gm(uint64_t dev, uint64_t len);

// Records a global-memory access of the current core in the launch's exchange-memory record
// (src/gm_exchange.h); `counted` accesses are the ones the GM byte counters count (not scalar
// GetValue/SetValue). A counted read adds its exchange bytes to the core's counters.
void gm_note_read(uint64_t dev, uint64_t len, bool counted = true);
void gm_note_write(uint64_t dev, uint64_t len, bool counted = true);
template <typename T>
uint64_t gm_addr(const T* devicePointer) {
    return reinterpret_cast<uint64_t>(devicePointer);
}

void check_kernel_type(KernelKind declared);

// Copies a host-computed tiling struct out of GM (the device address cannot be dereferenced).
void load_tiling(void* dst, size_t size, const uint8_t* tiling);

}  // namespace ascend_shim

namespace AscendC {
inline int64_t GetBlockIdx() { return ascend_shim::core().blockIdx; }
inline int64_t GetBlockNum() { return ascend_shim::core().blockNum; }
inline int64_t GetSubBlockIdx() { return ascend_shim::core().subIdx; }
inline int64_t GetSubBlockNum() { return ascend_shim::core().subNum; }
inline int64_t GetTaskRation() { return ascend_shim::core().subNum; }
}  // namespace AscendC

#define ASCEND_IS_AIV (::ascend_shim::core().type == ::ascend_shim::CoreType::AIV)
#define ASCEND_IS_AIC (::ascend_shim::core().type == ::ascend_shim::CoreType::AIC)

#define KERNEL_TYPE_AIV_ONLY ::ascend_shim::KernelKind::Vector
#define KERNEL_TYPE_AIC_ONLY ::ascend_shim::KernelKind::Cube
#define KERNEL_TYPE_MIX_AIC_1_2 ::ascend_shim::KernelKind::Mix12
#ifdef ASCEND_SHIM_SCAN
#define KERNEL_TASK_TYPE_DEFAULT(t) __ascend_shim_kernel_type__(t)
#else
#define KERNEL_TASK_TYPE_DEFAULT(t) ::ascend_shim::check_kernel_type(t)
#endif

// CANN's op-project tiling macros, for kernels written that way.
#define REGISTER_TILING_DEFAULT(type)
#define GET_TILING_DATA_WITH_STRUCT(type, var, tiling) \
    type var;                                            \
    ::ascend_shim::load_tiling(&var, sizeof(type), (tiling))
