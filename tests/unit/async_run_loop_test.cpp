// rouse::async::run_loop: scheduling from many threads, run() / finish(),
// run_once, run_until, run_until_complete, timers, the parker (used for the
// idle wait, and not unparked while the loop is busy), misuse on destruction.
#include "rouse/async/run_loop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "outside_wake.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/thread_pool.hpp"
#include "threads.hpp"

namespace async_run_loop_test {
namespace {
using namespace std::chrono_literals;
using rouse::async::current_executor;
using rouse::async::run_loop;
using rouse::async::task;

// A coroutine that, when resumed, runs `f` and destroys itself.
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
template <class F>
oneshot make_oneshot(F f) {
  f();
  co_return;
}

TEST(async_run_loop, schedule_from_many_threads_runs_each_coroutine_once_on_the_loop) {
  run_loop loop;
  constexpr int threads = 8, per_thread = 2000;
  std::atomic<int> ran{0}, off_loop{0};
  std::vector<std::atomic<int>> runs(threads * per_thread);
  rouse_test::threads ts(threads, [&](int t) {
    for (int i = 0; i < per_thread; ++i) {
      auto* slot = &runs[static_cast<std::size_t>(t * per_thread + i)];
      loop.schedule(make_oneshot([&, slot] {
                      if (current_executor() != &loop) off_loop.fetch_add(1);
                      slot->fetch_add(1);
                      ran.fetch_add(1);
                    }).h);
    }
  });
  loop.run_until([&] { return ran.load() == threads * per_thread; });
  ts.join();
  loop.run_once();
  EXPECT_EQ(ran.load(), threads * per_thread);
  EXPECT_EQ(off_loop.load(), 0);
  for (auto& r : runs) EXPECT_EQ(r.load(), 1);
}

TEST(async_run_loop, schedule_never_resumes_inline) {
  run_loop loop;
  int ran = 0;
  loop.schedule(make_oneshot([&] { ++ran; }).h);
  EXPECT_EQ(ran, 0);
  // From the loop's own thread, inside a running coroutine, too.
  loop.schedule(make_oneshot([&] {
                  int const before = ran;
                  loop.schedule(make_oneshot([&] { ran += 10; }).h);
                  EXPECT_EQ(ran, before);
                  ++ran;
                }).h);
  EXPECT_EQ(loop.run_once(), 3u);
  EXPECT_EQ(ran, 12);
  EXPECT_EQ(loop.run_once(), 0u);
}

TEST(async_run_loop, current_executor_is_the_loop_only_while_it_runs) {
  run_loop loop;
  EXPECT_EQ(current_executor(), nullptr);
  rouse::async::executor* inside = nullptr;
  loop.schedule(make_oneshot([&] { inside = current_executor(); }).h);
  loop.run_once();
  EXPECT_EQ(inside, &loop);
  EXPECT_EQ(current_executor(), nullptr);
}

TEST(async_run_loop, run_returns_after_finish_only_once_idle) {
  run_loop loop;
  // A chain: each link schedules the next, 100 times.
  int links = 0;
  struct chain {
    run_loop* loop;
    int* links;
    void operator()() const {
      if (++*links < 100) loop->schedule(make_oneshot(*this).h);
    }
  };
  loop.schedule(make_oneshot(chain{&loop, &links}).h);
  loop.finish();  // before run(): run() still drains everything first
  loop.run();
  EXPECT_EQ(links, 100);
}

TEST(async_run_loop, finish_from_another_thread_wakes_a_sleeping_run) {
  run_loop loop;
  rouse_test::thread t([&] { loop.run(); });
  rouse_test::until_asleep(t);
  std::atomic<int> ran{0};
  loop.schedule(make_oneshot([&] { ran.fetch_add(1); }).h);
  rouse_test::eventually([&] { return ran.load() == 1; });
  loop.finish();
  t.join();
  // The loop can run again after a finish.
  loop.schedule(make_oneshot([&] { ran.fetch_add(1); }).h);
  loop.finish();
  loop.run();
  EXPECT_EQ(ran.load(), 2);
}

task<int> forty_two() { co_return 42; }
task<int> throws_range() {
  co_await rouse::async::sleep_for(0ms);
  throw std::out_of_range("r");
}
task<int> sleeps_an_hour() {
  co_await rouse::async::sleep_for(1h);
  co_return 1;
}

std::atomic<bool> loop_is_sleeping_hint{false};

TEST(async_run_loop, run_until_complete_returns_rethrows_or_throws_operation_stopped) {
  run_loop loop;
  EXPECT_EQ(loop.run_until_complete(forty_two()), 42);
  EXPECT_THROW(loop.run_until_complete(throws_range()), std::out_of_range);
  rouse::async::inplace_stop_source src;
  src.request_stop();
  EXPECT_THROW(loop.run_until_complete(sleeps_an_hour(), src.get_token()), rouse::async::operation_stopped);
}

TEST(async_run_loop, run_until_complete_with_a_stop_from_another_thread_while_the_task_sleeps) {
  run_loop loop;
  // Stop requested while the task sleeps, from another thread.
  rouse::async::inplace_stop_source src2;
  rouse_test::thread stopper([&] {
    rouse_test::eventually([&] { return loop_is_sleeping_hint.load(); });
    src2.request_stop();
  });
  auto body = []() -> task<int> {
    loop_is_sleeping_hint.store(true);
    co_await rouse::async::sleep_for(1h);
    co_return 1;
  };
  EXPECT_THROW(loop.run_until_complete(body(), src2.get_token()), rouse::async::operation_stopped);
  stopper.join();
}

TEST(async_run_loop, run_until_complete_leaves_other_work_queued) {
  run_loop loop;
  int other = 0;
  loop.schedule(make_oneshot([&] { ++other; }).h);
  EXPECT_EQ(loop.run_until_complete(forty_two()), 42);
  loop.run_once();
  EXPECT_EQ(other, 1);
}

// A parker that counts its calls, over a thread_parker.
struct counting_parker final : rouse::async::parker {
  std::atomic<int> parks{0}, unparks{0};
  std::atomic<long> last_deadline_ns{0};
  rouse::thread_parker p;
  void park(clock::time_point deadline) noexcept override {
    last_deadline_ns.store(deadline == clock::time_point::max() ? -1 : deadline.time_since_epoch().count());
    parks.fetch_add(1);
    if (deadline == clock::time_point::max())
      p.park();
    else
      (void)p.park_until(deadline);
  }
  void unpark() noexcept override {
    unparks.fetch_add(1);
    p.unpark();
  }
};

TEST(async_run_loop, a_custom_parker_is_used_for_the_idle_wait) {
  counting_parker cp;
  {
    run_loop loop(cp);
    std::thread t([&] { loop.run(); });
    rouse_test::eventually([&] { return cp.parks.load() >= 1; });
    EXPECT_EQ(cp.last_deadline_ns.load(), -1);  // no timer: no deadline
    std::atomic<int> ran{0};
    loop.schedule(make_oneshot([&] { ran.fetch_add(1); }).h);
    rouse_test::eventually([&] { return ran.load() == 1; });
    loop.finish();
    t.join();
    EXPECT_GE(cp.unparks.load(), 1);
    EXPECT_LE(cp.unparks.load(), cp.parks.load() + 2);
  }
}

TEST(async_run_loop, an_idle_loop_parks_until_the_next_timer) {
  counting_parker cp;
  run_loop loop(cp);
  auto const before = std::chrono::steady_clock::now();
  loop.run_until_complete([]() -> task<> { co_await rouse::async::sleep_for(5ms); }());
  EXPECT_GE(std::chrono::steady_clock::now() - before, 5ms);
  EXPECT_GE(cp.parks.load(), 1);
  EXPECT_NE(cp.last_deadline_ns.load(), -1);  // parked with a deadline
  EXPECT_EQ(cp.unparks.load(), 0);            // nobody else: nobody unparked it
}

TEST(async_run_loop, no_unpark_while_the_loop_is_busy) {
  counting_parker cp;
  run_loop loop(cp);
  constexpr int remote = 5000;
  std::atomic<int> ran{0};
  std::atomic<bool> started{false};
  // A busy coroutine that keeps the loop from ever going idle until every
  // remote coroutine has run.
  struct busy {
    run_loop* loop;
    std::atomic<int>* ran;
    std::atomic<bool>* started;
    void operator()() const {
      started->store(true);
      if (ran->load() < remote) loop->schedule(make_oneshot(*this).h);
    }
  };
  loop.schedule(make_oneshot(busy{&loop, &ran, &started}).h);
  std::thread sender([&] {
    while (!started.load()) std::this_thread::yield();
    for (int i = 0; i < remote; ++i) loop.schedule(make_oneshot([&] { ran.fetch_add(1); }).h);
  });
  loop.run_until([&] { return ran.load() == remote; });
  sender.join();
  EXPECT_EQ(ran.load(), remote);
  EXPECT_EQ(cp.parks.load(), 0);    // it never slept
  EXPECT_EQ(cp.unparks.load(), 0);  // so no schedule unparked it
}

struct test_timer : rouse::async::timer_entry {
  std::atomic<int> fired{0};
  std::chrono::steady_clock::time_point fired_at{};
  static void on_fire(rouse::async::timer_entry* e) noexcept {
    auto* self = static_cast<test_timer*>(e);
    self->fired_at = std::chrono::steady_clock::now();
    self->fired.fetch_add(1);
  }
  explicit test_timer(std::chrono::steady_clock::time_point d) {
    deadline = d;
    fire = &on_fire;
  }
};

TEST(async_run_loop, timers_fire_once_never_early_and_cancel_before_firing) {
  run_loop loop;
  auto const now = std::chrono::steady_clock::now();
  test_timer a(now + 2ms), b(now + 1h), past(now - 1s);
  loop.add_timer(a);
  loop.add_timer(b);
  loop.add_timer(past);
  loop.run_until([&] { return a.fired.load() == 1; });
  EXPECT_GE(a.fired_at, a.deadline);
  EXPECT_EQ(past.fired.load(), 1);
  EXPECT_FALSE(loop.cancel_timer(a));  // fired: too late
  EXPECT_TRUE(loop.cancel_timer(b));
  EXPECT_FALSE(loop.cancel_timer(b));
  loop.run_once();
  EXPECT_EQ(a.fired.load(), 1);
  EXPECT_EQ(b.fired.load(), 0);
}

TEST(async_run_loop, a_timer_added_from_another_thread_wakes_the_sleeping_loop) {
  run_loop loop;
  test_timer t(std::chrono::steady_clock::now() + 1ms);
  rouse_test::thread driver([&] { loop.run_until([&] { return t.fired.load() == 1; }); });
  rouse_test::until_asleep(driver);  // asleep with no deadline
  t.deadline = std::chrono::steady_clock::now() + 1ms;
  loop.add_timer(t);
  driver.join();
  EXPECT_EQ(t.fired.load(), 1);
  EXPECT_GE(t.fired_at, t.deadline);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_run_loop_death, destroying_a_loop_with_ready_coroutines_is_diagnosed) {
  EXPECT_DEATH(
      {
        run_loop loop;
        loop.schedule(std::noop_coroutine());
      },
      "rouse::async::run_loop: misuse: destroyed with coroutines or timers still pending");
}

TEST(async_run_loop_death, destroying_a_loop_with_pending_timers_is_diagnosed) {
  EXPECT_DEATH(
      {
        test_timer t(std::chrono::steady_clock::now() + 1h);
        run_loop loop;
        loop.add_timer(t);
      },
      "rouse::async::run_loop: misuse: destroyed with coroutines or timers still pending");
}

// A task of the loop that drives the loop again (here while another task
// waits in the same round: the re-entered round ran it, and the outer round
// then resumed a handle it no longer held), directly or from a task of a
// loop of its own (sync_wait's).
task<int> drives(run_loop& loop) {
  (void)loop.run_once();
  co_return 0;
}
task<void> drives_its_own_loop(run_loop& loop, int how) {
  if (how == 0) {
    (void)loop.run_until_complete(forty_two());
  } else if (how == 1) {
    (void)loop.run_once();
  } else {
    (void)rouse::async::sync_wait(drives(loop));
  }
  co_return;
}
task<void> neighbour() { co_return; }

TEST(async_run_loop_death, driving_the_loop_from_its_own_task_is_diagnosed) {
  for (int how : {0, 1, 2}) {
    EXPECT_DEATH(
        {
          run_loop loop;
          auto a = rouse::async::spawn(loop, drives_its_own_loop(loop, how));
          auto b = rouse::async::spawn(loop, neighbour());
          loop.run_until([&] { return a.is_done() && b.is_done(); });
        },
        "rouse::async::run_loop: misuse: driven from inside a task it is running");
  }
}

// A task spawned onto the loop (or a scope's, or a child a sync_wait root
// left unjoined) that waits on something else when the loop goes: the
// wake would later schedule it on the destroyed loop. Nothing of it was in
// the loop's queues, and nothing was said.
task<void> waits_for(rouse::async::manual_reset_event& ev) { co_await ev.wait(); }
task<void> leaves_a_child(rouse::async::manual_reset_event& ev) {
  rouse::async::spawn(co_await rouse::async::this_task::get_scheduler(), waits_for(ev)).detach();
}

TEST(async_run_loop_death, destroying_a_loop_under_a_suspended_spawned_task_is_diagnosed) {
  char const* const message = "rouse::async::run_loop: misuse: destroyed while a task spawned onto it";
  EXPECT_DEATH(
      {
        rouse::async::manual_reset_event ev;
        {
          run_loop loop;
          auto h = rouse::async::spawn(loop, waits_for(ev));
          h.detach();
          (void)loop.run_once();
        }
        ev.set();
      },
      message);
  EXPECT_DEATH(
      {
        rouse::async::manual_reset_event ev;
        rouse::async::sync_wait(leaves_a_child(ev));
        ev.set();
      },
      message);
}

TEST(async_run_loop_death, destroying_a_loop_with_remote_work_is_diagnosed) {
  EXPECT_DEATH(
      {
        run_loop loop;
        std::thread([&] { loop.schedule(std::noop_coroutine()); }).join();
      },
      "rouse::async::run_loop: misuse: destroyed with coroutines or timers still pending");
}
#endif

// A task spawned onto the loop that moved to a pool belongs to the pool:
// the loop may go while it runs there.
task<void> moves_away_and_waits(rouse::async::thread_pool& pool, rouse::async::manual_reset_event& ev) {
  co_await pool.get_scheduler().schedule();
  co_await ev.wait();
}

TEST(async_run_loop, a_spawned_task_that_moved_to_another_executor_does_not_hold_the_loop) {
  rouse::async::thread_pool pool(1);
  rouse::async::manual_reset_event ev;
  rouse::async::join_handle<void> h;
  {
    run_loop loop;
    h = rouse::async::spawn(loop, moves_away_and_waits(pool, ev));
    (void)loop.run_once();  // it starts, and moves to the pool
  }  // debug builds: no diagnosis
  ev.set();
  h.join();
}

// A thread outside the loop wakes the root task (its schedule(), or a timer
// it adds that fires at once), the loop returns and is destroyed at once
// while that call may still be waking it. The destructor waits for it.
void destroy_loop_at_once_after(rouse_test::outside_wake how) {
  rouse_test::destroy_at_once_after_outside_wake(
      how, [] { return std::make_unique<run_loop>(); },
      [](run_loop& l, task<> t) { l.run_until_complete(std::move(t)); });
}

TEST(async_run_loop, destroyed_at_once_after_a_task_woken_from_outside_ends) {
  destroy_loop_at_once_after(rouse_test::outside_wake::schedule);
}

TEST(async_run_loop, destroyed_at_once_after_a_timer_added_from_outside_fires) {
  destroy_loop_at_once_after(rouse_test::outside_wake::add_timer);
}

// finish() from another thread lets run() return; the owner destroys the
// loop at once, while finish() may still be waking it (a loop that parked
// first). The destructor waits for the call: ThreadSanitizer and ASan
// builds report it if not.
TEST(async_run_loop, destroyed_at_once_after_finish_from_outside) {
  for (int i = 0; i < 500; ++i) {
    auto loop = std::make_unique<run_loop>();
    std::thread outside([p = loop.get(), i] {
      for (int spin = i % 50; spin > 0; --spin) std::this_thread::yield();  // the loop parks first, or not
      p->finish();
    });
    loop->run();
    loop.reset();
    outside.join();
  }
}

}  // namespace
}  // namespace async_run_loop_test
