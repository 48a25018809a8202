// rouse/async/waiter_list.hpp — the waiter list of the async primitives, and the
// awaitable that waits on it.
//
//   waiter_list         the one waiter queue (detail/waiter_queue.hpp: its
//                       waiter, node, list and claim) behind one word that
//                       holds a lone waiter's node (the slot), the list's
//                       lock and a "queued" bit, with the claims the async
//                       primitives need: notify one (a permit,
//                       transferable), notify all the waiters a predicate
//                       picks (not transferable)
//   check_result        what a primitive's check found: wait, go on, or go on
//                       holding a permit it consumed
//   list_wait<P>        one wait on primitive P's list: a detail::waiter (a
//                       thread parker, or a waker) and its node, in the
//                       waiting frame; the register / re-check / withdraw
//                       protocol, cancellation with pass-on
//   list_awaitable<P>   the awaitable every async primitive returns
//                       (event.wait(), notify.notified(); semaphore, mutex and
//                       channels later): a list_wait woken through
//                       coroutine_waker(target), its resume_target and its
//                       stop callback, all in the awaiting coroutine's frame
//   wait_blocking(...)  a plain thread's wait on the same list
//   detail::list_turn   list_awaitable's turn without the coroutine (the
//                       arming guard, the stop's claim, the sleep act)
//
// A primitive P names, for list_wait and list_awaitable (friends):
//   check_result try_acquire(std::uintptr_t tag) noexcept
//       the check (await_ready) and the re-check (B2); consumes a permit when
//       it returns ready_with_permit. `tag` is the wait's own word (notify:
//       the notify_all generation it started in), kept in the node's packet.
//   void pass_on() noexcept
//       gives one permit back to the primitive (notify: notify_one(); an
//       auto-reset event: set()). Called only by a waiter that holds a permit
//       it will not use (rule 6). A primitive whose wake-ups are not
//       transferable (a manual-reset event, notify_all) is never asked.
//   waiter_list& waiters() noexcept
//
// One wait, end to end (docs/async.md, "The model"): check (await_ready: the primitive's word,
// no lock) -> push (B1) -> re-check (B2) -> withdraw (the re-check found it
// ready and the waiter claimed itself) or suspend. A notifier claims the
// waiter (one compare-exchange, detail::waiter::try_claim), unlinks it under
// the lock and wakes it after dropping the lock; the waker schedules the
// coroutine on the executor of its promise's environment (never inside the
// notifier's call; without an executor the coroutine resumes on the
// notifier's thread, inside the notify: the documented fallback of
// coroutine_waker).
//
// The arming guard. Between the push and the moment await_suspend returns,
// the coroutine is not yet suspended for good: await_suspend still reads and
// writes the awaitable (the re-check, the stop callback's registration). A
// notifier may claim the waiter in that window, and a waker that resumed the
// coroutine then (on a pool thread, or inline without an executor) would run
// it twice, or free the awaitable under await_suspend. So the waiter's waker
// is a guard in front of coroutine_waker(target): one word, `phase`:
//   arming  = 0   await_suspend runs (from the push on)
//   armed   = 1   await_suspend is done; the coroutine waits: a wake resumes it
//   woken   = 2   a wake came while arming: await_suspend resumes it itself
//   await_suspend, at its end:  arming -> armed (suspend) | woken -> resume here
//   a wake (notify, stop):      arming -> woken (touch nothing more)
//                               | armed -> woken, then resume (coroutine_waker)
// Each side makes one exchange; whoever comes second resumes. The guard is
// the one RMW a suspending wait pays on top of the queue's. It lives, with
// the stop's claim, the relay's arm and the sleep act, in detail::list_turn,
// which compiles without coroutines: tests/model/async_list_turn_model.cpp
// drives it in place of one.
//
// A rouse task's waits (its promise offers rouse_wait_relay(), from its
// second wait that can be stopped on) register no callback of their own:
// the task's one stop callback is relayed to the wait it is in
// (detail/wait_relay.hpp), and the relay's word is the guard: the arming
// compare-exchange publishes the wait to the task's callback, a wake
// compare-exchanges it back to idle, and a stop pins the armed wait, claims
// it (aborted) as the callback below would, and resumes it (or leaves that
// to the notify that won). One RMW per wait, where a callback of its own
// costs a registration and a removal on the stop source; the outcomes are
// the same as below.
//
// Cancellation (rule 6: one winner). await_suspend registers a stop callback
// for get_stop_token(get_env(promise)) (any token: stop_callback_for_t;
// skipped when !stop_possible(); a rouse task's relay instead, above). The
// callback tries to claim the waiter
// (aborted): if it wins it unlinks the node (O(1), doubly linked) and
// completes the coroutine as stopped: the promise's unhandled_stopped() when
// it has one (resume_target::resume_stopped), else the coroutine resumes and
// await_resume throws operation_stopped. If a notify won first, the wake
// stands and the coroutine resumes normally, holding what it was given. A
// stop requested before await_suspend completes it as stopped at once.
//   - The callback lives in the awaitable (64 bytes of storage; a token whose
//     callback is larger allocates it, the only allocation here: rouse's
//     inplace_stop_token and std::stop_token fit). It is destroyed
//     (deregistered) before the awaitable's storage can be reused: in
//     await_resume, in await_suspend before a stopped completion it makes
//     itself, and in the destructor. A stop token's callback destructor waits
//     for a run of the callback on another thread to return, and does not wait
//     when the callback destroys itself (its run resumed a continuation that
//     freed the frame on the same thread): both std's rule and
//     inplace_stop_callback's.
//   - A stop callback may run on the stopping thread while a notify wakes the
//     waiter on a third: the claim has one winner; the loser touches nothing
//     after its failed compare-exchange (the callback returns; a notify's
//     claim pass unlinks and skips a node whose waiter is already claimed).
//     The winner's wake goes through the guard like any wake. The coroutine,
//     resumed by the notify, destroys the callback in await_resume: if the
//     losing callback is still inside its run, that destructor waits for it.
// A coroutine destroyed while suspended (its owner destroys the frame) runs
// the awaitable's destructor: it deregisters the stop callback, then claims
// its waiter (aborted): won, it unlinks the node and nothing will wake it;
// lost, it was chosen and woken (the coroutine was scheduled and will never
// run) and a transferable notification it received is passed on to the next
// waiter (P::pass_on(): notify_one's permit, a semaphore's permits). A frame
// must not be destroyed while a wake of it is still in flight on another
// thread (the waker would resume a destroyed coroutine): as for any
// coroutine, its owner destroys it only once nothing can resume it. On the
// waking thread itself it may: a coroutine without an executor is resumed
// inside the waking call (notify_all, set, count_down, release(n), close),
// which may have chosen other waiters too and wakes them after it; if it
// destroys such a waiter's frame, that frame's cancel takes its node out
// of the chain the call is waking (node_list::withdraw_claimed(): it is
// neither released nor woken; what it was handed is passed on) instead of
// waiting for a release this thread has not reached. A waiter whose stop
// hands something on (a semaphore waiter's stop returns its permits, which
// may serve the next waiters) is released before those are woken, so one of
// them may destroy its frame too.
//
// Fairness: FIFO among the waiters in the list (notify_one claims the oldest
// that can still be claimed). A waiter that arrives while a permit is stored
// takes it in await_ready without queueing: a permit is only stored when no
// waiter could be claimed, so that barging takes nothing from a queued one.
// Wakers are called outside any lock. sizeof: waiter_list 24 bytes,
// list_wait 80, list_awaitable 200 (224 for the condition variable's, which
// carries its release act; in the awaiting frame; static_asserts below); no
// allocation per wait. Cost with nobody waiting: has_waiters(), and so a
// notify, is one seq_cst load (a plain load on x86), no lock.
// A wait into an empty list registers with one compare-exchange and, if its
// re-check finds the primitive ready, leaves with one; a notify that finds
// waiters locks (one compare-exchange), claims (one) and unlocks (a store).
// Across processes: no.
//
// The list's word. Waiters wait in `list_` (detail::waiter_list, FIFO) under
// the word's lock, except a lone waiter: its node's address is the word
// itself (the slot), so registering into an empty list and leaving it again
// take no lock. Nodes are 8-aligned: the low bits are flags.
//   value      meaning
//   0          nobody waits, unlocked
//   P          one waiter, whose node is P (the slot); list_ is empty
//   Q (2)      two or more waiters, in list_
//   x | L (1)  locked (x one of the above, as it was when locked): the holder
//              moved P, if any, into list_ (the oldest: list_ was empty)
//   transition                            by
//   0 -> P                                push() (compare-exchange: B1)
//   P -> 0                                remove() of P (compare-exchange)
//   x -> x | L                            lock(): a notify, a remove() or a
//                                         push() that found the slot taken
//                                         (compare-exchange: B1 for a push)
//   x | L -> 0 | P' | Q                   unlock(): list_ empty / one node
//                                         (moved to the slot) / more (a
//                                         release store: while L is set no
//                                         other party writes the word)
// The lock is held for a few list operations and compare-exchanges, never
// across a system call, a wake or a sleep; a notify_all (an event's set, a
// latch's or barrier's release) holds it for one pass over the waiters, one
// claim each (docs/tuning.md has what that costs). A locker that finds
// it held pauses, then yields (detail::async_list_lock_spin: a yield lets a
// preempted holder run), then naps (detail::napper: timed parks of 100 µs
// doubling to 1.6 ms, re-checking after each): the unlock stays one store,
// with no wake call.
//
// Memory ordering. (A)/(B) is waiter_queue's Dekker pairing: a primitive's
// notifier makes its seq_cst RMW on its state word (A1), then loads the
// list's word seq_cst (A2, has_waiters: non-zero, locked included); a push's
// first RMW of the word (B1: the slot's compare-exchange, or the lock's,
// which keeps P or Q in the word, so the locked value is non-zero too) is
// seq_cst, and the waiter re-checks the primitive's word with a seq_cst load
// or RMW (B2). Either A2 reads B1 or later (a non-zero word: the notifier
// locks, and the lock hands it the list with the node in it, unless the node
// has been claimed or has left since) or A2 comes before B1 in the total
// order and B2 sees A1 (the waiter withdraws). A holder's unlock is a
// release store that the next lock's or push's acquire reads: a permit a
// notifier stored under the lock (a primitive's otherwise()) is seen by the
// re-check of every push after it. A woken coroutine sees everything its
// notifier did before the notify: the claim and the waker's schedule() are
// ordered by the claim word's acq_rel compare-exchange and the guard's
// acq_rel exchange, and the executor's queue hands the handle over with
// release/acquire.
#pragma once

#include <climits>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "rouse/async/detail/wait_relay.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waiter_queue.hpp"
#include "rouse/detail/waker.hpp"

// The coroutine half (list_awaitable: resume_target, stop callbacks) needs
// the async environment (executors and coroutine wakers are not
// model-ready; the stop source has its own model); a model test
// compiles the protocol without it: the list, list_wait (register, re-check,
// withdraw, abort, cancel with pass-on), the blocking wait and a coroutine
// wait's turn (detail::list_turn: the guard, the stop's claim, the relay,
// the sleep act), which the coroutine half only wraps.
#if !defined(ROUSE_MODEL_RELACY)
#define ROUSE_DETAIL_ASYNC_LIST_COROUTINES 1
#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#else
#define ROUSE_DETAIL_ASYNC_LIST_COROUTINES 0
#endif

namespace rouse::async {

namespace detail {
using waiter = ::rouse::detail::waiter;
using waiter_node = ::rouse::detail::waiter_node;
using node_list = ::rouse::detail::waiter_list;
}  // namespace detail

// What a primitive's check found.
enum class check_result : std::uint8_t {
  not_ready,          // wait
  ready,              // go on; nothing was taken (an event seen set, a notify_all seen)
  ready_with_permit,  // go on; a permit was taken from the primitive (transferable)
};

// ---- waiter_list -------------------------------------------------------------

class waiter_list {
 public:
  // The claim of a notify_all. Not a node's address (nodes are 8-aligned),
  // not waiting / aborted / closed.
  static constexpr std::uintptr_t broadcast = 3;
  // Whether a claim hands the waiter a permit it must pass on if unused:
  // a notify_one's (claimed through the node: its address).
  static constexpr bool transferable(std::uintptr_t claim) noexcept { return claim > broadcast; }

  waiter_list() noexcept = default;
  waiter_list(const waiter_list&) = delete;
  waiter_list& operator=(const waiter_list&) = delete;
  ~waiter_list() {
    ROUSE_CHECK_USAGE(word_.load(std::memory_order_relaxed) == 0, "rouse::async::waiter_list",
                      "destroyed while a waiter is registered");
  }
  // Debug builds: the owning primitive's destructor check, in its own name
  // (it runs before the list's own check above; models keep that one only).
  void check_unused_by([[maybe_unused]] const char* owner) const noexcept {
#if !defined(ROUSE_MODEL_RELACY)
    // Ordering: relaxed: a diagnosis; the owner is being destroyed.
    ROUSE_CHECK_USAGE(word_.load(std::memory_order_relaxed) == 0, owner,
                      "destroyed while a task or thread waits on it");
#endif
  }

  // Links `n` (B1); the caller re-checks its condition afterwards (B2).
  // Into an empty list: one compare-exchange of the word (the slot).
  void push(detail::waiter_node& n) noexcept {
    std::uintptr_t s = 0;
    // (B1) seq_cst: pairs with (A2) in has_waiters(); acquire: the last
    // holder's unlock (a permit it stored under the lock).
    std::memory_order order = std::memory_order_seq_cst;
    // BROKEN on purpose (model tests only): not (B1), or not even a release.
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_list_slot_push_acq_rel))
      order = std::memory_order_acq_rel;
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_list_slot_push_relaxed))
      order = std::memory_order_relaxed;
    if (word_.compare_exchange_strong(s, slot_of(n), order, std::memory_order_relaxed)) [[likely]]
      return;
    push_slow(n, s);
  }
  // Unlinks `n` if it is still linked. True when it was. Out of the slot:
  // one compare-exchange.
  bool remove(detail::waiter_node& n) noexcept {
    std::uintptr_t s = slot_of(n);
    // Ordering: acq_rel, as a lock and its unlock would order it.
    if (word_.compare_exchange_strong(s, 0, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
    lock_from(s);
    bool const was = list_.remove(n);
    unlock();
    return was;
  }

  // Whether anybody may be registered: one load, no lock (rule 2). True
  // while the word is locked too (see the state table).
  [[nodiscard]] bool has_waiters() const noexcept {
    // (A2) seq_cst: pairs with (B1) in push(); the caller's (A1) comes first.
    return word_.load(std::memory_order_seq_cst) != 0;
  }

  // Claims (through its node: transferable) and wakes the oldest claimable
  // waiter. True when one was woken.
  bool notify_one() noexcept {
    if (!has_waiters()) [[likely]]
      return false;
    return notify_one_locked([] { return true; }, [] {});
  }
  // Under the lock: if before() returns true, claims the oldest claimable
  // waiter through its node, or, when there is none, calls otherwise() (still
  // under the lock). Wakes the claimed waiter after the lock is dropped.
  // True when one was woken. A primitive's slow path moves a permit between
  // its word and a waiter here, serialized with push().
  template <class Before, class Otherwise>
  bool notify_one_locked(Before&& before, Otherwise&& otherwise) noexcept {
    return notify_some_locked([&]() noexcept { return before() ? 1 : 0; }, [&](int) noexcept { otherwise(); }) != 0;
  }
  // The same for several permits at once: under the lock, take() returns how
  // many to hand out (h); the h oldest claimable waiters are claimed through
  // their nodes (one permit each), and rest(k) (still under the lock) gets
  // the k < h left when fewer were waiting. Wakes the claimed after the lock
  // is dropped. Returns how many were woken.
  template <class Take, class Rest>
  [[gnu::noinline]] int notify_some_locked(Take&& take, Rest&& rest) noexcept {
    detail::waiter_node* chain = nullptr;
    int claimed = 0;
    lock();
    int const h = take();
    if (h > 0) {
      claimed = list_.claim(h, detail::node_list::by_node, chain);
      if (claimed < h) rest(h - claimed);
    }
    unlock();
    detail::node_list::wake_chain(chain);  // outside the lock
    return claimed;
  }

  // Claims (broadcast: not transferable) and wakes every waiter registered
  // now for which match(node) holds. Returns how many.
  template <class Match>
  int notify_all(Match&& match) noexcept {
    if (!has_waiters()) return 0;
    return notify_all_slow(match);
  }
  int notify_all() noexcept {
    return notify_all([](detail::waiter_node&) { return true; });
  }

  // A release that may let a waiter destroy the primitive (rouse::async::latch,
  // barrier): claims every waiter registered now for which match(node)
  // holds, drops the lock, calls release() (the primitive's state change that
  // lets others go on: its last touch of the primitive), then wakes the
  // claimed waiters from a chain it holds (nothing of the list is read after
  // release()). The caller's (A1) comes first; a waiter that registers after
  // the claim must find, in its re-check, that the release is under way and
  // wait for release() (a short spin: the primitive's own state says so).
  // A waiter that the claim finds already claimed by its own side (its stop,
  // its timeout, its frame destroyed: it is leaving) still has to unlink its
  // node, under the lock; release() waits for that (a short wait: that side
  // is running), or the unlink would touch a list its release let someone
  // destroy. Returns how many were woken.
  template <class Match, class Release>
  int notify_all_releasing(Match&& match, Release&& release) noexcept {
    if (!has_waiters()) {  // (A2)
      release();
      return 0;
    }
    detail::waiter_node* chain = nullptr;
    bool leaving = false;
    lock();
    int const n = ::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_release_ignores_leaving)
                      ? list_.claim(INT_MAX, broadcast, match, chain)
                      : list_.claim_all_leaving_aborted(broadcast, match, chain, leaving);
    unlock();
    if (leaving) wait_for_leaving();
    release();
    detail::node_list::wake_chain(chain);
    return n;
  }

  // A waiter gives up (a cancellation, a destroyed frame, a timeout): true
  // when it left before it was chosen (its node is unlinked, O(1)); false
  // when it had been claimed: then it waits for its claimer's release (short)
  // and, when the claim handed it a permit, passes it on with pass_on()
  // (rule 6; the fault below is the model's broken variant).
  template <class PassOn>
  bool cancel_passing_on(detail::waiter_node& n, PassOn&& pass_on) noexcept {
    detail::waiter* const w = n.owner();
    if (w->try_claim(detail::waiter::aborted)) {
      remove(n);
      return true;
    }
    // Claimed. By a chain this thread is waking, up the stack (a coroutine
    // resumed inline by that chain destroys this waiter's frame)? Then it
    // leaves that chain; else its release is coming from the claimer.
    if (!detail::node_list::withdraw_claimed(n)) w->wait_released();
    if (transferable(w->claim()) &&
        !::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_cancel_drops_notification))
      pass_on();
    return false;
  }

 private:
  template <class Match>
  [[gnu::noinline]] int notify_all_slow(Match& match) noexcept {
    detail::waiter_node* chain = nullptr;
    lock();
    int const n = list_.claim(INT_MAX, broadcast, match, chain);
    unlock();
    detail::node_list::wake_chain(chain);
    return n;
  }

  // The word's bits (the state table above). A node's address has its low
  // three bits clear.
  static constexpr std::uintptr_t locked = 1;  // L
  static constexpr std::uintptr_t queued = 2;  // Q: the waiters are in list_
  static constexpr std::uintptr_t flags = 7;
  static_assert(alignof(detail::waiter_node) > flags);

  static std::uintptr_t slot_of(detail::waiter_node& n) noexcept { return reinterpret_cast<std::uintptr_t>(&n); }

  // A push that found the slot taken or the word locked: locks (its
  // compare-exchange is B1, seq_cst), appends, unlocks. If the word has
  // become 0 meanwhile, it takes the slot after all.
  [[gnu::noinline]] void push_slow(detail::waiter_node& n, std::uintptr_t s) noexcept {
    for (;;) {
      if (s == 0) {
        // (B1) seq_cst, as in push().
        if (word_.compare_exchange_weak(s, slot_of(n), std::memory_order_seq_cst, std::memory_order_relaxed)) return;
        continue;
      }
      if ((s & locked) != 0) {
        s = wait_unlocked();
        continue;
      }
      // (B1) seq_cst: the lock's compare-exchange publishes the push: a
      // notifier's (A2) that reads it or later sees a non-zero word and
      // takes the lock, which hands it the list with `n` in it.
      if (word_.compare_exchange_weak(s, s | locked, std::memory_order_seq_cst, std::memory_order_relaxed)) break;
    }
    take_slot(s);
    list_.push_back(n);
    unlock();
  }

  // Takes the lock: a wait while another holds it (see "The list's word":
  // pauses, yields, then naps). The node in the slot, if any, moves into
  // list_ (which is empty then).
  void lock() noexcept { lock_from(word_.load(std::memory_order_relaxed)); }
  void lock_from(std::uintptr_t s) noexcept {
    for (;;) {
      if ((s & locked) != 0) {
        s = wait_unlocked();
        continue;
      }
      // 0 | P | Q -> itself | L. Ordering: seq_cst: acquire: the last
      // holder's writes and a slot's node; seq_cst: B1 when a push locks
      // (push_slow), one order for every RMW of the word.
      if (word_.compare_exchange_weak(s, s | locked, std::memory_order_seq_cst, std::memory_order_relaxed)) break;
    }
    take_slot(s);
  }
  void take_slot(std::uintptr_t s) noexcept {
    if ((s & ~flags) != 0) list_.push_back(*reinterpret_cast<detail::waiter_node*>(s & ~flags));
  }
  // Publishes list_ and frees the word: 0 when list_ is empty, the one
  // waiter's node in the slot when it holds one, else Q.
  void unlock() noexcept {
    std::uintptr_t v = 0;
    if (detail::waiter_node* const first = list_.front()) {
      if (detail::node_list::next_of(*first) == nullptr) {
        list_.erase(*first);
        v = slot_of(*first);
      } else {
        v = queued;
      }
    }
    // Ordering: release: the holder's writes (the list, the nodes, a
    // primitive's state changed under the lock) before the next lock's or
    // slot compare-exchange's acquire. A plain store: while L is set nobody
    // else writes the word (every other RMW of it expects L clear).
    word_.store(v, std::memory_order_release);
  }
  // Until no waiter that its own side claimed is linked any more: each
  // unlinks itself under the lock, and the lock taken after its unlock
  // (acquire) orders every touch it made of the list before the caller's
  // release.
  [[gnu::noinline]] void wait_for_leaving() noexcept {
    ::rouse::detail::spinner spin(::rouse::detail::async_list_lock_spin);
    ::rouse::detail::napper nap;
    for (;;) {
      lock();
      bool const leaving = list_.has_leaving();
      unlock();
      if (!leaving) return;
      if (!spin.next())
        nap.once(&word_, [](const void*, std::size_t) noexcept { return true; });
    }
  }

  // After the spin (a holder walking a long list: a notify_all over
  // thousands of waiters) it naps (detail::napper: timed parks on the word's
  // address), since unlock() stays one store and wakes nobody.
  std::uintptr_t wait_unlocked() const noexcept {
    ::rouse::detail::spinner spin(::rouse::detail::async_list_lock_spin);
    ::rouse::detail::napper nap;
    for (;;) {
      if (!spin.next())
        nap.once(&word_, [](const void* w, std::size_t) noexcept {
          // Ordering: relaxed: a hint; the loop re-reads the word.
          return (static_cast<const decltype(word_)*>(w)->load(std::memory_order_relaxed) & locked) != 0;
        });
      std::uintptr_t const s = word_.load(std::memory_order_relaxed);
      if ((s & locked) == 0) return s;
    }
  }

  ::rouse::detail::atomic<std::uintptr_t> word_{0};
  detail::node_list list_;
};

// ---- list_wait ---------------------------------------------------------------

// One wait on primitive P's list, in the waiting frame: the waiter (a thread
// waiter, or one woken through a waker) and its node. Not movable: the list
// points at it while it is registered.
template <class P>
class list_wait {
 public:
  // What start() found.
  enum class start_result : std::uint8_t {
    suspended,  // registered: a notify (or a cancel) ends the wait
    withdrew,   // ready at the re-check, unlinked: nobody will wake it
    claimed,    // ready at the re-check, but a notify chose it first: its
                // wake is coming (a permit it held twice was passed on)
  };

  // A thread's wait: its thread sleeps in wait().
  list_wait(P& p, std::uintptr_t tag) noexcept : p_(&p), waiter_(), node_(&waiter_, to_packet(tag)) {}
  // A wait woken through `w`.
  list_wait(P& p, std::uintptr_t tag, ::rouse::detail::waker w) noexcept
      : p_(&p), waiter_(std::move(w)), node_(&waiter_, to_packet(tag)) {}
  list_wait(const list_wait&) = delete;
  list_wait& operator=(const list_wait&) = delete;

  // The wait's word, as the primitive gave it (also the node's packet).
  static std::uintptr_t tag_of(detail::waiter_node& n) noexcept { return reinterpret_cast<std::uintptr_t>(n.packet()); }
  std::uintptr_t tag() noexcept { return tag_of(node_); }
  P& primitive() const noexcept { return *p_; }

  check_result try_acquire() noexcept { return p_->try_acquire(tag()); }

  // Registers (B1) and re-checks (B2). `kept_permit`, when given, is set to
  // whether a wait that ends here (withdrew, claimed) keeps a notify_one's
  // permit (for a give-back, list_awaitable::give_back()).
  start_result start(bool* kept_permit = nullptr) noexcept {
    // A primitive that tags a wait when it registers, not when it is made
    // (manual_reset_event's generation: read before the re-check).
    if constexpr (requires { p_->tag_at_registration(); }) node_.reset(&waiter_, to_packet(p_->tag_at_registration()));
    list().push(node_);
    check_result const r = p_->try_acquire(tag());  // (B2) after (B1)
    if (r == check_result::not_ready) return start_result::suspended;
    if (waiter_.try_claim(detail::waiter::aborted)) {
      list().remove(node_);
      if (kept_permit) *kept_permit = r == check_result::ready_with_permit;
      return start_result::withdrew;
    }
    // Chosen meanwhile: two reasons to go on. It keeps one; if either is a
    // permit, one permit goes back (a notify_all seen twice is one). It
    // keeps a permit only when both were.
    bool const handed = waiter_list::transferable(waiter_.claim());
    if (r == check_result::ready_with_permit || handed) p_->pass_on();
    if (kept_permit) *kept_permit = r == check_result::ready_with_permit && handed;
    return start_result::claimed;
  }

  // A stop request: claims the waiter itself. True when it won: the node is
  // unlinked, won() runs, and the waiter is released (its waker woken): the
  // wait ends as stopped. False when a notify won first: the wake stands,
  // and nothing of the wait is touched again.
  template <class Won>
  bool try_abort(Won&& won) noexcept {
    if (!waiter_.try_claim(detail::waiter::aborted)) return false;
    list().remove(node_);
    won();
    waiter_.wake();
    return true;
  }
  bool try_abort() noexcept {
    return try_abort([] {});
  }

  // The waiter gives up (see waiter_list::cancel_passing_on). Not after a
  // withdraw. True when it left before it was chosen.
  bool cancel() noexcept {
    return list().cancel_passing_on(node_, [this] { p_->pass_on(); });
  }

  // A thread's sleep after start() returned suspended: until claimed, or
  // until the deadline, at which it claims itself (aborted) and leaves.
  // Returns the claim.
  template <class Deadline>
  std::uintptr_t wait(const Deadline& deadline, const ::rouse::detail::spin_policy& spin) noexcept {
    std::uintptr_t const c = waiter_.wait(deadline, spin);
    if (c == detail::waiter::aborted) list().remove(node_);
    return c;
  }
  // After start() returned claimed (a thread): until the claimer's release.
  void wait_released() noexcept { waiter_.wait_released(); }
  // After try_abort() lost, before the waiting frame goes: true once the
  // claimer's release came (its wake of the waker ran or is running); false
  // when the claimer is a chain this very thread is waking, up the stack,
  // that has not reached the waiter (a coroutine that chain resumed inline
  // destroys this frame): the waiter leaves that chain and is neither
  // released nor woken. Either way claim() then says what it was handed.
  bool wait_released_or_leave_chain() noexcept {
    if (detail::node_list::withdraw_claimed(node_)) return false;
    waiter_.wait_released();
    return true;
  }

  // Who claimed it (once it was released, or its own claim won).
  std::uintptr_t claim() const noexcept { return waiter_.claim(); }

 private:
  static void* to_packet(std::uintptr_t tag) noexcept { return reinterpret_cast<void*>(tag); }
  waiter_list& list() noexcept { return p_->waiters(); }

  P* p_;
  detail::waiter waiter_;
  detail::waiter_node node_;
};

// A plain thread's wait on P: check, register, re-check, sleep until notified
// or the deadline. True when it was notified (or found P ready), false on a
// timeout. `tag` as in list_wait.
template <class P, class Deadline>
bool wait_blocking(P& p, std::uintptr_t tag, const Deadline& deadline) noexcept {
  if (p.try_acquire(tag) != check_result::not_ready) return true;
  if (deadline.expired()) return false;
  list_wait<P> w(p, tag);
  switch (w.start()) {
    case list_wait<P>::start_result::withdrew:
      return true;
    case list_wait<P>::start_result::claimed:
      w.wait_released();
      return true;
    case list_wait<P>::start_result::suspended:
      break;
  }
  if (w.wait(deadline, ::rouse::detail::event_spin) != detail::waiter::aborted) return true;
  // Timed out and left: a last look (a permit stored just after is taken).
  return p.try_acquire(tag) != check_result::not_ready;
}

// ---- list_turn ---------------------------------------------------------------

namespace detail {
// Whether P's list waits run an act as the last step of a suspension that
// sleeps (act_when_asleep(): the condition variable's unlock). Specialized
// before P is complete (its awaitable's size is used in its own header).
template <class P>
struct acts_when_asleep : std::false_type {};

// One coroutine wait's turn on P's list, without the coroutine: the check,
// the push and re-check, the arming guard ("The arming guard" above) or the
// task's relay, the stop's claim and the stopped flag it sets, the sleep act,
// and a frame's abandon. list_awaitable is its coroutine side (the resume
// target, the stop callback's storage); the turn compiles under the model,
// which drives it in place of a coroutine
// (tests/model/async_list_turn_model.cpp). Derived (CRTP) names
//   void complete() noexcept   the wait slept and its wake came: resume the
//                              coroutine (as stopped when stopped()); the
//                              last touch of *this on the waking thread
// `Wait` as in list_awaitable.
template <class Derived, class P, class Wait = list_wait<P>>
class list_turn : public wait_relay::hook {
  static constexpr bool acts = acts_when_asleep<P>::value;

 public:
  // What arm() found: what await_suspend does next.
  enum class outcome : std::uint8_t {
    ready,      // go on now, normally: withdrawn at the re-check, or notified while arming
    stopped,    // complete as stopped now: the token was stopped, or its stop won while arming
    suspended,  // armed: the coroutine sleeps; the wake that comes calls complete()
  };

  list_turn(P& p, std::uintptr_t tag) noexcept
      : wait_relay::hook{&relay_ops}, wait_(p, tag, ::rouse::detail::waker(this, &guard_vtable)) {}
  list_turn(const list_turn&) = delete;
  list_turn& operator=(const list_turn&) = delete;

  // await_ready's check: true when the wait need not suspend (the primitive
  // was ready; a permit it took is kept, for give_back()).
  bool check() noexcept {
    check_result const r = wait_.try_acquire();
    kept_permit_ = r == check_result::ready_with_permit;
    return r != check_result::not_ready;
  }

  // await_suspend's part: the token's first look, the push (B1) and the
  // re-check (B2), then the arm. `register_stop()` registers the awaitable's
  // own stop callback (calling stop_requested()); it is called only for a
  // wait that is linked, has no relay and whose token can be stopped. With
  // the sleep act (acts_when_asleep<P>), the act runs last when the wait
  // sleeps: after the arm, touching nothing of *this (the act may resume a
  // waiter inline that destroys this frame, or the wait may be woken
  // elsewhere). On `suspended` nothing of *this may be touched after.
  template <class Token, class RegisterStop>
  outcome arm(const Token& token, wait_relay* relay, RegisterStop&& register_stop) noexcept {
    if constexpr (acts) {
      // Read before the wait can be woken; slept is published by the arm
      // and reset below if it did not sleep.
      void (*const fn)(void*) noexcept = ::rouse::detail::unsync_ref(act_.fn);
      void* const arg = ::rouse::detail::unsync_ref(act_.arg);
      bool const late = ::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_list_act_marks_slept_after);
      if (!late) ::rouse::detail::unsync_ref(act_.slept) = true;
      outcome const o = arm_guard(token, relay, register_stop);
      if (o == outcome::suspended) {
        fn(arg);  // the last act: nothing of *this after it
        // BROKEN on purpose (model tests only): marks slept after the act,
        // when the wait may have been woken and its frame destroyed.
        if (late) ::rouse::detail::unsync_ref(act_.slept) = true;
        return o;
      }
      ::rouse::detail::unsync_ref(act_.slept) = false;
      return o;
    } else {
      return arm_guard(token, relay, register_stop);
    }
  }

  // The stop callback. It writes stopped_ only after it won the claim (a
  // loser touches nothing more) and before the waiter's release and the
  // guard's exchange, which order it before arm() / complete() read it.
  bool stop_requested() noexcept {
    return wait_.try_abort([this]() noexcept { ::rouse::detail::unsync_ref(stopped_) = true; });
  }

  // The wait is over (await_resume): true when it completed normally.
  bool finish() noexcept {
    stage_ = stage::done;
    return !::rouse::detail::unsync_ref(stopped_);
  }

  // The frame is destroyed while the coroutine waits here (the destructor,
  // while linked()). The task's relay lets go of the wait, or
  // `drop_stop_callback()` deregisters the wait's own callback: either way
  // the stop can no longer claim it. Then the waiter leaves, or, chosen,
  // passes a permit on. A stop that won is a claim too (aborted, released,
  // not transferable): nothing to pass on.
  template <class DropStopCallback>
  void abandon(DropStopCallback&& drop_stop_callback) noexcept {
    if (relay_ != nullptr)
      relay_->unpublish(*this);  // the task's stop callback no longer sees it
    else
      drop_stop_callback();
    wait_.cancel();
    stage_ = stage::done;
  }

  // The sleep act (acts_when_asleep<P>): `fn(arg)` runs as the last act of
  // an arm whose wait sleeps (after it, the frame may be resumed elsewhere or
  // destroyed, so `arg` must not point into it); slept() then tells, once
  // the wait completed, whether it ran. Set before the arm.
  void act_when_asleep(void (*fn)(void*) noexcept, void* arg) noexcept
    requires acts
  {
    ::rouse::detail::unsync_ref(act_.fn) = fn;
    ::rouse::detail::unsync_ref(act_.arg) = arg;
  }
  [[nodiscard]] bool slept() const noexcept
    requires acts
  {
    return ::rouse::detail::unsync_ref(const_cast<list_turn*>(this)->act_.slept);
  }

  // Whether the wait completed as stopped (once it completed: complete(),
  // or arm() returned).
  [[nodiscard]] bool stopped() const noexcept {
    return ::rouse::detail::unsync_ref(const_cast<list_turn*>(this)->stopped_);
  }
  // Whether it is linked: from the push on, until it was withdrawn,
  // finished or abandoned (the awaitable's destructor abandons it then).
  [[nodiscard]] bool linked() const noexcept { return stage_ == stage::linked; }
  // Who claimed the wait (see list_awaitable::claim()).
  [[nodiscard]] std::uintptr_t claim() const noexcept { return wait_.claim(); }

 protected:
  enum class stage : std::uint8_t { idle, linked, done };

  Wait wait_;
  wait_relay* relay_ = nullptr;  // the task's relay, when the wait uses one
  ::rouse::detail::atomic<std::uint32_t> phase_{arming};
  stage stage_ = stage::idle;
  ::rouse::detail::unsync<bool> stopped_{false};
  bool kept_permit_ = false;  // the check or the re-check took a permit
  bool suspended_ = false;    // registered and slept: its claim says what it holds

 private:
  static constexpr std::uint32_t arming = 0;
  static constexpr std::uint32_t armed = 1;
  static constexpr std::uint32_t woken = 2;

  struct sleep_act {
    ::rouse::detail::unsync<void (*)(void*) noexcept> fn{nullptr};
    ::rouse::detail::unsync<void*> arg{nullptr};
    ::rouse::detail::unsync<bool> slept{false};
  };
  struct no_sleep_act {};

  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  // arm() without the sleep act.
  template <class Token, class RegisterStop>
  outcome arm_guard(const Token& token, wait_relay* relay, RegisterStop& register_stop) noexcept {
    if (token.stop_requested()) {  // before anything is linked
      ::rouse::detail::unsync_ref(stopped_) = true;
      return outcome::stopped;
    }
    stage_ = stage::linked;
    relay_ = relay;  // before the push: a wake may come at once
    typename Wait::start_result started;
    if constexpr (std::is_same_v<Wait, list_wait<P>>)
      started = wait_.start(&kept_permit_);
    else
      started = wait_.start();
    switch (started) {
      case Wait::start_result::withdrew:
        stage_ = stage::done;
        return outcome::ready;  // ready: go on at once
      case Wait::start_result::claimed:
        break;  // its wake is coming, or came: the guard says who resumes
      case Wait::start_result::suspended:
        suspended_ = true;
        if (relay_ == nullptr && token.stop_possible()) register_stop();
        break;
    }
    if (relay_ != nullptr) return arm_relayed();
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_list_guard_arms_with_store)) {
      // BROKEN on purpose (model tests only): a store overwrites `woken`.
      phase_.store(armed, std::memory_order_release);
      return outcome::suspended;
    }
    // arming -> armed, or woken (a wake came while arming).
    // Ordering: acq_rel: release: the awaitable's fields (its resume target,
    // the callback) before a later wake reads them; acquire: a wake that came
    // first (stopped_, the claim).
    if (phase_.exchange(armed, std::memory_order_acq_rel) == arming) return outcome::suspended;
    if (!::rouse::detail::unsync_ref(stopped_)) return outcome::ready;  // notified
    // The stop callback won while we were arming: the caller deregisters it
    // (it may be returning on the stopping thread) and completes as stopped.
    stage_ = stage::done;
    return outcome::stopped;
  }

  // The end of arm through a task's relay: arms the wait in the relay's word
  // (the guard's exchange, which also publishes the wait to the task's stop
  // callback).
  outcome arm_relayed() noexcept {
    switch (relay_->arm(*this)) {
      case wait_relay::arm_result::armed:
        return outcome::suspended;
      case wait_relay::arm_result::woken:
        return outcome::ready;  // notified while arming; the stop side never saw this wait
      case wait_relay::arm_result::stop:
        break;
    }
    // The task was stopped while this wait armed: it claims itself, as its
    // stop callback would. Its waker, called by a winning claim, leaves the
    // relay's word woken|S (nothing resumes); a claim that lost leaves it to
    // the notify that won.
    if (stop_requested()) {
      if (!::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_list_relay_self_claim_keeps_relay))
        relay_->end_stopped();  // (BROKEN on purpose in model tests: skipped)
      stage_ = stage::done;
      return outcome::stopped;
    }
    if (relay_->rearm(*this) == wait_relay::arm_result::armed) return outcome::suspended;
    return outcome::ready;
  }

  // The guard waker (see "The arming guard").
  static const void* guard_clone(const void* d) noexcept { return d; }
  static void guard_drop(const void*) noexcept {}
  static void guard_wake(const void* d) noexcept {
    auto* const t = static_cast<list_turn*>(const_cast<void*>(d));
    // Through a task's relay, whose word is the guard (wait_relay.hpp); a
    // stop's own wake (stopped_, set by its winning claim on this thread)
    // resumes at once.
    if (t->relay_ != nullptr) {
      if (t->relay_->wake(*t, ::rouse::detail::unsync_ref(t->stopped_))) t->derived().complete();
      return;
    }
    // arming -> woken (arm() resumes) | armed -> woken (we resume).
    // Ordering: acq_rel: pairs with arm()'s exchange.
    if (t->phase_.exchange(woken, std::memory_order_acq_rel) == armed) t->derived().complete();
  }
  static constexpr ::rouse::detail::waker_vtable guard_vtable{guard_clone, guard_wake, guard_wake, guard_drop};

  // The relay's view of this wait (wait_relay::hook_ops).
  static list_turn* from_hook(void* hook) noexcept {
    return static_cast<list_turn*>(static_cast<wait_relay::hook*>(hook));
  }
  static bool relay_stop(void* hook) noexcept { return from_hook(hook)->stop_requested(); }
  static void relay_resume(void* hook) noexcept { from_hook(hook)->derived().complete(); }
  static constexpr wait_relay::hook_ops relay_ops{&relay_stop, &relay_resume};

  [[no_unique_address]] std::conditional_t<acts, sleep_act, no_sleep_act> act_{};
};
}  // namespace detail

// ---- list_awaitable ----------------------------------------------------------

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
// The awaitable of an async primitive P: `co_await` it in any coroutine (its
// promise's environment names the executor and the stop token, env.hpp).
// Lives in the awaiting frame; not copyable; movable only before it is
// awaited (an adaptor that stores awaitables may move it in; a move after
// await_suspend began is misuse, diagnosed in debug builds). await_resume
// returns nothing, or throws operation_stopped when the wait was stopped and
// the promise has no unhandled_stopped(). The wait's turn (guard, stop
// claim, relay, sleep act) is detail::list_turn; this is its coroutine side.
//
// `Wait` is the wait it drives: list_wait<P> (the default), or a primitive's
// own wait with the same members (a constructor (P&, tag, waker),
// try_acquire(), start() -> Wait::start_result (suspended, withdrew,
// claimed), try_abort(won), cancel(), primitive(), tag()): the semaphore's,
// whose waiters hold partially assigned permits (rouse/async/semaphore.hpp).
template <class P, class Wait = list_wait<P>>
class list_awaitable : private detail::list_turn<list_awaitable<P, Wait>, P, Wait> {
  using turn = detail::list_turn<list_awaitable<P, Wait>, P, Wait>;
  using outcome = typename turn::outcome;
  using stage = typename turn::stage;
  friend turn;

 public:
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor
  list_awaitable(P& p, std::uintptr_t tag) noexcept : turn(p, tag) {}
  // A fresh awaitable for the same wait (its waker names the new address).
  list_awaitable(list_awaitable&& other) noexcept : list_awaitable(other.wait_.primitive(), other.wait_.tag()) {
    ROUSE_CHECK_USAGE(other.stage_ == stage::idle && !other.stopped(), "rouse::async::list_awaitable",
                      "moved after it was awaited");
  }
  list_awaitable(const list_awaitable&) = delete;
  list_awaitable& operator=(const list_awaitable&) = delete;
  ~list_awaitable() {
    if (this->linked()) this->abandon([this]() noexcept { destroy_stop_callback(); });
  }

  bool await_ready() noexcept {
    ROUSE_CHECK_USAGE(this->stage_ == stage::idle && !this->stopped(), "rouse::async::list_awaitable", "awaited twice");
    return this->check();
  }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    // A rouse task relays its one stop callback to the wait it is in
    // (detail/wait_relay.hpp): no callback of the wait's own. The token is
    // still read at the start: a stop whose mark in the relay an earlier
    // wait consumed (it resumed normally, its notify having won) ends this
    // one there.
    if constexpr (requires { h.promise().rouse_wait_relay(); })
      if (detail::wait_relay* const relay = h.promise().rouse_wait_relay())
        return suspend(h, resume_target(h), get_stop_token(get_env(h.promise())), relay);
    return suspend(h, resume_target(h), get_stop_token(get_env(h.promise())), nullptr);
  }

  // For adaptors (rouse/async/timeout.hpp): await_suspend with the resume
  // target and the stop token given instead of those of h's promise (an
  // adaptor substitutes its own stop source and an executor that sees the
  // completion first). Returns what await_suspend returns.
  template <class Token>
  std::coroutine_handle<> await_suspend_with(std::coroutine_handle<> h, const resume_target& target,
                                             const Token& token) noexcept {
    return suspend(h, target, token, nullptr);
  }

 private:
  // await_suspend: with the token's own stop callback for the wait (relay
  // null), or through the task's relay (the token is the relay's). The turn
  // links, re-checks and arms (and runs a sleep act last, see
  // detail::list_turn::arm()); on `suspended` nothing of *this is touched.
  template <class Token>
  std::coroutine_handle<> suspend(std::coroutine_handle<> h, const resume_target& target, const Token& token,
                                  detail::wait_relay* relay) noexcept {
    ROUSE_CHECK_USAGE(this->stage_ == stage::idle && !this->stopped(), "rouse::async::list_awaitable", "awaited twice");
    target_ = target;  // before the push: a wake reads it
    switch (this->arm(token, relay, [&]() noexcept { register_stop(token); })) {
      case outcome::suspended:
        return std::noop_coroutine();
      case outcome::ready:
        return h;  // withdrawn, or notified while arming: await_resume deregisters the callback
      case outcome::stopped:
        break;
    }
    // Stopped before anything was linked, or the stop callback won while we
    // were arming: deregister it (it may be returning on the stopping
    // thread) and complete as stopped from here.
    destroy_stop_callback();
    return stopped_here(h);
  }

 public:
  void await_resume() {
    destroy_stop_callback();
    if (!this->finish()) throw operation_stopped();
  }

  // Who claimed the wait (waiter_list::transferable(claim()): a notify_one
  // handed it a permit), once the wait is over; 0 when it never suspended.
  // For primitives that must know whether they hold a permit (channels).
  using turn::claim;

  // Ends a linked wait from outside, as a timer does: claims the waiter
  // (aborted), unlinks it and resumes the coroutine normally (not stopped;
  // through the arming guard like any wake). False when a notify or a stop
  // won first (then nothing is touched). Only while the node is linked: from
  // the primitive's re-check (B2) on, until the coroutine resumes.
  bool try_end_wait() noexcept { return this->wait_.try_abort(); }

  // The wait completed normally and its completion is dropped unused (a
  // select's op() branch that completed but lost, rouse/async/select.hpp):
  // gives back what it took, as if it had not completed. A notify_one's
  // permit it holds (handed to it, or taken from the primitive) is passed
  // on: to the next waiter, or stored (P::pass_on(), as a waiter that gives
  // up does). A notify_all is not given back: it woke every waiter of its
  // time and stores nothing. Once, after the await completed normally.
  void give_back() noexcept
    requires std::is_same_v<Wait, list_wait<P>>
  {
    ROUSE_CHECK_USAGE(this->stage_ == stage::done && !this->stopped(), "rouse::async::list_awaitable::give_back",
                      "called before the await completed normally");
    // A wait that suspended holds what its claim handed it; one that ended
    // in await_ready or at the re-check, what the check took (kept_permit_).
    bool const holds = this->suspended_ ? waiter_list::transferable(this->wait_.claim()) : this->kept_permit_;
    this->kept_permit_ = this->suspended_ = false;
    if (holds) this->wait_.primitive().pass_on();
  }

  // For a primitive with detail::acts_when_asleep<P> (the condition variable):
  // `fn(arg)` runs as the last act of an await_suspend whose wait sleeps
  // (armed: after it, the frame may be resumed elsewhere or destroyed, so
  // `arg` must not point into it); slept() then tells, once the wait
  // completed, whether it ran. Set before the co_await.
  using turn::act_when_asleep;
  using turn::slept;

  // Whether the wait completed as stopped (read by an adaptor once the
  // wait has completed: its resume, or its await_suspend returned h).
  [[nodiscard]] bool completed_stopped() const noexcept { return this->stopped(); }
  // await_resume for an adaptor that reads completed_stopped() itself:
  // never throws. True when the wait completed normally.
  bool await_resume_nothrow() noexcept {
    destroy_stop_callback();
    return this->finish();
  }

 private:
  static constexpr std::size_t stop_storage = 64;

  // The wait slept and its wake came (the turn's guard or relay): resume it.
  // Reads target_ before anything can free the awaitable; touches nothing
  // after.
  void complete() noexcept { target_.complete(this->stopped()); }

  // A stop completion made by await_suspend itself.
  std::coroutine_handle<> stopped_here(std::coroutine_handle<> h) noexcept { return target_.stopped_from_suspend(h); }

  template <class Token>
  void register_stop(const Token& token) noexcept {
    struct callback {
      list_awaitable* self;
      void operator()() noexcept { self->stop_requested(); }
    };
    using cb = stop_callback_for_t<Token, callback>;
    if constexpr (sizeof(cb) <= stop_storage && alignof(cb) <= alignof(void*)) {
      new (static_cast<void*>(stop_)) cb(token, callback{this});
      stop_destroy_ = [](void* s) noexcept { static_cast<cb*>(s)->~cb(); };
    } else {
      cb* const heap = new cb(token, callback{this});
      new (static_cast<void*>(stop_)) cb*(heap);
      stop_destroy_ = [](void* s) noexcept { delete *static_cast<cb**>(s); };
    }
  }
  void destroy_stop_callback() noexcept {
    if (void (*const destroy)(void*) noexcept = std::exchange(stop_destroy_, nullptr)) destroy(stop_);
  }

  resume_target target_;
  void (*stop_destroy_)(void*) noexcept = nullptr;
  alignas(void*) unsigned char stop_[stop_storage];
};
#endif  // ROUSE_DETAIL_ASYNC_LIST_COROUTINES

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(waiter_list) == 24);
#endif

}  // namespace rouse::async
