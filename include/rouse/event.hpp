// rouse/event.hpp — a manual-reset or auto-reset event in one word.
//
//   rouse::event ready;                                   // manual-reset, unset
//   // producer: publish(); ready.set();                   consumer: ready.wait(); use();
//   rouse::event turn(rouse::event_mode::auto_reset);     // each set() releases one wait()
//
// Purpose: a flag threads can sleep on.
// - manual_reset: set() releases every current and future wait() until
//   reset(). wait() does not change the event.
// - auto_reset: set() leaves one token; one wait() consumes it (the event is
//   reset as that wait returns). set() on a set event leaves it set (tokens
//   do not accumulate — use a semaphore to count).
//
// Lifecycle and rules: any thread may set, reset or wait at any time. The
// constructor is constexpr (constinit events).
// A waiter returns when it observes the event set; a set() immediately
// undone by reset() may release no waiter at all (wait() waits for the
// state, not for the call). Destroy the event only when no thread is inside
// wait() (a woken waiter re-reads the word): a thread whose wait() returned
// may destroy it at once, even while the set() that released it is still
// returning (set()'s RMW is its last access; after it, it only passes the
// word's address to the futex wake). Other calls must have returned.
//
// Misuse: destroying an event with sleeping waiters is not detected (the
// sleepers flag is conservative: it may stay set after the last sleeper
// left, so it cannot tell).
//
// Size: 4 bytes (one 32-bit word; the mode is a bit of it). Fairness: none
// (a thread that arrives may consume an auto-reset token before the sleeper
// that set() woke; the woken thread then sleeps again). Wake policy:
// manual_reset set() wakes every sleeper with one wake call; auto_reset
// set() wakes one; neither makes a call when no thread sleeps.
// Cost with nobody waiting: set() is one RMW (a CAS after a load) and no
// system call; reset() one RMW; is_set() one load; wait() on a set event one
// load (manual) or one RMW (auto). wait() spins briefly
// (detail::event_spin) before it sleeps. Across processes: no.
//
// State word
//   set       (bit 0)  the event is set
//   sleepers  (bit 1)  some thread may be asleep in wait(); set by a waiter
//                      before it sleeps, cleared by the set() that wakes
//   automatic (bit 2)  auto_reset mode (constant)
//
//   set():               set := 1, sleepers := 0; if sleepers was 1: wake all (manual) / one (auto)
//   reset():             set := 0
//   wait, manual, set:   return
//   wait, auto, set:     set := 0 (| sleepers if this thread slept), return
//   wait, unset:         sleepers := 1, sleep while the word is unchanged
//   timeout, auto, slept: take the token if set, else sleepers := 1
//   (an auto-reset thread that slept restores the flag because set() woke
//   only it; a manual-reset set() woke everybody, so nothing is restored)
//
// Memory ordering: everything a thread did before set() happens-before the
// return of a wait() (or true-returning wait_for/until, or is_set() == true)
// that observes the event set by it: set is a release RMW, and waits read
// the word with acquire loads or an acquire RMW.
#pragma once

#include <chrono>
#include <cstdint>

#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"  // ROUSE_CONSTEXPR
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

enum class event_mode : std::uint8_t { manual_reset, auto_reset };

class event {
 public:
  ROUSE_CONSTEXPR explicit event(event_mode mode = event_mode::manual_reset, bool initially_set = false) noexcept
      : word_((mode == event_mode::auto_reset ? automatic : 0u) | (initially_set ? set_bit : 0u)) {}
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  void set() noexcept {
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    // set := 1, sleepers := 0.
    // Ordering: release; pairs with the acquire loads/RMW in wait().
    while (!word_.compare_exchange_weak(v, (v | set_bit) & ~sleepers, std::memory_order_release,
                                        std::memory_order_relaxed)) {
    }
    if ((v & sleepers) != 0) [[unlikely]]
      wake_sleepers(v);
  }

  void reset() noexcept {
    // Ordering: relaxed; reset publishes nothing, and every change of the
    // word is an RMW, so set()'s release sequence is not broken.
    word_.fetch_and(~set_bit, std::memory_order_relaxed);
  }

  [[nodiscard]] bool is_set() const noexcept {
    // Ordering: acquire; pairs with the release in set().
    return (word_.load(std::memory_order_acquire) & set_bit) != 0;
  }

  event_mode mode() const noexcept {
    return (word_.load(std::memory_order_relaxed) & automatic) != 0 ? event_mode::auto_reset : event_mode::manual_reset;
  }

  // Returns at once if the event is set (consuming it if auto-reset).
  [[nodiscard]] bool try_wait() noexcept {
    std::uint32_t v = word_.load(std::memory_order_acquire);
    return try_take(v, 0);
  }

  void wait() noexcept {
    if (try_wait()) return;
    (void)wait_slow(detail::no_deadline{});
  }

  template <class Clock, class Duration>
  [[nodiscard]] bool wait_until(std::chrono::time_point<Clock, Duration> deadline) noexcept {
    if (try_wait()) return true;
    return wait_slow(detail::deadline_at(deadline));
  }

  template <class Rep, class Period>
  [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> timeout) noexcept {
    if (try_wait()) return true;
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) {
      (void)wait_slow(detail::no_deadline{});
      return true;
    }
    return wait_slow(detail::deadline_at(deadline));
  }

 private:
  static constexpr std::uint32_t set_bit = 1;
  static constexpr std::uint32_t sleepers = 2;
  static constexpr std::uint32_t automatic = 4;

  // `v` is the word set()'s RMW replaced: after that RMW the event may be
  // gone (a released waiter may destroy it), so only its address is used.
  [[gnu::noinline, gnu::cold]] void wake_sleepers(std::uint32_t v) noexcept {
    if (detail::model_fault_on(detail::model_fault::event_set_reads_word_after_release))
      v = word_.load(std::memory_order_relaxed);  // BROKEN on purpose, models only
    if ((v & automatic) != 0)
      detail::wake_one(word_);
    else
      detail::wake_all(word_);
  }

  // True if the event is set in `v` (re-read on CAS failure), consuming it if
  // auto-reset; `flag` is `sleepers` for an auto-reset thread that slept.
  bool try_take(std::uint32_t& v, std::uint32_t flag) noexcept {
    for (;;) {
      if ((v & set_bit) == 0) return false;
      if ((v & automatic) == 0) return true;  // manual: v was loaded with acquire
      // auto: set -> unset (| sleepers). Ordering: acquire; pairs with set().
      if (word_.compare_exchange_weak(v, (v & ~set_bit) | flag, std::memory_order_acquire, std::memory_order_acquire))
        return true;
    }
  }

  // False only when the deadline passed (never early).
  template <class Deadline>
  [[gnu::noinline]] bool wait_slow(const Deadline& deadline) noexcept {
    if (detail::spin_until(detail::event_spin, deadline,
                           [this] { return (word_.load(std::memory_order_relaxed) & set_bit) != 0; }) &&
        try_wait())
      return true;
    std::uint32_t flag = 0;
    // Ordering: acquire; pairs with the release in set().
    std::uint32_t v = word_.load(std::memory_order_acquire);
    for (;;) {
      if (try_take(v, flag)) return true;
      // Passed (a zero timeout; a wake after the deadline): no sleep.
      if (deadline.expired()) return leave_after_timeout(flag);
      if ((v & sleepers) == 0) {
        // unset, no sleepers -> sleepers. Ordering: the flag shares the word
        // with the set bit, so a set() later in the modification order sees
        // it (no store->load race); acquire on failure for the re-check.
        if (!word_.compare_exchange_weak(v, v | sleepers, std::memory_order_acquire, std::memory_order_acquire))
          continue;
        v |= sleepers;
      }
      if ((v & automatic) != 0) flag = sleepers;
      if (detail::wait_until(word_, v, deadline) == detail::wait_result::timed_out) return leave_after_timeout(flag);
      // Ordering: acquire; pairs with the release in set().
      v = word_.load(std::memory_order_acquire);
    }
  }

  bool leave_after_timeout(std::uint32_t flag) noexcept {
    // Ordering: acquire; pairs with the release in set().
    std::uint32_t v = word_.load(std::memory_order_acquire);
    for (;;) {
      if (try_take(v, flag)) return true;
      if (flag == 0 || (v & sleepers) != 0) return false;
      // auto-reset, slept: unset -> sleepers (set() may have woken this
      // thread instead of another sleeper). Ordering: the flag shares the
      // word with the set bit (no store->load race); acquire for the re-check.
      if (word_.compare_exchange_weak(v, v | sleepers, std::memory_order_acquire, std::memory_order_acquire))
        return false;
    }
  }

  detail::atomic<std::uint32_t> word_;
};

static_assert(detail::in_model || sizeof(event) == 4);

}  // namespace rouse
