// rouse/spin_lock.hpp — a test-and-test-and-set spin lock with bounded backoff.
//
//   rouse::spin_lock   lock / try_lock / unlock   (Lockable: std::lock_guard etc. work)
//
// Purpose: ONLY for tiny critical sections (a few dozen instructions, never a
// system call, an allocation or another lock) on threads that own their
// cores. A spin lock never sleeps: a waiter burns its core until the holder
// unlocks, and when the holder is preempted (more runnable threads than
// cores) every waiter spins for the whole time slice, milliseconds. Use
// rouse::mutex everywhere else: it spins briefly too, then sleeps.
// (mutex.oversub32 in docs/locks.md shows what oversubscription does to it.)
//
// Lifecycle: constexpr-constructible, not copyable or movable. unlock() by
// the thread that holds the lock. Destruction (std's rule for mutexes): a
// thread that locks it after every other thread's last lock may unlock and
// destroy it at once: unlock() is one release store, its only access.
//
// Misuse, diagnosed in debug builds (rouse::spin_lock: misuse: ...), abort:
// unlock() of an unlocked spin_lock, unlock() by a thread that does not hold
// it, lock() by the holder (it would spin forever), destroying it locked.
// Ownership lives in the same debug-only per-thread list as rouse::mutex's.
//
// Size: 4 bytes (static_asserted).
// Cost with nobody waiting: lock() is one exchange, unlock() one release
// store. Never a system call.
// Fairness: none. Whoever's exchange lands first after the release wins; a
// waiter can lose indefinitely in theory.
// Processes: works in shared memory (no system calls, no addresses).
//
// State of the word:   0 free,   1 held.
//   lock:   exchange 0 -> 1 (acquire); on failure read-only spin until 0, with
//           pause and exponential backoff (1, 2, 4 ... max_backoff pauses), retry.
//   unlock: store 0 (release).
//
// Memory ordering: unlock()'s release store pairs with the acquire exchange
// of the next lock() or try_lock() that reads it, so everything before
// unlock() happens-before everything after that lock().
#pragma once

#include <cstdint>

#include "rouse/detail/annotations.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/held_locks.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse {

class ROUSE_CAPABILITY("mutex") spin_lock {
 public:
  // Backoff doubles from 1 pause up to this many between reads of the word
  // (detail::spin_lock_spin: about one critical section of the sizes a spin
  // lock is meant for; docs/tuning.md).
  static constexpr int max_backoff = detail::spin_lock_spin.max_gap;

  constexpr spin_lock() noexcept = default;
  spin_lock(const spin_lock&) = delete;
  spin_lock& operator=(const spin_lock&) = delete;
#if ROUSE_DEBUG_CHECKS
  ~spin_lock() {
    ROUSE_CHECK_USAGE(word_.load(std::memory_order_relaxed) == 0, "rouse::spin_lock", "destroyed while locked");
  }
#else
  ~spin_lock() = default;
#endif

  void lock() noexcept ROUSE_ACQUIRE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    detail::check_not_held(this, "rouse::spin_lock");
    // Ordering: acquire, pairs with unlock()'s release store.
    if (word_.exchange(1, std::memory_order_acquire) != 0) [[unlikely]]
      lock_slow();
    detail::note_acquired(this);
  }

  [[nodiscard]] bool try_lock() noexcept ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    detail::check_not_held(this, "rouse::spin_lock");
    // Read first: a failing exchange would still take the cache line exclusively.
    // Ordering: acquire on the exchange, pairs with unlock()'s release store.
    if (word_.load(std::memory_order_relaxed) != 0 || word_.exchange(1, std::memory_order_acquire) != 0) return false;
    detail::note_acquired(this);
    return true;
  }

  void unlock() noexcept ROUSE_RELEASE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
#if ROUSE_TRACK_HELD_LOCKS
    detail::note_released(this, word_.load(std::memory_order_relaxed) != 0, "rouse::spin_lock");
#endif
    // Ordering: release, pairs with the acquire exchange of the next locker.
    word_.store(0, std::memory_order_release);
  }

 private:
  [[gnu::noinline]] void lock_slow() noexcept {
    detail::spinner spin(detail::spin_lock_spin);  // never spent: a spin lock does not sleep
    do {
      // Test before test-and-set: wait with plain reads (the line stays
      // shared) until the lock looks free.
      while (word_.load(std::memory_order_relaxed) != 0) (void)spin.next();
      // Ordering: acquire, pairs with unlock()'s release store.
    } while (word_.exchange(1, std::memory_order_acquire) != 0);
  }

  detail::atomic<std::uint32_t> word_{0};
};

static_assert(detail::in_model || sizeof(spin_lock) == 4, "rouse::spin_lock is one word");

}  // namespace rouse
