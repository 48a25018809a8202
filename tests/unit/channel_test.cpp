// Unit tests of rouse::channel::bounded / unbounded / rendezvous channels,
// in crossbeam-channel's shape: smoke, capacity, size/empty/full, timeouts,
// close wakes the other side, drop counting, per-producer order, rendezvous
// hand-offs, and "nobody waiting costs no system call". A blocked side is
// known to sleep by its wait call (tests/support/eventually.hpp), never by a
// sleep.
#include "rouse/channel/channel.hpp"
#include "rouse/channel/select.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <memory>
#include <string>
#include <optional>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace channel_test {
namespace {

namespace ch = rouse::channel;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using rouse_test::counted;  // a move-only, non-default-constructible message that counts its lives

enum class kind { rendezvous, bounded1, bounded16, ticket1, ticket3, ticket16, unbounded };

template <class T>
std::pair<ch::sender<T>, ch::receiver<T>> make(kind k) {
  switch (k) {
    case kind::rendezvous:
      return ch::bounded<T>(0);
    case kind::bounded1:
      return ch::bounded<T>(1, ch::ring::compare_exchange);
    case kind::bounded16:
      return ch::bounded<T>(16, ch::ring::compare_exchange);
    case kind::ticket1:
      return ch::bounded<T>(1, ch::ring::ticket);
    case kind::ticket3:  // not a power of two: positions by division
      return ch::bounded<T>(3, ch::ring::ticket);
    case kind::ticket16:
      return ch::bounded<T>(16, ch::ring::ticket);
    default:
      return ch::unbounded<T>();
  }
}

std::string name_of(const testing::TestParamInfo<kind>& info) {
  switch (info.param) {
    case kind::rendezvous:
      return "rendezvous";
    case kind::bounded1:
      return "bounded1";
    case kind::bounded16:
      return "bounded16";
    case kind::ticket1:
      return "ticket1";
    case kind::ticket3:
      return "ticket3";
    case kind::ticket16:
      return "ticket16";
    default:
      return "unbounded";
  }
}

class every_flavour : public testing::TestWithParam<kind> {};
INSTANTIATE_TEST_SUITE_P(channel, every_flavour,
                         testing::Values(kind::rendezvous, kind::bounded1, kind::bounded16, kind::ticket1,
                                         kind::ticket3, kind::ticket16, kind::unbounded),
                         name_of);

// A capacity whose ring needs a power of two above it that does not fit in
// a size_t is refused at once, on either ring (it looped forever).
TEST(channel_capacity, above_the_maximum_throws_length_error) {
  for (ch::ring r : {ch::ring::compare_exchange, ch::ring::ticket}) {
    EXPECT_THROW((void)ch::bounded<int>(SIZE_MAX, r), std::length_error);
    EXPECT_THROW((void)ch::bounded<int>((std::size_t{1} << 63) + 1, r), std::length_error);
    EXPECT_THROW((void)ch::bounded<int>(ch::max_capacity + 1, r), std::length_error);
  }
}

TEST_P(every_flavour, smoke_send_then_recv_across_threads) {
  auto [tx, rx] = make<int>(GetParam());
  std::thread t([tx = tx]() mutable {
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tx.send(i));
  });
  for (int i = 0; i < 1000; ++i) {
    auto r = rx.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, i);
  }
  t.join();
}

TEST_P(every_flavour, try_recv_on_an_empty_open_channel_says_empty) {
  auto [tx, rx] = make<int>(GetParam());
  auto r = rx.try_recv();
  EXPECT_FALSE(r);
  EXPECT_EQ(r.status(), ch::status::empty);
}

TEST_P(every_flavour, recv_for_times_out_never_early) {
  auto [tx, rx] = make<int>(GetParam());
  auto const start = clock_type::now();
  auto r = rx.recv_for(20ms);
  EXPECT_GE(clock_type::now() - start, 20ms);
  EXPECT_EQ(r.status(), ch::status::timed_out);
}

TEST_P(every_flavour, recv_until_a_past_deadline_times_out) {
  auto [tx, rx] = make<int>(GetParam());
  EXPECT_EQ(rx.recv_until(clock_type::now() - 1s).status(), ch::status::timed_out);
  EXPECT_EQ(rx.recv_until(std::chrono::system_clock::now() + 5ms).status(), ch::status::timed_out);
}

TEST_P(every_flavour, send_after_close_hands_the_value_back) {
  auto [tx, rx] = make<std::unique_ptr<int>>(GetParam());
  EXPECT_TRUE(rx.close());
  EXPECT_FALSE(tx.close());
  EXPECT_TRUE(tx.is_closed());
  auto r = tx.send(std::make_unique<int>(7));
  EXPECT_EQ(r.status(), ch::status::closed);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r.value(), 7);
  auto t = tx.try_send(std::make_unique<int>(8));
  EXPECT_EQ(t.status(), ch::status::closed);
  EXPECT_EQ(*t.value(), 8);
  auto f = tx.send_for(std::make_unique<int>(9), 1ms);
  EXPECT_EQ(f.status(), ch::status::closed);
  EXPECT_EQ(*f.value(), 9);
  EXPECT_EQ(rx.recv().status(), ch::status::closed);
  EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
  EXPECT_EQ(rx.recv_for(1ms).status(), ch::status::closed);
}

// In the tests of a blocked side, the other side acts once the blocked one
// sleeps (its wait call made): a wake that misses it leaves it asleep (a
// hang, failed by CTest's timeout).
TEST_P(every_flavour, close_wakes_a_blocked_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = make<int>(GetParam());
  auto const base = rouse_test::wait_calls();
  std::thread t([rx = rx]() mutable { EXPECT_EQ(rx.recv().status(), ch::status::closed); });
  rouse_test::until_wait_calls(base + 1);
  tx.close();
  t.join();
}

TEST_P(every_flavour, dropping_the_last_sender_wakes_a_blocked_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = make<int>(GetParam());
  auto const base = rouse_test::wait_calls();
  std::thread t([rx = std::move(rx)]() mutable { EXPECT_EQ(rx.recv().status(), ch::status::closed); });
  rouse_test::until_wait_calls(base + 1);
  { auto gone = std::move(tx); }
  t.join();
}

TEST_P(every_flavour, dropping_the_last_receiver_closes_for_senders) {
  auto [tx, rx] = make<int>(GetParam());
  auto copy = rx;
  { auto gone = std::move(rx); }
  EXPECT_FALSE(tx.is_closed());  // a copy is still alive
  { auto gone = std::move(copy); }
  EXPECT_TRUE(tx.is_closed());
  auto r = tx.send(3);
  EXPECT_EQ(r.status(), ch::status::closed);
  EXPECT_EQ(r.value(), 3);
}

TEST_P(every_flavour, receivers_drain_before_closed) {
  if (GetParam() == kind::rendezvous) GTEST_SKIP() << "nothing is buffered";
  auto [tx, rx] = make<int>(GetParam());
  ASSERT_TRUE(tx.send(1));
  tx.close();
  EXPECT_EQ(*rx.recv(), 1);
  EXPECT_EQ(rx.recv().status(), ch::status::closed);
}

TEST_P(every_flavour, a_receiver_is_a_range_until_closed_and_drained) {
  auto [tx, rx] = make<int>(GetParam());
  std::thread t([tx = std::move(tx)]() mutable {
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(tx.send(i));
  });
  int expected = 0;
  for (int& v : rx) EXPECT_EQ(v, expected++);
  EXPECT_EQ(expected, 100);
  t.join();
}

TEST_P(every_flavour, move_only_messages_without_default_constructor) {
  rouse_test::counted_scope scope;
  {
    auto [tx, rx] = make<counted>(GetParam());
    std::thread t([tx = tx]() mutable {
      for (int i = 0; i < 200; ++i) ASSERT_TRUE(tx.send(counted(i)));
    });
    for (int i = 0; i < 200; ++i) EXPECT_EQ(rx.recv()->value, i);
    t.join();
    EXPECT_EQ(counted::live.load(), 0);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST_P(every_flavour, values_left_in_a_dropped_channel_are_destroyed_once) {
  if (GetParam() == kind::rendezvous) GTEST_SKIP() << "nothing is buffered";
  rouse_test::counted_scope scope;
  {
    auto [tx, rx] = make<counted>(GetParam());
    int sent = 0;
    while (sent < 10 && tx.try_send(counted(sent))) ++sent;
    EXPECT_GE(sent, 1);
    EXPECT_EQ(counted::live.load(), sent);
    if (sent > 1) {
      EXPECT_EQ(rx.recv()->value, 0);
    }
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST_P(every_flavour, handles_copy_and_compare) {
  auto [tx, rx] = make<int>(GetParam());
  auto tx2 = tx;
  auto rx2 = rx;
  EXPECT_TRUE(tx2 == tx);
  auto [other_tx, other_rx] = make<int>(GetParam());
  EXPECT_FALSE(other_tx == tx);
  ch::sender<int> empty;
  EXPECT_FALSE(static_cast<bool>(empty));
  empty = tx2;
  EXPECT_TRUE(static_cast<bool>(empty));
  tx.close();
  EXPECT_TRUE(rx2.is_closed());
}

TEST_P(every_flavour, one_producers_order_is_kept_across_many_consumers) {
  auto [tx, rx] = make<int>(GetParam());
  constexpr int n = 20000;
  std::vector<std::thread> consumers;
  std::atomic<int> out_of_order{0};
  std::atomic<long> total{0};
  for (int c = 0; c < 3; ++c)
    consumers.emplace_back([rx = rx, &out_of_order, &total]() mutable {
      int last = -1;
      for (int& v : rx) {
        if (v <= last) out_of_order.fetch_add(1);
        last = v;
        total.fetch_add(1);
      }
    });
  rx = {};
  for (int i = 0; i < n; ++i) ASSERT_TRUE(tx.send(i));
  tx.close();
  for (auto& t : consumers) t.join();
  EXPECT_EQ(out_of_order.load(), 0);
  EXPECT_EQ(total.load(), n);
}

// --- bounded -------------------------------------------------------------

TEST(channel_bounded, capacity_size_empty_full) {
  auto [tx, rx] = ch::bounded<int>(3);
  EXPECT_EQ(tx.capacity(), 3u);
  EXPECT_EQ(rx.capacity(), 3u);
  EXPECT_TRUE(rx.empty());
  EXPECT_FALSE(tx.full());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(tx.size(), static_cast<std::size_t>(i));
    ASSERT_TRUE(tx.try_send(i));
  }
  EXPECT_EQ(rx.size(), 3u);
  EXPECT_TRUE(tx.full());
  EXPECT_FALSE(rx.empty());
  auto r = tx.try_send(99);
  EXPECT_EQ(r.status(), ch::status::full);
  EXPECT_EQ(r.value(), 99);
  EXPECT_EQ(*rx.try_recv(), 0);
  EXPECT_EQ(rx.size(), 2u);
  // Around the ring several times.
  for (int i = 3; i < 50; ++i) {
    ASSERT_TRUE(tx.try_send(i));
    EXPECT_EQ(*rx.try_recv(), i - 2);
    EXPECT_EQ(rx.size(), 2u);
  }
}

TEST(channel_bounded, capacities_that_are_and_are_not_powers_of_two) {
  for (std::size_t cap : {1u, 2u, 3u, 7u, 8u, 1000u, 1024u}) {
    auto [tx, rx] = ch::bounded<std::size_t>(cap);
    for (int lap = 0; lap < 3; ++lap) {
      for (std::size_t i = 0; i < cap; ++i) ASSERT_TRUE(tx.try_send(i));
      EXPECT_EQ(tx.try_send(0).status(), ch::status::full);
      EXPECT_EQ(rx.size(), cap);
      for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(*rx.try_recv(), i);
      EXPECT_EQ(rx.try_recv().status(), ch::status::empty);
    }
  }
}

TEST(channel_bounded, send_for_on_a_full_channel_times_out_never_early_and_returns_the_value) {
  auto [tx, rx] = ch::bounded<std::unique_ptr<int>>(1);
  ASSERT_TRUE(tx.send(std::make_unique<int>(1)));
  auto const start = clock_type::now();
  auto r = tx.send_for(std::make_unique<int>(2), 20ms);
  EXPECT_GE(clock_type::now() - start, 20ms);
  EXPECT_EQ(r.status(), ch::status::timed_out);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r.value(), 2);
  EXPECT_EQ(**rx.recv(), 1);
}

TEST(channel_bounded, a_blocked_sender_proceeds_when_a_slot_frees) {
  // The sender sleeps on the full channel (its wait call made) and has not
  // sent; the receive frees the slot and must wake it (else a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (ch::ring const ring : {ch::ring::compare_exchange, ch::ring::ticket}) {
    auto [tx, rx] = ch::bounded<int>(1, ring);
    ASSERT_TRUE(tx.send(1));
    std::atomic<bool> sent{false};
    auto const base = rouse_test::wait_calls();
    std::thread t([tx = tx, &sent]() mutable {
      EXPECT_TRUE(tx.send(2));
      sent = true;
    });
    rouse_test::until_wait_calls(base + 1);
    EXPECT_FALSE(sent.load());
    EXPECT_EQ(*rx.recv(), 1);
    EXPECT_EQ(*rx.recv(), 2);
    t.join();
    EXPECT_TRUE(sent.load());
  }
}

// The ticket ring: three parked receives (selects) are woken by two sends
// while the send of the position at the head is still moving its value in
// (a move that waits until the test lets it go). Each woken receive finds
// that position under way, says empty and parks again, its wake spent.
// When the stalled send publishes, its one wake must go on down the line:
// all three receive (else a hang, failed by CTest's timeout).
namespace ticket_stall {
std::atomic<bool> entered{false};
std::atomic<bool> go{false};
thread_local bool stall = false;
struct slow_move {
  int v = 0;
  explicit slow_move(int x) noexcept : v(x) {}
  slow_move(slow_move&& o) noexcept : v(o.v) {
    if (stall) {
      stall = false;
      entered.store(true);
      while (!go.load()) std::this_thread::yield();
    }
  }
  slow_move& operator=(slow_move&&) = delete;
  ~slow_move() = default;
};
}  // namespace ticket_stall

TEST(channel_ticket, a_wake_spent_on_a_position_under_way_goes_on) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  using ticket_stall::slow_move;
  ticket_stall::entered.store(false);
  ticket_stall::go.store(false);
  auto [tx, rx] = ch::bounded<slow_move>(4, ch::ring::ticket);
  std::atomic<int> got{0};
  auto const base = rouse_test::wait_calls();
  std::vector<std::thread> receivers;
  for (int i = 0; i < 3; ++i)
    receivers.emplace_back([&got, rx = rx]() mutable {
      ch::recv_case c(rx);
      EXPECT_EQ(ch::select(c), 0u);
      if (c.result().has_value()) got.fetch_add(1);
    });
  rouse_test::until_wait_calls(base + 3);  // all three parked
  std::thread stalled([tx = tx]() mutable {
    ticket_stall::stall = true;
    EXPECT_TRUE(tx.send(slow_move(0)));  // position 0: waits in its move into the slot
  });
  rouse_test::eventually([] { return ticket_stall::entered.load(); });
  auto const before = rouse_test::wait_calls();
  EXPECT_TRUE(tx.send(slow_move(1)));        // positions 1 and 2: each wakes a receive,
  EXPECT_TRUE(tx.send(slow_move(2)));        // which finds position 0 under way
  rouse_test::until_wait_calls(before + 2);  // both parked again
  ticket_stall::go.store(true);
  stalled.join();
  for (auto& t : receivers) t.join();
  EXPECT_EQ(got.load(), 3);
}

// The mirror, for parked sends: a full ring of capacity 2, three parked
// sends (selects). A blocking receive takes position 0 and waits inside its
// move out of the slot; a second receive frees position 1 and wakes one
// send, which finds position 0 under way, says full and parks again. When
// the stalled receive frees its slot, the send it wakes takes position 2
// and must pass a wake on for position 3, which is free: two sends complete
// with no further receive (else a hang).
TEST(channel_ticket, a_wake_spent_on_a_slot_being_emptied_goes_on) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  using ticket_stall::slow_move;
  ticket_stall::entered.store(false);
  ticket_stall::go.store(false);
  auto [tx, rx] = ch::bounded<slow_move>(2, ch::ring::ticket);
  ASSERT_TRUE(tx.send(slow_move(10)));
  ASSERT_TRUE(tx.send(slow_move(11)));
  std::atomic<int> sent{0};
  auto const base = rouse_test::wait_calls();
  std::vector<std::thread> senders;
  for (int i = 0; i < 3; ++i)
    senders.emplace_back([&sent, tx = tx, i]() mutable {
      slow_move v(i);
      ch::send_case c(tx, v);
      EXPECT_EQ(ch::select(c), 0u);
      EXPECT_EQ(c.status(), ch::status::ok);
      sent.fetch_add(1);
    });
  rouse_test::until_wait_calls(base + 3);  // all three parked
  std::thread stalled([rx = rx]() mutable {
    ticket_stall::stall = true;
    auto r = rx.recv();  // position 0: waits in its move out of the slot
    EXPECT_TRUE(r.has_value() && r->v == 10);
  });
  rouse_test::eventually([] { return ticket_stall::entered.load(); });
  auto const before = rouse_test::wait_calls();
  auto r = rx.recv();  // position 1: wakes a send, which finds position 0 under way
  EXPECT_TRUE(r.has_value() && r->v == 11);
  rouse_test::until_wait_calls(before + 1);  // it parked again
  ticket_stall::go.store(true);
  stalled.join();
  rouse_test::eventually([&] { return sent.load() == 2; });  // positions 2 and 3, no receive between
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rx.recv().has_value());
  for (auto& t : senders) t.join();
  EXPECT_EQ(sent.load(), 3);
}

// The ticket ring: a send asleep on its full slot is held off the CPU (a
// signal whose handler waits) while a receive frees its slot and the
// channel closes; when it looks again it finds both. A blocked send woken
// after the close gives its value back (closed), as the other ring's does;
// it completed into the closed channel (ok), whose receivers may be gone.
#if !defined(ROUSE_SANITIZER_thread)
namespace held_off {
std::atomic<bool> in_handler{false};
std::atomic<bool> release{false};
void hold(int) {
  in_handler.store(true);
  while (!release.load()) ::sched_yield();
}
}  // namespace held_off
#endif

TEST(channel_ticket, a_blocked_send_that_wakes_after_the_close_gives_its_value_back) {
#if defined(ROUSE_SANITIZER_thread)
  GTEST_SKIP() << "ThreadSanitizer delivers the signal only at its own points";
#else
  held_off::in_handler.store(false);
  held_off::release.store(false);
  struct sigaction sa {};
  sa.sa_handler = held_off::hold;
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  auto [tx, rx] = ch::bounded<int>(1, ch::ring::ticket);
  ASSERT_TRUE(tx.send(1));
  std::atomic<int> got{-1};
  rouse_test::thread t([&got, tx = tx]() mutable {
    auto r = tx.send(2);  // position 1: its slot holds position 0's value
    got.store(static_cast<int>(r.status()));
    if (r.status() == ch::status::closed) {
      EXPECT_TRUE(r.has_value() && r.value() == 2);  // handed back
    }
  });
  rouse_test::until_asleep(t);
  ::pthread_kill(t.native_handle(), SIGUSR1);
  rouse_test::eventually([] { return held_off::in_handler.load(); });
  EXPECT_EQ(*rx.recv(), 1);  // frees the sender's slot
  EXPECT_TRUE(rx.close());
  held_off::release.store(true);
  t.join();
  EXPECT_EQ(got.load(), static_cast<int>(ch::status::closed));
  EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
  ::sigaction(SIGUSR1, &old, nullptr);
#endif
}

// A try_send claims its position while the channel is open and then moves
// its value into the slot. Held in that move while the channel closes and
// the receive of its position begins, it still completes: the receive waits
// for it (a receive never takes a position from its send), and the value
// arrives. (It came back `closed`, moved in and out again.) Until then the
// closed channel counts the value as still to be received.
TEST(channel_ticket, a_try_send_that_claimed_before_the_close_completes) {
  using ticket_stall::slow_move;
  ticket_stall::entered.store(false);
  ticket_stall::go.store(false);
  auto [tx, rx] = ch::bounded<slow_move>(1, ch::ring::ticket);
  std::thread sender([tx = tx]() mutable {
    ticket_stall::stall = true;
    auto r = tx.try_send(slow_move(7));  // position 0: waits in its move into the slot
    EXPECT_EQ(r.status(), ch::status::ok);
  });
  rouse_test::eventually([] { return ticket_stall::entered.load(); });
  EXPECT_TRUE(rx.close());
  EXPECT_EQ(rx.size(), 1u);  // still to be received: not empty
  EXPECT_FALSE(rx.empty());
  std::atomic<bool> done{false};
  std::atomic<int> got{-1};
  rouse_test::thread receiver([&, rx = rx]() mutable {
    auto r = rx.recv();  // position 0, below the close
    got.store(r.has_value() ? r->v : -static_cast<int>(r.status()) - 2);
    done.store(true);
  });
  // It waits for the send (asleep on the slot), or, as before, has given up.
  rouse_test::eventually([&] { return done.load() || receiver.asleep(); });
  ticket_stall::go.store(true);
  sender.join();
  receiver.join();
  EXPECT_EQ(got.load(), 7);
  EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
}

// The rendezvous flavour: a select whose first pass found nothing enrols its
// cases; if close() came in between, its node sits in a list of the closed
// channel until its re-check sees the close. An operation that begins after
// the close must say closed and leave that node alone (it paired with it: a
// value passed through a channel already closed). Driven on the flavour
// itself, the node enrolled as a select's case enrols it.
TEST(channel_rendezvous, an_operation_after_the_close_never_pairs_with_a_case_enrolled_after_it) {
  namespace cd = rouse::channel::detail;
  cd::zero_channel<int> chan;
  ASSERT_TRUE(chan.close());

  cd::waiter receiver;
  cd::recv_packet<int> room;
  cd::waiter_node receive_case(&receiver, &room);
  chan.register_receiver(receive_case);
  int v = 42;
  EXPECT_EQ(chan.try_send(v), ch::status::closed);
  EXPECT_EQ(chan.send(v, rouse::detail::no_deadline{}), ch::status::closed);
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(chan.recv_ready(&receiver));  // the case's re-check: closed
  chan.unregister_receiver(receive_case);

  int mine = 7;
  cd::waiter sender;
  cd::send_packet<int> source;
  source.source = &mine;
  cd::waiter_node send_case(&sender, &source);
  chan.register_sender(send_case);
  EXPECT_EQ(chan.try_recv().status(), ch::status::closed);
  EXPECT_EQ(chan.recv(rouse::detail::no_deadline{}).status(), ch::status::closed);
  EXPECT_EQ(mine, 7);
  EXPECT_TRUE(chan.send_ready(&sender));
  chan.unregister_sender(send_case);
}

// Each receive on a closed channel takes a ticket, so the head moves on
// past the close without bound, and 2^28 laps later a position's lap
// matches a slot's again. A try_recv (recv_for, try_select) there must say
// closed, not take the value that a receive below the close is still
// moving out of that slot (it did: the value went to both).
TEST(channel_ticket, a_receive_far_past_the_close_takes_nothing) {
  using ticket_stall::slow_move;
  for (std::uint64_t cap : {1, 3}) {
    ticket_stall::entered.store(false);
    ticket_stall::go.store(false);
    auto [tx, rx] = ch::bounded<slow_move>(cap, ch::ring::ticket);
    ASSERT_TRUE(tx.send(slow_move(42)));
    std::thread below([rx = rx]() mutable {
      ticket_stall::stall = true;
      auto r = rx.recv();  // position 0: waits in its move out of the slot
      EXPECT_TRUE(r.has_value() && r->v == 42);
    });
    rouse_test::eventually([] { return ticket_stall::entered.load(); });
    tx.close();
    // As the receives that would bring the head round to slot 0 in lap 0
    // (mod 2^28) again, each of which says closed.
    rx.skip_receives_for_testing((std::uint64_t{1} << 28) * cap - 1);
    EXPECT_EQ(rx.try_recv().status(), ch::status::closed) << "capacity " << cap;
    EXPECT_EQ(rx.recv_for(0ms).status(), ch::status::closed) << "capacity " << cap;
    ch::recv_case c(rx);
    EXPECT_EQ(ch::try_select(c), std::optional<std::size_t>(0));
    EXPECT_EQ(c.result().status(), ch::status::closed) << "capacity " << cap;
    ticket_stall::go.store(true);
    below.join();
    EXPECT_EQ(rx.recv().status(), ch::status::closed);
  }
}

// Once closed, try_recv says a value or closed, never `empty` (which means
// open), also while the receive of the previous lap is still moving its
// value out of the slot: it waits for that receive (already under way)
// and then resolves its own position. The send blocked on that position
// gives its value back at the close; the value is delivered once.
TEST(channel_ticket, try_recv_after_the_close_never_says_empty) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  using ticket_stall::slow_move;
  ticket_stall::entered.store(false);
  ticket_stall::go.store(false);
  auto [tx, rx] = ch::bounded<slow_move>(1, ch::ring::ticket);
  ASSERT_TRUE(tx.send(slow_move(1)));
  std::thread previous([rx = rx]() mutable {
    ticket_stall::stall = true;
    auto r = rx.recv();  // position 0: waits in its move out of the slot
    EXPECT_TRUE(r.has_value() && r->v == 1);
  });
  rouse_test::eventually([] { return ticket_stall::entered.load(); });
  auto const base = rouse_test::wait_calls();
  std::atomic<bool> given_back{false};
  std::thread sender([tx = tx, &given_back]() mutable {
    auto r = tx.send(slow_move(2));  // position 1: waits for its slot
    if (!r.ok()) {
      EXPECT_EQ(r.status(), ch::status::closed);
      EXPECT_TRUE(r.has_value() && r.value().v == 2);
      given_back.store(true);
    }
  });
  rouse_test::until_wait_calls(base + 1);  // asleep on its slot
  tx.close();
  // The stalled receive goes on once try_recv waits for it (a wait call:
  // the close woke the sender, which gave up, so the next one is ours), or
  // once try_recv has returned without waiting.
  auto const before_try = rouse_test::wait_calls();
  std::atomic<bool> returned{false};
  std::thread let_go([&returned, before_try] {
    while (!returned.load() && rouse_test::wait_calls() < before_try + 1) std::this_thread::yield();
    ticket_stall::go.store(true);
  });
  auto r = rx.try_recv();
  returned.store(true);
  EXPECT_NE(r.status(), ch::status::empty);
  let_go.join();
  previous.join();
  sender.join();
  if (r.has_value()) {
    EXPECT_EQ(r->v, 2);
  }
  EXPECT_NE(r.has_value(), given_back.load());  // the value went one way
  EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
}

TEST(channel_bounded, close_wakes_a_blocked_sender_with_its_value) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (ch::ring const ring : {ch::ring::compare_exchange, ch::ring::ticket}) {
    auto [tx, rx] = ch::bounded<int>(1, ring);
    ASSERT_TRUE(tx.send(1));
    auto const base = rouse_test::wait_calls();
    std::thread t([tx = tx]() mutable {
      auto r = tx.send(2);  // the ticket ring: holds position 1 and sleeps on its slot
      EXPECT_EQ(r.status(), ch::status::closed);
      EXPECT_EQ(r.value(), 2);
    });
    rouse_test::until_wait_calls(base + 1);
    rx.close();
    t.join();
    // The snapshots count values, not positions (position 1 holds none).
    EXPECT_EQ(rx.size(), 1u);
    EXPECT_TRUE(rx.full());
    EXPECT_EQ(*rx.recv(), 1);  // drained after close
    EXPECT_EQ(rx.size(), 0u);
    EXPECT_TRUE(rx.empty());
    EXPECT_FALSE(rx.full());
    EXPECT_EQ(rx.try_recv().status(), ch::status::closed);
    EXPECT_EQ(rx.recv().status(), ch::status::closed);
  }
}

TEST(channel_bounded, send_recv_with_nobody_blocked_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters are off";
  auto [tx, rx] = ch::bounded<int>(8);
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(tx.send(i));
    ASSERT_TRUE(tx.try_send(i));
    ASSERT_TRUE(rx.recv());
    ASSERT_TRUE(rx.try_recv());
    ASSERT_TRUE(tx.send_for(i, 1s));
    ASSERT_TRUE(rx.recv_for(1s));
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

// --- unbounded -----------------------------------------------------------

TEST(channel_unbounded, capacity_size_and_many_blocks) {
  auto [tx, rx] = ch::unbounded<int>();
  EXPECT_EQ(tx.capacity(), ch::unbounded_capacity);
  EXPECT_FALSE(tx.full());
  EXPECT_TRUE(rx.empty());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(tx.try_send(i));
    ASSERT_EQ(rx.size(), static_cast<std::size_t>(i + 1));
  }
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(*rx.try_recv(), i);
    ASSERT_EQ(rx.size(), static_cast<std::size_t>(999 - i));
  }
  EXPECT_TRUE(rx.empty());
}

TEST(channel_unbounded, send_recv_with_nobody_blocked_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters are off";
  auto [tx, rx] = ch::unbounded<int>();
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(tx.send(i));
    ASSERT_TRUE(tx.try_send(i));
    ASSERT_TRUE(rx.recv());
    ASSERT_TRUE(rx.try_recv());
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

// --- rendezvous ----------------------------------------------------------

TEST(channel_rendezvous, capacity_zero_and_try_send_needs_a_blocked_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::bounded<int>(0);
  EXPECT_EQ(tx.capacity(), 0u);
  EXPECT_EQ(tx.size(), 0u);
  auto r = tx.try_send(1);
  EXPECT_EQ(r.status(), ch::status::full);
  EXPECT_EQ(r.value(), 1);
  // Once the receiver sleeps (its wait call made: it waits on the channel),
  // try_send hands the value over to it.
  auto const base = rouse_test::wait_calls();
  std::thread t([rx = rx]() mutable { EXPECT_EQ(*rx.recv(), 5); });
  rouse_test::until_wait_calls(base + 1);
  auto s = tx.try_send(5);
  EXPECT_TRUE(s) << "a try_send found no blocked receiver";
  if (!s) {
    ASSERT_TRUE(tx.send(5));  // lets the receiver go on
  }
  t.join();
}

TEST(channel_rendezvous, send_returns_only_once_a_receiver_took_the_value) {
  // The sender sleeps (its wait call made) with no receiver: it has not
  // returned, and it returns only after the receive (else it sees taken 0).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::bounded<int>(0);
  std::atomic<int> taken{0};
  std::atomic<bool> returned{false};
  auto const base = rouse_test::wait_calls();
  std::thread t([tx = tx, &taken, &returned]() mutable {
    ASSERT_TRUE(tx.send(1));
    EXPECT_EQ(taken.load(), 1);  // set by the receiver before its recv()
    returned = true;
  });
  rouse_test::until_wait_calls(base + 1);
  EXPECT_FALSE(returned.load());
  taken = 1;
  EXPECT_EQ(*rx.recv(), 1);
  t.join();
  EXPECT_TRUE(returned.load());
}

TEST(channel_rendezvous, send_for_without_a_receiver_times_out_never_early) {
  auto [tx, rx] = ch::bounded<std::unique_ptr<int>>(0);
  auto const start = clock_type::now();
  auto r = tx.send_for(std::make_unique<int>(4), 20ms);
  EXPECT_GE(clock_type::now() - start, 20ms);
  EXPECT_EQ(r.status(), ch::status::timed_out);
  EXPECT_EQ(*r.value(), 4);
}

TEST(channel_rendezvous, close_wakes_a_blocked_sender_with_its_value) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto [tx, rx] = ch::bounded<int>(0);
  auto const base = rouse_test::wait_calls();
  std::thread t([tx = tx]() mutable {
    auto r = tx.send(2);
    EXPECT_EQ(r.status(), ch::status::closed);
    EXPECT_EQ(r.value(), 2);
  });
  rouse_test::until_wait_calls(base + 1);
  rx.close();
  t.join();
}

TEST(channel_rendezvous, hand_offs_between_many_senders_and_receivers) {
  auto [tx, rx] = ch::bounded<int>(0);
  constexpr int per = 500;
  std::vector<std::thread> threads;
  std::atomic<long> sum{0};
  for (int p = 0; p < 3; ++p)
    threads.emplace_back([tx = tx]() mutable {
      for (int i = 1; i <= per; ++i) ASSERT_TRUE(tx.send(i));
    });
  tx = {};
  for (int c = 0; c < 3; ++c)
    threads.emplace_back([rx = rx, &sum]() mutable {
      for (int& v : rx) sum.fetch_add(v);
    });
  rx = {};
  for (auto& t : threads) t.join();
  EXPECT_EQ(sum.load(), 3L * per * (per + 1) / 2);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(channel_death, operation_on_an_empty_handle_is_diagnosed) {
  EXPECT_DEATH(
      {
        ch::receiver<int> rx;
        (void)rx.try_recv();
      },
      "rouse::channel: misuse: operation on an empty");
}
#endif

}  // namespace
}  // namespace channel_test
