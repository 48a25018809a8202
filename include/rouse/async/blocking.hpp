// rouse/async/blocking.hpp — coroutines await rouse's *blocking* primitives.
//
//   rouse::mutex m;                          // shared with plain threads
//   co_await rouse::async::lock(m);          // the coroutine holds m
//   ++shared_counter;
//   m.unlock();                              // as a thread would
//
//   co_await rouse::async::wait(done);       // a rouse::latch: returns at zero
//   co_await rouse::async::acquire(slots);   // a rouse::counting_semaphore<N>
//
// Purpose: one rouse::mutex, rouse::latch or rouse::counting_semaphore (and
// binary_semaphore) used by threads and coroutines together, where the
// primitive is a thread's (the async primitives of rouse/async/ are the
// other way round: a coroutine's, that threads may also wait on). The
// coroutine follows the primitive's word protocol exactly as a sleeping
// thread does (the primitive's detail::*_access), waiting on the word with
// rouse::async::wait_on (rouse/async/wait_on.hpp), so that the threads'
// ordinary futex wakes (unlock, release, count_down) wake it:
//   lock(m)       marks the word contended before each wait, so the holder's
//                 unlock() wakes; a coroutine that waited counts as a thread
//                 that slept: it may take a HANDOFF (leaving the word
//                 contended), and after fairness_threshold of waiting it
//                 asks for one (STARVING), as a thread does. A coroutine
//                 that finds a HANDOFF before it ever waited waits for a
//                 wake (a thread would wait at most fairness_threshold and
//                 then take it). Returns when the coroutine holds m.
//   wait(l)       sets the latch's sleepers flag before each wait, so the
//                 count_down that reaches zero wakes. Returns at zero.
//   acquire(s)    sets the semaphore's sleepers flag before each wait, and
//                 after a wait takes over the wake bookkeeping of the
//                 release that woke it (puts the flag back, or passes the
//                 wake on), as a woken thread does. Returns with a permit.
//                 Both layouts; on the wide one (LeastMaxValue > 2^31 - 1)
//                 the coroutine waits on the sequence word, and while a
//                 release is between its claim and its permits (where a
//                 thread polls) each wait returns at once and it steps
//                 again: a few such rounds, for as long as that release
//                 takes.
// The primitives' behaviour and fast paths are unchanged: a coroutine is one
// more waiter of the word.
//
// Fast path: await_ready makes the primitive's own fast step (m: 0 -> 1;
// l: one load; s: take a permit): no allocation, no system call, no
// suspension. Coroutines do not spin.
//
// Which path waits, and what it costs (rouse/async/wait_on.hpp):
//   native   the awaiting coroutine's executor is an io::event_loop on the
//            io_uring backend where the kernel has IORING_OP_FUTEX_WAIT
//            (Linux >= 6.7; reactor::futex_wait_native()): no thread; one
//            ring request (and one small allocation, the reactor's record)
//            per wait.
//   helper   anywhere else (a plain run_loop, thread_pool, no executor, the
//            epoll backend, an older kernel, the generic wait backend): a
//            helper thread per waiting coroutine, created when it first
//            waits and joined when it is done; between wakes it runs the
//            protocol itself (the coroutine is resumed once, at the end).
// Where the coroutine resumes: on its executor (scheduled: never inside the
// thread's unlock / release / count_down, which only makes its futex wake);
// without an executor, on the thread that saw the wait end (the helper
// thread), as the rest of rouse::async documents.
//
// Cancellation: the awaiting promise's stop token, with_timeout (for these
// non-movable awaitables: write it in the co_await's own expression), or a
// frame destroyed while waiting. The waiter leaves as a thread whose timed
// wait ran out leaves: no waiter is left on the word, no wake-one is lost,
// nothing is taken twice:
//   lock      rouse::mutex's give-up rule: if the mutex is free to the
//             waiter it takes it (the co_await then returns holding it: the
//             stop lost the race), else leaves the word contended if it had
//             waited, and withdraws its STARVING bit.
//   acquire   takes a permit if one is there (then returns with it), else
//             puts the sleepers flag back.
//   wait      nothing to undo; the latch's sleepers flag stays set (it is
//             never cleared): a latch whose waiting coroutine was stopped
//             must reach zero before it is destroyed, or debug builds report
//             it as destroyed while waited for.
// A destroyed frame gives back what its give-up took (unlock / release).
// A stopped co_await completes as stopped: a rouse task completes as
// stopped; a foreign coroutine without unhandled_stopped() gets
// operation_stopped. with_timeout yields false on a timeout.
//
// Ownership of a rouse::mutex (debug builds track it per thread): the lock
// is noted on the thread where the co_await resumes, so the coroutine must
// call m.unlock() on that thread (on a run_loop: always); a coroutine that
// may move to another thread in between (a thread_pool task that awaits)
// trips the debug check "unlock() by a thread that does not hold the lock".
// No self-deadlock check is made (two coroutines on one loop thread may
// contend for m legitimately); a coroutine that awaits a mutex it holds
// waits forever, as a thread would.
//
// sizeof on x86-64: lock 232 bytes, wait 216, acquire 224 (wait_on's
// awaitable with the primitive's protocol state), in the awaiting frame.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rouse/async/wait_on.hpp"
#include "rouse/detail/held_locks.hpp"
#include "rouse/latch.hpp"
#include "rouse/mutex.hpp"
#include "rouse/semaphore.hpp"

namespace rouse::async {

namespace detail {

// lock(m): rouse::mutex's lock_slow(), stepwise.
class mutex_lock_protocol : public wait_protocol {
 public:
  explicit mutex_lock_protocol(::rouse::mutex& m) noexcept : m_(&m) {
    word = &::rouse::detail::mutex_access::word(m);
  }
  bool ready() noexcept { return ::rouse::detail::mutex_access::try_lock_stepwise(*m_); }
  bool step(std::uint32_t& value) noexcept override {
    if (::rouse::detail::mutex_access::lock_step(*m_, state_)) return true;
    value = state_.seen;
    return false;
  }
  void woke() noexcept override { ::rouse::detail::mutex_access::lock_woke(state_); }
  bool leave() noexcept override { return ::rouse::detail::mutex_access::lock_leave(*m_, state_); }
  bool give_back() noexcept override {
    ::rouse::detail::note_acquired(m_);  // unlock() checks this thread holds it
    m_->unlock();
    return false;
  }
  // The coroutine holds m from here, on this thread (debug builds' record).
  void result() noexcept { ::rouse::detail::note_acquired(m_); }

 private:
  ::rouse::mutex* m_;
  ::rouse::detail::mutex_access::stepwise_lock state_{};
};

// wait(l): rouse::latch's wait_slow(), stepwise.
class latch_wait_protocol : public wait_protocol {
 public:
  explicit latch_wait_protocol(const ::rouse::latch& l) noexcept : l_(&l) {
    word = &::rouse::detail::latch_access::word(l);
  }
  bool ready() const noexcept { return l_->try_wait(); }
  bool step(std::uint32_t& value) noexcept override { return ::rouse::detail::latch_access::wait_step(*l_, value); }
  void result() const noexcept {}

 private:
  const ::rouse::latch* l_;
};

// acquire(s): rouse::counting_semaphore's acquire_slow(), stepwise.
template <std::ptrdiff_t N>
class semaphore_acquire_protocol : public wait_protocol {
  using access = ::rouse::detail::semaphore_access;

 public:
  explicit semaphore_acquire_protocol(::rouse::counting_semaphore<N>& s) noexcept : s_(&s) {
    word = &access::word(access::impl(s));
  }
  bool ready() noexcept { return s_->try_acquire(); }
  bool step(std::uint32_t& value) noexcept override { return access::acquire_step(access::impl(*s_), value, slept_); }
  void woke() noexcept override { slept_ = true; }
  bool leave() noexcept override { return access::acquire_leave(access::impl(*s_)); }
  bool give_back() noexcept override {
    s_->release();
    return false;
  }
  void result() const noexcept {}

 private:
  ::rouse::counting_semaphore<N>* s_;
  bool slept_ = false;
};

}  // namespace detail

using lock_awaitable = detail::word_awaitable<detail::mutex_lock_protocol>;
using latch_wait_awaitable = detail::word_awaitable<detail::latch_wait_protocol>;
template <std::ptrdiff_t N>
using acquire_awaitable = detail::word_awaitable<detail::semaphore_acquire_protocol<N>>;

// co_await lock(m): returns when the coroutine holds m (see the top of this file).
inline lock_awaitable lock(::rouse::mutex& m) noexcept { return lock_awaitable(detail::wait_route{}, m); }

// co_await wait(l): returns once the latch's count is zero.
inline latch_wait_awaitable wait(const ::rouse::latch& l) noexcept {
  return latch_wait_awaitable(detail::wait_route{}, l);
}

// co_await acquire(s): returns with one of s's permits.
template <std::ptrdiff_t N>
acquire_awaitable<N> acquire(::rouse::counting_semaphore<N>& s) noexcept {
  return acquire_awaitable<N>(detail::wait_route{}, s);
}

}  // namespace rouse::async
