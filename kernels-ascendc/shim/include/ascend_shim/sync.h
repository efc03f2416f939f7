// SetFlag/WaitFlag/PipeBarrier. The shim executes every instruction eagerly in program order, so
// these calls change no data; they are recorded to catch the misuse that hangs or races on the NPU.
#pragma once

#include "tensor.h"

namespace ascend_shim {
void set_flag(uint32_t evt, int32_t id);
void wait_flag(uint32_t evt, int32_t id);
void pipe_barrier(int pipe);
}  // namespace ascend_shim

namespace AscendC {

template <HardEvent evt>
void SetFlag(int32_t eventId) { ascend_shim::set_flag(uint32_t(evt), eventId); }
template <HardEvent evt>
void WaitFlag(int32_t eventId) { ascend_shim::wait_flag(uint32_t(evt), eventId); }
template <pipe_t pipe>
void PipeBarrier() { ascend_shim::pipe_barrier(int(pipe)); }

}  // namespace AscendC
