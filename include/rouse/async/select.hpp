// rouse/async/select.hpp — wait for the first of several channel operations.
//
//   namespace ch = rouse::async::channel;
//   auto r = co_await ch::select(ch::recv(rx1), ch::recv(rx2), ch::reserve(tx), ch::timeout(5ms));
//   switch (r.index()) {
//     case 0: use(std::get<0>(r));            // recv_result<T1> from rx1
//     case 1: use(std::get<1>(r));            // recv_result<T2> from rx2
//     case 2: std::get<2>(r).send(v); break;  // permit<U>: a slot in tx, sent without waiting
//     case 3: break;                          // timed_out: nothing was ready in 5 ms
//   }
//   auto r = co_await ch::select(ch::send(tx, value), ch::recv(rx));  // value moved from only if sent
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
// The result is a std::variant with one alternative per branch, in order
// (index() names the branch that completed).
//
// Contract
// - Exactly one branch completes. A losing recv took no value; a losing
//   reserve or send holds no slot (a slot that was handed to it while the
//   select waited is passed on); a losing send moved nothing.
// - Fairness: the branches ready at the moment of a check are tried from a
//   random one on (a per-thread xorshift), so none starves another.
// - Rendezvous: a recv branch on a rendezvous channel gives its demand while
//   the select waits (as a waiting recv does); if another branch wins and a
//   sender took that demand, the value stays in the channel for the next
//   receive (never lost).
// - select(...) is a rouse::async::task: co_await it from a task (it runs on
//   the awaiting task's executor and honours its stop token: a stopped
//   select completes as stopped, having taken nothing). It needs an
//   executor (a wake never resumes it on the notifier's stack).
// - The receivers named in recv branches are waited on by this select alone
//   while it runs (one consumer); the same receiver twice is misuse.
// - Cost: one task frame per select (rouse's frame pool); when nothing is
//   ready at once, one registration per branch (a diatomic_waker arm per
//   recv, a waiter-list node per reserve/send, a timer), and the same
//   withdrawals when it wakes; no allocation per wait beyond the frame.
//   A wake that finds nothing ready (a stale notification) waits again.
// How it waits: every branch registers a wake on its channel (recv: the
// receiver's diatomic_waker through arm_external; reserve/send: a node in the
// senders' waiter list, whose claim may hand it a slot; timeout: a timer).
// The first wake resumes the select (an arming guard, as list_awaitable's,
// decides who resumes); it withdraws every registration (waiting for a wake
// in flight on another thread to return before the frame can go), keeps a
// slot a reserve/send branch was handed, then checks the branches in random
// order and completes the first that is ready, giving back the slots of the
// others.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>

#include "rouse/async/channel.hpp"
#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/waker.hpp"

namespace rouse::async::channel {

// The result of a timeout branch.
struct timed_out_t {};

namespace detail {

struct select_core;

// What every branch's registration calls when it fires (on any thread). Its
// last touch of the branch is the `done` store.
struct fire_flag {
  std::atomic<std::uint32_t> done{0};
  void reset() noexcept { done.store(0, std::memory_order_relaxed); }
  void wait() const noexcept {
    // Ordering: acquire: pairs with the release in fired().
    while (done.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  }
};

// The wait of one round: the arming guard and the stop callback.
struct select_core {
  static constexpr std::uint32_t arming = 0;
  static constexpr std::uint32_t armed = 1;
  static constexpr std::uint32_t woken = 2;

  std::atomic<std::uint32_t> phase{arming};
  resume_target target{};
  std::atomic<bool> stopped{false};  // set by the stop callback before its fire()

  // A branch fired: arming -> woken (await_suspend resumes) | armed -> woken
  // (we schedule the resume) | woken: nothing.
  void fire() noexcept {
    // Ordering: acq_rel: pairs with await_suspend's exchange.
    if (phase.exchange(woken, std::memory_order_acq_rel) == armed) {
      // Ordering: relaxed: the exchange above ordered the stop's write.
      if (stopped.load(std::memory_order_relaxed) && target.stops_in_place())
        target.resume_stopped();
      else
        target.resume();
    }
  }
  static void fired(select_core* core, fire_flag& f) noexcept {
    core->fire();
    // Ordering: release: pairs with fire_flag::wait().
    f.done.store(1, std::memory_order_release);
  }
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

// ---- branches ---------------------------------------------------------------
// Each branch: result_type; poll() (consumer side: completes it now, or
// nullopt); arm(core) (registers; false: ready now, nothing registered);
// disarm() (withdraws; waits for a wake in flight; keeps a slot it was
// handed); lose() (another branch won: gives back what it holds).

struct branch_record : ::rouse::async::detail::wait_record {
  void* owner = nullptr;
};

template <class T>
class recv_branch {
 public:
  using result_type = recv_result<T>;
  explicit recv_branch(receiver<T>& rx) noexcept : st_(&select_access::of(rx)) {}
  recv_branch(recv_branch&& o) noexcept : st_(o.st_) {}

  std::optional<result_type> poll() noexcept {
    recv_result<T> r = st_->try_recv(true);
    if (r.status() == status::empty) return std::nullopt;
    return std::optional<result_type>(std::move(r));
  }
  bool arm(select_core* core) noexcept {
    core_ = core;
    flag_.reset();
    rec_.owner = this;
    rec_.release = &on_release;
    auto ready = [this]() noexcept { return st_->recv_ready(true); };
    armed_ = st_->receiver_waker().arm_external(rec_, ready);
    return armed_;
  }
  void disarm() noexcept {
    if (!armed_) return;
    armed_ = false;
    if (!st_->receiver_waker().end_external()) flag_.wait();  // a release in flight
  }
  void lose() noexcept {}

 private:
  static void on_release(::rouse::async::detail::wait_record* r) noexcept {
    auto* const self = static_cast<recv_branch*>(static_cast<branch_record*>(r)->owner);
    select_core::fired(self->core_, self->flag_);
  }

  channel_state<T>* st_;
  select_core* core_ = nullptr;
  bool armed_ = false;
  branch_record rec_{};
  fire_flag flag_;
};

// A slot in a sender's channel: the base of reserve and send branches.
template <class T>
class slot_branch {
 public:
  explicit slot_branch(sender<T>& tx) noexcept : st_(&select_access::of(tx)) {}
  slot_branch(slot_branch&& o) noexcept : st_(o.st_) {}
  ~slot_branch() { lose(); }

  // A slot now: held, or taken; or closed. nullopt: nothing yet.
  std::optional<status> poll_slot() noexcept {
    if (held_) return st_->is_closed() ? (lose(), status::closed) : status::ok;
    if (st_->is_closed()) return status::closed;
    if (st_->try_take_permit()) {
      held_ = true;
      return status::ok;
    }
    return std::nullopt;
  }
  bool arm(select_core* core) noexcept {
    core_ = core;
    flag_.reset();
    self_abort_ = false;
    rec_.took = false;
    rec_.timed_out.store(0, std::memory_order_relaxed);
    wait_.emplace(*st_, tag_of(rec_), waker(this, &vtable));
    using start = typename list_wait<channel_state<T>>::start_result;
    if (st_->try_acquire(tag_of(rec_)) != check_result::not_ready) {
      held_ = rec_.took;
      wait_.reset();
      return false;
    }
    switch (wait_->start()) {
      case start::withdrew:
        held_ = rec_.took;
        wait_.reset();
        return false;
      case start::claimed:  // the claimer's wake is coming
      case start::suspended:
        break;
    }
    return true;
  }
  void disarm() noexcept {
    if (!wait_) return;
    if (!wait_->try_abort([this]() noexcept { self_abort_ = true; })) {
      // Claimed (a slot, or a close): the claimer wakes us; wait for it.
      wait_->wait_released();
      flag_.wait();
      if (channel_state<T>::holds_permit(rec_, wait_->claim())) held_ = true;
    }
    wait_.reset();
  }
  // Gives back a slot this branch holds.
  void lose() noexcept {
    if (std::exchange(held_, false)) st_->give_back_permit();
  }

 protected:
  channel_state<T>* st_;
  bool held_ = false;

 private:
  static const void* clone(const void* d) noexcept { return d; }
  static void drop(const void*) noexcept {}
  static void wake(const void* d) noexcept {
    auto* const self = static_cast<slot_branch*>(const_cast<void*>(d));
    if (self->self_abort_) {  // our own disarm: nothing to resume
      self->flag_.done.store(1, std::memory_order_relaxed);
      return;
    }
    select_core::fired(self->core_, self->flag_);
  }
  static constexpr waker_vtable vtable{clone, wake, wake, drop};

  select_core* core_ = nullptr;
  bool self_abort_ = false;
  wait_record rec_{};
  std::optional<list_wait<channel_state<T>>> wait_;
  fire_flag flag_;
};

template <class T>
class reserve_branch : public slot_branch<T> {
 public:
  using result_type = permit<T>;
  using slot_branch<T>::slot_branch;
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
  send_branch(sender<T>& tx, T& v) noexcept : slot_branch<T>(tx), v_(&v) {}
  send_branch(send_branch&& o) noexcept : slot_branch<T>(std::move(o)), v_(o.v_) {}
  std::optional<result_type> poll() noexcept {
    std::optional<status> const s = this->poll_slot();
    if (!s) return std::nullopt;
    if (*s != status::ok) return result_type(*s, std::move(*v_));
    this->held_ = false;
    channel::status const r = this->st_->push(*v_);
    if (r == channel::status::ok) return result_type();
    return result_type(r, std::move(*v_));
  }

 private:
  T* v_;
};

class timeout_branch {
 public:
  using result_type = timed_out_t;
  explicit timeout_branch(clock::time_point deadline) noexcept : deadline_(deadline) {}
  timeout_branch(timeout_branch&& o) noexcept : deadline_(o.deadline_) {}

  std::optional<result_type> poll() noexcept {
    if (clock::now() >= deadline_) return timed_out_t{};
    return std::nullopt;
  }
  bool arm(select_core* core) noexcept {
    if (clock::now() >= deadline_) return false;
    core_ = core;
    timer_.start(core->target.ex, deadline_, this);
    return true;
  }
  void disarm() noexcept { timer_.finish(); }
  void lose() noexcept {}

 private:
  static void on_timeout(timeout_branch* self) noexcept { self->core_->fire(); }
  clock::time_point deadline_;
  select_core* core_ = nullptr;
  wait_timer<timeout_branch, &timeout_branch::on_timeout> timer_;
};

// One round's wait on every branch. Single-shot: resumes on the first wake
// (or at once when a branch turned ready while arming); the select re-polls.
template <class... B>
class wait_any {
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
    if (core_.target.ex == nullptr)
      throw std::logic_error("rouse::async::channel::select: the awaiting coroutine has no executor");
    auto const token = get_stop_token(get_env(h.promise()));
    if (token.stop_requested()) return stopped_now(h);
    armed_ = true;
    bool ready = false;
    std::apply([&](auto&... b) { ((ready = ready || !b.arm(&core_)), ...); }, *bs_);
    if (ready) core_.fire();  // arming -> woken
    stop_.emplace(token, on_stop{this});
    // arming -> armed, or woken. A compare-exchange, not an exchange: a
    // branch that fired while arming left `woken`, and `woken` must stay,
    // or another branch (still armed until await_resume disarms it) that
    // fires before we resume would find `armed` and schedule a second
    // resume. Ordering: acq_rel: pairs with fire(); acquire on failure:
    // the fire that came first.
    std::uint32_t expected = select_core::arming;
    if (core_.phase.compare_exchange_strong(expected, select_core::armed, std::memory_order_acq_rel,
                                            std::memory_order_acquire))
      return std::noop_coroutine();
    if (core_.stopped.load(std::memory_order_relaxed)) {
      stop_.reset();
      disarm_all();
      return stopped_now(h);
    }
    return h;
  }

  void await_resume() {
    stop_.reset();
    if (armed_) disarm_all();
    if (core_.stopped.load(std::memory_order_relaxed)) throw operation_stopped();
  }

 private:
  struct on_stop {
    wait_any* self;
    void operator()() noexcept {
      // Ordering: relaxed: fire()'s acq_rel exchange orders it.
      self->core_.stopped.store(true, std::memory_order_relaxed);
      self->core_.fire();
    }
  };

  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    core_.stopped.store(true, std::memory_order_relaxed);
    if (!core_.target.stops_in_place()) return h;  // await_resume throws
    return core_.target.on_stopped(h.address());
  }
  void disarm_all() noexcept {
    armed_ = false;
    std::apply([](auto&... b) { (b.disarm(), ...); }, *bs_);
  }

  std::tuple<B...>* bs_;
  select_core core_;
  bool armed_ = false;
  ::rouse::async::detail::stop_slot<on_stop> stop_;
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

}  // namespace detail

// ---- branch makers -------------------------------------------------------------

template <class T>
detail::recv_branch<T> recv(receiver<T>& rx) noexcept {
  return detail::recv_branch<T>(rx);
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

// `co_await select(branches...)`: see the header.
template <class... B>
task<std::variant<typename B::result_type...>> select(B... branches) {
  static_assert(sizeof...(B) > 0, "select needs at least one branch");
  using result = std::variant<typename B::result_type...>;
  std::tuple<B...> bs(std::move(branches)...);
  for (;;) {
    std::optional<result> out;
    std::size_t const n = sizeof...(B);
    std::size_t const first = detail::select_random() % n;
    for (std::size_t k = 0; k < n && !out; ++k)
      detail::poll_at<result>(bs, (first + k) % n, out, std::index_sequence_for<B...>{});
    if (out) {
      std::apply([](auto&... b) { (b.lose(), ...); }, bs);  // the losers give back what they hold
      co_return std::move(*out);
    }
    co_await detail::wait_any<B...>(bs);
  }
}

}  // namespace rouse::async::channel
