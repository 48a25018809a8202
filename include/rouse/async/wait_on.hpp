// rouse/async/wait_on.hpp — co_await a futex word, with no reactor named.
//
//   std::atomic<std::uint32_t> word{0};
//   while (word.load() == 0)
//     co_await rouse::async::wait_on(word, 0);   // a wake of &word resumes it
//
// Purpose: let a coroutine wait where a thread would sleep on a futex word,
// so that a word woken by rouse's blocking primitives (rouse/platform/wait.hpp's
// wake, i.e. a private FUTEX_WAKE on the futex backend) wakes a coroutine.
// Like a futex wait it may return spuriously, and returns at once when the
// word no longer holds `expected`: callers re-check the word (docs/design.md, rule 1).
// rouse/async/blocking.hpp builds lock / latch wait / acquire on it.
//
// Which way it waits, chosen when it suspends, from the awaiting promise's
// environment (rouse/async/env.hpp: the executor its scheduler names):
//   native   the executor is a run_loop whose parker carries futex waits
//            (an io::event_loop on the io_uring backend, Linux >= 6.7:
//            IORING_OP_FUTEX_WAIT on its ring): no thread. The kernel
//            queues the waiter; the loop's thread sees the completion and
//            schedules the coroutine. One allocation per wait (the
//            reactor's record of the request).
//   helper   anywhere else (a plain run_loop, thread_pool, no executor, the
//            epoll backend, an older kernel, the generic wait backend,
//            whose wakes are not kernel futex wakes): a helper thread per
//            waiting coroutine sleeps on the word (and on a stop word of its
//            own: platform::wait_any), then completes the coroutine.
//            Correct, not cheap: a thread created per wait.
// rouse::io::wait_on(reactor, word, expected) is the same wait with the
// reactor named (its ring, whatever the coroutine's executor).
//
// Where the coroutine resumes: on its executor (scheduled, never inline in
// the waker); without one, on the thread that saw the wait end (the helper
// thread, or the loop's thread for a named reactor), as the rest of
// rouse::async documents.
//
// Cancellation (the awaiting promise's stop token, with_timeout, a frame
// destroyed while waiting) leaves no waiter on the word and loses no
// wake-one: native: the request is withdrawn under the driver's lock with
// IORING_OP_ASYNC_CANCEL, then one waiter of the word is woken at once (a
// wake the request may have consumed meanwhile is passed on; at worst a
// spurious wake); a completion that won the race stands (the
// wait returns normally). helper: the stop word wakes the helper alone (no
// wake of the word: its other waiters see nothing); the helper's two-word
// wait says whether it took a wake of the word (then the wait returns
// normally) or was stopped. Either way, a wake taken for a frame that is
// destroyed before the wait ended is passed on (one wake of the word: a
// spurious wake at worst). A stopped wait completes as stopped: a rouse
// task completes as stopped, a foreign coroutine without unhandled_stopped()
// gets operation_stopped from the co_await. The helper is joined before the
// awaitable goes (detached when the coroutine resumed on it).
//
// Lifetimes: the word must outlive the wait. A parker (reactor) destroyed
// while a native wait is pending removes the kernel's waiter; the coroutine
// is then never resumed and its frame may be destroyed later. As for any
// coroutine, the owner must not destroy the frame while its resumption is
// under way. A destruction on another thread that reaches the wait before
// the wait's end withdraws it (resuming nobody, passing on what the wait
// took); one that comes once the end has decided (the word's wake taken,
// or the stop's leave) races the resumption that end begins: a coroutine
// without an executor is resumed on the ending thread, one with an
// executor is scheduled, and the frame must not go before it has run. So
// destroy a waiting frame from another thread only when its wait cannot
// end meanwhile (nothing wakes the word, no stop comes), else stop it and
// let it resume.
//
// sizeof: 216 bytes on x86-64 (the driver's state and its lock, the
// protocol, the resume target, the stop callback slot), in the awaiting
// frame. No allocation on the awaitable's side; the native path's reactor
// allocates its record of each request, the helper path a thread.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <system_error>
#include <utility>

#include "rouse/async/detail/word_wait.hpp"
#include "rouse/async/env.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/config.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace rouse::async {

namespace detail {

using word_wait = basic_word_wait<parker>;

// The helper thread (src/async/word_wait.cpp): start it (it runs
// helper_loop()), reap it, and the wait layer's two-word wait
// (platform::wait_any, which rouse's blocking primitives' wakes reach).
bool start_wait_helper(word_wait& w) noexcept;
void reap_wait_helper(word_wait& w) noexcept;
const word_wait::fallback_ops& wait_layer_fallback() noexcept;

// Whether rouse's wakes are kernel futex wakes, which a ring's futex wait
// sees (the futex backend; the generic backend's are not).
inline constexpr bool wakes_are_kernel_futex_wakes = ROUSE_CONFIG_WAIT_BACKEND_GENERIC == 0;

// How a wait waits: a named carrier (io::wait_on's reactor, or null for
// none) and helper, or, default-constructed, what the awaiting coroutine's
// executor offers and the wait layer's helper.
struct wait_route {
  bool named = false;
  parker* carrier = nullptr;
  const word_wait::fallback_ops* fallback = nullptr;
};

// The parker that can carry a wait for a coroutine that resumes on `ex`.
inline parker* native_carrier(executor* ex) noexcept {
  if constexpr (!wakes_are_kernel_futex_wakes) {
    (void)ex;
    return nullptr;
  } else {
    if (ex == nullptr) return nullptr;
    parker* const p = ex->idle_parker();
    return p != nullptr && p->futex_wait_native() ? p : nullptr;
  }
}

// co_await of a word protocol (P: a wait_protocol with ready(), the
// await_ready fast path, and result(), what the co_await yields).
template <class P>
class word_awaitable : P, word_wait {
 public:
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor

  template <class... A>
  explicit word_awaitable(wait_route route, A&&... a) noexcept
      : P(std::forward<A>(a)...),
        word_wait(static_cast<wait_protocol&>(*this), &on_done, route.named, route.carrier, route.fallback) {}
  // Before it is awaited only (with_timeout moves it into the frame that
  // awaits it): the protocol's parameters and the route are copied.
  word_awaitable(word_awaitable&& o) noexcept
      : P(static_cast<const P&>(o)), word_wait(static_cast<wait_protocol&>(*this), static_cast<const word_wait&>(o)) {
    ROUSE_CHECK_USAGE(!o.suspended_, "rouse::async::wait_on", "moved after it was awaited");
  }
  word_awaitable(const word_awaitable&) = delete;
  word_awaitable& operator=(const word_awaitable&) = delete;
  ~word_awaitable() {
    // Ordering: acquire: pairs with on_done()'s release.
    if (suspended_ && gate_.load(std::memory_order_acquire) != 0) {
      // The frame goes while the wait is pending: withdraw it.
      stop_.reset();
      abandon();
    }
    reap();
  }

  bool await_ready() noexcept { return P::ready(); }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) {
    target_ = resume_target(h);
    auto const token = get_stop_token(get_env(h.promise()));
    if (token.stop_requested()) return stopped_now(h);
    stop_.emplace(token, on_stop{this});  // a stop from now on reaches the driver (may throw: bad_alloc)
    suspended_ = true;
    wait_outcome const o = start(native_carrier(target_.ex), &wait_layer_fallback());
    if (o == wait_outcome::pending) {
      // Ordering: acq_rel: pairs with on_done(); the last of the two resumes.
      if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
    } else {
      gate_.store(0, std::memory_order_relaxed);  // ended here: no completion will come
      if (o == wait_outcome::failed) {
        stop_.reset();
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "rouse::async::wait_on: no helper thread could be started");
      }
    }
    if (outcome() == wait_outcome::stopped) return stopped_now(h);
    return h;
  }

  decltype(auto) await_resume() {
    stop_.reset();
    reap();
    if (stopped_) throw operation_stopped();
    return P::result();
  }

 private:
  struct on_stop {
    word_awaitable* self;
    void operator()() noexcept { self->request_stop(); }
  };

  static void on_done(word_wait* w, wait_outcome o) noexcept {
    auto* const self = static_cast<word_awaitable*>(w);
    // Ordering: acq_rel: pairs with await_suspend()'s decrement.
    if (self->gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    resume_target const t = self->target_;  // the frame may go once resumed
    if (o == wait_outcome::stopped) {
      self->stopped_ = true;
      if (t.stops_in_place()) {
        t.resume_stopped();
        return;
      }
    }
    t.resume();
  }

  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    stopped_ = true;
    return target_.stopped_from_suspend(h);  // else await_resume throws operation_stopped
  }

  bool suspended_ = false;
  bool stopped_ = false;
  std::atomic<int> gate_{2};  // await_suspend's end and the completion: the last resumes
  resume_target target_{};
  stop_slot<on_stop> stop_;
};

// wait_on's protocol: one wait while the word holds `expected`.
class word_protocol : public wait_protocol {
 public:
  word_protocol(const std::atomic<std::uint32_t>& w, std::uint32_t expected) noexcept : expected_(expected) {
    word = &w;
  }
  bool ready() const noexcept {
    // Ordering: acquire: what the waker wrote before its store is seen.
    return word->load(std::memory_order_acquire) != expected_;
  }
  bool step(std::uint32_t& value) noexcept override {
    if (waited_ || ready()) return true;  // one wait, then return (re-checked by the caller)
    value = expected_;
    return false;
  }
  void woke() noexcept override { waited_ = true; }
  // Gone after a wait that returned: it may have taken a wake-one meant
  // for the word's waiters. Pass one on (a spurious wake at worst).
  bool give_back() noexcept override { return waited_; }
  void result() const noexcept {}

 private:
  std::uint32_t expected_;
  bool waited_ = false;
};

}  // namespace detail

using wait_on_awaitable = detail::word_awaitable<detail::word_protocol>;

// co_await wait_on(word, expected): see the top of this file.
inline wait_on_awaitable wait_on(const std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  return wait_on_awaitable(detail::wait_route{}, word, expected);
}

}  // namespace rouse::async
