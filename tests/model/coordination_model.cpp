// Relacy models of the coordination primitives' wait/wake handshakes:
//   latch      count_down racing a waiter that goes to sleep; payload visible
//   barrier    a phase change with a sleeping waiter; completion runs once,
//              before the release, and sees every arrival's write
//   semaphore  release racing an acquire that sleeps; release(1) with two
//              sleepers wakes one and the other is not stranded
//   event      auto-reset set racing a sleeping wait; manual-reset with two
// No deadlock means no lost wake-up; rl::var accesses check happens-before.
#include "model.hpp"
#include "rouse/barrier.hpp"
#include "rouse/event.hpp"
#include "rouse/latch.hpp"
#include "rouse/semaphore.hpp"

namespace {

struct latch_count_down_wakes_waiter : rl::test_suite<latch_count_down_wakes_waiter, 2> {
  rouse::latch l{1};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 1;
      l.count_down();
    } else {
      l.wait();
      RL_ASSERT(payload($) == 1);
    }
  }
};

struct latch_two_arrive_and_wait : rl::test_suite<latch_two_arrive_and_wait, 2> {
  rouse::latch l{2};
  rl::var<int> data[2];

  void thread(unsigned index) {
    data[index]($) = 1;
    l.arrive_and_wait();
    RL_ASSERT(data[1 - index]($) == 1);
  }
};

struct count_completion {
  rl::var<int>* runs;
  rl::var<int>* data;
  void operator()() noexcept {
    RL_ASSERT(data[0]($) == 1 && data[1]($) == 1);  // every arrival's write
    (*runs)($) += 1;
  }
};

struct barrier_phase_change : rl::test_suite<barrier_phase_change, 2> {
  rl::var<int> runs;
  rl::var<int> data[2];
  rouse::barrier<count_completion> b{2, count_completion{&runs, data}};

  void before() { runs($) = 0; }

  void thread(unsigned index) {
    data[index]($) = 1;
    b.arrive_and_wait();
    RL_ASSERT(runs($) == 1);  // ran once, before this thread was released
  }
};

// Two phases: the second phase's arrivals are counted afresh.
struct barrier_two_phases : rl::test_suite<barrier_two_phases, 2> {
  rouse::barrier<> b{2};
  rl::var<int> data[2];

  void thread(unsigned index) {
    data[index]($) = 1;
    b.arrive_and_wait();
    RL_ASSERT(data[1 - index]($) == 1);
    b.arrive_and_wait();
    data[1 - index]($) = 2;  // both read in phase 1, write after phase 2: no race
  }
};

struct semaphore_release_wakes_sleeper : rl::test_suite<semaphore_release_wakes_sleeper, 2> {
  rouse::binary_semaphore s{0};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 4;
      s.release();
    } else {
      s.acquire();
      RL_ASSERT(payload($) == 4);
    }
  }
};

// Two acquirers, two releases of one permit each: nobody is stranded even
// though each release clears the sleepers flag and wakes only one.
struct semaphore_two_sleepers : rl::test_suite<semaphore_two_sleepers, 3> {
  rouse::counting_semaphore<2> s{0};

  void thread(unsigned index) {
    if (index == 0) {
      s.release();
      s.release();
    } else {
      s.acquire();
    }
  }
};

// release(2) with two sleepers: one wake call for both.
struct semaphore_release_two_two_sleepers : rl::test_suite<semaphore_release_two_two_sleepers, 3> {
  rouse::counting_semaphore<2> s{0};

  void thread(unsigned index) {
    if (index == 0) s.release(2);
    else s.acquire();
  }
};

// A timed acquirer and a blocking acquirer, one release: whichever is woken,
// if the timed one gives up, the blocking one still gets the permit.
struct semaphore_timeout_does_not_strand : rl::test_suite<semaphore_timeout_does_not_strand, 3> {
  rouse::binary_semaphore s{0};
  rouse::detail::atomic<int> taken{0};

  void thread(unsigned index) {
    if (index == 0) {
      s.release();
    } else if (index == 1) {
      if (s.try_acquire_until(std::chrono::steady_clock::time_point{})) {
        taken.store(1, std::memory_order_relaxed);
        s.release();  // hand it on so thread 2 can finish
      }
    } else {
      s.acquire();
    }
  }
};

struct event_auto_set_wakes_sleeper : rl::test_suite<event_auto_set_wakes_sleeper, 2> {
  rouse::event e{rouse::event_mode::auto_reset};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 2;
      e.set();
    } else {
      e.wait();
      RL_ASSERT(payload($) == 2);
    }
  }
};

struct event_manual_two_waiters : rl::test_suite<event_manual_two_waiters, 3> {
  rouse::event e;

  void thread(unsigned index) {
    if (index == 0) e.set();
    else e.wait();
  }
};

struct event_auto_two_sets_two_waiters : rl::test_suite<event_auto_two_sets_two_waiters, 3> {
  rouse::event e{rouse::event_mode::auto_reset};
  rouse::detail::atomic<int> woken{0};

  void thread(unsigned index) {
    if (index == 0) {
      // Set again only after the first set was consumed (tokens do not
      // accumulate), so both waiters must get one each.
      e.set();
      while (woken.load(std::memory_order_acquire) == 0) rouse::detail::spin_pause();
      e.set();
    } else {
      e.wait();
      woken.fetch_add(1, std::memory_order_release);
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<latch_count_down_wakes_waiter>("latch.count_down_wakes_waiter");
  failures += rouse_model::expect_pass<latch_two_arrive_and_wait>("latch.two_arrive_and_wait");
  failures += rouse_model::expect_pass<barrier_phase_change>("barrier.phase_change");
  failures += rouse_model::expect_pass<barrier_two_phases>("barrier.two_phases", 300000);
  failures += rouse_model::expect_pass<semaphore_release_wakes_sleeper>("semaphore.release_wakes_sleeper");
  failures += rouse_model::expect_pass<semaphore_two_sleepers>("semaphore.two_sleepers", 1000000);
  failures += rouse_model::expect_pass<semaphore_timeout_does_not_strand>("semaphore.timeout_does_not_strand", 1000000);
  failures += rouse_model::expect_pass<semaphore_release_two_two_sleepers>("semaphore.release_two_two_sleepers", 1000000);
  failures += rouse_model::expect_pass<event_auto_set_wakes_sleeper>("event.auto_set_wakes_sleeper");
  failures += rouse_model::expect_pass<event_manual_two_waiters>("event.manual_two_waiters", 300000);
  failures += rouse_model::expect_pass<event_auto_two_sets_two_waiters>("event.auto_two_sets_two_waiters", 300000);
  return failures == 0 ? 0 : 1;
}
