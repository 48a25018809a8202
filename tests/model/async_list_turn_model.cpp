// Relacy models of a coroutine wait's turn on an async waiter list
// (rouse/async/waiter_list.hpp, detail::list_turn: what list_awaitable's
// await_ready / await_suspend run, and the wakes that come through its
// arming guard or the task's relay), driven here in place of a coroutine.
// The awaiting coroutine is thread 0: it checks, arms, and, when the arm
// says it sleeps, touches nothing more; whoever completes it (its own
// await_suspend, or the wake that finds it armed) runs what the resumed
// coroutine would: await_resume (its own stop callback deregistered, which
// waits for a run on another thread), then the frame goes at once (the
// turn lives in raw storage destroyed in place, so a late touch of it is
// reported). Thread 0 then waits until its coroutine completed. The stop
// callbacks are the real inplace_stop_callback (the wait's own, or the
// task's one, relayed: wait_relay).
//
//   notify_vs_arming            two notify_one against a wait that checks,
//                               registers and arms: one completion, normal,
//                               and at most one notification left stored
//                               (a notify stores one, not a count)
//   stop_vs_notify_own          a notify_one and a stop (the wait's own
//                               callback) race the arm: one completion;
//                               stopped exactly when the stop won (then the
//                               notify is stored), normal when the notify
//                               won, even if the stop came too
//   stop_vs_notify_own_armed    the same, the stop made only once the arm
//                               returned (the wait sleeps, or went on)
//   stop_vs_notify_relay        the same through the task's relay, which
//                               is free again at the end (usable() for
//                               the task's next wait)
//   stop_vs_notify_relay_armed  the same, the stop after the arm
//   cv_act_when_asleep          a condition variable's wait with its sleep
//                               act (counted) against a notify_one and a
//                               stop: one completion; the act runs once
//                               when the wait slept, never when it went on,
//                               and slept() says which
//
// A lost wake shows as a deadlock (thread 0 waits for a completion that
// never comes), a double resume or a wrong outcome as an assertion, a touch
// of the frame after the completion let it go as an access to freed memory.
//
// Broken variants (detail::model_fault) the model must catch:
//   async_list_guard_arms_with_store     the guard is armed with a store:
//                                        a wake that came while arming is
//                                        overwritten (deadlock) in
//                                        notify_vs_arming, stop_vs_notify_own,
//                                        stop_vs_notify_own_armed and
//                                        cv_act_when_asleep
//   async_list_act_marks_slept_after     slept() is marked after the sleep
//                                        act ran: in cv_act_when_asleep, in
//                                        a frame its wake destroyed (access
//                                        to freed memory) or while the
//                                        resumed side reads it (data race)
//   wait_relay_wake_ignores_pin          (wait_relay.hpp) a wake that finds
//                                        the wait pinned by the stop resumes
//                                        it too: in stop_vs_notify_relay(_armed)
//                                        the coroutine completes twice (an
//                                        assertion, or the stop's late claim
//                                        in the frame that completion freed)
//   async_list_relay_self_claim_keeps_relay  a wait stopped through the relay
//                                        while it armed claims itself but
//                                        leaves the relay taken: in
//                                        stop_vs_notify_relay, not usable()
//                                        at the end (assertion)
#include <cstdint>
#include <optional>

#include "async_model.hpp"
#include "rouse/async/condition_variable.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/stop_token.hpp"

// The stop source asks the platform for the thread's id (out of line in
// src/, which models do not link): under the model, the Relacy thread.
std::uint32_t rouse::platform::this_thread_id() noexcept { return rl::thread_index() + 1; }

namespace rouse::async::detail {
struct cv_model_access {
  static std::uint32_t sequence(const condition_variable& cv) noexcept { return cv.sequence(); }
};
}  // namespace rouse::async::detail

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using ra::inplace_stop_callback;
using ra::inplace_stop_source;
using ra::detail::wait_relay;
using rouse_model::slot;

template <class P>
struct coroutine;

// The awaitable, as the model has it: the turn, and the storage of the
// wait's own stop callback. complete(): the wake that found it armed
// resumes the coroutine, here on the waking thread (no executor).
template <class P>
struct model_wait : ra::detail::list_turn<model_wait<P>, P> {
  using turn = ra::detail::list_turn<model_wait<P>, P>;
  struct own_stop {
    model_wait* w;
    void operator()() noexcept { w->stop_requested(); }
  };
  model_wait(P& p, std::uintptr_t tag, coroutine<P>& c) noexcept : turn(p, tag), co(&c) {}
  coroutine<P>* co;
  std::optional<inplace_stop_callback<own_stop>> callback;
  void complete() noexcept { co->go_on(); }
};

// The awaiting coroutine: its frame (the awaitable's storage) and what it
// saw, kept outside the frame.
template <class P>
struct coroutine {
  static constexpr bool acts = ra::detail::acts_when_asleep<P>::value;
  slot<model_wait<P>> frame;
  rd::atomic<std::uint32_t> resumed{0};      // go_on() entered
  rd::atomic<std::uint32_t> completions{0};  // go_on() done: the frame is gone
  rd::atomic<int> stopped{0};                // it completed as stopped
  rd::atomic<int> slept_seen{0};             // slept() when it completed
  rd::atomic<int> acts_run{0};               // runs of the sleep act
  rd::atomic<std::uint32_t> armed_out{0};    // await_suspend returned
  rd::atomic<int> arm_slept{0};              // ... saying that the coroutine sleeps

  // The coroutine goes on: await_resume, then its frame goes at once.
  void go_on() noexcept {
    // Ordering: relaxed: counts the resumptions; a second one is the bug.
    RL_ASSERT(resumed.fetch_add(1, std::memory_order_relaxed) == 0);
    model_wait<P>& w = *frame;
    w.callback.reset();  // await_resume deregisters the wait's own callback
    bool const normal = w.finish();
    if constexpr (acts) slept_seen.store(w.slept() ? 1 : 0, std::memory_order_relaxed);
    stopped.store(normal ? 0 : 1, std::memory_order_relaxed);
    frame.destroy();
    // Ordering: release: pairs with the acquire in wait_completed().
    completions.fetch_add(1, std::memory_order_release);
    rd::wake_all(completions);
  }

  // co_await: await_ready, then await_suspend (the turn's arm); a wait that
  // did not sleep completes here. Nothing of the frame after a sleeping arm.
  template <class Token>
  void await(P& p, std::uintptr_t tag, const Token& token, wait_relay* relay) {
    model_wait<P>& w = frame.make(p, tag, *this);
    if constexpr (acts) w.act_when_asleep(&count_act, &acts_run);
    using outcome = typename model_wait<P>::turn::outcome;
    outcome o = outcome::ready;
    if (!w.check())
      o = w.arm(token, relay, [&]() noexcept { w.callback.emplace(token, typename model_wait<P>::own_stop{&w}); });
    arm_slept.store(o == outcome::suspended ? 1 : 0, std::memory_order_relaxed);
    if (o != outcome::suspended) {
      RL_ASSERT((o == outcome::stopped) == w.stopped());  // the arm says how it completed
      if (o == outcome::stopped) w.callback.reset();  // await_suspend's own stopped completion
      go_on();
    }
    // Ordering: release: arm_slept before a stopper that waits for it.
    armed_out.store(1, std::memory_order_release);
    rd::wake_all(armed_out);
  }
  void wait_completed() {
    while (completions.load(std::memory_order_acquire) == 0) rd::wait(completions, 0);
  }
  void wait_armed() {
    while (armed_out.load(std::memory_order_acquire) == 0) rd::wait(armed_out, 0);
  }

  static void count_act(void* runs) noexcept {
    static_cast<rd::atomic<int>*>(runs)->fetch_add(1, std::memory_order_relaxed);
  }
};

// Takes a stored permit, if any (a blocking wait that does not wait).
bool take_permit(ra::notify& n) { return ra::wait_blocking(n, 0, rd::now_deadline{}); }

// The task's one stop callback, relayed to the wait it is in.
struct relay_stop {
  wait_relay* relay;
  void operator()() noexcept { relay->stop(); }
};

struct notify_vs_arming : rl::test_suite<notify_vs_arming, 3> {
  slot<ra::notify> n;
  coroutine<ra::notify> co;

  void before() { n.make(); }
  void thread(unsigned index) {
    if (index == 0) {
      co.await(*n, 0, ra::inplace_stop_token{}, nullptr);  // a token that cannot be stopped
      co.wait_completed();
    } else {
      n->notify_one();
    }
  }
  void after() {
    RL_ASSERT(co.completions.load(std::memory_order_relaxed) == 1);
    RL_ASSERT(co.stopped.load(std::memory_order_relaxed) == 0);
    // The other notify is stored, or was one with the first (both stored
    // before the check, which took the one permit).
    (void)take_permit(*n);
    RL_ASSERT(!take_permit(*n));
    n.destroy();
  }
};

// `Relay`: the task's callback relays the stop to the wait; else the wait
// registers its own. `AfterArmed`: the stop is made only once
// await_suspend returned.
template <bool Relay, bool AfterArmed>
struct stop_vs_notify : rl::test_suite<stop_vs_notify<Relay, AfterArmed>, 3> {
  slot<ra::notify> n;
  coroutine<ra::notify> co;
  inplace_stop_source source;
  wait_relay relay;

  void before() { n.make(); }
  void thread(unsigned index) {
    if (index == 0) {
      std::optional<inplace_stop_callback<relay_stop>> task_callback;
      if (Relay) task_callback.emplace(source.get_token(), relay_stop{&relay});  // for the task's whole life
      co.await(*n, 0, source.get_token(), Relay ? &relay : nullptr);
      co.wait_completed();
      task_callback.reset();
    } else if (index == 1) {
      n->notify_one();
    } else {
      if (AfterArmed) co.wait_armed();
      source.request_stop();
    }
  }
  void after() {
    RL_ASSERT(co.completions.load(std::memory_order_relaxed) == 1);
    // One winner: completed normally (the notify's permit taken), or
    // stopped (the notify stored).
    bool const stopped = co.stopped.load(std::memory_order_relaxed) == 1;
    RL_ASSERT(take_permit(*n) == stopped);
    if (Relay) RL_ASSERT(relay.usable());  // free for the task's next wait
    n.destroy();
  }
};

struct cv_act_when_asleep : rl::test_suite<cv_act_when_asleep, 3> {
  slot<ra::condition_variable> cv;
  coroutine<ra::condition_variable> co;
  inplace_stop_source source;

  void before() { cv.make(); }
  void thread(unsigned index) {
    if (index == 0) {
      co.await(*cv, ra::detail::cv_model_access::sequence(*cv), source.get_token(), nullptr);
      co.wait_completed();
    } else if (index == 1) {
      cv->notify_one();
    } else {
      source.request_stop();
    }
  }
  void after() {
    RL_ASSERT(co.completions.load(std::memory_order_relaxed) == 1);
    int const slept = co.arm_slept.load(std::memory_order_relaxed);
    RL_ASSERT(co.acts_run.load(std::memory_order_relaxed) == slept);  // once when it slept, else never
    RL_ASSERT(co.slept_seen.load(std::memory_order_relaxed) == slept);
    cv.destroy();
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 300000;  // random search (a fair full search is too large)
  int failures = 0;
  failures += rouse_model::expect_pass<notify_vs_arming>("async_list_turn.notify_vs_arming", iterations);
  failures += rouse_model::expect_pass<stop_vs_notify<false, false>>("async_list_turn.stop_vs_notify_own", iterations);
  failures +=
      rouse_model::expect_pass<stop_vs_notify<false, true>>("async_list_turn.stop_vs_notify_own_armed", iterations);
  failures += rouse_model::expect_pass<stop_vs_notify<true, false>>("async_list_turn.stop_vs_notify_relay", iterations);
  failures +=
      rouse_model::expect_pass<stop_vs_notify<true, true>>("async_list_turn.stop_vs_notify_relay_armed", iterations);
  failures += rouse_model::expect_pass<cv_act_when_asleep>("async_list_turn.cv_act_when_asleep", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_list_guard_arms_with_store);
    failures += rouse_model::expect_failure<notify_vs_arming>("async_list_turn.broken_guard_arms_with_store",
                                                              rl::test_result_deadlock, iterations);
    failures += rouse_model::expect_failure<stop_vs_notify<false, false>>(
        "async_list_turn.broken_guard_arms_with_store_stop", rl::test_result_deadlock, iterations);
    failures += rouse_model::expect_failure<stop_vs_notify<false, true>>(
        "async_list_turn.broken_guard_arms_with_store_stop_armed", rl::test_result_deadlock, iterations);
    failures += rouse_model::expect_failure<cv_act_when_asleep>("async_list_turn.broken_guard_arms_with_store_cv",
                                                                rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_list_act_marks_slept_after);
    failures += rouse_model::expect_failure_either<cv_act_when_asleep>("async_list_turn.broken_act_marks_slept_after",
                                                                       rl::test_result_access_to_freed_memory,
                                                                       rl::test_result_data_race, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::wait_relay_wake_ignores_pin);
    failures += rouse_model::expect_failure_either<stop_vs_notify<true, false>>(
        "async_list_turn.broken_relay_wake_ignores_pin", rl::test_result_user_assert_failed,
        rl::test_result_access_to_freed_memory, iterations);
    failures += rouse_model::expect_failure_either<stop_vs_notify<true, true>>(
        "async_list_turn.broken_relay_wake_ignores_pin_armed", rl::test_result_user_assert_failed,
        rl::test_result_access_to_freed_memory, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_list_relay_self_claim_keeps_relay);
    failures += rouse_model::expect_failure<stop_vs_notify<true, false>>(
        "async_list_turn.broken_relay_self_claim_keeps_relay", rl::test_result_user_assert_failed, iterations);
  }
  return failures == 0 ? 0 : 1;
}
