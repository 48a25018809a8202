// rouse/async/mutex.hpp — a mutex that tasks and threads lock: FIFO hand-off.
//
//   rouse::async::mutex m;
//   // a task:                              // a thread:
//   auto g = co_await m.lock();             auto g = m.lock_blocking();
//   ++shared_count;                         ++shared_count;
//   // g's destructor unlocks               // g's destructor unlocks
//
// Contract: one owner at a time. lock() completes once the mutex is the
// awaiter's, as a `guard` (movable; its destructor unlocks). unlock() with
// waiters hands ownership straight to the oldest waiter (FIFO hand-off: the
// mutex never becomes free in between, so nobody barges), and never runs the
// next owner on the unlocker's stack: a task resumes through the waker,
// which schedules it on the executor of its promise's environment (without
// an executor in its environment, inline on the unlocker's thread:
// coroutine_waker's documented fallback). try_lock() never waits and never
// barges past a queued waiter. Cancellation: the awaiting promise's stop
// token; a stopped lock owns nothing and completes as stopped; one that was
// handed the mutex first resumes owning it. A waiting frame destroyed after
// it was handed the mutex unlocks it (the ownership goes on to the next).
// Tasks and threads share one mutex: lock_blocking(), try_lock_for(d),
// try_lock_until(t) (never early) park the thread in the same queue.
// Ownership is not tied to a thread: a task may unlock on another thread
// than it locked on, and a guard may move between tasks.
//
// Implementation: a rouse::async::semaphore of one permit (its strict FIFO
// and its serve are the hand-off; rouse/async/semaphore.hpp has the state
// word, the orderings and the cancellation argument). Never closed.
//
// Misuse: unlock() of a mutex nobody owns (debug: diagnosed, the count
// would exceed 1); destroying it locked or with waiters (debug: "destroyed
// while locked"; a guard that outlives the mutex would unlock freed memory); co_await-ing one lock() twice (debug: diagnosed, as the
// semaphore's "acquire_awaitable: awaited twice"). Recursive locking deadlocks, as for any mutex. std::lock_guard and
// std::unique_lock(m) call lock() and drop the awaitable it returns, with
// no warning (inside a system header): they lock nothing, and their
// unlock() breaks exclusion (debug: diagnosed when nobody holds the mutex;
// while another holder has it, that unlock hands it to the next waiter
// undiagnosed: the mutex counts permits, it does not know its owner). Use
// the guard, or
// std::unique_lock with std::adopt_lock / std::try_to_lock (try_lock() and
// unlock() are std's).
//
// sizeof: mutex 24 bytes (32 in debug builds: its semaphore's permit
// count); guard one pointer; a lock() awaitable 248 bytes in the awaiting frame (the semaphore's acquire awaitable and the mutex's
// address: a ready lock writes 48 of them, the queued wait is built in
// place only when it must wait); no allocation per wait. Fairness: FIFO,
// hand-off. Cost with nobody waiting: lock / try_lock one load and one CAS;
// unlock one load and one CAS; no lock, no system call. Across
// processes: no.
//
// Memory ordering: everything the owner did before unlock() happens-before
// everything the next owner does after its lock completes (the
// semaphore's release / acquire on its word, or its queue's lock and the
// claim for a hand-off).
#pragma once

#include <chrono>
#include <coroutine>
#include <mutex>
#include <utility>

#include "rouse/async/semaphore.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

class mutex {
 public:
  class guard;
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  class lock_awaitable;
#endif

  mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  // Debug: destroyed while locked (waiters are queued only while it is).
  // Models keep the semaphore's own queue check only.
  ~mutex() {
#if !defined(ROUSE_MODEL_RELACY)
    ROUSE_CHECK_USAGE(sem_.available() == 1, "rouse::async::mutex", "destroyed while locked");
#endif
  }

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await m.lock()` -> guard (owning). Stopped through the awaiting
  // promise's stop token (a stopped lock owns nothing and completes as stopped).
  [[nodiscard]] inline lock_awaitable lock() noexcept;
#endif
  // True when it locked: the caller owns the mutex and must unlock() it.
  [[nodiscard]] bool try_lock() noexcept { return sem_.try_take(1) == semaphore::take_result::taken; }
  // Hands ownership to the oldest waiter, or leaves the mutex unlocked.
  void unlock() noexcept {
    ROUSE_CHECK_USAGE(sem_.available() == 0, "rouse::async::mutex", "unlock() of a mutex nobody owns");
    sem_.release(1);
  }
  // A plain thread's lock.
  [[nodiscard]] inline guard lock_blocking() noexcept;
  // A plain thread's timed lock; true when it locked (then unlock() it).
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return try_lock_until(::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    semaphore::permit p = sem_.try_acquire_until(1, t);
    if (!p) return false;
    p.forget();  // the permit is the ownership
    return true;
  }

 private:
  semaphore sem_{1};
};

// Owns a lock of one mutex (or nothing). Movable, not copyable.
class mutex::guard {
 public:
  using mutex_type = async::mutex;
  guard() noexcept = default;
  guard(mutex_type& m, std::adopt_lock_t) noexcept : m_(&m) {}
  guard(guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  guard& operator=(guard&& o) noexcept {
    if (this != &o) {
      unlock();
      m_ = std::exchange(o.m_, nullptr);
    }
    return *this;
  }
  guard(const guard&) = delete;
  guard& operator=(const guard&) = delete;
  ~guard() { unlock(); }

  // Unlocks now if it owns the lock (then owns nothing).
  void unlock() noexcept {
    if (mutex_type* const m = std::exchange(m_, nullptr)) m->unlock();
  }
  [[nodiscard]] bool owns_lock() const noexcept { return m_ != nullptr; }
  explicit operator bool() const noexcept { return owns_lock(); }
  [[nodiscard]] mutex_type* mutex() const noexcept { return m_; }
  // Gives up ownership without unlocking; returns the mutex (the caller
  // unlocks it).
  mutex_type* release() noexcept { return std::exchange(m_, nullptr); }

 private:
  mutex_type* m_ = nullptr;
};

inline mutex::guard mutex::lock_blocking() noexcept {
  semaphore::permit p = sem_.acquire_blocking(1);
  p.forget();  // never closed: the permit is the ownership
  return guard(*this, std::adopt_lock);
}

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES

// `co_await m.lock()` -> mutex::guard. Movable until awaited.
class mutex::lock_awaitable {
 public:
  using rouse_affine = void;
  explicit lock_awaitable(async::mutex& m) noexcept : m_(&m), acquire_(m.sem_, 1) {}
  bool await_ready() noexcept { return acquire_.await_ready(); }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    return acquire_.await_suspend(h);
  }
  guard await_resume() {
    semaphore::permit p = acquire_.await_resume();  // throws operation_stopped when stopped
    p.forget();
    return guard(*m_, std::adopt_lock);
  }

 private:
  async::mutex* m_;
  semaphore::acquire_awaitable acquire_;
};

inline mutex::lock_awaitable mutex::lock() noexcept { return lock_awaitable(*this); }

#endif  // ROUSE_DETAIL_ASYNC_LIST_COROUTINES

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(mutex) == (ROUSE_DEBUG_CHECKS ? 32 : 24));  // its semaphore's
static_assert(sizeof(mutex::guard) == sizeof(void*));
static_assert(sizeof(mutex::lock_awaitable) == 248);
#endif

}  // namespace rouse::async
