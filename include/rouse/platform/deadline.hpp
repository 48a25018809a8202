// rouse/platform/deadline.hpp — turning a caller's timeout or deadline into
// one that cannot overflow.
//
//   auto d = rouse::platform::deadline_after(timeout);       // *_for(timeout)
//   auto t = rouse::platform::clock_deadline(deadline);       // *_until(deadline)
//   if (rouse::platform::is_unbounded(d)) wait_forever(); else wait_until(d);
//
// Every `*_for(timeout)` of rouse goes through deadline_after(), and every
// `*_until(deadline)` converts the caller's time_point with deadline_cast()
// (clock_deadline() is deadline_cast to the clock's own duration) before it
// compares it with Clock::now() or hands it to the OS, so that all of them
// agree on the edge cases:
//   timeout <= 0                 -> now (the wait times out at once after one check)
//   timeout too big for a steady  -> steady_clock::time_point::max(), "no
//   time point (duration::max(),     deadline": callers wait without one
//   hours::max(), ...)
//   otherwise                    -> now + timeout, rounded up to the clock's
//                                   tick, so the wait is never early
//   deadline later than the       -> time_point::max() of the target duration:
//   target duration can hold         no deadline, as above
//   (time_point<steady_clock, hours>::max(), now + 3,000,000 h, ...)
//   deadline earlier than it can  -> time_point::min(): long passed, the wait
//   hold (hours::min(), ...)          times out at once
//   otherwise                    -> the same instant, rounded up to the
//                                   target's tick (never early)
// Nothing here converts first and checks after: hours::max() converted to
// nanoseconds overflows, and an overflowed deadline lands in the past (a wait
// that times out at once) or, from far in the past, in the future (a wait
// that hangs). Integer counts convert in exact integer steps, each
// bounds-checked before it is taken; floating counts are range-tested in
// long double first.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

#include "rouse/config.hpp"

namespace rouse::platform {

// The steady clock as a count of nanoseconds: for spin budgets and the
// time stamps of wake-ups, where a plain integer is easier to share through
// an atomic than a time_point.
inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// `d` in the duration `To`, rounded up (towards +infinity), or To::max() /
// To::min() when it lies beyond them. For arithmetic Reps; a NaN counts as
// beyond max (no deadline). A Rep of another kind is converted with
// std::chrono::ceil, unchecked.
template <class To, class Rep, class Period>
To saturating_ceil(const std::chrono::duration<Rep, Period>& d) noexcept {
  using to_rep = typename To::rep;
  using factor = std::ratio_divide<Period, typename To::period>;  // To ticks per tick of d
  constexpr std::intmax_t num = factor::num;
  constexpr std::intmax_t den = factor::den;
  if constexpr (std::is_same_v<std::chrono::duration<Rep, Period>, To>) {
    return d;
  } else if constexpr (!std::is_arithmetic_v<Rep> || !std::is_arithmetic_v<to_rep>) {
    return std::chrono::ceil<To>(d);
  } else if constexpr (std::is_floating_point_v<to_rep>) {
    return std::chrono::duration_cast<To>(d);  // a floating target does not overflow
  } else if constexpr (std::is_floating_point_v<Rep> || num > std::numeric_limits<std::intmax_t>::max() / den) {
    // A floating count, or a ratio too odd for the integer steps below:
    // range-test in long double (its exponent holds any count times any
    // ratio; its 64-bit mantissa on x86-64 and AArch64 Linux makes "below
    // max()" exact enough to convert), then round up.
    long double const x = std::chrono::duration<long double, typename To::period>(d).count();
    if (!(x < static_cast<long double>(To::max().count()))) return To::max();
    if (!(x > static_cast<long double>(To::min().count()))) return To::min();
    using wide = std::common_type_t<to_rep, std::intmax_t>;
    auto v = static_cast<wide>(x);  // truncates towards zero
    if (static_cast<long double>(v) < x) ++v;
    return To(static_cast<to_rep>(v));
  } else {
    // Exact integer steps, each bounds-checked before it is taken:
    // d = q * den + r (|r| < den), so d * num / den = q * num + r * num / den
    // with |r * num| < num * den (which fits, or the branch above is taken).
    // std::chrono::duration_cast multiplies first and can overflow even
    // where the result fits (a ratio of 1/3 s to nanoseconds).
    using unit = std::common_type_t<Rep, to_rep, std::intmax_t>;
    bool negative = false;
    if constexpr (std::is_signed_v<Rep>) negative = d.count() < 0;
    if (negative) {
      if constexpr (std::is_unsigned_v<to_rep>) {
        return To::min();  // rounds up to at most 0, which is min()
      } else {
        // unit is signed here (Rep is): a negative remainder truncated
        // towards zero is already rounded up.
        unit const c = static_cast<unit>(d.count());
        unit const q = c / den;
        unit const step = (c % den) * num / den;  // in (-num, 0]
        constexpr unit low = To::min().count();
        if (q < low / num) return To::min();
        unit const v = q * num;
        if (v < low - step) return To::min();
        return To(static_cast<to_rep>(v + step));
      }
    } else {
      unit const c = static_cast<unit>(d.count());
      unit const q = c / den;
      unit const rn = (c % den) * num;
      unit const step = rn / den;  // in [0, num)
      constexpr unit high = To::max().count();
      if (q > high / num) return To::max();
      unit v = q * num;
      if (v > high - step) return To::max();
      v += step;
      if (rn % den != 0) {  // round a remainder up
        if (v == high) return To::max();
        ++v;
      }
      return To(static_cast<to_rep>(v));
    }
  }
}

// The instant `t` in the duration `To` of the same clock: the same instant
// rounded up to To's tick (a deadline is never made earlier), or
// time_point::max() when t is too late to hold in To ("no deadline"), or
// time_point::min() when it is too early (long passed).
template <class To, class Clock, class Duration>
std::chrono::time_point<Clock, To> deadline_cast(const std::chrono::time_point<Clock, Duration>& t) noexcept {
  return std::chrono::time_point<Clock, To>(saturating_ceil<To>(t.time_since_epoch()));
}

// A caller's deadline in its clock's own duration: what every `*_until` of
// rouse converts its argument to before comparing it with Clock::now() (a
// time_point in hours compared with a now in nanoseconds would overflow in
// the comparison itself) or passing it on.
template <class Clock, class Duration>
std::chrono::time_point<Clock, typename Clock::duration> clock_deadline(
    const std::chrono::time_point<Clock, Duration>& t) noexcept {
  return deadline_cast<typename Clock::duration>(t);
}

// True for "no deadline": time_point::max(), what deadline_after() returns
// for endless timeouts and deadline_cast() for deadlines beyond its range.
template <class Clock, class Duration>
constexpr bool is_unbounded(const std::chrono::time_point<Clock, Duration>& deadline) noexcept {
  return deadline == std::chrono::time_point<Clock, Duration>::max();
}

template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(const std::chrono::duration<Rep, Period>& timeout) noexcept {
  using steady = std::chrono::steady_clock;
  auto const now = steady::now();
  if (timeout <= timeout.zero()) return now;
  auto const ticks = saturating_ceil<steady::duration>(timeout);
  auto const room =
      now.time_since_epoch() >= steady::duration::zero() ? steady::time_point::max() - now : steady::duration::max();
  if (ticks >= room) return steady::time_point::max();
  return now + ticks;
}

// The time from `now` to `deadline` (both on one clock, in one duration),
// zero once it has passed, Duration::max() when the difference would
// overflow (a clock whose now() is far below its epoch).
template <class Clock, class Duration>
Duration time_left(const std::chrono::time_point<Clock, Duration>& deadline,
                   const std::chrono::time_point<Clock, Duration>& now) noexcept {
  if (deadline <= now) return Duration::zero();
  if (now.time_since_epoch() < Duration::zero() &&
      deadline.time_since_epoch() > Duration::max() + now.time_since_epoch())
    return Duration::max();
  return deadline - now;
}

// For a deadline on a clock the OS cannot wait on: the steady deadline of the
// next slice of the wait, after which the caller re-reads Clock::now():
// steady now + time_left(deadline, Clock::now()), saturated (max(): no
// deadline). `deadline` is in the clock's own duration (clock_deadline()).
template <class Clock>
std::chrono::steady_clock::time_point steady_slice(
    const std::chrono::time_point<Clock, typename Clock::duration>& deadline) noexcept {
  std::chrono::time_point<Clock, typename Clock::duration> const now = Clock::now();
  return deadline_after(time_left(deadline, now));
}

}  // namespace rouse::platform
