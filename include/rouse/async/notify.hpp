// rouse/async/notify.hpp — wake one task or all of them, with one stored permit.
//
//   rouse::async::notify n;
//   // a task:                          // anyone (a task, a thread):
//   while (!ready()) co_await n.notified();    make_ready(); n.notify_one();
//   // a thread:  while (!ready()) n.wait_blocking();
//
// Purpose: tokio's Notify, with its semantics exactly.
// - notify_one() wakes the oldest waiter; when nobody waits it stores one
//   permit, which the next notified() consumes at once. Permits do not
//   accumulate: two notify_one() with nobody waiting store one.
// - notify_all() (tokio's notify_waiters) wakes every waiter registered before
//   it and stores nothing. A notified() awaitable counts as registered from
//   its creation (`auto f = n.notified(); ...; co_await f;` sees a notify_all
//   made in between), and one notify_all never completes two awaits made one
//   after the other (tokio #5396): each notified() remembers the notify_all
//   generation it was created in, and notify_all wakes only waiters of an
//   older generation.
// - A waiter chosen by notify_one() that gives up instead (its coroutine is
//   destroyed while suspended, a thread's timed wait that expires at the
//   moment it was chosen, a re-check that found a permit too) passes the
//   permit on: to the next waiter, or stored (tokio #4618; docs/design.md, rule 6).
//   A waiter stopped through its stop token before it was chosen takes
//   nothing; one stopped after it was chosen keeps the wake (it resumes
//   normally). A wait that completed but whose completion is dropped (a
//   select's op() branch that lost) gives its permit back with give_back()
//   (the select calls it; rouse/async/select.hpp).
//
// Lifecycle and rules: any task or thread may notify or wait at any time.
// A task resumes on the executor of its promise's environment, never inside
// notify_one()/notify_all() (without an executor in its environment, on the
// notifier's thread inside the call: coroutine_waker's fallback). Destroy the
// notify only when nobody waits (debug builds check that the list is empty)
// and no call is running.
//
// Misuse: co_await-ing one notified() twice, or moving it after it was
// awaited (debug: diagnosed; a move before, into with_timeout say, is
// fine); destroying a notify with waiters (debug: diagnosed, abort).
//
// sizeof: notify 32 bytes; a notified() awaitable 200 bytes, in the awaiting
// frame (rouse/async/waiter_list.hpp); no allocation. Fairness: FIFO among
// queued waiters; a newcomer may take a stored permit, which exists only
// when no queued waiter could be claimed. Cost with nobody waiting:
// notify_one() is one RMW (P := 1, which also publishes the call's writes
// to the waiter that takes the permit) and two loads, no lock, no system
// call; notify_all() one RMW and one load;
// notified() one load to create, one load (one RMW when a permit is stored)
// to check. Waking costs the list's lock, one claim CAS and the waker
// (executor's schedule) outside the lock. Blocking forms: wait_blocking(),
// wait_blocking_for(d), wait_blocking_until(t), a thread parked on its own
// parker in the same list. Across processes: no.
//
// State word
//   permit     (bit 0)    P: one notify_one() is stored
//   generation (bits 1..) G: the number of notify_all() calls, mod 2^31
//
//   notify_one, nobody queued:   P := 1 (A1), then look for waiters (A2): if
//                                some queued meanwhile, move P to one of them
//                                under the list's lock (take P back, claim)
//   notify_one, queued:          under the lock: claim the oldest, or P := 1
//   notify_all:                  G += 1 (A1); claim every waiter of a lower G
//   check (notified):            G != own generation: ready | P: 1 -> 0, ready
//                                with a permit | else wait
//
// Memory ordering: everything before notify_one()/notify_all() happens-before
// the return of the await (or wait_blocking) it completes: the RMWs on the
// word are seq_cst (so release), the check's loads and CAS are seq_cst (so
// acquire), and a claimed waiter is ordered by the claim and its waker.
// (A)/(B) is the Dekker pairing of rouse/async/waiter_list.hpp.
#pragma once

#include <chrono>
#include <cstdint>

#include "rouse/async/waiter_list.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

class auto_reset_event;

class notify {
 public:
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  using awaitable = list_awaitable<notify>;
#endif

  notify() noexcept = default;
  notify(const notify&) = delete;
  notify& operator=(const notify&) = delete;
  ~notify() { waiters_.check_unused_by("rouse::async::notify"); }

  // Wakes the oldest waiter, or stores one permit if nobody waits.
  void notify_one() noexcept {
    // Queued waiters: hand the permit to the oldest (the word is not
    // touched, so a newcomer cannot take what a queued waiter is owed).
    if (waiters_.has_waiters()) return notify_one_slow(false);
    // (A1) seq_cst: pairs with (B2) in try_acquire() (a waiter's re-check).
    // Always an RMW, even onto a stored permit: the waiter that takes the
    // permit must see what every notify_one() before it published (RMWs
    // continue the release sequence that its acquire reads from).
    std::uint32_t const s = state_.fetch_or(permit, std::memory_order_seq_cst);
    if (!waiters_.has_waiters()) [[likely]]  // (A2)
      return;
    // A waiter queued meanwhile: it took the permit in its re-check, or it
    // sleeps and the permit must go to it. Ours is in the word only if the
    // word had none.
    notify_one_slow((s & permit) == 0);
  }

  // Wakes every waiter registered before this call; stores nothing.
  void notify_all() noexcept {
    // (A1) seq_cst: pairs with (B2) in try_acquire().
    std::uint32_t const now = (state_.fetch_add(generation_unit, std::memory_order_seq_cst) + generation_unit) & ~permit;
    waiters_.notify_all([now](detail::waiter_node& n) {  // (A2) inside
      return older(static_cast<std::uint32_t>(list_wait<notify>::tag_of(n)), now);
    });
  }

  // `co_await n.notified()`: completes once a notify_one() chose it (or it
  // took a stored permit), or a notify_all() came after its creation.
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  [[nodiscard]] awaitable notified() noexcept { return awaitable(*this, generation()); }
#endif

  // A thread's wait: returns once notified as notified() would be.
  void wait_blocking() noexcept { (void)async::wait_blocking(*this, generation(), ::rouse::detail::no_deadline{}); }
  // False when `d` / `t` passed first (no permit taken then).
  template <class Rep, class Period>
  [[nodiscard]] bool wait_blocking_for(const std::chrono::duration<Rep, Period>& d) noexcept {
    return wait_blocking_until(::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool wait_blocking_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return async::wait_blocking(*this, generation(), ::rouse::detail::deadline_at(t));
  }

 private:
  friend class list_wait<notify>;
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  friend class list_awaitable<notify>;
#endif
  friend class auto_reset_event;
  template <class P, class Deadline>
  friend bool wait_blocking(P&, std::uintptr_t, const Deadline&) noexcept;

  static constexpr std::uint32_t permit = 1;           // P
  static constexpr std::uint32_t generation_unit = 2;  // one notify_all in G

  // Whether generation `a` comes before `b` (serial numbers: wraps).
  static bool older(std::uint32_t a, std::uint32_t b) noexcept { return static_cast<std::int32_t>(a - b) < 0; }

  std::uint32_t generation() const noexcept {
    // Ordering: acquire: pairs with notify_all's RMW (a later check that
    // sees the same G has seen what came before it).
    return state_.load(std::memory_order_acquire) & ~permit;
  }

  // The check (await_ready) and the re-check (B2).
  check_result try_acquire(std::uintptr_t tag) noexcept {
    std::uint32_t const mine = static_cast<std::uint32_t>(tag);
    // (B2) seq_cst: pairs with (A1) in notify_one() / notify_all().
    std::uint32_t s = state_.load(std::memory_order_seq_cst);
    for (;;) {
      if ((s & ~permit) != mine) return check_result::ready;  // a notify_all since
      if ((s & permit) == 0) return check_result::not_ready;
      // P: 1 -> 0, the permit is ours. Ordering: seq_cst (B2 when it is the
      // re-check; acquire: the notifier's writes).
      if (state_.compare_exchange_weak(s, s & ~permit, std::memory_order_seq_cst, std::memory_order_seq_cst))
        return check_result::ready_with_permit;
    }
  }

  // A waiter gives back a permit it will not use: as a notify_one().
  void pass_on() noexcept { notify_one(); }

  waiter_list& waiters() noexcept { return waiters_; }

  // `in_word`: this call's permit is in the word (it set P, then found
  // waiters): take it back if no waiter took it yet, then hand it to the
  // oldest waiter, or put it back when none can be claimed. Otherwise the
  // call holds its permit in hand: hand it over, or store it.
  [[gnu::noinline]] void notify_one_slow(bool in_word) noexcept {
    waiters_.notify_one_locked(
        [this, in_word]() noexcept {
          // P: 1 -> 0. Ordering: seq_cst, as every RMW of the word.
          return !in_word || (state_.fetch_and(~permit, std::memory_order_seq_cst) & permit) != 0;
        },
        [this]() noexcept {
          // Nobody to claim: store the permit, under the lock, so that a
          // waiter that queues next sees it in its re-check.
          // Ordering: seq_cst (A1 for a waiter registering concurrently).
          state_.fetch_or(permit, std::memory_order_seq_cst);
        });
  }

  ::rouse::detail::atomic<std::uint32_t> state_{0};
  waiter_list waiters_;
};

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(notify) == 32);
static_assert(sizeof(list_wait<notify>) == 80);
static_assert(sizeof(list_awaitable<notify>) == 200);
#endif

}  // namespace rouse::async
