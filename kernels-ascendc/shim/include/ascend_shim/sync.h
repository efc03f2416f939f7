// SetFlag/WaitFlag/PipeBarrier. The shim executes every instruction eagerly in program order, so
// these calls change no data; they are recorded to catch the misuse that hangs or races on the NPU.
#pragma once

#include "tensor.h"

namespace ascend_shim {
void set_flag(uint32_t evt, int32_t id);
void wait_flag(uint32_t evt, int32_t id);
void pipe_barrier(int pipe);
void crosscore_set(uint32_t mode, int pipe, uint32_t flagId);
void crosscore_wait(uint32_t flagId);
}  // namespace ascend_shim

namespace AscendC {

template <HardEvent evt>
void SetFlag(int32_t eventId) { ascend_shim::set_flag(uint32_t(evt), eventId); }
template <HardEvent evt>
void WaitFlag(int32_t eventId) { ascend_shim::wait_flag(uint32_t(evt), eventId); }
template <pipe_t pipe>
void PipeBarrier() { ascend_shim::pipe_barrier(int(pipe)); }

// Cross-core counting semaphores of a Mix group (flag ids 0..15, at most 15 pending sets per id and
// direction). Only mode 2 (AIC <-> its two AIVs) is modelled: an AIC set adds one to the counter of
// each of its AIVs; an AIV set adds one to the AIC's counter for that AIV; an AIC wait consumes one
// set from each of its two AIVs, an AIV wait one set from its AIC. The set fires once the named
// pipe's earlier work is done (the shim executes eagerly, so that is already true). Waits block
// the calling core's thread; a wait that can never be satisfied (every other core of the group
// finished or waiting too) fails with [crosscore-deadlock].
template <uint8_t modeId, pipe_t pipe>
void CrossCoreSetFlag(uint16_t flagId) { ascend_shim::crosscore_set(modeId, int(pipe), flagId); }
inline void CrossCoreWaitFlag(uint16_t flagId) { ascend_shim::crosscore_wait(flagId); }
template <uint8_t modeId, pipe_t pipe>
void CrossCoreWaitFlag(uint16_t flagId) { ascend_shim::crosscore_wait(flagId); }

}  // namespace AscendC
