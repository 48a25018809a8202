// rouse/async/thread_pool.hpp — the work-stealing executor.
//
//   thread_pool            N worker threads that resume coroutines: a LIFO
//                          slot and a bounded FIFO ring per worker, a global
//                          injection queue, work stealing, idle workers that
//                          sleep, and the executor's timers
//   detail::pool_core<C>   the protocol itself, without threads (what the
//                          Relacy model in tests/model/ runs)
//
//   rouse::async::thread_pool pool;               // one worker per hardware thread
//   co_await pool.get_scheduler().schedule();      // continue on a worker
//   pool.schedule(h);                              // resume h on a worker, later
//
// Contract (executor.hpp's, and the following)
// - schedule(h): h is resumed later, exactly once, on one of the workers;
//   never inside schedule(). Any thread may call it. From a worker of this
//   pool (a coroutine waking another) h goes to that worker's LIFO slot and
//   runs next, after the current coroutine suspends: message passing between
//   two coroutines stays on one worker, in cache. The slot's previous
//   occupant moves to the back of the worker's ring, where idle workers may
//   steal it. Every other schedule goes to the global queue.
// - Timers: add_timer(e) has e.fire(&e) called on a worker once
//   steady_clock has reached e.deadline, never before; cancel_timer(e) is
//   true when it removed e before it fired, false once it fired or is
//   firing (fire runs exactly once then; keep e alive until it has).
// - A coroutine must not let an exception escape resume() (rouse's task
//   stores it): a worker is noexcept, so that is std::terminate. A worker
//   must not block on work of its own pool (a coroutine in its LIFO slot is
//   not stealable, and waits for it).
// - Destruction: waits until every coroutine scheduled so far, and every one
//   they schedule in turn, has run and the queues are empty; then the
//   workers stop and are joined. A coroutine suspended on something else
//   (a channel, a timer) is not waited for. It is misuse, diagnosed in
//   debug builds (rouse::async::thread_pool: misuse: ...), to destroy the
//   pool from one of its own workers, with timers still pending when the
//   workers stop, or while another thread may still schedule onto it (a
//   schedule that lands after the workers stopped is never run; a debug
//   build catches it when it lands before the destructor's last check).
//
// Size: sizeof(thread_pool) is about 5 KiB (mostly the timer wheel's
// heads), plus per worker a thread and one 128-byte-aligned block of 2,304
// bytes on 64-bit targets (a 256-slot ring; static_asserted). Fairness: FIFO per ring and for the global queue; the LIFO slot
// runs at most pool_lifo_run_cap coroutines in a row before the ring gets a
// turn, and a worker looks at the global queue first every
// pool_global_interval runs, so neither local ping-pong nor local work
// starves the rest. The LIFO slot is not stealable and filling it wakes
// nobody: a coroutine woken by one that runs on without suspending waits
// for it, even while other workers sleep. A rouse task whose awaits keep
// completing at once yields after detail::coop_budget of them when its
// worker has other work (task.hpp, "Budget": others_waiting() looks at the
// LIFO slot, the ring, the global queue and the timers; schedule_yield()
// puts the task at the back of the ring, where others may steal it, and
// makes the worker's next pick look at the global queue and fire due
// timers first); a long computation or a blocking call between awaits
// still holds the slot: it belongs in its own task, or should `co_await
// this_task::yield()` now and then. Allocation: none per schedule (the
// global queue grows by doubling, from 1024 slots, under its lock; a failed
// growth terminates, schedule() being noexcept).
//
// Cost with nobody waiting: a schedule from a worker into its empty LIFO
// slot is two thread-local reads and two stores; otherwise one ring push
// (one release store) or, from a thread outside the pool, one global-queue
// push (a rouse::mutex) inside a count of calls in progress (two RMWs: the
// destructor waits for a call still waking a worker after the coroutine it
// pushed has run), then one
// seq_cst fence and one load of the idle state word: no system call while
// every worker is awake or one of them is searching for work. A schedule
// while workers sleep and none searches wakes exactly one (one futex wake).
// An idle pool uses no CPU: a worker that finds nothing searches for
// thread_pool_idle_spin's budget, then sleeps on its own futex word.
//
// Why a bounded FIFO ring (tokio's local queue) and not a Chase-Lev deque:
// the LIFO slot already gives the locality a deque's owner end would give,
// so the rest of the worker's work should come in FIFO order (a deque's
// owner pops the newest: a self-rescheduling coroutine would starve the
// older ones); a fixed array needs no growth and no memory reclamation, a
// full ring spills half of itself to the global queue in one lock, and a
// thief takes half of a victim's ring with one compare-exchange.
//
// ---- The idle protocol --------------------------------------------------
//
// State word `state_` (32 bits):
//   bits 0-15   searching  workers looking for work (global queue, steals),
//                          plus workers woken but not yet running: a wake in
//                          flight counts, so a second schedule does not wake
//                          a second worker
//   bits 16-31  awake      workers not registered as sleepers
//
//   transition                        who                   searching  awake
//   try_begin_search                  an awake worker       +1
//   stop_searching (found work)       the searcher          -1
//   park: register as sleeper (B)     the worker, locked    -1 if it   -1
//                                                           searched
//   unpark: leave the sleepers        notifier or the       +1         +1
//                                     worker itself, locked
// `awake` changes only under idle_lock_, so there awake + sleepers == N.
//
// Each worker's park word:  0 awake,  1 parked (registered in sleepers_).
//   worker, locked:     awake -> parked   (registers)
//   unpark, locked:     parked -> awake   (the worker is then counted awake
//                                          and searching), then a futex wake
//   the worker sleeps while its word is parked (a timed sleep for the timer
//   holder); a wake it did not get (a time-out, or work it saw in its
//   re-check) it undoes itself, under the lock, if its word is still parked.
//
// The Dekker pair that makes a wake-up impossible to lose:
//   schedule:  push the task (P); (A) fence; load state_: wake one sleeper
//              if searching == 0 and awake < N
//   park:      (B) state_ RMW (awake - 1); fence; look at every queue:
//              if any holds work, unpark itself instead of sleeping
//   stop_searching: (B') state_ RMW (searching - 1); if it was the last
//              searcher: fence; look at every queue; if any holds work,
//              do schedule's wake step
// No lost wake-up, from (A)/(B) alone: either the schedule's load sees the
// parker's RMW (the parker is not counted awake, and a schedule that finds
// nobody awake always wakes one: searchers are awake), or the parker's
// re-check sees the task (the fences (A) and (B) are ordered one way or the
// other in the seq_cst order). A schedule that stays quiet therefore left
// its task to a worker counted awake, which either parks later ((B): it
// sees the task) or keeps running, finding it by its own queue, a steal,
// or its look at the global queue every pool_global_interval runs.
// (B') is for parallelism, not for safety: a schedule that stayed quiet
// because a worker was searching, when that searcher then finds other work,
// still gets a worker of its own (the last searcher re-checks and wakes one).
// Work that moves between queues (a batch from the global queue into a
// ring, half a ring stolen into another) is in neither for a moment, and a
// re-check then misses it. A worker that is not searching and moves a batch
// into its ring does schedule's wake step after it, as a local schedule
// does; a searcher's moves come before its (B') RMW, which releases them to
// the searching count's last RMW (acq_rel), whose re-check sees them. So
// while a worker sleeps, every task in a ring or the global queue has a
// worker coming for it: a task that blocks its worker holds up only what
// it must (the LIFO slot's task).
// tests/model/async_thread_pool_model.cpp runs this code under Relacy; a
// variant whose schedule skips the wake (model_fault::pool_spawn_skips_wake)
// deadlocks there, and so does one without fence (B), and one whose batch
// skips the wake (model_fault::pool_batch_skips_wake).
//
// Timers: the timer queue (detail/timer_queue.hpp) lives under idle_lock_.
// One sleeper at a time, the timer holder, sleeps with a deadline (the
// queue's next_deadline()); the others sleep untimed. A worker parking
// with no holder and timers pending becomes the holder. add_timer unparks
// the holder when the new deadline is earlier than the one it sleeps
// until. With no holder, a timer added from outside unparks a sleeper at
// once; one added by a worker marks that worker, which takes the role if
// it parks next (a coroutine sleeping in a loop costs no wake) and
// otherwise, before it resumes another coroutine, unparks a sleeper to
// take it (that coroutine may run for long). A holder that leaves the
// sleepers while timers remain is marked the same way. The cost of that
// bound on lateness: a holder woken for one timer while others wait hands
// the role on before running what it fired, one more wake per such
// wake-up (docs/benchmarks.md). Awake workers also fire due timers
// between coroutines (every pool_global_interval runs, and after a
// yield); a coroutine so fired goes to the ring, stealable, since the
// worker has picked its next coroutine already. Expired timers are taken
// under the lock, one at a time (collect_expired(steady_clock::now()):
// never early), and fired outside it.
// Leaving the sleepers gives the role up; the next parker takes it.
//
// Memory ordering: everything before schedule(h) happens-before h resumes
// (the ring's release/acquire tail, the global queue's lock, a thief's
// acquire of the ring it steals from); everything before add_timer(e)
// happens-before fire(&e) (the lock).
#pragma once

#include <atomic>
#include <bit>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "rouse/async/detail/timer_queue.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/mutex.hpp"

#if !defined(ROUSE_MODEL_RELACY)
#include <thread>
#endif

namespace rouse::async::detail {

// ---- tuning (docs/tuning.md has no thread_pool section yet) ---------------

// tokio's local queue size: 2 KiB of handles per worker absorbs a burst; beyond it half spills to the global queue.
inline constexpr std::uint32_t pool_local_capacity = 256;
// tokio's LIFO cap: a ping-pong pair keeps its worker, yet the ring gets a turn at least every 4th run.
inline constexpr std::uint32_t pool_lifo_run_cap = 3;
// tokio's global queue interval: a worker looks at the global queue first every 61 runs (a prime, not a program's period).
inline constexpr std::uint32_t pool_global_interval = 61;
// The global queue's first capacity: 8 KiB, the burst one external thread posts without a growth.
inline constexpr std::size_t pool_global_initial = 1024;
// A searching worker polls the queues for 2 x wake_cost in [2, 50] us (2-competitive: search about as long as the wake-up a sleep would cost), polls 8..64 pauses apart, a yield every 16th poll.
inline constexpr ::rouse::detail::spin_policy thread_pool_idle_spin{.pause_polls = ::rouse::detail::spin_policy::unbounded,
                                                                    .first_gap = 8,
                                                                    .max_gap = 64,
                                                                    .pause_yield_every = 16,
                                                                    .budget_multiple = 2,
                                                                    .budget_min = std::chrono::microseconds(2),
                                                                    .budget_max = std::chrono::microseconds(50),
                                                                    .min_polls = 2,
                                                                    .clock_every = 4,
                                                                    .model_polls = 1};

// ---- a worker's ring ----------------------------------------------------------
//
// Bounded, single producer (the owner pushes at tail), many consumers (the
// owner pops and thieves steal at head, by compare-exchange on head).
// Slot i holds the task pushed as number i (mod Capacity); [head, tail) is
// the content. A consumer reads its slots first and claims them with its
// compare-exchange after: the owner overwrites a slot only once it saw head
// past it, so a consumer whose compare-exchange succeeds read what was
// pushed, and one that read an overwritten slot fails its compare-exchange.
// Indices are 32-bit and wrap; a thief would have to sleep through 2^32
// pushes between its read of head and its compare-exchange to be fooled.
template <std::uint32_t Capacity>
class pool_ring {
  static_assert(Capacity >= 2 && std::has_single_bit(Capacity), "a power of two");
  static constexpr std::uint32_t mask = Capacity - 1;

 public:
  static constexpr std::uint32_t half = Capacity / 2;

  pool_ring() noexcept {
    for (auto& s : slots_) s.store(nullptr, std::memory_order_relaxed);  // Ordering: relaxed, before any thread starts
  }
  pool_ring(const pool_ring&) = delete;
  pool_ring& operator=(const pool_ring&) = delete;

  // Owner only. False when full (the caller spills).
  bool try_push(void* task) noexcept {
    std::uint32_t const t = tail_.load(std::memory_order_relaxed);  // Ordering: relaxed, only the owner stores tail
    // Ordering: acquire, pairs with the release of the consumers'
    // compare-exchange: they read the slots below head before we overwrite.
    std::uint32_t const h = head_.load(std::memory_order_acquire);
    if (t - h >= Capacity) return false;
    slots_[t & mask].store(task, std::memory_order_relaxed);  // Ordering: relaxed, published by the tail store below
    // Ordering: release, pairs with the acquire loads of tail in pop() and
    // steal_into(): the slot, and what the task's coroutine wrote, are seen.
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only, when try_push() failed: claims the older half into `out`
  // (`half` entries). False when a thief made room meanwhile.
  bool take_half(void** out) noexcept {
    std::uint32_t const t = tail_.load(std::memory_order_relaxed);  // Ordering: relaxed, the owner's own
    // Ordering: acquire, as in try_push (the slots we claim were consumed by nobody).
    std::uint32_t h = head_.load(std::memory_order_acquire);
    if (t - h < Capacity) return false;
    // Ordering: release, as in pop(); the claimed slots were written by this
    // thread, and a thief that read them fails its compare-exchange.
    if (!head_.compare_exchange_strong(h, h + half, std::memory_order_release, std::memory_order_relaxed))
      return false;
    for (std::uint32_t i = 0; i < half; ++i)
      out[i] = slots_[(h + i) & mask].load(std::memory_order_relaxed);  // Ordering: relaxed, the owner's own writes
    return true;
  }

  // Owner only: the oldest task, or nullptr.
  void* pop() noexcept {
    std::uint32_t h = head_.load(std::memory_order_relaxed);  // Ordering: relaxed, an index; the compare-exchange checks it
    for (;;) {
      std::uint32_t const t = tail_.load(std::memory_order_relaxed);  // Ordering: relaxed, the owner's own
      if (h == t) return nullptr;
      void* const task = slots_[h & mask].load(std::memory_order_relaxed);  // Ordering: relaxed, the owner's own write
      // Ordering: release: a thief that acquires this head sees the tail
      // store that preceded it (so it never reads tail < head); the owner's
      // own later overwrite of the slot follows in program order.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release, std::memory_order_relaxed)) return task;
    }
  }

  // Called by the owner of `dst` (which it found empty): moves the older
  // half of this ring (rounded up) into dst and returns the oldest of them
  // to run now; nullptr when this ring is empty.
  void* steal_into(pool_ring& dst) noexcept {
    std::uint32_t const dst_tail = dst.tail_.load(std::memory_order_relaxed);  // Ordering: relaxed, our own ring
    // Ordering: acquire, as in try_push: thieves of dst read the slots we overwrite below.
    std::uint32_t const dst_room = Capacity - (dst_tail - dst.head_.load(std::memory_order_acquire));
    std::uint32_t h = head_.load(std::memory_order_acquire);  // Ordering: acquire, with the failure order below
    for (;;) {
      // Ordering: acquire, pairs with the release store of tail in try_push():
      // the slots below it, and the coroutines they name, are visible.
      std::uint32_t const t = tail_.load(std::memory_order_acquire);
      std::uint32_t const n = t - h;
      if (n == 0) return nullptr;
      if (n > Capacity) {  // h is older than t's view: read head again
        h = head_.load(std::memory_order_acquire);
        continue;
      }
      std::uint32_t take = n - n / 2;
      if (take > dst_room + 1) take = dst_room + 1;
      void* const first = slots_[h & mask].load(std::memory_order_relaxed);  // Ordering: relaxed, after tail's acquire
      for (std::uint32_t i = 1; i < take; ++i)
        dst.slots_[(dst_tail + i - 1) & mask].store(slots_[(h + i) & mask].load(std::memory_order_relaxed),
                                                    std::memory_order_relaxed);  // Ordering: relaxed, published by dst's tail
      // Ordering: acq_rel: release pairs with the owner's acquire of head in
      // try_push() (our reads of the slots come before it overwrites them);
      // acquire (and on failure) keeps h current with other thieves'.
      if (head_.compare_exchange_weak(h, h + take, std::memory_order_acq_rel, std::memory_order_acquire)) {
        // Ordering: release, pairs with the acquire of dst's tail by dst's thieves.
        if (take > 1) dst.tail_.store(dst_tail + take - 1, std::memory_order_release);
        return first;
      }
    }
  }

  // Any thread: whether the ring looked empty. After fence (B) this is the
  // re-check of the idle protocol (see the header), so it may use relaxed loads.
  bool looks_empty() const noexcept {
    // Ordering: relaxed, ordered by the caller's seq_cst fence (A)/(B).
    return tail_.load(std::memory_order_relaxed) == head_.load(std::memory_order_relaxed);
  }

  // Owner only: free slots now (thieves may only add to them).
  std::uint32_t room() const noexcept {
    // Ordering: relaxed tail (our own); acquire head, as in try_push.
    return Capacity - (tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_acquire));
  }

 private:
  // head_ is written by every consumer, tail_ only by the owner: apart, so a
  // thief's compare-exchange does not slow the owner's pushes.
  alignas(64) ::rouse::detail::atomic<std::uint32_t> head_{0};
  alignas(64) ::rouse::detail::atomic<std::uint32_t> tail_{0};
  ::rouse::detail::atomic<void*> slots_[Capacity];
};

// ---- the global (injection) queue -------------------------------------------
//
// A FIFO of tasks under a rouse::mutex, in a ring that doubles when full.
// size_ mirrors the count for lock-free emptiness checks; it is stored under
// the lock, and the idle protocol orders it with its fences (A)/(B).
class pool_global_queue {
 public:
  explicit pool_global_queue(std::size_t capacity) : slots_(std::bit_ceil(capacity < 2 ? 2 : capacity)) {}
  pool_global_queue(const pool_global_queue&) = delete;
  pool_global_queue& operator=(const pool_global_queue&) = delete;

  // `count` tasks then `last` (when not nullptr), in that order.
  void push(void* const* tasks, std::size_t count, void* last) noexcept {
    std::lock_guard<rouse::mutex> g(lock_);
    std::size_t const total = count_ + count + (last != nullptr ? 1 : 0);
    if (total > slots_.size()) grow(total);
    std::size_t const mask = slots_.size() - 1;
    for (std::size_t i = 0; i < count; ++i) slots_[(head_ + count_ + i) & mask] = tasks[i];
    if (last != nullptr) slots_[(head_ + total - 1) & mask] = last;
    count_ = total;
    // Ordering: relaxed, under the lock; fence (A) orders it for the idle protocol.
    size_.store(count_, std::memory_order_relaxed);
  }

  // Takes up to min(max, count / shares + 1) of the oldest tasks into out.
  std::size_t take(void** out, std::size_t max, std::size_t shares) noexcept {
    std::lock_guard<rouse::mutex> g(lock_);
    std::size_t n = count_ / shares + 1;
    if (n > count_) n = count_;
    if (n > max) n = max;
    std::size_t const mask = slots_.size() - 1;
    for (std::size_t i = 0; i < n; ++i) out[i] = slots_[(head_ + i) & mask];
    head_ = (head_ + n) & mask;
    count_ -= n;
    size_.store(count_, std::memory_order_relaxed);  // Ordering: relaxed, under the lock
    return n;
  }

  // A hint outside the lock; exact after fence (B) for what (A) published.
  bool looks_empty() const noexcept { return size_.load(std::memory_order_relaxed) == 0; }  // Ordering: see above

 private:
  [[gnu::noinline, gnu::cold]] void grow(std::size_t needed) {
    std::vector<void*> bigger(std::bit_ceil(needed));
    std::size_t const mask = slots_.size() - 1;
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = slots_[(head_ + i) & mask];
    slots_.swap(bigger);
    head_ = 0;
  }

  rouse::mutex lock_;
  std::vector<void*> slots_;  // under lock_
  std::size_t head_ = 0;      // under lock_
  std::size_t count_ = 0;     // under lock_
  ::rouse::detail::atomic<std::size_t> size_{0};
};

// ---- the pool's protocol ----------------------------------------------------

template <std::uint32_t Capacity>
class pool_core {
  using clock = std::chrono::steady_clock;
  using ring = pool_ring<Capacity>;

  static constexpr std::uint32_t searching_one = 1;
  static constexpr std::uint32_t awake_one = std::uint32_t{1} << 16;
  static constexpr std::uint32_t searching_of(std::uint32_t s) noexcept { return s & 0xffffu; }
  static constexpr std::uint32_t awake_of(std::uint32_t s) noexcept { return s >> 16; }

  static constexpr std::uint32_t word_awake = 0;
  static constexpr std::uint32_t word_parked = 1;
  static constexpr std::uint32_t no_worker = ~std::uint32_t{0};

 public:
  // The most workers the 16-bit counts of state_ hold.
  static constexpr unsigned max_workers = 0xffff;

  // 128 bytes apart: the ring's hot words and the park word of one worker
  // do not share a line (nor an adjacent-line prefetch pair) with another's.
  struct alignas(128) worker {
    ring queue;
    ::rouse::detail::atomic<std::uint32_t> park_word{word_awake};
    // Owned by the worker's thread:
    void* lifo = nullptr;            // runs next (not stealable)
    std::uint32_t lifo_runs = 0;     // LIFO runs in a row
    std::uint32_t ticks = 0;         // coroutines run
    std::uint32_t random = 0;        // xorshift state: where a steal starts
    bool searching = false;          // counted in state_'s searching
    bool yielded = false;            // a budget yield: the next pick looks at the global queue and the timers first
    bool timers_unwatched = false;   // timers nobody sleeps on (it added one, or held them): hand them on before running more
    std::uint32_t index = 0;
    const pool_core* owner = nullptr;
  };

  explicit pool_core(unsigned workers)
      : count_(workers == 0 ? 1u : (workers > max_workers ? max_workers : workers)),
        workers_(new worker[count_]),
        sleepers_(new std::uint32_t[count_]),
        global_(pool_global_initial),
        state_(static_cast<std::uint32_t>(count_) * awake_one) {
    for (std::uint32_t i = 0; i < count_; ++i) {
      workers_[i].index = i;
      workers_[i].random = 0x9e3779b9u * (i + 1);
      workers_[i].owner = this;
    }
  }
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  unsigned size() const noexcept { return count_; }
  worker& worker_at(unsigned i) noexcept { return workers_[i]; }
  bool owns(const worker& w) const noexcept { return w.owner == this; }

  // From worker `self` of this pool, on its own thread.
  void schedule_local(worker& self, void* task) noexcept {
    void* const previous = self.lifo;
    self.lifo = task;
    if (previous == nullptr) return;  // the slot was free: self runs it next, nobody else need look
    push_local(self, previous);
    // A searching worker re-checks when it stops searching (B').
    if (!self.searching) notify_parked();
  }

  // From worker `self`: whether other work waits for its thread (the LIFO
  // slot, its ring) or for any worker (the global queue).
  // A due timer counts (a clock read): the worker fires timers only between
  // resumes.
  bool others_waiting(const worker& self) const noexcept {
    return self.lifo != nullptr || !self.queue.looks_empty() || !global_.looks_empty() || timer_due();
  }

  // From worker `self`: `task` goes behind the LIFO slot and the ring's
  // work, where idle workers may steal it.
  void schedule_yield(worker& self, void* task) noexcept {
    self.yielded = true;
    push_local(self, task);
    // A searching worker re-checks when it stops searching (B').
    if (!self.searching) notify_parked();
  }

  // From any thread.
  void schedule_remote(void* task) noexcept {
    global_.push(nullptr, 0, task);
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::pool_spawn_skips_wake)) return;
    notify_parked();
  }

  // `self`: the calling worker of this pool, or nullptr from any other thread.
  void add_timer(timer_entry& e, worker* self) noexcept {
    std::uint32_t target = no_worker;
    {
      std::lock_guard<rouse::mutex> g(idle_lock_);
      timers_.insert(e);
      publish_next_timer_locked();
      if (timer_holder_ != no_worker) {
        if (e.deadline < timer_holder_deadline_) target = timer_holder_;  // it sleeps too long now
      } else if (self != nullptr) {
        // The adding worker holds the role until it runs something else:
        // it takes it when it parks, or hands it to a sleeper first.
        self->timers_unwatched = true;
      } else {
        target = pick_sleeper_locked();  // an awake worker may not look for a long time
      }
      if (target != no_worker) unpark_locked(target);
    }
    if (target != no_worker) ::rouse::detail::wake_one(workers_[target].park_word);
  }

  bool cancel_timer(timer_entry& e) noexcept {
    std::lock_guard<rouse::mutex> g(idle_lock_);
    bool const removed = timers_.erase(e);
    if (removed) publish_next_timer_locked();
    return removed;
  }

  // The worker's loop: returns once stop() was called and it finds no work.
  void run_worker(worker& w) noexcept {
    std::uint32_t& budget = ::rouse::async::detail::coop_left;  // (the thread's, looked up once)
    for (;;) {
      void* task = next_local(w);
      if (task == nullptr) {
        if (fire_due_timers()) continue;
        task = search(w);
        if (task == nullptr) {
          if (!park(w)) return;
          continue;
        }
      }
      if (w.searching) stop_searching(w);
      if (++w.ticks % pool_global_interval == 0 || w.yielded) {
        w.yielded = false;
        // A coroutine a fire scheduled here sits in the LIFO slot behind
        // `task`, which may run for long: to the ring, where others steal.
        if (fire_due_timers() && w.lifo != nullptr &&
            !::rouse::detail::model_fault_on(::rouse::detail::model_fault::pool_fired_stays_in_lifo)) {
          void* const fired = w.lifo;
          w.lifo = nullptr;
          (void)push_local(w, fired);
          notify_parked();
        }
      }
      if (w.timers_unwatched) hand_timers_on(w);
      budget = ::rouse::async::detail::coop_budget;
      std::coroutine_handle<>::from_address(task).resume();
    }
  }

  // Workers return from run_worker() once they find no work; sleepers are woken.
  void stop() noexcept {
    // Ordering: relaxed: the lock below orders it before any later park's
    // check, and a worker registered earlier is woken here.
    stop_.store(1, std::memory_order_relaxed);
    std::lock_guard<rouse::mutex> g(idle_lock_);
    while (sleeper_count_ != 0) {
      std::uint32_t const i = sleepers_[sleeper_count_ - 1];
      unpark_locked(i);
      ::rouse::detail::wake_one(workers_[i].park_word);  // once, at the end of the pool's life
    }
  }

  // After the workers returned (no thread runs the pool any more).
  bool global_empty() const noexcept { return global_.looks_empty(); }
  bool timers_empty() noexcept {
    std::lock_guard<rouse::mutex> g(idle_lock_);
    return timers_.empty();
  }

 private:
  // ---- the worker's own work ----

  void* next_local(worker& w) noexcept {
    if ((w.ticks % pool_global_interval == 0 || w.yielded) && !global_.looks_empty()) {
      if (void* const t = take_global(w)) return t;
    }
    if (w.lifo != nullptr) {
      void* const t = w.lifo;
      w.lifo = nullptr;
      if (w.lifo_runs < pool_lifo_run_cap) {
        ++w.lifo_runs;
        return t;
      }
      if (push_local(w, t)) notify_parked();  // the ring's turn; t waits behind it
    }
    w.lifo_runs = 0;
    return w.queue.pop();
  }

  // To the back of w's ring; when full, half of it and `task` go to the
  // global queue (true: the caller should notify).
  bool push_local(worker& w, void* task) noexcept {
    while (!w.queue.try_push(task)) {
      void* spill[ring::half];
      if (w.queue.take_half(spill)) {
        global_.push(spill, ring::half, task);
        return true;
      }
    }
    return false;
  }

  void* take_global(worker& w) noexcept {
    if (global_.looks_empty()) return nullptr;
    void* batch[ring::half];
    std::size_t room = w.queue.room();
    if (room > ring::half - 1) room = ring::half - 1;
    std::size_t const n = global_.take(batch, room + 1, count_);
    if (n == 0) return nullptr;
    for (std::size_t i = 1; i < n; ++i) (void)w.queue.try_push(batch[i]);  // fits: n <= room + 1
    // The rest of the batch left the global queue for a ring: as after a
    // local schedule, a sleeper must be woken for it, or it waits behind
    // batch[0] (which may run for long) while a worker parked in between
    // saw neither queue hold it. A searcher re-checks when it stops (B').
    if (n > 1 && !w.searching &&
        !::rouse::detail::model_fault_on(::rouse::detail::model_fault::pool_batch_skips_wake))
      notify_parked();
    return batch[0];
  }

  void* steal(worker& w) noexcept {
    if (count_ == 1) return nullptr;
    w.random ^= w.random << 13;
    w.random ^= w.random >> 17;
    w.random ^= w.random << 5;
    std::uint32_t const start = w.random % count_;
    for (std::uint32_t k = 0; k < count_; ++k) {
      std::uint32_t const v = (start + k) % count_;
      if (v == w.index) continue;
      if (void* const t = workers_[v].queue.steal_into(w.queue)) return t;
    }
    return nullptr;
  }

  // ---- searching ----

  bool try_begin_search(worker& w) noexcept {
    // Ordering: relaxed: searching decides only whom a schedule wakes, not
    // whether a wake-up can be lost ((A)/(B) decide that, on awake).
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (2 * searching_of(s) >= count_) return false;  // half the pool searches already (tokio's cap)
      if (state_.compare_exchange_weak(s, s + searching_one, std::memory_order_relaxed, std::memory_order_relaxed)) {
        w.searching = true;
        return true;
      }
    }
  }

  void* search(worker& w) noexcept {
    if (!w.searching && !try_begin_search(w)) return nullptr;
    ::rouse::detail::spinner spin(thread_pool_idle_spin);
    do {
      if (void* const t = take_global(w)) return t;
      if (void* const t = steal(w)) return t;
      if (fire_due_timers()) {
        if (void* const t = next_local(w)) return t;
      }
    } while (spin.next());
    return nullptr;
  }

  void stop_searching(worker& w) noexcept {
    w.searching = false;
    // (B') Ordering: the fence below pairs with (A) in notify_parked(): a
    // schedule that saw this worker searching and woke nobody pushed its
    // task before its fence (A). acq_rel: a searcher moved work into its
    // ring (a batch from the global queue, a steal) with no fence of its
    // own; its release here and the acquire of the searching count's last
    // RMW (here or in park()), which reads it, let that last one's re-check
    // see the work.
    std::uint32_t const before = state_.fetch_sub(searching_one, std::memory_order_acq_rel);
    if (searching_of(before) != 1) return;  // another searcher looks on (and re-checks in turn)
    ::rouse::detail::fence_seq_cst();  // (B')
    if (work_visible()) notify_parked();
  }

  // Whether any queue that a searcher could take from holds work. The
  // re-check of (B)/(B'): relaxed loads after the caller's fence.
  bool work_visible() const noexcept {
    if (!global_.looks_empty()) return true;
    for (std::uint32_t i = 0; i < count_; ++i)
      if (!workers_[i].queue.looks_empty()) return true;
    return false;
  }

  // ---- waking ----

  void notify_parked() noexcept {
    // (A) seq_cst fence: pairs with (B) in park() and (B') in
    // stop_searching(): the task pushed before it, or their RMW of state_
    // before the load below.
    ::rouse::detail::fence_seq_cst();
    std::uint32_t const s = state_.load(std::memory_order_relaxed);  // Ordering: relaxed, after fence (A)
    if (searching_of(s) != 0 || awake_of(s) == count_) return;  // someone looks: no system call
    wake_one_sleeper();
  }

  [[gnu::noinline]] void wake_one_sleeper() noexcept {
    std::uint32_t target;
    {
      std::lock_guard<rouse::mutex> g(idle_lock_);
      // Ordering: relaxed: awake changes only under this lock; a searcher
      // that began since makes the wake unneeded (it re-checks as (B')).
      std::uint32_t const s = state_.load(std::memory_order_relaxed);
      if (searching_of(s) != 0 || awake_of(s) == count_ || sleeper_count_ == 0) return;
      target = pick_sleeper_locked();
      unpark_locked(target);
    }
    ::rouse::detail::wake_one(workers_[target].park_word);
  }

  // The most recent sleeper that is not the timer holder, else the holder.
  std::uint32_t pick_sleeper_locked() const noexcept {
    if (sleeper_count_ == 0) return no_worker;
    for (std::uint32_t k = sleeper_count_; k-- > 0;)
      if (sleepers_[k] != timer_holder_) return sleepers_[k];
    return sleepers_[sleeper_count_ - 1];
  }

  void remove_sleeper_locked(std::uint32_t i) noexcept {
    for (std::uint32_t k = 0; k < sleeper_count_; ++k) {
      if (sleepers_[k] == i) {
        for (std::uint32_t j = k + 1; j < sleeper_count_; ++j) sleepers_[j - 1] = sleepers_[j];
        --sleeper_count_;
        return;
      }
    }
  }

  // parked -> awake for worker i, counted awake and searching; the caller
  // wakes its word after the lock.
  void unpark_locked(std::uint32_t i) noexcept {
    if (i == no_worker) return;
    remove_sleeper_locked(i);
    // Ordering: relaxed: awake changes under the lock; the woken worker
    // reads its word (below), not this.
    state_.fetch_add(awake_one + searching_one, std::memory_order_relaxed);
    if (timer_holder_ == i) {
      timer_holder_ = no_worker;
      // The timers left are nobody's now: like a worker that added one, it
      // keeps them if it parks next and hands them on before it runs
      // anything (what it fires may run for long). Written before the
      // release below, which the worker's acquire of its word (or the lock)
      // orders before its read.
      if (!timers_.empty()) workers_[i].timers_unwatched = true;
    }
    // Ordering: release, pairs with the acquire loads of the word in park()
    // and leave_park(): the worker sees itself unregistered.
    workers_[i].park_word.store(word_awake, std::memory_order_release);
  }

  // ---- sleeping ----

  // False: stop() was called and no work is left (the worker returns).
  bool park(worker& w) noexcept {
    bool timed = false;
    clock::time_point deadline{};
    {
      std::lock_guard<rouse::mutex> g(idle_lock_);
      // (B) Ordering: the fence below pairs with (A) in notify_parked().
      // acq_rel: as in stop_searching() (a searcher's work moved into its
      // ring is seen by the re-check below). Under the lock: awake +
      // sleepers stays N.
      state_.fetch_sub(awake_one + (w.searching ? searching_one : 0), std::memory_order_acq_rel);
      w.searching = false;
      w.timers_unwatched = false;  // it takes the role below, or another holds it
      // Ordering: relaxed: read by this thread, and by others under the lock.
      w.park_word.store(word_parked, std::memory_order_relaxed);
      sleepers_[sleeper_count_++] = w.index;
      if (timer_holder_ == no_worker && !timers_.empty()) {
        timer_holder_ = w.index;
        deadline = timers_.next_deadline();
        timer_holder_deadline_ = deadline;
        timed = true;
      }
    }
    ::rouse::detail::fence_seq_cst();  // (B): pairs with (A) in notify_parked()
    if (work_visible()) {
      leave_park(w);
      return true;
    }
    // Ordering: relaxed: stop() stored it before taking the lock we took
    // after it, or it finds us registered and wakes us.
    if (stop_.load(std::memory_order_relaxed) != 0) return false;
    for (;;) {
      // Ordering: acquire, pairs with the release store in unpark_locked().
      if (w.park_word.load(std::memory_order_acquire) != word_parked) break;
      if (timed) {
        if (::rouse::detail::wait_until(w.park_word, word_parked, deadline) == ::rouse::detail::wait_result::timed_out)
          break;
      } else {
        ::rouse::detail::wait(w.park_word, word_parked);
      }
    }
    leave_park(w);
    return true;
  }

  // After a sleep (or instead of it): if nobody unparked w, w unparks itself.
  // Either way w is then awake and searching.
  void leave_park(worker& w) noexcept {
    // Ordering: acquire, pairs with the release store in unpark_locked().
    if (w.park_word.load(std::memory_order_acquire) == word_parked) {
      std::lock_guard<rouse::mutex> g(idle_lock_);
      // Ordering: relaxed: under the lock, where others store it.
      if (w.park_word.load(std::memory_order_relaxed) == word_parked) unpark_locked(w.index);
    }
    w.searching = true;
  }

  // ---- timers ----

  // w added a timer when nobody held the role, or held it and woke with
  // timers left, and is about to run a coroutine, which may run for long:
  // a sleeper takes the role (it wakes, finds no work, and parks with the
  // timers' deadline).
  [[gnu::noinline]] void hand_timers_on(worker& w) noexcept {
    w.timers_unwatched = false;
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::pool_timer_not_handed_on)) return;
    std::uint32_t target = no_worker;
    {
      std::lock_guard<rouse::mutex> g(idle_lock_);
      if (timer_holder_ == no_worker && !timers_.empty()) target = pick_sleeper_locked();
      if (target != no_worker) unpark_locked(target);
    }
    if (target != no_worker) ::rouse::detail::wake_one(workers_[target].park_word);
  }

  void publish_next_timer_locked() noexcept {
    // Ordering: relaxed: a hint for the awake workers' checks; the lock decides.
    next_timer_ns_.store(timers_.next_deadline().time_since_epoch().count(), std::memory_order_relaxed);
  }

  bool timer_due() const noexcept {
    // Ordering: relaxed, a hint (see publish_next_timer_locked()).
    return ::rouse::detail::now<clock>().time_since_epoch().count() >= next_timer_ns_.load(std::memory_order_relaxed);
  }

  // Fires the expired timers, one at a time, each taken under the lock and
  // fired outside it (a fire may cancel a later timer of the round, which is
  // then still in the queue to be erased); true when it fired any. A
  // worker that comes in while another hands a round out (collect_expired
  // does nothing then) helps.
  bool fire_due_timers() noexcept {
    if (!timer_due()) return false;
    bool fired = false;
    idle_lock_.lock();
    timers_.collect_expired(::rouse::detail::now<clock>());  // never an entry due after now
    for (;;) {
      timer_entry* const due = timers_.pop_due();
      publish_next_timer_locked();
      idle_lock_.unlock();
      if (due == nullptr) return fired;
      due->fire(due);  // the entry may be gone after this
      fired = true;
      idle_lock_.lock();
    }
  }

  std::uint32_t const count_;
  std::unique_ptr<worker[]> const workers_;
  std::unique_ptr<std::uint32_t[]> const sleepers_;  // under idle_lock_
  std::uint32_t sleeper_count_ = 0;                  // under idle_lock_
  std::uint32_t timer_holder_ = no_worker;           // under idle_lock_
  clock::time_point timer_holder_deadline_{};        // under idle_lock_
  timer_queue timers_;                               // under idle_lock_
  pool_global_queue global_;
  rouse::mutex idle_lock_;
  alignas(64) ::rouse::detail::atomic<std::uint32_t> state_;
  ::rouse::detail::atomic<std::uint32_t> stop_{0};
  ::rouse::detail::atomic<std::int64_t> next_timer_ns_{clock::time_point::max().time_since_epoch().count()};
};

#if !defined(ROUSE_MODEL_RELACY)
// The calling thread's worker of some thread_pool (nullptr on other threads).
void*& thread_pool_worker_slot() noexcept;
#endif

}  // namespace rouse::async::detail

#if !defined(ROUSE_MODEL_RELACY)
namespace rouse::async {

class thread_pool final : public executor {
  using core = detail::pool_core<detail::pool_local_capacity>;

 public:
  // `workers` threads (1 if 0 is asked, at most core::max_workers). Throws
  // std::system_error when a thread cannot be started.
  explicit thread_pool(unsigned workers = std::thread::hardware_concurrency());
  // See the contract: runs what was scheduled, then joins the workers.
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  scheduler get_scheduler() noexcept { return scheduler(*this); }
  unsigned size() const noexcept { return core_.size(); }

  void schedule(std::coroutine_handle<> h) noexcept override {
    if (core::worker* const w = this_worker()) {
      core_.schedule_local(*w, h.address());
    } else {
      // Counted while inside: the coroutine pushed here may run, end, and
      // let the pool's owner destroy the pool while this call still wakes a
      // worker. Ordering: relaxed: the push's release carries it.
      remote_callers_.fetch_add(1, std::memory_order_relaxed);
      core_.schedule_remote(h.address());
      // The last touch of the pool. Ordering: release: pairs with the
      // destructor's acquire.
      remote_callers_.fetch_sub(1, std::memory_order_release);
    }
  }
  void add_timer(timer_entry& e) noexcept override {
    if (core::worker* const w = this_worker()) {
      core_.add_timer(e, w);
      return;
    }
    // Counted as a remote schedule(): the timer may fire at once and the
    // pool be destroyed while this call still wakes a worker.
    // Ordering: relaxed / release, as in schedule().
    remote_callers_.fetch_add(1, std::memory_order_relaxed);
    core_.add_timer(e, nullptr);
    remote_callers_.fetch_sub(1, std::memory_order_release);
  }
  bool cancel_timer(timer_entry& e) noexcept override { return core_.cancel_timer(e); }
  bool others_waiting() noexcept override {
    core::worker* const w = this_worker();
    return w != nullptr && core_.others_waiting(*w);
  }
  void schedule_yield(std::coroutine_handle<> h) noexcept override {
    if (core::worker* const w = this_worker())
      core_.schedule_yield(*w, h.address());
    else
      schedule(h);
  }

 private:
  // The calling thread's worker when it is one of this pool's and runs this
  // pool's code now (not a nested executor's, such as a sync_wait's loop).
  core::worker* this_worker() noexcept {
    void* const slot = detail::thread_pool_worker_slot();
    if (slot == nullptr || current_executor() != this) return nullptr;
    auto* const w = static_cast<core::worker*>(slot);
    return core_.owns(*w) ? w : nullptr;
  }
  void run(unsigned index) noexcept;

  core core_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint32_t> remote_callers_{0};  // schedule()/add_timer() calls from other threads in progress
};

static_assert(alignof(detail::pool_core<detail::pool_local_capacity>::worker) == 128);
static_assert(sizeof(void*) != 8 || sizeof(detail::pool_core<detail::pool_local_capacity>::worker) == 2304);

}  // namespace rouse::async
#endif
