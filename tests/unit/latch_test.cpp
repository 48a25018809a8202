// Unit tests of rouse/latch.hpp. A waiter is known to sleep by its wait
// call (tests/support/eventually.hpp), never by a sleep.
#include "rouse/latch.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace latch_test {
namespace {

using namespace std::chrono_literals;

TEST(latch, size_is_one_word) { EXPECT_EQ(sizeof(rouse::latch), 4u); }

TEST(latch, max_is_at_least_a_billion) { EXPECT_GE(rouse::latch::max(), 1'000'000'000); }

TEST(latch, zero_count_is_open_from_the_start) {
  rouse::latch l(0);
  EXPECT_TRUE(l.try_wait());
  l.wait();
}

TEST(latch, count_down_opens_at_zero) {
  rouse::latch l(3);
  EXPECT_FALSE(l.try_wait());
  l.count_down();
  EXPECT_FALSE(l.try_wait());
  l.count_down(2);
  EXPECT_TRUE(l.try_wait());
  l.wait();
}

TEST(latch, count_down_zero_changes_nothing) {
  rouse::latch l(1);
  l.count_down(0);
  EXPECT_FALSE(l.try_wait());
  l.count_down();
  l.count_down(0);
  EXPECT_TRUE(l.try_wait());
}

TEST(latch, wait_sleeps_until_the_last_count_down) {
  // The waiter sleeps (its wait call made) before either count_down. The
  // first must not wake it (no wake call); the last must (else a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::latch l(2);
  int payload = 0;
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    auto const wakes = rouse_test::wake_calls();
    payload = 1;
    l.count_down();
    EXPECT_EQ(rouse_test::wake_calls(), wakes) << "a count_down that does not open the latch woke somebody";
    payload = 2;
    l.count_down();
  });
  l.wait();
  EXPECT_EQ(payload, 2);  // count_down happens-before the wait's return
  t.join();
}

TEST(latch, arrive_and_wait_releases_all_together) {
  constexpr int n = 6;
  rouse::latch l(n);
  std::atomic<int> arrived{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&] {
      arrived.fetch_add(1, std::memory_order_relaxed);
      l.arrive_and_wait();
      EXPECT_EQ(arrived.load(std::memory_order_relaxed), n);
    });
  for (auto& t : ts) t.join();
}

TEST(latch, many_waiters_one_count_down) {
  // All five made their wait calls before the count_down: one that wakes
  // fewer leaves some asleep (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::latch l(1);
  std::atomic<int> done{0};
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(5, [&] {
    l.wait();
    done.fetch_add(1);
  });
  rouse_test::until_wait_calls(base + 5);
  l.count_down();
  ts.join();
  EXPECT_EQ(done.load(), 5);
}

TEST(latch, count_down_with_nobody_asleep_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 100; ++i) {
    rouse::latch l(3);
    l.count_down();
    l.count_down(2);
    l.wait();
    rouse::latch m(1);
    m.arrive_and_wait();
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes, before.wakes);
  EXPECT_EQ(after.waits, before.waits);
}

TEST(latch, last_count_down_wakes_sleepers_with_one_call) {
  // All three went to sleep (their wait calls made) before the last
  // count_down: it wakes them all with one call. A wake per sleeper, or
  // none (then they hang), fails.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::latch l(1);
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(3, [&] { l.wait(); });
  rouse_test::until_wait_calls(base + 3);
  auto const before = rouse::platform::syscall_counters();
  l.count_down();
  auto const after = rouse::platform::syscall_counters();
  ts.join();
  EXPECT_EQ(after.wakes - before.wakes, 1u);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(latch_death, count_down_below_zero_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::latch l(1);
        l.count_down(2);
      },
      "rouse::latch: misuse: count_down\\(\\) below zero");
}
TEST(latch_death, negative_update_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::latch l(1);
        l.count_down(-1);
      },
      "rouse::latch: misuse: count_down\\(\\) with a negative update");
}
TEST(latch_death, negative_expected_is_diagnosed) {
  EXPECT_DEATH({ rouse::latch l(-1); }, "rouse::latch: misuse: expected count outside");
}
TEST(latch_death, destroying_with_a_sleeping_waiter_is_diagnosed) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  EXPECT_DEATH(
      {
        alignas(rouse::latch) unsigned char storage[sizeof(rouse::latch)];
        auto* l = new (storage) rouse::latch(1);
        auto const base = rouse_test::wait_calls();
        std::thread t([&] { l->wait(); });
        t.detach();
        rouse_test::until_wait_calls(base + 1);  // it marked the latch before sleeping
        l->~latch();
      },
      "rouse::latch: misuse: destroyed while a thread is waiting");
}
#endif

}  // namespace
}  // namespace latch_test
