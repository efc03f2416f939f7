// Runtime half of the shim: block scheduling, per-core local memories, queue/flag bookkeeping and
// the error path. Kept out of the headers so kernels compile fast and state lives in one place.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

#include "gm_exchange.h"
#include "kernel_operator.h"

namespace ascend_shim {

thread_local CoreCtx* tl_core = nullptr;

struct LaunchState {
    const char* kernel;
    KernelKind kind;
    const AscendShimHost* host;
    uint32_t numBlocks;
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::string error;
    int32_t code = ASCEND_SHIM_OK;
    AscendShimCounters totals{};
    GmExchange exchange;
};

// Cross-core flags of one Mix 1:2 group (1 AIC + 2 AIV). Members: 0 = AIC, 1 + subIdx = AIV.
struct GroupSync {
    static constexpr uint32_t kIds = 16;  // ids 0..15 in modes 0, 1 and 2 on A2 (errata 4)
    static constexpr uint32_t kMaxPending = 15;
    std::mutex mu;
    std::condition_variable cv;
    uint32_t toAiv[2][kIds] = {};  // sets by the AIC not yet consumed by AIV s
    uint32_t toAic[2][kIds] = {};  // sets by AIV s not yet consumed by the AIC
    int32_t waitingOn[3] = {-1, -1, -1};
    bool finished[3] = {false, false, false};
    bool deadlock = false;
};

namespace {

const char* const kEventNames[] = {
    "MTE2_V", "V_MTE2", "V_MTE3", "MTE3_V", "MTE2_MTE3", "MTE3_MTE2", "S_V", "V_S", "S_MTE2", "MTE2_S",
    "S_MTE3", "MTE3_S", "MTE2_MTE1", "MTE1_MTE2", "MTE1_M", "M_MTE1", "M_FIX", "FIX_M", "MTE2_M", "M_MTE2",
    "FIX_MTE2", "MTE2_FIX", "FIX_S", "M_S", "FIX_MTE3", "M_V", "V_M", "V_V", "MTE1_V", "V_MTE1",
    "MTE1_MTE3", "MTE3_MTE1"};
const char* const kPipeNames[] = {"PIPE_S", "PIPE_V", "PIPE_M", "PIPE_MTE1", "PIPE_MTE2", "PIPE_MTE3", "PIPE_ALL", "PIPE_FIX"};
const char* const kPositionNames[] = {"GM", "VECIN", "VECOUT", "VECCALC", "A1", "A2", "B1", "B2", "C1", "C2", "CO1", "CO2", "C2PIPE2GM"};

// Pipes each core type has (separated 910B cores): AIV = S, V, MTE2, MTE3; AIC = S, M, MTE1, MTE2, FIX.
bool pipe_on_core(int pipe, CoreType t) {
    switch (pipe) {
        case PIPE_S: case PIPE_MTE2: case PIPE_ALL: return true;
        case PIPE_V: case PIPE_MTE3: return t == CoreType::AIV;
        default: return t == CoreType::AIC;
    }
}

int pipe_of(const char* name) {
    static const struct { const char* n; int p; } map[] = {{"MTE1", PIPE_MTE1}, {"MTE2", PIPE_MTE2}, {"MTE3", PIPE_MTE3},
                                                          {"FIX", PIPE_FIX}, {"S", PIPE_S}, {"V", PIPE_V}, {"M", PIPE_M}};
    for (const auto& e : map) if (std::strcmp(e.n, name) == 0) return e.p;
    return PIPE_ALL;
}

const char* core_name(CoreType t) { return t == CoreType::AIC ? "AIC" : "AIV"; }

void write_error(const AscendShimLaunch* l, const std::string& msg) {
    if (l && l->error_out && l->error_capacity > 0) {
        size_t n = std::min(msg.size(), l->error_capacity - 1);
        std::memcpy(l->error_out, msg.data(), n);
        l->error_out[n] = '\0';
    }
}

void record(LaunchState& ls, int32_t code, const std::string& msg) {
    std::lock_guard<std::mutex> g(ls.mu);
    if (ls.code == ASCEND_SHIM_OK) {
        ls.code = code;
        ls.error = msg;
    }
    ls.failed.store(true, std::memory_order_relaxed);
}

std::string core_label(const CoreCtx& c) {
    char buf[128];
    if (c.launch->kind == KernelKind::Mix12 && c.type == CoreType::AIV)
        std::snprintf(buf, sizeof buf, "block %u (AIV %u of group %u)", c.blockIdx, c.subIdx, c.blockIdx / 2);
    else
        std::snprintf(buf, sizeof buf, "block %u (%s)", c.blockIdx, core_name(c.type));
    return buf;
}

}  // namespace

void CoreCtx::reset_memory() {
    slots.clear();
    queues.clear();
    std::memset(positionSlots, 0, sizeof positionSlots);
    buffers = 0;
    for (Arena& a : arenas) a.used = 0;
}

void CoreCtx::reset_block() {
    reset_memory();
    std::memset(flags, 0, sizeof flags);
    pipes = 0;
    pipe = nullptr;
}

void fail(const char* rule, const char* fmt, ...) {
    CoreCtx& c = core();
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::string full = std::string("kernel '") + c.launch->kernel + "' " + core_label(c) + ": [" + rule + "] " + msg;
    record(*c.launch, ASCEND_SHIM_ERR_KERNEL, full);
    throw BlockAbort{};
}

const char* position_name(uint8_t p) {
    return p < sizeof kPositionNames / sizeof *kPositionNames ? kPositionNames[p] : "?";
}

const char* round_mode_name(AscendC::RoundMode m) {
    static const char* const names[] = {"CAST_NONE", "CAST_RINT", "CAST_FLOOR", "CAST_CEIL",
                                        "CAST_ROUND", "CAST_TRUNC", "CAST_ODD", "CAST_HYBRID"};
    return names[uint8_t(m) & 7];
}

void fail_operand(const char* api, const char* what, const char* problem, int32_t slot, uint32_t off, uint32_t len) {
    CoreCtx& c = core();
    const Slot& s = c.slots[slot];
    if (std::strcmp(problem, "uninit") == 0) {
        const uint8_t* d = c.arenas[s.mem].defined.data();
        uint32_t first = off;
        while (first < off + len && d[first]) ++first;
        fail("uninit-read",
             "%s reads %s: %s bytes [%u, %u) of a %s buffer include byte %u, never written since the buffer was "
             "allocated (its content is undefined on the NPU)",
             api, what, kMemName[s.mem], off, off + len, position_name(s.position), first);
    }
    fail("position", "%s: %s is a %s tensor (%s), which this API cannot use", api, what, position_name(s.position),
         kMemName[s.mem]);
}

void* translate_gm(uint64_t dev, uint64_t len) {
    const AscendShimHost* h = core().launch->host;
    return h->translate(h->ctx, dev, len);
}

void gm_note_read(uint64_t dev, uint64_t len, bool counted) {
    CoreCtx& c = core();
    c.counters.gm_exchange_read_bytes += c.launch->exchange.read(dev, len, counted);
}

void gm_note_write(uint64_t dev, uint64_t len, bool counted) { core().launch->exchange.write(dev, len, counted); }

void load_tiling(void* dst, size_t size, const uint8_t* tiling) {
    const uint64_t dev = reinterpret_cast<uint64_t>(tiling);
    const void* src = translate_gm(dev, size);
    if (src == nullptr)
        fail("gm-oob", "tiling struct of %zu bytes at 0x%llx is not inside one buffer passed to the launch", size,
             (unsigned long long)dev);
    std::memcpy(dst, src, size);
}

void check_kernel_type(KernelKind declared) {
    if (declared != core().launch->kind)
        fail("kernel-type", "KERNEL_TASK_TYPE_DEFAULT declares kind %d but the kernel was registered as kind %d",
             int(declared), int(core().launch->kind));
}

void check_datacopy_params(const char* api, uint32_t blockCount, uint32_t blockLen) {
    if (blockCount < 1 || blockCount > 4095 || blockLen < 1 || blockLen > 65535)
        fail("datacopy-params", "%s: blockCount %u must be in [1,4095] and blockLen %u (32-byte blocks) in [1,65535]",
             api, blockCount, blockLen);
}

void check_overlap(const char* api, uint8_t memA, uint32_t offA, uint32_t lenA, uint8_t memB, uint32_t offB,
                   uint32_t lenB) {
    if (memA != memB || lenA == 0 || lenB == 0) return;
    bool overlap = offA < offB + lenB && offB < offA + lenA;
    if (overlap && !(offA == offB && lenA == lenB))
        fail("overlap", "%s: dst %s bytes [%u, %u) partially overlaps a source [%u, %u); only 100%% overlap is allowed",
             api, kMemName[memA], offA, offA + lenA, offB, offB + lenB);
}

void check_count(const char* api, int64_t count) {
    if (count < 0) fail("vector-params", "%s: negative count %lld", api, (long long)count);
}

// ---- TPipe / queues -----------------------------------------------------------------------------

int32_t pipe_new_queue(uint8_t position, int32_t depth) {
    CoreCtx& c = core();
    QueueState q;
    q.position = position;
    q.depth = depth > 0 ? depth : 1;
    c.queues.push_back(q);
    return int32_t(c.queues.size() - 1);
}

int32_t pipe_init_buffers(uint8_t position, uint32_t num, uint32_t len, int32_t queue, const char* api) {
    CoreCtx& c = core();
    if (c.pipes == 0) fail("tpipe", "%s without a live TPipe", api);
    const Mem m = position_mem(AscendC::TPosition(position));
    const bool onAiv = m == MEM_UB;
    if (onAiv != (c.type == CoreType::AIV))
        fail("position", "%s: TPosition %s lives in %s, which an %s core does not have (AIV has UB; AIC has L1/L0A/L0B/L0C)",
             api, position_name(position), kMemName[m], core_name(c.type));
    if (num == 0 || len == 0) fail("init-buffer", "%s: %u buffers of %u bytes", api, num, len);
    if (c.buffers + num > kMaxBuffersPerKernel)
        fail("buffer-limit", "%s: %u buffers in total exceed the 64 a kernel may have", api, c.buffers + num);
    if (queue >= 0 && c.positionSlots[position] + num > kMaxSlotsPerPosition)
        fail("buffer-limit", "%s: %u queue buffers on TPosition %s exceed 8 (each holds a hardware event id; the NPU hangs)",
             api, c.positionSlots[position] + num, position_name(position));
    const uint32_t align = m == MEM_L0C ? 1024u : kMemAlign[m];
    const uint64_t rounded = (uint64_t(len) + align - 1) / align * align;
    Arena& a = c.arenas[m];
    const uint64_t need = uint64_t(a.used) + rounded * num;
    if (need > kMemCapacity[m])
        fail("capacity", "%s: %u x %llu bytes on %s would use %llu bytes of %s, which has %u bytes on 910B", api, num,
             (unsigned long long)rounded, position_name(position), (unsigned long long)need, kMemName[m], kMemCapacity[m]);
    const int32_t first = int32_t(c.slots.size());
    for (uint32_t i = 0; i < num; ++i) {
        Slot s{a.used, uint32_t(rounded), 1u, queue, uint8_t(m), position, queue >= 0 ? SlotState::Free : SlotState::Scratch};
        std::memset(a.data.data() + a.used, 0xFF, rounded);  // NaN in every float type if read anyway
        std::memset(a.defined.data() + a.used, 0, rounded);
        a.used += uint32_t(rounded);
        c.slots.push_back(s);
        if (queue >= 0) c.queues[queue].slots.push_back(first + int32_t(i));
    }
    c.buffers += num;
    if (queue >= 0) c.positionSlots[position] += num;
    return first;
}

int32_t queue_alloc(int32_t qi) {
    CoreCtx& c = core();
    QueueState& q = c.queues[qi];
    const uint32_t n = uint32_t(q.slots.size());
    for (uint32_t t = 0; t < n; ++t) {
        const uint32_t k = (q.nextAlloc + t) % n;
        Slot& s = c.slots[q.slots[k]];
        if (s.state == SlotState::Free) {
            s.state = SlotState::Held;
            q.nextAlloc = (k + 1) % n;
            std::memset(c.arenas[s.mem].defined.data() + s.off, 0, s.len);
            return q.slots[k];
        }
    }
    fail("alloc-exhausted",
         "AllocTensor on a %s queue whose %u buffer(s) are all held (allocated or enqueued, not yet FreeTensor'd): "
         "more tensors allocated than the queue has buffers; on the NPU this waits forever",
         position_name(q.position), n);
}

namespace {
Slot& queue_slot(int32_t qi, int32_t slot, uint32_t gen, const char* api) {
    CoreCtx& c = core();
    if (slot < 0 || uint32_t(slot) >= c.slots.size() || c.slots[slot].queue != qi)
        fail("queue-misuse", "%s of a tensor that was not allocated from this %s queue", api,
             position_name(c.queues[qi].position));
    Slot& s = c.slots[slot];
    if (s.gen != gen) fail("use-after-free", "%s of a tensor that was already freed", api);
    return s;
}
}  // namespace

void queue_enque(int32_t qi, int32_t slot, uint32_t gen) {
    CoreCtx& c = core();
    Slot& s = queue_slot(qi, slot, gen, "EnQue");
    QueueState& q = c.queues[qi];
    if (s.state != SlotState::Held) fail("queue-misuse", "EnQue of a tensor that is %s", s.state == SlotState::Queued ? "already enqueued" : "not allocated");
    if (int32_t(q.fifo.size()) >= q.depth)
        fail("enque-depth", "EnQue on a %s queue already holding %zu enqueued tensor(s): exceeds the queue depth %d",
             position_name(q.position), q.fifo.size(), q.depth);
    s.state = SlotState::Queued;
    q.fifo.push_back(slot);
}

int32_t queue_deque(int32_t qi) {
    CoreCtx& c = core();
    QueueState& q = c.queues[qi];
    if (q.fifo.empty())
        fail("deque-empty", "DeQue on a %s queue with no EnQue'd tensor (DeQue without EnQue): on the NPU this waits forever",
             position_name(q.position));
    int32_t slot = q.fifo.front();
    q.fifo.erase(q.fifo.begin());
    c.slots[slot].state = SlotState::Held;
    return slot;
}

void queue_free(int32_t qi, int32_t slot, uint32_t gen) {
    Slot& s = queue_slot(qi, slot, gen, "FreeTensor");
    if (s.state != SlotState::Held)
        fail("queue-misuse", "FreeTensor of a tensor that is %s", s.state == SlotState::Queued ? "still enqueued" : "already free");
    s.state = SlotState::Free;
    ++s.gen;
}

// ---- flags and barriers ---------------------------------------------------------------------------

namespace {
void check_event(uint32_t evt, int32_t id, const char* api) {
    CoreCtx& c = core();
    if (evt >= uint32_t(AscendC::HardEvent::MAX)) fail("flag-id", "%s: unknown HardEvent %u", api, evt);
    if (id < 0 || id >= int32_t(kEventIds))
        fail("flag-id", "%s<%s>(%d): event ids are 0..7", api, kEventNames[evt], id);
    if (id >= 6) fail("flag-id", "%s<%s>(%d): event ids 6 and 7 are reserved for the framework", api, kEventNames[evt], id);
    std::string n = kEventNames[evt];
    size_t us = n.find('_');
    int src = pipe_of(n.substr(0, us).c_str()), dst = pipe_of(n.substr(us + 1).c_str());
    if (!pipe_on_core(src, c.type) || !pipe_on_core(dst, c.type))
        fail("flag-pipe", "%s<%s>: an %s core does not have both pipes", api, kEventNames[evt], core_name(c.type));
}
}  // namespace

void event_pool_fail(const char* api, uint32_t evt, const char* what, int32_t id) {
    const char* name = evt < uint32_t(AscendC::HardEvent::MAX) ? kEventNames[evt] : "?";
    if (id >= 0) fail("event-pool", "%s<%s>(%d): %s", api, name, id, what);
    fail("event-pool", "%s<%s>: %s", api, name, what);
}

void set_flag(uint32_t evt, int32_t id) {
    check_event(evt, id, "SetFlag");
    uint8_t& f = core().flags[evt][id];
    if (f) fail("flag-double-set", "SetFlag<%s>(%d) while that flag is already set (no WaitFlag in between)", kEventNames[evt], id);
    f = 1;
}

void wait_flag(uint32_t evt, int32_t id) {
    check_event(evt, id, "WaitFlag");
    uint8_t& f = core().flags[evt][id];
    if (!f)
        fail("flag-wait-unset", "WaitFlag<%s>(%d) without a matching SetFlag: on the NPU this waits forever", kEventNames[evt], id);
    f = 0;
}

void pipe_barrier(int pipe) {
    if (pipe < 0 || pipe > PIPE_FIX) fail("pipe-barrier", "PipeBarrier on unknown pipe %d", pipe);
    if (pipe == PIPE_S) fail("pipe-barrier", "PipeBarrier<PIPE_S> is illegal");
    if (!pipe_on_core(pipe, core().type))
        fail("pipe-barrier", "PipeBarrier<%s> on an %s core, which has no such pipe", kPipeNames[pipe], core_name(core().type));
}

// ---- cross-core flags (Mix kernels) ---------------------------------------------------------------

namespace {
int member_of(const CoreCtx& c) { return c.type == CoreType::AIC ? 0 : 1 + int(c.subIdx); }

bool satisfied(const GroupSync& g, int member, uint32_t id) {
    return member == 0 ? (g.toAic[0][id] > 0 && g.toAic[1][id] > 0) : g.toAiv[member - 1][id] > 0;
}

bool all_stuck(const GroupSync& g) {
    for (int m = 0; m < 3; ++m) {
        if (g.finished[m]) continue;
        if (g.waitingOn[m] < 0 || satisfied(g, m, uint32_t(g.waitingOn[m]))) return false;
    }
    return true;
}

GroupSync& need_group(const char* api, uint32_t flagId) {
    CoreCtx& c = core();
    if (c.group == nullptr)
        fail("crosscore-mode", "%s(%u) in a kernel that is not KERNEL_TYPE_MIX_AIC_1_2 (no AIC/AIV group)", api, flagId);
    if (flagId >= GroupSync::kIds) fail("flag-id", "%s(%u): cross-core flag ids are 0..15", api, flagId);
    return *c.group;
}
}  // namespace

void crosscore_set(uint32_t mode, int pipe, uint32_t flagId) {
    CoreCtx& c = core();
    GroupSync& g = need_group("CrossCoreSetFlag", flagId);
    if (mode != 2)
        fail("crosscore-mode", "CrossCoreSetFlag<%u>(%u): only mode 2 (AIC <-> its AIVs) is modelled by the shim", mode,
             flagId);
    if (pipe < 0 || pipe > PIPE_FIX || pipe == PIPE_ALL || !pipe_on_core(pipe, c.type))
        fail("flag-pipe", "CrossCoreSetFlag<2, %s>(%u) on an %s core, which has no such pipe",
             pipe >= 0 && pipe <= PIPE_FIX ? kPipeNames[pipe] : "?", flagId, core_name(c.type));
    std::unique_lock<std::mutex> lk(g.mu);
    const int me = member_of(c);
    for (int s = 0; s < 2; ++s) {
        if (me != 0 && s != me - 1) continue;
        uint32_t& n = me == 0 ? g.toAiv[s][flagId] : g.toAic[s][flagId];
        if (n >= GroupSync::kMaxPending) {
            lk.unlock();
            fail("crosscore-overflow", "CrossCoreSetFlag<2>(%u): more than %u sets pending (never waited) for the %s", flagId,
                 GroupSync::kMaxPending, me == 0 ? "AIVs" : "AIC");
        }
        ++n;
    }
    g.cv.notify_all();
}

void crosscore_wait(uint32_t flagId) {
    CoreCtx& c = core();
    GroupSync& g = need_group("CrossCoreWaitFlag", flagId);
    std::unique_lock<std::mutex> lk(g.mu);
    const int me = member_of(c);
    g.waitingOn[me] = int32_t(flagId);
    for (;;) {
        if (satisfied(g, me, flagId)) {
            if (me == 0) {
                --g.toAic[0][flagId];
                --g.toAic[1][flagId];
            } else {
                --g.toAiv[me - 1][flagId];
            }
            g.waitingOn[me] = -1;
            return;
        }
        if (c.launch->failed.load(std::memory_order_relaxed)) {
            g.waitingOn[me] = -1;
            lk.unlock();
            throw BlockAbort{};  // another core already reported the launch's error
        }
        if (g.deadlock || all_stuck(g)) {
            g.deadlock = true;
            g.waitingOn[me] = -1;
            g.cv.notify_all();
            lk.unlock();
            fail("crosscore-deadlock",
                 "CrossCoreWaitFlag(%u) can never be satisfied: every other core of the group has finished or waits too "
                 "(on the NPU this hangs)",
                 flagId);
        }
        g.cv.wait_for(lk, std::chrono::milliseconds(50));
    }
}

namespace {
void group_member_finished(CoreCtx& c) {
    GroupSync& g = *c.group;
    std::lock_guard<std::mutex> lk(g.mu);
    g.finished[member_of(c)] = true;
    g.cv.notify_all();
}

// After a group's three cores ended without error: every cross-core set must have been waited.
void group_end_checks(LaunchState& ls, const GroupSync& g, uint32_t group) {
    if (ls.failed.load()) return;
    for (uint32_t id = 0; id < GroupSync::kIds; ++id)
        for (int s = 0; s < 2; ++s)
            if (g.toAiv[s][id] || g.toAic[s][id]) {
                char buf[256];
                std::snprintf(buf, sizeof buf,
                              "kernel '%s' block %u (AIC, at group end): [crosscore-left-set] cross-core flag %u has %u set(s) from the %s "
                              "never waited when the kernel ended",
                              ls.kernel, group, id, g.toAiv[s][id] ? g.toAiv[s][id] : g.toAic[s][id],
                              g.toAiv[s][id] ? "AIC" : (s == 0 ? "AIV 0" : "AIV 1"));
                record(ls, ASCEND_SHIM_ERR_KERNEL, buf);
                return;
            }
}
}  // namespace

// ---- launching ------------------------------------------------------------------------------------

namespace {

std::unique_ptr<CoreCtx> make_core(CoreType type) {
    std::unique_ptr<CoreCtx> c(new CoreCtx());
    c->type = type;
    for (int m = 0; m < MEM_COUNT; ++m) {
        if ((m == MEM_UB) != (type == CoreType::AIV)) continue;
        c->arenas[m].data.assign(kMemCapacity[m], 0xFF);
        c->arenas[m].defined.assign(kMemCapacity[m], 0);
    }
    return c;
}

// This thread's core of `type`, made once per thread and reused by every launch: local memories
// are ~1.5 MiB per AIC, and a buffer's bytes are reset when it is allocated (pipe_init_buffers),
// so nothing of an earlier launch can be observed.
CoreCtx& thread_core(LaunchState& ls, CoreType type) {
    thread_local std::unique_ptr<CoreCtx> cores[2];
    std::unique_ptr<CoreCtx>& c = cores[type == CoreType::AIC ? 0 : 1];
    if (!c) c = make_core(type);
    c->launch = &ls;
    c->group = nullptr;
    return *c;
}

// A persistent thread running one job at a time (the pool's workers and their AIV helpers).
class Helper {
public:
    Helper() : thread_([this] { loop(); }) {}
    void start(std::function<void()> job) {
        std::lock_guard<std::mutex> g(mu_);
        job_ = std::move(job);
        busy_ = true;
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [this] { return !busy_; });
    }

private:
    void loop() {
        std::unique_lock<std::mutex> lk(mu_);
        for (;;) {
            cv_.wait(lk, [this] { return bool(job_); });
            std::function<void()> job = std::move(job_);
            job_ = nullptr;
            lk.unlock();
            job();
            lk.lock();
            busy_ = false;
            cv_.notify_all();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::function<void()> job_;
    bool busy_ = false;
    std::thread thread_;  // last: starts after the members it uses
};

// One pool worker: its own thread plus two AIV helpers for Mix groups (made on first use).
struct Worker {
    Helper main;
    std::unique_ptr<Helper> aiv[2];
};

// Threads are made once per process rather than per launch. One launch uses the pool at a time;
// a launch that finds it busy (another stream's kernel) or finds itself in a forked child (whose
// pool threads do not exist) runs on threads of its own, as before.
struct Pool {
    std::mutex mu;
    std::vector<std::unique_ptr<Worker>> workers;
    pid_t pid = getpid();
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: its threads outlive static destructors
    return *p;
}

void end_of_block_checks(CoreCtx& c) {
    for (size_t i = 0; i < c.slots.size(); ++i) {
        const Slot& s = c.slots[i];
        if (s.queue >= 0 && s.state != SlotState::Free)
            fail("tensor-leak",
                 "a %s tensor (%s offset %u) is still %s when the kernel ends: every AllocTensor needs a FreeTensor",
                 position_name(s.position), kMemName[s.mem], s.off, s.state == SlotState::Queued ? "enqueued" : "held");
    }
    for (uint32_t e = 0; e < uint32_t(AscendC::HardEvent::MAX); ++e)
        for (uint32_t id = 0; id < kEventIds; ++id)
            if (c.flags[e][id])
                fail("flag-left-set", "SetFlag<%s>(%u) was never waited: flags left set when the kernel ended",
                     kEventNames[e], id);
}

void run_core(CoreCtx& c, uint32_t blockIdx, uint32_t subIdx, void (*body)(void*), void* ctx) {
    LaunchState& ls = *c.launch;
    c.reset_block();
    c.counters = AscendShimCounters{};
    c.blockIdx = blockIdx;
    c.blockNum = ls.numBlocks;
    c.subIdx = subIdx;
    c.subNum = (ls.kind == KernelKind::Mix12 && c.type == CoreType::AIV) ? 2 : 1;
    CoreCtx* saved = tl_core;
    tl_core = &c;
    try {
        body(ctx);
        end_of_block_checks(c);
    } catch (const BlockAbort&) {
    } catch (const std::exception& e) {
        record(ls, ASCEND_SHIM_ERR_INTERNAL, std::string("kernel '") + ls.kernel + "' " + core_label(c) +
                                                 ": [internal] " + e.what());
    } catch (...) {
        record(ls, ASCEND_SHIM_ERR_INTERNAL, std::string("kernel '") + ls.kernel + "' " + core_label(c) +
                                                 ": [internal] unknown exception");
    }
    if (c.group) group_member_finished(c);
    tl_core = saved;
    c.counters.cores_run = 1;
    std::lock_guard<std::mutex> g(ls.mu);
    AscendShimCounters& t = ls.totals;
    t.gm_to_local_bytes += c.counters.gm_to_local_bytes;
    t.local_to_gm_bytes += c.counters.local_to_gm_bytes;
    t.local_to_local_bytes += c.counters.local_to_local_bytes;
    t.cube_macs += c.counters.cube_macs;
    t.vector_elem_ops += c.counters.vector_elem_ops;
    t.cores_run += 1;
    t.busiest_gm_read = std::max(t.busiest_gm_read, c.counters.gm_to_local_bytes);
    t.busiest_gm_written = std::max(t.busiest_gm_written, c.counters.local_to_gm_bytes);
    t.busiest_cube_macs = std::max(t.busiest_cube_macs, c.counters.cube_macs);
    t.busiest_vector_ops = std::max(t.busiest_vector_ops, c.counters.vector_elem_ops);
    t.vector_repeats += c.counters.vector_repeats;
    t.busiest_vector_repeats = std::max(t.busiest_vector_repeats, c.counters.vector_repeats);
    t.gm_exchange_read_bytes += c.counters.gm_exchange_read_bytes;
}

uint32_t worker_threads() {
    if (const char* e = std::getenv("ASCEND_SHIM_THREADS")) {
        int v = std::atoi(e);
        if (v > 0) return uint32_t(v);
    }
    unsigned hc = std::thread::hardware_concurrency();
    return hc ? hc : 1;
}

}  // namespace

int32_t launch_error(const AscendShimLaunch* launch, int32_t code, const char* fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    write_error(launch, msg);
    if (launch && launch->counters_out) *launch->counters_out = AscendShimCounters{};
    return code;
}

int32_t run_launch(const AscendShimLaunch* l, const char* name, KernelKind kind, void (*body)(void*), void* ctx) {
    if (l->host == nullptr || l->host->translate == nullptr)
        return launch_error(l, ASCEND_SHIM_ERR_INVALID_LAUNCH, "kernel '%s': [launch] host or host->translate is NULL", name);
    if (l->num_blocks < 1 || l->num_blocks > 65535)
        return launch_error(l, ASCEND_SHIM_ERR_INVALID_LAUNCH, "kernel '%s': [launch] num_blocks %u outside 1..65535",
                            name, l->num_blocks);
    LaunchState ls;
    ls.kernel = name;
    ls.kind = kind;
    ls.host = l->host;
    ls.numBlocks = l->num_blocks;
    std::atomic<uint32_t> next{0};
    const uint32_t units = l->num_blocks;
    const CoreType unitType = kind == KernelKind::Vector ? CoreType::AIV : CoreType::AIC;
    auto internal = [&](const std::exception& e) {
        record(ls, ASCEND_SHIM_ERR_INTERNAL, std::string("kernel '") + name + "': [internal] " + e.what());
    };

    // Runs blocks until none are left. `helpers` are the worker's persistent AIV threads, or null
    // to start threads for each Mix group.
    auto work = [&](std::unique_ptr<Helper>* helpers) {
        try {
            CoreCtx& c = thread_core(ls, unitType);
            for (;;) {
                uint32_t u = next.fetch_add(1);
                if (u >= units || ls.failed.load(std::memory_order_relaxed)) break;
                if (kind != KernelKind::Mix12) {
                    run_core(c, u, 0, body, ctx);
                    continue;
                }
                // A mix group's three cores run concurrently, as cross-core hand-offs need.
                GroupSync gs;
                c.group = &gs;
                auto aivBody = [&, u](uint32_t s) {
                    try {
                        CoreCtx& v = thread_core(ls, CoreType::AIV);
                        v.group = &gs;
                        run_core(v, u * 2 + s, s, body, ctx);
                        v.group = nullptr;
                    } catch (const std::exception& e) {
                        internal(e);
                    }
                };
                std::thread aiv[2];
                bool started[2] = {false, false};
                try {
                    for (uint32_t s = 0; s < 2; ++s) {
                        if (helpers) {
                            if (!helpers[s]) helpers[s].reset(new Helper());
                            helpers[s]->start([&aivBody, s] { aivBody(s); });
                        } else {
                            aiv[s] = std::thread(aivBody, s);
                        }
                        started[s] = true;
                    }
                    run_core(c, u, 0, body, ctx);
                } catch (const std::exception& e) {
                    internal(e);
                    // An AIV that never started counts as finished, so its partner cannot wait on it.
                    std::lock_guard<std::mutex> lk(gs.mu);
                    for (uint32_t s = 0; s < 2; ++s)
                        if (!started[s]) gs.finished[1 + s] = true;
                    gs.finished[0] = true;
                    gs.cv.notify_all();
                }
                for (uint32_t s = 0; s < 2; ++s) {
                    if (!started[s]) continue;
                    if (helpers)
                        helpers[s]->wait();
                    else
                        aiv[s].join();
                }
                c.group = nullptr;
                group_end_checks(ls, gs, u);
            }
        } catch (const std::exception& e) {
            internal(e);
        }
    };

    const uint32_t nthreads = std::min(units, worker_threads());
    Pool& p = pool();
    std::unique_lock<std::mutex> owned(p.mu, std::try_to_lock);
    if (owned.owns_lock() && p.pid == getpid()) {
        try {
            while (p.workers.size() < nthreads) p.workers.emplace_back(new Worker());
        } catch (const std::exception&) {
            // Fewer workers than wanted is fine: the others pick up every block.
        }
        const size_t used = std::max<size_t>(1, std::min<size_t>(nthreads, p.workers.size()));
        for (size_t t = 0; t < used && t < p.workers.size(); ++t) {
            Worker* w = p.workers[t].get();
            w->main.start([&work, w] { work(w->aiv); });
        }
        for (size_t t = 0; t < used && t < p.workers.size(); ++t) p.workers[t]->main.wait();
        if (p.workers.empty()) work(nullptr);
    } else {
        if (owned.owns_lock()) owned.unlock();
        std::vector<std::thread> threads;
        try {
            threads.reserve(nthreads);
            for (uint32_t t = 1; t < nthreads; ++t) threads.emplace_back(work, nullptr);
        } catch (const std::exception&) {
            // Fewer workers than wanted is fine: the remaining ones pick up every block.
        }
        work(nullptr);
        for (auto& t : threads) t.join();
    }
    ls.exchange.totals(ls.totals.gm_exchange_written_bytes, ls.totals.gm_exchange_footprint);
    if (l->counters_out) *l->counters_out = ls.totals;
    if (ls.code != ASCEND_SHIM_OK) write_error(l, ls.error);
    else write_error(l, "");
    return ls.code;
}

}  // namespace ascend_shim

// ---- TPipe (non-template members) ---------------------------------------------------------------

namespace AscendC {

TPipe::TPipe() {
    ascend_shim::CoreCtx& c = ascend_shim::core();
    if (c.pipes > 0) ascend_shim::fail("tpipe", "a second TPipe while one is alive: a kernel owns exactly one");
    c.reset_memory();
    c.pipes = 1;
    c.pipe = this;
}

TPipe::~TPipe() {
    ascend_shim::CoreCtx* c = ascend_shim::tl_core;
    if (c && c->pipe == this) {
        c->pipes = 0;
        c->pipe = nullptr;
    }
}

void TPipe::Reset() {
    ascend_shim::CoreCtx& c = ascend_shim::core();
    std::memset(reserved_, 0, sizeof reserved_);
    for (const ascend_shim::Slot& s : c.slots)
        if (s.queue >= 0 && s.state != ascend_shim::SlotState::Free)
            ascend_shim::fail("tensor-leak", "TPipe::Reset while a %s tensor is still allocated", ascend_shim::position_name(s.position));
    c.reset_memory();
}

TPipe* GetTPipePtr() { return static_cast<TPipe*>(ascend_shim::core().pipe); }

}  // namespace AscendC

extern "C" uint32_t ascend_shim_abi_version(void) { return ASCEND_SHIM_ABI_VERSION; }
