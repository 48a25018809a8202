// rouse/detail/deadline.hpp — the one deadline idiom of rouse's waits.
//
//   template <class Deadline>                       // no_deadline or until_deadline<Clock>
//   bool lock_slow(const Deadline& deadline) {
//     for (;;) {
//       if (ready()) return true;
//       if (deadline.expired()) return false;         // has it passed? (never for no_deadline)
//       if (detail::wait_until(word_, seen, deadline) == detail::wait_result::timed_out) return false;
//     }
//   }
//   lock_slow(detail::no_deadline{});                           // lock()
//   lock_slow(detail::deadline_at(t));                          // try_lock_until(t)
//
// A deadline is one of three types, each with the same three members:
//   timed()     static constexpr: false only for no_deadline, so that an
//               untimed wait compiles without a clock read
//   expired()   whether it has passed (no_deadline: never; now_deadline:
//               always)
//   at          the time point (timed ones only), in its clock's own
//               duration (platform::clock_deadline()), so that comparing it
//               with Clock::now() cannot overflow
// and one way to sleep on a word until it: detail::wait_until(word,
// expected, deadline) (detail/sync_types.hpp), which waits untimed for a
// no_deadline and returns timed_out only once a timed one has passed on its
// own clock. Primitives take `const Deadline&` and never test its type.
//
// Internal (detail/, not platform/): a deadline here is judged by the model
// alias point's clock (detail::now<Clock>()) and slept on through its wait,
// which layer 0 cannot see. The conversions a caller's time point goes
// through first (saturating, never early) are platform/deadline.hpp's.
//
// Under a Relacy model (the alias point says it once, sync_types.hpp "Time
// under Relacy"): a timed wait may time out at any point Relacy chooses,
// which moves model_clock on by one tick; a deadline on model_clock has
// passed once model time reached it (`model_clock::now() + duration(1)`:
// once some timed wait has timed out since); a deadline on a real clock
// never expires by the clock (real time stands still), so a wait on one
// ends only through a timed wait's time-out. In normal builds every clock
// is read as it is: expired() is Clock::now() >= at.
#pragma once

#include <chrono>

#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::detail {

// An untimed wait.
struct no_deadline {
  static constexpr bool timed() noexcept { return false; }
  static constexpr bool expired() noexcept { return false; }
};

// A try_ operation: never waits (a wait on it times out at once).
struct now_deadline {
  using clock = std::chrono::steady_clock;
  static constexpr bool timed() noexcept { return true; }
  static constexpr bool expired() noexcept { return true; }
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::time_point::min();
};

// A wait that gives up at `at`. Build one with deadline_at(), which puts the
// caller's time point in the clock's own duration.
template <class Clock, class Duration = typename Clock::duration>
struct until_deadline {
  using clock = Clock;
  std::chrono::time_point<Clock, Duration> at;
  static constexpr bool timed() noexcept { return true; }
  bool expired() const noexcept { return detail::now<Clock>() >= at; }
};

// The deadline of a `*_until(t)`: `t` converted with platform::clock_deadline()
// (saturating: a time point too late to hold means time_point::max(), which
// the waits treat as no deadline; one too early, min(), long passed).
template <class Clock, class Duration>
until_deadline<Clock> deadline_at(const std::chrono::time_point<Clock, Duration>& t) noexcept {
  return until_deadline<Clock>{platform::clock_deadline(t)};
}

}  // namespace rouse::detail
