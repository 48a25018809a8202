// rouse::async::thread_pool under load: more workers and more scheduling
// threads than cores, coroutines that fan out from inside, bursts with idle
// gaps (every worker asleep between them), ping-pong pairs, and coroutines
// sleeping on timers raced by cancels. Counts prove that every coroutine ran
// exactly once and every timer fired or was cancelled, once; a lost wake-up
// hangs, and CTest's timeout fails it. Sized by ROUSE_STRESS_SCALE.
#include "rouse/async/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "stress.hpp"
#include "threads.hpp"

namespace async_thread_pool_stress {
namespace {

using namespace std::chrono_literals;
using rouse::async::executor;
using rouse::async::thread_pool;
using rouse::async::timer_entry;
using clock_type = std::chrono::steady_clock;

// A coroutine that starts suspended and frees itself when it ends.
struct job {
  struct promise_type {
    job get_return_object() noexcept { return job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

// Suspends the caller, then schedules `next` (safe: the caller is suspended).
struct pass_to {
  executor* ex;
  std::coroutine_handle<> next;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept { ex->schedule(next); }
  void await_resume() const noexcept {}
};

// Each root fans out into `fan` children from its worker, each of those into
// `fan` more: 1 + fan + fan^2 coroutines per root, each counted once.
TEST(async_thread_pool_stress, external_threads_and_fan_out_run_every_coroutine_once) {
  unsigned const workers = rouse_test::oversubscribed(4);
  int const producers = static_cast<int>(rouse_test::oversubscribed(4));
  long const roots = rouse_test::scaled(10000);
  constexpr int fan = 3, per_root = 1 + fan + fan * fan;
  long const total = producers * roots * per_root;
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(total));
  std::atomic<long> done{0};
  thread_pool pool(workers);

  // A root's block of 13 slots: 0 the root, 1..3 its children, and
  // 4 + (k - 1) * 3 + c the children of child k.
  struct tree {
    static job node(thread_pool& pool, std::vector<std::atomic<int>>& runs, std::atomic<long>& done, long base,
                    int index) {
      runs[static_cast<std::size_t>(base + index)].fetch_add(1, std::memory_order_relaxed);
      if (index < 1 + fan) {
        for (int c = 0; c < fan; ++c) {
          int const child = index == 0 ? 1 + c : 1 + fan + (index - 1) * fan + c;
          pool.schedule(node(pool, runs, done, base, child).handle);
        }
      }
      done.fetch_add(1, std::memory_order_release);
      co_return;
    }
  };
  {
    rouse_test::threads producing(producers, [&](int p) {
      for (long r = 0; r < roots; ++r) pool.schedule(tree::node(pool, runs, done, (p * roots + r) * per_root, 0).handle);
    });
  }
  rouse_test::eventually([&] { return done.load(std::memory_order_acquire) == total; });
  for (long i = 0; i < total; ++i) ASSERT_EQ(runs[static_cast<std::size_t>(i)].load(), 1) << "slot " << i;
}

// Bursts from outside, each waited for, with the pool left to go to sleep
// between some of them: a burst that finds every worker asleep must wake one.
TEST(async_thread_pool_stress, bursts_after_idle_gaps_are_never_lost) {
  thread_pool pool(rouse_test::oversubscribed(4));
  long const rounds = rouse_test::scaled(2000);
  std::atomic<long> ran{0};
  long expected = 0;
  for (long round = 0; round < rounds; ++round) {
    int const burst = 1 + static_cast<int>(round % 17);
    if (round % 4 == 0) {
      // From another thread (a plain one, not a worker).
      rouse_test::thread t([&] {
        for (int i = 0; i < burst; ++i) pool.schedule([](std::atomic<long>& r) -> job {
                                          r.fetch_add(1);
                                          co_return;
                                        }(ran).handle);
      });
      t.join();
    } else {
      for (int i = 0; i < burst; ++i) pool.schedule([](std::atomic<long>& r) -> job {
                                        r.fetch_add(1);
                                        co_return;
                                      }(ran).handle);
    }
    expected += burst;
    rouse_test::eventually([&] { return ran.load() == expected; });
    if (round % 8 == 0) std::this_thread::sleep_for(200us);  // an idle gap: workers stop searching and sleep
  }
  EXPECT_EQ(ran.load(), expected);
}

// A fresh pool's first look at the global queue takes a batch (one task to
// run, the rest into the taker's ring), while the other worker may be
// parking. Here the first task blocks its worker until the others ran: the
// pool must wake the other worker for the ring's tasks. A sleeper that
// misses them hangs the round.
TEST(async_thread_pool_stress, a_blocked_worker_does_not_hold_up_the_rest_of_its_batch) {
  long const rounds = rouse_test::scaled(20000);
  constexpr int others = 1;  // two tasks: the first look takes both (2 / workers + 1)
  for (long round = 0; round < rounds; ++round) {
    thread_pool pool(2);
    // A varying start: the workers' first looks, searches and parks fall
    // at different points of the schedules below.
    for (long i = round % 64; i > 0; --i) std::this_thread::yield();
    std::atomic<int> ran{0};
    std::atomic<bool> blocker_ran{false};
    pool.schedule([](std::atomic<int>& r, std::atomic<bool>& b) -> job {
      while (r.load() != others) std::this_thread::yield();  // holds its worker until the rest ran
      b = true;
      co_return;
    }(ran, blocker_ran).handle);
    for (int i = 0; i < others; ++i) pool.schedule([](std::atomic<int>& r) -> job {
                                      r.fetch_add(1);
                                      co_return;
                                    }(ran).handle);
    rouse_test::eventually([&] { return blocker_ran.load(); });
    ASSERT_EQ(ran.load(), others) << "round " << round;
  }
}

// Pairs of coroutines hand a token back and forth (the LIFO slot's case)
// while other threads keep scheduling work from outside.
TEST(async_thread_pool_stress, ping_pong_pairs_amid_outside_work) {
  thread_pool pool(rouse_test::oversubscribed(4));
  int const pairs = 64;
  long const hops = rouse_test::scaled(20000);
  std::vector<std::coroutine_handle<>> handles(2 * pairs);
  std::vector<long> hop_count(pairs, 0);  // each pair's, ordered by its token
  std::atomic<int> pairs_done{0};
  std::atomic<long> noise_ran{0};
  auto player = [&](int pair, int side) -> job {
    for (;;) {
      long& h = hop_count[static_cast<std::size_t>(pair)];
      if (h == hops) {
        pairs_done.fetch_add(1);
        co_return;  // the other player stays suspended; its frame is destroyed below
      }
      ++h;
      co_await pass_to{&pool, handles[static_cast<std::size_t>(2 * pair + 1 - side)]};
    }
  };
  for (int p = 0; p < pairs; ++p) {
    handles[2 * p] = player(p, 0).handle;
    handles[2 * p + 1] = player(p, 1).handle;
  }
  long const noise_each = rouse_test::scaled(50000);
  {
    rouse_test::threads noise(2, [&] {
      for (long i = 0; i < noise_each; ++i) pool.schedule([](std::atomic<long>& r) -> job {
                                              r.fetch_add(1);
                                              co_return;
                                            }(noise_ran).handle);
    });
    for (int p = 0; p < pairs; ++p) pool.schedule(handles[2 * p]);
  }
  rouse_test::eventually([&] { return pairs_done.load() == pairs && noise_ran.load() == 2 * noise_each; });
  for (int p = 0; p < pairs; ++p) ASSERT_EQ(hop_count[p], hops) << "pair " << p;
  // The player that finished freed its own frame; the other is suspended in
  // pass_to: the one whose turn it was not. After hops hops from side 0, the
  // finishing side is (hops % 2 == 0 ? 0 : 1).
  int const finisher = hops % 2 == 0 ? 0 : 1;
  for (int p = 0; p < pairs; ++p) handles[static_cast<std::size_t>(2 * p + 1 - finisher)].destroy();
}

// A coroutine that sleeps on the pool's timers, or is woken early by a
// canceller that wins the race against the firing.
struct timed_wait {
  timer_entry entry;  // first: fire() gets the object back
  executor* ex = nullptr;
  std::coroutine_handle<> waiting;
  std::atomic<int> fired{0};
  std::atomic<int> early{0};
  std::atomic<bool> armed{false};
};
static_assert(std::is_standard_layout_v<timed_wait>);

struct timed_awaiter {
  timed_wait* w;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    // Not this awaiter after add_timer: it lives in the frame, which the
    // firing may resume and free at once.
    timed_wait* const self = w;
    self->waiting = h;
    self->entry.fire = [](timer_entry* e) noexcept {
      auto* t = reinterpret_cast<timed_wait*>(e);
      if (clock_type::now() < t->entry.deadline) t->early.fetch_add(1);
      t->fired.fetch_add(1);
      t->ex->schedule(t->waiting);
    };
    self->armed.store(true, std::memory_order_release);  // a cancel before the add finds nothing queued
    self->ex->add_timer(self->entry);
  }
  void await_resume() const noexcept {}
};

TEST(async_thread_pool_stress, sleeping_coroutines_raced_by_cancels_resume_exactly_once) {
  thread_pool pool(rouse_test::oversubscribed(4));
  long const n = rouse_test::scaled(20000);
  std::vector<timed_wait> waits(static_cast<std::size_t>(n));
  std::atomic<long> resumed{0}, cancelled{0};
  std::vector<std::atomic<int>> resumes(static_cast<std::size_t>(n));
  auto sleeper = [&](long i) -> job {
    timed_wait& w = waits[static_cast<std::size_t>(i)];
    w.ex = &pool;
    w.entry.deadline = clock_type::now() + std::chrono::microseconds((i * 7919) % 300);
    co_await timed_awaiter{&w};
    resumes[static_cast<std::size_t>(i)].fetch_add(1);
    resumed.fetch_add(1);
  };
  {
    // Cancellers: whoever cancels a timer before it fires resumes its coroutine.
    std::atomic<bool> stop{false};
    rouse_test::threads cancellers(2, [&](int c) {
      long i = c;
      while (!stop.load()) {
        timed_wait& w = waits[static_cast<std::size_t>(i)];
        if (w.armed.load(std::memory_order_acquire) && i % 3 == 0 && pool.cancel_timer(w.entry)) {
          cancelled.fetch_add(1);
          pool.schedule(w.waiting);
        }
        i = (i + 2) % n;
        if (i < 2) std::this_thread::yield();
      }
    });
    for (long i = 0; i < n; ++i) pool.schedule(sleeper(i).handle);
    rouse_test::eventually([&] { return resumed.load() == n; });
    stop = true;
  }
  long fired_total = 0;
  for (long i = 0; i < n; ++i) {
    auto const& w = waits[static_cast<std::size_t>(i)];
    ASSERT_EQ(resumes[static_cast<std::size_t>(i)].load(), 1) << i;
    ASSERT_LE(w.fired.load(), 1) << i;
    ASSERT_EQ(w.early.load(), 0) << i;
    fired_total += w.fired.load();
  }
  EXPECT_EQ(fired_total + cancelled.load(), n);
}

}  // namespace
}  // namespace async_thread_pool_stress
