// rouse::async::sleep_for / sleep_until: never early, no suspension for a
// deadline already passed, no overflow for huge durations, cancellation
// (before and while sleeping), thousands at once, and the no-executor error.
#include "rouse/async/sleep.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"

namespace async_sleep_test {
namespace {
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using rouse::async::operation_stopped;
using rouse::async::run_loop;
using rouse::async::sleep_for;
using rouse::async::sleep_until;
using rouse::async::task;

struct loop_thread {
  run_loop loop;
  std::thread t;
  loop_thread() : t([this] { loop.run(); }) {}
  loop_thread(const loop_thread&) = delete;
  ~loop_thread() {
    loop.finish();
    t.join();
  }
};

task<clk::duration> timed_sleep_for(clk::duration d) {
  auto const start = clk::now();
  co_await sleep_for(d);
  co_return clk::now() - start;
}

TEST(async_sleep, sleep_for_is_never_early) {
  run_loop loop;
  for (auto d : {clk::duration(1us), clk::duration(100us), clk::duration(1ms), clk::duration(3ms),
                 clk::duration(10ms)}) {
    EXPECT_GE(loop.run_until_complete(timed_sleep_for(d)), d);
  }
}

TEST(async_sleep, sleep_until_is_never_early) {
  run_loop loop;
  for (auto d : {0us, 50us, 2000us, 7000us}) {
    auto const deadline = clk::now() + d;
    auto const woke = loop.run_until_complete([](clk::time_point t) -> task<clk::time_point> {
      co_await sleep_until(t);
      co_return clk::now();
    }(deadline));
    EXPECT_GE(woke, deadline);
  }
}

TEST(async_sleep, zero_negative_and_past_deadlines_do_not_suspend) {
  EXPECT_TRUE(sleep_for(0s).await_ready());
  EXPECT_TRUE(sleep_for(-1s).await_ready());
  EXPECT_TRUE(sleep_for(-1ns).await_ready());
  EXPECT_TRUE(sleep_until(clk::now()).await_ready());
  EXPECT_TRUE(sleep_until(clk::now() - 1h).await_ready());
  EXPECT_TRUE(sleep_until(clk::time_point::min()).await_ready());
  // In a task: they complete without a trip through the loop's queue.
  run_loop loop;
  auto body = []() -> task<int> {
    co_await sleep_for(0s);
    co_await sleep_for(-5ms);
    co_await sleep_until(clk::now() - 1s);
    co_return 1;
  };
  auto h = rouse::async::spawn(loop, body());
  EXPECT_EQ(loop.run_once(), 1u);  // the task's start only
  EXPECT_TRUE(h.is_done());
  EXPECT_EQ(h.join(), 1);
}

TEST(async_sleep, huge_durations_do_not_overflow) {
  EXPECT_FALSE(sleep_for(std::chrono::nanoseconds::max()).await_ready());
  EXPECT_FALSE(sleep_for(std::chrono::duration<double>(1e300)).await_ready());
  EXPECT_FALSE(sleep_until(clk::time_point::max()).await_ready());
  EXPECT_FALSE(sleep_for(std::chrono::hours(24 * 365 * 100)).await_ready());
}

TEST(async_sleep, hours_max_does_not_overflow) {
  EXPECT_FALSE(sleep_for(std::chrono::hours::max()).await_ready());
  EXPECT_FALSE(sleep_for(std::chrono::seconds::max()).await_ready());
  EXPECT_FALSE(sleep_for(std::chrono::minutes::max()).await_ready());
}

// A deadline in a coarser duration than the clock's: taken as a steady
// nanosecond time_point, hours::max() (and 300 years from now) overflowed
// in the conversion and the sleep ended at once.
TEST(async_sleep, a_deadline_in_a_coarse_duration_does_not_overflow) {
  using hours_point = std::chrono::time_point<clk, std::chrono::hours>;
  EXPECT_FALSE(sleep_until(hours_point::max()).await_ready());
  EXPECT_FALSE(
      sleep_until(std::chrono::time_point_cast<std::chrono::hours>(clk::now()) + std::chrono::hours(24 * 365 * 300))
          .await_ready());
  EXPECT_TRUE(sleep_until(hours_point::min()).await_ready());
  EXPECT_TRUE(sleep_until(std::chrono::time_point_cast<std::chrono::hours>(clk::now()) - std::chrono::hours(2))
                  .await_ready());
  // Another clock: an hour ahead is not passed, an hour behind is.
  EXPECT_FALSE(sleep_until(std::chrono::system_clock::now() + 1h).await_ready());
  EXPECT_TRUE(sleep_until(std::chrono::system_clock::now() - 1h).await_ready());
  EXPECT_FALSE(sleep_until(std::chrono::system_clock::time_point::max()).await_ready());
}

task<int> sleeps(clk::duration d, std::atomic<int>& entered) {
  entered.fetch_add(1);
  co_await sleep_for(d);
  co_return 1;
}

TEST(async_sleep, a_stop_before_the_sleep_completes_it_stopped_at_once) {
  run_loop loop;
  rouse::async::inplace_stop_source src;
  src.request_stop();
  std::atomic<int> entered{0};
  EXPECT_THROW(loop.run_until_complete(sleeps(1h, entered), src.get_token()), operation_stopped);
  EXPECT_THROW(loop.run_until_complete(sleeps(clk::duration::max(), entered), src.get_token()), operation_stopped);
}

TEST(async_sleep, a_stop_while_sleeping_completes_it_stopped) {
  loop_thread lt;
  for (auto d : {clk::duration(1h), clk::duration::max()}) {
    std::atomic<int> entered{0};
    auto h = rouse::async::spawn(lt.loop, sleeps(d, entered));
    rouse_test::eventually([&] { return entered.load() == 1; });
    h.request_stop();
    EXPECT_THROW(h.join(), operation_stopped);
  }
}

TEST(async_sleep, a_stop_from_the_loops_own_thread_while_sleeping) {
  run_loop loop;
  std::atomic<int> entered{0};
  auto h = rouse::async::spawn(loop, sleeps(1h, entered));
  loop.run_once();
  ASSERT_EQ(entered.load(), 1);
  h.request_stop();  // the stop callback cancels the timer; the loop finishes the task
  loop.run_once();
  EXPECT_TRUE(h.is_done());
  EXPECT_THROW(h.join(), operation_stopped);
  loop.run_once();
}

TEST(async_sleep, thousands_of_concurrent_sleeps_all_fire_exactly_once) {
  loop_thread lt;
  constexpr int n = 5000;
  std::vector<std::atomic<int>> fired(n);
  std::atomic<int> early{0};
  rouse::async::task_scope scope;
  auto body = [](clk::duration d, std::atomic<int>& f, std::atomic<int>& e) -> task<> {
    auto const start = clk::now();
    co_await sleep_for(d);
    if (clk::now() - start < d) e.fetch_add(1);
    f.fetch_add(1);
  };
  for (int i = 0; i < n; ++i)
    scope.spawn(lt.loop.get_scheduler(), body(std::chrono::microseconds((i * 7919) % 20000), fired[i], early));
  scope.join_blocking();
  EXPECT_EQ(early.load(), 0);
  for (auto& f : fired) EXPECT_EQ(f.load(), 1);
}

// A foreign coroutine type without get_env.
struct bare_coro {
  struct promise_type {
    bare_coro get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};
bare_coro bare_sleeps(int& result) {
  try {
    co_await sleep_for(1ms);
    result = 1;
  } catch (const std::logic_error&) {
    result = 2;
  }
}

TEST(async_sleep, a_sleep_from_a_coroutine_without_executor_throws_logic_error) {
  int result = 0;
  bare_sleeps(result);  // on a thread no executor drives
  EXPECT_EQ(result, 2);
}

task<int> task_sleeps() {
  co_await sleep_for(1ms);
  co_return 1;
}
bare_coro bare_awaits_task(int& result) {
  try {
    result = co_await task_sleeps();  // the task has no executor either
  } catch (const std::logic_error&) {
    result = 2;
  }
}

TEST(async_sleep, a_sleep_in_a_task_without_executor_throws_logic_error) {
  int result = 0;
  bare_awaits_task(result);
  EXPECT_EQ(result, 2);
}

TEST(async_sleep, a_foreign_coroutine_on_a_loop_thread_sleeps_on_that_loop) {
  run_loop loop;
  int result = 0;
  bool started = false;
  auto starter = [&]() -> task<> {
    started = true;
    bare_sleeps(result);  // current_executor() is the loop
    co_return;
  };
  loop.run_until_complete(starter());
  ASSERT_TRUE(started);
  loop.run_until([&] { return result != 0; });
  EXPECT_EQ(result, 1);
}

// A foreign coroutine with a std::stop_token and a scheduler in its env:
// a stop makes the sleep throw operation_stopped (no unhandled_stopped()).
struct std_env {
  std::stop_token token;
  rouse::async::executor* ex;
  std::stop_token query(rouse::async::get_stop_token_t) const noexcept { return token; }
  rouse::async::scheduler query(rouse::async::get_scheduler_t) const noexcept { return rouse::async::scheduler(*ex); }
};
struct env_coro {
  struct promise_type {
    std::stop_token token;
    rouse::async::executor* ex = nullptr;
    env_coro get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
    std_env get_env() const noexcept { return {token, ex}; }
  };
  std::coroutine_handle<promise_type> h;
};
env_coro env_sleeps(std::atomic<int>& state) {
  state.store(1);
  try {
    co_await sleep_for(1h);
    state.store(2);
  } catch (const operation_stopped&) {
    state.store(3);
  }
}

TEST(async_sleep, a_std_stop_token_stops_a_foreign_coroutines_sleep) {
  std::stop_source src;
  std::atomic<int> state{0};
  env_coro c = env_sleeps(state);
  {
    loop_thread lt;
    c.h.promise().token = src.get_token();
    c.h.promise().ex = &lt.loop;
    c.h.resume();
    EXPECT_EQ(state.load(), 1);
    src.request_stop();
    rouse_test::eventually([&] { return state.load() == 3; });
  }  // the loop's thread has finished running it
  EXPECT_TRUE(c.h.done());
  c.h.destroy();
}

TEST(async_sleep, destroying_a_sleeping_coroutine_withdraws_its_timer) {
  std::stop_source src;
  std::atomic<int> state{0};
  {
    run_loop loop;  // the loop's destructor would diagnose a timer left behind
    env_coro c = env_sleeps(state);
    c.h.promise().token = src.get_token();
    c.h.promise().ex = &loop;
    c.h.resume();
    EXPECT_EQ(state.load(), 1);
    c.h.destroy();
    src.request_stop();  // the stop callback is gone too: nothing runs
    loop.run_once();
  }
  EXPECT_EQ(state.load(), 1);
}

}  // namespace
}  // namespace async_sleep_test
