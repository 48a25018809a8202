// Relacy models of rouse::async::diatomic_waker: two notifiers against a
// sink that re-registers a new waker on every round (three wakers, so the
// two slots are reused while a lock holder may still read one), the
// blocking wait_until (the wait registers itself: R|D, claimed by one
// notify, withdrawn by the consumer when its re-check is ready), the
// external wait a select drives (every registration has one owner: the
// claimer that releases it, or the consumer that withdrew it, never both),
// and the load-only idle notify with its fence contract. A lost wake-up
// shows as a deadlock (the sink sleeps on its waker's flag, or parks, with
// every notifier gone), and the final assertion checks the sink observed
// the last notification. Broken variants that must be caught: a notifier
// that drops its retry request (no N), the idle notify without its fence, a
// wait that registers relaxed (the notify that claims it reads the record
// unpublished: a data race), and a withdraw that ignores a claim (a release
// reaches a wait the consumer gave up).
//
// A coroutine wait's turns (detail::diatomic_turn, what wait_until's
// awaitable runs), driven here in place of a coroutine: the consumer runs a
// turn, sleeps until its release, and runs the next turn where the poller
// would; a notifier and a stopper race it. With the wait's own guard and
// stop callback, and through a task's relay (one callback for the task,
// relayed to the wait). Every run must end the wait exactly once, ready or
// stopped; with a notify that publishes nothing, only the stop can end it.
// Broken variants: the own guard armed with a store (a release that came
// while arming is lost: deadlock), an own stop that leaves no mark while
// the wait is between two turns, and one that leaves none when its claim
// lost to a notify's (the next turn finds nothing and sleeps past the stop:
// deadlock; the second was the code's own behaviour until this model).
// Each also with a wait that offers ready_hint() (the channel receive's):
// a release that finds the hint true resumes the coroutine directly, and
// the consumer ends the wait and polls, which must be ready; the broken
// variant resumes directly without asking the hint (a notify that
// published nothing resumes a wait with nothing to take: assertion). And a
// wait whose poll consumes, received twice against two notifiers: each
// receive takes one item; the broken variant resumes directly although
// the re-check had taken its item (held_), so the receive takes two.
// The turn's held_ and stopped_ are checked data here (the guard hands them
// from the consumer to the releaser).
#include "model.hpp"
#include "rouse/async/diatomic_waker.hpp"
#include "rouse/async/stop_token.hpp"

#include <optional>

// The stop source asks the platform for the thread's id (out of line in
// src/, which models do not link): under the model, the Relacy thread.
std::uint32_t rouse::platform::this_thread_id() noexcept { return rl::thread_index() + 1; }

namespace {

namespace rd = rouse::detail;
using rouse::async::diatomic_waker;
using rouse::async::idle_notify;
using rouse::async::waker;
using rouse::async::waker_vtable;

// A waker whose wake sets a flag the sink sleeps on (futex).
struct flag_waker {
  rd::atomic<std::uint32_t> woken{0};
  static flag_waker* self(const void* d) { return static_cast<flag_waker*>(const_cast<void*>(d)); }
  static const void* clone(const void* d) noexcept { return d; }
  static void wake(const void* d) noexcept {
    self(d)->woken.store(1, std::memory_order_release);
    rd::wake_all(self(d)->woken);
  }
  static void drop(const void*) noexcept {}
  static constexpr waker_vtable vtable{clone, wake, wake, drop};
  waker make() noexcept { return waker(this, &vtable); }
};

constexpr int notifiers = 2;

// A notifier's whole part: publish one item, notify.
void publish_one(rd::atomic<int>& items, diatomic_waker& dw) {
  items.fetch_add(1, std::memory_order_relaxed);
  dw.notify();
}

// Raw API: check, register a fresh waker (k % 3), re-check, sleep on it.
struct reregister_three_wakers : rl::test_suite<reregister_three_wakers, notifiers + 1> {
  diatomic_waker dw;
  rd::atomic<int> items{0};
  flag_waker w[3];

  void thread(unsigned index) {
    if (index < notifiers) return publish_one(items, dw);
    for (unsigned k = 0;; ++k) {
      if (items.load(std::memory_order_relaxed) == notifiers) break;
      flag_waker& mine = w[k % 3];
      mine.woken.store(0, std::memory_order_relaxed);
      dw.register_waker(mine.make());
      if (items.load(std::memory_order_relaxed) == notifiers) break;
      while (mine.woken.load(std::memory_order_acquire) == 0) rd::wait(mine.woken, 0);
    }
    dw.unregister();
    RL_ASSERT(items.load(std::memory_order_relaxed) == notifiers);
  }
};

// wait_until_blocking: the wait registered itself (R|D), its claim, the
// withdraw at a ready re-check, and the parker as its guard.
template <idle_notify Mode>
struct blocking_wait : rl::test_suite<blocking_wait<Mode>, notifiers + 1> {
  diatomic_waker dw{Mode};
  rd::atomic<int> items{0};

  void thread(unsigned index) {
    if (index < notifiers) {
      items.fetch_add(1, std::memory_order_relaxed);
      if (Mode == idle_notify::load)
        dw.notify_after_publish();
      else
        dw.notify();
      return;
    }
    int seen = 0;
    while (seen < notifiers) {
      seen = dw.wait_until_blocking([&]() -> std::optional<int> {
        int const n = items.load(std::memory_order_relaxed);
        if (n > seen) return n;
        return std::nullopt;
      });
    }
    RL_ASSERT(seen == notifiers);
  }
};

// arm_external / end_external with a record whose release checks it still
// belongs to the wait: a withdraw that succeeded means no release, ever.
struct external_one_owner : rl::test_suite<external_one_owner, notifiers + 1> {
  struct record : rouse::async::detail::wait_record {
    rd::atomic<std::uint32_t> fired{0};
    rd::atomic<std::uint32_t> withdrawn{0};
  };
  diatomic_waker dw;
  rd::atomic<int> items{0};
  record rec[2];

  static void on_release(rouse::async::detail::wait_record* r) noexcept {
    auto* const self = static_cast<record*>(r);
    RL_ASSERT(self->withdrawn.load(std::memory_order_relaxed) == 0);  // the consumer gave it up: not ours
    self->fired.store(1, std::memory_order_release);
    rd::wake_all(self->fired);
  }

  void thread(unsigned index) {
    if (index < notifiers) return publish_one(items, dw);
    for (unsigned k = 0;; ++k) {
      record& r = rec[k % 2];
      r.release = &on_release;
      r.fired.store(0, std::memory_order_relaxed);
      r.withdrawn.store(0, std::memory_order_relaxed);
      auto ready = [&]() noexcept { return items.load(std::memory_order_relaxed) == notifiers; };
      if (!dw.arm_external(r, ready)) break;
      if (ready()) {
        if (dw.end_external())
          r.withdrawn.store(1, std::memory_order_relaxed);
        else
          while (r.fired.load(std::memory_order_acquire) == 0) rd::wait(r.fired, 0);
        break;
      }
      while (r.fired.load(std::memory_order_acquire) == 0) rd::wait(r.fired, 0);
      RL_ASSERT(!dw.end_external());  // released: nothing left to withdraw
    }
    RL_ASSERT(items.load(std::memory_order_relaxed) == notifiers);
  }
};

// The idle notify with one notifier and the raw API: the smallest Dekker
// pair, where the missing fence shows directly.
struct idle_notify_pair : rl::test_suite<idle_notify_pair, 2> {
  diatomic_waker dw{idle_notify::load};
  rd::atomic<int> item{0};
  flag_waker w;

  void thread(unsigned index) {
    if (index == 0) {
      item.store(1, std::memory_order_relaxed);
      dw.notify_after_publish();
      return;
    }
    if (item.load(std::memory_order_relaxed) == 1) return;
    dw.register_waker(w.make());  // (A) and (A2)
    if (item.load(std::memory_order_relaxed) == 1) return;
    while (w.woken.load(std::memory_order_acquire) == 0) rd::wait(w.woken, 0);
    RL_ASSERT(item.load(std::memory_order_relaxed) == 1);
  }
};

// ---- a coroutine wait's turns ----------------------------------------------

using rouse::async::inplace_stop_callback;
using rouse::async::inplace_stop_source;
using rouse::async::detail::wait_relay;

// The coroutine's side of a turn, as a model: a release sets `released`
// (1: run the poller, that is, the next turn; 2: completed as stopped; 3:
// resumed directly, `Hinted`: the release found ready_hint() true), which
// the consumer sleeps on. A second release before the consumer took the
// first would resume the coroutine twice.
template <bool Hinted>
struct model_wait_t : rouse::async::detail::diatomic_turn<model_wait_t<Hinted>> {
  model_wait_t(diatomic_waker& w, rd::atomic<int>& items) noexcept
      : rouse::async::detail::diatomic_turn<model_wait_t<Hinted>>(w), items_(&items) {}
  rd::atomic<int>* items_;
  rd::atomic<std::uint32_t> released{0};
  int got = 0;

  bool poll() noexcept {
    int const n = items_->load(std::memory_order_relaxed);
    if (n == 0) return false;
    got = n;
    return true;
  }
  // On the releasing thread: as the channel's receive, a look at what
  // poll() would take.
  bool ready_hint() const noexcept
    requires Hinted
  {
    return items_->load(std::memory_order_relaxed) != 0;
  }
  void resume_direct() noexcept { signal(3); }
  void resume_stopped() noexcept { signal(2); }
  void resume_poller() noexcept { signal(1); }
  void signal(std::uint32_t how) noexcept {
    std::uint32_t const before = released.exchange(how, std::memory_order_acq_rel);
    RL_ASSERT(before == 0);  // one release per sleep
    rd::wake_all(released);
  }
};

// The task's one stop callback, relayed to the wait it is in.
struct relay_stop {
  wait_relay* relay;
  void operator()() noexcept { relay->stop(); }
};
// The wait's own stop callback.
template <class W>
struct own_stop {
  W* w;
  void operator()() noexcept { w->stop_requested(); }
};

// Threads: the consumer, a notifier (publishes one item, or, `Spurious`,
// nothing: then only the stop ends the wait), a stopper. `Hinted`: the
// wait offers ready_hint(), so a release may resume it directly.
template <bool Relay, bool Spurious, bool Hinted = false>
struct coroutine_turns : rl::test_suite<coroutine_turns<Relay, Spurious, Hinted>, 3> {
  using model_wait = model_wait_t<Hinted>;
  diatomic_waker dw;
  rd::atomic<int> items{0};
  inplace_stop_source source;
  wait_relay relay;
  model_wait w{dw, items};
  int outcome = -1;  // 0 ready, 1 stopped

  void thread(unsigned index) {
    if (index == 0) {
      if (!Spurious) items.fetch_add(1, std::memory_order_relaxed);
      dw.notify();
      return;
    }
    if (index == 1) {
      source.request_stop();
      return;
    }
    std::optional<inplace_stop_callback<relay_stop>> task_cb;
    if (Relay) task_cb.emplace(source.get_token(), relay_stop{&relay});  // for the task's whole life
    using turn_outcome = typename model_wait::outcome;
    turn_outcome o;
    if (w.poll()) {
      o = turn_outcome::ready;
    } else if (source.stop_requested()) {
      o = turn_outcome::stopped;  // await_suspend's first look at the token
    } else {
      w.begin(Relay ? &relay : nullptr, source.get_token());
      std::optional<inplace_stop_callback<own_stop<model_wait>>> own_cb;
      if (!Relay) own_cb.emplace(source.get_token(), own_stop<model_wait>{&w});  // after begin, as the awaitable does
      o = w.turn(true);
      while (o == turn_outcome::suspended) {
        while (w.released.load(std::memory_order_acquire) == 0) rd::wait(w.released, 0);
        std::uint32_t const how = w.released.exchange(0, std::memory_order_acq_rel);
        if (how == 2) {
          o = turn_outcome::stopped;  // completed as stopped by its release
          break;
        }
        if (how == 3) {
          // Resumed directly: the wait ends here and the predicate, which
          // the hint promised, runs on this side (the awaitable's
          // await_resume).
          w.finish_direct();
          RL_ASSERT(w.poll());
          o = turn_outcome::ready;
          break;
        }
        o = w.turn(false);  // the poller's turn
      }
      RL_ASSERT(w.finished());
      own_cb.reset();
    }
    task_cb.reset();
    outcome = o == turn_outcome::ready ? 0 : 1;
    RL_ASSERT(o != turn_outcome::suspended);
    if (o == turn_outcome::ready) RL_ASSERT(w.got == 1);
  }
  void after() {
    RL_ASSERT(outcome == 0 || outcome == 1);
    RL_ASSERT(w.released.load(std::memory_order_relaxed) == 0);  // no release after the end
    RL_ASSERT((dw.state_for_testing() & (diatomic_waker::registered_bit | diatomic_waker::direct_bit)) == 0);
  }
};

// A wait whose poll consumes (as the channel receive's: a position the
// consumer owns, checked against what notifiers published) and whose hint
// looks at the same: the consumer receives twice, two notifiers publish
// one item each. A direct resume after a re-check that had already taken
// its item (held_) would poll again and take the other one too.
struct consuming_wait : rouse::async::detail::diatomic_turn<consuming_wait> {
  consuming_wait(diatomic_waker& w, rd::atomic<int>& published, rd::unsync<int>& taken) noexcept
      : diatomic_turn(w), published_(&published), taken_(&taken) {}
  rd::atomic<int>* published_;
  rd::unsync<int>* taken_;  // the consumer's, as the ring's head
  rd::atomic<std::uint32_t> released{0};
  int took = 0;  // items this receive took

  bool poll() noexcept {
    if (published_->load(std::memory_order_relaxed) == rd::unsync_ref(*taken_)) return false;
    rd::unsync_ref(*taken_) = rd::unsync_ref(*taken_) + 1;
    ++took;
    return true;
  }
  bool ready_hint() const noexcept { return published_->load(std::memory_order_relaxed) != rd::unsync_ref(*taken_); }
  void resume_direct() noexcept { signal(3); }
  void resume_stopped() noexcept { signal(2); }
  void resume_poller() noexcept { signal(1); }
  void signal(std::uint32_t how) noexcept {
    std::uint32_t const before = released.exchange(how, std::memory_order_acq_rel);
    RL_ASSERT(before == 0);
    rd::wake_all(released);
  }
};

template <bool Relay>
struct consuming_turns : rl::test_suite<consuming_turns<Relay>, 3> {
  diatomic_waker dw;
  rd::atomic<int> published{0};
  rd::unsync<int> taken{0};
  inplace_stop_source source;  // never stopped: the relay's token
  wait_relay relay;

  void thread(unsigned index) {
    if (index < 2) {
      published.fetch_add(1, std::memory_order_relaxed);
      dw.notify();
      return;
    }
    for (int receive = 0; receive < 2; ++receive) {
      consuming_wait w{dw, published, taken};
      using turn_outcome = consuming_wait::outcome;
      turn_outcome o = turn_outcome::ready;
      if (!w.poll()) {
        w.begin(Relay ? &relay : nullptr, source.get_token());
        o = w.turn(true);
        while (o == turn_outcome::suspended) {
          while (w.released.load(std::memory_order_acquire) == 0) rd::wait(w.released, 0);
          std::uint32_t const how = w.released.exchange(0, std::memory_order_acq_rel);
          RL_ASSERT(how != 2);  // nobody stops
          if (how == 3) {
            w.finish_direct();
            RL_ASSERT(w.poll());
            o = turn_outcome::ready;
            break;
          }
          o = w.turn(false);
        }
        RL_ASSERT(w.finished());
      }
      RL_ASSERT(o == turn_outcome::ready);
      RL_ASSERT(w.took == 1);  // one receive, one item
    }
  }
  void after() { RL_ASSERT(rd::unsync_ref(taken) == 2); }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<reregister_three_wakers>("diatomic_waker.reregister_three_wakers", 200000);
  failures += rouse_model::expect_pass<blocking_wait<idle_notify::rmw>>("diatomic_waker.blocking_wait", 300000);
  failures += rouse_model::expect_pass<blocking_wait<idle_notify::load>>("diatomic_waker.blocking_wait_idle_load",
                                                                        200000);
  failures += rouse_model::expect_pass<idle_notify_pair>("diatomic_waker.idle_notify_pair", 200000);
  failures += rouse_model::expect_pass<external_one_owner>("diatomic_waker.external_one_owner", 200000);
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_notify_drops_retry);
    failures += rouse_model::expect_failure<reregister_three_wakers>("diatomic_waker.broken_notify_drops_retry",
                                                                     rl::test_result_deadlock, 200000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_idle_notify_without_fence);
    failures += rouse_model::expect_failure<idle_notify_pair>("diatomic_waker.broken_idle_notify_without_fence",
                                                              rl::test_result_deadlock, 200000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_wait_registers_relaxed);
    failures += rouse_model::expect_failure<blocking_wait<idle_notify::rmw>>(
        "diatomic_waker.broken_wait_registers_relaxed", rl::test_result_data_race, 300000);
  }
  failures += rouse_model::expect_pass<coroutine_turns<false, false>>("diatomic_waker.turns_own_guard", 300000);
  failures += rouse_model::expect_pass<coroutine_turns<false, true>>("diatomic_waker.turns_own_guard_spurious",
                                                                    300000);
  failures += rouse_model::expect_pass<coroutine_turns<true, false>>("diatomic_waker.turns_relay", 300000);
  failures += rouse_model::expect_pass<coroutine_turns<true, true>>("diatomic_waker.turns_relay_spurious", 300000);
  failures +=
      rouse_model::expect_pass<coroutine_turns<false, false, true>>("diatomic_waker.turns_own_guard_direct", 300000);
  failures += rouse_model::expect_pass<coroutine_turns<false, true, true>>(
      "diatomic_waker.turns_own_guard_direct_spurious", 300000);
  failures += rouse_model::expect_pass<coroutine_turns<true, false, true>>("diatomic_waker.turns_relay_direct", 300000);
  failures += rouse_model::expect_pass<coroutine_turns<true, true, true>>("diatomic_waker.turns_relay_direct_spurious",
                                                                          300000);
  failures += rouse_model::expect_pass<consuming_turns<false>>("diatomic_waker.consuming_turns_own_guard", 300000);
  failures += rouse_model::expect_pass<consuming_turns<true>>("diatomic_waker.consuming_turns_relay", 300000);
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_direct_ignores_held);
    failures += rouse_model::expect_failure<consuming_turns<true>>("diatomic_waker.broken_direct_ignores_held",
                                                                   rl::test_result_user_assert_failed, 300000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_direct_without_hint);
    failures += rouse_model::expect_failure<coroutine_turns<true, true, true>>(
        "diatomic_waker.broken_direct_without_hint", rl::test_result_user_assert_failed, 300000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_turn_arms_with_store);
    failures += rouse_model::expect_failure<coroutine_turns<false, false>>("diatomic_waker.broken_turn_arms_with_store",
                                                                          rl::test_result_deadlock, 300000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_stop_leaves_no_mark);
    failures += rouse_model::expect_failure<coroutine_turns<false, true>>("diatomic_waker.broken_stop_leaves_no_mark",
                                                                         rl::test_result_deadlock, 300000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_stop_lost_to_claim);
    failures += rouse_model::expect_failure<coroutine_turns<false, true>>("diatomic_waker.broken_stop_lost_to_claim",
                                                                         rl::test_result_deadlock, 300000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_withdraw_ignores_claim);
    failures += rouse_model::expect_failure<external_one_owner>("diatomic_waker.broken_withdraw_ignores_claim",
                                                                rl::test_result_user_assert_failed, 200000);
  }
  return failures == 0 ? 0 : 1;
}
