// rouse/async/atomic_waker.hpp — one waker slot that a consumer fills and
// any thread may empty and wake.
//
//   rouse::async::atomic_waker aw;
//   // consumer (one at a time)                 // any producer
//   aw.register_waker(my_waker);                 publish(item);
//   if (!ready()) suspend();                     aw.wake();
//
// Purpose: the classic single-slot waker (futures' AtomicWaker). The
// consumer registers the waker that should run when its condition may have
// changed, then re-checks the condition; a producer changes the condition,
// then calls wake() (take the waker out and wake it) or take() (take it out
// and decide later). A wake that finds no waker does nothing: the consumer
// that registers next re-checks the condition and sees the change.
//
// Lifecycle and rules
// - register_waker() is called by one thread at a time (the consumer; a
//   second registrant concurrent with the first is misuse, diagnosed in
//   debug builds when the two calls overlap). wake() and take() may be
//   called by any number of threads at any time.
// - The slot holds a clone of the registered waker until a wake()/take()
//   takes it, or a later register_waker() replaces it, or the atomic_waker
//   is destroyed. Re-registering a waker that will_wake() the stored one
//   keeps the stored clone (no clone, no drop).
// - register_waker() during a concurrent wake() does not store the waker: it
//   calls w.wake_by_ref() at once (the consumer is polled again and
//   re-registers; futures calls this its "executor-mediated spinlock").
// - Destruction: once no call is running; the stored waker is dropped.
//
// Misuse: two register_waker() calls at the same time ("register_waker()
// called concurrently") — debug builds abort when a register finds
// REGISTERING set. A wake of a waker whose referent is gone is the waker's
// contract (rouse/detail/waker.hpp), not this type's.
//
// sizeof: 24 bytes on 64-bit (a 32-bit state word and a 16-byte waker);
// static_assert below. Fairness: n/a (one consumer). Across processes: no.
//
// Costs (atomic read-modify-writes on the state word; clone/drop/wake are
// the waker table's calls, counted by tests/unit/async_atomic_waker_test):
//   register_waker, new waker:   2 RMW, 1 clone, 1 drop if a waker was stored
//   register_waker, same waker:  2 RMW, 0 clone, 0 drop
//   wake(), waker stored:        2 RMW, 1 wake (which gives the clone up)
//   wake(), nothing stored:      2 RMW, no call (the cost of nobody waiting)
//   take():                      2 RMW (1 when another party is responsible)
// diatomic_waker (rouse/async/diatomic_waker.hpp) is cheaper when the
// consumer waits repeatedly, and its idle notify can be a load.
//
// State word
//   waiting     = 0  nobody is registering or waking: the slot is at rest
//   registering = 1  register_waker() owns the slot (it is writing it)
//   waking      = 2  a wake()/take() owns the slot (it is taking it out)
//   registering|waking = 3  a take() came in while a register held the
//               slot: the registrant takes and wakes the waker itself
//
//   method             before                 after              effect
//   register_waker     waiting                registering        store clone (unless will_wake)
//     then             registering            waiting            done
//     or               registering|waking     waiting            take the waker, wake it
//   register_waker     waking                 waking             w.wake_by_ref(), store nothing
//   take / wake        waiting                waking             take the waker out
//     then             waking                 waiting            (wake it, outside)
//   take / wake        registering            registering|waking the registrant wakes
//   take / wake        waking, or 3           unchanged          the other party wakes
//
// Memory ordering. Everything a producer did before wake()/take()
// happens-before the consumer's re-check that follows the register_waker()
// it races with, or the waker it takes was registered before its RMW (and
// the wake it makes reaches the consumer). Every change of the state word
// is a read-modify-write, so a producer's RMW (release) heads a release
// sequence that every later RMW continues: the consumer's register (acquire)
// that reads any later value synchronizes with it. The predicate the
// producer publishes may therefore use relaxed atomics.
#pragma once

#include <cstdint>
#include <utility>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waker.hpp"

namespace rouse::async {

// The names rouse/async/waker.hpp gives them (that header's makers need the
// async environment, which a model test does not build; these do not).
using waker = ::rouse::detail::waker;
using waker_vtable = ::rouse::detail::waker_vtable;

namespace detail {

// One waker kept as two plain words, so that a model test sees every access
// to it (rouse::detail::unsync). Its owner's protocol decides who may touch
// it when; the cell itself synchronizes nothing. Also diatomic_waker's slots.
class waker_cell {
 public:
  ROUSE_CONSTEXPR waker_cell() noexcept = default;
  waker_cell(const waker_cell&) = delete;
  waker_cell& operator=(const waker_cell&) = delete;
  ~waker_cell() { reset(); }

  [[nodiscard]] bool empty() noexcept { return ::rouse::detail::unsync_ref(vtable_) == nullptr; }
  // Whether waking the stored waker does what waking `w` does.
  [[nodiscard]] bool will_wake(const waker& w) noexcept {
    const waker_vtable* const vt = ::rouse::detail::unsync_ref(vtable_);
    const void* const data = ::rouse::detail::unsync_ref(data_);
    return vt != nullptr && vt == w.vtable() && data == w.data();
  }
  // Stores a clone of `w`, dropping the stored waker, unless the stored one
  // will_wake(w) (then nothing is called).
  void assign(const waker& w) noexcept {
    if (will_wake(w)) return;
    reset();
    if (const waker_vtable* const vt = w.vtable()) {
      ::rouse::detail::unsync_ref(data_) = vt->clone(w.data());
      ::rouse::detail::unsync_ref(vtable_) = vt;
    }
  }
  // Moves the stored waker out (the cell is empty afterwards).
  [[nodiscard]] waker take() noexcept {
    const waker_vtable* const vt = ::rouse::detail::unsync_ref(vtable_);
    if (vt == nullptr) return waker{};
    ::rouse::detail::unsync_ref(vtable_) = nullptr;
    return waker(::rouse::detail::unsync_ref(data_), vt);
  }
  void wake_by_ref() noexcept {
    if (const waker_vtable* const vt = ::rouse::detail::unsync_ref(vtable_))
      vt->wake_by_ref(::rouse::detail::unsync_ref(data_));
  }
  void reset() noexcept {
    if (const waker_vtable* const vt = ::rouse::detail::unsync_ref(vtable_)) {
      ::rouse::detail::unsync_ref(vtable_) = nullptr;
      vt->drop(::rouse::detail::unsync_ref(data_));
    }
  }

 private:
  ::rouse::detail::unsync<const void*> data_{nullptr};
  ::rouse::detail::unsync<const waker_vtable*> vtable_{nullptr};
};

}  // namespace detail

class atomic_waker {
 public:
  static constexpr std::uint32_t waiting = 0;      // at rest
  static constexpr std::uint32_t registering = 1;  // a register owns the slot
  static constexpr std::uint32_t waking = 2;       // a take owns the slot

  ROUSE_CONSTEXPR atomic_waker() noexcept = default;
  atomic_waker(const atomic_waker&) = delete;
  atomic_waker& operator=(const atomic_waker&) = delete;

  // Stores (a clone of) `w` as the waker the next wake() wakes. Re-check the
  // condition after this returns. One registrant at a time.
  void register_waker(const waker& w) noexcept {
    std::uint32_t s = waiting;
    // waiting -> registering. Ordering: acquire: pairs with the release of
    // take()'s unlock (the taker's read of the slot is done before we write
    // it), and, on failure, with take()'s fetch_or (we saw `waking`: its
    // caller's writes are visible to the re-check after wake_by_ref).
    if (state_.compare_exchange_strong(s, registering, std::memory_order_acquire, std::memory_order_acquire)) {
      slot_.assign(w);
      s = registering;
      // registering -> waiting. Ordering: acq_rel: release publishes the slot
      // to take()'s fetch_or (acquire); acquire, on failure, pairs with the
      // release of the take() that set `waking` meanwhile.
      if (state_.compare_exchange_strong(s, waiting, std::memory_order_acq_rel, std::memory_order_acquire)) return;
      register_raced_with_take(s);
      return;
    }
    if (s == waking) {
      // A wake is taking the slot now: it may take the previous waker, so
      // this one is woken at once, and the consumer polls again.
      w.wake_by_ref();
      return;
    }
    ROUSE_CHECK_USAGE(false, "rouse::async::atomic_waker", "register_waker() called concurrently from two threads");
  }

  // Takes the registered waker out and wakes it; does nothing if none is
  // registered (or another party is responsible for it now).
  void wake() noexcept {
    if (waker w = take()) std::move(w).wake();
  }

  // Takes the registered waker out (empty if none, or if another wake or a
  // register in progress is responsible for it).
  [[nodiscard]] waker take() noexcept {
    // waiting -> waking, registering -> registering|waking, else no change.
    // Ordering: acq_rel: acquire pairs with the release of register's
    // unlocking compare-exchange (the slot's content); release heads the
    // release sequence that the registrant's acquire reads (our caller's
    // writes reach its re-check).
    std::uint32_t const before = state_.fetch_or(waking, std::memory_order_acq_rel);
    if (before != waiting) return waker{};  // the registrant, or the other taker, wakes
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::atomic_waker_releases_before_take)) {
      // BROKEN on purpose (model tests only): unlocks, then reads the slot.
      state_.exchange(waiting, std::memory_order_release);
      return slot_.take();
    }
    waker taken = slot_.take();
    // waking -> waiting (nobody else changes the word while it is `waking`).
    // An RMW, not a store: it continues the release sequences of the
    // fetch_or's of takers that found `waking`, so a registrant that reads
    // it synchronizes with them too. Ordering: release: pairs with the
    // acquire of register_waker()'s first compare-exchange.
    state_.exchange(waiting, std::memory_order_release);
    return taken;
  }

  // The state word (relaxed), for tests and diagnostics.
  [[nodiscard]] std::uint32_t state_for_testing() const noexcept { return state_.load(std::memory_order_relaxed); }

 private:
  [[gnu::noinline]] void register_raced_with_take([[maybe_unused]] std::uint32_t s) noexcept {
    ROUSE_CHECK_USAGE(s == (registering | waking), "rouse::async::atomic_waker",
                      "register_waker() called concurrently from two threads");
    waker taken = slot_.take();
    // registering|waking -> waiting. Ordering: release: our read of the slot
    // is done before the next register writes it (its acquire).
    state_.exchange(waiting, std::memory_order_release);
    std::move(taken).wake();
  }

  ::rouse::detail::atomic<std::uint32_t> state_{waiting};
  detail::waker_cell slot_;
};

static_assert(::rouse::detail::in_model || sizeof(void*) != 8 || sizeof(atomic_waker) == 24);

}  // namespace rouse::async
