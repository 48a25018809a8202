// rouse/async/detail/wait_relay.hpp — one stop callback per task, relayed to
// the wait the task is in.
//
// Purpose. A wait of an async primitive (rouse/async/waiter_list.hpp,
// list_awaitable) must end as stopped when its task's stop token is
// stopped. Registering a stop callback for each wait and removing it when
// the wait ends costs two RMWs on the stop source plus the callback's own
// bookkeeping, on every suspension. A task (a chain of tasks, each awaiting
// the next, with one token) is in at most one wait at a time, so a rouse
// task registers one callback for its whole life instead, and each wait
// publishes itself in the relay's word with the compare-exchange that arms
// it, an RMW the wait makes anyway (the arming guard of waiter_list.hpp).
// The callback finds the armed wait in the word and ends it; the wait's
// wakes go through the same word, so a stop and a wake agree on who resumes
// the coroutine.
//
// Roles:
//   the waiting coroutine   arm() at the end of await_suspend (after the
//                           wait registered on its primitive and re-checked)
//   the wait's waker        wake(): its notifier's (or timer's) wake, and the
//                           stop's own wake when its claim of the wait won
//   the task's stop callback stop(): once per relay, on the stopping thread
//   a destroyed frame       unpublish(): the wait's awaitable is destroyed
//                           while armed
// An armed wait is a `hook` in the waiting frame: stop(hook) claims the wait
// (aborted: the primitive's claim, one winner) and, when that won, ends it
// through its waker (wake() here); resume(hook) resumes its coroutine,
// normally or as stopped, as the wait's own state says.
//
// State word: a hook's address (8-aligned) | kind (bits 1..2) | S (bit 0)
//   idle          no wait armed: the task runs, or a wait is arming
//   armed(W)      W waits; a wake resumes it
//   armed(W)|S    pinned: the stop callback works on W; it resumes W (a wake
//                 that comes meanwhile leaves woken|S and returns)
//   woken         a wake came while the wait was arming: the arming
//                 coroutine resumes itself
//   lost|S        the stop's claim lost to a notify: that notify's wake resumes
//   S on idle / woken: a stop came while no wait was armed: the arming wait
//                 (if any) sees it and ends itself as stopped
//
//   arm(W):      idle -> armed(W) (suspend) | woken(|S) -> idle (resume here,
//                normally) | idle|S -> report stop (the caller claims its
//                own wait; won: end_stopped(); lost: rearm(W))
//   rearm(W):    idle|S -> armed(W) (suspend) | woken|S -> idle (resume here)
//   end_stopped(): woken|S (its own claim's wake) or idle|S (a claim that
//                does not wake through the relay: a diatomic_waker wait's
//                withdraw) -> idle
//   wake(W):     armed(W) -> idle, resume | lost|S -> idle, resume |
//                armed(W)|S -> woken|S (a notify's wake while the stop works
//                on W) | armed(W)|S -> idle, resume (the stop's own wake: its
//                claim of W won) | idle(|S) -> woken(|S)
//   stop():      fetch_or S; on armed(W): stop(W): won: done (its own wake
//                resumed W, inside the claim: before any waiter the claim's
//                pass-on lets in, which may destroy W's frame and this
//                relay); lost: armed(W)|S -> lost|S (a notify's wake
//                resumes) or, finding woken|S (the notify's wake came),
//                -> idle and resume(W)
//   unpublish(W): armed(W) -> idle; pinned: wait until the stop callback
//                lets go of W (a stop whose claim of W won resumes W after
//                it let go: a wake in flight, under which a frame must not
//                be destroyed)
// S is a message to one wait, and transitions that resume a coroutine
// normally drop it (woken|S, lost|S -> idle): every wait also reads the
// token's stop flag at its start, and a stop whose S was dropped is seen
// there (the flag was set before the callback ran; the transition that
// dropped S acquired it, and happens-before the resumption and so the
// next wait). The word is idle again before any coroutine it let through runs, so the
// next wait of the task finds it idle (a wait that finds it otherwise —
// only after misuse, such as a frame destroyed while its wake was in flight —
// registers its own stop callback instead: usable()).
//
// Memory ordering: every transition is an acq_rel RMW (or a release store
// where only one thread can be writing, said at each): W's fields written
// before it armed are seen by the callback and the waker that read armed(W);
// what the stop side wrote into W (stopped) is seen by whoever resumes it.
// A stop flag set before the callback runs is seen by a wait that reads S
// (or the word after it): request_stop() sets the flag, then runs the
// callback, whose RMW releases it.
//
// tests/model/async_wait_relay_model.cpp runs this protocol under Relacy.
#pragma once

#include <cstdint>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse::async::detail {

class wait_relay {
 public:
  // An armed wait, in the waiting frame.
  struct hook_ops {
    // Claims the wait (aborted) and, if that won, ends it: unlinks it,
    // marks it stopped and calls its waker (wake() below, with its_stop),
    // which resumes it. True when it won: nothing of the wait or the relay
    // may be touched after. Touches nothing of the wait after a lost claim.
    bool (*stop)(void* hook) noexcept;
    // Resumes the wait's coroutine (stopped, if stop() won).
    void (*resume)(void* hook) noexcept;
  };
  struct hook {
    const hook_ops* ops;
  };

  enum class arm_result : std::uint8_t {
    armed,  // suspended: a wake (or the stop) resumes the coroutine
    woken,  // a wake came while arming: the caller resumes it now, normally
    stop,   // a stop came while arming: the caller claims its own wait
  };

  wait_relay() noexcept = default;
  wait_relay(const wait_relay&) = delete;
  wait_relay& operator=(const wait_relay&) = delete;

  // Whether a wait may use the relay now (nothing armed, nothing left over).
  [[nodiscard]] bool usable() const noexcept {
    // Ordering: relaxed: the coroutine's own last write (or a write it was
    // resumed after); the arm that follows checks again.
    return (word_.load(std::memory_order_relaxed) & kind_mask) == idle;
  }

  // At the end of await_suspend: W is registered on its primitive.
  arm_result arm(hook& w) noexcept {
    std::uintptr_t v = idle;
    // idle -> armed(W). Ordering: acq_rel: release: W's fields (its resume
    // target) before a wake or the stop reads them; acquire: a wake or a
    // stop that came first.
    if (word_.compare_exchange_strong(v, address(w) | armed, std::memory_order_acq_rel, std::memory_order_acquire))
      return arm_result::armed;
    if ((v & kind_mask) == woken) {
      // A wake came while arming (a stop beside it, S, is for the next wait:
      // its start sees the token stopped). Ordering: acq_rel, as above.
      word_.exchange(idle, std::memory_order_acq_rel);
      return arm_result::woken;
    }
    ROUSE_CHECK_USAGE(v == (idle | stop_bit), "rouse::async wait relay", "armed by two waits at once");
    return arm_result::stop;
  }
  // After arm() reported stop and the caller's claim of its own wait lost
  // (a notify chose it: its wake is coming, or came).
  arm_result rearm(hook& w) noexcept {
    std::uintptr_t v = idle | stop_bit;
    // idle|S -> armed(W), S consumed. Ordering: acq_rel, as in arm().
    if (word_.compare_exchange_strong(v, address(w) | armed, std::memory_order_acq_rel, std::memory_order_acquire))
      return arm_result::armed;
    // woken|S: the notify's wake came. Ordering: acq_rel, as in arm().
    word_.exchange(idle, std::memory_order_acq_rel);
    return arm_result::woken;
  }
  // After arm() reported stop and the caller's claim won: its own wake
  // (through its waker) left woken|S, or, a claim that calls no waker, the
  // word is still idle|S; the wait ends as stopped.
  void end_stopped() noexcept {
    // Ordering: acq_rel, as in arm(); only this thread writes now (the stop
    // callback is done with the word, no notify can claim the wait).
    word_.exchange(idle, std::memory_order_acq_rel);
  }

  // W's waker. True when the caller resumes W now. `its_stop`: the wake of
  // the stop's own claim of W (it won), from inside hook_ops::stop.
  [[nodiscard]] bool wake(hook& w, bool its_stop = false) noexcept {
    std::uintptr_t v = address(w) | armed;
    for (;;) {
      std::uintptr_t desired;
      bool resume = false;
      switch (v & kind_mask) {
        case armed:
          if ((v & stop_bit) && its_stop &&
              !::rouse::detail::model_fault_on(::rouse::detail::model_fault::wait_relay_stop_resumes_after_its_claim)) {
            desired = idle;  // pinned by this very stop: W resumes now
            resume = true;
          } else if (v & stop_bit) {
            desired = woken | stop_bit;  // pinned: the stop callback resumes
          } else {
            desired = idle;
            resume = true;
          }
          break;
        case lost:
          desired = idle;  // the stop lost to this wake: it resumes
          resume = true;
          break;
        default:  // idle: W is arming; woken cannot be (one wake per wait)
          desired = woken | (v & stop_bit);
          break;
      }
      if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::wait_relay_wake_ignores_pin) &&
          v == (address(w) | armed | stop_bit)) {
        desired = idle;
        resume = true;
      }
      // Ordering: acq_rel: acquire: W's fields (armed); release: what this
      // wake's notifier did, to the resumer.
      if (word_.compare_exchange_weak(v, desired, std::memory_order_acq_rel, std::memory_order_acquire)) return resume;
    }
  }

  // The task's stop callback (once per relay).
  void stop() noexcept {
    // Ordering: acq_rel: acquire: the armed wait's fields; release: the
    // token's stop flag, to a wait that reads S.
    std::uintptr_t const v = word_.fetch_or(stop_bit, std::memory_order_acq_rel);
    if ((v & kind_mask) != armed) return;  // a message for the arming wait, if any
    void* const w = reinterpret_cast<void*>(v & pointer_mask);
    const hook_ops* const ops = static_cast<hook*>(w)->ops;
    // Won: its own wake made the word idle and resumed W, which may be gone
    // now, and this relay with it: touch nothing.
    if (ops->stop(w) && !::rouse::detail::model_fault_on(
                            ::rouse::detail::model_fault::wait_relay_stop_resumes_after_its_claim))
      return;
    std::uintptr_t expected = v | stop_bit;
    // pinned -> lost|S: a notify claimed W; its wake resumes it. Ordering:
    // acq_rel: release: nothing more of W is read here.
    if (word_.compare_exchange_strong(expected, lost | stop_bit, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      return;
    // woken|S: the wake of the notify that won W came: this thread resumes
    // W. Ordering: release; only this thread writes now.
    word_.store(idle, std::memory_order_release);
    if (!::rouse::detail::model_fault_on(::rouse::detail::model_fault::wait_relay_stop_defers_after_wake))
      ops->resume(w);
  }

  // W's awaitable is destroyed while armed (its frame is destroyed while
  // it waits): after this, the stop callback does not touch W, unless its
  // claim of W won (then it resumes W: a wake in flight, which the frame's
  // owner must not destroy it under).
  void unpublish(hook& w) noexcept {
    std::uintptr_t v = address(w) | armed;
    // armed(W) -> idle. Ordering: acq_rel, as in arm().
    if (word_.compare_exchange_strong(v, idle, std::memory_order_acq_rel, std::memory_order_acquire)) return;
    // Pinned: the stop callback works on W; wait until it is done with it.
    // Ordering: acquire: its last touch of W.
    while (word_.load(std::memory_order_acquire) == (address(w) | armed | stop_bit)) ::rouse::detail::yield();
  }

 private:
  static constexpr std::uintptr_t stop_bit = 1;  // S
  static constexpr std::uintptr_t idle = 0;
  static constexpr std::uintptr_t armed = 2;
  static constexpr std::uintptr_t woken = 4;
  static constexpr std::uintptr_t lost = 6;
  static constexpr std::uintptr_t kind_mask = 6;
  static constexpr std::uintptr_t pointer_mask = ~std::uintptr_t{7};

  static std::uintptr_t address(hook& w) noexcept { return reinterpret_cast<std::uintptr_t>(&w); }

  ::rouse::detail::atomic<std::uintptr_t> word_{idle};
};

}  // namespace rouse::async::detail
