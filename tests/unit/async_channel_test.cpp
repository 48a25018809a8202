// rouse::async::channel: bounded, rendezvous and unbounded channels from
// coroutines and threads. Smoke and order; try_ forms; close (drain, then
// closed; the value handed back); the last sender or the receiver going away;
// reserve and permits (a dropped permit gives its slot back); blocked senders
// woken in FIFO order; rendezvous; the unbounded channel's memory returning
// after a burst; cancellation at every suspension point (stop while queued,
// frame destroyed while queued, a chosen sender that gives up passes its
// permit on) with counted elements; timeouts never early; a thread and a
// coroutine on the two ends.
#include "rouse/async/channel.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "async_test_loop.hpp"
#include "counted.hpp"
#include "counting_new.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/select.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/timeout.hpp"

namespace async_channel_test {
namespace {
namespace ch = rouse::async::channel;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using rouse::async::run_loop;
using rouse::channel::send_result;
using rouse::channel::status;
using rouse_test::counted;
using rouse_test::counted_scope;
template <class T = void>
using rtask = rouse::async::task<T>;

// Heap blocks not yet given back: operator new calls not matched by a delete.
long live_allocations() { return rouse_test::allocations() - rouse_test::deallocations(); }

// ---- basics --------------------------------------------------------------------

TEST(async_channel, sizes_are_documented) {
  EXPECT_EQ(sizeof(ch::sender<int>), sizeof(void*));
  EXPECT_EQ(sizeof(ch::receiver<int>), sizeof(void*));
  EXPECT_EQ(sizeof(ch::permit<int>), 16u);
}

// A capacity whose ring size (a power of two at least as large) does not
// fit in a size_t is refused at once (it looped forever).
TEST(async_channel, a_capacity_above_the_maximum_throws_length_error) {
  EXPECT_THROW((void)ch::bounded<int>(SIZE_MAX), std::length_error);
  EXPECT_THROW((void)ch::bounded<int>((std::size_t{1} << 63) + 1), std::length_error);
  EXPECT_THROW((void)ch::bounded<int>(ch::max_capacity + 1), std::length_error);
}

// The ring counts positions (and stamps) modulo 2^31 beside its permit
// count: across the wrap, values come out in order, once, and empty,
// pending, size() and the close's end stay right. Started just before the
// wrap (a channel would need 2^31 sends to get there).
TEST(async_channel, the_ring_position_count_wraps) {
  using ring = ch::detail::channel_ring<int>;
  for (std::uint32_t const first : {(std::uint32_t{1} << 31) - 3, (std::uint32_t{1} << 31) - 1, 0u}) {
    ring r(4, 4, first);
    int next_sent = 0;
    int next_received = 0;
    auto take = [&](int& out) { return r.take([&](int&& v) { out = v; }); };
    for (int round = 0; round < 10; ++round) {
      // A permit per slot: try_push fills the ring, then finds none.
      for (int k = 0; k < 4; ++k) {
        int v = next_sent;
        ASSERT_EQ(r.try_push(v), ch::detail::ring_push::ok) << first << " round " << round;
        ++next_sent;
      }
      int v = -1;
      EXPECT_EQ(r.try_push(v), ch::detail::ring_push::no_permit);
      EXPECT_EQ(r.size(), 4u);
      for (int k = 0; k < 4; ++k) {
        int got = -1;
        ASSERT_EQ(take(got), ch::detail::ring_take::value);
        EXPECT_EQ(got, next_received++);
      }
      int got = -1;
      EXPECT_EQ(take(got), ch::detail::ring_take::empty);
      EXPECT_EQ(r.size(), 0u);
      EXPECT_EQ(r.add_permits(4), 0);  // the receiver gives the slots back
      // With a permit held: push() claims the position alone.
      ASSERT_TRUE(r.take_permit());
      int w = next_sent++;
      ASSERT_EQ(r.push(w), rouse::channel::status::ok);
      ASSERT_EQ(take(got), ch::detail::ring_take::value);
      EXPECT_EQ(got, next_received++);
      EXPECT_EQ(r.add_permits(1), 3);
    }
    // Close across the wrap: what was sent comes out, then closed; a later
    // send is refused and keeps its value.
    int a = 100;
    int b = 101;
    ASSERT_EQ(r.try_push(a), ch::detail::ring_push::ok);
    ASSERT_EQ(r.try_push(b), ch::detail::ring_push::ok);
    EXPECT_TRUE(r.close());
    EXPECT_FALSE(r.close());
    int c = 102;
    EXPECT_EQ(r.try_push(c), ch::detail::ring_push::closed);
    ASSERT_TRUE(r.take_permit());
    EXPECT_EQ(r.push(c), rouse::channel::status::closed);
    EXPECT_EQ(c, 102);
    EXPECT_EQ(r.size(), 2u);
    int got = -1;
    ASSERT_EQ(take(got), ch::detail::ring_take::value);
    EXPECT_EQ(got, 100);
    ASSERT_EQ(take(got), ch::detail::ring_take::value);
    EXPECT_EQ(got, 101);
    EXPECT_EQ(take(got), ch::detail::ring_take::closed);
    EXPECT_EQ(r.size(), 0u);
  }
}

// A rendezvous debt (-1 permits) does not borrow from the position count.
TEST(async_channel, a_negative_permit_count_leaves_the_positions_alone) {
  ch::detail::channel_ring<int> r(1, 0, (std::uint32_t{1} << 31) - 1);
  EXPECT_EQ(r.add_permits(-1), 0);
  EXPECT_EQ(r.permits(), -1);
  EXPECT_EQ(r.size(), 0u);
  int got = -1;
  EXPECT_EQ(r.take([&](int&& v) { got = v; }), ch::detail::ring_take::empty);
  EXPECT_EQ(r.add_permits(2), -1);
  int v = 9;
  ASSERT_EQ(r.try_push(v), ch::detail::ring_push::ok);
  ASSERT_EQ(r.take([&](int&& x) { got = x; }), ch::detail::ring_take::value);
  EXPECT_EQ(got, 9);
  EXPECT_EQ(r.permits(), 0);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
// A permit kept after every handle of its channel is gone would give its
// slot back to freed memory: debug builds say so when the channel goes.
TEST(async_channel_death, a_permit_that_outlives_its_channel_is_diagnosed) {
  EXPECT_DEATH(
      {
        ch::permit<int> p;
        {
          auto ends = ch::bounded<int>(2);
          p = ends.first.try_reserve();
        }
      },
      "rouse::async::channel::permit: misuse: outlived its channel");
}
// A send awaited again after it completed: the second await must not send
// the moved-from value, whichever way the first went (at once, or after a
// wait for a slot).
task<> send_and_await_again(ch::sender<int>& tx, bool& first_done) {
  auto a = tx.send(7);
  (void)co_await a;
  first_done = true;
  (void)co_await a;
}
TEST(async_channel_death, a_send_awaited_twice_is_diagnosed) {
  for (bool const full_first : {false, true}) {
    EXPECT_DEATH(
        {
          auto ends = ch::bounded<int>(1);
          auto& tx = ends.first;
          auto& rx = ends.second;
          if (full_first) (void)tx.try_send(1);  // the first await waits for a slot
          bool first_done = false;
          test_loop loop;
          auto t = send_and_await_again(tx, first_done);
          t.start(loop);
          loop.drain();
          if (full_first) {
            (void)rx.try_recv();  // the slot goes to the waiting send
            loop.drain();
            (void)rx.try_recv();  // its value: the slot is free again
          }
          loop.drain();
        },
        "rouse::async::channel: misuse: a send awaitable awaited twice");
  }
}
// The timer of a timed wait is started once per wait: a second start()
// would rebuild the node the executor links (select's timeout branch and
// the timed sends and receives each finish() before they start again).
struct timer_owner {};
void timer_owner_fired(timer_owner*) noexcept {}
using owner_timer = ch::detail::wait_timer<timer_owner, &timer_owner_fired>;
TEST(async_channel_death, a_wait_timer_started_again_before_it_finished_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::async::run_loop loop;
        timer_owner o;
        owner_timer t;
        auto const at = std::chrono::steady_clock::now() + std::chrono::hours(1);
        t.start(&loop, at, &o);
        t.start(&loop, at, &o);
      },
      "rouse::async::channel: misuse: a wait's timer started again before it finished");
}
task<> reserve_and_await_again(ch::sender<int>& tx) {
  auto a = tx.reserve();
  { auto p = co_await a; }
  (void)co_await a;
}
TEST(async_channel_death, a_reserve_awaited_twice_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto ends = ch::bounded<int>(1);
        test_loop loop;
        auto t = reserve_and_await_again(ends.first);
        t.start(loop);
        loop.drain();
      },
      "rouse::async::channel: misuse: a reserve awaitable awaited twice");
}
task<> recv_and_await_again(ch::receiver<int>& rx) {
  auto a = rx.recv();
  (void)co_await a;
  (void)co_await a;
}
TEST(async_channel_death, a_receive_awaited_twice_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto ends = ch::bounded<int>(2);
        (void)ends.first.try_send(1);
        (void)ends.first.try_send(2);
        test_loop loop;
        auto t = recv_and_await_again(ends.second);
        t.start(loop);
        loop.drain();
      },
      "rouse::async::channel: misuse: a receive awaitable awaited twice");
}
#endif

TEST(async_channel, bounded_try_forms_report_full_and_empty) {
  auto pair_63 = ch::bounded<int>(2);
  auto& tx = pair_63.first;
  auto& rx = pair_63.second;
  EXPECT_EQ(rx.try_recv().status(), status::empty);
  EXPECT_TRUE(tx.try_send(1));
  EXPECT_TRUE(tx.try_send(2));
  auto r = tx.try_send(3);
  EXPECT_EQ(r.status(), status::full);
  EXPECT_EQ(r.value(), 3);
  EXPECT_EQ(tx.size(), 2u);
  EXPECT_EQ(*rx.try_recv(), 1);
  EXPECT_EQ(*rx.try_recv(), 2);
  EXPECT_EQ(rx.try_recv().status(), status::empty);
}

rtask<std::vector<int>> receive_all(ch::receiver<int>& rx) {
  std::vector<int> got;
  for (;;) {
    auto r = co_await rx.recv();
    if (!r) {
      EXPECT_EQ(r.status(), status::closed);
      break;
    }
    got.push_back(*r);
  }
  co_return got;
}
rtask<> send_range(ch::sender<int> tx, int from, int to) {
  for (int i = from; i < to; ++i) EXPECT_TRUE(co_await tx.send(i));
}

TEST(async_channel, tasks_send_and_receive_in_order_through_a_small_buffer) {
  for (std::size_t cap : {0u, 1u, 3u, 64u}) {
    run_loop loop;
    auto pair_95 = ch::bounded<int>(cap);
    auto& tx = pair_95.first;
    auto& rx = pair_95.second;
    auto h = rouse::async::spawn(loop, send_range(std::move(tx), 0, 500));
    auto got = loop.run_until_complete(receive_all(rx));
    h.join();
    ASSERT_EQ(got.size(), 500u) << "capacity " << cap;
    for (int i = 0; i < 500; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
  }
}

TEST(async_channel, unbounded_send_never_waits_and_keeps_order) {
  run_loop loop;
  auto pair_106 = ch::unbounded<int>();
  auto& tx = pair_106.first;
  auto& rx = pair_106.second;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(tx.try_send(i));
  tx = ch::sender<int>();  // the last sender: closes
  auto got = loop.run_until_complete(receive_all(rx));
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
}

// ---- close -------------------------------------------------------------------------

TEST(async_channel, close_drains_then_reports_closed_and_hands_sends_back) {
  for (std::size_t cap : {1u, 4u}) {
    auto pair_118 = ch::bounded<int>(cap);
    auto& tx = pair_118.first;
    auto& rx = pair_118.second;
    EXPECT_TRUE(tx.try_send(7));
    EXPECT_TRUE(tx.close());
    EXPECT_FALSE(rx.close());
    auto s = tx.try_send(8);
    EXPECT_EQ(s.status(), status::closed);
    EXPECT_EQ(s.value(), 8);
    EXPECT_EQ(tx.send_blocking(9).status(), status::closed);
    EXPECT_EQ(*rx.recv_blocking(), 7);
    EXPECT_EQ(rx.recv_blocking().status(), status::closed);
    EXPECT_EQ(rx.try_recv().status(), status::closed);
  }
  auto pair_130 = ch::unbounded<int>();
  auto& tx = pair_130.first;
  auto& rx = pair_130.second;
  EXPECT_TRUE(tx.try_send(1));
  rx.close();
  EXPECT_EQ(tx.try_send(2).status(), status::closed);
  EXPECT_EQ(*rx.try_recv(), 1);
  EXPECT_EQ(rx.try_recv().status(), status::closed);
}

TEST(async_channel, the_last_sender_going_away_closes_after_the_values) {
  auto pair_139 = ch::bounded<int>(4);
  auto& tx = pair_139.first;
  auto& rx = pair_139.second;
  {
    auto tx2 = tx;
    EXPECT_TRUE(tx2.try_send(1));
    tx = ch::sender<int>();
    EXPECT_FALSE(rx.is_closed());
  }
  EXPECT_TRUE(rx.is_closed());
  EXPECT_EQ(*rx.recv_blocking(), 1);
  EXPECT_EQ(rx.recv_blocking().status(), status::closed);
}

TEST(async_channel, the_receiver_going_away_closes_and_destroys_what_is_buffered) {
  counted_scope scope;
  auto pair_153 = ch::bounded<counted>(4);
  auto& tx = pair_153.first;
  auto& rx = pair_153.second;
  EXPECT_TRUE(tx.try_send(counted(1)));
  rx = ch::receiver<counted>();
  auto r = tx.try_send(counted(2));
  EXPECT_EQ(r.status(), status::closed);
  EXPECT_EQ(r.value().value, 2);
}

rtask<status> send_one(ch::sender<int>& tx, int v) { co_return (co_await tx.send(v)).status(); }
// The status a spawned send_one ended with, once it ended.
status joined(run_loop& loop, rouse::async::join_handle<status> h) {
  return loop.run_until_complete([](rouse::async::join_handle<status> j) -> rtask<status> {
    co_return co_await std::move(j);
  }(std::move(h)));
}

TEST(async_channel, close_wakes_a_blocked_sender_with_its_value_back) {
  run_loop loop;
  auto pair_165 = ch::bounded<int>(1);
  auto& tx = pair_165.first;
  auto& rx = pair_165.second;
  EXPECT_TRUE(tx.try_send(0));
  auto h = rouse::async::spawn(loop, send_one(tx, 1));
  loop.run_until_complete([]() -> rtask<> { co_return; }());
  EXPECT_FALSE(h.is_done());
  rx.close();
  EXPECT_EQ(joined(loop, std::move(h)), status::closed);
}

// ---- reserve and permits -----------------------------------------------------------

TEST(async_channel, a_permit_sends_without_waiting_and_a_dropped_one_gives_its_slot_back) {
  auto pair_180 = ch::bounded<int>(1);
  auto& tx = pair_180.first;
  auto& rx = pair_180.second;
  {
    auto p = tx.try_reserve();
    ASSERT_TRUE(p);
    EXPECT_EQ(tx.try_reserve().status(), status::full);
    EXPECT_EQ(tx.try_send(5).status(), status::full);
  }  // dropped unused
  auto p = tx.try_reserve();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p.send(3));
  EXPECT_EQ(*rx.try_recv(), 3);
  EXPECT_EQ(rx.permits_for_testing(), 1);
}

TEST(async_channel, a_permit_sends_closed_after_a_close_and_hands_the_value_back) {
  auto pair_195 = ch::bounded<int>(2);
  auto& tx = pair_195.first;
  auto& rx = pair_195.second;
  auto p = tx.try_reserve();
  ASSERT_TRUE(p);
  rx.close();
  auto r = p.send(4);
  EXPECT_EQ(r.status(), status::closed);
  EXPECT_EQ(r.value(), 4);
  EXPECT_EQ(tx.try_reserve().status(), status::closed);
}

rtask<> reserve_then_send(ch::sender<int>& tx, int v, std::vector<int>& order) {
  auto p = co_await tx.reserve();
  EXPECT_TRUE(p);
  order.push_back(v);
  EXPECT_TRUE(p.send(v));
}

TEST(async_channel, blocked_senders_get_freed_slots_in_fifo_order) {
  run_loop loop;
  auto pair_214 = ch::bounded<int>(1);
  auto& tx = pair_214.first;
  auto& rx = pair_214.second;
  EXPECT_TRUE(tx.try_send(0));
  std::vector<int> order;
  std::vector<rouse::async::join_handle<void>> hs;
  for (int i = 1; i <= 5; ++i) {
    hs.push_back(rouse::async::spawn(loop, reserve_then_send(tx, i, order)));
    loop.run_until_complete([]() -> rtask<> { co_return; }());  // let it queue
  }
  EXPECT_TRUE(order.empty());
  std::vector<int> got;
  for (int i = 0; i <= 5; ++i) {
    got.push_back(*rx.try_recv());
    loop.run_until_complete([]() -> rtask<> { co_return; }());
    // A newcomer cannot take the slot a queued sender is owed.
    if (i < 5) {
      EXPECT_EQ(tx.try_send(99).status(), status::full);
    }
  }
  for (auto& h : hs) h.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(async_channel, a_large_channel_gives_slots_back_in_batches_and_all_before_it_reports_empty) {
  auto pair = ch::bounded<int>(64);  // batches of 4
  auto& tx = pair.first;
  auto& rx = pair.second;
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(tx.try_send(i));
  EXPECT_EQ(tx.try_send(64).status(), status::full);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*rx.try_recv(), i);
  EXPECT_EQ(rx.permits_for_testing(), 0);  // kept: a batch is not complete
  EXPECT_EQ(*rx.try_recv(), 3);
  EXPECT_EQ(rx.permits_for_testing(), 4);
  for (int i = 4; i < 64; ++i) EXPECT_EQ(*rx.try_recv(), i);
  EXPECT_EQ(rx.try_recv().status(), status::empty);
  EXPECT_EQ(rx.permits_for_testing(), 64);  // all back before `empty`
}

TEST(async_channel, a_freed_slot_goes_to_a_waiting_sender_at_once_even_in_a_large_channel) {
  run_loop loop;
  auto pair = ch::bounded<int>(64);
  auto& tx = pair.first;
  auto& rx = pair.second;
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(tx.try_send(i));
  auto h = rouse::async::spawn(loop, send_one(tx, 64));
  loop.run_until_complete([]() -> rtask<> { co_return; }());
  EXPECT_FALSE(h.is_done());
  EXPECT_EQ(*rx.try_recv(), 0);  // a sender waits: its slot goes at once
  EXPECT_EQ(joined(loop, std::move(h)), status::ok);
}

// ---- rendezvous ----------------------------------------------------------------------

TEST(async_channel, rendezvous_try_send_needs_a_waiting_receive) {
  auto pair_240 = ch::bounded<int>(0);
  auto& tx = pair_240.first;
  auto& rx = pair_240.second;
  EXPECT_EQ(tx.capacity(), 0u);
  EXPECT_EQ(tx.try_send(1).status(), status::full);
  EXPECT_EQ(rx.try_recv().status(), status::empty);
  std::thread t([&rx] { EXPECT_EQ(*rx.recv_blocking(), 2); });
  // Only once the receive waits does a send go through.
  while (!tx.try_send(2)) std::this_thread::yield();
  t.join();
  EXPECT_EQ(tx.try_send(3).status(), status::full);
}

// A receive that gives up takes back the demand it gave, unless a sender
// took it: afterwards a send finds nobody receiving (it was "ok" with no
// receive left, and the value was destroyed unreceived with the channel).
TEST(async_channel, rendezvous_a_receive_that_gives_up_takes_its_demand_back) {
  using namespace std::chrono_literals;
  auto ends = ch::bounded<int>(0);
  auto& tx = ends.first;
  auto& rx = ends.second;
  // A thread's timed receive.
  EXPECT_EQ(rx.recv_blocking_for(1ms).status(), status::timed_out);
  EXPECT_EQ(tx.try_send(1).status(), status::full);
  // A thread's select that times out.
  auto r = ch::select_blocking(ch::recv(rx), ch::timeout(1ms));
  EXPECT_EQ(r.index(), 1u);
  EXPECT_EQ(tx.try_send(2).status(), status::full);
  // A task's timed receive; a task's select whose other branch wins.
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete([](ch::receiver<int>& x) -> rtask<status> {
    co_return (co_await x.recv_for(1ms)).status();
  }(rx)),
            status::timed_out);
  EXPECT_EQ(tx.try_send(3).status(), status::full);
  auto [otx, orx] = ch::bounded<int>(1);
  ASSERT_TRUE(otx.try_send(7));
  EXPECT_EQ(loop.run_until_complete([](ch::receiver<int>& x, ch::receiver<int>& o) -> rtask<std::size_t> {
    auto w = co_await ch::select(ch::recv(x), ch::recv(o));
    co_return w.index();
  }(rx, orx)),
            1u);
  EXPECT_EQ(tx.try_send(4).status(), status::full);
  EXPECT_EQ(rx.permits_for_testing(), 0);
  // A waiting receive still gives one.
  std::thread t([&rx] { EXPECT_EQ(*rx.recv_blocking(), 5); });
  while (!tx.try_send(5)) std::this_thread::yield();
  t.join();
}

// A stopped receive and one whose frame is destroyed while it waits take
// their demand back too.
bare stopped_or_destroyed_recv(ch::receiver<int>& rx, bool& stopped) {
  try {
    (void)co_await rx.recv();
  } catch (const ra::operation_stopped&) {
    stopped = true;
  }
}

TEST(async_channel, rendezvous_a_stopped_or_destroyed_receive_takes_its_demand_back) {
  auto [tx, rx] = ch::bounded<int>(0);
  ra::inplace_stop_source stop;
  bool stopped = false;
  {
    bare b = stopped_or_destroyed_recv(rx, stopped);
    b.h.promise().token = stop.get_token();
    b.h.resume();  // waits: its demand is out
    EXPECT_EQ(rx.permits_for_testing(), 1);
    stop.request_stop();
    EXPECT_TRUE(stopped);
  }
  EXPECT_EQ(tx.try_send(1).status(), status::full);
  {
    bare b = stopped_or_destroyed_recv(rx, stopped);
    b.h.resume();
    EXPECT_EQ(rx.permits_for_testing(), 1);
  }  // destroyed while it waits
  EXPECT_EQ(rx.permits_for_testing(), 0);
  EXPECT_EQ(tx.try_send(2).status(), status::full);
}

// The demand of a receive that gave up while a sender held it (a reserve):
// if that sender sends, the value waits for the next receive; if it drops
// its permit unused, the demand is gone with the receive (it came back, and
// a later send completed with nobody receiving), and a receive waiting
// meanwhile is woken to ask again.
bare receives_into(ch::receiver<int>& rx, std::optional<int>& got) {
  auto r = co_await rx.recv();
  if (r) got = *r;
}

TEST(async_channel, rendezvous_a_held_demand_of_a_receive_that_gave_up_does_not_come_back) {
  auto [tx, rx] = ch::bounded<int>(0);
  ra::inplace_stop_source stop;
  bool stopped = false;
  {
    bare b = stopped_or_destroyed_recv(rx, stopped);
    b.h.promise().token = stop.get_token();
    b.h.resume();  // its demand is out
    auto p = tx.try_reserve();
    ASSERT_TRUE(p);  // a sender holds the demand
    stop.request_stop();
    EXPECT_TRUE(stopped);
    // The holder drops it unused: the demand does not come back.
  }
  EXPECT_EQ(tx.try_send(1).status(), status::full);
  EXPECT_EQ(rx.permits_for_testing(), 0);
  // A receive that waits while a held demand's debt is out asks again once
  // the holder drops it.
  std::optional<int> got;
  {
    bare b = stopped_or_destroyed_recv(rx, stopped);
    b.h.resume();
    auto p = tx.try_reserve();
    ASSERT_TRUE(p);
    std::exchange(b.h, {}).destroy();  // the receive's frame goes: a debt
    bare r = receives_into(rx, got);
    r.h.resume();  // waits: no new demand while the old one is held
    EXPECT_EQ(tx.try_send(2).status(), status::full);
    p = {};  // dropped unused: the debt is paid, the waiting receive asks again
    EXPECT_TRUE(tx.try_send(3));
    EXPECT_EQ(got, 3);
  }
  // The holder sends instead: the value waits for the next receive, which
  // pays the debt back.
  {
    bare b = stopped_or_destroyed_recv(rx, stopped);
    b.h.resume();
    auto p = tx.try_reserve();
    ASSERT_TRUE(p);
    std::exchange(b.h, {}).destroy();
    EXPECT_TRUE(p.send(4));
    EXPECT_EQ(*rx.try_recv(), 4);
    EXPECT_EQ(rx.permits_for_testing(), 0);
    EXPECT_EQ(tx.try_send(5).status(), status::full);
  }
}

// ---- threads -------------------------------------------------------------------------

TEST(async_channel, threads_use_the_blocking_forms) {
  for (std::size_t cap : {0u, 1u, 16u}) {
    auto pair_255 = ch::bounded<int>(cap);
    auto& tx = pair_255.first;
    auto& rx = pair_255.second;
    std::thread p([tx = tx]() mutable {
      for (int i = 0; i < 2000; ++i) EXPECT_TRUE(tx.send_blocking(i));
    });
    tx = ch::sender<int>();
    int expect = 0;
    for (;;) {
      auto r = rx.recv_blocking();
      if (!r) break;
      EXPECT_EQ(*r, expect++);
    }
    EXPECT_EQ(expect, 2000);
    p.join();
  }
}

TEST(async_channel, a_thread_sends_and_a_task_receives_and_back) {
  for (std::size_t cap : {0u, 2u}) {
    run_loop loop;
    auto pair_274 = ch::bounded<int>(cap);
    auto& tx = pair_274.first;
    auto& rx = pair_274.second;
    auto pair_275 = ch::unbounded<int>();
    auto& back_tx = pair_275.first;
    auto& back_rx = pair_275.second;
    std::thread p([tx = std::move(tx), back_rx = std::move(back_rx)]() mutable {
      for (int i = 0; i < 3000; ++i) EXPECT_TRUE(tx.send_blocking(i));
      tx = ch::sender<int>();
      int n = 0;
      while (back_rx.recv_blocking()) ++n;
      EXPECT_EQ(n, 3000);
    });
    auto got = loop.run_until_complete([](ch::receiver<int>& rx, ch::sender<int> out) -> rtask<std::vector<int>> {
      std::vector<int> v;
      while (auto r = co_await rx.recv()) {
        v.push_back(*r);
        EXPECT_TRUE(co_await out.send(*r));
      }
      co_return v;
    }(rx, std::move(back_tx)));
    p.join();
    ASSERT_EQ(got.size(), 3000u);
    for (int i = 0; i < 3000; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
  }
}

// ---- timeouts ---------------------------------------------------------------------------

TEST(async_channel, blocking_timeouts_are_never_early) {
  auto pair_300 = ch::bounded<int>(1);
  auto& tx = pair_300.first;
  auto& rx = pair_300.second;
  for (auto d : {0us, 100us, 2000us}) {
    auto const start = clk::now();
    EXPECT_EQ(rx.recv_blocking_for(d).status(), status::timed_out);
    EXPECT_GE(clk::now() - start, d);
  }
  EXPECT_TRUE(tx.try_send(1));
  for (auto d : {0us, 100us, 2000us}) {
    auto const start = clk::now();
    auto r = tx.send_blocking_for(2, d);
    EXPECT_EQ(r.status(), status::timed_out);
    EXPECT_EQ(r.value(), 2);
    EXPECT_GE(clk::now() - start, d);
  }
  EXPECT_EQ(rx.permits_for_testing(), 0);
  EXPECT_EQ(*rx.recv_blocking_for(1ms), 1);
  EXPECT_EQ(rx.permits_for_testing(), 1);
}

rtask<clk::duration> timed_recv(ch::receiver<int>& rx, clk::duration d, status& s) {
  auto const start = clk::now();
  s = (co_await rx.recv_for(d)).status();
  co_return clk::now() - start;
}
rtask<clk::duration> timed_send(ch::sender<int>& tx, clk::duration d, status& s, int& back) {
  auto const start = clk::now();
  auto r = co_await tx.send_for(5, d);
  s = r.status();
  if (r.has_value()) back = r.value();
  co_return clk::now() - start;
}

// A receive whose deadline has passed when it is awaited, on a rendezvous
// channel with nothing to take, times out without asking: a sender queued
// meanwhile is not handed a demand (its value would then wait for the next
// receive, and the queued send complete into a receive that is gone).
// `receive` makes one receive, in any form, from a task or from a thread,
// and returns whether it timed out; the sender must stay queued. A
// select's choice among its ready branches is random: rounds enough to
// meet both orders.
template <class Receive>
void expect_expired_receives_ask_no_queued_sender(Receive receive) {
  run_loop loop;
  auto pair_0 = ch::bounded<int>(0);
  auto& tx = pair_0.first;
  auto& rx = pair_0.second;
  auto h = rouse::async::spawn(loop, send_one(tx, 7));
  loop.run_until_complete([]() -> rtask<> { co_return; }());
  ASSERT_FALSE(h.is_done());  // queued: no demand
  for (int round = 0; round < 24; ++round) {
    ASSERT_TRUE(receive(loop, rx)) << "round " << round;
    loop.run_until_complete([]() -> rtask<> { co_return; }());
    ASSERT_FALSE(h.is_done()) << "round " << round;  // still queued: nothing was asked for
    ASSERT_EQ(rx.size(), 0u) << "round " << round;
    ASSERT_EQ(rx.permits_for_testing(), 0) << "round " << round;
  }
  // Still queued, so the close hands its value back.
  rx.close();
  EXPECT_EQ(joined(loop, std::move(h)), status::closed);
}

TEST(async_channel, a_rendezvous_receive_timed_out_at_once_asks_no_queued_sender) {
  for (clk::duration d : {clk::duration(0us), clk::duration(-1ms)}) {
    expect_expired_receives_ask_no_queued_sender([d](run_loop& loop, ch::receiver<int>& rx) {
      status s = status::ok;
      (void)loop.run_until_complete(timed_recv(rx, d, s));
      return s == status::timed_out;
    });
  }
}

TEST(async_channel, a_thread_s_rendezvous_receive_timed_out_at_once_asks_no_queued_sender) {
  expect_expired_receives_ask_no_queued_sender(
      [](run_loop&, ch::receiver<int>& rx) { return rx.recv_blocking_for(0us).status() == status::timed_out; });
  expect_expired_receives_ask_no_queued_sender([](run_loop&, ch::receiver<int>& rx) {
    return rx.recv_blocking_until(clk::now() - 1ms).status() == status::timed_out;
  });
  expect_expired_receives_ask_no_queued_sender([](run_loop&, ch::receiver<int>& rx) {
    return rx.recv_blocking_until(std::chrono::system_clock::now() - 1ms).status() == status::timed_out;
  });
}

TEST(async_channel, a_rendezvous_receive_under_an_expired_with_timeout_asks_no_queued_sender) {
  expect_expired_receives_ask_no_queued_sender([](run_loop& loop, ch::receiver<int>& rx) {
    return !loop.run_until_complete([](ch::receiver<int>& r) -> rtask<bool> {
      co_return (co_await rouse::async::with_timeout(r.recv(), 0us)).has_value();
    }(rx));
  });
  expect_expired_receives_ask_no_queued_sender([](run_loop& loop, ch::receiver<int>& rx) {
    return !loop.run_until_complete([](ch::receiver<int>& r) -> rtask<bool> {
      co_return (co_await rouse::async::with_deadline(r.recv(), clk::now() - 1ms)).has_value();
    }(rx));
  });
}

TEST(async_channel, a_select_with_an_expired_timeout_asks_no_queued_rendezvous_sender) {
  expect_expired_receives_ask_no_queued_sender([](run_loop& loop, ch::receiver<int>& rx) {
    return loop.run_until_complete([](ch::receiver<int>& r) -> rtask<std::size_t> {
             co_return (co_await ch::select(ch::recv(r), ch::timeout(0us))).index();
           }(rx)) == 1;
  });
  expect_expired_receives_ask_no_queued_sender([](run_loop&, ch::receiver<int>& rx) {
    return ch::select_blocking(ch::recv(rx), ch::timeout(0us)).index() == 1;
  });
}

TEST(async_channel, coroutine_timeouts_are_never_early) {
  run_loop loop;
  auto pair_334 = ch::bounded<int>(1);
  auto& tx = pair_334.first;
  auto& rx = pair_334.second;
  for (clk::duration d : {clk::duration(0us), clk::duration(200us), clk::duration(3ms)}) {
    status s = status::ok;
    EXPECT_GE(loop.run_until_complete(timed_recv(rx, d, s)), d);
    EXPECT_EQ(s, status::timed_out);
  }
  EXPECT_TRUE(tx.try_send(1));
  for (clk::duration d : {clk::duration(0us), clk::duration(200us), clk::duration(3ms)}) {
    status s = status::ok;
    int back = 0;
    EXPECT_GE(loop.run_until_complete(timed_send(tx, d, s, back)), d);
    EXPECT_EQ(s, status::timed_out);
    EXPECT_EQ(back, 5);
  }
  // The timed-out senders left no permit behind and took none.
  EXPECT_EQ(*rx.try_recv(), 1);
  EXPECT_EQ(rx.permits_for_testing(), 1);
}

// A coroutine without get_env on the loop's thread: the timer's fire ends
// its wait and resumes it inline, in the fire, where the awaitable withdraws
// that very timer (it waited for the fire to finish: itself, a hang).
eager bare_recv_for(ch::receiver<int>& rx, status& s) { s = (co_await rx.recv_for(1ms)).status(); }
eager bare_send_for(ch::sender<int>& tx, status& s, int& back) {
  auto r = co_await tx.send_for(5, 1ms);
  if (r.has_value()) back = r.value();
  s = r.status();
}

TEST(async_channel, a_timed_wait_resumed_inline_by_its_own_timer_does_not_hang) {
  run_loop loop;
  auto [tx, rx] = ch::bounded<int>(1);
  status s = status::ok;
  loop.run_until_complete([](ch::receiver<int>& r, status& st) -> rtask<void> {
    bare_recv_for(r, st);  // current_executor() is the loop: its timers
    co_return;
  }(rx, s));
  loop.run_until([&] { return s != status::ok; });
  EXPECT_EQ(s, status::timed_out);
  ASSERT_TRUE(tx.try_send(1));
  s = status::ok;
  int back = 0;
  loop.run_until_complete([](ch::sender<int>& t, status& st, int& b) -> rtask<void> {
    bare_send_for(t, st, b);
    co_return;
  }(tx, s, back));
  loop.run_until([&] { return s != status::ok; });
  EXPECT_EQ(s, status::timed_out);
  EXPECT_EQ(back, 5);
  EXPECT_EQ(*rx.try_recv(), 1);
}

// The same coroutine owning the channel: resumed inside the timer's notify,
// it drops both ends, and the state must outlive that notify (under ASan,
// the notify went on in freed memory).
eager owns_the_channel_and_recv_for(std::size_t capacity, bool unbounded, status& s) {
  auto [tx, rx] = unbounded ? ch::unbounded<int>() : ch::bounded<int>(capacity);
  s = (co_await rx.recv_for(1ms)).status();
}

TEST(async_channel, a_timed_recv_ended_inline_may_drop_the_channel_inside_the_timers_wake) {
  run_loop loop;
  struct shape {
    std::size_t capacity;
    bool unbounded;
  };
  for (shape const sh : {shape{1, false}, shape{0, false}, shape{0, true}}) {
    status s = status::ok;
    loop.run_until_complete([](shape x, status& st) -> rtask<void> {
      owns_the_channel_and_recv_for(x.capacity, x.unbounded, st);
      co_return;
    }(sh, s));
    loop.run_until([&] { return s != status::ok; });
    EXPECT_EQ(s, status::timed_out);
  }
}

// A select waiting to send (or to reserve) and a bare sender queue on a full
// channel; close() claims both in one chain and wakes the bare sender first,
// which, resumed inline (no executor), destroys the select's frame. The
// select's branch leaves close()'s chain instead of waiting for a release
// this very thread has not reached (it hung there).
template <bool Reserve>
task<> selects_a_send(ch::sender<int>& tx, ch::receiver<int>& rx, bool& ended) {
  int v = 2;
  if constexpr (Reserve)
    (void)co_await ch::select(ch::reserve(tx), ch::recv(rx));
  else
    (void)co_await ch::select(ch::send(tx, v), ch::recv(rx));
  ended = true;
}
eager sends_then_destroys(ch::sender<int>& tx, task<>& victim, status& s) {
  s = (co_await tx.send(1)).status();
  victim.destroy();
}

template <bool Reserve>
void a_select_destroyed_inside_the_chain_that_claimed_it() {
  test_loop loop;
  auto c = ch::bounded<int>(1);
  auto other = ch::bounded<int>(1);
  ASSERT_TRUE(c.first.try_send(0));
  bool ended = false;
  status s = status::ok;
  task<> a = selects_a_send<Reserve>(c.first, other.second, ended);
  sends_then_destroys(c.first, a, s);  // queued first
  a.start(loop);
  EXPECT_EQ(loop.drain(), 1);  // the select queues behind it
  EXPECT_TRUE(c.second.close());
  EXPECT_EQ(s, status::closed);
  EXPECT_FALSE(static_cast<bool>(a.h));  // destroyed inside close()
  EXPECT_FALSE(ended);
  EXPECT_EQ(loop.drain(), 0);  // nothing was scheduled for it
  EXPECT_EQ(*c.second.try_recv(), 0);
  EXPECT_EQ(c.second.try_recv().status(), status::closed);
  EXPECT_EQ(other.second.permits_for_testing(), 1);
}

TEST(async_channel, a_select_send_destroyed_inside_the_close_that_claimed_it_does_not_hang) {
  a_select_destroyed_inside_the_chain_that_claimed_it<false>();
}
TEST(async_channel, a_select_reserve_destroyed_inside_the_close_that_claimed_it_does_not_hang) {
  a_select_destroyed_inside_the_chain_that_claimed_it<true>();
}

// ---- the awaitables move before they are awaited ---------------------------------------

// A foreign coroutine on a run_loop (its environment names the loop, whose
// timers with_timeout uses), started and destroyed by hand.
struct on_run_loop {
  struct promise_type {
    run_loop* loop = nullptr;
    struct env {
      run_loop* loop;
      ra::scheduler query(ra::get_scheduler_t) const noexcept { return ra::scheduler(*loop); }
    };
    env get_env() const noexcept { return {loop}; }
    on_run_loop get_return_object() { return on_run_loop{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
  explicit on_run_loop(std::coroutine_handle<promise_type> x) noexcept : h(x) {}
  on_run_loop(on_run_loop&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~on_run_loop() {
    if (h) h.destroy();
  }
  void start(run_loop& loop) {
    h.promise().loop = &loop;
    h.resume();  // to its first suspension
  }
};

TEST(async_channel, the_awaitables_move_before_they_are_awaited) {
  static_assert(std::is_move_constructible_v<ch::recv_awaitable<int>>);
  static_assert(std::is_move_constructible_v<ch::send_awaitable<counted>>);
  static_assert(std::is_move_constructible_v<ch::reserve_awaitable<int>>);
}

// with_timeout takes a channel awaitable in (it moves); a frame destroyed
// while it waits there leaves everything it registered: the timer, the
// stop source's callbacks, the channel's lists. (The awaitables did not
// move: with_timeout held a reference, the stop source went first, and its
// destructor found a callback still registered.)
template <int Kind>
on_run_loop waits_under_with_timeout(ch::sender<counted>& tx, ch::receiver<counted>& rx, bool& ended) {
  using namespace std::chrono_literals;
  if constexpr (Kind == 0) {
    auto r = co_await ra::with_timeout(rx.recv(), 10s);
  } else if constexpr (Kind == 1) {
    auto r = co_await ra::with_timeout(tx.send(counted(1)), 10s);
  } else if constexpr (Kind == 2) {
    auto r = co_await ra::with_timeout(tx.reserve(), 10s);
  } else {
    int v = 0;
    auto r = co_await ch::select(ch::recv(rx), ch::op(tx.reserve()));
    (void)v;
  }
  ended = true;
}

template <int Kind>
void a_frame_destroyed_in_an_adaptor_leaves() {
  counted_scope scope;
  run_loop loop;
  auto [tx, rx] = ch::bounded<counted>(1);         // empty: a receive waits
  auto [ftx, frx] = ch::bounded<counted>(1);       // full: a send or reserve waits
  ASSERT_TRUE(ftx.try_send(counted(0)));
  bool ended = false;
  {
    on_run_loop c = Kind == 0 ? waits_under_with_timeout<0>(ftx, rx, ended)
                  : Kind == 1 ? waits_under_with_timeout<1>(ftx, rx, ended)
                  : Kind == 2 ? waits_under_with_timeout<2>(ftx, rx, ended)
                              : waits_under_with_timeout<3>(ftx, rx, ended);
    c.start(loop);
    loop.run_once();
    EXPECT_FALSE(ended);
  }  // destroyed while it waits
  loop.run_once();
  EXPECT_FALSE(ended);
  EXPECT_EQ(frx.permits_for_testing(), 0);  // the full channel's one slot, still taken by its value
  EXPECT_EQ(frx.try_recv()->value, 0);
  EXPECT_TRUE(ftx.try_send(counted(2)));  // nobody queued ahead: the freed slot is free
}

TEST(async_channel, a_frame_destroyed_in_with_timeout_of_a_recv_leaves) { a_frame_destroyed_in_an_adaptor_leaves<0>(); }
TEST(async_channel, a_frame_destroyed_in_with_timeout_of_a_send_leaves) { a_frame_destroyed_in_an_adaptor_leaves<1>(); }
TEST(async_channel, a_frame_destroyed_in_with_timeout_of_a_reserve_leaves) {
  a_frame_destroyed_in_an_adaptor_leaves<2>();
}
TEST(async_channel, a_frame_destroyed_in_a_select_op_of_a_reserve_leaves) { a_frame_destroyed_in_an_adaptor_leaves<3>(); }

// A with_timeout stored before it is awaited (it owns the awaitable: the
// temporary it was made from is gone by then).
TEST(async_channel, a_stored_with_timeout_of_a_recv_and_a_send_works) {
  using namespace std::chrono_literals;
  run_loop loop;
  auto [tx, rx] = ch::bounded<int>(1);
  auto got = loop.run_until_complete([](ch::sender<int>& t, ch::receiver<int>& r) -> rtask<int> {
    auto s = ra::with_timeout(t.send(5), 1s);
    auto sent = co_await std::move(s);
    if (!sent || !*sent) co_return -1;
    auto w = ra::with_timeout(r.recv(), 1s);
    auto v = co_await std::move(w);
    if (!v || !*v) co_return -2;
    auto late = ra::with_timeout(r.recv(), 1ms);
    auto none = co_await std::move(late);
    co_return none ? -3 : **v;
  }(tx, rx));
  EXPECT_EQ(got, 5);
}

// ---- cancellation (counted elements: nothing lost, nothing doubled) ------------------

// Foreign coroutines (tests/support/async_test_loop.hpp) on a test_loop.
task<> send_counted(ch::sender<counted>& tx, long v, std::vector<long>& sent) {
  auto r = co_await tx.send(counted(v));
  if (r) sent.push_back(v);
}
task<true> send_counted_in_place(ch::sender<counted>& tx, long v, std::vector<long>& sent) {
  auto r = co_await tx.send(counted(v));
  if (r) sent.push_back(v);
}
task<> recv_counted(ch::receiver<counted>& rx, std::vector<long>& got) {
  auto r = co_await rx.recv();
  if (r) got.push_back(r->value);
}

TEST(async_channel, a_task_destroyed_while_queued_in_send_sends_nothing_and_destroys_its_value) {
  counted_scope scope;
  test_loop loop;
  auto pair_372 = ch::bounded<counted>(1);
  auto& tx = pair_372.first;
  auto& rx = pair_372.second;
  std::vector<long> sent;
  EXPECT_TRUE(tx.try_send(counted(0)));
  auto a = send_counted(tx, 1, sent);
  auto b = send_counted(tx, 2, sent);
  a.start(loop);
  b.start(loop);
  loop.drain();
  a.destroy();  // queued, not chosen: leaves, its value destroyed with its frame
  EXPECT_EQ(rx.try_recv()->value, 0);  // frees a slot: goes to b
  loop.drain();
  EXPECT_EQ(sent, (std::vector<long>{2}));
  EXPECT_EQ(rx.try_recv()->value, 2);
  EXPECT_EQ(rx.try_recv().status(), status::empty);
  EXPECT_EQ(rx.permits_for_testing(), 1);
}

TEST(async_channel, a_sender_chosen_and_then_destroyed_passes_its_slot_on) {
  counted_scope scope;
  test_loop loop;
  auto pair_392 = ch::bounded<counted>(1);
  auto& tx = pair_392.first;
  auto& rx = pair_392.second;
  std::vector<long> sent;
  EXPECT_TRUE(tx.try_send(counted(0)));
  auto a = send_counted(tx, 1, sent);
  auto b = send_counted(tx, 2, sent);
  a.start(loop);
  b.start(loop);
  loop.drain();
  EXPECT_EQ(rx.try_recv()->value, 0);  // chooses a: a is scheduled
  ASSERT_TRUE(loop.discard(a.h));
  a.destroy();  // a never runs: its permit goes to b
  loop.drain();
  EXPECT_EQ(sent, (std::vector<long>{2}));
  EXPECT_EQ(rx.try_recv()->value, 2);
  EXPECT_EQ(rx.permits_for_testing(), 1);
}

TEST(async_channel, the_last_sender_chosen_and_destroyed_stores_the_slot) {
  counted_scope scope;
  test_loop loop;
  auto pair_412 = ch::bounded<counted>(1);
  auto& tx = pair_412.first;
  auto& rx = pair_412.second;
  std::vector<long> sent;
  EXPECT_TRUE(tx.try_send(counted(0)));
  auto a = send_counted(tx, 1, sent);
  a.start(loop);
  loop.drain();
  EXPECT_EQ(rx.try_recv()->value, 0);
  ASSERT_TRUE(loop.discard(a.h));
  a.destroy();
  EXPECT_EQ(rx.permits_for_testing(), 1);
  EXPECT_TRUE(tx.try_send(counted(3)));
}

TEST(async_channel, stop_while_queued_in_send_completes_stopped_and_sends_nothing) {
  counted_scope scope;
  test_loop loop;
  auto pair_428 = ch::bounded<counted>(1);
  auto& tx = pair_428.first;
  auto& rx = pair_428.second;
  std::vector<long> sent;
  EXPECT_TRUE(tx.try_send(counted(0)));
  ra::inplace_stop_source s1, s2;
  auto a = send_counted(tx, 1, sent);
  auto b = send_counted_in_place(tx, 2, sent);
  a.start(loop, s1.get_token());
  b.start(loop, s2.get_token());
  loop.drain();
  s1.request_stop();
  s2.request_stop();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  EXPECT_TRUE(b.stopped());
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(rx.try_recv()->value, 0);
  EXPECT_EQ(rx.try_recv().status(), status::empty);
  EXPECT_EQ(rx.permits_for_testing(), 1);
}

TEST(async_channel, stop_after_the_sender_was_chosen_lets_the_send_stand) {
  counted_scope scope;
  test_loop loop;
  auto pair_451 = ch::bounded<counted>(1);
  auto& tx = pair_451.first;
  auto& rx = pair_451.second;
  std::vector<long> sent;
  EXPECT_TRUE(tx.try_send(counted(0)));
  ra::inplace_stop_source s;
  auto a = send_counted(tx, 1, sent);
  a.start(loop, s.get_token());
  loop.drain();
  EXPECT_EQ(rx.try_recv()->value, 0);  // chooses a
  s.request_stop();                    // too late: the permit stands
  loop.drain();
  EXPECT_FALSE(a.threw_stopped());
  EXPECT_EQ(sent, (std::vector<long>{1}));
  EXPECT_EQ(rx.try_recv()->value, 1);
}

TEST(async_channel, stop_while_waiting_in_recv_takes_no_value) {
  counted_scope scope;
  test_loop loop;
  auto pair_469 = ch::bounded<counted>(2);
  auto& tx = pair_469.first;
  auto& rx = pair_469.second;
  std::vector<long> got;
  ra::inplace_stop_source s;
  auto a = recv_counted(rx, got);
  a.start(loop, s.get_token());
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  EXPECT_TRUE(tx.try_send(counted(5)));
  EXPECT_TRUE(got.empty());
  auto b = recv_counted(rx, got);
  b.start(loop);
  loop.drain();
  EXPECT_EQ(got, (std::vector<long>{5}));
}

TEST(async_channel, a_task_destroyed_while_waiting_in_recv_takes_no_value) {
  counted_scope scope;
  test_loop loop;
  for (std::size_t cap : {0u, 2u}) {
    auto pair_490 = ch::bounded<counted>(cap);
    auto& tx = pair_490.first;
    auto& rx = pair_490.second;
    std::vector<long> got;
    auto a = recv_counted(rx, got);
    a.start(loop);
    loop.drain();
    a.destroy();
    // Rendezvous: the destroyed receive took its demand back: no send goes
    // through until the next receive asks.
    if (cap == 0) {
      EXPECT_EQ(tx.try_send(counted(6)).status(), status::full);
    }
    auto b = recv_counted(rx, got);
    b.start(loop);
    loop.drain();
    EXPECT_TRUE(tx.try_send(counted(6)));
    loop.drain();
    EXPECT_EQ(got, (std::vector<long>{6}));
  }
}

TEST(async_channel, a_woken_recv_takes_the_value_on_its_executor_not_in_the_send) {
  counted_scope scope;
  test_loop loop;
  auto pair_509 = ch::bounded<counted>(2);
  auto& tx = pair_509.first;
  auto& rx = pair_509.second;
  std::vector<long> got;
  auto a = recv_counted(rx, got);
  a.start(loop);
  loop.drain();
  EXPECT_TRUE(tx.try_send(counted(8)));  // wakes a: its poll is scheduled, not run here
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(rx.size(), 1u);
  loop.drain();  // the poll takes the value and resumes a
  EXPECT_EQ(got, (std::vector<long>{8}));
}

TEST(async_channel, a_timed_send_racing_a_free_slot_never_loses_or_doubles_the_value) {
  counted_scope scope;
  run_loop loop;
  for (int round = 0; round < 200; ++round) {
    auto pair_525 = ch::bounded<counted>(1);
    auto& tx = pair_525.first;
    auto& rx = pair_525.second;
    EXPECT_TRUE(tx.try_send(counted(-1)));
    std::thread t([&rx] {
      std::this_thread::yield();
      EXPECT_EQ(rx.recv_blocking()->value, -1);
    });
    auto r = loop.run_until_complete([](ch::sender<counted>& tx, int round) -> rtask<send_result<counted>> {
      co_return co_await tx.send_for(counted(round), std::chrono::microseconds(round % 50));
    }(tx, round));
    t.join();
    auto left = rx.try_recv();
    if (r) {
      EXPECT_EQ(left->value, round);
    } else {
      EXPECT_EQ(r.status(), status::timed_out);
      EXPECT_EQ(r.value().value, round);
      EXPECT_EQ(left.status(), status::empty);
      EXPECT_EQ(rx.permits_for_testing(), 1);
    }
  }
}

// ---- memory ---------------------------------------------------------------------------

TEST(async_channel, an_unbounded_channel_gives_its_memory_back_after_a_burst) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "the sanitizer owns operator new";
  auto pair_550 = ch::unbounded<std::uint64_t>();
  auto& tx = pair_550.first;
  auto& rx = pair_550.second;
  EXPECT_TRUE(tx.try_send(0));
  EXPECT_EQ(*rx.try_recv(), 0u);
  long const before = live_allocations();
  for (std::uint64_t i = 0; i < 100000; ++i) EXPECT_TRUE(tx.try_send(i));
  EXPECT_GT(live_allocations() - before, 1000);  // a block per 31 values
  for (std::uint64_t i = 0; i < 100000; ++i) EXPECT_EQ(*rx.try_recv(), i);
  EXPECT_LE(live_allocations() - before, 2);  // at most the current block
}

}  // namespace
}  // namespace async_channel_test
