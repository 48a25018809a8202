// Models of atomic_wait's 4-byte handshake (rouse/detail/waiter_count.hpp):
// a waiter announces itself in a per-slot waiter count (A), checks the value
// (A') and sleeps on the futex; a notifier stores the value, fences (B),
// loads the count (B') and wakes only when it is not zero. The code under
// test is the library's own (counted_wait_u32 / counted_notify_u32), run on
// Relacy's futex. Relacy explores every interleaving and the C++ memory
// model; a lost wake-up shows as a deadlock, a misordered payload as a race.
#include <chrono>
#include <cstdint>

#include "model.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/waiter_count.hpp"

namespace {

namespace d = rouse::detail;
using deadline_t = std::chrono::steady_clock::time_point;

// One waiter, one notifier that publishes a payload and notify_one()s.
struct notify_one_after_store_wakes_the_waiter : rl::test_suite<notify_one_after_store_wakes_the_waiter, 2> {
  d::atomic<std::uint32_t> waiters{0};
  d::atomic<std::uint32_t> value{0};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 42;
      value.store(1, std::memory_order_release);
      d::counted_notify_u32(waiters, value, false);
    } else {
      RL_ASSERT(d::counted_wait_u32(waiters, value, 0, d::no_deadline{}));
      RL_ASSERT(payload($) == 42);
    }
  }
  void after() { RL_ASSERT(waiters.load(std::memory_order_relaxed) == 0); }
};

// The notifier's store is relaxed: the fence (B), not the store's order,
// is what keeps the handshake; the waiter only checks it was woken.
struct relaxed_store_is_enough_for_the_handshake : rl::test_suite<relaxed_store_is_enough_for_the_handshake, 2> {
  d::atomic<std::uint32_t> waiters{0};
  d::atomic<std::uint32_t> value{0};

  void thread(unsigned index) {
    if (index == 0) {
      value.store(1, std::memory_order_relaxed);
      d::counted_notify_u32(waiters, value, false);
    } else {
      RL_ASSERT(d::counted_wait_u32(waiters, value, 0, d::no_deadline{}));
    }
  }
};

// A timed waiter: either it sees the value (and the payload), or it times
// out with the value unchanged — never a timeout that hides a change.
struct timed_waiter_sees_the_value_or_times_out : rl::test_suite<timed_waiter_sees_the_value_or_times_out, 2> {
  d::atomic<std::uint32_t> waiters{0};
  d::atomic<std::uint32_t> value{0};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 7;
      value.store(1, std::memory_order_release);
      d::counted_notify_u32(waiters, value, false);
    } else {
      // A deadline long passed: under the model a real clock stands still,
      // so only the wait's time-out (any point Relacy picks) ends it.
      if (d::counted_wait_u32(waiters, value, 0, d::deadline_at(deadline_t{}))) {
        RL_ASSERT(payload($) == 7);
      }
    }
  }
  void after() { RL_ASSERT(waiters.load(std::memory_order_relaxed) == 0); }
};

// Two waiters on two different words that share one waiter count; one
// notifier changes both and notifies each. Both wake; the shared count
// returns to zero.
struct two_words_sharing_a_count : rl::test_suite<two_words_sharing_a_count, 3> {
  d::atomic<std::uint32_t> waiters{0};
  d::atomic<std::uint32_t> first{0};
  d::atomic<std::uint32_t> second{0};

  void thread(unsigned index) {
    if (index == 0) {
      first.store(1, std::memory_order_release);
      d::counted_notify_u32(waiters, first, false);
      second.store(1, std::memory_order_release);
      d::counted_notify_u32(waiters, second, true);
    } else if (index == 1) {
      RL_ASSERT(d::counted_wait_u32(waiters, first, 0, d::no_deadline{}));
    } else {
      RL_ASSERT(d::counted_wait_u32(waiters, second, 0, d::no_deadline{}));
    }
  }
  void after() { RL_ASSERT(waiters.load(std::memory_order_relaxed) == 0); }
};

// Two waiters on one word, notify_all wakes both.
struct notify_all_wakes_both_waiters : rl::test_suite<notify_all_wakes_both_waiters, 3> {
  d::atomic<std::uint32_t> waiters{0};
  d::atomic<std::uint32_t> value{0};

  void thread(unsigned index) {
    if (index == 0) {
      value.store(1, std::memory_order_release);
      d::counted_notify_u32(waiters, value, true);
    } else {
      RL_ASSERT(d::counted_wait_u32(waiters, value, 0, d::no_deadline{}));
    }
  }
};

}  // namespace

int main() {
  constexpr unsigned long three_thread_iterations = 200000;
  int failures = 0;
  failures += rouse_model::expect_pass<notify_one_after_store_wakes_the_waiter>(
      "atomic_wait.notify_one_after_store_wakes_the_waiter");
  failures += rouse_model::expect_pass<relaxed_store_is_enough_for_the_handshake>(
      "atomic_wait.relaxed_store_is_enough_for_the_handshake");
  failures += rouse_model::expect_pass<timed_waiter_sees_the_value_or_times_out>(
      "atomic_wait.timed_waiter_sees_the_value_or_times_out");
  // Three threads: a full search does not finish in reasonable time, so
  // these run a random search of a fixed number of schedules.
  failures += rouse_model::expect_pass<two_words_sharing_a_count>("atomic_wait.two_words_sharing_a_count",
                                                                  three_thread_iterations);
  failures += rouse_model::expect_pass<notify_all_wakes_both_waiters>("atomic_wait.notify_all_wakes_both_waiters",
                                                                      three_thread_iterations);
  return failures == 0 ? 0 : 1;
}
