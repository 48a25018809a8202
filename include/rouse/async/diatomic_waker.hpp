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
//   wait_until_blocking need none of this: they register the wait itself
//   (the D bit below: no waker, no slot), and exactly one party claims each
//   registration (a notifier, a stop, or the consumer withdrawing it), so
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
//   co_await then throws rouse::async::operation_stopped. In a rouse task
//   (from its second wait on) the task's one stop callback is relayed to the
//   wait (rouse/async/detail/wait_relay.hpp); elsewhere the wait registers
//   a stop callback of its own.
// - Destruction: only when no wait is in progress (debug builds check this)
//   and every notify*() that may touch it has returned (as eventcount and
//   std::condition_variable ask: a notify is not a release, the producer's
//   own publish is). Destroying a coroutine suspended in wait_until is
//   allowed only when no wake-up for it is in flight (it withdraws its
//   registration if nobody claimed it). Not movable (a wait in progress and
//   the poller point to it).
//
// sizeof: 64 bytes on 64-bit (the state word, two 16-byte slots, the
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
//   notify(), a waker registered           2 RMW + 1 wake_by_ref; +1 RMW and
//                                          +1 wake_by_ref per N served
//   notify(), a wait registered            1 RMW (the claim), then the wait's
//                                          release (below)
//   register_waker(), cached waker         1 RMW, no clone
//   register_waker(), new waker            1 RMW (2 if a newer waker is still
//                                          pending), 1 clone, 1 drop if the
//                                          slot held one
//   unregister()                           1 RMW
//   wait_until / wait_until_blocking:      0 RMW when pred() is ready at once;
//     a turn that sleeps                   1 RMW to register, 1 to arm the
//                                          coroutine's guard (its task's
//                                          relay word, or its own), 1 for the
//                                          release's side of that guard (a
//                                          thread: the parker's unpark
//                                          instead of both); nothing to leave
//                                          (the claim unregistered it)
//     ready at the re-check                +1 RMW to withdraw the registration
//   idle_notify::load: every registration also runs asymmetric_heavy_fence()
//   (membarrier: a system call, a few microseconds), so choose it where the
//   consumer sleeps rarely and producers notify often.
//   The first coroutine wait that sleeps allocates the poller (one small
//   coroutine frame per diatomic_waker, reused by every later wait).
//
// State word (the crate's letters)
//   I  bit 0   index of the current slot (the one a lock holder reads)
//   U  bit 1   a newer waker sits in slot[1-I]; the next lock taker flips I
//   R  bit 2   a waker (or the wait) is registered and wants a notification
//   L  bit 3   a notifier holds the notification lock (it reads slot[I])
//   N  bit 4   a notifier found L set while R was set: notify once more
//   D  bit 5   (rouse's) the registration is the wait in progress (current_),
//              not a slot: the one who clears R|D owns its release
//   S  bit 6   (rouse's) a stop for the wait in progress came while it was
//              not registered (its own stop callback; a task's relay keeps
//              this mark in the relay's word instead)
//   Invariants: N => L && R && !D; D => R. slot[I] is read-only while L is
//   set; slot[1-I] belongs to the sink unless U && R (then a lock taker may
//   flip I to it).
//
//   method            before              after                    effect
//   register (cached) any                 | R                      -
//   register (new)    U && R              & ~(R|N), then | U|R     write slot[1-I]
//   register (new)    otherwise           | U|R                    write slot[1-I]
//   unregister        any                 & ~(R|N)                 -
//   notify            D                   & ~(R|D)                 current_->release()
//   notify            R, !D, !L           ^ (R|L), U: ^ (U|I)      wake_by_ref slot[I]
//   notify            R, !D, L            | N                      the holder wakes again
//   notify            !R                  unchanged (the RMW still runs)
//   notify_if_reg.    !R                  (a load: no change)
//   notify_after_seq_cst_rmw  !R          (a seq_cst load: no change)
//   unlock            L, !N               & ~L                     -
//   unlock            L, N                & ~(N|R), U: ^ (U|I)     wake_by_ref slot[I] again
//   wait: begin       S                   & ~S                     (a stale mark)
//   wait: register    R, !D               & ~(R|N), then | R|D     -
//   wait: register    !R                  | R|D                    re-check, then sleep
//   wait: withdraw    D                   & ~(R|D)                 the wait ends here
//   wait: withdraw    !D                  unchanged                a claim came: its release follows
//   stop (own)        D                   & ~(R|D)                 ends the wait as stopped (a value
//                                                                  its re-check took wins)
//   stop (own)        !D                  | S                      the consumer stops at its next turn
//                                                                  (also after its claim lost to a notify)
//
// A wait's turn: register (R|D), re-check, then sleep through a guard that
// settles who resumes the coroutine when the release and the consumer's
// arming race: the task's relay word (wait_relay.hpp: arm / wake), or the
// wait's own phase word (arming -> armed by the consumer; a release's
// exchange to woken resumes it only if it found armed). A thread needs no
// guard: its parker keeps an unpark that comes before the park. A release
// resumes the wait on its executor (the poller polls again, then resumes
// the coroutine), or, for a stop that claimed it, completes it as stopped.
// A predicate with a ready_hint() (a look without side effects, made by
// the release after the guard's acquire; rouse's channel receive has one)
// lets a release that finds it true resume the coroutine itself, which
// then polls once: no poller turn.
//
// Memory ordering. Everything a producer did before notify() happens-before
// the consumer's predicate check that follows the wake-up it causes, or the
// consumer's re-check after its registration sees it: every change of the
// state word is an RMW, so either the consumer's register (acquire) reads
// after the producer's RMW (release; a release sequence continues through
// later RMWs) and its re-check sees the publish, or the producer's RMW reads
// R and a notification follows. The predicate may use relaxed atomics.
// A wait's registration is also a release (current_ and the record before
// it) that the claim's acquire reads; the claim releases the notifier's
// publish to the release it then makes (the guard's RMW, or the unpark),
// which the resumed consumer reads after.
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
//   or a later change: R set (notify), or cleared by the lock holder or
//   claim that serves (A); the consumer it wakes registers again (A2nd)
//   before it re-checks, and (B'') read a value before (A2nd) in the word's order,
//   so (B'') < (A2nd) in S (coherence), and that re-check sees (P);
// - (P) before (A') in S: (A') reads (P) or later and sees the publish (or
//   that it is under way: rouse's channel ring reports `pending` and
//   re-reads until the value is there).
// rouse's channel ring is the user: (P) is the tail's fetch_add, (A') the
// receiver's load of the tail when the next slot is not written yet.
#pragma once

#include <chrono>
#include <concepts>
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

#include "rouse/async/detail/wait_relay.hpp"
#include "rouse/async/stop_token.hpp"

// The coroutine half (wait_until's awaitable and its poller) needs the async
// environment (executors and coroutine wakers, which are not model-ready); a
// model test compiles the protocol without it: the registration, its claim
// and the withdraw, shared with wait_until_blocking and the external wait,
// and a coroutine wait's turns with their guard and stop paths
// (detail::diatomic_turn, driven by the model in place of a coroutine).
#if !defined(ROUSE_MODEL_RELACY)
#define ROUSE_DETAIL_DIATOMIC_COROUTINES 1
#include "rouse/async/env.hpp"
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

// The wait in progress, as its claimer sees it (the D registration).
struct wait_record {
  // Releases the waiter whose registration the caller claimed (a notify, or
  // a stop): through the coroutine's guard to the poller (or its stopped
  // completion), or the thread's unpark. The caller's last touch of it.
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

template <class Derived>
class diatomic_turn;

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
  static constexpr std::uint32_t direct_bit = 32;        // D: R is the wait in progress
  static constexpr std::uint32_t stop_bit = 64;          // S: a stop for the unregistered wait

  explicit ROUSE_CONSTEXPR diatomic_waker(idle_notify mode = idle_notify::rmw) noexcept : mode_(mode) {}
  diatomic_waker(const diatomic_waker&) = delete;
  diatomic_waker& operator=(const diatomic_waker&) = delete;
  ~diatomic_waker() {
    ROUSE_CHECK_USAGE(!::rouse::detail::unsync_ref(in_wait_), "rouse::async::diatomic_waker",
                      "destroyed while a wait is in progress");
    if (poller_) poller_.destroy();
  }

  [[nodiscard]] idle_notify mode() const noexcept { return mode_; }

  // ---- producers ----------------------------------------------------------

  // Wakes the registered waker (or the wait in progress), or asks the
  // notifier that is waking it to wake it once more. Never blocks. Any
  // thread.
  void notify() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s & direct_bit) {
        // D -> & ~(R|D): this notify claims the wait's registration and
        // releases it. Ordering: acq_rel: acquire pairs with the wait's
        // register (current_ and the record); release carries our caller's
        // publish on through the release below (its guard's RMW or unpark,
        // which the resumed consumer reads after).
        if (state_.compare_exchange_weak(s, s & ~(registered_bit | direct_bit), std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
          detail::wait_record* const rec = ::rouse::detail::unsync_ref(current_);
          rec->release(rec);  // nothing of *this after it
          return;
        }
        continue;
      }
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
      // before registering to the lock holder that reads R; seq_cst for the
      // seq_cst idle notify (B''). A stale N stays: at most one spurious
      // wake.
      state_.fetch_or(registered_bit, std::memory_order_seq_cst);
    } else {
      if ((s & (update_bit | registered_bit)) == (update_bit | registered_bit)) {
        // U && R: a lock taker may flip I to slot[1-I] now. Unregister
        // first; I is then stable. Ordering: acquire: as (A).
        s = state_.fetch_and(~(registered_bit | notify_again_bit), std::memory_order_acquire);
      }
      slots_[(s & index_bit) ^ 1u].assign(w);
      // (A) Ordering: seq_cst: release publishes the slot to the next lock
      // taker (its acquire); acquire and seq_cst: as above.
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
  // caller's stack until pred() is ready. The parker is the guard: a park
  // returns only with the token of the unpark that released the turn
  // (thread_parker's implementation returns no other way), so the thread
  // leaves only a turn that it withdrew or whose release it took.
  template <class Pred>
  detail::wait_result_t<Pred> wait_until_blocking(Pred pred) {
    detail::predicate_box<Pred> box(pred);
    if (!box.try_pred()) {
      thread_record rec;
      begin_wait(rec);
      for (;;) {
        register_wait();
        if (box.try_pred()) {
          if (!withdraw()) rec.parker.park();  // claimed: take its unpark before leaving
          break;
        }
        rec.parker.park();
        if (box.try_pred()) break;
      }
      end_wait();
    }
    return box.take();
  }

  // wait_until_blocking with a deadline, for a predicate that returns bool:
  // true once pred() held, false when `deadline` passed first and a last
  // pred() after it still did not hold (the wait withdrew its registration,
  // one CAS; if a notify claimed it first, the thread takes that notify's
  // unpark and polls once more).
  template <class Pred, class Clock, class Duration>
  bool wait_until_blocking_until(Pred pred, std::chrono::time_point<Clock, Duration> deadline) {
    detail::predicate_box<Pred> box(pred);
    if (box.try_pred()) {
      box.take();
      return true;
    }
    thread_record rec;
    begin_wait(rec);
    bool ready = false;
    for (;;) {
      register_wait();
      if (box.try_pred()) {
        if (!withdraw()) rec.parker.park();
        ready = true;
        break;
      }
      if (!rec.parker.park_until(deadline)) {
        if (withdraw()) {  // timed out: pred() decides, as std's wait_until does
          ready = box.try_pred();
          break;
        }
        rec.parker.park();  // a notify claimed us: its unpark is on its way
      }
      if (box.try_pred()) {
        ready = true;
        break;
      }
    }
    end_wait();
    if (ready) box.take();
    return ready;
  }

  // ---- an external wait (a select over several wakers) ----------------------
  // The consumer drives the wait itself instead of wait_until: arm_external()
  // checks `ready` (a bool predicate without side effects on what it
  // checks), registers the wait, re-checks: false when `ready` held and the
  // registration was withdrawn (the wait is over), true when registered or
  // claimed. The notify that claims it calls rec.release(&rec) once, on the
  // notifier's thread (its last touch of rec; rec.repoll is never called).
  // The consumer then (or to give up) calls end_external(): true when no
  // claim was made (withdrawn); false when a release came or is in
  // progress: the caller must not free rec before that release call
  // returned (its own flag).
  template <class Ready>
  bool arm_external(detail::wait_record& rec, Ready& ready) noexcept {
    if (ready()) return false;
    begin_wait(rec);
    register_wait();
    if (ready() && withdraw()) {
      end_wait();
      return false;
    }
    return true;
  }
  bool end_external() noexcept {
    bool const quiet = withdraw();
    end_wait();
    return quiet;
  }

  // The state word (a relaxed load), for tests and diagnostics.
  [[nodiscard]] std::uint32_t state_for_testing() const noexcept { return state_.load(std::memory_order_relaxed); }

 private:
#if ROUSE_DETAIL_DIATOMIC_COROUTINES
  template <class Pred>
  friend class wait_until_awaitable;
#endif
  template <class Derived>
  friend class detail::diatomic_turn;

  struct thread_record : detail::wait_record {
    thread_record() noexcept {
      release = [](detail::wait_record* self) noexcept { static_cast<thread_record*>(self)->parker.unpark(); };
    }
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

  // ---- the wait in progress -------------------------------------------------

  void begin_wait(detail::wait_record& rec) noexcept {
    ROUSE_CHECK_USAGE(!::rouse::detail::unsync_ref(in_wait_), "rouse::async::diatomic_waker",
                      "a wait started while another wait is in progress");
    ::rouse::detail::unsync_ref(in_wait_) = true;
    ::rouse::detail::unsync_ref(current_) = &rec;
    // A stop mark an earlier wait's stop callback left (S) is not for this
    // wait: its own callback is registered after this. Ordering: relaxed:
    // that callback's RMW follows this one (its registration does).
    if (state_.load(std::memory_order_relaxed) & stop_bit)
      state_.fetch_and(~stop_bit, std::memory_order_relaxed);
  }
  // The wait is over: no claim of it is pending (it withdrew, or its
  // release came), or, for an external wait, the caller waits for it.
  void end_wait() noexcept { ::rouse::detail::unsync_ref(in_wait_) = false; }

  // (A) for the wait in progress: R|D. Returns the word before it (S: a stop
  // came while the wait was not registered). Re-check the predicate after.
  std::uint32_t register_wait() noexcept {
    // A raw registration before (R without D) is withdrawn first: D's claim
    // never reads a slot, so nothing of the lock protocol follows it.
    // Ordering: relaxed load: only this thread sets R.
    if (state_.load(std::memory_order_relaxed) & registered_bit)
      state_.fetch_and(~(registered_bit | notify_again_bit), std::memory_order_acquire);
    // (A) Ordering: seq_cst: acquire pairs with a notifier's release RMW
    // (its publish reaches our re-check); release publishes current_ and the
    // record to the claimer's acquire; seq_cst for the seq_cst idle notify.
    std::memory_order const order =
        ::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_wait_registers_relaxed)
            ? std::memory_order_relaxed  // BROKEN on purpose (model tests only)
            : std::memory_order_seq_cst;
    std::uint32_t const prev = state_.fetch_or(registered_bit | direct_bit, order);
    if (mode_ == idle_notify::load) {
      // (A2) the heavy half: pairs with (B) in notify_after_publish().
      ::rouse::detail::asymmetric_heavy_fence();
    }
    return prev;
  }

  // The consumer takes its own registration back: true when nobody had
  // claimed it; false when a notify (or a stop) did: its release follows.
  bool withdraw() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_withdraw_ignores_claim)) {
      // BROKEN on purpose (model tests only): a load and a store, not a claim.
      if ((s & direct_bit) == 0) return false;
      state_.store(s & ~(registered_bit | direct_bit), std::memory_order_relaxed);
      return true;
    }
    return claim_registration(s);
  }

  // The claim of the wait's registration, for the wait's stop (its task's
  // relay, or its own callback, which passes `mark`): true when this call
  // cleared R|D (the caller ends the wait as stopped); else a notify claimed
  // it first, or the wait is not registered now: with `mark`, S tells the
  // consumer to stop at its next registration. A claim lost to a notify
  // leaves the mark too: that notify's release sends the consumer round
  // again, and its next turn must see the stop (else a turn whose re-check
  // finds nothing sleeps as if no stop had come).
  bool claim_for_stop(bool mark) noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s & direct_bit) {
        if (claim_registration(s)) return true;
        if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_stop_lost_to_claim)) return false;
        continue;  // s: the word after the notify's claim
      }
      if (!mark) return false;
      // !D -> | S. Ordering: release: pairs with the acquire of the
      // consumer's next register (it reads S with what we did).
      if (state_.compare_exchange_weak(s, s | stop_bit, std::memory_order_release, std::memory_order_relaxed))
        return false;
    }
  }

  // On failure `s` holds the word as found (no D: claimed, or withdrawn).
  bool claim_registration(std::uint32_t& s) noexcept {
    while (s & direct_bit) {
      // D -> & ~(R|D). Ordering: acq_rel: acquire pairs with the register
      // (the consumer's fields); release for the release that follows.
      if (state_.compare_exchange_weak(s, s & ~(registered_bit | direct_bit), std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        return true;
    }
    return false;
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
  ::rouse::detail::unsync<bool> in_wait_{false};  // the consumer's: a wait is in progress
  detail::waker_cell slots_[2];
  ::rouse::detail::unsync<detail::wait_record*> current_{nullptr};
  std::coroutine_handle<detail::poller::promise_type> poller_{};
  idle_notify const mode_;
};

static_assert(::rouse::detail::in_model || sizeof(void*) != 8 || sizeof(diatomic_waker) == 64);

namespace detail {

// The turns of one coroutine wait on a diatomic_waker (wait_until): the
// consumer registers (R|D), re-checks, and sleeps through a guard; the
// claimer of the registration (a notify, or a stop) releases it through
// that guard. The guard is the task's relay word (wait_relay.hpp: arm /
// wake; the relay also carries the task's one stop callback to the wait),
// or, without a relay, a phase word of the wait's own beside its own stop
// callback (a stop that finds the wait unregistered leaves S for the next
// turn). Derived (CRTP) is the coroutine's side: poll() (the predicate,
// once; true when ready), resume_stopped() (released by a stop that won
// while it slept: complete the coroutine as stopped) and resume_poller()
// (released by a notify: run the poller where the coroutine resumes; it
// calls turn(false)). Compiled under the model, which drives it in place
// of a coroutine (tests/model/async_diatomic_waker_model.cpp).
template <class Derived>
class diatomic_turn : public wait_record, public wait_relay::hook {
 public:
  enum class outcome : std::uint8_t { ready, stopped, suspended };

  explicit diatomic_turn(diatomic_waker& w) noexcept : wait_relay::hook{&relay_ops}, dw_(&w) {
    release = &release_wait;
  }
  diatomic_turn(const diatomic_turn&) = delete;
  diatomic_turn& operator=(const diatomic_turn&) = delete;

  // The wait begins (nothing registered yet). `relay`: the task's relay
  // and its token, when the awaiting task has one; else the caller
  // registers its own stop callback (calling stop_requested()) after this.
  void begin(wait_relay* relay, const inplace_stop_token& relay_token) noexcept {
    relay_ = relay;
    if (relay_ != nullptr) relay_token_ = relay_token;
    dw_->begin_wait(*this);
    began_ = true;
  }
  // The wait ends before its first turn (its stop callback could not be
  // registered): nothing was registered.
  void cancel_begin() noexcept {
    dw_->end_wait();
    began_ = false;
  }

  // One or more turns of the consumer: register, re-check, sleep through
  // the guard. `checked`: pred was just called and was not ready.
  outcome turn(bool checked) noexcept {
    for (;;) {
      // Decided at the re-check while a claim was under way: a value taken
      // there wins over a stop that claimed the registration meanwhile.
      if (held() != outcome::suspended) return end(held());
      if (stopped_flag()) return end(outcome::stopped);  // a stop claimed the registration
      if (!checked && derived().poll()) return end(outcome::ready);
      checked = false;
      if (relay_ != nullptr && relay_token_.stop_requested()) return end(outcome::stopped);
      // Ordering: relaxed: the register's release publishes it.
      if (relay_ == nullptr) phase_.store(arming, std::memory_order_relaxed);
      std::uint32_t const prev = dw_->register_wait();
      if (relay_ == nullptr && (prev & diatomic_waker::stop_bit))
        held() = outcome::stopped;  // our callback found us unregistered
      else if (derived().poll())
        held() = outcome::ready;
      if (held() != outcome::suspended && dw_->withdraw()) return end(held());
      // Sleep; or a notify's release came while arming: go round (held_, or
      // poll again).
      if (relay_ == nullptr) {
        if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_turn_arms_with_store)) {
          // BROKEN on purpose (model tests only): a store overwrites `woken`.
          phase_.store(armed, std::memory_order_release);
          return outcome::suspended;
        }
        // arming -> armed; woken: released meanwhile. Ordering: acq_rel:
        // release: the record and Derived's fields before a release reads
        // them; acquire: a release that came first (stopped_, the publish).
        if (phase_.exchange(armed, std::memory_order_acq_rel) == arming) return outcome::suspended;
        continue;
      }
      switch (relay_->arm(*this)) {
        case wait_relay::arm_result::armed:
          return outcome::suspended;
        case wait_relay::arm_result::woken:
          continue;
        case wait_relay::arm_result::stop:
          break;
      }
      // The task was stopped while this turn armed: claim our own
      // registration, as its stop callback would. A claim that lost (a
      // notify's, or already ours in held_) leaves it to that release.
      if (held() == outcome::suspended && dw_->withdraw()) {
        relay_->end_stopped();
        return end(outcome::stopped);
      }
      if (relay_->rearm(*this) == wait_relay::arm_result::armed) return outcome::suspended;
    }
  }

  // The wait's own stop callback (any thread; a wait without a relay):
  // claims the registration, or leaves S for the consumer's next turn.
  void stop_requested() noexcept {
    bool const mark = !::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_stop_leaves_no_mark);
    if (!dw_->claim_for_stop(mark)) return;
    stopped_flag() = true;
    release_wait(this);
  }

  // The frame is destroyed while the wait is registered or sleeps: the
  // relay's stop no longer sees it, then the registration is withdrawn. A
  // claim already made (a notify's, or a stop's) is a wake in flight: the
  // misuse diatomic_waker's header names.
  void abandon() noexcept {
    if (relay_ != nullptr) relay_->unpublish(*this);
    dw_->withdraw();
    dw_->end_wait();
  }

  [[nodiscard]] bool began() const noexcept { return began_; }
  [[nodiscard]] bool finished() const noexcept { return finished_; }
  [[nodiscard]] bool stopped() noexcept { return stopped_flag(); }
  [[nodiscard]] bool has_relay() const noexcept { return relay_ != nullptr; }
  diatomic_waker& waker_of() const noexcept { return *dw_; }

 private:
  // The guard's phase when the wait has no relay.
  static constexpr std::uint32_t arming = 0;
  static constexpr std::uint32_t armed = 1;
  static constexpr std::uint32_t woken = 2;

  Derived& derived() noexcept { return static_cast<Derived&>(*this); }
  decltype(auto) held() noexcept { return ::rouse::detail::unsync_ref(held_); }
  decltype(auto) stopped_flag() noexcept { return ::rouse::detail::unsync_ref(stopped_); }
#if defined(ROUSE_MODEL_RELACY)
  friend std::ostream& operator<<(std::ostream& os, outcome o) { return os << static_cast<int>(o); }
#endif

  outcome end(outcome o) noexcept {
    stopped_flag() = o == outcome::stopped;
    finished_ = true;
    dw_->end_wait();
    return o;
  }

  // The relay's view of this wait (wait_relay::hook_ops): its stop claims
  // the registration and, won, releases through the relay (the pinned
  // word: the relay resumes); resume runs what the release decided.
  static diatomic_turn* from_hook(void* hook) noexcept {
    return static_cast<diatomic_turn*>(static_cast<wait_relay::hook*>(hook));
  }
  static bool relay_stop(void* hook) noexcept {
    diatomic_turn* const self = from_hook(hook);
    if (!self->dw_->claim_for_stop(false)) return false;
    self->stopped_flag() = true;
    release_wait(self);  // the relay resumes it at once (its own stop's wake)
    return true;
  }
  static void relay_resume(void* hook) noexcept { from_hook(hook)->resume_released(); }
  static constexpr wait_relay::hook_ops relay_ops{&relay_stop, &relay_resume};

  // The claimer's release (a notify, or a stop that won): through the
  // guard; resumes only a wait that sleeps.
  static void release_wait(wait_record* base) noexcept {
    auto* const self = static_cast<diatomic_turn*>(base);
    if (self->relay_ != nullptr) {
      // A stop's own wake (stopped_, set by its winning claim on this
      // thread) resumes at once.
      if (self->relay_->wake(*self, self->stopped_flag())) self->resume_released();
      return;
    }
    // arming -> woken (the consumer goes round) | armed -> woken (we
    // resume). Ordering: acq_rel: pairs with the consumer's exchange.
    if (self->phase_.exchange(woken, std::memory_order_acq_rel) == armed) self->resume_released();
  }

  // The wait slept and was released: a stop completes it as stopped here
  // (unless the turn's re-check had taken its value: held_); a notify runs
  // the poller where the coroutine would resume, or, when Derived has a
  // ready_hint() and it holds, resumes the coroutine itself (resume_direct:
  // its side then calls finish_direct() and the predicate, which the hint
  // promised ready). The last touch of *this.
  void resume_released() noexcept {
    if (stopped_flag() && held() == outcome::suspended) {
      end(outcome::stopped);
      derived().resume_stopped();  // the frame (and a running stop callback) may be gone after
      return;
    }
    if constexpr (requires(Derived& d) { d.ready_hint(); }) {
      // held_ and the hint's reads are the consumer's, published by its
      // arm (the guard's release, which our release's RMW acquired).
      bool const direct =
          (held() == outcome::suspended ||
           ::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_direct_ignores_held)) &&
          (derived().ready_hint() ||
           ::rouse::detail::model_fault_on(::rouse::detail::model_fault::diatomic_direct_without_hint));
      if (direct) return derived().resume_direct();
    }
    derived().resume_poller();
  }

 public:
  // The consumer's side of a direct release, once the coroutine runs: the
  // wait ends as ready (nothing was decided at a re-check: held_); the
  // caller then calls the predicate, ready by the hint's promise.
  void finish_direct() noexcept { end(outcome::ready); }

 private:
  diatomic_waker* dw_;
  wait_relay* relay_ = nullptr;        // the task's relay, when the wait uses one
  inplace_stop_token relay_token_{};   // its token (read at each turn)
  ::rouse::detail::atomic<std::uint32_t> phase_{arming};  // the guard without a relay
  // The consumer's plain fields that a release reads (held_) or a stop's
  // claim writes (stopped_), handed over by the guard; checked for races
  // under the model.
  ::rouse::detail::unsync<outcome> held_{outcome::suspended};  // decided at a re-check whose registration was claimed
  bool began_ = false;
  bool finished_ = false;
  ::rouse::detail::unsync<bool> stopped_{false};
};

}  // namespace detail

#if ROUSE_DETAIL_DIATOMIC_COROUTINES
// `co_await waker.wait_until(pred)`. Lives in the awaiting frame; not
// movable.
template <class Pred>
class wait_until_awaitable : private detail::diatomic_turn<wait_until_awaitable<Pred>> {
  using turn_base = detail::diatomic_turn<wait_until_awaitable<Pred>>;
  using outcome = typename turn_base::outcome;

 public:
  using result_type = detail::wait_result_t<Pred>;
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor

  wait_until_awaitable(diatomic_waker& w, Pred pred) noexcept(std::is_nothrow_move_constructible_v<Pred>)
      : turn_base(w), pred_(std::move(pred)), box_(pred_) {
    this->repoll = &repoll_wait;
  }
  wait_until_awaitable(const wait_until_awaitable&) = delete;
  wait_until_awaitable& operator=(const wait_until_awaitable&) = delete;
  ~wait_until_awaitable() {
    if (this->began() && !this->finished()) this->abandon();
    destroy_stop_callback();
  }

  bool await_ready() noexcept { return box_.try_pred(); }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    target_ = resume_target(h);
    auto token = get_stop_token(get_env(h.promise()));
    if (token.stop_requested()) return complete_stopped_here();
    this->waker_of().ensure_poller();  // may throw (std::bad_alloc) before anything is registered
    // A rouse task relays its one stop callback to the wait it is in
    // (detail/wait_relay.hpp); each turn still reads the token first (a
    // stop whose mark in the relay a normal wake consumed).
    detail::wait_relay* relay = nullptr;
    inplace_stop_token relay_token{};
    if constexpr (requires { h.promise().rouse_wait_relay(); } &&
                  std::is_same_v<decltype(token), inplace_stop_token>) {
      relay = h.promise().rouse_wait_relay();
      if (relay != nullptr) relay_token = token;
    }
    this->begin(relay, relay_token);
    if (relay == nullptr && token.stop_possible()) {
      try {
        start_stop_callback(token);  // after begin: a stop it runs at once leaves S for the turn
      } catch (...) {
        this->cancel_begin();  // std::bad_alloc: nothing registered
        throw;
      }
    }
    switch (this->turn(true)) {
      case outcome::ready:
        return false;
      case outcome::stopped:
        return complete_stopped_here();
      case outcome::suspended:
        break;
    }
    return true;  // nothing of *this after the arm
  }

  result_type await_resume() {
    if (direct_) {
      // Released directly (the predicate's ready_hint() held): the wait
      // ends here, and the predicate, ready by the hint's promise, runs on
      // this side as the poller's would.
      direct_ = false;
      this->finish_direct();
      [[maybe_unused]] bool const ready = box_.try_pred();
      ROUSE_CHECK_USAGE(ready, "rouse::async::diatomic_waker", "a predicate's ready_hint() held but it was not ready");
    }
    destroy_stop_callback();
    if (this->stopped() || stopped_here_) throw operation_stopped{};
    return box_.take();
  }

 private:
  friend turn_base;

  // ---- the turn's coroutine side (detail::diatomic_turn) ----
  bool poll() noexcept { return box_.try_pred(); }
  // Released as stopped while it slept.
  void resume_stopped() noexcept {
    if (target_.stops_in_place()) {
      target_.resume_stopped();
    } else {
      target_.resume();  // await_resume throws operation_stopped
    }
  }
  // A predicate may offer `bool ready_hint() const noexcept`: a look without
  // side effects that a release makes on the releasing thread (after the
  // guard's acquire, so it may read what the consumer wrote before it
  // slept); true promises that the next pred() is ready. The release then
  // resumes the coroutine itself, without the poller's turn (rouse's channel
  // receive: a value, one being written, closed, or timed out).
  bool ready_hint() const noexcept
    requires requires(const Pred& p) {
      { p.ready_hint() } -> std::same_as<bool>;
    }
  {
    return pred_.ready_hint();
  }
  // Released with the hint: resume the coroutine where it resumes.
  void resume_direct() noexcept {
    direct_ = true;
    if (executor* const ex = target_.ex)
      ex->schedule(target_.handle);
    else
      target_.handle.resume();
  }
  // Released by a notify: the poller polls again where the coroutine resumes.
  void resume_poller() noexcept {
    std::coroutine_handle<> const p = this->waker_of().poller();
    if (executor* const ex = target_.ex)
      ex->schedule(p);
    else
      p.resume();
  }

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
    stopped_here_ = true;
    return false;
  }

  // The poller's turn.
  static std::coroutine_handle<> repoll_wait(detail::wait_record* base) noexcept {
    auto* const self = static_cast<wait_until_awaitable*>(static_cast<turn_base*>(base));
    switch (self->turn(false)) {
      case outcome::ready:
        return self->target_.handle;
      case outcome::stopped:
        self->destroy_stop_callback();
        if (self->target_.stops_in_place()) {
          self->target_.resume_stopped();
          return std::noop_coroutine();
        }
        return self->target_.handle;
      case outcome::suspended:
        break;
    }
    return std::noop_coroutine();
  }

  Pred pred_;
  detail::predicate_box<Pred> box_;
  resume_target target_{};
  void* stop_callback_ = nullptr;
  void (*stop_destroy_)(void*) noexcept = nullptr;
  bool stopped_here_ = false;  // stopped before the wait began (the token)
  bool direct_ = false;        // released directly: await_resume ends the wait and polls
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
