// rouse/async/event.hpp — events that tasks and threads wait on.
//
//   manual_reset_event  set() releases every current and future wait until
//                       reset(); waits do not change it
//   auto_reset_event    set() releases exactly one waiter, or, when nobody
//                       waits, stays set until one wait consumes it; sets do
//                       not accumulate (use a semaphore to count)
//
//   rouse::async::manual_reset_event ready;
//   // a task:  co_await ready.wait();      // a thread:  ready.wait_blocking();
//   // anyone:  publish(); ready.set();
//
// Two types, not one with a mode flag (rouse::event's shape): their
// protocols differ (a broadcast that stores a flag; a hand-off of one
// token, which is rouse::async::notify's notify_one), so each call is its
// own few lines with no mode branch, and the awaitable a wait returns is
// the one of that protocol. The names are those of cppcoro and libunifex.
//
// Lifecycle and rules: any task or thread may set, reset or wait at any
// time; constructors take the initial state. A task resumes on the executor
// of its promise's environment, never inside set() (without an executor in
// its environment, on the setter's thread inside set(): coroutine_waker's
// documented fallback). Cancellation through the awaiting promise's stop
// token: a stopped wait takes nothing; one that was chosen first resumes
// normally (rouse/async/waiter_list.hpp). Destroy an event only when nobody
// waits and no call is running (debug builds check the list is empty).
//
// Misuse: co_await-ing one wait() twice; destroying an event with waiters
// (debug: diagnosed, abort).
//
// sizeof: manual_reset_event 32 bytes, auto_reset_event 32 bytes; a wait()
// awaitable 200 bytes in the awaiting frame; no allocation per wait.
// Fairness: manual: n/a (set releases all); auto: FIFO among queued waiters
// (a newcomer may take the token only when no queued waiter could be
// claimed). Cost with nobody waiting: set() is one RMW and one load, no
// lock, no system call; reset() one RMW; is_set() one load; a wait on a set
// event one load (manual) or one RMW (auto). Blocking forms wait_blocking(),
// wait_blocking_for(d), wait_blocking_until(t) park the thread in the same
// list. Across processes: no.
//
// manual_reset_event state word
//   set (bit 0)      S: the event is set
//   gen (bits 1..)   G: how many set() calls (wraps; compared as serial numbers)
//   set():        S := 1, G += 1 (A1, one RMW); if waiters (A2): claim and
//                 wake every one tagged with an older G (registered before
//                 this set: a wait that began after a later reset() is not
//                 this set's, however late its claim runs)
//   reset():      S := 0
//   wait:         check: S: ready | else tag := G, register, re-check S (B2)
// auto_reset_event is a notify (rouse/async/notify.hpp) whose permit is the
// token: set() = notify_one(), wait() = notified(), and it has no
// notify_all. reset() drops a stored token.
//
// Memory ordering: everything before set() happens-before the return of a
// wait it releases (set's RMW is seq_cst, so release; the check's load is
// seq_cst, so acquire; a claimed waiter is ordered by the claim and its
// waker). (A)/(B) is the Dekker pairing of rouse/async/waiter_list.hpp.
#pragma once

#include <chrono>
#include <cstdint>

#include "rouse/async/notify.hpp"
#include "rouse/async/waiter_list.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

class manual_reset_event {
 public:
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  using awaitable = list_awaitable<manual_reset_event>;
#endif

  explicit manual_reset_event(bool initially_set = false) noexcept : state_(initially_set ? set_bit : 0u) {}
  manual_reset_event(const manual_reset_event&) = delete;
  manual_reset_event& operator=(const manual_reset_event&) = delete;
  ~manual_reset_event() { waiters_.check_unused_by("rouse::async::manual_reset_event"); }

  void set() noexcept {
    // S := 1 and G += 1. (A1) seq_cst: pairs with (B2) in try_acquire().
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (!state_.compare_exchange_weak(s, (s | set_bit) + generation_unit, std::memory_order_seq_cst,
                                         std::memory_order_relaxed)) {
    }
    std::uint32_t const now = ((s | set_bit) + generation_unit) & ~set_bit;
    // (A2) inside: one load when nobody waits. Only the waits made before
    // this set: one that began after a later reset() is not this set's.
    waiters_.notify_all([now](detail::waiter_node& n) {
      // BROKEN on purpose under the fault (model tests only): no generation match.
      return ::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_event_set_claims_every_waiter) ||
             older(static_cast<std::uint32_t>(list_wait<manual_reset_event>::tag_of(n)), now);
    });
  }
  void reset() noexcept {
    // Ordering: relaxed: reset publishes nothing; every change of the word
    // is an RMW, so set()'s release sequence is not broken.
    state_.fetch_and(~set_bit, std::memory_order_relaxed);
  }
  [[nodiscard]] bool is_set() const noexcept {
    // Ordering: acquire: pairs with set()'s RMW.
    return (state_.load(std::memory_order_acquire) & set_bit) != 0;
  }

  // `co_await ev.wait()`: completes once the event is seen set, or a set()
  // chose it (even if reset() came since).
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  [[nodiscard]] awaitable wait() noexcept { return awaitable(*this, 0); }  // tagged when it registers
#endif

  void wait_blocking() noexcept { (void)async::wait_blocking(*this, 0, ::rouse::detail::no_deadline{}); }
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
  friend class list_wait<manual_reset_event>;
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  friend class list_awaitable<manual_reset_event>;
#endif
  template <class P, class Deadline>
  friend bool wait_blocking(P&, std::uintptr_t, const Deadline&) noexcept;

  static constexpr std::uint32_t set_bit = 1;          // S
  static constexpr std::uint32_t generation_unit = 2;  // one set() in G

  // Whether generation `a` comes before `b` (serial numbers: wraps).
  static bool older(std::uint32_t a, std::uint32_t b) noexcept { return static_cast<std::int32_t>(a - b) < 0; }
  // G now: a wait's tag, taken when it registers, before its re-check (B2)
  // (list_wait::start(); an awaitable made long before it is awaited is
  // tagged then, not when it was made).
  std::uintptr_t tag_at_registration() const noexcept {
    // Ordering: relaxed: the re-check after it (B2) is seq_cst and reads
    // this word later in its modification order; a set() whose RMW comes
    // after this read's value makes a newer G.
    return state_.load(std::memory_order_relaxed) & ~set_bit;
  }

  check_result try_acquire(std::uintptr_t) noexcept {
    // (B2) seq_cst: pairs with (A1) in set().
    return (state_.load(std::memory_order_seq_cst) & set_bit) != 0 ? check_result::ready : check_result::not_ready;
  }
  // set() wakes by broadcast: nothing is ever handed over to pass on.
  void pass_on() noexcept {}
  waiter_list& waiters() noexcept { return waiters_; }

  ::rouse::detail::atomic<std::uint32_t> state_;
  waiter_list waiters_;
};

class auto_reset_event {
 public:
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  using awaitable = notify::awaitable;
#endif

  explicit auto_reset_event(bool initially_set = false) noexcept {
    if (initially_set) token_.notify_one();
  }
  auto_reset_event(const auto_reset_event&) = delete;
  auto_reset_event& operator=(const auto_reset_event&) = delete;
  ~auto_reset_event() { token_.waiters().check_unused_by("rouse::async::auto_reset_event"); }

  // Releases the oldest waiter, or leaves the event set when nobody waits.
  void set() noexcept { token_.notify_one(); }
  // Drops a stored token (the event is unset; waiters stay queued).
  void reset() noexcept {
    // Ordering: relaxed, as manual_reset_event::reset().
    token_.state_.fetch_and(~notify::permit, std::memory_order_relaxed);
  }
  // Whether a token is stored (nobody consumed the last set()).
  [[nodiscard]] bool is_set() const noexcept {
    // Ordering: acquire: pairs with set()'s RMW.
    return (token_.state_.load(std::memory_order_acquire) & notify::permit) != 0;
  }

  // `co_await ev.wait()`: completes once it consumed the token, or a set()
  // chose it.
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  [[nodiscard]] awaitable wait() noexcept { return token_.notified(); }
#endif

  void wait_blocking() noexcept { token_.wait_blocking(); }
  // False when `d` / `t` passed first (no token taken then).
  template <class Rep, class Period>
  [[nodiscard]] bool wait_blocking_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return token_.wait_blocking_for(d);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool wait_blocking_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return token_.wait_blocking_until(t);
  }

 private:
  notify token_;
};

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(manual_reset_event) == 32);
static_assert(sizeof(auto_reset_event) == 32);
static_assert(sizeof(list_awaitable<manual_reset_event>) == 200);
#endif

}  // namespace rouse::async
