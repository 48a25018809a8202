// Unit tests of rouse/event.hpp. A waiter is known to sleep by its wait
// call or by the kernel's view of it (tests/support/eventually.hpp), never
// by a sleep.
#include "rouse/event.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace event_test {
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
  // All four made their wait calls before the set: one that wakes fewer
  // leaves some asleep (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  event e;
  std::atomic<int> done{0};
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(4, [&] {
    e.wait();
    done.fetch_add(1);
  });
  rouse_test::until_wait_calls(base + 4);
  e.set();
  ts.join();
  EXPECT_EQ(done.load(), 4);
}

TEST(event, auto_set_releases_one_sleeper_each) {
  // Three sleepers, asleep in the kernel. After each set, once one more has
  // returned, every other one is seen either returned or asleep again (a
  // woken one that found nothing to take sleeps again): then the count of
  // returns tells whether that set let more than one through. A set that
  // releases nobody leaves the count short (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  constexpr int n = 3;
  event e(event_mode::auto_reset);
  std::atomic<int> done{0};
  std::atomic<bool> returned[n] = {};
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(n, [&](int i) {
    e.wait();
    returned[i].store(true);
    done.fetch_add(1);
  });
  rouse_test::until_wait_calls(base + n);
  rouse_test::until_asleep(ts);
  for (int i = 1; i <= n; ++i) {
    e.set();
    rouse_test::eventually([&] { return done.load() >= i; });
    rouse_test::eventually([&] {
      for (int k = 0; k < n; ++k)
        if (!returned[k].load() && !ts[k].asleep()) return false;
      return true;
    });
    EXPECT_EQ(done.load(), i) << "a set released more than one waiter";
    EXPECT_FALSE(e.is_set());
  }
  ts.join();
}

TEST(event, set_happens_before_wait_returns) {
  // The setter comes once this thread sleeps (its wait call made).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  event e;
  int payload = 0;
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
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
  // The set comes while wait_for sleeps (its wait call made): one that
  // misses it sleeps for its hour (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  event e(event_mode::auto_reset);
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] { e.set(); });
  EXPECT_TRUE(e.wait_for(1h));
  t.join();
  EXPECT_FALSE(e.is_set());
}

TEST(event, auto_timed_out_waiter_does_not_strand_another_sleeper) {
  // The sleeper is asleep in the kernel before the timed waiter comes and
  // times out; a timed-out waiter that clears the "sleepers" mark leaves the
  // set waking nobody (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  event e(event_mode::auto_reset);
  std::atomic<bool> got{false};
  auto const base = rouse_test::wait_calls();
  rouse_test::thread sleeper([&] {
    e.wait();
    got = true;
  });
  rouse_test::until_wait_calls(base + 1);
  rouse_test::until_asleep(sleeper);
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
}  // namespace event_test
