// rouse/platform/wait.hpp — wait on a 32-bit word, wake its waiters.
//
// This is the only layer of rouse that talks to the operating system. Every
// blocking primitive in rouse is a small state word plus these calls.
//
//   wait(word, expected)            sleep while `word == expected`
//   wait_until(word, expected, t)   ... until a deadline (steady or system clock)
//   wait_for(word, expected, d)     ... for a duration (a steady deadline)
//   wake_one / wake / wake_all      wake 1 / n / every thread asleep on `word`
//   requeue / cmp_requeue           wake some, move the rest onto another word
//   wait_any(entries, ...)          sleep on several words, return which changed
//
// Contract
// - A wait returns when it was woken, when `word` did not hold `expected` at
//   the moment the thread would have gone to sleep, or spuriously (signals,
//   requeue races). The state word is the truth: callers always re-check.
// - A wake is exact: it wakes only threads waiting on that address, never a
//   neighbour that happens to share a hash slot (both backends).
// - A timed wait never returns `timed_out` before its deadline has passed on
//   the deadline's own clock. Steady deadlines go to the kernel as absolute
//   CLOCK_MONOTONIC times, system_clock deadlines as absolute CLOCK_REALTIME
//   times, so retries after EINTR do not stretch the timeout. A deadline
//   that has passed returns `timed_out` without a system call (one clock
//   read).
// - No wake-up is lost between the caller's check of the word and its sleep:
//   the value comparison and the enqueue are atomic with respect to wakes on
//   the same word (the kernel's futex hash-bucket lock, or the generic
//   backend's bucket mutex).
//
// Scope: `scope::process_private` (the default) is for words in ordinary
// memory. `scope::process_shared` is for words in memory shared between
// processes (mmap MAP_SHARED); it is slower and only supported by the futex
// backend — the generic backend treats it as private.
//
// Backends (chosen at build time, see docs/wait.md)
//   futex    Linux futex(2) and futex_waitv(2). First class.
//   generic  an address-keyed table of parked threads over std::mutex and
//            std::condition_variable (-DROUSE_WAIT_BACKEND=generic). Same
//            semantics; used for ports and tested on Linux.
//
// Costs (futex backend): each call is exactly one system call, retried only on
// EINTR. Nothing here checks whether anybody waits: avoiding a useless wake is
// the job of the primitive's state word (docs/design.md, rule 2).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "rouse/config.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::platform {

using word = std::atomic<std::uint32_t>;
static_assert(sizeof(word) == 4 && word::is_always_lock_free);

// 32 bits wide: it is an argument of the out-of-line calls below, where
// compilers disagree on who widens a narrower one (tests/abi/).
enum class scope : std::uint32_t { process_private, process_shared };

// What a wait returned for. `woken` also covers "the word had changed" and
// spurious returns: it only means "not timed out, re-check the state".
enum class wait_result : std::uint8_t { woken, timed_out };

using steady_deadline = std::chrono::steady_clock::time_point;
using system_deadline = std::chrono::system_clock::time_point;

void wait(const word& w, std::uint32_t expected, scope s = scope::process_private) noexcept;
wait_result wait_until(const word& w, std::uint32_t expected, steady_deadline deadline,
                       scope s = scope::process_private) noexcept;
wait_result wait_until(const word& w, std::uint32_t expected, system_deadline deadline,
                       scope s = scope::process_private) noexcept;

// Any deadline: a steady or system deadline in another duration is
// converted with deadline_cast() (saturating: one too late to hold in
// nanoseconds waits without a deadline, one too early times out at once).
// Any other clock waits in steady-clock slices and re-reads Clock::now(), so
// the result is never early on the caller's clock.
template <class Clock, class Duration>
wait_result wait_until(const word& w, std::uint32_t expected, std::chrono::time_point<Clock, Duration> deadline,
                       scope s = scope::process_private) noexcept {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock> || std::is_same_v<Clock, std::chrono::system_clock>) {
    auto const at = clock_deadline(deadline);  // steady_deadline / system_deadline
    if (is_unbounded(at)) {
      wait(w, expected, s);
      return wait_result::woken;
    }
    return wait_until(w, expected, at, s);
  } else {
    auto const at = clock_deadline(deadline);
    if (Clock::now() >= at) return wait_result::timed_out;
    auto const slice = steady_slice(at);
    if (is_unbounded(slice)) {
      wait(w, expected, s);
      return wait_result::woken;
    }
    if (wait_until(w, expected, slice, s) == wait_result::woken) return wait_result::woken;
    return Clock::now() >= at ? wait_result::timed_out : wait_result::woken;
  }
}

template <class Rep, class Period>
wait_result wait_for(const word& w, std::uint32_t expected, std::chrono::duration<Rep, Period> timeout,
                     scope s = scope::process_private) noexcept {
  if (timeout <= timeout.zero()) return wait_result::timed_out;
  auto const deadline = deadline_after(timeout);
  if (is_unbounded(deadline)) {
    wait(w, expected, s);
    return wait_result::woken;
  }
  return wait_until(w, expected, deadline, s);
}

// Wakes at most `count` threads waiting on `w` (count <= 0 wakes none).
// Returns how many were woken.
int wake(const word& w, int count, scope s = scope::process_private) noexcept;
inline int wake_one(const word& w, scope s = scope::process_private) noexcept { return wake(w, 1, s); }
int wake_all(const word& w, scope s = scope::process_private) noexcept;

// Wakes up to `wake_count` waiters of `from` and moves up to `requeue_count`
// of the others to wait on `to` (they are then woken by wakes on `to`).
// Returns the number woken plus the number moved.
int requeue(const word& from, const word& to, int wake_count, int requeue_count,
            scope s = scope::process_private) noexcept;

// As requeue(), but only if `from` still holds `expected` (FUTEX_CMP_REQUEUE):
// returns -1 and does nothing when it does not, so the caller can re-check.
int cmp_requeue(const word& from, std::uint32_t expected, const word& to, int wake_count, int requeue_count,
                scope s = scope::process_private) noexcept;

// Waiting on several words at once.
struct wait_entry {
  const word* address;
  std::uint32_t expected;
};
inline constexpr std::size_t max_wait_entries = 128;  // futex_waitv's limit

// Sleeps until one of the words is woken (or no longer holds its expected
// value), or the deadline passes. Returns the index of an entry that was
// woken or found changed (spurious returns report some index too; re-check),
// or -1 on timeout. Wakes of two entries that reach the sleeper at the same
// moment are both taken and one index is reported (futex_waitv: the last):
// a caller that passes a taken wake on must treat the others as possibly
// taken too, or put last the word whose wakes it must not drop. entries.size()
// must be 1..max_wait_entries.
// futex backend: futex_waitv(2) where the kernel has it (5.16+); on older
// kernels, a polling fallback that checks every word and sleeps on the last
// with exponentially growing timeouts (capped at 1 ms; a wake of the last
// word is reported at once): correct, not cheap.
int wait_any(std::span<const wait_entry> entries, scope s = scope::process_private) noexcept;
int wait_any_until(std::span<const wait_entry> entries, steady_deadline deadline,
                   scope s = scope::process_private) noexcept;
// A steady deadline in another duration: converted with deadline_cast(), as
// wait_until() does.
template <class Duration>
int wait_any_until(std::span<const wait_entry> entries,
                   std::chrono::time_point<std::chrono::steady_clock, Duration> deadline,
                   scope s = scope::process_private) noexcept {
  auto const at = deadline_cast<steady_deadline::duration>(deadline);
  if (is_unbounded(at)) return wait_any(entries, s);
  return wait_any_until(entries, at, s);
}

// Which backend this build of rouse uses: "futex" or "generic".
const char* backend_name() noexcept;

// What waking a sleeping thread costs the thread that wakes it, as this
// process has measured it: a running average (weight 1/8) of the duration
// of the wake, requeue and cmp_requeue calls that woke (or, for the requeue
// calls, moved) at least one thread, timed around the call (two clock reads, only on the path that makes the
// system call). Starts at `initial_wake_cost`, before any such call.
//
// Why: a waiter should spin for about as long as sleeping would cost, and
// that cost is not a constant: it differs by 10x between a machine whose
// CPUs run and a VM whose sleeping vCPU the hypervisor halts (figures:
// docs/wait.md, "What a wake costs"). The spinning phases of rouse's
// primitives size themselves from this figure.
//
// A hint: read with a relaxed load, updated without a lock (concurrent
// updates may drop a sample); samples above 1 ms (a preempted waker) are
// ignored.
inline constexpr std::chrono::nanoseconds initial_wake_cost{2000};
std::chrono::nanoseconds wake_cost() noexcept;

}  // namespace rouse::platform
