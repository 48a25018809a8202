// rouse/async/channel.hpp — multi-producer single-consumer channels for
// coroutines and threads: bounded, rendezvous and unbounded.
//
//   auto [tx, rx] = rouse::async::channel::bounded<int>(1000);  // capacity >= 1
//   // or: auto [tx, rx] = rouse::async::channel::bounded<int>(0);  // rendezvous
//   // or: auto [tx, rx] = rouse::async::channel::unbounded<int>();
//   co_await tx.send(42);                 // send_result<int>: ok, or closed + the value back
//   auto r = co_await rx.recv();          // recv_result<int>: the value, or closed (and drained)
//   auto p = co_await tx.reserve();       // a permit: p.send(v) never waits (cancel-safe sends)
//   tx.send_blocking(7); rx.recv_blocking();   // the same channel from a plain thread
//
//   sender<T>       copyable: every copy is another producer
//   receiver<T>     move-only: one consumer (a task or a thread, one at a time)
//   permit<T>       a reserved slot: send(v) without waiting, or give it back
//                   by dropping it; must not outlive its sender
//
// Purpose: tokio's mpsc with Go's close semantics and rouse's blocking
// channel vocabulary (status, recv_result, send_result from
// rouse/channel/result.hpp, the same table of statuses), usable from both
// coroutines and threads, so a pool of blocking code and a coroutine server
// can talk through one channel.
//
// Lifecycle. bounded / unbounded allocate one shared state. The channel
// closes on close() (either side, any number of times; true for the call
// that closed it), when the last sender goes away, or when the receiver goes
// away. After close: sends fail with `closed` and hand their value back;
// the receiver drains every value sent before the close, then gets `closed`;
// blocked senders and the receiver wake. The state is freed by the last
// handle; values still buffered then are destroyed with it.
//
// Operations (a coroutine: co_await; a thread: the _blocking forms)
//   send(v) / send_blocking(v)             ok | closed (value back)
//   try_send(v)                            ok | full | closed (value back)
//   send_for / send_until (+ _blocking)    ok | closed | timed_out (value back)
//   reserve() / reserve_blocking()         a permit, or an empty one: closed
//   try_reserve(), reserve_for/_until      ... | full | timed_out
//   permit.send(v)                         ok | closed (value back); never waits
//   recv() / recv_blocking()               value | closed (closed and drained)
//   try_recv()                             value | empty | closed
//   recv_for / recv_until (+ _blocking)    value | closed | timed_out
// Timeouts are never early: the coroutine forms use the awaiting executor's
// timers (executor.hpp; the executor of the promise's environment, else the
// thread's current executor, else std::logic_error), the thread forms the
// futex deadline. A timed operation that could complete at its deadline
// completes (a permit or a value wins over the timer).
//
// Cancellation: the stop token of the awaiting promise's environment. A
// stopped send/reserve/recv completes as *stopped* (a rouse task completes as
// stopped; a foreign coroutine's co_await throws operation_stopped). Nothing
// is lost or duplicated: a stopped recv took no value; a stopped send sent
// nothing (its value is destroyed with the awaitable, in the coroutine's
// frame: to keep the value, reserve() first, then permit.send(v)); a sender
// wait that was handed a permit when it was stopped or destroyed passes the
// permit on to the next sender. A coroutine destroyed while it waits leaves
// the same way.
//
// Rendezvous (capacity 0): a send completes only into a receive that asked
// for a value: a waiting receive (recv, recv_blocking, a timed recv, a
// select's recv branch) that finds nothing gives one *demand*; a send takes
// it and writes its value into a one-value buffer the receive then takes. A
// receive that gives up (timeout, stop, its select chose another branch, its
// frame destroyed) takes its demand back, so no later send completes into a
// receive that is gone. If a sender took the demand first (a send under
// way, a reserve), its value, if it sends, stays in the channel for the next
// receive (never lost), and no new demand is given until it is taken; a
// permit it gives back unused does not bring the demand back. try_send
// succeeds only while a demand is outstanding; try_recv never gives one.
//
// Ordering: one producer's values arrive in the order it sent them;
// everything a producer did before a successful send happens-before the
// receive that gets the value. close() happens-before every operation that
// reports `closed`.
//
// Element types: object types, nothrow move-constructible and nothrow
// destructible (as rouse::channel). Each value is constructed in the channel
// once and destroyed there once.
//
// Misuse: an operation on an empty (moved-from) handle is diagnosed in debug
// builds; two waits on the receiver at once is diagnosed in debug builds
// (diatomic_waker: one wait at a time).
//
// sizeof(sender<T>) == sizeof(receiver<T>) == 8; permit 16. Awaitables live
// in the awaiting frame: no allocation per send, receive or wait (the
// receiver's diatomic_waker allocates its poller, one small coroutine frame,
// the first time the receiver sleeps). The unbounded channel allocates one
// block per 31 values and frees each block once it is drained, so its memory
// returns after a burst.
// Fairness: blocked senders get freed slots in FIFO order (a slot freed while
// senders wait goes to the oldest, never to a newcomer). One consumer.
// Costs with both ends running (nobody waiting): a bounded send that finds a
// free slot is one CAS (its permit and its ring position, one word), one
// store (the slot) and one load (is the receiver waiting? the waker's
// seq_cst idle notify); one that waited, or sends through a permit, claims
// its position with one fetch_add instead; a receive one load and
// one store, one load (are senders waiting?) and one RMW per batch of freed
// slots (capacity/16, at most 64; 1 below capacity 32) to give them back: no
// lock, no system call. A receive gives its kept slots back at once while
// senders wait (one lock of the senders' list for the batch), and before it
// reports empty (so before it sleeps); while both ends run, try_send may
// report `full` with up to a batch of slots not yet given back, and a
// receiver that stops receiving keeps the slots it freed while nobody was
// queued (at most a batch less one): a sender may then wait with that many
// slots free until the receiver's next receive or try_recv returns them
// (tokio and Go return each slot at once; rouse trades that slack for one
// contended RMW per batch instead of per message). Unbounded:
// the blocking list's CAS and fetch_or, and the waker's RMW. A thread's
// blocking send that finds no permit polls for one a few microseconds
// before it queues (detail/spin.hpp's async_send_spin). A woken sender costs
// the waiter list's lock and one claim; a woken receiver the waker's 2 RMWs
// and its executor's schedule. A send or receive awaitable builds its wait
// (the list node, the waker's turn, a timer) only when it has to wait: one
// that completes at once builds nothing. Across processes: no.
//
// State: the permit word and the blocked senders' list
// (detail/channel_state.hpp: its table and the (A)/(B) pairing with the
// waiter list), the ring's positions and stamps (detail/channel_ring.hpp),
// the receiver's diatomic_waker (rouse/async/diatomic_waker.hpp). See also
// rouse/async/oneshot.hpp, rouse/async/select.hpp, docs/async-channels.md.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "rouse/async/detail/channel_state.hpp"
#include "rouse/async/detail/fire_tracked_timer.hpp"
#include "rouse/async/env.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/channel/result.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async::channel {

using ::rouse::channel::recv_result;
using ::rouse::channel::send_result;
using ::rouse::channel::status;

template <class T>
class sender;
template <class T>
class receiver;
template <class T>
class permit;

namespace detail {

using clock = std::chrono::steady_clock;
struct select_access;

[[noreturn]] inline void throw_no_executor() {
  throw std::logic_error(
      "rouse::async::channel: a timed operation's coroutine has no executor (none in its environment, none running "
      "this thread)");
}

// One keeper of the state is done with it; the last frees it.
template <class T>
void unkeep_state(channel_state<T>* st) noexcept {
  // Ordering: acq_rel: the last keeper frees the state after everything
  // the others did with it (their releases).
  if (st->keepers.fetch_sub(1, std::memory_order_acq_rel) == 1) delete st;
}

// The timer of a timed wait: on fire, `on_timeout(owner)`; finish() withdraws
// it (or waits for a fire in progress: the fire touches its owner; a fire
// up this thread's stack, which ended the wait inline, is told to touch
// nothing more: detail/fire_tracked_timer.hpp).
template <class Owner, void (*OnTimeout)(Owner*) noexcept>
class wait_timer {
 public:
  wait_timer() noexcept = default;
  wait_timer(const wait_timer&) = delete;
  wait_timer& operator=(const wait_timer&) = delete;
  ~wait_timer() { finish(); }

  // Once per finish(): a second start() would rebuild the node the
  // executor still links.
  void start(executor* ex, clock::time_point deadline, Owner* owner) {
    ROUSE_CHECK_USAGE(ex_ == nullptr, "rouse::async::channel", "a wait's timer started again before it finished");
    if (ex == nullptr) throw_no_executor();
    ex_ = ex;
    node& n = node_.emplace();
    n.deadline = deadline;
    n.fire = &fire;
    n.owner = owner;
    ex_->add_timer(n);
  }
  void finish() noexcept {
    if (ex_ == nullptr) return;
    if (!ex_->cancel_timer(*node_)) node_->wait_for_fire();
    ex_ = nullptr;
  }

 private:
  struct node : ::rouse::async::detail::fire_tracked_timer {
    Owner* owner = nullptr;
  };
  static void fire(timer_entry* e) noexcept {
    node* const n = static_cast<node*>(e);
    Owner* const owner = n->owner;
    n->fire_then([owner] { OnTimeout(owner); });
  }
  executor* ex_ = nullptr;    // started, not finished
  std::optional<node> node_;  // made by start() (most waits have no deadline)
};

template <class P>
executor* executor_for(std::coroutine_handle<P> h) noexcept {
  resume_target const t(h);
  return t.ex ? t.ex : current_executor();
}

// A sender wait (reserve, send, and their timed forms): the waiter list's
// awaitable, its record, and the timer. `Then` turns the outcome (a permit or
// not) into the result.
template <class T>
class sender_wait {
 public:
  sender_wait(channel_state<T>& st, clock::time_point deadline) noexcept : st_(&st), deadline_(deadline) {}
  // Before it is awaited only (an adaptor moves the awaitable into its own
  // frame): a fresh wait for the same channel and deadline.
  sender_wait(sender_wait&& o) noexcept : st_(o.st_), deadline_(o.deadline_) {
    ROUSE_CHECK_USAGE(!o.started(), "rouse::async::channel", "a send or reserve awaitable moved after it was awaited");
  }
  sender_wait(const sender_wait&) = delete;
  sender_wait& operator=(const sender_wait&) = delete;

  bool ready() noexcept {
    waiting& w = w_.emplace(*this);
    if (deadline_ != clock::time_point::max() && clock::now() >= deadline_)
      w.rec.timed_out.store(1, std::memory_order_relaxed);  // our own re-check reads it
    return w.wait.await_ready();
  }
  template <class P>
  std::coroutine_handle<> suspend(std::coroutine_handle<P> h) {
    if (deadline_ != clock::time_point::max()) {
      ex_ = executor_for(h);
      if (ex_ == nullptr) throw_no_executor();  // before anything is linked
      w_->rec.on_linked = &arm_timer;
    }
    return w_->wait.await_suspend(h);
  }
  // True: it holds a permit. Throws operation_stopped (foreign promise).
  bool resume() {
    w_->timer.finish();
    w_->wait.await_resume();
    return channel_state<T>::holds_permit(w_->rec, w_->wait.claim());
  }
  bool timed_out() const noexcept { return w_->rec.timed_out.load(std::memory_order_relaxed) != 0; }
  // Awaited already (ready() ran).
  bool started() const noexcept { return w_.has_value(); }
  channel_state<T>& state() const noexcept { return *st_; }

 private:
  struct record : wait_record {
    sender_wait* self;
  };
  // The re-check found nothing, the node is linked: arm the timer.
  static void arm_timer(wait_record* rec) noexcept {
    sender_wait* const self = static_cast<record*>(rec)->self;
    self->w_->timer.start(self->ex_, self->deadline_, self);
  }
  // The timer fired: end the wait (it holds no permit from this). If a
  // permit, a close or a stop came first, that wake stands.
  static void on_timeout(sender_wait* self) noexcept {
    self->w_->rec.timed_out.store(1, std::memory_order_relaxed);  // ordered by the claim and the wake
    (void)self->w_->wait.try_end_wait();
  }

  // The wait itself, made by ready(): a send that finds a free slot at once
  // never builds it.
  struct waiting {
    explicit waiting(sender_wait& owner) noexcept : rec{{}, &owner}, wait(*owner.st_, tag_of(rec)) {}
    record rec;
    list_awaitable<channel_state<T>> wait;
    wait_timer<sender_wait, &sender_wait::on_timeout> timer;  // after wait: withdrawn before it
  };

  channel_state<T>* st_;
  clock::time_point deadline_;
  executor* ex_ = nullptr;
  std::optional<waiting> w_;  // engaged: awaited (await_ready ran), no longer movable
};

}  // namespace detail

// ---- permit -----------------------------------------------------------------

// A reserved slot of a channel. send(v) writes without waiting; dropping an
// unused permit gives the slot back. Empty (false) when the reserve failed:
// status() says why (closed, full, timed_out). Must not outlive the sender it
// came from. Move-only.
template <class T>
class permit {
 public:
  permit() noexcept = default;
  permit(permit&& o) noexcept : st_(std::exchange(o.st_, nullptr)), why_(o.why_) {}
  permit& operator=(permit&& o) noexcept {
    if (this != &o) {
      reset();
      st_ = std::exchange(o.st_, nullptr);
      why_ = o.why_;
    }
    return *this;
  }
  ~permit() { reset(); }

  explicit operator bool() const noexcept { return st_ != nullptr; }
  // ok while it holds a slot; else why the reserve failed.
  [[nodiscard]] channel::status status() const noexcept { return st_ ? channel::status::ok : why_; }

  // Sends into the reserved slot: ok, or closed (the value handed back; the
  // channel closed after the reserve). Consumes the permit.
  send_result<T> send(T value) noexcept {
    ROUSE_CHECK_USAGE(st_ != nullptr, "rouse::async::channel::permit", "send() on an empty permit");
    detail::channel_state<T>* const st = std::exchange(st_, nullptr);
    count_held(st, -1);
    channel::status const s = st->push(value);
    if (s == channel::status::ok) return send_result<T>();
    return send_result<T>(s, std::move(value));
  }
  // Gives the slot back now.
  void reset() noexcept {
    if (detail::channel_state<T>* const st = std::exchange(st_, nullptr)) {
      count_held(st, -1);
      st->give_back_permit();
    }
  }

 private:
  friend class sender<T>;
  friend struct detail::select_access;
  template <class U>
  friend class reserve_awaitable;
  explicit permit(detail::channel_state<T>* st) noexcept : st_(st) { count_held(st, 1); }
  explicit permit(channel::status why) noexcept : why_(why) {}
  static void count_held([[maybe_unused]] detail::channel_state<T>* st, [[maybe_unused]] int d) noexcept {
#if ROUSE_DEBUG_CHECKS
    // Ordering: relaxed: a count the state's destructor reads once no
    // handle is left (their release orders it).
    st->permits_held.fetch_add(d, std::memory_order_relaxed);
#endif
  }

  detail::channel_state<T>* st_ = nullptr;
  channel::status why_ = channel::status::closed;
};

// ---- awaitables -----------------------------------------------------------

// `co_await tx.reserve()` / reserve_for / reserve_until: a permit, or an
// empty one (closed, timed_out). Lives in the awaiting frame; movable before
// it is awaited (with_timeout and select's op() take it in), not after. Awaited
// once (debug builds diagnose a second await).
template <class T>
class reserve_awaitable {
 public:
  using rouse_affine = void;
  reserve_awaitable(detail::channel_state<T>& st, detail::clock::time_point deadline) noexcept : w_(st, deadline) {}
  reserve_awaitable(reserve_awaitable&& o) noexcept : w_(std::move(o.w_)) {}
  reserve_awaitable(const reserve_awaitable&) = delete;
  reserve_awaitable& operator=(const reserve_awaitable&) = delete;
  bool await_ready() noexcept {
    ROUSE_CHECK_USAGE(!w_.started(), "rouse::async::channel", "a reserve awaitable awaited twice");
    return w_.ready();
  }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    return w_.suspend(h);
  }
  permit<T> await_resume() {
    bool const have = w_.resume();
    detail::channel_state<T>& st = w_.state();
    if (have && !st.is_closed()) return permit<T>(&st);
    // Closed: a permit held is moot (nothing can be sent any more).
    if (st.is_closed()) return permit<T>(channel::status::closed);
    return permit<T>(channel::status::timed_out);
  }

 private:
  detail::sender_wait<T> w_;
};

// `co_await tx.send(v)` / send_for / send_until. Owns the value until it is
// sent or handed back. Lives in the awaiting frame; movable before it is
// awaited (with_timeout and select's op() take it in), not after. Awaited
// once (debug builds diagnose a second await).
template <class T>
class send_awaitable {
 public:
  using rouse_affine = void;
  send_awaitable(detail::channel_state<T>& st, T&& v, detail::clock::time_point deadline) noexcept
      : value_(std::move(v)), w_(st, deadline) {}
  send_awaitable(send_awaitable&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
      : value_(std::move(o.value_)), w_((check_not_sent(o), std::move(o.w_))) {}
  send_awaitable(const send_awaitable&) = delete;
  send_awaitable& operator=(const send_awaitable&) = delete;
  bool await_ready() noexcept {
    // Before the send below: a second await must not send the moved-from
    // value (the first one sent at once, or went the waiting way).
    ROUSE_CHECK_USAGE(!sent_ && !w_.started(), "rouse::async::channel", "a send awaitable awaited twice");
    // A free permit: the permit and the position in one RMW, no wait.
    if (w_.state().try_send_now(value_)) return sent_ = true;
    return w_.ready();
  }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    return w_.suspend(h);
  }
  send_result<T> await_resume() {
    if (sent_) return send_result<T>();
    bool const have = w_.resume();
    detail::channel_state<T>& st = w_.state();
    if (have) {
      channel::status const s = st.push(value_);
      if (s == channel::status::ok) return send_result<T>();
      return send_result<T>(s, std::move(value_));
    }
    if (st.is_closed()) return send_result<T>(channel::status::closed, std::move(value_));
    return send_result<T>(channel::status::timed_out, std::move(value_));
  }

 private:
  static void check_not_sent([[maybe_unused]] const send_awaitable& o) noexcept {
    ROUSE_CHECK_USAGE(!o.sent_, "rouse::async::channel", "a send or reserve awaitable moved after it was awaited");
  }

  T value_;
  detail::sender_wait<T> w_;
  bool sent_ = false;  // await_ready sent it at once
};

// `co_await rx.recv()` / recv_for / recv_until: waits on the receiver's
// diatomic_waker. Lives in the awaiting frame; movable before it is awaited
// (with_timeout and select's op() take it in), not after. Awaited
// once (debug builds diagnose a second await).
template <class T>
class recv_awaitable {
  struct poll {
    recv_awaitable* self;
    bool operator()() noexcept { return self->try_now(); }
    // On the releasing thread, after the wait slept (diatomic_waker's
    // ready_hint): something for try_now() to return. Only the receiver
    // takes values, so it stays true until the receiver runs.
    bool ready_hint() const noexcept {
      // Ordering: acquire: pairs with on_timeout's release.
      return self->st_->has_news() || self->timed_out_.load(std::memory_order_acquire) != 0;
    }
  };

 public:
  using rouse_affine = void;
  recv_awaitable(detail::channel_state<T>& st, detail::clock::time_point deadline) noexcept
      : st_(&st), deadline_(deadline) {}
  // The same receive, before it is awaited (the wait is made by
  // await_suspend, its predicate naming the awaitable's final address).
  recv_awaitable(recv_awaitable&& o) noexcept : st_(o.st_), deadline_(o.deadline_) {
    ROUSE_CHECK_USAGE(!o.started_, "rouse::async::channel", "a receive awaitable moved after it was awaited");
  }
  recv_awaitable(const recv_awaitable&) = delete;
  recv_awaitable& operator=(const recv_awaitable&) = delete;
  // Its frame destroyed while it waits, or completed as stopped in place
  // (await_resume never ran): a rendezvous demand it gave goes with it.
  ~recv_awaitable() {
    if (started_ && !completed_) st_->withdraw_demand();
  }

  bool await_ready() noexcept {
    ROUSE_CHECK_USAGE(!started_, "rouse::async::channel", "a receive awaitable awaited twice");
    started_ = true;
    if (deadline_ != detail::clock::time_point::max() && detail::clock::now() >= deadline_) {
      timed_out_.store(1, std::memory_order_relaxed);
      if (st_->has_news()) return try_now();
      // Nothing to take: timed out without asking a rendezvous sender for
      // a value it would then leave for the next receive.
      result_.emplace(channel::status::timed_out);
      return true;
    }
    // Nothing there yet (no value, none being written, not closed): straight
    // to the wait, whose re-check after registering makes the full attempt
    // (and asks for a rendezvous value, gives freed slots back) once instead
    // of twice.
    return st_->has_news() && try_now();
  }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    if (deadline_ != detail::clock::time_point::max()) timer_.start(detail::executor_for(h), deadline_, this);
    return inner_.emplace(st_->receiver_waker(), poll{this}).await_suspend(h);
  }
  recv_result<T> await_resume() {
    timer_.finish();
    completed_ = true;
    if (inner_) {  // it went the waiting way
      try {
        inner_->await_resume();  // throws operation_stopped (foreign promise)
      } catch (...) {
        st_->withdraw_demand();  // stopped: a demand nobody took goes
        throw;
      }
    }
    if (result_->status() == channel::status::timed_out) st_->withdraw_demand();
    return std::move(*result_);
  }

 private:
  bool try_now() noexcept {
    if (st_->try_recv_into(true, result_)) return true;
    // Ordering: acquire: pairs with on_timeout's release (the waker's RMWs
    // order it anyway).
    if (timed_out_.load(std::memory_order_acquire) != 0) {
      result_.emplace(channel::status::timed_out);
      return true;
    }
    return false;
  }
  static void on_timeout(recv_awaitable* self) noexcept {
    // The receiver waits here, so its side keeps the state now. The notify
    // may resume a coroutine without an executor inline, which may drop
    // every handle (and this awaitable) before the notify returns: the
    // timer keeps the state until the notify is done with it.
    detail::channel_state<T>* const st = self->st_;
    // Ordering: relaxed: the receiver's side keeps it meanwhile.
    st->keepers.fetch_add(1, std::memory_order_relaxed);
    // Ordering: release: pairs with try_now()'s acquire.
    self->timed_out_.store(1, std::memory_order_release);
    st->receiver_waker().notify();  // nothing of *self is touched after it
    detail::unkeep_state(st);
  }

  detail::channel_state<T>* st_;
  detail::clock::time_point deadline_;
  bool started_ = false;    // awaited (await_ready ran): no longer movable
  bool completed_ = false;  // await_resume ran
  std::atomic<std::uint32_t> timed_out_{0};
  std::optional<recv_result<T>> result_;
  std::optional<wait_until_awaitable<poll>> inner_;  // the wait, made by await_suspend (a value at once needs none)
  detail::wait_timer<recv_awaitable, &recv_awaitable::on_timeout> timer_;  // withdrawn before inner_
};

// ---- handles ----------------------------------------------------------------

namespace detail {
template <class T>
void release_state(channel_state<T>* st) noexcept {
  st->close();
  unkeep_state(st);
}
// Saturating both ways, in any duration: too late is no deadline, too
// early is passed (platform/deadline.hpp's helpers, never an overflow).
template <class Clock, class Duration>
clock::time_point to_steady(std::chrono::time_point<Clock, Duration> t) {
  if constexpr (std::is_same_v<Clock, clock>) {
    return ::rouse::platform::deadline_cast<clock::duration>(t);
  } else {
    auto const deadline = ::rouse::platform::clock_deadline(t);
    return ::rouse::platform::deadline_after(::rouse::platform::time_left(deadline, Clock::now()));
  }
}
// Saturating, and a duration of zero or less is now (never an overflow).
template <class Rep, class Period>
clock::time_point after(std::chrono::duration<Rep, Period> d) {
  return ::rouse::platform::deadline_after(d);
}
}  // namespace detail

// The sending handle. Copyable: every copy is another producer.
template <class T>
class sender {
  static_assert(::rouse::detail::message_type<T>,
                "channel messages must be object types, nothrow move-constructible and nothrow destructible");

 public:
  using value_type = T;

  sender() noexcept = default;
  sender(const sender& o) noexcept : st_(o.st_) {
    // Ordering: relaxed: a new reference from an existing one.
    if (st_) st_->senders.fetch_add(1, std::memory_order_relaxed);
  }
  sender(sender&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  sender& operator=(sender o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  ~sender() {
    // Ordering: acq_rel: the last sender sees every other's sends.
    if (st_ && st_->senders.fetch_sub(1, std::memory_order_acq_rel) == 1) detail::release_state(st_);
  }

  // ---- coroutines ----
  [[nodiscard]] send_awaitable<T> send(T v) noexcept { return {state(), std::move(v), detail::clock::time_point::max()}; }
  template <class Rep, class Period>
  [[nodiscard]] send_awaitable<T> send_for(T v, std::chrono::duration<Rep, Period> d) {
    return {state(), std::move(v), detail::after(d)};
  }
  template <class Clock, class Duration>
  [[nodiscard]] send_awaitable<T> send_until(T v, std::chrono::time_point<Clock, Duration> t) {
    return {state(), std::move(v), detail::to_steady(t)};
  }
  [[nodiscard]] reserve_awaitable<T> reserve() noexcept { return {state(), detail::clock::time_point::max()}; }
  template <class Rep, class Period>
  [[nodiscard]] reserve_awaitable<T> reserve_for(std::chrono::duration<Rep, Period> d) {
    return {state(), detail::after(d)};
  }
  template <class Clock, class Duration>
  [[nodiscard]] reserve_awaitable<T> reserve_until(std::chrono::time_point<Clock, Duration> t) {
    return {state(), detail::to_steady(t)};
  }

  // ---- never waits ----
  send_result<T> try_send(T v) noexcept {
    detail::channel_state<T>& st = state();
    if (st.try_send_now(v)) return send_result<T>();
    if (st.is_closed()) return send_result<T>(channel::status::closed, std::move(v));
    if (!st.try_take_permit())
      return send_result<T>(st.is_closed() ? channel::status::closed : channel::status::full, std::move(v));
    return permit<T>(&st).send(std::move(v));
  }
  permit<T> try_reserve() noexcept {
    detail::channel_state<T>& st = state();
    if (st.is_closed()) return permit<T>(channel::status::closed);
    if (!st.try_take_permit()) return permit<T>(st.is_closed() ? channel::status::closed : channel::status::full);
    return permit<T>(&st);
  }

  // ---- threads ----
  send_result<T> send_blocking(T v) noexcept { return send_with(std::move(v), ::rouse::detail::no_deadline{}); }
  template <class Rep, class Period>
  send_result<T> send_blocking_for(T v, std::chrono::duration<Rep, Period> d) noexcept {
    return send_blocking_until(std::move(v), ::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  send_result<T> send_blocking_until(T v, std::chrono::time_point<Clock, Duration> t) noexcept {
    return send_with(std::move(v), ::rouse::detail::deadline_at(t));
  }
  permit<T> reserve_blocking() noexcept { return reserve_with(::rouse::detail::no_deadline{}); }
  template <class Rep, class Period>
  permit<T> reserve_blocking_for(std::chrono::duration<Rep, Period> d) noexcept {
    return reserve_with(::rouse::detail::deadline_at(::rouse::platform::deadline_after(d)));
  }

  // ---- both ----
  bool close() noexcept { return state().close(); }
  [[nodiscard]] bool is_closed() const noexcept { return state().is_closed(); }
  [[nodiscard]] std::size_t size() const noexcept { return state().size(); }
  [[nodiscard]] std::size_t capacity() const noexcept {
    return state().flavour() == detail::kind::unbounded ? SIZE_MAX : state().capacity();
  }
  explicit operator bool() const noexcept { return st_ != nullptr; }

 private:
  template <class U>
  friend std::pair<sender<U>, receiver<U>> bounded(std::size_t);
  template <class U>
  friend std::pair<sender<U>, receiver<U>> unbounded();
  friend struct detail::select_access;
  explicit sender(detail::channel_state<T>* st) noexcept : st_(st) {}

  detail::channel_state<T>& state() const noexcept {
    ROUSE_CHECK_USAGE(st_ != nullptr, "rouse::async::channel::sender", "operation on an empty (moved-from) handle");
    return *st_;
  }
  template <class Deadline>
  permit<T> reserve_with(const Deadline& deadline) noexcept {
    detail::channel_state<T>& st = state();
    bool const have = detail::acquire_blocking(st, deadline);
    if (have && !st.is_closed()) return permit<T>(&st);
    return permit<T>(st.is_closed() ? channel::status::closed : channel::status::timed_out);
  }
  template <class Deadline>
  send_result<T> send_with(T&& v, const Deadline& deadline) noexcept {
    if (state().try_send_now(v)) return send_result<T>();
    permit<T> p = reserve_with(deadline);
    if (!p) return send_result<T>(p.status(), std::move(v));
    return p.send(std::move(v));
  }

  detail::channel_state<T>* st_ = nullptr;
};

// The receiving handle: one consumer, move-only.
template <class T>
class receiver {
  static_assert(::rouse::detail::message_type<T>,
                "channel messages must be object types, nothrow move-constructible and nothrow destructible");

 public:
  using value_type = T;

  receiver() noexcept = default;
  receiver(receiver&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  receiver& operator=(receiver o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  receiver(const receiver&) = delete;
  ~receiver() {
    if (st_) detail::release_state(st_);
  }

  // ---- coroutines ----
  [[nodiscard]] recv_awaitable<T> recv() noexcept { return {state(), detail::clock::time_point::max()}; }
  template <class Rep, class Period>
  [[nodiscard]] recv_awaitable<T> recv_for(std::chrono::duration<Rep, Period> d) {
    return {state(), detail::after(d)};
  }
  template <class Clock, class Duration>
  [[nodiscard]] recv_awaitable<T> recv_until(std::chrono::time_point<Clock, Duration> t) {
    return {state(), detail::to_steady(t)};
  }

  // ---- never waits ----
  recv_result<T> try_recv() noexcept { return state().try_recv(false); }

  // ---- threads ----
  recv_result<T> recv_blocking() noexcept {
    detail::channel_state<T>& st = state();
    std::optional<recv_result<T>> out;
    st.receiver_waker().wait_until_blocking([&]() noexcept { return poll_into(st, out); });
    return std::move(*out);
  }
  template <class Rep, class Period>
  recv_result<T> recv_blocking_for(std::chrono::duration<Rep, Period> d) noexcept {
    return recv_blocking_until(::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  recv_result<T> recv_blocking_until(std::chrono::time_point<Clock, Duration> t) noexcept {
    detail::channel_state<T>& st = state();
    if (Clock::now() >= t) {
      // Already passed: what is there, else timed out without asking a
      // rendezvous sender for a value it would leave for the next receive.
      recv_result<T> r = st.try_recv(false);
      if (r.status() == channel::status::empty) return recv_result<T>(channel::status::timed_out);
      return r;
    }
    std::optional<recv_result<T>> out;
    if (!st.receiver_waker().wait_until_blocking_until([&]() noexcept { return poll_into(st, out); }, t)) {
      st.withdraw_demand();  // a rendezvous demand nobody took: gone with this receive
      return recv_result<T>(channel::status::timed_out);
    }
    return std::move(*out);
  }

  // ---- both ----
  bool close() noexcept { return state().close(); }
  [[nodiscard]] bool is_closed() const noexcept { return state().is_closed(); }
  [[nodiscard]] std::size_t size() const noexcept { return state().size(); }
  explicit operator bool() const noexcept { return st_ != nullptr; }

  // For tests: the free permits of a bounded channel.
  [[nodiscard]] std::int64_t permits_for_testing() const noexcept { return state().permits_for_testing(); }
  // The receiver's diatomic_waker state word (its R and D bits: a receive registered).
  [[nodiscard]] std::uint32_t waker_state_for_testing() const noexcept {
    return state().receiver_waker().state_for_testing();
  }

 private:
  template <class U>
  friend std::pair<sender<U>, receiver<U>> bounded(std::size_t);
  template <class U>
  friend std::pair<sender<U>, receiver<U>> unbounded();
  friend struct detail::select_access;
  explicit receiver(detail::channel_state<T>* st) noexcept : st_(st) {}

  static bool poll_into(detail::channel_state<T>& st, std::optional<recv_result<T>>& out) noexcept {
    return st.try_recv_into(true, out);
  }
  detail::channel_state<T>& state() const noexcept {
    ROUSE_CHECK_USAGE(st_ != nullptr, "rouse::async::channel::receiver", "operation on an empty (moved-from) handle");
    return *st_;
  }

  detail::channel_state<T>* st_ = nullptr;
};

static_assert(sizeof(sender<int>) == sizeof(void*) && sizeof(receiver<int>) == sizeof(void*));

// The largest capacity bounded() accepts (2^30: the ring counts its positions
// in 31 bits beside the permit count, so that a send takes both in one RMW);
// more throws std::length_error. A ring that cannot be allocated throws
// std::bad_alloc.
inline constexpr std::size_t max_capacity = detail::ring_max_slots;

// A channel holding at most `capacity` values; 0: rendezvous. Throws as
// max_capacity says.
template <class T>
std::pair<sender<T>, receiver<T>> bounded(std::size_t capacity) {
  if (capacity > max_capacity) throw std::length_error("rouse::async::channel::bounded: capacity above max_capacity");
  auto* st = new detail::channel_state<T>(capacity == 0 ? detail::kind::rendezvous : detail::kind::bounded, capacity);
  return {sender<T>(st), receiver<T>(st)};
}

// A channel without a bound: send never waits (memory permitting).
template <class T>
std::pair<sender<T>, receiver<T>> unbounded() {
  auto* st = new detail::channel_state<T>(detail::kind::unbounded, 0);
  return {sender<T>(st), receiver<T>(st)};
}

}  // namespace rouse::async::channel
