// Stress: rouse::async::notify as a token ring. One permit circulates among
// many threads (blocking and timed waits) and many coroutines on two loops
// (more parties than cores): each holder enters a critical section (a flag
// proves nobody else is inside; a plain counter, checked by TSan, proves
// each hand-over orders the holders), then passes the permit on with
// notify_one(). Meanwhile a stopper thread fires the coroutines' stop tokens
// at random: a stopped waiter must take nothing, a waiter chosen before its
// stop must keep the permit, and a timed thread wait that expires as it is
// chosen must keep it too. The permit is consumed exactly once per hand-over:
// the counter matches the rounds, exactly one permit is left at the end, and
// a lost permit hangs the ring (CTest's timeout fails it).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "rouse/async/executor.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/stop_token.hpp"
#include "stress.hpp"

namespace async_notify_stress {
namespace {

namespace ra = rouse::async;

class test_loop final : public ra::executor {
 public:
  void schedule(std::coroutine_handle<> h) noexcept override {
    std::lock_guard<std::mutex> g(m_);
    q_.push_back(h);
    cv_.notify_one();
  }
  void add_timer(ra::timer_entry&) noexcept override { std::terminate(); }
  bool cancel_timer(ra::timer_entry&) noexcept override { return false; }
  template <class Done>
  void run_until(Done done) {
    while (!done()) {
      std::coroutine_handle<> h;
      {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [&] { return !q_.empty(); });
        h = q_.front();
        q_.pop_front();
      }
      h.resume();
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::coroutine_handle<>> q_;
};

// A coroutine's stop state: a fresh source per wait, which the stopper may
// fire while it is registered.
struct stoppable {
  std::mutex m;
  std::optional<ra::inplace_stop_source> source;
  ra::inplace_stop_token token;  // read by the coroutine's own thread only
};

struct env_of_task {
  test_loop* loop;
  ra::inplace_stop_token token;
  ra::scheduler query(ra::get_scheduler_t) const noexcept { return ra::scheduler(*loop); }
  ra::inplace_stop_token query(ra::get_stop_token_t) const noexcept { return token; }
};

struct task {
  struct promise_type {
    test_loop* loop = nullptr;
    stoppable* stop = nullptr;
    std::atomic<bool> finished{false};
    task get_return_object() { return task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept {
      finished.store(true);
      return {};
    }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
    env_of_task get_env() const noexcept { return {loop, stop->token}; }
  };
  std::coroutine_handle<promise_type> h;
  explicit task(std::coroutine_handle<promise_type> x) : h(x) {}
  task(task&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~task() {
    if (h) h.destroy();
  }
  bool finished() const { return h.promise().finished.load(); }
};

struct ring {
  ra::notify n;
  std::atomic<int> inside{0};
  long passes = 0;  // plain: the permit's hand-over orders every access
  std::atomic<long> stops{0};
  std::atomic<long> timeouts{0};
  std::atomic<bool> overlap{false};

  void hold() {
    if (inside.exchange(1) != 0) overlap = true;
    ++passes;
    inside.store(0);
  }
};

task worker(ring& r, stoppable& me, long rounds) {
  for (long i = 0; i < rounds;) {
    {
      std::lock_guard<std::mutex> g(me.m);
      me.source.emplace();
      me.token = me.source->get_token();
    }
    bool got = true;
    try {
      co_await r.n.notified();
    } catch (const ra::operation_stopped&) {
      got = false;
    }
    {
      std::lock_guard<std::mutex> g(me.m);
      me.token = {};
      me.source.reset();
    }
    if (!got) {
      r.stops.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    r.hold();
    ++i;
    r.n.notify_one();
  }
}

TEST(async_notify_stress, a_single_permit_circulates_through_threads_and_stopped_coroutines) {
  ring r;
  r.n.notify_one();  // the one permit
  long const rounds = rouse_test::scaled(20000);
  unsigned const threads = rouse_test::oversubscribed(8) / 2;
  constexpr int loops = 2;
  constexpr int tasks_per_loop = 6;

  std::vector<std::unique_ptr<stoppable>> stops;
  std::vector<task> tasks;
  test_loop loop[loops];
  for (int l = 0; l < loops; ++l)
    for (int k = 0; k < tasks_per_loop; ++k) {
      stops.push_back(std::make_unique<stoppable>());
      tasks.push_back(worker(r, *stops.back(), rounds));
      tasks.back().h.promise().loop = &loop[l];
      tasks.back().h.promise().stop = stops.back().get();
      loop[l].schedule(tasks.back().h);
    }

  std::vector<std::thread> runners;
  for (int l = 0; l < loops; ++l)
    runners.emplace_back([&, l] {
      loop[l].run_until([&] {
        for (int k = 0; k < tasks_per_loop; ++k)
          if (!tasks[static_cast<std::size_t>(l * tasks_per_loop + k)].finished()) return false;
        return true;
      });
    });
  std::vector<std::thread> parties;
  for (unsigned t = 0; t < threads; ++t)
    parties.emplace_back([&, t] {
      for (long i = 0; i < rounds; ++i) {
        if (t % 2 == 0) {
          r.n.wait_blocking();
        } else {
          // Short timed waits: some expire, some as they are chosen.
          while (!r.n.wait_blocking_for(std::chrono::microseconds(50))) r.timeouts.fetch_add(1);
        }
        r.hold();
        r.n.notify_one();
      }
    });
  std::atomic<bool> all_done{false};
  std::thread stopper([&] {
    std::minstd_rand rng(7);
    while (!all_done.load()) {
      stoppable& s = *stops[rng() % stops.size()];
      {
        std::lock_guard<std::mutex> g(s.m);
        if (s.source) s.source->request_stop();
      }
      for (int k = 0; k < 8; ++k) std::this_thread::yield();
    }
  });

  for (auto& p : parties) p.join();
  for (auto& t : runners) t.join();
  all_done = true;
  stopper.join();

  EXPECT_FALSE(r.overlap.load());
  EXPECT_EQ(r.passes, rounds * static_cast<long>(threads + loops * tasks_per_loop));
  // Exactly one permit is left: the last holder's, stored.
  EXPECT_TRUE(r.n.notified().await_ready());
  EXPECT_FALSE(r.n.notified().await_ready());
  std::printf("passes %ld, stops %ld, timeouts %ld\n", r.passes, r.stops.load(), r.timeouts.load());
}

// Producers publish items and notify_one; consumers (threads and coroutines)
// take items and wait when there are none. notify_one's permits coalesce, so
// this checks the other promise: no lost wake-up (every item is taken, once:
// a lost wake-up leaves items untaken and the test hangs), then notify_all
// ends the game.
bool take_item(std::atomic<long>& items) {
  long v = items.load();
  while (v > 0 && !items.compare_exchange_weak(v, v - 1)) {
  }
  return v > 0;
}

task consumer(ra::notify& n, std::atomic<long>& items, std::atomic<long>& taken, std::atomic<bool>& over) {
  for (;;) {
    if (take_item(items)) {
      taken.fetch_add(1);
      continue;
    }
    if (over.load()) co_return;
    co_await n.notified();
  }
}

TEST(async_notify_stress, notify_one_loses_no_wake_up_among_threads_and_coroutines) {
  ra::notify n;
  std::atomic<long> items{0}, taken{0};
  std::atomic<bool> over{false};
  long const per_producer = rouse_test::scaled(200000);
  unsigned const producers = 3, consumer_threads = 3;
  long const total = per_producer * producers;
  stoppable no_stop;
  test_loop loop;
  std::vector<task> tasks;
  for (int k = 0; k < 4; ++k) {
    tasks.push_back(consumer(n, items, taken, over));
    tasks.back().h.promise().loop = &loop;
    tasks.back().h.promise().stop = &no_stop;
    loop.schedule(tasks.back().h);
  }
  std::atomic<bool> tasks_done{false};
  std::thread runner([&] {
    loop.run_until([&] {
      for (auto& t : tasks)
        if (!t.finished()) return false;
      return true;
    });
    tasks_done = true;
  });
  std::atomic<unsigned> threads_done{0};
  std::vector<std::thread> threads;
  for (unsigned k = 0; k < consumer_threads; ++k)
    threads.emplace_back([&] {
      for (;;) {
        if (take_item(items)) {
          taken.fetch_add(1);
          continue;
        }
        if (over.load()) break;
        n.wait_blocking();
      }
      threads_done.fetch_add(1);
    });
  for (unsigned p = 0; p < producers; ++p)
    threads.emplace_back([&] {
      for (long i = 0; i < per_producer; ++i) {
        items.fetch_add(1);
        n.notify_one();
      }
    });
  // Every item taken: no wake-up was lost while items remained.
  while (taken.load() < total) std::this_thread::yield();
  over = true;
  // Release every consumer: those waiting (notify_all) and one about to wait
  // (a stored permit), until all have seen `over`.
  while (!tasks_done.load() || threads_done.load() < consumer_threads) {
    n.notify_all();
    n.notify_one();
    std::this_thread::yield();
  }
  for (auto& t : threads) t.join();
  runner.join();
  EXPECT_EQ(items.load(), 0);
  EXPECT_EQ(taken.load(), total);
}

}  // namespace
}  // namespace async_notify_stress
