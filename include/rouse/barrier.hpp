// rouse/barrier.hpp — a reusable thread barrier (drop-in for std::barrier).
//
//   rouse::barrier sync(threads, [&]() noexcept { swap_buffers(); });
//   // each thread, each step:
//   compute_step(); sync.arrive_and_wait();
//
// Purpose: threads meet once per phase; when the expected number of
// arrivals has happened, the completion function runs once, on the thread
// that arrived last, before any waiter of that phase is released; then the
// next phase begins with the same expected count (less the threads that left
// with arrive_and_drop()).
//
// Lifecycle and rules (std::barrier's): arrive(n) needs 0 < n <= the
// arrivals still expected in the current phase; a phase's arrivals must not
// start before the previous phase's completion has finished (a thread that
// waited, or that got its token from the previous phase and waited on it,
// is always in time). wait(token) takes the token of the current or the
// immediately preceding phase (tokens carry the phase modulo 1024; a token
// kept unwaited for 1024 phases is not supported). Destroy the barrier only
// when no thread is inside wait(). The constructor is constexpr (constinit
// barriers) when the completion function's move constructor is.
//
// Destruction (std::barrier only says its destructor must not race with
// the other calls): "inside wait()" includes arrive_and_wait(); a woken
// waiter re-reads the generation word. A thread inside arrive() or
// arrive_and_drop() does not count, not even the one whose arrival completes
// the phase: after the phase change that releases the waiters it only
// passes the word's address to the futex wake. So where the other threads
// leave with arrive_and_drop(), the one thread in arrive_and_wait() may
// destroy the barrier as soon as it returns.
//
// Misuse (diagnosed in debug builds, ROUSE_CHECK_USAGE): more arrivals in a
// phase than expected ("over-arrival"); arrive(n) with n <= 0; an expected
// count outside [0, max()] (a compile error in a constant initialisation);
// destroying the barrier while a thread sleeps in wait() (detected whenever
// a waiter has gone to sleep: its flag is only cleared by the phase change
// that releases it).
//
// Size: 8 bytes of state (two 32-bit words) plus the expected count, the
// pending drops and the completion function (16 bytes with the default
// empty completion). max() = 2^22 - 1. Fairness: n/a (a phase releases all
// its waiters together). Wake policy: one wake call per phase, by the
// completing thread, and only if some waiter went to sleep; none otherwise.
// Cost: each arrival is one RMW on the arrivals word; the completing thread
// adds one store and one RMW on the generation word. wait() spins before it
// sleeps (detail/spin.hpp, group_spin_until: briefly when the
// expected count exceeds the CPUs, up to ~4 wake-up costs when it fits), so
// short phases finish without a system call. Across processes: no.
//
// State words
//   arrivals_  phase tag << 22 | remaining
//              remaining (bits 0–21)  arrivals still expected this phase
//              tag (bits 22–31)       the phase number modulo 1024; read in
//                                     the same RMW as the arrival, so a token
//                                     always names the phase it counted in
//   gen_       generation << 1 | sleepers — the one word waiters sleep on
//              sleepers (bit 0)       a waiter is (or is about to be) asleep;
//                                     set by the waiter, cleared by the phase
//                                     change
//              generation (bits 1–31) completed phases; tag == generation % 1024
//
//   arrive(n):     remaining -= n; if it reached 0: run the completion,
//                  arrivals_ := (tag + 1, expected - drops),
//                  gen_ := (generation + 1, no sleepers); wake all if sleepers was set
//   wait(token):   return if tag(gen_) != token | set sleepers | sleep while gen_ unchanged
//
// Memory ordering: every arrival of a phase (and everything its thread did
// before arriving) happens-before the completion function of that phase,
// which happens-before the return of every wait() on that phase's tokens:
// arrivals are acq_rel RMWs on one word (one release sequence read by the
// last arrival's acquire), and the phase change is a release RMW on gen_
// that wait() reads with acquire.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse {

namespace detail {
struct empty_completion {
  void operator()() noexcept {}
};
}  // namespace detail

template <class CompletionFunction = detail::empty_completion>
class barrier {
  static_assert(std::is_nothrow_invocable_v<CompletionFunction&>,
                "the completion function must be invocable as an lvalue without throwing");

 public:
  class arrival_token {
   public:
    arrival_token(arrival_token&&) noexcept = default;
    arrival_token& operator=(arrival_token&&) noexcept = default;

   private:
    friend class barrier;
    explicit arrival_token(std::uint32_t tag) noexcept : tag_(tag) {}
    std::uint32_t tag_;
  };

  static constexpr std::ptrdiff_t max() noexcept { return remaining_mask; }

  ROUSE_CONSTEXPR explicit barrier(std::ptrdiff_t expected, CompletionFunction f = CompletionFunction()) noexcept(
      std::is_nothrow_move_constructible_v<CompletionFunction>)
      : arrivals_(static_cast<std::uint32_t>(expected) & remaining_mask),
        expected_(static_cast<std::uint32_t>(expected) & remaining_mask),
        completion_(std::move(f)) {
    ROUSE_CHECK_USAGE(expected >= 0 && expected <= max(), "rouse::barrier", "expected count outside [0, max()]");
  }
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;
#if ROUSE_DEBUG_CHECKS
  // constexpr, as a literal type's must be; the check runs outside constant
  // evaluation only.
  ROUSE_CONSTEXPR ~barrier() {
    ROUSE_CHECK_USAGE_AT_RUN_TIME((gen_.load(std::memory_order_relaxed) & sleepers) == 0, "rouse::barrier",
                                  "destroyed while a thread is waiting");
  }
#else
  ~barrier() = default;
#endif

  [[nodiscard]] arrival_token arrive(std::ptrdiff_t update = 1) noexcept {
    ROUSE_CHECK_USAGE(update > 0, "rouse::barrier", "arrive() with an update that is not positive");
    // Ordering: acq_rel. Release: this thread's writes reach the completing
    // thread (all arrivals are RMWs on this word, one release sequence).
    // Acquire: the completing thread sees every earlier arrival's writes.
    std::uint32_t const before = arrivals_.fetch_sub(static_cast<std::uint32_t>(update), std::memory_order_acq_rel);
    std::uint32_t const remaining = before & remaining_mask;
    std::uint32_t const tag = before >> tag_shift;
    ROUSE_CHECK_USAGE(static_cast<std::ptrdiff_t>(remaining) >= update, "rouse::barrier",
                      "more arrivals in a phase than expected (over-arrival)");
    if (static_cast<std::ptrdiff_t>(remaining) == update) complete_phase(tag);
    return arrival_token{tag};
  }

  void wait(arrival_token&& arrival) const noexcept {
    // Ordering: acquire; pairs with the release exchange in complete_phase().
    if (tag_of(gen_.load(std::memory_order_acquire)) != arrival.tag_) return;
    wait_slow(arrival.tag_);
  }

  void arrive_and_wait() noexcept { wait(arrive()); }

  void arrive_and_drop() noexcept {
    // Ordering: relaxed; read by the completing thread after its acquire
    // arrival, which this thread's release arrival (below) precedes.
    drops_.fetch_add(1, std::memory_order_relaxed);
    (void)arrive();
  }

 private:
  static constexpr std::uint32_t tag_shift = 22;
  static constexpr std::uint32_t remaining_mask = (1u << tag_shift) - 1;
  static constexpr std::uint32_t tag_mask = (1u << (32 - tag_shift)) - 1;
  static constexpr std::uint32_t sleepers = 1;

  static std::uint32_t tag_of(std::uint32_t gen_word) noexcept { return (gen_word >> 1) & tag_mask; }

  [[gnu::noinline]] void complete_phase(std::uint32_t tag) noexcept {
    completion_();
    // Ordering: relaxed; every drop of this phase precedes an arrival this
    // thread's acquire arrival synchronized with.
    std::uint32_t const drops = drops_.exchange(0, std::memory_order_relaxed);
    // Only completing threads write expected_, one per phase, ordered
    // through the arrivals word (see the store below); waiters only read it
    // as a spin heuristic (group_size()), hence the atomic_ref accesses.
    std::uint32_t const next_expected = load_expected() - drops;
    store_expected(next_expected);
    if (detail::model_fault_on(detail::model_fault::barrier_generation_before_arrivals)) {
      std::uint32_t const old_gen = gen_.load(std::memory_order_relaxed);
      std::uint32_t const before = gen_.exchange(((old_gen >> 1) + 1) << 1, std::memory_order_release);
      arrivals_.store((((tag + 1) & tag_mask) << tag_shift) | next_expected, std::memory_order_release);
      if ((before & sleepers) != 0) detail::wake_all(gen_);
      return;
    }
    // The next phase's count. Ordering: release, so that the completing
    // thread of the next phase (whose acquire arrival reads this store's
    // release sequence) sees expected_ as written here.
    arrivals_.store((((tag + 1) & tag_mask) << tag_shift) | next_expected, std::memory_order_release);
    // Only completing threads change the generation (one per phase, ordered
    // through the arrivals word), so a relaxed read of it is current;
    // waiters only add the sleepers bit.
    std::uint32_t const generation = gen_.load(std::memory_order_relaxed) >> 1;
    // (generation, sleepers?) -> (generation + 1, none).
    // Ordering: release; pairs with the acquire loads in wait(): the
    // completion and the next phase's count are visible to released waiters.
    std::uint32_t const before = gen_.exchange((generation + 1) << 1, std::memory_order_release);
    if ((before & sleepers) != 0) detail::wake_all(gen_);
  }

  // The expected count, for waiters (a hint: a completing thread may be
  // changing it after drops). Ordering: relaxed, through std::atomic_ref
  // (detail::unsync_hint), so that the read is not a data race with
  // store_expected(). Under a Relacy model it reads nothing: the spin
  // ignores the size, and the read would only add states.
  std::uint32_t group_size() const noexcept { return detail::unsync_hint(expected_); }
  // The completing thread's own accesses. Outside the model they go through
  // std::atomic_ref too (relaxed: their order comes from the arrivals
  // word; group_size() needs no more than a whole value), since an object
  // that atomic_refs may be reading at the same time must only be accessed
  // through atomic_refs; under the model they are the checked plain
  // accesses of the protocol.
  std::uint32_t load_expected() noexcept { return detail::unsync_load(expected_); }
  void store_expected(std::uint32_t v) noexcept { detail::unsync_store(expected_, v); }

  [[gnu::noinline]] void wait_slow(std::uint32_t tag) const noexcept {
    // How long to spin depends on the group's size.
    if (detail::group_spin_until([&] { return tag_of(gen_.load(std::memory_order_relaxed)) != tag; }, group_size())) {
      // Ordering: acquire; pairs with the release exchange in complete_phase().
      (void)gen_.load(std::memory_order_acquire);
      return;
    }
    // Ordering: acquire; pairs with the release exchange in complete_phase().
    std::uint32_t v = gen_.load(std::memory_order_acquire);
    for (;;) {
      if (tag_of(v) != tag) return;
      if ((v & sleepers) == 0) {
        // same generation, no sleepers -> sleepers. The flag shares gen_
        // with the generation, so the phase change's exchange reads it if
        // this CAS came first (no store->load race). Acquire on failure:
        // the failure may be the phase change itself.
        if (!gen_.compare_exchange_weak(v, v | sleepers, std::memory_order_acquire, std::memory_order_acquire))
          continue;
        v |= sleepers;
      }
      detail::wait(gen_, v);
      // Ordering: acquire; pairs with the release exchange in complete_phase().
      v = gen_.load(std::memory_order_acquire);
    }
  }

  detail::atomic<std::uint32_t> arrivals_;
  mutable detail::atomic<std::uint32_t> gen_{0};
  detail::atomic<std::uint32_t> drops_{0};
  // A protocol variable of the completing threads (an unsync, so that a
  // model checks that claim), read racily by waiters for its size only.
  detail::unsync<std::uint32_t> expected_;
  [[no_unique_address]] CompletionFunction completion_;
};

static_assert(detail::in_model || sizeof(barrier<>) == 16);

}  // namespace rouse
