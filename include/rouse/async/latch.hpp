// rouse/async/latch.hpp — a single-use count-down that tasks and threads wait on.
//
//   rouse::async::latch done(3);
//   // each of three workers:                 // a task:     co_await done.wait();
//   work(); done.count_down();                 // a thread:   done.wait_blocking();
//
// Purpose: std::latch for coroutines, with the blocking forms on the same
// object. count_down(n) lowers the count; when it reaches zero every wait,
// current and future, completes. The count never goes back up.
//
// Members (std::latch's): count_down(n = 1), try_wait(), max();
// `co_await l.wait()`, `co_await l.arrive_and_wait(n = 1)` (counts down when
// called, then waits); wait_blocking(), arrive_and_wait_blocking(n),
// wait_blocking_for(d), wait_blocking_until(t) for plain threads; and
// wait_for(d) / wait_until(t), awaitables built on with_timeout
// (rouse/async/timeout.hpp) that return false when the time passed first.
//
// Lifecycle and rules: any task or thread may count down or wait at any
// time. A task resumes on the executor of its promise's environment, never
// inside count_down() (without an executor in its environment, on the
// counting thread inside the call: coroutine_waker's fallback). The latch may
// be destroyed by a party its release let through the moment that party
// sees the count at zero, even while the last count_down() is still
// returning (docs/design.md, rule 7: see "Release" below) — but not while another
// party is inside arrive_and_wait(): its count-down and its co_await are one
// operation, as std::latch's arrive_and_wait() is one call, and its await
// reads the latch (a waiter without an executor, released inside that
// count-down, runs before the await). Cancellation through the
// awaiting promise's stop token: a stopped wait leaves the list and takes
// nothing (a latch hands nothing over); arrive_and_wait's count-down is
// never undone.
//
// Misuse (debug builds: a message naming rouse::async::latch and the rule,
// then abort): counting down below zero (n greater than the count), a
// negative n or expected, destroying the latch while a task waits on it.
//
// sizeof: 32 bytes; a wait() awaitable 200 bytes in the awaiting frame; no
// allocation per wait. Fairness: n/a (the release frees everybody). Cost
// with nobody waiting: count_down() is one RMW (the last one: one more load,
// and one store); try_wait() and a wait on a released latch one load. No
// system call. Across processes: no.
//
// State word (64 bits)
//   count << 1   C: arrivals still expected
//   bit 0        D: released (only together with C = 0)
//   C > 0, D = 0     counting: waits queue
//   C = 0, D = 0     releasing: the last count_down() is claiming the queued
//                    waiters; a wait that sees it waits for D (a short spin:
//                    the claim of a list under its lock), it does not queue
//   C = 0, D = 1     released: every wait completes at once
//
// Release (rule 7). The last count_down()'s RMW (A1) leaves C = 0, D = 0;
// it then claims every queued waiter under the list's lock, drops the lock,
// waits for any waiter whose stop or timeout had claimed it first to unlink
// itself (a short wait: that thread is running), stores D (the last touch
// of the latch), and only then wakes the waiters it claimed, from a chain
// it holds (waiter_list::notify_all_releasing). A
// waiter that registers after the claim finds C = 0 in its re-check and waits
// for D, so none is lost; a waiter that sees D may destroy the latch at once.
//
// Memory ordering: everything before a count_down() happens-before the
// return of every wait its release completes: every count_down is a seq_cst
// RMW (so the last one reads from a release sequence of all of them), D is
// stored seq_cst (release) and read seq_cst (acquire); a claimed waiter is
// ordered by the claim and its waker. (A)/(B) is the Dekker pairing of
// rouse/async/waiter_list.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "rouse/async/waiter_list.hpp"
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
#include "rouse/async/timeout.hpp"
#endif
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

class latch {
 public:
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  using awaitable = list_awaitable<latch>;
#endif

  [[nodiscard]] static constexpr std::ptrdiff_t max() noexcept { return std::ptrdiff_t{1} << 62; }

  explicit latch(std::ptrdiff_t expected) noexcept
      : state_(expected == 0 ? released : static_cast<std::uint64_t>(expected) << 1) {
    ROUSE_CHECK_USAGE(expected >= 0 && expected <= max(), "rouse::async::latch", "expected count out of range");
  }
  latch(const latch&) = delete;
  latch& operator=(const latch&) = delete;
  ~latch() { waiters_.check_unused_by("rouse::async::latch"); }

  // Lowers the count by n; the call that reaches zero releases every waiter.
  void count_down(std::ptrdiff_t n = 1) noexcept {
    ROUSE_CHECK_USAGE(n >= 0, "rouse::async::latch", "count_down with a negative count");
    if (n == 0) return;
    std::uint64_t const unit = static_cast<std::uint64_t>(n) << 1;
    // (A1) seq_cst: pairs with (B2) in try_acquire().
    std::uint64_t const before = state_.fetch_sub(unit, std::memory_order_seq_cst);
    ROUSE_CHECK_USAGE((before & released) == 0 && before >= unit, "rouse::async::latch",
                      "count_down below zero (more arrivals than expected)");
    if (before != unit) [[likely]]
      return;
    release();
  }

  // True when the count has reached zero and the release is done.
  [[nodiscard]] bool try_wait() const noexcept {
    // Ordering: acquire: pairs with the store of D in release().
    return state_.load(std::memory_order_acquire) == released;
  }

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await l.wait()`: completes once the count has reached zero.
  [[nodiscard]] awaitable wait() noexcept { return awaitable(*this, 0); }
  // `co_await l.arrive_and_wait(n)`: counts down n now (when called), then
  // waits. A stopped wait does not undo the count-down.
  [[nodiscard]] awaitable arrive_and_wait(std::ptrdiff_t n = 1) noexcept {
    count_down(n);
    return wait();
  }
  // `co_await l.wait_for(d)`: true once released, false when d passed first
  // (with_timeout over wait(): no allocation).
  template <class Rep, class Period>
  [[nodiscard]] auto wait_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return with_timeout(wait(), d);
  }
  template <class Clock, class Duration>
  [[nodiscard]] auto wait_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return with_deadline(wait(), t);
  }
#endif

  void wait_blocking() noexcept { (void)async::wait_blocking(*this, 0, ::rouse::detail::no_deadline{}); }
  void arrive_and_wait_blocking(std::ptrdiff_t n = 1) noexcept {
    count_down(n);
    wait_blocking();
  }
  // False when `d` / `t` passed first.
  template <class Rep, class Period>
  [[nodiscard]] bool wait_blocking_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return wait_blocking_until(::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool wait_blocking_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return async::wait_blocking(*this, 0, ::rouse::detail::deadline_at(t));
  }

 private:
  friend class list_wait<latch>;
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  friend class list_awaitable<latch>;
#endif
  template <class P, class Deadline>
  friend bool wait_blocking(P&, std::uintptr_t, const Deadline&) noexcept;

  static constexpr std::uint64_t released = 1;  // D (with C = 0)
  static constexpr std::uint64_t releasing = 0;  // C = 0, D not yet stored

  // The check (await_ready) and the re-check (B2).
  check_result try_acquire(std::uintptr_t) noexcept {
    // (B2) seq_cst: pairs with (A1) in count_down().
    std::uint64_t s = state_.load(std::memory_order_seq_cst);
    if (s == releasing) s = wait_out_release();
    return s == released ? check_result::ready : check_result::not_ready;
  }
  // The last count_down() is between its claim and D: wait for D.
  [[gnu::cold, gnu::noinline]] std::uint64_t wait_out_release() noexcept {
    ::rouse::detail::spinner spin(::rouse::detail::shared_mutex_hand_over);  // pauses, then yields: never sleeps
    std::uint64_t s;
    // Ordering: seq_cst, as (B2).
    while ((s = state_.load(std::memory_order_seq_cst)) == releasing) spin.next();
    return s;
  }
  // A latch wakes by broadcast: nothing is handed over to pass on.
  void pass_on() noexcept {}
  waiter_list& waiters() noexcept { return waiters_; }

  [[gnu::noinline]] void release() noexcept {
    waiters_.notify_all_releasing([](detail::waiter_node&) { return true; },
                                  [this]() noexcept {
                                    // releasing -> released: the last touch of the latch.
                                    // Ordering: seq_cst (release): pairs with the waits' loads.
                                    state_.store(released, std::memory_order_seq_cst);
                                  });
  }

  ::rouse::detail::atomic<std::uint64_t> state_;
  waiter_list waiters_;
};

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(latch) == 32);
static_assert(sizeof(list_awaitable<latch>) == 200);
#endif

}  // namespace rouse::async
