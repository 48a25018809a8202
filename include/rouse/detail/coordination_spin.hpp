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
// sleeps. A group wait (barrier, latch) whose group fits on the CPUs has a
// third phase before it sleeps: pause polls for a few wake-up costs
// (group_spin_until). Every phase is bounded, so a long wait still ends
// asleep and costs no CPU. The limits were chosen with rouse-bench's
// barrier and latch workloads and semaphore.pingpong on the 2-vCPU AMD EPYC
// VM and a 16-core Intel Xeon VM (see docs/coordination.md).
//
// The yield is not part of any protocol (it only decides when to re-check),
// so it calls the platform directly rather than through the alias point;
// under a Relacy model it is a scheduling point like spin_pause().
#pragma once

#include "rouse/detail/sync_types.hpp"

#include <cstdint>

#include "rouse/detail/backoff_spin.hpp"

#if !defined(ROUSE_MODEL_RELACY)
#include "rouse/platform/cpu.hpp"
#include "rouse/platform/deadline.hpp"
#endif

namespace rouse::detail {

// Under a Relacy model one poll is enough: each spin_pause() is a scheduling
// point, and a long spin only multiplies the interleavings to explore.
#if defined(ROUSE_MODEL_RELACY)
inline constexpr int coordination_spin_limit = 1;
inline constexpr int handoff_spin_limit = 1;
inline constexpr int coordination_yield_limit = 0;
inline constexpr int group_yield_limit = 0;
#else
// Polls with a pause before the first yield, for a group wait (barrier,
// latch): a few hundred ns. With more threads than CPUs, the thread being
// waited for may need this CPU, and every pause only delays it. On the
// loaded 2-vCPU VM, 100 pauses before the first yield cost barrier.cycle2
// x1.09 and semaphore.pingpong x1.17 of std's; 16 pauses then yields gave
// x0.61 and x0.68 (same run conditions, --quick). On the idle VM, barrier
// with 4 threads on 2 vCPUs: 0, 16, 64, 256, 1024 pauses gave 0.88-0.98,
// 0.90-0.97, 1.05-1.08, 1.94-1.96, 5.4x std::barrier.
inline constexpr int coordination_spin_limit = 16;
// The same for a hand-off wait (semaphore, event): usually one partner,
// running on another CPU, whose answer takes a cross-CPU round trip (430 ns
// on the idle VM) plus its own work, which 16 pauses (~300 ns) just miss:
// the waiter then pays a yield system call (~1 µs) per poll. Idle VM,
// semaphore ping-pong, ratio to std::binary_semaphore / moodycamel's
// LightweightSemaphore in one run: 16 pauses 1.07-1.26 / 1.27-1.74; 64
// pauses 0.41-0.42 / 0.64-0.74; 256 0.45-0.48 / 0.50-0.65.
inline constexpr int handoff_spin_limit = 64;
// Then polls with a yield: each is one sched_yield (about 1 µs on these VMs
// when no other thread is runnable, a time slice of another thread when one
// is); bounded so that an idle wait sleeps after some tens of µs.
inline constexpr int coordination_yield_limit = 64;
// A group wait (barrier, latch) yields only a few times before it sleeps.
// Its waiters are many; once a waiter has yielded twice or so, the threads
// still to arrive are not waiting for this CPU, and a waiter that keeps
// yielding stays runnable: each time the scheduler picks it, it costs a
// switch (~1.8 µs on the VM, where a bare system call is ~1 µs) for nothing,
// and a CPU whose threads all wait never looks idle, so the scheduler never
// moves a thread there. With 4 threads on 2 vCPUs the threads were placed
// 3 + 1 and stayed so for a whole run with 64 yields (each phase then needs
// two switches on the crowded CPU); sleeping after a few yields lets idle
// balancing even them out: barrier.cycle4 went from 0.76-0.98x to
// 0.61-0.75x std::barrier (docs/coordination.md).
inline constexpr int group_yield_limit = 4;
// When the group fits on the CPUs (group_spin_until), a waiter polls on
// after that for 4 x platform::wake_cost(), clamped to [2, 50] µs
// (backoff_spin::budget of this policy; its gap fields are not used), with
// a yield every `group_spin_batch` pause polls. On 16 cores, 4 to 16
// threads with only the short spin slept in most phases (barrier.cycle4
// went from 0.13x to 0.89x std::barrier, latch.countdown16 from 0.83x to
// 2.5x std::latch; docs/coordination.md): phases of that many threads skew
// by more than a few µs, and each sleeper costs the phase a wake-up.
inline constexpr spin_policy group_spin_policy{4, std::chrono::microseconds(2), std::chrono::microseconds(50), 0, 0, 0};
inline constexpr int group_spin_batch = 64;
#endif

inline void coordination_yield() noexcept {
#if defined(ROUSE_MODEL_RELACY)
  spin_pause();
#else
  platform::thread_yield();
#endif
}

// Calls done() until it is true or the spin and yield budgets are spent
// (`pause_limit` polls with a pause, then `yield_limit` polls with a yield);
// returns its last result.
template <class Done>
inline bool spin_until(Done&& done, int pause_limit = coordination_spin_limit,
                       int yield_limit = coordination_yield_limit) {
  for (int i = 0; i < pause_limit; ++i) {
    if (done()) return true;
    spin_pause();
  }
  for (int i = 0; i < yield_limit; ++i) {
    if (done()) return true;
    coordination_yield();
  }
  return done();
}

// The spin of a group wait (barrier, latch): the short spin above, then,
// if the group's `participants` (a barrier's expected count; for a latch an
// estimate, see latch.hpp) fit on the CPUs this process may use
// (platform::process_cpus()), more polls until the budget of
// group_spin_policy (4 x wake_cost()) is spent. Returns done()'s last result.
// Which case applies:
//
//   participants > CPUs   some participant is usually waiting for a CPU
//                         that a waiter holds: 16 pauses, 4 yields, then
//                         sleep (group_yield_limit's reasons)
//   participants <= CPUs  the ones still to come are probably running on
//                         other CPUs, and a sleeper costs the phase a
//                         wake-up: poll on with pauses, and yield once per
//                         batch in case one of them shares this CPU anyway
template <class Done>
inline bool group_spin_until(Done&& done, std::uint32_t participants) {
  if (spin_until(done, coordination_spin_limit, group_yield_limit)) return true;
#if defined(ROUSE_MODEL_RELACY)
  (void)participants;
  return false;
#else
  if (participants > platform::process_cpus()) return false;
  std::int64_t const deadline = platform::steady_now_ns() + backoff_spin::budget(group_spin_policy).count();
  for (;;) {
    for (int i = 0; i < group_spin_batch; ++i) {
      if (done()) return true;
      spin_pause();
    }
    if (platform::steady_now_ns() >= deadline) return done();
    coordination_yield();
  }
#endif
}

}  // namespace rouse::detail
