// Internal: the measurement behind rouse::platform::wake_cost().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "rouse/platform/deadline.hpp"

namespace rouse::platform::detail {

// The running average, in ns. Its own cache line: read by every spinner,
// written only by wake calls that woke someone.
struct alignas(64) wake_cost_average {
  std::atomic<std::int64_t> ns;
};
extern wake_cost_average wake_cost_estimate;

// Folds in one wake call that started at `started` (steady_now_ns()) and
// woke `woken` threads.
inline void note_wake_cost(std::int64_t started, long woken) noexcept {
  if (woken <= 0) return;
  std::int64_t const sample = steady_now_ns() - started;
  if (sample < 0 || sample > 1'000'000) return;  // a preempted waker, not a wake
  // Ordering: relaxed (both): a statistic; a lost update drops one sample.
  std::int64_t const old = wake_cost_estimate.ns.load(std::memory_order_relaxed);
  wake_cost_estimate.ns.store(old + (sample - old) / 8, std::memory_order_relaxed);
}

}  // namespace rouse::platform::detail
