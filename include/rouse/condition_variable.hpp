// rouse/condition_variable.hpp — a condition variable on the one waiter queue.
//
//   rouse::condition_variable      drop-in for std::condition_variable and
//   rouse::condition_variable_any  std::condition_variable_any (the same type)
//
// Purpose: wait until another thread changes mutex-protected data and
// notifies. wait / wait_until / wait_for (with or without a predicate) and
// notify_one / notify_all, with std's signatures and results (std::cv_status,
// or the predicate's value). Every wait is a template over the lock, so any
// BasicLockable works (std::unique_lock<std::mutex>, std::shared_lock<...>, a
// bare mutex, ...). The std::condition_variable_any overloads taking a
// std::stop_token are provided: a stop request ends that waiter's wait.
// Timed waits accept any clock: steady_clock and system_clock deadlines go to
// the kernel as absolute times; other clocks are waited in steady slices and
// re-read, so a wait never reports a timeout before its deadline.
//
// Lifecycle: default-constructed, neither copyable nor movable. Waiters call
// wait*() holding the lock; notifiers may hold it or not. Re-locking on the
// way out of a wait never fails silently: if the lock's lock() throws there,
// std::terminate is called ([thread.condvarany.wait]); so it is if the
// lock's unlock() throws on the way in (BasicLockable's unlock() throws
// nothing; by then a notify may have chosen this waiter).
//
// Destruction (std's rule, [thread.condition.condvar]): destroy it only once
// no thread is blocked on it and no notify call on it can still be running.
// It may be destroyed once every waiter has been notified, even if some have
// not returned yet: a notified waiter never touches the object again (its
// node was unlinked by the notify; what it needs lives in its own stack). A
// waiter whose timeout or stop request claimed it just before a notify came
// still has to unlink its node under the queue's lock; the notify that met
// its node counts it, and the destructor waits for the counted waiters to
// leave (they are on their way out: a lock and an unlock). So a waiter that
// returns may destroy it at once when the notify that released it was made
// with the waiters' mutex held, and a notifier may destroy it once its own
// notify returned. A notify made without the mutex may still be inside the
// call (dropping the queue's lock, releasing a waiter) after it released a
// waiter, so a thread released by it must not destroy the object until
// that call has returned (std asks the same).
//
// Misuse (debug builds): destroying it while a thread that was never
// notified is inside a wait on it: "rouse::condition_variable: misuse:
// destroyed while threads wait on it", abort.
//
// sizeof: 32 bytes on 64-bit targets (detail::waiter_queue: its lock, its
// `empty` flag, head and tail; and the count of leaving waiters);
// static_asserted. Process-private only.
//
// Semantics: exactly std's, with no stolen or shared notifications. Each
// waiter links a node, in its own stack frame, into a FIFO (the one waiter
// queue, detail/waiter_queue.hpp) while it holds the lock:
//   notify_one   claims the oldest waiter still waiting and releases it:
//                exactly one thread blocked when it was called returns for
//                it (none if none was blocked), and no later waiter can
//                take it.
//   notify_all   claims every waiter linked when it takes the queue's lock
//                and releases them one after another (below).
//   timeout      the waiter claims itself, unless a notify was first: then it
//                returns cv_status::no_timeout (the notify is not lost).
//   stop request (std::stop_token waits) claims that waiter alone, unlinks
//                and releases it, all inside request_stop() (the object may
//                be destroyed once it returned); a notify that was first
//                wins.
// A wait returns only when it was notified, timed out or stopped: no
// spurious wake-ups (std allows them; callers re-check their predicate all
// the same).
//
// No thundering herd: notify_all releases at once, oldest first, each
// claimed waiter that is not asleep (a compare-exchange of its parker word,
// no system call), and links the sleepers, in order, into a relay of which
// it wakes only the first; each woken sleeper wakes the next before it
// relocks (after its relock would hold the rest up for as long as another
// thread holds its mutex, and for good when that thread is itself a waiter
// further down the relay, with another lock). One wake system call for the
// notify however many sleep; each waiter is woken once, by the thread
// before it, so the wake-ups are spread over the woken threads. A relayed
// waiter whose deadline passes meanwhile was already notified: it waits for
// its turn (a few wake-ups) and reports no_timeout.
//
// Spin before sleeping: after unlocking, a waiter polls its release
// (detail::waiter::wait with detail::condvar_spin) and sleeps only if it was
// not released meanwhile. A notify within that window costs the waiter no
// futex sleep, and the notifier's release is then an exchange without a
// system call. Figures: docs/locks.md.
//
// State: the waiter queue's FIFO, under its lock, and leavers_ (waiters
// that claimed themselves — a timeout — and that a notify's walk, or a stop
// request that came too late, met before they unlinked; bit 31: the
// destructor waits for them). A waiter's own claim word
// (detail::waiter) decides between a notify, its timeout and its stop
// request: exactly one wins (docs/design.md, rule 6).
//
//   queue        notify_one                        notify_all
//   empty        nothing (one load, no syscall)    nothing (one load)
//   n >= 1       claim the oldest, unlink it,      claim all, unlink all, release
//                release it (wake if asleep)       the awake, wake the first sleeper
//
// Memory ordering: the condition variable publishes no data; the mutex
// does. A waiter links its node (the queue's push: a seq_cst store of
// `empty` under the queue's lock) while it holds the mutex, then unlocks; a
// notifier that changed the data under the mutex took it after that unlock,
// so its load of `empty` sees the link (or a later state) and its claim
// finds the node. A notifier that did not hold the mutex may miss a waiter
// that registers while it runs, which std allows (the wait raced the
// notify). The release of a waiter is the thread_parker's release exchange
// (or compare-exchange), which its park or poll acquires; the relay link was
// written by the notifier (under the queue's lock, or after it while the
// node was claimed and not yet released) before that release. A leaving
// waiter (timeout) is counted under the queue's lock by whoever meets its
// node; it drops the count with a release RMW, which the destructor's
// acquire load pairs with, so its last touches come before the free. A
// waiter's own unlink leaves `empty` unchanged: a notify that reads it then
// takes the queue's lock, after the leaver's unlock.
#pragma once

#include <chrono>
#include <condition_variable>  // std::cv_status
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>

#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waiter_queue.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

class condition_variable {
 public:
  condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  ~condition_variable() {
    // Notified waiters are unlinked: a node still linked is a waiter that
    // was never notified (it may be spinning, not yet asleep).
    ROUSE_CHECK_USAGE(!queue_.has_linked(), "rouse::condition_variable", "destroyed while threads wait on it");
    // Ordering: acquire pairs with the leavers' release decrement, so their
    // last accesses happen-before the memory is freed.
    if (leavers_.load(std::memory_order_acquire) != 0) [[unlikely]]
      wait_for_leavers();
  }

  void notify_one() noexcept { (void)queue_.notify_one(count_leaver{this}); }

  void notify_all() noexcept { (void)queue_.notify_all_relayed(count_leaver{this}); }

  // --- wait ----------------------------------------------------------------
  template <class Lock>
  void wait(Lock& lock) {
    (void)wait_impl(lock, detail::no_deadline{}, nullptr);
  }

  template <class Lock, class Predicate>
  void wait(Lock& lock, Predicate pred) {
    while (!pred()) wait(lock);
  }

  template <class Lock, class Clock, class Duration>
  std::cv_status wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_impl(lock, detail::deadline_at(deadline), nullptr);
  }

  template <class Lock, class Clock, class Duration, class Predicate>
  bool wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& deadline, Predicate pred) {
    while (!pred())
      if (wait_until(lock, deadline) == std::cv_status::timeout) return pred();
    return true;
  }

  template <class Lock, class Rep, class Period>
  std::cv_status wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& timeout) {
    return wait_until(lock, platform::deadline_after(timeout));
  }

  template <class Lock, class Rep, class Period, class Predicate>
  bool wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& timeout, Predicate pred) {
    return wait_until(lock, platform::deadline_after(timeout), std::move(pred));
  }

  // --- std::condition_variable_any's interruptible waits ----------------------
  // Return pred() once it holds or once a stop was requested (then pred()'s
  // value at that moment), as std does.
  template <class Lock, class Predicate>
  bool wait(Lock& lock, std::stop_token stop, Predicate pred) {
    return wait_stoppable(lock, std::move(stop), detail::no_deadline{}, std::move(pred));
  }

  template <class Lock, class Clock, class Duration, class Predicate>
  bool wait_until(Lock& lock, std::stop_token stop, const std::chrono::time_point<Clock, Duration>& deadline,
                  Predicate pred) {
    return wait_stoppable(lock, std::move(stop), detail::deadline_at(deadline), std::move(pred));
  }

  template <class Lock, class Rep, class Period, class Predicate>
  bool wait_for(Lock& lock, std::stop_token stop, const std::chrono::duration<Rep, Period>& timeout, Predicate pred) {
    return wait_stoppable(lock, std::move(stop), detail::deadline_at(platform::deadline_after(timeout)),
                          std::move(pred));
  }

 private:
  // The stop_token loop shared by the three interruptible waits.
  template <class Lock, class Deadline, class Predicate>
  bool wait_stoppable(Lock& lock, std::stop_token stop, const Deadline& deadline, Predicate pred) {
    if (stop.stop_requested()) return pred();
    while (!pred()) {
      if (stop.stop_requested()) return pred();
      if (wait_impl(lock, deadline, &stop) == std::cv_status::timeout) return pred();
    }
    return true;
  }

  // What a stop request does, on the requesting thread: claim the waiter
  // (unless a notify was first), unlink its node (leave()), release it. To
  // the caller of request_stop() the waiter is then notified and the object
  // may be destroyed ([thread.condvarany.intwait]: the wait registers to be
  // notified on a stop request), so the waiter, told by the claim value,
  // does not touch the object again. The release is the last touch of the
  // waiter.
  struct stop_claim {
    condition_variable* cv;
    detail::waiter* w;
    detail::waiter_node* n;
    void operator()() const noexcept {
      if (w->try_claim(stopped_claim)) {
        cv->leave(*n);
        w->wake();
      } else if (w->claim() == detail::waiter::aborted) {
        // Its timeout won: the waiter still has to unlink its node, after
        // this request returned. Unlinked and counted here, as a notify that
        // meets a leaving waiter's node does, so that the destructor waits
        // for it. (w lives on: the waiter's stop_callback destructor waits
        // for this call.)
        (void)cv->queue_.remove_then(*n, [this](bool was_linked) noexcept {
          if (was_linked) count_leaver{cv}(*n);
        });
      }
      // Else a notify was first: that release stands.
    }
  };

  // A notify's walk meets a dead node (under the queue's lock): a waiter
  // that claimed itself (a timeout; or a stop request, on its way to
  // unlinking it) and has not unlinked it yet. (A stop request that finds
  // its waiter timed out does the same.) The walk unlinks it; to the notifier's caller that waiter is
  // notified and the object may be destroyed, while the waiter has still to
  // take the queue's lock to leave. So it is counted, and marked: the
  // destructor waits until every counted leaver is gone.
  struct count_leaver {
    condition_variable* cv;
    void operator()(detail::waiter_node& n) const noexcept {
      // (The model fault leaves the leaver uncounted.)
      if (detail::model_fault_on(detail::model_fault::condvar_leaver_not_counted)) return;
      n.reset(n.owner(), &counted_tag);
      // Ordering: relaxed; the notifier's caller orders it before the
      // destructor (the destructor's acquire load reads it or a later value).
      cv->leavers_.fetch_add(1, std::memory_order_relaxed);
    }
  };

  // A waiter that claimed itself (or the stop request that claimed it)
  // leaves: unlinks its node unless a notify met it first (counted, above),
  // then, if counted, drops the count as its last touch of the object. The unlink leaves the queue's `empty` flag
  // as it was, "not empty" (remove_then()): a notify that comes after the
  // unlink takes the queue's lock, so it returns only after this unlock,
  // and the object outlives this call either way.
  void leave(detail::waiter_node& n) noexcept {
    bool counted = false;
    (void)queue_.remove_then(n, [&](bool) noexcept { counted = n.packet() == &counted_tag; });
    if (counted) {
      // Ordering: release pairs with the destructor's acquire.
      std::uint32_t const before = leavers_.fetch_sub(1, std::memory_order_release);
      if (before == (destroying | 1)) detail::wake_all(leavers_);  // an address only (rule 7)
    }
  }

  [[gnu::noinline, gnu::cold]] void wait_for_leavers() noexcept {
    // Ordering: acquire, as in the destructor.
    std::uint32_t w = leavers_.fetch_or(destroying, std::memory_order_acquire) | destroying;
    while ((w & ~destroying) != 0) {
      detail::wait(leavers_, w);
      w = leavers_.load(std::memory_order_acquire);
    }
  }

  // [thread.condvarany.wait]: an exception from re-locking calls
  // std::terminate (noexcept does it).
  template <class Lock>
  static void relock(Lock& lock) noexcept {
    lock.lock();
  }
  // BasicLockable's unlock() throws nothing ([thread.req.lockable.basic]);
  // one that throws inside a wait, its node already claimable by a notify,
  // ends in std::terminate as a throwing relock does (noexcept does it).
  template <class Lock>
  static void unlock_registered(Lock& lock) noexcept {
    lock.unlock();
  }

  // One wait: link a node (under the lock), unlock, spin and sleep until
  // claimed and released, relock; a relayed sleeper wakes the next one.
  template <class Lock, class Deadline>
  std::cv_status wait_impl(Lock& lock, const Deadline& deadline, const std::stop_token* stop) {
    detail::waiter w;
    detail::waiter_node n(&w);
    if (detail::model_fault_on(detail::model_fault::condvar_registers_after_unlock)) {
      // BROKEN on purpose (model tests only): links the node after the unlock.
      lock.unlock();
      queue_.push(n);
    } else {
      queue_.push(n);
    }
    // Registered after the push: a request made before runs the callback
    // here, which claims, unlinks and releases the waiter, so the wait below
    // returns at once. Destroyed (it waits for a callback running on another
    // thread) before the relock, and after a timed-out waiter has left.
    std::optional<std::stop_callback<stop_claim>> claim_on_stop;
    if (stop != nullptr) claim_on_stop.emplace(*stop, stop_claim{this, &w, &n});
    if (!detail::model_fault_on(detail::model_fault::condvar_registers_after_unlock)) unlock_registered(lock);
    std::uintptr_t const claim = w.wait(deadline, detail::condvar_spin);
    if (claim == detail::waiter::aborted) {
      // Timed out. Leaves with its stop registration still in place: a stop
      // requested meanwhile counts this call as notified, and its callback
      // (which finds the waiter claimed) unlinks and counts the node, or
      // waits for our unlink under the queue's lock; either way the object
      // outlives what this call still does to it.
      leave(n);
      claim_on_stop.reset();
      relock(lock);
      return std::cv_status::timeout;
    }
    claim_on_stop.reset();
    if (claim == stopped_claim) {
      relock(lock);  // the stop request unlinked the node
      return std::cv_status::no_timeout;
    }
    // Notified. A notify_all's relay: the next sleeper it claimed, whose
    // node is alive until we release it (null for a notify_one, or a waiter
    // notify_all released at once). Released before the relock: the next
    // sleeper may not need our mutex (another lock on a condition_variable_any)
    // and may even hold it while it waits, so waiting for our relock could
    // hold it up for good.
    detail::waiter_node* const next = detail::waiter_list::next_of(n);
    if (detail::model_fault_on(detail::model_fault::condvar_relay_after_relock)) {
      // BROKEN on purpose (model tests only): relays after the relock.
      relock(lock);
      if (next != nullptr) detail::waiter_queue<>::release_claimed(*next);
      return std::cv_status::no_timeout;
    }
    if (next != nullptr) detail::waiter_queue<>::release_claimed(*next);
    relock(lock);
    return std::cv_status::no_timeout;
  }

  // The claim of a stop request (the queue's close(), whose value it is, is
  // never used on a condition variable).
  static constexpr std::uintptr_t stopped_claim = detail::waiter::closed;
  // leavers_: bits 0..30 count waiters met as dead nodes by a notify and not
  // yet gone; bit 31: the destructor waits for them.
  static constexpr std::uint32_t destroying = std::uint32_t{1} << 31;
  // The mark a notify leaves in a counted leaver's node.
  static inline char counted_tag = 0;

  detail::waiter_queue<> queue_;
  detail::atomic<std::uint32_t> leavers_{0};
};

static_assert(detail::in_model || sizeof(void*) != 8 || sizeof(condition_variable) == 32,
              "rouse::condition_variable is one waiter queue and a count of leaving waiters");

using condition_variable_any = condition_variable;

}  // namespace rouse
