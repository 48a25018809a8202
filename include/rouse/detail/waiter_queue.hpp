// rouse/detail/waiter_queue.hpp — the one intrusive waiter queue.
//
// Every primitive of rouse that keeps a list of blocked parties keeps it
// here (docs/design.md, "Shared machinery"): the channels and select, the condition
// variable, the parking table of the generic wait backend and of the
// 1/2/8-byte atomic waits, and the async primitives (async/waiter_list.hpp).
// Users never name these types.
//
//   waker         a type-erased wake action: a data pointer and a vtable of
//                 wake / wake_by_ref / drop (a coroutine's waker has this shape)
//   waiter        one blocked party, in its own stack frame (or coroutine
//                 frame): a claim word that exactly one party wins, and the
//                 release its claimer gives it — a thread_parker, which a
//                 thread sleeps on, or a waker
//   waiter_node   one registration of a waiter in one list (a select
//                 registers one per case; a wait on several words one per word)
//   waiter_list   an intrusive FIFO of nodes; its owner holds a lock
//   waiter_queue  a list, its lock and an `empty` flag: register, cancel,
//                 notify one / all (or all as a relay of sleepers), close, and
//                 a thread's whole blocking wait
//
// The wake action is a parameter of the waiter, not of the queue: a queue
// holds thread waiters and waker waiters side by side (threads and tasks
// sharing one channel), and the async layer uses this queue, not a copy.
//
// Lifecycle of a wait (docs/async.md, "One wait, end to end"):
//   1. The waiter builds a `waiter` and one `waiter_node` per list in its own
//      frame (docs/design.md, rule 3: no allocation), links the nodes (push), then
//      re-checks its condition (the Dekker pairing below).
//   2. A party that can serve it claims it: one compare-exchange of the claim
//      word, `waiting` -> the node's id (a notify), `closed` (a close) or
//      `aborted` (the waiter itself: a timeout, a cancellation, a re-check
//      that found its condition met). Exactly one claim succeeds (rule 6).
//      A claimer unlinks the node under the list's lock and calls wake()
//      after dropping the lock.
//   3. wake() releases the waiter: for a thread, thread_parker::unpark();
//      for a waker, it takes the waker out of the waiter, stores the
//      release, then wakes the waker it took.
//   4. The waiter returns (and may free its frame) only once it has seen
//      that release, or once it won its own claim and unlinked its nodes,
//      or — claimed by a chain that its own thread is waking further up
//      the stack (a coroutine resumed inline destroys it) — once it has
//      taken its node out of that chain (withdraw_claimed()): the claimer
//      then never touches it.
//
// Freed nodes: the one argument. A claimed waiter may return and free its
// waiter and nodes the moment it sees its release, while the claimer is
// still inside wake(). So the claimer's last touch of the waiter and its
// nodes is the release itself: the exchange inside thread_parker::unpark()
// (a thread waiter), or a release store (a waker waiter, whose owner never
// sleeps until woken for it: it polls, then naps, in wait_released(); a
// waker waiter's owner waits for a release only when it lost its own claim,
// and then its claimer is between its claim and the store: a few
// instructions, or the wakes of the nodes before it in a chain it wakes,
// which may run a coroutine inline).
// Everything it needs afterwards it has copied out before: the next node of
// a chain it wakes, the waker it wakes. What follows the exchange is, at
// most, a futex wake on the parker's address — a system call that never
// reads the memory (docs/design.md, rule 7); if the waiter has returned and the
// address was reused, it is a spurious wake-up for whoever sleeps there,
// which every user of a futex tolerates. (The other answer, a `waking` state
// and a last store after the system call so that no wake reaches a freed
// address, makes a woken waiter wait for its claimer to come back from the
// kernel; rule 7 says it need not.) A waiter that won its own claim is
// touched by nobody after it has unlinked its nodes under the lock: a claimer
// that meets one of its nodes first fails its compare-exchange under that
// lock and unlinks the node (a dead node) without touching the waiter again.
// A waker's data (a coroutine frame, a sleeper) must outlive its wake; that
// is the waker's contract, not the queue's.
//
// Rule 6 (one winner): a waiter that gives up (timeout, cancellation)
// either wins its own claim — it left before it was chosen, and cancel()
// unlinks its node in O(1) (the list is doubly linked) — or loses it, was
// chosen, and then holds the wake-up: it uses it (a channel operation tries
// again) or passes it on (cancel_passing_on(): notify_one()).
//
// Misuse: none reachable by users. A waiter must not be destroyed while it
// is linked and claimable (its owner withdraws first); debug builds do not
// check this (the owner is always rouse code).
// sizeof: waiter 32 bytes, waiter_node 40 bytes, waiter_queue 24 bytes
// (static_asserts below).
// Fairness: FIFO: notify wakes the oldest waiter that can still be claimed.
// Cost with nobody waiting: notify_one() and has_waiters() are one seq_cst
// load (a plain load on x86) and take no lock (docs/design.md, rule 2).
// Across processes: no (nodes point into thread stacks).
//
// waiter::claim (the one-winner word)
//   waiting  = 0   nobody has claimed it
//   aborted  = 1   the waiter claimed itself (timeout, cancel, condition met)
//   closed   = 2   a close() claimed it
//   else           the address of the node through which a notify claimed it
//
// Memory ordering. (A)/(B) Dekker pairing between a party that makes a
// waiter's condition true and a waiter that registers: the party's seq_cst
// RMW on its own state (A1) is followed by the seq_cst load of `empty_` in
// notify_one() (A2); push() stores `empty_ = 0` seq_cst (B1) and the waiter
// then re-checks its condition with seq_cst loads (B2). In the single total
// order either A2 sees B1 (the notifier finds the waiter) or B2 sees A1 (the
// waiter sees its condition and withdraws), so no wake-up is lost.
// Everything a claimer writes before wake() (a value handed over in a
// node's packet) happens-before the waiter's return: thread_parker's release
// exchange pairs with the acquire of park() or has_token().
#pragma once

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waker.hpp"
#include "rouse/mutex.hpp"
#include "rouse/thread_parker.hpp"

namespace rouse::detail {

// ---- waiter ---------------------------------------------------------------

class waiter {
 public:
  static constexpr std::uintptr_t waiting = 0;
  static constexpr std::uintptr_t aborted = 1;
  static constexpr std::uintptr_t closed = 2;

  // A thread waiter: its thread sleeps in wait() until its claimer's wake().
  waiter() noexcept : waker_release_(thread_kind), waker_data_(nullptr), waker_vtable_(nullptr) {}
  // A waiter woken through `w` (a coroutine's waker, a sleeper). An empty
  // `w` makes a thread waiter: wake() and wait_released() both go by the
  // waker's presence.
  explicit waiter(waker w) noexcept
      : waker_release_(w.vtable() != nullptr ? unreleased : thread_kind),
        waker_data_(w.data()),
        waker_vtable_(w.release().second) {}
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;
  // Drops the waker if no claimer took it (the waiter won its own claim, or
  // was never claimed).
  ~waiter() {
    if (const waker_vtable* const vt = unsync_ref(waker_vtable_)) vt->drop(unsync_ref(waker_data_));
  }

  // Claims the waiter for `value` (a node id, aborted or closed). Exactly
  // one claim succeeds per waiter.
  bool try_claim(std::uintptr_t value) noexcept {
    std::uintptr_t expected = waiting;
    // waiting -> value. Ordering: acq_rel: the winner's later writes reach
    // the waiter through wake()'s release, not through this word; acquire
    // keeps the winner's reads of a node's packet after its claim.
    return claim_.compare_exchange_strong(expected, value, std::memory_order_acq_rel, std::memory_order_acquire);
  }

  // Whether nobody has claimed it yet (a snapshot: a claim confirms it).
  [[nodiscard]] bool is_waiting() const noexcept {
    // Ordering: relaxed; a hint for readiness checks, which the CAS confirms.
    return claim_.load(std::memory_order_relaxed) == waiting;
  }

  // Who claimed it. For the waiter, once wait() or wait_released() returned
  // (or its own try_claim() won).
  [[nodiscard]] std::uintptr_t claim() const noexcept {
    // Ordering: relaxed: the claim happened-before the release that the
    // waiter acquired (or is the waiter's own).
    return claim_.load(std::memory_order_relaxed);
  }

  // Called once, by the party whose try_claim() won, after it has done its
  // part (a hand-over into a node's packet) and outside any list lock. Its
  // last touch of this waiter is the release (see "Freed nodes" above).
  void wake() noexcept {
    const waker_vtable* const vt = unsync_ref(waker_vtable_);
    if (vt == nullptr) {
      released_.unpark();  // a thread: exchange, and a futex wake if it sleeps
      return;
    }
    if (model_fault_on(model_fault::waiter_released_before_waker_taken)) {
      // BROKEN on purpose (model tests only): releases, then reads the waker.
      // (A model switches threads only at atomic operations and the like;
      // the pause stands for a preemption between the store and the read.)
      unsync_ref(waker_vtable_) = nullptr;
      waker_release_.store(released, std::memory_order_release);
      spin_pause();
      waker{unsync_ref(waker_data_), vt}.wake();
      return;
    }
    waker taken{unsync_ref(waker_data_), vt};
    unsync_ref(waker_vtable_) = nullptr;  // taken: the destructor must not drop it
    // The release: nothing of *this after it. Ordering: release: the
    // claimer's writes (the waker taken out, a node's packet) before the
    // owner's acquire in wait_released().
    waker_release_.store(released, model_fault_on(model_fault::waiter_release_store_relaxed)
                                       ? std::memory_order_relaxed  // BROKEN on purpose (model tests only)
                                       : std::memory_order_release);
#if defined(ROUSE_MODEL_RELACY)
    // A model switches threads only at atomic operations and the like: a
    // point here lets the owner free the waiter before the waker's call, so
    // a touch of *this added below would be caught.
    spin_pause();
#endif
    std::move(taken).wake();
  }

  // wake(), but only if the waiter is not asleep (no system call): true when
  // it released the waiter (whose claimer then touches nothing more of it);
  // false when its thread is parked, and the waiter is unchanged (still to
  // be released by wake()). A waker waiter is always woken (true).
  bool release_unless_asleep() noexcept {
    if (unsync_ref(waker_vtable_) != nullptr) {
      wake();
      return true;
    }
    return released_.unpark_unless_parked();
  }

  // A thread waiter sleeps until it is claimed and released; returns the
  // claim. `deadline` (detail/deadline.hpp): at it the waiter claims itself
  // (aborted) unless a claimer was first, in which case it waits for that
  // claimer's release. `spin` (detail/spin.hpp): how it polls the release
  // before it sleeps. Must not be called after the waiter's own try_claim()
  // succeeded (nobody would release it).
  template <class Deadline>
  std::uintptr_t wait(const Deadline& deadline, const spin_policy& spin) noexcept {
    ROUSE_CHECK_USAGE(waker_release_.load(std::memory_order_relaxed) == thread_kind, "rouse::detail::waiter",
                      "wait() on a waiter woken through a waker (its release is not the parker's)");
    if (released_.has_token()) return claim();
    spinner polls(spin);
    // A timed wait polls only until its deadline (a zero timeout: not at all).
    while (!deadline.expired() && polls.next())
      if (released_.has_token()) return claim();
    if constexpr (!Deadline::timed()) {
      released_.park();
      return claim();
    } else {
      if (deadline.expired()) return leave_at_deadline();
      return wait_parked_until(deadline.at);
    }
  }

  // After a lost try_claim(): returns once the winner's wake() released the
  // waiter (it is between its claim and its release: a short wait). A
  // thread waiter sleeps on its parker; a waker waiter polls its release
  // word (detail::waker_release_wait), then naps (detail::napper).
  void wait_released() noexcept {
    // Ordering: relaxed: the kind, written by the owner's constructor.
    if (waker_release_.load(std::memory_order_relaxed) == thread_kind) {
      released_.park();
      return;
    }
    wait_waker_released();
  }

 private:
  // waker_release_: a waker waiter's release (a thread waiter's is its parker).
  static constexpr std::uint32_t unreleased = 0;
  static constexpr std::uint32_t released = 1;
  static constexpr std::uint32_t thread_kind = 2;  // a thread waiter: unused

  [[gnu::noinline]] void wait_waker_released() noexcept {
    spinner spin(waker_release_wait);
    napper nap;
    // Ordering: acquire: pairs with wake()'s release store.
    while (waker_release_.load(std::memory_order_acquire) != released)
      if (!spin.next())
        nap.once(&waker_release_, [](const void* w, std::size_t) noexcept {
          // Ordering: relaxed: a hint; the loop re-reads the word.
          return static_cast<const atomic<std::uint32_t>*>(w)->load(std::memory_order_relaxed) != released;
        });
  }

  template <class TimePoint>
  [[gnu::noinline]] std::uintptr_t wait_parked_until(const TimePoint& at) noexcept {
    if (released_.park_until(at)) return claim();
    return leave_at_deadline();
  }
  // The deadline passed: leave, unless a release chose this waiter first.
  std::uintptr_t leave_at_deadline() noexcept {
    if (try_claim(aborted)) return aborted;  // nobody chose it: nobody will touch it
    released_.park();                        // chosen at the last moment: the release is coming
    return claim();
  }

  atomic<std::uintptr_t> claim_{waiting};
  thread_parker released_;
  atomic<std::uint32_t> waker_release_;
  unsync<const void*> waker_data_;
  unsync<const waker_vtable*> waker_vtable_;
};

// ---- waiter_node -----------------------------------------------------------

// One registration of a waiter in one list. `packet` is the owner's data
// for the claimer (a rendezvous transfer area; nullptr when none).
class waiter_node {
 public:
  waiter_node() noexcept : owner_(nullptr), packet_(nullptr), prev_(nullptr), next_(nullptr), linked_(false) {}
  explicit waiter_node(waiter* owner, void* packet = nullptr) noexcept
      : owner_(owner), packet_(packet), prev_(nullptr), next_(nullptr), linked_(false) {}
  waiter_node(const waiter_node&) = delete;
  waiter_node& operator=(const waiter_node&) = delete;

  // Points an unlinked node at a new owner (a select case reused by a new call).
  void reset(waiter* owner, void* packet = nullptr) noexcept {
    unsync_ref(owner_) = owner;
    unsync_ref(packet_) = packet;
  }

  waiter* owner() noexcept { return unsync_ref(owner_); }
  void* packet() noexcept { return unsync_ref(packet_); }
  // The claim value of a notify through this node.
  std::uintptr_t id() const noexcept { return reinterpret_cast<std::uintptr_t>(this); }

 private:
  friend class waiter_list;
  // Plain data, handed between threads by the list's lock and the claim;
  // under a model, race- and lifetime-checked (unsync).
  unsync<waiter*> owner_;
  unsync<void*> packet_;
  unsync<waiter_node*> prev_;
  unsync<waiter_node*> next_;  // also the chain link of claimed nodes, once unlinked
  unsync<bool> linked_;
};

// ---- waiter_list -----------------------------------------------------------

// A FIFO of nodes. Every member function requires the owner's lock, except
// wake_chain(), which must be called without it.
class waiter_list {
 public:
  struct no_dead_hook {
    void operator()(waiter_node&) const noexcept {}
  };
  // The claim value meaning "the id of the node it was claimed through".
  static constexpr std::uintptr_t by_node = waiter::waiting;

  waiter_list() noexcept = default;
  waiter_list(const waiter_list&) = delete;
  waiter_list& operator=(const waiter_list&) = delete;

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  waiter_node* front() const noexcept { return head_; }
  static waiter_node* next_of(waiter_node& n) noexcept { return unsync_ref(n.next_); }
  // Ends a chain at `n` (claimed and unlinked, not yet released).
  static void clear_next(waiter_node& n) noexcept { unsync_ref(n.next_) = nullptr; }
  static bool linked(waiter_node& n) noexcept { return unsync_ref(n.linked_); }

  void push_back(waiter_node& n) noexcept {
    unsync_ref(n.prev_) = tail_;
    unsync_ref(n.next_) = nullptr;
    if (tail_)
      unsync_ref(tail_->next_) = &n;
    else
      head_ = &n;
    tail_ = &n;
    unsync_ref(n.linked_) = true;
  }
  // O(1): touches only the node and its two neighbours. True when the node
  // was linked.
  bool remove(waiter_node& n) noexcept {
    if (!unsync_ref(n.linked_)) return false;
    erase(n);
    return true;
  }
  // `n` must be linked.
  void erase(waiter_node& n) noexcept {
    waiter_node* const prev = unsync_ref(n.prev_);
    waiter_node* const next = unsync_ref(n.next_);
    if (prev)
      unsync_ref(prev->next_) = next;
    else
      head_ = next;
    if (next)
      unsync_ref(next->prev_) = prev;
    else
      tail_ = prev;
    unsync_ref(n.prev_) = nullptr;
    unsync_ref(n.next_) = nullptr;
    unsync_ref(n.linked_) = false;
  }

  // Walks the list once, oldest first, over the nodes for which match(node)
  // holds: unlinks each, and claims its waiter for `value` (by_node: the
  // node's id) until `count` claims have succeeded. A node whose waiter is
  // already claimed (through another node, or by itself) is dead: unlinked,
  // not counted. Claimed nodes are appended to `chain` (linked through
  // their `next`) for wake_chain() once the lock is dropped. Returns the
  // number claimed.
  // `dead(node)`, when given, is called for each dead node unlinked (under
  // the lock, before the walk goes on).
  template <class Match, class Dead = no_dead_hook>
  int claim(int count, std::uintptr_t value, Match&& match, waiter_node*& chain, Dead&& dead = Dead{}) noexcept {
    return claim_walk(count, value, match, chain, [&](waiter_node& n) {
      erase(n);
      dead(n);
    });
  }
  int claim(int count, std::uintptr_t value, waiter_node*& chain) noexcept {
    return claim(
        count, value, [](waiter_node&) { return true; }, chain);
  }

  // claim() of every matching node, except that a node whose waiter its own
  // side claimed first (aborted: a stop, a timeout, a destroyed frame; that
  // side will unlink it) stays linked for that side to unlink; `leaving`
  // says whether any did. For a release after which the list may be gone:
  // its caller waits until none is left (has_leaving()).
  template <class Match>
  int claim_all_leaving_aborted(std::uintptr_t value, Match&& match, waiter_node*& chain, bool& leaving) noexcept {
    return claim_walk(INT_MAX, value, match, chain, [&](waiter_node&) { leaving = true; });
  }
  // Whether a node whose waiter has been claimed is still linked: its own
  // side claimed it (only a lock holder claims and unlinks others) and has
  // still to unlink it.
  [[nodiscard]] bool has_leaving() noexcept {
    for (waiter_node* n = head_; n; n = unsync_ref(n->next_))
      if (!unsync_ref(n->owner_)->is_waiting()) return true;
    return false;
  }

  // Appends `n`, unlinked and claimed by the caller, to a chain for
  // wake_chain() (`tail`: the chain's last node, nullptr for a new chain).
  // For a primitive that claims nodes one at a time under its lock
  // (rouse/async/semaphore.hpp: a serve claims a waiter once it is fully
  // served).
  static void chain_append(waiter_node*& chain, waiter_node*& tail, waiter_node& n) noexcept {
    unsync_ref(n.next_) = nullptr;
    if (tail)
      unsync_ref(tail->next_) = &n;
    else
      chain = &n;
    tail = &n;
  }

  // Whether claim() with `match` could find a node now (a snapshot).
  template <class Match>
  [[nodiscard]] bool has_claimable(Match&& match) noexcept {
    for (waiter_node* n = head_; n; n = unsync_ref(n->next_))
      if (match(*n) && unsync_ref(n->owner_)->is_waiting()) return true;
    return false;
  }

  // Releases every waiter of a chain that claim() built. Without the lock.
  // Each node's link and owner are read before its waiter is woken: after
  // wake() the node may be gone. A waker may run code inline (a coroutine
  // without an executor, resumed inside wake()) that destroys the frame of
  // a waiter further down this chain: that waiter's cancel finds its node
  // here through running_chains() and takes it out (withdraw_claimed()),
  // instead of waiting for a release this thread has not reached.
  static void wake_chain(waiter_node* chain) noexcept {
    wake_chain_after(chain, []() noexcept {});
  }
  // wake_chain(), running `first` before the first wake, with the chain
  // already where withdraw_claimed() finds it (a stopped waiter released in
  // `first` may run inline and destroy a waiter of the chain).
  template <class First>
  static void wake_chain_after(waiter_node* chain, First&& first) noexcept {
#if !defined(ROUSE_MODEL_RELACY)
    running_chain cur{chain, running_chains()};
    running_chains() = &cur;
    first();
    while (waiter_node* const n = cur.next) {
      cur.next = unsync_ref(n->next_);
      unsync_ref(n->owner_)->wake();
    }
    running_chains() = cur.outer;
#else
    // (Models: simulated threads share one OS thread, so no thread-local
    // cursor; the inline case is a single-thread one, tested directly.)
    first();
    while (chain) {
      waiter_node* const next = unsync_ref(chain->next_);
      waiter* const owner = unsync_ref(chain->owner_);
      if (model_fault_on(model_fault::waiter_chain_read_after_wake)) {
        // BROKEN on purpose (model tests only): reads the link after the wake.
        owner->wake();
        chain = unsync_ref(chain->next_);
        continue;
      }
      owner->wake();
      chain = next;
    }
#endif
  }

  // A waiter that lost its own claim, whose claimer is this very thread,
  // waking a chain up the stack that has not reached it (see wake_chain()):
  // takes `n` out of that chain, so that the waiter is neither released
  // nor woken, and returns true; the caller goes on as if released (its
  // owner is going away). False when `n` is in no chain this thread is
  // waking: its claimer is elsewhere, and its release is coming. Cost: a
  // walk of the chains this thread is waking, up to `n` (a waiter that
  // destroys thousands of later waiters of one broadcast, last first, pays
  // for each of them the length of the chain before it).
  static bool withdraw_claimed(waiter_node& n) noexcept {
#if !defined(ROUSE_MODEL_RELACY)
    for (running_chain* c = running_chains(); c != nullptr; c = c->outer) {
      if (c->next == &n) {
        c->next = unsync_ref(n.next_);
        return true;
      }
      for (waiter_node* p = c->next; p != nullptr; p = unsync_ref(p->next_)) {
        if (unsync_ref(p->next_) == &n) {
          unsync_ref(p->next_) = unsync_ref(n.next_);
          return true;
        }
      }
    }
#else
    (void)n;
#endif
    return false;
  }

 private:
  // The walk of claim(): claimed nodes are unlinked and appended to
  // `chain`; dead(node) gets each node whose waiter was claimed already.
  template <class Match, class Dead>
  int claim_walk(int count, std::uintptr_t value, Match& match, waiter_node*& chain, Dead&& dead) noexcept {
    waiter_node* tail = chain;
    while (tail && unsync_ref(tail->next_)) tail = unsync_ref(tail->next_);
    int claimed = 0;
    for (waiter_node* n = head_; n && claimed < count;) {
      waiter_node* const next = unsync_ref(n->next_);
      if (match(*n)) {
        if (unsync_ref(n->owner_)->try_claim(value == by_node ? n->id() : value)) {
          erase(*n);
          if (tail)
            unsync_ref(tail->next_) = n;
          else
            chain = n;
          tail = n;
          ++claimed;
        } else {
          dead(*n);
        }
      }
      n = next;
    }
    return claimed;
  }

#if !defined(ROUSE_MODEL_RELACY)
  // A chain this thread is waking: the next node to wake, and the chain
  // that was being woken when this one began (a wake inside a wake).
  struct running_chain {
    waiter_node* next;
    running_chain* outer;
  };
  static running_chain*& running_chains() noexcept {
    static constinit thread_local running_chain* innermost = nullptr;
    return innermost;
  }
#endif

  waiter_node* head_ = nullptr;
  waiter_node* tail_ = nullptr;
};

// ---- waiter_queue ----------------------------------------------------------

// A list with its lock and an `empty` flag, so that a notify with nobody
// registered is one load. The lock is rouse::mutex (a parameter only so that
// tests can count its use): against the channels' former dedicated lock (a
// three-state futex lock spinning 64 pauses) the channel workloads measured
// the same within the noise (docs/channels.md, "The waiter queue's lock").
template <class Lock = ::rouse::mutex>
class waiter_queue {
 public:
  waiter_queue() noexcept = default;
  waiter_queue(const waiter_queue&) = delete;
  waiter_queue& operator=(const waiter_queue&) = delete;

  // Links `n` (B1); the caller re-checks its condition afterwards (B2).
  void push(waiter_node& n) noexcept {
    lock_.lock();
    list_.push_back(n);
    // (B1) seq_cst: pairs with (A2) in has_waiters().
    empty_.store(0, std::memory_order_seq_cst);
    lock_.unlock();
  }
  // remove() for a waiter that claimed itself and must be done with the
  // queue once a notify that came after could return: it calls
  // `under_lock(was_linked)` while the lock is held (after the unlink), and leaves
  // `empty` as it is, so that a notify that reads it takes the lock, which
  // orders that notify's return after this call's unlock (rouse::
  // condition_variable: the object may be destroyed right after such a
  // notify). A stale "not empty" costs the next notify the lock once.
  // Returns what remove() returns.
  template <class F>
  bool remove_then(waiter_node& n, F&& under_lock) noexcept {
    lock_.lock();
    bool const was = list_.remove(n);
    under_lock(was);
    lock_.unlock();
    return was;
  }
  // Whether a node is linked, read under the lock (for a destructor's
  // misuse check: has_waiters() may be stale after remove_then()).
  [[nodiscard]] bool has_linked() noexcept {
    lock_.lock();
    bool const linked = !list_.empty();
    lock_.unlock();
    return linked;
  }
  // Unlinks `n` if it is still linked (a claimer unlinks what it claims).
  // True when it was.
  bool remove(waiter_node& n) noexcept {
    lock_.lock();
    bool const was = list_.remove(n);
    // Ordering: relaxed; only a hint for notify, re-written under the lock.
    if (list_.empty()) empty_.store(1, std::memory_order_relaxed);
    lock_.unlock();
    return was;
  }

  // Whether anybody may be registered: one load, no lock (rule 2).
  [[nodiscard]] bool has_waiters() const noexcept {
    // (A2) seq_cst: pairs with (B1) in push(); the caller's (A1) comes first.
    return empty_.load(std::memory_order_seq_cst) == 0;
  }

  // Claims and releases the oldest claimable waiter, if any. True when one
  // was woken. `dead(node)` is called under the lock for each dead node the
  // walk unlinks (a waiter that claimed itself and has not left yet).
  template <class Dead = waiter_list::no_dead_hook>
  bool notify_one(Dead&& dead = Dead{}) noexcept {
    if (!has_waiters()) [[likely]]
      return false;
    return claim_and_wake(1, waiter_list::by_node, dead) != 0;
  }
  // Claims and releases every waiter registered now. Returns how many.
  int notify_all() noexcept {
    if (!has_waiters()) return 0;
    return claim_and_wake(INT_MAX, waiter_list::by_node);
  }
  // Claims every waiter for `closed` and releases it. Returns how many.
  int close() noexcept { return claim_and_wake(INT_MAX, waiter::closed); }

  // notify_all as a relay (rouse::condition_variable): claims every waiter
  // registered now; releases at once, oldest first, each one that is not
  // asleep (no system call), and links the sleepers, in order, into a relay
  // (waiter_list::next_of()) of which it wakes only the first. A released
  // waiter must pass the release on with release_claimed(*next_of(node))
  // when next is not null, once and before it returns (a waiter released at
  // once has no next). One wake system call for the call, however many
  // sleep. Returns how many were claimed.
  template <class Dead = waiter_list::no_dead_hook>
  int notify_all_relayed(Dead&& dead = Dead{}) noexcept {
    if (!has_waiters()) return 0;
    waiter_node* chain = nullptr;
    lock_.lock();
    int const n = list_.claim(
        INT_MAX, waiter_list::by_node, [](waiter_node&) { return true; }, chain, dead);
    // Ordering: relaxed, as in remove().
    if (list_.empty()) empty_.store(1, std::memory_order_relaxed);
    lock_.unlock();
    // Claimed and not yet released, each node is ours until its release:
    // read its link first, then release it or move it to the sleepers'
    // relay (its link rewritten; its waiter reads it after its release,
    // thread_parker's release/acquire).
    waiter_node* sleepers = nullptr;
    waiter_node* sleepers_tail = nullptr;
    for (waiter_node* node = chain; node != nullptr;) {
      waiter_node* const next = waiter_list::next_of(*node);
      waiter_list::clear_next(*node);  // released at once, it relays nothing
      if (!node->owner()->release_unless_asleep()) waiter_list::chain_append(sleepers, sleepers_tail, *node);
      node = next;
    }
    if (sleepers != nullptr) release_claimed(*sleepers);
    return n;
  }
  // Releases a waiter that was claimed and unlinked (a relay's next). Its
  // last touch of the node is the release.
  static void release_claimed(waiter_node& n) noexcept { n.owner()->wake(); }

  // A waiter gives up: true when it left before it was chosen (its node is
  // unlinked, O(1)); false when it had been chosen — then it holds that
  // wake-up, its claimer has released it, and the caller uses it or passes
  // it on.
  bool cancel(waiter_node& n) noexcept {
    waiter* const w = n.owner();
    if (w->try_claim(waiter::aborted)) {
      remove(n);
      return true;
    }
    if (!waiter_list::withdraw_claimed(n)) w->wait_released();
    return false;
  }
  // cancel(), and a wake-up it was given goes to the next waiter (rule 6).
  bool cancel_passing_on(waiter_node& n) noexcept {
    if (cancel(n)) return true;
    notify_one();
    return false;
  }

  // The whole blocking wait of a thread: register, re-check with `ready`
  // (B2: true when the caller's condition now holds), and sleep until a
  // notify or close claims it or the deadline passes (see waiter::wait()).
  // Returns the claim: the node's id (notified), closed, or aborted (ready,
  // or timed out). The caller re-checks its state in every case.
  template <class Deadline, class Ready>
  std::uintptr_t park(const Deadline& deadline, Ready&& ready, const spin_policy& spin) noexcept {
    waiter w;
    waiter_node n(&w);
    push(n);
    // (B2) after (B1) in push().
    if (ready() && w.try_claim(waiter::aborted)) {
      remove(n);
      return waiter::aborted;
    }
    std::uintptr_t const c = w.wait(deadline, spin);
    if (c == waiter::aborted) remove(n);  // a claimer unlinked it otherwise
    return c;
  }

 private:
  template <class Dead = waiter_list::no_dead_hook>
  [[gnu::noinline]] int claim_and_wake(int count, std::uintptr_t value, Dead&& dead = Dead{}) noexcept {
    waiter_node* chain = nullptr;
    lock_.lock();
    int const n = list_.claim(
        count, value, [](waiter_node&) { return true; }, chain, dead);
    // Ordering: relaxed, as in remove().
    if (list_.empty()) empty_.store(1, std::memory_order_relaxed);
    lock_.unlock();
    // Outside the lock: a claimed waiter stays alive until its release.
    waiter_list::wake_chain(chain);
    return n;
  }

  Lock lock_;
  atomic<std::uint32_t> empty_{1};
  waiter_list list_;
};

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(waiter) == 32);
static_assert(sizeof(waiter_node) == 40);
static_assert(sizeof(waiter_queue<>) == 24);
#endif

}  // namespace rouse::detail
