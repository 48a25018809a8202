// Unit tests of rouse/event.hpp.
#include "rouse/event.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "rouse/platform/counters.hpp"

namespace {

using namespace std::chrono_literals;
using rouse::event;
using rouse::event_mode;

TEST(event, size_is_one_word) { EXPECT_EQ(sizeof(event), 4u); }

TEST(event, starts_as_asked) {
  event a;
  EXPECT_FALSE(a.is_set());
  EXPECT_EQ(a.mode(), event_mode::manual_reset);
  event b(event_mode::auto_reset, true);
  EXPECT_TRUE(b.is_set());
  EXPECT_EQ(b.mode(), event_mode::auto_reset);
}

TEST(event, manual_set_stays_set_until_reset) {
  event e;
  e.set();
  EXPECT_TRUE(e.is_set());
  e.wait();
  e.wait();
  EXPECT_TRUE(e.try_wait());
  e.reset();
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.try_wait());
}

TEST(event, auto_wait_consumes_the_set) {
  event e(event_mode::auto_reset);
  e.set();
  e.set();  // does not accumulate
  e.wait();
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.try_wait());
  EXPECT_FALSE(e.wait_for(10ms));
}

TEST(event, manual_set_releases_every_sleeper) {
  event e;
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      e.wait();
      done.fetch_add(1);
    });
  std::this_thread::sleep_for(20ms);
  e.set();
  for (auto& t : ts) t.join();
  EXPECT_EQ(done.load(), 4);
}

TEST(event, auto_set_releases_one_sleeper_each) {
  event e(event_mode::auto_reset);
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&] {
      e.wait();
      done.fetch_add(1);
    });
  std::this_thread::sleep_for(20ms);
  for (int i = 1; i <= 3; ++i) {
    e.set();
    while (done.load() < i) std::this_thread::yield();
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(done.load(), i);  // exactly one per set (never more)
  }
  for (auto& t : ts) t.join();
}

TEST(event, set_happens_before_wait_returns) {
  event e;
  int payload = 0;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    payload = 3;
    e.set();
  });
  e.wait();
  EXPECT_EQ(payload, 3);
  t.join();
}

TEST(event, wait_for_times_out_never_early) {
  for (auto mode : {event_mode::manual_reset, event_mode::auto_reset}) {
    event e(mode);
    auto const start = std::chrono::steady_clock::now();
    EXPECT_FALSE(e.wait_for(20ms));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  }
}

TEST(event, wait_until_system_clock_never_early) {
  event e;
  auto const deadline = std::chrono::system_clock::now() + 20ms;
  EXPECT_FALSE(e.wait_until(deadline));
  EXPECT_GE(std::chrono::system_clock::now(), deadline);
}

TEST(event, wait_for_true_when_set) {
  event e(event_mode::auto_reset);
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    e.set();
  });
  EXPECT_TRUE(e.wait_for(1h));
  t.join();
  EXPECT_FALSE(e.is_set());
}

TEST(event, auto_timed_out_waiter_does_not_strand_another_sleeper) {
  event e(event_mode::auto_reset);
  std::atomic<bool> got{false};
  std::thread sleeper([&] {
    e.wait();
    got = true;
  });
  EXPECT_FALSE(e.wait_for(30ms));
  e.set();
  sleeper.join();
  EXPECT_TRUE(got.load());
}

TEST(event, set_with_nobody_asleep_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  event m;
  event a(event_mode::auto_reset);
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    m.set();
    m.wait();
    m.reset();
    a.set();
    a.wait();
    a.set();
    EXPECT_TRUE(a.wait_for(1ms));
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes, before.wakes);
  EXPECT_EQ(after.waits, before.waits);
}

}  // namespace
