// rouse/channel/detail/waiter.hpp — how a channel operation blocks and is woken.
//
// Internal to rouse's MPMC channels (bounded, unbounded, rendezvous) and to
// channel::select. Users never name these types.
//
//   context      one per blocking call (a send, a recv, or a whole select), on
//                the blocked thread's stack. A `selected` word says which of
//                the call's registered operations won (exactly one: one CAS),
//                and a futex word the thread sleeps on.
//   waiter       one registration of one operation in one channel's queue (a
//                select registers one per case), on the blocked thread's stack.
//   waiter_queue an intrusive FIFO of waiters; the caller holds a lock.
//   sync_waker   a waiter_queue with its lock and an `empty` flag, so that a
//                notify with nobody registered is one plain load (DESIGN rule 2).
//   list_lock    the small futex lock those queues use.
//   backoff      bounded spinning, then yielding, before a call registers.
//
// Lifecycle. A blocked call makes a context, registers one waiter per
// operation, re-checks its channels (the Dekker pairing below), then waits.
// Another thread that makes one of the operations possible picks the first
// waiter whose context it can claim (CAS `selected` 0 -> waiter address),
// unlinks it, and unparks the context. close() claims every context with
// `closed`. A timeout claims the context itself with `aborted`. Whoever wins
// the CAS is the only one who may touch the context afterwards, and its last
// touch is the store of `notified` (see context::unpark): after the blocked
// thread sees `notified` nobody touches its stack any more, so contexts and
// waiters can live on the stack (DESIGN rule 3) with no reference counting.
//
// Misuse: none reachable by users; the channel code keeps the rules above.
// sizeof: context 16 bytes (static_assert below), waiter 40 bytes.
// Fairness: waiters are woken in registration order (FIFO).
// Cost with nobody waiting: sync_waker::notify() is one seq_cst load.
// Across processes: no (the queues hold pointers into thread stacks).
//
// context::state (the futex word)
//   running  = 0   the thread has not announced that it sleeps
//   parked   = 1   the thread sleeps or is about to (futex wait on 1)
//   waking   = 2   the claimer is inside its wake system call
//   notified = 3   the claimer is done with this context; the thread may return
//   Transitions: running -> parked (the thread), running -> notified and
//   parked -> waking -> notified (the one claimer).
//
// context::selected
//   0 waiting, 1 aborted (timed out, or the caller saw its channel ready while
//   registering), 2 closed, otherwise the address of the winning waiter.
//
// Memory ordering. (A)/(B) Dekker pairing between an operation that makes a
// channel ready and a waiter that registers: the notifier's seq_cst RMW on
// its channel index (A1) is followed by the seq_cst load of `empty_` in
// notify() (A2); the registering thread's seq_cst store of `empty_ = 0` (B1)
// is followed by its seq_cst re-check of the channel indices (B2). In the
// single total order either A2 sees B1 (the notifier finds the waiter) or B2
// sees A1 (the waiter sees the channel ready and aborts its own wait), so no
// wake-up is lost. Everything the claimer writes before unpark() (a value in
// a rendezvous packet, the `selected` word) happens-before the blocked
// thread's return: the release store of `notified` pairs with the acquire
// loads of `state` in wait().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#if !defined(ROUSE_MODEL_RELACY)
#include <thread>
#endif

#include "rouse/detail/sync_types.hpp"

namespace rouse::channel::detail {

namespace d = ::rouse::detail;

// Gives the processor away (a peer that holds up progress may be
// preempted on an oversubscribed machine). Under the model checker, a
// scheduling point.
inline void yield_now() noexcept {
#if defined(ROUSE_MODEL_RELACY)
  d::spin_pause();
#else
  std::this_thread::yield();
#endif
}

// Two shapes of waiting, both ending in "give up" (the caller registers
// and sleeps):
//
//   spin()     after a lost CAS race: 1, 2, 4 ... 64 pauses, never a yield
//              (crossbeam's; the winner is running and done in nanoseconds)
//   snooze()   while waiting for another thread to act (room, a message, a
//              slot being written): one pause, then a yield per poll, up to
//              `yield_limit` polls
//
// backoff(backoff::hand_off) keeps crossbeam's shape for snooze() too —
// 1, 2, 4 ... 64 pauses, then yields, 11 polls in all — for a thread that
// waits for one specific hand-off already under way (a parked select or
// rendezvous context being claimed): there the peer is running and answers
// within a round trip, and a yield per poll would add a system call to
// every hand-off (channel.rendezvous measured ~300 ns with pauses first
// and ~1.2 us with yields first, vCPUs ~100 ns apart; the same ~1.1-1.2 us
// either way ~400 ns apart).
//
// Why snooze yields at once. On the 2-vCPU VMs rouse is measured on, the
// thread waited for is often on the waiter's own CPU (the kernel places a
// woken thread beside its waker): there a pause spin burns the time slice
// the peer needs, and a yield hands it over. When the peer runs on the other
// CPU a yield is a system call that returns at once (0.3-1.2 us on these
// VMs, depending on the day), which spaces the polls (each poll of a line
// the peer keeps writing takes it away) and lets a batch build up. Measured (bounded 1024, 4M messages, medians of 5,
// interleaved; vCPUs ~100 ns and ~400 ns apart): 1 pause then 16 yields
// against crossbeam's 1..64 pauses then 4 yields gave 72-150 vs 14-41 M
// msgs/s for 1 producer/1 consumer, 89-105 vs 23-38 for 4/1, 94-97 vs 14-35
// for 4/4; 2 and 4 pauses before the first yield measured in between. The
// sleep these polls put off costs ~100-250 us per announce there (a wake of
// a halted vCPU, plus the waker's system call).
// Under the model checker every pause is a scheduling point, so the model
// build keeps the same shape with two steps (the protocol, not the tuning,
// is what the model checks).
class backoff {
 public:
#if defined(ROUSE_MODEL_RELACY)
  static constexpr unsigned spin_limit = 0;
  static constexpr unsigned snooze_spin_limit = 1;
  static constexpr unsigned yield_limit = 1;
#else
  static constexpr unsigned spin_limit = 6;
  static constexpr unsigned snooze_spin_limit = 1;
  static constexpr unsigned yield_limit = 16;
#endif
  struct hand_off_t {};
  static constexpr hand_off_t hand_off{};

  backoff() noexcept = default;
#if defined(ROUSE_MODEL_RELACY)
  explicit backoff(hand_off_t) noexcept {}
#else
  explicit backoff(hand_off_t) noexcept : snooze_spin_limit_(spin_limit + 1), yield_limit_(10) {}
#endif

  // After a failed CAS: a short spin, never a yield.
  void spin() noexcept {
    for (unsigned i = 0; i < (1u << (step_ < spin_limit ? step_ : spin_limit)); ++i) d::spin_pause();
    if (step_ <= spin_limit) ++step_;
  }
  // While waiting for another thread: a pause first, then yields.
  void snooze() noexcept {
    if (step_ < snooze_spin_limit_) {
      for (unsigned i = 0; i < (1u << step_); ++i) d::spin_pause();
    } else {
      yield_now();
    }
    if (step_ <= yield_limit_) ++step_;
  }
  [[nodiscard]] bool completed() const noexcept { return step_ > yield_limit_; }

 private:
  unsigned step_ = 0;
  unsigned snooze_spin_limit_ = snooze_spin_limit;
  unsigned yield_limit_ = yield_limit;
};

// A three-state futex lock guarding a waiter queue. Critical sections are a
// few pointer writes, so it spins a little before sleeping.
class list_lock {
 public:
  void lock() noexcept {
    std::uint32_t expected = unlocked;
    // Ordering: acquire pairs with the release exchange in unlock().
    if (!word_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) [[unlikely]]
      lock_contended();
  }
  void unlock() noexcept {
    // Ordering: release publishes the critical section to the next lock().
    if (word_.exchange(unlocked, std::memory_order_release) == contended) [[unlikely]] d::wake_one(word_);
  }

 private:
  static constexpr std::uint32_t unlocked = 0, locked = 1, contended = 2;
#if defined(ROUSE_MODEL_RELACY)
  static constexpr int lock_spins = 1;
#else
  static constexpr int lock_spins = 64;  // about the length of a critical section, a few hundred ns
#endif

  [[gnu::noinline, gnu::cold]] void lock_contended() noexcept {
    for (int i = 0; i < lock_spins; ++i) {
      std::uint32_t expected = unlocked;
      // Ordering: acquire, as in lock().
      if (word_.load(std::memory_order_relaxed) == unlocked &&
          word_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                        std::memory_order_relaxed))
        return;
      d::spin_pause();
    }
    // Ordering: acquire, as in lock(). Taking it as `contended` keeps the
    // unlock that follows waking the next sleeper.
    while (word_.exchange(contended, std::memory_order_acquire) != unlocked) d::wait(word_, contended);
  }

  d::atomic<std::uint32_t> word_{unlocked};
};

class lock_guard {
 public:
  explicit lock_guard(list_lock& l) noexcept : l_(l) { l_.lock(); }
  ~lock_guard() { l_.unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  list_lock& l_;
};

class context {
 public:
  static constexpr std::uintptr_t waiting = 0, aborted = 1, closed = 2;

  context() = default;
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // Claims this context for `value` (a waiter address, `aborted` or
  // `closed`). Exactly one claim succeeds per context.
  bool try_select(std::uintptr_t value) noexcept {
    std::uintptr_t expected = waiting;
    // Ordering: acq_rel. The winner's later writes reach the blocked thread
    // through unpark()'s release store, not through this word; acquire keeps
    // the winner's reads of the packet after its claim.
    return selected_.compare_exchange_strong(expected, value, std::memory_order_acq_rel,
                                             std::memory_order_acquire);
  }

  // Whether nobody has claimed it yet (a snapshot).
  [[nodiscard]] bool is_waiting() const noexcept {
    // Ordering: relaxed; a hint for readiness checks, which the claim's CAS confirms.
    return selected_.load(std::memory_order_relaxed) == waiting;
  }

  // Called by the one thread whose try_select() won, after it has done its
  // part (a rendezvous transfer); the last touch of this context.
  void unpark() noexcept {
    std::uint32_t expected = running;
    // Ordering: release pairs with the acquire loads of state_ in wait(): the
    // claim and any packet transfer happen-before the blocked thread's return.
    if (state_.compare_exchange_strong(expected, notified, std::memory_order_release,
                                       std::memory_order_relaxed))
      return;  // the thread had not gone to sleep: no system call
    // expected == parked, and only this thread may change it now.
    state_.store(waking, std::memory_order_relaxed);
    d::wake_one(state_);
    // Ordering: release, as above. After this store the context may be gone.
    state_.store(notified, std::memory_order_release);
  }

  // Blocks until the context is claimed and its claimer is done. With a
  // deadline, claims it for `aborted` on timeout unless someone claimed it
  // first. Returns the claim. The caller must not call wait() after its own
  // try_select() succeeded (nobody would unpark it).
  template <class Deadline>
  std::uintptr_t wait(const Deadline& deadline) noexcept {
    backoff b(backoff::hand_off);
    while (!b.completed()) {
      // Ordering: acquire pairs with the release store in unpark().
      if (state_.load(std::memory_order_acquire) == notified) return selected_.load(std::memory_order_relaxed);
      b.snooze();
    }
    return wait_parked(deadline);
  }

 private:
  static constexpr std::uint32_t running = 0, parked = 1, waking = 2, notified = 3;

  template <class Deadline>
  [[gnu::noinline]] std::uintptr_t wait_parked(const Deadline& deadline) noexcept {
    std::uint32_t expected = running;
    // Ordering: acquire (on failure it read unpark()'s release store of
    // notified, and pairs with it).
    if (!state_.compare_exchange_strong(expected, parked, std::memory_order_acquire,
                                        std::memory_order_acquire))
      return selected_.load(std::memory_order_relaxed);
    bool timed = deadline.timed();
    for (;;) {
      // Ordering: acquire pairs with unpark()'s release store of notified.
      std::uint32_t const s = state_.load(std::memory_order_acquire);
      if (s == notified) return selected_.load(std::memory_order_relaxed);
      if (s == waking) {  // the claimer is between its wake call and its last store
        yield_now();
        continue;
      }
      if (!timed) {
        d::wait(state_, parked);
        continue;
      }
      if (deadline.wait(state_, parked) == d::wait_result::timed_out && try_select(aborted))
        return aborted;  // nobody claimed it: nobody will touch it again
      if (selected_.load(std::memory_order_acquire) != waiting) timed = false;  // claimed: wait for notified
    }
  }

  d::atomic<std::uintptr_t> selected_{waiting};
  d::atomic<std::uint32_t> state_{running};
};
#if !defined(ROUSE_MODEL_RELACY)
static_assert(sizeof(context) == 16);
#endif

// Deadline policies for context::wait and the channel loops.
struct no_deadline {
  static constexpr bool timed() noexcept { return false; }
  static constexpr bool expired() noexcept { return false; }
  static d::wait_result wait(const d::atomic<std::uint32_t>& w, std::uint32_t v) noexcept {
    d::wait(w, v);
    return d::wait_result::woken;
  }
};
// try_ operations: never wait.
struct now_deadline {
  static constexpr bool timed() noexcept { return true; }
  static constexpr bool expired() noexcept { return true; }
  static d::wait_result wait(const d::atomic<std::uint32_t>&, std::uint32_t) noexcept {
    return d::wait_result::timed_out;
  }
};
// `at` is in the clock's own duration (platform::clock_deadline()), so the
// comparison with Clock::now() cannot overflow.
template <class Clock, class Duration>
struct until_deadline {
  std::chrono::time_point<Clock, Duration> at;
  static constexpr bool timed() noexcept { return true; }
  bool expired() const noexcept { return Clock::now() >= at; }
  d::wait_result wait(const d::atomic<std::uint32_t>& w, std::uint32_t v) const noexcept {
    return d::wait_until(w, v, at);
  }
};

// One registration of one operation. `packet` points at the rendezvous
// transfer area of a zero-capacity channel (nullptr elsewhere).
struct waiter {
  context* cx = nullptr;
  void* packet = nullptr;
  waiter* prev = nullptr;
  waiter* next = nullptr;
  bool linked = false;

  std::uintptr_t id() const noexcept { return reinterpret_cast<std::uintptr_t>(this); }
};

// FIFO of waiters. Every member function requires the owner's lock.
class waiter_queue {
 public:
  void push_back(waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    if (tail_) tail_->next = &w;
    else head_ = &w;
    tail_ = &w;
    w.linked = true;
  }
  void remove(waiter& w) noexcept {
    if (!w.linked) return;
    if (w.prev) w.prev->next = w.next;
    else head_ = w.next;
    if (w.next) w.next->prev = w.prev;
    else tail_ = w.prev;
    w.prev = w.next = nullptr;
    w.linked = false;
  }
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

  // Claims the first waiter whose context is not `self` and is still
  // waiting, unlinks it and returns it (the caller then does its part and
  // unparks w->cx). nullptr when none.
  waiter* try_select(const context* self) noexcept {
    for (waiter* w = head_; w; w = w->next) {
      if (w->cx == self) continue;
      if (w->cx->try_select(w->id())) {
        remove(*w);
        return w;
      }
    }
    return nullptr;
  }
  // Whether try_select(self) could find a waiter (rendezvous readiness).
  [[nodiscard]] bool has_other(const context* self) const noexcept {
    for (waiter* w = head_; w; w = w->next)
      if (w->cx != self && w->cx->is_waiting()) return true;
    return false;
  }
  // Claims every waiting context for `closed` and unparks it. The waiters
  // stay linked; each unregisters itself when it wakes.
  void disconnect() noexcept {
    for (waiter* w = head_; w; w = w->next)
      if (w->cx->try_select(context::closed)) w->cx->unpark();
  }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
};

// The waiters on one side of a bounded or unbounded channel.
class sync_waker {
 public:
  // (B1) of the Dekker pairing: the caller re-checks its channel (B2) after.
  void register_waiter(waiter& w) noexcept {
    lock_guard g(lock_);
    queue_.push_back(w);
    // (B1) seq_cst: pairs with (A2) in notify().
    empty_.store(0, std::memory_order_seq_cst);
  }
  void unregister(waiter& w) noexcept {
    lock_guard g(lock_);
    queue_.remove(w);
    // Ordering: relaxed; only a hint for notify(), re-written under the lock.
    if (queue_.empty()) empty_.store(1, std::memory_order_relaxed);
  }
  // The sleeping half of a blocking send or receive, once its attempts and
  // spinning found the channel full (or empty): register (B1), re-check
  // with `ready` (B2: true when an attempt could now succeed or the channel
  // closed), and sleep until a notify claims this waiter or the deadline
  // passes. Returns when the caller should attempt again (and check its
  // deadline); every flavour's blocking loop goes through here.
  template <class Deadline, class Ready>
  void park(const Deadline& deadline, Ready ready) noexcept {
    context cx;
    waiter w{&cx};
    register_waiter(w);
    // (B2) after (B1) in register_waiter().
    if (ready()) {
      if (cx.try_select(context::aborted)) {
        unregister(w);
        return;
      }
    }
    if (cx.wait(deadline) != w.id()) unregister(w);
  }

  // Wakes one waiter, if any. Called after the caller's (A1).
  void notify() noexcept {
    // (A2) seq_cst: pairs with (B1) in register_waiter().
    if (empty_.load(std::memory_order_seq_cst) == 0) [[unlikely]] notify_slow();
  }
  // Claims and wakes every waiter for `closed`.
  void disconnect() noexcept {
    lock_guard g(lock_);
    queue_.disconnect();
  }

 private:
  [[gnu::noinline, gnu::cold]] void notify_slow() noexcept {
    context* cx = nullptr;
    {
      lock_guard g(lock_);
      if (waiter* w = queue_.try_select(nullptr)) cx = w->cx;
      // Ordering: relaxed, as in unregister().
      if (queue_.empty()) empty_.store(1, std::memory_order_relaxed);
    }
    // Outside the lock: the claimed context stays alive until unpark() ends.
    if (cx) cx->unpark();
  }

  list_lock lock_;
  d::atomic<std::uint32_t> empty_{1};
  waiter_queue queue_;
};

}  // namespace rouse::channel::detail
