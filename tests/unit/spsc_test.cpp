// Unit tests of rouse/channel/spsc.hpp, in the shape of crossbeam-channel's
// per-flavour tests: smoke, capacity, len/empty/full, timeouts, close wakes
// the other side, drop counting, order, move-only values, no system calls.
// A blocked side is known to sleep by its wait call
// (tests/support/eventually.hpp), never by a sleep.
#include "rouse/channel/spsc.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <ranges>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "counted.hpp"
#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace spsc_test {
namespace {

using namespace std::chrono_literals;
namespace ch = rouse::channel;
using rouse_test::counted;

// The handles: one pointer each, move-only; the receiver is an input range.
static_assert(sizeof(ch::spsc_sender<int>) == sizeof(void*));
static_assert(sizeof(ch::spsc_receiver<int>) == sizeof(void*));
static_assert(!std::is_copy_constructible_v<ch::spsc_sender<int>>);
static_assert(!std::is_copy_constructible_v<ch::spsc_receiver<int>>);
static_assert(std::is_nothrow_move_constructible_v<ch::spsc_sender<int>>);
static_assert(std::is_nothrow_move_constructible_v<ch::spsc_receiver<int>>);
static_assert(std::ranges::input_range<ch::spsc_receiver<int>>);

TEST(spsc, smoke) {
  auto [tx, rx] = ch::spsc<int>(4);
  EXPECT_TRUE(tx.send(1));
  EXPECT_TRUE(tx.try_send(2));
  auto a = rx.recv();
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 1);
  auto b = rx.try_recv();
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, 2);
  EXPECT_EQ(rx.try_recv().status(), ch::status::empty);
}

TEST(spsc, capacity_is_exact_even_when_not_a_power_of_two) {
  for (std::size_t cap : {1u, 2u, 3u, 5u, 7u, 1000u}) {
    auto [tx, rx] = ch::spsc<int>(cap);
    EXPECT_EQ(tx.capacity(), cap);
    EXPECT_EQ(rx.capacity(), cap);
    // Several laps: each slot's "full" and "empty for the next lap" must
    // stay distinct (with capacity 1 the next position uses the same slot).
    for (int lap = 0; lap < 3; ++lap) {
      for (std::size_t i = 0; i < cap; ++i) EXPECT_TRUE(tx.try_send(static_cast<int>(i))) << cap;
      auto full = tx.try_send(-1);
      EXPECT_EQ(full.status(), ch::status::full) << cap << " lap " << lap;
      EXPECT_EQ(full.value(), -1);
      EXPECT_EQ(tx.size(), cap);
      EXPECT_EQ(rx.size(), cap);
      for (std::size_t i = 0; i < cap; ++i) EXPECT_EQ(*rx.try_recv(), static_cast<int>(i));
      EXPECT_EQ(rx.try_recv().status(), ch::status::empty);
    }
  }
}

TEST(spsc, len_empty_full_across_wraparound) {
  auto [tx, rx] = ch::spsc<int>(3);
  for (int round = 0; round < 10; ++round) {
    EXPECT_EQ(rx.size(), 0u);
    EXPECT_TRUE(tx.try_send(round));
    EXPECT_EQ(rx.size(), 1u);
    EXPECT_TRUE(tx.try_send(round + 100));
    EXPECT_EQ(tx.size(), 2u);
    EXPECT_EQ(*rx.try_recv(), round);
    EXPECT_EQ(rx.size(), 1u);
    EXPECT_EQ(*rx.try_recv(), round + 100);
  }
}

TEST(spsc, fifo_order_is_kept_across_threads) {
  auto [tx, rx] = ch::spsc<long>(7);
  constexpr long n = 100000;
  std::thread producer([t = std::move(tx)]() mutable {
    for (long i = 0; i < n; ++i) ASSERT_TRUE(t.send(i));
  });
  for (long i = 0; i < n; ++i) {
    auto r = rx.recv();
    ASSERT_TRUE(r);
    ASSERT_EQ(*r, i);
  }
  EXPECT_EQ(rx.recv().status(), ch::status::closed);  // the sender went away
  producer.join();
}

TEST(spsc, receiver_is_a_range_until_closed_and_drained) {
  auto [tx, rx] = ch::spsc<std::string>(2);
  std::thread producer([t = std::move(tx)]() mutable {
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(t.send(std::to_string(i)));
    t.close();
  });
  int expected = 0;
  for (auto& v : rx) EXPECT_EQ(v, std::to_string(expected++));
  EXPECT_EQ(expected, 50);
  producer.join();
}

TEST(spsc, close_by_sender_drains_then_reports_closed) {
  auto [tx, rx] = ch::spsc<int>(4);
  EXPECT_TRUE(tx.send(1));
  EXPECT_TRUE(tx.send(2));
  tx.close();
  EXPECT_TRUE(tx.is_closed());
  EXPECT_TRUE(rx.is_closed());
  auto late = tx.send(3);
  EXPECT_EQ(late.status(), ch::status::closed);
  EXPECT_EQ(late.value(), 3);
  EXPECT_EQ(tx.try_send(4).status(), ch::status::closed);
  EXPECT_EQ(tx.send_for(5, 1ms).status(), ch::status::closed);
  EXPECT_EQ(*rx.recv(), 1);
  EXPECT_EQ(*rx.try_recv(), 2);
  EXPECT_EQ(rx.recv().status(), ch::status::closed);
  EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
  EXPECT_EQ(rx.recv_for(1ms).status(), ch::status::closed);
}

TEST(spsc, close_by_receiver_fails_later_sends) {
  auto [tx, rx] = ch::spsc<int>(4);
  EXPECT_TRUE(tx.send(1));
  rx.close();
  EXPECT_EQ(tx.send(2).status(), ch::status::closed);
  EXPECT_EQ(*rx.recv(), 1);  // already sent: still receivable
  EXPECT_TRUE(rx.recv().is_closed());
}

// In the tests of a blocked side, the other side acts once the blocked one
// sleeps (its wait call made): a wake that misses it leaves it asleep (a
// hang, failed by CTest's timeout).
TEST(spsc, dropped_sender_wakes_a_blocked_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::spsc<int>(4);
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1,
                                        [s = std::move(tx)]() mutable { auto gone = std::move(s); });
  EXPECT_EQ(rx.recv().status(), ch::status::closed);
  t.join();
}

TEST(spsc, close_wakes_a_blocked_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::spsc<int>(4);
  auto const base = rouse_test::wait_calls();
  std::thread t([&rx = rx] { EXPECT_EQ(rx.recv().status(), ch::status::closed); });
  rouse_test::until_wait_calls(base + 1);
  tx.close();
  t.join();
}

TEST(spsc, dropped_receiver_wakes_a_blocked_sender_and_hands_the_value_back) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::spsc<std::unique_ptr<int>>(1);
  EXPECT_TRUE(tx.send(std::make_unique<int>(1)));
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1,
                                        [r = std::move(rx)]() mutable { auto gone = std::move(r); });
  auto s = tx.send(std::make_unique<int>(2));  // full: blocks until the receiver goes
  EXPECT_EQ(s.status(), ch::status::closed);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s.value(), 2);
  t.join();
}

TEST(spsc, close_wakes_a_blocked_sender) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::spsc<int>(1);
  EXPECT_TRUE(tx.send(0));
  auto const base = rouse_test::wait_calls();
  std::thread t([&tx = tx] { EXPECT_EQ(tx.send(1).status(), ch::status::closed); });
  rouse_test::until_wait_calls(base + 1);
  rx.close();
  t.join();
}

TEST(spsc, recv_timeouts_are_never_early) {
  auto [tx, rx] = ch::spsc<int>(2);
  auto const start = std::chrono::steady_clock::now();
  EXPECT_EQ(rx.recv_for(30ms).status(), ch::status::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  auto const deadline = std::chrono::steady_clock::now() + 20ms;
  EXPECT_EQ(rx.recv_until(deadline).status(), ch::status::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
  auto const sys_deadline = std::chrono::system_clock::now() + 20ms;
  EXPECT_EQ(rx.recv_until(sys_deadline).status(), ch::status::timed_out);
  EXPECT_GE(std::chrono::system_clock::now(), sys_deadline);
  EXPECT_EQ(rx.recv_for(0ms).status(), ch::status::timed_out);
  // Still usable afterwards.
  EXPECT_TRUE(tx.send(1));
  EXPECT_EQ(*rx.recv_for(1s), 1);
}

TEST(spsc, send_timeouts_are_never_early_and_hand_the_value_back) {
  auto [tx, rx] = ch::spsc<std::unique_ptr<int>>(1);
  EXPECT_TRUE(tx.send(std::make_unique<int>(0)));
  auto const start = std::chrono::steady_clock::now();
  auto r = tx.send_for(std::make_unique<int>(1), 30ms);
  EXPECT_EQ(r.status(), ch::status::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r.value(), 1);
  auto const deadline = std::chrono::steady_clock::now() + 20ms;
  EXPECT_EQ(tx.send_until(std::make_unique<int>(2), deadline).status(), ch::status::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
  EXPECT_EQ(tx.send_for(std::make_unique<int>(3), 0ms).status(), ch::status::timed_out);
  EXPECT_EQ(*rx.recv().value(), 0);
  EXPECT_TRUE(tx.send_for(std::make_unique<int>(4), 1s));
}

TEST(spsc, timed_operations_succeed_when_the_other_side_comes_in_time) {
  // A timed receive sleeps (its wait call made) before the send; then a
  // timed send with the largest timeout sleeps on the full ring (its wait
  // call made after `full` was published) before the receive. One that
  // misses its wake sleeps for its timeout (a hang), or one whose timeout
  // wrapped reports timed_out.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::spsc<int>(1);
  std::atomic<bool> got_first{false};
  std::atomic<std::uint64_t> full{0};  // the wait calls made when the ring was full
  auto const base = rouse_test::wait_calls();
  std::thread t([&rx = rx, &got_first, &full] {
    EXPECT_EQ(*rx.recv_for(100s), 1);
    got_first.store(true);
    rouse_test::eventually([&] { return full.load() != 0; });
    rouse_test::until_wait_calls(full.load() + 1);
    EXPECT_EQ(*rx.recv(), 2);
    EXPECT_EQ(*rx.recv(), 3);
  });
  rouse_test::until_wait_calls(base + 1);
  EXPECT_TRUE(tx.send_for(1, 100s));
  rouse_test::eventually([&] { return got_first.load(); });
  EXPECT_TRUE(tx.send_for(2, 100s));  // the ring had room
  full.store(rouse_test::wait_calls());
  EXPECT_TRUE(tx.send_for(3, std::chrono::nanoseconds::max()));
  t.join();
}

TEST(spsc, elements_are_constructed_and_destroyed_exactly_as_sent_and_received) {
  rouse_test::counted_scope scope;
  {
    auto [tx, rx] = ch::spsc<counted>(8);
    for (long i = 0; i < 6; ++i) EXPECT_TRUE(tx.send(counted(i)));
    EXPECT_EQ(counted::live.load(), 6);
    for (long i = 0; i < 2; ++i) EXPECT_EQ(rx.recv()->value, i);
    EXPECT_EQ(counted::live.load(), 4);
    auto back = tx.try_send(counted(99));  // fits: 5 in the ring
    EXPECT_TRUE(back);
    EXPECT_EQ(counted::live.load(), 5);
  }  // both handles gone: the 5 undelivered elements are destroyed once
  EXPECT_EQ(counted::live.load(), 0);
  {
    auto [tx, rx] = ch::spsc<counted>(1);
    EXPECT_TRUE(tx.send(counted(1)));
    auto full = tx.try_send(counted(2));
    EXPECT_FALSE(full);
    EXPECT_EQ(counted::live.load(), 2);  // one in the ring, one handed back
  }
  EXPECT_EQ(counted::live.load(), 0);
}

struct no_default_move_only {
  explicit no_default_move_only(int v) : p(std::make_unique<int>(v)) {}
  std::unique_ptr<int> p;
};

TEST(spsc, move_only_non_default_constructible_values) {
  auto [tx, rx] = ch::spsc<no_default_move_only>(2);
  EXPECT_TRUE(tx.send(no_default_move_only(1)));
  EXPECT_TRUE(tx.send(no_default_move_only(2)));
  EXPECT_EQ(*rx.recv()->p, 1);
  EXPECT_EQ(*rx.recv()->p, 2);
}

TEST(spsc, handles_can_move_between_threads) {
  auto [tx, rx] = ch::spsc<int>(4);
  EXPECT_TRUE(tx.send(1));
  std::thread t([s = std::move(tx)]() mutable { EXPECT_TRUE(s.send(2)); });
  t.join();
  auto moved = std::move(rx);
  EXPECT_EQ(*moved.recv(), 1);
  EXPECT_EQ(*moved.recv(), 2);
  EXPECT_TRUE(moved.recv().is_closed());
}

TEST(spsc, no_system_call_when_nobody_blocks) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  auto [tx, rx] = ch::spsc<int>(16);
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 10000; ++i) {
    EXPECT_TRUE(tx.send(i));
    EXPECT_TRUE(tx.try_send(i));
    EXPECT_EQ(*rx.recv(), i);
    EXPECT_EQ(*rx.try_recv(), i);
    EXPECT_EQ(rx.try_recv().status(), ch::status::empty);
  }
  tx.close();
  EXPECT_TRUE(rx.recv().is_closed());
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

// size() is a snapshot, but never outside [0, capacity], on either side,
// while the other side is running: each side stores its position before the
// stamp that lets the other side go on.
TEST(spsc, size_stays_within_capacity_while_both_sides_run) {
  constexpr std::size_t cap = 3;  // a short ring: the sides overtake each other's slots often
  auto [tx, rx] = ch::spsc<int>(cap);
  constexpr int messages = 200000;
  std::atomic<std::size_t> worst_tx{0};
  std::thread sender([&tx = tx, &worst_tx] {
    std::size_t worst = 0;
    for (int i = 0; i < messages; ++i) {
      ASSERT_TRUE(tx.send(i));
      worst = std::max(worst, tx.size());
    }
    worst_tx.store(worst);
  });
  std::size_t worst_rx = 0;
  for (int i = 0; i < messages; ++i) {
    ASSERT_EQ(*rx.recv(), i);
    worst_rx = std::max(worst_rx, rx.size());
  }
  sender.join();
  EXPECT_LE(worst_tx.load(), cap);
  EXPECT_LE(worst_rx, cap);  // a negative difference would show as a huge size_t
}

TEST(spsc, busy_sides_make_almost_no_system_calls) {
  // Both sides run flat out on a large ring: sleeping is only for when a side
  // is starved for longer than its spin, which a busy pair rarely is. Counted,
  // not timed: the bound is loose (one in a hundred messages) because these
  // machines preempt threads at random.
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  auto [tx, rx] = ch::spsc<long>(1024);
  constexpr long n = 200000;
  auto const before = rouse::platform::syscall_counters();
  std::thread producer([t = std::move(tx)]() mutable {
    for (long i = 0; i < n; ++i) ASSERT_TRUE(t.send(i));
  });
  long sum = 0;
  for (auto& v : rx) sum += v;
  producer.join();
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(sum, n * (n - 1) / 2);
  EXPECT_LE((after.waits - before.waits) + (after.wakes - before.wakes), static_cast<std::uint64_t>(n / 100));
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(spsc_death, zero_capacity_is_diagnosed) { EXPECT_DEATH((void)ch::spsc<int>(0), "spsc: misuse"); }
TEST(spsc_death, moved_from_handles_are_diagnosed) {
  auto [tx, rx] = ch::spsc<int>(1);
  auto t2 = std::move(tx);
  auto r2 = std::move(rx);
  EXPECT_DEATH((void)tx.send(1), "spsc_sender: misuse");   // NOLINT(bugprone-use-after-move)
  EXPECT_DEATH((void)rx.recv(), "spsc_receiver: misuse");  // NOLINT(bugprone-use-after-move)
}
#endif

}  // namespace
}  // namespace spsc_test
