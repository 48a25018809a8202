// Stress of rouse's async core: many threads scheduling onto one run_loop;
// tasks on several loops waking each other through spawn/join and
// task_scope; stop requests racing completions. Counters prove every task
// completed exactly once; CTest's timeout turns a lost wake-up into a failure.
// Sized by ROUSE_STRESS_SCALE (tests/support/stress.hpp).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "rouse/async/run_loop.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/when.hpp"
#include "eventually.hpp"
#include "stress.hpp"
#include "threads.hpp"

namespace async_core_stress {
namespace {

using namespace std::chrono_literals;
using rouse::async::run_loop;
using rouse::async::spawn;
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

struct oneshot {
  struct promise_type {
    oneshot get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};
oneshot bump(std::atomic<int>* slot, std::atomic<long>* total) {
  slot->fetch_add(1, std::memory_order_relaxed);
  total->fetch_add(1, std::memory_order_release);
  co_return;
}

TEST(async_core_stress, many_threads_schedule_onto_one_loop) {
  unsigned const threads = rouse_test::oversubscribed();
  long const per_thread = rouse_test::scaled(100000) / static_cast<long>(threads) + 1;
  long const total_expected = per_thread * threads;
  std::vector<std::atomic<int>> slots(static_cast<std::size_t>(total_expected));
  std::atomic<long> total{0};
  run_loop loop;
  rouse_test::thread driver([&] { loop.run_until([&] { return total.load(std::memory_order_acquire) == total_expected; }); });
  {
    rouse_test::threads ts(static_cast<int>(threads), [&](int t) {
      for (long i = 0; i < per_thread; ++i)
        loop.schedule(bump(&slots[static_cast<std::size_t>(t * per_thread + i)], &total).h);
    });
  }
  driver.join();
  loop.run_once();
  EXPECT_EQ(total.load(), total_expected);
  for (auto& s : slots) ASSERT_EQ(s.load(), 1);
}

// A ping-pong of spawns and joins across loops: each level spawns its child
// on the next loop and awaits its handle.
task<long> relay(std::vector<std::unique_ptr<loop_thread>>* loops, std::size_t at, int hops, std::atomic<long>* ran) {
  ran->fetch_add(1, std::memory_order_relaxed);
  if (hops == 0) co_return 1;
  auto& next = (*loops)[(at + 1) % loops->size()]->loop;
  long const below = co_await spawn(next, relay(loops, at + 1, hops - 1, ran));
  if (hops % 3 == 0) co_await rouse::async::sleep_for(0us);
  co_return below + 1;
}

TEST(async_core_stress, tasks_on_several_loops_wake_each_other_through_spawn_and_join) {
  std::vector<std::unique_ptr<loop_thread>> loops;
  for (int i = 0; i < 4; ++i) loops.push_back(std::make_unique<loop_thread>());
  long const chains = rouse_test::scaled(2000);
  int const hops = 20;
  std::atomic<long> ran{0};
  {
    rouse_test::threads joiners(8, [&](int j) {
      for (long c = j; c < chains; c += 8) {
        auto h = spawn(loops[static_cast<std::size_t>(c) % loops.size()]->loop,
                       relay(&loops, static_cast<std::size_t>(c), hops, &ran));
        ASSERT_EQ(h.join(), hops + 1);
      }
    });
  }
  EXPECT_EQ(ran.load(), chains * (hops + 1));
}

TEST(async_core_stress, task_scopes_across_loops) {
  std::vector<std::unique_ptr<loop_thread>> loops;
  for (int i = 0; i < 3; ++i) loops.push_back(std::make_unique<loop_thread>());
  long const rounds = rouse_test::scaled(300);
  std::atomic<long> done{0};
  auto leafy = [](run_loop& hop, std::atomic<long>& d) -> task<> {
    co_await hop.get_scheduler().schedule();
    d.fetch_add(1, std::memory_order_relaxed);
  };
  auto parent = [&](rouse::async::task_scope& scope, int i) -> task<> {
    for (int k = 0; k < 50; ++k)
      scope.spawn(loops[static_cast<std::size_t>(k) % loops.size()]->loop.get_scheduler(),
                  leafy(loops[static_cast<std::size_t>(k + i) % loops.size()]->loop, done));
    co_await scope.join();
  };
  for (long r = 0; r < rounds; ++r) {
    rouse::async::task_scope outer;
    rouse::async::task_scope inners[3];
    for (int i = 0; i < 3; ++i) outer.spawn(loops[static_cast<std::size_t>(i)]->loop.get_scheduler(), parent(inners[i], i));
    outer.join_blocking();
    for (auto& in : inners) in.join_blocking();
  }
  EXPECT_EQ(done.load(), rounds * 3 * 50);
}

struct frame_guard {
  std::atomic<long>* n;
  ~frame_guard() { n->fetch_add(1, std::memory_order_relaxed); }
};
task<int> maybe_sleeps(int kind, std::atomic<long>* frames) {
  frame_guard g{frames};
  if (kind == 0) co_return 1;  // completes at once
  if (kind == 1) {
    co_await rouse::async::sleep_for(std::chrono::microseconds(kind * 20));
    co_return 1;
  }
  co_await rouse::async::sleep_for(0us);
  co_await rouse::async::sleep_for(50us);
  co_return 1;
}

TEST(async_core_stress, stop_requests_race_completions_and_each_task_completes_once) {
  loop_thread a, b;
  long const rounds = rouse_test::scaled(4000);
  std::atomic<long> frames{0}, values{0}, stopped{0};
  std::mt19937 rng(12345);
  for (long r = 0; r < rounds; ++r) {
    int const kind = static_cast<int>(rng() % 3);
    int const when = static_cast<int>(rng() % 3);  // stop before, racing, or after
    auto h = spawn((r % 2 ? a : b).loop, maybe_sleeps(kind, &frames));
    if (when == 0) h.request_stop();
    std::thread stopper;
    if (when == 1) stopper = std::thread([&h] { h.request_stop(); });
    if (when == 2) {
      while (!h.is_done()) std::this_thread::yield();
      h.request_stop();  // too late: harmless
    }
    if (stopper.joinable()) stopper.join();
    try {
      values.fetch_add(h.join());
    } catch (const rouse::async::operation_stopped&) {
      stopped.fetch_add(1);
    }
  }
  EXPECT_EQ(values.load() + stopped.load(), rounds);
  // Every frame destroyed exactly once (a stopped task's frames may go just
  // after join() returns: see async_spawn.after_join_of_a_stopped_task_its_frames_are_gone).
  rouse_test::eventually([&] { return frames.load() >= rounds; });
  EXPECT_EQ(frames.load(), rounds);
}

TEST(async_core_stress, scope_stop_races_completions) {
  loop_thread a, b;
  long const rounds = rouse_test::scaled(200);
  std::atomic<long> frames{0};
  long spawned = 0;
  for (long r = 0; r < rounds; ++r) {
    rouse::async::task_scope scope;
    int const n = 20;
    std::thread stopper([&] {
      for (int i = 0; i < static_cast<int>(r % 50); ++i) std::this_thread::yield();
      scope.request_stop();
    });
    for (int i = 0; i < n; ++i) scope.spawn((i % 2 ? a : b).loop.get_scheduler(), maybe_sleeps(i % 3, &frames));
    spawned += n;
    stopper.join();
    scope.join_blocking();
  }
  rouse_test::eventually([&] { return frames.load() >= spawned; });
  EXPECT_EQ(frames.load(), spawned);
}

task<int> any_race(std::atomic<long>* frames) {
  auto r = co_await rouse::async::when_any(maybe_sleeps(1, frames), maybe_sleeps(2, frames), maybe_sleeps(1, frames));
  co_return static_cast<int>(r.index()) >= 0 ? 1 : 0;
}

TEST(async_core_stress, when_any_with_outside_stop_racing) {
  loop_thread a;
  long const rounds = rouse_test::scaled(2000);
  std::atomic<long> frames{0};
  long ok = 0, stopped = 0;
  for (long r = 0; r < rounds; ++r) {
    auto h = spawn(a.loop, any_race(&frames));
    if (r % 2) h.request_stop();
    try {
      ok += h.join();
    } catch (const rouse::async::operation_stopped&) {
      ++stopped;
    }
  }
  EXPECT_EQ(ok + stopped, rounds);
  rouse_test::eventually([&] { return frames.load() >= rounds * 3; });
  EXPECT_EQ(frames.load(), rounds * 3);
}

}  // namespace
}  // namespace async_core_stress
