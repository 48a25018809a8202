// rouse/detail/backoff_spin.hpp — a waiter's spin before it sleeps: polls
// spaced exponentially, for a time sized from what a wake-up costs here.
//
//   detail::backoff_spin spin(detail::mutex_spin_policy);
//   while (!ready(word.load(relaxed))) {
//     if (!spin.next()) { sleep on the word; break; }  // budget spent
//   }
//
// Budget: `multiple` x platform::wake_cost() (the measured cost of waking a
// sleeper, to its waker), clamped to [min, max] — the 2-competitive rule:
// spin about as long as the sleep it may save would cost, never more. On
// machines where a wake costs 2-5 µs that is a few µs per unit of
// `multiple` (Rust's std and parking_lot spin about 100 pauses, a few µs);
// on the 2-vCPU VM of docs/benchmarks.md, where it costs 10-30 µs, tens.
//
// Spacing: first_gap pauses before the first poll, doubling up to max_gap
// pauses between polls. A poll that reads a line the lock holder keeps
// writing takes that line away from it (each such read costs the holder a
// cross-CPU transfer on its next write, 215 ns one way on that VM), so
// polls are few. The clock is read at each poll, which the spacing makes
// cheap.
//
// Under a Relacy model it is a fixed, small number of polls (each pause is
// a scheduling point), so models stay deterministic.
#pragma once

#include <chrono>
#include <cstdint>

#include "rouse/detail/sync_types.hpp"
#if !defined(ROUSE_MODEL_RELACY)
#include "rouse/platform/cpu.hpp"
#include "rouse/platform/deadline.hpp"
#include "rouse/platform/wait.hpp"
#endif

namespace rouse::detail {

struct spin_policy {
  std::int64_t multiple;       // budget = multiple x wake cost ...
  std::chrono::nanoseconds min, max;  // ... clamped to [min, max]
  std::int32_t first_gap;      // pauses before the first poll, doubling ...
  std::int32_t max_gap;        // ... up to this many between two polls
  std::int32_t model_polls;    // under Relacy: this many polls
};

// The spin of rouse::mutex and rouse::shared_mutex, measured with
// rouse-bench mutex.contended2/contended4/oversub32 and rwlock.read95 against
// std:: in one run (docs/locks.md, "Spin budget"). 4 x: the waker's system
// call is what wake_cost() measures; the sleeper's own delay in getting back
// on a CPU measured 2.5-6 times that on the VM of docs/benchmarks.md, so
// sleeping costs the pair about 4 x, and spinning up to that is the
// 2-competitive choice. First poll after 64 pauses: each poll takes the line
// from a holder that keeps re-locking; with 1, 8, 32 and 64, contended2
// measured 25-27, 17-23, 16-17 and 14.5-15 ns/op (std::mutex 27-34).
// Overridable for experiments; under a Relacy model the spin is
// `model_polls` polls whatever these say.
#if !defined(ROUSE_MUTEX_SPIN_MULTIPLE)
#define ROUSE_MUTEX_SPIN_MULTIPLE 4
#endif
#if !defined(ROUSE_MUTEX_SPIN_MAX_US)
#define ROUSE_MUTEX_SPIN_MAX_US 200
#endif
#if !defined(ROUSE_MUTEX_SPIN_FIRST_GAP)
#define ROUSE_MUTEX_SPIN_FIRST_GAP 64
#endif
#if !defined(ROUSE_MUTEX_SPIN_MAX_GAP)
#define ROUSE_MUTEX_SPIN_MAX_GAP 256
#endif
constexpr spin_policy lock_spin_policy(std::int32_t model_polls) noexcept {
  return {ROUSE_MUTEX_SPIN_MULTIPLE, std::chrono::microseconds(2), std::chrono::microseconds(ROUSE_MUTEX_SPIN_MAX_US),
          ROUSE_MUTEX_SPIN_FIRST_GAP, ROUSE_MUTEX_SPIN_MAX_GAP, model_polls};
}

class backoff_spin {
 public:
  explicit backoff_spin(const spin_policy& policy) noexcept : policy_(policy) {}

  // Pauses until the next poll: true = poll now, false = the budget is
  // spent (go to sleep).
  bool next() noexcept {
#if defined(ROUSE_MODEL_RELACY)
    if (polls_ >= policy_.model_polls) return false;
    ++polls_;
    spin_pause();
    return true;
#else
    std::int64_t const now = platform::steady_now_ns();
    if (polls_ == 0) {
      deadline_ = now + budget(policy_).count();
    } else if (now >= deadline_) {
      return false;
    }
    ++polls_;
    for (std::int32_t i = 0; i < gap_; ++i) spin_pause();
    if (gap_ < policy_.max_gap) gap_ = gap_ * 2 > policy_.max_gap ? policy_.max_gap : gap_ * 2;
    return true;
#endif
  }

#if !defined(ROUSE_MODEL_RELACY)
  // The time a spin with this policy lasts, as of now.
  static std::chrono::nanoseconds budget(const spin_policy& policy) noexcept {
    std::int64_t b = policy.multiple * platform::wake_cost().count();
    if (b < policy.min.count()) b = policy.min.count();
    if (b > policy.max.count()) b = policy.max.count();
    return std::chrono::nanoseconds(b);
  }
#endif

  // Polls made so far.
  std::int32_t polls() const noexcept { return polls_; }

 private:
  const spin_policy& policy_;
#if !defined(ROUSE_MODEL_RELACY)
  std::int64_t deadline_ = 0;
  std::int32_t gap_ = policy_.first_gap;
#endif
  std::int32_t polls_ = 0;
};

// Polls separated by a yield of the processor (platform::thread_yield), for
// a waiter whose peer may share its CPU (a pause spin would burn the time
// slice the peer needs; a yield hands it over, and costs one system call,
// 0.3-1.2 us on the VM of docs/benchmarks.md, when the peer runs elsewhere): at least `min_polls` polls, and more
// until backoff_spin::budget(policy) has passed since the first (the gap
// fields of the policy are not used). The budget matters because a waiter
// that gives up before its peer comes back makes the peer sleep in turn: a
// side that just woke the other must outlast that wake-up (2.5-6 x
// wake_cost() on the VM of docs/benchmarks.md) or the two sleep by turns.
//
//   detail::yield_spin spin(policy, 16);
//   while (!ready()) {
//     if (!spin.next()) { sleep; break; }
//   }
//
// Under a Relacy model it is `policy.model_polls` polls, each after a pause.
class yield_spin {
 public:
  yield_spin(const spin_policy& policy, std::int32_t min_polls) noexcept : policy_(policy), min_polls_(min_polls) {}

  // Yields until the next poll: true = poll now, false = the budget is spent.
  bool next() noexcept {
#if defined(ROUSE_MODEL_RELACY)
    (void)min_polls_;
    if (polls_ >= policy_.model_polls) return false;
    ++polls_;
    spin_pause();
    return true;
#else
    if (polls_ == 0) {
      deadline_ = platform::steady_now_ns() + backoff_spin::budget(policy_).count();
    } else if (polls_ >= min_polls_ && platform::steady_now_ns() >= deadline_) {
      return false;
    }
    ++polls_;
    platform::thread_yield();
    return true;
#endif
  }

  // Polls made so far.
  std::int32_t polls() const noexcept { return polls_; }

 private:
#if !defined(ROUSE_MODEL_RELACY)
  std::int64_t deadline_ = 0;
#endif
  const spin_policy& policy_;
  std::int32_t const min_polls_;
  std::int32_t polls_ = 0;
};

}  // namespace rouse::detail
