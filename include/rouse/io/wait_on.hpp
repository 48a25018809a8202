// rouse/io/wait_on.hpp — co_await a futex word on a named reactor.
//
//   std::atomic<std::uint32_t> word{0};
//   while (word.load() == 0)
//     co_await rouse::io::wait_on(loop, word, 0);   // a futex wake of &word resumes it
//
// The reactor-named form of rouse::async::wait_on (rouse/async/wait_on.hpp:
// the contract, cancellation, where the coroutine resumes): any private
// FUTEX_WAKE of the word resumes it. Like a futex wait it may return
// spuriously, and returns at once when the word no longer holds `expected`:
// callers re-check the word (docs/design.md, rule 1).
//
// Two ways, chosen at run time (reactor::futex_wait_native() says which):
//   io_uring   an IORING_OP_FUTEX_WAIT request (Linux >= 6.7) on this
//              reactor's ring, whatever the coroutine's executor, with
//              FUTEX2_SIZE_U32 | FUTEX2_PRIVATE: the kernel queues the
//              waiter, the ring reports the wake (on the loop's thread),
//              the coroutine is scheduled on its executor (without one it
//              resumes there, on the loop's thread). One allocation per
//              wait: a reactor-owned record, so that a frame destroyed
//              while waiting leaves nothing the kernel can still name.
//   helper     anywhere else (the epoll backend, a kernel before 6.7): a
//              helper thread per wait sleeps in the kernel's futex wait (on
//              the word and on a stop word of its own at once) and completes
//              the coroutine. Costly (a thread per waiting coroutine); there
//              for correctness, not speed. It waits on the kernel futex even
//              where rouse's wait layer is the generic backend.
//
// Cancellation (the awaiting promise's stop token, with_timeout, a frame
// destroyed while waiting): io_uring: the request is withdrawn and an
// IORING_OP_ASYNC_CANCEL submitted at once, which removes the kernel's
// waiter before the call returns; the canceller then wakes one waiter of
// the word (FUTEX_WAKE of one), so that a wake the request consumed
// meanwhile is not lost (docs/design.md, rule 6) nor held back until the loop reaps
// the request's completion (at worst a spurious wake of another waiter);
// a completion that won the race stands. helper: its
// stop word wakes the helper alone (the word's other waiters see nothing);
// a wake of the word it took first stands. Either way, no waiter is left on
// the word.
//
// A reactor destroyed while a wait is pending withdraws the kernel's waiter
// and closes its ring (no stale waiter on the word); the waiting coroutine
// is then never resumed and its frame may be destroyed later without
// touching the reactor.
#pragma once

#include <atomic>
#include <cstdint>

#include "rouse/async/wait_on.hpp"
#include "rouse/io/reactor.hpp"

namespace rouse::io {

namespace detail {
// The helper thread's kernel futex wait (src/io/wait_on.cpp).
const async::detail::word_wait::fallback_ops& kernel_futex_fallback() noexcept;
}  // namespace detail

using wait_on_awaitable = async::wait_on_awaitable;

// co_await wait_on(r, word, expected): see the top of this file.
inline wait_on_awaitable wait_on(reactor& r, const std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  async::detail::wait_route const route{true, r.futex_wait_native() ? &r : nullptr, &detail::kernel_futex_fallback()};
  return wait_on_awaitable(route, word, expected);
}

}  // namespace rouse::io
