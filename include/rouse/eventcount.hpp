// rouse/eventcount.hpp — make any non-blocking data structure blocking.
//
//   rouse::eventcount ec;
//   // consumer                                  // producer
//   T item;                                      queue.push(x);        // seq_cst, or fence (see below)
//   ec.await([&] { return queue.try_pop(item); });   ec.notify_one();
//
// or, spelled out (this is what await() does):
//
//   for (;;) {
//     if (queue.try_pop(item)) break;
//     auto key = ec.prepare_wait();
//     if (queue.try_pop(item)) { ec.cancel_wait(); break; }
//     ec.wait(key);
//   }
//
// Purpose: a condition variable without a mutex. A waiter announces itself
// (prepare_wait), re-checks its condition, then sleeps only if nothing was
// notified since it announced itself. A notifier that finds nobody announced
// costs one load.
//
// Lifecycle and rules
// - Every prepare_wait() is followed by exactly one cancel_wait() or one
//   wait()/wait_for()/wait_until() with the key it returned, on the same
//   thread, before that thread prepares again.
// - wait(key) returns once some notify happened after prepare_wait() returned
//   key; it may also return spuriously. The caller re-checks its condition.
// - notify_one() wakes at least one thread sleeping in wait(), if any; threads
//   that prepared but are not yet asleep return from wait() at once.
//   notify_all() wakes every such thread.
// - Destruction: only once no thread is between prepare_wait() and the end
//   of its wait or cancel_wait() (debug builds check this), and every
//   notify_*() that may touch the eventcount has returned. A notify is not
//   a release in the sense of docs/design.md, rule 7: what lets a waiter go on is the
//   notifier's own condition change, made before notify_*() reads the
//   eventcount at all, so a waiter that sees the condition cannot tell
//   whether its notifier is done with the eventcount (std asks the same of
//   a condition variable's notifiers). Join the notifiers, or have them
//   signal after notify_*() returns. (Inside notify_*() the epoch increment
//   is the last access; after it only the epoch's address goes to the wake.)
//
// The caller's side of the handshake (the one fence you must get right)
//   A notifier's condition change must be ordered before the load inside
//   notify_*() in the single total order of seq_cst operations: make the
//   store (or RMW) that makes the condition true memory_order_seq_cst, or put
//   std::atomic_thread_fence(std::memory_order_seq_cst) between it and
//   notify_*(). A lock-free queue's push is usually an acq_rel or seq_cst RMW;
//   an acq_rel RMW is not enough on the memory model's paper (it is on x86).
//   The waiter's side needs nothing: prepare_wait() ends with a seq_cst
//   fence, so the re-check may use any loads (relaxed, acquire) it likes.
//   Use await(predicate) and the only rule left is the notifier's.
//
// Misuse (diagnosed in debug builds, ROUSE_CHECK_USAGE): cancel_wait() or
// wait() without a matching prepare_wait(); destroying the eventcount while
// a thread has prepared and not yet returned from wait (the waiter count is
// exact, so this is always detected).
//
// Size: 8 bytes (two 32-bit words: the epoch the waiters sleep on, and the
// count of announced waiters). Fairness: the futex's (Linux wakes in FIFO
// order among threads of equal priority). Cost with nobody waiting:
// notify_one()/notify_all() are one seq_cst load and no system call.
// Across processes: no.
//
// State
//   epoch_    incremented by every notify that finds waiters; waiters sleep
//             while it still holds the value their key recorded.
//   waiters_  threads between prepare_wait() and leaving wait()/cancel_wait().
//
//   prepare_wait:  key = epoch; waiters += 1; fence
//   cancel_wait:   waiters -= 1
//   wait(key):     sleep while epoch == key; waiters -= 1
//   notify:        if waiters == 0: return; epoch += 1; wake one / all
//
// Memory ordering: the eventcount itself publishes nothing; the data the
// waiter reads is ordered by the caller's own atomics (a push with release,
// a pop with acquire). What the eventcount guarantees is that no wake-up is
// lost: if the waiter's re-check missed the notifier's change, the notifier's
// load of waiters_ sees the waiter (pairs (A)/(B) below), and the epoch the
// waiter sleeps on was read before the notifier's increment.
#pragma once

#include <chrono>
#include <cstdint>

#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

class eventcount {
 public:
  class key {
   public:
    key() = default;

   private:
    friend class eventcount;
    explicit key(std::uint32_t e) noexcept : epoch_(e) {}
    std::uint32_t epoch_ = 0;
  };

  eventcount() noexcept = default;
  eventcount(const eventcount&) = delete;
  eventcount& operator=(const eventcount&) = delete;
  ~eventcount() {
    ROUSE_CHECK_USAGE(waiters_.load(std::memory_order_relaxed) == 0, "rouse::eventcount",
                      "destroyed while a thread is waiting (prepared and not yet returned)");
  }

  // Announces the calling thread as a waiter. Re-check the condition after
  // this, then call wait(key) or cancel_wait().
  [[nodiscard]] key prepare_wait() noexcept {
    // Ordering: seq_cst, read before the announcement below, so that a
    // notifier that sees the announcement increments the epoch after this
    // read (its increment follows its load (A) in the total order).
    std::uint32_t const e = epoch_.load(std::memory_order_seq_cst);
    // (B) seq_cst: pairs with (A) in notify_one()/notify_all().
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    // (B') seq_cst fence: the caller's re-check may use relaxed or acquire
    // loads. With this fence, "the re-check missed the condition" and
    // "notify's load (A) missed (B)" cannot both happen, given the
    // notifier's seq_cst store or fence (see the header). No data is
    // published by it, so TSan not modelling fences loses nothing.
    detail::fence_seq_cst();
    return key{e};
  }

  // Withdraws a prepare_wait() whose re-check found the condition true.
  void cancel_wait() noexcept { leave(); }

  // Sleeps until a notify after prepare_wait() (may return spuriously).
  void wait(key k) noexcept { (void)sleep(k, detail::no_deadline{}); }

  // As wait(), with a deadline. False when the deadline passed with no
  // notify seen (never early); true otherwise.
  template <class Clock, class Duration>
  bool wait_until(key k, std::chrono::time_point<Clock, Duration> deadline) noexcept {
    return sleep(k, detail::deadline_at(deadline));
  }

  template <class Rep, class Period>
  bool wait_for(key k, std::chrono::duration<Rep, Period> timeout) noexcept {
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) {
      wait(k);
      return true;
    }
    return wait_until(k, deadline);
  }

  // Wakes one sleeping waiter (if any). One load when nobody waits.
  void notify_one() noexcept {
    // (A) seq_cst: pairs with (B) in prepare_wait().
    if (waiters_.load(std::memory_order_seq_cst) != 0) [[unlikely]]
      notify_slow(1);
  }

  // Wakes every sleeping waiter. One load when nobody waits.
  void notify_all() noexcept {
    // (A) seq_cst: pairs with (B) in prepare_wait().
    if (waiters_.load(std::memory_order_seq_cst) != 0) [[unlikely]]
      notify_slow(0);
  }

  // Blocks until pred() is true; returns at once if it already is. pred is
  // called on this thread, possibly several times.
  template <class Predicate>
  void await(Predicate&& pred) {
    if (pred()) return;
    for (;;) {
      key const k = prepare_wait();
      if (pred()) {
        cancel_wait();
        return;
      }
      wait(k);
    }
  }

  // As await(), with a deadline: true when pred() became true, false when the
  // deadline passed first (pred() is checked one last time).
  template <class Predicate, class Clock, class Duration>
  bool await_until(Predicate&& pred, std::chrono::time_point<Clock, Duration> deadline) {
    if (pred()) return true;
    for (;;) {
      key const k = prepare_wait();
      if (pred()) {
        cancel_wait();
        return true;
      }
      if (!wait_until(k, deadline)) return pred();
    }
  }

  template <class Predicate, class Rep, class Period>
  bool await_for(Predicate&& pred, std::chrono::duration<Rep, Period> timeout) {
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) {
      await(pred);
      return true;
    }
    return await_until(pred, deadline);
  }

 private:
  template <class Deadline>
  bool sleep(key k, const Deadline& deadline) noexcept {
    bool notified = true;
    // Ordering: acquire pairs with the seq_cst increment in notify_*().
    while (epoch_.load(std::memory_order_acquire) == k.epoch_) {
      if (detail::wait_until(epoch_, k.epoch_, deadline) == detail::wait_result::timed_out) {
        notified = epoch_.load(std::memory_order_acquire) != k.epoch_;
        break;
      }
    }
    leave();
    return notified;
  }

  void leave() noexcept {
    // Ordering: relaxed. A late decrement only costs a notifier a useless
    // wake; it cannot hide a newer waiter, whose own increment (B) is what
    // (A) must see.
    [[maybe_unused]] std::uint32_t const before = waiters_.fetch_sub(1, std::memory_order_relaxed);
    ROUSE_CHECK_USAGE(before != 0, "rouse::eventcount", "cancel_wait() or wait() without prepare_wait()");
  }

  // count 1: wake one; 0: wake all.
  [[gnu::noinline]] void notify_slow(int count) noexcept {
    // Ordering: seq_cst, after (A) in program order, so every waiter whose
    // announcement (A) saw read its key before this increment and will not
    // sleep on the new epoch. Pairs with the acquire loads in wait().
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (count == 1)
      detail::wake_one(epoch_);
    else
      detail::wake_all(epoch_);
  }

  detail::atomic<std::uint32_t> epoch_{0};
  detail::atomic<std::uint32_t> waiters_{0};
};

static_assert(detail::in_model || sizeof(eventcount) == 8);

}  // namespace rouse
