// rouse::async::task<T>: values, errors, laziness, frame ownership, constant
// stack through symmetric transfer, the environment (stop token, scheduler),
// executor affinity (the hop back after a foreign awaitable, moving with
// schedule()), and being awaited by a foreign coroutine type.
#include "rouse/async/task.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "eventually.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/when.hpp"

namespace async_task_test {
namespace {
using namespace std::chrono_literals;
using rouse::async::current_executor;
using rouse::async::run_loop;
using rouse::async::task;

// A run_loop driven by a thread of its own until the destructor.
struct loop_thread {
  run_loop loop;
  std::thread t;
  loop_thread() : t([this] { loop.run(); }) {}
  loop_thread(const loop_thread&) = delete;
  ~loop_thread() {
    loop.finish();
    t.join();
  }
  std::thread::id id() const { return t.get_id(); }
};

task<int> leaf(int v) { co_return v; }
task<> nothing() { co_return; }

TEST(async_task, size_is_one_pointer) { EXPECT_EQ(sizeof(task<int>), sizeof(void*)); }

TEST(async_task, returns_a_value) {
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete(leaf(42)), 42);
}

task<int> add_children() {
  int const a = co_await leaf(40);
  int const b = co_await leaf(2);
  co_await nothing();
  co_return a + b;
}

TEST(async_task, awaits_values_and_void) {
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete(add_children()), 42);
  bool ran = false;
  auto body = [](bool& r) -> task<> {
    co_await nothing();
    r = true;
  };
  loop.run_until_complete(body(ran));
  EXPECT_TRUE(ran);
}

task<std::unique_ptr<int>> make_unique_value(int v) { co_return std::make_unique<int>(v); }
task<int> unwrap_unique() {
  std::unique_ptr<int> p = co_await make_unique_value(9);
  co_return *p;
}
task<rouse_test::counted> make_counted(long v) { co_return rouse_test::counted(v); }

TEST(async_task, move_only_values) {
  rouse_test::counted_scope scope;
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete(unwrap_unique()), 9);
  rouse_test::counted c = loop.run_until_complete(make_counted(5));
  EXPECT_EQ(c.value, 5);
}

task<int> throws_logic() {
  co_await nothing();
  throw std::logic_error("boom");
}
task<std::string> catches_child() {
  try {
    (void)co_await throws_logic();
  } catch (const std::logic_error& e) {
    co_return std::string("caught ") + e.what();
  }
  co_return "not thrown";
}
task<> rethrows_child() { (void)co_await throws_logic(); }

TEST(async_task, exceptions_are_carried_to_the_awaiter) {
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete(catches_child()), "caught boom");
  EXPECT_THROW(loop.run_until_complete(rethrows_child()), std::logic_error);
  EXPECT_THROW(loop.run_until_complete(throws_logic()), std::logic_error);
}

[[gnu::noinline]] std::uintptr_t stack_here() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}
std::uintptr_t distance(std::uintptr_t a, std::uintptr_t b) { return a > b ? a - b : b - a; }

task<long> many_in_a_row(long n, std::uintptr_t* deepest_distance) {
  std::uintptr_t const base = stack_here();
  long sum = 0;
  for (long i = 0; i < n; ++i) {
    sum += co_await leaf(1);
    if (i % 4096 == 0) *deepest_distance = std::max(*deepest_distance, distance(base, stack_here()));
  }
  co_return sum;
}

TEST(async_task, a_million_co_awaits_in_a_row_run_in_constant_stack) {
  run_loop loop;
  std::uintptr_t deepest = 0;
  EXPECT_EQ(loop.run_until_complete(many_in_a_row(1'000'000, &deepest)), 1'000'000);
  EXPECT_LT(deepest, 64u * 1024);
}

task<long> nested(long depth, std::uintptr_t root, std::uintptr_t* leaf_distance) {
  if (depth == 0) {
    *leaf_distance = distance(root, stack_here());
    co_return 0;
  }
  co_return 1 + co_await nested(depth - 1, root, leaf_distance);
}
task<long> nested_root(long depth, std::uintptr_t* leaf_distance) {
  co_return co_await nested(depth, stack_here(), leaf_distance);
}

TEST(async_task, deeply_nested_awaits_run_in_constant_stack) {
  run_loop loop;
#if defined(ROUSE_SANITIZER_address) || defined(ROUSE_SANITIZER_thread)
  constexpr long deepest_depth = 200'000;
#else
  constexpr long deepest_depth = 1'000'000;
#endif
  for (long depth : {1000L, 100'000L, deepest_depth}) {
    std::uintptr_t leaf_distance = ~std::uintptr_t{0};
    EXPECT_EQ(loop.run_until_complete(nested_root(depth, &leaf_distance)), depth);
    // Frames live on the heap; the stack at the leaf is as deep as at the root.
    EXPECT_LT(leaf_distance, 64u * 1024) << "depth " << depth;
  }
}

// A stop at the leaf of nested tasks completes each level as stopped up to
// the root, in a loop: each level called the next on the native stack
// (20,000 levels took about a megabyte; a million overflowed). Measured
// where the stopped path reaches the root's awaiter, a foreign coroutine.
task<long> nested_until_stopped(long depth, rouse::async::manual_reset_event& never) {
  if (depth == 0) {
    co_await never.wait();  // until the stop
    co_return 0;
  }
  co_return 1 + co_await nested_until_stopped(depth - 1, never);
}

struct stop_env {
  rouse::async::inplace_stop_token token;
  rouse::async::inplace_stop_token query(rouse::async::get_stop_token_t) const noexcept { return token; }
};
// Awaits a task; its stopped path records the stack depth there.
struct stop_probe {
  struct promise_type {
    rouse::async::inplace_stop_token token;
    std::uintptr_t* stopped_at = nullptr;
    stop_probe get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
    stop_env get_env() const noexcept { return {token}; }
    std::coroutine_handle<> unhandled_stopped() noexcept {
      *stopped_at = stack_here();
      return std::noop_coroutine();  // its owner destroys it
    }
  };
  std::coroutine_handle<promise_type> h;
};
stop_probe probe_awaits(long depth, rouse::async::manual_reset_event& never) {
  (void)co_await nested_until_stopped(depth, never);
}

TEST(async_task, a_stop_through_deeply_nested_tasks_takes_constant_stack) {
  for (long depth : {1L, 1000L, 20'000L}) {
    rouse::async::manual_reset_event never;
    rouse::async::inplace_stop_source src;
    std::uintptr_t stopped_at = 0;
    stop_probe p = probe_awaits(depth, never);
    p.h.promise().token = src.get_token();
    p.h.promise().stopped_at = &stopped_at;
    p.h.resume();  // runs down to the leaf's wait
    std::uintptr_t const base = stack_here();
    src.request_stop();
    ASSERT_NE(stopped_at, 0u) << "depth " << depth;
    EXPECT_LT(distance(base, stopped_at), 64u * 1024) << "depth " << depth;
    EXPECT_FALSE(p.h.done());
    p.h.destroy();  // and the chain with it
  }
}

// Destroying a chain of suspended nested tasks: the frames go deepest first
// (as nested destructors would take them: a child before its parent's
// locals, which its own locals may refer to), in constant stack. Each
// level's local records its depth and the stack at its destruction, and
// refers to its parent's local, which must still be alive then.
struct counted_end {
  int* ended;
  ~counted_end() { ++*ended; }
};
struct order_mark {
  std::vector<int>* order;
  int id;
  ~order_mark() { order->push_back(id); }
};

struct level_guard {
  long depth;
  const level_guard* parent;
  std::vector<long>* order;
  std::uintptr_t* deepest;
  std::uintptr_t base;
  bool alive = true;
  ~level_guard() {
    if (parent != nullptr && !parent->alive) order->push_back(-1);  // a parent's local went first
    order->push_back(depth);
    *deepest = std::max(*deepest, distance(base, stack_here()));
    alive = false;
  }
};
task<long> nested_guarded(long depth, const level_guard* parent, rouse::async::manual_reset_event& never,
                          std::vector<long>& order, std::uintptr_t& deepest, std::uintptr_t base) {
  level_guard g{depth, parent, &order, &deepest, base};
  if (depth == 0) {
    co_await never.wait();
    co_return 0;
  }
  co_return 1 + co_await nested_guarded(depth - 1, &g, never, order, deepest, base);
}

TEST(async_task, destroying_a_suspended_chain_goes_deepest_first_in_constant_stack) {
#if defined(ROUSE_SANITIZER_address) || defined(ROUSE_SANITIZER_thread)
  constexpr long deepest_depth = 200'000;
#else
  constexpr long deepest_depth = 1'000'000;
#endif
  for (long depth : {0L, 1L, 1000L, deepest_depth}) {
    rouse::async::manual_reset_event never;
    std::vector<long> order;
    order.reserve(static_cast<std::size_t>(depth) + 2);
    std::uintptr_t deepest = 0;
    {
      run_loop loop;
      std::uintptr_t const base = stack_here();
      auto t = nested_guarded(depth, nullptr, never, order, deepest, base);
      auto h = rouse::async::spawn(loop, std::move(t));
      while (loop.run_once()) {
      }
      ASSERT_TRUE(order.empty());
      h.request_stop();  // the leaf's wait completes as stopped, and the chain with it
      while (loop.run_once()) {
      }
      EXPECT_THROW(h.join(), rouse::async::operation_stopped);
    }
    ASSERT_EQ(order.size(), static_cast<std::size_t>(depth) + 1) << "depth " << depth;
    for (long k = 0; k <= depth; ++k) {
      if (order[static_cast<std::size_t>(k)] != k) {
        ADD_FAILURE() << "depth " << depth << ": destroyed " << order[static_cast<std::size_t>(k)] << " at " << k;
        break;
      }
    }
    EXPECT_LT(deepest, 64u * 1024) << "depth " << depth;
  }
}

// The await owns the awaited frame: a task object that lives outside the
// awaiting frame (an element of a vector) and moves while it is awaited, or
// is assigned over, is empty and owns nothing; destroying the chain destroys
// the awaited frame once, through the await.
task<> wait_never(rouse::async::manual_reset_event& never, int& ended) {
  counted_end e{&ended};
  co_await never.wait();
}
task<> await_elements(std::vector<task<>>& jobs) {
  for (std::size_t i = 0; i < jobs.size(); ++i) co_await std::move(jobs[i]);
}
task<> await_from(task<>& slot) { co_await std::move(slot); }

TEST(async_task, an_awaited_task_object_is_empty_and_its_moves_do_not_touch_the_await) {
  rouse::async::manual_reset_event never;
  int ended = 0;
  {
    std::vector<task<>> jobs;
    jobs.reserve(1);
    jobs.push_back(wait_never(never, ended));
    stop_probe p = [](std::vector<task<>>& j) -> stop_probe { co_await await_elements(j); }(jobs);
    std::uintptr_t unused = 0;
    p.h.promise().stopped_at = &unused;
    p.h.resume();  // down to the wait
    EXPECT_FALSE(jobs[0].valid());
    jobs.push_back(wait_never(never, ended));  // reallocates: jobs[0] moves
    p.h.destroy();                              // the chain, through the await
    EXPECT_EQ(ended, 1);
  }
  EXPECT_EQ(ended, 1);  // the second job never started: no local to end
  {
    task<> slot = wait_never(never, ended);
    stop_probe p = [](task<>& s) -> stop_probe { co_await await_from(s); }(slot);
    std::uintptr_t unused = 0;
    p.h.promise().stopped_at = &unused;
    p.h.resume();
    EXPECT_FALSE(slot.valid());
    slot = wait_never(never, ended);  // assigned over: the awaited frame is not the slot's
    EXPECT_EQ(ended, 1);
    p.h.destroy();
    EXPECT_EQ(ended, 2);
  }
  EXPECT_EQ(ended, 2);
}

// A local declared after the task object it awaits: the awaited frame goes
// first when the chain is destroyed, as it would have ended first had it
// completed.
task<> child_marks(std::vector<int>& order, rouse::async::manual_reset_event& never) {
  order_mark m{&order, 2};
  co_await never.wait();
}
task<> parent_marks(std::vector<int>& order, rouse::async::manual_reset_event& never) {
  order_mark before{&order, 0};
  task<> t = child_marks(order, never);
  order_mark after{&order, 1};
  co_await std::move(t);
}

TEST(async_task, a_destroyed_chain_ends_the_awaited_frame_before_the_awaiting_frames_locals) {
  rouse::async::manual_reset_event never;
  std::vector<int> order;
  stop_probe p = [](std::vector<int>& o, rouse::async::manual_reset_event& nv) -> stop_probe {
    co_await parent_marks(o, nv);
  }(order, never);
  std::uintptr_t unused = 0;
  p.h.promise().stopped_at = &unused;
  p.h.resume();
  p.h.destroy();
  EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
}

// The same chain destroyed by its owner without a stop (a task object that
// goes out of scope while its chain waits).
TEST(async_task, destroying_an_owned_suspended_chain_goes_deepest_first_in_constant_stack) {
  long const depth = 100'000;
  rouse::async::manual_reset_event never;
  std::vector<long> order;
  std::uintptr_t deepest = 0;
  std::uintptr_t const base = stack_here();
  {
    stop_probe p = [](long d, rouse::async::manual_reset_event& nv, std::vector<long>& o, std::uintptr_t& dp,
                      std::uintptr_t b) -> stop_probe {
      (void)co_await nested_guarded(d, nullptr, nv, o, dp, b);
    }(depth, never, order, deepest, base);
    std::uintptr_t unused = 0;
    p.h.promise().stopped_at = &unused;
    p.h.resume();
    ASSERT_TRUE(order.empty());
    p.h.destroy();
  }
  ASSERT_EQ(order.size(), static_cast<std::size_t>(depth) + 1);
  for (long k = 0; k <= depth; ++k) {
    if (order[static_cast<std::size_t>(k)] != k) {
      ADD_FAILURE() << "destroyed " << order[static_cast<std::size_t>(k)] << " at " << k;
      break;
    }
  }
  EXPECT_LT(deepest, 64u * 1024);
}

task<int> sets_flag(bool& flag) {
  flag = true;
  co_return 1;
}

TEST(async_task, is_lazy_nothing_runs_before_it_is_awaited) {
  bool ran = false;
  run_loop loop;
  {
    task<int> t = sets_flag(ran);
    EXPECT_TRUE(t.valid());
    EXPECT_FALSE(ran);
    task<int> moved = std::move(t);
    EXPECT_FALSE(t.valid());  // NOLINT(bugprone-use-after-move)
    EXPECT_FALSE(ran);
    EXPECT_EQ(loop.run_until_complete(std::move(moved)), 1);
  }
  EXPECT_TRUE(ran);
  ran = false;
  { task<int> never = sets_flag(ran); }
  EXPECT_FALSE(ran);
}

task<long> holds_counted(rouse_test::counted c) {
  rouse_test::counted local(2);
  co_return c.value + local.value;
}

TEST(async_task, destroying_an_unstarted_task_destroys_its_frame) {
  rouse_test::counted_scope scope;
  {
    task<long> t = holds_counted(rouse_test::counted(1));
    EXPECT_GE(rouse_test::counted::live.load(), 1);  // the parameter, in the frame
  }
  EXPECT_EQ(rouse_test::counted::live.load(), 0);
  {
    task<long> a = holds_counted(rouse_test::counted(1));
    task<long> b = holds_counted(rouse_test::counted(3));
    a = std::move(b);  // assignment destroys a's frame
    run_loop loop;
    EXPECT_EQ(loop.run_until_complete(std::move(a)), 5);
  }
}

// Suspends and never resumes by itself.
struct suspend_forever {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

// A minimal foreign coroutine type (no get_env): starts at once; the owner
// destroys the frame (final_suspend suspends).
struct owned_coro {
  struct promise_type {
    owned_coro get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
  owned_coro(std::coroutine_handle<promise_type> handle) : h(handle) {}  // NOLINT
  owned_coro(owned_coro&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~owned_coro() {
    if (h) h.destroy();
  }
};

task<> suspended_with_locals(int& reached) {
  rouse_test::counted a(1), b(2);
  reached = 1;
  co_await suspend_forever{};
  reached = 2;
}
owned_coro awaits_forever(int& reached) { co_await suspended_with_locals(reached); }

TEST(async_task, destroying_a_suspended_task_runs_its_locals_destructors) {
  rouse_test::counted_scope scope;
  int reached = 0;
  {
    owned_coro c = awaits_forever(reached);
    EXPECT_EQ(reached, 1);
    EXPECT_EQ(rouse_test::counted::live.load(), 2);
  }
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(rouse_test::counted::live.load(), 0);
}


// ---- environment -----------------------------------------------------------

using rouse::async::inplace_stop_source;
using rouse::async::inplace_stop_token;
namespace this_task = rouse::async::this_task;

task<inplace_stop_token> child_token() { co_return co_await this_task::stop_token(); }
task<bool> same_token_as_child() {
  inplace_stop_token const mine = co_await this_task::stop_token();
  inplace_stop_token const childs = co_await child_token();
  co_return mine == childs && mine.stop_possible();
}
task<bool> token_stopped() { co_return (co_await this_task::stop_token()).stop_requested(); }

TEST(async_task, this_task_stop_token_is_the_awaiters_token) {
  run_loop loop;
  inplace_stop_source src;
  EXPECT_TRUE(loop.run_until_complete(same_token_as_child(), src.get_token()));
  EXPECT_FALSE(loop.run_until_complete(token_stopped(), src.get_token()));
  src.request_stop();
  EXPECT_TRUE(loop.run_until_complete(token_stopped(), src.get_token()));
}

// A root task (run_until_complete, sync_wait) has no handle to stop it: it
// sees the caller's token itself, and with none given a token that cannot
// be stopped (its waits then register no stop callback).
TEST(async_task, a_root_task_sees_the_callers_token) {
  run_loop loop;
  EXPECT_FALSE(loop.run_until_complete(child_token()).stop_possible());
  EXPECT_FALSE(rouse::async::sync_wait(child_token())->stop_possible());
  inplace_stop_source src;
  EXPECT_EQ(loop.run_until_complete(child_token(), src.get_token()), src.get_token());
  EXPECT_EQ(*rouse::async::sync_wait(child_token(), src.get_token()), src.get_token());
}

TEST(async_task, this_task_stop_token_is_the_spawners_token) {
  run_loop loop;
  auto h = rouse::async::spawn(loop, token_stopped());
  h.request_stop();  // before it runs
  while (!h.is_done()) loop.run_once();
  EXPECT_TRUE(h.join());
  auto h2 = rouse::async::spawn(loop, token_stopped());
  while (!h2.is_done()) loop.run_once();
  EXPECT_FALSE(h2.join());
}

task<bool> scheduler_is(rouse::async::scheduler expected) {
  rouse::async::scheduler const s = co_await this_task::get_scheduler();
  co_return s == expected && current_executor() == &expected.get_executor();
}

TEST(async_task, this_task_get_scheduler_is_the_executor_it_runs_on) {
  run_loop loop;
  EXPECT_TRUE(loop.run_until_complete(scheduler_is(loop.get_scheduler())));
}

// ---- executor affinity ------------------------------------------------------

// A foreign awaitable (not rouse-affine): resumes the awaiter on a new
// std::thread, with a value.
struct thread_spawner {
  std::mutex m;
  std::vector<std::thread> threads;
  ~thread_spawner() {
    for (auto& t : threads) t.join();
  }
};
struct resume_on_new_thread {
  thread_spawner* s;
  int value;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    std::lock_guard<std::mutex> lock(s->m);
    s->threads.emplace_back([h] { h.resume(); });
  }
  int await_resume() const noexcept { return value; }
};
struct throw_on_new_thread {
  thread_spawner* s;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    std::lock_guard<std::mutex> lock(s->m);
    s->threads.emplace_back([h] { h.resume(); });
  }
  int await_resume() const { throw std::runtime_error("from the foreign awaitable"); }
};

struct where {
  rouse::async::executor* ex = nullptr;
  std::thread::id id{};
  // Out of line: clang may reuse a thread id (pthread_self() is declared
  // const) read before a suspension point in a coroutine after it.
  [[gnu::noinline]] static where now() { return {current_executor(), std::this_thread::get_id()}; }
};

task<int> hops_back(thread_spawner& s, std::vector<where>& seen) {
  seen.push_back(where::now());
  int const v = co_await resume_on_new_thread{&s, 7};
  seen.push_back(where::now());
  try {
    (void)co_await throw_on_new_thread{&s};
  } catch (const std::runtime_error&) {
    seen.push_back(where::now());
  }
  co_return v;
}

TEST(async_task, after_a_foreign_awaitable_resumes_on_another_thread_the_task_is_back_on_its_executor) {
  thread_spawner s;
  run_loop loop;
  std::vector<where> seen;
  EXPECT_EQ(loop.run_until_complete(hops_back(s, seen)), 7);
  ASSERT_EQ(seen.size(), 3u);
  for (const where& w : seen) {
    EXPECT_EQ(w.ex, &loop);
    EXPECT_EQ(w.id, std::this_thread::get_id());
  }
}

struct ready_foreign {
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  int await_resume() const noexcept { return 3; }
};
struct no_suspend_foreign {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<>) const noexcept { return false; }
  int await_resume() const noexcept { return 4; }
};
task<int> synchronous_foreign() {
  int a = co_await ready_foreign{};
  int b = co_await no_suspend_foreign{};
  co_await std::suspend_never{};
  co_return a + b;
}

TEST(async_task, foreign_awaitables_that_complete_synchronously) {
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete(synchronous_foreign()), 7);
}

// Foreign awaitables that complete at once in each of the three ways; each
// notes how deep the stack is where the awaiting code takes its result.
struct stack_depths {
  std::uintptr_t first = 0;
  std::uintptr_t deepest = 0;
  void note() {
    std::uintptr_t const here = stack_here();
    if (first == 0) first = here;
    deepest = std::max(deepest, distance(first, here));
  }
};
enum class at_once { ready, suspend_false, same_handle };
template <at_once How>
struct measured_foreign {
  stack_depths* depths;
  bool await_ready() const noexcept { return How == at_once::ready; }
  auto await_suspend(std::coroutine_handle<> h) const noexcept {
    if constexpr (How == at_once::suspend_false) {
      return false;
    } else if constexpr (How == at_once::same_handle) {
      return h;
    } else {
      return;
    }
  }
  int await_resume() const {
    depths->note();
    return 1;
  }
};
template <at_once How>
task<long> many_foreign_in_a_row(long n, stack_depths* depths) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await measured_foreign<How>{depths};
  co_return sum;
}

// Each such await runs through a hop frame (executor affinity); a hop that
// ended at once used to transfer back to the task, which clang 14 does not
// compile as a tail call at -O1 and above: the stack grew by a frame per
// await (a loop of about 250,000 overflowed 8 MiB).
TEST(async_task, foreign_awaitables_completing_at_once_run_in_constant_stack) {
  run_loop loop;
  constexpr long n = 100'000;
  stack_depths ready, suspend_false, same_handle;
  EXPECT_EQ(loop.run_until_complete(many_foreign_in_a_row<at_once::ready>(n, &ready)), n);
  EXPECT_EQ(loop.run_until_complete(many_foreign_in_a_row<at_once::suspend_false>(n, &suspend_false)), n);
  EXPECT_EQ(loop.run_until_complete(many_foreign_in_a_row<at_once::same_handle>(n, &same_handle)), n);
  EXPECT_LT(ready.deepest, 64u * 1024) << "await_ready true";
  EXPECT_LT(suspend_false.deepest, 64u * 1024) << "await_suspend false";
  EXPECT_LT(same_handle.deepest, 64u * 1024) << "await_suspend returning the awaiter";
}

task<int> moves_to(run_loop& other, thread_spawner& s, std::vector<where>& seen) {
  seen.push_back(where::now());
  co_await other.get_scheduler().schedule();
  seen.push_back(where::now());
  int const v = co_await resume_on_new_thread{&s, 5};
  seen.push_back(where::now());  // the hop returns to the new executor
  bool const s_ok = (co_await this_task::get_scheduler()) == other.get_scheduler();
  co_await rouse::async::sleep_for(1ms);
  seen.push_back(where::now());
  co_return s_ok ? v : -1;
}

TEST(async_task, co_await_schedule_moves_the_task_to_that_executor) {
  thread_spawner s;
  loop_thread home, other;
  std::vector<where> seen;
  auto h = rouse::async::spawn(home.loop, moves_to(other.loop, s, seen));
  EXPECT_EQ(h.join(), 5);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].ex, &home.loop);
  EXPECT_EQ(seen[0].id, home.id());
  for (std::size_t i = 1; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].ex, &other.loop) << i;
    EXPECT_EQ(seen[i].id, other.id()) << i;
  }
}

task<> child_moves(run_loop& other) {
  co_await other.get_scheduler().schedule();
  co_return;
}
task<> parent_of_a_moving_child(run_loop& other, std::vector<where>& seen) {
  seen.push_back(where::now());
  co_await child_moves(other);
  seen.push_back(where::now());  // the parent did not move: it continues on its executor
}

TEST(async_task, a_child_that_moves_executor_does_not_take_its_awaiter_along) {
  loop_thread home, other;
  std::vector<where> seen;
  auto h = rouse::async::spawn(home.loop, parent_of_a_moving_child(other.loop, seen));
  h.join();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].ex, &home.loop);
  EXPECT_EQ(seen[1].ex, &home.loop) << "the parent resumed on the child's new executor";
  EXPECT_EQ(seen[1].id, home.id());
}

TEST(async_task, run_until_complete_returns_when_the_task_ends_on_another_executor) {
  loop_thread other;
  run_loop home;
  auto body = [](run_loop& o) -> task<int> {
    co_await o.get_scheduler().schedule();
    co_return 11;
  };
  EXPECT_EQ(home.run_until_complete(body(other.loop)), 11);
}

// A foreign awaitable that asks its awaiter's environment for a stop token.
struct reads_env {
  bool* possible;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) const noexcept {
    *possible = rouse::async::get_stop_token(rouse::async::get_env(h.promise())).stop_possible();
    return false;
  }
  void await_resume() const noexcept {}
};
task<bool> foreign_sees_env() {
  bool possible = false;
  co_await reads_env{&possible};
  co_return possible;
}

TEST(async_task, a_foreign_awaitable_sees_the_tasks_environment) {
  run_loop loop;
  inplace_stop_source src;
  EXPECT_TRUE(loop.run_until_complete(foreign_sees_env(), src.get_token()))
      << "the hop coroutine's promise hides the task's get_env()";
}

// ---- awaited by a foreign coroutine type -----------------------------------

// Starts at once, destroys itself at the end; no get_env.
struct bare_coro {
  struct promise_type {
    bare_coro get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

bare_coro bare_awaits(loop_thread& lt, std::atomic<int>& out, std::atomic<bool>& done) {
  {
    int const a = co_await leaf(20);  // runs inline here, no executor
    auto h = rouse::async::spawn(lt.loop, leaf(22));
    int const b = co_await std::move(h);  // resumes on the loop's thread (no executor of its own)
    int c = 0;
    try {
      (void)co_await throws_logic();
    } catch (const std::logic_error&) {
      c = 100;
    }
    out.store(a + b + c);
  }
  done.store(true);
}

TEST(async_task, a_foreign_coroutine_awaits_tasks_and_rouse_awaitables) {
  loop_thread lt;
  std::atomic<int> out{0};
  std::atomic<bool> done{false};
  bare_awaits(lt, out, done);
  rouse_test::eventually([&] { return done.load(); });
  EXPECT_EQ(out.load(), 142);
}

// A foreign coroutine whose environment answers get_stop_token with a
// std::stop_token and get_scheduler with a rouse scheduler.
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
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
    std_env get_env() const noexcept { return {token, ex}; }
  };
  std::coroutine_handle<promise_type> h;
  void start(std::stop_token t, rouse::async::executor& e) {
    h.promise().token = std::move(t);
    h.promise().ex = &e;
    h.resume();
  }
};

task<int> sleeps_long(std::atomic<bool>& asleep) {
  asleep.store(true);
  co_await rouse::async::sleep_for(1h);
  co_return 1;
}
env_coro env_awaits(std::atomic<bool>& asleep, std::atomic<int>& result, std::atomic<bool>& done) {
  try {
    result.store(co_await sleeps_long(asleep));
  } catch (const rouse::async::operation_stopped&) {
    result.store(-1);
  }
  done.store(true);
}

TEST(async_task, a_foreign_std_stop_token_stops_the_awaited_task) {
  loop_thread lt;
  std::stop_source src;
  std::atomic<bool> asleep{false}, done{false};
  std::atomic<int> result{0};
  env_awaits(asleep, result, done).start(src.get_token(), lt.loop);
  EXPECT_TRUE(asleep.load());
  EXPECT_FALSE(done.load());
  src.request_stop();
  rouse_test::eventually([&] { return done.load(); });
  EXPECT_EQ(result.load(), -1);
}

TEST(async_task, a_foreign_std_stop_token_stopped_before_the_await) {
  loop_thread lt;
  std::stop_source src;
  src.request_stop();
  std::atomic<bool> asleep{false}, done{false};
  std::atomic<int> result{0};
  env_awaits(asleep, result, done).start(src.get_token(), lt.loop);
  rouse_test::eventually([&] { return done.load(); });
  EXPECT_EQ(result.load(), -1);
}

// A foreign coroutine with a stop token and no executor: a stop resumes it
// inline, inside the request_stop() of the stop source rouse made for the
// awaited work (the task's adapter of a std::stop_token, when_all's own
// source); it ends and destroys that work, source included, there. ASan
// reported a use after free in request_stop() before.
template <class Token>
struct token_env {
  Token token;
  Token query(rouse::async::get_stop_token_t) const noexcept { return token; }
};
template <class Token>
struct token_coro {
  struct promise_type {
    Token token;
    token_coro get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
    token_env<Token> get_env() const noexcept { return {token}; }
  };
  std::coroutine_handle<promise_type> h;
  void start(Token t) {
    h.promise().token = std::move(t);
    h.resume();
  }
};

task<int> waits_for(rouse::async::manual_reset_event& ev) {
  co_await ev.wait();
  co_return 1;
}

template <class Token>
token_coro<Token> awaits_a_task(rouse::async::manual_reset_event& ev, int& result) {
  try {
    result = co_await waits_for(ev);
  } catch (const rouse::async::operation_stopped&) {
    result = -1;
  }
}

template <class Token>
token_coro<Token> awaits_when_all(rouse::async::manual_reset_event& ev, int& result) {
  try {
    auto [a, b] = co_await rouse::async::when_all(waits_for(ev), waits_for(ev));
    result = a + b;
  } catch (const rouse::async::operation_stopped&) {
    result = -1;
  }
}

TEST(async_task, a_foreign_coroutine_without_executor_stopped_inline_destroys_the_stopped_work_safely) {
  rouse::async::manual_reset_event ev;
  {
    std::stop_source src;
    int result = 0;
    awaits_a_task<std::stop_token>(ev, result).start(src.get_token());
    EXPECT_EQ(result, 0);
    src.request_stop();  // the task's adapter source dies inside its request_stop()
    EXPECT_EQ(result, -1);
  }
  {
    rouse::async::inplace_stop_source src;
    int result = 0;
    awaits_when_all<rouse::async::inplace_stop_token>(ev, result).start(src.get_token());
    EXPECT_EQ(result, 0);
    src.request_stop();  // when_all's source dies inside its request_stop()
    EXPECT_EQ(result, -1);
  }
  {
    std::stop_source src;
    int result = 0;
    awaits_when_all<std::stop_token>(ev, result).start(src.get_token());
    src.request_stop();
    EXPECT_EQ(result, -1);
  }
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
task<int> awaits_moved_from() {
  task<int> a = leaf(1);
  task<int> b = std::move(a);
  co_return co_await std::move(a);  // NOLINT(bugprone-use-after-move)
}

TEST(async_task_death, awaiting_a_moved_from_task_is_diagnosed) {
  EXPECT_DEATH(
      {
        run_loop loop;
        (void)loop.run_until_complete(awaits_moved_from());
      },
      "rouse::async::task: misuse: co_await of an empty, moved-from or already awaited task");
}

// The await takes the frame: the second await of one task object finds it
// empty (it resumed a finished frame before).
task<int> awaits_twice() {
  task<int> a = leaf(1);
  int const first = co_await std::move(a);
  co_return first + co_await std::move(a);  // NOLINT(bugprone-use-after-move)
}

TEST(async_task_death, awaiting_a_task_twice_is_diagnosed) {
  EXPECT_DEATH(
      {
        run_loop loop;
        (void)loop.run_until_complete(awaits_twice());
      },
      "rouse::async::task: misuse: co_await of an empty, moved-from or already awaited task");
}
#endif

}  // namespace
}  // namespace async_task_test
