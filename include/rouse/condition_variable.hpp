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
// notifications"). As with std, it may be destroyed once every waiter has
// been notified, even if some have not returned yet: the destructor then
// waits for them to stop touching it (they are leaving; requeued ones are
// briefly woken so they can leave without needing the mutex first).
//
// Misuse (debug builds): destroying it while a thread waits on it that was
// never notified: "rouse::condition_variable: misuse: destroyed while threads
// wait on it", abort.
//
// sizeof: 24 bytes on 64-bit targets (three 32-bit words and a pointer to
// the mutex word for requeueing); static_asserted. Process-private only.
//
// Cost with nobody waiting: notify_one()/notify_all() read one word and make
// no system call (the waiter count is zero).
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
// semaphore waiter (64 pauses, then up to 64 yields: detail::spin_until with
// handoff_spin_limit) and sleeps only if nothing changed. A notify that
// comes within that window costs the waiter no futex sleep and no wake-up
// (the notifier still makes its wake or requeue call: it cannot tell a
// spinning waiter from a sleeping one, and with nobody asleep that call is
// ~1 µs). On the 2-vCPU VM, where a wake-up costs the waker ~30 µs, this took
// condvar.pingpong from 0.91x to 0.06x and broadcast16 from 0.74x to 0.30x
// of std::condition_variable (docs/locks.md). Spinning waiters are not
// requeued (they are not asleep): they see the sequence move, return, and
// meet the mutex's own spin.
//
// Spurious wake-ups: a wait may return without a notification (callers
// re-check their predicate, as with std): a waiter returns whenever the
// sequence changed between its registration (under the lock) and its sleep,
// so a notify_one may release a thread that was about to sleep as well as
// the one it woke; a stop request or destruction also wakes waiters.
// A notify never releases fewer than std requires among the threads waiting
// when it was called, except as described next.
//
// Stolen notifications: notify_one() bumps the sequence and then wakes one
// sleeper. A thread that starts waiting between those two steps sleeps on the
// new value and can be the one woken, so the notification goes to it and an
// older waiter sleeps on until the next notify. This needs the new waiter to
// lock the mutex while notify_one runs, so it cannot happen when notify_one
// is called with the mutex held (the usual pattern); notify_all is never
// stolen from. Calling notify_one without the lock, an earlier waiter may
// thus wait for a later notification (glibc before 2.25 and Rust's std
// condition variable behave the same way).
//
// Words:
//   seq_       notification sequence; waiters sleep on it with the value they
//              read under the lock; every notify (with waiters) adds 1.
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
//              before the first such wait, or &seq_ ("never requeue") once a
//              wait used another lock.
//
//   waiters_ count   notify_one / notify_all
//   0                nothing (no system call)
//   1                seq += 1, wake one / wake all
//   >= 2             seq += 1, wake one / wake one + requeue the rest (or
//                    wake all without a rouse::mutex)
//
// Memory ordering: the condition variable publishes no data; the mutex
// does. A waiter registers (waiters_ += 1) and reads seq_ while holding the
// mutex, then unlocks; a notifier that changed the data under the mutex took
// it after that unlock, so its (relaxed) read of waiters_ sees the
// registration and its bump of seq_ comes after the waiter's read: either
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

#include "rouse/detail/coordination_spin.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"
#include "rouse/mutex.hpp"

namespace rouse {

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
    if ((waiters_.load(std::memory_order_relaxed) & count_mask) == 0) return;
    // Ordering: relaxed; the futex compares the word atomically with the sleep.
    seq_.fetch_add(1, std::memory_order_relaxed);
    detail::wake_one(seq_);
  }

  void notify_all() noexcept {
    // Ordering: relaxed, as in notify_one().
    std::uint32_t const waiting = waiters_.load(std::memory_order_relaxed) & count_mask;
    if (waiting == 0) return;
    for (;;) {
      // Ordering: acq_rel; acquire pairs with the release bump in
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
    (void)wait_impl(lock, no_deadline{}, nullptr);
  }

  template <class Lock, class Predicate>
  void wait(Lock& lock, Predicate pred) {
    while (!pred()) wait(lock);
  }

  template <class Lock, class Clock, class Duration>
  std::cv_status wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_impl(lock, deadline, nullptr);
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
    return wait_stoppable(lock, std::move(stop), no_deadline{}, std::move(pred));
  }

  template <class Lock, class Clock, class Duration, class Predicate>
  bool wait_until(Lock& lock, std::stop_token stop, const std::chrono::time_point<Clock, Duration>& deadline,
                  Predicate pred) {
    return wait_stoppable(lock, std::move(stop), deadline, std::move(pred));
  }

  template <class Lock, class Rep, class Period, class Predicate>
  bool wait_for(Lock& lock, std::stop_token stop, const std::chrono::duration<Rep, Period>& timeout,
                Predicate pred) {
    return wait_stoppable(lock, std::move(stop), platform::deadline_after(timeout), std::move(pred));
  }

 private:
  using word_type = detail::atomic<std::uint32_t>;
  static constexpr std::uint32_t count_mask = (std::uint32_t{1} << 31) - 1;
  static constexpr std::uint32_t destroying = std::uint32_t{1} << 31;
  // epoch_: bits 0..11 requeues in flight, bits 12..31 requeue generation
  // (it wraps after 2^20 requeues; a waiter would have to stay queued on the
  // mutex across all of them for the wrap to matter, far beyond the mutex's
  // 1 ms fairness bound).
  static constexpr std::uint32_t epoch_in_flight_mask = (std::uint32_t{1} << 12) - 1;
  static constexpr std::uint32_t epoch_generation = std::uint32_t{1} << 12;

  struct no_deadline {};

  template <class Lock>
  static constexpr bool requeue_capable = std::is_same_v<Lock, std::unique_lock<rouse::mutex>>;


  bool requeue_target(const word_type* p) const noexcept { return p != nullptr && p != &seq_; }

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
      if (seen == mine || seen == &seq_) return;
      disable_requeue();
    } else {
      (void)lock;
      if (mutex_word_.load(std::memory_order_relaxed) != &seq_) disable_requeue();
    }
  }

  // A wait with a lock other than the requeue target. Marks "never requeue",
  // then bumps the sequence (release): a notify_all that read the old target
  // either reads this bump (and then the mark) or fails its compare-requeue
  // because the sequence moved; this waiter sleeps only after the bump, so it
  // is never moved onto a mutex it does not use. The bump is a spurious
  // wake-up for current waiters, once per object.
  [[gnu::noinline, gnu::cold]] void disable_requeue() noexcept {
    word_type* const old = mutex_word_.exchange(&seq_, std::memory_order_relaxed);
    if (old != nullptr && old != &seq_) {
      // Ordering: release pairs with the acquire RMW/load of seq_ in notify_all().
      seq_.fetch_add(1, std::memory_order_release);
      detail::wake_all(seq_);
    }
  }

  template <class Deadline>
  detail::wait_result sleep(std::uint32_t seq, const Deadline& deadline) noexcept {
    // Ordering: relaxed; like a futex wait that finds the word changed, the
    // poll publishes nothing: the relock that follows orders the data. A
    // timed wait stops polling at its deadline (the sleep below then
    // reports the time-out at once).
    bool changed = false;
    (void)detail::spin_until(
        [&] {
          changed = seq_.load(std::memory_order_relaxed) != seq;
#if !defined(ROUSE_MODEL_RELACY)
          if constexpr (!std::is_same_v<Deadline, no_deadline>) {
            if (!changed && Deadline::clock::now() >= deadline) return true;
          }
#endif
          return changed;
        },
        detail::handoff_spin_limit);
    if (changed) return detail::wait_result::woken;
    if constexpr (std::is_same_v<Deadline, no_deadline>) {
      detail::wait(seq_, seq);
      return detail::wait_result::woken;
    } else {
      return detail::wait_until(seq_, seq, deadline);
    }
  }

  // What a stop request does to a waiter's condition variable: bump the
  // sequence and wake everyone, bypassing the waiter count.
  struct stop_waker {
    condition_variable* cv;
    void operator()() const noexcept {
      // Ordering: release pairs with the acquire read of seq_ in wait_impl(),
      // which then sees stop_requested().
      cv->seq_.fetch_add(1, std::memory_order_release);
      detail::wake_all(cv->seq_);
    }
  };

  // One wait: register, unlock, sleep, deregister, relock.
  template <class Lock, class Deadline>
  std::cv_status wait_impl(Lock& lock, const Deadline& deadline, const std::stop_token* stop) {
    note_lock(lock);
    // Ordering: relaxed; the mutex orders the registration before any
    // notifier that takes it later (Memory ordering above).
    waiters_.fetch_add(1, std::memory_order_relaxed);
    // Ordering: acquire pairs with the release bump of a stop callback: a
    // waiter that reads that bump sees stop_requested(); one that reads an
    // older value sleeps on it and the changed word wakes it.
    std::uint32_t const seq = seq_.load(std::memory_order_acquire);
    std::uint32_t epoch = 0;
    // Ordering: acquire pairs with (E2) in notify_all().
    if constexpr (requeue_capable<Lock>) epoch = epoch_.load(std::memory_order_acquire);
    // The stop callback touches *this, so it lives only while this thread is
    // registered: the object may be destroyed as soon as every registered
    // waiter has left (~condition_variable), and this thread may then still
    // be relocking. Registered after the read of seq_: a request made before
    // runs the callback here, which moves seq_ past `seq`, so the sleep below
    // returns at once; resetting it (which waits for a callback running on
    // another thread) comes before every leave().
    std::optional<std::stop_callback<stop_waker>> wake_on_stop;
    if (stop != nullptr) wake_on_stop.emplace(*stop, stop_waker{this});
    if (stop != nullptr && stop->stop_requested()) {
      wake_on_stop.reset();
      leave();
      return std::cv_status::no_timeout;
    }

    detail::wait_result r;
    if constexpr (requeue_capable<Lock>) {
      rouse::mutex* const m = lock.release();
      m->unlock();
      r = sleep(seq, deadline);
      // Requeued (or possibly): relock leaving the word contended, so the
      // unlock after ours wakes the next requeued sleeper. Possibly requeued:
      // a requeue began while this thread slept (the generation moved: the
      // wake that ended the sleep follows the requeue's system call, which
      // follows (E1)), or one was in flight when it registered (it may have
      // registered after (E1) and been moved all the same).
      // Ordering: acquire, as at registration.
      std::uint32_t const now = epoch_.load(std::memory_order_acquire);
      bool const maybe_requeued =
          (now & ~epoch_in_flight_mask) != (epoch & ~epoch_in_flight_mask) || (epoch & epoch_in_flight_mask) != 0;
      wake_on_stop.reset();
      leave();
      if (maybe_requeued) {
        detail::mutex_access::lock_contended(*m);
      } else {
        m->lock();
      }
      lock = std::unique_lock<rouse::mutex>(*m, std::adopt_lock);
    } else {
      lock.unlock();
      r = sleep(seq, deadline);
      wake_on_stop.reset();
      leave();
      lock.lock();
    }
    return r == detail::wait_result::timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
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
    // Anyone still asleep on seq_ was never notified: misuse.
    seq_.fetch_add(1, std::memory_order_relaxed);
    [[maybe_unused]] int const unnotified = detail::wake_all(seq_);
    ROUSE_CHECK_USAGE(unnotified == 0, "rouse::condition_variable", "destroyed while threads wait on it");
    // Requeued waiters sleep on the mutex word and deregister only once they
    // wake: wake them (a spurious wake for the mutex, which they tolerate) so
    // they need not get the mutex first — the destroying thread may hold it.
    const word_type* const target = mutex_word_.load(std::memory_order_relaxed);
    if (requeue_target(target)) detail::wake_all(*target);
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
};

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(void*) != 8 || sizeof(condition_variable) == 24,
              "rouse::condition_variable is three 32-bit words and a pointer");
#endif

using condition_variable_any = condition_variable;

}  // namespace rouse
