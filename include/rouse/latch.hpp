// rouse/latch.hpp — a single-use countdown (drop-in for std::latch).
//
//   rouse::latch done(workers);
//   // each worker:            // the coordinator:
//   work(); done.count_down();  done.wait();
//
// Purpose: let threads wait until a count of events has happened. The count
// starts at `expected`, goes down with count_down(), and never goes back up;
// once it is zero every wait() returns at once, forever.
//
// Lifecycle and rules (std::latch's): the constructor is constexpr
// (`constinit rouse::latch ready(4);`); count_down(n) needs 0 <= n <= the
// current count.
//
// Destruction (std::latch only says its destructor must not race with the
// other calls): a thread that saw the count at zero (its wait() returned,
// or try_wait() returned true) may destroy the latch at once, once no other
// thread waits in wait() or arrive_and_wait() (a woken waiter re-reads the
// word), even while count_down() calls are still returning: a count_down()'s
// last access is its RMW on the count; the one that reaches zero then only
// passes the word's address to the futex wake (a wake never reads the
// memory; one that lands on a reused address is a spurious wake-up, which
// every rouse wait tolerates).
//
// Misuse (diagnosed in debug builds, ROUSE_CHECK_USAGE): a count_down() that
// would take the count below zero; a negative update; an expected count
// outside [0, max()] (a compile error in a constant initialisation);
// destroying the latch while a thread sleeps in wait() (always detected:
// waiters only leave when the count reaches zero).
//
// Size: 4 bytes (one 32-bit word). max() = 2^31 - 1. Fairness: n/a (all
// waiters are released together). Wake policy: the count_down that reaches
// zero wakes every sleeper with one wake call, and makes none when no waiter
// went to sleep. Cost with nobody waiting: count_down() is one RMW and no
// system call; try_wait() is one load. wait() spins before it
// sleeps (detail/spin.hpp, group_spin_until; the group is the
// count still to come down plus the waiter: briefly when that exceeds the
// CPUs, up to ~4 wake-up costs when it fits). Across processes: no.
//
// State word: count << 1 | sleepers
//   sleepers (bit 0)   some thread is asleep (or about to sleep) in wait();
//                      set by the waiter with a CAS, never cleared (the
//                      count only goes down, so once set it stays true
//                      until the count reaches zero and the last
//                      count_down wakes everybody)
//   count (bits 1–31)  the remaining count
//
//   count_down(n):  count -= n; if it reached 0 and sleepers: wake all
//   wait:           count == 0: return | sleepers clear: set it | sleep while the word is unchanged
//
// Memory ordering: everything a thread did before count_down() happens-before
// the return of every wait() and try_wait() that observes the count at zero
// (count_down is a release RMW, and all count_downs form one release
// sequence; wait and try_wait load with acquire).
#pragma once

#include <cstddef>
#include <cstdint>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse {

class latch;

namespace detail {
// For a waiter that cannot sleep inside a call (a coroutine,
// rouse/async/blocking.hpp): wait_slow()'s loop one wait at a time, the
// waits made by the caller on word().
struct latch_access {
  static const detail::atomic<std::uint32_t>& word(const rouse::latch& l) noexcept;
  // True when the count is zero. Else sets the sleepers flag, as a thread
  // does before it sleeps (so that the count_down reaching zero wakes), and
  // returns false with `value` the word to wait on. A waiter that leaves
  // (stopped) leaves the flag set: the flag is never cleared (see Misuse:
  // destroy such a latch only once its count reached zero).
  static bool wait_step(const rouse::latch& l, std::uint32_t& value) noexcept;
};
}  // namespace detail

class latch {
 public:
  static constexpr std::ptrdiff_t max() noexcept { return 0x7FFFFFFF; }

  ROUSE_CONSTEXPR explicit latch(std::ptrdiff_t expected) noexcept : word_(static_cast<std::uint32_t>(expected) << 1) {
    ROUSE_CHECK_USAGE(expected >= 0 && expected <= max(), "rouse::latch", "expected count outside [0, max()]");
  }
  latch(const latch&) = delete;
  latch& operator=(const latch&) = delete;
#if ROUSE_DEBUG_CHECKS
  // constexpr, as a literal type's must be; the check runs outside constant
  // evaluation only.
  ROUSE_CONSTEXPR ~latch() {
    ROUSE_CHECK_USAGE_AT_RUN_TIME(!may_have_sleeper(), "rouse::latch", "destroyed while a thread is waiting");
  }
#else
  ~latch() = default;
#endif

  void count_down(std::ptrdiff_t n = 1) noexcept {
    ROUSE_CHECK_USAGE(n >= 0, "rouse::latch", "count_down() with a negative update");
    if (detail::model_fault_on(detail::model_fault::latch_count_down_reads_flag_first)) {
      std::uint32_t const flag = word_.load(std::memory_order_relaxed) & sleepers;
      std::uint32_t const before = word_.fetch_sub(static_cast<std::uint32_t>(n) << 1, std::memory_order_release);
      if (n != 0 && static_cast<std::ptrdiff_t>(before >> 1) == n && flag != 0) wake_sleepers();
      return;
    }
    // Ordering: release; pairs with the acquire loads in wait()/try_wait().
    std::uint32_t const before = word_.fetch_sub(static_cast<std::uint32_t>(n) << 1, std::memory_order_release);
    ROUSE_CHECK_USAGE(static_cast<std::ptrdiff_t>(before >> 1) >= n, "rouse::latch", "count_down() below zero");
    if (n != 0 && static_cast<std::ptrdiff_t>(before >> 1) == n && (before & sleepers) != 0) [[unlikely]]
      wake_sleepers();
  }

  [[nodiscard]] bool try_wait() const noexcept {
    // Ordering: acquire; pairs with the release count_downs.
    return (word_.load(std::memory_order_acquire) >> 1) == 0;
  }

  void wait() const noexcept {
    if (try_wait()) return;
    wait_slow();
  }

  void arrive_and_wait(std::ptrdiff_t n = 1) noexcept {
    ROUSE_CHECK_USAGE(n >= 0, "rouse::latch", "count_down() with a negative update");
    // Ordering: acq_rel. Release as in count_down(); acquire so that the
    // thread whose arrival reaches zero sees every other arrival's writes
    // when it returns without waiting.
    std::uint32_t const before = word_.fetch_sub(static_cast<std::uint32_t>(n) << 1, std::memory_order_acq_rel);
    ROUSE_CHECK_USAGE(static_cast<std::ptrdiff_t>(before >> 1) >= n, "rouse::latch", "count_down() below zero");
    if (static_cast<std::ptrdiff_t>(before >> 1) == n) {
      if (n != 0 && (before & sleepers) != 0) [[unlikely]]
        wake_sleepers();
      return;
    }
    wait();
  }

 private:
  friend struct detail::latch_access;
  static constexpr std::uint32_t sleepers = 1;

  [[gnu::noinline, gnu::cold]] void wake_sleepers() noexcept { detail::wake_all(word_); }

  // The count is not zero and a waiter has set the flag (see Misuse).
  bool may_have_sleeper() const noexcept {
    std::uint32_t const v = word_.load(std::memory_order_relaxed);
    return (v >> 1) != 0 && (v & sleepers) != 0;
  }

  [[gnu::noinline]] void wait_slow() const noexcept {
    // Spin only while nobody sleeps: once a waiter has given up and slept,
    // the count is evidently not about to reach zero, and more spinners would
    // only take CPU from the threads that still have to count down.
    // The group, estimated: the count still to come down (one per thread
    // when each thread counts down once; a thread that counts down by more,
    // or several times, makes it an overestimate, which errs towards the
    // short spin), plus this waiter.
    std::uint32_t const seen = word_.load(std::memory_order_relaxed);
    if ((seen & sleepers) == 0 && detail::group_spin_until([this] { return try_wait(); }, (seen >> 1) + 1)) return;
    // Ordering: acquire; pairs with the release count_downs.
    std::uint32_t v = word_.load(std::memory_order_acquire);
    for (;;) {
      if ((v >> 1) == 0) return;
      if ((v & sleepers) == 0) {
        // count > 0, no sleepers -> sleepers. Ordering: the flag and the
        // count are one word, so the count_down that reaches zero reads the
        // flag if this CAS came first (no store->load race); acquire on
        // failure re-reads the count.
        if (!word_.compare_exchange_weak(v, v | sleepers, std::memory_order_acquire, std::memory_order_acquire))
          continue;
        v |= sleepers;
      }
      detail::wait(word_, v);
      // Ordering: acquire; pairs with the release count_downs.
      v = word_.load(std::memory_order_acquire);
    }
  }

  mutable detail::atomic<std::uint32_t> word_;
};

static_assert(detail::in_model || sizeof(latch) == 4);

namespace detail {
inline const detail::atomic<std::uint32_t>& latch_access::word(const rouse::latch& l) noexcept { return l.word_; }

inline bool latch_access::wait_step(const rouse::latch& l, std::uint32_t& value) noexcept {
  // Ordering: acquire; pairs with the release count_downs.
  std::uint32_t v = l.word_.load(std::memory_order_acquire);
  for (;;) {
    if ((v >> 1) == 0) return true;
    if ((v & rouse::latch::sleepers) == 0) {
      // count > 0, no sleepers -> sleepers. Ordering: as in wait_slow().
      if (!l.word_.compare_exchange_weak(v, v | rouse::latch::sleepers, std::memory_order_acquire,
                                         std::memory_order_acquire))
        continue;
      v |= rouse::latch::sleepers;
    }
    value = v;
    return false;
  }
}
}  // namespace detail

}  // namespace rouse
