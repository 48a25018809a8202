// rouse/platform/deadline.hpp — turning a timeout into a steady deadline.
//
//   auto d = rouse::platform::deadline_after(timeout);
//   if (rouse::platform::is_unbounded(d)) wait_forever(); else wait_until(d);
//
// Every `*_for(timeout)` of rouse goes through deadline_after(), so that all
// of them agree on the edge cases:
//   timeout <= 0                 -> now (the wait times out at once after one check)
//   timeout too big for a steady  -> steady_clock::time_point::max(), "no
//   time point (duration::max(),     deadline": callers wait without one
//   hours::max(), ...)
//   otherwise                    -> now + timeout, rounded up to the clock's
//                                   tick, so the wait is never early
// The "too big" test compares in floating point: converting hours::max() to
// nanoseconds to compare it with the room left would overflow, and an
// overflowed comparison can make an endless timeout expire at once.
#pragma once

#include <chrono>
#include <cstdint>

namespace rouse::platform {

// The steady clock as a count of nanoseconds: for spin budgets and the
// time stamps of wake-ups, where a plain integer is easier to share through
// an atomic than a time_point.
inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(const std::chrono::duration<Rep, Period>& timeout) noexcept {
  using steady = std::chrono::steady_clock;
  auto const now = steady::now();
  if (timeout <= timeout.zero()) return now;
  if (std::chrono::duration<double>(timeout) >= std::chrono::duration<double>(steady::time_point::max() - now))
    return steady::time_point::max();
  return now + std::chrono::ceil<steady::duration>(timeout);
}

// True for the "no deadline" value deadline_after() returns for endless timeouts.
inline bool is_unbounded(std::chrono::steady_clock::time_point deadline) noexcept {
  return deadline == std::chrono::steady_clock::time_point::max();
}

}  // namespace rouse::platform
