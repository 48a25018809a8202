// Unit tests of rouse/atomic_wait.hpp, for 1-, 2-, 4- and 8-byte atomics.
//
// Timing rule: timeouts are checked as "never early" and "does not hang";
// nothing asserts that a call was fast.
#include "rouse/atomic_wait.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "../../src/platform/parking_table.hpp"
#include "rouse/platform/counters.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;
namespace p = rouse::platform;

template <class T>
class atomic_wait_sized : public ::testing::Test {};
using sizes = ::testing::Types<std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(atomic_wait_sized, sizes);

// A clock of its own, at half the speed of steady_clock.
struct half_speed_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<half_speed_clock>;
  [[maybe_unused]] static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(steady_clock::now().time_since_epoch() / 2); }
};

// Waits until the wait counter has grown by `n` since `base`: the waiters
// have reached their sleep (the count is taken just before it).
void await_parked(std::uint64_t base, std::uint64_t n) {
  while (p::syscall_counters().waits < base + n) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(5ms);  // from "about to sleep" to asleep
}

TYPED_TEST(atomic_wait_sized, returns_at_once_when_the_value_already_differs) {
  std::atomic<TypeParam> a{1};
  rouse::atomic_wait(a, TypeParam{0});
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, 1h));
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, steady_clock::now() + 1h));
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, steady_clock::now() - 1h));
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, system_clock::now() + 1h));
}

TYPED_TEST(atomic_wait_sized, notify_one_after_store_releases_a_sleeping_waiter) {
  std::atomic<TypeParam> a{0};
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
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
  std::atomic<TypeParam> a{0};
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      rouse::atomic_wait(a, TypeParam{0});
      done.fetch_add(1);
    });
  std::this_thread::sleep_for(10ms);
  a.store(2, std::memory_order_release);
  rouse::atomic_notify_all(a);
  for (auto& t : ts) t.join();
  EXPECT_EQ(done.load(), 4);
}

TYPED_TEST(atomic_wait_sized, notify_one_releases_every_waiter_one_by_one) {
  // Each notify_one after a change must wake at least one waiter; after n
  // notifies all n have returned.
  std::atomic<TypeParam> a{0};
  std::atomic<int> done{0};
  constexpr int n = 3;
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&] {
      rouse::atomic_wait(a, TypeParam{0});
      done.fetch_add(1);
    });
  std::this_thread::sleep_for(10ms);
  a.store(1, std::memory_order_release);
  for (int i = 0; i < n; ++i) rouse::atomic_notify_one(a);
  // A waiter not yet asleep at a notify sees the new value on its own.
  for (auto& t : ts) t.join();
  EXPECT_EQ(done.load(), n);
}

TYPED_TEST(atomic_wait_sized, wait_returns_only_when_the_value_changed) {
  // A notify without a change does not make atomic_wait return (it loops,
  // as std::atomic::wait does); a timed wait then times out.
  std::atomic<TypeParam> a{0};
  std::atomic<bool> stop{false};
  std::thread noisy([&] {
    while (!stop.load()) {
      rouse::atomic_notify_all(a);
      std::this_thread::sleep_for(1ms);
    }
  });
  EXPECT_FALSE(rouse::atomic_wait_for(a, TypeParam{0}, 20ms));
  stop.store(true);
  noisy.join();
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

TYPED_TEST(atomic_wait_sized, timed_waits_return_true_when_the_value_changes) {
  std::atomic<TypeParam> a{0};
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, 1h));
  t.join();
  a.store(0);
  std::thread t2([&] {
    std::this_thread::sleep_for(10ms);
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_all(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, system_clock::now() + 1h));
  t2.join();
}

TYPED_TEST(atomic_wait_sized, wait_for_huge_durations_does_not_overflow) {
  std::atomic<TypeParam> a{0};
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, std::chrono::hours::max()));
  t.join();
  a.store(0);
  std::thread t2([&] {
    std::this_thread::sleep_for(10ms);
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  EXPECT_TRUE(rouse::atomic_wait_for(a, TypeParam{0}, std::chrono::nanoseconds::max()));
  t2.join();
  EXPECT_TRUE(rouse::atomic_wait_until(a, TypeParam{0}, steady_clock::time_point::max()));
}

TYPED_TEST(atomic_wait_sized, compares_bitwise_and_works_for_non_integer_types) {
  if constexpr (sizeof(TypeParam) == 4) {
    std::atomic<float> f{1.5f};
    std::thread t([&] {
      std::this_thread::sleep_for(10ms);
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
    std::thread t([&] {
      std::this_thread::sleep_for(10ms);
      v.store(pair32{1, 3});
      rouse::atomic_notify_all(v);
    });
    rouse::atomic_wait(v, pair32{1, 2});
    EXPECT_EQ(v.load().b, 3u);
    t.join();
  } else {
    std::atomic<bool> b{false};
    std::thread t([&] {
      std::this_thread::sleep_for(10ms);
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
  auto const base = p::syscall_counters().waits;
  std::thread ta([&] {
    rouse::atomic_wait(*a, TypeParam{0});
    a_returned.store(true);
  });
  std::thread tb([&] {
    rouse::atomic_wait(*b, TypeParam{0});
    b_returned.store(true);
  });
  await_parked(base, 2);
  auto const parked = p::syscall_counters().waits;
  b->store(1, std::memory_order_release);
  rouse::atomic_notify_all(*b);
  tb.join();
  std::this_thread::sleep_for(10ms);
  // Had a's waiter been woken, it would have re-checked, found 0 and slept
  // again: one more wait call. Exact wakes leave the count alone.
  EXPECT_EQ(p::syscall_counters().waits, parked);
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

}  // namespace
