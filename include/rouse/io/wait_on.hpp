// rouse/io/wait_on.hpp — co_await a futex word: the async twin of a futex wait.
//
//   std::atomic<std::uint32_t> word{0};
//   while (word.load() == 0)
//     co_await rouse::io::wait_on(loop, word, 0);   // a futex wake of &word resumes it
//
// Purpose: let a coroutine wait where a thread would call futex wait, so
// that a word woken by rouse's blocking primitives (or any FUTEX_WAKE on
// it, private) wakes a coroutine without a thread per waiter. Like a futex
// wait it may return spuriously, and returns at once when the word no
// longer holds `expected`: callers re-check the word (DESIGN rule 1).
//
// Two ways, chosen at run time:
//   io_uring   an IORING_OP_FUTEX_WAIT request (Linux ≥ 6.7) on the
//              reactor's ring, with FUTEX2_SIZE_U32 | FUTEX2_PRIVATE: the
//              kernel queues the waiter, the ring reports the wake, the
//              coroutine is scheduled on its executor. One allocation per
//              wait (a reactor-owned record, so that a frame destroyed
//              while waiting leaves nothing the kernel can still name).
//   helper     anywhere else (the epoll backend, a kernel before 6.7): a
//              helper thread per wait blocks in futex wait and completes the
//              coroutine. Costly (a thread per waiting coroutine); there for
//              correctness, not speed. reactor::futex_wait_native() says
//              which one a reactor uses.
//
// Cancellation (the awaiting promise's stop token, with_timeout, a frame
// destroyed while waiting): io_uring: the record is detached under the
// reactor's lock and an IORING_OP_ASYNC_CANCEL is submitted at once, which
// removes the kernel's waiter before the call returns; a wake that the
// request consumed meanwhile is passed on (FUTEX_WAKE of one) so that no
// wake-one is lost (DESIGN rule 6). helper: the thread is told to stop, the
// word is woken (its other waiters see a spurious wake-up, which futex
// waiters must tolerate) and the thread is joined before the operation
// completes as stopped. Either way, no waiter is left on the word.
//
// A reactor destroyed while a wait is pending closes its ring: the kernel
// drops the waiter (no stale waiter on the word); the waiting coroutine is
// then never resumed and its frame may be destroyed later without touching
// the reactor.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <thread>

#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/io/reactor.hpp"

namespace rouse::io {

class wait_on_awaitable : detail::futex_wait_node {
 public:
  using rouse_affine = void;

  wait_on_awaitable(reactor& r, const std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept
      : reactor_(&r), word_(&word), expected_(expected) {
    complete = &complete_node;
  }
  wait_on_awaitable(const wait_on_awaitable&) = delete;
  wait_on_awaitable& operator=(const wait_on_awaitable&) = delete;
  ~wait_on_awaitable();

  bool await_ready() const noexcept {
    // Ordering: acquire: what the waker wrote before its store is seen.
    return word_->load(std::memory_order_acquire) != expected_;
  }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    target_ = async::resume_target(h);
    auto const token = async::get_stop_token(async::get_env(h.promise()));
    if (token.stop_requested()) return stopped_now(h);
    armed_ = true;
    start();  // the kernel's request, or the helper thread
    stop_.emplace(token, on_stop{this});
    // Ordering: acq_rel: pairs with complete_node().
    if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
    if (stopped_) return stopped_now(h);
    return h;
  }

  void await_resume() {
    stop_.reset();
    reap_helper();
    if (stopped_) throw async::operation_stopped();
  }

 private:
  struct on_stop {
    wait_on_awaitable* self;
    void operator()() noexcept { self->cancel(true); }
  };

  void start();
  void cancel(bool complete_stopped) noexcept;
  void helper_main() noexcept;
  // Joins the helper thread; detaches it when this runs on the helper
  // itself (a coroutine without an executor resumes on the waker's thread,
  // and the helper's last act was that resume).
  void reap_helper() noexcept;

  static void complete_node(futex_wait_node* n) noexcept {
    auto* const self = static_cast<wait_on_awaitable*>(n);
    if (self->gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    async::resume_target const t = self->target_;
    if (self->stopped_ && t.stops_in_place())
      t.resume_stopped();
    else
      t.resume();
  }

  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    stopped_ = true;
    if (target_.stops_in_place()) return target_.on_stopped(h.address());
    return h;
  }

  reactor* reactor_;
  const std::atomic<std::uint32_t>* word_;
  std::uint32_t expected_;
  bool armed_ = false;
  bool stopped_ = false;
  std::atomic<int> gate_{2};
  // helper thread: 0 waiting, 1 done (woken), 2 told to stop.
  std::atomic<int> helper_state_{0};
  std::atomic<bool> helper_done_{false};  // the helper will not wait again
  std::thread helper_;
  async::resume_target target_{};
  async::detail::stop_slot<on_stop> stop_;
};

// co_await wait_on(r, word, expected): see the top of this file.
inline wait_on_awaitable wait_on(reactor& r, const std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  return wait_on_awaitable(r, word, expected);
}

}  // namespace rouse::io
