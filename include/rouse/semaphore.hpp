// rouse/semaphore.hpp — counting and binary semaphores (drop-in for
// std::counting_semaphore / std::binary_semaphore).
//
//   rouse::counting_semaphore<8> slots(8);
//   slots.acquire(); use_slot(); slots.release();
//
// Purpose: a count of permits. acquire() takes one (sleeping while there is
// none), release(n) returns n. Unlike libstdc++'s (which wakes every waiter
// and makes a system call on every release that finds the count at zero),
// release(n) makes one wake call for up to n sleepers and no system call at
// all when nobody sleeps.
//
// Lifecycle and rules (std's): the count stays in [0, max()]; release(n)
// needs 0 <= n <= max() - count. Any thread may release, whether or not it
// acquired. Destroy the semaphore only when no thread is inside acquire().
// The constructor is constexpr, as std's: `constinit rouse::binary_semaphore
// ready(0);` needs no dynamic initialisation.
//
// Misuse (diagnosed in debug builds, ROUSE_CHECK_USAGE): release() past
// max(); release() with a negative update; an initial count outside
// [0, max()] (in a constant initialisation — constinit, constexpr — that one
// is a compile error: the check calls a function that is not constexpr).
// Destroying a semaphore with sleeping waiters is not detected: the sleepers
// flag is conservative (it may stay set after the last sleeper left), so it
// cannot tell.
//
// Size: max() = LeastMaxValue, which may be any non-negative std::ptrdiff_t
// (std's rule). Up to 2^31 - 1 — binary_semaphore, and counting_semaphore<>
// whose default LeastMaxValue is 2^31 - 1 (implementation-defined in std;
// the largest that keeps the one-word layout) — it is 4 bytes, one 32-bit
// futex word (detail::semaphore_word). Above that it is 16 bytes, a 64-bit
// count word and a 32-bit futex sequence word (detail::semaphore_wide).
// Fairness: none — a releasing or arriving thread may take a permit before
// a sleeper it woke (barging); sleepers are woken in the futex's FIFO order.
// Wake policy (both layouts): release(n) that finds the sleepers flag wakes
// n threads with one wake call and clears the flag; every woken thread sets
// the flag again when it takes the last permit, leaves on a timeout, or goes
// back to sleep, so sleepers beyond the n woken are never stranded; a woken
// thread that takes a permit and sees more left passes the wake on to one
// more sleeper (a release that found the flag cleared by an earlier one did
// not wake anybody). The price: after a release(n) that woke n sleepers,
// each of the first n - 1 to take a permit still sees permits left (the
// other woken threads' own) and wakes one more, so up to n - 1 extra wakes
// (a thread that sleeps again, or a call that finds nobody); release(1)
// wakes exactly one (docs/coordination.md).
// Cost with nobody waiting (both layouts): release() is one RMW (a CAS after
// a load) and no system call; acquire() with a permit available is one RMW.
// acquire() spins briefly (detail::semaphore_spin) before it sleeps.
// The wide layout adds, only when the flag says a thread may sleep, one RMW
// on each word before the wake. Across processes: no.
//
// One-word layout (LeastMaxValue <= 2^31 - 1): count << 1 | sleepers
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
// Wide layout (LeastMaxValue > 2^31 - 1). The futex is 32-bit, so sleepers
// cannot sleep on the count: they sleep on a sequence word, seq_, that a
// release with sleepers to wake bumps before it wakes. Rule 7 (a released
// semaphore may vanish at once) puts that bump before the RMW that makes the
// permits available, and then a waiter could read the new sequence, see the
// count still at zero and sleep past the release; so the release first
// marks the count word RELEASING, and a waiter that finds RELEASING with no
// permit polls until the permits arrive instead of sleeping.
//   word_ (64 bits) = field << 1 | flag, in one of three states:
//     FREE(c)        flag 0, field c       c permits; nobody asleep (as far
//                                          as the flag knows)
//     SLEEPERS       flag 1, field 0       no permit; a thread may be asleep
//                                          on seq_
//     RELEASING(c)   flag 1, field c + 1   c permits (they may be taken); a
//                                          release that claimed SLEEPERS is
//                                          between its claim (R0) and its
//                                          permits (R2)
//   The flag costs no count bit: SLEEPERS only exists with no permit, and a
//   RELEASING release still holds at least one permit of its own, so c <=
//   max() - 1 and field <= max() <= 2^63 - 1 in every state. Taking a permit
//   is field -= 1 and adding one field += 1 in FREE and RELEASING alike.
//   seq_ (32 bits): the futex word; bumped by each release that claimed
//   SLEEPERS and by each pass-on of a wake.
//
//   release(n), FREE(c) or RELEASING(c):  field += n (one CAS), no wake
//   release(n), SLEEPERS:  (R0) SLEEPERS -> RELEASING(0)    claims the wake
//                          (R1) seq_ += 1
//                          (R2) RELEASING(c) -> FREE(c + n) one fetch_add
//                          (R3) wake n on seq_              nothing else after (R2)
//   acquire, a permit:     field -= 1; a thread that slept and finds FREE:
//                          FREE(1) -> SLEEPERS, or FREE(c > 1) -> FREE(c - 1)
//                          and pass the wake on (seq_ += 1, wake one)
//   acquire, no permit:    (S) s := seq_, then re-read word_: FREE(0) ->
//                          SLEEPERS, or SLEEPERS: sleep while seq_ == s;
//                          RELEASING(0): poll (pause, then yield)
//   timeout (had slept):   take a permit if one is there; FREE(0) -> SLEEPERS
//
// No lost wake-up, wide layout. A waiter W sleeps on s only after it found
// SLEEPERS in a read of word_ that follows its read (S) of s. Let R be a
// release that claims that SLEEPERS (R0). If (S) read a sequence older than
// R's bump (R1), seq_ no longer holds s once (R1) is done: W's futex wait
// returns at once, or W was queued before (R3), which follows (R1), wakes
// it. If (S) read (R1) or a later bump: (R1) is a release RMW and (S) an
// acquire load, so (R0) happens-before W's read of word_, which therefore
// reads RELEASING or what came after (R2), never the SLEEPERS that R claimed
// (a SLEEPERS set after (R2) is claimed, and its sequence bumped, by a later
// release). A pass-on bumps and wakes the same way after its take; it runs
// inside acquire(), where the semaphore cannot be destroyed, so it needs no
// RELEASING. Sleepers beyond the n woken: as in the one-word layout.
// Why not rouse::atomic_wait on a 64-bit count << 1 | sleepers word (its
// notify touches only the parking table, not the atomic): its notify wakes
// one or all, not n; every sleep pays its membarrier and its shared
// waiter-count slot, which the sleepers flag makes redundant; and models
// reach only the 32-bit futex (detail/sync_types.hpp).
//
// Memory ordering: everything a thread did before release() happens-before
// the return of the acquire() (or true-returning try_acquire*) that takes a
// permit it released: making permits available is a release RMW, taking a
// permit an acquire RMW, and all changes to the count word are RMWs (one
// release sequence).
#pragma once

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

namespace detail {

// The largest count of the one-word layout.
inline constexpr std::ptrdiff_t semaphore_word_max = 0x7FFFFFFF;

// A release's update as a wake count.
constexpr int semaphore_wake_count(std::ptrdiff_t update) noexcept {
  return update > INT_MAX ? INT_MAX : static_cast<int>(update);
}

struct semaphore_access;

// The one-word layout: count << 1 | sleepers (see the table above).
class semaphore_word {
 public:
  ROUSE_CONSTEXPR explicit semaphore_word(std::ptrdiff_t desired) noexcept
      : word_(static_cast<std::uint32_t>(desired) << 1) {}

  void release(std::ptrdiff_t update, [[maybe_unused]] std::ptrdiff_t max) noexcept {
    ROUSE_CHECK_USAGE(update >= 0, "rouse::counting_semaphore", "release() with a negative update");
    // release(0) changes nothing (and must not clear the sleepers flag
    // without waking anybody).
    if (update <= 0) return;
    std::uint32_t const add = static_cast<std::uint32_t>(update) << 1;
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    // count += update, sleepers -> 0.
    // Ordering: release; pairs with the acquire CAS that takes the permit.
    while (
        !word_.compare_exchange_weak(v, (v + add) & ~sleepers, std::memory_order_release, std::memory_order_relaxed)) {
    }
    ROUSE_CHECK_USAGE(static_cast<std::ptrdiff_t>(v >> 1) <= max - update, "rouse::counting_semaphore",
                      "release() past max()");
    if ((v & sleepers) != 0) [[unlikely]]
      wake_sleepers(update);
  }

  [[nodiscard]] bool try_acquire() noexcept {
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    while ((v >> 1) != 0) {
      // count -= 1. Ordering: acquire; pairs with the release in release().
      if (word_.compare_exchange_weak(v, v - 2, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  // False only on timeout (never early: wait_until reports a timeout only
  // once the deadline has passed; never for no_deadline).
  template <class Deadline>
  [[gnu::noinline]] bool acquire_slow(const Deadline& deadline) noexcept {
    if (detail::spin_until(detail::semaphore_spin, deadline,
                           [this] { return (word_.load(std::memory_order_relaxed) >> 1) != 0; }) &&
        try_acquire())
      return true;
    std::uint32_t flag = 0;
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    for (;;) {
      if (take(v, flag)) return true;
      // Passed (a zero timeout; a wake after the deadline): no sleep.
      if (deadline.expired()) return flag != 0 && leave_after_timeout();
      if ((v & sleepers) == 0) {
        // count == 0, no sleepers -> sleepers. Ordering: relaxed; the flag
        // and the count share the word, so a release() that comes later in
        // its modification order sees the flag (no store->load race).
        if (!word_.compare_exchange_weak(v, v | sleepers, std::memory_order_relaxed, std::memory_order_relaxed))
          continue;
        v |= sleepers;
      }
      flag = sleepers;
      if (detail::wait_until(word_, v, deadline) == detail::wait_result::timed_out) return leave_after_timeout();
      v = word_.load(std::memory_order_relaxed);
    }
  }

 private:
  friend struct semaphore_access;
  static constexpr std::uint32_t sleepers = 1;

  [[gnu::noinline, gnu::cold]] void wake_sleepers(std::ptrdiff_t update) noexcept {
    detail::wake(word_, semaphore_wake_count(update));
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

struct semaphore_wide_model_access;  // tests/model: a broken release, kept to prove the model

// The wide layout: a 64-bit count word and a 32-bit futex sequence word
// (see the table above).
class semaphore_wide {
 public:
  ROUSE_CONSTEXPR explicit semaphore_wide(std::ptrdiff_t desired) noexcept
      : word_(static_cast<std::uint64_t>(desired) << 1) {}

  void release(std::ptrdiff_t update, [[maybe_unused]] std::ptrdiff_t max) noexcept {
    ROUSE_CHECK_USAGE(update >= 0, "rouse::counting_semaphore", "release() with a negative update");
    if (update <= 0) return;  // as in semaphore_word
    std::uint64_t const add = static_cast<std::uint64_t>(update) << 1;
    std::uint64_t v = word_.load(std::memory_order_relaxed);
    for (;;) {
      if (v == sleepers) {
        // (R0) SLEEPERS -> RELEASING(0): this release wakes. Ordering:
        // relaxed; the release bump (R1) publishes it to waiters.
        if (word_.compare_exchange_weak(v, releasing_empty, std::memory_order_relaxed, std::memory_order_relaxed))
          break;
        continue;
      }
      // FREE(c) -> FREE(c + update), RELEASING(c) -> RELEASING(c + update).
      // Ordering: release; pairs with the acquire CAS that takes the permit.
      if (word_.compare_exchange_weak(v, v + add, std::memory_order_release, std::memory_order_relaxed)) {
        ROUSE_CHECK_USAGE(within_max_counting_pending(v, update, max), "rouse::counting_semaphore",
                          "release() past max()");
        return;
      }
    }
    release_to_sleepers(update, max);
  }

  [[nodiscard]] bool try_acquire() noexcept {
    std::uint64_t v = word_.load(std::memory_order_relaxed);
    while (has_permit(v)) {
      // field -= 1. Ordering: acquire; pairs with the release RMWs that add permits.
      if (word_.compare_exchange_weak(v, v - 2, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  // False only on timeout (never early; never for no_deadline).
  template <class Deadline>
  [[gnu::noinline]] bool acquire_slow(const Deadline& deadline) noexcept {
    if (detail::spin_until(detail::semaphore_spin, deadline,
                           [this] { return has_permit(word_.load(std::memory_order_relaxed)); }) &&
        try_acquire())
      return true;
    bool slept = false;
    detail::spinner releasing(detail::semaphore_release_wait);  // never spent: a release never waits
    for (;;) {
      // (S) Ordering: acquire; pairs with the release bumps (R1) and of
      // pass_wake_on(): a waiter that reads a bump sees the claim before it.
      std::uint32_t const seen = seq_.load(std::memory_order_acquire);
      std::uint64_t v = word_.load(std::memory_order_relaxed);
      if (take(v, slept)) return true;
      if (v == releasing_empty) {
        // A release is between its claim and its permits: never sleep on a
        // sequence that may already be bumped. A timed waiter may give up
        // here even if it slept: that release's wake restarts the chain.
        if (deadline.expired()) return false;
        (void)releasing.next();
        continue;
      }
      // Passed (a zero timeout; a wake after the deadline): no sleep.
      if (deadline.expired()) return slept && leave_after_timeout();
      if (v == free_empty) {
        // FREE(0) -> SLEEPERS. Ordering: relaxed; the flag and the count
        // share the word, so a release that comes later in its modification
        // order reads the flag (no store->load race).
        if (!word_.compare_exchange_weak(v, sleepers, std::memory_order_relaxed, std::memory_order_relaxed)) continue;
      }
      // SLEEPERS, read after (S): sleep while seq_ holds what (S) read.
      slept = true;
      if (detail::wait_until(seq_, seen, deadline) == detail::wait_result::timed_out) return leave_after_timeout();
    }
  }

 private:
  friend struct semaphore_wide_model_access;
  friend struct semaphore_access;

  static constexpr std::uint64_t free_empty = 0;       // FREE(0)
  static constexpr std::uint64_t sleepers = 1;         // SLEEPERS
  static constexpr std::uint64_t releasing_empty = 3;  // RELEASING(0)

  // A permit to take: FREE(c > 0) or RELEASING(c > 0), i.e. field > flag.
  static constexpr bool has_permit(std::uint64_t v) noexcept { return (v >> 1) > (v & 1); }
  static constexpr std::uint64_t count_of(std::uint64_t v) noexcept { return v == sleepers ? 0 : (v >> 1) - (v & 1); }
  // For the misuse check: the count before a release of `update` plus update <= max.
  static constexpr bool within_max(std::uint64_t before, std::ptrdiff_t update, std::ptrdiff_t max) noexcept {
    return update <= max && count_of(before) <= static_cast<std::uint64_t>(max - update);
  }
  // The same for a release that found FREE or RELEASING: it also counts the
  // permit a RELEASING release has still to add (the field's + 1), so the
  // release that overflows is the one diagnosed, before the word can wrap
  // into another state.
  static constexpr bool within_max_counting_pending(std::uint64_t before, std::ptrdiff_t update,
                                                    std::ptrdiff_t max) noexcept {
    return update <= max && (before >> 1) <= static_cast<std::uint64_t>(max - update);
  }

  // (R1)-(R3): this release claimed SLEEPERS (the word is RELEASING).
  [[gnu::noinline, gnu::cold]] void release_to_sleepers(std::ptrdiff_t update,
                                                        [[maybe_unused]] std::ptrdiff_t max) noexcept {
    // (R1) Ordering: release; pairs with (S): a waiter that reads this bump
    // sees (R0)'s RELEASING, or a later state, when it re-reads word_.
    seq_.fetch_add(1, std::memory_order_release);
    // (R2) RELEASING(c) -> FREE(c + update): field + update - 1, flag 0.
    // Ordering: release; pairs with the acquire CAS that takes the permit.
    [[maybe_unused]] std::uint64_t const before =
        word_.fetch_add((static_cast<std::uint64_t>(update) << 1) - 3, std::memory_order_release);
    // From here on the semaphore may be gone (Rule 7): only the futex address.
    ROUSE_CHECK_USAGE(within_max(before, update, max), "rouse::counting_semaphore", "release() past max()");
    detail::wake(seq_, semaphore_wake_count(update));  // (R3)
  }

  // A thread that slept, took a permit and left more in FREE: wakes one more
  // sleeper (see the table). Inside acquire(), so the semaphore is alive.
  [[gnu::noinline, gnu::cold]] void pass_wake_on() noexcept {
    // Ordering: release; pairs with (S), as (R1).
    seq_.fetch_add(1, std::memory_order_release);
    detail::wake_one(seq_);
  }

  // Takes a permit if there is one. A thread that slept and finds FREE
  // takes over the bookkeeping of the release that woke it: it puts the
  // flag back with the last permit, or passes the wake on when more remain.
  // In RELEASING the releasing thread's wake does that.
  bool take(std::uint64_t& v, bool slept) noexcept {
    while (has_permit(v)) {
      bool const free_state = (v & 1) == 0;
      bool const pass_on = slept && free_state && v > 2;
      // FREE(1) -> SLEEPERS for a thread that slept, else field -= 1.
      std::uint64_t const desired = slept && free_state && v == 2 ? sleepers : v - 2;
      // Ordering: acquire; pairs with the release RMWs that add permits.
      if (word_.compare_exchange_weak(v, desired, std::memory_order_acquire, std::memory_order_relaxed)) {
        if (pass_on) [[unlikely]]
          pass_wake_on();
        return true;
      }
    }
    return false;
  }

  // A thread that slept and timed out: as semaphore_word's. A RELEASING(0)
  // needs nothing: that release wakes.
  bool leave_after_timeout() noexcept {
    std::uint64_t v = word_.load(std::memory_order_relaxed);
    for (;;) {
      if (take(v, true)) return true;
      if (v != free_empty) return false;
      // FREE(0) -> SLEEPERS. Ordering: relaxed (one word, see above).
      if (word_.compare_exchange_weak(v, sleepers, std::memory_order_relaxed, std::memory_order_relaxed)) return false;
    }
  }

  detail::atomic<std::uint64_t> word_;
  detail::atomic<std::uint32_t> seq_{0};
};

static_assert(in_model || std::atomic<std::uint64_t>::is_always_lock_free, "the wide semaphore's count word");

}  // namespace detail

template <std::ptrdiff_t LeastMaxValue = detail::semaphore_word_max>
class counting_semaphore {
  static_assert(LeastMaxValue >= 0, "rouse::counting_semaphore: LeastMaxValue must not be negative");
  using layout =
      std::conditional_t<(LeastMaxValue <= detail::semaphore_word_max), detail::semaphore_word, detail::semaphore_wide>;

 public:
  static constexpr std::ptrdiff_t max() noexcept { return LeastMaxValue; }

  ROUSE_CONSTEXPR explicit counting_semaphore(std::ptrdiff_t desired) noexcept : impl_(desired) {
    ROUSE_CHECK_USAGE(desired >= 0 && desired <= max(), "rouse::counting_semaphore",
                      "initial count outside [0, max()]");
  }
  counting_semaphore(const counting_semaphore&) = delete;
  counting_semaphore& operator=(const counting_semaphore&) = delete;

  void release(std::ptrdiff_t update = 1) noexcept { impl_.release(update, max()); }

  void acquire() noexcept {
    if (impl_.try_acquire()) return;
    (void)impl_.acquire_slow(detail::no_deadline{});
  }

  [[nodiscard]] bool try_acquire() noexcept { return impl_.try_acquire(); }

  template <class Clock, class Duration>
  [[nodiscard]] bool try_acquire_until(std::chrono::time_point<Clock, Duration> deadline) noexcept {
    if (impl_.try_acquire()) return true;
    return impl_.acquire_slow(detail::deadline_at(deadline));
  }

  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(std::chrono::duration<Rep, Period> timeout) noexcept {
    if (impl_.try_acquire()) return true;
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) {
      (void)impl_.acquire_slow(detail::no_deadline{});
      return true;
    }
    return impl_.acquire_slow(detail::deadline_at(deadline));
  }

 private:
  friend struct detail::semaphore_access;
  layout impl_;
};

using binary_semaphore = counting_semaphore<1>;

namespace detail {
// For a waiter that cannot sleep inside a call (a coroutine,
// rouse/async/blocking.hpp): acquire_slow()'s loop one wait at a time, the
// waits made by the caller on word(). Both layouts; the wide layout's
// RELEASING state, where a thread polls, becomes a wait on a value its
// sequence word no longer holds (it returns at once, and the caller steps
// again).
struct semaphore_access {
  template <std::ptrdiff_t N>
  static auto& impl(counting_semaphore<N>& s) noexcept {
    return s.impl_;
  }
  template <std::ptrdiff_t N>
  static semaphore_word& one_word(counting_semaphore<N>& s) noexcept {
    static_assert(N <= semaphore_word_max, "the one-word layout (LeastMaxValue <= 2^31 - 1)");
    return s.impl_;
  }
  static const detail::atomic<std::uint32_t>& word(semaphore_word& s) noexcept { return s.word_; }
  // One pass of acquire_slow()'s loop: takes a permit (true), or sets the
  // sleepers flag and returns false with `value` the word to wait on.
  // `slept`: the caller has waited before; it then takes over the wake
  // bookkeeping of the release that may have woken it, as a woken thread
  // does (puts the flag back with the last permit, or passes the wake on).
  static bool acquire_step(semaphore_word& s, std::uint32_t& value, bool slept) noexcept {
    std::uint32_t v = s.word_.load(std::memory_order_relaxed);
    std::uint32_t const flag = slept ? semaphore_word::sleepers : 0;
    for (;;) {
      if (s.take(v, flag)) return true;
      if ((v & semaphore_word::sleepers) == 0) {
        // count == 0, no sleepers -> sleepers. Ordering: relaxed, as in
        // acquire_slow() (one word: no store->load race).
        if (!s.word_.compare_exchange_weak(v, v | semaphore_word::sleepers, std::memory_order_relaxed,
                                           std::memory_order_relaxed))
          continue;
        v |= semaphore_word::sleepers;
      }
      value = v;
      return false;
    }
  }
  // A stepwise waiter that leaves without a permit (stopped): the timed
  // thread's rule (leave_after_timeout()): takes a permit if one is there
  // (true), else puts the sleepers flag back.
  static bool acquire_leave(semaphore_word& s) noexcept { return s.leave_after_timeout(); }

  // The wide layout: the futex word is the sequence word.
  static const detail::atomic<std::uint32_t>& word(semaphore_wide& s) noexcept { return s.seq_; }
  static const detail::atomic<std::uint64_t>& count_word(semaphore_wide& s) noexcept { return s.word_; }
  // One pass of semaphore_wide::acquire_slow()'s loop (its table's rows).
  static bool acquire_step(semaphore_wide& s, std::uint32_t& value, bool slept) noexcept {
    for (;;) {
      // (S) Ordering: acquire, as in acquire_slow().
      std::uint32_t const seen = s.seq_.load(std::memory_order_acquire);
      std::uint64_t v = s.word_.load(std::memory_order_relaxed);
      if (s.take(v, slept)) return true;
      if (v == semaphore_wide::releasing_empty) {
        // A release is between its claim and its permits: never wait on a
        // sequence it may already have bumped. seen - 1 is a value seq_
        // held before (it only grows, and 2^32 bumps would have to come
        // first): the wait returns at once.
        value = model_fault_on(model_fault::wide_semaphore_step_waits_in_releasing) ? seen : seen - 1;
        return false;
      }
      if (v == semaphore_wide::free_empty) {
        // FREE(0) -> SLEEPERS. Ordering: relaxed, as in acquire_slow().
        if (!s.word_.compare_exchange_weak(v, semaphore_wide::sleepers, std::memory_order_relaxed,
                                           std::memory_order_relaxed))
          continue;
      }
      // SLEEPERS, read after (S): wait while seq_ holds what (S) read.
      value = seen;
      return false;
    }
  }
  static bool acquire_leave(semaphore_wide& s) noexcept { return s.leave_after_timeout(); }
};
}  // namespace detail

static_assert(detail::in_model || (sizeof(counting_semaphore<>) == 4 && sizeof(binary_semaphore) == 4));
static_assert(detail::in_model || sizeof(counting_semaphore<detail::semaphore_word_max + 1>) == 16);

}  // namespace rouse
