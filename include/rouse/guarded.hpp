// rouse/guarded.hpp — a lock that owns its data.
//
//   rouse::guarded<T, Mutex = rouse::mutex>
//     lock()              -> guard          exclusive access: g->member, *g
//     try_lock()          -> guard          empty (false) if the lock was busy
//     try_lock_for(d), try_lock_until(t)    timed, when Mutex has them
//     lock_shared()       -> shared_guard   const access, when Mutex has lock_shared
//     try_lock_shared()   -> shared_guard
//     with_lock(f)        -> f(T&)'s result, under the lock
//     with_lock_shared(f) -> f(const T&)'s result, under a shared lock
//     unsafe_get_unlocked()                 the data without the lock (named so it shows in review)
//
// Purpose: make "touch the data only while holding its lock" the only way
// the code can be written. The data is a private member; the only ways to
// reach it are a guard (which holds the lock for as long as it lives) or the
// explicitly unsafe accessor. Mutex may be any Lockable (rouse::mutex,
// rouse::spin_lock, rouse::recursive_mutex, std::mutex ...); lock_shared()
// exists when Mutex has lock_shared()/unlock_shared() (rouse::shared_mutex,
// std::shared_mutex) and hands out const access only.
//
//   rouse::guarded<std::vector<int>> queue;
//   queue.lock()->push_back(1);                       // lock, push, unlock (end of statement)
//   auto n = queue.with_lock([](auto& v) { return v.size(); });
//   if (auto g = queue.try_lock()) g->clear();
//
// Guards are movable, not copyable, and release the lock when destroyed or
// when unlock() is called. A guard's as_unique_lock() (exclusive guards)
// gives the std::unique_lock<Mutex> inside it, for condition variables:
// cv.wait(g.as_unique_lock(), pred).
//
// Lifecycle and misuse: a guarded must outlive its guards. Dereferencing a
// guard that does not hold the lock (empty from try_lock, moved from, or
// unlocked) is diagnosed in debug builds ("rouse::guarded: misuse: ...",
// abort). Destroying a guarded while a guard is alive is caught by the
// Mutex's own check (rouse::mutex diagnoses destruction while locked).
// Pitfall (as with every lock guard): `auto& x = *data.lock();` keeps a
// reference past the end of the statement, when the guard is gone.
// Destruction: the Mutex's rule. With rouse's locks (and std's), a thread
// that locks after every other thread's last lock may destroy the guarded
// at once, even while the guard released before its own is still inside
// the Mutex's unlock(): a guard's own state lives in the guard.
//
// Size: sizeof(Mutex) + sizeof(T) + padding; no extra state.
// Cost: exactly the Mutex's; a guard is the unique_lock/shared_lock it wraps
// plus a pointer.
// Fairness, processes, memory ordering: the Mutex's.
#pragma once

#include <chrono>
#include <concepts>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <type_traits>
#include <utility>

#include "rouse/detail/annotations.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/mutex.hpp"

namespace rouse {

namespace detail {
template <class M>
concept shared_lockable = requires(M& m) {
  m.lock_shared();
  m.unlock_shared();
  { m.try_lock_shared() } -> std::convertible_to<bool>;
};
template <class M>
concept timed_lockable = requires(M& m) {
  { m.try_lock_for(std::chrono::milliseconds(1)) } -> std::convertible_to<bool>;
};
}  // namespace detail

template <class T, class Mutex = rouse::mutex>
class guarded {
 public:
  using value_type = T;
  using mutex_type = Mutex;

  // Exclusive access to the data while it lives.
  class guard {
   public:
    guard(guard&&) noexcept = default;
    guard& operator=(guard&&) noexcept = default;
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

    T* operator->() const noexcept { return &get(); }
    T& operator*() const noexcept { return get(); }
    // False for a guard from a failed try_lock, a moved-from or an unlocked guard.
    explicit operator bool() const noexcept { return lock_.owns_lock(); }
    bool owns_lock() const noexcept { return lock_.owns_lock(); }
    // Releases the lock early; the guard is empty afterwards.
    void unlock() { lock_.unlock(); }
    // The lock inside, for condition variables. It must hold the lock again
    // whenever the guard is dereferenced.
    std::unique_lock<Mutex>& as_unique_lock() noexcept { return lock_; }

   private:
    friend class guarded;
    guard(std::unique_lock<Mutex> l, T* data) noexcept : lock_(std::move(l)), data_(data) {}
    T& get() const noexcept {
      ROUSE_CHECK_USAGE(lock_.owns_lock(), "rouse::guarded", "access through a guard that does not hold the lock");
      return *data_;
    }
    std::unique_lock<Mutex> lock_;
    T* data_;
  };

  // Shared (read-only) access while it lives.
  class shared_guard {
   public:
    shared_guard(shared_guard&&) noexcept = default;
    shared_guard& operator=(shared_guard&&) noexcept = default;
    shared_guard(const shared_guard&) = delete;
    shared_guard& operator=(const shared_guard&) = delete;

    const T* operator->() const noexcept { return &get(); }
    const T& operator*() const noexcept { return get(); }
    explicit operator bool() const noexcept { return lock_.owns_lock(); }
    bool owns_lock() const noexcept { return lock_.owns_lock(); }
    void unlock() { lock_.unlock(); }

   private:
    friend class guarded;
    shared_guard(std::shared_lock<Mutex> l, const T* data) noexcept : lock_(std::move(l)), data_(data) {}
    const T& get() const noexcept {
      ROUSE_CHECK_USAGE(lock_.owns_lock(), "rouse::guarded", "access through a guard that does not hold the lock");
      return *data_;
    }
    std::shared_lock<Mutex> lock_;
    const T* data_;
  };

  guarded() = default;
  // Constructs the data from `args` (as T(args...)).
  template <class... Args>
  requires std::constructible_from<T, Args...>
  explicit guarded(std::in_place_t, Args&&... args) : data_(std::forward<Args>(args)...) {}
  // Constructs the data from one value.
  template <class U>
  requires(std::constructible_from<T, U> && !std::same_as<std::remove_cvref_t<U>, guarded> &&
           !std::same_as<std::remove_cvref_t<U>, std::in_place_t>) explicit guarded(U&& value)
      : data_(std::forward<U>(value)) {}

  guarded(const guarded&) = delete;
  guarded& operator=(const guarded&) = delete;

  [[nodiscard]] guard lock() { return guard(std::unique_lock<Mutex>(mutex_), &data_); }

  [[nodiscard]] guard try_lock() { return guard(std::unique_lock<Mutex>(mutex_, std::try_to_lock), &data_); }

  template <class Rep, class Period>
  requires detail::timed_lockable<Mutex>
  [[nodiscard]] guard try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return guard(std::unique_lock<Mutex>(mutex_, timeout), &data_);
  }

  template <class Clock, class Duration>
  requires detail::timed_lockable<Mutex>
  [[nodiscard]] guard try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return guard(std::unique_lock<Mutex>(mutex_, deadline), &data_);
  }

  [[nodiscard]] shared_guard lock_shared() requires detail::shared_lockable<Mutex> {
    return shared_guard(std::shared_lock<Mutex>(mutex_), &data_);
  }

  [[nodiscard]] shared_guard try_lock_shared() requires detail::shared_lockable<Mutex> {
    return shared_guard(std::shared_lock<Mutex>(mutex_, std::try_to_lock), &data_);
  }

  // Calls f(T&) while holding the lock; returns what f returns.
  template <class F>
  decltype(auto) with_lock(F&& f) {
    guard g = lock();
    return std::invoke(std::forward<F>(f), *g);
  }

  // Calls f(const T&) while holding a shared lock; returns what f returns.
  template <class F>
  requires detail::shared_lockable<Mutex>
  decltype(auto) with_lock_shared(F&& f) {
    shared_guard g = lock_shared();
    return std::invoke(std::forward<F>(f), *g);
  }

  // The data without taking the lock. Only for code that knows no other
  // thread can reach the object (construction, teardown, single-threaded
  // phases). The name is meant to stand out in review.
  T& unsafe_get_unlocked() noexcept { return data_; }
  const T& unsafe_get_unlocked() const noexcept { return data_; }

 private:
  Mutex mutex_;
  T data_{};
};

}  // namespace rouse
