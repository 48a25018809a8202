// rouse/async/diatomic_waker.hpp — a two-slot waker: a single-consumer
// eventcount whose producers never block and whose idle notify can be a load.
//
//   diatomic_waker   the state word, two waker slots, and the consumer's wait
//                    (wait_until for a coroutine, wait_until_blocking for a thread)
//   wake_sink        owns a diatomic_waker (the consumer's end; not movable)
//   wake_source      a copyable pointer to one (a producer's end): notify()
//   idle_notify      how producers may notify a waker nobody registered on:
//                    rmw (one RMW, the default) or load (a load; see below)
//
//   rouse::async::wake_sink sink;                 // consumer
//   auto src = sink.source();                     T v = co_await sink.wait_until(
//   // producer                                          [&] { return queue.try_pop(); });
//   queue.push(x);  src.notify();                 // try_pop() -> std::optional<T>
//
// Purpose: turn a non-blocking structure with one consumer (an MPSC queue, a
// counter, a flag) into one the consumer can wait on. The consumer checks its
// predicate, registers, re-checks, and sleeps only if it still fails; a
// producer changes the structure, then notifies. The design is the
// diatomic-waker crate's (v0.2): two slots instead of a lock, so the sink
// always writes the slot notifiers are not reading, and notifiers never wait
// for each other: a notifier that finds the notification lock taken sets N,
// asking the holder to notify once more.
//
// Lifecycle and rules
// - One registrant (the consumer): register_waker(), unregister(),
//   wait_until(), wait_until_blocking() are called by one party at a time,
//   and one wait at a time (a wait that starts while another is in progress
//   is diagnosed in debug builds). notify*() may be called by any number of
//   threads at any time.
// - register_waker(w) stores a clone of w; notifiers call wake_by_ref() on
//   it, possibly several times, possibly after unregister() or a later
//   register_waker() returned (a notifier that took the lock before). The
//   clone stays cached (re-registering a waker that will_wake() it is one
//   RMW) until a different waker replaces it or the diatomic_waker dies. So
//   a waker given to register_waker() must stay valid as long as its clone
//   may be woken: use a reference-counted waker (make_shared_waker) or one
//   whose referent outlives the diatomic_waker. wait_until and
//   wait_until_blocking need none of this: they register the
//   diatomic_waker's own relay waker, and the relay hands a wake-up to the
//   wait in progress through a one-winner claim (the claim word below), so
//   neither a late notifier nor a stop request can reach a finished wait.
// - wait_until(pred) / wait_until_blocking(pred): pred() returns bool, or
//   std::optional<T> (the wait then returns the T). pred runs on the
//   consumer's side only: in the awaiting coroutine's executor, or, without
//   one, on the thread that resumes it (the notifier's or the stop
//   requester's, inside notify() / request_stop(): rouse's documented
//   fallback). A ready predicate wins over a stop request; a stop request
//   before pred is called stops the wait without calling it.
// - Stop: wait_until honours the awaiting promise's get_stop_token(get_env(
//   promise)). A stopped wait unregisters and completes as stopped: through
//   the promise's unhandled_stopped() when it has one
//   (resume_target::stops_in_place()), else by resuming the coroutine, whose
//   co_await then throws rouse::async::operation_stopped.
// - Destruction: only when no wait is in progress (debug builds check this)
//   and every notify*() that may touch it has returned (as eventcount and
//   std::condition_variable ask: a notify is not a release, the producer's
//   own publish is). Destroying a coroutine suspended in wait_until is
//   allowed only when no wake-up for it is in flight (it withdraws its claim
//   if it still can). Not movable (the relay and the poller point to it).
//
// sizeof: 64 bytes on 64-bit (state and claim words, two 16-byte slots, the
// current wait, the poller, the mode); static_assert below.
// Fairness: n/a (one consumer). Across processes: no.
//
// Costs: atomic read-modify-writes, and waker calls (clone / drop /
// wake_by_ref; counted by tests/unit/async_diatomic_waker_test).
//   notify(), nobody registered            1 RMW (a compare-exchange that
//                                          changes nothing: it orders the
//                                          publish against the next register)
//   notify_if_registered(), nobody         0 RMW: one load (idle_notify::load)
//   notify_after_seq_cst_rmw(), nobody     0 RMW: one seq_cst load (a plain
//                                          load on x86; either mode)
//   notify(), registered                   2 RMW + 1 wake_by_ref; +1 RMW and
//                                          +1 wake_by_ref per N served
//   register_waker(), cached waker         1 RMW, no clone
//   register_waker(), new waker            1 RMW (2 if a newer waker is still
//                                          pending), 1 clone, 1 drop if the
//                                          slot held one
//   unregister()                           1 RMW
//   wait_until / wait_until_blocking:      0 RMW when pred() is ready at once;
//     a wait that sleeps once              2 RMW to sleep (register, arm),
//                                          1 more to leave if it registered
//                                          (unregister); a re-poll after a
//                                          wake adds 1 (notified -> arming)
//   a notify that wakes a wait             + 1 RMW (the relay's claim), then
//                                          the executor's schedule or the
//                                          thread's unpark
//   idle_notify::load: every registration also runs asymmetric_heavy_fence()
//   (membarrier: a system call, a few microseconds), so choose it where the
//   consumer sleeps rarely and producers notify often.
//   The first coroutine wait that sleeps allocates the poller (one small
//   coroutine frame per diatomic_waker, reused by every later wait).
//
// State word (the crate's letters)
//   I  bit 0   index of the current slot (the one a lock holder reads)
//   U  bit 1   a newer waker sits in slot[1-I]; the next lock taker flips I
//   R  bit 2   a waker is registered and wants a notification
//   L  bit 3   a notifier holds the notification lock (it reads slot[I])
//   N  bit 4   a notifier found L set while R was set: notify once more
//   Invariant: N => L && R. slot[I] is read-only while L is set; slot[1-I]
//   belongs to the sink unless U && R (then a lock taker may flip I to it).
//
//   method            before              after                    effect
//   register (cached) any                 | R                      -
//   register (new)    U && R              & ~(R|N), then | U|R     write slot[1-I]
//   register (new)    otherwise           | U|R                    write slot[1-I]
//   unregister        any                 & ~(R|N)                 -
//   notify            R, !L               ^ (R|L), U: ^ (U|I)      wake_by_ref slot[I]
//   notify            R, L                | N                      the holder wakes again
//   notify            !R                  unchanged (the RMW still runs)
//   notify_if_reg.    !R                  (a load: no change)
//   notify_after_seq_cst_rmw  !R          (a seq_cst load: no change)
//   unlock            L, !N               & ~L                     -
//   unlock            L, N                & ~(N|R), U: ^ (U|I)     wake_by_ref slot[I] again
//
// Claim word (the relay's one-winner hand-over to the wait in progress)
//   idle     = 0  no wait in progress (a late relay call finds nothing)
//   arming   = 1  the consumer runs: registered, re-checking its predicate
//   notified = 2  a wake-up came while the consumer runs (or released it):
//                 it must poll again
//   armed    = 3  the consumer sleeps; the first claimer (relay or stop)
//                 owns its release
//   S        = 4  (with arming / notified) a stop was requested: the
//                 consumer stops at its next step
//
//   who        before               after             then
//   consumer   idle                 arming            (begin: a store)
//   consumer   arming               armed             sleep
//   consumer   notified             arming            poll again
//   consumer   any, done            idle              (a store)
//   relay      armed                notified          release the sleeper (schedule / unpark)
//   relay      arming               notified (S kept) -
//   relay      idle, notified       unchanged         -
//   stop       armed                idle              unregister, complete as stopped
//   stop       arming, notified     | S               the consumer stops itself
//
// Memory ordering. Everything a producer did before notify() happens-before
// the consumer's predicate check that follows the wake-up it causes, or the
// consumer's re-check after its registration sees it: every change of the
// state word is an RMW, so either the consumer's register (acquire) reads
// after the producer's RMW (release; a release sequence continues through
// later RMWs) and its re-check sees the publish, or the producer's RMW reads
// R and a notification follows. The predicate may use relaxed atomics.
//
// The load-only idle notify: notify_if_registered() / notify_after_publish()
// replace that RMW by a load, so the Dekker pair becomes store -> load on
// both sides and needs two fences; rouse uses its asymmetric pair
// (platform/fence.hpp), the same as detail/waiter_count.hpp:
//   consumer (register_waker, idle_notify::load)   producer
//   (A)  state RMW: R = 1                          publish (any memory order)
//   (A2) asymmetric_heavy_fence()                  (B)  asymmetric_light_fence()
//   (A') re-check the predicate (any order)        (B') load state (relaxed): R? notify()
// In the fences' single total order either (A2) precedes (B): then (B')
// reads (A) or later, finds R set (or a lock holder cleared it after (A),
// and that holder wakes the waker (A) registered), or (B) precedes (A2):
// then (A') sees the publish. The contract for callers:
// - build the diatomic_waker (or wake_sink) with idle_notify::load, so that
//   every registration runs (A2) (debug builds check that
//   notify_if_registered() is used only then);
// - a producer calls notify_after_publish() right after its publish: it runs
//   (B) then (B'). notify_if_registered() is (B') alone, for a producer that
//   ran (B) (or a seq_cst fence) itself, e.g. once before notifying several
//   wakers;
// - notify() stays valid on such a waker (it does not need (A2)).
// Under a model both fences are seq_cst fences (detail/sync_types.hpp).
//
// The seq_cst idle notify: notify_after_seq_cst_rmw() is a seq_cst load of
// the state (B'') and no fence, on either mode, for a producer whose publish
// contains a seq_cst RMW (P) sequenced before it, on a word M that the
// consumer's re-check (A') reads with a seq_cst load after registering.
// Every registration RMW (A) is seq_cst, so (A), (A'), (P) and (B'') are all
// in the single total order S of seq_cst operations:
// - (A') before (P) in S: then (A) < (A') < (P) < (B'') and (B'') reads (A)
//   or a later change: R set (notify), or cleared by a lock holder that
//   serves (A)'s waker; the consumer it wakes registers again (A2nd) before
//   it re-checks, and (B'') read a value before (A2nd) in the word's order,
//   so (B'') < (A2nd) in S (coherence), and that re-check sees (P);
// - (P) before (A') in S: (A') reads (P) or later and sees the publish (or
//   that it is under way: rouse's channel ring reports `pending` and
//   re-reads until the value is there).
// rouse's channel ring is the user: (P) is the tail's fetch_add, (A') the
// receiver's load of the tail when the next slot is not written yet.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "rouse/async/atomic_waker.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/thread_parker.hpp"

// The coroutine half (wait_until, its stop handling) needs the async
// environment (executors and coroutine wakers, which are not model-ready;
// the stop source has its own model); a model test
// compiles the protocol without it: the claim, the relay and the poll loop
// are shared with wait_until_blocking, which the models run.
#if !defined(ROUSE_MODEL_RELACY)
#define ROUSE_DETAIL_DIATOMIC_COROUTINES 1
#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#else
#define ROUSE_DETAIL_DIATOMIC_COROUTINES 0
#endif

namespace rouse::async {

// How producers may notify a diatomic_waker that nobody registered on.
enum class idle_notify : std::uint8_t {
  rmw,   // notify() only: 1 RMW when idle; registration costs nothing more
  load,  // also notify_if_registered() / notify_after_publish(): a load when
         // idle; every registration runs asymmetric_heavy_fence()
};

class diatomic_waker;

namespace detail {

// What a predicate's result gives the waiter: void for bool, T for optional<T>.
template <class R>
struct poll_result_of;
template <>
struct poll_result_of<bool> {
  using type = void;
};
template <class T>
struct poll_result_of<std::optional<T>> {
  using type = T;
};
template <class Pred>
using wait_result_t = typename poll_result_of<std::remove_cvref_t<std::invoke_result_t<Pred&>>>::type;

template <class T>
struct result_slot {
  std::optional<T> v;
};
template <>
struct result_slot<void> {};

// The result of one wait, and the predicate that produces it.
template <class Pred>
class predicate_box {
 public:
  using result_type = wait_result_t<Pred>;

  explicit predicate_box(Pred& pred) noexcept : pred_(pred) {}

  // Calls pred once; true when it is ready (or threw: the wait ends and
  // rethrows).
  bool try_pred() noexcept {
    try {
      if constexpr (std::is_void_v<result_type>) {
        return static_cast<bool>(pred_());
      } else {
        auto r = pred_();
        if (!r) return false;
        value_.v.emplace(std::move(*r));
        return true;
      }
    } catch (...) {
      error_ = std::current_exception();
      return true;
    }
  }
  result_type take() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    if constexpr (!std::is_void_v<result_type>) return std::move(*value_.v);
  }

 private:
  Pred& pred_;
  result_slot<result_type> value_{};
  std::exception_ptr error_{};
};

// The wait in progress, as the relay sees it.
struct wait_record {
  // Releases the sleeping waiter (the relay won the claim): schedules the
  // poller, or unparks the thread. Its last touch of the record.
  void (*release)(wait_record* self) noexcept = nullptr;
  // Polls again on the consumer's side (the poller runs it); returns what to
  // resume next (the awaiting coroutine, or noop when it sleeps again).
  std::coroutine_handle<> (*repoll)(wait_record* self) noexcept = nullptr;
};

// A coroutine that runs one repoll of the current wait per resumption, on
// the awaiting coroutine's executor. One per diatomic_waker, made by the
// first coroutine wait that sleeps.
struct poller {
  struct promise_type {
    poller get_return_object() noexcept { return poller{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

}  // namespace detail

#if ROUSE_DETAIL_DIATOMIC_COROUTINES
template <class Pred>
class wait_until_awaitable;
#endif

class diatomic_waker {
 public:
  // State word bits.
  static constexpr std::uint32_t index_bit = 1;          // I: the current slot
  static constexpr std::uint32_t update_bit = 2;         // U: a newer waker in slot[1-I]
  static constexpr std::uint32_t registered_bit = 4;     // R: wants a notification
  static constexpr std::uint32_t locked_bit = 8;         // L: the notification lock
  static constexpr std::uint32_t notify_again_bit = 16;  // N: the holder notifies again

  // Claim word values.
  static constexpr std::uint32_t claim_idle = 0;
  static constexpr std::uint32_t claim_arming = 1;
  static constexpr std::uint32_t claim_notified = 2;
  static constexpr std::uint32_t claim_armed = 3;
  static constexpr std::uint32_t claim_stop_bit = 4;
  static constexpr std::uint32_t phase_mask = 3;

  explicit ROUSE_CONSTEXPR diatomic_waker(idle_notify mode = idle_notify::rmw) noexcept : mode_(mode) {}
  diatomic_waker(const diatomic_waker&) = delete;
  diatomic_waker& operator=(const diatomic_waker&) = delete;
  ~diatomic_waker() {
    ROUSE_CHECK_USAGE((claim_.load(std::memory_order_relaxed) & phase_mask) == claim_idle,
                      "rouse::async::diatomic_waker", "destroyed while a wait is in progress");
    if (poller_) poller_.destroy();
  }

  [[nodiscard]] idle_notify mode() const noexcept { return mode_; }

  // ---- producers ----------------------------------------------------------

  // Wakes the registered waker, or asks the notifier that is waking it to
  // wake it once more. Never blocks. Any thread.
  void notify() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if ((s & (registered_bit | locked_bit)) == registered_bit) {
        // R, !L -> L, !R, and if U: !U and I flipped (the newer slot becomes
        // current). Ordering: acq_rel: acquire pairs with the release of
        // register_waker()'s fetch_or (the slot's content); release carries
        // our caller's publish (a later register reads after it).
        std::uint32_t const flip = (s & update_bit) ? (update_bit | index_bit) : 0u;
        std::uint32_t const next = s ^ (registered_bit | locked_bit | flip);
        if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
          notify_locked(next);
          return;
        }
        continue;
      }
      if ((s & registered_bit) &&
          ::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_notify_drops_retry))
        return;  // BROKEN on purpose (model tests only): no N for the holder
      // R, L -> | N; !R -> unchanged. The RMW runs even when nothing changes:
      // it puts our publish in the word's modification order. Ordering:
      // release: pairs with the acquire of the holder's unlock (it reads N
      // and wakes again) or of the sink's next register (its re-check sees
      // the publish).
      std::uint32_t const next = (s & registered_bit) ? (s | notify_again_bit) : s;
      if (state_.compare_exchange_weak(s, next, std::memory_order_release, std::memory_order_relaxed)) return;
    }
  }

  // (B') The load-only idle notify: returns after one load when no waker is
  // registered, else notify(). Only on a diatomic_waker built with
  // idle_notify::load, and only after the caller ran (B)
  // (asymmetric_light_fence or a seq_cst fence) after its publish; use
  // notify_after_publish(), which does both. See "The load-only idle notify".
  void notify_if_registered() noexcept {
    ROUSE_CHECK_USAGE(mode_ == idle_notify::load, "rouse::async::diatomic_waker",
                      "notify_if_registered() on a waker built with idle_notify::rmw (its registrations do not fence)");
    // (B') Ordering: relaxed: ordered against the register (A) by the fence
    // pair (A2)/(B).
    if ((state_.load(std::memory_order_relaxed) & registered_bit) == 0) return;
    notify();
  }

  // (B'') The seq_cst idle notify: one seq_cst load when no waker is
  // registered, else notify(). Only after the caller's seq_cst RMW on a
  // word the registrant's re-check reads with a seq_cst load; see "The
  // seq_cst idle notify". Either idle_notify mode.
  void notify_after_seq_cst_rmw() noexcept {
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_seq_cst_notify_relaxed)) {
      // BROKEN on purpose (model tests only): a relaxed load.
      if ((state_.load(std::memory_order_relaxed) & registered_bit) == 0) return;
      return notify();
    }
    // (B'') Ordering: seq_cst: in S after the caller's RMW (P).
    if ((state_.load(std::memory_order_seq_cst) & registered_bit) == 0) return;
    notify();
  }

  // The producer's helper: (B) then (B'). Call it right after the publish.
  void notify_after_publish() noexcept {
    if (!::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_idle_notify_without_fence)) {
      // (B) the light half: pairs with (A2) in register_waker().
      ::rouse::detail::asymmetric_light_fence();
    }
    notify_if_registered();
  }

  // ---- the registrant -----------------------------------------------------

  // Registers `w` (a clone; kept cached) for the next notification; re-check
  // the condition after this. See the lifetime rule in the header comment.
  void register_waker(const waker& w) noexcept {
    // Ordering: acquire: the slot indices; a stale value is harmless (only
    // this thread writes the slots, and the RMWs below re-read I).
    std::uint32_t s = state_.load(std::memory_order_acquire);
    unsigned const recent = (s & update_bit) ? ((s & index_bit) ^ 1u) : (s & index_bit);
    if (slots_[recent].will_wake(w)) {
      // (A) Ordering: seq_cst: acquire pairs with a notifier's release RMW
      // (its publish reaches our re-check); release publishes what we wrote
      // before registering to the lock holder that reads R (a wait's claim
      // word, `arming`, which the relay then reads: without it the relay may
      // read a stale `idle` and drop the wake-up; the model found this);
      // seq_cst for the seq_cst idle notify (B''). A stale N stays: at most
      // one spurious wake.
      state_.fetch_or(registered_bit, std::memory_order_seq_cst);
    } else {
      if ((s & (update_bit | registered_bit)) == (update_bit | registered_bit)) {
        // U && R: a lock taker may flip I to slot[1-I] now. Unregister
        // first; I is then stable. Ordering: acquire: as (A).
        s = state_.fetch_and(~(registered_bit | notify_again_bit), std::memory_order_acquire);
      }
      slots_[(s & index_bit) ^ 1u].assign(w);
      // (A) Ordering: seq_cst: release publishes the slot (and, as above,
      // the claim word) to the next lock taker (its acquire); acquire and
      // seq_cst: as above.
      state_.fetch_or(update_bit | registered_bit, std::memory_order_seq_cst);
    }
    if (mode_ == idle_notify::load) {
      // (A2) the heavy half: pairs with (B) in notify_after_publish().
      ::rouse::detail::asymmetric_heavy_fence();
    }
  }

  // Withdraws the registration; the waker stays cached. A notifier that took
  // the lock before may still wake it once.
  void unregister() noexcept {
    // Ordering: relaxed: only makes later notifies skip the wake.
    state_.fetch_and(~(registered_bit | notify_again_bit), std::memory_order_relaxed);
  }

#if ROUSE_DETAIL_DIATOMIC_COROUTINES
  // `co_await w.wait_until(pred)`: see the header comment. Single consumer.
  template <class Pred>
  [[nodiscard]] wait_until_awaitable<Pred> wait_until(Pred pred) noexcept(std::is_nothrow_move_constructible_v<Pred>);
#endif

  // The same wait for a plain thread: parks on a thread_parker on the
  // caller's stack until pred() is ready.
  template <class Pred>
  detail::wait_result_t<Pred> wait_until_blocking(Pred pred) {
    detail::predicate_box<Pred> box(pred);
    if (!box.try_pred()) {
      thread_record<Pred> rec(box);
      begin_wait(rec);
      for (poll_outcome o = poll(rec, true); o == poll_outcome::suspended; o = poll(rec, false)) rec.parker.park();
    }
    return box.take();
  }

  // wait_until_blocking with a deadline, for a predicate that returns bool:
  // true once pred() held, false when `deadline` passed first (the wait then
  // withdrew: armed -> idle, one CAS; if a wake-up claimed it first, the
  // thread takes that wake-up's unpark and polls once more).
  template <class Pred, class Clock, class Duration>
  bool wait_until_blocking_until(Pred pred, std::chrono::time_point<Clock, Duration> deadline) {
    detail::predicate_box<Pred> box(pred);
    if (box.try_pred()) {
      box.take();
      return true;
    }
    thread_record<Pred> rec(box);
    begin_wait(rec);
    for (poll_outcome o = poll(rec, true); o == poll_outcome::suspended; o = poll(rec, false)) {
      if (rec.parker.park_until(deadline)) continue;
      std::uint32_t s = claim_armed;
      // armed -> idle: we withdraw. Ordering: acquire: as claim_for_stop().
      if (claim_.compare_exchange_strong(s, claim_idle, std::memory_order_acquire, std::memory_order_relaxed)) {
        unregister();
        return false;
      }
      rec.parker.park();  // a relay released us: its unpark is on its way
    }
    box.take();
    return true;
  }

  // ---- an external wait (a select over several wakers) ----------------------
  // The consumer drives the wait itself instead of wait_until: arm_external()
  // checks `ready` (a bool predicate without side effects on what it
  // checks), registers the relay, re-checks, and arms: false when `ready`
  // held (the wait is over, nothing registered), true when armed. A
  // notification while armed calls rec.release(&rec) once, on the notifier's
  // thread (its last touch of rec; rec.repoll is never called). The consumer
  // then (or to give up) calls end_external(): true when no release was made
  // (armed -> idle); false when a release came or is in progress: the caller
  // must not free rec before that release call returned (its own flag).
  template <class Ready>
  bool arm_external(detail::wait_record& rec, Ready& ready) noexcept {
    struct record {
      Ready& ready;
      bool try_pred() noexcept { return ready(); }
    } r{ready};
    begin_wait(rec);
    return poll(r, false) == poll_outcome::suspended;
  }
  bool end_external() noexcept {
    std::uint32_t s = claim_armed;
    // armed -> idle: nobody will release. Ordering: acquire: as claim_for_stop().
    bool const quiet =
        claim_.compare_exchange_strong(s, claim_idle, std::memory_order_acquire, std::memory_order_relaxed);
    // notified -> idle (a relay released us): the relay is done with the word.
    // Ordering: relaxed, as finish().
    if (!quiet) claim_.store(claim_idle, std::memory_order_relaxed);
    unregister();
    return quiet;
  }

  // The state words (relaxed loads), for tests and diagnostics.
  [[nodiscard]] std::uint32_t state_for_testing() const noexcept { return state_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint32_t claim_for_testing() const noexcept { return claim_.load(std::memory_order_relaxed); }

 private:
#if ROUSE_DETAIL_DIATOMIC_COROUTINES
  template <class Pred>
  friend class wait_until_awaitable;
#endif

  enum class poll_outcome : std::uint8_t { ready, stopped, suspended };

  template <class Pred>
  struct thread_record : detail::wait_record {
    explicit thread_record(detail::predicate_box<Pred>& b) noexcept : box(b) {
      release = [](detail::wait_record* self) noexcept { static_cast<thread_record*>(self)->parker.unpark(); };
    }
    bool try_pred() noexcept { return box.try_pred(); }
    detail::predicate_box<Pred>& box;
    thread_parker parker;
  };

  // Holding L: wake slot[I], then unlock, or serve N and wake again.
  void notify_locked(std::uint32_t s) noexcept {
    for (;;) {
      slots_[s & index_bit].wake_by_ref();
      for (;;) {
        if ((s & notify_again_bit) == 0) {
          // L, !N -> !L. Ordering: release: our read of slot[I] is done
          // before the sink writes it (after a later flip), and pairs with
          // the acquire of the next lock taker.
          if (state_.compare_exchange_weak(s, s & ~locked_bit, std::memory_order_release, std::memory_order_relaxed))
            return;
          continue;
        }
        // L, N -> L, !N, !R, and if U: !U and I flipped. Ordering: acq_rel:
        // acquire pairs with the release of the notifier that set N (its
        // publish happens-before the wake below) and of the register that set
        // U (the newer slot).
        std::uint32_t next = s & ~(notify_again_bit | registered_bit);
        if (s & update_bit) next ^= update_bit | index_bit;
        if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
          s = next;
          break;
        }
      }
    }
  }

  // ---- the relay: the waker the waits register ------------------------------

  static void relay_wake(const void* data) noexcept {
    static_cast<diatomic_waker*>(const_cast<void*>(data))->relay();
  }
  static const waker_vtable relay_vtable;
  waker relay_waker() noexcept { return waker(this, &relay_vtable); }

  // Called by a lock holder: hands the wake-up to the wait in progress.
  void relay() noexcept {
    // Ordering: relaxed: our lock's acquire read the register (A) that
    // followed the consumer's `arming`, so this reads it or a later value.
    std::uint32_t s = claim_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint32_t const phase = s & phase_mask;
      if (phase == claim_armed) {
        // armed -> notified: we release the sleeper. Ordering: acquire:
        // pairs with the consumer's release when it armed (the record,
        // current_).
        if (claim_.compare_exchange_weak(s, claim_notified, std::memory_order_acquire, std::memory_order_relaxed)) {
          detail::wait_record* const rec = ::rouse::detail::unsync_ref(current_);
          rec->release(rec);
          return;
        }
      } else if (phase == claim_arming) {
        // arming -> notified (S kept). Ordering: release: pairs with the
        // acquire of the consumer's failed arm (the publish our lock holder
        // acquired reaches its next check).
        if (claim_.compare_exchange_weak(s, (s & claim_stop_bit) | claim_notified, std::memory_order_release,
                                         std::memory_order_relaxed))
          return;
      } else {
        return;  // idle (nobody waits) or notified (the consumer polls again anyway)
      }
    }
  }

  // A stop request: true when it won the sleeping wait (then the caller
  // completes it as stopped); otherwise the consumer is running (S asks it
  // to stop) or the wait is over.
  bool claim_for_stop() noexcept {
    std::uint32_t s = claim_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint32_t const phase = s & phase_mask;
      if (phase == claim_idle) return false;
      if (phase == claim_armed) {
        // armed -> idle. Ordering: acquire: as the relay's.
        if (claim_.compare_exchange_weak(s, claim_idle, std::memory_order_acquire, std::memory_order_relaxed))
          return true;
        continue;
      }
      // arming / notified -> | S. Ordering: release: pairs with the
      // consumer's acquire of S.
      if (claim_.compare_exchange_weak(s, s | claim_stop_bit, std::memory_order_release, std::memory_order_relaxed))
        return false;
    }
  }

  void begin_wait(detail::wait_record& rec) noexcept {
    ROUSE_CHECK_USAGE((claim_.load(std::memory_order_relaxed) & phase_mask) == claim_idle,
                      "rouse::async::diatomic_waker", "a wait started while another wait is in progress");
    ::rouse::detail::unsync_ref(current_) = &rec;
    // idle -> arming. Ordering: relaxed: nobody else writes an idle word;
    // the arm's release below publishes it with current_.
    claim_.store(claim_arming, std::memory_order_relaxed);
  }

  poll_outcome finish(poll_outcome o, bool registered) noexcept {
    // any -> idle. Ordering: relaxed: the wait is over; a late relay or stop
    // finds idle and does nothing (a stop's S or a notified overwritten here
    // is moot: the wait ends).
    claim_.store(claim_idle, std::memory_order_relaxed);
    if (registered) unregister();
    return o;
  }

  // One turn of the consumer's loop: check, register, re-check, arm.
  // `checked`: pred was just called and was not ready.
  template <class Record>
  poll_outcome poll(Record& rec, bool checked) noexcept {
    bool registered = false;
    // Ordering: acquire: pairs with the release of a stop (S) or a relay.
    std::uint32_t s = claim_.load(std::memory_order_acquire);
    for (;;) {
      if (s & claim_stop_bit) return finish(poll_outcome::stopped, registered);
      if (!checked && rec.try_pred()) return finish(poll_outcome::ready, registered);
      checked = false;
      if ((s & phase_mask) == claim_notified) {
        // notified -> arming. Ordering: acquire: as the load above.
        if (!claim_.compare_exchange_strong(s, claim_arming, std::memory_order_acquire, std::memory_order_acquire))
          continue;
      }
      register_waker(relay_waker());  // (A), and (A2) under idle_notify::load
      registered = true;
      if (rec.try_pred()) return finish(poll_outcome::ready, registered);
      s = claim_arming;
      // arming -> armed. Ordering: release: publishes the record and
      // current_ to the claimer's acquire; acquire on failure: pairs with the
      // release of the relay (notified) or stop (S).
      if (claim_.compare_exchange_strong(s, claim_armed, std::memory_order_release, std::memory_order_acquire))
        return poll_outcome::suspended;  // nothing of rec or *this after this
    }
  }

#if ROUSE_DETAIL_DIATOMIC_COROUTINES
  void ensure_poller() {
    if (!poller_) poller_ = run_poller(this).handle;
  }
  std::coroutine_handle<> poller() const noexcept { return poller_; }

  struct repoll_step {
    diatomic_waker* self;
    static constexpr bool await_ready() noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
      detail::wait_record* const rec = ::rouse::detail::unsync_ref(self->current_);
      return rec->repoll(rec);
    }
    static constexpr void await_resume() noexcept {}
  };
  static detail::poller run_poller(diatomic_waker* self) {
    for (;;) co_await repoll_step{self};
  }
#endif

  ::rouse::detail::atomic<std::uint32_t> state_{0};
  ::rouse::detail::atomic<std::uint32_t> claim_{claim_idle};
  detail::waker_cell slots_[2];
  ::rouse::detail::unsync<detail::wait_record*> current_{nullptr};
  std::coroutine_handle<detail::poller::promise_type> poller_{};
  idle_notify const mode_;
};

namespace detail {
inline const void* relay_clone(const void* data) noexcept { return data; }  // a view: the waker is its own referent
inline void relay_drop(const void*) noexcept {}
}  // namespace detail

inline const waker_vtable diatomic_waker::relay_vtable{detail::relay_clone, &diatomic_waker::relay_wake,
                                                        &diatomic_waker::relay_wake, detail::relay_drop};

static_assert(::rouse::detail::in_model || sizeof(void*) != 8 || sizeof(diatomic_waker) == 64);

#if ROUSE_DETAIL_DIATOMIC_COROUTINES
// `co_await waker.wait_until(pred)`. Lives in the awaiting coroutine's frame;
// not movable.
template <class Pred>
class wait_until_awaitable : private detail::wait_record {
 public:
  using result_type = detail::wait_result_t<Pred>;
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor

  wait_until_awaitable(diatomic_waker& w, Pred pred) noexcept(std::is_nothrow_move_constructible_v<Pred>)
      : dw_(&w), pred_(std::move(pred)), box_(pred_) {
    release = &release_coroutine;
    repoll = &repoll_coroutine;
  }
  wait_until_awaitable(const wait_until_awaitable&) = delete;
  wait_until_awaitable& operator=(const wait_until_awaitable&) = delete;
  ~wait_until_awaitable() {
    if (began_ && !finished_) {
      // Destroyed while suspended: withdraw if no wake-up has claimed us.
      if (dw_->claim_for_stop()) dw_->unregister();
    }
    destroy_stop_callback();
  }

  bool await_ready() noexcept { return box_.try_pred(); }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    target_ = resume_target(h);
    auto token = get_stop_token(get_env(h.promise()));
    if (token.stop_requested()) return complete_stopped_here();
    dw_->ensure_poller();  // may throw (std::bad_alloc) before anything is registered
    dw_->begin_wait(*this);
    began_ = true;
    if (token.stop_possible()) start_stop_callback(token);
    switch (dw_->poll(*this, true)) {
      case diatomic_waker::poll_outcome::ready:
        finished_ = true;
        return false;
      case diatomic_waker::poll_outcome::stopped:
        finished_ = true;
        return complete_stopped_here();
      case diatomic_waker::poll_outcome::suspended:
        break;
    }
    return true;  // nothing of *this after the arm
  }

  result_type await_resume() {
    destroy_stop_callback();
    if (stopped_) throw operation_stopped{};
    return box_.take();
  }

 private:
  friend class diatomic_waker;

  // The stop callback, whatever the promise's token type, in a buffer here
  // (a larger one goes to the heap).
  struct on_stop {
    wait_until_awaitable* self;
    void operator()() noexcept { self->stop_requested(); }
  };
  static constexpr std::size_t stop_buffer_size = 64;  // inplace_stop_callback: 56 bytes; std::stop_callback: 48-56

  template <class Token>
  void start_stop_callback(const Token& token) {
    using callback = stop_callback_for_t<Token, on_stop>;
    if constexpr (sizeof(callback) <= stop_buffer_size && alignof(callback) <= alignof(std::max_align_t)) {
      stop_destroy_ = [](void* p) noexcept { static_cast<callback*>(p)->~callback(); };
      stop_callback_ = ::new (static_cast<void*>(stop_buffer_)) callback(token, on_stop{this});
    } else {
      stop_destroy_ = [](void* p) noexcept { delete static_cast<callback*>(p); };
      stop_callback_ = new callback(token, on_stop{this});
    }
  }
  void destroy_stop_callback() noexcept {
    if (void* const p = std::exchange(stop_callback_, nullptr)) stop_destroy_(p);
  }

  // Stop before or during the consumer's own turn: complete as stopped from
  // await_suspend (true: stay suspended, the promise took over).
  bool complete_stopped_here() noexcept {
    destroy_stop_callback();
    if (target_.stops_in_place()) {
      target_.resume_stopped();
      return true;
    }
    stopped_ = true;
    return false;
  }

  // The stop callback (any thread).
  void stop_requested() noexcept {
    if (!dw_->claim_for_stop()) return;  // the consumer runs and sees S, or the wait is over
    dw_->unregister();
    finished_ = true;
    if (target_.stops_in_place()) {
      target_.resume_stopped();  // the frame (and this callback) may be gone after
    } else {
      stopped_ = true;
      target_.resume();
    }
  }

  // The relay won: run the poller where the coroutine would resume.
  static void release_coroutine(detail::wait_record* base) noexcept {
    auto* const self = static_cast<wait_until_awaitable*>(base);
    std::coroutine_handle<> const p = self->dw_->poller();
    if (executor* const ex = self->target_.ex)
      ex->schedule(p);
    else
      p.resume();
  }

  // The poller's turn.
  static std::coroutine_handle<> repoll_coroutine(detail::wait_record* base) noexcept {
    auto* const self = static_cast<wait_until_awaitable*>(base);
    switch (self->dw_->poll(*self, false)) {
      case diatomic_waker::poll_outcome::ready:
        self->finished_ = true;
        return self->target_.handle;
      case diatomic_waker::poll_outcome::stopped:
        self->finished_ = true;
        self->destroy_stop_callback();
        if (self->target_.stops_in_place()) {
          self->target_.resume_stopped();
          return std::noop_coroutine();
        }
        self->stopped_ = true;
        return self->target_.handle;
      case diatomic_waker::poll_outcome::suspended:
        break;
    }
    return std::noop_coroutine();
  }

  bool try_pred() noexcept { return box_.try_pred(); }

  diatomic_waker* dw_;
  Pred pred_;
  detail::predicate_box<Pred> box_;
  resume_target target_{};
  void* stop_callback_ = nullptr;
  void (*stop_destroy_)(void*) noexcept = nullptr;
  bool began_ = false;
  bool finished_ = false;
  bool stopped_ = false;
  alignas(std::max_align_t) unsigned char stop_buffer_[stop_buffer_size];
};

template <class Pred>
wait_until_awaitable<Pred> diatomic_waker::wait_until(Pred pred) noexcept(std::is_nothrow_move_constructible_v<Pred>) {
  return wait_until_awaitable<Pred>(*this, std::move(pred));
}
#endif

// ---- handles ----------------------------------------------------------------

// A producer's end: a copyable pointer to a diatomic_waker (a wake_sink's).
// Must not be used after the sink is destroyed.
class wake_source {
 public:
  wake_source() noexcept = default;
  explicit wake_source(diatomic_waker& w) noexcept : w_(&w) {}

  void notify() const noexcept { w_->notify(); }
  void notify_if_registered() const noexcept { w_->notify_if_registered(); }
  void notify_after_publish() const noexcept { w_->notify_after_publish(); }

  explicit operator bool() const noexcept { return w_ != nullptr; }
  friend bool operator==(const wake_source&, const wake_source&) = default;

 private:
  diatomic_waker* w_ = nullptr;
};

// The consumer's end: owns its diatomic_waker in place (no allocation); not
// copyable, not movable (sources and a wait in progress point into it).
class wake_sink {
 public:
  explicit ROUSE_CONSTEXPR wake_sink(idle_notify mode = idle_notify::rmw) noexcept : w_(mode) {}
  wake_sink(const wake_sink&) = delete;
  wake_sink& operator=(const wake_sink&) = delete;

  [[nodiscard]] wake_source source() noexcept { return wake_source(w_); }
  void register_waker(const waker& w) noexcept { w_.register_waker(w); }
  void unregister() noexcept { w_.unregister(); }
#if ROUSE_DETAIL_DIATOMIC_COROUTINES
  template <class Pred>
  [[nodiscard]] wait_until_awaitable<Pred> wait_until(Pred pred) noexcept(std::is_nothrow_move_constructible_v<Pred>) {
    return w_.wait_until(std::move(pred));
  }
#endif
  template <class Pred>
  detail::wait_result_t<Pred> wait_until_blocking(Pred pred) {
    return w_.wait_until_blocking(std::move(pred));
  }
  [[nodiscard]] diatomic_waker& get() noexcept { return w_; }

 private:
  diatomic_waker w_;
};

}  // namespace rouse::async

#undef ROUSE_DETAIL_DIATOMIC_COROUTINES
