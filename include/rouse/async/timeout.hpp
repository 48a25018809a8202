// rouse/async/timeout.hpp — with_timeout / with_deadline: any awaitable, bounded in time.
//
//   bool woken = co_await with_timeout(ev.wait(), 10ms);        // void -> bool
//   std::optional<int> v = co_await with_timeout(compute(), 1s);  // T -> optional<T>
//   bool ok = co_await l.wait_for(5ms);                       // latch, barrier, cv
//
// Purpose: bound one co_await by a duration (steady clock) or a deadline.
// A timed-out operation is cancelled exactly as a stopped one is: the
// operation's own cancellation path runs, so nothing it took is lost (a
// notification or permit it was handed meanwhile is passed on, a value it
// received is returned). Timeouts are cancellation by a timer
// (docs/async-coordination.md, "with_timeout and with_deadline").
//
// Result type: with_timeout(op, d) over an operation whose co_await yields
//   void  -> bool            true: completed, false: timed out
//   T     -> std::optional<T>  the value, or std::nullopt when timed out
// An exception of the operation is rethrown. An operation that completes
// with its value while the timer fires keeps it: the result is the value
// (the timer lost the race; nothing is dropped). A timeout is a normal
// result, not an exception and not *stopped*.
//
// Stop: the awaiting coroutine's own stop token still stops the operation:
// with_timeout links it to the operation's stop source. An operation stopped
// that way completes the with_timeout as stopped (a rouse task completes as
// stopped; a foreign coroutine without unhandled_stopped() gets
// operation_stopped). Whichever of the timer and the outer stop comes first
// decides what a stopped operation means; a stop request already made when
// the co_await begins completes it as stopped without starting the operation.
//
// How the operation sees another stop token, and what it costs:
//   - rouse's waiter-list awaitables (latch, barrier, event, notify, and every
//     primitive built on list_awaitable): none allocated. The awaitable is
//     moved into the with_timeout awaitable and suspended through
//     list_awaitable::await_suspend_with with the in-place stop source and an
//     executor of with_timeout's own that sees the completion first (and
//     then resumes the awaiting coroutine on its executor).
//   - a rouse task<T>: none beyond the task's own frame: the task is bound to
//     the in-place stop source and to a stopped path of with_timeout's own.
//   - any other awaitable (sleep, a foreign awaitable, a primitive with its
//     own awaitable type): one coroutine frame per timed wait (a task that
//     awaits it, so that it sees the stop source through the task's
//     environment), then as a task.
// An operation that ignores stop tokens cannot be bounded: its with_timeout
// completes when it does. So does task_scope::join(): it waits for the
// work, whatever the timer says; bound the work itself (with_timeout inside
// it, or the scope's request_stop() when the time is up). The await of a
// join_handle is bounded: timed out, its task runs on, detached.
// The timer (executor.hpp's timer_entry), the stop source and the link to
// the outer token live in the with_timeout awaitable, in the awaiting frame.
// sizeof on x86-64: 248 bytes plus the waiter-list awaitable moved in (a
// latch's wait_for: 448 bytes); 240 for a task or any other awaitable (it
// runs in a frame of its own). The operation is taken by value (moved in);
// co_await the result once.
//
// The timer: the executor in the awaiting promise's environment, else the
// calling thread's current executor (the coroutine then resumes there too);
// with neither, await_suspend throws std::logic_error (as sleep does). It never fires early: a timed-out result
// means steady_clock reached the deadline. A deadline already passed still
// lets an operation that is ready at once complete with its value; one that
// is not starts with its stop already requested, and completes as timed
// out without waiting.
//
// Lifecycle: the with_timeout awaitable owns the operation; co_await it once
// (movable only before). A frame destroyed while it waits withdraws the
// timer, the outer link and the operation (the operation's own destructor
// path: a waiter leaves its list, passing on what it was handed); as for any
// coroutine, its owner must not destroy it while a wake of it is in flight.
// An operation whose awaitable cannot be moved (another library's) is
// awaited where it is, and C++ destroys it after the with_timeout
// awaitable, whose stop source its stop callback is registered on: such a
// frame must not be destroyed while it waits (rouse's own awaitables all
// move before they are awaited).
//
// State: cause_ (one winner among the three that may end the wait early)
//   none = 0 -> timer = 1 (the timer fired first: it requests the stop;
//                          or the deadline had passed at the start: the
//                          stop is requested before the operation starts)
//            | outer = 2 (the outer token's stop came first: it requests it)
//            | abandoned = 3 (the frame is being destroyed: neither may)
// Memory ordering: acq_rel on cause_ (one winner); the stop source orders
// the request before the operation's callback; the operation's completion
// reaches the resumed coroutine through its executor's hand-over; the
// timer's fire records its last touch (release), acquired by the awaitable
// before it frees the entry (detail/fire_tracked_timer.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "rouse/async/detail/fire_tracked_timer.hpp"
#include "rouse/async/env.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

// What with_timeout(op, d) yields for an operation yielding T.
template <class T>
using timeout_result_t = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

namespace detail {

// The timer, the in-place stop source and the link to the outer stop token:
// the part every with_timeout shape shares.
class timeout_core {
 public:
  using clock = std::chrono::steady_clock;

  explicit timeout_core(clock::time_point deadline) noexcept : deadline_(deadline) {}
  timeout_core(const timeout_core&) = delete;
  timeout_core& operator=(const timeout_core&) = delete;

 protected:
  static constexpr int none = 0;
  static constexpr int timer = 1;
  static constexpr int outer = 2;
  static constexpr int abandoned = 3;

  // Finds the timer's executor; throws std::logic_error when there is none.
  // A coroutine with no executor in its environment resumes on the thread's
  // current executor, the timer's (never inline inside the timer's fire,
  // which must finish before the awaitable may go).
  void find_executor() {
    timer_ex_ = parent_.ex ? parent_.ex : current_executor();
    if (timer_ex_ == nullptr)
      throw std::logic_error(
          "rouse::async::with_timeout: the awaiting coroutine has no executor (none in its environment, none running "
          "this thread)");
    parent_.ex = timer_ex_;
  }

  // Arms the timer, then links the outer token (which may request the stop
  // at once, here). The operation is started after this. A deadline already
  // passed arms nothing: the timer's stop is requested before the operation
  // starts, so that it completes with what is ready at once and otherwise
  // as stopped, without starting anything it would have to take back (a
  // rendezvous receive's demand, a queued waiter's place).
  template <class Token>
  void arm(const Token& outer_token) noexcept {
    if (deadline_ != clock::time_point::max() && clock::now() >= deadline_) {
      // none -> timer: nothing else can race it yet (the outer link and
      // the timer are not there). Ordering: relaxed: the operation starts
      // after it on this thread, and whatever completes it (here, or on an
      // executor it moved to) is ordered after that start.
      cause_.store(timer, std::memory_order_relaxed);
      inner_stop_.request_stop();
      return;
    }
    node_.deadline = deadline_;
    node_.fire = &on_fire;
    node_.self = this;
    armed_ = true;
    timer_ex_->add_timer(node_);
    link_.emplace(outer_token, forward_outer{this});
  }

  // After the operation completed (in await_resume): the link and the timer
  // are withdrawn; a fire under way is waited out (it must not outlive us),
  // or, when it is up this thread's stack (its stop completed the operation
  // inline: a coroutine without an executor in the chain), told to touch
  // nothing more.
  void disarm() noexcept {
    if (!armed_) return;
    armed_ = false;
    link_.reset();  // waits for a forward running on another thread
    if (timer_ex_->cancel_timer(node_)) return;
    node_.wait_for_fire();
  }

  // The frame is destroyed while the operation waits: neither the timer nor
  // the outer token may start a stop from now on (a stop they started is
  // waited out), then disarm.
  void abandon() noexcept {
    int expected = none;
    // none -> abandoned. Ordering: acq_rel: one winner with on_fire / forward.
    cause_.compare_exchange_strong(expected, abandoned, std::memory_order_acq_rel);
    disarm();
  }

  int cause() const noexcept {
    // Ordering: acquire: the winner's claim came before the stop it caused.
    return cause_.load(std::memory_order_acquire);
  }

  // The operation completed as stopped: what runs next. The timer's stop
  // resumes the awaiting coroutine normally (await_resume reports the
  // timeout); any other completes it as stopped (or resumes it, to throw
  // operation_stopped, when its promise cannot stop in place).
  std::coroutine_handle<> after_stopped() noexcept {
    if (cause() == timer) return parent_.handle;
    stopped_ = true;
    if (parent_.stops_in_place()) return parent_.on_stopped(parent_.handle.address());
    return parent_.handle;
  }

  // Completes as stopped from await_suspend, before anything started.
  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    stopped_ = true;
    return parent_.stopped_from_suspend(h);  // else await_resume throws operation_stopped
  }

  inplace_stop_token inner_token() const noexcept { return inner_stop_.get_token(); }
  clock::time_point deadline() const noexcept { return deadline_; }

  resume_target parent_{};
  executor* timer_ex_ = nullptr;
  bool stopped_ = false;  // completes as stopped (the outer token's doing)

 private:
  struct node : detail::fire_tracked_timer {
    timeout_core* self = nullptr;
  };
  struct forward_outer {
    timeout_core* self;
    void operator()() noexcept {
      int expected = none;
      // none -> outer. Ordering: acq_rel (one winner).
      if (self->cause_.compare_exchange_strong(expected, outer, std::memory_order_acq_rel))
        self->inner_stop_.request_stop();
    }
  };

  static void on_fire(timer_entry* e) noexcept {
    node* const n = static_cast<node*>(e);
    timeout_core* const self = n->self;
    n->fire_then([self] {
      int expected = none;
      // none -> timer. Ordering: acq_rel (one winner).
      if (self->cause_.compare_exchange_strong(expected, timer, std::memory_order_acq_rel))
        self->inner_stop_.request_stop();  // the operation's own cancellation path
    });
  }

  // inner_stop_ first: what registers callbacks on its token (the operation)
  // lives in the derived class and dies before it.
  inplace_stop_source inner_stop_;
  clock::time_point deadline_;
  node node_{};
  std::atomic<int> cause_{none};
  bool armed_ = false;
  stop_slot<forward_outer> link_;
};

// Whether A is one of rouse's waiter-list awaitables (suspendable with a
// substituted target and token, and reporting a stopped completion).
template <class A>
concept list_suspendable = requires(A& a, std::coroutine_handle<> h, const resume_target& t, inplace_stop_token k) {
  { a.await_suspend_with(h, t, k) } -> std::same_as<std::coroutine_handle<>>;
  { a.completed_stopped() } -> std::same_as<bool>;
  { a.await_ready() } -> std::same_as<bool>;
};

// with_timeout over a waiter-list awaitable: no allocation.
template <class A>
class timeout_list_awaitable : timeout_core {
 public:
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor

  timeout_list_awaitable(A&& op, clock::time_point deadline) noexcept
      : timeout_core(deadline), op_(std::move(op)) {}
  timeout_list_awaitable(timeout_list_awaitable&& o) noexcept
      : timeout_core(o.deadline()), op_(std::move(o.op_)) {
    ROUSE_CHECK_USAGE(!o.started_, "rouse::async::with_timeout", "moved after it was awaited");
  }
  timeout_list_awaitable(const timeout_list_awaitable&) = delete;
  ~timeout_list_awaitable() {
    if (started_ && !finished_) abandon();  // then op_ withdraws in its destructor
  }

  bool await_ready() noexcept { return op_.await_ready(); }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    parent_ = resume_target(h);
    find_executor();
    auto const outer_token = get_stop_token(get_env(h.promise()));
    if (outer_token.stop_requested()) return stopped_now(h);
    started_ = true;
    arm(outer_token);
    // The operation resumes "normally" through gate_ (no stopped path of its
    // own), so that a stopped completion comes back here first.
    resume_target inner = parent_;
    inner.ex = &gate_;
    inner.on_stopped = nullptr;
    std::coroutine_handle<> const next = op_.await_suspend_with(h, inner, inner_token());
    if (next.address() == std::noop_coroutine().address()) return next;  // gate_ will see the completion
    // Completed inside await_suspend (ready at the re-check, or stopped).
    return op_.completed_stopped() ? after_stopped() : h;
  }

  bool await_resume() {
    finished_ = true;
    // First, on every path: a stopped completion that throws (a promise
    // without unhandled_stopped()) must not leave the timer armed.
    disarm();
    if (stopped_) throw operation_stopped();  // stopped, not by the timer
    bool const was_stopped = op_.completed_stopped();
    (void)op_.await_resume_nothrow();
    if constexpr (requires { op_.take_error(); }) {
      if (std::exception_ptr e = op_.take_error()) std::rethrow_exception(e);  // the operation's own exception
    }
    if (!was_stopped) return true;
    if (stopped_ || cause() != timer) throw operation_stopped();
    return false;  // timed out
  }

  // The operation's give_back() (list_awaitable's), when it completed in
  // time: a select's op() branch that lost gives back what it took.
  void give_back() noexcept
    requires requires(A& a) { a.give_back(); }
  {
    if (finished_ && !op_.completed_stopped()) op_.give_back();
  }

 private:

  // The executor the operation resumes its awaiter on: it sees the
  // completion first (the awaiter's handle, scheduled once, by the
  // operation's wake). Any other coroutine the operation schedules through
  // it (a helper of its own, as condition_variable's) goes on to the
  // awaiter's executor.
  struct gate final : executor {
    timeout_list_awaitable* self;
    explicit gate(timeout_list_awaitable* s) noexcept : self(s) {}
    void schedule(std::coroutine_handle<> h) noexcept override {
      if (h == self->parent_.handle) {
        self->completed(h);
      } else if (self->parent_.ex) {
        self->parent_.ex->schedule(h);
      } else {
        h.resume();  // no executor: on the waker's thread (coroutine_waker's fallback)
      }
    }
    void add_timer(timer_entry& e) noexcept override { self->timer_ex_->add_timer(e); }
    bool cancel_timer(timer_entry& e) noexcept override { return self->timer_ex_->cancel_timer(e); }
  };

  void completed(std::coroutine_handle<> h) noexcept {
    resume_target const parent = parent_;  // *this may be gone once we resume
    if (op_.completed_stopped()) {
      std::coroutine_handle<> const next = after_stopped();
      if (next.address() == std::noop_coroutine().address()) return;
      if (parent.ex)
        parent.ex->schedule(next);
      else
        next.resume();
      return;
    }
    (void)h;
    parent.resume();
  }

  A op_;
  gate gate_{this};
  bool started_ = false;
  bool finished_ = false;
};

// with_timeout over a rouse task<T>: no allocation beyond the task's frame.
template <class T>
class timeout_task_awaitable : timeout_core {
 public:
  using rouse_affine = void;

  timeout_task_awaitable(task<T>&& t, clock::time_point deadline) noexcept
      : timeout_core(deadline), task_(std::move(t)) {}
  timeout_task_awaitable(timeout_task_awaitable&& o) noexcept
      : timeout_core(o.deadline()), task_(std::move(o.task_)) {
    ROUSE_CHECK_USAGE(!o.started_, "rouse::async::with_timeout", "moved after it was awaited");
  }
  timeout_task_awaitable(const timeout_task_awaitable&) = delete;
  ~timeout_task_awaitable() {
    if (started_ && !finished_) abandon();
    task_ = task<T>();  // the child frame (its callbacks on our token) dies before the source
  }

  static constexpr bool await_ready() noexcept { return false; }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    ROUSE_CHECK_USAGE(task_.valid(), "rouse::async::with_timeout", "co_await of an empty or moved-from task");
    parent_ = resume_target(h);
    find_executor();
    auto const outer_token = get_stop_token(get_env(h.promise()));
    if (outer_token.stop_requested()) return stopped_now(h);
    started_ = true;
    arm(outer_token);
    task_.handle().promise().bind(h, parent_.ex, inner_token(), &child_stopped, this);
    return task_.handle();  // runs the task now, by symmetric transfer
  }

  timeout_result_t<T> await_resume() {
    finished_ = true;
    // First, on every path: a stopped completion that throws (a promise
    // without unhandled_stopped()) must not leave the timer armed.
    disarm();
    if (stopped_) throw operation_stopped();  // stopped, not by the timer
    if (task_.handle().promise().stopped()) {
      if (stopped_ || cause() != timer) throw operation_stopped();
      return timeout_result_t<T>();  // timed out: false / nullopt
    }
    if constexpr (std::is_void_v<T>) {
      task_.handle().promise().take();
      return true;
    } else {
      return timeout_result_t<T>(task_.handle().promise().take());
    }
  }

 private:
  // The task completed as stopped (its unhandled_stopped()).
  static std::coroutine_handle<> child_stopped(void* self) noexcept {
    return static_cast<timeout_task_awaitable*>(self)->after_stopped();
  }

  task<T> task_;
  bool started_ = false;
  bool finished_ = false;
};

template <class A>
using await_result_t =
    decltype(std::declval<std::remove_cvref_t<decltype(get_awaiter(std::declval<A&&>()))>&>().await_resume());

// Any other awaitable: awaited inside a task (one coroutine frame), so that
// it sees the in-place stop source through the task's environment. A
// movable awaitable is moved into the frame; one that cannot move (sleep's)
// is awaited where it is: keep it alive until the co_await ends (write the
// with_timeout in the co_await's own expression).
template <class A>
task<await_result_t<A>> timeout_wrap(A a) {
  co_return co_await std::move(a);
}
template <class A>
task<await_result_t<A>> timeout_wrap_ref(A& a) {
  co_return co_await std::move(a);
}

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

}  // namespace detail

// co_await with_deadline(op, t): op, bounded by the steady-clock deadline t.
template <class A>
auto with_deadline(A&& op, std::chrono::steady_clock::time_point deadline) {
  using op_t = std::remove_cvref_t<A>;
  if constexpr (detail::is_task<op_t>::value) {
    return detail::timeout_task_awaitable<typename op_t::value_type>(std::move(op), deadline);
  } else if constexpr (detail::list_suspendable<op_t>) {
    return detail::timeout_list_awaitable<op_t>(std::move(op), deadline);
  } else {
    using result_t = detail::await_result_t<op_t>;
    if constexpr (std::is_move_constructible_v<op_t>)
      return detail::timeout_task_awaitable<result_t>(detail::timeout_wrap<op_t>(std::move(op)), deadline);
    else
      return detail::timeout_task_awaitable<result_t>(detail::timeout_wrap_ref<op_t>(op), deadline);
  }
}

// A deadline on another clock: converted once to the steady clock.
// Saturating both ways: too late is no deadline, too early is passed.
template <class A, class Clock, class Duration>
auto with_deadline(A&& op, const std::chrono::time_point<Clock, Duration>& t) {
  auto const deadline = ::rouse::platform::clock_deadline(t);
  return with_deadline(std::forward<A>(op),
                       ::rouse::platform::deadline_after(::rouse::platform::time_left(deadline, Clock::now())));
}

// co_await with_timeout(op, d): op, bounded by d from now (steady clock).
template <class A, class Rep, class Period>
auto with_timeout(A&& op, const std::chrono::duration<Rep, Period>& d) {
  // Saturating: a duration too long to represent is no deadline.
  return with_deadline(std::forward<A>(op), ::rouse::platform::deadline_after(d));
}

}  // namespace rouse::async
