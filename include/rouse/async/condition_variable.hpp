// rouse/async/condition_variable.hpp — a condition variable for rouse::async::mutex.
//
//   rouse::async::mutex m;  rouse::async::condition_variable cv;
//   // a consumer task:                         // a producer (task or thread):
//   auto g = co_await m.lock();                  { auto g = co_await m.lock(); q.push(x); }
//   co_await cv.wait(g, [&] { return !q.empty(); });   cv.notify_one();
//   take(q);                                     // a thread: cv.wait_blocking(g, pred)
//
// Purpose: std::condition_variable_any's contract over rouse::async::mutex,
// for tasks and threads on one object. `co_await cv.wait(g)` releases the
// mutex g owns and waits for a notification; `co_await cv.wait(g, pred)`
// waits until pred() holds (evaluated with the mutex held, as std's loop).
// notify_one() wakes one waiter, notify_all() every waiter registered
// before it. A wait may return spuriously (std's rule): the predicate form
// hides it.
//
// The guard's invariant: whatever ends a wait (a notification, a stop, a
// timeout, a spurious wake-up), the waiter owns the mutex again before its
// co_await completes, and `g` owns it. A stopped wait re-acquires the mutex,
// then completes as stopped: a rouse task unwinds with g owning the lock,
// and g's destructor unlocks it; a foreign coroutine gets operation_stopped
// from the co_await, g owning the lock. (A predicate wait whose predicate
// holds once the mutex is owned again completes normally instead: the
// stop lost the race.) A predicate that throws ends the wait with g owning
// the lock, and the co_await rethrows its exception (std's loop does the
// same). The re-acquisition itself cannot be stopped. Only a frame destroyed while it waits ends without the mutex
// (there is no "afterwards"): it leaves the lists it is in, passing on a
// notification or a mutex hand-over it was given.
//
// Releasing: the wait registers on the cv first, then releases the mutex as
// the very last step of its suspension, once it sleeps (a waiter the
// release lets in may run inline, without an executor, and may destroy the
// waiting frame: by then it is a waiter like any other). A wait notified
// (or stopped) before it slept returns without ever releasing the mutex.
//
// Re-acquiring: through the mutex's FIFO queue (`co_await m.lock()`, a
// hand-off from unlock(): no barging), never by spinning. A notify never
// resumes anybody on the notifier's stack: the woken waiter is scheduled on
// its executor and locks from there (without an executor in its
// environment it runs on the notifier's thread: coroutine_waker's
// fallback). The waiting part and the re-acquiring part run in a small
// coroutine of the wait's own, whose frame lives in the wait's awaitable
// (`frame_storage` bytes, in the awaiting frame; the awaitables of its two
// waits live there too, one at a time): no allocation per wait
// (a compiler that made the frame larger would get one heap frame per
// wait; tests/unit/async_condition_variable_test.cpp checks there is none).
//
// Timeouts: wait_for(g, d) / wait_until(g, t) (and the predicate forms)
// are with_timeout over wait() (rouse/async/timeout.hpp): true when
// notified, false when the time passed first, the mutex owned again either
// way; no allocation. The predicate forms return pred() as std's: a
// predicate wait that is stopped or times out re-checks pred() once it owns
// the mutex again and completes normally (true) if it holds. Blocking forms for threads:
// wait_blocking(g), wait_blocking(g, pred), wait_blocking_for(g, d[, pred]),
// wait_blocking_until(g, t[, pred]) (they lock with m.lock_blocking()).
//
// Lifecycle and rules: call wait with the mutex locked by g (debug builds
// check g owns a lock); notify with or without the mutex. Destroy the cv
// only when nobody waits (debug builds check the list is empty).
//
// Misuse (debug: a message naming the type and the rule, then abort): a
// wait with a guard that owns nothing; destroying the cv with waiters.
//
// sizeof: condition_variable 32 bytes; a wait() awaitable 688 bytes on
// x86-64 in the awaiting frame (the driver's frame storage, 256, and the
// larger of its two waits, the mutex's lock at 248, which share their
// bytes; g++ 12 and clang 14 alike); no allocation per
// wait. Fairness: FIFO among queued waiters for notify_one; the mutex is
// re-acquired in its FIFO order. Cost with nobody waiting: notify_one() and
// notify_all() are one RMW and one load, no lock, no system call. A wait:
// the list's lock twice, the mutex's unlock and lock, one executor trip
// for the wake. Across processes: no.
//
// State word: seq_, the number of notify calls (mod 2^32). A wait remembers
// seq_ when it is made (with the mutex held) as its tag; its re-check after
// registering (B2) is ready when seq_ moved. So a notify that comes between
// the unlock and the registration is never lost (it completes the wait
// spuriously at worst, as std allows).
//   notify_one:  seq_ += 1 (A1); if waiters (A2): claim and wake the oldest
//   notify_all:  seq_ += 1 (A1); if waiters (A2): claim and wake every one
//   a waiter that gives up after a notify_one chose it passes it on (a
//   notify_one); docs/design.md, rule 6
//
// Memory ordering: what the notifier did before notify (under the mutex or
// not) happens-before the waiter's return: the seq_ RMW is seq_cst and the
// re-check seq_cst; a claimed waiter is ordered by the claim and its waker;
// and the mutex's lock orders everything done under it. (A)/(B) is the
// Dekker pairing of rouse/async/waiter_list.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "rouse/async/mutex.hpp"
#include "rouse/async/waiter_list.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/timeout.hpp"
#include "rouse/async/waker.hpp"
#endif

namespace rouse::async {

class condition_variable;

namespace detail {
// tests/model: a coroutine wait's steps, taken by hand without a coroutine.
struct cv_model_access;

// A cv wait releases the mutex as the last act of a suspension that sleeps
// (list_awaitable::act_when_asleep(); see cv_drive()). Also under the
// model, whose list turns run the act.
template <>
struct acts_when_asleep<condition_variable> : std::true_type {};
}  // namespace detail

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
namespace detail {

// The predicate of a plain wait: one wake-up is enough.
struct cv_no_predicate {};

// The driver's two waits, one at a time: on the cv's list, then for the
// mutex. Their awaitables live in the wait's state, not in the driver's
// frame, so that they share their bytes (a compiler gives each awaitable
// of a coroutine its own place in the frame).
using cv_list_wait = list_awaitable<condition_variable>;
using cv_lock_wait = decltype(std::declval<mutex&>().lock());
inline constexpr std::size_t cv_wait_bytes = sizeof(cv_list_wait) > sizeof(cv_lock_wait) ? sizeof(cv_list_wait)
                                                                                         : sizeof(cv_lock_wait);
inline constexpr std::size_t cv_wait_align = alignof(cv_list_wait) > alignof(cv_lock_wait) ? alignof(cv_list_wait)
                                                                                           : alignof(cv_lock_wait);

// An awaitable constructed in place in `storage` and destroyed with this
// object (a local of the driver: also when its frame is destroyed while it
// waits).
template <class A>
class cv_in_place {
 public:
  template <class Make>
  cv_in_place(void* storage, Make&& make) : a_(::new (storage) A(make())) {}
  cv_in_place(const cv_in_place&) = delete;
  cv_in_place& operator=(const cv_in_place&) = delete;
  ~cv_in_place() { std::destroy_at(a_); }
  A& get() noexcept { return *a_; }
  bool await_ready() noexcept(noexcept(a_->await_ready())) { return a_->await_ready(); }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> h) noexcept(noexcept(a_->await_suspend(h))) {
    return a_->await_suspend(h);
  }
  decltype(auto) await_resume() { return a_->await_resume(); }

 private:
  A* a_;
};

// The part of a cv wait its driver coroutine sees (in the wait's awaitable).
struct cv_wait_state {
  // The driver's frame: a few pointers and flags (96 bytes with g++ 12,
  // 48 to 152 with clang 14 across the presets' builds, ASan the largest).
  static constexpr std::size_t frame_storage = 256;

  condition_variable* cv = nullptr;
  mutex::guard* guard = nullptr;
  async::mutex* m = nullptr;
  std::uint32_t tag = 0;
  bool stopped = false;       // stopped (or timed out): the driver re-locks, then reports it
  bool via_executor = false;  // an adaptor's target: resume through target.resume(), not by transfer
  std::exception_ptr error{};  // the predicate threw (with the mutex held): rethrown by the co_await
  resume_target target{};
  inplace_stop_token token{};                                   // what the driver's awaits see (none while it re-locks)
  inplace_stop_source stop;                                     // the wait's own source, linked to the awaiter's token
  alignas(cv_wait_align) unsigned char waiting[cv_wait_bytes];  // the wait under way (cv_in_place)
  alignas(std::max_align_t) unsigned char frame[frame_storage];
};

// Counts driver frames that did not fit the storage (tests check it stays 0).
inline std::atomic<long>& cv_heap_frames() noexcept {
  static std::atomic<long> count{0};
  return count;
}

// The driver: a coroutine that unlocks, waits on the cv's list, re-locks
// (not stoppable), re-checks the predicate, and at its end resumes the
// awaiting coroutine. Its frame is placed in the wait's storage.
struct cv_driver {
  struct promise_type {
    cv_wait_state* state;

    template <class... Args>
    explicit promise_type(cv_wait_state& s, Args&&...) noexcept : state(&s) {}

    template <class... Args>
    static void* operator new(std::size_t n, cv_wait_state& s, Args&&...) noexcept {
      if (n <= cv_wait_state::frame_storage) return s.frame;
      // Ordering: relaxed: a statistic.
      cv_heap_frames().fetch_add(1, std::memory_order_relaxed);
      return ::operator new(n, std::nothrow);
    }
    static void operator delete(void* p, std::size_t n) noexcept {
      if (n > cv_wait_state::frame_storage) ::operator delete(p);
    }

    cv_driver get_return_object() noexcept {
      return cv_driver{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    static cv_driver get_return_object_on_allocation_failure() noexcept { return cv_driver{}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      static constexpr bool await_ready() noexcept { return false; }
      // What runs once the driver is done: the awaiting coroutine, normally
      // or stopped (or, for an adaptor, its executor sees it first).
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        cv_wait_state& s = *self.promise().state;
        resume_target const t = s.target;
        if (s.via_executor) {
          // The adaptor's executor (rouse/async/timeout.hpp) sees the
          // completion, stopped or not (completed_stopped()).
          t.resume();
          return std::noop_coroutine();
        }
        if (s.stopped && t.stops_in_place()) return t.on_stopped(t.handle.address());
        return t.handle;  // await_resume throws operation_stopped if it was stopped
      }
      static constexpr void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body catches what it expects

    // The environment the driver's awaits see: the awaiting coroutine's
    // executor, and the wait's stop token while it waits on the cv, none
    // while it re-locks.
    executor* rouse_executor() const noexcept { return state->target.ex; }
    struct env {
      inplace_stop_token token;
      inplace_stop_token query(get_stop_token_t) const noexcept { return token; }
    };
    env get_env() const noexcept { return {state->token}; }
  };
  std::coroutine_handle<promise_type> h{};
};

template <class Pred>
cv_driver cv_drive(cv_wait_state& s, Pred* pred);

}  // namespace detail
#endif  // ROUSE_DETAIL_ASYNC_LIST_COROUTINES

class condition_variable {
 public:
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  template <class Pred>
  class wait_awaitable;
#endif

  condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  ~condition_variable() { waiters_.check_unused_by("rouse::async::condition_variable"); }

  // Wakes the oldest waiter (a wait between its unlock and its registration
  // may complete instead, spuriously or not: never nobody).
  void notify_one() noexcept {
    count_notify();
    waiters_.notify_one();  // (A2) inside: one load when nobody waits
  }
  // Wakes every waiter registered before this call.
  void notify_all() noexcept {
    count_notify();
    waiters_.notify_all();  // (A2) inside
  }

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await cv.wait(g)`: releases g's mutex, waits for a notification,
  // owns the mutex again (g owns it) when it completes.
  [[nodiscard]] inline wait_awaitable<detail::cv_no_predicate> wait(mutex::guard& g) noexcept;
  // `co_await cv.wait(g, pred)`: waits until pred() holds (checked with the
  // mutex held; no suspension if it holds now).
  template <class Pred>
  [[nodiscard]] wait_awaitable<std::decay_t<Pred>> wait(mutex::guard& g, Pred&& pred) noexcept;

  // `co_await cv.wait_for(g, d)`: false when d passed first; g owns the
  // mutex either way. The predicate forms return pred() at the end, as
  // std's: a wait whose time passed (or that was stopped) checks pred() once
  // it owns the mutex again, and completes normally if it holds.
  template <class Rep, class Period>
  [[nodiscard]] auto wait_for(mutex::guard& g, const std::chrono::duration<Rep, Period>& d) noexcept;
  template <class Rep, class Period, class Pred>
  [[nodiscard]] auto wait_for(mutex::guard& g, const std::chrono::duration<Rep, Period>& d, Pred&& pred) noexcept;
  template <class Clock, class Duration>
  [[nodiscard]] auto wait_until(mutex::guard& g, const std::chrono::time_point<Clock, Duration>& t) noexcept;
  template <class Clock, class Duration, class Pred>
  [[nodiscard]] auto wait_until(mutex::guard& g, const std::chrono::time_point<Clock, Duration>& t,
                                Pred&& pred) noexcept;
#endif

  // A thread's waits (the mutex re-locked with lock_blocking()).
  void wait_blocking(mutex::guard& g) noexcept { (void)wait_blocking_until(g, ::rouse::detail::no_deadline{}); }
  template <class Pred>
  void wait_blocking(mutex::guard& g, Pred pred) {
    while (!pred()) wait_blocking(g);
  }
  // False when `d` / `t` passed first (g owns the mutex either way); the
  // predicate forms return pred() at the end, as std's.
  template <class Rep, class Period>
  [[nodiscard]] bool wait_blocking_for(mutex::guard& g, const std::chrono::duration<Rep, Period>& d) noexcept {
    return wait_blocking_until(g, ::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool wait_blocking_until(mutex::guard& g, const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return wait_blocking_until(g, ::rouse::detail::deadline_at(t));
  }
  template <class Rep, class Period, class Pred>
  bool wait_blocking_for(mutex::guard& g, const std::chrono::duration<Rep, Period>& d, Pred pred) {
    auto const t = ::rouse::platform::deadline_after(d);
    while (!pred())
      if (!wait_blocking_until(g, t)) return pred();
    return true;
  }
  template <class Clock, class Duration, class Pred>
  bool wait_blocking_until(mutex::guard& g, const std::chrono::time_point<Clock, Duration>& t, Pred pred) {
    while (!pred())
      if (!wait_blocking_until(g, t)) return pred();
    return true;
  }

 private:
  friend class list_wait<condition_variable>;
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  friend class list_awaitable<condition_variable>;
  template <class Pred>
  friend detail::cv_driver detail::cv_drive(detail::cv_wait_state&, Pred*);
  template <class Pred>
  friend class wait_awaitable;
#endif
  template <class P, class Deadline>
  friend bool wait_blocking(P&, std::uintptr_t, const Deadline&) noexcept;
  friend struct detail::cv_model_access;

  // A notify's (A1).
  void count_notify() noexcept {
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_cv_notify_relaxed)) {
      seq_.fetch_add(1, std::memory_order_relaxed);  // BROKEN on purpose (model tests only)
      return;
    }
    // (A1) seq_cst: pairs with (B2) in try_acquire().
    seq_.fetch_add(1, std::memory_order_seq_cst);
  }

  // The tag of a wait made now (the caller holds the mutex).
  std::uint32_t sequence() const noexcept {
    // Ordering: seq_cst: a notify before it (under the mutex) is seen.
    return seq_.load(std::memory_order_seq_cst);
  }

  template <class Deadline>
  bool wait_blocking_until(mutex::guard& g, const Deadline& deadline) noexcept {
    ROUSE_CHECK_USAGE(g.owns_lock(), "rouse::async::condition_variable", "wait with a guard that owns no lock");
    async::mutex* const m = g.mutex();
    std::uint32_t tag = sequence();
    g.unlock();
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_cv_tag_after_unlock))
      tag = sequence();  // BROKEN on purpose (model tests only): a notify since the unlock is missed
    bool const notified = async::wait_blocking(*this, tag, deadline);
    g = m->lock_blocking();
    return notified;
  }

  // The check and the re-check (B2): ready once a notify came since the tag.
  check_result try_acquire(std::uintptr_t tag) noexcept {
    // (B2) seq_cst: pairs with (A1) in notify_one() / notify_all().
    return seq_.load(std::memory_order_seq_cst) != static_cast<std::uint32_t>(tag) ? check_result::ready
                                                                                   : check_result::not_ready;
  }
  // A waiter chosen by notify_one() that gives up passes the wake-up on.
  void pass_on() noexcept { notify_one(); }
  waiter_list& waiters() noexcept { return waiters_; }

  ::rouse::detail::atomic<std::uint32_t> seq_{0};
  waiter_list waiters_;
};

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES

namespace detail {

// The driver's body. `pred` is null for a plain wait.
// The unlock of a wait that sleeps (list_awaitable::act_when_asleep): its
// last act, on the mutex alone (the waiting frame may be gone during it).
inline void cv_unlock(void* m) noexcept { static_cast<async::mutex*>(m)->unlock(); }

template <class Pred>
cv_driver cv_drive(cv_wait_state& s, Pred* pred) {
  for (;;) {
    // The mutex goes once the wait is registered and sleeps, as the last act
    // of its await_suspend: a waiter the unlock lets in may run inline and
    // destroy this frame, which by then waits like any waiter (and leaves
    // the cv's list as one). A wait that does not sleep (notified since the
    // tag, or stopped, before it slept) keeps the mutex: nothing to re-lock.
    bool slept = false;
    {
      cv_in_place<cv_list_wait> w(s.waiting, [&] { return cv_list_wait(*s.cv, s.tag); });
      w.get().act_when_asleep(&cv_unlock, s.guard->release());
      try {
        co_await w;
      } catch (const operation_stopped&) {
        s.stopped = true;
      }
      slept = w.get().slept();
    }
    if (!slept) {
      *s.guard = mutex::guard(*s.m, std::adopt_lock);  // never released
    } else {
      s.token = inplace_stop_token{};  // the re-lock cannot be stopped
      cv_in_place<cv_lock_wait> l(s.waiting, [&] { return s.m->lock(); });
      *s.guard = co_await l;
    }
    if constexpr (std::is_same_v<Pred, cv_no_predicate>) {
      co_return;  // notified, spuriously woken, or stopped
    } else {
      // The predicate runs with the mutex held; its exception ends the wait
      // (the mutex held) and is rethrown by the co_await, as std's loop.
      bool holds = false;
      try {
        holds = static_cast<bool>((*pred)());
      } catch (...) {
        s.error = std::current_exception();
        s.stopped = false;
        co_return;
      }
      if (s.stopped) {
        // Stopped or timed out: a predicate that holds now wins (std's
        // wait_for returns pred() at the timeout), else it reports stopped.
        if (holds) s.stopped = false;
        co_return;
      }
      if (!holds) {
        s.tag = s.cv->sequence();  // the mutex is held
        s.token = s.stop.get_token();
        continue;
      }
    }
    co_return;
  }
}

}  // namespace detail

template <class Pred>
class condition_variable::wait_awaitable {
 public:
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor

  wait_awaitable(condition_variable& cv, mutex::guard& g,
                 Pred pred) noexcept(std::is_nothrow_move_constructible_v<Pred>)
      : pred_(std::move(pred)) {
    ROUSE_CHECK_USAGE(g.owns_lock(), "rouse::async::condition_variable", "wait with a guard that owns no lock");
    s_.cv = &cv;
    s_.guard = &g;
    s_.m = g.mutex();
    s_.tag = cv.sequence();  // the caller holds the mutex
  }
  // A fresh awaitable for the same wait; only before it is awaited.
  wait_awaitable(wait_awaitable&& o) noexcept(std::is_nothrow_move_constructible_v<Pred>) : pred_(std::move(o.pred_)) {
    ROUSE_CHECK_USAGE(!o.driver_.h, "rouse::async::condition_variable::wait_awaitable", "moved after it was awaited");
    s_.cv = o.s_.cv;
    s_.guard = o.s_.guard;
    s_.m = o.s_.m;
    s_.tag = o.s_.tag;
  }
  wait_awaitable(const wait_awaitable&) = delete;
  wait_awaitable& operator=(const wait_awaitable&) = delete;
  // A frame destroyed while it waits: the driver's frame goes first (its
  // wait leaves the cv's list, or its lock leaves the mutex's queue, passing
  // on what it was given), then the link to the awaiter's token.
  ~wait_awaitable() { finish(); }

  bool await_ready() noexcept {
    if constexpr (std::is_same_v<Pred, detail::cv_no_predicate>) {
      return false;
    } else {
      try {
        return static_cast<bool>(pred_());
      } catch (...) {
        s_.error = std::current_exception();  // rethrown by await_resume, the mutex held
        return true;
      }
    }
  }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    resume_target const t(h);
    auto const token = get_stop_token(get_env(h.promise()));
    if (token.stop_requested()) {  // nothing done yet: the mutex is still held
      s_.stopped = true;
      return t.stopped_from_suspend(h);
    }
    start(t, token);
    return driver_.h;  // runs the driver now, by symmetric transfer
  }

  // For adaptors (with_timeout): as list_awaitable's.
  template <class Token>
  std::coroutine_handle<> await_suspend_with(std::coroutine_handle<> h, const resume_target& target,
                                             const Token& token) noexcept {
    if (token.stop_requested()) {
      s_.stopped = true;
      return h;  // target.on_stopped is the adaptor's business: it reads completed_stopped()
    }
    s_.via_executor = true;
    start(target, token);
    driver_.h.resume();  // the completion reaches target.ex (now or later): touch nothing after
    return std::noop_coroutine();
  }
  [[nodiscard]] bool completed_stopped() const noexcept { return s_.stopped; }
  bool await_resume_nothrow() noexcept {
    finish();
    return !s_.stopped;
  }
  // The predicate's exception, if it threw (adaptors rethrow it).
  std::exception_ptr take_error() noexcept { return std::exchange(s_.error, nullptr); }

  void await_resume() {
    finish();
    if (s_.error) std::rethrow_exception(std::exchange(s_.error, nullptr));
    if (s_.stopped) throw operation_stopped();
  }

 private:
  template <class Token>
  void start(const resume_target& t, const Token& token) noexcept {
    s_.target = t;
    link_.emplace(token, forward{&s_.stop});
    s_.token = s_.stop.get_token();
    if constexpr (std::is_same_v<Pred, detail::cv_no_predicate>)
      driver_ = detail::cv_drive<Pred>(s_, nullptr);
    else
      driver_ = detail::cv_drive<Pred>(s_, &pred_);
    if (!driver_.h) std::terminate();  // a heap frame that could not be had
  }
  void finish() noexcept {
    if (driver_.h) std::exchange(driver_.h, {}).destroy();
    link_.reset();
  }

  struct forward {
    inplace_stop_source* s;
    void operator()() noexcept { s->request_stop(); }
  };

  [[no_unique_address]] Pred pred_;
  detail::cv_driver driver_{};
  detail::stop_slot<forward> link_;
  detail::cv_wait_state s_{};  // last: the driver's frame (in it) dies first, by finish()
};

inline condition_variable::wait_awaitable<detail::cv_no_predicate> condition_variable::wait(mutex::guard& g) noexcept {
  return wait_awaitable<detail::cv_no_predicate>(*this, g, detail::cv_no_predicate{});
}
template <class Pred>
condition_variable::wait_awaitable<std::decay_t<Pred>> condition_variable::wait(mutex::guard& g, Pred&& pred) noexcept {
  return wait_awaitable<std::decay_t<Pred>>(*this, g, std::forward<Pred>(pred));
}

template <class Rep, class Period>
auto condition_variable::wait_for(mutex::guard& g, const std::chrono::duration<Rep, Period>& d) noexcept {
  return with_timeout(wait(g), d);
}
template <class Rep, class Period, class Pred>
auto condition_variable::wait_for(mutex::guard& g, const std::chrono::duration<Rep, Period>& d, Pred&& pred) noexcept {
  return with_timeout(wait(g, std::forward<Pred>(pred)), d);
}
template <class Clock, class Duration>
auto condition_variable::wait_until(mutex::guard& g, const std::chrono::time_point<Clock, Duration>& t) noexcept {
  return with_deadline(wait(g), t);
}
template <class Clock, class Duration, class Pred>
auto condition_variable::wait_until(mutex::guard& g, const std::chrono::time_point<Clock, Duration>& t,
                                    Pred&& pred) noexcept {
  return with_deadline(wait(g, std::forward<Pred>(pred)), t);
}

#endif  // ROUSE_DETAIL_ASYNC_LIST_COROUTINES

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(condition_variable) == 32);
#endif

}  // namespace rouse::async
