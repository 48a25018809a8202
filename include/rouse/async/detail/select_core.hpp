// rouse/async/detail/select_core.hpp — the wait/wake handshake of
// rouse::async::channel::select (rouse/async/select.hpp has the contract),
// and its channel branches' registrations. Internal; it compiles without the
// coroutine half so that tests/model runs it.
//
//   select_core    one round's wait: the arming guard (phase word), the
//                  stopped flag and the resume action (a coroutine's
//                  executor, a thread's parker, a model's flag)
//   fire_flag      a branch's "my wake returned" flag: the withdrawal waits
//                  on it before the frame may go (docs/design.md, rule 7)
//   recv_branch    a receiver's diatomic_waker, armed through arm_external
//   slot_branch    a node in the senders' waiter list; a claim may hand it a
//                  slot (the base of reserve and send branches)
//
// Phase word of a round (select_core::phase)
//   arming = 0   the select registers its branches, one by one
//   armed  = 1   every branch registered: the select sleeps
//   woken  = 2   a branch fired (or the stop): the select runs, or will
//   fire():          any -> woken; the one fire that finds `armed` resumes
//                    the select (once per round)
//   finish_arming(): arming -> armed (true: sleep, a fire will resume us);
//                    fails on woken (a branch fired while we armed: run on).
//                    A compare-exchange, never a store: a fire that came
//                    while arming left `woken`, which must stay, or a second
//                    fire would find `armed` and resume the select again
//                    (the model's broken variant, async_select_arming_plain_store,
//                    stores: the early fire's wake is lost).
//
// A branch's registration calls fired(core, flag) on the notifier's thread:
// core->fire(), then the flag's release store, its last touch of the
// branch. A branch's disarm() withdraws its registration; when the
// registration already fired (or is firing), it waits for the flag, so the
// select's frame outlives every wake in flight (a send branch chosen by a
// chain this thread is still waking, up the stack, leaves that chain
// instead: see list_wait::wait_released_or_leave_chain()). A slot handed to a reserve
// or send branch while it was registered is kept by disarm() and given back
// by lose() when another branch wins: passed on, never lost.
//
// Memory ordering: fire()'s exchange and finish_arming()'s compare-exchange
// are acq_rel: everything a notifier did before its wake (a push, a slot
// handed over) happens-before the select's polls after it resumes; the
// channel's own words order the values (channel_state.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include "rouse/async/detail/channel_state.hpp"
#include "rouse/async/diatomic_waker.hpp"
#include "rouse/async/waiter_list.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waker.hpp"

namespace rouse::async::channel::detail {

namespace rd = ::rouse::detail;

// A branch's "my wake returned" flag.
struct fire_flag {
  rd::atomic<std::uint32_t> done{0};
  void reset() noexcept { done.store(0, std::memory_order_relaxed); }
  void set() noexcept {
    // Ordering: release: pairs with wait()'s acquire.
    done.store(1, std::memory_order_release);
  }
  void wait() noexcept {
    // Ordering: acquire: pairs with the release in set(). The notifier is
    // between its fire and this store: a short wait.
    while (done.load(std::memory_order_acquire) == 0) rd::yield();
  }
};

// One round's wait (see the table above).
struct select_core {
  static constexpr std::uint32_t arming = 0;  // registering the branches
  static constexpr std::uint32_t armed = 1;   // every branch registered: asleep
  static constexpr std::uint32_t woken = 2;   // fired: the select runs (or will)

  rd::atomic<std::uint32_t> phase{arming};
  rd::atomic<std::uint32_t> stopped{0};  // set by the stop callback before its fire()
  void (*resume)(select_core*) noexcept = nullptr;

  // A branch fired: arming -> woken (finish_arming() fails, the select runs
  // on) | armed -> woken (this call resumes it) | woken: nothing.
  void fire() noexcept {
    // Ordering: acq_rel: pairs with finish_arming()'s compare-exchange and
    // with the other fires (one of them sees `armed`).
    if (phase.exchange(woken, std::memory_order_acq_rel) == armed) resume(this);
  }
  // Every branch registered: true when the select sleeps (a fire resumes
  // it), false when a branch fired meanwhile (run on now).
  bool finish_arming() noexcept {
    if (rd::model_fault_on(rd::model_fault::async_select_arming_plain_store)) {
      phase.store(armed, std::memory_order_release);
      return true;
    }
    std::uint32_t expected = arming;
    // arming -> armed. Ordering: acq_rel: pairs with fire(); acquire on
    // failure: the fire that came first (what its notifier did).
    return phase.compare_exchange_strong(expected, armed, std::memory_order_acq_rel, std::memory_order_acquire);
  }
  bool is_woken() noexcept {
    // Ordering: acquire: pairs with fire()'s exchange.
    return phase.load(std::memory_order_acquire) == woken;
  }
  // A registration fired: its last touch of the branch is the flag.
  static void fired(select_core* core, fire_flag& f) noexcept {
    core->fire();
    f.set();
  }
};

// ---- channel branches --------------------------------------------------------
// Each: poll() (consumer side: completes now, or nullopt); arm(core)
// (registers; false: ready now, nothing registered); disarm() (withdraws;
// waits for a wake in flight; keeps a slot it was handed); lose() (another
// branch won: gives back what it holds).

struct branch_record : ::rouse::async::detail::wait_record {
  void* owner = nullptr;
};

template <class T>
class recv_branch {
 public:
  using result_type = recv_result<T>;
  explicit recv_branch(channel_state<T>& st) noexcept : st_(&st) {}
  recv_branch(recv_branch&& o) noexcept : st_(o.st_) {}
  // The select is over (this branch won, lost, or the select was stopped or
  // destroyed): a rendezvous demand it gave and no sender took goes with it
  // (after a win the value answered it: nothing to take back).
  ~recv_branch() {
    if (asked_) st_->withdraw_demand();
  }

  // A look that asks nothing: a select whose other branch is ready (an
  // expired timeout) must not hand a rendezvous sender a demand its value
  // would then answer after the select is gone. The branch asks when armed.
  std::optional<result_type> poll() noexcept {
    std::optional<result_type> r;
    st_->try_recv_into(false, r);
    return r;
  }
  bool arm(select_core* core) noexcept {
    asked_ = true;
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
  bool asked_ = false;  // armed: a rendezvous demand may be its
  branch_record rec_{};
  fire_flag flag_;
};

// A slot in a sender's channel: the base of reserve and send branches.
template <class T>
class slot_branch {
 public:
  explicit slot_branch(channel_state<T>& st) noexcept : st_(&st) {}
  slot_branch(slot_branch&& o) noexcept : st_(o.st_) {}
  slot_branch(const slot_branch&) = delete;
  slot_branch& operator=(const slot_branch&) = delete;
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
    wait_.emplace(*st_, tag_of(rec_), ::rouse::detail::waker(this, &vtable));
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
      // Unless the claimer is this thread's own chain, up the stack (a
      // coroutine it resumed inline destroys this select): then the branch
      // leaves that chain and nothing will wake it.
      if (wait_->wait_released_or_leave_chain()) flag_.wait();
      if (channel_state<T>::holds_permit(rec_, wait_->claim())) held_ = true;
    }
    wait_.reset();
  }
  // Gives back a slot this branch holds (to the next waiting sender).
  void lose() noexcept {
    if (std::exchange(held_, false)) st_->give_back_permit();
  }
  [[nodiscard]] bool holds_slot() const noexcept { return held_; }

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
  static constexpr ::rouse::detail::waker_vtable vtable{clone, wake, wake, drop};

  select_core* core_ = nullptr;
  bool self_abort_ = false;
  wait_record rec_{};
  std::optional<list_wait<channel_state<T>>> wait_;
  fire_flag flag_;
};

}  // namespace rouse::async::channel::detail
