// Unit tests of rouse/eventcount.hpp. A notifier knows that a waiter
// sleeps by its wait call (tests/support/eventually.hpp), never by a sleep.
#include "rouse/eventcount.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace eventcount_test {
namespace {

using namespace std::chrono_literals;

TEST(eventcount, size_is_two_words) { EXPECT_EQ(sizeof(rouse::eventcount), 8u); }

TEST(eventcount, prepare_then_cancel_leaves_no_waiter) {
  // A waiter left announced would make the notifies below wake calls (and
  // the destructor's debug check abort).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::eventcount ec;
  auto k = ec.prepare_wait();
  (void)k;
  ec.cancel_wait();
  auto const wakes = rouse_test::wake_calls();
  ec.notify_one();
  ec.notify_all();
  EXPECT_EQ(rouse_test::wake_calls(), wakes);
}

TEST(eventcount, notify_after_prepare_makes_wait_return) {
  // The notify finds the announced waiter (one wake call) and moves the
  // epoch, so wait() returns without sleeping (no wait call; one that slept
  // would never be woken: a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::eventcount ec;
  auto k = ec.prepare_wait();
  auto const before = rouse::platform::syscall_counters();
  ec.notify_one();
  ec.wait(k);
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes - before.wakes, 1u);
  EXPECT_EQ(after.waits, before.waits);
}

TEST(eventcount, notify_before_prepare_does_not_release_a_later_wait) {
  rouse::eventcount ec;
  ec.notify_all();
  auto k = ec.prepare_wait();
  EXPECT_FALSE(ec.wait_for(k, 20ms));
}

TEST(eventcount, wait_for_times_out_never_early) {
  rouse::eventcount ec;
  auto const start = std::chrono::steady_clock::now();
  auto k = ec.prepare_wait();
  EXPECT_FALSE(ec.wait_for(k, 20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

TEST(eventcount, wait_until_system_clock_never_early) {
  rouse::eventcount ec;
  auto const deadline = std::chrono::system_clock::now() + 20ms;
  auto k = ec.prepare_wait();
  EXPECT_FALSE(ec.wait_until(k, deadline));
  EXPECT_GE(std::chrono::system_clock::now(), deadline);
}

TEST(eventcount, notify_one_wakes_a_sleeping_waiter) {
  // The waiter is asleep in the kernel when notified: a notify that does not
  // wake it leaves it there (a hang, failed by CTest's timeout). It made one
  // wake call, and the waiter returned having seen the flag.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::eventcount ec;
  std::atomic<bool> flag{false};
  std::atomic<bool> saw_flag{false};
  auto const base = rouse_test::wait_calls();
  rouse_test::thread t([&] {
    ec.await([&] { return flag.load(std::memory_order_acquire); });
    saw_flag.store(flag.load(std::memory_order_acquire));
  });
  rouse_test::until_wait_calls(base + 1);
  rouse_test::until_asleep(t);
  flag.store(true, std::memory_order_seq_cst);
  auto const wakes = rouse_test::wake_calls();
  ec.notify_one();
  EXPECT_EQ(rouse_test::wake_calls() - wakes, 1u);
  t.join();
  EXPECT_TRUE(saw_flag.load());
}

TEST(eventcount, notify_all_wakes_every_waiter) {
  // All four sleep in the kernel when notified: a notify_all that wakes
  // fewer leaves some asleep (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::eventcount ec;
  std::atomic<bool> flag{false};
  std::atomic<int> done{0};
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(4, [&] {
    ec.await([&] { return flag.load(std::memory_order_acquire); });
    done.fetch_add(1);
  });
  rouse_test::until_wait_calls(base + 4);
  rouse_test::until_asleep(ts);
  flag.store(true, std::memory_order_seq_cst);
  ec.notify_all();
  ts.join();
  EXPECT_EQ(done.load(), 4);
}

TEST(eventcount, await_returns_at_once_when_true) {
  rouse::eventcount ec;
  int calls = 0;
  ec.await([&] { return ++calls > 0; });
  EXPECT_EQ(calls, 1);
}

TEST(eventcount, await_for_times_out_and_rechecks) {
  rouse::eventcount ec;
  int calls = 0;
  auto const start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ec.await_for([&] { return ++calls < 0; }, 20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_GE(calls, 3);  // before, after prepare, after the timeout
}

TEST(eventcount, await_for_true_when_notified) {
  // The notifier comes once the waiter made its wait call: one that misses
  // the notify sleeps for its hour (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::eventcount ec;
  std::atomic<bool> flag{false};
  auto const base = rouse_test::wait_calls();
  std::thread t([&] {
    rouse_test::until_wait_calls(base + 1);
    flag.store(true, std::memory_order_seq_cst);
    ec.notify_all();
  });
  EXPECT_TRUE(ec.await_for([&] { return flag.load(std::memory_order_acquire); }, 1h));
  t.join();
}

TEST(eventcount, notify_with_nobody_waiting_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  rouse::eventcount ec;
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    ec.notify_one();
    ec.notify_all();
    auto k = ec.prepare_wait();
    (void)k;
    ec.cancel_wait();
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes, before.wakes);
  EXPECT_EQ(after.waits, before.waits);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(eventcount_death, cancel_without_prepare_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::eventcount ec;
        ec.cancel_wait();
      },
      "rouse::eventcount: misuse: cancel_wait\\(\\) or wait\\(\\) without prepare_wait\\(\\)");
}

TEST(eventcount_death, destroying_with_a_prepared_waiter_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::eventcount ec;
        auto k = ec.prepare_wait();
        (void)k;
      },
      "rouse::eventcount: misuse: destroyed while a thread is waiting");
}
#endif

}  // namespace
}  // namespace eventcount_test
