// rouse/detail/coordination_spin.hpp — the bounded spin the coordination
// primitives (latch, barrier, semaphore, event) do before they sleep.
//
// A futex sleep plus wake costs 20–36 µs of round trip on the 2-vCPU VMs
// rouse is measured on (about 7 µs on bare metal, folly's figure); a phase of
// a barrier or a semaphore hand-off between two running threads completes in
// well under a microsecond. Spinning a little first lets short waits finish
// without a sleep; the bound keeps an oversubscribed machine (more threads
// than cores, where the thread we wait for may not be running) from burning
// its time slice. The limit was chosen with rouse-bench's barrier.cycle2 and
// semaphore.pingpong on the 2-vCPU AMD EPYC VM (see docs/coordination.md).
#pragma once

#include "rouse/detail/sync_types.hpp"

namespace rouse::detail {

// Polls of the state word (each with a pause) before a coordination wait
// sleeps: about 1.5–3 µs with a 10–20 ns pause.
// Under a Relacy model one poll is enough: each spin_pause() is a scheduling
// point, and a long spin only multiplies the interleavings to explore.
#if defined(ROUSE_MODEL_RELACY)
inline constexpr int coordination_spin_limit = 1;
#else
inline constexpr int coordination_spin_limit = 150;
#endif

// Calls done() up to `limit` times with a spin_pause() between calls; true
// as soon as done() is true.
template <class Done>
inline bool spin_until(Done&& done, int limit = coordination_spin_limit) {
  for (int i = 0; i < limit; ++i) {
    if (done()) return true;
    spin_pause();
  }
  return done();
}

}  // namespace rouse::detail
