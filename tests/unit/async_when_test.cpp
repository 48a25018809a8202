// rouse::async::when_all / when_any: values, void, errors (cancel the rest,
// rethrow once all are done), stopped, the first wins and the losers are
// stopped and awaited, nesting, and an outside stop reaching every child.
#include "rouse/async/when.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>

#include "eventually.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/timeout.hpp"

namespace async_when_test {
namespace {
using namespace std::chrono_literals;
using rouse::async::operation_stopped;
using rouse::async::run_loop;
using rouse::async::sleep_for;
using rouse::async::task;
using rouse::async::when_all;
using rouse::async::when_any;

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

struct frame_guard {
  std::atomic<int>* n;
  ~frame_guard() { n->fetch_add(1); }
};

task<int> value(int v) { co_return v; }
task<std::string> text(std::string s) {
  co_await sleep_for(0ms);
  co_return s;
}
task<> nothing(int* ran) {
  ++*ran;
  co_return;
}
task<int> after(std::chrono::microseconds d, int v) {
  co_await sleep_for(d);
  co_return v;
}
task<int> sleeps_forever(std::atomic<int>& entered, std::atomic<int>& destroyed) {
  frame_guard g{&destroyed};
  entered.fetch_add(1);
  co_await sleep_for(1h);
  co_return -1;
}
task<int> throws_after(std::chrono::microseconds d) {
  co_await sleep_for(d);
  throw std::runtime_error("child failed");
}
task<int> throws_now() {
  throw std::runtime_error("child failed at once");
  co_return 0;
}
// Completes its awaiting task as stopped, on its own (C++26's convention).
struct stop_now {
  using rouse_affine = void;
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
    return h.promise().unhandled_stopped();
  }
  void await_resume() const noexcept {}
};
task<int> stops_by_itself() {
  co_await stop_now{};
  co_return 0;
}

TEST(async_when, when_all_returns_every_value_including_void) {
  run_loop loop;
  int ran = 0;
  auto [a, s, v] = loop.run_until_complete(when_all(value(1), text("two"), nothing(&ran)));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(s, "two");
  EXPECT_EQ(v, std::monostate{});
  EXPECT_EQ(ran, 1);
  auto [x, y] = loop.run_until_complete(when_all(nothing(&ran), nothing(&ran)));
  (void)x;
  (void)y;
  EXPECT_EQ(ran, 3);
}

TEST(async_when, when_all_waits_for_children_that_suspend) {
  loop_thread lt;
  auto r = rouse::async::spawn(lt.loop, when_all(after(2ms, 1), after(1ms, 2), after(0us, 3), value(4))).join();
  EXPECT_EQ(r, std::make_tuple(1, 2, 3, 4));
}

// A foreign awaitable that ignores stop requests: a thread resumes the
// awaiter 5 ms later.
struct resumed_by_a_thread_later {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    std::thread([h] {
      std::this_thread::sleep_for(5ms);
      h.resume();
    }).detach();
  }
  void await_resume() const noexcept {}
};
task<int> slow_unstoppable(run_loop& other, std::atomic<bool>& done) {
  (void)other;
  co_await resumed_by_a_thread_later{};  // this child finishes on its own
  done.store(true);
  co_return 2;
}
task<int> all_with_error(run_loop& other, std::atomic<bool>& slow_done, std::atomic<int>& destroyed,
                         std::atomic<int>& entered, bool& slow_done_at_catch, int& destroyed_at_catch) {
  try {
    (void)co_await when_all(throws_after(100us), slow_unstoppable(other, slow_done),
                            sleeps_forever(entered, destroyed));
  } catch (const std::runtime_error&) {
    slow_done_at_catch = slow_done.load();
    destroyed_at_catch = destroyed.load();
    co_return 1;
  }
  co_return 0;
}

TEST(async_when, when_all_error_cancels_the_rest_and_rethrows_after_all_are_done) {
  loop_thread lt, other;
  std::atomic<bool> slow_done{false};
  std::atomic<int> destroyed{0}, entered{0};
  bool slow_done_at_catch = false;
  int destroyed_at_catch = 0;
  EXPECT_EQ(rouse::async::spawn(lt.loop, all_with_error(other.loop, slow_done, destroyed, entered, slow_done_at_catch,
                                                        destroyed_at_catch))
                .join(),
            1);
  EXPECT_TRUE(slow_done_at_catch);       // the error waited for every child
  EXPECT_EQ(destroyed_at_catch, 1);      // the sleeper was stopped and its frame is gone
  EXPECT_EQ(entered.load(), 1);
}

TEST(async_when, when_all_completes_stopped_when_a_child_stops) {
  run_loop loop;
  std::atomic<int> entered{0}, destroyed{0};
  EXPECT_THROW(loop.run_until_complete(when_all(stops_by_itself(), sleeps_forever(entered, destroyed))),
               operation_stopped);
  EXPECT_EQ(destroyed.load(), 1);
  auto r = rouse::async::sync_wait(when_all(sleeps_forever(entered, destroyed), stops_by_itself()));
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(destroyed.load(), 2);
}

TEST(async_when, when_all_an_error_after_a_stop_is_still_rethrown) {
  run_loop loop;
  EXPECT_THROW(loop.run_until_complete(when_all(stops_by_itself(), throws_now())), std::runtime_error);
}

task<int> any_first(std::atomic<int>& entered, std::atomic<int>& destroyed, int& destroyed_on_return) {
  auto r = co_await when_any(after(1ms, 1), sleeps_forever(entered, destroyed), sleeps_forever(entered, destroyed));
  destroyed_on_return = destroyed.load();
  co_return static_cast<int>(r.index()) * 100 + std::get<0>(r);
}

TEST(async_when, when_any_picks_the_first_and_awaits_the_stopped_losers) {
  loop_thread lt;
  std::atomic<int> entered{0}, destroyed{0};
  int destroyed_on_return = -1;
  EXPECT_EQ(rouse::async::spawn(lt.loop, any_first(entered, destroyed, destroyed_on_return)).join(), 1);
  EXPECT_EQ(entered.load(), 2);
  EXPECT_EQ(destroyed_on_return, 2);  // both losers' frames were gone before when_any returned
}

TEST(async_when, when_any_with_a_child_done_at_once_starts_the_rest_stopped) {
  run_loop loop;
  std::atomic<int> entered{0}, destroyed{0};
  auto r = loop.run_until_complete(when_any(value(7), sleeps_forever(entered, destroyed)));
  ASSERT_EQ(r.index(), 0u);
  EXPECT_EQ(std::get<0>(r), 7);
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(async_when, when_any_an_exception_can_win) {
  run_loop loop;
  std::atomic<int> entered{0}, destroyed{0};
  EXPECT_THROW(loop.run_until_complete(when_any(throws_after(100us), sleeps_forever(entered, destroyed))),
               std::runtime_error);
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(async_when, when_any_completes_stopped_when_every_child_stopped) {
  run_loop loop;
  EXPECT_THROW(loop.run_until_complete(when_any(stops_by_itself(), stops_by_itself())), operation_stopped);
  rouse::async::inplace_stop_source src;
  src.request_stop();
  std::atomic<int> entered{0}, destroyed{0};
  EXPECT_THROW(loop.run_until_complete(
                   when_any(sleeps_forever(entered, destroyed), sleeps_forever(entered, destroyed)), src.get_token()),
               operation_stopped);
  EXPECT_EQ(destroyed.load(), 2);
}

task<int> nested_any(std::atomic<int>& entered, std::atomic<int>& destroyed) {
  auto r = co_await when_any(when_all(sleeps_forever(entered, destroyed), sleeps_forever(entered, destroyed)),
                             after(1ms, 5));
  co_return r.index() == 1 ? std::get<1>(r) : -1;
}

TEST(async_when, nested_when_all_inside_when_any_is_cancelled_as_a_whole) {
  loop_thread lt;
  std::atomic<int> entered{0}, destroyed{0};
  EXPECT_EQ(rouse::async::spawn(lt.loop, nested_any(entered, destroyed)).join(), 5);
  EXPECT_EQ(entered.load(), 2);
  EXPECT_EQ(destroyed.load(), 2);
}

// A value whose n-th move throws. A child's value moves three times on its
// way: co_return into the promise, out of it at the child's end, into the
// join's slot. Whichever throws, the exception is the child's result: for
// when_any's winner too, which has claimed the win before its value moved.
struct throws_on_move {
  static inline int moves = 0;
  static inline int throw_on = 0;
  int v;
  explicit throws_on_move(int x) noexcept : v(x) {}
  throws_on_move(throws_on_move&& o) : v(o.v) {
    if (++moves == throw_on) throw std::runtime_error("move threw");
  }
  throws_on_move& operator=(throws_on_move&&) = delete;
  ~throws_on_move() = default;
};
task<throws_on_move> ready_throwing_move() { co_return throws_on_move{7}; }

TEST(async_when, a_value_whose_move_throws_is_the_childs_exception) {
  for (int n = 1; n <= 3; ++n) {
    SCOPED_TRACE(n);
    throws_on_move::moves = 0;
    throws_on_move::throw_on = n;
    run_loop loop;
    EXPECT_THROW(loop.run_until_complete(when_any(ready_throwing_move(), value(1))), std::runtime_error);
    throws_on_move::moves = 0;
    EXPECT_THROW(loop.run_until_complete(when_all(ready_throwing_move(), value(1))), std::runtime_error);
  }
  throws_on_move::throw_on = 0;
}

TEST(async_when, when_all_of_nothing_is_an_empty_tuple) {
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete(when_all()), std::tuple<>());
}

TEST(async_when, an_outside_stop_reaches_every_child) {
  loop_thread lt;
  std::atomic<int> entered{0}, destroyed{0};
  auto h = rouse::async::spawn(
      lt.loop, when_all(sleeps_forever(entered, destroyed), sleeps_forever(entered, destroyed),
                        when_any(sleeps_forever(entered, destroyed), sleeps_forever(entered, destroyed))));
  rouse_test::eventually([&] { return entered.load() == 4; });
  h.request_stop();
  EXPECT_THROW(h.join(), operation_stopped);
  EXPECT_EQ(destroyed.load(), 4);
}

// The owner destroys a coroutine suspended in when_all / when_any: the
// children that have not ended are destroyed with it (their sleeps
// withdraw), as a task's child is. They ran on, detached, into the freed
// join (a crash, or a stop source destroyed with callbacks registered).
namespace destroyed_while_joining {

struct outer {
  struct promise_type {
    run_loop* loop;
    struct env {
      run_loop* loop;
      rouse::async::scheduler query(rouse::async::get_scheduler_t) const noexcept { return loop->get_scheduler(); }
    };
    template <class... A>
    explicit promise_type(run_loop& l, A&...) noexcept : loop(&l) {}
    env get_env() const noexcept { return {loop}; }
    outer get_return_object() { return outer{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

struct alive {
  std::atomic<int>* n;
  explicit alive(std::atomic<int>& c) : n(&c) { ++*n; }
  ~alive() { --*n; }
};

task<int> child(std::atomic<int>& live, std::chrono::milliseconds d, int v) {
  alive a(live);
  co_await sleep_for(d);
  co_return v;
}

task<int> parent(std::atomic<int>& live, int mode) {
  if (mode == 0) {
    auto [a, b] = co_await when_all(child(live, 1h, 1), child(live, 2h, 2));
    co_return a + b;
  }
  if (mode == 1) {
    auto v = co_await when_any(child(live, 1h, 1), child(live, 2h, 2));
    co_return static_cast<int>(v.index());
  }
  auto r = co_await rouse::async::with_timeout(when_all(child(live, 1h, 1), child(live, 2h, 2)), 3h);
  co_return r ? 1 : 0;
}

outer run(run_loop&, std::atomic<int>& live, int mode) {
  int const r = co_await parent(live, mode);
  (void)r;
}

}  // namespace destroyed_while_joining

TEST(async_when, a_coroutine_destroyed_while_it_waits_destroys_the_unended_children) {
  using namespace destroyed_while_joining;
  for (int mode = 0; mode < 3; ++mode) {  // when_all, when_any, with_timeout(when_all)
    SCOPED_TRACE(mode);
    std::atomic<int> live{0};
    {
      run_loop loop;
      outer o = run(loop, live, mode);
      {
        rouse::async::current_executor_scope on(&loop);
        o.h.resume();  // the children start and sleep
      }
      EXPECT_EQ(live.load(), 2);
      o.h.destroy();
      EXPECT_EQ(live.load(), 0);  // was 2: they slept on, detached
      EXPECT_EQ(loop.run_once(), 0u);
    }  // debug builds: a loop destroyed with a timer pending is diagnosed
  }
}

}  // namespace
}  // namespace async_when_test
