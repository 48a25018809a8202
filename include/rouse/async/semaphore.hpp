// rouse/async/semaphore.hpp — a counting semaphore for tasks and threads:
// strictly FIFO, partial assignment, close.
//
//   rouse::async::semaphore slots(4);
//   // a task:                                   // a thread:
//   auto p = co_await slots.acquire();           auto p = slots.acquire_blocking();
//   if (!p) co_return;  // closed                if (!p) return;
//   use_one_slot();                              use_one_slot();
//   // p's destructor releases                   // p's destructor releases
//
// Contract (tokio's batch semaphore, in C++):
// - acquire(n) completes once n permits were given to it, as a `permit`
//   holding them (movable; its destructor releases them; forget() drops them;
//   release() early), or once the semaphore was closed: an empty permit
//   (`!p`; is_closed()). Closing is a result, not an exception.
// - Strict FIFO: a waiter is served only after every waiter queued before it.
//   A large request is not starved by small ones: release() assigns what it
//   has to the oldest waiter, which keeps those permits while it waits for
//   the rest (partial assignment); a newcomer never takes permits while
//   anybody is queued (try_acquire cannot barge past the queue), and permits
//   assigned to a queued waiter never show in available().
// - Cancellation (the awaiting promise's stop token, the awaiting frame
//   destroyed while queued, a thread's timeout): a waiter that leaves before
//   it was fully served returns the permits already assigned to it (they go
//   to the next waiters); one that was fully served and then destroyed
//   unresumed returns all n. A stopped acquire completes as stopped
//   (rouse/async/waiter_list.hpp); one served first resumes with its permit.
// - close(): every queued waiter and every later acquire / try_acquire gets
//   "closed"; permits assigned to the waiters it fails go back to the count.
//   release() after close() still counts (available() stays exact).
//
// Lifecycle and rules: any task or thread may acquire or release at any
// time; release(n) may add permits nobody acquired (a semaphore used as a
// counter). A task resumes on the executor of its promise's environment,
// never inside release() (without an executor, inline on the releaser's
// thread: coroutine_waker's fallback). Destroy the semaphore only when
// nobody waits and no call is running (debug builds check the queue).
// Such an inline waiter may destroy other waiters' frames, the one whose
// stop gave back the permits that let it in included, when that stop found
// it waiting: a stopped waiter is released (resumed, as stopped) before the
// waiters its permits served are woken (async/waiter_list.hpp). Not when
// the stop raced its co_await while it was still suspending (its claim then
// runs before the wait is armed, and the waiter resumes only after its
// await_suspend returns), and not the one whose timeout did: a timed-out
// wait resumes through its executor, never inside the timer's fire
// (timeout.hpp), so its wake is still in flight while the waiters it served
// run, and destroying its frame then is the misuse docs/async.md names.
//
// acquire(0) and its other forms take nothing and wait for nobody: they
// complete at once with an empty-count permit (unless closed).
//
// Misuse: co_await-ing one acquire() twice, or moving it once awaited
// (debug: diagnosed); more than max_permits (2^27 - 1) in the count or in
// one request (debug: diagnosed); destroying the semaphore with waiters
// (debug: diagnosed); a permit that outlives its semaphore (debug builds
// count the permits alive and diagnose it when the semaphore goes; release
// builds do not: the permit's release then touches freed memory, as a
// std::lock_guard outliving its mutex would). A request for more permits
// than will ever exist waits until close().
//
// sizeof: semaphore 24 bytes (32 in debug builds: the permits alive); an
// acquire() awaitable 240 bytes in the awaiting frame, of which a ready acquire writes the first 40 (semaphore,
// request, flag): the queued wait (list_awaitable: waiter, node, arming
// guard, stop callback; 200 bytes) is built in place only when it must
// wait; no allocation per wait. Fairness: strictly FIFO (above).
// Cost with nobody waiting: acquire / try_acquire are one load and one
// compare-exchange, release one load and one compare-exchange; no lock, no
// system call. Waiting costs the queue's lock twice (queue, serve; a release that
// finds the queue non-empty hands its permits over under the lock without
// touching the word) and the claim; the waker runs outside the lock.
// Blocking forms: acquire_blocking(n), try_acquire_for(n, d),
// try_acquire_until(n, t) (never early), a thread parked in the same queue.
// Across processes: no.
//
// A released object may vanish (docs/design.md, rule 7): the queue's lock is a bit
// of the state word, so a serve, a leave or a close publishes its permits
// (or C) and drops the lock in one RMW, its last touch of the semaphore;
// then it wakes the served waiters from a chain it holds and, if somebody
// sleeps for the lock, makes a futex wake on the word's address. A release
// puts its permits in the word only with a compare-exchange that finds Q
// clear (its last touch); with Q set it serves under the lock with the
// permits in hand, never through the word, since permits in the word may
// be handed on by another serve (and let a waiter through that destroys
// the semaphore) before this release's serve could take the lock.
//
// State word (32 bits)
//   closed   (bit 0)    C: close() was called
//   queued   (bit 1)    Q: the queue is not empty (changed under L only)
//   locked   (bit 2)    L: the queue's lock is held
//   sleepers (bit 3)    W: somebody may sleep on the word, waiting for L
//   permits  (bits 4..) P: free permits, assigned to nobody (max_permits)
//
//   acquire fast path:   !C && !Q && P >= n: CAS P -= n        (one CAS)
//   release:             Q seen: lock, serve with the n in hand; else CAS
//                        P += n while Q is clear (Q set meanwhile: the CAS
//                        fails, and the retry sees Q)
//   lock (L):            CAS L: 0 -> 1; spin, then W := 1 and sleep
//   serve (under L):     take P out of the word (if any); walk the queue
//                        from the oldest: give each what it still needs
//                        (partial assignment); a waiter that has all it
//                        asked is unlinked and claimed; stop at the first
//                        one not fully served
//   unlock (L):          one RMW: L, W := 0; P += what the serve has left
//                        (only when the queue is empty); Q := 0 when the
//                        queue is empty; then wake one L sleeper if W was set
//   queue (under L):     if the queue is empty: take min(P, n) and set Q
//                        (one CAS), served already: do not queue; else take
//                        nothing (the pending serve gives P to the oldest)
//   leave (under L):     unlink, then serve with what was assigned to it
//   close (under L):     claim every queued waiter (closed); the unlock sets
//                        C, gives their assigned permits back to P, Q := 0
// Invariants: Q <=> the queue is not empty (outside L); never Q && P > 0
// outside L (a release adds to P only with Q clear, the first queuer takes
// P in the CAS that sets Q, an unlock adds to P only when it clears Q), so
// a fast path that sees Q takes nothing, and one that sees !Q barges past
// nobody.
//
// Claims (rouse/detail/waiter_queue.hpp): a fully served waiter is claimed
// through its node (a transferable claim: if its frame is destroyed before
// it resumes, it releases its n permits); close claims `closed`; a waiter
// that leaves (stop, destroyed frame, timeout) claims itself `aborted` and
// then, under the lock, unlinks itself and serves with its assigned
// permits. A serve that meets an aborted waiter still linked unlinks it
// and gives it nothing more; what it held, its own leave returns (it reads
// the count under the lock, after every serve that assigned to it).
//
// Memory ordering: everything a releaser did before release() (a permit's
// destruction, an unlock) happens-before the return of the acquire that
// gets those permits, and everything before close() happens-before an
// acquire that returns closed (the fast path reads C with acquire). The word alone carries the fast path: release's
// CAS is release, the acquire's CAS acquire (an RMW continues the
// release sequence, so a later acquirer sees every releaser's writes).
// Everything else passes through the queue's lock (L: acquire CAS, release
// RMW): a serve's drain is acquire, and a served waiter sees the serve
// through its claim (acq_rel) and the waker's release (waiter_queue.hpp).
// No Dekker pairing is needed: Q lives in the word that the releaser RMWs,
// so either the releaser's CAS sees Q (and serves under the lock, after
// the push), or the queuer's CAS sees the released permits.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "rouse/async/waiter_list.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waiter_queue.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::async {

class semaphore;
class mutex;
class shared_mutex;

namespace detail {

// What one acquire asked for and got; in the waiting frame. The queue's
// node points at it (packet); `remaining` and `closed` are written by a
// serve / close under the queue's lock (or by the waiter before it queues).
struct semaphore_request {
  std::size_t n = 0;
  ::rouse::detail::unsync<std::size_t> remaining{0};
  ::rouse::detail::unsync<bool> closed{false};
  std::size_t assigned() noexcept { return n - ::rouse::detail::unsync_ref(remaining); }
};

// One queued acquire: the Wait of list_awaitable<semaphore, semaphore_wait>
// (rouse/async/waiter_list.hpp) and a thread's blocking acquire. The tag is
// the address of the request.
class semaphore_wait {
 public:
  enum class start_result : std::uint8_t {
    suspended,  // queued: a serve, a close or a cancel ends the wait
    withdrew,   // served (or closed) while queueing: never linked
    claimed,    // (never: queueing is one step under the lock)
  };

  semaphore_wait(semaphore& s, std::uintptr_t tag) noexcept : s_(&s), waiter_(), node_(&waiter_, to_packet(tag)) {}
  semaphore_wait(semaphore& s, std::uintptr_t tag, ::rouse::detail::waker w) noexcept
      : s_(&s), waiter_(std::move(w)), node_(&waiter_, to_packet(tag)) {}
  semaphore_wait(const semaphore_wait&) = delete;
  semaphore_wait& operator=(const semaphore_wait&) = delete;

  semaphore& primitive() const noexcept { return *s_; }
  std::uintptr_t tag() noexcept { return reinterpret_cast<std::uintptr_t>(node_.packet()); }
  semaphore_request& request() noexcept { return *static_cast<semaphore_request*>(node_.packet()); }

  inline check_result try_acquire() noexcept;
  inline start_result start() noexcept;

  // A stop request (see list_wait::try_abort): won, it leaves, returning
  // what was assigned, then runs won() and releases the waiter, and only
  // then wakes the waiters that what it returned served: one of them,
  // resumed inline (no executor), may destroy this waiter's frame, which
  // by then nothing touches any more.
  template <class Won>
  bool try_abort(Won&& won) noexcept {
    if (!waiter_.try_claim(::rouse::detail::waiter::aborted)) return false;
    leave_then([&]() noexcept {
      won();
      waiter_.wake();  // the release: nothing of *this after it
    });
    return true;
  }
  // The waiter gives up (destroyed frame): true when it left before it was
  // served or closed; false when it was claimed: then a full serve's
  // permits are released (passed on).
  inline bool cancel() noexcept;

  // Who claimed the waiter (its node's id: served; closed; aborted).
  std::uintptr_t claim() const noexcept { return waiter_.claim(); }

  // A thread's sleep after start() returned suspended. Returns true when it
  // was served or closed (request().closed tells), false on a timeout (it
  // left, returning what was assigned).
  template <class Deadline>
  bool wait(const Deadline& deadline) noexcept {
    std::uintptr_t const c = waiter_.wait(deadline, ::rouse::detail::event_spin);
    if (c != ::rouse::detail::waiter::aborted) return true;
    leave();
    return false;
  }

 private:
  friend class ::rouse::async::semaphore;
  static void* to_packet(std::uintptr_t tag) noexcept { return reinterpret_cast<void*>(tag); }
  // After its own claim won: unlink and serve with what it held.
  inline void leave() noexcept;
  // leave(), running `between` after the queue's unlock and before the
  // waiters it served are woken; nothing of *this is touched after it.
  template <class Between>
  inline void leave_then(Between&& between) noexcept;

  semaphore* s_;
  ::rouse::detail::waiter waiter_;
  ::rouse::detail::waiter_node node_;
};

}  // namespace detail

class semaphore {
 public:
  class permit;
#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  class acquire_awaitable;
#endif

  // The largest count: P has 28 bits; one is kept as headroom.
  static constexpr std::size_t max_permits = (std::size_t{1} << 27) - 1;

  explicit semaphore(std::size_t permits) noexcept : state_(static_cast<std::uint32_t>(permits) * unit) {
    ROUSE_CHECK_USAGE(permits <= max_permits, "rouse::async::semaphore", "more than max_permits permits");
  }
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  ~semaphore() {
    ROUSE_CHECK_USAGE(list_.empty(), "rouse::async::semaphore", "destroyed while a waiter is queued");
#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_MODEL_RELACY)
    ROUSE_CHECK_USAGE(permits_alive_.load(std::memory_order_relaxed) == 0, "rouse::async::semaphore",
                      "destroyed while a permit of it is alive (its release would touch freed memory; forget() or "
                      "release() it first)");
#endif
  }

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES
  // `co_await sem.acquire(n)` -> permit (empty when closed).
  [[nodiscard]] inline acquire_awaitable acquire(std::size_t n = 1) noexcept;
#endif
  // n permits now, or an empty permit (not available, somebody queued, or
  // closed: is_closed() tells).
  [[nodiscard]] inline permit try_acquire(std::size_t n = 1) noexcept;
  // A plain thread's acquire; an empty permit when closed.
  [[nodiscard]] inline permit acquire_blocking(std::size_t n = 1) noexcept;
  // Empty when `d` / `t` passed first (never early) or when closed.
  template <class Rep, class Period>
  [[nodiscard]] permit try_acquire_for(std::size_t n, const std::chrono::duration<Rep, Period>& d) noexcept;
  template <class Clock, class Duration>
  [[nodiscard]] permit try_acquire_until(std::size_t n, const std::chrono::time_point<Clock, Duration>& t) noexcept;

  // Adds n permits: to the oldest waiters first, the rest to the count.
  void release(std::size_t n = 1) noexcept {
    if (n == 0) return;
    ROUSE_CHECK_USAGE(n <= max_permits, "rouse::async::semaphore", "more than max_permits permits");
    std::uint32_t const add = static_cast<std::uint32_t>(n);
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      // Somebody queued: hand the permits over under the lock; they never
      // pass through the word. (Put in the word while Q is set, they could
      // be handed on by another serve before this call's own serve took
      // the lock, and the waiter they let through destroy the semaphore
      // first: rule 7.)
      if ((s & queued) &&
          !::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_semaphore_release_ignores_queued))
        return serve_slow(add);
      ROUSE_CHECK_USAGE((s >> shift) + n <= max_permits, "rouse::async::semaphore", "more than max_permits permits");
      if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_semaphore_release_adds_then_serves)) {
        // BROKEN on purpose (model tests only): P += n whatever Q says, then
        // serve if Q was set: touches the semaphore after its permits may
        // have let a waiter through.
        s = state_.fetch_add(add * unit, std::memory_order_release);
        if (s & queued) serve_slow(0);
        return;
      }
      // P += n while Q is clear: the last touch. Ordering: release: what the
      // releaser wrote reaches the acquirer that takes these permits (its
      // CAS is acquire; or the lock); relaxed on failure: the loop re-reads.
      if (state_.compare_exchange_weak(s, s + add * unit, std::memory_order_release, std::memory_order_relaxed)) return;
    }
  }

  // Fails every queued waiter and every later acquire with "closed".
  void close() noexcept {
    chain woken;
    lock_queue();
    std::uint32_t back = 0;
    for (::rouse::detail::waiter_node* n = list_.front(); n;) {
      ::rouse::detail::waiter_node* const next = node_list::next_of(*n);
      list_.erase(*n);
      // A waiter claimed here is owed "closed"; one that claimed itself
      // (leaving) returns what it holds in its own leave().
      if (n->owner()->try_claim(::rouse::detail::waiter::closed)) {
        auto& r = *static_cast<detail::semaphore_request*>(n->packet());
        back += static_cast<std::uint32_t>(r.assigned());
        ::rouse::detail::unsync_ref(r.remaining) = r.n;
        ::rouse::detail::unsync_ref(r.closed) = true;
        woken.append(*n);
      }
      n = next;
    }
    unlock_queue(back, closed);  // C := 1, Q := 0, P += back; the last touch
    woken.wake();
  }

  // Free permits (not counting those assigned to queued waiters).
  [[nodiscard]] std::size_t available() const noexcept { return state_.load(std::memory_order_acquire) >> shift; }
  [[nodiscard]] bool is_closed() const noexcept { return (state_.load(std::memory_order_acquire) & closed) != 0; }

 private:
  friend class detail::semaphore_wait;
  friend class mutex;
  friend class shared_mutex;
  using node_list = ::rouse::detail::waiter_list;

  static constexpr std::uint32_t closed = 1;         // C
  static constexpr std::uint32_t queued = 2;         // Q
  static constexpr std::uint32_t locked = 4;         // L
  static constexpr std::uint32_t lock_sleepers = 8;  // W
  static constexpr unsigned shift = 4;
  static constexpr std::uint32_t unit = std::uint32_t{1} << shift;  // one permit in P
  static constexpr std::uint32_t flags = unit - 1;

  enum class take_result : std::uint8_t { taken, unavailable, was_closed };

  // The fast path: one load and one CAS when free and nobody queues.
  take_result try_take(std::size_t n) noexcept {
    ROUSE_CHECK_USAGE(n <= max_permits, "rouse::async::semaphore", "a request for more than max_permits permits");
    // Ordering: acquire (also on a failed CAS below): a closed result seen
    // here happens-after close(), whose release RMW set C.
    std::uint32_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if (s & closed) [[unlikely]]
        return take_result::was_closed;
      if (n == 0) return take_result::taken;  // nothing to take: nobody to wait behind
      if ((s & queued) || (s >> shift) < n) return take_result::unavailable;
      // P -= n (L and W as they are). Ordering: acquire: pairs with
      // release()'s CAS and unlock_queue()'s release.
      if (state_.compare_exchange_weak(s, s - static_cast<std::uint32_t>(n) * unit, std::memory_order_acquire,
                                       std::memory_order_acquire))
        return take_result::taken;
    }
  }

  // The waiters a serve or close claimed, woken after the unlock.
  struct chain {
    ::rouse::detail::waiter_node* head = nullptr;
    ::rouse::detail::waiter_node* tail = nullptr;
    void append(::rouse::detail::waiter_node& n) noexcept { node_list::chain_append(head, tail, n); }
    void wake() noexcept { node_list::wake_chain(head); }
    // wake(), `first` run before it with the chain already withdrawable.
    template <class First>
    void wake_after(First&& first) noexcept {
      node_list::wake_chain_after(head, static_cast<First&&>(first));
    }
  };

  // The queue's lock: L in the word, so that the unlock and the permits'
  // publication are one RMW, the last touch of the semaphore (rule 7).
  // A futex mutex over L/W (W: somebody may sleep on the word for L): spin
  // a little, then mark W and sleep; a sleeper that wakes takes L with W
  // set again (it cannot know whether others still sleep), so each unlock
  // that finds W wakes one.
  void lock_queue() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    // L: 0 -> 1. Ordering: acquire: pairs with unlock_queue()'s release
    // (the queue and the requests the last holder wrote).
    if ((s & locked) == 0 &&
        state_.compare_exchange_weak(s, s | locked, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]]
      return;
    lock_queue_slow(s);
  }
  [[gnu::noinline]] void lock_queue_slow(std::uint32_t s) noexcept {
    std::uint32_t keep = 0;  // W, once this thread has slept
    ::rouse::detail::spinner polls(::rouse::detail::event_spin);
    for (;;) {
      if ((s & locked) == 0) {
        // L: 0 -> 1. Ordering: acquire: pairs with unlock_queue()'s release
        // (the queue and the requests the last holder wrote).
        if (state_.compare_exchange_weak(s, s | locked | keep, std::memory_order_acquire, std::memory_order_relaxed))
          return;
        continue;
      }
      if (polls.next()) {
        s = state_.load(std::memory_order_relaxed);
        continue;
      }
      // W := 1, then sleep while the word is unchanged. Ordering: relaxed:
      // W only asks the holder's unlock for a wake.
      if ((s & lock_sleepers) == 0 &&
          !state_.compare_exchange_weak(s, s | lock_sleepers, std::memory_order_relaxed, std::memory_order_relaxed))
        continue;
      ::rouse::detail::wait(state_, s | lock_sleepers);
      keep = lock_sleepers;
      s = state_.load(std::memory_order_relaxed);
    }
  }
  // Drops L (and W), adds `hand` permits, sets `set`, and clears Q when the
  // queue is empty: one RMW, after which the semaphore may be gone; then a
  // futex wake on its address if somebody sleeps for L (a wake-up that
  // reaches a reused address is spurious, rule 7).
  void unlock_queue(std::uint32_t hand, std::uint32_t set = 0) noexcept {
    std::uint32_t const clear = locked | lock_sleepers | (list_.empty() ? queued : 0);
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    // L, W -> 0; Q -> 0 if empty; P += hand. Ordering: release: pairs with
    // lock_queue()'s acquire, and with a fast acquirer's CAS for the permits.
    while (!state_.compare_exchange_weak(s, ((s & ~clear) | set) + hand * unit, std::memory_order_release,
                                         std::memory_order_relaxed)) {
    }
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_semaphore_unlock_rereads_word))
      (void)state_.load(std::memory_order_relaxed);  // BROKEN on purpose (model tests only): a read after the release
    if (s & lock_sleepers) ::rouse::detail::wake_one(state_);
  }

  // Queues a request (under the lock): see "queue" above.
  detail::semaphore_wait::start_result enqueue(detail::semaphore_wait& w) noexcept {
    using sr = detail::semaphore_wait::start_result;
    detail::semaphore_request& r = w.request();
    lock_queue();
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if (s & closed) {
      // Closed (a queue still linked holds only waiters that are leaving:
      // close() claimed every live one), so this request fails too.
      ::rouse::detail::unsync_ref(r.closed) = true;
      unlock_queue(0);
      return sr::withdrew;
    }
    if (list_.empty()) {
      std::size_t const need = ::rouse::detail::unsync_ref(r.remaining);
      std::uint32_t take = 0;
      for (;;) {
        std::uint32_t const free = s >> shift;
        take = free < need ? free : static_cast<std::uint32_t>(need);
        // P -= take; Q := 1 unless served in full. Ordering: acquire: the
        // releasers' writes with the permits (Q is ordered by the lock).
        std::uint32_t const to = (s - take * unit) | (take == need ? 0 : queued);
        if (state_.compare_exchange_weak(s, to, std::memory_order_acquire, std::memory_order_relaxed)) break;
      }
      ::rouse::detail::unsync_ref(r.remaining) = need - take;
      if (need == take) {
        unlock_queue(0);
        return sr::withdrew;
      }
    }
    list_.push_back(w.node_);
    unlock_queue(0);
    return sr::suspended;
  }

  // Under the lock: serves the queue with `hand` permits plus those in the
  // word; claimed waiters go to `woken` (woken after the unlock). Returns
  // what is left, for unlock_queue() to publish: nonzero only when the
  // queue is empty.
  std::uint32_t serve_locked(std::uint32_t hand, chain& woken) noexcept {
    // Take P out of the word (keep the flags), when there are any: P grows
    // outside the lock only by a release's CAS that finds Q clear, so a
    // release after this load sees Q (still set: the queue is not empty,
    // and it serves after us) or finds the queue empty. Ordering: acquire: the
    // releasers' writes travel on with the permits (the load is relaxed: a
    // zero carries nothing).
    if (state_.load(std::memory_order_relaxed) >> shift)
      hand += state_.fetch_and(flags, std::memory_order_acquire) >> shift;
    while (hand > 0) {
      ::rouse::detail::waiter_node* const n = list_.front();
      if (n == nullptr) break;
      if (!n->owner()->is_waiting()) {  // leaving (aborted): its leave() returns what it holds
        list_.erase(*n);
        continue;
      }
      auto& r = *static_cast<detail::semaphore_request*>(n->packet());
      std::size_t const remaining = ::rouse::detail::unsync_ref(r.remaining);
      std::uint32_t const give = hand < remaining ? hand : static_cast<std::uint32_t>(remaining);
      if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_semaphore_serve_skips_partial) &&
          give < remaining) {
        hand = 0;  // BROKEN on purpose (model tests only): no partial assignment, and the hand is lost
        break;
      }
      ::rouse::detail::unsync_ref(r.remaining) = remaining - give;
      hand -= give;
      if (remaining != give) break;  // the oldest keeps what it got and waits for the rest
      list_.erase(*n);
      // Claimed through its node (transferable: n permits); lost, it claimed
      // itself meanwhile and its leave() returns them.
      if (n->owner()->try_claim(n->id())) woken.append(*n);
    }
    // Drop dead nodes at the front, so that Q tells whether anybody waits.
    while (list_.front() && !list_.front()->owner()->is_waiting()) list_.erase(*list_.front());
    return hand;
  }

  [[gnu::noinline]] void serve_slow(std::uint32_t hand) noexcept {
    chain woken;
    lock_queue();
    unlock_queue(serve_locked(hand, woken));
    woken.wake();  // outside the lock
  }

  template <class Deadline>
  std::size_t acquire_blocking_until(std::size_t n, const Deadline& deadline, bool& was_closed) noexcept;

  // Permits of this semaphore alive (debug builds; not under a model, where
  // the count's RMWs would only thin out the interleavings searched): one
  // must not outlive it.
  void count_permits([[maybe_unused]] int d) noexcept {
#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_MODEL_RELACY)
    // Ordering: relaxed: a count the destructor reads once every permit's
    // owner is done with it (the caller's own order brings it there).
    permits_alive_.fetch_add(d, std::memory_order_relaxed);
#endif
  }

  ::rouse::detail::atomic<std::uint32_t> state_;
  node_list list_;
#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_MODEL_RELACY)
  ::rouse::detail::atomic<std::int64_t> permits_alive_{0};
#endif
};

// ---- permit ------------------------------------------------------------------

// n permits of one semaphore (or none). Movable, not copyable; releases
// them when destroyed.
class semaphore::permit {
 public:
  permit() noexcept = default;
  permit(permit&& o) noexcept : s_(std::exchange(o.s_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  permit& operator=(permit&& o) noexcept {
    if (this != &o) {
      release();
      s_ = std::exchange(o.s_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  permit(const permit&) = delete;
  permit& operator=(const permit&) = delete;
  ~permit() { release(); }

  // False: the acquire found the semaphore closed (or try_acquire failed).
  explicit operator bool() const noexcept { return s_ != nullptr; }
  [[nodiscard]] std::size_t count() const noexcept { return n_; }
  [[nodiscard]] semaphore* source() const noexcept { return s_; }
  // Drops the permits without releasing them (the count shrinks for good).
  void forget() noexcept {
    if (semaphore* const s = std::exchange(s_, nullptr)) s->count_permits(-1);
    n_ = 0;
  }
  // Releases now.
  void release() noexcept {
    if (semaphore* const s = std::exchange(s_, nullptr)) {
      s->count_permits(-1);
      s->release(std::exchange(n_, 0));
    }
  }

 private:
  friend class semaphore;
  permit(semaphore& s, std::size_t n) noexcept : s_(&s), n_(n) { s.count_permits(1); }
  semaphore* s_ = nullptr;
  std::size_t n_ = 0;
};

// ---- the wait ----------------------------------------------------------------

namespace detail {

inline check_result semaphore_wait::try_acquire() noexcept {
  semaphore_request& r = request();
  switch (s_->try_take(r.n)) {
    case semaphore::take_result::taken:
      ::rouse::detail::unsync_ref(r.remaining) = 0;
      return check_result::ready_with_permit;
    case semaphore::take_result::was_closed:
      ::rouse::detail::unsync_ref(r.closed) = true;
      return check_result::ready;
    case semaphore::take_result::unavailable:
      break;
  }
  return check_result::not_ready;
}

inline semaphore_wait::start_result semaphore_wait::start() noexcept { return s_->enqueue(*this); }

inline void semaphore_wait::leave() noexcept {
  leave_then([]() noexcept {});
}

template <class Between>
inline void semaphore_wait::leave_then(Between&& between) noexcept {
  semaphore::chain woken;
  s_->lock_queue();
  s_->list_.remove(node_);
  // Read under the lock: every serve that assigned to it came before.
  std::uint32_t const held = static_cast<std::uint32_t>(request().assigned());
  ::rouse::detail::unsync_ref(request().remaining) = request().n;
  std::uint32_t const back =
      ::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_semaphore_leave_keeps_assigned)
          ? 0  // BROKEN on purpose (model tests only): what was assigned is not returned
          : held;
  s_->unlock_queue(s_->serve_locked(back, woken));
  // `between` may resume the stopped waiter inline, which may destroy a
  // waiter of `woken`: it runs with the chain where that frame's cancel
  // finds it (waiter_list::withdraw_claimed()).
  woken.wake_after(static_cast<Between&&>(between));
}

inline bool semaphore_wait::cancel() noexcept {
  if (waiter_.try_claim(::rouse::detail::waiter::aborted)) {
    leave();
    return true;
  }
  // (Taken out of a chain this thread is waking instead, when that is where
  // its claim came from: see waiter_list::withdraw_claimed().)
  if (!::rouse::detail::waiter_list::withdraw_claimed(node_)) waiter_.wait_released();
  // Fully served, never resumed: the permits go on (rule 6). Closed or
  // stopped: nothing is held.
  if (waiter_.claim() == node_.id()) s_->release(request().n);
  return false;
}

}  // namespace detail

// ---- blocking forms ----------------------------------------------------------

template <class Deadline>
std::size_t semaphore::acquire_blocking_until(std::size_t n, const Deadline& deadline, bool& was_closed) noexcept {
  was_closed = false;
  detail::semaphore_request r;
  r.n = n;
  ::rouse::detail::unsync_ref(r.remaining) = n;
  detail::semaphore_wait w(*this, reinterpret_cast<std::uintptr_t>(&r));
  if (w.start() == detail::semaphore_wait::start_result::suspended && !w.wait(deadline)) return 0;
  was_closed = ::rouse::detail::unsync_ref(r.closed);
  return was_closed ? 0 : n;
}

inline semaphore::permit semaphore::try_acquire(std::size_t n) noexcept {
  return try_take(n) == take_result::taken ? permit(*this, n) : permit();
}

inline semaphore::permit semaphore::acquire_blocking(std::size_t n) noexcept {
  switch (try_take(n)) {
    case take_result::taken:
      return permit(*this, n);
    case take_result::was_closed:
      return permit();
    case take_result::unavailable:
      break;
  }
  bool c = false;
  (void)acquire_blocking_until(n, ::rouse::detail::no_deadline{}, c);
  return c ? permit() : permit(*this, n);
}

template <class Rep, class Period>
semaphore::permit semaphore::try_acquire_for(std::size_t n, const std::chrono::duration<Rep, Period>& d) noexcept {
  return try_acquire_until(n, ::rouse::platform::deadline_after(d));
}

template <class Clock, class Duration>
semaphore::permit semaphore::try_acquire_until(std::size_t n,
                                               const std::chrono::time_point<Clock, Duration>& t) noexcept {
  switch (try_take(n)) {
    case take_result::taken:
      return permit(*this, n);
    case take_result::was_closed:
      return permit();
    case take_result::unavailable:
      break;
  }
  auto const deadline = ::rouse::detail::deadline_at(t);
  if (deadline.expired()) return permit();
  bool c = false;
  std::size_t const got = acquire_blocking_until(n, deadline, c);
  return got == n && !c ? permit(*this, n) : permit();
}

// ---- the awaitable -----------------------------------------------------------

#if ROUSE_DETAIL_ASYNC_LIST_COROUTINES

// `co_await sem.acquire(n)`. Holds only the request until it must wait;
// then it builds the queued wait (list_awaitable: its waiter, node, arming
// guard and stop callback) in place. Movable until awaited.
class semaphore::acquire_awaitable {
  using inner = list_awaitable<semaphore, detail::semaphore_wait>;

 public:
  using rouse_affine = void;
  acquire_awaitable(semaphore& s, std::size_t n) noexcept : s_(&s) {
    req_.n = n;
    ::rouse::detail::unsync_ref(req_.remaining) = n;
  }
  acquire_awaitable(acquire_awaitable&& o) noexcept : acquire_awaitable(*o.s_, o.req_.n) {
    ROUSE_CHECK_USAGE(!o.waiting_ && !o.resumed_, "rouse::async::semaphore::acquire_awaitable",
                      "moved after it was awaited");
  }
  acquire_awaitable(const acquire_awaitable&) = delete;
  acquire_awaitable& operator=(const acquire_awaitable&) = delete;
  ~acquire_awaitable() {
    if (waiting_) wait().~inner();
  }

  bool await_ready() noexcept {
    ROUSE_CHECK_USAGE(!waiting_ && !resumed_, "rouse::async::semaphore::acquire_awaitable", "awaited twice");
    switch (s_->try_take(req_.n)) {
      case take_result::taken:
        ::rouse::detail::unsync_ref(req_.remaining) = 0;
        return true;
      case take_result::was_closed:
        ::rouse::detail::unsync_ref(req_.closed) = true;
        return true;
      case take_result::unavailable:
        break;
    }
    return false;
  }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    ROUSE_CHECK_USAGE(!waiting_, "rouse::async::semaphore::acquire_awaitable", "awaited twice");
    ::new (static_cast<void*>(storage_)) inner(*s_, reinterpret_cast<std::uintptr_t>(&req_));
    waiting_ = true;
    return wait().await_suspend(h);
  }

  // The permit; empty when the semaphore was closed. Throws
  // operation_stopped when stopped and the promise has no unhandled_stopped().
  permit await_resume() {
    resumed_ = true;
    if (waiting_) wait().await_resume();
    if (::rouse::detail::unsync_ref(req_.closed)) return permit();
    return permit(*s_, req_.n);
  }

 private:
  inner& wait() noexcept { return *std::launder(reinterpret_cast<inner*>(storage_)); }

  semaphore* s_;
  detail::semaphore_request req_;
  bool waiting_ = false;
  bool resumed_ = false;  // its await ended (a second one is misuse)
  alignas(inner) unsigned char storage_[sizeof(inner)];
};

inline semaphore::acquire_awaitable semaphore::acquire(std::size_t n) noexcept { return acquire_awaitable(*this, n); }

#endif  // ROUSE_DETAIL_ASYNC_LIST_COROUTINES

#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(semaphore) == (ROUSE_DEBUG_CHECKS ? 32 : 24));
static_assert(sizeof(semaphore::acquire_awaitable) == 240);
#endif

}  // namespace rouse::async
