// rouse/async/waker.hpp — wakers, and the makers for coroutines, threads and callbacks.
//
//   waker                 two words: data + a table of clone / wake /
//                         wake_by_ref / drop (rouse/detail/waker.hpp); copyable,
//                         will_wake(other)
//   noop_waker()          a waker that does nothing (tests, polling by hand)
//   resume_target         where a suspended coroutine resumes: its handle, the
//                         executor found in its promise's environment, and how
//                         it completes as *stopped*; lives in the awaitable
//   coroutine_waker(t)    wake = t's executor->schedule(handle): never resumes
//                         on the waker's stack. Without an executor in the
//                         promise's environment the coroutine resumes on the
//                         waker's thread, inside wake() (documented fallback)
//   thread_waker(p)       wake = p.unpark(): a plain thread waits on an async
//                         primitive by parking on its own thread_parker
//   callback_waker(f)     wake = f(), f owned by the caller (no allocation)
//   make_shared_waker(f)  wake = f(), f on the heap, reference-counted: a
//                         waker that may outlive the code that made it
//
// Costs (atomic read-modify-writes, counted by tests/unit/async_waker_test):
//   coroutine_waker: clone 0, drop 0, wake = the executor's schedule() (0 RMW
//     on a run_loop scheduling from its own thread)
//   thread_waker:    clone 0, drop 0, wake 1 (thread_parker::unpark's exchange)
//   callback_waker:  clone 0, drop 0, wake = f's cost
//   make_shared_waker: clone 1, drop 1, wake 1 (the drop) + f's cost
//
// Lifetimes: a coroutine waker is a view of its resume_target (in the
// awaiting coroutine's frame): clones are views too, valid until the
// coroutine has been resumed by one of them; waking it twice resumes twice
// (undefined). A waiter queue's one-winner claim (detail/waiter_queue.hpp)
// is what makes a wake happen once. A thread waker is valid while its parker
// lives; a callback waker while its callable lives.
#pragma once

#include <atomic>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "rouse/async/env.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/detail/waker.hpp"
#include "rouse/thread_parker.hpp"

namespace rouse::async {

using waker = ::rouse::detail::waker;
using waker_vtable = ::rouse::detail::waker_vtable;

// The awaiting coroutine is not a rouse task and its promise has no
// unhandled_stopped(): a stopped operation throws this from await_resume.
class operation_stopped : public std::exception {
 public:
  const char* what() const noexcept override { return "rouse::async: operation stopped"; }
};

namespace detail {

// The executor a coroutine with promise P resumes on: P's own (a rouse task
// promise exposes executor()), else a rouse scheduler in its environment,
// else none.
template <class P>
executor* executor_of(P& promise) noexcept {
  if constexpr (requires { { promise.rouse_executor() } -> std::same_as<executor*>; }) {
    return promise.rouse_executor();
  } else if constexpr (requires { get_scheduler(get_env(promise)); }) {
    auto s = get_scheduler(get_env(promise));
    if constexpr (std::is_same_v<decltype(s), scheduler>)
      return &s.get_executor();
    else
      return nullptr;
  } else {
    return nullptr;
  }
}

template <class P>
std::coroutine_handle<> stopped_continuation(void* address) noexcept {
  return std::coroutine_handle<P>::from_address(address).promise().unhandled_stopped();
}

}  // namespace detail

// Where and how a suspended coroutine resumes. Build it in await_suspend.
struct resume_target {
  std::coroutine_handle<> handle{};
  executor* ex = nullptr;
  // Non-null when the promise completes stopped work itself
  // (unhandled_stopped(), C++26's convention): returns what to resume instead.
  std::coroutine_handle<> (*on_stopped)(void* address) noexcept = nullptr;

  resume_target() noexcept = default;
  template <class P>
  explicit resume_target(std::coroutine_handle<P> h) noexcept : handle(h), ex(detail::executor_of(h.promise())) {
    if constexpr (requires { { h.promise().unhandled_stopped() } -> std::convertible_to<std::coroutine_handle<>>; })
      on_stopped = &detail::stopped_continuation<P>;
  }

  // Resumes the coroutine on its executor (on this thread, now, if none).
  void resume() const noexcept {
    if (ex)
      ex->schedule(handle);
    else
      handle.resume();
  }
  // Whether the promise completes as stopped without resuming the coroutine.
  bool stops_in_place() const noexcept { return on_stopped != nullptr; }
  // Completes the coroutine as stopped: its promise's unhandled_stopped()
  // names what runs next (scheduled on the executor). Only when
  // stops_in_place(); otherwise the caller resumes it and await_resume
  // throws operation_stopped. After this the coroutine's frame may be
  // destroyed by its owner at any time.
  void resume_stopped() const noexcept {
    executor* const e = ex;
    std::coroutine_handle<> const next = on_stopped(handle.address());
    if (next.address() == std::noop_coroutine().address()) return;
    if (e)
      e->schedule(next);
    else
      next.resume();
  }
  // Ends a wait: as stopped where the promise completes stopped work in
  // place, else by resuming it (its await_resume then reports a stop).
  // Touches nothing of *this after (it may live in the frame).
  void complete(bool stopped) const noexcept {
    if (stopped && stops_in_place())
      resume_stopped();
    else
      resume();
  }
  // A wait that completed as stopped inside await_suspend: what
  // await_suspend returns (the promise's stopped path, or h to resume and
  // report it from await_resume).
  std::coroutine_handle<> stopped_from_suspend(std::coroutine_handle<> h) const noexcept {
    return stops_in_place() ? on_stopped(h.address()) : h;
  }
};

namespace detail {

inline const void* view_clone(const void* data) noexcept { return data; }
inline void view_drop(const void*) noexcept {}

inline void coroutine_wake(const void* data) noexcept { static_cast<const resume_target*>(data)->resume(); }
inline constexpr waker_vtable coroutine_vtable{view_clone, coroutine_wake, coroutine_wake, view_drop};

inline void thread_wake(const void* data) noexcept {
  const_cast<thread_parker*>(static_cast<const thread_parker*>(data))->unpark();
}
inline constexpr waker_vtable thread_vtable{view_clone, thread_wake, thread_wake, view_drop};

inline void noop_wake(const void*) noexcept {}
inline constexpr waker_vtable noop_vtable{view_clone, noop_wake, noop_wake, view_drop};

template <class F>
void callback_wake(const void* data) noexcept {
  (*const_cast<F*>(static_cast<const F*>(data)))();
}
template <class F>
inline constexpr waker_vtable callback_vtable{view_clone, callback_wake<F>, callback_wake<F>, view_drop};

template <class F>
struct shared_callback {
  std::atomic<std::size_t> refs{1};
  F f;
  template <class G>
  explicit shared_callback(G&& g) : f(std::forward<G>(g)) {}

  static const void* clone(const void* data) noexcept {
    // Ordering: relaxed: a new reference is made from one the caller holds.
    static_cast<shared_callback*>(const_cast<void*>(data))->refs.fetch_add(1, std::memory_order_relaxed);
    return data;
  }
  static void drop(const void* data) noexcept {
    auto* const self = static_cast<shared_callback*>(const_cast<void*>(data));
    // Ordering: acq_rel: the last drop sees every use by the other holders.
    if (self->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete self;
  }
  static void wake_by_ref(const void* data) noexcept { static_cast<shared_callback*>(const_cast<void*>(data))->f(); }
  static void wake(const void* data) noexcept {
    wake_by_ref(data);
    drop(data);
  }
  static constexpr waker_vtable vtable{clone, wake, wake_by_ref, drop};
};

}  // namespace detail

inline waker noop_waker() noexcept { return waker(nullptr, &detail::noop_vtable); }
inline waker coroutine_waker(const resume_target& t) noexcept { return waker(&t, &detail::coroutine_vtable); }
inline waker thread_waker(thread_parker& p) noexcept { return waker(&p, &detail::thread_vtable); }

// wake() calls f(); f must be noexcept-callable and outlive every wake.
template <class F>
  requires std::is_nothrow_invocable_v<F&>
waker callback_waker(F& f) noexcept {
  return waker(&f, &detail::callback_vtable<F>);
}

// wake() calls a heap copy of f; the copy lives while a clone does.
template <class F>
  requires std::is_nothrow_invocable_v<std::decay_t<F>&>
waker make_shared_waker(F&& f) {
  using state = detail::shared_callback<std::decay_t<F>>;
  return waker(new state(std::forward<F>(f)), &state::vtable);
}

}  // namespace rouse::async
