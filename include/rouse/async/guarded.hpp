// rouse/async/guarded.hpp — an async lock that owns its data.
//
//   rouse::async::guarded<T, Mutex = rouse::async::mutex>
//     co_await lock()          -> guard          exclusive access: g->member, *g
//     lock_blocking()          -> guard          a plain thread's lock
//     try_lock()               -> guard          empty (false) if the lock was busy
//     try_lock_for(d), try_lock_until(t) -> guard   a thread's timed lock (never early)
//     co_await lock_shared()   -> shared_guard   const access (Mutex = async::shared_mutex)
//     lock_shared_blocking(), try_lock_shared() -> shared_guard
//     unsafe_get_unlocked()                      the data without the lock
//
//   rouse::async::guarded<std::vector<int>> queue;
//   (co_await queue.lock())->push_back(1);          // lock, push, unlock
//   if (auto g = queue.try_lock()) g->clear();
//   rouse::async::guarded<table, rouse::async::shared_mutex> t;
//   auto r = co_await t.lock_shared();  r->find(k);  // const access
//
// The async twin of rouse::guarded (rouse/guarded.hpp): the data is a
// private member, reached only through a guard that holds the lock while it
// lives (or through the explicitly unsafe accessor). Mutex is
// rouse::async::mutex or rouse::async::shared_mutex (lock_shared forms
// exist only with the latter). Guards are movable, not copyable, unlock
// when destroyed or on unlock(), and may cross threads and tasks (the async
// mutexes are not tied to a thread). Everything else — FIFO hand-off,
// resumption on the awaiter's executor, cancellation through the stop
// token, blocking forms sharing the queue with tasks — is the Mutex's.
//
// Lifecycle and misuse: a guarded must outlive its guards. Dereferencing a
// guard that holds no lock (empty from try_lock, moved from, unlocked) is
// diagnosed in debug builds ("rouse::async::guarded: misuse: ...", abort).
// Pitfall: `auto& x = *co_await g.lock();` keeps a reference past the end of
// the statement, when the guard is gone.
//
// Size: sizeof(Mutex) + sizeof(T) + padding; a guard is the Mutex's guard
// plus a pointer; a lock awaitable the Mutex's plus a pointer. Cost,
// fairness, memory ordering, processes: the Mutex's.
#pragma once

#include <chrono>
#include <coroutine>
#include <mutex>
#include <type_traits>
#include <utility>

#include "rouse/async/mutex.hpp"
#include "rouse/async/shared_mutex.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

template <class T, class Mutex = async::mutex>
class guarded {
  static_assert(std::is_same_v<Mutex, async::mutex> || std::is_same_v<Mutex, async::shared_mutex>,
                "rouse::async::guarded: Mutex is rouse::async::mutex or rouse::async::shared_mutex");
  static constexpr bool shared = std::is_same_v<Mutex, async::shared_mutex>;
  using exclusive_lock = typename Mutex::guard;

 public:
  using value_type = T;
  using mutex_type = Mutex;

  // Exclusive access to the data while it lives.
  class guard {
   public:
    guard() noexcept = default;
    guard(guard&&) noexcept = default;
    guard& operator=(guard&&) noexcept = default;
    T* operator->() const noexcept { return &get(); }
    T& operator*() const noexcept { return get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(lock_); }
    [[nodiscard]] bool owns_lock() const noexcept { return lock_.owns_lock(); }
    void unlock() noexcept { lock_.unlock(); }
    // The Mutex's guard inside (for a condition variable's wait).
    exclusive_lock& mutex_guard() noexcept { return lock_; }

   private:
    friend class guarded;
    guard(exclusive_lock l, T* data) noexcept : lock_(std::move(l)), data_(data) {}
    T& get() const noexcept {
      ROUSE_CHECK_USAGE(lock_.owns_lock(), "rouse::async::guarded", "a guard that holds no lock was dereferenced");
      return *data_;
    }
    exclusive_lock lock_;
    T* data_ = nullptr;
  };

  template <class... Args>
  requires std::is_constructible_v<T, Args...>
  explicit guarded(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args...>)
      : data_(std::forward<Args>(args)...) {}
  guarded(const guarded&) = delete;
  guarded& operator=(const guarded&) = delete;

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await g.lock()` -> guard.
  template <class Inner, class Guard>
  class lock_awaitable_for {
   public:
    using rouse_affine = void;
    lock_awaitable_for(Inner inner, T* data) noexcept : inner_(std::move(inner)), data_(data) {}
    bool await_ready() noexcept { return inner_.await_ready(); }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      return inner_.await_suspend(h);
    }
    Guard await_resume() { return Guard(inner_.await_resume(), data_); }

   private:
    Inner inner_;
    T* data_;
  };
  using lock_awaitable = lock_awaitable_for<decltype(std::declval<Mutex&>().lock()), guard>;

  [[nodiscard]] lock_awaitable lock() noexcept { return lock_awaitable(mutex_.lock(), &data_); }
#endif

  [[nodiscard]] guard lock_blocking() noexcept { return guard(mutex_.lock_blocking(), &data_); }
  [[nodiscard]] guard try_lock() noexcept {
    if (!mutex_.try_lock()) return guard();
    return guard(exclusive_lock(mutex_, std::adopt_lock), &data_);
  }
  template <class Rep, class Period>
  [[nodiscard]] guard try_lock_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return try_lock_until(::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] guard try_lock_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    if (!mutex_.try_lock_until(t)) return guard();
    return guard(exclusive_lock(mutex_, std::adopt_lock), &data_);
  }

  // The data without the lock: for single-threaded phases (construction,
  // teardown). Named so that it shows in review.
  T& unsafe_get_unlocked() noexcept { return data_; }

 private:
  Mutex mutex_;
  T data_;

  // ---- shared access (Mutex = async::shared_mutex) --------------------------
 public:
  // Const access to the data while it lives.
  class shared_guard {
   public:
    shared_guard() noexcept = default;
    shared_guard(shared_guard&&) noexcept = default;
    shared_guard& operator=(shared_guard&&) noexcept = default;
    const T* operator->() const noexcept { return &get(); }
    const T& operator*() const noexcept { return get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(lock_); }
    [[nodiscard]] bool owns_lock() const noexcept { return lock_.owns_lock(); }
    void unlock() noexcept { lock_.unlock(); }

   private:
    friend class guarded;
    using lock_type = async::shared_mutex::shared_guard;
    shared_guard(lock_type l, const T* data) noexcept : lock_(std::move(l)), data_(data) {}
    const T& get() const noexcept {
      ROUSE_CHECK_USAGE(lock_.owns_lock(), "rouse::async::guarded",
                        "a shared guard that holds no lock was dereferenced");
      return *data_;
    }
    lock_type lock_;
    const T* data_ = nullptr;
  };

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await g.lock_shared()` -> shared_guard.
  [[nodiscard]] auto lock_shared() noexcept requires shared {
    using inner = async::shared_mutex::lock_shared_awaitable;
    return lock_awaitable_for<inner, shared_guard>(mutex_.lock_shared(), &data_);
  }
#endif
  [[nodiscard]] shared_guard lock_shared_blocking() noexcept requires shared {
    return shared_guard(mutex_.lock_shared_blocking(), &data_);
  }
  [[nodiscard]] shared_guard try_lock_shared() noexcept requires shared {
    if (!mutex_.try_lock_shared()) return shared_guard();
    return shared_guard(async::shared_mutex::shared_guard(mutex_, std::adopt_lock), &data_);
  }
};

}  // namespace rouse::async
