// rouse/platform/park.hpp — park a thread on any address (internal).
//
// rouse's parking table: a user-space futex keyed by address, for waits the
// kernel's futex cannot take (a 1, 2 or 8-byte atomic: rouse/atomic_wait.hpp)
// and, on the generic backend, for every wait of rouse/platform/wait.hpp.
// Users never call it; it is a header so that code outside the platform
// layer (src/atomic_wait.cpp) reaches the table without the backend's
// private headers.
//
//   park(key, validate, deadline)   sleep on `key` if validate() holds under
//                                   the key's bucket lock
//   unpark(key, n)                  wake up to n threads parked on exactly `key`
//
// A waiter validates its condition and enqueues under the lock of the bucket
// its key hashes to, so a waker that changes the condition *before* taking
// the same lock (inside unpark()) cannot be missed. The waiters themselves
// are rouse's one waiter queue (detail/waiter_queue.hpp): intrusive nodes on
// the parked thread's stack, claimed with one compare-exchange, released
// outside the bucket lock (src/platform/parking_table.hpp has the protocol).
//
// Exactness: a wake on `key` wakes only threads parked on `key`, never a
// neighbour that shares its bucket. Fairness: FIFO per key.
// Costs: park and unpark each add one to the syscall counters (waits /
// wakes), whatever they find, as one futex call would. An unpark with
// nobody parked takes and releases one bucket mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "rouse/config.hpp"

namespace rouse::platform::detail {

// Number of buckets: a power of two. 512 × 64 bytes = 32 KiB, static.
inline constexpr std::size_t parking_buckets = 512;
inline constexpr unsigned parking_bucket_bits = 9;
static_assert(std::size_t{1} << parking_bucket_bits == parking_buckets);

// The bucket an address hashes to (Fibonacci hashing: multiply by 2^64/phi,
// keep the top bits, so neighbouring bytes spread over buckets). Exposed for
// tests that need two addresses in the same bucket.
inline std::size_t parking_bucket_index(const void* key) noexcept {
  auto const a = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key));
  return static_cast<std::size_t>((a * 0x9E3779B97F4A7C15ull) >> (64 - parking_bucket_bits));
}

// A deadline on one of the two clocks the table sleeps on, or none.
struct park_deadline {
  enum class clock : std::uint8_t { none, steady, system };
  clock kind = clock::none;
  std::chrono::steady_clock::time_point steady{};
  std::chrono::system_clock::time_point system{};

  static park_deadline none() noexcept { return {}; }
  static park_deadline at(std::chrono::steady_clock::time_point t) noexcept { return {clock::steady, t, {}}; }
  static park_deadline at(std::chrono::system_clock::time_point t) noexcept { return {clock::system, {}, t}; }
};

// The condition a waiter checks under the bucket lock of key `index`
// (index 0 for park()). Returns true to go on and sleep.
struct park_validate {
  bool (*check)(const void* context, std::size_t index) noexcept = nullptr;
  const void* context = nullptr;
  bool operator()(std::size_t index) const noexcept { return check == nullptr || check(context, index); }
};

enum class park_result : std::uint8_t {
  invalid,    // validation failed (for park_any: at `index`); did not sleep
  unparked,   // woken by unpark or requeue-then-unpark (for park_any: through `index`)
  timed_out,  // the deadline passed on its own clock (never early)
};

// Sleeps on `key` while validate(0) held under the bucket lock, until
// unparked or the deadline. Never returns spuriously.
park_result park(const void* key, park_validate validate, const park_deadline& deadline) noexcept;

// Wakes up to `count` threads parked on exactly `key`, oldest first. Returns
// how many it woke (count <= 0 wakes none and takes no lock).
int unpark(const void* key, int count) noexcept;

}  // namespace rouse::platform::detail
