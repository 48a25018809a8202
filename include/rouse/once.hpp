// rouse/once.hpp — one-time initialisation on one futex word.
//
//   rouse::once_flag                    drop-in for std::once_flag
//   rouse::call_once(flag, f, args...)  drop-in for std::call_once
//
// Purpose: run an initialisation exactly once, however many threads ask for
// it at the same time; the others wait until it is done and then see its
// effects. Semantics are std::call_once's: the callable runs on the calling
// thread through std::invoke; if it throws, the exception reaches that
// caller, the flag stays unset, and the next caller (or a waiter, woken)
// runs it again. Only a call that returns normally completes the flag.
//
// Lifecycle: constexpr-constructible (constinit globals) and a literal type
// in every build (constexpr destructor), not copyable or movable.
// Destroying a flag while a call_once on it is running is invalid.
//
// Destruction ("running" above is the callable; std says nothing more): a
// thread whose call_once() returned may destroy the flag at once, even while
// the call that ran the callable is still inside call_once() waking the
// waiters: its exchange to `done` is its last access, after which it only
// passes the word's address to the futex wake. Every other call_once() on
// the flag must have returned (a woken waiter re-reads the word).
//
// Misuse, diagnosed in debug builds, abort ("rouse::call_once: misuse: ..."):
// calling call_once on a flag from inside its own callable (a guaranteed
// self-deadlock with std::call_once), destroying a flag while its callable
// runs. Release builds check nothing.
//
// Size: 4 bytes (static_asserted).
//
// Cost after the initialisation: one acquire load (a plain load on x86,
// inline). No read-modify-write, no system call. While it runs, waiters
// sleep on the futex; the runner makes a wake system call only if somebody
// marked the word "waiters" (otherwise the completing exchange is all).
//
// Fairness: not applicable; waiters all wake when the run completes (or
// fails, and then one of them runs the callable next).
//
// Processes: process-private.
//
// State of the word:
//   0 incomplete   nobody ran it successfully yet, nobody is running it
//   1 running      a thread runs the callable, nobody sleeps
//   2 waiting      a thread runs the callable, others may sleep: wake them all
//   3 done         completed; every caller returns at once
//
//   0 -> 1         a caller becomes the runner (compare-exchange)
//   1 -> 2         a caller about to sleep
//   1|2 -> 3       the callable returned (exchange; wake all if it was 2)
//   1|2 -> 0       the callable threw (exchange; wake all if it was 2)
//
// Memory ordering: everything the callable did happens-before the return
// of every call_once on the flag that finds it done: the runner's exchange
// to 3 is a release, and every read that can find 3 (the fast path, and the
// re-read after each wait) is an acquire.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/held_locks.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse {

class once_flag {
 public:
  constexpr once_flag() noexcept = default;
  once_flag(const once_flag&) = delete;
  once_flag& operator=(const once_flag&) = delete;
#if ROUSE_DEBUG_CHECKS
  // constexpr, so that the flag stays a literal type (`constexpr
  // rouse::once_flag f;`, as std's); the check runs outside constant
  // evaluation only.
  ROUSE_CONSTEXPR ~once_flag() {
    ROUSE_CHECK_USAGE_AT_RUN_TIME(!running_or_waiting(), "rouse::call_once",
                                  "once_flag destroyed while its callable runs");
  }
#else
  ~once_flag() = default;
#endif

 private:
  template <class Callable, class... Args>
  friend void call_once(once_flag& flag, Callable&& f, Args&&... args);

  static constexpr std::uint32_t incomplete = 0;
  static constexpr std::uint32_t running = 1;
  static constexpr std::uint32_t waiting = 2;
  static constexpr std::uint32_t done = 3;

  bool running_or_waiting() const noexcept {
    std::uint32_t const v = word_.load(std::memory_order_relaxed);
    return v == running || v == waiting;
  }

  // Ends a run: to `done` when the callable returned, back to `incomplete`
  // when it threw; wakes every sleeper if there may be any.
  struct run_end {
    once_flag& flag;
    std::uint32_t outcome = incomplete;
    ~run_end() {
#if ROUSE_TRACK_HELD_LOCKS
      detail::held_locks::mine().remove(&flag);
#endif
      // Ordering: release, pairs with the acquire loads in call_once() that
      // read `done` (or `incomplete`, for the next runner's compare-exchange).
      if (flag.word_.exchange(outcome, std::memory_order_release) == waiting) detail::wake_all(flag.word_);
    }
  };

  template <class Callable, class... Args>
  [[gnu::noinline]] void call_slow(Callable&& f, Args&&... args) {
#if ROUSE_TRACK_HELD_LOCKS
    ROUSE_CHECK_USAGE(!detail::held_locks::mine().contains(this), "rouse::call_once",
                      "call_once() on a flag from inside its own callable (self-deadlock)");
#endif
    // Ordering: acquire, pairs with run_end's release exchange.
    std::uint32_t seen = word_.load(std::memory_order_acquire);
    for (;;) {
      if (seen == done) return;
      if (seen == incomplete) {
        // Ordering: acquire on both outcomes: a failure may read `done` and
        // return (pairs with run_end's release); a success pairs with the
        // release of a failed run's reset.
        if (!word_.compare_exchange_strong(seen, running, std::memory_order_acquire, std::memory_order_acquire))
          continue;
#if ROUSE_TRACK_HELD_LOCKS
        detail::held_locks::mine().add(this);
#endif
        run_end end{*this};
        std::invoke(std::forward<Callable>(f), std::forward<Args>(args)...);
        end.outcome = done;
        return;  // ~run_end publishes `done`
      }
      if (seen == running) {
        if (detail::model_fault_on(detail::model_fault::once_waiter_sleeps_unmarked)) {
          detail::wait(word_, running);
          seen = word_.load(std::memory_order_acquire);
          continue;
        }
        // Ordering: the mark publishes nothing (the runner's exchange reads it
        // by the RMW total order of the word, then wakes us), but the
        // compare-exchange may instead read `done` and return: so acquire,
        // pairing with run_end's release, on both outcomes.
        if (!word_.compare_exchange_strong(seen, waiting, std::memory_order_acquire, std::memory_order_acquire))
          continue;
      }
      detail::wait(word_, waiting);
      // Ordering: acquire, pairs with run_end's release exchange.
      seen = word_.load(std::memory_order_acquire);
    }
  }

  detail::atomic<std::uint32_t> word_{incomplete};
};

static_assert(detail::in_model || sizeof(once_flag) == 4, "rouse::once_flag is one futex word");

template <class Callable, class... Args>
inline void call_once(once_flag& flag, Callable&& f, Args&&... args) {
  // Ordering: acquire, pairs with run_end's release exchange to `done`.
  if (flag.word_.load(std::memory_order_acquire) == once_flag::done) [[likely]]
    return;
  flag.call_slow(std::forward<Callable>(f), std::forward<Args>(args)...);
}

}  // namespace rouse
