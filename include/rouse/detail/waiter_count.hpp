// rouse/detail/waiter_count.hpp — the waiter-count handshake of atomic_wait.
//
// Purpose: let a notify on an address that nobody waits on skip the system
// call (DESIGN rule 2) when the waited-on word itself has no spare bit to say
// "somebody sleeps here" — the case of std::atomic<T>::wait, whose value is
// the user's. Waiters announce themselves in a counter shared by every
// address that hashes to it; a notifier that finds the counter at zero
// returns at once.
//
// Lifecycle: a waiter calls waiter_enter() once before its first check of the
// value and waiter_leave() once when it stops waiting; in between it may
// check and sleep any number of times. A notifier changes the value first
// (any memory order), then calls may_have_waiters() and wakes only if it
// returns true. Misuse: a leave without an enter underflows the counter (every
// later notify on that slot then makes a needless system call, nothing is
// lost); not diagnosed, this is internal.
//
// State of one counter (32 bits, per hash slot, not per address):
//   0      nobody is waiting on any address of this slot: notify skips the wake
//   n > 0  n waiters on addresses of this slot: notify makes its wake call
//          (one system call or bucket lock even if none of them waits on *this*
//          address — exactness is the wake's job, not the counter's)
//
// Cost with nobody waiting: a notify is one full fence and one load of a
// counter that only waiters write. Fairness: not applicable. Across
// processes: no (the counters are per process). sizeof: one 32-bit counter.
//
// Memory ordering — the store→load (Dekker) handshake:
//   waiter                                   notifier
//   (A) counter.fetch_add(1, seq_cst)        value = new          (any order)
//   (A') v = value.load(seq_cst)             (B) fence(seq_cst)
//       if v == old: sleep (futex / park)    (B') n = counter.load(relaxed)
//                                            if n != 0: wake
// Claim: it is impossible that both (B') misses (A) and (A') reads the old
// value. If (B') does not observe (A), then (A) does not precede fence (B) in
// the single total order S of seq_cst operations ([atomics.order]: a load
// sequenced after a seq_cst fence observes every seq_cst modification that
// precedes the fence in S), so (B) precedes (A), and (A) precedes (A') in S
// (sequenced before). The store of `value` is sequenced before (B) and (A')
// is a seq_cst load that follows (B) in S, so (A') observes the new value (or
// a later one) and the waiter does not sleep. Otherwise (B') sees n >= 1 and
// the notifier wakes; the wake and the sleep then meet under the futex's (or
// the parking bucket's) lock, which re-checks the value atomically with the
// enqueue. Either way no wake-up is lost.
// The fence is what makes this hold whatever order the user's store had; a
// seq_cst RMW on the counter instead would not order a relaxed store before
// it on Arm. Under ThreadSanitizer (which does not model fences, and g++ warns
// about them) the fence becomes a seq_cst fetch_add(0) on the counter: TSan
// runs on x86-64 here, where a locked RMW is a full barrier.
#pragma once

#include <cstdint>

#include "rouse/detail/sync_types.hpp"

#if !defined(ROUSE_MODEL_RELACY)
#include <atomic>
#endif

#if defined(__SANITIZE_THREAD__)
#define ROUSE_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROUSE_DETAIL_TSAN 1
#endif
#endif

namespace rouse::detail {

// (A): announce a waiter before the first check of the value.
inline void waiter_enter(atomic<std::uint32_t>& counter) noexcept {
  // (A) seq_cst: pairs with the fence (B) in may_have_waiters().
  counter.fetch_add(1, std::memory_order_seq_cst);
}

inline void waiter_leave(atomic<std::uint32_t>& counter) noexcept {
  // Ordering: relaxed — leaving only makes later notifies skip their wake;
  // a notifier that still sees the old count wakes needlessly, nothing more.
  counter.fetch_sub(1, std::memory_order_relaxed);
}

// (B): after the caller changed the value. False means no waiter can be
// asleep on (or about to sleep on) the old value of any address of this slot.
inline bool may_have_waiters(atomic<std::uint32_t>& counter) noexcept {
#if defined(ROUSE_MODEL_RELACY)
  rl::atomic_thread_fence(rl::mo_seq_cst, RL_INFO);  // (B)
  return counter.load(std::memory_order_relaxed) != 0;  // (B')
#elif defined(ROUSE_DETAIL_TSAN)
  // (B) + (B') as one seq_cst RMW; see the header comment for why this is
  // only for TSan builds.
  return counter.fetch_add(0, std::memory_order_seq_cst) != 0;
#else
  // (B) seq_cst fence: pairs with (A) in waiter_enter().
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // (B') Ordering: relaxed — ordered by the fence (B).
  return counter.load(std::memory_order_relaxed) != 0;
#endif
}

// The 4-byte wait on the futex, gated by `counter`: sleeps while `word` holds
// `old`; returns true once it differs, false when `deadline` (if not null)
// passed first with the value unchanged. Loops over spurious wake-ups.
template <class Deadline>
bool counted_wait_u32(atomic<std::uint32_t>& counter, const atomic<std::uint32_t>& word,
                      std::uint32_t old, const Deadline* deadline) noexcept {
  waiter_enter(counter);  // (A)
  bool changed = true;
  for (;;) {
    // (A') seq_cst: pairs with the fence (B) of a notifier (see above).
    if (word.load(std::memory_order_seq_cst) != old) break;
    if (deadline == nullptr) {
      wait(word, old);
    } else if (wait_until(word, old, *deadline) == wait_result::timed_out) {
      // Ordering: acquire — a late change still counts as a wake, and its
      // writer's data must be visible to the caller.
      changed = word.load(std::memory_order_acquire) != old;
      break;
    }
  }
  waiter_leave(counter);
  return changed;
}

// Wakes one or all waiters of `word` if the counter says anybody might wait.
inline void counted_notify_u32(atomic<std::uint32_t>& counter, const atomic<std::uint32_t>& word,
                               bool all) noexcept {
  if (!may_have_waiters(counter)) return;
  if (all) {
    wake_all(word);
  } else {
    wake_one(word);
  }
}

}  // namespace rouse::detail
