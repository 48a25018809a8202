// Relacy model of rouse::async::detail::wait_relay: a task's one stop
// callback relayed to the wait the task is in. A waiting coroutine arms its
// wait (W: a claim word, as the waiter list's, and a stopped flag), a
// notifier claims W and wakes it, and the task's stop callback runs, in
// every order; the waiter then waits again (the word must be idle for the
// next wait). Checked: W is resumed exactly once, as stopped exactly when
// the stop's claim won; the word is idle afterwards; no data race on W's
// plain fields. Broken variants: a wake that ignores the stop's pin resumes
// twice (assertion), a stop callback that leaves a resumption to a wake that
// already came resumes nobody (deadlock), a next wait that does not read
// the token at its start sleeps through the stop (deadlock), and a stop
// whose claim won but whose wait is resumed only after that claim returned
// (assertion: inside the claim, a primitive's pass-on may already let in a
// waiter that destroys the stopped wait's frame, and the relay with it).
#include "model.hpp"
#include "rouse/async/detail/wait_relay.hpp"

namespace {

namespace rd = rouse::detail;
using relay = rouse::async::detail::wait_relay;

constexpr std::uintptr_t waiting = 0;
constexpr std::uintptr_t aborted = 1;
constexpr std::uintptr_t notified = 2;

struct wait;

// One wait, as list_awaitable in relay mode: its claim, its guard's wake
// through the relay, and its resumption.
struct wait : relay::hook {
  relay* r = nullptr;
  rd::atomic<std::uintptr_t> claim{waiting};
  rd::unsync<int> target{0};     // the resume target, written before arming
  rd::unsync<bool> stopped{false};  // written by the stop's winning claim
  rd::atomic<std::uint32_t> registered{0};  // the push onto the primitive's list
  rd::atomic<std::uint32_t> resumed{0};
  rd::atomic<std::uint32_t> resumed_stopped{0};

  static const relay::hook_ops ops;

  // The guard's wake (detail::waiter::wake -> list_awaitable's guard); the
  // stop's own wake says so (stopped, set by its winning claim).
  void waker() {
    if (r->wake(*this, rd::unsync_ref(stopped))) resume();
  }
  void resume() {
    RL_ASSERT(rd::unsync_ref(target) == 7);
    if (rd::unsync_ref(stopped)) resumed_stopped.fetch_add(1, std::memory_order_relaxed);
    // Ordering: release: the counts before the waiting thread's acquire.
    resumed.fetch_add(1, std::memory_order_release);
    rd::wake_all(resumed);
  }
  bool try_claim(std::uintptr_t v) {
    std::uintptr_t e = waiting;
    return claim.compare_exchange_strong(e, v, std::memory_order_acq_rel, std::memory_order_acquire);
  }
  static bool stop_hook(void* h) noexcept {
    wait& w = *static_cast<wait*>(static_cast<relay::hook*>(h));
    if (!w.try_claim(aborted)) return false;
    rd::unsync_ref(w.stopped) = true;
    w.waker();
    // Resumed already, before the claim returns: what a primitive's
    // pass-on wakes next (inside the claim) may destroy the stopped wait.
    RL_ASSERT(w.resumed.load(std::memory_order_relaxed) == 1);
    return true;
  }
  static void resume_hook(void* h) noexcept { static_cast<wait*>(static_cast<relay::hook*>(h))->resume(); }

  wait() : relay::hook{&ops} {}

  // After the run: resumed exactly once, as stopped exactly when the
  // stop's claim won.
  void check_resumed_once() {
    RL_ASSERT(resumed.load(std::memory_order_relaxed) == 1);
    bool const stop_won = claim.load(std::memory_order_relaxed) == aborted;
    RL_ASSERT(resumed_stopped.load(std::memory_order_relaxed) == (stop_won ? 1u : 0u));
  }

  // A notifier: claims the wait once it is registered, and wakes it.
  void notify() {
    while (registered.load(std::memory_order_acquire) == 0) rd::wait(registered, 0u);
    if (try_claim(notified)) waker();
  }

  // The waiting coroutine's side: reads the token's flag (the start
  // check; skipped in the broken suite), arms, and resumes itself when
  // arm() says so. Then sleeps until resumed (once).
  void run(relay& rel, rd::atomic<std::uint32_t>* token = nullptr) {
    r = &rel;
    rd::unsync_ref(target) = 7;
    if (token != nullptr && token->load(std::memory_order_acquire) != 0) {
      std::uintptr_t e = waiting;
      claim.compare_exchange_strong(e, aborted, std::memory_order_relaxed);  // never registered
      rd::unsync_ref(stopped) = true;
      registered.store(1, std::memory_order_release);  // (a notifier's claim fails)
      rd::wake_all(registered);
      resume();
      return;
    }
    // Registered: a notifier may claim it from here on. Ordering: release,
    // as the list's lock.
    registered.store(1, std::memory_order_release);
    rd::wake_all(registered);
    switch (rel.arm(*this)) {
      case relay::arm_result::armed:
        break;
      case relay::arm_result::woken:
        resume();
        break;
      case relay::arm_result::stop:
        if (try_claim(aborted)) {
          rd::unsync_ref(stopped) = true;
          waker();  // leaves woken|S
          rel.end_stopped();
          resume();
        } else if (rel.rearm(*this) == relay::arm_result::woken) {
          resume();
        }
        break;
    }
    while (resumed.load(std::memory_order_acquire) == 0) rd::wait(resumed, 0u);
  }
};
const relay::hook_ops wait::ops{&wait::stop_hook, &wait::resume_hook};

// Thread 0 waits twice (the second wait finds the word left by the first);
// thread 1 notifies each wait once; thread 2 stops (the relay's callback).
struct stop_vs_notify : rl::test_suite<stop_vs_notify, 3> {
  relay r;
  wait w[2];

  void thread(unsigned index) {
    if (index == 0) {
      for (wait& x : w) x.run(r);
    } else if (index == 1) {
      for (wait& x : w) x.notify();
    } else {
      r.stop();
    }
  }
  void after() {
    for (wait& x : w) x.check_resumed_once();
    RL_ASSERT(r.usable());
  }
};

// One wait, a notify and the stop; the stop may come before the wait arms.
struct one_wait : rl::test_suite<one_wait, 3> {
  relay r;
  wait w;

  void thread(unsigned index) {
    if (index == 0) {
      w.run(r);
    } else if (index == 1) {
      w.notify();
    } else {
      r.stop();
    }
  }
  void after() {
    w.check_resumed_once();
    RL_ASSERT(r.usable());
  }
};

// A wait ended by the stop alone (no notify): it must end, as stopped.
struct stop_only : rl::test_suite<stop_only, 2> {
  relay r;
  wait w;

  void thread(unsigned index) {
    if (index == 0)
      w.run(r);
    else
      r.stop();
  }
  void after() {
    RL_ASSERT(w.resumed.load(std::memory_order_relaxed) == 1);
    RL_ASSERT(w.resumed_stopped.load(std::memory_order_relaxed) == 1);
    RL_ASSERT(r.usable());
  }
};

// The task's stop comes while its first wait is notified: the notify may
// win that wait (the stop's mark is then dropped by the transition that
// resumes it), so the second wait, which nobody notifies, must see the
// token's flag at its start. The broken suite skips that check: the
// second wait sleeps for ever when the first consumed the mark.
template <bool StartCheck>
struct stop_reaches_the_next_wait : rl::test_suite<stop_reaches_the_next_wait<StartCheck>, 3> {
  relay r;
  wait w[2];
  rd::atomic<std::uint32_t> token{0};  // the stop source's flag

  void thread(unsigned index) {
    if (index == 0) {
      for (wait& x : w) x.run(r, StartCheck ? &token : nullptr);
    } else if (index == 1) {
      w[0].notify();
    } else {
      // request_stop(): the flag, then the callbacks.
      token.store(1, std::memory_order_release);
      r.stop();
    }
  }
  void after() {
    for (wait& x : w) RL_ASSERT(x.resumed.load(std::memory_order_relaxed) == 1);
    RL_ASSERT(w[1].resumed_stopped.load(std::memory_order_relaxed) == 1);
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search (a fair full search is too large)
  int failures = 0;
  failures += rouse_model::expect_pass<one_wait>("wait_relay.one_wait", iterations);
  failures += rouse_model::expect_pass<stop_only>("wait_relay.stop_only", iterations);
  failures += rouse_model::expect_pass<stop_vs_notify>("wait_relay.stop_vs_notify", iterations);
  failures += rouse_model::expect_pass<stop_reaches_the_next_wait<true>>("wait_relay.stop_reaches_the_next_wait",
                                                                        iterations);
  failures += rouse_model::expect_failure<stop_reaches_the_next_wait<false>>(
      "wait_relay.broken_next_wait_skips_the_token", rl::test_result_deadlock, iterations);
  {
    rd::model_fault_scope f(rd::model_fault::wait_relay_wake_ignores_pin);
    failures += rouse_model::expect_failure<one_wait>("wait_relay.broken_wake_ignores_pin",
                                                      rl::test_result_user_assert_failed, iterations);
  }
  {
    rd::model_fault_scope f(rd::model_fault::wait_relay_stop_defers_after_wake);
    failures += rouse_model::expect_failure<one_wait>("wait_relay.broken_stop_defers_after_wake",
                                                      rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope f(rd::model_fault::wait_relay_stop_resumes_after_its_claim);
    failures += rouse_model::expect_failure<stop_only>("wait_relay.broken_stop_resumes_after_its_claim",
                                                       rl::test_result_user_assert_failed, iterations);
  }
  return failures == 0 ? 0 : 1;
}
