// tests/support/async_test_loop.hpp — a single-thread test executor and a
// minimal coroutine type that is not a rouse task (no get_env, no
// unhandled_stopped), shared by the async primitives' unit tests: the
// awaitables must work in foreign coroutines, resumed on this loop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "rouse/async/executor.hpp"

namespace {
namespace ra = rouse::async;

// ---- a loop and a coroutine type (until run_loop / task exist) ---------------

class test_loop final : public ra::executor {
 public:
  void schedule(std::coroutine_handle<> h) noexcept override {
    std::lock_guard<std::mutex> g(m_);
    q_.push_back(h);
    cv_.notify_one();
  }
  void add_timer(ra::timer_entry&) noexcept override { std::terminate(); }
  bool cancel_timer(ra::timer_entry&) noexcept override { return false; }
  // Resumes queued coroutines until none is left; returns how many ran.
  int drain() {
    int n = 0;
    while (std::coroutine_handle<> h = pop(false)) {
      h.resume();
      ++n;
    }
    return n;
  }
  // Runs (sleeping when idle) until done() holds after a resumption.
  template <class Done>
  void run_until(Done done) {
    while (!done()) pop(true).resume();
  }
  bool discard(std::coroutine_handle<> h) {
    std::lock_guard<std::mutex> g(m_);
    for (auto it = q_.begin(); it != q_.end(); ++it)
      if (*it == h) {
        q_.erase(it);
        return true;
      }
    return false;
  }

 private:
  std::coroutine_handle<> pop(bool block) {
    std::unique_lock<std::mutex> g(m_);
    if (block) cv_.wait(g, [&] { return !q_.empty(); });
    if (q_.empty()) return {};
    std::coroutine_handle<> h = q_.front();
    q_.pop_front();
    return h;
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::coroutine_handle<>> q_;
};

struct env_on_loop {
  test_loop* loop;
  ra::inplace_stop_token token;
  ra::scheduler query(ra::get_scheduler_t) const noexcept { return ra::scheduler(*loop); }
  ra::inplace_stop_token query(ra::get_stop_token_t) const noexcept { return token; }
};

template <bool StopsInPlace = false>
struct task {
  struct promise_type {
    test_loop* loop = nullptr;
    ra::inplace_stop_token token{};
    bool stopped = false;
    bool finished = false;
    std::exception_ptr error;
    task get_return_object() { return task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept {
      finished = true;
      return {};
    }
    void return_void() {}
    void unhandled_exception() { error = std::current_exception(); }
    env_on_loop get_env() const noexcept { return {loop, token}; }
    std::coroutine_handle<> unhandled_stopped() noexcept
      requires StopsInPlace
    {
      stopped = true;
      return std::noop_coroutine();
    }
  };
  std::coroutine_handle<promise_type> h;
  explicit task(std::coroutine_handle<promise_type> x) : h(x) {}
  task(task&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~task() {
    if (h) h.destroy();
  }
  void start(test_loop& l, ra::inplace_stop_token t = {}) {
    h.promise().loop = &l;
    h.promise().token = t;
    l.schedule(h);
  }
  bool finished() const { return h.promise().finished; }
  bool stopped() const { return h.promise().stopped; }
  bool threw_stopped() const {
    if (!h.promise().error) return false;
    try {
      std::rethrow_exception(h.promise().error);
    } catch (const ra::operation_stopped&) {
      return true;
    } catch (...) {
      return false;
    }
  }
  void destroy() { std::exchange(h, {}).destroy(); }
};

// A bare foreign coroutine: no executor in its environment, only a stop
// token (none by default); started and destroyed by hand. For waits that
// must work, and allocate nothing, without any executor.
struct bare {
  struct promise_type {
    ra::inplace_stop_token token{};
    bool done = false;
    struct env {
      ra::inplace_stop_token token;
      ra::inplace_stop_token query(ra::get_stop_token_t) const noexcept { return token; }
    };
    env get_env() const noexcept { return {token}; }
    bare get_return_object() { return bare{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept {
      done = true;
      return {};
    }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
  explicit bare(std::coroutine_handle<promise_type> x) noexcept : h(x) {}
  bare(bare&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~bare() {
    if (h) h.destroy();
  }
};

// A foreign coroutine that starts at once and destroys itself at its end;
// no get_env (so no executor: resumed on the waker's thread), no handle.
struct eager {
  struct promise_type {
    eager get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

}  // namespace
