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
// bucket). The comparison is of all of the object's bytes, padding
// included, as libstdc++'s std::atomic::wait compares them (the standard
// compares value representations): for a T with padding, a value equal to
// the atomic's but with other padding bytes is "different" and the wait
// returns at once; zero such values first (or use a T without padding).
//
// Returns: atomic_wait returns once the value differs from `old` (it loops
// over spurious wake-ups, as std does). The timed forms return true once the
// value differs, false when the deadline passed first (never early).
//
// Cost with nobody waiting: a notify makes no system call, takes no lock and
// runs no locked instruction — inline, it hashes the address, passes a
// compiler barrier and reads a waiter count that only waiters write. A waiter
// pays instead: it spins briefly, and if it must sleep it passes a membarrier
// first (the asymmetric store→load handshake argued in
// rouse/detail/waiter_count.hpp; see also docs/wait.md). With a
// waiter in the same hash slot (256 slots) a notify makes one wake call.
//
// Wakes are exact: notify on one address never wakes a waiter of another
// address, even one that shares the hash slot or parking bucket; a wait
// returns only when its own value changed (or on timeout).
//
// Destruction: a notify uses only the atomic's address (it hashes it, reads
// the waiter count of its slot, and wakes the futex or the parking table at
// that address); it never reads or writes the atomic. So a waiter that saw
// the new value may destroy the atomic at once, even before the notifier's
// atomic_notify_one/all() on it has run or returned (std's member
// notify_one() on a destroyed atomic would be undefined).
//
// Misuse: waiting on an atomic that is destroyed while waited on is undefined
// behaviour, as with std. Across processes: no (the waiter counts and the
// parking table are per process). Fairness: notify_one wakes the oldest
// waiter of 1/2/8-byte atomics; for 4-byte ones the kernel's futex order.
//
// Memory ordering: a wait loads the value with memory_order_acquire, so a
// wait that returns because of a store-release sees everything before it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "rouse/config.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/waiter_count.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse {
namespace detail {

// Out of line (src/atomic_wait.cpp). `address`/`size` name the atomic;
// `old_bytes` holds the value to wait on, compared bitwise. Returns true once
// the value differs, false when the deadline passed first (never for
// no_deadline).
bool atomic_wait_bytes(const void* address, std::size_t size, const void* old_bytes, no_deadline) noexcept;
bool atomic_wait_bytes(const void* address, std::size_t size, const void* old_bytes,
                       const until_deadline<std::chrono::steady_clock>& deadline) noexcept;
// The wake half of a notify, called only once the inline check below saw a
// possible waiter: wakes one (all != 0: all) waiters of exactly `address`.
// (`all` is an int: out-of-line arguments are int-sized, tests/abi/.)
[[gnu::cold, gnu::noinline]] void atomic_notify_bytes(const void* address, std::size_t size, int all) noexcept;

// Waiter counts, one per hash slot of addresses (waiter_count.hpp). A cache
// line each: waiters write them, every notify reads one.
struct alignas(64) atomic_wait_slot {
  std::atomic<std::uint32_t> waiters{0};
};
static_assert(sizeof(atomic_wait_slot) == 64);
inline constexpr unsigned atomic_wait_slot_bits = 8;
inline constexpr std::size_t atomic_wait_slot_count = std::size_t{1} << atomic_wait_slot_bits;
extern atomic_wait_slot atomic_wait_slots[atomic_wait_slot_count];

// Fibonacci hashing of the address: the same multiplier as the parking
// table's buckets, fewer bits, so two addresses in one parking bucket are
// also in one waiter slot.
inline std::size_t atomic_wait_slot_index(const void* address) noexcept {
  auto const a = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(address));
  return static_cast<std::size_t>((a * 0x9E3779B97F4A7C15ull) >> (64 - atomic_wait_slot_bits));
}

inline void atomic_notify(const void* address, std::size_t size, bool all) noexcept {
  if (may_have_waiters(atomic_wait_slots[atomic_wait_slot_index(address)].waiters)) [[unlikely]]
    atomic_notify_bytes(address, size, all ? 1 : 0);
}

template <class T>
inline constexpr bool atomic_waitable = std::is_trivially_copyable_v<T> &&
                                        (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8) &&
                                        sizeof(std::atomic<T>) == sizeof(T);

}  // namespace detail

template <class T>
requires detail::atomic_waitable<T>
void atomic_wait(const std::atomic<T>& a, std::type_identity_t<T> old) noexcept {
  detail::atomic_wait_bytes(&a, sizeof(T), &old, detail::no_deadline{});
}

// Steady deadlines go to the wait as they are; any other clock waits in
// steady slices, re-reading Clock::now(). The deadline is converted with
// platform::clock_deadline() first: one too late to hold in the clock's
// duration waits without a deadline, one too early times out at once.
template <class T, class Clock, class Duration>
requires detail::atomic_waitable<T>
bool atomic_wait_until(const std::atomic<T>& a, std::type_identity_t<T> old,
                      std::chrono::time_point<Clock, Duration> deadline) noexcept {
  auto const at = detail::deadline_at(deadline);
  if (platform::is_unbounded(at.at)) {
    atomic_wait(a, old);
    return true;
  }
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    return detail::atomic_wait_bytes(&a, sizeof(T), &old, at);
  } else {
    for (;;) {
      T const now_value = a.load(std::memory_order_acquire);
      if (std::memcmp(&now_value, &old, sizeof(T)) != 0) return true;
      if (at.expired()) return false;
      auto const slice = platform::steady_slice(at.at);
      if (platform::is_unbounded(slice)) {
        atomic_wait(a, old);
        return true;
      }
      if (detail::atomic_wait_bytes(&a, sizeof(T), &old, detail::deadline_at(slice))) return true;
    }
  }
}

template <class T, class Rep, class Period>
requires detail::atomic_waitable<T>
bool atomic_wait_for(const std::atomic<T>& a, std::type_identity_t<T> old,
                     std::chrono::duration<Rep, Period> timeout) noexcept {
  auto const deadline = platform::deadline_after(timeout);
  if (platform::is_unbounded(deadline)) {
    atomic_wait(a, old);
    return true;
  }
  return atomic_wait_until(a, old, deadline);
}

template <class T>
requires detail::atomic_waitable<T>
void atomic_notify_one(const std::atomic<T>& a) noexcept { detail::atomic_notify(&a, sizeof(T), false); }

template <class T>
requires detail::atomic_waitable<T>
void atomic_notify_all(const std::atomic<T>& a) noexcept { detail::atomic_notify(&a, sizeof(T), true); }

}  // namespace rouse
