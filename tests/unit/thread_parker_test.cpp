// Unit tests of rouse/thread_parker.hpp. An unparker knows that the parked
// thread sleeps by its wait call (tests/support/eventually.hpp), never by a
// sleep.
#include "rouse/thread_parker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace thread_parker_test {
namespace {

using namespace std::chrono_literals;

TEST(thread_parker, size_is_one_word) { EXPECT_EQ(sizeof(rouse::thread_parker), 4u); }

TEST(thread_parker, unpark_before_park_is_not_lost) {
  // park() takes the token without sleeping (no wait call; one that slept
  // would never be woken: a hang), and the token is gone afterwards.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::thread_parker p;
  p.unpark();
  auto const before = rouse::platform::syscall_counters();
  p.park();
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
  EXPECT_FALSE(p.park_for(0ms));
}

TEST(thread_parker, unparks_do_not_accumulate) {
  rouse::thread_parker p;
  p.unpark();
  p.unpark();
  p.park();
  EXPECT_FALSE(p.park_for(20ms));  // the second unpark left no second token
}

TEST(thread_parker, unpark_wakes_a_parked_thread) {
  // The unparker comes once this thread has parked (its wait call made): an
  // unpark that does not wake it leaves it asleep (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::thread_parker p;
  std::atomic<bool> flag{false};
  int payload = 0;
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    payload = 42;
    flag.store(true, std::memory_order_relaxed);
    p.unpark();
  });
  while (!flag.load(std::memory_order_relaxed)) p.park();
  EXPECT_EQ(payload, 42);  // happens-before: unpark's release, park's acquire
  t.join();
}

TEST(thread_parker, park_for_times_out_never_early) {
  rouse::thread_parker p;
  auto const start = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.park_for(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

TEST(thread_parker, park_until_times_out_never_early_on_system_clock) {
  rouse::thread_parker p;
  auto const deadline = std::chrono::system_clock::now() + 20ms;
  EXPECT_FALSE(p.park_until(deadline));
  EXPECT_GE(std::chrono::system_clock::now(), deadline);
}

TEST(thread_parker, park_for_returns_true_with_a_token) {
  // The second token comes while park_for sleeps (its wait call made).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::thread_parker p;
  p.unpark();
  EXPECT_TRUE(p.park_for(1h));
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] { p.unpark(); });
  EXPECT_TRUE(p.park_for(1h));
  t.join();
}

TEST(thread_parker, zero_and_negative_timeouts_return_at_once) {
  rouse::thread_parker p;
  EXPECT_FALSE(p.park_for(0ms));
  EXPECT_FALSE(p.park_for(-5ms));
  p.unpark();
  EXPECT_TRUE(p.park_for(0ms));  // a token present is taken even with no time left
}

TEST(thread_parker, timed_out_park_leaves_state_usable) {
  rouse::thread_parker p;
  EXPECT_FALSE(p.park_for(1ms));
  p.unpark();
  p.park();
  EXPECT_FALSE(p.park_for(1ms));
}

TEST(thread_parker, unpark_with_nobody_parked_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  rouse::thread_parker p;
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    p.unpark();
    p.park();
  }
  p.unpark();
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes, before.wakes);
  EXPECT_EQ(after.waits, before.waits);
}

TEST(thread_parker, many_handoffs_between_two_threads) {
  rouse::thread_parker a, b;
  std::atomic<int> turn{0};
  constexpr int rounds = 2000;
  std::thread t([&] {
    for (int i = 0; i < rounds; ++i) {
      while (turn.load(std::memory_order_acquire) != 2 * i + 1) b.park();
      turn.store(2 * i + 2, std::memory_order_release);
      a.unpark();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    turn.store(2 * i + 1, std::memory_order_release);
    b.unpark();
    while (turn.load(std::memory_order_acquire) != 2 * i + 2) a.park();
  }
  t.join();
  EXPECT_EQ(turn.load(), 2 * rounds);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(thread_parker_death, two_threads_parked_at_once_is_diagnosed) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  EXPECT_DEATH(
      {
        rouse::thread_parker p;
        auto const base = rouse_test::wait_calls();
        std::thread t([&] { p.park(); });
        rouse_test::until_wait_calls(base + 1);  // parked: the word says so
        p.park();
      },
      "rouse::thread_parker: misuse: park\\(\\) while another thread is parked");
}
#endif

}  // namespace
}  // namespace thread_parker_test
