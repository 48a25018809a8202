// Stress: many producers (more than cores) each publish M items into a
// small MPSC structure (a Treiber stack of numbered nodes) and notify one
// consumer through a wake_sink. The consumer waits with wait_until (the
// blocking form on a thread; the coroutine form on a tiny single-thread
// loop of this test's own) and takes whole batches. Every item is observed
// exactly once (a per-item count), and nothing hangs (the CTest timeout
// turns a lost wake-up into a failure). Also rouse::async::atomic_waker
// with a thread consumer.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "rouse/async/atomic_waker.hpp"
#include "rouse/async/diatomic_waker.hpp"
#include "rouse/thread_parker.hpp"
#include "stress.hpp"

namespace async_waker_stress {
namespace {

using rouse::async::idle_notify;
using rouse::async::wake_sink;
using rouse::async::wake_source;

struct node {
  node* next = nullptr;
  long id = 0;
};

// Multi-producer push, single-consumer take-all.
class mpsc_stack {
 public:
  void push(node* n) noexcept {
    n->next = head_.load(std::memory_order_relaxed);
    while (!head_.compare_exchange_weak(n->next, n, std::memory_order_release, std::memory_order_relaxed)) {
    }
  }
  node* take_all() noexcept { return head_.exchange(nullptr, std::memory_order_acquire); }
  bool empty() const noexcept { return head_.load(std::memory_order_relaxed) == nullptr; }

 private:
  std::atomic<node*> head_{nullptr};
};

struct workload {
  unsigned producers = rouse_test::oversubscribed(8);
  long per_producer = rouse_test::scaled(100000);
  long total() const { return static_cast<long>(producers) * per_producer; }
  std::vector<node> nodes;
  std::vector<int> seen;
  mpsc_stack stack;
  workload() : nodes(static_cast<std::size_t>(total())), seen(static_cast<std::size_t>(total()), 0) {
    for (long i = 0; i < total(); ++i) nodes[static_cast<std::size_t>(i)].id = i;
  }
  // Producer p publishes its items, notifying after each.
  template <class Notify>
  void produce(unsigned p, Notify notify) {
    for (long i = 0; i < per_producer; ++i) {
      stack.push(&nodes[static_cast<std::size_t>(static_cast<long>(p) * per_producer + i)]);
      notify();
    }
  }
  // Counts a batch; returns its size.
  long consume(node* n) {
    long k = 0;
    for (; n; n = n->next, ++k) ++seen[static_cast<std::size_t>(n->id)];
    return k;
  }
  void check() const {
    long wrong = 0;
    for (int s : seen) wrong += s != 1;
    EXPECT_EQ(wrong, 0) << "items observed other than exactly once";
  }
};

template <class Notify>
void run_threads(workload& w, Notify notify, std::vector<std::thread>& threads) {
  for (unsigned p = 0; p < w.producers; ++p) threads.emplace_back([&w, p, notify] { w.produce(p, notify); });
}

void blocking_consumer(idle_notify mode) {
  workload w;
  wake_sink sink(mode);
  wake_source const src = sink.source();
  std::vector<std::thread> threads;
  if (mode == idle_notify::load)
    run_threads(w, [src] { src.notify_after_publish(); }, threads);
  else
    run_threads(w, [src] { src.notify(); }, threads);
  long taken = 0;
  while (taken < w.total()) {
    node* batch = sink.wait_until_blocking([&]() -> std::optional<node*> {
      if (node* n = w.stack.take_all()) return n;
      return std::nullopt;
    });
    taken += w.consume(batch);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken, w.total());
  EXPECT_TRUE(w.stack.empty());
  w.check();
}

TEST(async_waker_stress, blocking_consumer_sees_every_item_once) { blocking_consumer(idle_notify::rmw); }
TEST(async_waker_stress, blocking_consumer_with_load_only_idle_notify) { blocking_consumer(idle_notify::load); }

// ---- the coroutine form on a single-thread loop -----------------------------

class loop_executor final : public rouse::async::executor {
 public:
  void schedule(std::coroutine_handle<> h) noexcept override {
    {
      std::lock_guard<std::mutex> g(m_);
      q_.push_back(h);
    }
    cv_.notify_one();
  }
  void add_timer(rouse::async::timer_entry&) noexcept override {}
  bool cancel_timer(rouse::async::timer_entry&) noexcept override { return false; }
  // Runs until `done` is set (by the coroutine, on this thread).
  void run(const bool& done) {
    while (!done) {
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

struct job {
  struct promise_type {
    rouse::async::executor* ex = nullptr;
    rouse::async::executor* rouse_executor() noexcept { return ex; }
    job get_return_object() noexcept { return job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
  explicit job(std::coroutine_handle<promise_type> x) noexcept : h(x) {}
  job(job&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~job() {
    if (h) h.destroy();
  }
};

void coroutine_consumer(idle_notify mode, bool with_executor) {
  workload w;
  wake_sink sink(mode);
  wake_source const src = sink.source();
  loop_executor loop;
  bool done = false;
  long taken = 0;
  auto body = [&]() -> job {
    while (taken < w.total()) {
      node* batch = co_await sink.wait_until([&]() -> std::optional<node*> {
        if (node* n = w.stack.take_all()) return n;
        return std::nullopt;
      });
      taken += w.consume(batch);
    }
    done = true;
  };
  job j = body();
  j.h.promise().ex = with_executor ? &loop : nullptr;
  std::vector<std::thread> threads;
  if (mode == idle_notify::load)
    run_threads(w, [src] { src.notify_after_publish(); }, threads);
  else
    run_threads(w, [src] { src.notify(); }, threads);
  if (with_executor) {
    loop.schedule(j.h);
    loop.run(done);
    for (auto& t : threads) t.join();
  } else {
    // No executor: the coroutine resumes inside the notifiers' notify().
    j.h.resume();
    for (auto& t : threads) t.join();
  }
  EXPECT_TRUE(j.h.done());
  EXPECT_EQ(taken, w.total());
  w.check();
}

TEST(async_waker_stress, coroutine_consumer_on_a_loop_sees_every_item_once) {
  coroutine_consumer(idle_notify::rmw, true);
}
TEST(async_waker_stress, coroutine_consumer_on_a_loop_with_load_only_idle_notify) {
  coroutine_consumer(idle_notify::load, true);
}
TEST(async_waker_stress, coroutine_consumer_resumed_by_notifiers) { coroutine_consumer(idle_notify::rmw, false); }

// ---- atomic_waker ----------------------------------------------------------

TEST(async_waker_stress, atomic_waker_thread_consumer_sees_every_item_once) {
  workload w;
  rouse::async::atomic_waker aw;
  rouse::thread_parker parker;
  std::vector<std::thread> threads;
  run_threads(w, [&aw] { aw.wake(); }, threads);
  rouse::async::waker const me = rouse::async::thread_waker(parker);
  long taken = 0;
  while (taken < w.total()) {
    if (node* n = w.stack.take_all()) {
      taken += w.consume(n);
      continue;
    }
    aw.register_waker(me);
    if (node* n = w.stack.take_all()) {
      taken += w.consume(n);
      continue;
    }
    parker.park();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken, w.total());
  w.check();
}

}  // namespace
}  // namespace async_waker_stress
