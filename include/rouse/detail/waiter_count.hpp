// rouse/detail/waiter_count.hpp — the waiter-count handshake of atomic_wait.
//
// Purpose: let a notify on an address that nobody waits on skip the system
// call (docs/design.md, rule 2) when the waited-on word itself has no spare bit to say
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
// Cost with nobody waiting: a notify is a compiler barrier and one load of a
// counter that only waiters write — the same as libstdc++'s 4-byte notify,
// but correct whatever memory order the caller's store had. The price moves
// to the waiter: one membarrier(2) system call per wait that goes to sleep
// (see (A2) below). Where membarrier is unavailable both sides use seq_cst
// fences instead (platform/fence.hpp). Fairness: not applicable. Across
// processes: no (the counters are per process). sizeof: one 32-bit counter.
//
// Memory ordering — the store→load (Dekker) handshake, with an asymmetric
// fence pair standing in for two seq_cst fences:
//   waiter                                   notifier
//   (A)  counter.fetch_add(1, seq_cst)       value = new          (any order)
//   (A2) asymmetric_heavy_fence()            (B) asymmetric_light_fence()
//   (A') v = value.load(seq_cst)             (B') n = counter.load(relaxed)
//        if v == old: sleep (futex / park)        if n != 0: wake
// Claim: it is impossible that both (B') misses (A) and (A') reads the old
// value. The pair (A2)/(B) acts as two seq_cst fences (membarrier makes every
// running thread of the process pass a full barrier, and a thread that is
// not running passed one when it was switched out). Take the fences' order in
// the single total order S. If (A2) precedes (B), then (A), sequenced before
// (A2), is visible to (B'), sequenced after (B): (B') sees n >= 1 and the
// notifier wakes. If (B) precedes (A2), the store of `value`, sequenced
// before (B), is visible to (A'), sequenced after (A2): the waiter sees the
// new value (or a later one) and does not sleep. When the notifier does
// wake, the wake and the sleep meet under the futex's (or the parking
// bucket's) lock, which re-checks the value atomically with the enqueue.
// Either way no wake-up is lost. One (A2) per wait covers every later check
// of that wait: the waiter's count stays >= 1 until waiter_leave().
// The fences are what make this hold whatever order the user's store had; a
// seq_cst RMW on the counter on the notifier's side would not order a relaxed
// store before it on Arm, and would cost a locked instruction on every idle
// notify. Under ThreadSanitizer (which does not model fences, and g++ warns
// about them) (B)+(B') become one seq_cst fetch_add(0) on the counter.
#pragma once

#include <atomic>
#include <cstdint>

#include "rouse/detail/sync_types.hpp"

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
  // (A) seq_cst: the announcement that (B') reads.
  counter.fetch_add(1, std::memory_order_seq_cst);
  // (A2) the heavy half of an asymmetric fence (platform/fence.hpp): pairs
  // with the light half (B) in may_have_waiters(). A system call
  // (membarrier), paid once per wait that is about to sleep: the caller
  // spins first, so a partner that answers quickly never gets here.
  asymmetric_heavy_fence();
}

inline void waiter_leave(atomic<std::uint32_t>& counter) noexcept {
  // Ordering: relaxed — leaving only makes later notifies skip their wake;
  // a notifier that still sees the old count wakes needlessly, nothing more.
  counter.fetch_sub(1, std::memory_order_relaxed);
}

// (B): after the caller changed the value. False means no waiter can be
// asleep on (or about to sleep on) the old value of any address of this slot.
inline bool may_have_waiters(atomic<std::uint32_t>& counter) noexcept {
#if defined(ROUSE_DETAIL_TSAN)
  // (B) + (B') as one seq_cst RMW; see the header comment for why this is
  // only for TSan builds.
  return counter.fetch_add(0, std::memory_order_seq_cst) != 0;
#else
  // (B) the light half of an asymmetric fence: a compiler barrier where the
  // heavy half (A2) is a process-wide barrier, else a seq_cst fence (under a
  // model, a seq_cst fence: the alias point models the pair as what it
  // guarantees). Pairs with (A2) in waiter_enter().
  asymmetric_light_fence();
  // (B') Ordering: relaxed — ordered by the fence pair (A2)/(B).
  return counter.load(std::memory_order_relaxed) != 0;
#endif
}

// The 4-byte wait on the futex, gated by `counter`: sleeps while `word` holds
// `old`; returns true once it differs, false when `deadline` (a deadline
// object, detail/deadline.hpp) passed first with the value unchanged. Loops
// over spurious wake-ups.
template <class Deadline>
bool counted_wait_u32(atomic<std::uint32_t>& counter, const atomic<std::uint32_t>& word, std::uint32_t old,
                      const Deadline& deadline) noexcept {
  waiter_enter(counter);  // (A)
  bool changed = true;
  for (;;) {
    // (A') seq_cst: pairs with the fence (B) of a notifier (see above).
    if (word.load(std::memory_order_seq_cst) != old) break;
    if (wait_until(word, old, deadline) == wait_result::timed_out) {
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
inline void counted_notify_u32(atomic<std::uint32_t>& counter, const atomic<std::uint32_t>& word, bool all) noexcept {
  if (!may_have_waiters(counter)) return;
  if (all) {
    wake_all(word);
  } else {
    wake_one(word);
  }
}

}  // namespace rouse::detail
