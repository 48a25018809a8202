// rouse/pool/dispatch.hpp — the protocol of rouse::pool: one futex word that
// dispatches a job, a completion word, and a caller lock.
//
// rouse::detail::pool_dispatch is the synchronization core of rouse::pool
// (rouse/pool/pool.hpp), kept apart so the model test
// (tests/model/pool_model.cpp) runs this exact code under Relacy. Users call
// rouse::pool, never this class.
//
// Roles. One pool has W = N-1 worker threads and, per job, one caller thread.
// A job is type-erased as {invoke, context} and is called once for every
// index 0..W as invoke(context, index, N): index 0 by the caller, indices
// 1..W are W tasks that whoever is free claims from the dispatch word —
// normally one per worker, but a worker that finished early, or the caller
// once its own share is done, takes a task no worker has claimed yet, so a
// worker that is asleep, or descheduled before it claims, does not hold the
// job back (one descheduled after claiming holds back its task; a range cut
// into pieces limits that to a piece: rouse/pool/pieces.hpp).
//
// Lifecycle. run_job() may be called by any number of threads, serialized by
// the caller lock; every worker thread calls worker_loop() once; stop() is
// called once, after the last job, and makes every worker_loop() return.
// Misuse: running a job after stop(), or more workers than max_workers, is
// reported in debug builds (ROUSE_CHECK_USAGE) and undefined otherwise.
//
// Size: three 128-byte blocks (static_assert below): the dispatch word with
// the job it publishes, the completion word, and the caller lock with the
// error slot. 128 rather than 64 because Intel's adjacent-line prefetcher
// pairs 64-byte lines, which would make the words share traffic again.
//
// Fairness: outside callers queue on a plain futex lock (no FIFO order).
// Tasks go to whoever claims first. The lock is not rouse::mutex: it is
// held for a whole job, which runs on every CPU the pool has, so a second
// caller sleeps at once instead of spinning rouse::mutex's wake cost's worth
// (up to 200 µs) on a CPU a worker needs.
//
// Cost of a job when every worker is spinning: the caller makes one
// exchange on the dispatch word and a lock/unlock pair; each worker makes
// one fetch_sub to claim and one fetch_sub to report. No system call. When
// workers sleep: one FUTEX_WAKE (wake_all) and one sched_yield for the whole
// job, plus one wake_one if the caller itself went to sleep waiting for the
// last worker. How long each thread polls before sleeping, and how threads
// keep off each other's CPU: pool_adaptive_spin and pool_placement below.
//
// Across processes: no (the words are process-private futexes).
//
// The dispatch word: 32 bits read as a signed count v.
//
//   v                          state
//   > 0                        a job is published; v of its tasks are unclaimed
//   (-2^27, 0]                 idle: no unclaimed task; nobody asleep
//   (-2^29, -2^27]             idle, and a worker may be asleep on the word
//                              (set to sleepers_value = -2^28)
//   <= -2^29                   stop: workers exit (set to stop_value = -2^30); final
//
//   transition                                        by
//   idle or sleepers -> W   (exchange; wake_all if it was sleepers)  caller: publish
//   v -> v-1                (fetch_sub; a task iff v > 0,            anyone: claim
//                            and its index is v)
//   idle -> sleepers_value  (CAS, then sleep on the value seen)      worker, before sleeping
//   idle or sleepers -> stop_value (exchange; wake_all)              stop()
//
// A claim is one fetch_sub, never a CAS loop. A thread that saw v > 0 and
// lost the race to the last task decrements an idle, sleepers or stop value
// instead: harmless, because each region is 2^27 wide and at most a few
// such late claims per thread happen between two publishes, and the next
// publish (an exchange) overwrites the count. This is what lets a finished
// worker go straight back to waiting, instead of the book's "spin until
// every task is claimed" before reporting: a worker can claim a second task
// of the same job only if it is really unclaimed.
//
// The completion word (32 bits): bit 31 C = the caller sleeps on it; bits
// 0..30 = tasks not yet reported. The caller sets it to W before
// publishing; each task's report is one fetch_sub; the one that takes the
// count to 0 with C set wakes the caller.
//
// Memory ordering: the caller writes the job descriptor, the failure flag
// and the completion count, then publishes with a release exchange of the
// dispatch word; a claim is an acquire fetch_sub of that word (the other
// claims are read-modify-writes, so they continue the release sequence), so
// everything before run_job() happens-before every invoke(). Each task is
// reported with a release fetch_sub of the completion word, and the
// caller's wait ends with an acquire load of it, so everything every
// invoke() did happens-before run_job() returns (this is how reduction
// slots and the error are read).
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <utility>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse::detail {

// A job, type-erased: called once per participant.
struct pool_job {
  void (*invoke)(void* context, unsigned index, unsigned count) = nullptr;
  void* context = nullptr;
};

// How long a thread polls a word before it sleeps on it: detail::pool_spin
// (64 polls with a pause, then polls with a yield, until the budget the
// caller gives is spent; the clock is read once the first poll failed, then
// every 16 polls; under Relacy the budget counts polls, so a model can
// explore the spinning path deterministically). A yield poll only decides
// when to re-check: the thread waited for may be queued behind this one on
// its CPU.

// How long a worker polls for the next job before it sleeps: twice the
// delay it measured, on its recent sleeps, between being woken and running
// (a running average), kept within [spin, max_spin] of pool_options.
//
// Why: spinning for about as long as sleeping and being woken costs is the
// classic 2-competitive rule: never more than twice the better of the two.
// That cost is not a constant (a hand-off between two running CPUs against
// the wake-up of an idle vCPU differ by 10x or more), and with a fixed
// budget below its own wake-up a worker that sleeps between jobs never
// catches up and the pool runs at sequential speed; the measured budget
// lets it spin through the next gap and stay in step (evidence:
// docs/pool.md, "Spin budget").
//
// Measuring: the waker stamps the time (one clock read, only on the path
// that makes the wake system call anyway); the woken thread takes a sample
// if the stamp is later than the moment it went to sleep (so it is this
// sleep's wake, not an older one) and below a sanity bound.
class pool_adaptive_spin {
 public:
  pool_adaptive_spin(std::chrono::nanoseconds min, std::chrono::nanoseconds max) noexcept
      : min_(min.count()), max_(max.count() > min.count() ? max.count() : min.count()) {}

  std::chrono::nanoseconds budget() const noexcept {
    std::int64_t const b = 2 * estimate_;
    return std::chrono::nanoseconds(b < min_ ? min_ : b > max_ ? max_ : b);
  }

  // Nanoseconds on the steady clock (under Relacy it stands still: no
  // sample is taken).
  static std::int64_t now() noexcept { return detail::now_ns(); }

  // Call right before sleeping.
  void sleeping() noexcept { slept_at_ = now(); }

  // Call right after waking, with the waker's stamp (0: none yet).
  void woken(std::int64_t stamp) noexcept {
    if (max_ == min_ || stamp <= slept_at_) return;  // fixed budget, or not this sleep's wake
    std::int64_t const delay = now() - stamp;
    if (delay < 0 || delay > sample_limit) return;
    estimate_ += (delay - estimate_) / 4;
  }

 private:
  static constexpr std::int64_t sample_limit = 50'000'000;  // 50 ms: a stall, not a hand-off

  std::int64_t min_, max_;
  std::int64_t estimate_ = 0;
  std::int64_t slept_at_ = 0;
};

// Keeps a thread off the CPU of the thread it has to run beside: a worker
// off its caller's, a woken caller off the reporter's that woke it.
//
// Why: Linux places a woken thread near its waker, and looks for an idle
// CPU only among those that share the waker's last-level cache. Where the
// kernel sees no shared cache between CPUs (some VMs, multi-die parts), a
// worker woken by the caller, or started by it, lands on the caller's CPU,
// waits there for the rest of the caller's time slice, then time-shares it
// while the other CPUs idle: every job runs at sequential speed (evidence:
// docs/pool.md, "Placement").
//
// What: a thread that finds itself on the other's CPU (recorded by that
// thread with a relaxed store: a hint) moves itself off it
// (platform::move_off_cpu: its affinity mask is narrowed, then restored,
// so the user's mask stands). One that keeps finding itself there (more
// runnable threads than CPUs, a mask of one CPU) backs off: after each move
// it skips the next 1, 2, 4, ... up to 64 co-located observations, and an
// observation elsewhere resets the backoff. Cost when placement is right:
// one read of the CPU number (rseq, no system call) per observation.
class pool_placement {
 public:
  static constexpr std::uint32_t max_skip = 64;

  static std::int32_t current_cpu() noexcept { return detail::current_cpu(); }

  void avoid(std::int32_t caller_cpu) noexcept {
    if (caller_cpu < 0 || current_cpu() != caller_cpu) {
      skip_ = 0;
      next_skip_ = 1;
      return;
    }
    if (skip_ > 0) {
      --skip_;
      return;
    }
    (void)detail::move_off_cpu(caller_cpu);
    skip_ = next_skip_;
    if (next_skip_ < max_skip) next_skip_ *= 2;
  }

 private:
  std::uint32_t skip_ = 0;
  std::uint32_t next_skip_ = 1;
};

class pool_dispatch {
 public:
  // Dispatch word values and regions (see the table above).
  static constexpr std::uint32_t idle_value = 0;
  static constexpr std::uint32_t sleepers_value = 0xF000'0000u;  // -2^28
  static constexpr std::uint32_t stop_value = 0xC000'0000u;      // -2^30
  static constexpr bool has_task(std::uint32_t v) noexcept { return signed_of(v) > 0; }
  static constexpr bool is_stop(std::uint32_t v) noexcept { return signed_of(v) <= -(std::int32_t{1} << 29); }
  static constexpr bool is_sleepers(std::uint32_t v) noexcept {
    return signed_of(v) <= -(std::int32_t{1} << 27) && !is_stop(v);
  }
  // Completion word bits.
  static constexpr std::uint32_t caller_sleeps_bit = 0x8000'0000u;  // C
  static constexpr std::uint32_t pending_mask = 0x7fff'ffffu;
  // Caller lock states.
  static constexpr std::uint32_t unlocked = 0, locked = 1, locked_contended = 2;

  // Far below the 2^27 slack of each region (late claims) and the count range.
  static constexpr unsigned max_workers = 1u << 20;

  pool_dispatch(unsigned workers, std::chrono::nanoseconds spin, std::chrono::nanoseconds max_spin = {}) noexcept
      : workers_(workers), spin_(spin), max_spin_(max_spin > spin ? max_spin : spin) {
    ROUSE_CHECK_USAGE(workers <= max_workers, "rouse::pool", "more than 2^20 worker threads");
  }
  pool_dispatch(const pool_dispatch&) = delete;
  pool_dispatch& operator=(const pool_dispatch&) = delete;

  unsigned workers() const noexcept { return workers_; }
  unsigned participants() const noexcept { return workers_ + 1; }
  std::chrono::nanoseconds spin() const noexcept { return spin_; }
  std::chrono::nanoseconds max_spin() const noexcept { return max_spin_; }

  // True once a participant of the running job has failed: the others stop
  // early. Cheap: a relaxed load of a line that only changes on failure.
  bool stopping() const noexcept {
    // Ordering: relaxed: a hint to stop early; the error itself reaches the
    // caller through the completion word.
    return failed_.load(std::memory_order_relaxed) != 0;
  }

  // Records the failure of one participant; the first one's error is kept.
  void fail(std::exception_ptr error) noexcept {
    // Ordering: relaxed: the flag only elects the one writer of error_; the
    // caller reads error_ after the acquire load that ends wait_done(),
    // which pairs with this task's release report (or is the same thread).
    if (failed_.exchange(1, std::memory_order_relaxed) == 0) error_ = std::move(error);
  }

  // ---- caller side ------------------------------------------------------

  // Runs `job` for every index (the calling thread does index 0 and any
  // task still unclaimed after it) and returns once every task has been
  // reported; then rethrows the first error a participant raised.
  void run_job(pool_job job) {
    lock_callers();
    ROUSE_CHECK_USAGE(!stopped_, "rouse::pool", "a job was run after the pool was stopped");
    if (workers_ == 0) {
      failed_.store(0, std::memory_order_relaxed);  // Ordering: relaxed: this thread alone
      execute(job, 0);
    } else {
      publish(job);
      execute(job, 0);
      help();
      wait_done();
    }
    std::exception_ptr error = take_error();
    unlock_callers();
    if (error) std::rethrow_exception(std::move(error));
  }

  // Makes every worker_loop() return. Call once, with no job running; the
  // caller lock stays held so that no job can start afterwards.
  void stop() noexcept {
    lock_callers();
    stopped_ = true;
    // idle or sleepers -> stop. Ordering: release: nothing new is
    // published, but the workers' exit is ordered after the last job.
    std::uint32_t const old = word_.exchange(stop_value, std::memory_order_release);
    ROUSE_CHECK_USAGE(!has_task(old) && !is_stop(old), "rouse::pool", "internal: stop() while a job is running");
    (void)old;
    // Always wake: once per pool, and cheaper than reasoning about a worker
    // between its idle -> sleepers CAS and its sleep.
    wake_all(word_);
  }

  // ---- worker side ------------------------------------------------------

  // A worker thread's whole life: run tasks until stop().
  void worker_loop() {
    pool_placement placement;
    pool_adaptive_spin spin(spin_, max_spin_);
    while (worker_step(placement, spin)) {
    }
  }

  // Waits for a task (or the stop) and runs it: false once stopping.
  bool worker_step(pool_placement& placement, pool_adaptive_spin& spin) {
    std::uint32_t const seen = wait_for_task(spin, placement);
    if (is_stop(seen)) return false;
    placement.avoid(caller_cpu_.load(std::memory_order_relaxed));  // Ordering: relaxed: a hint
    unsigned const index = claim();
    if (index != 0) {
      // Read after the acquire claim, which pairs with the release publish:
      // this is the descriptor of the job whose task was claimed.
      execute(current_job(), index);
      report();
    }
    return true;
  }

  // Waits (spin, then sleep) until the word shows a task or the stop;
  // returns what it saw.
  std::uint32_t wait_for_task(pool_adaptive_spin& adaptive, pool_placement& placement) {
    spinner spin(detail::pool_spin, adaptive.budget());
    for (;;) {
      // Ordering: relaxed: the claim that follows is the acquire that
      // synchronizes with the publish.
      std::uint32_t v = word_.load(std::memory_order_relaxed);
      if (has_task(v) || is_stop(v)) return v;
      if (spin.next()) {
        // Polling with yields on the caller's CPU only delays the caller.
        if (spin.yielding()) placement.avoid(caller_cpu_.load(std::memory_order_relaxed));  // Ordering: a hint
        continue;
      }
      if (!is_sleepers(v)) {
        // idle -> sleepers: announce a sleeper first. If a publish came
        // in between, the CAS fails and the loop sees the job.
        // Ordering: relaxed: the word's modification order is the whole
        // handshake (the publisher's exchange reads sleepers, or the CAS
        // fails and we re-read).
        if (!word_.compare_exchange_weak(v, sleepers_value, std::memory_order_relaxed)) continue;
        v = sleepers_value;
      }
      adaptive.sleeping();
      wait(word_, v);
      // Ordering: relaxed: a timing hint, read after the wake.
      adaptive.woken(wake_stamp_.load(std::memory_order_relaxed));
    }
  }

  // One fetch_sub: the index (1..W) of the task taken, or 0 if the last one
  // went to someone else first (see "A claim is one fetch_sub" above).
  unsigned claim() {
    // v -> v-1. Ordering: acquire: pairs with the release exchange in
    // publish() (earlier claims continue its release sequence), so the job
    // descriptor and the caller's preparation are visible.
    std::uint32_t const old = word_.fetch_sub(1, std::memory_order_acquire);
    return has_task(old) ? old : 0;
  }

  // Reports one task finished. After this the task's thread no longer
  // touches the job (only members of the pool).
  void report() {
    // Ordering: release: pairs with the acquire load in wait_done(); this
    // publishes the task's results and error to the caller.
    std::uint32_t const old = pending_.fetch_sub(1, std::memory_order_release);
    if (old == (1 | caller_sleeps_bit)) {
      // Ordering: relaxed: a placement hint for the caller.
      reporter_cpu_.store(pool_placement::current_cpu(), std::memory_order_relaxed);
      wake_one(pending_);
    }
  }

  // ---- the steps of run_job(), public for the model tests ---------------

  // Runs one index of the job, unless the job already failed.
  void execute(pool_job const& job, unsigned index) noexcept {
    if (stopping()) return;  // another participant failed: skip what has not started
    try {
      job.invoke(job.context, index, workers_ + 1);
    } catch (...) {
      fail(std::current_exception());
    }
  }

  void publish(pool_job job) {
    unsync_ref(invoke_) = job.invoke;
    unsync_ref(context_) = job.context;
    // Ordering: relaxed: a placement hint, never part of the hand-off.
    caller_cpu_.store(pool_placement::current_cpu(), std::memory_order_relaxed);
    // Ordering (these two): relaxed: published by the release exchange
    // below, which every claim acquires.
    failed_.store(0, std::memory_order_relaxed);
    pending_.store(workers_, std::memory_order_relaxed);
    // idle or sleepers -> W. Ordering: release: pairs with the acquire
    // fetch_sub in claim(). An exchange, not a store: a worker's
    // idle -> sleepers CAS either comes first (we read it and wake) or fails.
    std::uint32_t const old = word_.exchange(workers_, std::memory_order_release);
    ROUSE_CHECK_USAGE(!has_task(old) && !is_stop(old), "rouse::pool",
                      "internal: a job was published while another was running or after stop");
    if (is_sleepers(old)) {
      // Ordering: relaxed: a timing hint for the workers' spin budget.
      wake_stamp_.store(pool_adaptive_spin::now(), std::memory_order_relaxed);
      wake_all(word_);
      // Where the kernel put a woken worker on this CPU (pool_placement),
      // it would wait for this thread's time slice to end (docs/pool.md, "Placement")
      // before it could claim its task and move away; the yield lets it run
      // now. Where it went elsewhere, the yield returns at once. Only on
      // this path, which makes a system call anyway.
      detail::yield();
    }
  }

  // The caller, after its own share: runs the tasks no worker has claimed
  // yet (a worker may be asleep or descheduled).
  void help() {
    // Ordering: relaxed: only a hint; claim() is the acquire.
    while (has_task(word_.load(std::memory_order_relaxed))) {
      unsigned const index = claim();
      if (index == 0) return;
      execute(current_job(), index);
      report();
    }
  }

  // The caller: spin, then sleep until every task has been reported. It
  // polls for up to max_spin, not the workers' measured budget: its wait
  // is the end of the job's critical path, it has nothing else to do, and
  // after 64 pauses each poll yields the CPU to whoever needs it; a sleep
  // here costs a wake-up on every job and, on machines where the kernel
  // places a woken thread on its waker's CPU, puts it beside the worker.
  void wait_done() {
    spinner spin(detail::pool_spin, max_spin_);
    for (;;) {
      // Ordering: acquire: pairs with the release fetch_sub in report();
      // the reports are read-modify-writes, so reading 0 synchronizes with
      // every one of them.
      std::uint32_t v = pending_.load(std::memory_order_acquire);
      if ((v & pending_mask) == 0) return;
      if (spin.next()) continue;
      if ((v & caller_sleeps_bit) == 0) {
        // n -> n|C. Ordering: relaxed: the acquire load above, after the
        // wake, is what synchronizes with the reports.
        if (!pending_.compare_exchange_weak(v, v | caller_sleeps_bit, std::memory_order_relaxed)) continue;
        v |= caller_sleeps_bit;
      }
      wait(pending_, v);
      // The wake may have put the caller on the CPU of the worker that woke
      // it, which now polls for the next job there. Ordering: a hint.
      caller_placement_.avoid(reporter_cpu_.load(std::memory_order_relaxed));
    }
  }

 private:
  static constexpr std::int32_t signed_of(std::uint32_t v) noexcept { return static_cast<std::int32_t>(v); }

  pool_job current_job() { return {unsync_ref(invoke_), unsync_ref(context_)}; }

  std::exception_ptr take_error() noexcept {
    if (!stopping()) return nullptr;
    return std::exchange(error_, nullptr);
  }

  void lock_callers() {
    std::uint32_t expected = unlocked;
    // unlocked -> locked. Ordering: acquire: pairs with the release
    // exchange in unlock_callers().
    if (caller_lock_.compare_exchange_strong(expected, locked, std::memory_order_acquire, std::memory_order_relaxed))
      return;
    lock_callers_slow();
  }

  [[gnu::noinline, gnu::cold]] void lock_callers_slow() {
    // Another thread runs a job: mark the lock contended and sleep.
    // Ordering: acquire, as in lock_callers().
    while (caller_lock_.exchange(locked_contended, std::memory_order_acquire) != unlocked)
      wait(caller_lock_, locked_contended);
  }

  void unlock_callers() {
    // Ordering: release: pairs with the acquire in lock_callers().
    if (caller_lock_.exchange(unlocked, std::memory_order_release) == locked_contended) wake_one(caller_lock_);
  }

  // Block 1: what a claimer reads to start a task.
  alignas(128) atomic<std::uint32_t> word_{idle_value};
  atomic<std::uint32_t> failed_{0};
  atomic<std::int32_t> caller_cpu_{-1};  // where the last publish ran (pool_placement)
  atomic<std::int64_t> wake_stamp_{0};   // when the last publish woke sleepers (pool_adaptive_spin)
  unsigned const workers_;
  std::chrono::nanoseconds const spin_, max_spin_;
  // The published job (two plain fields, so that Relacy checks their hand-off).
  unsync<void (*)(void*, unsigned, unsigned)> invoke_{};
  unsync<void*> context_{};
  // Block 2: what a task's thread writes to finish it.
  alignas(128) atomic<std::uint32_t> pending_{0};
  atomic<std::int32_t> reporter_cpu_{-1};  // where that report ran (pool_placement)
  // Block 3: the callers' side.
  alignas(128) atomic<std::uint32_t> caller_lock_{unlocked};
  bool stopped_ = false;             // under the caller lock
  pool_placement caller_placement_;  // under the caller lock
  // Written by the first failing participant, read by the caller: the same
  // release/acquire edge as the job's own results (which the model checks).
  std::exception_ptr error_{};
};

static_assert(in_model || sizeof(pool_dispatch) == 3 * 128, "three 128-byte blocks: dispatch, completion, callers");

}  // namespace rouse::detail
