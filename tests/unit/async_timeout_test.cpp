// rouse::async::with_timeout / with_deadline: the result types (void ->
// bool, T -> optional<T>), never early, a timed-out wait leaves its list and
// takes nothing (a later notification is stored, not lost), a completion
// that beats the timer keeps its value, exceptions go through, the outer
// stop token still stops the operation (completing as stopped), a stop
// already requested, the three shapes (waiter-list awaitable, task, any
// other awaitable), zero allocations for a waiter-list awaitable, and the
// no-executor error.
#include "rouse/async/timeout.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "rouse/async/blocking.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/latch.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/semaphore.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"

#include "counting_new.hpp"
#include "rouse/latch.hpp"

namespace async_timeout_test {
namespace {
namespace ra = rouse::async;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using ra::task;

static_assert(std::is_same_v<ra::timeout_result_t<void>, bool>);
static_assert(std::is_same_v<ra::timeout_result_t<int>, std::optional<int>>);

TEST(async_timeout, a_void_wait_yields_false_on_timeout_never_early) {
  ra::run_loop loop;
  ra::notify n;
  for (auto d : {clk::duration(0), clk::duration(50us), clk::duration(2ms)}) {
    auto const took = loop.run_until_complete([](ra::notify& n, clk::duration d) -> task<clk::duration> {
      auto const start = clk::now();
      bool const notified = co_await ra::with_timeout(n.notified(), d);
      EXPECT_FALSE(notified);
      co_return clk::now() - start;
    }(n, d));
    EXPECT_GE(took, d);
  }
}

TEST(async_timeout, with_deadline_is_never_early) {
  ra::run_loop loop;
  ra::manual_reset_event ev;
  auto const deadline = clk::now() + 3ms;
  auto const woke = loop.run_until_complete([](ra::manual_reset_event& ev, clk::time_point t) -> task<clk::time_point> {
    bool const set = co_await ra::with_deadline(ev.wait(), t);
    EXPECT_FALSE(set);
    co_return clk::now();
  }(ev, deadline));
  EXPECT_GE(woke, deadline);
  // Another clock's deadline is converted once.
  EXPECT_FALSE(loop.run_until_complete([](ra::manual_reset_event& ev) -> task<bool> {
    co_return co_await ra::with_deadline(ev.wait(), std::chrono::system_clock::now() + 1ms);
  }(ev)));
}

TEST(async_timeout, a_timed_out_waiter_leaves_the_list_and_a_later_notify_is_stored) {
  ra::run_loop loop;
  ra::notify n;
  EXPECT_FALSE(loop.run_until_complete([](ra::notify& n) -> task<bool> {
    co_return co_await ra::with_timeout(n.notified(), 1ms);
  }(n)));
  n.notify_one();  // nobody waits: stored as the permit, not given to a gone waiter
  EXPECT_TRUE(n.wait_blocking_for(0s));
}

TEST(async_timeout, a_completion_before_the_timer_yields_true_and_a_ready_op_never_suspends) {
  ra::run_loop loop;
  ra::notify n;
  n.notify_one();
  EXPECT_TRUE(loop.run_until_complete([](ra::notify& n) -> task<bool> {
    co_return co_await ra::with_timeout(n.notified(), 0s);  // ready at once: the permit
  }(n)));
  ra::latch l(1);
  EXPECT_TRUE(loop.run_until_complete([](ra::latch& l) -> task<bool> {
    std::thread t([&l] { l.count_down(); });
    bool const r = co_await ra::with_timeout(l.wait(), 1h);
    t.join();
    co_return r;
  }(l)));
}

task<int> answer_after(ra::manual_reset_event& ev, int v) {
  co_await ev.wait();
  co_return v;
}
task<int> answer_now(int v) { co_return v; }
task<int> throws_now() {
  throw std::runtime_error("boom");
  co_return 0;
}
TEST(async_timeout, a_task_yields_its_value_or_nullopt_and_is_cancelled_through_its_stop_token) {
  ra::run_loop loop;
  ra::manual_reset_event never;
  std::optional<int> const timed_out = loop.run_until_complete([](ra::manual_reset_event& ev) -> task<std::optional<int>> {
    co_return co_await ra::with_timeout(answer_after(ev, 7), 1ms);
  }(never));
  EXPECT_FALSE(timed_out.has_value());
  ra::manual_reset_event set(true);
  std::optional<int> const value = loop.run_until_complete([](ra::manual_reset_event& ev) -> task<std::optional<int>> {
    co_return co_await ra::with_timeout(answer_after(ev, 7), 1h);
  }(set));
  EXPECT_EQ(value, 7);
  // A value produced before the timer had a chance is kept, even with no time at all.
  EXPECT_EQ(loop.run_until_complete([]() -> task<std::optional<int>> {
    co_return co_await ra::with_timeout(answer_now(5), 0s);
  }()),
            5);
  // `never` is destroyed at the end of the test: debug builds check that the
  // timed-out task's wait left its list.
}

// A deadline already passed arms no timer: the operation starts with its
// stop requested, completes with what is ready at once, and otherwise as
// timed out without waiting (no timer would end a wait of an hour here)
// and without taking anything (its list, its permits, its task are as
// before).
TEST(async_timeout, a_deadline_already_passed_starts_the_operation_stopped) {
  ra::run_loop loop;
  auto const past = clk::now() - 1ms;
  ra::notify n;
  EXPECT_FALSE(loop.run_until_complete([](ra::notify& n, clk::time_point t) -> task<bool> {
    co_return co_await ra::with_deadline(n.notified(), t);
  }(n, past)));
  n.notify_one();  // stored: the timed-out wait left nothing in the list to take it
  EXPECT_TRUE(loop.run_until_complete([](ra::notify& n) -> task<bool> {
    co_return co_await ra::with_timeout(n.notified(), 0s);  // ready at once: completes
  }(n)));
  ra::semaphore sem(0);
  EXPECT_FALSE(loop.run_until_complete([](ra::semaphore& s) -> task<bool> {
    co_return (co_await ra::with_timeout(s.acquire(), -1s)).has_value();
  }(sem)));
  sem.release(1);
  EXPECT_FALSE(sem.try_acquire(2));
  EXPECT_TRUE(sem.try_acquire(1));  // the permit was there for the next
  ra::manual_reset_event never;
  EXPECT_EQ(loop.run_until_complete([](ra::manual_reset_event& ev, clk::time_point t) -> task<std::optional<int>> {
    co_return co_await ra::with_deadline(answer_after(ev, 7), t);
  }(never, past)),
            std::nullopt);
  EXPECT_EQ(loop.run_until_complete([]() -> task<std::optional<int>> {
    co_return co_await ra::with_timeout(answer_now(5), 0s);
  }()),
            5);
  EXPECT_EQ(loop.run_until_complete([]() -> task<std::optional<int>> {
    co_return co_await ra::with_timeout(
        []() -> task<int> {
          co_await ra::sleep_for(1h);
          co_return 1;
        }(),
        0s);
  }()),
            std::nullopt);
  // A join: timed out at once, its task runs on, detached, to its end.
  ra::manual_reset_event go;
  std::atomic<bool> ended{false};
  auto h = ra::spawn(loop, [](ra::manual_reset_event& ev, std::atomic<bool>& e) -> task<int> {
    co_await ev.wait();
    e = true;
    co_return 3;
  }(go, ended));
  EXPECT_EQ(loop.run_until_complete([](ra::join_handle<int> j) -> task<std::optional<int>> {
    co_return co_await ra::with_timeout(std::move(j), 0s);
  }(std::move(h))),
            std::nullopt);
  EXPECT_FALSE(ended.load());
  go.set();
  loop.run_until_complete([]() -> task<> { co_return; }());
  EXPECT_TRUE(ended.load());
}

TEST(async_timeout, an_exception_of_the_operation_is_rethrown) {
  ra::run_loop loop;
  EXPECT_THROW(loop.run_until_complete([]() -> task<std::optional<int>> {
    co_return co_await ra::with_timeout(throws_now(), 1h);
  }()),
               std::runtime_error);
}

TEST(async_timeout, any_other_awaitable_is_awaited_in_a_task) {
  ra::run_loop loop;
  EXPECT_FALSE(loop.run_until_complete([]() -> task<bool> {
    co_return co_await ra::with_timeout(ra::sleep_for(1h), 1ms);
  }()));
  EXPECT_TRUE(loop.run_until_complete([]() -> task<bool> {
    co_return co_await ra::with_timeout(ra::sleep_for(0s), 1h);
  }()));
  // A semaphore's acquire (its own awaitable type): a timed-out acquire takes
  // no permit; a released one is there for the next acquire.
  ra::semaphore s(0);
  EXPECT_FALSE(loop.run_until_complete([](ra::semaphore& s) -> task<bool> {
    auto p = co_await ra::with_timeout(s.acquire(1), 1ms);
    co_return p.has_value();
  }(s)));
  s.release(1);
  EXPECT_TRUE(loop.run_until_complete([](ra::semaphore& s) -> task<bool> {
    auto p = co_await ra::with_timeout(s.acquire(1), 1h);
    co_return p.has_value() && static_cast<bool>(*p);
  }(s)));
}

TEST(async_timeout, the_outer_stop_token_still_stops_the_operation_as_stopped) {
  for (int shape = 0; shape < 3; ++shape) {
    ra::manual_reset_event never;
    ra::inplace_stop_source s;
    std::atomic<bool> go{false};
    std::thread stopper([&] {
      while (!go.load()) std::this_thread::yield();
      s.request_stop();
    });
    auto body = [](ra::manual_reset_event& ev, std::atomic<bool>& go, int shape) -> task<int> {
      go.store(true);
      if (shape == 0) (void)co_await ra::with_timeout(ev.wait(), 1h);
      if (shape == 1) (void)co_await ra::with_timeout(answer_after(ev, 1), 1h);
      if (shape == 2) (void)co_await ra::with_timeout(ra::sleep_for(1h), 1h);
      co_return 1;  // not reached: completes as stopped
    };
    std::optional<int> const r = ra::sync_wait(body(never, go, shape), s.get_token());
    stopper.join();
    EXPECT_FALSE(r.has_value()) << shape;
  }
}

TEST(async_timeout, a_stop_requested_before_the_co_await_completes_it_stopped_at_once) {
  ra::manual_reset_event never;
  ra::inplace_stop_source s;
  s.request_stop();
  auto body = [](ra::manual_reset_event& ev) -> task<int> {
    (void)co_await ra::with_timeout(ev.wait(), 1h);
    co_return 1;
  };
  EXPECT_FALSE(ra::sync_wait(body(never), s.get_token()).has_value());
}

TEST(async_timeout, a_frame_destroyed_while_it_waits_withdraws_timer_and_waiter) {
  ra::run_loop loop;
  ra::notify n;
  {
    auto t = [](ra::notify& n) -> task<bool> { co_return co_await ra::with_timeout(n.notified(), 1h); }(n);
    auto h = t.handle();
    h.promise().bind(std::noop_coroutine(), &loop, {}, nullptr, nullptr);
    ra::current_executor_scope scope(&loop);
    h.resume();  // suspends in the notify's list, with a timer on the loop
    EXPECT_FALSE(h.done());
  }  // the task (and its frame) is destroyed here
  n.notify_one();  // stored: the destroyed waiter left the list
  EXPECT_TRUE(n.wait_blocking_for(0s));
}

// The same for rouse's awaitables that are not waiter-list ones (sleep,
// awaiting a blocking primitive): they are moved into the frame that
// awaits them, so the frame destroyed while it waits withdraws them before
// the with_timeout's stop source goes (awaited where they were, their stop
// callback outlived the source: a misuse abort in debug builds).
template <class MakeOp>
void destroy_while_waiting_in_with_timeout(MakeOp make_op) {
  ra::run_loop loop;
  {
    auto t = [](MakeOp make_op) -> task<bool> {
      auto r = co_await ra::with_timeout(make_op(), 1h);
      co_return static_cast<bool>(r);
    }(make_op);
    auto h = t.handle();
    h.promise().bind(std::noop_coroutine(), &loop, {}, nullptr, nullptr);
    ra::current_executor_scope scope(&loop);
    h.resume();  // waits, with the with_timeout's timer on the loop
    EXPECT_FALSE(h.done());
  }  // the task (and its frame) is destroyed here
  loop.run_once();  // nothing of it is left to run
}

TEST(async_timeout, a_frame_destroyed_in_with_timeout_of_a_sleep_withdraws_it) {
  destroy_while_waiting_in_with_timeout([] { return ra::sleep_for(1h); });
}

TEST(async_timeout, a_frame_destroyed_in_with_timeout_of_a_blocking_wait_withdraws_it) {
  static rouse::latch l(1);
  destroy_while_waiting_in_with_timeout([] { return ra::wait(l); });
  l.count_down();  // no waiter is left on the latch's word
  EXPECT_TRUE(l.try_wait());
}

TEST(async_timeout, a_waiter_list_awaitable_allocates_nothing) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  ra::run_loop loop;
  ra::notify n;
  long const allocated = loop.run_until_complete([](ra::notify& n) -> task<long> {
    (void)co_await ra::with_timeout(n.notified(), 10us);  // warms the loop up
    long const before = rouse_test::allocations();
    for (int i = 0; i < 10; ++i) (void)co_await ra::with_timeout(n.notified(), 10us);
    co_return rouse_test::allocations() - before;
  }(n));
  EXPECT_EQ(allocated, 0);
}

TEST(async_timeout, timeouts_race_completions_without_losing_a_notification) {
  // One permit at a time goes to tasks that wait with short timeouts: each
  // must be received exactly once (a lost one hangs the producer, CTest's
  // timeout fails it; a doubled one shows in the count).
  ra::thread_pool pool(2);
  ra::notify n;
  constexpr int notifications = 1000;
  std::atomic<int> received{0};
  std::atomic<bool> done{false};
  std::vector<ra::join_handle<void>> hs;
  for (int i = 0; i < 4; ++i)
    hs.push_back(ra::spawn(pool.get_scheduler(),
                           [](ra::notify& n, std::atomic<int>& received, std::atomic<bool>& done) -> task<> {
                             while (!done.load())
                               if (co_await ra::with_timeout(n.notified(), 20us)) received.fetch_add(1);
                           }(n, received, done)));
  for (int i = 1; i <= notifications; ++i) {
    n.notify_one();
    while (received.load() < i) std::this_thread::yield();
  }
  done.store(true);
  for (auto& h : hs) h.join();
  EXPECT_EQ(received.load(), notifications);
  EXPECT_FALSE(n.wait_blocking_for(0s));  // nothing left over
}

// A task awaited under with_timeout moves to another executor and is timed
// out there: the awaiting task continues on its own executor, as after any
// co_await (the timed-out child completes as stopped on the pool, and its
// stopped path once resumed the awaiter there). The second test times out
// a chain whose innermost task moved: the stop passes a task that did not.
TEST(async_timeout, a_timed_out_task_that_moved_resumes_its_awaiter_on_the_awaiters_executor) {
  ra::thread_pool pool(2);
  ra::run_loop loop;
  auto child = [](ra::scheduler other) -> task<int> {
    co_await other.schedule();     // the child moves to the pool
    co_await ra::sleep_for(1h);    // and is timed out there
    co_return 1;
  };
  int const off_home = loop.run_until_complete([](ra::scheduler other, ra::executor* home, auto child) -> task<int> {
    int off = 0;
    for (int i = 0; i < 20; ++i) {
      std::optional<int> const r = co_await ra::with_timeout(child(other), 100us);
      EXPECT_FALSE(r.has_value());
      if (ra::current_executor() != home) ++off;
    }
    co_return off;
  }(pool.get_scheduler(), &loop, child));
  EXPECT_EQ(off_home, 0);
}

TEST(async_timeout, a_timed_out_chain_whose_innermost_task_moved_resumes_the_awaiter_at_home) {
  ra::thread_pool pool(2);
  ra::run_loop loop;
  auto child = [](ra::scheduler other) -> task<int> {
    co_await other.schedule();  // only the innermost task moves
    co_await ra::sleep_for(1h);
    co_return 1;
  };
  auto middle = [](ra::scheduler other, auto child) -> task<int> { co_return co_await child(other); };
  int const off_home = loop.run_until_complete([](ra::scheduler other, ra::executor* home, auto middle,
                                                  auto child) -> task<int> {
    int off = 0;
    for (int i = 0; i < 20; ++i) {
      std::optional<int> const r = co_await ra::with_timeout(middle(other, child), 100us);
      EXPECT_FALSE(r.has_value());
      if (ra::current_executor() != home) ++off;
    }
    co_return off;
  }(pool.get_scheduler(), &loop, middle, child));
  EXPECT_EQ(off_home, 0);
}

TEST(async_timeout, without_an_executor_the_co_await_throws_logic_error) {
  struct bare {
    struct promise_type {
      std::exception_ptr error;
      bare get_return_object() { return bare{std::coroutine_handle<promise_type>::from_promise(*this)}; }
      std::suspend_always initial_suspend() noexcept { return {}; }
      std::suspend_always final_suspend() noexcept { return {}; }
      void return_void() {}
      void unhandled_exception() { error = std::current_exception(); }
    };
    std::coroutine_handle<promise_type> h;
  };
  ra::notify n;
  auto b = [](ra::notify& n) -> bare { (void)co_await ra::with_timeout(n.notified(), 1ms); }(n);
  b.h.resume();
  ASSERT_TRUE(b.h.promise().error != nullptr);
  EXPECT_THROW(std::rethrow_exception(b.h.promise().error), std::logic_error);
  b.h.destroy();
}

// A coroutine that is not a rouse task (no unhandled_stopped()) sees a
// stopped with_timeout as operation_stopped thrown from the co_await: the
// timer must be withdrawn then too (it lived on in the executor, in a frame
// that could be freed: a use-after-free when it fired).
namespace foreign_stop {

// Counts the timers added to and withdrawn from a run_loop.
class counting_executor final : public ra::executor {
 public:
  explicit counting_executor(ra::run_loop& l) noexcept : loop_(l) {}
  void schedule(std::coroutine_handle<> h) noexcept override { loop_.schedule(h); }
  void add_timer(ra::timer_entry& e) noexcept override {
    ++added;
    loop_.add_timer(e);
  }
  bool cancel_timer(ra::timer_entry& e) noexcept override {
    ++withdrawn;
    return loop_.cancel_timer(e);
  }
  int added = 0;
  int withdrawn = 0;

 private:
  ra::run_loop& loop_;
};

struct co {
  struct promise_type {
    counting_executor* ex;
    ra::inplace_stop_token token;
    bool threw_stopped = false;
    struct env {
      counting_executor* ex;
      ra::inplace_stop_token token;
      ra::scheduler query(ra::get_scheduler_t) const noexcept { return ra::scheduler(*ex); }
      ra::inplace_stop_token query(ra::get_stop_token_t) const noexcept { return token; }
    };
    template <class... A>
    promise_type(counting_executor& e, ra::inplace_stop_token t, A&...) noexcept : ex(&e), token(t) {}
    env get_env() const noexcept { return {ex, token}; }
    co get_return_object() { return co{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

ra::task<int> waits_for(ra::notify& n) {
  co_await n.notified();
  co_return 1;
}

// Completes its awaiting rouse task as stopped.
struct stop_here {
  using rouse_affine = void;
  static constexpr bool await_ready() noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
    return h.promise().unhandled_stopped();
  }
  static constexpr void await_resume() noexcept {}
};
ra::task<int> ends_stopped() {
  co_await stop_here{};
  co_return 0;
}

// 0: a waiter-list operation stopped from outside; 1: a task stopped from
// outside; 2: a task that completes as stopped by itself.
co body(counting_executor&, ra::inplace_stop_token, int mode, ra::notify& n, bool& threw) {
  try {
    if (mode == 0) {
      bool const r = co_await ra::with_timeout(n.notified(), 1h);
      (void)r;
    } else if (mode == 1) {
      auto const r = co_await ra::with_timeout(waits_for(n), 1h);
      (void)r;
    } else {
      auto const r = co_await ra::with_timeout(ends_stopped(), 1h);
      (void)r;
    }
  } catch (const ra::operation_stopped&) {
    threw = true;
  }
}

}  // namespace foreign_stop

TEST(async_timeout, a_stopped_with_timeout_in_a_foreign_coroutine_withdraws_its_timer) {
  using namespace foreign_stop;
  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE(mode);
    ra::run_loop loop;
    counting_executor ex(loop);
    ra::inplace_stop_source source;
    ra::notify n;
    bool threw = false;
    co c = body(ex, source.get_token(), mode, n, threw);
    {
      ra::current_executor_scope on(&loop);
      c.h.resume();  // arms the timer; modes 0 and 1 wait
    }
    if (mode != 2) source.request_stop();
    while (!c.h.done()) loop.run_once();
    EXPECT_TRUE(threw);
    EXPECT_EQ(ex.added, 1);
    EXPECT_EQ(ex.withdrawn, 1);  // was 0: the timer stayed in the loop
    c.h.destroy();
  }
}

// A task chain with a coroutine without an executor in the middle: the
// timer's stop completes the leaf, that coroutine resumes inline (no
// executor), and the chain runs on to with_timeout's await_resume inside the
// timer's fire. Its disarm waited for that fire to finish, up its own stack
// (a hang); it tells the fire to touch nothing more instead.
namespace inline_fire {

struct executorless {  // forwards its awaiter's stop token; names no executor
  struct promise_type {
    std::exception_ptr error;
    std::coroutine_handle<> awaiter;
    ra::inplace_stop_token token;
    struct env {
      ra::inplace_stop_token t;
      ra::inplace_stop_token query(ra::get_stop_token_t) const noexcept { return t; }
    };
    env get_env() const noexcept { return {token}; }
    executorless get_return_object() { return executorless{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct to_awaiter {
      static constexpr bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().awaiter;
      }
      static constexpr void await_resume() noexcept {}
    };
    to_awaiter final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { error = std::current_exception(); }
  };
  explicit executorless(std::coroutine_handle<promise_type> x) : h(x) {}
  executorless(executorless&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~executorless() {
    if (h) h.destroy();
  }
  static constexpr bool await_ready() noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> c) {
    h.promise().awaiter = c;
    h.promise().token = ra::get_stop_token(ra::get_env(c.promise()));
    return h;
  }
  void await_resume() {
    if (h.promise().error) std::rethrow_exception(h.promise().error);
  }
  std::coroutine_handle<promise_type> h;
};

task<> leaf(ra::manual_reset_event& never) { co_await never.wait(); }
executorless middle(ra::manual_reset_event& never) { co_await leaf(never); }
task<> upper(ra::manual_reset_event& never) { co_await middle(never); }

// Two levels with one deadline, each awaited by a coroutine without an
// executor: both timers expire in one round of the loop, and the inner's
// fire completes the outer with_deadline inline, before the outer's own fire.
executorless inner_level(ra::manual_reset_event& never, clk::time_point t) {
  (void)co_await ra::with_deadline(upper(never), t);  // throws operation_stopped
}
executorless outer_level(ra::manual_reset_event& never, clk::time_point t, bool& stopped) {
  try {
    (void)co_await ra::with_deadline(inner_level(never, t), t);
  } catch (const ra::operation_stopped&) {
    stopped = true;
  }
}

}  // namespace inline_fire

TEST(async_timeout, a_timeout_whose_stop_completes_the_chain_inline_in_the_fire_does_not_hang) {
  using namespace inline_fire;
  ra::manual_reset_event never;
  ra::run_loop loop;
  for (int round = 0; round < 3; ++round) {
    // The foreign coroutine turns the leaf's stop into operation_stopped (it
    // has no unhandled_stopped()), and with_timeout rethrows the exception.
    EXPECT_THROW(loop.run_until_complete([](ra::manual_reset_event& nv) -> task<bool> {
      co_return co_await ra::with_timeout(upper(nv), 1ms);
    }(never)),
                 ra::operation_stopped);
  }
}

TEST(async_timeout, a_fire_that_completes_another_timeout_of_its_round_inline_does_not_hang) {
  using namespace inline_fire;
  ra::manual_reset_event never;
  ra::run_loop loop;
  for (int round = 0; round < 3; ++round) {
    bool const stopped = loop.run_until_complete([](ra::manual_reset_event& nv) -> task<bool> {
      bool s = false;
      co_await outer_level(nv, clk::now() + 1ms, s);
      co_return s;
    }(never));
    EXPECT_TRUE(stopped);
  }
}

TEST(async_timeout, a_fire_that_completes_another_timeout_of_its_round_inline_does_not_hang_on_a_pool) {
  using namespace inline_fire;
  ra::manual_reset_event never;
  ra::thread_pool pool(2);
  for (int round = 0; round < 20; ++round) {
    ra::join_handle<bool> h = ra::spawn(pool.get_scheduler(), [](ra::manual_reset_event& nv) -> task<bool> {
      bool s = false;
      co_await outer_level(nv, clk::now() + 1ms, s);
      co_return s;
    }(never));
    EXPECT_TRUE(h.join());
  }
}

}  // namespace
}  // namespace async_timeout_test
