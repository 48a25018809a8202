// rouse/async/detail/fire_tracked_timer.hpp — a timer entry whose owner can
// withdraw it even from inside its own fire.
//
//   struct node : detail::fire_tracked_timer { owner* self; };
//   static void on_fire(timer_entry* e) noexcept {
//     node* const n = static_cast<node*>(e);
//     n->fire_then([&] { n->self->time_is_up(); });  // may end the owner's wait inline
//   }
//   // the owner, once its wait is over (on whatever thread that is):
//   if (!ex->cancel_timer(n)) n->wait_for_fire();
//
// Purpose: a timed wait's timer must not outlive the wait: when the owner
// finds the timer firing (cancel_timer false), it waits for the fire's last
// touch before its frame may go. But the fire may end the wait itself, and
// when the waiting coroutine has no executor it is resumed inline, on the
// fire's own stack, and may withdraw the timer right there: waiting for the
// fire would wait for itself. wait_for_fire() tells the two apart: a fire up
// this thread's stack is told to touch nothing more (as the destructor of an
// inplace_stop_source tells a request_stop() running on its thread); a fire
// on another thread is waited out.
//
// Contract
// - fire_then(body): runs body(); then, unless wait_for_fire() was called
//   inside it on this thread, records that the fire is over (its last touch
//   of the entry). After a wait_for_fire() inside body, fire_then touches
//   nothing of the entry: the owner may be gone.
// - wait_for_fire(): only after cancel_timer returned false for this entry
//   (the fire has begun, or is about to). Returns once the fire touches the
//   entry no more: at once when called inside that fire's body, else after
//   the fire's last touch (it yields while it waits).
//
// Memory ordering: done_ is the last touch: release in fire_then, acquire in
// wait_for_fire, so everything the fire did happens-before the owner goes
// on. firing_thread_ is relaxed: a thread compares it only with its own id,
// equal only to a store it made itself (program order).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "rouse/async/executor.hpp"
#include "rouse/platform/cpu.hpp"

namespace rouse::async::detail {

struct fire_tracked_timer : timer_entry {
  template <class Body>
  void fire_then(Body&& body) noexcept {
    bool gone = false;  // set by wait_for_fire() inside body, on this thread
    gone_ = &gone;
    // Ordering: relaxed: compared only by this thread (see the header).
    firing_thread_.store(::rouse::platform::this_thread_id(), std::memory_order_relaxed);
    body();
    if (gone) return;  // the owner may be gone: nothing of it is touched
    // No longer up this thread's stack: a later wait_for_fire() here waits
    // for done_ as any other. Ordering: relaxed, as above.
    firing_thread_.store(0, std::memory_order_relaxed);
    // The last touch. Ordering: release: pairs with the acquire in wait_for_fire().
    done_.store(1, std::memory_order_release);
  }

  void wait_for_fire() noexcept {
    // Ordering: relaxed: equal only to a store this thread made.
    if (firing_thread_.load(std::memory_order_relaxed) == ::rouse::platform::this_thread_id()) {
      *gone_ = true;  // the fire is up this stack: it returns without a touch
      return;
    }
    // Ordering: acquire: pairs with the release in fire_then().
    while (done_.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  }

 private:
  std::atomic<int> done_{0};
  std::atomic<std::uint32_t> firing_thread_{0};  // platform::this_thread_id() (never 0) while up its stack
  bool* gone_ = nullptr;                          // fire_then's flag, on its stack
};

}  // namespace rouse::async::detail
