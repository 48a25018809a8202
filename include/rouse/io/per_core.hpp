// rouse/io/per_core.hpp — thread-per-core: one event loop per core, nothing shared on the I/O path.
//
//   rouse::io::per_core rt({.cores = 4, .pin = true});
//   rt.run([&](rouse::io::core_context& core) -> rouse::async::task<void> {
//     auto l = rouse::io::tcp_listener::bind(core, where, {.reuse_port = true});  // one per core
//     for (;;) { auto s = co_await l->accept(); ... }                  // served on this core
//   });
//   // in a core's task:
//   int v = co_await core.submit_to(0, count_on_core_0());             // run there, result here
//
//   per_core      the runtime: N threads (default: hardware_concurrency()),
//                 each driving its own io::event_loop (a run_loop parked in
//                 its own reactor, backend chosen in the options), pinned to
//                 a CPU if asked. run(f) calls f(core_context&) on every
//                 core's thread and runs the task it returns there.
//   core_context  what a core's code sees: its index, its loop, reactor and
//                 scheduler, the others' schedulers, its stop token, and
//                 submit_to(core, task) to run work on another core.
//
// The shape of seastar, glommio and compio: each core accepts on its own
// SO_REUSEPORT listener (tcp_listener::options::reuse_port), so the kernel
// spreads connections among the cores and no lock, shared queue or
// cross-thread wake is on the accept or I/O path; a connection lives and
// dies on the core that accepted it. Cores talk only by messages:
// submit_to, or rouse's async channels between tasks of different cores.
// docs/io.md "Runtime shapes: which to choose" says when this pays and
// when one loop is enough.
//
// Lifecycle: run(f) starts the N threads; each (pinned first, if asked)
// makes its own loop, so that the loop's memory is its core's, and once
// every loop exists calls f; run() returns when every core's task has
// finished. One run at a time (debug builds check it); a per_core may run
// again. f is called once per core, on that core's thread, concurrently:
// it must be safe to call from N threads. Every core's loop keeps running,
// serving submit_to and wakes from the others, until the last core's task
// has finished; work a core spawned and did not join by then is misuse
// (debug builds abort in the loop's destructor when that work is queued,
// holds a timer, or holds an open I/O object of the core). Each loop is destroyed on
// its own thread at the end of run(): I/O objects made on a core must not
// outlive it. A loop that cannot be made (no epoll, no eventfd) makes
// run() throw before any f is called.
//
// Errors and stopping: a core's task that ends with an exception asks
// every other core's task to stop (their stop tokens); run() waits for all
// and rethrows the first exception. A task that completes as stopped is
// not an error. request_stop() (any thread, before or during run()) asks
// every core's task to stop, and is final as std::jthread's: a later run()
// starts stopped. Operations blocked in accept or read complete as stopped.
//
// submit_to(core, t): awaitable, lazy (t starts when awaited, on `core`'s
// loop, even when `core` is the caller's own); the awaiter resumes on its
// own executor with t's value or exception. The awaiter's stop request is
// forwarded to t; if t then completes as stopped, so does the awaiter (a
// coroutine without a stopped path gets operation_stopped). t always runs
// to its end before the awaiter resumes: nothing outlives the co_await.
// Destroying the awaiting coroutine while it waits is misuse (the
// completion would wake it; debug builds diagnose it): stop it instead.
// Cost: one coroutine frame (the driver) besides t's; a schedule() onto the
// other loop (a short lock, and one eventfd write only if that loop sleeps)
// and one back. No allocation in the awaitable, except a stop link for a
// foreign coroutine whose stop token is not rouse's in-place one.
//
// Pinning (options.pin): core i is pinned to the i-th CPU of the calling
// thread's affinity mask (modulo its size), best effort (core_context::cpu()
// is -1 where it failed). Pinned cores beyond the CPUs there share CPUs.
// sizeof(per_core): a few words; per core: one event_loop and one thread.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "rouse/async/spawn.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/io/reactor.hpp"

namespace rouse::io {

class per_core;

namespace detail {

// Forwards the awaiter's stop request to the submitted task's source.
struct stop_forward {
  async::inplace_stop_source* target;
  void operator()() noexcept { target->request_stop(); }
};
// A stop link for a foreign token (not rouse's in-place one): on the heap.
struct stop_link_base {
  virtual ~stop_link_base() = default;
};
template <class Token>
struct stop_link final : stop_link_base {
  async::stop_callback_for_t<Token, stop_forward> callback;
  stop_link(const Token& t, stop_forward f) : callback(t, f) {}
};

}  // namespace detail

// co_await core.submit_to(n, t): t's value, on the awaiter's executor.
template <class T>
class [[nodiscard]] submit_operation {
 public:
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor

  submit_operation(async::executor& target, async::task<T> t) noexcept : target_ex_(&target), task_(std::move(t)) {}
  // Movable until awaited (a task returning it moves it).
  submit_operation(submit_operation&& o) noexcept : target_ex_(o.target_ex_), task_(std::move(o.task_)) {
    ROUSE_CHECK_USAGE(o.st_ == nullptr, "rouse::io::submit_operation", "moved while awaited");
  }
  submit_operation(const submit_operation&) = delete;
  submit_operation& operator=(const submit_operation&) = delete;
  ~submit_operation() {
    // The completion would wake a coroutine that is gone.
    ROUSE_CHECK_USAGE(st_ == nullptr || resumed_ || st_->done.is_done(), "rouse::io::submit_operation",
                      "the awaiting coroutine was destroyed while it waited (stop it instead)");
    // The link first: its destructor waits for a stop callback still
    // running on another thread, which touches st_->stop.
    inline_link_.reset();
    foreign_link_.reset();
    if (st_) st_->release();
  }

  static constexpr bool await_ready() noexcept { return false; }

  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    target_ = async::resume_target(h);
    st_ = async::detail::make_spawn<T>(target_ex_, std::move(task_));
    // Registered before the task can run, so it always succeeds.
    (void)st_->done.register_joiner(async::waker(this, &vtable));
    auto const token = async::get_stop_token(async::get_env(h.promise()));
    using token_type = std::remove_cvref_t<decltype(token)>;
    if constexpr (std::is_same_v<token_type, async::inplace_stop_token>) {
      inline_link_.emplace(token, detail::stop_forward{&st_->stop});
    } else if (token.stop_possible()) {
      foreign_link_ = std::make_unique<detail::stop_link<token_type>>(token, detail::stop_forward{&st_->stop});
    }
    // The last touch: from here the task may run, end and resume the
    // awaiter on another thread.
    target_ex_->schedule(st_->self);
  }

  T await_resume() {
    resumed_ = true;
    inline_link_.reset();
    foreign_link_.reset();
    // The exception is moved out, so that its last reference (and its
    // destruction) is the awaiter's, not the driver's on the other core.
    if (!st_->stopped && st_->result.index() == 2) {
      std::exception_ptr e = std::move(std::get<2>(st_->result));
      std::rethrow_exception(std::move(e));
    }
    if constexpr (std::is_void_v<T>)
      st_->take();
    else
      return st_->take();
  }

 private:
  // The driver's completion wakes the awaiter: as stopped when the task
  // completed as stopped and the awaiter has a stopped path.
  static void wake(const void* data) noexcept {
    auto* const self = static_cast<submit_operation*>(const_cast<void*>(data));
    // st_->stopped was written before the completion's exchange, on the
    // thread that runs this (the driver's, inside complete()).
    self->target_.complete(self->st_->stopped);
  }
  static constexpr async::waker_vtable vtable{async::detail::view_clone, wake, wake, async::detail::view_drop};

  async::executor* target_ex_;
  async::task<T> task_;
  async::detail::spawn_state<T>* st_ = nullptr;
  async::resume_target target_;
  bool resumed_ = false;
  std::optional<async::inplace_stop_callback<detail::stop_forward>> inline_link_;
  std::unique_ptr<detail::stop_link_base> foreign_link_;
};

// What a core's code sees. Valid during run(); used from its own core's
// thread, except the const queries and submit_to, which any core may call.
class core_context {
 public:
  core_context(const core_context&) = delete;
  core_context& operator=(const core_context&) = delete;

  std::size_t index() const noexcept { return index_; }
  std::size_t cores() const noexcept { return loops_->size(); }
  // The CPU this core is pinned to, or -1 (not pinned, or pinning failed).
  int cpu() const noexcept { return cpu_; }

  event_loop& loop() const noexcept { return *(*loops_)[index_]; }
  io::reactor& get_reactor() const noexcept { return loop().get_reactor(); }
  operator io::reactor&() const noexcept { return get_reactor(); }  // NOLINT: sockets take a reactor&
  async::scheduler get_scheduler() const noexcept { return loop().get_scheduler(); }
  // Another core's scheduler (`co_await ctx.get_scheduler(n).schedule()`
  // moves the calling task there for good).
  async::scheduler get_scheduler(std::size_t core) const noexcept {
    ROUSE_CHECK_USAGE(core < cores(), "rouse::io::core_context", "core index out of range");
    return (*loops_)[core]->get_scheduler();
  }

  // This run's stop token (every core's task runs with it).
  async::inplace_stop_token get_stop_token() const noexcept { return stop_->get_token(); }
  // Asks every core's task of this run to stop (any thread).
  void request_stop() const noexcept { stop_->request_stop(); }

  // Runs `t` on core `core`'s loop; co_await yields its value here.
  template <class T>
  submit_operation<T> submit_to(std::size_t core, async::task<T> t) const noexcept {
    ROUSE_CHECK_USAGE(core < cores(), "rouse::io::core_context", "submit_to a core index out of range");
    return submit_operation<T>((*loops_)[core]->executor(), std::move(t));
  }

 private:
  friend class per_core;
  core_context(std::size_t index, const std::vector<std::unique_ptr<event_loop>>* loops,
               async::inplace_stop_source* stop) noexcept
      : index_(index), loops_(loops), stop_(stop) {}

  std::size_t index_;
  int cpu_ = -1;
  const std::vector<std::unique_ptr<event_loop>>* loops_;
  async::inplace_stop_source* stop_;
};

class per_core {
 public:
  struct options {
    std::size_t cores = 0;                     // 0: std::thread::hardware_concurrency() (at least 1)
    io::backend backend = io::backend::epoll;  // every core's reactor
    bool pin = false;                          // pin core i to a CPU (see the header)
  };

  per_core() : per_core(options{}) {}
  explicit per_core(const options& opts);
  per_core(const per_core&) = delete;
  per_core& operator=(const per_core&) = delete;
  ~per_core() {
    // Ordering: acquire: pairs with the end of run()'s release.
    ROUSE_CHECK_USAGE(!running_.load(std::memory_order_acquire), "rouse::io::per_core",
                      "destroyed while run() is in progress (from one of its own cores' tasks, or another thread)");
  }

  std::size_t cores() const noexcept { return cores_; }

  // Runs f(core_context&) -> async::task<void> on every core; returns when
  // all have finished; rethrows the first exception. See the header.
  template <class F>
  requires std::is_invocable_r_v<async::task<void>, F&, core_context&> void run(F&& f) {
    run_cores(std::function<async::task<void>(core_context&)>(std::ref(f)));
  }

  // Asks every core's task to stop, now and in every later run (any thread).
  void request_stop() noexcept { stop_.request_stop(); }
  bool stop_requested() const noexcept { return stop_.stop_requested(); }

 private:
  void run_cores(const std::function<async::task<void>(core_context&)>& f);

  std::size_t cores_;
  io::backend backend_;
  bool pin_;
  std::atomic<bool> running_{false};  // debug check: one run at a time
  async::inplace_stop_source stop_;
};

}  // namespace rouse::io
