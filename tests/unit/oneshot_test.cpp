// Unit tests of rouse/channel/oneshot.hpp. A blocked receiver is known to
// sleep by its wait call (tests/support/eventually.hpp), never by a sleep.
#include "rouse/channel/oneshot.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

#include "counted.hpp"
#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace oneshot_test {
namespace {

using namespace std::chrono_literals;
namespace ch = rouse::channel;
using rouse_test::counted;

// The handles: one pointer each, move-only; send() consumes the sender.
static_assert(sizeof(ch::oneshot_sender<std::string>) == sizeof(void*));
static_assert(sizeof(ch::oneshot_receiver<std::string>) == sizeof(void*));
static_assert(!std::is_copy_constructible_v<ch::oneshot_sender<int>>);
static_assert(!std::is_copy_constructible_v<ch::oneshot_receiver<int>>);
static_assert(std::is_nothrow_move_constructible_v<ch::oneshot_sender<int>>);
static_assert(std::is_nothrow_move_constructible_v<ch::oneshot_receiver<int>>);
static_assert(std::is_invocable_v<decltype(&ch::oneshot_sender<int>::send), ch::oneshot_sender<int>&&, int>);
static_assert(!std::is_invocable_v<decltype(&ch::oneshot_sender<int>::send), ch::oneshot_sender<int>&, int>);

TEST(oneshot, smoke_send_then_recv) {
  auto [tx, rx] = ch::oneshot<int>();
  auto s = std::move(tx).send(42);
  EXPECT_TRUE(s);
  EXPECT_EQ(s.status(), ch::status::ok);
  auto r = rx.recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 42);
}

TEST(oneshot, try_recv_is_empty_before_send_and_ok_after) {
  auto [tx, rx] = ch::oneshot<int>();
  EXPECT_FALSE(rx.is_ready());
  EXPECT_EQ(rx.try_recv().status(), ch::status::empty);
  EXPECT_TRUE(std::move(tx).send(7));
  EXPECT_TRUE(rx.is_ready());
  auto r = rx.try_recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 7);
}

TEST(oneshot, second_receive_reports_closed) {
  auto [tx, rx] = ch::oneshot<int>();
  EXPECT_TRUE(std::move(tx).send(1));
  EXPECT_TRUE(rx.recv());
  EXPECT_EQ(rx.recv().status(), ch::status::closed);
  EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
  EXPECT_EQ(rx.recv_for(1ms).status(), ch::status::closed);
}

TEST(oneshot, dropped_sender_closes) {
  auto [tx, rx] = ch::oneshot<int>();
  { auto gone = std::move(tx); }
  EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
}

// In the tests of a blocked receiver, the other side acts once the
// receiver sleeps (its wait call made): a wake that misses it leaves it
// asleep (a hang, failed by CTest's timeout).
TEST(oneshot, dropped_sender_wakes_a_blocked_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::oneshot<int>();
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1,
                                        [s = std::move(tx)]() mutable { auto gone = std::move(s); });
  auto r = rx.recv();
  EXPECT_EQ(r.status(), ch::status::closed);
  t.join();
}

TEST(oneshot, send_wakes_a_blocked_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::oneshot<std::string>();
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [s = std::move(tx)]() mutable {
    EXPECT_TRUE(std::move(s).send(std::string(100, 'x')));
  });
  auto r = rx.recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 100u);
  t.join();
}

TEST(oneshot, dropped_receiver_hands_the_value_back) {
  auto [tx, rx] = ch::oneshot<std::unique_ptr<int>>();
  EXPECT_FALSE(tx.is_closed());
  { auto gone = std::move(rx); }
  EXPECT_TRUE(tx.is_closed());
  auto s = std::move(tx).send(std::make_unique<int>(5));
  EXPECT_FALSE(s);
  EXPECT_EQ(s.status(), ch::status::closed);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s.value(), 5);
}

TEST(oneshot, recv_for_times_out_never_early) {
  auto [tx, rx] = ch::oneshot<int>();
  auto const start = std::chrono::steady_clock::now();
  auto r = rx.recv_for(30ms);
  EXPECT_EQ(r.status(), ch::status::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  // The channel still works after a timeout.
  EXPECT_TRUE(std::move(tx).send(3));
  auto r2 = rx.recv();
  ASSERT_TRUE(r2);
  EXPECT_EQ(*r2, 3);
}

TEST(oneshot, recv_until_times_out_never_early_on_steady_and_system_clocks) {
  {
    auto [tx, rx] = ch::oneshot<int>();
    auto const deadline = std::chrono::steady_clock::now() + 20ms;
    EXPECT_EQ(rx.recv_until(deadline).status(), ch::status::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now(), deadline);
  }
  {
    auto [tx, rx] = ch::oneshot<int>();
    auto const deadline = std::chrono::system_clock::now() + 20ms;
    EXPECT_EQ(rx.recv_until(deadline).status(), ch::status::timed_out);
    EXPECT_GE(std::chrono::system_clock::now(), deadline);
  }
}

TEST(oneshot, recv_for_zero_or_negative_does_not_block) {
  auto [tx, rx] = ch::oneshot<int>();
  EXPECT_EQ(rx.recv_for(0ms).status(), ch::status::timed_out);
  EXPECT_EQ(rx.recv_for(-5ms).status(), ch::status::timed_out);
  EXPECT_TRUE(std::move(tx).send(1));
  EXPECT_TRUE(rx.recv_for(0ms));
}

TEST(oneshot, recv_for_gets_a_value_sent_before_the_deadline) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::oneshot<int>();
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1,
                                        [s = std::move(tx)]() mutable { EXPECT_TRUE(std::move(s).send(9)); });
  auto r = rx.recv_for(100s);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 9);
  t.join();
}

TEST(oneshot, recv_for_huge_timeout_does_not_overflow) {
  auto [tx, rx] = ch::oneshot<int>();
  EXPECT_TRUE(std::move(tx).send(1));
  EXPECT_TRUE(rx.recv_for(std::chrono::nanoseconds::max()));
}

TEST(oneshot, value_never_received_is_destroyed_exactly_once) {
  rouse_test::counted_scope scope;
  {
    auto [tx, rx] = ch::oneshot<counted>();
    EXPECT_TRUE(std::move(tx).send(counted(1)));
    EXPECT_EQ(counted::live.load(), 1);
  }  // receiver drops the unread value
  EXPECT_EQ(counted::live.load(), 0);
  {
    auto [tx, rx] = ch::oneshot<counted>();
    { auto gone = std::move(rx); }
    auto s = std::move(tx).send(counted(2));
    EXPECT_FALSE(s);
    EXPECT_EQ(counted::live.load(), 1);  // only the handed-back value
  }
  {
    auto [tx, rx] = ch::oneshot<counted>();
    EXPECT_TRUE(std::move(tx).send(counted(3)));
    auto r = rx.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value, 3);
    EXPECT_EQ(counted::live.load(), 1);  // only the received value
  }
  {
    auto [tx, rx] = ch::oneshot<counted>();  // nothing sent, both dropped
  }
}

struct no_default_move_only {
  explicit no_default_move_only(int v) : p(std::make_unique<int>(v)) {}
  std::unique_ptr<int> p;
};

TEST(oneshot, move_only_non_default_constructible_values) {
  auto [tx, rx] = ch::oneshot<no_default_move_only>();
  EXPECT_TRUE(std::move(tx).send(no_default_move_only(8)));
  auto r = rx.recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->p, 8);
}

struct alignas(64) over_aligned {
  int v;
};

TEST(oneshot, over_aligned_values) {
  auto [tx, rx] = ch::oneshot<over_aligned>();
  EXPECT_TRUE(std::move(tx).send(over_aligned{4}));
  auto r = rx.recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->v, 4);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&*r) % 64, 0u);
}

TEST(oneshot, move_assignment_closes_the_old_channel) {
  auto [tx1, rx1] = ch::oneshot<int>();
  auto [tx2, rx2] = ch::oneshot<int>();
  tx1 = std::move(tx2);  // tx1's old channel closes
  EXPECT_EQ(rx1.try_recv().status(), ch::status::closed);
  EXPECT_TRUE(std::move(tx1).send(5));
  EXPECT_EQ(*rx2.recv(), 5);
  rx1 = std::move(rx2);  // rx2's state was already released by the receive
  EXPECT_EQ(rx1.try_recv().status(), ch::status::closed);
}

TEST(oneshot, no_system_call_when_nobody_blocks) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    auto [tx, rx] = ch::oneshot<int>();
    EXPECT_TRUE(std::move(tx).send(i));
    EXPECT_EQ(*rx.recv(), i);
    auto [tx2, rx2] = ch::oneshot<int>();
    { auto gone = std::move(tx2); }
    EXPECT_TRUE(rx2.recv().is_closed());
    auto [tx3, rx3] = ch::oneshot<int>();
    { auto gone = std::move(rx3); }
    EXPECT_FALSE(std::move(tx3).send(i));
    auto [tx4, rx4] = ch::oneshot<int>();
    EXPECT_EQ(rx4.try_recv().status(), ch::status::empty);
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

TEST(oneshot, a_blocked_receiver_costs_the_sender_one_wake) {
  // The receiver sleeps (its wait call made, its waiting published) before
  // the send: the send wakes it with exactly one call.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::oneshot<int>();
  auto const base = rouse_test::wait_calls();
  std::thread t([r = std::move(rx)]() mutable { EXPECT_EQ(*r.recv(), 6); });
  rouse_test::until_wait_calls(base + 1);
  auto const before = rouse::platform::syscall_counters();
  EXPECT_TRUE(std::move(tx).send(6));
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes - before.wakes, 1u);
  t.join();
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(oneshot_death, send_on_a_used_sender_is_diagnosed) {
  auto [tx, rx] = ch::oneshot<int>();
  auto other = std::move(tx);
  EXPECT_DEATH((void)std::move(tx).send(1), "oneshot_sender: misuse");  // NOLINT(bugprone-use-after-move)
}
#endif

}  // namespace
}  // namespace oneshot_test
