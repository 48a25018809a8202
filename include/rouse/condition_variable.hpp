// rouse/condition_variable.hpp — a condition variable on a futex sequence word.
//
//   rouse::condition_variable      drop-in for std::condition_variable and
//   rouse::condition_variable_any  std::condition_variable_any (the same type)
//
// Purpose: wait until another thread changes mutex-protected data and
// notifies. wait / wait_until / wait_for (with or without a predicate) and
// notify_one / notify_all, with std's signatures and results (std::cv_status,
// or the predicate's value). Every wait is a template over the lock, so any
// BasicLockable works (std::unique_lock<std::mutex>, std::shared_lock<...>, a
// bare mutex, ...); with std::unique_lock<rouse::mutex> notify_all avoids the
// thundering herd (below). The std::condition_variable_any overloads taking a
// std::stop_token are provided: a stop request wakes the waiter.
// Timed waits accept any clock: steady_clock and system_clock deadlines go to
// the kernel as absolute times; other clocks are waited in steady slices and
// re-read, so a wait never reports a timeout before its deadline.
//
// Lifecycle: default-constructed, neither copyable nor movable. Waiters call
// wait*() holding the lock; notifiers may hold it or not (see "Stolen
// notifications"). Re-locking on the way out of a wait never fails silently:
// if the lock's lock() throws there, std::terminate is called
// ([thread.condvarany.wait]).
//
// Destruction (std's rule, [thread.condition.condvar]): destroy it only once
// no thread is blocked on it and no notify call on it can still be running.
// It may be destroyed once every waiter has been notified, even if some have
// not returned yet: the destructor then waits for them to stop touching it
// (they are leaving; requeued ones are briefly woken so they can leave
// without needing the mutex first). A waiter that returns may destroy it at
// once when the notify that released it was made with the waiters' mutex
// held (the waiter cannot return before it relocks, after the notifier's
// unlock); a notifier may destroy it once its own notify returned. A notify
// made without the mutex may still touch the object after it released a
// waiter (notify_one bumps the sequence after publishing its signal;
// notify_all keeps the requeue count after its system call), so a thread
// released by it must not destroy the object until that call has returned.
//
// Misuse (debug builds): destroying it while a thread that was never
// notified sleeps in a wait on it: "rouse::condition_variable: misuse:
// destroyed while threads wait on it", abort. (A never-notified waiter that
// is still spinning, not yet asleep, is released by the destructor's flush
// instead, undiagnosed.)
//
// sizeof: 24 bytes on 64-bit targets (four 32-bit words and a pointer to
// the mutex word for requeueing); static_asserted. Process-private only.
//
// Cost with nobody waiting: notify_one()/notify_all() read one word and make
// no system call (the waiter count is zero).
//
// notify_one releases one waiter: it publishes one signal, and a waiter
// returns from a notify_one only by claiming a signal (a compare-exchange),
// whether it was spinning or asleep; the others go on waiting. notify_all
// releases every waiter registered before it (a new generation). Two
// exceptions let a notify_one be followed by more returns than one: signals
// left unclaimed by waiters that left (below: with k of them, one notify_one
// can be followed by up to k + 1 returns), and a waiter that registered
// while a notify_all's requeue was in flight, which returns on any wake
// without claiming (it may be on the mutex's wake chain).
//
// No thundering herd: with std::unique_lock<rouse::mutex>, notify_all() with
// two or more waiters bumps the sequence, wakes one waiter and requeues the
// rest onto the mutex word (one FUTEX_CMP_REQUEUE): they are then woken one
// at a time by the mutex's own unlocks, each relocking in the contended state
// (mutex_access::lock_contended) so the next unlock wakes the next. One wake
// system call for the notify however many wait. With any other lock (or a
// second mutex on the same condition variable), notify_all wakes every
// waiter; requeueing is switched off for good for this object.
//
// Spin before sleeping: after unlocking, a waiter polls the sequence like a
// semaphore waiter (detail::spin_until with detail::condvar_spin) and sleeps
// only if it was not released meanwhile. A notify that comes within that
// window costs the waiter no futex sleep and no wake-up (the notifier still
// makes its wake or requeue call: it cannot tell a spinning waiter from a
// sleeping one). Figures: docs/locks.md. Spinning waiters are not requeued
// (they are not asleep): they see the generation move, return, and meet the
// mutex's own spin.
//
// Spurious wake-ups: a wait may return without a notification (callers
// re-check their predicate, as with std): a stop request, destruction, a
// notify_all without the lock racing the registration, a waiter woken from
// its sleep while a signal meant for an earlier waiter waits (below), or a
// waiter that finds 2^16 bumps of the sequence since its last look (see
// signals_) end it. A signal that no registered waiter claims (its waiter timed out or
// left for a stop request just before it came, or the notifier counted a
// thread that was already leaving) stays until a later waiter claims it,
// which is then one more return than that later notify_one asked for (k
// such signals: up to k more). A
// waiter that registered after such a signal claims it only after a
// notify_one made since (a waiter woken from its sleep before then returns
// without it, below); the first thread to register while nobody waits drops
// any leftovers.
//
// Stolen notifications: a waiter remembers the notify_one count when it
// registers (under the lock), and claims a signal only if a notify_one came
// after that; a waiter woken from its sleep that may not claim while a
// signal waits returns without one (a spurious return), leaving the signal
// to the waiter it was meant for. So with the mutex held across notify_one,
// its signal goes to a thread that was waiting when it was called, except
// in one race, with the notified thread not yet run: two or more threads
// start waiting later and a further notify_one comes; they may take both
// signals, and the thread the first was meant for waits on until the next
// notify, which std does not allow. Code whose waiters wait for different
// predicates on one condition variable and rely on notify_one reaching the
// one waiter there was can hang in that race: use notify_all, or one
// condition variable per predicate. A notify_one made without the lock
// while a thread starts waiting may wake that thread (it returns, claiming
// nothing) and leave the earlier waiter asleep beside the unclaimed signal
// until a later notify (std allows it: the registration raced the notify;
// glibc before 2.25 and Rust's std condition variable behave the same way).
// notify_all is never stolen from. (Telling every signal's waiters apart
// takes glibc's two-group state or a waiter queue, more than fits in this
// object.)
//
// Words:
//   seq_       notification sequence: waiters spin and sleep on it with the
//              value they last read; every notify (with waiters), the
//              destructor and disable_requeue() add 1 (bits 0..19 count
//              them); a stop request adds 2^20 (bits 20..31), so that the
//              counts' wrap checks below see notifies only.
//   signals_   bits 0..11: signals published by notify_one and not yet
//              claimed (at most one per registered waiter); bits 12..15:
//              notify_one count; bits 16..31: broadcast generation (notify_all
//              and the destructor add 1 and drop the unclaimed signals).
//   waiters_   bits 0..30: threads inside a wait (registered under the lock
//              before it is released, deregistered after waking, before
//              relocking); bit 31: the destructor waits for them to leave.
//   epoch_     requeue generation (bits 12..31) and requeues in flight
//              (bits 0..11), kept by every notify_all that requeues: a waiter
//              that sees the generation changed, or registered while a
//              requeue was in flight, may have been requeued and relocks
//              contended. (A notify_all without the lock can race a
//              registration; the in-flight count covers a thread that
//              registered after the new generation and was moved anyway.)
//   mutex_word_  the rouse::mutex word waiters use (requeue target), null
//              before the first such wait; "never requeue" once a wait used
//              another lock: &seq_, or the former target with bit 0 set
//              (the destructor still wakes waiters requeued onto it).
//
//   waiters_ count   notify_one                     notify_all
//   0                nothing (no system call)       nothing
//   1                signal + 1, seq + 1, wake one  generation + 1, seq + 1, wake all
//   >= 2             signal + 1, seq + 1, wake one  generation + 1, seq + 1, wake one +
//                                                   requeue the rest (or wake all
//                                                   without a rouse::mutex)
//
// A waiter (seq and signals read at registration) is released when, reading
// seq_ then signals_:
//   generation moved                                   -> return (notify_all)
//   a stop was requested (stop_token waits)            -> return, claiming nothing
//   unclaimed > 0, and a notify_one came since it      -> claim: unclaimed - 1, same
//     registered                                          generation (CAS) -> return
//   unclaimed > 0, none came since, and it returned    -> return, claiming nothing
//     from a futex sleep                                  (a spurious return)
//   otherwise                                          -> wait on the seq_ value read
//   (after a requeue-capable wait was maybe requeued   -> return: the mutex chain needs it)
//   (timed out: the same checks, then it reports the timeout)
//
// Memory ordering: the condition variable publishes no data; the mutex
// does. A waiter registers (waiters_ += 1) and reads seq_ and signals_ while
// holding the mutex, then unlocks; a notifier that changed the data under
// the mutex took it after that unlock, so its (relaxed) read of waiters_ sees
// the registration and its bump of seq_ comes after the waiter's read: either
// the futex sees the changed word or the wake finds the sleeper ("Rust
// Atomics and Locks", ch. 9). Waits return with the lock held, so the
// waiter sees everything done under the mutex before the notify.
#pragma once

#include <chrono>
#include <condition_variable>  // std::cv_status
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <type_traits>

#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

namespace detail {
struct condition_variable_model_access;  // tests/model: a broken waiter, kept to prove the model
}  // namespace detail

class condition_variable {
 public:
  condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  ~condition_variable() {
    // Ordering: acquire pairs with the waiters' release decrement, so their
    // last accesses happen-before the memory is freed.
    if ((waiters_.load(std::memory_order_acquire) & count_mask) != 0) [[unlikely]]
      wait_for_leaving_waiters();
  }

  void notify_one() noexcept {
    // Ordering: relaxed; the mutex orders it after the registration of any
    // waiter this notify must wake (Memory ordering above).
    std::uint32_t const waiting = waiters_.load(std::memory_order_relaxed) & count_mask;
    if (waiting == 0) return;
    // (N1) one more notify_one, and one more unclaimed signal unless every
    // registered waiter already has one (more could never be claimed).
    // Ordering: relaxed; (N2) publishes it.
    std::uint32_t s = signals_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint32_t const unclaimed = s & unclaimed_mask;
      if (unclaimed == unclaimed_mask && waiting > unclaimed) [[unlikely]] {
        notify_everyone_instead();
        return;
      }
      std::uint32_t next = (s & ~notify_count_mask) | ((s + notify_count_unit) & notify_count_mask);
      if (unclaimed < waiting) next += 1;
      if (signals_.compare_exchange_weak(s, next, std::memory_order_relaxed, std::memory_order_relaxed)) break;
    }
    // (N2) Ordering: release; pairs with (W1) in check(): a waiter that reads
    // this bump sees (N1) when it reads signals_. The futex compares the word
    // atomically with the sleep.
    seq_.fetch_add(1, std::memory_order_release);
    detail::wake_one(seq_);
  }

  void notify_all() noexcept {
    // Ordering: relaxed, as in notify_one().
    std::uint32_t const waiting = waiters_.load(std::memory_order_relaxed) & count_mask;
    if (waiting == 0) return;
    // (G) every waiter registered so far is released; published by the bump.
    new_generation();
    for (;;) {
      // Ordering: acq_rel; release pairs with (W1) in check() (the waiter
      // then sees (G)); acquire pairs with the release bump in
      // disable_requeue(), so a "never requeue" mark published before that
      // bump is seen by the load of mutex_word_ below.
      std::uint32_t const seq = seq_.fetch_add(1, std::memory_order_acq_rel) + 1;
      if (waiting < 2) break;
      word_type* const target = mutex_word_.load(std::memory_order_relaxed);
      if (!requeue_target(target)) break;
      // (E1) a new requeue generation, and one more requeue in flight;
      // (E2) in flight again one less, once the system call returned. A
      // waiter relocks contended if the generation moved while it slept or
      // if a requeue was in flight when it registered (wait_impl()).
      // Ordering: acq_rel (E1); release (E2) pairs with the waiter's acquire
      // read at registration: a waiter that reads (E2)'s value registered
      // after the requeue's system call, so it cannot have been moved by it.
      epoch_.fetch_add(epoch_generation + 1, std::memory_order_acq_rel);
      int const moved = detail::requeue_all(seq_, seq, *target);
      epoch_.fetch_sub(1, std::memory_order_release);
      if (moved >= 0) return;
      // The sequence moved since the bump (another notify, or a wait with
      // another lock): notify again.
    }
    detail::wake_all(seq_);
  }

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
  friend struct detail::condition_variable_model_access;

  using word_type = detail::atomic<std::uint32_t>;
  static constexpr std::uint32_t count_mask = (std::uint32_t{1} << 31) - 1;
  static constexpr std::uint32_t destroying = std::uint32_t{1} << 31;
  // epoch_: bits 0..11 requeues in flight, bits 12..31 requeue generation
  // (it wraps after 2^20 requeues; a waiter would have to stay queued on the
  // mutex across all of them for the wrap to matter, far beyond the mutex's
  // 1 ms fairness bound).
  static constexpr std::uint32_t epoch_in_flight_mask = (std::uint32_t{1} << 12) - 1;
  static constexpr std::uint32_t epoch_generation = std::uint32_t{1} << 12;
  // signals_: bits 0..11 unclaimed signals, 12..15 notify_one count, 16..31
  // broadcast generation. 4095 unclaimed signals with more waiters than that
  // make the next notify_one a notify_all (a spurious wake-up for the rest).
  static constexpr std::uint32_t unclaimed_mask = (std::uint32_t{1} << 12) - 1;
  static constexpr std::uint32_t notify_count_unit = std::uint32_t{1} << 12;
  static constexpr std::uint32_t notify_count_mask = std::uint32_t{0xF} << 12;
  static constexpr std::uint32_t generation_unit = std::uint32_t{1} << 16;
  static constexpr std::uint32_t generation_mask = ~std::uint32_t{0} << 16;
  // The counts wrap; seq_ moves at least once per notify, so a waiter that
  // has seen seq_ move this far since it registered counts as notified
  // (16: the notify_one count's range), or since its last check as
  // released (2^16: the generation's range; a spurious wake-up), whatever
  // the wrapped fields say.
  static constexpr std::uint32_t notify_count_wrap_bumps = 16;
  static constexpr std::uint32_t generation_wrap_bumps = std::uint32_t{1} << 16;
  // A stop request's bump of seq_, above the notifies' bits: sixteen stop
  // requests are not sixteen notify_ones (a waiter would count as notified
  // and could take an earlier waiter's signal).
  static constexpr std::uint32_t stop_bump = std::uint32_t{1} << 20;
  static constexpr std::uint32_t notify_bumps_mask = stop_bump - 1;
  static_assert(generation_wrap_bumps < stop_bump);

  // A waiter's view: what it read when it registered, and since.
  struct ticket {
    std::uint32_t seq;      // seq_ at registration
    std::uint32_t signals;  // signals_ at registration (notify_one count, generation)
    std::uint32_t epoch;    // epoch_ at registration (requeue-capable waits only)
    std::uint32_t held;     // seq_ as of the last check: the value to wait on
    bool notified = false;  // a notify_one came after the registration
  };

  template <class Lock>
  static constexpr bool requeue_capable = std::is_same_v<Lock, std::unique_lock<rouse::mutex>>;

  // mutex_word_'s "never requeue" marks: &seq_ when no mutex was ever the
  // target, else the former target's address with bit 0 set (the words are
  // 4-aligned), kept so that the destructor can still wake waiters that a
  // notify_all requeued onto it before requeueing was switched off.
  bool requeue_disabled(const word_type* p) const noexcept {
    return p == &seq_ || (reinterpret_cast<std::uintptr_t>(p) & 1u) != 0;
  }
  bool requeue_target(const word_type* p) const noexcept { return p != nullptr && !requeue_disabled(p); }
  // The mutex word requeued waiters may sleep on (now or before requeueing
  // was switched off), or null.
  static word_type* former_or_current_target(word_type* p, const word_type* never) noexcept {
    if (p == nullptr || p == never) return nullptr;
    return reinterpret_cast<word_type*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{1});
  }

  static bool notified_since(const ticket& t, std::uint32_t signals, std::uint32_t seq) noexcept {
    return ((signals ^ t.signals) & notify_count_mask) != 0 ||
           ((seq - t.seq) & notify_bumps_mask) >= notify_count_wrap_bumps;
  }
  // Every check that finds the generation unchanged also finds it unwrapped
  // (fewer than 2^16 bumps since the previous one), so the comparison with
  // the registration's generation stays exact from check to check.
  static bool released_by_generation(const ticket& t, std::uint32_t signals, std::uint32_t seq) noexcept {
    return ((signals ^ t.signals) & generation_mask) != 0 ||
           ((seq - t.held) & notify_bumps_mask) >= generation_wrap_bumps;
  }
  static bool maybe_requeued(const ticket& t, std::uint32_t epoch_now) noexcept {
    return (epoch_now & ~epoch_in_flight_mask) != (t.epoch & ~epoch_in_flight_mask) ||
           (t.epoch & epoch_in_flight_mask) != 0;
  }

  // (G): a new generation, no unclaimed signals. Ordering: relaxed; the
  // caller's release bump of seq_ publishes it.
  void new_generation() noexcept {
    std::uint32_t s = signals_.load(std::memory_order_relaxed);
    while (!signals_.compare_exchange_weak(s, (s & ~unclaimed_mask) + generation_unit, std::memory_order_relaxed,
                                           std::memory_order_relaxed)) {
    }
  }

  [[gnu::noinline, gnu::cold]] void notify_everyone_instead() noexcept { notify_all(); }

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

  // Records which lock this wait uses (under that lock). The first
  // rouse::mutex seen becomes the requeue target; any other lock switches
  // requeueing off for good.
  template <class Lock>
  void note_lock(Lock& lock) noexcept {
    if constexpr (requeue_capable<Lock>) {
      word_type* const mine = &detail::mutex_access::word(*lock.mutex());
      // Ordering: relaxed; notify_all() re-reads it after a synchronizing
      // read of seq_ whenever it could matter (disable_requeue()).
      word_type* seen = mutex_word_.load(std::memory_order_relaxed);
      if (seen == mine) return;
      if (seen == nullptr &&
          mutex_word_.compare_exchange_strong(seen, mine, std::memory_order_relaxed, std::memory_order_relaxed))
        return;
      if (seen == mine || requeue_disabled(seen)) return;
      disable_requeue();
    } else {
      (void)lock;
      if (!requeue_disabled(mutex_word_.load(std::memory_order_relaxed))) disable_requeue();
    }
  }

  // A wait with a lock other than the requeue target. Marks "never requeue",
  // then bumps the sequence (release): a notify_all that read the old target
  // either reads this bump (and then the mark) or fails its compare-requeue
  // because the sequence moved; this waiter sleeps only after the bump, so it
  // is never moved onto a mutex it does not use. The bump publishes no
  // signal: current waiters re-check and wait on, once per object.
  [[gnu::noinline, gnu::cold]] void disable_requeue() noexcept {
    word_type* old = mutex_word_.load(std::memory_order_relaxed);
    for (;;) {
      if (requeue_disabled(old)) return;
      word_type* const mark =
          old == nullptr ? &seq_ : reinterpret_cast<word_type*>(reinterpret_cast<std::uintptr_t>(old) | 1u);
      // Ordering: relaxed, as the exchange it replaces (the bump below publishes it).
      if (mutex_word_.compare_exchange_weak(old, mark, std::memory_order_relaxed, std::memory_order_relaxed)) break;
    }
    if (old != nullptr) {
      // Ordering: release pairs with the acquire RMW/load of seq_ in notify_all().
      seq_.fetch_add(1, std::memory_order_release);
      detail::wake_all(seq_);
    }
  }

  // The first thread to register while nobody is inside a wait finds any
  // unclaimed signal stale (its waiters have all left): it drops them, once
  // (a lost race leaves them to be claimed later). Returns signals_ as read.
  [[gnu::noinline, gnu::cold]] std::uint32_t drop_stale_signals(std::uint32_t s) noexcept {
    (void)signals_.compare_exchange_strong(s, s & ~unclaimed_mask, std::memory_order_relaxed,
                                           std::memory_order_relaxed);
    return s;
  }

  enum class verdict : std::uint8_t { waiting, released };

  // Reads the state after seq_ moved (or a sleep or the spin ended) and
  // claims a signal if this waiter may: only if a notify_one came after it
  // registered (the table above). `woken`: the waiter returned from a futex
  // sleep. A woken waiter that may not claim while a signal is unclaimed
  // returns without one (a spurious return): the kernel may have chosen it
  // for a notify_one made without the lock while it registered (a waiter
  // whose registration raced the notify, which that return answers), and
  // otherwise something else woke it (a stop request's wake-all, a switch
  // to another kind of lock, a spurious return of the sleep) and the signal
  // belongs to an earlier waiter that has not run yet, which would sleep on
  // past its notify if this one took it. On `waiting`, `t.held` is the value
  // of seq_ to wait on.
  //
  // Why a notify cannot slip by: (W1) reads seq_ before (W2) reads signals_.
  // A notify_one whose bump (N2) (W1) read or passed published (N1) before
  // it, so (W2) sees its signal, or a later state in which the signal was
  // claimed by another waiter or dropped by a new generation (which this
  // waiter then sees). A bump (W1) did not read comes after it in seq_'s
  // order, so the spin sees seq_ != t.held, or the futex wait on t.held finds
  // the word changed or is woken by the wake that follows the bump.
  verdict check(ticket& t, const std::stop_token* stop, bool woken) noexcept {
    // (W1) Ordering: acquire pairs with the release bumps of seq_ ((N2),
    // notify_all's, the destructor's, the stop callback's): the waiter then
    // sees the signal, generation or stop request published before it.
    std::uint32_t const now = seq_.load(std::memory_order_acquire);
    // (W2) Ordering: relaxed; (W1) orders it.
    std::uint32_t s = signals_.load(std::memory_order_relaxed);
    for (;;) {
      if (released_by_generation(t, s, now)) return verdict::released;
      if (stop != nullptr && stop->stop_requested()) return verdict::released;
      if (!t.notified) t.notified = notified_since(t, s, now);
      if ((s & unclaimed_mask) != 0) {
        // (The model fault is the rule before: a woken waiter took any signal.)
        bool const may_claim =
            t.notified || (woken && detail::model_fault_on(detail::model_fault::condvar_woken_waiter_takes_any_signal));
        if (!may_claim) {
          if (woken) return verdict::released;  // without a signal (above)
        } else if (signals_.compare_exchange_weak(s, s - 1, std::memory_order_relaxed, std::memory_order_relaxed)) {
          // (C) claimed one signal, in the same generation (the CAS compares
          // the whole word). Ordering: relaxed; the relock orders the data.
          return verdict::released;
        } else {
          continue;  // s reloaded
        }
      }
      t.held = now;
      return verdict::waiting;
    }
  }

  // Spin, then sleep, until released or timed out. Returns true on a
  // time-out that found nothing to claim.
  template <bool RequeueCapable, class Deadline>
  bool await_release(ticket& t, const Deadline& deadline, const std::stop_token* stop) noexcept {
    verdict v = verdict::waiting;
    // Ordering: relaxed poll; check() re-reads with acquire. A timed wait
    // stops polling at its deadline (the sleep below then reports the
    // time-out at once).
    (void)detail::spin_until(detail::condvar_spin, [&] {
      if (seq_.load(std::memory_order_relaxed) != t.held) {
        v = check(t, stop, false);
        if (v == verdict::released) return true;
      }
      return deadline.expired();
    });
    if (v == verdict::released) return false;
    for (;;) {
      if (detail::wait_until(seq_, t.held, deadline) == detail::wait_result::timed_out) {
        // A time-out: claim a signal this waiter may have (it was notified;
        // Rule 6: nothing is lost), else report it.
        return check(t, stop, false) == verdict::waiting;
      }
      if constexpr (RequeueCapable) {
        // Possibly requeued and woken by a mutex unlock: leave, so the
        // relock (contended) passes the mutex's wake on down the chain.
        // Ordering: acquire, as at registration.
        if (maybe_requeued(t, epoch_.load(std::memory_order_acquire))) return false;
      }
      if (check(t, stop, true) == verdict::released) return false;
    }
  }

  // What a stop request does to a waiter's condition variable: bump the
  // sequence and wake everyone, bypassing the waiter count. The waiters
  // re-check; the one whose stop was requested leaves.
  struct stop_waker {
    condition_variable* cv;
    void operator()() const noexcept {
      // Ordering: release pairs with (W1) in check(), which then sees
      // stop_requested().
      // (The model fault is the bump before: one, like a notify's.)
      cv->seq_.fetch_add(
          detail::model_fault_on(detail::model_fault::condvar_stop_bump_counts_as_notify) ? 1 : stop_bump,
          std::memory_order_release);
      detail::wake_all(cv->seq_);
    }
  };

  // [thread.condvarany.wait]: an exception from re-locking calls
  // std::terminate (noexcept does it).
  template <class Lock>
  static void relock(Lock& lock) noexcept {
    lock.lock();
  }

  // One wait: register, unlock, spin and sleep until released, deregister,
  // relock.
  template <class Lock, class Deadline>
  std::cv_status wait_impl(Lock& lock, const Deadline& deadline, const std::stop_token* stop) {
    note_lock(lock);
    // Ordering: relaxed; the mutex orders the registration before any
    // notifier that takes it later (Memory ordering above).
    std::uint32_t const before = waiters_.fetch_add(1, std::memory_order_relaxed);
    ticket t{};
    // Ordering: acquire pairs with the release bump of a stop callback: a
    // waiter that reads that bump sees stop_requested(); one that reads an
    // older value sleeps on it and the changed word wakes it. signals_ is
    // read after it (relaxed, under the lock, like (W2)).
    t.seq = seq_.load(std::memory_order_acquire);
    t.held = t.seq;
    t.signals = signals_.load(std::memory_order_relaxed);
    if ((before & count_mask) == 0 && (t.signals & unclaimed_mask) != 0) [[unlikely]]
      t.signals = drop_stale_signals(t.signals);
    // Ordering: acquire pairs with (E2) in notify_all().
    if constexpr (requeue_capable<Lock>) t.epoch = epoch_.load(std::memory_order_acquire);
    // The stop callback touches *this, so it lives only while this thread is
    // registered: the object may be destroyed as soon as every registered
    // waiter has left (~condition_variable), and this thread may then still
    // be relocking. Registered after the read of seq_: a request made before
    // runs the callback here, which moves seq_ past `t.seq`, so the wait
    // below ends at once; resetting it (which waits for a callback running on
    // another thread) comes before every leave().
    std::optional<std::stop_callback<stop_waker>> wake_on_stop;
    if (stop != nullptr) wake_on_stop.emplace(*stop, stop_waker{this});
    if (stop != nullptr && stop->stop_requested()) {
      wake_on_stop.reset();
      leave();
      return std::cv_status::no_timeout;
    }

    bool timed_out;
    if constexpr (requeue_capable<Lock>) {
      rouse::mutex* const m = lock.release();
      m->unlock();
      timed_out = await_release<true>(t, deadline, stop);
      // Requeued (or possibly): relock leaving the word contended, so the
      // unlock after ours wakes the next requeued sleeper. Possibly requeued:
      // a requeue began while this thread slept (the generation moved: the
      // wake that ended the sleep follows the requeue's system call, which
      // follows (E1)), or one was in flight when it registered (it may have
      // registered after (E1) and been moved all the same).
      // Ordering: acquire, as at registration.
      bool const contended = maybe_requeued(t, epoch_.load(std::memory_order_acquire));
      wake_on_stop.reset();
      leave();
      if (contended) {
        detail::mutex_access::lock_contended(*m);
      } else {
        m->lock();
      }
      lock = std::unique_lock<rouse::mutex>(*m, std::adopt_lock);
    } else {
      try {
        lock.unlock();
      } catch (...) {
        // Still locked: deregister and let the exception out.
        wake_on_stop.reset();
        leave();
        throw;
      }
      timed_out = await_release<false>(t, deadline, stop);
      wake_on_stop.reset();
      leave();
      relock(lock);
    }
    return timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
  }

  // Deregisters; after this the waiter does not touch the object again
  // (except a wake of the waiters_ address for a waiting destructor, which
  // is an address only: futex wakes never read the memory).
  void leave() noexcept {
    // Ordering: release pairs with the destructor's acquire load.
    std::uint32_t const before = waiters_.fetch_sub(1, std::memory_order_release);
    if (before == (destroying | 1)) [[unlikely]]
      detail::wake_all(waiters_);
  }

  [[gnu::noinline, gnu::cold]] void wait_for_leaving_waiters() noexcept {
    // Every waiter is released by a new generation; anyone still asleep on
    // seq_ was never notified: misuse.
    new_generation();
    // Ordering: release pairs with (W1): the waiters see the generation.
    seq_.fetch_add(1, std::memory_order_release);
    [[maybe_unused]] int const unnotified = detail::wake_all(seq_);
    ROUSE_CHECK_USAGE(unnotified == 0, "rouse::condition_variable", "destroyed while threads wait on it");
    // Requeued waiters sleep on the mutex word and deregister only once they
    // wake: wake them (a spurious wake for the mutex, which they tolerate) so
    // they need not get the mutex first — the destroying thread may hold it.
    // (A notify_all may have requeued some before a wait with another lock
    // switched requeueing off: their word is kept in the mark.)
    if (word_type* const target = former_or_current_target(mutex_word_.load(std::memory_order_relaxed), &seq_))
      detail::wake_all(*target);
    // Ordering: acquire, as in the destructor.
    std::uint32_t w = waiters_.fetch_or(destroying, std::memory_order_acquire) | destroying;
    while ((w & count_mask) != 0) {
      detail::wait(waiters_, w);
      w = waiters_.load(std::memory_order_acquire);
    }
  }

  detail::atomic<word_type*> mutex_word_{nullptr};
  word_type seq_{0};
  word_type waiters_{0};
  word_type epoch_{0};
  word_type signals_{0};
};

static_assert(detail::in_model || sizeof(void*) != 8 || sizeof(condition_variable) == 24,
              "rouse::condition_variable is four 32-bit words and a pointer");

using condition_variable_any = condition_variable;

}  // namespace rouse
