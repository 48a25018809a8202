// rouse/async/sleep.hpp — co_await sleep_for(d) / sleep_until(t) on the steady clock
// (a deadline on another clock is converted once).
//
//   co_await rouse::async::sleep_for(10ms);     // on the task's executor
//   co_await rouse::async::sleep_until(deadline);
//
// The timer lives in the awaiting coroutine's frame (no allocation) and in
// the executor's timer queue (rouse/async/detail/timer_queue.hpp); the
// executor is the one in the awaiting promise's environment, else the
// calling thread's current executor; with neither, await_suspend throws
// std::logic_error. A sleep never ends early: it resumes once steady_clock
// has reached the deadline (a deadline already passed does not suspend).
//
// Cancellation: a stop request (the promise's stop token, any stoppable
// token) cancels the timer and completes the sleep as *stopped* (a rouse
// task completes as stopped; a foreign coroutine gets operation_stopped).
// Exactly one of "fired" and "stopped" happens: both race for one claim.
//
// State: claim_  none = 0 -> fired = 1 (the timer's fire) | stopped = 2 (the
// stop callback, which then also needs cancel_timer() to succeed, else the
// firing timer completes the sleep as stopped). gate_ counts the two parties
// that must be done before the coroutine may resume: await_suspend and the
// completion (2 -> 0; whoever makes it 0 resumes). Ordering: acq_rel on both
// words: the completion's writes reach the resumed coroutine.
//
// The awaitable may be moved before it is awaited (with_timeout moves it
// into the frame that awaits it), never after (debug builds diagnose it).
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <thread>

#include "rouse/async/env.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

class sleep_awaitable {
 public:
  using rouse_affine = void;
  using clock = std::chrono::steady_clock;

  explicit sleep_awaitable(clock::time_point deadline) noexcept : deadline_(deadline) {}
  // Before it is awaited only: nothing of it is registered yet.
  sleep_awaitable(sleep_awaitable&& o) noexcept : deadline_(o.deadline_) {
    ROUSE_CHECK_USAGE(!o.armed_, "rouse::async::sleep", "moved after it was awaited");
  }
  sleep_awaitable(const sleep_awaitable&) = delete;
  sleep_awaitable& operator=(const sleep_awaitable&) = delete;
  // A coroutine destroyed while it sleeps (its owner destroyed the frame):
  // the timer is withdrawn; if the fire has not claimed the wait yet, wait
  // for it to see `abandoned` and leave. A fire that claimed it first is a
  // wake in flight: destroying the coroutine then is misuse, as for any
  // coroutine whose resumption is under way.
  ~sleep_awaitable() {
    if (!armed_ || gate_.load(std::memory_order_acquire) == 0) return;
    stop_.reset();
    int expected = none;
    if (!claim_.compare_exchange_strong(expected, abandoned, std::memory_order_acq_rel)) return;
    if (ex_->cancel_timer(node_)) return;
    // Ordering: acquire: pairs with the release in on_fire().
    while (node_.fire_done.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  }

  bool await_ready() const noexcept { return clock::now() >= deadline_; }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    target_ = resume_target(h);
    ex_ = target_.ex ? target_.ex : current_executor();
    if (ex_ == nullptr)
      throw std::logic_error("rouse::async::sleep: the awaiting coroutine has no executor (none in its environment, "
                             "none running this thread)");
    auto const token = get_stop_token(get_env(h.promise()));
    if (token.stop_requested()) return stopped_now(h);
    node_.deadline = deadline_;
    node_.fire = &on_fire;
    node_.self = this;
    armed_ = true;
    ex_->add_timer(node_);
    stop_.emplace(token, on_stop{this});
    // await_suspend's own part done. Ordering: acq_rel: pairs with complete().
    if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
    // Completed already (fired, or stopped): continue here.
    if (claim_.load(std::memory_order_relaxed) == stopped) return stopped_now(h);
    return h;
  }

  void await_resume() {
    stop_.reset();
    if (claim_.load(std::memory_order_relaxed) == stopped) throw operation_stopped();
  }

 private:
  static constexpr int none = 0;
  static constexpr int fired = 1;
  static constexpr int stopped = 2;
  static constexpr int abandoned = 3;  // the frame is being destroyed

  struct node : timer_entry {
    sleep_awaitable* self = nullptr;
    std::atomic<int> fire_done{0};
  };

  struct on_stop {
    sleep_awaitable* self;
    void operator()() noexcept {
      int expected = none;
      // none -> stopped. Ordering: acq_rel (one winner against on_fire).
      if (!self->claim_.compare_exchange_strong(expected, stopped, std::memory_order_acq_rel)) return;
      // Removed before it fired: we complete it. Otherwise the timer is
      // firing and on_fire completes it (as stopped).
      if (self->ex_->cancel_timer(self->node_)) self->complete();
    }
  };

  static void on_fire(timer_entry* e) noexcept {
    node* const n = static_cast<node*>(e);
    sleep_awaitable* const self = n->self;
    int expected = none;
    // none -> fired, or the stop callback's `stopped` stands, or the frame is
    // going away (abandoned): then only tell the destructor we are done.
    if (!self->claim_.compare_exchange_strong(expected, fired, std::memory_order_acq_rel) &&
        expected == abandoned) {
      // Ordering: release: pairs with the acquire in the destructor.
      n->fire_done.store(1, std::memory_order_release);
      return;
    }
    self->complete();
  }

  void complete() noexcept {
    if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;  // await_suspend finishes it
    // Last party: resume. Nothing of *this is touched after the resume call
    // hands the coroutine over (it may destroy this awaitable).
    if (claim_.load(std::memory_order_relaxed) == stopped && target_.stops_in_place()) {
      resume_target const t = target_;
      t.resume_stopped();
    } else {
      resume_target const t = target_;
      t.resume();
    }
  }

  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    claim_.store(stopped, std::memory_order_relaxed);
    if (target_.stops_in_place()) {
      std::coroutine_handle<> const next = target_.on_stopped(h.address());
      return next;
    }
    return h;  // await_resume throws operation_stopped
  }

  node node_{};
  bool armed_ = false;
  clock::time_point deadline_;
  resume_target target_{};
  executor* ex_ = nullptr;
  std::atomic<int> claim_{none};
  std::atomic<int> gate_{2};
  detail::stop_slot<on_stop> stop_;
};

inline sleep_awaitable sleep_until(std::chrono::steady_clock::time_point deadline) noexcept {
  return sleep_awaitable(deadline);
}
// A deadline in another duration or on another clock: converted once to
// the steady clock (a later change of a system clock does not move it).
// Saturating both ways: too late to represent never ends by itself, too
// early has passed.
template <class Clock, class Duration>
sleep_awaitable sleep_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
  auto const deadline = ::rouse::platform::clock_deadline(t);
  return sleep_awaitable(::rouse::platform::deadline_after(::rouse::platform::time_left(deadline, Clock::now())));
}
template <class Rep, class Period>
sleep_awaitable sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
  // Saturating: a wait too long to represent waits forever.
  return sleep_awaitable(::rouse::platform::deadline_after(d));
}

}  // namespace rouse::async
