// rouse/atomic_wait.hpp — std::atomic<T>::wait/notify with timeouts and exact wakes.
//
//   rouse::atomic_wait(a, old)                  sleep while a == old
//   rouse::atomic_wait_until(a, old, deadline)  ... until a deadline; false on timeout
//   rouse::atomic_wait_for(a, old, timeout)     ... for a duration; false on timeout
//   rouse::atomic_notify_one(a) / atomic_notify_all(a)
//
// For std::atomic<T> with sizeof(T) in {1, 2, 4, 8} and T trivially copyable.
// This is what std::atomic::wait lacks: timeouts, and wakes that are exact —
// a notify wakes only threads waiting on that atomic's address. 4-byte
// atomics wait on the futex directly; other sizes park by exact address in
// rouse's parking table (libstdc++ instead wakes every waiter of a shared
// bucket). The comparison is bitwise, like std::atomic::wait.
//
// Returns: atomic_wait returns once the value differs from `old` (it loops
// over spurious wake-ups, as std does). The timed forms return true once the
// value differs, false when the deadline passed first (never early).
//
// Cost with nobody waiting: a notify makes no system call — it reads a
// per-address-hash waiter count after one full fence (the store→load
// handshake with waiters; see docs/wait.md).
//
// Memory ordering: a wait loads the value with memory_order_acquire, so a
// wait that returns because of a store-release sees everything before it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rouse {
namespace detail {

// Out of line (src/atomic_wait.cpp). `address`/`size` name the atomic;
// `old_bytes` holds the value to wait on, compared bitwise.
bool atomic_wait_bytes(const void* address, std::size_t size, const void* old_bytes,
                       const std::chrono::steady_clock::time_point* deadline) noexcept;
void atomic_notify_bytes(const void* address, std::size_t size, bool all) noexcept;

template <class T>
inline constexpr bool atomic_waitable =
    std::is_trivially_copyable_v<T> &&
    (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8) &&
    sizeof(std::atomic<T>) == sizeof(T);

}  // namespace detail

template <class T>
  requires detail::atomic_waitable<T>
void atomic_wait(const std::atomic<T>& a, T old) noexcept {
  detail::atomic_wait_bytes(&a, sizeof(T), &old, nullptr);
}

template <class T, class Clock, class Duration>
  requires detail::atomic_waitable<T>
bool atomic_wait_until(const std::atomic<T>& a, T old, std::chrono::time_point<Clock, Duration> deadline) noexcept {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    auto const d = std::chrono::time_point_cast<std::chrono::steady_clock::duration>(deadline);
    return detail::atomic_wait_bytes(&a, sizeof(T), &old, &d);
  } else {
    // Other clocks: wait in steady slices, re-reading Clock::now().
    for (;;) {
      T const now_value = a.load(std::memory_order_acquire);
      if (std::memcmp(&now_value, &old, sizeof(T)) != 0) return true;
      auto const now = Clock::now();
      if (now >= deadline) return false;
      auto const slice = std::chrono::steady_clock::now() +
                         std::chrono::ceil<std::chrono::steady_clock::duration>(deadline - now);
      if (detail::atomic_wait_bytes(&a, sizeof(T), &old, &slice)) return true;
    }
  }
}

template <class T, class Rep, class Period>
  requires detail::atomic_waitable<T>
bool atomic_wait_for(const std::atomic<T>& a, T old, std::chrono::duration<Rep, Period> timeout) noexcept {
  auto const now = std::chrono::steady_clock::now();
  // Compare in floating point: converting hours::max() to nanoseconds would overflow.
  if (std::chrono::duration<double>(timeout) >=
      std::chrono::duration<double>(std::chrono::steady_clock::time_point::max() - now)) {
    atomic_wait(a, old);
    return true;
  }
  return atomic_wait_until(a, old, now + std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
}

template <class T>
  requires detail::atomic_waitable<T>
void atomic_notify_one(const std::atomic<T>& a) noexcept {
  detail::atomic_notify_bytes(&a, sizeof(T), false);
}

template <class T>
  requires detail::atomic_waitable<T>
void atomic_notify_all(const std::atomic<T>& a) noexcept {
  detail::atomic_notify_bytes(&a, sizeof(T), true);
}

}  // namespace rouse
