// rouse/async/run_loop.hpp — a single-thread executor that the caller drives.
//
//   rouse::async::run_loop loop;
//   int v = loop.run_until_complete(compute());   // runs ready coroutines and
//                                                 // timers until compute() ends
//
//   parker        the loop's idle wait: park(deadline) / unpark(). The default
//                 is a futex word (rouse::thread_parker); the I/O reactor plugs
//                 epoll or io_uring in here without changing the loop.
//   run_loop      the executor: a ready queue, a timer queue, a parker.
//
// Lifecycle: one thread at a time drives the loop (run(), run_once(),
// run_until_complete()), and not from inside a task the loop is running,
// directly or through another loop (re-entered: misuse, diagnosed in debug
// builds, as two threads at once are; co_await the work, or sync_wait it on
// a loop of its own); any thread may schedule onto it, add or cancel
// timers, or call finish(). run() returns once finish() has been called and
// nothing is ready; run_until_complete(t) returns t's value (rethrows its
// exception; throws operation_stopped if it completed as stopped) once t is
// done, leaving other work queued. Destroying a loop that still has ready
// coroutines or pending timers is misuse: they would never run (debug
// builds: a message naming run_loop and the rule, then abort). So is
// destroying it under a task spawned onto it (spawn, a task_scope's spawn,
// a root of run_until_complete) that has not ended and still belongs to it
// (has not moved to another executor): suspended on something else, its
// wake would schedule it on the destroyed loop (debug builds count such
// tasks, executor::count_detached, and abort with a message likewise).
//
// Costs: a schedule from the loop's own thread (a woken coroutine resuming a
// neighbour) is a push on a private ring: no atomic RMW, no lock. From
// another thread: a short lock (rouse::mutex), one seq_cst load of the
// loop's `sleeping` flag and a count of the call in progress (two RMWs: the
// destructor waits for a call still waking the loop after the coroutine it
// pushed has run and let the owner go on); a system call (the parker's
// unpark) only when the loop is asleep. An idle loop sleeps in the parker
// until the next timer. add_timer() from another thread is counted the same
// way (it wakes the loop after its lock).
//
// Sleep handshake (no lost wake-up; Dekker):
//   scheduler (another thread)          loop, before parking
//   (A1) remote_ready_ = 1  seq_cst      (B1) sleeping_ = 1     seq_cst
//   (A2) load sleeping_     seq_cst      (B2) load remote_ready_ seq_cst
//        == 1: unpark()                       == 1: do not park
// In the single total order, either A2 sees B1 (the scheduler unparks: the
// parker keeps the token until park) or B2 sees A1 (the loop takes the
// work). Timers added from other threads follow the same pattern
// (timers_changed_ stands for remote_ready_).
//
// sizeof: 4,880 bytes on x86-64, nearly all of it the timer queue (4,728;
// docs/async-timers.md); no allocation per schedule once the private ring
// has grown to the loop's peak.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <utility>
#include <thread>
#include <vector>

#include "rouse/async/detail/timer_queue.hpp"
#include "rouse/async/detail/word_wait.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/task.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/mutex.hpp"
#include "rouse/thread_parker.hpp"

namespace rouse::async {

// The idle wait of a loop. park() returns when unpark() was called (before
// or during the park), at the deadline, or spuriously.
class parker {
 public:
  using clock = std::chrono::steady_clock;
  virtual void park(clock::time_point deadline) noexcept = 0;  // time_point::max(): no deadline
  virtual void unpark() noexcept = 0;
  // Handles what became ready without sleeping (the I/O reactor completes
  // the operations whose descriptors are ready). The loop calls it between
  // rounds of ready work, so that a loop that never idles still sees I/O;
  // the parker may skip most calls to bound the cost. Default: nothing.
  virtual void poll() noexcept {}

  // Optional: futex waits carried by the parker's own wait, so that a
  // coroutine waits on a futex word with no thread (the io_uring reactor:
  // IORING_OP_FUTEX_WAIT, Linux >= 6.7; rouse/async/wait_on.hpp).
  //   futex_wait_native()  whether the others work here.
  //   futex_wait_start(n, word, expected)  queues a kernel wait on `word`
  //       while it holds `expected` (a private futex, 32 bits); n->complete(n)
  //       is called once, on the parker's thread, when it ends (woken, the
  //       word changed, spuriously). False: not queued, wait otherwise.
  //   futex_wait_cancel(n)  withdraws it: true when withdrawn before its
  //       completion was taken (complete is then never called, and a wake
  //       the request consumed meanwhile is passed on to the word's next
  //       waiter), false when the completion comes (or came) anyway.
  // A parker destroyed with waits pending removes their kernel waiters and
  // sets n->detached; they are never completed. Any thread may start or
  // cancel. Default: not available.
  virtual bool futex_wait_native() const noexcept { return false; }
  virtual bool futex_wait_start(detail::futex_wait_node* n, const std::atomic<std::uint32_t>* word,
                                std::uint32_t expected) noexcept {
    (void)n;
    (void)word;
    (void)expected;
    return false;
  }
  virtual bool futex_wait_cancel(detail::futex_wait_node* n) noexcept {
    (void)n;
    return false;
  }

 protected:
  ~parker() = default;
};

// The default parker: one futex word (rouse::thread_parker).
class futex_parker final : public parker {
 public:
  void park(clock::time_point deadline) noexcept override {
    if (deadline == clock::time_point::max())
      word_.park();
    else
      (void)word_.park_until(deadline);
  }
  void unpark() noexcept override { word_.unpark(); }

 private:
  thread_parker word_;
};

namespace detail {

// A growable ring of coroutine handles, for one thread.
class handle_ring {
 public:
  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }
  void push(std::coroutine_handle<> h) {
    if (tail_ - head_ == buf_.size()) grow();
    buf_[tail_++ & (buf_.size() - 1)] = h;
  }
  std::coroutine_handle<> pop() noexcept { return buf_[head_++ & (buf_.size() - 1)]; }

 private:
  [[gnu::noinline]] void grow() {
    std::vector<std::coroutine_handle<>> bigger(buf_.empty() ? 64 : buf_.size() * 2);
    std::size_t n = 0;
    while (!empty()) bigger[n++] = pop();
    buf_.swap(bigger);
    head_ = 0;
    tail_ = n;
  }
  std::vector<std::coroutine_handle<>> buf_;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace detail

namespace detail {
struct run_loop_access;
}

class run_loop final : public executor {
 public:
  using clock = std::chrono::steady_clock;

  run_loop() noexcept : parker_(&own_parker_) {}
  // Parks in `p` (which must outlive the loop) instead of a futex word.
  explicit run_loop(parker& p) noexcept : parker_(&p) {}
  run_loop(const run_loop&) = delete;
  run_loop& operator=(const run_loop&) = delete;
  ~run_loop() {
    // A schedule() from another thread may have pushed a coroutine that ran
    // and let this loop's owner go on, and still be waking the loop: wait
    // for it to leave (a few instructions).
    // Ordering: acquire: pairs with the release decrement in schedule().
    while (remote_callers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    [[maybe_unused]] bool const idle = ready_.empty() && remote_.empty() && timers_.empty();
    ROUSE_CHECK_USAGE(idle, "rouse::async::run_loop", "destroyed with coroutines or timers still pending");
    // Ordering: acquire: pairs with the release decrement of a task that
    // ended on another thread.
    ROUSE_CHECK_USAGE(detached_.load(std::memory_order_acquire) == 0, "rouse::async::run_loop",
                      "destroyed while a task spawned onto it (or moved to it) has not ended: it waits on something "
                      "that would later resume it on the destroyed loop (join or stop such tasks first)");
  }

  scheduler get_scheduler() noexcept { return scheduler(*this); }

  // The parker the loop idles in (its futex waits serve rouse/async/wait_on.hpp).
  parker* idle_parker() noexcept override { return parker_; }

  void schedule(std::coroutine_handle<> h) noexcept override {
    if (current_executor() == this) [[likely]] {
      ready_.push(h);
      return;
    }
    schedule_remote(h);
  }

  // A coroutine out of budget always yields here: its yield ends the
  // round, so timers, other threads' work and the parker's poll (I/O) get
  // their turn too.
  bool others_waiting() noexcept override { return true; }

  void add_timer(timer_entry& e) noexcept override {
    bool const remote = current_executor() != this;
    // Counted while inside, as schedule(): the timer may fire at once, its
    // coroutine end and the loop be destroyed before the wake below is done.
    // Ordering: relaxed, as in schedule() (the lock's release carries it).
    if (remote) remote_callers_.fetch_add(1, std::memory_order_relaxed);
    timer_lock_.lock();
    timers_.insert(e);
    // (A1) for timers, as in schedule().
    timers_changed_.store(1, std::memory_order_seq_cst);
    timer_lock_.unlock();
    if (remote) {
      wake_if_sleeping();
      // The last touch of the loop. Ordering: release, as in schedule().
      remote_callers_.fetch_sub(1, std::memory_order_release);
    }
  }
  bool cancel_timer(timer_entry& e) noexcept override {
    timer_lock_.lock();
    bool const removed = timers_.erase(e);
    timer_lock_.unlock();
    return removed;
  }

  // Runs what is ready now (and expired timers), without sleeping. Returns
  // how many coroutines it resumed.
  std::size_t run_once() {
    driving const guard(*this);
    current_executor_scope scope(this);
    return drain();
  }

  // Runs until finish() was called and nothing is ready. Pending timers do
  // not keep it running after finish().
  void run() {
    driving const guard(*this);
    current_executor_scope scope(this);
    for (;;) {
      drain();
      // Ordering: acquire: pairs with the release in finish().
      if (finishing_.load(std::memory_order_acquire) && ready_.empty()) {
        finishing_.store(0, std::memory_order_relaxed);
        return;
      }
      wait_for_work([this] { return finishing_.load(std::memory_order_acquire) != 0; });
    }
  }
  // Makes run() return once nothing is ready. Any thread.
  void finish() noexcept {
    bool const remote = current_executor() != this;
    // Counted while inside, as schedule(): run() may return and the owner
    // destroy the loop before the wake below is done. Ordering: relaxed:
    // the release store of finishing_ carries it to run()'s acquire.
    if (remote) remote_callers_.fetch_add(1, std::memory_order_relaxed);
    // Ordering: release: pairs with the acquire in run().
    finishing_.store(1, std::memory_order_release);
    // (A1)-like: the flag is what the loop re-checks before parking.
    remote_ready_.store(1, std::memory_order_seq_cst);
    if (remote) {
      wake_if_sleeping();
      // The last touch of the loop. Ordering: release, as in schedule().
      remote_callers_.fetch_sub(1, std::memory_order_release);
    }
  }

  // Runs `t` on this loop, and the loop until `t` is done. Returns its value;
  // rethrows its exception; throws operation_stopped if it completed as
  // stopped (`stop` is the token it sees).
  template <class T>
  T run_until_complete(task<T> t, inplace_stop_token stop = {});

  // Runs the loop until done() is true (checked after each batch of work).
  template <class Done>
  void run_until(Done&& done) {
    driving const guard(*this);
    current_executor_scope scope(this);
    for (;;) {
      drain();
      if (done()) return;
      wait_for_work(done);
    }
  }

 protected:
  void count_detached(int delta) noexcept override {
    // Ordering: release: a task's end (its frame destroyed) before the
    // destructor's acquire load; relaxed would do for the increments.
    detached_.fetch_add(delta, std::memory_order_release);
  }

 private:
  friend struct detail::run_loop_access;

  // While a thread drives the loop. A task of the loop that drives it again
  // (directly, or through another loop it drives) would run the loop's
  // queues from inside their own round (the round's counts and the timer
  // being fired are on the stack below it); two threads at once would race
  // on the private ring.
  struct driving {
    run_loop& loop;
    explicit driving(run_loop& l) noexcept : loop(l) {
      // Ordering: relaxed: a misuse check; the thread that drove the loop
      // before let go of it in an order the user's own hand-over set.
      [[maybe_unused]] bool const was = loop.driven_.exchange(true, std::memory_order_relaxed);
      ROUSE_CHECK_USAGE(!was, "rouse::async::run_loop",
                        "driven from inside a task it is running (run, run_once, run_until or run_until_complete "
                        "re-entered), or by two threads at once: co_await the work instead, or sync_wait it on a "
                        "loop of its own");
    }
    ~driving() { loop.driven_.store(false, std::memory_order_relaxed); }
    driving(const driving&) = delete;
    driving& operator=(const driving&) = delete;
  };

  // Makes a sleeping loop look again (any thread).
  void interrupt() noexcept {
    // (A1), as in schedule().
    remote_ready_.store(1, std::memory_order_seq_cst);
    wake_if_sleeping();
  }

  std::size_t drain() {
    std::size_t resumed = 0;
    std::uint32_t& budget = detail::coop_left;  // (the thread's, looked up once)
    for (;;) {
      // Ordering: relaxed: the lock orders the handles themselves.
      if (remote_ready_.load(std::memory_order_relaxed)) take_remote();
      if (timers_changed_.load(std::memory_order_relaxed) || !timers_empty_hint_) fire_timers();
      if (ready_.empty()) return resumed;
      // Run what is ready now; what it schedules runs in the next round, so
      // remote work and timers are not starved by a busy ping-pong.
      for (std::size_t n = ready_.size(); n > 0; --n) {
        budget = detail::coop_budget;
        ready_.pop().resume();
        ++resumed;
      }
      // A busy loop never parks: give the parker its chance between rounds.
      parker_->poll();
    }
  }

  [[gnu::noinline]] void take_remote() {
    remote_lock_.lock();
    remote_ready_.store(0, std::memory_order_relaxed);
    for (std::coroutine_handle<> h : remote_) ready_.push(h);
    remote_.clear();
    remote_lock_.unlock();
  }

  // One entry at a time, each taken under the lock: a fire may cancel a
  // later timer of the round (a coroutine without an executor, resumed
  // inline), which is then still in the queue to be erased.
  void fire_timers() {
    timer_lock_.lock();
    timers_changed_.store(0, std::memory_order_relaxed);
    if (!timers_.empty()) timers_.collect_expired(clock::now());
    for (;;) {
      timer_entry* const due = timers_.pop_due();
      timers_empty_hint_ = timers_.empty();
      timer_lock_.unlock();
      if (due == nullptr) return;
      due->fire(due);  // the entry may be gone after this
      timer_lock_.lock();
    }
  }

  clock::time_point next_deadline() {
    timer_lock_.lock();
    clock::time_point const d = timers_.empty() ? clock::time_point::max() : timers_.next_deadline();
    timer_lock_.unlock();
    return d;
  }

  template <class Stop>
  void wait_for_work(Stop&& stop) {
    clock::time_point const deadline = next_deadline();
    if (deadline != clock::time_point::max() && deadline <= clock::now()) return;
    // (B1) seq_cst: pairs with (A2) in wake_if_sleeping().
    sleeping_.store(1, std::memory_order_seq_cst);
    // (B2) seq_cst: pairs with (A1) in schedule() / add_timer().
    bool const work = remote_ready_.load(std::memory_order_seq_cst) != 0 ||
                      timers_changed_.load(std::memory_order_seq_cst) != 0 || stop();
    if (!work) parker_->park(deadline);
    // Ordering: relaxed: a stale 1 only costs a scheduler one needless unpark.
    sleeping_.store(0, std::memory_order_relaxed);
  }

  void wake_if_sleeping() noexcept {
    // (A2) seq_cst: pairs with (B1) in wait_for_work().
    if (sleeping_.load(std::memory_order_seq_cst)) parker_->unpark();
  }

  // schedule() from another thread (out of line: the loop's own schedule
  // stays a few instructions).
  [[gnu::noinline]] void schedule_remote(std::coroutine_handle<> h) noexcept {
    // Counted while inside: the coroutine pushed here may run, end, and let
    // the loop's owner destroy the loop before the wake below is done.
    // Ordering: relaxed: the push's release carries it to whoever the
    // coroutine lets through.
    remote_callers_.fetch_add(1, std::memory_order_relaxed);
    remote_lock_.lock();
    remote_.push_back(h);
    // (A1) seq_cst: pairs with (B2) in wait_for_work().
    remote_ready_.store(1, std::memory_order_seq_cst);
    remote_lock_.unlock();
    wake_if_sleeping();
    // The last touch of the loop. Ordering: release: pairs with the
    // destructor's acquire.
    remote_callers_.fetch_sub(1, std::memory_order_release);
  }

  detail::handle_ring ready_;  // the loop thread's own
  bool timers_empty_hint_ = true;
  futex_parker own_parker_;
  parker* parker_;
  std::atomic<std::uint32_t> sleeping_{0};
  std::atomic<long> detached_{0};  // debug builds: detached tasks that belong to this loop (count_detached)
  std::atomic<std::uint32_t> remote_callers_{0};  // schedule()/add_timer()/finish() calls from other threads in progress
  std::atomic<std::uint32_t> remote_ready_{0};
  std::atomic<std::uint32_t> timers_changed_{0};
  std::atomic<std::uint32_t> finishing_{0};
  std::atomic<bool> driven_{false};  // a thread drives the loop now (the misuse check of `driving`)
  ::rouse::mutex remote_lock_;
  std::vector<std::coroutine_handle<>> remote_;
  ::rouse::mutex timer_lock_;
  detail::timer_queue timers_;
};

}  // namespace rouse::async

namespace rouse::async::detail {
struct run_loop_access {
  static void interrupt(run_loop& loop) noexcept { loop.interrupt(); }
};
}  // namespace rouse::async::detail

// run_until_complete() is defined with the spawn machinery it uses.
#include "rouse/async/spawn.hpp"
