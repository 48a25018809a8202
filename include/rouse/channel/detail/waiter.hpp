// rouse/channel/detail/waiter.hpp — how a channel operation blocks and is woken.
//
// Internal to rouse's MPMC channels (bounded, unbounded, rendezvous) and to
// channel::select. Users never name these types.
//
// The channels queue their blocked operations in rouse's one waiter queue
// (rouse/detail/waiter_queue.hpp), with a thread waiter as the wake action:
//
//   waiter       one per blocking call (a send, a recv, or a whole select), on
//                the blocked thread's stack: its claim word says which of the
//                call's registered operations won (exactly one: one CAS), and
//                its thread_parker is what the thread sleeps on
//   waiter_node  one registration of one operation in one channel's list (a
//                select registers one per case), on the blocked thread's
//                stack; its packet points at a rendezvous transfer area
//   sync_waker   the waiters on one side of a bounded or unbounded channel:
//                a waiter_queue, whose notify with nobody registered is one
//                plain load (docs/design.md, rule 2)
//   snooze       the channels' spins (detail/spin.hpp's channel_* policies)
//   no_deadline, now_deadline, until_deadline   the one deadline idiom
//                (detail/deadline.hpp), for the channel loops and waiter::wait()
//
// Lifecycle, claims, the release and why a blocked call's frame may vanish
// the moment it returns: waiter_queue.hpp. In the channels: a thread that
// makes an operation possible claims the oldest waiter it can (a notify, or
// a rendezvous partner), close() claims every one for `closed`, and a
// timeout or a re-check that finds the channel ready claims the waiter
// itself (`aborted`).
//
// Memory ordering: the (A)/(B) Dekker pairing of waiter_queue.hpp, where
// (A1) is the channel operation's seq_cst RMW on its index and (B2) the
// waiter's seq_cst re-check of the channel indices (array.hpp, list.hpp).
#pragma once

#include <cstdint>

#include "rouse/channel/result.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waiter_queue.hpp"

namespace rouse::channel::detail {

namespace d = ::rouse::detail;

// The channels' spins are named policies of detail/spin.hpp:
//   channel_cas_spin       after a lost compare-exchange: 1, 2, 4 ... 64
//                          pauses, never a yield (the winner is running and
//                          done in nanoseconds)
//   channel_wait_spin      waiting for another thread to act (room, a
//                          message, a slot being written): 1 pause, then 16
//                          yields; an operation that must keep waiting (a
//                          slot claimed but not yet written) yields on
//   channel_hand_off_spin  a registered waiter polling its release (a
//                          rendezvous partner or a select case being claimed)
// Why those shapes, and what they were measured with: docs/tuning.md.

// One wait for another thread inside an operation that cannot give up (a
// slot another thread claimed and is writing): polls per channel_wait_spin,
// then yields for as long as it takes.
inline void snooze(d::spinner& s) noexcept {
  if (!s.next()) d::yield();
}

using ::rouse::detail::waiter;
using ::rouse::detail::waiter_list;
using ::rouse::detail::waiter_node;
using sync_waker = ::rouse::detail::waiter_queue<>;

// Deadlines: the one idiom (detail/deadline.hpp): timed(), expired(), `at`.
using ::rouse::detail::no_deadline;
using ::rouse::detail::now_deadline;
using ::rouse::detail::until_deadline;

// The sleep of a blocked operation whose waiter is registered: until a
// claimer releases it, or the deadline (then it claims itself, `aborted`).
// Polls the release per channel_hand_off_spin first: a claimer is usually
// running and releases within a round trip.
template <class Deadline>
std::uintptr_t block_on(waiter& w, const Deadline& deadline) noexcept {
  return w.wait(deadline, d::channel_hand_off_spin);
}

// The sleeping half of a blocking send or receive, once its attempts and
// spinning found the channel full (or empty): register (B1), re-check with
// `ready` (B2: true when an attempt could now succeed or the channel
// closed), and sleep until a notify claims this waiter or the deadline
// passes. Returns when the caller should attempt again (and check its
// deadline); every flavour's blocking loop goes through here.
template <class Deadline, class Ready>
void park(sync_waker& q, const Deadline& deadline, Ready&& ready) noexcept {
  if (d::model_fault_on(d::model_fault::channel_park_skips_recheck)) {
    (void)q.park(
        deadline, [] { return false; }, d::channel_hand_off_spin);
    return;
  }
  (void)q.park(deadline, ready, d::channel_hand_off_spin);
}

// The blocking loop of the buffered flavours (array.hpp, list.hpp, and the
// ticket ring's timed forms): `attempt` until it would not block, polling
// per channel_wait_spin, then park on `q` with the (B2) re-check `ready`,
// until the deadline. `attempt` returns a status (`full`: it would block)
// or a recv_result (`empty`: it would block); so does this.
inline bool would_block(status s) noexcept { return s == status::full; }
template <class T>
bool would_block(const recv_result<T>& r) noexcept {
  return r.status() == status::empty;
}
template <class Deadline, class Attempt, class Ready>
auto attempt_until(sync_waker& q, const Deadline& deadline, Attempt&& attempt, Ready&& ready) noexcept {
  using result = decltype(attempt());
  for (;;) {
    d::spinner b(d::channel_wait_spin);
    for (;;) {
      result r = attempt();
      if (!would_block(r)) return r;
      if (deadline.expired() || !b.next()) break;  // no poll past the deadline
    }
    if (deadline.expired()) return result(status::timed_out);
    park(q, deadline, ready);
  }
}

}  // namespace rouse::channel::detail
