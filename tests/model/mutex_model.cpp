// Relacy models of rouse::mutex (include/rouse/mutex.hpp), compiled with
// ROUSE_MODEL_RELACY so its atomics and futex calls are Relacy's. The spin
// budget is 2 under the model, so waiters really park. Each model checks
// mutual exclusion (the protected counter is an rl::var: overlapping
// critical sections are reported as a data race), that every locker finishes
// (no lost wake-up: Relacy reports a deadlock otherwise), and the final count.
#include <cstdint>

#include "model.hpp"
#include "rouse/mutex.hpp"

namespace {

// Two threads: the second locker finds the mutex held and parks; unlock must
// wake it. Exhaustive (fair full search).
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

// A timed locker may time out at any point Relacy chooses. Whether it got the
// mutex or not, the other two lockers must still finish: a waiter that gives
// up after consuming a wake must pass it on.
struct timed_locker_gives_up : rl::test_suite<timed_locker_gives_up, 3> {
  rouse::mutex m;
  rl::var<int> counter;
  rl::var<int> timed_got;
  void before() {
    counter($) = 0;
    timed_got($) = 0;
  }
  void thread(unsigned index) {
    if (index == 0) {
      if (m.try_lock_until(std::chrono::steady_clock::time_point{})) {
        counter($) = counter($) + 1;
        timed_got($) = 1;
        m.unlock();
      }
    } else {
      m.lock();
      counter($) = counter($) + 1;
      m.unlock();
    }
  }
  void after() { RL_ASSERT(counter($) == 2 + timed_got($)); }
};

// The condition variable's entry: a thread that locks with lock_contended()
// (as a requeued waiter does) alongside ordinary lockers.
struct contended_locker : rl::test_suite<contended_locker, 3> {
  rouse::mutex m;
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned index) {
    if (index == 0) rouse::detail::mutex_access::lock_contended(m);
    else m.lock();
    counter($) = counter($) + 1;
    m.unlock();
  }
  void after() { RL_ASSERT(counter($) == 3); }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search for the larger models
  int failures = 0;
  failures += rouse_model::expect_pass<two_lockers>("mutex.two_lockers");
  failures += rouse_model::expect_pass<two_lockers_repeat>("mutex.two_lockers_repeat", iterations);
  failures += rouse_model::expect_pass<three_lockers>("mutex.three_lockers", iterations);
  failures += rouse_model::expect_pass<timed_locker_gives_up>("mutex.timed_locker_gives_up", iterations);
  failures += rouse_model::expect_pass<contended_locker>("mutex.contended_locker", iterations);
  return failures == 0 ? 0 : 1;
}
