// Unit tests of rouse/eventcount.hpp.
#include "rouse/eventcount.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "rouse/platform/counters.hpp"

namespace {

using namespace std::chrono_literals;

TEST(eventcount, size_is_two_words) { EXPECT_EQ(sizeof(rouse::eventcount), 8u); }

TEST(eventcount, prepare_then_cancel_leaves_no_waiter) {
  rouse::eventcount ec;
  auto k = ec.prepare_wait();
  (void)k;
  ec.cancel_wait();
  SUCCEED();  // the destructor's check passes
}

TEST(eventcount, notify_after_prepare_makes_wait_return) {
  rouse::eventcount ec;
  auto k = ec.prepare_wait();
  ec.notify_one();
  ec.wait(k);  // the epoch changed: returns at once
  SUCCEED();
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
  rouse::eventcount ec;
  std::atomic<bool> flag{false};
  std::thread t([&] { ec.await([&] { return flag.load(std::memory_order_acquire); }); });
  std::this_thread::sleep_for(10ms);
  flag.store(true, std::memory_order_seq_cst);
  ec.notify_one();
  t.join();
  SUCCEED();
}

TEST(eventcount, notify_all_wakes_every_waiter) {
  rouse::eventcount ec;
  std::atomic<bool> flag{false};
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      ec.await([&] { return flag.load(std::memory_order_acquire); });
      done.fetch_add(1);
    });
  std::this_thread::sleep_for(10ms);
  flag.store(true, std::memory_order_seq_cst);
  ec.notify_all();
  for (auto& t : ts) t.join();
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
  rouse::eventcount ec;
  std::atomic<bool> flag{false};
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
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
