// rouse/mutex.hpp — a 4-byte futex mutex; drop-in for std::mutex and std::timed_mutex.
//
//   rouse::mutex        lock / try_lock / try_lock_for / try_lock_until / unlock
//   rouse::timed_mutex  the same type (drop-in for std::timed_mutex)
//
// Purpose: mutual exclusion for critical sections of any length. It is a
// std::mutex (and std::timed_mutex) with the same members and semantics, so
// std::lock_guard, std::unique_lock, std::scoped_lock, std::lock and
// std::condition_variable_any work with it; switching is a rename.
//
// Lifecycle: constexpr-constructible (constinit globals need no dynamic
// initialisation) and a literal type in every build (constexpr destructor),
// not copyable or movable. lock() and the try_lock family
// are called by a thread that does not hold the mutex; unlock() by the
// thread that holds it.
//
// Destruction (std's rule; docs/design.md, rule 7): a thread that locks the mutex
// after every other thread's last lock may unlock and destroy it at once,
// even while the thread that unlocked before it is still inside unlock().
// unlock()'s last access to the mutex is the compare-exchange that frees it
// (or hands it off); after it, it only passes the word's address to the
// futex wake, which never reads the memory.
//
// Misuse, diagnosed in debug builds (ROUSE_CHECK_USAGE) with a message that
// names rouse::mutex and the rule, then abort:
//   - unlock() of a mutex that is not locked (never locked, unlocked twice),
//   - unlock() by a thread that does not hold it,
//   - lock()/try_lock*() by the thread that already holds it (self-deadlock),
//   - destroying a mutex that is locked or being waited for.
// Ownership is tracked per thread in a debug-only side list
// (detail/held_locks.hpp), not in the mutex, so the layout is the same in
// debug and release builds. Release builds check nothing and pay nothing.
//
// Size: 4 bytes, one futex word (static_asserted), alignment 4.
//
// Cost with nobody waiting: lock() is one compare-exchange, unlock() one
// compare-exchange; no system call (tests/unit/mutex_test.cpp proves it with
// rouse::platform::syscall_counters()). unlock() makes a wake system call only
// when the word says a thread may be asleep, and then wakes exactly one.
//
// Contention: a locker that finds the mutex held spins (reading, not
// writing, with polls spaced exponentially) while the holder has no sleeping
// waiters, for a time sized from what a wake-up costs on this machine
// (detail::mutex_spin: 4 x platform::wake_cost(), within [2, 200] µs); a poll that
// sees it free tries to take it, and a lost race goes back to spinning.
// Then it marks the word "contended" and sleeps on the futex.
//
// Fairness: barging, with bounded unfairness. A released mutex goes to
// whichever thread's compare-exchange lands first, usually a running thread
// rather than a sleeping one: that keeps throughput high. To bound the
// unfairness, a waiter that has been asleep for `fairness_threshold` (1 ms)
// or more and is woken without getting the lock sets the STARVING bit. The
// next unlock() then does not free the mutex for everyone: it leaves it in
// the HANDOFF state, where only a thread that has already slept for it may
// take it, and wakes one sleeper (the kernel wakes the longest-sleeping
// thread first). Newcomers that find HANDOFF sleep too, at most
// fairness_threshold at a time. So under constant barging no waiter is
// passed over for much longer than a millisecond plus a trip through the
// sleepers queued ahead of it. The fairness test in
// tests/stress/mutex_stress.cpp reports the longest wait measured.
//
// Processes: process-private only (the futex calls are private).
//
// State of the word:
//
//   value  name        locked?  meaning
//   0      unlocked    no       free, nobody asleep (as far as anyone knows)
//   1      locked      yes      held, nobody asleep
//   2      contended   yes      held, a thread may be asleep: unlock() wakes one
//   6      starving    yes      contended + STARVING (4): a sleeper has waited
//                               >= fairness_threshold; unlock() hands off
//   4      handoff     no*      released by unlock() to the sleepers: only a
//                               thread that has slept for it may take it (4 -> 2);
//                               newcomers sleep. Implies "a thread may be asleep".
//
//   transition                     by
//   0 -> 1                         lock() fast path, try_lock(), after spinning
//   1 -> 0                         unlock() fast path (no wake)
//   0 -> 2, 4 -> 2                 a waiter takes the lock (4 only after sleeping)
//   1 -> 2                         a waiter about to sleep; a timed waiter giving up
//   2 -> 6                         a waiter that slept >= fairness_threshold
//   6 -> 2                         a timed waiter that set STARVING gives up
//   2 -> 0 (+ wake one)            unlock() slow path
//   6 -> 4 (+ wake one)            unlock() slow path: hand-off
//
// Memory ordering: everything a thread did before unlock() happens-before
// everything the next owner does after its lock() (or successful try_lock*)
// returns. unlock() writes the word with release (its fast compare-exchange,
// or the compare-exchange of its slow path); every transition that takes the lock
// (0 -> 1, 0 -> 2, 4 -> 2) is an acquire compare-exchange that reads that
// value. Marking the word (1 -> 2, 2 -> 6, 6 -> 2) is relaxed: it publishes no
// data, and because every change of the word is a read-modify-write, the
// unlock()'s RMW reads the latest mark (the RMW total order on one word);
// the futex compares the word with the sleeper's expected value atomically
// against wakes, so a mark followed by a sleep cannot miss the unlock().
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

#include "rouse/detail/annotations.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/held_locks.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

#if !defined(ROUSE_MUTEX_FAIRNESS_THRESHOLD_US)
#define ROUSE_MUTEX_FAIRNESS_THRESHOLD_US 1000
#endif

namespace rouse {

class mutex;

namespace detail {
// Access to the word for rouse's own waiters that do not sleep inside
// lock(): a coroutine's stepwise lock (rouse/async/blocking.hpp), and for
// tests.
struct mutex_access {
  static detail::atomic<std::uint32_t>& word(rouse::mutex& m) noexcept;
  // The word's "locked, a thread may be asleep" value.
  static constexpr std::uint32_t contended = 2;
  static constexpr std::uint32_t starving_bit = 4;
  // If the mutex is locked, makes sure its unlock() will wake a sleeper
  // (1 -> 2). Returns false when the mutex is not locked at all (for a waiter
  // moved onto the word from elsewhere).
  static bool mark_contended(rouse::mutex& m) noexcept;

  // For a waiter that cannot sleep inside a call (a coroutine,
  // rouse/async/blocking.hpp): lock_slow()'s loop one wait at a time, the
  // waits made by the caller. None of these checks or notes the calling
  // thread's held locks (a coroutine is not a thread).
  struct stepwise_lock {
    std::uint32_t seen = 0;        // after a step that did not take the lock: the value to wait on
    bool slept = false;            // has waited for the word: may take a HANDOFF
    bool starving = false;         // has waited fairness_threshold or more: asks for a hand-off
    bool marked_starving = false;  // this waiter set the STARVING bit
    bool timer_started = false;
    detail::wait_timer waiting;  // since the first wait
  };
  // 0 -> 1, as try_lock().
  static bool try_lock_stepwise(rouse::mutex& m) noexcept;
  // One pass of lock_slow()'s loop: takes the lock (true; the word is left
  // contended, 0 -> 2 or, after a wait, 4 -> 2), or marks the word as a
  // thread does before it sleeps (1 -> 2; 2 -> 6 once starving) and returns
  // false: wait while the word holds s.seen, call lock_woke(s), step again.
  // (A newcomer that finds a HANDOFF waits for a wake, not at most
  // fairness_threshold as a thread does: it counts as having slept after it.)
  static bool lock_step(rouse::mutex& m, stepwise_lock& s) noexcept;
  // After each wait (woken, the word changed, or spuriously).
  static void lock_woke(stepwise_lock& s) noexcept;
  // A stepwise waiter that leaves without the lock (stopped): give_up()'s
  // rule. Takes the lock if it is free to the waiter (true), else leaves
  // the word contended if it had waited, and withdraws its STARVING bit.
  static bool lock_leave(rouse::mutex& m, const stepwise_lock& s) noexcept;
};
}  // namespace detail

class ROUSE_CAPABILITY("mutex") mutex {
 public:
  // How long a sleeper waits before it asks for a hand-off (see Fairness).
  static constexpr std::chrono::microseconds fairness_threshold{ROUSE_MUTEX_FAIRNESS_THRESHOLD_US};

  constexpr mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
#if ROUSE_DEBUG_CHECKS
  // constexpr, so that the mutex stays a literal type (`constexpr
  // rouse::mutex m;`, as std's); the check runs outside constant evaluation only.
  ROUSE_CONSTEXPR ~mutex() {
    ROUSE_CHECK_USAGE_AT_RUN_TIME(word_.load(std::memory_order_relaxed) == unlocked, "rouse::mutex",
                                  "destroyed while locked or while a thread waits for it");
  }
#else
  ~mutex() = default;
#endif

  void lock() noexcept ROUSE_ACQUIRE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    detail::check_not_held(this, "rouse::mutex");
    std::uint32_t seen = unlocked;
    // Ordering: acquire, pairs with the release of the unlock() whose value it reads.
    if (!word_.compare_exchange_strong(seen, locked, std::memory_order_acquire, std::memory_order_relaxed)) [[unlikely]]
      lock_slow(seen, detail::no_deadline{});
    detail::note_acquired(this);
  }

  [[nodiscard]] bool try_lock() noexcept ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    detail::check_not_held(this, "rouse::mutex");
    std::uint32_t seen = unlocked;
    // Ordering: acquire, pairs with unlock()'s release.
    if (!word_.compare_exchange_strong(seen, locked, std::memory_order_acquire, std::memory_order_relaxed))
      return false;
    detail::note_acquired(this);
    return true;
  }

  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) noexcept
      ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    if (timeout <= timeout.zero()) return try_lock();
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) {
      lock();
      return true;
    }
    return try_lock_until(deadline);
  }

  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept
      ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    detail::check_not_held(this, "rouse::mutex");
    std::uint32_t seen = unlocked;
    // Ordering: acquire, pairs with unlock()'s release.
    if (!word_.compare_exchange_strong(seen, locked, std::memory_order_acquire, std::memory_order_relaxed)) {
      if (!lock_slow(seen, detail::deadline_at(deadline))) return false;
    }
    detail::note_acquired(this);
    return true;
  }

  void unlock() noexcept ROUSE_RELEASE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
#if ROUSE_TRACK_HELD_LOCKS
    detail::note_released(this, is_locked_state(word_.load(std::memory_order_relaxed)), "rouse::mutex");
#endif
    std::uint32_t seen = locked;
    // Ordering: release, pairs with the acquire of the next owner's compare-exchange.
    if (!word_.compare_exchange_strong(seen, unlocked, std::memory_order_release, std::memory_order_relaxed))
        [[unlikely]]
      unlock_slow(seen);
  }

 private:
  friend struct detail::mutex_access;

  static constexpr std::uint32_t unlocked = 0;
  static constexpr std::uint32_t locked = 1;
  static constexpr std::uint32_t contended = 2;
  static constexpr std::uint32_t starving_bit = 4;
  static constexpr std::uint32_t starving = contended | starving_bit;  // 6
  static constexpr std::uint32_t handoff = starving_bit;               // 4

  static constexpr bool is_locked_state(std::uint32_t v) noexcept {
    return v == locked || v == contended || v == starving;
  }

  // Spins while the mutex is held and nobody sleeps (the word is `locked`),
  // reading only, and takes it if it sees it free: true = taken. A lost
  // race for the free mutex (another thread's compare-exchange landed
  // first) goes back to spinning while the budget lasts: under a holder
  // that re-takes the lock back to back, the rare moment it is seen free is
  // usually lost, and sleeping then would cost the holder a wake call on its
  // next unlock. Returns with `seen` the last value read otherwise. A timed
  // lock stops spinning once its deadline has passed. The spin:
  // detail::mutex_spin (4 x platform::wake_cost() within [2, 200] µs, first
  // poll after 64 pauses; two polls under a model, so that it explores a
  // lost race followed by another poll).
  template <class Deadline>
  bool spin_then_take(std::uint32_t& seen, const Deadline& deadline) noexcept {
    detail::spinner spin(detail::mutex_spin);
    auto const more = [&] { return !deadline.expired() && spin.next(); };
    for (;;) {
      while (seen == locked && more()) seen = word_.load(std::memory_order_relaxed);
      if (seen != unlocked) return false;
      // Ordering: acquire, pairs with unlock()'s release.
      if (word_.compare_exchange_strong(seen, locked, std::memory_order_acquire, std::memory_order_relaxed))
        return true;
      if (seen != locked || !more()) return false;  // `seen` was reloaded
      seen = word_.load(std::memory_order_relaxed);
    }
  }

  // The contended path of lock() and try_lock_until(). Returns false only
  // when a deadline passed.
  template <class Deadline>
  [[gnu::noinline, gnu::cold]] bool lock_slow(std::uint32_t seen, Deadline deadline) noexcept {
    constexpr bool timed = Deadline::timed();
    if (spin_then_take(seen, deadline)) return true;
    bool slept = false;          // has slept for the lock: may take a HANDOFF
    detail::wait_timer waiting;  // since the first sleep (under a model: wake-ups)
    bool timer_started = false;
    bool starving_now = false;
    bool marked_starving = false;  // this thread set the STARVING bit
    for (;;) {
      if (take_or_mark(seen, slept, starving_now, marked_starving)) return true;
      if (deadline.expired()) return give_up(slept, marked_starving);
      if (!timer_started) {
        timer_started = true;
        waiting.start();
      }
      // Sleep while the word still holds `seen`. A newcomer that found a
      // HANDOFF sleeps at most fairness_threshold: the sleepers the hand-off
      // was meant for may all have left (timed out), and then it takes the
      // lock itself after that sleep.
      detail::wait_result r = detail::wait_result::woken;
      if (seen == handoff) {
        auto until = std::chrono::steady_clock::now() + fairness_threshold;
        if constexpr (timed) {
          // A steady deadline earlier than that ends the sleep itself (other
          // clocks may overshoot their deadline by up to fairness_threshold).
          if constexpr (std::is_same_v<typename Deadline::clock, std::chrono::steady_clock>) {
            if (deadline.at < until) until = deadline.at;
          }
        }
        r = detail::wait_until(word_, seen, until);
        if (r == detail::wait_result::timed_out && deadline.expired()) {
          slept = true;
          return give_up(slept, marked_starving);
        }
        r = detail::wait_result::woken;
      } else {
        r = detail::wait_until(word_, seen, deadline);
      }
      slept = true;
      // Under a model the timer counts wake-ups: a sleeper counts as
      // starving from its second wake on, so models explore the hand-off too.
      if (!starving_now && waiting.reached(fairness_threshold)) starving_now = true;
      if constexpr (timed) {
        if (r == detail::wait_result::timed_out) return give_up(slept, marked_starving);
      }
      seen = word_.load(std::memory_order_relaxed);
    }
  }

  // One pass of the contended loop before a wait (lock_slow(), and the
  // stepwise lock of rouse/async/blocking.hpp). Takes the lock if it is free
  // to the waiter (true). After this point the waiter may have slept (or
  // others may sleep beside it), so it leaves the word contended: 0 ->
  // 2, or 4 -> 2 (a hand-off; only after sleeping). Otherwise makes sure the
  // holder's unlock() will wake a sleeper (1 -> 2) and, once the waiter is
  // starving, asks for a hand-off (2 -> 6); `seen` is then what to wait on.
  bool take_or_mark(std::uint32_t& seen, bool slept, bool starving_now, bool& marked_starving) noexcept {
    for (;;) {
      if (seen == unlocked || (seen == handoff && slept)) {
        // Ordering: acquire, pairs with the release compare-exchange of the
        // unlock() that wrote 0 or 4.
        if (word_.compare_exchange_strong(seen, contended, std::memory_order_acquire, std::memory_order_relaxed))
          return true;
        continue;  // `seen` was reloaded
      }
      std::uint32_t mark = seen;
      if (seen == locked) {
        if (detail::model_fault_on(detail::model_fault::mutex_waiter_sleeps_unmarked))
          mark = locked;
        else
          mark = contended;
      } else if (seen == contended && starving_now) {
        mark = starving;
      }
      if (mark != seen) {
        // Ordering: relaxed; publishes no data. unlock()'s RMW reads it by the
        // RMW total order of the word.
        if (!word_.compare_exchange_strong(seen, mark, std::memory_order_relaxed, std::memory_order_relaxed)) continue;
        if (mark == starving) marked_starving = true;
        seen = mark;
      }
      return false;
    }
  }

  // A timed waiter whose deadline passed. It may have consumed a wake meant
  // to pass the lock on, so it must not leave sleepers behind a word that
  // says nobody sleeps: it takes the lock if it is free to it, or leaves the
  // word at least contended, and only then reports a time-out.
  // A waiter that asked for a hand-off and leaves withdraws the request
  // (6 -> 2), so that no unlock() hands the lock to a waiter that is gone.
  bool give_up(bool slept, bool marked_starving) noexcept {
    std::uint32_t seen = word_.load(std::memory_order_relaxed);
    for (;;) {
      if (seen == starving && marked_starving) {
        // Ordering: relaxed, as the marks in lock_slow().
        if (!word_.compare_exchange_strong(seen, contended, std::memory_order_relaxed, std::memory_order_relaxed))
          continue;
        return false;
      }
      if (seen == unlocked || (seen == handoff && slept)) {
        // Ordering: acquire, pairs with unlock()'s release.
        if (word_.compare_exchange_strong(seen, contended, std::memory_order_acquire, std::memory_order_relaxed))
          return true;
        continue;
      }
      if (seen == locked && slept) {
        // Ordering: relaxed, as the marks in lock_slow().
        if (!word_.compare_exchange_strong(seen, contended, std::memory_order_relaxed, std::memory_order_relaxed))
          continue;
      }
      return false;
    }
  }

  // `seen` is what the fast compare-exchange found: contended or starving.
  [[gnu::noinline, gnu::cold]] void unlock_slow(std::uint32_t seen) noexcept {
    // While we hold the lock only waiters change the word: 2 -> 6 (a sleeper
    // asks for a hand-off) and 6 -> 2 (a timed waiter that asked gives up).
    // A compare-exchange, not a blind exchange, so neither is lost: a 4 left
    // after its asker gave up would make newcomers sleep for nothing.
    // Ordering: release, pairs with the acquire of the next owner (0 -> 1,
    // 0 -> 2, or 4 -> 2 for a hand-off).
    while (!word_.compare_exchange_weak(seen, seen == starving ? handoff : unlocked, std::memory_order_release,
                                        std::memory_order_relaxed)) {
    }
    detail::wake_one(word_);
  }

  detail::atomic<std::uint32_t> word_{unlocked};
};

static_assert(detail::in_model || (sizeof(mutex) == 4 && alignof(mutex) == 4), "rouse::mutex is one futex word");

namespace detail {
inline detail::atomic<std::uint32_t>& mutex_access::word(rouse::mutex& m) noexcept { return m.word_; }

inline bool mutex_access::try_lock_stepwise(rouse::mutex& m) noexcept {
  std::uint32_t seen = rouse::mutex::unlocked;
  // Ordering: acquire, pairs with unlock()'s release.
  return m.word_.compare_exchange_strong(seen, rouse::mutex::locked, std::memory_order_acquire,
                                         std::memory_order_relaxed);
}

inline bool mutex_access::lock_step(rouse::mutex& m, stepwise_lock& s) noexcept {
  std::uint32_t seen = m.word_.load(std::memory_order_relaxed);
  if (m.take_or_mark(seen, s.slept, s.starving, s.marked_starving)) return true;
  if (!s.timer_started) {
    s.timer_started = true;
    s.waiting.start();
  }
  s.seen = seen;
  return false;
}

inline void mutex_access::lock_woke(stepwise_lock& s) noexcept {
  s.slept = true;
  if (!s.starving && s.waiting.reached(rouse::mutex::fairness_threshold)) s.starving = true;
}

inline bool mutex_access::lock_leave(rouse::mutex& m, const stepwise_lock& s) noexcept {
  return m.give_up(s.slept, s.marked_starving);
}

inline bool mutex_access::mark_contended(rouse::mutex& m) noexcept {
  std::uint32_t seen = m.word_.load(std::memory_order_relaxed);
  for (;;) {
    if (seen == rouse::mutex::contended || seen == rouse::mutex::starving) return true;
    if (seen != rouse::mutex::locked) return false;
    // Ordering: relaxed, as the marks in lock_slow().
    if (m.word_.compare_exchange_strong(seen, rouse::mutex::contended, std::memory_order_relaxed,
                                        std::memory_order_relaxed))
      return true;
  }
}
}  // namespace detail

// std::timed_mutex's name: rouse::mutex has its timed members already.
using timed_mutex = mutex;

}  // namespace rouse
