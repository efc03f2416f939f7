// GlobalTensor, LocalTensor, TPipe, TQue/TQueBind, TBuf.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core.h"
#include "numeric.h"

namespace AscendC {

enum class TPosition : uint8_t {
    GM = 0, VECIN, VECOUT, VECCALC, A1, A2, B1, B2, C1, C2, CO1, CO2, C2PIPE2GM, MAX
};
using QuePosition = TPosition;
using TEventID = int8_t;

enum class HardEvent : uint8_t {
    MTE2_V = 0, V_MTE2, V_MTE3, MTE3_V, MTE2_MTE3, MTE3_MTE2, S_V, V_S, S_MTE2, MTE2_S, S_MTE3, MTE3_S,
    MTE2_MTE1, MTE1_MTE2, MTE1_M, M_MTE1, M_FIX, FIX_M, MTE2_M, M_MTE2, FIX_MTE2, MTE2_FIX, FIX_S, M_S,
    FIX_MTE3, M_V, V_M, V_V, MTE1_V, V_MTE1, MTE1_MTE3, MTE3_MTE1, MAX
};
static_assert(uint32_t(HardEvent::MAX) <= ascend_shim::kNumHardEvents, "event table size");

}  // namespace AscendC

namespace ascend_shim {

constexpr Mem position_mem(AscendC::TPosition p) {
    using P = AscendC::TPosition;
    return (p == P::VECIN || p == P::VECOUT || p == P::VECCALC) ? MEM_UB
           : (p == P::A1 || p == P::B1 || p == P::C1)           ? MEM_L1
           : p == P::A2                                          ? MEM_L0A
           : p == P::B2                                          ? MEM_L0B
           : p == P::CO1                                         ? MEM_L0C
                                                                 : MEM_NONE;
}
const char* position_name(uint8_t p);

// Runtime side of TPipe/TQue/TBuf (shim_runtime.cpp); ids index CoreCtx::slots / queues.
int32_t pipe_init_buffers(uint8_t position, uint32_t num, uint32_t len, int32_t queue, const char* api);
int32_t pipe_new_queue(uint8_t position, int32_t depth);
int32_t queue_alloc(int32_t q);
void queue_enque(int32_t q, int32_t slot, uint32_t gen);
int32_t queue_deque(int32_t q);
void queue_free(int32_t q, int32_t slot, uint32_t gen);
// [event-pool] misuse of TPipe's event ids (id -1: none involved).
[[noreturn]] void event_pool_fail(const char* api, uint32_t evt, const char* what, int32_t id);
[[noreturn]] void fail_operand(const char* api, const char* what, const char* problem, int32_t slot,
                               uint32_t off, uint32_t len);

template <typename T> class TensorAccess;

}  // namespace ascend_shim

namespace AscendC {

template <typename T>
class LocalTensor {
public:
    using PrimType = T;
    LocalTensor() = default;

    LocalTensor operator[](uint32_t offset) const {
        LocalTensor v = *this;
        if (offset > count_)
            ascend_shim::fail("tensor-extent", "LocalTensor[%u] on a tensor of %u elements", offset, count_);
        v.off_ += offset * uint32_t(sizeof(T));
        v.count_ -= offset;
        return v;
    }
    template <typename U>
    LocalTensor<U> ReinterpretCast() const {
        LocalTensor<U> v;
        v.mem_ = mem_; v.pos_ = pos_; v.slot_ = slot_; v.gen_ = gen_; v.off_ = off_;
        v.count_ = uint32_t(uint64_t(count_) * sizeof(T) / sizeof(U));
        return v;
    }
    T GetValue(uint32_t i) const {
        T* p = scalar_ptr(i, true, "LocalTensor::GetValue");
        T v;
        std::memcpy(&v, p, sizeof(T));
        return v;
    }
    void SetValue(uint32_t i, T v) const {
        T* p = scalar_ptr(i, false, "LocalTensor::SetValue");
        std::memcpy(p, &v, sizeof(T));
        ascend_shim::set_defined(ascend_shim::Mem(mem_), off_ + i * uint32_t(sizeof(T)), sizeof(T), true);
    }
    uint32_t GetSize() const { return count_; }
    uint32_t GetLength() const { return count_ * uint32_t(sizeof(T)); }
    TPosition GetPosition() const { return TPosition(pos_); }
    // Local-memory address as the NPU sees it (byte offset inside its memory), for logging/asserts.
    uint64_t GetPhyAddr() const { return off_; }
    void SetSize(uint32_t n) {
        if (n > count_) ascend_shim::fail("tensor-extent", "SetSize(%u) grows a tensor of %u elements", n, count_);
        count_ = n;
    }

    // Shim internals (public so the API templates can reach them without friend lists).
    uint8_t mem_ = ascend_shim::MEM_NONE;
    uint8_t pos_ = 0;
    int32_t slot_ = -1;
    uint32_t gen_ = 0;
    uint32_t off_ = 0;    // bytes from the start of the memory
    uint32_t count_ = 0;  // elements

private:
    T* scalar_ptr(uint32_t i, bool read, const char* api) const;
};

template <typename T>
class GlobalTensor {
public:
    using PrimType = T;
    GlobalTensor() = default;

    void SetGlobalBuffer(__gm__ T* buffer, uint64_t size) {
        dev_ = reinterpret_cast<uint64_t>(buffer);
        size_ = size;
        sized_ = true;
        host_ = nullptr;
        origin_ = 0;
        if (size == 0) return;
        host_ = static_cast<T*>(ascend_shim::translate_gm(dev_, size * sizeof(T)));
        if (host_ == nullptr)
            ascend_shim::fail("gm-oob",
                              "SetGlobalBuffer(0x%llx, %llu elements = %llu bytes) is not inside one buffer "
                              "passed to the launch",
                              (unsigned long long)dev_, (unsigned long long)size,
                              (unsigned long long)(size * sizeof(T)));
    }
    void SetGlobalBuffer(__gm__ T* buffer) {
        dev_ = reinterpret_cast<uint64_t>(buffer);
        sized_ = false;
        size_ = 0;
        host_ = nullptr;
    }
    GlobalTensor operator[](uint64_t offset) const {
        GlobalTensor v = *this;
        v.dev_ += offset * sizeof(T);
        v.origin_ += offset;
        if (sized_) {
            if (offset > size_)
                ascend_shim::fail("gm-oob", "GlobalTensor[%llu] on a buffer of %llu elements",
                                  (unsigned long long)offset, (unsigned long long)size_);
            v.size_ -= offset;
            if (host_) v.host_ = host_ + offset;
        }
        return v;
    }
    T GetValue(uint64_t i) const {
        T v;
        std::memcpy(&v, span(i, 1, "GlobalTensor::GetValue"), sizeof(T));
        ascend_shim::gm_note_read(dev_ + i * sizeof(T), sizeof(T), false);
        return v;
    }
    void SetValue(uint64_t i, T v) const {
        std::memcpy(span(i, 1, "GlobalTensor::SetValue"), &v, sizeof(T));
        ascend_shim::gm_note_write(dev_ + i * sizeof(T), sizeof(T), false);
    }
    uint64_t GetSize() const { return size_; }
    __gm__ T* GetPhyAddr() const { return reinterpret_cast<T*>(dev_); }
    __gm__ T* GetPhyAddr(uint64_t offset) const { return reinterpret_cast<T*>(dev_ + offset * sizeof(T)); }

    // Host pointer to elements [off, off + n) after bounds checking against the buffer given to
    // SetGlobalBuffer (or, unsized, against the launch's allocations).
    T* span(uint64_t off, uint64_t n, const char* api) const {
        if (sized_) {
            if (off + n > size_ || off + n < off)
                ascend_shim::fail("gm-oob",
                                  "%s accesses GM elements [%llu, %llu) of a GlobalTensor set to %llu elements "
                                  "by SetGlobalBuffer(0x%llx)",
                                  api, (unsigned long long)(origin_ + off), (unsigned long long)(origin_ + off + n),
                                  (unsigned long long)(origin_ + size_),
                                  (unsigned long long)(dev_ - origin_ * sizeof(T)));
            return host_ + off;
        }
        void* p = ascend_shim::translate_gm(dev_ + off * sizeof(T), n * sizeof(T));
        if (p == nullptr)
            ascend_shim::fail("gm-oob", "%s accesses device bytes [0x%llx, 0x%llx), outside every buffer passed to the launch",
                              api, (unsigned long long)(dev_ + off * sizeof(T)),
                              (unsigned long long)(dev_ + (off + n) * sizeof(T)));
        return static_cast<T*>(p);
    }

private:
    uint64_t dev_ = 0;
    T* host_ = nullptr;
    uint64_t size_ = 0;
    uint64_t origin_ = 0;  // elements from the SetGlobalBuffer start, for messages
    bool sized_ = false;
};

class TPipe;

template <TPosition src, TPosition dst, int32_t depth>
class TQueBind {
public:
    TQueBind() = default;

    template <typename T>
    LocalTensor<T> AllocTensor() { return ascend_shim::TensorAccess<T>::from_slot(ascend_shim::queue_alloc(need())); }
    template <typename T>
    bool EnQue(const LocalTensor<T>& t) { ascend_shim::queue_enque(need(), t.slot_, t.gen_); return true; }
    template <typename T>
    LocalTensor<T> DeQue() { return ascend_shim::TensorAccess<T>::from_slot(ascend_shim::queue_deque(need())); }
    template <typename T>
    void FreeTensor(LocalTensor<T>& t) { ascend_shim::queue_free(need(), t.slot_, t.gen_); }
    bool VacantInQue() const;
    bool HasTensorInQue() const { return qid_ >= 0 && !ascend_shim::core().queues[qid_].fifo.empty(); }

    int32_t qid_ = -1;

private:
    int32_t need() const {
        if (qid_ < 0) ascend_shim::fail("queue-uninit", "queue used before TPipe::InitBuffer");
        return qid_;
    }
};

template <TPosition pos, int32_t depth = 1>
class TQue : public TQueBind<pos, pos, depth> {};

template <TPosition pos>
class TBuf {
public:
    template <typename T>
    LocalTensor<T> Get() const { return ascend_shim::TensorAccess<T>::from_slot(need()); }
    template <typename T>
    LocalTensor<T> Get(uint32_t count) const { return GetWithOffset<T>(count, 0); }
    template <typename T>
    LocalTensor<T> GetWithOffset(uint32_t count, uint32_t bufOffset) const {
        LocalTensor<T> t = ascend_shim::TensorAccess<T>::from_slot(need());
        uint64_t end = uint64_t(bufOffset) + uint64_t(count) * sizeof(T);
        if (end > t.GetLength())
            ascend_shim::fail("tensor-extent", "TBuf::Get of %u elements at byte %u exceeds the %u-byte buffer",
                              count, bufOffset, t.GetLength());
        t.off_ += bufOffset;
        t.count_ = count;
        return t;
    }
    int32_t slot_ = -1;

private:
    int32_t need() const {
        if (slot_ < 0) ascend_shim::fail("queue-uninit", "TBuf used before TPipe::InitBuffer");
        return slot_;
    }
};

class TPipe {
public:
    TPipe();
    ~TPipe();
    TPipe(const TPipe&) = delete;
    TPipe& operator=(const TPipe&) = delete;

    template <TPosition src, TPosition dst, int32_t depth>
    bool InitBuffer(TQueBind<src, dst, depth>& que, uint8_t num, uint32_t len) {
        // Declaring such a queue is fine (CANN code for other chips does); giving it memory is not.
        static_assert(ascend_shim::position_mem(src) != ascend_shim::MEM_NONE,
                      "this TPosition has no local memory on 910B (CO2 and GM are global memory)");
        que.qid_ = ascend_shim::pipe_new_queue(uint8_t(src), depth);
        ascend_shim::pipe_init_buffers(uint8_t(src), num, len, que.qid_, "TPipe::InitBuffer(queue)");
        return true;
    }
    template <TPosition pos>
    bool InitBuffer(TBuf<pos>& buf, uint32_t len) {
        static_assert(ascend_shim::position_mem(pos) != ascend_shim::MEM_NONE,
                      "this TPosition has no local memory on 910B (CO2 and GM are global memory)");
        buf.slot_ = ascend_shim::pipe_init_buffers(uint8_t(pos), 1, len, -1, "TPipe::InitBuffer(TBuf)");
        return true;
    }
    // The pipe's pool of event ids per HardEvent (0..5; 6 and 7 are the framework's).
    // AllocEventID reserves the first free id, ReleaseEventID returns it, and FetchEventID (both
    // overloads) returns the first free id and reserves nothing: fetching twice without using
    // the id gives the same id (ascendc-facts.md, errata 2). An empty pool fails [event-pool].
    TEventID FetchEventID(HardEvent evt) { return first_free(evt, "TPipe::FetchEventID"); }
    template <HardEvent evt>
    TEventID FetchEventID() { return first_free(evt, "TPipe::FetchEventID"); }
    template <HardEvent evt>
    TEventID AllocEventID() {
        const TEventID id = first_free(evt, "TPipe::AllocEventID");
        reserved_[uint32_t(evt)] |= uint8_t(1u << id);
        return id;
    }
    template <HardEvent evt>
    void ReleaseEventID(TEventID id) {
        if (id < 0 || id >= kPoolIds || !(reserved_[uint32_t(evt)] & (1u << id)))
            ascend_shim::event_pool_fail("TPipe::ReleaseEventID", uint32_t(evt), "an id AllocEventID did not hand out", id);
        reserved_[uint32_t(evt)] &= uint8_t(~(1u << id));
    }
    void Reset();
    void Destroy() {}

private:
    static constexpr int32_t kPoolIds = 6;
    TEventID first_free(HardEvent evt, const char* api) const {
        for (int32_t id = 0; id < kPoolIds; ++id)
            if (!(reserved_[uint32_t(evt)] & (1u << id))) return TEventID(id);
        ascend_shim::event_pool_fail(api, uint32_t(evt), "no free id: all of 0..5 are allocated", -1);
    }
    uint8_t reserved_[ascend_shim::kNumHardEvents] = {};
};

TPipe* GetTPipePtr();

}  // namespace AscendC

namespace ascend_shim {

template <typename T>
class TensorAccess {
public:
    static AscendC::LocalTensor<T> from_slot(int32_t id) {
        const Slot& s = core().slots[id];
        AscendC::LocalTensor<T> t;
        t.mem_ = s.mem;
        t.pos_ = s.position;
        t.slot_ = id;
        t.gen_ = s.gen;
        t.off_ = s.off;
        t.count_ = uint32_t(s.len / sizeof(T));
        return t;
    }
};

// Bit set of memories an API accepts for an operand.
constexpr uint32_t mem_bit(Mem m) { return 1u << m; }

// Validates an operand of an API call: a live tensor, in an accepted memory, aligned, with at
// least `count` elements, and (for reads) every byte written since allocation. Checks run once per
// call so the element loops stay tight.
template <typename T>
T* operand(const AscendC::LocalTensor<T>& t, uint64_t count, bool read, const char* api, const char* what,
           uint32_t memMask, uint32_t align = 0) {
    CoreCtx& c = core();
    if (t.slot_ < 0 || uint32_t(t.slot_) >= c.slots.size())
        fail("tensor-invalid", "%s: %s is not a tensor obtained from AllocTensor/DeQue/TBuf::Get", api, what);
    const Slot& s = c.slots[t.slot_];
    if (s.gen != t.gen_ || s.state == SlotState::Free)
        fail("use-after-free", "%s: %s refers to a %s buffer at offset %u that was freed (FreeTensor) since", api,
             what, kMemName[s.mem], s.off);
    if (!(memMask & mem_bit(Mem(t.mem_)))) fail_operand(api, what, "is in the wrong memory", t.slot_, t.off_, 0);
    uint32_t a = align ? align : kMemAlign[t.mem_];
    if (t.off_ % a != 0) {
        fail("align", "%s: %s starts at %s byte offset %u, which is not %u-byte aligned", api, what,
             kMemName[t.mem_], t.off_, a);
    }
    if (count > t.count_)
        fail("tensor-extent", "%s: %s needs %llu elements but the tensor holds %u", api, what,
             (unsigned long long)count, t.count_);
    uint32_t bytes = uint32_t(count * sizeof(T));
    if (read && !is_defined(Mem(t.mem_), t.off_, bytes)) fail_operand(api, what, "uninit", t.slot_, t.off_, bytes);
    return reinterpret_cast<T*>(mem_ptr(Mem(t.mem_), t.off_));
}

template <typename T>
void define(const AscendC::LocalTensor<T>& t, uint64_t count) {
    set_defined(Mem(t.mem_), t.off_, uint32_t(count * sizeof(T)), true);
}

}  // namespace ascend_shim

namespace AscendC {

template <typename T>
T* LocalTensor<T>::scalar_ptr(uint32_t i, bool read, const char* api) const {
    if (i >= count_) ascend_shim::fail("tensor-extent", "%s(%u) on a tensor of %u elements", api, i, count_);
    LocalTensor<T> e = *this;
    e.off_ += i * uint32_t(sizeof(T));
    e.count_ = 1;
    return ascend_shim::operand(e, 1, read, api, "the tensor", 0xFFu, uint32_t(sizeof(T)));
}

template <TPosition src, TPosition dst, int32_t depth>
bool TQueBind<src, dst, depth>::VacantInQue() const {
    if (qid_ < 0) return false;
    const ascend_shim::QueueState& q = ascend_shim::core().queues[qid_];
    return int32_t(q.fifo.size()) < (depth > 0 ? depth : 1);
}

}  // namespace AscendC
