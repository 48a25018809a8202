// wait_on (rouse/io/wait_on.hpp): the kernel's futex wait through the
// reactor's ring, or a helper thread.
#include "rouse/io/wait_on.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace rouse::io {

namespace {
long futex_call(const std::atomic<std::uint32_t>* word, int op, std::uint32_t value) noexcept {
  return ::syscall(SYS_futex, word, op, value, nullptr, nullptr, 0);
}
}  // namespace

// Helper thread states (helper_state_): waiting = 0 -> woken = 1 (the helper
// completes the wait) | stopping = 2 (cancel() completes it). One winner.
namespace {
constexpr int helper_waiting = 0;
constexpr int helper_woken = 1;
constexpr int helper_stopping = 2;
}  // namespace

void wait_on_awaitable::start() {
  if (reactor_->futex_wait_start(this, word_, expected_)) return;
  helper_ = std::thread([this] { helper_main(); });
}

void wait_on_awaitable::helper_main() noexcept {
  long rc = -1;
  do {
    // Returns on a wake, when the word no longer holds expected_ (EAGAIN),
    // or on a signal (EINTR: wait again).
    rc = futex_call(word_, FUTEX_WAIT_PRIVATE, expected_);
  } while (rc < 0 && errno == EINTR && helper_state_.load(std::memory_order_acquire) == helper_waiting);
  int expected = helper_waiting;
  // waiting -> woken. Ordering: acq_rel: one winner against cancel().
  if (helper_state_.compare_exchange_strong(expected, helper_woken, std::memory_order_acq_rel)) {
    // Ordering: release: pairs with the acquire in cancel(). Set before the
    // completion: after it the awaitable may be gone.
    helper_done_.store(true, std::memory_order_release);
    complete_node(this);
    return;
  }
  // Told to stop. A wake-one this wait consumed would be lost: pass it on
  // (it may also have been cancel()'s own wake: a spurious wake-up for
  // another waiter, which futex waiters tolerate).
  if (rc == 0) futex_call(word_, FUTEX_WAKE_PRIVATE, 1);
  helper_done_.store(true, std::memory_order_release);
}

void wait_on_awaitable::cancel(bool complete_stopped) noexcept {
  if (detached) return;  // the reactor is gone: nothing of it may be touched
  if (helper_.joinable()) {
    int expected = helper_waiting;
    // waiting -> stopping. Ordering: acq_rel: one winner against the helper.
    if (!helper_state_.compare_exchange_strong(expected, helper_stopping, std::memory_order_acq_rel)) return;
    // Wake the helper out of its futex wait (and, spuriously, the word's
    // other waiters) until it has left: it may enter the wait just after a
    // wake. Then no waiter of ours is left on the word.
    // Ordering: acquire: pairs with the release at the helper's end.
    while (!helper_done_.load(std::memory_order_acquire)) {
      futex_call(word_, FUTEX_WAKE_PRIVATE, INT_MAX);
      std::this_thread::yield();
    }
    helper_.join();
  } else if (!reactor_->futex_wait_cancel(this)) {
    return;  // the ring's completion was taken first: it stands
  }
  if (complete_stopped) {
    stopped_ = true;
    complete_node(this);
  }
}

void wait_on_awaitable::reap_helper() noexcept {
  if (!helper_.joinable()) return;
  if (helper_.get_id() == std::this_thread::get_id())
    helper_.detach();  // it touches nothing of ours after the resume
  else
    helper_.join();
}

wait_on_awaitable::~wait_on_awaitable() {
  if (armed_ && gate_.load(std::memory_order_acquire) != 0) {
    // The frame goes away while the wait is pending: withdraw it.
    stop_.reset();
    cancel(false);
  }
  reap_helper();
}

}  // namespace rouse::io
