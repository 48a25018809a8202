// rouse/async/shared_mutex.hpp — a readers-writer lock for tasks and
// threads: FIFO, writers not starved, readers admitted in batches.
//
//   rouse::async::shared_mutex m;
//   { auto r = co_await m.lock_shared(); read(); }     // many at once
//   { auto w = co_await m.lock();        write(); }    // alone
//   // threads: m.lock_shared_blocking(), m.lock_blocking()
//
// Contract: any number of shared owners, or one exclusive owner. Requests
// are served strictly in arrival order: a writer that queues stops every
// later reader until it has had its turn (writers are never starved by a
// stream of readers), and the readers queued after it are admitted
// together once it unlocks (one unlock serves the whole batch up to the
// next writer). unlock() / unlock_shared() never run the next owner on the
// unlocker's stack (the waiters' executors resume them; without an
// executor, inline: coroutine_waker's fallback). try_ forms never wait and
// never barge past a queued request. Cancellation: the awaiting promise's
// stop token; a stopped lock owns nothing and completes as stopped; a
// queued writer that leaves gives back the reader slots it had gathered
// (readers let in that way without an executor run inside the writer's
// stop or timeout, after the writer was released; after a stop they may
// destroy the writer's frame, not after a timeout: semaphore.hpp).
// Tasks and threads share it: lock_blocking(), lock_shared_blocking() and
// the timed try_ forms (never early) park the thread in the same queue.
//
// Implementation: a rouse::async::semaphore of max_readers permits
// (rouse/async/semaphore.hpp: word, orderings, cancellation). A reader
// takes one, a writer all of them; the semaphore's partial assignment is
// what lets a queued writer collect the slots as readers leave while no
// later reader takes one.
//
// Misuse: unlocking what one does not own (debug: diagnosed when the count
// would exceed max_readers); more than max_readers shared owners at once
// (they wait); destroying it locked or with waiters (debug: "destroyed
// while locked").
//
// sizeof: shared_mutex 24 bytes (32 in debug builds: its semaphore's
// permit count); a guard one pointer; a lock awaitable 248 bytes in the
// awaiting frame (as async::mutex's: the queued wait is built
// in place only when it must wait); no allocation per wait. Fairness: FIFO
// between readers and writers. Cost with nobody waiting: every lock one
// load and one CAS, every unlock one load and one CAS; no lock, no
// system call. Across processes: no.
//
// Memory ordering: a writer's unlock happens-before the next owners'
// return from their locks; a reader's unlock happens-before the next
// writer's (the semaphore's release / acquire, or its queue's lock).
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <utility>

#include "rouse/async/semaphore.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

class shared_mutex {
 public:
  // How many shared owners at once.
  static constexpr std::size_t max_readers = std::size_t{1} << 26;

  class guard;         // exclusive
  class shared_guard;  // shared
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  template <class Guard>
  class lock_awaitable_for;
  using lock_awaitable = lock_awaitable_for<guard>;
  using lock_shared_awaitable = lock_awaitable_for<shared_guard>;
#endif

  shared_mutex() noexcept = default;
  shared_mutex(const shared_mutex&) = delete;
  shared_mutex& operator=(const shared_mutex&) = delete;
  // Debug: destroyed while locked (exclusive or shared; waiters are queued
  // only while it is).
  ~shared_mutex() {
    ROUSE_CHECK_USAGE(sem_.available() == max_readers, "rouse::async::shared_mutex", "destroyed while locked");
  }

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await m.lock()` -> guard; `co_await m.lock_shared()` -> shared_guard.
  [[nodiscard]] inline lock_awaitable lock() noexcept;
  [[nodiscard]] inline lock_shared_awaitable lock_shared() noexcept;
#endif

  [[nodiscard]] bool try_lock() noexcept { return sem_.try_take(max_readers) == semaphore::take_result::taken; }
  [[nodiscard]] bool try_lock_shared() noexcept { return sem_.try_take(1) == semaphore::take_result::taken; }
  void unlock() noexcept {
    ROUSE_CHECK_USAGE(sem_.available() == 0, "rouse::async::shared_mutex", "unlock() without the exclusive lock");
    sem_.release(max_readers);
  }
  void unlock_shared() noexcept {
    ROUSE_CHECK_USAGE(sem_.available() < max_readers, "rouse::async::shared_mutex",
                      "unlock_shared() without a shared lock");
    sem_.release(1);
  }

  // A plain thread's locks.
  [[nodiscard]] inline guard lock_blocking() noexcept;
  [[nodiscard]] inline shared_guard lock_shared_blocking() noexcept;
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return timed(max_readers, ::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return timed(max_readers, t);
  }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return timed(1, ::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return timed(1, t);
  }

 private:
  template <class Clock, class Duration>
  bool timed(std::size_t n, const std::chrono::time_point<Clock, Duration>& t) noexcept {
    semaphore::permit p = sem_.try_acquire_until(n, t);
    if (!p) return false;
    p.forget();  // the permits are the ownership
    return true;
  }

  semaphore sem_{max_readers};
};

namespace detail {
// A guard of shared_mutex: owns one lock (exclusive or shared) or nothing.
template <void (shared_mutex::*Unlock)() noexcept>
class shared_mutex_guard {
 public:
  using mutex_type = shared_mutex;
  shared_mutex_guard() noexcept = default;
  shared_mutex_guard(mutex_type& m, std::adopt_lock_t) noexcept : m_(&m) {}
  shared_mutex_guard(shared_mutex_guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  shared_mutex_guard& operator=(shared_mutex_guard&& o) noexcept {
    if (this != &o) {
      unlock();
      m_ = std::exchange(o.m_, nullptr);
    }
    return *this;
  }
  shared_mutex_guard(const shared_mutex_guard&) = delete;
  shared_mutex_guard& operator=(const shared_mutex_guard&) = delete;
  ~shared_mutex_guard() { unlock(); }

  void unlock() noexcept {
    if (mutex_type* const m = std::exchange(m_, nullptr)) (m->*Unlock)();
  }
  [[nodiscard]] bool owns_lock() const noexcept { return m_ != nullptr; }
  explicit operator bool() const noexcept { return owns_lock(); }
  [[nodiscard]] mutex_type* mutex() const noexcept { return m_; }
  mutex_type* release() noexcept { return std::exchange(m_, nullptr); }

 private:
  mutex_type* m_ = nullptr;
};
}  // namespace detail

class shared_mutex::guard : public detail::shared_mutex_guard<&shared_mutex::unlock> {
  using detail::shared_mutex_guard<&shared_mutex::unlock>::shared_mutex_guard;
};
class shared_mutex::shared_guard : public detail::shared_mutex_guard<&shared_mutex::unlock_shared> {
  using detail::shared_mutex_guard<&shared_mutex::unlock_shared>::shared_mutex_guard;
};

inline shared_mutex::guard shared_mutex::lock_blocking() noexcept {
  sem_.acquire_blocking(max_readers).forget();
  return guard(*this, std::adopt_lock);
}
inline shared_mutex::shared_guard shared_mutex::lock_shared_blocking() noexcept {
  sem_.acquire_blocking(1).forget();
  return shared_guard(*this, std::adopt_lock);
}

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES

// `co_await m.lock()` / `co_await m.lock_shared()`. Movable until awaited.
template <class Guard>
class shared_mutex::lock_awaitable_for {
 public:
  using rouse_affine = void;
  lock_awaitable_for(shared_mutex& m, std::size_t n) noexcept : m_(&m), acquire_(m.sem_, n) {}
  bool await_ready() noexcept { return acquire_.await_ready(); }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    return acquire_.await_suspend(h);
  }
  Guard await_resume() {
    acquire_.await_resume().forget();  // throws operation_stopped when stopped
    return Guard(*m_, std::adopt_lock);
  }

 private:
  shared_mutex* m_;
  semaphore::acquire_awaitable acquire_;
};

inline shared_mutex::lock_awaitable shared_mutex::lock() noexcept { return lock_awaitable(*this, max_readers); }
inline shared_mutex::lock_shared_awaitable shared_mutex::lock_shared() noexcept {
  return lock_shared_awaitable(*this, 1);
}

#endif  // ROUSE_DETAIL_ASYNC_LIST_COROUTINES

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(shared_mutex) == (ROUSE_DEBUG_CHECKS ? 32 : 24));  // its semaphore's
static_assert(sizeof(shared_mutex::guard) == sizeof(void*));
#endif

}  // namespace rouse::async
