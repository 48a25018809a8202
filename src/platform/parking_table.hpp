// Internal: rouse's parking table — threads parked by address.
//
// The public half (park, unpark, the deadline and validation types, the
// bucket hash) is rouse/platform/park.hpp; this header adds what only the
// generic wait backend (generic_wait.cpp) uses: parking on several keys at
// once, and requeue.
//
//   park(key, validate, deadline)        enqueue if validate() holds, sleep
//   park_any(keys, validate, deadline)   one node per key, one shared waiter
//   unpark(key, n)                       wake up to n parked on exactly `key`
//   requeue(from, to, n_wake, n_move, validate)
//                                        wake some of `from`, move others to `to`
//
// The table is a fixed, process-wide array of buckets, each a std::mutex and
// a waiter_list (rouse/detail/waiter_queue.hpp) of parked nodes. An address
// (the key) hashes to one bucket.
//
// Lifecycle of a park: the queue's, with the bucket mutexes as the list
// locks. Nodes live on the parked thread's stack and share one `waiter`;
// its claim word decides the one winner between wakers (a claim through a
// node: the node's id) and the waiter itself (aborted: a timeout, or a key
// whose validation failed). A waker claims under the lock of the node's
// bucket, unlinks the node, and after dropping the lock releases the waiter
// (waiter::wake()). The wake action is the table's own sleeper, not the
// wait layer, which on the generic backend is this table: a
// std::mutex + std::condition_variable there, a private futex on the
// sleeper's own word on the futex backend (its system calls are not
// counted: park/unpark count one each). A parked thread returns only once
// its sleeper was signalled (or it won its own claim), so a waker never
// touches a parker that is gone: the argument of waiter_queue.hpp ("Freed
// nodes"), with the sleeper as the waker whose data outlives its wake.
// Nodes of a claimed or cancelled waiter are dead: a waker that meets one
// unlinks it and does not count it. Before it returns, a parked thread
// unlinks every node of its own that is still linked (under that node's
// bucket lock), so no waker can reach its stack afterwards.
//
// Exactness: a node records its exact key; a wake on `key` skips every node
// of another key that shares the bucket. Requeue moves a node to `to`'s
// bucket and changes its key under both bucket locks; a waiter that unlinks
// re-reads the key under the lock and retries if it moved.
//
// Fairness: FIFO per key (wakes take the oldest node of the key; a requeued
// node goes to the tail of the target's list).
#pragma once

#include <cstddef>
#include <span>

#include "rouse/platform/park.hpp"

namespace rouse::platform::detail {

struct park_outcome {
  park_result result;
  int index;  // park_any: the key that was invalid or woke us; -1 on timeout
};

// One node per key (keys.size() in 1..128), validated and enqueued key by key;
// returns on the first invalid key, on the first wake of any key, or on
// timeout. Duplicate keys are allowed.
park_outcome park_any(std::span<const void* const> keys, park_validate validate,
                      const park_deadline& deadline) noexcept;

// Under the locks of both keys' buckets: if validate(0) fails return -1;
// else wake up to `wake_count` parked on `from` and move up to
// `requeue_count` more to wait on `to`. Returns woken + moved.
int requeue(const void* from, const void* to, int wake_count, int requeue_count, park_validate validate) noexcept;

}  // namespace rouse::platform::detail
