// A wait on a diatomic_waker (a channel's receive, wait_until) in a rouse
// task, with the task's stop relayed to it (rouse/async/detail/
// wait_relay.hpp), as the waiter-list waits are: a stop while the receive
// sleeps ends it as stopped and leaves the value in the channel; a stop
// while the task runs ends its next receive; a stop after the send's wake
// lets the wake stand; stops racing sends on other threads lose and double
// no value; a wait woken without its predicate ready (a turn that sleeps
// again) still sees a stop that came meanwhile; a frame destroyed while its
// receive sleeps is not touched by a later send or stop; no allocation and
// no stop callback per receive.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "counting_new.hpp"
#include "rouse/async/channel.hpp"
#include "rouse/async/diatomic_waker.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"

namespace async_receive_relay_test {
namespace {
namespace ra = rouse::async;
namespace rch = rouse::async::channel;

void settle(ra::run_loop& loop) {
  while (loop.run_once() != 0) {
  }
}

// Receives up to `rounds` values, counting them in `got`.
ra::task<int> recv_rounds(rch::receiver<int>& rx, int rounds, std::atomic<int>& got) {
  for (int i = 0; i < rounds; ++i) {
    auto r = co_await rx.recv();
    if (!r) co_return i;
    got.fetch_add(1, std::memory_order_relaxed);
  }
  co_return rounds;
}

// Sends `rounds` values, one at a time, each once the receiver sleeps.
void send_rounds(ra::run_loop& loop, rch::sender<int>& tx, std::atomic<int>& got, int rounds) {
  for (int k = 0; k < rounds; ++k) {
    int const target = got.load() + 1;
    settle(loop);
    ASSERT_TRUE(tx.try_send(k));
    loop.run_until([&] { return got.load() == target; });
  }
}

TEST(async_receive_relay, a_stop_while_a_relayed_receive_sleeps_ends_it_and_leaves_the_value) {
  ra::run_loop loop;
  auto [tx, rx] = rch::bounded<int>(4);
  std::atomic<int> got{0};
  auto h = ra::spawn(loop.get_scheduler(), recv_rounds(rx, 1'000, got));
  send_rounds(loop, tx, got, 3);  // the relay is made at the second receive
  settle(loop);                   // the fourth receive sleeps
  h.request_stop();
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(got.load(), 3);
  EXPECT_THROW((void)h.join(), ra::operation_stopped);
  EXPECT_EQ(rx.waker_state_for_testing() & (ra::diatomic_waker::registered_bit | ra::diatomic_waker::direct_bit),
            0u);
  ASSERT_TRUE(tx.try_send(99));
  auto r = rx.try_recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 99);
}

TEST(async_receive_relay, a_stop_while_the_task_runs_ends_its_next_receive) {
  ra::run_loop loop;
  auto [tx, rx] = rch::bounded<int>(4);
  std::atomic<int> phase{0};
  ra::join_handle<void>* self = nullptr;
  auto body = [](rch::receiver<int>& rx, std::atomic<int>& phase, ra::join_handle<void>*& self) -> ra::task<> {
    for (int i = 0; i < 2; ++i) {  // each sleeps once: the second makes the relay
      auto r = co_await rx.recv();
      if (!r) co_return;
    }
    phase.store(1);
    self->request_stop();  // the task runs: no wait is armed
    phase.store(2);
    (void)co_await rx.recv();  // ends as stopped at once
    phase.store(3);
  };
  auto h = ra::spawn(loop.get_scheduler(), body(rx, phase, self));
  self = &h;
  for (int i = 0; i < 2; ++i) {
    settle(loop);
    ASSERT_TRUE(tx.try_send(i));
  }
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(phase.load(), 2);
  EXPECT_THROW(h.join(), ra::operation_stopped);
  ASSERT_TRUE(tx.try_send(7));
  auto r = rx.try_recv();  // the stopped receive took nothing and left no registration
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(rx.waker_state_for_testing() & ra::diatomic_waker::registered_bit, 0u);
}

TEST(async_receive_relay, a_stop_after_the_sends_wake_lets_the_wake_stand) {
  ra::run_loop loop;
  auto [tx, rx] = rch::bounded<int>(4);
  std::atomic<int> got{0};
  auto h = ra::spawn(loop.get_scheduler(), recv_rounds(rx, 1'000, got));
  send_rounds(loop, tx, got, 2);
  settle(loop);                    // the third receive sleeps
  ASSERT_TRUE(tx.try_send(5));     // claims it: the poller is scheduled, not run
  h.request_stop();                // finds no wait armed: a mark for the next turn
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(got.load(), 3);  // the value was received
  EXPECT_THROW((void)h.join(), ra::operation_stopped);
  EXPECT_FALSE(rx.try_recv());  // and only once
}

// wait_until woken with its predicate still false goes round: a stop that
// came between the wake and the next turn ends that turn (the token is read
// at each turn; the relay's mark was left for it).
TEST(async_receive_relay, a_turn_after_a_spurious_wake_sees_the_stop) {
  ra::run_loop loop;
  ra::wake_sink sink;
  std::atomic<int> level{0};
  std::atomic<int> passed{0};
  auto body = [](ra::wake_sink& sink, std::atomic<int>& level, std::atomic<int>& passed) -> ra::task<> {
    for (int round = 1;; ++round) {
      co_await sink.wait_until([&] { return level.load() >= round; });
      passed.fetch_add(1);
    }
  };
  auto h = ra::spawn(loop.get_scheduler(), body(sink, level, passed));
  for (int i = 0; i < 3; ++i) {
    settle(loop);
    level.fetch_add(1);
    sink.source().notify();
    loop.run_until([&] { return passed.load() == i + 1; });
  }
  settle(loop);
  sink.source().notify();  // spurious: the poller is scheduled, the predicate is still false
  h.request_stop();
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(passed.load(), 3);
  EXPECT_THROW(h.join(), ra::operation_stopped);
  EXPECT_EQ(sink.get().state_for_testing() & ra::diatomic_waker::registered_bit, 0u);
}

// Tasks on a pool receive in a loop; other threads send to them and stop
// them at random moments. Every value is received once or left in its
// channel, and every task ends.
TEST(async_receive_relay, stops_racing_sends_on_a_pool_lose_and_double_nothing) {
  constexpr int tasks = 6;
  constexpr int sends = 3'000;
  ra::thread_pool pool(2);
  for (int round = 0; round < 4; ++round) {
    std::vector<rch::sender<int>> txs;
    std::vector<rch::receiver<int>> rxs;
    for (int t = 0; t < tasks; ++t) {
      auto [tx, rx] = rch::unbounded<int>();
      txs.push_back(std::move(tx));
      rxs.push_back(std::move(rx));
    }
    std::atomic<int> got[tasks] = {};
    std::vector<ra::join_handle<int>> hs;
    for (int t = 0; t < tasks; ++t) hs.push_back(ra::spawn(pool.get_scheduler(), recv_rounds(rxs[t], 1 << 30, got[t])));
    std::vector<std::thread> senders;
    for (int t = 0; t < tasks; ++t)
      senders.emplace_back([&, t] {
        for (int i = 0; i < sends; ++i) {
          ASSERT_TRUE(txs[t].try_send(i));
          if (i == sends / 3 + t * 131 % 1'000) hs[t].request_stop();
          if (i % 32 == 0) std::this_thread::yield();
        }
      });
    for (auto& th : senders) th.join();
    for (int t = 0; t < tasks; ++t) {
      EXPECT_THROW((void)hs[t].join(), ra::operation_stopped);
      int left = 0;
      while (rxs[t].try_recv()) ++left;
      EXPECT_EQ(got[t].load() + left, sends) << "task " << t;
    }
  }
}

// The same race with the spurious-wake turn: a waiter whose predicate is
// often false when woken (two notifies per step), stopped at random; it
// must end (a stop lost between turns would leave it asleep for good).
TEST(async_receive_relay, stops_racing_spurious_wakes_on_a_pool_always_end_the_wait) {
  ra::thread_pool pool(2);
  for (int round = 0; round < 200; ++round) {
    ra::wake_sink sink;
    std::atomic<int> level{0};
    std::atomic<int> passed{0};
    auto body = [](ra::wake_sink& sink, std::atomic<int>& level, std::atomic<int>& passed) -> ra::task<> {
      for (int step = 1;; ++step) {
        co_await sink.wait_until([&] { return level.load(std::memory_order_relaxed) >= 2 * step; });
        passed.fetch_add(1);
      }
    };
    auto h = ra::spawn(pool.get_scheduler(), body(sink, level, passed));
    std::thread stopper([&] {
      for (int i = 0; i < round % 37; ++i) std::this_thread::yield();
      h.request_stop();
    });
    for (int i = 0; i < 200 && !h.is_done(); ++i) {
      level.fetch_add(1, std::memory_order_relaxed);
      sink.source().notify();
    }
    stopper.join();
    EXPECT_THROW(h.join(), ra::operation_stopped) << "round " << round;  // join hangs if the stop was lost
  }
}

// A frame destroyed while its relayed receive sleeps: the channel keeps no
// registration of it; a later send stays in the channel, a later stop
// touches nothing (ASan).
TEST(async_receive_relay, a_frame_destroyed_while_its_relayed_receive_sleeps_leaves_cleanly) {
  ra::run_loop loop;
  auto [tx, rx] = rch::bounded<int>(4);
  std::atomic<int> got{0};
  ra::inplace_stop_source stop;
  {
    ra::task<int> d = recv_rounds(rx, 1'000, got);
    auto handle = d.handle();
    handle.promise().bind(std::noop_coroutine(), &loop, stop.get_token(), nullptr, nullptr);
    handle.resume();  // runs into its first receive
    send_rounds(loop, tx, got, 3);
    settle(loop);  // the fourth receive sleeps, armed in the relay
  }
  EXPECT_EQ(rx.waker_state_for_testing() & ra::diatomic_waker::registered_bit, 0u);
  ASSERT_TRUE(tx.try_send(1));
  stop.request_stop();  // no callback is left
  auto r = rx.try_recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(got.load(), 3);
}

// One relay per task: a thousand receives that each sleep allocate nothing
// (no stop callback of their own, no per-wait object).
TEST(async_receive_relay, receives_that_sleep_allocate_nothing) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  ra::run_loop loop;
  auto [tx, rx] = rch::bounded<int>(4);
  std::atomic<int> got{0};
  auto h = ra::spawn(loop.get_scheduler(), recv_rounds(rx, 1'010, got));
  send_rounds(loop, tx, got, 10);  // warm: the relay and the poller are made here
  long const before = rouse_test::allocations();
  send_rounds(loop, tx, got, 1'000);
  EXPECT_EQ(rouse_test::allocations() - before, 0);
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(h.join(), 1'010);
}

}  // namespace
}  // namespace async_receive_relay_test
