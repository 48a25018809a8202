// rouse/detail/coordination_spin.hpp — the bounded spin the coordination
// primitives (latch, barrier, semaphore, event) do before they sleep.
//
// A futex sleep plus wake costs 20–36 µs of round trip on the 2-vCPU VMs
// rouse is measured on (about 7 µs on bare metal, folly's figure); a phase of
// a barrier or a semaphore hand-off between two running threads completes in
// well under a microsecond. So a waiter first polls with a pause (the thread
// it waits for is running on another core), then polls with a yield between
// polls (it may be waiting for the CPU this thread holds: with more threads
// than cores, a yield lets it run, for about one system call), and only then
// sleeps. Both phases are bounded, so a long wait still ends asleep and costs
// no CPU. The limits were chosen with rouse-bench's barrier.cycle2/4,
// semaphore.pingpong and latch.countdown16 on the 2-vCPU AMD EPYC VM (see
// docs/coordination.md).
//
// The yield is not part of any protocol (it only decides when to re-check),
// so it calls the platform directly rather than through the alias point;
// under a Relacy model it is a scheduling point like spin_pause().
#pragma once

#include "rouse/detail/sync_types.hpp"

#if !defined(ROUSE_MODEL_RELACY)
#include "rouse/platform/cpu.hpp"
#endif

namespace rouse::detail {

// Under a Relacy model one poll is enough: each spin_pause() is a scheduling
// point, and a long spin only multiplies the interleavings to explore.
#if defined(ROUSE_MODEL_RELACY)
inline constexpr int coordination_spin_limit = 1;
inline constexpr int coordination_yield_limit = 0;
#else
// Polls with a pause: a few hundred ns, enough for a partner running on
// another core to answer. On the loaded 2-vCPU VM, 100 pauses before the
// first yield cost barrier.cycle2 x1.09 and semaphore.pingpong x1.17 of
// std's; 16 pauses then yields gave x0.61 and x0.68 (same run conditions,
// --quick): when the partner is not running, every pause is wasted time.
inline constexpr int coordination_spin_limit = 16;
// Then polls with a yield: each is one sched_yield (about 1 µs on these VMs
// when no other thread is runnable, a time slice of another thread when one
// is); bounded so that an idle wait sleeps after some tens of µs.
inline constexpr int coordination_yield_limit = 64;
#endif

inline void coordination_yield() noexcept {
#if defined(ROUSE_MODEL_RELACY)
  spin_pause();
#else
  platform::thread_yield();
#endif
}

// Calls done() until it is true or the spin and yield budgets are spent;
// returns its last result.
template <class Done>
inline bool spin_until(Done&& done) {
  for (int i = 0; i < coordination_spin_limit; ++i) {
    if (done()) return true;
    spin_pause();
  }
  for (int i = 0; i < coordination_yield_limit; ++i) {
    if (done()) return true;
    coordination_yield();
  }
  return done();
}

}  // namespace rouse::detail
