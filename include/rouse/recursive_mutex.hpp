// rouse/recursive_mutex.hpp — a recursive mutex on rouse::mutex's futex word.
//
//   rouse::recursive_mutex         drop-in for std::recursive_mutex
//   rouse::recursive_timed_mutex   the same type (drop-in for std::recursive_timed_mutex)
//
// Purpose: a mutex that its holder may lock again; each lock() (or
// successful try_lock*) must be matched by one unlock(), and the mutex is
// released by the last. Members: lock, try_lock, try_lock_for,
// try_lock_until, unlock.
//
// Lifecycle: constexpr-constructible (constinit globals; std's is not) and a
// literal type in every build, not copyable or movable.
//
// Destruction: rouse::mutex's rule (std's): a thread that locks it after
// every other thread's last lock may unlock and destroy it at once. The
// last unlock() clears the owner before it releases the inner mutex, whose
// release (see mutex.hpp) is its last access to the object.
//
// Misuse, diagnosed in debug builds ("rouse::recursive_mutex: misuse: ..."),
// abort: unlock() by a thread that does not hold it (including one that is
// not locked at all, or unlocked once too often), destroying it while locked.
// Release builds check nothing. Not misuse: locking it more than
// `max_depth` times, which makes lock() throw std::system_error
// (resource_unavailable_try_again) and try_lock*() return false, as std allows.
//
// Size: 12 bytes: the 4-byte rouse::mutex word, the owner's thread id, and
// the depth (static_asserted).
//
// Cost with nobody waiting: the first lock() reads the owner (plain relaxed
// load), then takes the inner rouse::mutex (one compare-exchange) and stores
// the owner; a nested lock() is a load and an increment. unlock() of the last
// level is a store and the inner unlock() (one compare-exchange). No system
// call. Contention, spinning and fairness are rouse::mutex's (docs/locks.md).
//
// Processes: process-private.
//
// State:
//   inner     rouse::mutex (see mutex.hpp's state table)
//   owner_    thread id of the holder (platform::this_thread_id()), 0 = none
//   depth_    lock count of the holder; read and written only by the holder
//
// Memory ordering: the inner mutex orders critical sections (its release /
// acquire); see mutex.hpp. owner_ is relaxed: a thread reads its own id there
// only if it stored it itself (no other thread ever stores that id), and any
// other value — stale or not — sends it to the inner lock(), which is
// correct whatever the value. The holder stores 0 before releasing the inner
// mutex, so the next holder's store of its id follows it in owner_'s
// modification order.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <system_error>

#include "rouse/detail/annotations.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/held_locks.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/cpu.hpp"

namespace rouse {

class ROUSE_CAPABILITY("mutex") recursive_mutex {
 public:
  static constexpr std::uint32_t max_depth = std::numeric_limits<std::uint32_t>::max();

  constexpr recursive_mutex() noexcept = default;
  recursive_mutex(const recursive_mutex&) = delete;
  recursive_mutex& operator=(const recursive_mutex&) = delete;
#if ROUSE_DEBUG_CHECKS
  // constexpr, so that the type stays literal; the check runs outside
  // constant evaluation only.
  ROUSE_CONSTEXPR ~recursive_mutex() {
    ROUSE_CHECK_USAGE_AT_RUN_TIME(owner_.load(std::memory_order_relaxed) == 0, "rouse::recursive_mutex",
                                  "destroyed while locked");
  }
#else
  ~recursive_mutex() = default;
#endif

  void lock() ROUSE_ACQUIRE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t const me = platform::this_thread_id();
    // Ordering: relaxed, see "Memory ordering" above.
    if (owner_.load(std::memory_order_relaxed) == me) {
      if (depth_ == max_depth)
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "rouse::recursive_mutex: maximum recursion depth");
      ++depth_;
      return;
    }
    check_not_held_from_before_fork();
    inner_.lock();
    take(me);
  }

  [[nodiscard]] bool try_lock() noexcept ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t const me = platform::this_thread_id();
    if (owner_.load(std::memory_order_relaxed) == me) return deepen();
    check_not_held_from_before_fork();
    if (!inner_.try_lock()) return false;
    take(me);
    return true;
  }

  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) noexcept
      ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t const me = platform::this_thread_id();
    if (owner_.load(std::memory_order_relaxed) == me) return deepen();
    check_not_held_from_before_fork();
    if (!inner_.try_lock_for(timeout)) return false;
    take(me);
    return true;
  }

  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept
      ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t const me = platform::this_thread_id();
    if (owner_.load(std::memory_order_relaxed) == me) return deepen();
    check_not_held_from_before_fork();
    if (!inner_.try_lock_until(deadline)) return false;
    take(me);
    return true;
  }

  void unlock() noexcept ROUSE_RELEASE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    ROUSE_CHECK_USAGE(owner_.load(std::memory_order_relaxed) == platform::this_thread_id() && depth_ > 0,
                      "rouse::recursive_mutex",
                      "unlock() by a thread that does not hold it (or more unlocks than locks)");
    if (--depth_ != 0) return;
    // Ordering: relaxed; the inner unlock()'s release publishes it.
    owner_.store(0, std::memory_order_relaxed);
    inner_.unlock();
  }

 private:
  // Debug builds: this thread holds the inner mutex, yet the owner is not
  // this thread's id: it held the lock before fork(), and in the child its
  // id changed (docs/wait.md, "fork()"). Named here; the inner mutex would
  // report a self-deadlock of rouse::mutex.
  void check_not_held_from_before_fork() const noexcept {
#if ROUSE_TRACK_HELD_LOCKS
    ROUSE_CHECK_USAGE(!detail::held_locks::mine().contains(&inner_), "rouse::recursive_mutex",
                      "a lock by the thread that held it before fork(): in the child its thread id changed, so the "
                      "lock is not its own and stays held (unlock it before fork())");
#endif
  }
  void take(std::uint32_t me) noexcept {
    owner_.store(me, std::memory_order_relaxed);
    depth_ = 1;
  }
  bool deepen() noexcept {
    if (depth_ == max_depth) return false;
    ++depth_;
    return true;
  }

  mutex inner_;
  detail::atomic<std::uint32_t> owner_{0};
  std::uint32_t depth_ = 0;
};

using recursive_timed_mutex = recursive_mutex;

static_assert(detail::in_model || sizeof(recursive_mutex) == 12, "rouse::recursive_mutex: word, owner, depth");

}  // namespace rouse
