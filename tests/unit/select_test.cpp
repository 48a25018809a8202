// Unit tests of rouse::channel::select: exactly one case completes, the
// default (try_select) and timeout forms, closed channels, rendezvous cases,
// and fair random choice among ready cases. A blocked select is known to
// sleep by its wait call (tests/support/eventually.hpp), never by a sleep.
#include "rouse/channel/select.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace select_test {
namespace {

namespace ch = rouse::channel;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST(select, picks_the_ready_receive) {
  auto [tx1, rx1] = ch::bounded<int>(4);
  auto [tx2, rx2] = ch::unbounded<int>();
  ASSERT_TRUE(tx2.send(7));
  ch::recv_case a(rx1);
  ch::recv_case b(rx2);
  EXPECT_EQ(ch::select(a, b), 1u);
  EXPECT_EQ(*b.result(), 7);
}

TEST(select, try_select_with_nothing_ready_returns_nullopt) {
  auto [tx1, rx1] = ch::bounded<int>(4);
  auto [tx2, rx2] = ch::bounded<int>(0);
  ch::recv_case a(rx1);
  ch::recv_case b(rx2);
  EXPECT_FALSE(ch::try_select(a, b).has_value());
}

TEST(select, select_for_times_out_never_early) {
  auto [tx1, rx1] = ch::bounded<int>(4);
  auto [tx2, rx2] = ch::bounded<int>(0);
  auto [tx3, rx3] = ch::unbounded<int>();
  ch::recv_case a(rx1);
  ch::recv_case b(rx2);
  ch::recv_case c(rx3);
  auto const start = clock_type::now();
  EXPECT_FALSE(ch::select_for(20ms, a, b, c).has_value());
  EXPECT_GE(clock_type::now() - start, 20ms);
  EXPECT_FALSE(ch::select_until(clock_type::now() - 1s, a, b, c).has_value());
}

TEST(select, exactly_one_of_two_ready_receives_completes) {
  for (int round = 0; round < 100; ++round) {
    auto [tx1, rx1] = ch::bounded<int>(4);
    auto [tx2, rx2] = ch::bounded<int>(4);
    ASSERT_TRUE(tx1.send(1));
    ASSERT_TRUE(tx2.send(2));
    ch::recv_case a(rx1);
    ch::recv_case b(rx2);
    std::size_t const i = ch::select(a, b);
    EXPECT_EQ(rx1.size() + rx2.size(), 1u);
    EXPECT_EQ(i == 0 ? *a.result() : *b.result(), i == 0 ? 1 : 2);
  }
}

TEST(select, send_case_sends_and_moves_only_when_sent) {
  auto [tx1, rx1] = ch::bounded<std::unique_ptr<int>>(1);
  auto [tx2, rx2] = ch::bounded<std::unique_ptr<int>>(1);
  ASSERT_TRUE(tx1.send(std::make_unique<int>(0)));  // tx1 full
  auto v1 = std::make_unique<int>(1);
  auto v2 = std::make_unique<int>(2);
  ch::send_case a(tx1, v1);
  ch::send_case b(tx2, v2);
  EXPECT_EQ(ch::select(a, b), 1u);
  EXPECT_EQ(b.status(), ch::status::ok);
  EXPECT_EQ(v2, nullptr);
  ASSERT_NE(v1, nullptr);  // untouched
  EXPECT_EQ(**rx2.recv(), 2);
}

TEST(select, a_closed_channel_completes_its_cases) {
  auto [tx1, rx1] = ch::bounded<int>(4);
  auto [tx2, rx2] = ch::bounded<int>(4);
  tx1.close();
  ch::recv_case a(rx1);
  EXPECT_EQ(ch::select(a), 0u);
  EXPECT_EQ(a.result().status(), ch::status::closed);
  int v = 3;
  ch::send_case s(tx1, v);
  EXPECT_EQ(ch::select(s), 0u);
  EXPECT_EQ(s.status(), ch::status::closed);
  EXPECT_EQ(v, 3);
}

// In these tests the other side acts once the select sleeps (its wait call
// made): a wake that misses it leaves it asleep (a hang, failed by CTest's
// timeout).
TEST(select, a_blocked_select_wakes_for_a_send_on_any_flavour) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (std::size_t which = 0; which < 4; ++which) {
    auto [tx1, rx1] = ch::bounded<int>(2, ch::ring::compare_exchange);
    auto [tx2, rx2] = ch::bounded<int>(0);
    auto [tx3, rx3] = ch::unbounded<int>();
    auto [tx4, rx4] = ch::bounded<int>(2, ch::ring::ticket);
    auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1,
                                          [&tx1 = tx1, &tx2 = tx2, &tx3 = tx3, &tx4 = tx4, which] {
                                            bool ok = false;
                                            if (which == 0) ok = static_cast<bool>(tx1.send(10));
                                            if (which == 1) ok = static_cast<bool>(tx2.send(20));
                                            if (which == 2) ok = static_cast<bool>(tx3.send(30));
                                            if (which == 3) ok = static_cast<bool>(tx4.send(40));
                                            EXPECT_TRUE(ok);
                                          });
    ch::recv_case a(rx1);
    ch::recv_case b(rx2);
    ch::recv_case c(rx3);
    ch::recv_case e(rx4);
    std::size_t const i = ch::select(a, b, c, e);
    EXPECT_EQ(i, which);
    int const got = i == 0 ? *a.result() : i == 1 ? *b.result() : i == 2 ? *c.result() : *e.result();
    EXPECT_EQ(got, static_cast<int>(10 * (which + 1)));
    t.join();
  }
}

TEST(select, a_blocked_send_case_on_a_rendezvous_hands_off_to_a_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::bounded<int>(0);
  auto [tx2, rx2] = ch::bounded<int>(1);
  ASSERT_TRUE(tx2.send(0));  // full: never ready
  auto t =
      rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [rx = rx]() mutable { EXPECT_EQ(*rx.recv(), 5); });
  int v = 5, w = 6;
  ch::send_case a(tx, v);
  ch::send_case b(tx2, w);
  EXPECT_EQ(ch::select(a, b), 0u);
  EXPECT_EQ(a.status(), ch::status::ok);
  t.join();
}

// A send case refers to its value: it carries no room for a T of its own
// (a 1 MiB element made a send case 1 MiB), so a large element costs a
// sending thread's stack nothing beyond the value itself.
TEST(select, a_send_case_of_a_large_element_holds_no_copy_of_it) {
  using big = std::array<char, 1 << 16>;
  static_assert(sizeof(ch::send_case<big>) < sizeof(big));
  auto [tx, rx] = ch::bounded<big>(0);
  std::thread t([rx = rx]() mutable {
    auto r = rx.recv();
    EXPECT_TRUE(r);
    EXPECT_EQ((*r)[12345], 'x');
  });
  auto v = std::make_unique<big>();
  (*v)[12345] = 'x';
  ch::send_case a(tx, *v);
  EXPECT_EQ(ch::select(a), 0u);
  EXPECT_EQ(a.status(), ch::status::ok);
  t.join();
}

TEST(select, close_wakes_a_blocked_select) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx1, rx1] = ch::bounded<int>(2);
  auto [tx2, rx2] = ch::bounded<int>(0);
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&tx2 = tx2] { tx2.close(); });
  ch::recv_case a(rx1);
  ch::recv_case b(rx2);
  EXPECT_EQ(ch::select(a, b), 1u);
  EXPECT_EQ(b.result().status(), ch::status::closed);
  t.join();
}

TEST(select, send_and_receive_on_one_rendezvous_never_pair_with_each_other) {
  auto [tx, rx] = ch::bounded<int>(0);
  int v = 1;
  ch::send_case a(tx, v);
  ch::recv_case b(rx);
  EXPECT_FALSE(ch::select_for(20ms, a, b).has_value());
  EXPECT_EQ(v, 1);
}

TEST(select, two_selects_on_one_rendezvous_pair_up) {
  auto [tx, rx] = ch::bounded<int>(0);
  auto [unused_tx, unused_rx] = ch::bounded<int>(0);
  std::thread t([&tx = tx, &unused_rx = unused_rx] {
    int v = 9;
    ch::send_case a(tx, v);
    ch::recv_case b(unused_rx);
    EXPECT_EQ(ch::select(a, b), 0u);
  });
  ch::recv_case c(rx);
  ch::recv_case d(unused_rx);
  EXPECT_EQ(ch::select(c, d), 0u);
  EXPECT_EQ(*c.result(), 9);
  t.join();
}

TEST(select, choice_among_ready_cases_is_fair) {
  auto [tx1, rx1] = ch::unbounded<int>();
  auto [tx2, rx2] = ch::unbounded<int>();
  auto [tx3, rx3] = ch::unbounded<int>();
  constexpr int rounds = 6000;
  for (int i = 0; i < rounds; ++i) {
    ASSERT_TRUE(tx1.send(i));
    ASSERT_TRUE(tx2.send(i));
    ASSERT_TRUE(tx3.send(i));
  }
  int hits[3] = {0, 0, 0};
  ch::recv_case a(rx1);
  ch::recv_case b(rx2);
  ch::recv_case c(rx3);
  for (int i = 0; i < rounds; ++i) ++hits[ch::select(a, b, c)];
  for (int h : hits) {
    EXPECT_GT(h, rounds / 3 - rounds / 10);  // 1/3 each, with a wide margin
    EXPECT_LT(h, rounds / 3 + rounds / 10);
  }
}

// With a case that is not ready among them, the ready ones are still
// chosen alike: a scan from a random start would give the case after the
// empty one two thirds of the wins.
TEST(select, choice_among_ready_cases_is_fair_beside_one_not_ready) {
  auto [tx0, rx0] = ch::unbounded<int>();
  auto [tx1, rx1] = ch::unbounded<int>();
  auto [tx2, rx2] = ch::unbounded<int>();
  constexpr int rounds = 6000;
  for (int i = 0; i < rounds; ++i) {
    ASSERT_TRUE(tx1.send(i));
    ASSERT_TRUE(tx2.send(i));
  }
  int hits[3] = {0, 0, 0};
  ch::recv_case a(rx0);  // never ready
  ch::recv_case b(rx1);
  ch::recv_case c(rx2);
  for (int i = 0; i < rounds; ++i) ++hits[ch::select(a, b, c)];
  EXPECT_EQ(hits[0], 0);
  EXPECT_GT(hits[1], rounds * 2 / 5);  // 1/2 each; the old scan gave 1/3 and 2/3
  EXPECT_GT(hits[2], rounds * 2 / 5);
}

TEST(select, each_message_is_taken_by_exactly_one_of_many_selecting_receivers) {
  auto [tx1, rx1] = ch::bounded<int>(8);
  auto [tx2, rx2] = ch::bounded<int>(0);
  constexpr int per = 2000;
  std::atomic<long> sum{0}, count{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 3; ++c)
    threads.emplace_back([&, rx1 = rx1, rx2 = rx2]() mutable {
      ch::recv_case a(rx1);
      ch::recv_case b(rx2);
      bool open[2] = {true, true};
      while (open[0] || open[1]) {
        std::size_t i;
        if (open[0] && open[1])
          i = ch::select(a, b);
        else if (open[0])
          i = ch::select(a);
        else
          i = ch::select(b) + 1;
        auto& r = i == 0 ? a.result() : b.result();
        if (!r) {  // closed and drained
          open[i] = false;
          continue;
        }
        sum.fetch_add(*r);
        count.fetch_add(1);
      }
    });
  std::thread p1([tx = std::move(tx1)]() mutable {
    for (int i = 1; i <= per; ++i) ASSERT_TRUE(tx.send(i));
  });
  std::thread p2([tx = std::move(tx2)]() mutable {
    for (int i = 1; i <= per; ++i) ASSERT_TRUE(tx.send(i));
  });
  p1.join();
  p2.join();
  for (auto& t : threads) t.join();
  EXPECT_EQ(count.load(), 2 * per);
  EXPECT_EQ(sum.load(), 2L * per * (per + 1) / 2);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
// One case object listed twice linked its node twice into the channel's
// list (a self-loop left behind on the select's stack: a later send crashed).
void select_one_case_twice() {
  auto [tx, rx] = ch::bounded<int>(4);
  ch::recv_case c(rx);
  (void)ch::select_for(1ms, c, c);
}
TEST(select_death, the_same_case_object_listed_twice_is_diagnosed) {
  EXPECT_DEATH(select_one_case_twice(), "rouse::channel::select: misuse: the same case object listed twice");
}
#endif

}  // namespace
}  // namespace select_test
