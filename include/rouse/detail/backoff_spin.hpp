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
    std::int64_t const now = clock_ns();
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
  static std::int64_t clock_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  std::int64_t deadline_ = 0;
  std::int32_t gap_ = policy_.first_gap;
#endif
  std::int32_t polls_ = 0;
};

}  // namespace rouse::detail
