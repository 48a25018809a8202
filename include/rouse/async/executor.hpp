// rouse/async/executor.hpp — what runs coroutines, and the scheduler that names it.
//
//   executor          the interface every rouse executor implements: a queue
//                     of ready coroutines (schedule) and a timer queue
//                     (add_timer / cancel_timer). run_loop and thread_pool
//                     are the two; users rarely call it directly.
//   scheduler         a copyable handle to an executor (C++26's scheduler
//                     shape): `co_await sched.schedule()` moves the awaiting
//                     coroutine onto the executor; equal when the executor is.
//   current_executor  the executor running the calling thread's code now
//                     (nullptr on a thread no executor drives).
//   timer_entry       one pending timer, in the sleeping coroutine's frame.
//
// Contract of schedule(h): h is resumed later, on a thread of the executor,
// exactly once; never inside schedule() itself (docs/design.md, rule 5: a waker never
// resumes a coroutine on the waker's stack). Thread-safe: any thread may
// schedule onto any executor. While the executor's threads run, a schedule
// makes no system call; when they sleep it wakes one.
//
// Cooperative scheduling: a coroutine whose operations keep completing at
// once never suspends, so without help it would keep its thread from the
// executor's other work (a loop over a channel that always has a value, a
// coroutine woken into a pool worker's LIFO slot behind it). rouse tasks
// count their ready operations (task.hpp, "Budget"); after
// detail::coop_budget in a row they ask others_waiting() and, if so, go to
// the back through schedule_yield(). Executors refill the budget before
// each resume.
//
// Contract of timers: add_timer(e) arranges for e.fire(&e) to be called on
// one of the executor's threads once steady_clock has reached e.deadline
// (never before it), unless cancel_timer(e) returns true first. cancel_timer
// returns false when the timer has fired or is firing: then fire() runs (or
// ran) exactly once, and the entry must stay alive until it has. Any thread
// may add or cancel, a fire included: an executor hands expired timers to
// their fires one at a time, so that a timer that expired but whose fire has
// not begun is still cancelled (true) by code another fire runs inline.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>

#include "rouse/config.hpp"

namespace rouse::async {

class executor;
class parker;  // rouse/async/run_loop.hpp

namespace detail {
class task_promise_base;  // rouse/async/task.hpp
// The executor whose loop runs on this thread (read on every schedule: a
// constinit thread_local, no wrapper call).
inline constinit thread_local executor* current_executor_tls = nullptr;
// The same slot through a call into the library (what 0.1.0's headers
// used; kept so that programs built against them still link).
executor*& current_executor_slot() noexcept;
}  // namespace detail

namespace detail {
// tokio's budget: a coroutine offers its executor's other work a turn after at most 128 ready operations in a row.
inline constexpr std::uint32_t coop_budget = 128;
// Ready operations left to the coroutine running on this thread (its executor refills it before each resume).
inline constinit thread_local std::uint32_t coop_left = coop_budget;
}  // namespace detail

// The executor running code on this thread now, or nullptr.
inline executor* current_executor() noexcept { return detail::current_executor_tls; }

// One pending timer. The executor owns the link fields while it is added.
struct timer_entry {
  using clock = std::chrono::steady_clock;
  clock::time_point deadline{};
  void (*fire)(timer_entry* self) noexcept = nullptr;
  // Owned by the executor's timer queue (rouse/async/detail/timer_queue.hpp).
  timer_entry* queue_next = nullptr;
  timer_entry* queue_prev = nullptr;
  std::uint64_t queue_slot = 0;
  std::uint32_t queue_level = 0;
  bool queued = false;
};

class executor {
 public:
  // Resumes `h` later, on this executor (see the contract above).
  virtual void schedule(std::coroutine_handle<> h) noexcept = 0;
  virtual void add_timer(timer_entry& e) noexcept = 0;
  virtual bool cancel_timer(timer_entry& e) noexcept = 0;
  // The parker this executor's one thread idles in (run_loop: its own, or
  // the I/O reactor), or null. Lets an awaitable hand a futex wait to the
  // parker (rouse/async/wait_on.hpp) instead of a thread. Default: none.
  virtual parker* idle_parker() noexcept { return nullptr; }
  // Asked on one of this executor's threads by a coroutine that has used
  // up its budget: whether other work of this executor waits for the
  // thread. Default: false (a custom executor gets no budget yields).
  virtual bool others_waiting() noexcept { return false; }
  // Resumes `h` later, behind the work waiting now (the budget's yield and
  // `co_await this_task::yield()`); schedule()'s contract otherwise.
  // Default: schedule(h).
  virtual void schedule_yield(std::coroutine_handle<> h) noexcept { schedule(h); }

 protected:
  friend class detail::task_promise_base;
  // Debug builds: a detached task (spawn, task_scope::spawn, a root of
  // run_until_complete) now belongs to this executor (+1) or no longer
  // does (-1: it ended, or moved to another executor). run_loop counts
  // them, to diagnose its destruction under one that would later be
  // resumed on it. Default: nothing.
  virtual void count_detached(int delta) noexcept { (void)delta; }

  executor() = default;
  executor(const executor&) = default;
  executor& operator=(const executor&) = default;
  ~executor() = default;
};

// RAII: makes `ex` the calling thread's current executor for a scope.
class current_executor_scope {
 public:
  explicit current_executor_scope(executor* ex) noexcept : saved_(detail::current_executor_tls) {
    detail::current_executor_tls = ex;
  }
  current_executor_scope(const current_executor_scope&) = delete;
  current_executor_scope& operator=(const current_executor_scope&) = delete;
  ~current_executor_scope() { detail::current_executor_tls = saved_; }

 private:
  executor* saved_;
};

class scheduler {
 public:
  explicit scheduler(executor& ex) noexcept : ex_(&ex) {}

  executor& get_executor() const noexcept { return *ex_; }
  friend bool operator==(const scheduler&, const scheduler&) = default;

  // `co_await sched.schedule()`: the awaiting coroutine continues on this
  // executor (a rouse task also adopts it as its executor from then on).
  class schedule_awaitable {
   public:
    explicit schedule_awaitable(executor* ex) noexcept : ex_(ex) {}
    static constexpr bool await_ready() noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { ex_->schedule(h); }
    static constexpr void await_resume() noexcept {}
    executor* target() const noexcept { return ex_; }

   private:
    executor* ex_;
  };
  schedule_awaitable schedule() const noexcept { return schedule_awaitable(ex_); }

 private:
  executor* ex_;
};

}  // namespace rouse::async
