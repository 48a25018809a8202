// rouse::async spawn / join_handle / task_scope / sync_wait.
#include "rouse/async/spawn.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <thread>
#include <variant>
#include <vector>

#include "eventually.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/async/timeout.hpp"
#include "threads.hpp"

namespace async_spawn_test {
namespace {
using namespace std::chrono_literals;
using rouse::async::current_executor;
using rouse::async::join_handle;
using rouse::async::operation_stopped;
using rouse::async::run_loop;
using rouse::async::spawn;
using rouse::async::task;
using rouse::async::task_scope;

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

// Counts destructions of the frames that hold one.
struct frame_guard {
  std::atomic<int>* n;
  ~frame_guard() { n->fetch_add(1); }
};

task<int> value(int v) { co_return v; }
task<int> after_yield(run_loop& loop, int v) {
  co_await loop.get_scheduler().schedule();
  co_return v;
}
task<int> fails() {
  co_await rouse::async::sleep_for(0ms);
  throw std::runtime_error("spawned failure");
}
task<int> sleeps_forever(std::atomic<int>& entered, std::atomic<int>& destroyed) {
  frame_guard g{&destroyed};
  entered.fetch_add(1);
  co_await rouse::async::sleep_for(1h);
  co_return 1;
}

TEST(async_spawn, join_from_a_thread_returns_the_value) {
  loop_thread lt;
  auto h = spawn(lt.loop, value(42));
  EXPECT_TRUE(h.valid());
  EXPECT_EQ(h.join(), 42);
  EXPECT_FALSE(h.valid());
  auto h2 = spawn(lt.loop.get_scheduler(), after_yield(lt.loop, 7));
  EXPECT_EQ(h2.join(), 7);
}

TEST(async_spawn, spawn_never_runs_the_task_inline) {
  run_loop loop;
  bool ran = false;
  auto body = [](bool& r) -> task<> {
    r = true;
    co_return;
  };
  auto h = spawn(loop, body(ran));
  EXPECT_FALSE(ran);
  EXPECT_FALSE(h.is_done());
  loop.run_once();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(h.is_done());
  h.join();  // void: std::monostate
}

TEST(async_spawn, join_rethrows_the_tasks_exception) {
  loop_thread lt;
  auto h = spawn(lt.loop, fails());
  EXPECT_THROW(h.join(), std::runtime_error);
}

task<int> awaits_handle_on(run_loop& other, std::thread::id* resumed_on, rouse::async::executor** ex) {
  auto h = spawn(other, after_yield(other, 20));
  int const v = co_await std::move(h);
  *resumed_on = std::this_thread::get_id();
  *ex = current_executor();
  int w = 0;
  try {
    w = co_await spawn(other, fails());
  } catch (const std::runtime_error&) {
    w = 1;
  }
  co_return v + w;
}

TEST(async_spawn, await_from_a_task_resumes_on_the_awaiters_executor) {
  loop_thread other, home;
  std::thread::id resumed_on{};
  rouse::async::executor* ex = nullptr;
  EXPECT_EQ(spawn(home.loop, awaits_handle_on(other.loop, &resumed_on, &ex)).join(), 21);
  EXPECT_EQ(resumed_on, home.id());
  EXPECT_EQ(ex, &home.loop);
}

TEST(async_spawn, detach_and_destroying_the_handle_let_the_task_run) {
  loop_thread lt;
  std::atomic<int> ran{0};
  auto body = [](run_loop& l, std::atomic<int>& r) -> task<> {
    co_await l.get_scheduler().schedule();
    r.fetch_add(1);
  };
  auto h = spawn(lt.loop, body(lt.loop, ran));
  h.detach();
  EXPECT_FALSE(h.valid());
  { auto dropped = spawn(lt.loop, body(lt.loop, ran)); }
  for (int i = 0; i < 100; ++i) (void)spawn(lt.loop, body(lt.loop, ran));
  rouse_test::eventually([&] { return ran.load() == 102; });
}

TEST(async_spawn, request_stop_makes_join_throw_operation_stopped) {
  loop_thread lt;
  std::atomic<int> entered{0}, destroyed{0};
  auto h = spawn(lt.loop, sleeps_forever(entered, destroyed));
  rouse_test::eventually([&] { return entered.load() == 1; });
  h.request_stop();
  EXPECT_THROW(h.join(), operation_stopped);
  rouse_test::eventually([&] { return destroyed.load() == 1; });
  // Stop requested before the task ever ran.
  run_loop loop;
  auto h2 = spawn(loop, sleeps_forever(entered, destroyed));
  h2.request_stop();
  loop.run_until([&] { return h2.is_done(); });
  EXPECT_THROW(h2.join(), operation_stopped);
  EXPECT_EQ(destroyed.load(), 2);
}

TEST(async_spawn, a_detached_stopped_task_frees_its_frames) {
  run_loop loop;
  std::atomic<int> entered{0}, destroyed{0};
  rouse::async::inplace_stop_source src;
  {
    auto h = spawn(loop, sleeps_forever(entered, destroyed));
    loop.run_once();
    h.request_stop();  // the stopped completion finishes on the loop
    loop.run_once();
    EXPECT_TRUE(h.is_done());
    EXPECT_EQ(destroyed.load(), 1);  // frames gone before the task is done
  }  // the last reference: the state freed (ASan checks the rest)
  EXPECT_EQ(destroyed.load(), 1);
}

task<int> joins_stopped(run_loop& other, std::atomic<int>& entered, std::atomic<int>& destroyed) {
  auto h = spawn(other, sleeps_forever(entered, destroyed));
  while (entered.load() == 0) co_await rouse::async::sleep_for(100us);
  h.request_stop();
  try {
    (void)co_await std::move(h);
  } catch (const operation_stopped&) {
    co_return -1;
  }
  co_return 0;
}

TEST(async_spawn, awaiting_a_stopped_handle_throws_operation_stopped) {
  loop_thread other, home;
  std::atomic<int> entered{0}, destroyed{0};
  EXPECT_EQ(spawn(home.loop, joins_stopped(other.loop, entered, destroyed)).join(), -1);
  rouse_test::eventually([&] { return destroyed.load() == 1; });
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
task<int> stops_with_a_local(std::atomic<int>& destroyed) {
  frame_guard g{&destroyed};
  co_await rouse::async::sleep_for(0us);
  co_await stop_now{};
  co_return 0;
}

TEST(async_spawn, after_join_of_a_stopped_task_its_frames_are_gone) {
  loop_thread lt;
  int alive_after_join = 0;
  for (int round = 0; round < 3000; ++round) {
    std::atomic<int> destroyed{0};
    auto h = spawn(lt.loop, stops_with_a_local(destroyed));
    EXPECT_THROW(h.join(), operation_stopped);
    if (destroyed.load() != 1) ++alive_after_join;
    rouse_test::eventually([&] { return destroyed.load() == 1; });  // before `destroyed` goes
  }
  EXPECT_EQ(alive_after_join, 0);
}

// A value with an alignment beyond new's: a spawned task's shared state
// holds it until the handle takes it, so the state is allocated aligned.
// The move out of the state checks where its source lies. (A cache line is
// the most a task's frame holds aligned with g++, which lays the frame out
// from a base the frame pool aligns to 64 bytes.)
std::atomic<int> misplaced_wide{0};
thread_local bool check_next_source = false;
struct alignas(64) wide {
  int v;
  explicit wide(int x) noexcept : v(x) {}
  wide(wide&& o) noexcept : v(o.v) {
    if (check_next_source) {
      check_next_source = false;
      if (reinterpret_cast<std::uintptr_t>(&o) % alignof(wide) != 0) misplaced_wide.fetch_add(1);
    }
  }
  wide& operator=(wide&&) = delete;
  ~wide() = default;
};
task<wide> make_wide(int v) {
  co_await rouse::async::sleep_for(0ms);
  co_return wide(v);
}
TEST(async_spawn, an_over_aligned_value_is_held_aligned) {
  misplaced_wide.store(0);
  loop_thread lt;
  std::vector<join_handle<wide>> hs;
  for (int i = 0; i < 100; ++i) hs.push_back(spawn(lt.loop, make_wide(i)));
  int sum = 0;
  for (auto& h : hs) {
    check_next_source = true;  // join() moves the value out of the state
    sum += h.join().v;
  }
  EXPECT_EQ(sum, 99 * 100 / 2);
  EXPECT_EQ(misplaced_wide.load(), 0);
}

// A value whose move throws when it is handed over (its second move: out
// of the task's promise): join() rethrows that exception, as it would the
// task's own (the hand-over must not end the program).
struct second_move_throws {
  int moves = 0;
  second_move_throws() = default;
  second_move_throws(second_move_throws&& o) : moves(o.moves + 1) {
    if (moves == 2) throw std::runtime_error("move failed");
  }
  second_move_throws& operator=(second_move_throws&&) = delete;
  ~second_move_throws() = default;
};
task<second_move_throws> makes_second_move_throw() {
  co_await rouse::async::sleep_for(0ms);
  co_return second_move_throws();
}
TEST(async_spawn, a_value_whose_hand_over_throws_is_rethrown_by_join) {
  loop_thread lt;
  auto h = spawn(lt.loop, makes_second_move_throw());
  EXPECT_THROW(h.join(), std::runtime_error);
}

TEST(async_scope, join_waits_for_all_thousand_tasks) {
  loop_thread a, b;
  task_scope scope;
  std::atomic<int> done{0};
  auto body = [](run_loop& hop, std::atomic<int>& d) -> task<> {
    co_await hop.get_scheduler().schedule();
    co_await rouse::async::sleep_for(0ms);
    d.fetch_add(1);
  };
  for (int i = 0; i < 1000; ++i) scope.spawn(a.loop.get_scheduler(), body(i % 2 ? a.loop : b.loop, done));
  auto joiner = [](task_scope& s, std::atomic<int>& d) -> task<int> {
    co_await s.join();
    co_return d.load();
  };
  EXPECT_EQ(spawn(b.loop, joiner(scope, done)).join(), 1000);
  EXPECT_EQ(scope.size(), 0u);
}

TEST(async_scope, join_blocking_waits_for_all) {
  loop_thread a;
  task_scope scope;
  scope.join_blocking();  // nothing spawned: returns at once
  std::atomic<int> done{0};
  auto body = [](std::atomic<int>& d) -> task<> {
    co_await rouse::async::sleep_for(1ms);
    d.fetch_add(1);
  };
  for (int i = 0; i < 1000; ++i) scope.spawn(a.loop.get_scheduler(), body(done));
  scope.join_blocking();
  EXPECT_EQ(done.load(), 1000);
  // A scope can be joined again after more spawns.
  for (int i = 0; i < 10; ++i) scope.spawn(a.loop.get_scheduler(), body(done));
  scope.join_blocking();
  EXPECT_EQ(done.load(), 1010);
}

TEST(async_scope, request_stop_stops_every_task_spawned_into_it) {
  loop_thread a;
  task_scope scope;
  std::atomic<int> entered{0}, destroyed{0};
  for (int i = 0; i < 100; ++i) scope.spawn(a.loop.get_scheduler(), sleeps_forever(entered, destroyed));
  rouse_test::eventually([&] { return entered.load() == 100; });
  scope.request_stop();
  scope.join_blocking();
  rouse_test::eventually([&] { return destroyed.load() == 100; });
  // Spawned after the request: stopped at once too.
  for (int i = 0; i < 10; ++i) scope.spawn(a.loop.get_scheduler(), sleeps_forever(entered, destroyed));
  scope.join_blocking();
  rouse_test::eventually([&] { return destroyed.load() == 110; });
}

task<int> waits_in_a_child(std::atomic<int>& entered, std::atomic<int>& destroyed) {
  frame_guard g{&destroyed};
  co_return co_await sleeps_forever(entered, destroyed);
}

// A scope's task is detached (no driver frame): when a child it awaits
// completes as stopped, the stop reaches it through the child and both
// frames go, once each, before the scope counts it out.
TEST(async_scope, a_task_stopped_through_its_child_is_destroyed_whole) {
  run_loop loop;
  task_scope scope;
  std::atomic<int> entered{0}, destroyed{0};
  for (int i = 0; i < 10; ++i) scope.spawn(loop.get_scheduler(), waits_in_a_child(entered, destroyed));
  loop.run_until([&] { return entered.load() == 10; });
  EXPECT_EQ(scope.size(), 10u);
  scope.request_stop();
  loop.run_until([&] { return scope.size() == 0; });
  EXPECT_EQ(destroyed.load(), 20);
  loop.run_until_complete([](task_scope& s) -> task<> { co_await s.join(); }(scope));
}

TEST(async_scope, concurrent_spawn_and_join) {
  loop_thread a, b;
  task_scope scope;
  std::atomic<int> done{0};
  constexpr int spawners = 4, each = 500;
  auto body = [](std::atomic<int>& d) -> task<> {
    d.fetch_add(1);
    co_return;
  };
  {
    rouse_test::threads ts(spawners + 1, [&](int i) {
      if (i == spawners) {
        for (int j = 0; j < 200; ++j) scope.join_blocking();  // joins racing the spawns
        return;
      }
      for (int j = 0; j < each; ++j) scope.spawn((j % 2 ? a : b).loop.get_scheduler(), body(done));
    });
  }
  scope.join_blocking();
  EXPECT_EQ(done.load(), spawners * each);
}

// task_scope's contract: results are dropped, and a task that throws ends
// the program (as an exception leaving a std::thread does), never silently.
TEST(async_scope_death, a_task_that_throws_terminates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        run_loop loop;
        task_scope scope;
        scope.spawn(loop.get_scheduler(), fails());
        loop.run_until_complete([](task_scope& s) -> task<> { co_await s.join(); }(scope));
      },
      "");
}

TEST(async_scope, a_task_that_throws_operation_stopped_counts_as_stopped) {
  run_loop loop;
  task_scope scope;
  auto stops = []() -> task<> {
    co_await rouse::async::sleep_for(0ms);
    throw operation_stopped();
  };
  scope.spawn(loop.get_scheduler(), stops());
  loop.run_until_complete([](task_scope& s) -> task<> { co_await s.join(); }(scope));
  EXPECT_EQ(scope.size(), 0u);
}

TEST(async_sync_wait, returns_the_value_or_rethrows) {
  EXPECT_EQ(rouse::async::sync_wait(value(5)), std::optional<int>(5));
  auto v = rouse::async::sync_wait([]() -> task<> { co_await rouse::async::sleep_for(1ms); }());
  EXPECT_TRUE(v.has_value());
  static_assert(std::is_same_v<decltype(v), std::optional<std::monostate>>);
  EXPECT_THROW(rouse::async::sync_wait(fails()), std::runtime_error);
}

TEST(async_sync_wait, a_stop_token_stopped_before_gives_an_empty_optional) {
  std::atomic<int> entered{0}, destroyed{0};
  rouse::async::inplace_stop_source src;
  src.request_stop();
  EXPECT_EQ(rouse::async::sync_wait(sleeps_forever(entered, destroyed), src.get_token()), std::nullopt);
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(async_sync_wait, a_stop_from_another_thread_gives_an_empty_optional) {
  std::atomic<int> entered{0}, destroyed{0};
  rouse::async::inplace_stop_source src;
  std::thread stopper([&] {
    rouse_test::eventually([&] { return entered.load() == 1; });
    src.request_stop();
  });
  EXPECT_EQ(rouse::async::sync_wait(sleeps_forever(entered, destroyed), src.get_token()), std::nullopt);
  stopper.join();
}

// ---- a stopped await of a handle ----------------------------------------------

task<int> waits_for_event(rouse::async::manual_reset_event& ev, std::atomic<int>& destroyed) {
  frame_guard g{&destroyed};
  co_await ev.wait();
  co_return 7;
}

// with_timeout / a stop of the awaiting task end the await of a handle as
// stopped (it waited for the task before, whatever the timer said); the
// task runs on, detached, and ends when it can.
TEST(async_spawn, a_timeout_or_a_stop_ends_the_await_of_a_handle_and_the_task_runs_on) {
  run_loop loop;
  rouse::async::manual_reset_event ev;
  std::atomic<int> destroyed{0};
  auto h = spawn(loop, waits_for_event(ev, destroyed));
  auto r = loop.run_until_complete([](join_handle<int> h) -> task<std::optional<int>> {
    co_return co_await rouse::async::with_timeout(std::move(h), 1ms);  // a hang before
  }(std::move(h)));
  EXPECT_EQ(r, std::nullopt);
  EXPECT_EQ(destroyed.load(), 0);  // the task runs on
  ev.set();
  loop.run_until_complete([]() -> task<void> { co_await rouse::async::sleep_for(0ms); }());
  EXPECT_EQ(destroyed.load(), 1);  // and ended, its result dropped
  // Completed in time: the value.
  ev.reset();
  auto h2 = spawn(loop, waits_for_event(ev, destroyed));
  ev.set();
  auto r2 = loop.run_until_complete([](join_handle<int> h) -> task<std::optional<int>> {
    co_return co_await rouse::async::with_timeout(std::move(h), 1h);
  }(std::move(h2)));
  EXPECT_EQ(r2, std::optional<int>(7));
  // A stop of the awaiting task, from another thread.
  ev.reset();
  loop_thread lt;
  rouse::async::inplace_stop_source src;
  auto h3 = spawn(lt.loop, waits_for_event(ev, destroyed));
  std::thread stopper([&] {
    std::this_thread::sleep_for(1ms);  // usually after the await suspended; either way it stops
    src.request_stop();
  });
  auto r3 = rouse::async::sync_wait([](join_handle<int> h) -> task<int> { co_return co_await std::move(h); }(std::move(h3)),
                                    src.get_token());
  stopper.join();
  EXPECT_EQ(r3, std::nullopt);
  ev.set();
  rouse_test::eventually([&] { return destroyed.load() == 3; });
}

// The completion against a timeout at the same moment, many times on a
// pool: each await ends exactly once, with the value or as timed out.
TEST(async_spawn, an_await_of_a_handle_raced_by_its_timeout_ends_once) {
  rouse::async::thread_pool pool(2);
  std::atomic<int> values{0}, timeouts{0}, ended{0};
  for (int round = 0; round < 2000; ++round) {
    auto r = rouse::async::sync_wait([](rouse::async::thread_pool& p, int round, std::atomic<int>& ended) -> task<std::optional<int>> {
      co_await p.get_scheduler().schedule();
      auto h = spawn(p, [](int round, std::atomic<int>& ended) -> task<int> {
        co_await rouse::async::sleep_for(std::chrono::microseconds(round % 20));
        ended.fetch_add(1);
        co_return round;
      }(round, ended));
      co_return co_await rouse::async::with_timeout(std::move(h), std::chrono::microseconds(10));
    }(pool, round, ended));
    ASSERT_TRUE(r.has_value());
    if (*r) {
      ASSERT_EQ(**r, round);
      values.fetch_add(1);
    } else {
      timeouts.fetch_add(1);
    }
  }
  std::printf("values %d, timeouts %d\n", values.load(), timeouts.load());
  EXPECT_EQ(values.load() + timeouts.load(), 2000);
  rouse_test::eventually([&] { return ended.load() == 2000; });  // the detached ones too
}

#if !defined(ROUSE_SANITIZER_thread)
// A scope that is a local of a task which a stop unwinds before it reaches
// join(): its tasks would count out into freed memory. Every build aborts
// with the rule (not a debug check).
task<> scope_beside_a_stoppable_wait(std::atomic<int>& entered, std::atomic<int>& destroyed) {
  task_scope scope;
  scope.spawn(co_await rouse::async::this_task::get_scheduler(), sleeps_forever(entered, destroyed));
  co_await rouse::async::sleep_for(1h);  // a stop ends the task here, not at a join
  co_await scope.join();
}

TEST(async_scope_death, a_scope_destroyed_under_running_tasks_aborts_in_every_build) {
  EXPECT_DEATH(
      {
        run_loop loop;
        rouse::async::inplace_stop_source stop;
        std::atomic<int> entered{0};
        std::atomic<int> destroyed{0};
        std::thread stopper([&] {
          for (int i = 0; i < 100'000'000 && entered.load() == 0; ++i) std::this_thread::yield();
          stop.request_stop();
        });
        try {
          loop.run_until_complete(scope_beside_a_stoppable_wait(entered, destroyed), stop.get_token());
        } catch (...) {
        }
        stopper.join();
      },
      "rouse::async::task_scope: misuse: destroyed while tasks spawned into it are running \\(join\\(\\) first\\)");
}
#endif

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_spawn_death, spawning_a_moved_from_task_is_diagnosed) {
  EXPECT_DEATH(
      {
        run_loop loop;
        task<int> t = value(1);
        task<int> u = std::move(t);
        (void)spawn(loop, std::move(t));  // NOLINT(bugprone-use-after-move)
      },
      "rouse::async::spawn: misuse: spawn of an empty or moved-from task");
}

TEST(async_scope_death, a_second_join_while_one_waits_is_diagnosed) {
  EXPECT_DEATH(
      {
        run_loop loop;
        task_scope scope;
        std::atomic<int> entered{0};
        std::atomic<int> destroyed{0};
        scope.spawn(loop.get_scheduler(), sleeps_forever(entered, destroyed));
        auto joins = [](task_scope& s) -> task<> { co_await s.join(); };
        auto first = spawn(loop, joins(scope));
        loop.run_once();       // the task sleeps; the first join waits
        scope.join_blocking();  // a second join
      },
      "rouse::async::task_scope: misuse: join\\(\\) while another join\\(\\) of the same scope waits");
}

TEST(async_spawn_death, joining_an_empty_handle_is_diagnosed) {
  EXPECT_DEATH(
      {
        join_handle<int> h;
        (void)h.join();
      },
      "rouse::async::join_handle: misuse: join\\(\\) on an empty handle");
}
#endif

}  // namespace
}  // namespace async_spawn_test
