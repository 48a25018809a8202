// A rouse task's stop relayed to the wait it is in (rouse/async/detail/
// wait_relay.hpp): from its second stoppable wait on, a task's waits on the
// async primitives use one stop callback per task, not one per wait. Each
// rule of a wait's stop, through the relay: a stop while a wait is armed
// ends it as stopped; a stop while the task runs ends its next wait; a stop
// after the wake lets the wake stand; a stop racing notifies on other
// threads loses and doubles nothing; nested tasks share the relay; a frame
// destroyed while it waits is not touched by a later stop; one relay per
// task, whatever the number of waits.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "counting_new.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/semaphore.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"

namespace async_wait_relay_test {
namespace {
namespace ra = rouse::async;

// Runs the loop until nothing is ready.
void settle(ra::run_loop& loop) {
  while (loop.run_once() != 0) {
  }
}

// Completes `rounds` waits of a task looping on `n` (counted in `done`):
// each time, the loop runs until the task waits, then one notify_one.
void notify_rounds(ra::run_loop& loop, ra::notify& n, std::atomic<int>& done, int rounds) {
  for (int k = 0; k < rounds; ++k) {
    int const target = done.load() + 1;
    settle(loop);
    n.notify_one();
    loop.run_until([&] { return done.load() == target; });
  }
}

// Waits `rounds` times (a notify each), counting completions; the counts
// say how far a stop let it go.
ra::task<int> wait_rounds(ra::notify& n, int rounds, std::atomic<int>& done) {
  for (int i = 0; i < rounds; ++i) {
    co_await n.notified();
    done.fetch_add(1, std::memory_order_relaxed);
  }
  co_return rounds;
}

// The task is stopped while it waits, after two waits (so the relay is in
// use): it completes as stopped, and its notify keeps no stale waiter.
TEST(async_wait_relay, a_stop_while_a_relayed_wait_is_armed_ends_it_as_stopped) {
  ra::run_loop loop;
  ra::notify n;
  std::atomic<int> done{0};
  auto h = ra::spawn(loop.get_scheduler(), wait_rounds(n, 1'000, done));
  notify_rounds(loop, n, done, 3);
  settle(loop);  // the fourth wait is armed
  h.request_stop();
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(done.load(), 3);
  EXPECT_THROW((void)h.join(), ra::operation_stopped);
  n.notify_one();  // nobody waits: stored
  EXPECT_TRUE(n.notified().await_ready());
}

// A stop while the task runs (no wait armed: the relay's callback only
// leaves its mark) ends its next wait, at once.
TEST(async_wait_relay, a_stop_while_the_task_runs_ends_its_next_wait) {
  ra::run_loop loop;
  ra::notify n;
  std::atomic<int> phase{0};
  ra::join_handle<void>* self = nullptr;
  auto body = [](ra::notify& n, std::atomic<int>& phase, ra::join_handle<void>*& self) -> ra::task<> {
    for (int i = 0; i < 2; ++i) {  // the second makes the relay
      n.notify_one();
      co_await n.notified();
    }
    phase.store(1);
    self->request_stop();  // the task runs: no wait is armed
    phase.store(2);
    co_await n.notified();  // ends as stopped at once
    phase.store(3);
  };
  auto h = ra::spawn(loop.get_scheduler(), body(n, phase, self));
  self = &h;
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(phase.load(), 2);
  EXPECT_THROW(h.join(), ra::operation_stopped);
}

// A stop after the wake (the notify chose the wait first) lets the wake
// stand: the wait completes normally; the next one is stopped.
TEST(async_wait_relay, a_stop_after_the_wake_lets_the_wake_stand) {
  ra::run_loop loop;
  ra::notify n;
  std::atomic<int> done{0};
  auto h = ra::spawn(loop.get_scheduler(), wait_rounds(n, 1'000, done));
  notify_rounds(loop, n, done, 2);
  settle(loop);    // the third wait is armed
  n.notify_one();  // chosen: scheduled on the loop, not run yet
  h.request_stop();
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(done.load(), 3);  // the wake stood
  EXPECT_THROW((void)h.join(), ra::operation_stopped);
  EXPECT_FALSE(n.notified().await_ready());  // the permit was consumed once, not stored again
}

// Tasks on a pool wait in a loop; other threads notify and stop them at
// random moments. Every notify_one is consumed by one completion or left
// stored (at most one), none is lost or doubled, and every task ends.
TEST(async_wait_relay, stops_racing_notifies_on_a_pool_lose_and_double_nothing) {
  constexpr int tasks = 8;
  constexpr int notifies_per_task = 2'000;
  ra::thread_pool pool(2);
  for (int round = 0; round < 5; ++round) {
    std::vector<ra::notify> ns(tasks);
    std::atomic<int> done[tasks] = {};
    std::vector<ra::join_handle<int>> hs;
    for (int t = 0; t < tasks; ++t) hs.push_back(ra::spawn(pool.get_scheduler(), wait_rounds(ns[t], 1 << 30, done[t])));
    std::vector<std::thread> notifiers;
    for (int t = 0; t < tasks; ++t)
      notifiers.emplace_back([&, t] {
        for (int i = 0; i < notifies_per_task; ++i) {
          ns[t].notify_one();
          if (i == notifies_per_task / 2 + t * 97 % 500) hs[t].request_stop();
          if (i % 64 == 0) std::this_thread::yield();
        }
      });
    for (auto& th : notifiers) th.join();
    for (int t = 0; t < tasks; ++t) {
      hs[t].request_stop();
      EXPECT_THROW((void)hs[t].join(), ra::operation_stopped);
      // Each completion consumed one notify; one more may be stored; a
      // notify that chose a wait the stop then lost to counts as consumed.
      int const stored = ns[t].notified().await_ready() ? 1 : 0;
      EXPECT_LE(done[t].load() + stored, notifies_per_task) << "task " << t;
      EXPECT_GE(done[t].load() + stored, 1) << "task " << t;
    }
  }
}

// The relay ends exactly one of two racing completions: each round, a wait
// is notified and stopped at once from two threads; it completes normally
// (the notify won: the next wait ends stopped) or as stopped (the stop won:
// the notify's permit is stored), never both and never neither.
TEST(async_wait_relay, a_stop_and_a_notify_at_once_have_one_winner) {
  ra::thread_pool pool(2);
  for (int round = 0; round < 300; ++round) {
    ra::notify n;
    std::atomic<int> done{0};
    auto h = ra::spawn(pool.get_scheduler(), wait_rounds(n, 1 << 30, done));
    for (int i = 0; i < 2; ++i) {  // two waits: the third uses the relay
      n.notify_one();
      while (done.load() != i + 1) std::this_thread::yield();
    }
    std::atomic<bool> go{false};
    std::thread a([&] {
      while (!go.load()) {
      }
      n.notify_one();
    });
    std::thread b([&] {
      while (!go.load()) {
      }
      h.request_stop();
    });
    go.store(true);
    a.join();
    b.join();
    EXPECT_THROW((void)h.join(), ra::operation_stopped);
    int const completed = done.load() - 2;
    int const stored = n.notified().await_ready() ? 1 : 0;
    EXPECT_EQ(completed + stored, 1) << "round " << round;
  }
}

// A nested task awaited with the same token shares the relay: stopping
// the outer task ends the inner task's wait as stopped, through the chain.
TEST(async_wait_relay, a_nested_task_shares_the_relay_and_its_stop) {
  ra::run_loop loop;
  ra::notify n;
  std::atomic<int> done{0};
  auto outer = [](ra::notify& n, std::atomic<int>& done) -> ra::task<int> {
    for (int i = 0; i < 2; ++i) {
      co_await n.notified();
      done.fetch_add(1);
    }
    co_return co_await wait_rounds(n, 1'000, done);
  };
  auto h = ra::spawn(loop.get_scheduler(), outer(n, done));
  notify_rounds(loop, n, done, 4);
  settle(loop);
  h.request_stop();
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(done.load(), 4);
  EXPECT_THROW((void)h.join(), ra::operation_stopped);
}

// A semaphore wait through the relay: a stop while queued takes nothing,
// and the permits go to the next waiter.
TEST(async_wait_relay, a_stopped_semaphore_wait_through_the_relay_takes_nothing) {
  ra::run_loop loop;
  ra::semaphore s(0);
  std::atomic<int> got{0};
  auto taker = [](ra::semaphore& s, std::atomic<int>& got) -> ra::task<> {
    for (;;) {
      ra::semaphore::permit p = co_await s.acquire(2);
      if (!p) co_return;
      p.forget();  // consumed
      got.fetch_add(1);
    }
  };
  auto h = ra::spawn(loop.get_scheduler(), taker(s, got));
  for (int i = 0; i < 3; ++i) {
    settle(loop);
    s.release(2);
    loop.run_until([&] { return got.load() == i + 1; });
  }
  settle(loop);
  s.release(1);  // a partial assignment to the queued wait
  h.request_stop();
  loop.run_until([&] { return h.is_done(); });
  EXPECT_THROW(h.join(), ra::operation_stopped);
  EXPECT_EQ(got.load(), 3);
  EXPECT_EQ(s.available(), 1u);  // the partial assignment came back
}

// One relay per task, made at its second stoppable wait: a thousand waits
// allocate at most that one object (the frame pool's first blocks aside).
TEST(async_wait_relay, a_task_makes_one_relay_whatever_its_waits) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  ra::run_loop loop;
  ra::notify n;
  std::atomic<int> done{0};
  auto h = ra::spawn(loop.get_scheduler(), wait_rounds(n, 1'010, done));
  notify_rounds(loop, n, done, 10);  // warm: the relay is made here
  long const before = rouse_test::allocations();
  notify_rounds(loop, n, done, 1000);
  EXPECT_EQ(rouse_test::allocations() - before, 0);
  loop.run_until([&] { return h.is_done(); });
  EXPECT_EQ(h.join(), 1'010);
}

// A task whose frame is destroyed while a relayed wait is armed (a chain
// of two tasks sharing the outer one's relay, destroyed with the task
// object) leaves the primitive without its waiter and the relay without
// the wait: a later notify is stored, a later stop touches nothing (ASan).
TEST(async_wait_relay, a_frame_destroyed_while_its_relayed_wait_is_armed_leaves_cleanly) {
  ra::run_loop loop;
  ra::notify n;
  std::atomic<int> done{0};
  ra::inplace_stop_source stop;
  {
    struct outer {
      static ra::task<> run(ra::notify& n, std::atomic<int>& done) {
        for (int i = 0; i < 2; ++i) {  // the relay is made here
          co_await n.notified();
          done.fetch_add(1);
        }
        (void)co_await wait_rounds(n, 1'000, done);  // shares it
      }
    };
    ra::task<> d = outer::run(n, done);
    auto handle = d.handle();
    handle.promise().bind(std::noop_coroutine(), &loop, stop.get_token(), nullptr, nullptr);
    handle.resume();  // runs into its first wait
    for (int i = 0; i < 4; ++i) {
      n.notify_one();
      loop.run_until([&] { return done.load() == i + 1; });
    }
    // The inner task's third wait is armed in the outer task's relay; both
    // frames are destroyed here, with `d`.
  }
  n.notify_one();
  EXPECT_TRUE(n.notified().await_ready());  // nobody waits: stored
  stop.request_stop();                      // no callback is left
  EXPECT_EQ(done.load(), 4);
}

}  // namespace
}  // namespace async_wait_relay_test
