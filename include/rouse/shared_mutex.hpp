// rouse/shared_mutex.hpp — a readers/writer lock on one futex word.
//
//   rouse::shared_mutex        drop-in for std::shared_mutex and std::shared_timed_mutex
//   rouse::shared_timed_mutex  the same type
//
// Purpose: many readers or one writer. lock/try_lock/try_lock_for/
// try_lock_until/unlock take the lock exclusively; lock_shared/
// try_lock_shared/try_lock_shared_for/try_lock_shared_until/unlock_shared take
// it shared. Timed forms accept any clock: steady_clock and system_clock
// deadlines go to the kernel as absolute times, other clocks are waited in
// steady slices and re-read, so a timed call never gives up early on the
// caller's clock. std::unique_lock, std::shared_lock, std::lock_guard and
// std::scoped_lock work with it.
//
// Lifecycle: constexpr-constructed unlocked; neither copyable nor movable.
// A thread that holds the lock (either mode) must not lock it again (self
// deadlock, as with std). The holder of the exclusive lock unlocks it with
// unlock(), each shared holder with unlock_shared().
//
// Misuse (debug builds, ROUSE_DEBUG_CHECKS): unlock() when the lock is not
// held exclusively, unlock_shared() when it is not held shared (the reader
// count would underflow), and destroying it while held, are reported with
// "rouse::shared_mutex: misuse: ..." and abort. An unlock by a thread other
// than the holder is not detected (the word has no room for an owner).
// More than 2^29 - 2 simultaneous shared holders aborts in every build.
//
// sizeof: 8 bytes (two 32-bit words: the state and the writers' wake
// counter); static_asserted below. Works across processes only within one
// process: waits use process-private futexes.
//
// Fairness policy (phase alternation, no FIFO inside a phase):
// - Writers are not starved by readers: once a writer waits (WW), new
//   readers queue behind it; the last reader out wakes one writer.
// - Readers are not starved by writers: a writer that unlocks while readers
//   wait hands the lock to the readers (the read turn R): no writer can take
//   the lock until a woken reader has, and every reader that had to wait may
//   join that read phase even though writers wait. The next writer gets the
//   lock when that phase's last reader leaves.
// - Among writers the lock is barging (an arriving writer may take a free
//   lock before a woken one), as rouse::mutex.
//
// Cost with nobody waiting: lock/lock_shared are one load and one CAS;
// unlock is one CAS, unlock_shared one fetch_sub; no system call. A system
// call is made only to sleep, or to wake a thread that sleeps: unlock_shared
// wakes a writer only when it is the last reader and a writer waits.
//
// State word `state_`:
//   bits 0..28   C   number of shared holders; C == write_locked (all ones)
//                    means held exclusively
//   bit 29       R   read turn: a writer unlocked while readers waited and
//                    woke them; writers may not lock until a reader has
//                    (only with C == 0)
//   bit 30       WR  readers may be sleeping on state_
//   bit 31       WW  writers may be sleeping on writer_notify_
//
//   state                  meaning
//   0                      unlocked, nobody waits
//   n (1..max_readers)     n readers hold it, nobody waits
//   n | WW                 n readers hold it, a writer waits: new readers wait
//   write_locked [| WR|WW] one writer holds it [readers / writers wait]
//   R [| WW]               handed to the woken readers [writers wait]
//   0 | WR | WW            transient: unlocked, about to wake a waiter
//
// writer_notify_ is a sequence counter: bumped (release) and woken whenever
// a writer should re-check the state; writers sleep on it, not on state_,
// so reader churn does not wake them ("Rust Atomics and Locks", ch. 9).
//
// Clang thread-safety analysis: a capability ("shared_mutex"); lock/unlock
// are exclusive, the _shared forms shared (detail/annotations.hpp).
//
// Memory ordering: unlock() and unlock_shared() are release operations on
// state_, lock()/lock_shared() (and successful try_ forms) acquire on it, so
// everything a writer did before unlock() happens-before what any later
// holder does after locking, and everything readers did before
// unlock_shared() happens-before the next writer's critical section. The
// waiting bits are set and cleared with relaxed RMWs; these continue the
// release sequence of the preceding unlock, so acquirers still synchronize.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

#include "rouse/detail/annotations.hpp"
#include "rouse/detail/backoff_spin.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {

class ROUSE_CAPABILITY("shared_mutex") shared_mutex {
 public:
  shared_mutex() noexcept = default;  // constexpr when detail::atomic is (normal builds)
  shared_mutex(const shared_mutex&) = delete;
  shared_mutex& operator=(const shared_mutex&) = delete;
  ~shared_mutex() {
    ROUSE_CHECK_USAGE((state_.load(std::memory_order_relaxed) & count_mask) == 0, "rouse::shared_mutex",
                      "destroyed while locked");
  }

  // --- exclusive -----------------------------------------------------------
  void lock() noexcept ROUSE_ACQUIRE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t expected = 0;
    // Ordering: acquire pairs with the release in unlock()/unlock_shared().
    if (state_.compare_exchange_weak(expected, write_locked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) [[likely]]
      return;
    lock_slow(no_deadline{});
  }

  bool try_lock() noexcept ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (write_lockable(s)) {
      // Ordering: acquire pairs with the release in unlock()/unlock_shared().
      if (state_.compare_exchange_strong(s, s | write_locked, std::memory_order_acquire,
                                         std::memory_order_relaxed))
        return true;
    }
    return false;
  }

  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) noexcept ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    return try_lock_until(platform::deadline_after(timeout));
  }

  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept
      ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    if (try_lock()) return true;
    return lock_slow(deadline);
  }

  void unlock() noexcept ROUSE_RELEASE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t expected = write_locked;
    // Ordering: release pairs with the acquire of the next lock()/lock_shared().
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed))
        [[likely]]
      return;
    unlock_slow(expected);
  }

  // --- shared --------------------------------------------------------------
  void lock_shared() noexcept ROUSE_ACQUIRE_SHARED() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    // s < max_readers: no flag set and the count has room.
    // Ordering: acquire pairs with the release in unlock().
    if (s < max_readers &&
        state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed))
        [[likely]]
      return;
    lock_shared_slow(no_deadline{});
  }

  bool try_lock_shared() noexcept ROUSE_TRY_ACQUIRE_SHARED(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (read_lockable(s, false)) {
      // Ordering: acquire pairs with the release in unlock().
      if (state_.compare_exchange_strong(s, (s + 1) & ~read_turn, std::memory_order_acquire,
                                         std::memory_order_relaxed))
        return true;
    }
    check_reader_room(s);
    return false;
  }

  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& timeout) noexcept
      ROUSE_TRY_ACQUIRE_SHARED(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    return try_lock_shared_until(platform::deadline_after(timeout));
  }

  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept
      ROUSE_TRY_ACQUIRE_SHARED(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    if (try_lock_shared()) return true;
    return lock_shared_slow(deadline);
  }

  void unlock_shared() noexcept ROUSE_RELEASE_SHARED() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    // Ordering: release pairs with the acquire of the next writer's lock().
    std::uint32_t const before = state_.fetch_sub(1, std::memory_order_release);
    ROUSE_CHECK_USAGE((before & count_mask) != 0 && (before & count_mask) != write_locked,
                      "rouse::shared_mutex", "unlock_shared() without a shared lock held");
    std::uint32_t const s = before - 1;
    // The last reader out, with somebody waiting: hand the lock on.
    if ((s & count_mask) == 0 && (s & (writers_waiting | readers_waiting)) != 0) [[unlikely]]
      wake_writer_or_readers(s);
  }

 private:
  static constexpr std::uint32_t count_mask = (std::uint32_t{1} << 29) - 1;
  static constexpr std::uint32_t write_locked = count_mask;
  static constexpr std::uint32_t max_readers = count_mask - 1;
  static constexpr std::uint32_t read_turn = std::uint32_t{1} << 29;        // R
  static constexpr std::uint32_t readers_waiting = std::uint32_t{1} << 30;  // WR
  static constexpr std::uint32_t writers_waiting = std::uint32_t{1} << 31;  // WW

  // The spin before sleeping while the lock is held with nobody asleep:
  // rouse::mutex's (detail::lock_spin_policy). rwlock.read95 on the 2-vCPU
  // VM, ratio to std::shared_mutex in one run: 100 tight pauses 0.84; that
  // budget with polls 1, 2 ... 64 pauses apart 0.78-0.88; as here 0.26-0.40
  // (docs/locks.md). Under the model one poll keeps the search small.
  static constexpr detail::spin_policy spin_policy = detail::lock_spin_policy(1);

  struct no_deadline {};


  static bool write_lockable(std::uint32_t s) noexcept { return (s & (count_mask | read_turn)) == 0; }

  // A reader that never waited yields to a waiting writer unless the read
  // turn is on; a reader that has waited joins any read phase (policy above).
  static bool read_lockable(std::uint32_t s, bool waited) noexcept {
    return (s & count_mask) < max_readers && ((s & writers_waiting) == 0 || (s & read_turn) != 0 || waited);
  }

  static void check_reader_room(std::uint32_t s) noexcept {
    if ((s & count_mask) == max_readers) [[unlikely]]
      detail::report_misuse("rouse::shared_mutex", "more than 2^29 - 2 shared holders");
  }

  template <class Deadline>
  static bool expired(const Deadline& deadline) noexcept {
    if constexpr (std::is_same_v<Deadline, no_deadline>) {
      return false;
    } else {
      return Deadline::clock::now() >= deadline;
    }
  }

  template <class Deadline>
  static void sleep(const detail::atomic<std::uint32_t>& word, std::uint32_t expected,
                    const Deadline& deadline) noexcept {
    if constexpr (std::is_same_v<Deadline, no_deadline>) {
      detail::wait(word, expected);
    } else {
      // A timeout is judged by the caller's loop on the caller's clock.
      (void)detail::wait_until(word, expected, deadline);
    }
  }

  std::uint32_t spin_while_held(bool for_writer) const noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    detail::backoff_spin spin(spin_policy);
    for (;;) {
      bool const free = for_writer ? write_lockable(s) : (s & count_mask) != write_locked;
      if (free || (s & (readers_waiting | writers_waiting)) != 0) break;
      if (!spin.next()) break;
      s = state_.load(std::memory_order_relaxed);
    }
    return s;
  }

  template <class Deadline>
  [[gnu::noinline, gnu::cold]] bool lock_shared_slow(const Deadline& deadline) noexcept {
    bool waited = false;
    std::uint32_t s = spin_while_held(false);
    for (;;) {
      if (read_lockable(s, waited)) {
        // Taking the read turn clears R: from here writers are held off by C.
        // Ordering: acquire pairs with the release in unlock() / unlock_slow().
        if (state_.compare_exchange_weak(s, (s + 1) & ~read_turn, std::memory_order_acquire,
                                         std::memory_order_relaxed))
          return true;
        continue;
      }
      check_reader_room(s);
      if (expired(deadline)) return false;  // a stale WR only costs a later wake
      if ((s & readers_waiting) == 0) {
        // Ordering: relaxed; the futex re-checks the word, the unlocker's
        // RMW reads this bit.
        if (!state_.compare_exchange_weak(s, s | readers_waiting, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
          continue;
        s |= readers_waiting;
      }
      sleep(state_, s, deadline);
      waited = true;
      s = state_.load(std::memory_order_relaxed);
    }
  }

  template <class Deadline>
  [[gnu::noinline, gnu::cold]] bool lock_slow(const Deadline& deadline) noexcept {
    // Once this writer has set WW (or been woken after another cleared it)
    // it keeps WW set when it locks: other writers may still sleep.
    std::uint32_t other_writers = 0;
    bool waited = false;
    std::uint32_t s = spin_while_held(true);
    for (;;) {
      if (write_lockable(s)) {
        // Ordering: acquire pairs with the release in unlock()/unlock_shared().
        if (state_.compare_exchange_weak(s, s | write_locked | other_writers, std::memory_order_acquire,
                                         std::memory_order_relaxed))
          return true;
        continue;
      }
      if (expired(deadline)) {
        if (waited) writer_gives_up();
        return false;
      }
      if ((s & writers_waiting) == 0) {
        if (!state_.compare_exchange_weak(s, s | writers_waiting, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
          continue;
      }
      other_writers = writers_waiting;
      waited = true;
      // Read the wake counter before re-checking the state, so a wake that
      // lands in between changes the counter and the sleep returns at once.
      // Ordering: acquire pairs with the release increment in wake_writer(),
      // which follows the state change that makes the lock free.
      std::uint32_t const seq = writer_notify_.load(std::memory_order_acquire);
      s = state_.load(std::memory_order_relaxed);
      if (write_lockable(s) || (s & writers_waiting) == 0) continue;
      sleep(writer_notify_, seq, deadline);
      s = spin_while_held(true);
    }
  }

  // A timed writer leaves after having set WW. It cannot tell whether other
  // writers still sleep, so it clears WW and wakes them all to re-register
  // (timeouts are rare; this keeps WW from outliving its writers, which would
  // block new readers forever). Readers held back only by WW are released.
  [[gnu::noinline, gnu::cold]] void writer_gives_up() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & writers_waiting) != 0 &&
           !state_.compare_exchange_weak(s, s & ~writers_waiting, std::memory_order_relaxed,
                                         std::memory_order_relaxed)) {
    }
    // Ordering: release pairs with the acquire load of writer_notify_ in lock_slow().
    writer_notify_.fetch_add(1, std::memory_order_release);
    detail::wake_all(writer_notify_);
    s = state_.load(std::memory_order_relaxed);
    // Readers wait only on a held lock or on WW. With a writer holding it,
    // its unlock hands over; with R set they are awake already.
    while ((s & readers_waiting) != 0 && (s & count_mask) != write_locked && (s & read_turn) == 0) {
      if (state_.compare_exchange_weak(s, s & ~readers_waiting, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
        detail::wake_all(state_);
        return;
      }
    }
  }

  // Wakes one sleeping writer; true when the wake reached one.
  bool wake_writer() noexcept {
    // Ordering: release pairs with the acquire load of writer_notify_ in lock_slow().
    writer_notify_.fetch_add(1, std::memory_order_release);
    return detail::wake_one(writer_notify_) > 0;
  }

  // unlock() found waiting bits (`s` is write_locked plus WR and/or WW).
  [[gnu::noinline, gnu::cold]] void unlock_slow(std::uint32_t s) noexcept {
    ROUSE_CHECK_USAGE((s & count_mask) == write_locked, "rouse::shared_mutex",
                      "unlock() without holding the lock exclusively");
    for (;;) {
      if ((s & readers_waiting) != 0) {
        // write_locked|WR[|WW] -> R[|WW]: the readers' turn.
        // Ordering: release pairs with the woken readers' acquire CAS.
        if (!state_.compare_exchange_weak(s, read_turn | (s & writers_waiting), std::memory_order_release,
                                          std::memory_order_relaxed))
          continue;
        if (detail::wake_all(state_) == 0) take_back_read_turn();
        return;
      }
      // write_locked|WW -> 0, then wake a writer (which sets WW again when
      // it locks, for the writers still asleep).
      // Ordering: release pairs with the next locker's acquire CAS.
      if (!state_.compare_exchange_weak(s, 0, std::memory_order_release, std::memory_order_relaxed)) continue;
      wake_writer();
      return;
    }
  }

  // The read turn was given but no sleeping reader was woken (they had timed
  // out, or were about to sleep and will see the changed word). If no reader
  // has taken the turn yet, take it back and hand the lock on as a free lock.
  void take_back_read_turn() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & read_turn) != 0 && (s & count_mask) == 0) {
      // R[|WW|WR] -> [WW|WR]
      if (state_.compare_exchange_weak(s, s & ~read_turn, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
        wake_writer_or_readers(s & ~read_turn);
        return;
      }
    }
  }

  // The lock became free (C == 0, no R) with waiting bits in `s`. A writer
  // goes first; readers are woken only when no writer was.
  [[gnu::noinline, gnu::cold]] void wake_writer_or_readers(std::uint32_t s) noexcept {
    for (;;) {
      // Held again, or a read turn in progress: the holder hands on.
      if ((s & (count_mask | read_turn)) != 0) return;
      if ((s & writers_waiting) != 0) {
        // WW[|WR] -> [WR]; the woken writer sets WW again when it locks.
        if (!state_.compare_exchange_weak(s, s & ~writers_waiting, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
          continue;
        if (wake_writer()) return;
        // No writer was asleep (it is about to re-check, or timed out):
        // wake the readers rather than risk leaving them asleep.
        s &= ~writers_waiting;
        continue;
      }
      if ((s & readers_waiting) != 0) {
        // WR -> 0, then wake every reader.
        if (!state_.compare_exchange_weak(s, s & ~readers_waiting, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
          continue;
        detail::wake_all(state_);
      }
      return;
    }
  }

  detail::atomic<std::uint32_t> state_{0};
  detail::atomic<std::uint32_t> writer_notify_{0};
};

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(shared_mutex) == 8, "rouse::shared_mutex is two 32-bit words");
#endif

using shared_timed_mutex = shared_mutex;

}  // namespace rouse
