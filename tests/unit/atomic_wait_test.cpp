// Unit tests of rouse/atomic_wait.hpp, for 1-, 2-, 4- and 8-byte atomics.
//
// Timing rule: timeouts are checked as "never early" and "does not hang";
// nothing asserts that a call was fast. A notifier knows that a waiter
// waits by evidence (its wait call counted, or the kernel's view of the
// thread: tests/support/eventually.hpp), never by a sleep.
#include "rouse/atomic_wait.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "../../src/platform/parking_table.hpp"
#include "clocks.hpp"
#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace atomic_wait_test {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;
namespace p = rouse::platform;

template <class T>
class atomic_wait_sized : public ::testing::Test {};
using sizes = ::testing::Types<std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(atomic_wait_sized, sizes);

using rouse_test::half_speed_clock;

TYPED_TEST(atomic_wait_sized, returns_at_once_when_the_value_already_differs) {
  std::atomic<TypeParam> a{1};
  rouse::atomic_wait(a, TypeParam{0});
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, 1h));
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, steady_clock::now() + 1h));
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, steady_clock::now() - 1h));
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, system_clock::now() + 1h));
}

TYPED_TEST(atomic_wait_sized, notify_one_after_store_releases_a_sleeping_waiter) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::atomic<TypeParam> a{0};
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  rouse::atomic_wait(a, TypeParam{0});
  EXPECT_EQ(a.load(), TypeParam{1});
  t.join();
}

TYPED_TEST(atomic_wait_sized, store_and_notify_before_the_wait_is_not_lost) {
  std::atomic<TypeParam> a{0};
  std::thread t([&] {
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_all(a);
  });
  t.join();
  rouse::atomic_wait(a, TypeParam{0});
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, 10s));
}

TYPED_TEST(atomic_wait_sized, notify_all_releases_every_waiter) {
  // All four made their wait call before the change: a notify_all that
  // wakes fewer leaves some asleep (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::atomic<TypeParam> a{0};
  std::atomic<int> done{0};
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(4, [&] {
    rouse::atomic_wait(a, TypeParam{0});
    done.fetch_add(1);
  });
  rouse_test::until_wait_calls(base + 4);
  a.store(2, std::memory_order_release);
  rouse::atomic_notify_all(a);
  ts.join();
  EXPECT_EQ(done.load(), 4);
}

TYPED_TEST(atomic_wait_sized, notify_one_releases_every_waiter_one_by_one) {
  // Each notify_one after a change must wake at least one waiter; after n
  // notifies all n have returned. The waiters made their wait calls first:
  // a notify_one that wakes nobody leaves one asleep (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::atomic<TypeParam> a{0};
  std::atomic<int> done{0};
  constexpr int n = 3;
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(n, [&] {
    rouse::atomic_wait(a, TypeParam{0});
    done.fetch_add(1);
  });
  rouse_test::until_wait_calls(base + n);
  a.store(1, std::memory_order_release);
  for (int i = 0; i < n; ++i) rouse::atomic_notify_one(a);
  // A waiter not yet asleep at a notify sees the new value on its own.
  ts.join();
  EXPECT_EQ(done.load(), n);
}

// A notify without a change does not make atomic_wait return (it loops, as
// std::atomic::wait does), timed or not. Each notify is repeated until the
// waiter has slept again (one more wait call: it was woken, re-checked and
// went back to sleep); a wait that returned on it sets `returned` instead.
// Then a change releases it, and it must report the change.
template <class T, class Wait>
void wait_returns_only_after_a_change(Wait wait) {
  std::atomic<T> a{0};
  std::atomic<bool> returned{false};
  bool changed = false;
  T seen{};
  auto const base = rouse_test::wait_calls();
  std::thread waiter([&] {
    changed = wait(a);
    seen = a.load();
    returned.store(true);
  });
  rouse_test::until_wait_calls(base + 1);
  for (int notify = 0; notify < 3 && !returned.load(); ++notify) {
    auto const slept = rouse_test::wait_calls();
    rouse_test::eventually([&] {
      if (notify % 2 == 0)
        rouse::atomic_notify_all(a);
      else
        rouse::atomic_notify_one(a);
      return rouse_test::wait_calls() > slept || returned.load();
    });
  }
  EXPECT_FALSE(returned.load()) << "returned on a notify without a change";
  a.store(1, std::memory_order_release);
  rouse::atomic_notify_all(a);
  waiter.join();
  EXPECT_TRUE(changed);
  EXPECT_EQ(seen, T{1});
}

TYPED_TEST(atomic_wait_sized, wait_returns_only_when_the_value_changed) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  wait_returns_only_after_a_change<TypeParam>([](std::atomic<TypeParam>& a) {
    rouse::atomic_wait(a, TypeParam{0});
    return true;
  });
  wait_returns_only_after_a_change<TypeParam>(
      [](std::atomic<TypeParam>& a) { return rouse::atomic_wait_for(a, TypeParam{0}, 1h); });
  wait_returns_only_after_a_change<TypeParam>(
      [](std::atomic<TypeParam>& a) { return rouse::atomic_wait_until(a, TypeParam{0}, system_clock::now() + 1h); });
}

TYPED_TEST(atomic_wait_sized, timeouts_are_never_early_on_every_clock) {
  std::atomic<TypeParam> a{0};
  auto const s = steady_clock::now() + 20ms;
  EXPECT_FALSE(rouse::atomic_wait_until(a, TypeParam{0}, s));
  EXPECT_GE(steady_clock::now(), s);

  auto const y = system_clock::now() + 20ms;
  EXPECT_FALSE(rouse::atomic_wait_until(a, TypeParam{0}, y));
  EXPECT_GE(system_clock::now(), y);

  auto const c = half_speed_clock::now() + 10ms;
  EXPECT_FALSE(rouse::atomic_wait_until(a, TypeParam{0}, c));
  EXPECT_GE(half_speed_clock::now(), c);

  auto const start = steady_clock::now();
  EXPECT_FALSE(rouse::atomic_wait_for(a, TypeParam{0}, 20ms));
  EXPECT_GE(steady_clock::now() - start, 20ms);
}

TYPED_TEST(atomic_wait_sized, past_deadlines_time_out_without_sleeping) {
  std::atomic<TypeParam> a{0};
  EXPECT_FALSE(rouse::atomic_wait_until(a, TypeParam{0}, steady_clock::now() - 1s));
  EXPECT_FALSE(rouse::atomic_wait_until(a, TypeParam{0}, system_clock::now() - 1s));
  EXPECT_FALSE(rouse::atomic_wait_until(a, TypeParam{0}, half_speed_clock::now() - 1s));
  EXPECT_FALSE(rouse::atomic_wait_for(a, TypeParam{0}, 0s));
  EXPECT_FALSE(rouse::atomic_wait_for(a, TypeParam{0}, -1s));
}

// The timed waits sleep before the change (their wait call made): one that
// misses the notify sleeps for its hour, or wraps its huge timeout into a
// past deadline and returns false at once.
TYPED_TEST(atomic_wait_sized, timed_waits_return_true_when_the_value_changes) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::atomic<TypeParam> a{0};
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, 1h));
  t.join();
  a.store(0);
  auto t2 = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_all(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, system_clock::now() + 1h));
  t2.join();
}

TYPED_TEST(atomic_wait_sized, wait_for_huge_durations_does_not_overflow) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::atomic<TypeParam> a{0};
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, std::chrono::hours::max()));
  t.join();
  a.store(0);
  auto t2 = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, std::chrono::nanoseconds::max()));
  t2.join();
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, steady_clock::time_point::max()));
}

TYPED_TEST(atomic_wait_sized, compares_bitwise_and_works_for_non_integer_types) {
  // Each waiter sleeps (its wait call made) before the change that releases it.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  if constexpr (sizeof(TypeParam) == 4) {
    std::atomic<float> f{1.5f};
    auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
      f.store(2.5f);
      rouse::atomic_notify_one(f);
    });
    rouse::atomic_wait(f, 1.5f);
    EXPECT_EQ(f.load(), 2.5f);
    t.join();
  } else if constexpr (sizeof(TypeParam) == 8) {
    struct alignas(8) pair32 {
      std::uint32_t a, b;
    };
    std::atomic<pair32> v{pair32{1, 2}};
    auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
      v.store(pair32{1, 3});
      rouse::atomic_notify_all(v);
    });
    rouse::atomic_wait(v, pair32{1, 2});
    EXPECT_EQ(v.load().b, 3u);
    t.join();
  } else {
    std::atomic<bool> b{false};
    auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
      b.store(true);
      rouse::atomic_notify_one(b);
    });
    rouse::atomic_wait(b, false);
    EXPECT_TRUE(b.load());
    t.join();
  }
}

TYPED_TEST(atomic_wait_sized, a_notify_wakes_exactly_its_address_not_a_neighbour_in_its_bucket) {
  // Find two atomics whose addresses share a parking bucket, hence also a
  // waiter-count slot (same hash, fewer bits).
  auto cells = std::make_unique<std::atomic<TypeParam>[]>(4096);
  std::atomic<TypeParam>* a = &cells[0];
  std::atomic<TypeParam>* b = nullptr;
  for (int i = 1; i < 4096 && !b; ++i)
    if (p::detail::parking_bucket_index(&cells[i]) == p::detail::parking_bucket_index(a)) b = &cells[i];
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(rouse::detail::atomic_wait_slot_index(a), rouse::detail::atomic_wait_slot_index(b));
  if (!p::syscall_counters_enabled()) GTEST_SKIP() << "needs the syscall counters to see re-parks";

  std::atomic<bool> a_returned{false};
  std::atomic<bool> b_returned{false};
  auto const base = rouse_test::wait_calls();
  rouse_test::thread ta([&] {
    rouse::atomic_wait(*a, TypeParam{0});
    a_returned.store(true);
  });
  rouse_test::thread tb([&] {
    rouse::atomic_wait(*b, TypeParam{0});
    b_returned.store(true);
  });
  rouse_test::until_wait_calls(base + 2);
  rouse_test::until_asleep(ta);
  rouse_test::until_asleep(tb);
  auto const parked = rouse_test::wait_calls();
  b->store(1, std::memory_order_release);
  rouse::atomic_notify_all(*b);
  tb.join();
  // Had a's waiter been woken by that notify, it would be running now, or
  // would have re-checked, found 0 and slept again: one more wait call.
  // Once it is seen asleep, the count tells which. Exact wakes leave it alone.
  rouse_test::until_asleep(ta);
  EXPECT_EQ(rouse_test::wait_calls(), parked);
  EXPECT_FALSE(a_returned.load());
  a->store(1, std::memory_order_release);
  rouse::atomic_notify_one(*a);
  ta.join();
  EXPECT_TRUE(a_returned.load());
  EXPECT_TRUE(b_returned.load());
}

TYPED_TEST(atomic_wait_sized, notify_with_nobody_waiting_makes_no_system_call) {
  if (!p::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  std::atomic<TypeParam> a{0};
  auto const before = p::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    a.store(static_cast<TypeParam>(i & 1), std::memory_order_release);
    rouse::atomic_notify_one(a);
    rouse::atomic_notify_all(a);
  }
  rouse::atomic_wait(a, TypeParam{7});  // the value differs: no sleep either
  auto const after = p::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

// As std's free functions: the old value is not deduced, so a literal of
// another type converts (atomic_wait(a, 0) on a std::atomic<std::uint64_t>
// did not compile).
TEST(atomic_wait, the_old_value_converts_to_the_atomics_type) {
  std::atomic<std::uint64_t> a{1};
  rouse::atomic_wait(a, 0);  // differs: returns at once
  EXPECT_TRUE(rouse::atomic_wait_for(a, 0, std::chrono::milliseconds(1)));
  EXPECT_TRUE(rouse::atomic_wait_until(a, 0, std::chrono::steady_clock::now()));
  std::atomic<std::uint8_t> b{2};
  rouse::atomic_wait(b, 1);
}

}  // namespace
}  // namespace atomic_wait_test
