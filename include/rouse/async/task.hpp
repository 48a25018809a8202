// rouse/async/task.hpp — task<T>: a lazy coroutine that runs on an executor.
//
//   rouse::async::task<int> answer() { co_return 42; }
//   rouse::async::task<> run(rouse::async::notify& n) {
//     int v = co_await answer();                  // runs answer() now, here
//     co_await n.notified();                      // resumes on this task's executor
//     auto token = co_await this_task::stop_token();
//   }
//
// Lifecycle: a task does nothing until it is awaited (by another task or any
// coroutine), spawned (rouse/async/spawn.hpp: spawn, sync_wait, when_all,
// when_any) or run by run_loop::run_until_complete(). It is move-only and
// owns its coroutine frame: destroying a task that has not finished destroys
// the frame (its locals' destructors run; rouse awaitables in it withdraw
// their waiters). `co_await std::move(t)` moves the frame into the await:
// t is empty afterwards, and the frame goes when the await ends (or with
// the awaiting frame, before any of its locals). Awaiting a task twice, or
// a moved-from task, is misuse (debug builds: a message naming task and
// the rule, then abort).
//
// Completion, three ways (C++26's std::execution): a value (co_return), an
// error (an exception leaving the body, rethrown to the awaiter), or
// *stopped*: an operation that saw a stop request completes the task as
// stopped — not an exception. The awaiting task then completes as stopped
// too, without resuming (its promise's unhandled_stopped()), up to the root:
// sync_wait returns an empty optional, a join_handle reports stopped. A
// coroutine that is not a rouse task and has no unhandled_stopped() gets an
// operation_stopped exception from the co_await instead.
//
// Symmetric transfer: awaiting a task starts it by tail transfer, and its
// end transfers back, so chains of any length (1,000,000 nested or in a
// row) run in constant stack.
//
// Environment (rouse/async/env.hpp): a task's promise answers
// get_scheduler (its executor) and get_stop_token (an inplace_stop_token).
// An awaited task inherits both from the awaiting rouse task; from a foreign
// coroutine it takes the scheduler if that is rouse's and adapts any
// stoppable token (one allocation per await for a token that is not
// rouse's in-place one).
//
// Executor affinity: after any co_await, a task continues on its executor.
// rouse's awaitables resume it there by construction (they mark themselves
// with `using rouse_affine = void;`); any other awaitable is wrapped so that,
// if it resumes the task on another thread, the task hops back to its
// executor (one small coroutine frame per such await). `co_await
// sched.schedule()` moves the task to that scheduler's executor for good.
//
// Budget (tokio's cooperative scheduling): a task whose awaits keep
// completing at once never suspends, and would keep its thread from the
// rest of its executor's work. So a ready rouse operation counts against a
// per-thread budget of detail::coop_budget (128), refilled whenever the
// executor resumes a coroutine; when it runs out and the executor has other
// work waiting, the task's next operation yields first (the task goes behind
// the waiting work and performs the operation when it runs again, so
// nothing is held across the yield). On a run_loop the yield also lets
// timers and I/O be looked at. A task whose stop was requested yields at
// its budget's end even when nothing else waits, and then completes as
// stopped without performing that operation: a stop reaches a task whose
// awaits all complete at once. A long computation or a blocking
// call between awaits is not covered: give it its own task, or
// `co_await this_task::yield()` now and then. So every co_await of a rouse
// awaitable in a task may suspend, even one whose operation is ready, and
// on a thread_pool the task may continue on another worker: hold no
// thread-affine state (a blocking lock, a thread-local) across one.
//
// sizeof(task<T>) is one pointer. The frame holds the promise: the
// continuation, executor, stop token, stopped path and the result.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <variant>

#include "rouse/async/detail/frame_pool.hpp"
#include "rouse/async/detail/hop_turn.hpp"
#include "rouse/async/detail/wait_relay.hpp"
#include "rouse/async/env.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace rouse::async {

template <class T = void>
class task;

// Gives the coroutine frames cached by the calling thread and by the shared
// depot back to the system allocator (rouse's frame pool, docs/async.md
// "Costs"): for a program that ends a burst of tasks and wants its memory
// now. Frames in use are not affected.
inline void trim_frame_pool() noexcept { detail::frame_pool_trim(); }

namespace this_task {
// `co_await this_task::stop_token()` inside a task: the task's stop token.
struct stop_token_t {};
inline constexpr stop_token_t stop_token() noexcept { return {}; }
// `co_await this_task::get_scheduler()`: the task's scheduler.
struct scheduler_t {};
inline constexpr scheduler_t get_scheduler() noexcept { return {}; }
// `co_await this_task::yield()`: the task goes behind the work its executor
// has waiting now, then continues (on a thread_pool, possibly on another
// worker). A task without an executor continues at once.
struct yield_t {};
inline constexpr yield_t yield() noexcept { return {}; }
}  // namespace this_task

// An awaitable that resumes its awaiter on the awaiter's executor by itself.
template <class A>
concept executor_affine = requires { typename std::remove_cvref_t<A>::rouse_affine; };

namespace detail {

class task_promise_base;

template <class A>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<task<T>> = true;
// An awaitable whose operator co_await takes an rvalue only (a task, a
// join_handle): awaited once, by std::move.
template <class A>
concept rvalue_only_awaitable = requires(std::remove_reference_t<A>& a) { std::move(a).operator co_await(); } &&
                                !requires(std::remove_reference_t<A>& a) { a.operator co_await(); };

struct task_env {
  executor* ex;
  inplace_stop_token token;
  scheduler query(get_scheduler_t) const noexcept {
    ROUSE_CHECK_USAGE(ex != nullptr, "rouse::async::task", "get_scheduler asked of a task that has no executor");
    return scheduler(*ex);
  }
  inplace_stop_token query(get_stop_token_t) const noexcept { return token; }
};

// Makes a foreign awaitable resume its task on the task's executor.
template <class A>
class affine_awaitable;
// Hands an executor-affine awaitable through unchanged (a wrapper, so that
// no compiler copies the awaitable into the frame).
template <class A>
class pass_through;

// A foreign awaiter's token, forwarded into an in-place source for the task.
struct token_adapter_base {
  inplace_stop_source source;
  virtual ~token_adapter_base() = default;
};
template <class Token>
struct token_adapter final : token_adapter_base {
  struct forward {
    inplace_stop_source* s;
    void operator()() noexcept { s->request_stop(); }
  };
  stop_callback_for_t<Token, forward> callback;
  explicit token_adapter(const Token& t) : callback(t, forward{&source}) {}
};


// A task's one stop callback and the relay that hands a stop to the wait
// the task is in (detail/wait_relay.hpp). Made at the task's second wait
// that can be stopped, from the frame pool; lives until the task's frame.
struct task_relay : pooled_frame {
  struct forward {
    wait_relay* relay;
    void operator()() noexcept { relay->stop(); }
  };
  wait_relay relay;                         // first: the callback may run in its constructor
  inplace_stop_callback<forward> callback;  // destroyed first: waits for a run on another thread
  explicit task_relay(inplace_stop_token token) noexcept : callback(token, forward{&relay}) {}
};

class task_promise_base : public pooled_frame {
 public:
  task_promise_base() noexcept = default;
  task_promise_base(const task_promise_base&) = delete;
  task_promise_base& operator=(const task_promise_base&) = delete;
  ~task_promise_base() {
    if (owns_relay_) delete relay_;
    // A detached task's frame goes (at its end, before its owner is told,
    // or destroyed while suspended): it no longer belongs to its executor.
    if (detached_ != nullptr) count_detached(ex_, -1);
  }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    static constexpr bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      task_promise_base& p = h.promise();
      if (p.detached_) [[unlikely]] {
        // Detached (bind_detached): its owner takes what it left, then the
        // frame goes, then the owner is told it ended.
        detached_fn const end = p.detached_;
        void* const arg = p.detached_arg_;
        end(&p, arg);
        h.destroy();
        end(nullptr, arg);
        return std::noop_coroutine();
      }
      // The task moved to another executor (co_await sched.schedule()): its
      // awaiter goes back to its own.
      if (p.ex_ != p.awaiter_ex_ && p.awaiter_ex_ != nullptr) {
        p.awaiter_ex_->schedule(p.continuation_);
        return std::noop_coroutine();
      }
      return p.continuation_;
    }
    static constexpr void await_resume() noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }

  // C++26's stopped path: a child of this task (or an operation it awaits)
  // completed as stopped. Returns what runs next: the awaiter's own stopped
  // path, or the awaiter itself when it cannot take one (it then throws
  // operation_stopped from its co_await).
  // As at the final suspend, a task that moved to another executor sends
  // what runs next (its awaiter, or an ancestor's handler's choice, which
  // belongs on the awaiter's executor) back there; a detached task's end
  // runs where it ends, as its normal end does.
  // An awaiting task that is a plain rouse task (stopped_parent_) is not
  // called but walked to, in a loop: a stop through a million nested tasks
  // takes constant stack, and so does destroying that chain afterwards
  // (destroy_awaited_chain()). What each call would have
  // done is kept: every level is marked stopped, and the level nearest the
  // root that moved sends what runs next to its awaiter's executor.
  std::coroutine_handle<> unhandled_stopped() noexcept {
    task_promise_base* p = this;
    executor* home = nullptr;
    for (;;) {
      p->stopped_ = true;
      if (p->ex_ != p->awaiter_ex_ && p->awaiter_ex_ != nullptr && p->detached_ == nullptr) home = p->awaiter_ex_;
      if (p->stopped_parent_ == nullptr) break;
      p = p->stopped_parent_;
    }
    std::coroutine_handle<> const next = p->on_stopped_ ? p->on_stopped_(p->on_stopped_arg_) : p->continuation_;
    if (home == nullptr || next.address() == std::noop_coroutine().address()) return next;
    home->schedule(next);
    return std::noop_coroutine();
  }

  executor* rouse_executor() const noexcept { return ex_; }
  inplace_stop_token stop_token() const noexcept { return token_; }

  // The relay of this task's stop token to the wait it is in, for rouse's
  // waits (rouse/async/waiter_list.hpp): one stop callback per task instead
  // of one per wait, made at the task's second wait that can be stopped (a
  // task that waits once keeps the one callback of that wait, and no
  // allocation). Null when the wait registers its own callback: the first
  // wait, a token that cannot stop, no memory left for the relay, or a
  // relay not free for a wait (only after misuse).
  wait_relay* rouse_wait_relay() noexcept {
    if (relay_ == nullptr) [[unlikely]]
      return make_relay();
    return relay_->relay.usable() ? &relay_->relay : nullptr;
  }
  // A task awaited by a plain rouse task with the same token uses the
  // awaiting task's relay, if it has one (the awaiting task waits on the
  // awaited one, not on a primitive, while it runs).
  void share_relay(task_promise_base& awaiting) noexcept {
    if (relay_ == nullptr && awaiting.relay_ != nullptr && awaiting.token_ == token_) relay_ = awaiting.relay_;
  }

  task_env get_env() const noexcept { return {ex_, token_}; }
  bool stopped() const noexcept { return stopped_; }

  // What a co_await in a task may await.
  auto await_transform(this_task::stop_token_t) noexcept { return ready_value<inplace_stop_token>{token_}; }
  auto await_transform(this_task::scheduler_t) noexcept {
    ROUSE_CHECK_USAGE(ex_ != nullptr, "rouse::async::task", "get_scheduler() in a task that has no executor");
    return ready_value<scheduler>{scheduler(*ex_)};
  }
  auto await_transform(this_task::yield_t) noexcept { return yield_awaitable{ex_}; }
  scheduler::schedule_awaitable await_transform(scheduler::schedule_awaitable a) noexcept {
    if (detached_ != nullptr) {
      count_detached(ex_, -1);
      count_detached(a.target(), +1);
    }
    ex_ = a.target();  // the task now belongs to that executor
    return a;
  }
  template <class A>
  decltype(auto) await_transform(A&& a) noexcept {
    static_assert(!(is_task_v<std::remove_cvref_t<A>> && std::is_lvalue_reference_v<A>),
                  "rouse::async::task: a task is awaited once, as an rvalue: co_await std::move(t)");
    static_assert(!(std::is_lvalue_reference_v<A> && !is_task_v<std::remove_cvref_t<A>> && rvalue_only_awaitable<A>),
                  "rouse::async::task: this is awaited once, as an rvalue (a join_handle, a spawned work's "
                  "handle): co_await std::move(h)");
    if constexpr (executor_affine<A>)
      return pass_through<A>(std::forward<A>(a), this);
    else
      return affine_awaitable<A>(std::forward<A>(a), ex_, token_);
  }

  // Wiring, by whoever starts the task (an awaiter, spawn, sync_wait).
  void bind(std::coroutine_handle<> continuation, executor* ex, inplace_stop_token token,
            std::coroutine_handle<> (*on_stopped)(void*) noexcept, void* on_stopped_arg) noexcept {
    continuation_ = continuation;
    ex_ = ex;
    awaiter_ex_ = ex;
    token_ = token;
    on_stopped_ = on_stopped;
    on_stopped_arg_ = on_stopped_arg;
    stopped_parent_ = nullptr;
  }
  // The awaiter is a plain rouse task: its stopped path is walked to, not
  // called (unhandled_stopped()).
  void bind_stopped_parent(task_promise_base* parent) noexcept { stopped_parent_ = parent; }

  // Destroying a chain of suspended tasks in constant stack. `co_await t`
  // moves t's frame into the awaiter, which lives in the awaiting frame
  // and is the newest object there while it waits: destroying that frame
  // destroys the awaiter first, and the awaited frame with it, before any
  // local of the awaiting frame (its locals may refer to the awaiting
  // frame's, never the other way). So a chain goes deepest frame first,
  // each frame whole. A plain task that awaits a task records the awaiter
  // (`awaited_`) and how to reach the awaited promise or destroy its frame
  // (`awaited_fn_`, which knows the type); the awaited task's
  // stopped_parent_ links back. destroy_awaited_chain() walks down to the
  // deepest frame and destroys the frames from there up, each through its
  // awaiter (emptied first), so that no frame's destruction destroys
  // another: the same order, without the recursion. Cleared when the
  // awaited task resumes its awaiter. Levels that are not a plain task
  // awaiting a task (with_timeout of a task, a foreign coroutine between
  // two tasks) are not linked: each such level recurses once.
  using awaited_fn = task_promise_base* (*)(void* awaiter, bool destroy) noexcept;
  void await_task(void* awaiter, awaited_fn fn) noexcept {
    awaited_ = awaiter;
    awaited_fn_ = fn;
  }
  void awaited_task_ended() noexcept { awaited_ = nullptr; }
  // The plain task awaiting this one (null: none, or another kind of awaiter).
  task_promise_base* awaiting_task() const noexcept { return stopped_parent_; }
  // Destroys the frames below this one, deepest first (this frame is left
  // to its owner, who destroys it next).
  void destroy_awaited_chain() noexcept {
    task_promise_base* p = this;
    while (p->awaited_ != nullptr) p = p->awaited_fn_(p->awaited_, false);
    while (p != this) {
      task_promise_base* const up = p->stopped_parent_;
      void* const owner = std::exchange(up->awaited_, nullptr);
      up->awaited_fn_(owner, true);  // p's frame: its own awaited task is gone already
      p = up;
    }
  }

  // Wiring of a task nobody awaits (task_scope::spawn, spawn): one frame,
  // no driver. When it ends, on the thread it ends on, end(&promise, arg)
  // takes what it left (its value, its exception; stopped() when it
  // completed as stopped), then its frame is destroyed, then end(nullptr,
  // arg) runs: the owner's last word. Completed as stopped, it runs next a
  // small coroutine that does the same in its place, so that the frame goes
  // outside the stop path (that coroutine's frame comes from the pool; a
  // failure to allocate it terminates).
  using detached_fn = void (*)(task_promise_base* ended, void* arg) noexcept;
  template <class P>
  static void bind_detached(std::coroutine_handle<P> h, executor* ex, inplace_stop_token token, detached_fn end,
                            void* arg) noexcept {
    task_promise_base& p = h.promise();
    p.bind(std::noop_coroutine(), ex, token, &detached_stopped<P>, h.address());
    p.detached_ = end;
    p.detached_arg_ = arg;
    count_detached(ex, +1);
  }
  // Debug builds: tells `ex` a detached task came to it or left it.
  static void count_detached(executor* ex, int delta) noexcept {
    if constexpr (ROUSE_DEBUG_CHECKS)
      if (ex != nullptr) ex->count_detached(delta);
  }

  // A detached task ended with `e`: operation_stopped (it ends as stopped)
  // is let through; anything else ends the program, never silently.
  static void terminate_unless_stopped(std::exception_ptr e) noexcept {
    try {
      std::rethrow_exception(e);
    } catch (const operation_stopped&) {
      return;
    } catch (...) {
    }
    std::terminate();
  }

 private:
  struct yield_awaitable {
    executor* ex;
    bool await_ready() const noexcept { return ex == nullptr; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { ex->schedule_yield(h); }
    static constexpr void await_resume() noexcept {}
  };
  template <class V>
  struct ready_value {
    V v;
    static constexpr bool await_ready() noexcept { return true; }
    static constexpr void await_suspend(std::coroutine_handle<>) noexcept {}
    V await_resume() noexcept { return v; }
  };

  template <class P>
  static std::coroutine_handle<> detached_stopped(void* frame) noexcept;

  [[gnu::noinline]] wait_relay* make_relay() noexcept {
    if (!token_.stop_possible()) return nullptr;
    if (!waited_once_) {
      waited_once_ = true;
      return nullptr;
    }
    try {
      relay_ = new task_relay(token_);
    } catch (...) {
      return nullptr;
    }
    owns_relay_ = true;
    return &relay_->relay;
  }

  std::coroutine_handle<> continuation_{};
  executor* ex_ = nullptr;
  executor* awaiter_ex_ = nullptr;  // where the awaiter runs (ex_ may change)
  inplace_stop_token token_{};
  std::coroutine_handle<> (*on_stopped_)(void*) noexcept = nullptr;
  void* on_stopped_arg_ = nullptr;
  task_relay* relay_ = nullptr;                  // rouse_wait_relay(); shared with an awaiting task, or owned
  task_promise_base* stopped_parent_ = nullptr;  // the awaiting plain task (see unhandled_stopped())
  void* awaited_ = nullptr;                      // the awaiter of the task this one awaits (destroy_awaited_chain())
  awaited_fn awaited_fn_ = nullptr;
  bool stopped_ = false;
  bool owns_relay_ = false;
  bool waited_once_ = false;  // one wait that could stop registered its own callback

 public:
  // A foreign awaiter's stop token adapted to this task's in-place one;
  // owned here so that it outlives the frame's locals (their callbacks).
  std::unique_ptr<token_adapter_base> adapter_;

 private:
  detached_fn detached_ = nullptr;  // set: a detached task (bind_detached)
  void* detached_arg_ = nullptr;
};

template <class T>
class task_promise final : public task_promise_base {
 public:
  task<T> get_return_object() noexcept;
  template <class U>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    result_.template emplace<1>(std::forward<U>(v));
  }
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
  T take() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }
  // The exception it ended with, if any.
  std::exception_ptr exception() const noexcept { return result_.index() == 2 ? std::get<2>(result_) : nullptr; }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class task_promise<void> final : public task_promise_base {
 public:
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void unhandled_exception() noexcept { error_ = std::current_exception(); }
  void take() {
    if (error_) std::rethrow_exception(error_);
  }
  std::exception_ptr exception() const noexcept { return error_; }

 private:
  std::exception_ptr error_;
};

// Whether P is a plain rouse task's promise (task_promise<T>): its
// unhandled_stopped() is task_promise_base's, so a child may walk to it.
template <class P>
inline constexpr bool is_task_promise_v = false;
template <class T>
inline constexpr bool is_task_promise_v<task_promise<T>> = true;

// A detached task's end (bind_detached), not stopped: hands what it left to
// its owner once. Its exception goes to on_error; else its value (void:
// std::monostate) to on_value, which moves it on; a move that throws (out
// of the promise, or on_value's own) goes to on_error as the task's
// exception would.
template <class T, class OnValue, class OnError>
void hand_over_result(task_promise_base& ended, OnValue&& on_value, OnError&& on_error) noexcept {
  auto& p = static_cast<task_promise<T>&>(ended);
  if (std::exception_ptr e = p.exception()) {
    on_error(std::move(e));
    return;
  }
  try {
    if constexpr (std::is_void_v<T>)
      on_value(std::monostate{});
    else
      on_value(p.take());
  } catch (...) {
    on_error(std::current_exception());
  }
}

// Destroys a detached task's frame after it completed as stopped, then runs
// its finish: resumed in the task's place (scheduled on its executor, or by
// symmetric transfer), never inside the stop path. Its own frame is the
// pool's, and goes at its end.
struct detached_reaper {
  struct promise_type : pooled_frame {
    detached_reaper get_return_object() noexcept {
      return detached_reaper{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

inline detached_reaper reap_detached(std::coroutine_handle<> task, task_promise_base* p,
                                     task_promise_base::detached_fn end, void* arg) {
  end(p, arg);  // p->stopped(): it completed as stopped
  task.destroy();
  end(nullptr, arg);
  co_return;
}

template <class P>
std::coroutine_handle<> task_promise_base::detached_stopped(void* frame) noexcept {
  auto const h = std::coroutine_handle<P>::from_address(frame);
  task_promise_base& p = h.promise();
  return reap_detached(h, &p, p.detached_, p.detached_arg_).h;
}

}  // namespace detail

template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;
  using handle_type = std::coroutine_handle<promise_type>;
  using rouse_affine = void;  // awaiting it resumes the awaiter by symmetric transfer, in place

  task() noexcept = default;
  task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (h_) destroy_frame(h_);
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  ~task() {
    if (h_) destroy_frame(h_);
  }

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }

  class awaiter {
   public:
    using rouse_affine = void;  // the task ends on the executor it started on
    // Owns the awaited frame from here on (the task object is left empty).
    explicit awaiter(handle_type h) noexcept : h_(h) {}
    awaiter(awaiter&&) = delete;
    ~awaiter() {
      if (h_) destroy_frame(h_);
    }
    static constexpr bool await_ready() noexcept { return false; }

    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      auto& child = h_.promise();
      if constexpr (std::is_base_of_v<detail::task_promise_base, P>) {
        auto& pp = parent.promise();
        child.bind(parent, pp.rouse_executor(), pp.stop_token(), &detail::stopped_continuation<P>, parent.address());
        child.share_relay(pp);
        if constexpr (detail::is_task_promise_v<P>) {
          child.bind_stopped_parent(&pp);
          pp.await_task(this, &awaiter::awaited);
        }
      } else {
        using token_t = stop_token_of_t<env_of_t<P>>;
        auto const token = get_stop_token(get_env(parent.promise()));
        inplace_stop_token inner{};
        if constexpr (std::is_same_v<token_t, inplace_stop_token>) {
          inner = token;
        } else if constexpr (!std::is_same_v<token_t, never_stop_token>) {
          if (token.stop_possible()) {
            child.adapter_ = std::make_unique<detail::token_adapter<token_t>>(token);
            inner = child.adapter_->source.get_token();
          }
        }
        std::coroutine_handle<> (*on_stopped)(void*) noexcept = nullptr;
        if constexpr (requires { { parent.promise().unhandled_stopped() } -> std::convertible_to<std::coroutine_handle<>>; })
          on_stopped = &detail::stopped_continuation<P>;
        child.bind(parent, detail::executor_of(parent.promise()), inner, on_stopped, parent.address());
      }
      return h_;
    }

    T await_resume() {
      if (detail::task_promise_base* const parent = h_.promise().awaiting_task()) parent->awaited_task_ended();
      if (h_.promise().stopped()) throw operation_stopped();
      return h_.promise().take();
    }

   private:
    // awaited_fn for this awaiter (task_promise_base::destroy_awaited_chain()).
    static detail::task_promise_base* awaited(void* self, bool destroy) noexcept {
      awaiter& a = *static_cast<awaiter*>(self);
      if (!destroy) return &a.h_.promise();
      std::exchange(a.h_, {}).destroy();
      return nullptr;
    }

    handle_type h_;
  };

  // The awaiter takes the frame: once awaited, the task object is empty.
  awaiter operator co_await() && noexcept {
    ROUSE_CHECK_USAGE(static_cast<bool>(h_), "rouse::async::task",
                      "co_await of an empty, moved-from or already awaited task");
    return awaiter(std::exchange(h_, {}));
  }

  // For rouse's own drivers (spawn, sync_wait, when_all): gives up the frame.
  handle_type release() noexcept { return std::exchange(h_, {}); }
  handle_type handle() const noexcept { return h_; }

 private:
  friend promise_type;
  explicit task(handle_type h) noexcept : h_(h) {}

  // A frame that awaits a task: the chain below goes first, deepest first
  // (detail::task_promise_base::destroy_awaited_chain()).
  static void destroy_frame(handle_type h) noexcept {
    h.promise().destroy_awaited_chain();
    h.destroy();
  }

  handle_type h_{};
};

template <class T>
task<T> detail::task_promise<T>::get_return_object() noexcept {
  return task<T>(task<T>::handle_type::from_promise(*this));
}
inline task<void> detail::task_promise<void>::get_return_object() noexcept {
  return task<void>(task<void>::handle_type::from_promise(*this));
}

namespace detail {

template <class A>
decltype(auto) get_awaiter(A&& a) noexcept {
  if constexpr (requires { std::forward<A>(a).operator co_await(); })
    return std::forward<A>(a).operator co_await();
  else if constexpr (requires { operator co_await(std::forward<A>(a)); })
    return operator co_await(std::forward<A>(a));
  else
    return std::forward<A>(a);
}

// The budget's yield: a small coroutine that the executor resumes in the
// task's place; it then performs the task's operation (attempt) and
// transfers to what that returns. One frame-pool allocation per yield
// (none left: no yield).
struct yield_trampoline {
  struct promise_type {
    std::coroutine_handle<> (*attempt)(void* ctx, void* task) noexcept = nullptr;
    void* ctx = nullptr;
    void* task = nullptr;
    static void* operator new(std::size_t n) noexcept {
      try {
        return frame_allocate(n);
      } catch (...) {
        return nullptr;
      }
    }
    static void operator delete(void* p, std::size_t n) noexcept { frame_deallocate(p, n); }
    static yield_trampoline get_return_object_on_allocation_failure() noexcept { return {}; }
    yield_trampoline get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      static constexpr bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        promise_type const p = self.promise();
        self.destroy();
        return p.attempt(p.ctx, p.task);
      }
      static constexpr void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body is empty
  };
  std::coroutine_handle<promise_type> h{};
};
inline yield_trampoline make_yield_trampoline() { co_return; }

// Budget (the header's "Budget"): each ready operation takes one unit of the
// thread's detail::coop_left. With none left, the next operation first asks
// the task's executor whether other work waits (executor::others_waiting),
// and the task's token whether a stop was requested; if either, the task
// yields before performing it (schedule_yield of a trampoline that performs
// it when it runs), so nothing the operation acquires is held across the
// yield; if neither (or no memory for the trampoline), the budget is
// refilled and the operation goes on. The trampoline completes the task as
// stopped instead of performing the operation when a stop was requested by
// then: so a task whose operations always complete at once (a free lock, a
// channel that always has a value) still ends at a stop, within a budget of
// operations, as tokio cancels such a task at its budget's yield. Cost: a
// thread-local decrement per ready operation; a token load and a virtual
// call every coop_budget of them; an allocation per yield.
template <class A>
class pass_through {
  static constexpr bool is_awaiter = requires(std::remove_reference_t<A>& a) { a.await_ready(); };
  static decltype(auto) convert(A&& a) noexcept {
    if constexpr (is_awaiter)
      return static_cast<std::remove_reference_t<A>&>(a);
    else
      return get_awaiter(std::forward<A>(a));
  }
  using stored_t = std::conditional_t<is_awaiter, std::remove_reference_t<A>&,
                                      std::remove_cvref_t<decltype(get_awaiter(std::declval<A&&>()))>>;
  static constexpr bool ready_noexcept = noexcept(std::declval<stored_t&>().await_ready());
  template <class H>
  static constexpr bool suspend_noexcept = noexcept(std::declval<stored_t&>().await_suspend(std::declval<H>()));
  // An awaiter that always suspends (a task, a join) takes no budget. Its
  // work is counted inside it; but one that completes at once (a task that
  // returns before suspending, a when_all of such tasks, with_timeout of
  // one) comes back by symmetric transfer, not through the executor, so a
  // loop of such awaits alone never yields (docs/async.md, the budget).
  static constexpr bool never_ready = requires { requires !std::remove_cvref_t<stored_t>::await_ready(); };
  using trampoline_handle = std::coroutine_handle<yield_trampoline::promise_type>;

 public:
  pass_through(A&& a, task_promise_base* task) noexcept
      : inner_(convert(std::forward<A>(a))), task_(task) {}
  pass_through(pass_through&&) = delete;
  ~pass_through() {
    ROUSE_CHECK_USAGE(!yield_, "rouse::async::task",
                      "a task destroyed while its budget yield is queued (destroy a task only when no resumption "
                      "of it is in flight)");
  }
  bool await_ready() noexcept(ready_noexcept) {
    if constexpr (never_ready) return false;
    std::uint32_t& left = coop_left;
    if (left == 0) [[unlikely]] {
      left = coop_budget;
      executor* const ex = task_->rouse_executor();
      if (ex != nullptr && (task_->stop_token().stop_requested() || ex->others_waiting())) {
        yield_ = make_yield_trampoline().h;
        if (yield_) return false;
      }
    }
    if (!inner_.await_ready()) return false;
    --left;
    return true;
  }
  template <class H>
  decltype(auto) await_suspend(H h) noexcept(suspend_noexcept<H>) {
    using result = decltype(inner_.await_suspend(h));
    if (!never_ready && yield_) [[unlikely]] {
      trampoline_handle const t = yield_;
      t.promise().attempt = &attempt<H>;
      t.promise().ctx = this;
      t.promise().task = h.address();
      // The last touch of this frame: the trampoline may run at once.
      task_->rouse_executor()->schedule_yield(t);
      if constexpr (std::is_void_v<result>)
        return;
      else if constexpr (std::is_same_v<result, bool>)
        return true;
      else
        return result(std::noop_coroutine());
    }
    return inner_.await_suspend(h);
  }
  decltype(auto) await_resume() {
    if constexpr (!never_ready) {
      if (error_ != nullptr) [[unlikely]]
        rethrow_error();
    }
    return inner_.await_resume();
  }

 private:
  // On the executor, after the yield: the operation, then the task (at once
  // if it was ready, else when the operation wakes it); or, when the task's
  // stop was requested, the task's stopped path (the operation never
  // starts, as a wait that finds its token stopped before it links).
  template <class H>
  static std::coroutine_handle<> attempt(void* ctx, void* task) noexcept {
    auto* const self = static_cast<pass_through*>(ctx);
    self->yield_ = {};
    H const h = H::from_address(task);
    if (self->task_->stop_token().stop_requested()) [[unlikely]]
      return h.promise().unhandled_stopped();  // nothing of *self after: the frame may go
    if constexpr (ready_noexcept && suspend_noexcept<H>) {
      return self->attempt_now(h);
    } else {
      try {
        return self->attempt_now(h);
      } catch (...) {
        // await_resume rethrows it. (A failed allocation here terminates:
        // attempt() is noexcept, it runs on the executor's thread.)
        self->error_ = new std::exception_ptr(std::current_exception());
        return h;
      }
    }
  }
  template <class H>
  std::coroutine_handle<> attempt_now(H h) noexcept(ready_noexcept && suspend_noexcept<H>) {
    if (inner_.await_ready()) {
      --coop_left;  // (refilled by the executor that ran the trampoline)
      return h;
    }
    using result = decltype(inner_.await_suspend(h));
    if constexpr (std::is_void_v<result>) {
      inner_.await_suspend(h);
      return std::noop_coroutine();
    } else if constexpr (std::is_same_v<result, bool>) {
      if (inner_.await_suspend(h)) return std::noop_coroutine();
      return h;
    } else {
      return inner_.await_suspend(h);
    }
  }
  [[noreturn]] void rethrow_error() {
    std::exception_ptr const e = std::move(*error_);
    delete std::exchange(error_, nullptr);
    std::rethrow_exception(e);
  }

  stored_t inner_;
  task_promise_base* task_;                 // the awaiting task: its executor and stop token
  trampoline_handle yield_{};               // made by await_ready, scheduled by await_suspend
  std::exception_ptr* error_ = nullptr;     // the operation's await_suspend threw after a yield
};

// The hop back: a small coroutine awaits the foreign awaitable; if it was
// resumed away from the task's executor it schedules itself there; then it
// ends. One frame allocation per such co_await. The task's await_suspend
// runs it inline, and `turn` says who resumes the task when it ends
// (detail/hop_turn.hpp).
struct hop {
  struct promise_type : pooled_frame {
    std::coroutine_handle<> parent;
    task_env env{nullptr, {}};  // the task's, for the foreign awaitable to see
    hop_turn turn;
    task_env get_env() const noexcept { return env; }
    hop get_return_object() noexcept { return hop{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      static constexpr bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        std::coroutine_handle<> const task = self.promise().parent;  // before: after it the hop may be gone
        return self.promise().turn.end() ? task : std::noop_coroutine();
      }
      static constexpr void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body catches everything
  };
  std::coroutine_handle<promise_type> h;
};

template <class R>
struct hop_result {
  std::variant<std::monostate, std::conditional_t<std::is_void_v<R>, std::monostate, R>, std::exception_ptr> v;
};

template <class A, class R>
hop hop_body(A& awaitable, hop_result<R>& out, executor* ex) {
  try {
    if constexpr (std::is_void_v<R>) {
      co_await std::forward<A>(awaitable);
      out.v.template emplace<1>();
    } else {
      out.v.template emplace<1>(co_await std::forward<A>(awaitable));
    }
  } catch (...) {
    out.v.template emplace<2>(std::current_exception());
  }
  if (ex != nullptr && current_executor() != ex) co_await scheduler(*ex).schedule();
}

template <class A>
class affine_awaitable {
  using awaiter_t = decltype(get_awaiter(std::declval<A&&>()));
  using result_t = decltype(std::declval<std::remove_cvref_t<awaiter_t>&>().await_resume());

 public:
  affine_awaitable(A&& a, executor* ex, inplace_stop_token token) noexcept
      : a_(std::forward<A>(a)), ex_(ex), token_(token) {}
  affine_awaitable(affine_awaitable&&) = delete;
  ~affine_awaitable() {
    if (hop_.h) hop_.h.destroy();
  }
  static constexpr bool await_ready() noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> task) {
    hop_ = hop_body<A, result_t>(a_, result_, ex_);
    hop::promise_type& p = hop_.h.promise();
    p.parent = task;
    p.env = task_env{ex_, token_};
    hop_.h.resume();  // until the foreign awaitable suspends it, or to its end
    if (p.turn.run_returned()) return task;  // it ended: go on
    return std::noop_coroutine();            // the hop resumes the task when it ends
  }
  result_t await_resume() {
    if (result_.v.index() == 2) std::rethrow_exception(std::get<2>(result_.v));
    if constexpr (!std::is_void_v<result_t>) return std::forward<result_t>(std::get<1>(result_.v));
  }

 private:
  A&& a_;
  executor* ex_;
  inplace_stop_token token_;
  hop hop_{};
  hop_result<result_t> result_;
};

}  // namespace detail

}  // namespace rouse::async
