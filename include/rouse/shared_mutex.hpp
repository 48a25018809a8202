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
// deadlock, as with std). Nor may a thread that holds it shared wait for
// another thread to take it shared while writers may wait: new readers
// queue behind a waiting writer, which waits for the first reader (a
// deadlock with plain lock(); with timed writers that keep retrying, a
// stall for as long as one of them is registered). The holder of the
// exclusive lock unlocks it with unlock(), each shared holder with
// unlock_shared().
// Destruction (std's rule for every mutex): a thread that locks it after
// every other thread's last lock, and unlocks it, may destroy it at once,
// even while the thread that unlocked before it is still inside unlock() or
// unlock_shared(). Every release below is built for that: its last access to
// the object is the state change that lets another thread in, after which
// it only passes a word's address to the futex wake (which never reads the
// memory). Where a release must do more than one step (bump the writers'
// wake counter, learn whether a reader woke), it does them while the lock
// is still closed to everybody (the hand-over states H and P below).
//
// Misuse (debug builds, ROUSE_DEBUG_CHECKS): unlock() when the lock is not
// held exclusively, unlock_shared() when it is not held shared (the reader
// count would underflow), and destroying it while held, are reported with
// "rouse::shared_mutex: misuse: ..." and abort. So are, through the thread's
// list of the locks it holds (detail/held_locks.hpp, as rouse::mutex's: the
// word has no room for an owner): any lock form by the exclusive holder;
// lock() by a shared holder (an upgrade, which deadlocks; a try_lock form
// fails at worst, and is allowed); and an unlock or unlock_shared by a
// thread that does not hold it so. A second shared hold by one thread is
// allowed and not diagnosed (std::shared_mutex on glibc admits it), but it
// deadlocks when a writer queued between the two: writers are not starved,
// so a waiting writer holds new readers off, the holder's second lock_shared
// included. Take a shared lock once per thread.
// More than 2^28 - 2 simultaneous shared holders aborts in every build.
//
// sizeof: 12 bytes (three 32-bit words: the state, the writers' wake
// counter, the count of writers registered behind WW); static_asserted
// below. Works across processes only within one process: waits use
// process-private futexes.
//
// Fairness policy (phase alternation, no FIFO inside a phase):
// - Writers are not starved by readers: once a writer waits (WW), new
//   readers queue behind it; the last reader out wakes one writer and hands
//   it a write turn (W), which no reader may take, so readers cannot slip in
//   while the woken writer gets back on a CPU.
// - Readers are not starved by writers: a writer that unlocks while readers
//   sleep hands the lock to the readers (the read turn R): no writer can take
//   the lock until a woken reader has, and every reader that had to wait may
//   join that read phase even though writers wait. The next writer gets the
//   lock when that phase's last reader leaves.
// - Among writers the lock is barging (an arriving writer may take a free
//   lock before a woken one), as rouse::mutex.
// try_lock() and try_lock_shared() fail during a hand-over (a few
// instructions, or one wake call) although nobody holds the lock, and
// try_lock_shared() during a write turn: std allows try_lock to fail
// spuriously.
// A hand-over ends only when the thread in it has run a few more
// instructions and at most one wake call; waiters spin through it (pauses,
// then yields) and check no deadline meanwhile, so a releasing thread that
// is descheduled inside one delays them, and a timed lock can return that
// much after its deadline. (With real-time priorities, a waiter that yields
// does not let a lower-priority releaser on its CPU run: do not mix
// SCHED_FIFO priorities on one shared_mutex.)
//
// Cost with nobody waiting: lock is one CAS, lock_shared one load and one CAS;
// unlock is one CAS, unlock_shared one fetch_sub; no system call. A system
// call is made only to sleep, or to wake a thread that sleeps: unlock_shared
// wakes a writer only when it is the last reader and a writer waits. A
// writer's unlock that wakes somebody makes three RMWs instead of one.
//
// State word `state_`:
//   bits 0..27   C   number of shared holders; C == write_locked (all ones)
//                    means held exclusively
//   bit 28       H   with C == write_locked: hand-over by the unlocking
//                    writer, the lock stays closed while it finishes; with
//                    C == 0: the write turn W
//   bit 29       R   read turn: a writer unlocked while readers slept and
//                    woke at least one; writers may not lock until a reader
//                    has (only with C == 0)
//   bit 30       WR  readers may be sleeping on state_
//   bit 31       WW  writers may be sleeping on writer_notify_
//
//   state                  meaning
//   0                      unlocked, nobody waits
//   0 | WR                 unlocked; readers may sleep (behind a writer woken
//                          before, which has since gone or timed out)
//   n (1..max_readers)     n readers hold it, nobody waits
//   n | WR                 n readers hold it; readers sleep behind a writer
//                          that gave up (it clears WR and wakes them next)
//   n | WW [| WR]          n readers hold it, a writer waits: new readers wait
//   write_locked [|WR|WW]  one writer holds it [readers / writers wait]
//   write_locked | H ...   (hand-over) the writer is unlocking: closed to all
//   R [| WW]               handed to the woken readers [writers wait]
//   0 | WW [| WR]          (hand-over P) the last reader left while a writer
//                          waits, and is waking one: closed to all
//   H [| WR]               (write turn W) the last reader woke a writer:
//                          writers may lock, readers may not (they sleep,
//                          WR, until that writer's unlock hands them R)
//
// The hand-over states close the lock to everybody and are left only by the
// thread that entered them, with one RMW that is its release. Writers wait
// them out spinning (never sleep on them); readers spin through H and may
// sleep through P (after setting WR, which P's last step reads). A write
// turn is given only when a writer actually woke, and that writer re-checks
// the state before its deadline, so some writer always takes it (a writer
// that gives up drops it).
//
// writer_notify_ is a sequence counter: bumped (release) and woken whenever
// a writer should re-check the state; writers sleep on it, not on state_,
// so reader churn does not wake them ("Rust Atomics and Locks", ch. 9). It
// is bumped only inside a hand-over (or by a timed-out writer, which is
// itself inside a lock call): a writer that reads the bumped value then
// reads the state in or past the hand-over, and spins or locks instead of
// sleeping.
//
// writers_ counts the writers registered behind WW (from a writer's first
// setting or joining of WW until it locks or gives up); a timed writer that
// gives up while others are registered and WW guards a held lock leaves
// without waking anybody (writer_gives_up()).
//
// Transitions of a release that wakes somebody:
//   unlock, writers only    write_locked|WW -> +H; bump; -> 0; wake one writer
//   unlock, readers wait    write_locked|WR[|WW] -> +H; wake one reader (n);
//                           n > 0: -> R[|WW]; wake all readers
//                           n = 0: [bump;] -> 0 [; wake one writer]
//   last reader, writer     1|WW[|WR] -fetch_sub-> P; bump; wake one writer (n);
//                           n > 0: -> W[|WR]   n = 0: -> 0 [; wake all readers]
//   last reader, readers    1|WR -fetch_sub-> 0|WR; wake all readers
// (n is what the wake call returned: the number of threads it woke.)
//
// Clang thread-safety analysis: a capability ("shared_mutex"); lock/unlock
// are exclusive, the _shared forms shared (detail/annotations.hpp).
//
// Memory ordering: unlock() and unlock_shared() are release operations on
// state_, lock()/lock_shared() (and successful try_ forms) acquire on it, so
// everything a writer did before unlock() happens-before what any later
// holder does after locking, and everything readers did before
// unlock_shared() happens-before the next writer's critical section. Every
// other change of state_ is an RMW, so it continues the release sequence of
// the preceding unlock and acquirers still synchronize.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

#include "rouse/detail/annotations.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/held_locks.hpp"
#include "rouse/detail/spin.hpp"
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
    check_not_held_for_lock(true);
    std::uint32_t expected = 0;
    // Ordering: acquire pairs with the release in unlock()/unlock_shared().
    if (!state_.compare_exchange_weak(expected, write_locked, std::memory_order_acquire, std::memory_order_relaxed))
        [[unlikely]]
      lock_slow(detail::no_deadline{});
    detail::note_acquired(this);
  }

  bool try_lock() noexcept ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    check_not_held_for_lock(false);
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (write_lockable(s)) {
      // Ordering: acquire pairs with the release in unlock()/unlock_shared().
      if (state_.compare_exchange_strong(s, (s & ~handing_over) | write_locked, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        detail::note_acquired(this);
        return true;
      }
    }
    return false;
  }

  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) noexcept
      ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    return try_lock_until(platform::deadline_after(timeout));
  }

  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept
      ROUSE_TRY_ACQUIRE(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    if (try_lock()) return true;
    if (!lock_slow(detail::deadline_at(deadline))) return false;
    detail::note_acquired(this);
    return true;
  }

  void unlock() noexcept ROUSE_RELEASE() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    std::uint32_t expected = write_locked;
    // Ordering: release pairs with the acquire of the next lock()/lock_shared().
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed))
        [[unlikely]]
      unlock_slow(expected);  // (diagnoses an unlock of a lock not held exclusively)
    // The thread's own list: nothing of *this is touched (it may be gone).
    detail::note_released(this, true, "rouse::shared_mutex");
  }

  // --- shared --------------------------------------------------------------
  void lock_shared() noexcept ROUSE_ACQUIRE_SHARED() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    check_not_held_for_lock_shared();
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    // s < max_readers: no flag set and the count has room.
    // Ordering: acquire pairs with the release in unlock().
    if (!(s < max_readers &&
          state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed))) [[unlikely]]
      lock_shared_slow(detail::no_deadline{});
    detail::note_acquired(shared_key());
  }

  bool try_lock_shared() noexcept ROUSE_TRY_ACQUIRE_SHARED(true) ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    check_not_held_for_lock_shared();
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (read_lockable(s, false)) {
      // Ordering: acquire pairs with the release in unlock().
      if (state_.compare_exchange_strong(s, (s + 1) & ~read_turn, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        detail::note_acquired(shared_key());
        return true;
      }
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
    if (!lock_shared_slow(detail::deadline_at(deadline))) return false;
    detail::note_acquired(shared_key());
    return true;
  }

  void unlock_shared() noexcept ROUSE_RELEASE_SHARED() ROUSE_NO_THREAD_SAFETY_ANALYSIS {
    // Ordering: release pairs with the acquire of the next writer's lock().
    std::uint32_t const before = state_.fetch_sub(1, std::memory_order_release);
    ROUSE_CHECK_USAGE((before & count_mask) != 0 && (before & count_mask) != write_locked, "rouse::shared_mutex",
                      "unlock_shared() without a shared lock held");
    std::uint32_t const s = before - 1;
    // The last reader out, with somebody waiting. (R is never set while
    // readers hold the lock: the first reader of a turn clears it.)
    if ((s & count_mask) == 0 && (s & (writers_waiting | readers_waiting)) != 0) [[unlikely]]
      last_reader_out(s);
    // The thread's own list: nothing of *this is touched (it may be gone).
#if ROUSE_TRACK_HELD_LOCKS
    ROUSE_CHECK_USAGE(detail::held_locks::mine().remove(shared_key()), "rouse::shared_mutex",
                      "unlock_shared() by a thread that does not hold it shared");
#endif
  }

 private:
  // Debug builds: the thread's held-lock list keeps this lock's address for
  // an exclusive hold and the next byte's for each shared one (a key only).
  // Any lock form by the exclusive holder is misuse (as rouse::mutex's); by
  // a shared holder, lock() (an upgrade: it waits forever; a try_lock form
  // fails at worst). A second shared hold is not diagnosed (see the header).
  const void* shared_key() const noexcept { return reinterpret_cast<const char*>(this) + 1; }
  void check_not_held_for_lock([[maybe_unused]] bool waits) const noexcept {
#if ROUSE_TRACK_HELD_LOCKS
    detail::held_locks& held = detail::held_locks::mine();
    ROUSE_CHECK_USAGE(!held.contains(this), "rouse::shared_mutex",
                      "lock() by the thread that already holds it (self-deadlock)");
    ROUSE_CHECK_USAGE(!waits || !held.contains(shared_key()), "rouse::shared_mutex",
                      "lock() by a thread that holds it shared (an upgrade deadlocks: unlock_shared() first)");
#endif
  }
  void check_not_held_for_lock_shared() const noexcept {
#if ROUSE_TRACK_HELD_LOCKS
    ROUSE_CHECK_USAGE(!detail::held_locks::mine().contains(this), "rouse::shared_mutex",
                      "lock_shared() by the thread that holds it exclusively (self-deadlock)");
#endif
  }

  static constexpr std::uint32_t count_mask = (std::uint32_t{1} << 28) - 1;
  static constexpr std::uint32_t write_locked = count_mask;
  static constexpr std::uint32_t max_readers = count_mask - 1;
  static constexpr std::uint32_t handing_over = std::uint32_t{1} << 28;     // H
  static constexpr std::uint32_t read_turn = std::uint32_t{1} << 29;        // R
  static constexpr std::uint32_t readers_waiting = std::uint32_t{1} << 30;  // WR
  static constexpr std::uint32_t writers_waiting = std::uint32_t{1} << 31;  // WW

  // P: the last reader left while a writer waits; it is handing over.
  static bool reader_hand_over(std::uint32_t s) noexcept {
    return (s & (count_mask | read_turn | writers_waiting)) == writers_waiting;
  }
  // W: a write turn (H with C == 0): the last reader woke a writer; writers
  // may lock, readers may not.
  static bool write_turn(std::uint32_t s) noexcept { return (s & handing_over) != 0 && (s & count_mask) == 0; }
  static bool in_hand_over(std::uint32_t s) noexcept {
    return ((s & handing_over) != 0 && !write_turn(s)) || reader_hand_over(s);
  }

  // Free for a writer: no holder, no read turn, no hand-over (a write turn
  // is free for writers).
  static bool write_lockable(std::uint32_t s) noexcept {
    return (s & (count_mask | read_turn)) == 0 && ((s & writers_waiting) == 0 || (s & handing_over) != 0);
  }

  // A reader that never waited yields to a waiting writer unless the read
  // turn is on; a reader that has waited joins any read phase (policy
  // above). Nobody joins a hand-over.
  static bool read_lockable(std::uint32_t s, bool waited) noexcept {
    std::uint32_t const c = s & count_mask;
    if (c >= max_readers) return false;  // write-locked (H included), or full
    if (write_turn(s)) return false;
    if ((s & writers_waiting) == 0 || (s & read_turn) != 0) return true;
    return waited && c != 0;
  }

  static void check_reader_room(std::uint32_t s) noexcept {
    if ((s & count_mask) == max_readers) [[unlikely]]
      detail::report_misuse("rouse::shared_mutex", "more than 2^28 - 2 shared holders");
  }

  // The spin before sleeping while the lock is held with nobody asleep:
  // detail::shared_mutex_spin (rouse::mutex's; one poll under a model keeps
  // the search small).
  // A timed call stops spinning at its deadline (try_lock_for(0) on a held
  // lock fails at once).
  template <class Deadline>
  std::uint32_t spin_while_held(bool for_writer, const Deadline& deadline) const noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    detail::spinner spin(detail::shared_mutex_spin);
    for (;;) {
      bool const free = for_writer ? write_lockable(s) : (s & count_mask) != write_locked;
      if (free || (s & (readers_waiting | writers_waiting | handing_over)) != 0) break;
      if (deadline.expired() || !spin.next()) break;
      s = state_.load(std::memory_order_relaxed);
    }
    return s;
  }

  // Spins until the state is out of a hand-over (`in(s)` false) and
  // returns it: detail::shared_mutex_hand_over, pauses, then yields (the
  // hand-over is a few instructions and at most one wake call; a yield lets
  // a descheduled releaser run). A hand-over never waits for another
  // thread, so this ends; deadlines are not checked here, so a woken waiter
  // always sees the outcome of the hand-over that woke it (its wake may
  // have been counted).
  template <class InHandOver>
  std::uint32_t wait_out_hand_over(InHandOver in) const noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    detail::spinner spin(detail::shared_mutex_hand_over);
    while (in(s)) {
      (void)spin.next();  // unbounded: always true
      s = state_.load(std::memory_order_relaxed);
    }
    return s;
  }

  template <class Deadline>
  [[gnu::noinline, gnu::cold]] bool lock_shared_slow(const Deadline& deadline) noexcept {
    bool waited = false;
    std::uint32_t s = spin_while_held(false, deadline);
    for (;;) {
      if (read_lockable(s, waited)) {
        // Taking the read turn clears R: from here writers are held off by C.
        // Ordering: acquire pairs with the release in unlock() / unlock_slow().
        if (state_.compare_exchange_weak(s, (s + 1) & ~read_turn, std::memory_order_acquire, std::memory_order_relaxed))
          return true;
        continue;
      }
      if ((s & handing_over) != 0 && !write_turn(s)) {
        // A writer is handing over, perhaps to the readers, and may have
        // counted this reader's wake: see its outcome before anything else.
        s = wait_out_hand_over([](std::uint32_t v) { return (v & handing_over) != 0 && !write_turn(v); });
        continue;
      }
      check_reader_room(s);
      if (deadline.expired()) return false;  // a stale WR only costs a later wake call
      if ((s & readers_waiting) == 0) {
        // Ordering: relaxed; the futex re-checks the word, the unlocker's
        // RMW reads this bit.
        if (!state_.compare_exchange_weak(s, s | readers_waiting, std::memory_order_relaxed, std::memory_order_relaxed))
          continue;
        s |= readers_waiting;
      }
      // A timeout is judged by the loop, by deadline.expired().
      (void)detail::wait_until(state_, s, deadline);
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
    std::uint32_t s = spin_while_held(true, deadline);
    for (;;) {
      if (write_lockable(s)) {
        // Ordering: acquire pairs with the release in unlock()/unlock_shared().
        // Taking a write turn clears its H.
        if (state_.compare_exchange_weak(s, (s & ~handing_over) | write_locked | other_writers,
                                         std::memory_order_acquire, std::memory_order_relaxed)) {
          // Ordering: relaxed: a count for a giving-up writer (writers_).
          if (waited) writers_.fetch_sub(1, std::memory_order_relaxed);
          return true;
        }
        continue;
      }
      if (in_hand_over(s)) {
        // Never sleep on a hand-over: its wake may already have been made.
        s = wait_out_hand_over([](std::uint32_t v) { return in_hand_over(v); });
        continue;
      }
      if (deadline.expired()) {
        if (waited) writer_gives_up();
        return false;
      }
      if ((s & writers_waiting) == 0) {
        if (!state_.compare_exchange_weak(s, s | writers_waiting, std::memory_order_relaxed, std::memory_order_relaxed))
          continue;
      }
      other_writers = writers_waiting;
      if (!waited) writers_.fetch_add(1, std::memory_order_relaxed);  // registered until it locks or gives up
      waited = true;
      // Read the wake counter before re-checking the state, so a bump that
      // lands in between changes the counter and the sleep returns at once;
      // a bump read here was made inside a hand-over, which the state read
      // below then shows (or its outcome).
      // Ordering: acquire pairs with the release bump in bump_writers(),
      // which follows the start of its hand-over.
      std::uint32_t const seq = writer_notify_.load(std::memory_order_acquire);
      s = state_.load(std::memory_order_relaxed);
      if (write_lockable(s) || in_hand_over(s) || (s & writers_waiting) == 0) continue;
      (void)detail::wait_until(writer_notify_, seq, deadline);  // the loop judges a timeout
      // Woken: re-check at once, without the spin, which would run with WW
      // clear and let readers come and go meanwhile.
      s = state_.load(std::memory_order_relaxed);
    }
  }

  // A timed writer leaves after having set WW. Other writers may wait
  // behind the same WW, and new readers must keep queueing behind them.
  // With others registered (writers_) and WW set on a held lock, it leaves
  // at once (below). Otherwise it drops a write turn it may have been woken
  // for, then wakes the writers asleep on writer_notify_ (they re-check at
  // once; the count the wake returns says whether any slept). If one did,
  // WW stays: it is theirs too.
  // If none did, WW is cleared (so it does not outlive its writers and
  // block new readers, who may even be waiting on a reader) and the writers
  // are bumped and woken once more: one that set WW meanwhile and is about
  // to sleep sees the bump and sets it again. Readers held back only by WW
  // are then released. A hand-over in progress is left alone: the thread
  // handing over reads WW and WR when it ends it. (This writer is inside a
  // lock call: the object is alive.)
  [[gnu::noinline, gnu::cold]] void writer_gives_up() noexcept {
    auto const in = [](std::uint32_t v) { return in_hand_over(v); };
    std::uint32_t s = wait_out_hand_over(in);
    // Other writers registered behind a WW that is set, on a held lock:
    // that is the plain "writers wait" state, whose release wakes one of
    // them; this writer leaves it as it is and wakes nobody (a sleeper woken
    // here would lose its place in the futex queue to the next attempt of
    // a writer that times out again and again, and with it every hand-over).
    // Ordering: relaxed: the count's RMWs are totally ordered among
    // themselves, and a writer counts itself only after it set or found WW.
    // The state read above decides: WW set on a held lock is the ordinary
    // wait, ended by that hold's release. A WW that a hand-over cleared
    // (perhaps the one that woke this writer), or a free lock, takes the
    // path below, which wakes the writers so that they re-register.
    if (writers_.fetch_sub(1, std::memory_order_relaxed) != 1 && (s & writers_waiting) != 0 &&
        (s & count_mask) != 0)
      return;
    // A write turn this writer may have been woken for is dropped (the lock
    // is then plainly free; readers held back by it are released below).
    while (write_turn(s) &&
           !state_.compare_exchange_weak(s, s & ~handing_over, std::memory_order_relaxed, std::memory_order_relaxed)) {
    }
    // Even when another thread cleared WW first: that may have been the
    // hand-over that woke this writer, and the wake must not end here.
    bump_writers();
    if (detail::wake_all(writer_notify_) == 0) {
      s = wait_out_hand_over(in);
      while ((s & writers_waiting) != 0) {
        if (in_hand_over(s)) {
          s = wait_out_hand_over(in);
          continue;
        }
        if (state_.compare_exchange_weak(s, s & ~writers_waiting, std::memory_order_relaxed,
                                         std::memory_order_relaxed))
          break;
      }
      bump_writers();
      detail::wake_all(writer_notify_);
    }
    s = state_.load(std::memory_order_relaxed);
    // Readers wait only on a held lock or on WW. With a writer holding it,
    // its unlock hands over; with R set they are awake already; a hand-over
    // P reads WR when it ends.
    while ((s & readers_waiting) != 0 && (s & writers_waiting) == 0 && (s & count_mask) != write_locked &&
           (s & read_turn) == 0 && !reader_hand_over(s) && !write_turn(s)) {
      if (state_.compare_exchange_weak(s, s & ~readers_waiting, std::memory_order_relaxed, std::memory_order_relaxed)) {
        detail::wake_all(state_);
        return;
      }
    }
  }

  void bump_writers() noexcept {
    // Ordering: release pairs with the acquire load of writer_notify_ in
    // lock_slow(): a writer that reads this value sees the hand-over begun.
    writer_notify_.fetch_add(1, std::memory_order_release);
  }

  // unlock() found waiting bits (`s` is write_locked plus WR and/or WW).
  // The writer still holds the lock until the last RMW below.
  [[gnu::noinline, gnu::cold]] void unlock_slow(std::uint32_t s) noexcept {
    ROUSE_CHECK_USAGE((s & count_mask) == write_locked && (s & handing_over) == 0, "rouse::shared_mutex",
                      "unlock() without holding the lock exclusively");
    // write_locked|... -> write_locked|H|...: closed to everybody; waiters
    // that arrive now spin until the last RMW, so the bits are stable.
    // Ordering: relaxed; the lock is still held.
    while (!state_.compare_exchange_weak(s, s | handing_over, std::memory_order_relaxed, std::memory_order_relaxed)) {
    }
    s |= handing_over;
    if ((s & readers_waiting) != 0 && model_fault_on_release()) {
      // BROKEN on purpose (model tests only): hands the read turn over
      // first, then takes it back if no reader woke — reading the object
      // after the release.
      release_to(s, read_turn | (s & writers_waiting));
      if (detail::wake_all(state_) == 0) (void)state_.load(std::memory_order_relaxed);
      return;
    }
    if ((s & readers_waiting) != 0 && detail::wake_one(state_) > 0) {
      // A reader woke and will take the read turn (it waits out H first):
      // write_locked|H|WR[|WW] -> R[|WW], the release; then wake the other
      // readers (only the address), who join the turn.
      release_to(s, read_turn | (s & writers_waiting));
      detail::wake_all(state_);
      return;
    }
    // Nobody to take a read turn (the readers that set WR have timed out,
    // or have not slept yet and will see the change): a plain unlock.
    bool const wake_writer = (s & writers_waiting) != 0;
    if (wake_writer) bump_writers();
    // write_locked|H[|WR][|WW] -> 0: the release; then only the address.
    release_to(s, 0);
    if (wake_writer) detail::wake_one(writer_notify_);
  }

  // The last RMW of a hand-over: the release.
  void release_to(std::uint32_t s, std::uint32_t next) noexcept {
    // Ordering: release pairs with the next locker's acquire CAS.
    while (!state_.compare_exchange_weak(s, next, std::memory_order_release, std::memory_order_relaxed)) {
    }
  }

  static bool model_fault_on_release() noexcept {
    return detail::model_fault_on(detail::model_fault::shared_mutex_read_turn_taken_back);
  }

  // The last reader left (`s` has C == 0 and WW and/or WR).
  [[gnu::noinline, gnu::cold]] void last_reader_out(std::uint32_t s) noexcept {
    if ((s & writers_waiting) == 0) {
      // 0|WR is free already (the fetch_sub was the release): only the
      // address. Readers sleep with WR behind a writer that has since gone.
      detail::wake_all(state_);
      return;
    }
    // P (0|WW[|WR]): closed to everybody until the RMW below; readers may
    // still add WR.
    bump_writers();
    int const woken = detail::wake_one(writer_notify_);
    std::uint32_t next;
    do {
      // A writer woke: a write turn W, so that readers arriving meanwhile
      // cannot take the lock from it; readers keep sleeping behind it (WR
      // stays; its unlock hands them the read turn). Nobody woke (the
      // writers that set WW are spinning, about to re-check, or timing
      // out): clear both and wake the readers.
      next = woken > 0 ? ((s & ~writers_waiting) | handing_over) : 0;  // W, or free
      // Ordering: release pairs with the next locker's acquire CAS.
    } while (!state_.compare_exchange_weak(s, next, std::memory_order_release, std::memory_order_relaxed));
    if (woken == 0 && (s & readers_waiting) != 0) detail::wake_all(state_);
  }

  detail::atomic<std::uint32_t> state_{0};
  detail::atomic<std::uint32_t> writer_notify_{0};
  detail::atomic<std::uint32_t> writers_{0};  // writers registered behind WW, until they lock or give up
};

static_assert(detail::in_model || sizeof(shared_mutex) == 12, "rouse::shared_mutex is three 32-bit words");

using shared_timed_mutex = shared_mutex;

}  // namespace rouse
