// rouse/async/barrier.hpp — a reusable phase barrier that tasks and threads arrive at.
//
//   rouse::async::barrier sync(64, [&]() noexcept { ++phases; });
//   for (;;) { step(); co_await sync.arrive_and_wait(); }    // a task
//   for (;;) { step(); sync.arrive_and_wait_blocking(); }    // a thread
//
// Purpose: std::barrier<CompletionFunction> for coroutines, with the
// blocking forms on the same object. Each phase expects a number of
// arrivals; the last arrival runs the completion function once, on the
// arriving task's or thread's stack, before anyone of that phase goes on;
// then the phase ends, every waiter of it is released, and the next phase
// expects the same number, less those who left with arrive_and_drop().
//
// Members (std::barrier's): arrive(n = 1) -> arrival_token,
// `co_await b.wait(std::move(token))`, `co_await b.arrive_and_wait()`,
// arrive_and_drop(), max(); for threads wait_blocking(token),
// arrive_and_wait_blocking(); timed awaits wait_for(token, d) /
// wait_until(token, t) (with_timeout, rouse/async/timeout.hpp: false when
// the time passed first; the token stays valid for another wait).
//
// Cancellation (std and tokio's Barrier have no answer; rouse's is the safe
// one): a stopped or timed-out wait gives up *waiting*, never its
// *arrival*. An arrival cannot be taken back: the phase may already have
// completed on it, and the others may already run on in the next phase. So
// the phase completes as if the stopped party were still waiting (its
// completion function runs, the others are released), and the stopped party
// remains a participant of the next phases: it must arrive again, or leave
// for good with arrive_and_drop() (for instance from its cleanup), or the
// next phase never completes. arrive_and_wait() arrives when called, before
// the co_await, so a stop cannot come between the two.
//
// Lifecycle and rules: a task resumes on the executor of its promise's
// environment, never inside arrive() (without an executor in its environment,
// on the last arriver's thread, inside its arrive(): coroutine_waker's
// fallback). The completion function must not throw (std's rule) and must
// not arrive at this barrier. The barrier may be destroyed by a party the
// last phase let through as soon as it is released, while the last arriver
// is still returning (docs/design.md, rule 7; see "Phase hand-over") — from arrive(),
// not from arrive_and_wait(): its arrival and its co_await are one
// operation, and its await reads the barrier (a waiter without an executor,
// released inside that arrival, runs before the await).
//
// Misuse (debug builds: a message naming rouse::async::barrier and the
// rule, then abort): more arrivals in a phase than it expects (an arrive
// when the phase's count is already zero, or n above it), an expected count
// out of range, destroying the barrier while a task waits on it.
//
// sizeof: 48 bytes plus the completion function (static_asserted for the
// default); a wait() awaitable 200 bytes in the awaiting frame; no
// allocation per wait. Fairness: n/a (a phase releases all its waiters).
// Cost with nobody waiting: arrive() is one RMW; the last arrival one more
// store, one load and a store, plus the completion function; a wait on a
// finished phase one load. No system call. Across processes: no.
//
// State word (64 bits)
//   bits 0..30   C: arrivals the current phase still expects
//   bit 31       R: the phase's release is under way (claim in progress)
//   bits 32..63  P: the phase number (mod 2^32); a token holds its phase
//   C > 0              arriving: waits of phase P queue
//   C = 0, R = 0       completing: the last arriver runs the completion
//                      function; waits of phase P still queue
//   C = 0, R = 1       releasing: the last arriver claims the queued waiters
//                      of phase P; a wait that sees it waits for P to move (a
//                      short spin, never during the completion function)
//   P' = P + 1, C = next expected, R = 0: the next phase; phase P's waits are
//                      ready
//
// Phase hand-over (the model in tests/model/async_barrier_model.cpp):
//   last arriver:  C: 1 -> 0 (RMW) | completion() | R := 1 (A1) | waiters?
//                  (A2) | claim phase P's waiters under the list's lock |
//                  unlock | wait until every waiter whose own stop or
//                  timeout claimed it first has unlinked itself |
//                  word := (P + 1, next expected) — its last touch
//                  of the barrier | wake the claimed waiters (their nodes,
//                  from a chain it holds)
//   a wait:        push (B1) | re-check (B2): P moved: withdraw | R: spin
//                  until P moves, withdraw | else suspend
// Either the claim finds the node (pushed before the lock) or the re-check
// sees R or the new phase; a waiter that sees the new phase may destroy the
// barrier, and nobody touches it after that store.
//
// Memory ordering: everything before each arrival of a phase happens-before
// the completion function, and the completion function happens-before the
// return of every wait of that phase: arrivals are seq_cst RMWs (the last
// one reads from the release sequence of all of them), the next phase is
// stored seq_cst (release) and the waits load it seq_cst (acquire); a
// claimed waiter is ordered by the claim and its waker. (A)/(B) is the
// Dekker pairing of rouse/async/waiter_list.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "rouse/async/waiter_list.hpp"
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
#include "rouse/async/timeout.hpp"
#endif
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

namespace detail {
// std::barrier's default completion: nothing.
struct barrier_no_completion {
  void operator()() const noexcept {}
};
}  // namespace detail

template <class CompletionFunction = detail::barrier_no_completion>
class barrier {
  static_assert(std::is_nothrow_invocable_v<CompletionFunction&>,
                "rouse::async::barrier: the completion function must be invocable without arguments and noexcept");

 public:
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  using awaitable = list_awaitable<barrier>;
#endif

  // The phase an arrival belongs to; wait() on it completes when that phase
  // has ended. Copyable (a phase number): a timed-out wait may be retried.
  class arrival_token {
   public:
    arrival_token() noexcept = default;

   private:
    friend class barrier;
    explicit arrival_token(std::uint32_t phase) noexcept : phase_(phase) {}
    std::uint32_t phase_ = 0;
  };

  [[nodiscard]] static constexpr std::ptrdiff_t max() noexcept { return count_mask; }

  explicit barrier(std::ptrdiff_t expected, CompletionFunction f = CompletionFunction()) noexcept(
      std::is_nothrow_move_constructible_v<CompletionFunction>)
      : state_(static_cast<std::uint64_t>(expected)), expected_(expected), completion_(std::move(f)) {
    ROUSE_CHECK_USAGE(expected >= 0 && expected <= max(), "rouse::async::barrier", "expected count out of range");
  }
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;
  ~barrier() { waiters_.check_unused_by("rouse::async::barrier"); }

  // Arrives n times in the current phase; the last arrival of the phase runs
  // the completion function and releases the phase's waiters, here.
  [[nodiscard]] arrival_token arrive(std::ptrdiff_t n = 1) noexcept {
    ROUSE_CHECK_USAGE(n > 0, "rouse::async::barrier", "arrive with a count below one");
    std::uint64_t const units = static_cast<std::uint64_t>(n);
    // (A0) seq_cst: the arrival; publishes what came before it to the last arriver.
    std::uint64_t const before = state_.fetch_sub(units, std::memory_order_seq_cst);
    ROUSE_CHECK_USAGE((before & releasing_bit) == 0 && (before & count_mask) >= units, "rouse::async::barrier",
                      "more arrivals in a phase than it expects");
    std::uint32_t const phase = static_cast<std::uint32_t>(before >> phase_shift);
    if ((before & count_mask) == units) [[unlikely]]
      complete_phase(phase);
    return arrival_token(phase);
  }

  // Arrives once and leaves: the next phases expect one arrival fewer.
  void arrive_and_drop() noexcept {
    // Ordering: relaxed: the arrival's seq_cst RMW (sequenced after) carries
    // it to the last arriver of the phase, which reads drops_.
    drops_.fetch_add(1, std::memory_order_relaxed);
    (void)arrive(1);
  }

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await b.wait(std::move(token))`: completes once token's phase ended.
  [[nodiscard]] awaitable wait(arrival_token&& token) noexcept { return awaitable(*this, token.phase_); }
  // `co_await b.arrive_and_wait()`: arrives now (when called), then waits
  // for the phase to end. A stopped wait does not undo the arrival.
  [[nodiscard]] awaitable arrive_and_wait() noexcept { return wait(arrive(1)); }
  // `co_await b.wait_for(token, d)`: true once token's phase ended, false
  // when d passed first (the arrival stands; wait again or drop).
  template <class Rep, class Period>
  [[nodiscard]] auto wait_for(const arrival_token& token, const std::chrono::duration<Rep, Period>& d) noexcept {
    return with_timeout(awaitable(*this, token.phase_), d);
  }
  template <class Clock, class Duration>
  [[nodiscard]] auto wait_until(const arrival_token& token,
                                const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return with_deadline(awaitable(*this, token.phase_), t);
  }
#endif

  // A thread's wait for token's phase to end.
  void wait_blocking(arrival_token&& token) noexcept {
    (void)async::wait_blocking(*this, token.phase_, ::rouse::detail::no_deadline{});
  }
  void arrive_and_wait_blocking() noexcept { wait_blocking(arrive(1)); }
  // False when `d` / `t` passed first (the arrival stands).
  template <class Rep, class Period>
  [[nodiscard]] bool wait_blocking_for(const arrival_token& token,
                                       const std::chrono::duration<Rep, Period>& d) noexcept {
    return wait_blocking_until(token, ::rouse::platform::deadline_after(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool wait_blocking_until(const arrival_token& token,
                                         const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return async::wait_blocking(*this, token.phase_, ::rouse::detail::deadline_at(t));
  }

 private:
  friend class list_wait<barrier>;
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  friend class list_awaitable<barrier>;
#endif
  template <class P, class Deadline>
  friend bool wait_blocking(P&, std::uintptr_t, const Deadline&) noexcept;

  static constexpr std::uint64_t count_mask = (std::uint64_t{1} << 31) - 1;  // C
  static constexpr std::uint64_t releasing_bit = std::uint64_t{1} << 31;    // R
  static constexpr int phase_shift = 32;                                    // P

  static std::uint32_t phase_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s >> phase_shift); }

  // The check (await_ready) and the re-check (B2): ready once the phase moved.
  check_result try_acquire(std::uintptr_t tag) noexcept {
    std::uint32_t const mine = static_cast<std::uint32_t>(tag);
    // (B2) seq_cst: pairs with (A1) in complete_phase().
    std::uint64_t const s = state_.load(std::memory_order_seq_cst);
    if (phase_of(s) != mine) return check_result::ready;
    if ((s & releasing_bit) == 0) return check_result::not_ready;
    wait_out_release(mine);
    return check_result::ready;
  }
  // The last arriver is between its claim and the next phase: wait for it.
  [[gnu::cold, gnu::noinline]] void wait_out_release(std::uint32_t mine) noexcept {
    ::rouse::detail::spinner spin(::rouse::detail::shared_mutex_hand_over);  // pauses, then yields: never sleeps
    // Ordering: seq_cst, as (B2).
    while (phase_of(state_.load(std::memory_order_seq_cst)) == mine) spin.next();
  }
  // A phase releases by broadcast: nothing is handed over to pass on.
  void pass_on() noexcept {}
  waiter_list& waiters() noexcept { return waiters_; }

  [[gnu::noinline]] void complete_phase(std::uint32_t phase) noexcept {
    completion_();
    // Ordering: relaxed: see arrive_and_drop().
    expected_ -= drops_.exchange(0, std::memory_order_relaxed);
    std::uint64_t const next = (static_cast<std::uint64_t>(phase + 1) << phase_shift) |
                               static_cast<std::uint64_t>(expected_);
    auto const publish = [this, next]() noexcept {
      // The next phase: phase `phase`'s waits are ready. The last touch.
      // Ordering: seq_cst (release): pairs with the waits' loads.
      state_.store(next, std::memory_order_seq_cst);
    };
    auto const of_phase = [phase](detail::waiter_node& n) {
      return static_cast<std::uint32_t>(list_wait<barrier>::tag_of(n)) == phase;
    };
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_barrier_releases_before_claim)) {
      // BROKEN on purpose (model tests only): publishes, then claims.
      publish();
      waiters_.notify_all(of_phase);
      return;
    }
    // (A1) seq_cst: pairs with (B2) in try_acquire(). C = 0 -> C = 0, R = 1.
    state_.store((static_cast<std::uint64_t>(phase) << phase_shift) | releasing_bit, std::memory_order_seq_cst);
    waiters_.notify_all_releasing(of_phase, publish);  // (A2) inside
  }

  ::rouse::detail::atomic<std::uint64_t> state_;
  ::rouse::detail::atomic<std::uint32_t> drops_{0};
  std::ptrdiff_t expected_;  // written by the last arriver of each phase only
  waiter_list waiters_;
  [[no_unique_address]] CompletionFunction completion_;
};

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(barrier<>) == 48);
static_assert(sizeof(list_awaitable<barrier<>>) == 200);
#endif

}  // namespace rouse::async
