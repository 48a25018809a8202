// rouse::async::channel::oneshot: one value, once; the sender used up by its
// send; a sender dropped unsent closes; a receiver gone hands the value back;
// a task and a thread on the two ends; timeouts never early; a stopped recv
// takes nothing; counted values made and destroyed exactly once.
#include "rouse/async/oneshot.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "async_test_loop.hpp"
#include "counted.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/task.hpp"

namespace async_oneshot_test {
namespace {
namespace ch = rouse::async::channel;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using rouse::channel::status;
using rouse_test::counted;
using rouse_test::counted_scope;

TEST(async_oneshot, sizes_are_documented) {
  EXPECT_EQ(sizeof(ch::oneshot_sender<int>), sizeof(void*));
  EXPECT_EQ(sizeof(ch::oneshot_receiver<int>), sizeof(void*));
}

TEST(async_oneshot, the_value_then_closed) {
  counted_scope scope;
  auto pair_31 = ch::oneshot<counted>();
  auto& tx = pair_31.first;
  auto& rx = pair_31.second;
  EXPECT_EQ(rx.try_recv().status(), status::empty);
  EXPECT_TRUE(tx.send(counted(4)));
  EXPECT_FALSE(tx);
  EXPECT_EQ(rx.try_recv()->value, 4);
  EXPECT_EQ(rx.try_recv().status(), status::closed);
}

TEST(async_oneshot, a_sender_dropped_unsent_closes) {
  auto pair_40 = ch::oneshot<int>();
  auto& tx = pair_40.first;
  auto& rx = pair_40.second;
  { auto gone = std::move(tx); }
  EXPECT_EQ(rx.recv_blocking().status(), status::closed);
}

TEST(async_oneshot, a_receiver_gone_hands_the_value_back) {
  counted_scope scope;
  auto pair_47 = ch::oneshot<counted>();
  auto& tx = pair_47.first;
  auto& rx = pair_47.second;
  { auto gone = std::move(rx); }
  EXPECT_TRUE(tx.is_closed());
  auto r = tx.send(counted(5));
  EXPECT_EQ(r.status(), status::closed);
  EXPECT_EQ(r.value().value, 5);
}

TEST(async_oneshot, a_task_awaits_a_thread_reply) {
  rouse::async::run_loop loop;
  auto pair_57 = ch::oneshot<int>();
  auto& tx = pair_57.first;
  auto& rx = pair_57.second;
  std::thread t([tx = std::move(tx)]() mutable {
    std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(tx.send(9));
  });
  auto v = loop.run_until_complete([](ch::oneshot_receiver<int>& rx) -> rouse::async::task<int> {
    auto r = co_await rx.recv();
    co_return *r;
  }(rx));
  EXPECT_EQ(v, 9);
  t.join();
}

TEST(async_oneshot, a_thread_waits_for_a_task_reply) {
  rouse::async::run_loop loop;
  auto pair_72 = ch::oneshot<int>();
  auto& tx = pair_72.first;
  auto& rx = pair_72.second;
  std::thread t([&rx] { EXPECT_EQ(*rx.recv_blocking(), 11); });
  loop.run_until_complete([](ch::oneshot_sender<int> tx) -> rouse::async::task<> {
    EXPECT_TRUE(tx.send(11));
    co_return;
  }(std::move(tx)));
  t.join();
}

TEST(async_oneshot, timeouts_are_never_early) {
  rouse::async::run_loop loop;
  auto pair_83 = ch::oneshot<int>();
  auto& tx = pair_83.first;
  auto& rx = pair_83.second;
  for (std::chrono::microseconds d : {0us, 300us, 2000us}) {
    auto const start = clk::now();
    EXPECT_EQ(rx.recv_blocking_for(d).status(), status::timed_out);
    EXPECT_GE(clk::now() - start, d);
    auto const start2 = clk::now();
    auto s = loop.run_until_complete([](ch::oneshot_receiver<int>& rx, clk::duration d) -> rouse::async::task<status> {
      co_return (co_await rx.recv_for(d)).status();
    }(rx, d));
    EXPECT_EQ(s, status::timed_out);
    EXPECT_GE(clk::now() - start2, d);
  }
  EXPECT_TRUE(tx.send(1));
  EXPECT_EQ(*rx.recv_blocking_for(1h), 1);
}

task<> recv_into(ch::oneshot_receiver<counted>& rx, long& got) {
  auto r = co_await rx.recv();
  if (r) got = r->value;
}

TEST(async_oneshot, a_stopped_recv_takes_nothing) {
  counted_scope scope;
  test_loop loop;
  auto pair_107 = ch::oneshot<counted>();
  auto& tx = pair_107.first;
  auto& rx = pair_107.second;
  long got = 0;
  ra::inplace_stop_source s;
  auto a = recv_into(rx, got);
  a.start(loop, s.get_token());
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  EXPECT_TRUE(tx.send(counted(3)));
  EXPECT_EQ(got, 0);
  EXPECT_EQ(rx.try_recv()->value, 3);
}

}  // namespace
}  // namespace async_oneshot_test
