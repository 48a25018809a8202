// rouse/semaphore.hpp — counting and binary semaphores (drop-in for
// std::counting_semaphore / std::binary_semaphore).
//
//   rouse::counting_semaphore<8> slots(8);
//   slots.acquire(); use_slot(); slots.release();
//
// Purpose: a count of permits. acquire() takes one (sleeping while there is
// none), release(n) returns n. Unlike libstdc++'s (which wakes every waiter
// and makes a system call on every release that finds the count at zero),
// release(n) wakes at most n sleepers and makes no system call at all when
// nobody sleeps.
//
// Lifecycle and rules (std's): the count stays in [0, max()]; release(n)
// needs 0 <= n <= max() - count. Any thread may release, whether or not it
// acquired. Destroy the semaphore only when no thread is inside acquire().
//
// Misuse (diagnosed in debug builds, ROUSE_CHECK_USAGE): release() past
// max(); release() with a negative update; an initial count outside
// [0, max()]. Destroying a semaphore with sleeping waiters is not detected:
// the sleepers flag is conservative (it may stay set after the last sleeper
// left), so it cannot tell.
//
// Size: 4 bytes (one 32-bit word). max() = LeastMaxValue (at most 2^31 - 1).
// Fairness: none — a releasing or arriving thread may take a permit before
// a sleeper it woke (barging); sleepers are woken in the futex's FIFO order.
// Wake policy: release(n) that finds the sleepers flag wakes n threads with
// one wake call and clears the flag; every woken thread sets the flag again
// when it takes a permit, leaves on a timeout, or goes back to sleep, so
// sleepers beyond the n woken are never stranded; a woken thread that takes a
// permit and sees more left passes the wake on to one more sleeper (a release
// that found the flag cleared by an earlier one did not wake anybody). The
// price of the flag is at most one wake call that finds nobody after a burst
// of contention.
// Cost with nobody waiting: release() is one RMW (a CAS after a load) and no
// system call; acquire() with a permit available is one RMW. acquire() spins
// briefly (detail/coordination_spin.hpp) before it sleeps. Across processes:
// no.
//
// State word: count << 1 | sleepers
//   sleepers (bit 0)   some thread may be asleep in acquire(); set by a
//                      waiter before it sleeps, cleared by the release
//                      that wakes
//   count (bits 1–31)  permits available
//
//   acquire, count > 0:    count -= 1; if this thread slept: sleepers := 1,
//                          or, if permits remain, sleepers := 0 and wake one
//   acquire, count == 0:   sleepers := 1, then sleep while the word is unchanged
//   release(n):            count += n, sleepers := 0; if sleepers was 1: wake n
//   timeout (had slept):   take a permit if one is there, else sleepers := 1
//
// Memory ordering: everything a thread did before release() happens-before
// the return of the acquire() (or true-returning try_acquire*) that takes a
// permit it released: release is a release RMW, taking a permit an acquire
// RMW, and all changes to the word are RMWs (one release sequence).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "rouse/detail/coordination_spin.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

template <std::ptrdiff_t LeastMaxValue = 0x7FFFFFFF>
class counting_semaphore {
  static_assert(LeastMaxValue >= 0 && LeastMaxValue <= 0x7FFFFFFF,
                "rouse::counting_semaphore keeps its count in 31 bits");

 public:
  static constexpr std::ptrdiff_t max() noexcept { return LeastMaxValue; }

  explicit counting_semaphore(std::ptrdiff_t desired) noexcept
      : word_(static_cast<std::uint32_t>(desired) << 1) {
    ROUSE_CHECK_USAGE(desired >= 0 && desired <= max(), "rouse::counting_semaphore",
                      "initial count outside [0, max()]");
  }
  counting_semaphore(const counting_semaphore&) = delete;
  counting_semaphore& operator=(const counting_semaphore&) = delete;

  void release(std::ptrdiff_t update = 1) noexcept {
    ROUSE_CHECK_USAGE(update >= 0, "rouse::counting_semaphore", "release() with a negative update");
    // release(0) changes nothing (and must not clear the sleepers flag
    // without waking anybody).
    if (update <= 0) return;
    std::uint32_t const add = static_cast<std::uint32_t>(update) << 1;
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    // count += update, sleepers -> 0.
    // Ordering: release; pairs with the acquire CAS that takes the permit.
    while (!word_.compare_exchange_weak(v, (v + add) & ~sleepers, std::memory_order_release,
                                        std::memory_order_relaxed)) {
    }
    ROUSE_CHECK_USAGE(static_cast<std::ptrdiff_t>(v >> 1) <= max() - update, "rouse::counting_semaphore",
                      "release() past max()");
    if ((v & sleepers) != 0) [[unlikely]]
      wake_sleepers(update);
  }

  void acquire() noexcept {
    if (try_acquire()) return;
    acquire_slow<std::chrono::steady_clock::time_point>(nullptr);
  }

  [[nodiscard]] bool try_acquire() noexcept {
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    while ((v >> 1) != 0) {
      // count -= 1. Ordering: acquire; pairs with the release in release().
      if (word_.compare_exchange_weak(v, v - 2, std::memory_order_acquire, std::memory_order_relaxed))
        return true;
    }
    return false;
  }

  template <class Clock, class Duration>
  [[nodiscard]] bool try_acquire_until(std::chrono::time_point<Clock, Duration> deadline) noexcept {
    if (try_acquire()) return true;
    return acquire_slow(&deadline);
  }

  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(std::chrono::duration<Rep, Period> timeout) noexcept {
    if (try_acquire()) return true;
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) {
      acquire_slow<std::chrono::steady_clock::time_point>(nullptr);
      return true;
    }
    return acquire_slow(&deadline);
  }

 private:
  static constexpr std::uint32_t sleepers = 1;

  [[gnu::noinline, gnu::cold]] void wake_sleepers(std::ptrdiff_t update) noexcept {
    detail::wake(word_, update > 0x7FFFFFFF ? 0x7FFFFFFF : static_cast<int>(update));
  }

  // Takes a permit if there is one. `slept` is `sleepers` for a thread that
  // has slept, else 0. A thread that slept may have been woken by a
  // release() that cleared the flag; it is then responsible for the sleepers
  // that release left behind: if permits remain after its own, it passes the
  // wake on (flag cleared, wake one); else it puts the flag back.
  bool take(std::uint32_t& v, std::uint32_t slept) noexcept {
    while ((v >> 1) != 0) {
      bool const pass_on = slept != 0 && (v >> 1) > 1;
      std::uint32_t const desired = pass_on ? (v - 2) & ~sleepers : (v - 2) | slept;
      // count -= 1 (sleepers as above). Ordering: acquire; pairs with release().
      if (word_.compare_exchange_weak(v, desired, std::memory_order_acquire, std::memory_order_relaxed)) {
        if (pass_on) [[unlikely]]
          detail::wake_one(word_);
        return true;
      }
    }
    return false;
  }

  // deadline == nullptr: no deadline. False only on timeout (never early:
  // wait_until reports a timeout only once the deadline has passed).
  template <class Deadline>
  [[gnu::noinline]] bool acquire_slow(const Deadline* deadline) noexcept {
    if (detail::spin_until([this] { return (word_.load(std::memory_order_relaxed) >> 1) != 0; },
                           detail::handoff_spin_limit) &&
        try_acquire())
      return true;
    std::uint32_t flag = 0;
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    for (;;) {
      if (take(v, flag)) return true;
      if ((v & sleepers) == 0) {
        // count == 0, no sleepers -> sleepers. Ordering: relaxed; the flag
        // and the count share the word, so a release() that comes later in
        // its modification order sees the flag (no store->load race).
        if (!word_.compare_exchange_weak(v, v | sleepers, std::memory_order_relaxed, std::memory_order_relaxed))
          continue;
        v |= sleepers;
      }
      flag = sleepers;
      if (deadline == nullptr) {
        detail::wait(word_, v);
      } else if (detail::wait_until(word_, v, *deadline) == detail::wait_result::timed_out) {
        return leave_after_timeout();
      }
      v = word_.load(std::memory_order_relaxed);
    }
  }

  // A thread that slept and timed out: a release may have cleared the flag
  // and woken this thread rather than another sleeper; take that permit if
  // it is still there, else put the flag back.
  bool leave_after_timeout() noexcept {
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    for (;;) {
      if (take(v, sleepers)) return true;
      if ((v & sleepers) != 0) return false;
      // count == 0 -> sleepers. Ordering: relaxed (one word, see above).
      if (word_.compare_exchange_weak(v, v | sleepers, std::memory_order_relaxed, std::memory_order_relaxed))
        return false;
    }
  }

  detail::atomic<std::uint32_t> word_;
};

using binary_semaphore = counting_semaphore<1>;

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(counting_semaphore<>) == 4 && sizeof(binary_semaphore) == 4);
#endif

}  // namespace rouse
