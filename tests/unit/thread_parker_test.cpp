// Unit tests of rouse/thread_parker.hpp.
#include "rouse/thread_parker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "rouse/platform/counters.hpp"

namespace {

using namespace std::chrono_literals;

TEST(thread_parker, size_is_one_word) { EXPECT_EQ(sizeof(rouse::thread_parker), 4u); }

TEST(thread_parker, unpark_before_park_is_not_lost) {
  rouse::thread_parker p;
  p.unpark();
  p.park();  // returns at once: the token is there
  SUCCEED();
}

TEST(thread_parker, unparks_do_not_accumulate) {
  rouse::thread_parker p;
  p.unpark();
  p.unpark();
  p.park();
  EXPECT_FALSE(p.park_for(20ms));  // the second unpark left no second token
}

TEST(thread_parker, unpark_wakes_a_parked_thread) {
  rouse::thread_parker p;
  std::atomic<bool> flag{false};
  int payload = 0;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
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
  rouse::thread_parker p;
  p.unpark();
  EXPECT_TRUE(p.park_for(1h));
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    p.unpark();
  });
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
  EXPECT_DEATH(
      {
        rouse::thread_parker p;
        std::thread t([&] { p.park(); });
        std::this_thread::sleep_for(50ms);
        p.park();
      },
      "rouse::thread_parker: misuse: park\\(\\) while another thread is parked");
}
#endif

}  // namespace
