// rouse/platform/fence.hpp — asymmetric fences: a free fence on the hot side,
// a process-wide barrier on the rare side.
//
//   asymmetric_light_fence()   hot side: a compiler barrier when the heavy side
//                              is a real process-wide barrier, else a full fence
//   asymmetric_heavy_fence()   rare side: membarrier(PRIVATE_EXPEDITED), which
//                              makes every running thread of the process pass a
//                              full memory barrier; else a full fence
//
// Contract: for a store->load (Dekker) handshake where one side runs often
// and the other rarely (a producer publishing versus a consumer going to
// sleep), pair the frequent side's light fence with the rare side's heavy
// fence:
//
//   hot:   store(x); asymmetric_light_fence();  r1 = load(y);
//   rare:  store(y); asymmetric_heavy_fence();  r2 = load(x);
//
// Then r1 and r2 cannot both miss the other's store, exactly as if both
// sides had run a seq_cst fence. The hot side pays nothing at run time (the
// support flag is a constant after start-up and the branch is predicted); the
// rare side pays one system call (an inter-processor interrupt to the CPUs
// running this process's other threads: a few microseconds), so use it only
// on paths that are about to make a system call anyway, like going to sleep.
//
// Linux 4.14+ (MEMBARRIER_CMD_PRIVATE_EXPEDITED, registered once before
// main). Where it is missing or refused (old kernels, seccomp filters, other
// systems) both sides fall back to seq_cst fences: correct, no longer free.
// This is the technique of folly's asymmetricLightBarrier/HeavyBarrier and of
// hazard-pointer libraries.
#pragma once

#include <atomic>

#include "rouse/config.hpp"

namespace rouse::platform {

// True when asymmetric_heavy_fence() is a process-wide barrier. Set once
// during static initialization; zero (false, the safe value) before that.
extern const bool asymmetric_fence_supported;

inline void asymmetric_light_fence() noexcept {
  if (asymmetric_fence_supported) [[likely]] {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

void asymmetric_heavy_fence() noexcept;

}  // namespace rouse::platform
