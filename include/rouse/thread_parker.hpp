// rouse/thread_parker.hpp — park and unpark one thread (Rust's thread::park).
//
//   rouse::thread_parker p;
//   // the parking thread:            // any other thread:
//   while (!ready()) p.park();        make_ready(); p.unpark();
//
// Purpose: the smallest blocking building block. A thread parks on its own
// parker; other threads unpark it. Every thread waiter of rouse's waiter
// queue (detail/waiter_queue.hpp: the channels, select) sleeps on one, and
// its claimer's release is the unpark().
//
// Lifecycle and rules
// - One thread parks at a time (normally the thread that owns the parker; the
//   parker is not bound to a thread, so ownership may move between threads
//   that hand it over with ordinary synchronization). Any number of threads
//   may call unpark() at any time.
// - unpark() leaves a token. park() consumes the token and returns at once if
//   one is there, else sleeps until one arrives. An unpark before the park is
//   therefore never lost. Tokens do not accumulate: two unparks before a park
//   release one park only.
// - park() may return spuriously (the contract allows it; this implementation
//   only returns with a token). park_for / park_until return true when they
//   consumed a token, false when the deadline passed first (never early).
// - Destruction: the parker may be destroyed once the parked thread has
//   returned from park() and every other unpark() on it has returned, even
//   while the unpark() whose token that park() consumed is still inside its
//   call: an unpark()'s exchange (the state change that releases the
//   parker) is its last access to the word, and its wake call on a freed
//   address is harmless (at worst a spurious wake of an unrelated futex
//   waiter, which every rouse wait tolerates).
//
// Misuse (diagnosed in debug builds, ROUSE_CHECK_USAGE): two threads parked
// on one parker at the same time ("park() while another thread is parked").
//
// Size: 4 bytes (one 32-bit word). Fairness: n/a (one parked thread).
// Cost with nobody parked: unpark() is one RMW (exchange) and no system call.
// park() with a token present: one RMW, no system call.
// Across processes: no (process-private futex).
//
// State word
//   empty    = 0           no token, nobody parked
//   notified = 1           a token is waiting to be consumed
//   parked   = 0xFFFFFFFF  the owner is (or is about to be) asleep, no token
//
//   park:     notified -> empty (return)   | empty -> parked (sleep)
//   wake:     parked: notified -> empty (return) | parked -> parked (spurious: sleep again)
//   timeout:  parked -> empty (swap; if it was notified, the token is consumed)
//   unpark:   any -> notified; if it was parked, wake one
//
// Memory ordering: everything a thread did before unpark() happens-before the
// return of the park() (or park_for/until returning true) that consumed its
// token: unpark's exchange is release, the consuming RMW is acquire.
#pragma once

#include <chrono>
#include <cstdint>

#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

class thread_parker {
 public:
  thread_parker() noexcept = default;
  thread_parker(const thread_parker&) = delete;
  thread_parker& operator=(const thread_parker&) = delete;

  // Sleeps until a token is available, consumes it and returns.
  void park() noexcept {
    // empty -> parked (sleep), or notified -> empty (return at once).
    // Ordering: acquire pairs with the release exchange in unpark().
    std::uint32_t const before = state_.fetch_sub(1, std::memory_order_acquire);
    if (before == notified) return;
    ROUSE_CHECK_USAGE(before == empty, "rouse::thread_parker", "park() while another thread is parked");
    (void)park_slow(detail::no_deadline{});
  }

  // As park(), but gives up at `deadline`. True when a token was consumed.
  template <class Clock, class Duration>
  bool park_until(std::chrono::time_point<Clock, Duration> deadline) noexcept {
    // Ordering: acquire pairs with the release exchange in unpark().
    std::uint32_t const before = state_.fetch_sub(1, std::memory_order_acquire);
    if (before == notified) return true;
    ROUSE_CHECK_USAGE(before == empty, "rouse::thread_parker", "park() while another thread is parked");
    return park_slow(detail::deadline_at(deadline));
  }

  template <class Rep, class Period>
  bool park_for(std::chrono::duration<Rep, Period> timeout) noexcept {
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) {
      park();
      return true;
    }
    return park_until(deadline);
  }

  // Whether a token is waiting: a park() now would return at once. For the
  // thread that parks, to poll before it sleeps (one load, no RMW). Once it
  // returned true, the unpark() that left the token makes no further access
  // to the parker (its exchange found nobody parked), so the parker may be
  // destroyed without the token being consumed.
  [[nodiscard]] bool has_token() const noexcept {
    // Ordering: acquire pairs with the release exchange in unpark(), as the
    // consuming RMW of park() does.
    return state_.load(std::memory_order_acquire) == notified;
  }

  // Makes a token available unless the thread is parked (asleep, or about to
  // sleep): true when it did (or one was there already), without a system
  // call; false when the thread is parked, and the parker is unchanged (a
  // later unpark() must wake it). For a releaser that wakes sleepers in an
  // order of its own (rouse::condition_variable's notify_all).
  bool unpark_unless_parked() noexcept {
    std::uint32_t seen = empty;
    // empty -> notified. Ordering: release, as unpark()'s exchange.
    return state_.compare_exchange_strong(seen, notified, std::memory_order_release, std::memory_order_relaxed) ||
           seen == notified;
  }

  // Makes a token available, waking the parked thread if there is one.
  void unpark() noexcept {
    // any -> notified.
    // Ordering: release pairs with the acquire RMW in park()/park_slow() that
    // consumes the token.
    if (detail::model_fault_on(detail::model_fault::thread_parker_wakes_before_token)) {
      wake_parked();
      (void)state_.exchange(notified, std::memory_order_release);
    } else if (state_.exchange(notified, std::memory_order_release) == parked) {
      wake_parked();
    }
  }

 private:
  static constexpr std::uint32_t empty = 0;
  static constexpr std::uint32_t notified = 1;
  static constexpr std::uint32_t parked = 0xFFFFFFFFu;

  [[gnu::noinline, gnu::cold]] void wake_parked() noexcept { detail::wake_one(state_); }

  // Sleeps until a token comes (true) or the deadline passes (false; never
  // for no_deadline).
  template <class Deadline>
  [[gnu::noinline]] bool park_slow(const Deadline& deadline) noexcept {
    for (;;) {
      bool const timed_out = detail::wait_until(state_, parked, deadline) == detail::wait_result::timed_out;
      if (timed_out) {
        // parked -> empty, or notified -> empty (an unpark raced the timeout:
        // take its token rather than leave it for the next park).
        // Ordering: acquire pairs with the release exchange in unpark().
        return state_.exchange(empty, std::memory_order_acquire) == notified;
      }
      // parked: notified -> empty (return), else a spurious wake: sleep again.
      // Ordering: acquire pairs with the release exchange in unpark().
      std::uint32_t expected = notified;
      if (state_.compare_exchange_strong(expected, empty, std::memory_order_acquire, std::memory_order_relaxed))
        return true;
    }
  }

  detail::atomic<std::uint32_t> state_{empty};
};

static_assert(detail::in_model || sizeof(thread_parker) == 4);

}  // namespace rouse
