// rouse::async::latch: the count reaching zero releases every waiter (on its
// executor, never inside count_down), a released latch completes waits at
// once, arrive_and_wait counts down when called, cancellation (before, while
// waiting, after the release chose it; a destroyed frame leaves the list),
// threads and tasks on one latch, the timed forms (never early), zero
// allocations per wait, misuse.
#include "rouse/async/latch.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "async_test_loop.hpp"
#include "counting_new.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/timeout.hpp"

namespace async_latch_test {
namespace {
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

task<> wait_once(ra::latch& l, std::vector<int>& order, int id) {
  co_await l.wait();
  order.push_back(id);
}
task<> arrive_once(ra::latch& l, std::vector<int>& order, int id) {
  co_await l.arrive_and_wait();
  order.push_back(id);
}

TEST(async_latch, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::latch), 32u);
  EXPECT_EQ(sizeof(ra::latch::awaitable), 200u);
  EXPECT_GE(ra::latch::max(), std::ptrdiff_t{1} << 31);
}

TEST(async_latch, the_last_count_down_releases_every_waiter_on_its_executor_not_inside_the_call) {
  ra::latch l(3);
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(l, order, 1);
  auto b = wait_once(l, order, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  l.count_down();
  l.count_down();
  EXPECT_FALSE(l.try_wait());
  EXPECT_EQ(loop.drain(), 0);
  l.count_down();
  EXPECT_TRUE(l.try_wait());
  EXPECT_TRUE(order.empty());  // scheduled, not resumed inside count_down()
  EXPECT_EQ(loop.drain(), 2);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(async_latch, a_released_latch_completes_waits_at_once_and_zero_starts_released) {
  ra::latch zero(0);
  EXPECT_TRUE(zero.try_wait());
  ra::latch l(2);
  l.count_down(2);
  EXPECT_TRUE(l.try_wait());
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(zero, order, 1);
  auto b = wait_once(l, order, 2);
  a.start(loop);
  b.start(loop);
  EXPECT_EQ(loop.drain(), 2);  // the starts only: nobody suspended
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  l.count_down(0);  // a no-op, even on a released latch
}

TEST(async_latch, arrive_and_wait_counts_down_when_called) {
  ra::latch l(2);
  test_loop loop;
  std::vector<int> order;
  auto a = arrive_once(l, order, 1);
  a.start(loop);
  loop.drain();
  EXPECT_FALSE(a.finished());
  auto b = arrive_once(l, order, 2);
  b.start(loop);
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2, 1}));  // b found it released; a was woken
  EXPECT_TRUE(l.try_wait());
}

TEST(async_latch, a_stopped_waiter_leaves_and_the_release_still_frees_the_others) {
  ra::latch l(1);
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> order;
  auto a = wait_once(l, order, 1);
  auto b = wait_once(l, order, 2);
  a.start(loop, s.get_token());
  b.start(loop);
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  l.count_down();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2}));
}

TEST(async_latch, a_stop_after_the_release_chose_the_waiter_does_not_stop_it) {
  ra::latch l(1);
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> order;
  auto a = wait_once(l, order, 1);
  a.start(loop, s.get_token());
  loop.drain();
  l.count_down();     // claims a and schedules it
  s.request_stop();   // too late: the release won
  loop.drain();
  EXPECT_FALSE(a.threw_stopped());
  EXPECT_EQ(order, (std::vector<int>{1}));
}

TEST(async_latch, a_stop_requested_before_the_wait_completes_it_stopped_in_place) {
  ra::latch l(1);
  test_loop loop;
  ra::inplace_stop_source s;
  s.request_stop();
  int done = 0;
  auto t = [](ra::latch& l, int& done) -> task<true> {
    co_await l.wait();
    ++done;
  }(l, done);
  t.start(loop, s.get_token());
  loop.drain();
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(done, 0);
  l.count_down();
}

TEST(async_latch, a_frame_destroyed_while_queued_leaves_the_list) {
  auto* l = new ra::latch(1);
  test_loop loop;
  std::vector<int> order;
  {
    auto a = wait_once(*l, order, 1);
    a.start(loop);
    loop.drain();
    EXPECT_FALSE(a.finished());
  }  // destroyed while queued
  auto b = wait_once(*l, order, 2);
  b.start(loop);
  loop.drain();
  l->count_down();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2}));
  delete l;  // debug builds check that no waiter is left
}

TEST(async_latch, threads_and_tasks_wait_on_one_latch) {
  constexpr int threads = 3;
  ra::latch l(threads + 1);
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(l, order, 1);
  a.start(loop);
  loop.drain();
  std::atomic<int> through{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      l.arrive_and_wait_blocking();
      through.fetch_add(1);
    });
  std::thread waiter([&] { l.wait_blocking(); through.fetch_add(1); });
  l.count_down();
  for (auto& t : ts) t.join();
  waiter.join();
  EXPECT_EQ(through.load(), threads + 1);
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1}));
}

TEST(async_latch, the_latch_may_be_destroyed_by_the_waiter_it_released) {
  for (int round = 0; round < 200; ++round) {
    auto* l = new ra::latch(1);
    std::thread counter([l] { l->count_down(); });
    l->wait_blocking();
    delete l;  // the count_down may still be returning: it must not touch *l
    counter.join();
  }
}

TEST(async_latch, blocking_timed_waits_are_never_early) {
  ra::latch l(1);
  auto const start = clk::now();
  EXPECT_FALSE(l.wait_blocking_for(2ms));
  EXPECT_GE(clk::now() - start, 2ms);
  l.count_down();
  EXPECT_TRUE(l.wait_blocking_for(1h));
  EXPECT_TRUE(l.wait_blocking_until(clk::now() - 1s));
}

TEST(async_latch, wait_for_times_out_no_earlier_than_asked_and_leaves_the_list) {
  ra::latch l(1);
  ra::run_loop loop;
  for (auto d : {clk::duration(0), clk::duration(100us), clk::duration(3ms)}) {
    auto const r = loop.run_until_complete([](ra::latch& l, clk::duration d) -> ra::task<clk::duration> {
      auto const start = clk::now();
      bool const released = co_await l.wait_for(d);
      EXPECT_FALSE(released);
      co_return clk::now() - start;
    }(l, d));
    EXPECT_GE(r, d);
  }
  // A released latch: wait_for completes with true, with or without suspending.
  ra::latch ready(0);
  EXPECT_TRUE(loop.run_until_complete([](ra::latch& l) -> ra::task<bool> { co_return co_await l.wait_for(1h); }(ready)));
  EXPECT_TRUE(loop.run_until_complete([](ra::latch& l) -> ra::task<bool> {
    co_return co_await l.wait_until(clk::now() + 1h);
  }(ready)));
}

TEST(async_latch, wait_for_completes_true_when_released_before_the_timer) {
  ra::latch l(1);
  ra::run_loop loop;
  bool const r = loop.run_until_complete([](ra::latch& l) -> ra::task<bool> {
    std::thread t([&l] { l.count_down(); });
    bool const released = co_await l.wait_for(1h);
    t.join();
    co_return released;
  }(l));
  EXPECT_TRUE(r);
}

TEST(async_latch, the_outer_stop_token_still_stops_a_timed_wait) {
  ra::latch l(1);
  ra::inplace_stop_source s;
  std::atomic<bool> go{false};
  std::thread stopper([&] {
    while (!go.load()) std::this_thread::yield();
    s.request_stop();
  });
  auto body = [](ra::latch& l, std::atomic<bool>& go) -> ra::task<int> {
    go.store(true);
    (void)co_await l.wait_for(1h);
    co_return 1;  // not reached: the wait completes as stopped
  };
  std::optional<int> const r = ra::sync_wait(body(l, go), s.get_token());
  stopper.join();
  EXPECT_FALSE(r.has_value());
}

// ---- allocations ---------------------------------------------------------------


bare bare_wait(ra::latch& l) { co_await l.wait(); }

TEST(async_latch, a_wait_allocates_nothing) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  ra::latch l(1);
  ra::inplace_stop_source s;
  std::vector<bare> waits;
  waits.reserve(8);
  for (int i = 0; i < 8; ++i) {
    waits.push_back(bare_wait(l));
    waits.back().h.promise().token = s.get_token();
  }
  long const before = rouse_test::allocations();
  for (auto& w : waits) w.h.resume();  // each suspends in the list, with a stop callback
  l.count_down();                      // resumes them all, inline (no executor)
  long const after = rouse_test::allocations();
  EXPECT_EQ(after - before, 0);
  for (auto& w : waits) EXPECT_TRUE(w.h.promise().done);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_latch_death, counting_down_below_zero_is_diagnosed) {
  EXPECT_DEATH(
      {
        ra::latch l(1);
        l.count_down(2);
      },
      "rouse::async::latch: misuse: count_down below zero");
}
TEST(async_latch_death, destroying_a_latch_with_a_waiter_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* l = new ra::latch(1);
        test_loop loop;
        std::vector<int> order;
        auto t = wait_once(*l, order, 1);
        t.start(loop);
        loop.drain();
        delete l;
      },
      "rouse::async::latch: misuse: destroyed while a task or thread waits on it");
}
#endif

}  // namespace
}  // namespace async_latch_test
