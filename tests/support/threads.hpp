// tests/support: the threads a test starts, and what it can see of them.
//
//   rouse_test::thread t([&] { m.lock(); ... });      // a std::thread that knows its kernel id
//   rouse_test::until_asleep(t);                      // it sleeps in a futex wait now
//   t.join();                                         // or leave it to the destructor
//
//   rouse_test::threads ts(4, [&](int i) { ... });    // starts 4 (i = 0..3; or [&] { ... })
//   rouse_test::until_asleep(ts);                     // every one of them sleeps
//   ts.join();                                        // joins all; so does the destructor
//
//   auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] { m.unlock(); });
//   bool const got = rouse_test::on_another_thread([&] { return m.try_lock(); });
//
// Both thread types join in their destructors (as std::jthread does), so a
// test that fails an ASSERT while a thread still runs waits for it: a thread
// that never ends then shows as a hang, which CTest's timeout fails.
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "eventually.hpp"

namespace rouse_test {

class thread {
 public:
  thread() = default;
  template <class F>
  explicit thread(F f) : id_(std::make_unique<std::atomic<pid_t>>(0)) {
    t_ = std::thread([id = id_.get(), f = std::move(f)]() mutable {
      id->store(kernel_tid(), std::memory_order_release);
      f();
    });
  }
  thread(thread&&) noexcept = default;
  thread& operator=(thread&&) = delete;
  ~thread() { join(); }

  void join() {
    if (t_.joinable()) t_.join();
  }
  // The kernel id; waits until the thread has started.
  pid_t tid() const {
    eventually([&] { return id_->load(std::memory_order_acquire) != 0; });
    return id_->load(std::memory_order_acquire);
  }
  // True when the thread sleeps in a futex wait (see is_asleep()).
  bool asleep() const { return is_asleep(tid()); }
  std::thread::native_handle_type native_handle() { return t_.native_handle(); }
  // CPU time the thread has used so far (while it runs): evidence that a
  // thread that cannot sleep has been spinning.
  std::chrono::nanoseconds cpu_time() {
    clockid_t id{};
    timespec ts{};
    if (::pthread_getcpuclockid(t_.native_handle(), &id) != 0 || ::clock_gettime(id, &ts) != 0) return {};
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  }

 private:
  std::unique_ptr<std::atomic<pid_t>> id_;
  std::thread t_;
};

// n threads running f(i) (or f()), joined together.
class threads {
 public:
  template <class F>
  threads(int n, F f) {
    ts_.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      if constexpr (std::is_invocable_v<F&, int>) {
        ts_.emplace_back([f, i]() mutable { f(i); });
      } else {
        ts_.emplace_back(f);
      }
    }
  }
  threads(const threads&) = delete;
  threads& operator=(const threads&) = delete;
  ~threads() { join(); }

  void join() {
    for (auto& t : ts_) t.join();
  }
  int size() const { return static_cast<int>(ts_.size()); }
  thread& operator[](int i) { return ts_[static_cast<std::size_t>(i)]; }
  const thread& operator[](int i) const { return ts_[static_cast<std::size_t>(i)]; }
  auto begin() { return ts_.begin(); }
  auto end() { return ts_.end(); }
  auto begin() const { return ts_.begin(); }
  auto end() const { return ts_.end(); }

 private:
  std::vector<thread> ts_;
};

// Blocks until `t` sleeps in a futex wait.
inline void until_asleep(const thread& t) { until_asleep(t.tid()); }

// Blocks until every thread of `ts` sleeps in a futex wait at once.
inline void until_asleep(const threads& ts) {
  eventually([&] {
    for (auto const& t : ts)
      if (!t.asleep()) return false;
    return true;
  });
}

// A thread that runs f once the process has made `total` wait calls:
//   auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] { ... });
//   ... this thread's next wait (f then finds it asleep, or about to sleep) ...
template <class F>
thread after_wait_calls(std::uint64_t total, F f) {
  return thread([total, f = std::move(f)]() mutable {
    until_wait_calls(total);
    f();
  });
}

// Runs f on a thread of its own and returns what it returned (a lock that
// the calling thread holds is then tried by somebody else).
template <class F>
auto on_another_thread(F f) {
  using result = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<result>) {
    std::thread(f).join();
  } else {
    result r{};
    std::thread([&] { r = f(); }).join();
    return r;
  }
}

}  // namespace rouse_test
