// tests/support: clocks of the tests' own.
//
// rouse sends steady_clock and system_clock deadlines to the kernel as they
// are, and waits on any other clock in steady slices, re-reading that clock;
// timed waits are tested on each kind.
//
//   rouse_test::other_clock       steady_clock's time under a type of its own
//   rouse_test::half_speed_clock  half of steady_clock's time: 10 ms on it
//                                 are 20 ms of real time
#pragma once

#include <chrono>

namespace rouse_test {

struct other_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<other_clock>;
  [[maybe_unused]] static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(std::chrono::steady_clock::now().time_since_epoch()); }
};

struct half_speed_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<half_speed_clock>;
  [[maybe_unused]] static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(std::chrono::steady_clock::now().time_since_epoch() / 2); }
};

}  // namespace rouse_test
