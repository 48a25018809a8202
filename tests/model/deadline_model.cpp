// Models of the one deadline idiom (rouse/detail/deadline.hpp) and the one
// spin (rouse/detail/spin.hpp) under Relacy, where their behaviour is
// defined once at the alias point: a timed wait may time out at any point
// Relacy picks and moves model time on; a model_clock deadline passes only
// once model time reached it; a real clock stands still, so its deadlines
// end a wait only through a timed wait's time-out; a spin is its policy's
// model_polls polls.
//
//   timed_wait_vs_store     a waiter with a model_clock deadline against a
//                           store and wake: it returns with the value, or
//                           times out with its deadline passed, never both
//                           wrong and never stuck
//   real_clock_deadline     the same with a steady_clock deadline long
//                           passed: it never expires by the clock, so the
//                           waiter sleeps and only a time-out or the wake
//                           ends the wait
//   untimed_wait            a no_deadline wait is never timed out: only the
//                           store and wake end it (a lost wake would be a
//                           deadlock)
//   spin_then_wait          a spin_until before the wait sees the store or
//                           gives up after its model polls
#include <chrono>
#include <cstdint>
#include <type_traits>

#include "model.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/spin.hpp"

namespace {

namespace d = rouse::detail;
using clock = d::model_clock;

template <class Deadline>
bool wait_for_one(d::atomic<std::uint32_t>& word, const Deadline& deadline) {
  for (;;) {
    if (word.load(std::memory_order_acquire) == 1) return true;
    if (deadline.expired()) return false;
    if (d::wait_until(word, 0, deadline) == d::wait_result::timed_out) {
      RL_ASSERT(Deadline::timed());  // an untimed wait never times out
      if constexpr (Deadline::timed()) {
        // On model time a time-out is never early: the deadline has passed.
        if constexpr (std::is_same_v<typename Deadline::clock, clock>) RL_ASSERT(deadline.expired());
      }
      return word.load(std::memory_order_acquire) == 1;
    }
  }
}

struct timed_wait_vs_store : rl::test_suite<timed_wait_vs_store, 2> {
  d::atomic<std::uint32_t> word{0};
  rl::var<int> payload;
  void before() { clock::reset(); }
  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 7;
      word.store(1, std::memory_order_release);
      d::wake_all(word);
    } else {
      auto const deadline = d::deadline_at(clock::now() + clock::duration(1));
      RL_ASSERT(!deadline.expired());  // model time stands still until a time-out
      if (wait_for_one(word, deadline)) {
        RL_ASSERT(payload($) == 7);
      } else {
        RL_ASSERT(deadline.expired());
      }
    }
  }
};

struct real_clock_deadline : rl::test_suite<real_clock_deadline, 2> {
  d::atomic<std::uint32_t> word{0};
  void before() { clock::reset(); }
  void thread(unsigned index) {
    if (index == 0) {
      word.store(1, std::memory_order_release);
      d::wake_all(word);
    } else {
      auto const deadline = d::deadline_at(std::chrono::steady_clock::time_point{});
      RL_ASSERT(!deadline.expired());  // a real clock stands still under a model
      (void)wait_for_one(word, deadline);
      RL_ASSERT(!deadline.expired());
    }
  }
};

struct untimed_wait : rl::test_suite<untimed_wait, 2> {
  d::atomic<std::uint32_t> word{0};
  void thread(unsigned index) {
    if (index == 0) {
      word.store(1, std::memory_order_release);
      d::wake_all(word);
    } else {
      RL_ASSERT(wait_for_one(word, d::no_deadline{}));
    }
  }
};

struct spin_then_wait : rl::test_suite<spin_then_wait, 2> {
  d::atomic<std::uint32_t> word{0};
  void thread(unsigned index) {
    if (index == 0) {
      word.store(1, std::memory_order_release);
      d::wake_all(word);
    } else {
      int polls = 0;
      bool const seen = d::spin_until(d::event_spin, [&] {
        ++polls;
        return word.load(std::memory_order_acquire) == 1;
      });
      RL_ASSERT(polls <= d::event_spin.model_polls + 1);
      if (!seen) RL_ASSERT(wait_for_one(word, d::no_deadline{}));
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<timed_wait_vs_store>("deadline.timed_wait_vs_store");
  failures += rouse_model::expect_pass<real_clock_deadline>("deadline.real_clock_deadline");
  failures += rouse_model::expect_pass<untimed_wait>("deadline.untimed_wait");
  failures += rouse_model::expect_pass<spin_then_wait>("deadline.spin_then_wait");
  return failures == 0 ? 0 : 1;
}
