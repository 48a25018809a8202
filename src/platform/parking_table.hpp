// Internal: rouse's parking table — threads parked by address.
//
// The generic wait backend (generic_wait.cpp) and the 1/2/8-byte atomic
// waits (atomic_wait.cpp) sleep here. It is a user-space futex: a fixed,
// process-wide array of buckets, each a std::mutex and an intrusive FIFO list
// of parked nodes. An address (the key) hashes to one bucket; a waiter
// validates its condition and enqueues under that bucket's lock, so a waker
// that changes the condition *before* taking the same lock cannot be missed.
//
//   park(key, validate, deadline)        enqueue if validate() holds, sleep
//   park_any(keys, validate, deadline)   one node per key, one shared wake state
//   unpark(key, n)                       wake up to n parked on exactly `key`
//   requeue(from, to, n_wake, n_move, validate)
//                                        wake some of `from`, move others to `to`
//
// Lifecycle of a park. Nodes live on the parked thread's stack; they share a
// `parker` (a sleeper, and a state word). The parker's
// `state` decides the one winner between wakers and the waiter itself:
//
//   state      meaning                                      set by
//   waiting    asleep (or about to be), claimable           construction
//   cancelled  the waiter gave up (timeout, or a key's      the waiter (CAS from waiting)
//              validation failed); its nodes are dead
//   i >= 0     claimed by a waker through node i            a waker (CAS from waiting),
//                                                           under the lock of node i's bucket
//
// A waker that claims a parker unlinks the node under the bucket lock, and
// later (after dropping the bucket lock) signals the parker's sleeper: on the
// generic backend a std::mutex + std::condition_variable (`signaled` set and
// notified under the mutex), on the futex backend a private futex on the
// parker's own word (store, then wake). A claimed waiter returns only once it
// has seen the signal, so the waker never touches a parker that is gone
// (the futex flavour's wake may reach a reused address: a spurious wake-up,
// which the wait layer allows). Nodes
// of a cancelled or already-claimed parker are dead: a waker that meets one
// unlinks it and does not count it. Before it returns, a waiter unlinks every
// node of its own that is still linked (under that node's bucket lock), so no
// waker can reach its stack afterwards.
//
// Exactness: a node records its exact key; a wake on `key` skips every node
// of another key that shares the bucket. Requeue moves a node to `to`'s
// bucket and changes its key under both bucket locks; a waiter that unlinks
// re-reads the key under the lock and retries if it moved.
//
// Fairness: FIFO per key (wakes take the oldest node of the key; a requeued
// node goes to the tail of the target's list).
//
// Costs: park and unpark/requeue each add one to the syscall counters
// (waits / wakes), whatever they find, as one futex call would. A wake with
// nobody parked takes and releases one bucket mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

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
  static park_deadline at(std::chrono::steady_clock::time_point t) noexcept {
    return {clock::steady, t, {}};
  }
  static park_deadline at(std::chrono::system_clock::time_point t) noexcept {
    return {clock::system, {}, t};
  }
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

struct park_outcome {
  park_result result;
  int index;  // park_any: the key that was invalid or woke us; -1 on timeout
};

// Sleeps on `key` while validate(0) held under the bucket lock, until
// unparked or the deadline. Never returns spuriously.
park_result park(const void* key, park_validate validate, const park_deadline& deadline) noexcept;

// One node per key (keys.size() in 1..128), validated and enqueued key by key;
// returns on the first invalid key, on the first wake of any key, or on
// timeout. Duplicate keys are allowed.
park_outcome park_any(std::span<const void* const> keys, park_validate validate,
                      const park_deadline& deadline) noexcept;

// Wakes up to `count` threads parked on exactly `key`, oldest first. Returns
// how many it woke (count <= 0 wakes none and takes no lock).
int unpark(const void* key, int count) noexcept;

// Under the locks of both keys' buckets: if validate(0) fails return -1;
// else wake up to `wake_count` parked on `from` and move up to
// `requeue_count` more to wait on `to`. Returns woken + moved.
int requeue(const void* from, const void* to, int wake_count, int requeue_count,
            park_validate validate) noexcept;

}  // namespace rouse::platform::detail
