// Relacy models of rouse::mutex (include/rouse/mutex.hpp), compiled with
// ROUSE_MODEL_RELACY so its atomics and futex calls are Relacy's. The spin
// budget is 2 under the model, so waiters really park. Each model checks
// mutual exclusion (the protected counter is an rl::var: overlapping
// critical sections are reported as a data race), that every locker finishes
// (no lost wake-up: Relacy reports a deadlock otherwise), and the final count.
//
// A broken variant, switched on in the real code (detail::model_fault), that
// the model must catch:
//   broken_waiter_sleeps_unmarked   a waiter sleeps without marking the word
//                                   contended; the unlock takes the fast path
//                                   and wakes nobody: a deadlock
#include <cstdint>
#include <cstdio>

#include "model.hpp"
#include "rouse/mutex.hpp"

namespace {

using clock = rouse::detail::model_clock;

// Timed calls that gave up, over a whole search: main() checks that the
// give-up path was explored at all.
unsigned long timeouts = 0;

// Two threads: the second locker finds the mutex held, spins, and takes it
// when it is freed. Exhaustive (fair full search). Under that search each
// spin poll yields to the holder, which unlocks before the spin runs out:
// no locker sleeps here (two_lockers_long_section has them sleep).
struct two_lockers : rl::test_suite<two_lockers, 2> {
  rouse::mutex m;
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned) {
    m.lock();
    counter($) = counter($) + 1;
    m.unlock();
  }
  void after() { RL_ASSERT(counter($) == 2); }
};

// Two threads, the holder yielding once inside its critical section: the
// waiter's spin runs out while the mutex is still held, so it parks and the
// unlock must wake it. Exhaustive (fair full search, ~230k schedules).
struct two_lockers_long_section : rl::test_suite<two_lockers_long_section, 2> {
  rouse::mutex m;
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned) {
    m.lock();
    rl::yield(1, $);
    counter($) = counter($) + 1;
    m.unlock();
  }
  void after() { RL_ASSERT(counter($) == 2); }
};

// Two threads, three critical sections each: sleepers are woken more than
// once, so they turn "starving" (under the model from their second wake) and
// the hand-off path (6 -> 4 -> 2) runs. Random search: the full space is too big.
struct two_lockers_repeat : rl::test_suite<two_lockers_repeat, 2> {
  rouse::mutex m;
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned) {
    for (int i = 0; i < 3; ++i) {
      m.lock();
      counter($) = counter($) + 1;
      m.unlock();
    }
  }
  void after() { RL_ASSERT(counter($) == 6); }
};

// Three threads: two may sleep at once, so the contended state must survive
// the first wake (a woken waiter re-locks to "contended", never "locked").
struct three_lockers : rl::test_suite<three_lockers, 3> {
  rouse::mutex m;
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned) {
    m.lock();
    counter($) = counter($) + 1;
    m.unlock();
  }
  void after() { RL_ASSERT(counter($) == 3); }
};

// A timed locker may time out at any point Relacy chooses (model time: its
// deadline passes when one of its waits times out; model_clock is not
// steady_clock, so the lock goes the generic clock's way through
// detail::deadline_at()). Whether it got the mutex or not, the other two
// lockers must still finish: a waiter that gives up after consuming a wake
// must pass it on.
struct timed_locker_gives_up : rl::test_suite<timed_locker_gives_up, 3> {
  rouse::mutex m;
  rl::var<int> counter;
  rl::var<int> timed_got;
  void before() {
    clock::reset();
    counter($) = 0;
    timed_got($) = 0;
  }
  void thread(unsigned index) {
    if (index == 0) {
      if (m.try_lock_until(clock::now() + clock::duration(1))) {
        counter($) = counter($) + 1;
        timed_got($) = 1;
        m.unlock();
      } else {
        ++timeouts;
      }
    } else {
      m.lock();
      counter($) = counter($) + 1;
      m.unlock();
    }
  }
  void after() { RL_ASSERT(counter($) == 2 + timed_got($)); }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search for the larger models
  int failures = 0;
  failures += rouse_model::expect_pass<two_lockers>("mutex.two_lockers");
  failures += rouse_model::expect_pass<two_lockers_long_section>("mutex.two_lockers_long_section");
  failures += rouse_model::expect_pass<two_lockers_repeat>("mutex.two_lockers_repeat", iterations);
  failures += rouse_model::expect_pass<three_lockers>("mutex.three_lockers", iterations);
  failures += rouse_model::expect_pass<timed_locker_gives_up>("mutex.timed_locker_gives_up", iterations);
  std::printf("model mutex.timed_locker_gives_up: %lu try_lock_until() calls timed out\n", timeouts);
  if (timeouts == 0) ++failures;
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::mutex_waiter_sleeps_unmarked);
    failures += rouse_model::expect_failure<two_lockers_long_section>("mutex.broken_waiter_sleeps_unmarked",
                                                                      rl::test_result_deadlock);
  }
  return failures == 0 ? 0 : 1;
}
