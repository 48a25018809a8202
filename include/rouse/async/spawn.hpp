// rouse/async/spawn.hpp — starting tasks: spawn, join_handle, task_scope, sync_wait.
//
//   auto h = spawn(pool.get_scheduler(), work());  // runs on the pool
//   int v = co_await std::move(h);                 // or h.join() from a thread
//   std::optional<int> r = sync_wait(work());      // blocking code: runs a
//                                                  // run_loop on this thread
//   task_scope scope;                              // a counting scope
//   scope.spawn(sched, a()); scope.spawn(sched, b());
//   co_await scope.join();                         // waits for everything spawned
//
// spawn(s, t): schedules t on s's executor (never runs it inline) and
// returns a join_handle: await it or join() it from a thread (the value;
// t's exception rethrown; operation_stopped thrown if t completed as
// stopped), request_stop() it, or detach() it. Destroying a handle detaches (tokio's rule): the task runs on,
// and its value or exception goes with its end unseen (a task_scope's task
// that throws ends the program instead: catch inside a task whose errors matter).
// Cost: the task's own frame, detached (no driver), and one block for the
// shared state; both come from rouse's frame pool (detail/frame_pool.hpp).
// A spawned task ends where it runs last: if it moved to another executor
// (co_await sched.schedule()), its frame (its parameters' destructors) and
// its completion or count-out go on that executor's thread. A task that
// completes as stopped takes one small frame from the pool, on the thread
// that stops it, to be destroyed outside the stop path; if that allocation
// fails, the program terminates (the stop path cannot report it).
//
// sync_wait(t): runs t on a fresh run_loop driven by the calling thread
// (std::this_thread::sync_wait's shape). Returns the value, an empty
// optional if t completed as stopped (for task<void>: std::monostate);
// rethrows t's exception. The loop ends with t: work spawned onto its
// scheduler must be joined before t returns (a debug build diagnoses
// what is left, queued or suspended; a release build leaks it, never run,
// and a later wake of a suspended one touches the destroyed loop).
//
// task_scope: spawn() counts a task in, its completion counts it out;
// join() (awaited, or join_blocking() from a thread) returns once the count
// is zero; one join at a time (a second one while the first waits is
// diagnosed in debug builds); request_stop() asks every task spawned into
// it to stop. A scope must not be destroyed while tasks spawned into it run
// (join() first): every build aborts with a message, as std's counting_scope
// terminates. A scope that is a local of a task which a stop can unwind
// before it reaches join() is the usual way to break this: spawn the work
// that may be stopped (the accept loop) into the scope too and join it,
// as docs/io.md shows.
// Results are dropped; a task that ends with an exception (other than
// completing as stopped) terminates the program, as an exception leaving a
// std::thread does: catch inside the task. Cost: the task's own frame and
// nothing more (no driver: the frame is detached, and its end counts it out
// of the scope), and the scope's count (two RMWs per task). A task that
// completes as stopped borrows one more small frame from the pool to be
// destroyed outside the stop path.
//
// Join state word of a handle: running = 0, done = 1, joiner = 2 (a waker
// is stored, waiting for done). running -> joiner by the joiner's CAS
// (release: publishes the stored waker), running|joiner -> done by the
// completion's exchange (acq_rel: takes the waker; publishes the result).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "rouse/async/detail/scope_count.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/thread_parker.hpp"

namespace rouse::async {

class task_scope;

namespace detail {

template <class T>
using non_void_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// A single-joiner completion flag: a coroutine or a thread waits for done.
//   running -> joiner    register_joiner (its waker stored first)
//   joiner  -> running   withdraw_joiner (a stop of the awaiter; the waker
//                        dropped after, never woken)
//   any     -> done      complete(); from joiner it takes and wakes the waker
// Exactly one of withdraw_joiner and complete leaves joiner.
class completion {
 public:
  static constexpr std::uint32_t running = 0;
  static constexpr std::uint32_t done = 1;
  static constexpr std::uint32_t joiner = 2;

  bool is_done() const noexcept {
    // Ordering: acquire: pairs with the exchange in complete().
    return state_.load(std::memory_order_acquire) == done;
  }
  // Registers `w`; false when already done (w is dropped, do not wait).
  bool register_joiner(waker w) noexcept {
    joiner_ = std::move(w);
    std::uint32_t expected = running;
    // running -> joiner. Ordering: release: publishes joiner_; acquire on
    // failure: the result of a completion that came first.
    if (state_.compare_exchange_strong(expected, joiner, std::memory_order_acq_rel, std::memory_order_acquire))
      return true;
    joiner_.reset();
    return false;
  }
  // Takes a registered joiner back (a stop of the awaiting coroutine):
  // true when it was, and no completion will wake it; false when the
  // completion came first (its wake is coming, or came).
  bool withdraw_joiner() noexcept {
    std::uint32_t expected = joiner;
    // joiner -> running. Ordering: acquire: the stored waker's last use by
    // whoever registered it; the completion then sees running, never joiner_.
    if (!state_.compare_exchange_strong(expected, running, std::memory_order_acquire, std::memory_order_acquire))
      return false;
    joiner_.reset();
    return true;
  }
  // Called once. Everything before it happens-before is_done() seeing done.
  void complete() noexcept {
    // any -> done. Ordering: acq_rel: release publishes the result; acquire
    // takes the joiner's stored waker.
    if (state_.exchange(done, std::memory_order_acq_rel) == joiner) {
      waker w = std::move(joiner_);
      std::move(w).wake();
    }
  }
  // A thread's whole join.
  void wait_blocking() noexcept {
    if (is_done()) return;
    thread_parker p;
    if (register_joiner(thread_waker(p))) p.park();  // returns with the completion's token
  }

 private:
  std::atomic<std::uint32_t> state_{running};
  waker joiner_;
};

// The shared state of a spawned task: the handle's and the task's. The
// task runs detached in its own frame (task_promise_base::bind_detached);
// the state is one block from the frame pool, freed by the last of its two
// owners.
template <class T>
struct spawn_state {
  // One block from the frame pool, or, for a T aligned beyond the pool's
  // blocks (frame_alignment), from the aligned global allocator.
  static constexpr bool over_aligned = alignof(non_void_t<T>) > frame_alignment;
  static void* operator new(std::size_t n) {
    if constexpr (over_aligned)
      return ::operator new(n, std::align_val_t{alignof(spawn_state)});
    else
      return frame_allocate(n);
  }
  static void operator delete(void* p, std::size_t n) noexcept {
    if constexpr (over_aligned)
      ::operator delete(p, std::align_val_t{alignof(spawn_state)});
    else
      frame_deallocate(p, n);
  }

  std::atomic<int> refs{2};  // the task and the handle
  completion done;
  std::variant<std::monostate, non_void_t<T>, std::exception_ptr> result;
  bool stopped = false;
  inplace_stop_source stop;
  std::coroutine_handle<> self{};  // the task's frame, until it is first scheduled

  void release() noexcept {
    // Ordering: acq_rel: the last owner sees every other owner's use.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  non_void_t<T> take() {
    if (stopped) throw operation_stopped();
    if (result.index() == 2) std::rethrow_exception(std::get<2>(result));
    return std::move(std::get<1>(result));
  }

  // The task's end (bind_detached): first its value, exception or stop,
  // taken from its promise; then, its frame gone, the completion and the
  // task's reference (its last touch of the state).
  static void ended(task_promise_base* p, void* arg) noexcept {
    auto* const st = static_cast<spawn_state*>(arg);
    if (p == nullptr) {
      st->done.complete();
      st->release();
      return;
    }
    if (p->stopped()) {
      st->stopped = true;
      return;
    }
    // A value whose move throws: the handle rethrows that, as the task's own.
    hand_over_result<T>(
        *p, [st](auto&& v) { st->result.template emplace<1>(std::forward<decltype(v)>(v)); },
        [st](std::exception_ptr e) noexcept { st->result.template emplace<2>(std::move(e)); });
  }
};

void scope_count_out(task_scope* scope) noexcept;

// The end of a task spawned into a scope (bind_detached): its exception,
// unless operation_stopped, ends the program; then, its frame gone, it is
// counted out.
template <class T>
void scope_task_ended(task_promise_base* p, void* scope) noexcept {
  if (p == nullptr) {
    scope_count_out(static_cast<task_scope*>(scope));
    return;
  }
  if (p->stopped()) return;
  if (std::exception_ptr e = static_cast<task_promise<T>&>(*p).exception())
    task_promise_base::terminate_unless_stopped(std::move(e));
}

// Creates the shared state and binds `t` to `ex`, detached; not started
// (schedule st->self). The task's and the caller's references are both
// counted. The task sees the state's own stop source
// (join_handle::request_stop), or, for a root run by sync_wait /
// run_until_complete, which has no handle, the caller's token itself: with
// none given, stop_possible() is false, and the task's waits register no
// stop callback.
template <class T>
spawn_state<T>* make_spawn(executor* ex, task<T> t, const inplace_stop_token* root_token = nullptr) {
  ROUSE_CHECK_USAGE(t.valid(), "rouse::async::spawn", "spawn of an empty or moved-from task");
  auto* const st = new spawn_state<T>;
  auto const h = t.release();
  st->self = h;
  task_promise_base::bind_detached(h, ex, root_token ? *root_token : st->stop.get_token(), &spawn_state<T>::ended, st);
  return st;
}

}  // namespace detail

template <class T>
class [[nodiscard]] join_handle {
 public:
  // Awaiting it resumes the awaiter on the awaiter's executor (its awaiter's
  // waker does): a task awaits it without a hop frame.
  using rouse_affine = void;
  join_handle() noexcept = default;
  join_handle(join_handle&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  join_handle& operator=(join_handle&& o) noexcept {
    if (this != &o) {
      detach();
      st_ = std::exchange(o.st_, nullptr);
    }
    return *this;
  }
  ~join_handle() { detach(); }

  [[nodiscard]] bool valid() const noexcept { return st_ != nullptr; }
  [[nodiscard]] bool is_done() const noexcept { return st_ && st_->done.is_done(); }
  // Asks the task to stop (its stop token); it completes as stopped if an
  // operation it awaits honours the request.
  void request_stop() noexcept {
    if (st_) st_->stop.request_stop();
  }
  // The task runs on; nobody will see its result (value or exception).
  void detach() noexcept {
    if (auto* s = std::exchange(st_, nullptr)) s->release();
  }
  // Blocks the calling thread until the task is done. Returns its value;
  // rethrows its exception; throws operation_stopped if it stopped.
  detail::non_void_t<T> join() {
    ROUSE_CHECK_USAGE(st_ != nullptr, "rouse::async::join_handle", "join() on an empty handle");
    st_->done.wait_blocking();
    auto* s = std::exchange(st_, nullptr);
    struct releaser {
      detail::spawn_state<T>* s;
      ~releaser() { s->release(); }
    } r{s};
    return s->take();
  }

  // co_await std::move(handle): the value; rethrows; throws
  // operation_stopped if the task completed as stopped. A stop request of
  // the awaiting coroutine (its token: with_timeout, select, when_any) ends
  // the await as stopped; the task runs on, detached, as when a handle is
  // destroyed.
  //
  // The await's end: a gate of two counts, one for await_suspend and one
  // for whichever of the completion's wake and a stop that withdrew the
  // joiner comes; the last to count down resumes (await_suspend by
  // returning the handle, the others through the resume target).
  // tests/model/async_join_model.cpp checks a copy of this handshake, and
  // catches a withdrawal by load and store instead of compare-exchange.
  class awaiter {
   public:
    using rouse_affine = void;
    explicit awaiter(detail::spawn_state<T>* s) noexcept : st_(s) {}
    awaiter(awaiter&&) = delete;
    ~awaiter() {
      stop_.reset();
      if (st_) st_->release();
    }
    bool await_ready() const noexcept { return st_->done.is_done(); }
    // noexcept: a foreign token's callback that cannot be allocated ends
    // the program (the joiner is registered by then), as the waiter lists'
    // do.
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      target_ = resume_target(h);
      auto const token = get_stop_token(get_env(h.promise()));
      if (token.stop_requested()) {
        stopped_ = true;
        return stopped_here(h);
      }
      if (!st_->done.register_joiner(waker(this, &joiner_vtable))) return h;  // done meanwhile: go on
      stop_.emplace(token, on_stop{this});  // may run at once: the gate orders it
      // Ordering: acq_rel: pairs with the wake's or the stop's count.
      if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
      stop_.reset();
      return stopped_ ? stopped_here(h) : h;
    }
    T await_resume() {
      stop_.reset();
      if (stopped_) throw operation_stopped();
      if constexpr (std::is_void_v<T>)
        st_->take();
      else
        return st_->take();
    }

   private:
    struct on_stop {
      awaiter* self;
      void operator()() noexcept {
        if (!self->st_->done.withdraw_joiner()) return;  // the completion's wake comes
        self->stopped_ = true;  // before the gate's release
        self->count_down();
      }
    };
    static const void* joiner_clone(const void* d) noexcept { return d; }
    static void joiner_drop(const void*) noexcept {}
    static void joiner_wake(const void* d) noexcept {
      static_cast<awaiter*>(const_cast<void*>(d))->count_down();
    }
    static constexpr waker_vtable joiner_vtable{joiner_clone, joiner_wake, joiner_wake, joiner_drop};

    // The wake's or the stop's count; the last one resumes. Touches
    // nothing of the awaiter after (the coroutine may destroy it at once).
    void count_down() noexcept {
      // Ordering: acq_rel: pairs with await_suspend's count.
      if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      target_.complete(stopped_);
    }
    std::coroutine_handle<> stopped_here(std::coroutine_handle<> h) noexcept { return target_.stopped_from_suspend(h); }

    detail::spawn_state<T>* st_;
    resume_target target_;
    std::atomic<std::uint32_t> gate_{2};
    bool stopped_ = false;
    detail::stop_slot<on_stop> stop_;
  };
  awaiter operator co_await() && noexcept {
    ROUSE_CHECK_USAGE(st_ != nullptr, "rouse::async::join_handle", "co_await of an empty handle");
    return awaiter(std::exchange(st_, nullptr));
  }

 private:
  template <class U>
  friend join_handle<U> spawn(executor& ex, task<U> t);
  explicit join_handle(detail::spawn_state<T>* s) noexcept : st_(s) {}
  detail::spawn_state<T>* st_ = nullptr;
};

// Runs `t` on `ex`, starting later on one of its threads.
template <class T>
join_handle<T> spawn(executor& ex, task<T> t) {
  auto* st = detail::make_spawn<T>(&ex, std::move(t));
  join_handle<T> h(st);
  ex.schedule(st->self);
  return h;
}
template <class T>
join_handle<T> spawn(scheduler s, task<T> t) {
  return spawn(s.get_executor(), std::move(t));
}

class task_scope {
 public:
  task_scope() noexcept = default;
  task_scope(const task_scope&) = delete;
  task_scope& operator=(const task_scope&) = delete;
  // Checked in every build (std's counting_scope terminates too): the tasks
  // would count out into freed memory. Typically the scope was a local of a
  // task that a stop unwound before it reached join(); see docs/io.md.
  ~task_scope() {
    if (count_.tasks() != 0) [[unlikely]]  // after a join() returned (its acquire): zero
      ::rouse::detail::report_misuse("rouse::async::task_scope",
                                     "destroyed while tasks spawned into it are running (join() first)");
  }

  // Runs `t` on `s`'s executor, counted in; its result is dropped (an
  // exception it throws terminates: catch inside the task).
  template <class T>
  void spawn(scheduler s, task<T> t) {
    ROUSE_CHECK_USAGE(t.valid(), "rouse::async::task_scope", "spawn of an empty or moved-from task");
    // The task's own frame, detached: its end (or its stopped completion)
    // destroys it and counts it out (no driver frame).
    auto const h = t.release();
    detail::task_promise_base::bind_detached(h, &s.get_executor(), stop_.get_token(), &detail::scope_task_ended<T>, this);
    count_.add();
    s.get_executor().schedule(h);
  }
  // Tasks spawned and not yet completed (a snapshot).
  [[nodiscard]] std::size_t size() const noexcept { return count_.tasks(); }
  // Asks every task spawned into the scope (before or after) to stop.
  void request_stop() noexcept { stop_.request_stop(); }

  // Awaitable: returns once every task spawned so far has completed.
  class join_awaiter {
   public:
    using rouse_affine = void;
    explicit join_awaiter(task_scope* s) noexcept : scope_(s) {}
    bool await_ready() const noexcept { return scope_->count_.idle(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      target_ = resume_target(h);
      return scope_->count_.register_joiner(coroutine_waker(target_));
    }
    void await_resume() const noexcept {}

   private:
    task_scope* scope_;
    resume_target target_;
  };
  join_awaiter join() noexcept { return join_awaiter(this); }
  void join_blocking() noexcept {
    if (count_.idle()) return;
    thread_parker p;
    if (count_.register_joiner(thread_waker(p))) p.park();
  }

 private:
  friend void detail::scope_count_out(task_scope*) noexcept;

  detail::scope_count count_;  // the tasks running and the joiner (detail/scope_count.hpp)
  inplace_stop_source stop_;
};

namespace detail {
inline void scope_count_out(task_scope* scope) noexcept { scope->count_.count_out(); }
}  // namespace detail

namespace detail {

// The loop's side of a root task's completion, which may happen on any
// thread (the task moved to another executor; a stop request from another
// thread completed it as stopped): the completion's joiner waker
// interrupts the loop, and the loop does not return (and maybe destroy
// itself) before that wake has finished with it.
struct loop_joiner {
  run_loop* loop;
  std::atomic<std::uint32_t> woken{0};

  static void wake(const void* data) noexcept {
    auto* const self = static_cast<loop_joiner*>(const_cast<void*>(data));
    run_loop_access::interrupt(*self->loop);
    // Ordering: release: the last touch; pairs with the acquire in wait_done().
    self->woken.store(1, std::memory_order_release);
  }
  static constexpr waker_vtable vtable{view_clone, wake, wake, view_drop};

  // Runs the loop until the root `st` is done.
  template <class T>
  void run(spawn_state<T>* st) {
    bool const registered = st->done.register_joiner(waker(this, &vtable));
    loop->run_until([st] { return st->done.is_done(); });
    if (registered)
      // Ordering: acquire: pairs with the release in wake(). The waker is
      // between the completion's exchange and this store: a short wait.
      while (woken.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  }
};

// Runs `st`'s task (made with the caller's token) on `loop`, driven here,
// until done.
template <class T>
void run_root(run_loop& loop, spawn_state<T>* st) {
  loop.schedule(st->self);
  loop_joiner j{&loop};
  j.run(st);
}

}  // namespace detail

// Runs `t` on a run_loop driven by the calling thread until it completes.
template <class T>
std::optional<detail::non_void_t<T>> sync_wait(task<T> t, inplace_stop_token stop = {}) {
  run_loop loop;
  auto* st = detail::make_spawn<T>(&loop, std::move(t), &stop);
  struct releaser {
    detail::spawn_state<T>* s;
    ~releaser() { s->release(); }
  } r{st};
  detail::run_root(loop, st);
  if (st->stopped) return std::nullopt;
  return st->take();
}

template <class T>
T run_loop::run_until_complete(task<T> t, inplace_stop_token stop) {
  auto* st = detail::make_spawn<T>(this, std::move(t), &stop);
  struct releaser {
    detail::spawn_state<T>* s;
    ~releaser() { s->release(); }
  } r{st};
  detail::run_root(*this, st);
  if constexpr (std::is_void_v<T>)
    st->take();
  else
    return st->take();
}

}  // namespace rouse::async
