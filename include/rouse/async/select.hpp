// rouse/async/select.hpp — wait for the first of several channel operations
// (or any rouse awaitable), from a task or from a thread.
//
//   namespace ch = rouse::async::channel;
//   auto r = co_await ch::select(ch::recv(rx1), ch::recv(rx2), ch::reserve(tx), ch::timeout(5ms));
//   switch (r.index()) {
//     case 0: use(std::get<0>(r)); break;     // recv_result<T1> from rx1
//     case 1: use(std::get<1>(r)); break;     // recv_result<T2> from rx2
//     case 2: std::get<2>(r).send(v); break;  // permit<U>: a slot in tx, sent without waiting
//     case 3: break;                          // timed_out: nothing was ready in 5 ms
//   }
//   auto r = co_await ch::select(ch::send(tx, value), ch::recv(rx));  // value moved from only if sent
//   auto r = co_await ch::select(ch::recv(rx), ch::op(sem.acquire()));  // any awaitable as a branch
//   auto r = ch::select_blocking(ch::recv(rx), ch::timeout(5ms));       // a plain thread
//
// Branches
//   recv(rx)           completes with recv_result<T>: a value, or closed
//   reserve(tx)        completes with permit<T>: a slot, or an empty permit
//                      (status closed)
//   send(tx, v)        completes with send_result<T>: v (an lvalue) is moved
//                      from only when this branch wins (ok: into the
//                      channel; closed: into the send_result, handed back);
//                      a losing send branch leaves v untouched
//   timeout(d) / deadline(t)   completes with timed_out_t once the steady
//                      clock reached the deadline (never early)
//   op(a)              any rouse awaitable or task: a semaphore's acquire(),
//                      a mutex's lock(), sleep_for(d), a join_handle, a
//                      task<T>... Completes with what `co_await a` returns
//                      (std::monostate for void); its exception is rethrown
//                      by the select. Tasks only (see "Generic branches").
// The result is a std::variant with one alternative per branch, in order
// (index() names the branch that completed).
//
// Contract
// - Exactly one branch completes, and only its result is returned. The
//   channel branches are exact: a losing recv took no value; a losing
//   reserve or send holds no slot (a slot that was handed to it while the
//   select waited is passed on to the next sender); a losing send moved
//   nothing.
// - Fairness: the branches are tried in a random order (a per-thread
//   xorshift), so among those ready at the moment of a check each is as
//   likely to win, and none starves another.
// - Rendezvous: a recv branch on a rendezvous channel gives its demand while
//   the select waits (as a waiting recv does); if another branch wins, the
//   demand is taken back, or, when a sender took it first, the value stays
//   in the channel for the next receive (never lost).
// - select(...) is a rouse::async::task: co_await it from a task (it runs on
//   the awaiting task's executor and honours its stop token: a stopped
//   select completes as stopped, having taken nothing). It needs an
//   executor (a wake never resumes it on the notifier's stack).
// - The receivers named in recv branches are waited on by this select alone
//   while it runs (one consumer); the same receiver twice is misuse.
//
// Generic branches: op(a)
// - The select runs `co_await a` as a child coroutine on its own executor,
//   with its own stop source chained to the select's stop token. The child
//   starts when the select first has to wait (a select that finds a channel
//   branch ready at once never starts it), and runs inline until its first
//   suspension, as when_any's children do.
// - When another branch wins (or the select is stopped, or another op
//   throws), each running child is asked to stop and is awaited before the
//   select returns: nothing the select started outlives it. A child that
//   does not honour stop requests (a task that ignores its token) keeps
//   the select waiting until it completes; a join_handle's await ends at
//   once, its task running on, detached.
// - "Nothing lost" for op branches: a losing child that completed anyway
//   (it was ready when another ready branch was chosen, or its completion
//   raced the stop request) gives back what it took, or has its result
//   destroyed, before the select returns. A notify's notified() and an
//   auto_reset_event's wait() give back: a notify_one's permit they took
//   goes on to the next waiter, or is stored (as tokio's dropped Notified
//   does). For an RAII result destruction is the give-back: a semaphore
//   permit is released, a mutex guard unlocks. Anything else is dropped: a
//   join_handle's value, a task's result (a task that awaited a notify
//   inside cannot give it back: put the notified() itself in the branch).
//   For a value that must not be lost, use a channel branch (recv /
//   reserve / send): those are exact.
// - A child that completes as stopped on its own (not because it lost)
//   completes the select as stopped; one that throws makes the select throw
//   that exception (after the other children were stopped and awaited).
// - `a` is moved into the select when it can be (rouse's awaitables and
//   tasks: a semaphore's acquire(), a mutex's lock(), sleep_for(d), a
//   channel's recv / send / reserve, join_handles); an awaitable that cannot
//   be moved (another library's) and any lvalue are referred to: it must
//   outlive the select, which holds when the select is awaited in the same
//   expression.
// - op branches need an executor: select_blocking() refuses them (a
//   compile-time error).
// - A select with op branches is destroyed (its awaiting frame destroyed
//   while it waits) only while no child of it has been woken and not yet
//   run: such a child is scheduled on the select's executor, a wake in
//   flight (docs/async.md), as for when_any's children. A coroutine resumed
//   inline by the same call that woke a child (a release(n) that serves
//   both) must not destroy the select.
// - Cost: none unless an op branch is present (the channel branches' code is
//   the same). Per op branch that has to wait: one child coroutine frame
//   (rouse's frame pool), one stop callback on the select's token, one RMW
//   per round to arm and one to disarm.
//
// From a thread: select_blocking(branches...)
//   Blocks the calling thread (its thread_parker) until one branch
//   completes and returns the same variant. Branches: recv, reserve, send,
//   timeout / deadline (the deadline form: the thread parks with a kernel
//   deadline, never early). The same receiver must not be waited on by a
//   task at the same time.
//
// Cost: one task frame per select (rouse's frame pool); when nothing is
// ready at once, one registration per branch (a diatomic_waker arm per
// recv, a waiter-list node per reserve/send, a timer), and the same
// withdrawals when it wakes; no allocation per wait beyond the frame.
// A wake that finds nothing ready (a stale notification) waits again.
// How it waits: every branch registers a wake on its channel (recv: the
// receiver's diatomic_waker through arm_external; reserve/send: a node in the
// senders' waiter list, whose claim may hand it a slot; timeout: a timer).
// The first wake resumes the select (an arming guard decides who resumes:
// detail/select_core.hpp has the table); it withdraws every registration
// (waiting for a wake in flight on another thread to return before the
// frame can go), keeps a slot a reserve/send branch was handed, then checks
// the branches in a random order and completes the first that is ready,
// giving back the slots of the others. tests/model/async_select_model.cpp
// checks this handshake.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "rouse/async/channel.hpp"
#include "rouse/async/detail/select_core.hpp"
#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/thread_parker.hpp"

namespace rouse::async::channel {

// The result of a timeout branch.
struct timed_out_t {};

namespace detail {

// A task's round: resumes the select on its executor; without op branches
// a stop completes it as stopped in place (it holds nothing to join).
struct task_core : select_core {
  resume_target target{};
  inplace_stop_token token{};  // the select's: op children chain to it
  bool joins = false;          // op branches: a stop resumes the select, which joins them

  task_core() noexcept { resume = &resume_task; }
  static void resume_task(select_core* c) noexcept {
    auto* const self = static_cast<task_core*>(c);
    // Ordering: relaxed: fire()'s acq_rel exchange ordered the stop's store.
    if (!self->joins && self->stopped.load(std::memory_order_relaxed) != 0 && self->target.stops_in_place())
      self->target.resume_stopped();
    else
      self->target.resume();
  }
};

// A thread's round: a fire unparks it; timeout branches lend it their
// deadline (no timer).
struct thread_core : select_core {
  thread_parker parker;
  clock::time_point deadline = clock::time_point::max();

  thread_core() noexcept { resume = &unpark; }
  static void unpark(select_core* c) noexcept { static_cast<thread_core*>(c)->parker.unpark(); }
};

inline std::uint32_t select_random() noexcept {
  thread_local std::uint32_t x = 0x9e3779b9u ^ static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(&x));
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

struct select_access {
  template <class T>
  static channel_state<T>& of(receiver<T>& rx) noexcept {
    return rx.state();
  }
  template <class T>
  static channel_state<T>& of(sender<T>& tx) noexcept {
    return tx.state();
  }
  template <class T>
  static permit<T> make_permit(channel_state<T>* st) noexcept {
    return permit<T>(st);
  }
  template <class T>
  static permit<T> make_empty(status why) noexcept {
    return permit<T>(why);
  }
};

// ---- channel branches (recv_branch, slot_branch: detail/select_core.hpp) ------

template <class T>
class reserve_branch : public slot_branch<T> {
 public:
  using result_type = permit<T>;
  explicit reserve_branch(sender<T>& tx) noexcept : slot_branch<T>(select_access::of(tx)) {}
  reserve_branch(reserve_branch&&) noexcept = default;
  std::optional<result_type> poll() noexcept {
    std::optional<status> const s = this->poll_slot();
    if (!s) return std::nullopt;
    if (*s != status::ok) return select_access::make_empty<T>(*s);
    this->held_ = false;  // handed to the permit
    return select_access::make_permit<T>(this->st_);
  }
};

template <class T>
class send_branch : public slot_branch<T> {
 public:
  using result_type = send_result<T>;
  send_branch(sender<T>& tx, T& v) noexcept : slot_branch<T>(select_access::of(tx)), v_(&v) {}
  send_branch(send_branch&& o) noexcept : slot_branch<T>(std::move(o)), v_(o.v_) {}
  std::optional<result_type> poll() noexcept {
    std::optional<status> const s = this->poll_slot();
    if (!s) return std::nullopt;
    channel::status r = *s;
    if (r == status::ok) {
      this->held_ = false;
      r = this->st_->push(*v_);
    }
    // Built in place, on one path: g++ 12 at -O2 otherwise warns that a
    // moved result's empty optional may be used uninitialized
    // (-Wmaybe-uninitialized, a false positive).
    std::optional<result_type> out;
    if (r == status::ok)
      out.emplace();
    else
      out.emplace(r, std::move(*v_));
    return out;
  }

 private:
  T* v_;
};

class timeout_branch {
 public:
  using result_type = timed_out_t;
  explicit timeout_branch(clock::time_point deadline) noexcept : deadline_(deadline) {}
  timeout_branch(timeout_branch&& o) noexcept : deadline_(o.deadline_) {}

  // Its timer fired (the executor's clock reached the deadline), or the
  // steady clock did.
  std::optional<result_type> poll() noexcept {
    // Ordering: acquire: pairs with on_timeout's release.
    if (fired_.load(std::memory_order_acquire) || clock::now() >= deadline_) return timed_out_t{};
    return std::nullopt;
  }
  bool arm(task_core* core) {
    if (fired_.load(std::memory_order_acquire) || clock::now() >= deadline_) return false;
    core_ = core;
    timer_.start(core->target.ex, deadline_, this);
    return true;
  }
  // A thread: no timer; the thread parks until the earliest deadline.
  bool arm(thread_core* core) noexcept {
    if (clock::now() >= deadline_) return false;
    if (deadline_ < core->deadline) core->deadline = deadline_;
    return true;
  }
  void disarm() noexcept { timer_.finish(); }
  void lose() noexcept {}

 private:
  static void on_timeout(timeout_branch* self) noexcept {
    // Ordering: release: pairs with poll()'s acquire.
    self->fired_.store(true, std::memory_order_release);
    self->core_->fire();
  }
  clock::time_point deadline_;
  std::atomic<bool> fired_{false};
  select_core* core_ = nullptr;
  wait_timer<timeout_branch, &timeout_branch::on_timeout> timer_;
};

// ---- the generic branch ---------------------------------------------------------

template <class S>
using op_awaiter_t = decltype(::rouse::async::detail::get_awaiter(std::declval<S&&>()));
template <class S>
using op_value_t = decltype(std::declval<std::remove_cvref_t<op_awaiter_t<S>>&>().await_resume());
template <class V>
using op_result_t = std::conditional_t<std::is_void_v<V>, std::monostate, std::decay_t<V>>;

// A child that completed as stopped on its own: the select completes as
// stopped (thrown by poll(), caught by select()).
struct op_stopped {};

class op_base;

// The child coroutine of an op branch: runs `co_await a` on the select's
// executor with the branch's stop token, and reports to its branch.
struct op_child {
  struct promise_type : ::rouse::async::detail::task_promise_base {
    op_base* owner = nullptr;
    op_child get_return_object() noexcept { return op_child{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body catches
    struct final_awaiter {
      static constexpr bool await_ready() noexcept { return false; }
      inline void await_suspend(std::coroutine_handle<promise_type> self) noexcept;
      static constexpr void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    // Completed as stopped (inside a stop path: nothing is reported here):
    // the child itself runs next, on its executor; its co_await throws
    // operation_stopped, which the body records.
    inline std::coroutine_handle<> unhandled_stopped() noexcept;
  };
  std::coroutine_handle<promise_type> h;
};

// The branch's side of the child: its word, its stop source, its flag.
//   idle  = 0   the child runs (or has not started); no round armed
//   armed = 1   a round armed: the child's completion fires core_
//   done  = 2   the child completed (value, error or stopped): its result is set
class op_base {
 public:
  static constexpr std::uint32_t idle = 0;   // running, no round armed
  static constexpr std::uint32_t armed = 1;  // a round waits on the child
  static constexpr std::uint32_t done = 2;   // completed: the result is set

  op_base() noexcept = default;
  op_base(op_base&&) noexcept {}  // before the child started: nothing to move
  op_base(const op_base&) = delete;
  op_base& operator=(const op_base&) = delete;
  ~op_base() {
    // A select destroyed while its child runs (its frame destroyed while it
    // waits): the child's frame goes as any suspended task's does.
    if (child_) child_.destroy();
  }

  // The child completed: idle -> done (the next round's arm finds it) |
  // armed -> done (fire the round). Its last touch of the branch.
  void child_done() noexcept {
    // Ordering: acq_rel: release publishes the result to poll()'s acquire;
    // acquire reads core_ and the flag's reset (arm's release).
    if (phase_.exchange(done, std::memory_order_acq_rel) == armed) select_core::fired(core_, flag_);
  }
  void child_stopped() noexcept { stopped_ = true; }
  [[nodiscard]] bool child_was_stopped() const noexcept { return stopped_; }

  // A join round after the select chose: waits for a running child only.
  // True when armed, or when there is nothing to wait for (no child, or it
  // completed: the winner, or a loser that ended, in an earlier round or
  // since the select looked: the round then fires if nothing got armed);
  // false when the child completed while being armed (the round fires).
  bool arm_join(task_core* core) noexcept {
    if (!child_ || completed()) return true;
    return arm_round(core);
  }
  [[nodiscard]] bool armed_now() const noexcept { return armed_; }
  void disarm() noexcept {
    if (!armed_) return;
    armed_ = false;
    std::uint32_t expected = armed;
    // armed -> idle: the child will not touch core_. Ordering: acquire (on
    // failure: the child completed, its fire is in flight: wait for it).
    if (!phase_.compare_exchange_strong(expected, idle, std::memory_order_acquire, std::memory_order_acquire))
      flag_.wait();
  }
  // Another branch won: ask the child to stop (it is awaited afterwards).
  void lose() noexcept {
    if (child_) stop_.request_stop();
  }
  [[nodiscard]] bool running() const noexcept {
    // Ordering: acquire: pairs with child_done()'s exchange.
    return child_ && phase_.load(std::memory_order_acquire) != done;
  }
  // After the join: the child's frame goes, and a loser's result with it.
  void finish() noexcept {
    if (child_) std::exchange(child_, {}).destroy();
    link_.reset();
  }

 protected:
  bool arm_round(task_core* core) noexcept {
    core_ = core;
    flag_.reset();
    std::uint32_t expected = idle;
    // idle -> armed. Ordering: release: publishes core_ and the flag's reset
    // to child_done()'s exchange; acquire on failure: the child's result.
    armed_ = phase_.compare_exchange_strong(expected, armed, std::memory_order_acq_rel, std::memory_order_acquire);
    return armed_;
  }
  bool completed() const noexcept {
    // Ordering: acquire: pairs with child_done()'s exchange.
    return phase_.load(std::memory_order_acquire) == done;
  }

  struct forward_stop {
    inplace_stop_source* s;
    void operator()() noexcept { s->request_stop(); }
  };

  inplace_stop_source stop_;  // first: the child's frame (callbacks on it) dies before it
  ::rouse::async::detail::stop_slot<forward_stop> link_;
  std::coroutine_handle<op_child::promise_type> child_{};
  std::atomic<std::uint32_t> phase_{idle};
  task_core* core_ = nullptr;
  bool armed_ = false;
  bool stopped_ = false;  // the child completed as stopped
  fire_flag flag_;
};

inline void op_child::promise_type::final_awaiter::await_suspend(std::coroutine_handle<promise_type> self) noexcept {
  self.promise().owner->child_done();
}
inline std::coroutine_handle<> op_child::promise_type::unhandled_stopped() noexcept {
  owner->child_stopped();
  return std::coroutine_handle<promise_type>::from_promise(*this);
}

template <class S, class R>
op_child run_op(S& a, std::optional<R>& value, std::exception_ptr& error, const bool& stopped) {
  try {
    if constexpr (std::is_void_v<op_value_t<S>>) {
      co_await static_cast<S&&>(a);
      value.emplace();
    } else {
      value.emplace(co_await static_cast<S&&>(a));
    }
  } catch (const operation_stopped&) {
    if (!stopped) error = std::current_exception();
  } catch (...) {
    error = std::current_exception();
  }
}

// S: the awaitable as stored (a value, or a reference: see the header).
template <class S>
class op_branch : public op_base {
 public:
  using result_type = op_result_t<op_value_t<S>>;

  explicit op_branch(S&& a) noexcept(std::is_nothrow_constructible_v<S, S&&>) : a_(static_cast<S&&>(a)) {}
  op_branch(op_branch&& o) noexcept(std::is_nothrow_constructible_v<S, S&&>)
      : op_base(std::move(o)), a_(static_cast<S&&>(o.a_)) {}
  ~op_branch() {
    if (child_) std::exchange(child_, {}).destroy();  // before a_ and value_ go
  }

  // The child's result once it completed: its value; its exception
  // rethrown; op_stopped when it completed as stopped.
  std::optional<result_type> poll() {
    if (!completed()) return std::nullopt;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    if (stopped_) throw op_stopped{};
    std::optional<result_type> r = std::move(value_);
    value_.reset();  // the winner's: finish() gives back only a loser's
    return r;
  }
  // Registers on the child; the first round starts it (inline, to its first
  // suspension). False: it completed.
  bool arm(task_core* core) {
    if (!arm_round(core)) return false;
    if (!child_) start(core);
    return true;
  }
  // After the join. A loser that completed anyway still holds its result:
  // an awaitable that can give back what it took does (a notify's permit
  // goes on to the next waiter); any other result is destroyed.
  void finish() noexcept {
    op_base::finish();
    if constexpr (requires(std::remove_reference_t<S>& a) { a.give_back(); }) {
      if (value_) a_.give_back();
    }
    value_.reset();
  }

 private:
  void start(task_core* core) noexcept {
    link_.emplace(core->token, forward_stop{&stop_});  // the select's stop reaches the child
    op_child c = run_op<S, result_type>(a_, value_, error_, stopped_);
    c.h.promise().owner = this;
    c.h.promise().bind(std::noop_coroutine(), core->target.ex, stop_.get_token(), nullptr, nullptr);
    child_ = c.h;
    c.h.resume();  // may complete inline: then it fired this round
  }

  S a_;
  std::optional<result_type> value_;
  std::exception_ptr error_;
};

template <class B>
inline constexpr bool is_op_v = std::is_base_of_v<op_base, B>;

// One round's wait on every branch (Join: on the running op children only,
// after the select chose; no stop). Single-shot: resumes on the first wake
// (or at once when a branch turned ready while arming); the select
// re-polls. await_resume: true when the select was stopped (only with op
// branches: without them a stop completes the select in place).
template <bool Join, class... B>
class wait_any {
  static constexpr bool has_ops = (is_op_v<B> || ...);

 public:
  using rouse_affine = void;
  explicit wait_any(std::tuple<B...>& bs) noexcept : bs_(&bs) {}
  wait_any(const wait_any&) = delete;
  wait_any& operator=(const wait_any&) = delete;
  ~wait_any() {
    stop_.reset();
    if (armed_) {
      // The frame goes while it waits: a branch that fires from now on
      // finds `woken` and resumes nothing. Ordering: acq_rel, as fire().
      core_.phase.exchange(select_core::woken, std::memory_order_acq_rel);
      disarm_all();
    }
  }

  static constexpr bool await_ready() noexcept { return false; }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    core_.target = resume_target(h);
    core_.joins = has_ops;
    if (core_.target.ex == nullptr)
      throw std::logic_error("rouse::async::channel::select: the awaiting coroutine has no executor");
    inplace_stop_token token{};
    if constexpr (!Join) {
      token = get_stop_token(get_env(h.promise()));
      core_.token = token;
      if (token.stop_requested()) return stopped_now(h);
    }
    armed_ = true;
    bool ready = false;
    if constexpr (Join) {
      bool any_armed = false;
      std::apply(
          [&](auto&... b) {
            ((ready = ready ||
                      [&](auto& x) {
                        if constexpr (is_op_v<std::remove_cvref_t<decltype(x)>>) {
                          bool const fired = !x.arm_join(&core_);
                          any_armed = any_armed || x.armed_now();
                          return fired;
                        } else {
                          return false;
                        }
                      }(b)),
             ...);
          },
          *bs_);
      // Every child that ran when the select looked has ended since (on
      // another thread): nothing would fire the round.
      if (!any_armed) ready = true;
    } else {
      std::apply([&](auto&... b) { ((ready = ready || !b.arm(&core_)), ...); }, *bs_);
    }
    if (ready) core_.fire();  // arming -> woken
    if constexpr (!Join) stop_.emplace(token, on_stop{this});
    if (core_.finish_arming()) return std::noop_coroutine();
    if (!Join && core_.stopped.load(std::memory_order_relaxed) != 0) {
      stop_.reset();
      disarm_all();
      return stopped_now(h);
    }
    return h;
  }

  // True when the select was stopped: the caller completes stopped (a stop
  // that came after a branch fired, before the select ran again, lands
  // here, not in await_suspend). A promise that cannot complete stopped in
  // place gets operation_stopped instead.
  bool await_resume() {
    stop_.reset();
    if (armed_) disarm_all();
    bool const stopped = core_.stopped.load(std::memory_order_relaxed) != 0;
    if constexpr (!has_ops) {
      if (stopped && !core_.target.stops_in_place()) throw operation_stopped();
    }
    return stopped;
  }

 private:
  struct on_stop {
    wait_any* self;
    void operator()() noexcept {
      // Ordering: relaxed: fire()'s acq_rel exchange orders it.
      self->core_.stopped.store(1, std::memory_order_relaxed);
      self->core_.fire();
    }
  };

  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    core_.stopped.store(1, std::memory_order_relaxed);
    if (has_ops || !core_.target.stops_in_place()) return h;  // await_resume reports it
    return core_.target.on_stopped(h.address());
  }
  void disarm_all() noexcept {
    armed_ = false;
    std::apply([](auto&... b) { (b.disarm(), ...); }, *bs_);
  }

  std::tuple<B...>* bs_;
  task_core core_;
  bool armed_ = false;
  ::rouse::async::detail::stop_slot<on_stop> stop_;
};

// Completes the awaiting rouse task as stopped (its promise's stopped path).
struct complete_stopped {
  using rouse_affine = void;
  static constexpr bool await_ready() noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
    return h.promise().unhandled_stopped();
  }
  [[noreturn]] void await_resume() { throw operation_stopped(); }  // the awaiter cannot take a stop
};

template <class Result, std::size_t I, class Tuple>
bool poll_one(Tuple& bs, std::size_t which, std::optional<Result>& out) {
  if (which != I) return false;
  auto r = std::get<I>(bs).poll();
  if (!r) return false;
  out.emplace(std::in_place_index<I>, std::move(*r));
  return true;
}

template <class Result, class Tuple, std::size_t... I>
bool poll_at(Tuple& bs, std::size_t which, std::optional<Result>& out, std::index_sequence<I...>) {
  return (poll_one<Result, I>(bs, which, out) || ...);
}

// Checks every branch once, in a random order drawn as they are tried
// (Fisher-Yates): the first ready one in it is a uniform choice among the
// ready ones (a random start and then the branches in turn would favour a
// ready branch that follows one that is not ready).
template <class Result, class... B>
void poll_all(std::tuple<B...>& bs, std::optional<Result>& out) {
  constexpr std::size_t n = sizeof...(B);
  std::array<std::size_t, n> order;
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  for (std::size_t k = 0; k < n && !out; ++k) {
    if (k + 1 < n) std::swap(order[k], order[k + select_random() % (n - k)]);
    poll_at<Result>(bs, order[k], out, std::index_sequence_for<B...>{});
  }
}

template <class... B>
bool children_running(std::tuple<B...>& bs) noexcept {
  return std::apply(
      [](auto&... b) {
        return ([](auto& x) {
          if constexpr (is_op_v<std::remove_cvref_t<decltype(x)>>)
            return x.running();
          else
            return false;
        }(b) || ...);
      },
      bs);
}

template <class... B>
void finish_children(std::tuple<B...>& bs) noexcept {
  std::apply(
      [](auto&... b) {
        (
            [](auto& x) {
              if constexpr (is_op_v<std::remove_cvref_t<decltype(x)>>) x.finish();
            }(b),
            ...);
      },
      bs);
}

}  // namespace detail

// ---- branch makers -------------------------------------------------------------

template <class T>
detail::recv_branch<T> recv(receiver<T>& rx) noexcept {
  return detail::recv_branch<T>(detail::select_access::of(rx));
}
template <class T>
detail::reserve_branch<T> reserve(sender<T>& tx) noexcept {
  return detail::reserve_branch<T>(tx);
}
template <class T>
detail::send_branch<T> send(sender<T>& tx, T& value) noexcept {
  return detail::send_branch<T>(tx, value);
}
template <class Rep, class Period>
detail::timeout_branch timeout(std::chrono::duration<Rep, Period> d) {
  return detail::timeout_branch(detail::after(d));
}
template <class Clock, class Duration>
detail::timeout_branch deadline(std::chrono::time_point<Clock, Duration> t) {
  return detail::timeout_branch(detail::to_steady(t));
}
// Any rouse awaitable or task as a branch: moved in when it is an rvalue
// that can be moved, else referred to (it must outlive the select).
template <class A>
auto op(A&& a) {
  using V = std::remove_cvref_t<A>;
  using S = std::conditional_t<!std::is_lvalue_reference_v<A> && std::is_move_constructible_v<V>, V, A &&>;
  return detail::op_branch<S>(static_cast<S&&>(a));
}

// `co_await select(branches...)`: see the header.
template <class... B>
task<std::variant<typename B::result_type...>> select(B... branches) {
  static_assert(sizeof...(B) > 0, "select needs at least one branch");
  using result = std::variant<typename B::result_type...>;
  std::tuple<B...> bs(std::move(branches)...);
  if constexpr (!(detail::is_op_v<B> || ...)) {
    for (;;) {
      std::optional<result> out;
      detail::poll_all<result>(bs, out);
      if (out) {
        std::apply([](auto&... b) { (b.lose(), ...); }, bs);  // the losers give back what they hold
        co_return std::move(*out);
      }
      if (co_await detail::wait_any<false, B...>(bs)) co_await detail::complete_stopped{};
    }
  } else {
    std::optional<result> out;
    std::exception_ptr error;
    bool stopped = false;
    for (;;) {
      try {
        detail::poll_all<result>(bs, out);
      } catch (const detail::op_stopped&) {
        stopped = true;
      } catch (...) {
        error = std::current_exception();
      }
      if (out || error || stopped) break;
      if (co_await detail::wait_any<false, B...>(bs)) {
        stopped = true;
        break;
      }
    }
    // The losers give back what they hold; running children are asked to
    // stop, then awaited; their results (if they completed anyway) dropped.
    std::apply([](auto&... b) { (b.lose(), ...); }, bs);
    while (detail::children_running(bs)) co_await detail::wait_any<true, B...>(bs);
    detail::finish_children(bs);
    if (error) std::rethrow_exception(error);
    if (stopped) co_await detail::complete_stopped{};
    co_return std::move(*out);
  }
}

// A plain thread's select: blocks until one branch completes (see the
// header). Branches: recv, reserve, send, timeout / deadline.
template <class... B>
std::variant<typename B::result_type...> select_blocking(B... branches) {
  static_assert(sizeof...(B) > 0, "select_blocking needs at least one branch");
  static_assert(!(detail::is_op_v<B> || ...),
                "select_blocking: op() branches run on an executor; co_await select(...) from a task instead");
  using result = std::variant<typename B::result_type...>;
  std::tuple<B...> bs(std::move(branches)...);
  for (;;) {
    std::optional<result> out;
    detail::poll_all<result>(bs, out);
    if (out) {
      std::apply([](auto&... b) { (b.lose(), ...); }, bs);
      return std::move(*out);
    }
    detail::thread_core core;
    bool ready = false;
    std::apply([&](auto&... b) { ((ready = ready || !b.arm(&core)), ...); }, bs);
    if (ready) core.fire();  // arming -> woken
    if (core.finish_arming()) {
      while (!core.is_woken()) {
        if (core.deadline == detail::clock::time_point::max())
          core.parker.park();
        else if (!core.parker.park_until(core.deadline))
          core.fire();  // the deadline: end the round ourselves (a wake that came first stands)
      }
    }
    std::apply([](auto&... b) { (b.disarm(), ...); }, bs);
  }
}

}  // namespace rouse::async::channel
