// rouse/channel/oneshot.hpp — a channel for exactly one value.
//
//   auto [tx, rx] = rouse::channel::oneshot<T>();
//   std::move(tx).send(value);        // consumes the sender
//   auto r = rx.recv();               // r.value(), or r.status() == closed
//
// Purpose: hand one value from one thread to another (a reply, a result, a
// completion) with one allocation and one atomic read-modify-write per side —
// std::promise / std::future without the mutex, the condition variable and
// the shared-state reference counts.
//
// Lifecycle
// - oneshot<T>() allocates one shared state and returns a sender and a
//   receiver, both move-only handles that own a share of it. The state is
//   freed by whichever handle lets go last; the value, if it was sent and never
//   received, is destroyed exactly once, by that handle. Either handle may go
//   away at any time, even while the other is inside its call: a sender that
//   must wake the receiver keeps its share across the wake (READY|WAITING
//   below), so the word outlives every access made to it.
// - oneshot_sender::send(v) is rvalue-qualified: `std::move(tx).send(v)`. It
//   either publishes the value (status ok) or, when the receiver is already
//   gone, hands it back (status closed, value() is the value). Either way the
//   sender is empty afterwards. Destroying a sender that never sent closes the
//   channel: the receiver wakes with status closed.
// - oneshot_receiver: recv() blocks, recv_for / recv_until block with a
//   deadline (status timed_out, never early), try_recv() never blocks (status
//   empty). The first receive that gets the value (or closed) lets go of the
//   shared state; later receives report closed. Destroying the receiver makes a
//   later send() hand its value back.
//
// Misuse and what happens
// - send() on a moved-from or already-used sender: diagnosed in debug builds;
//   in release builds it hands the value back with status closed.
// - Using one receiver from two threads at once is a data race (handles are
//   owned by one thread at a time, like std::future); not diagnosed.
// - T must be nothrow-move-constructible and nothrow-destructible
//   (static_assert): the value is moved into and out of the shared state and
//   a throwing move could lose it. T needs no default constructor.
//
// sizeof: each handle is one pointer (static_assert). The shared state is a
// 32-bit word plus storage for one T, in one allocation.
// Fairness: one sender, one receiver; nothing to be fair about.
// Cost with nobody waiting: send() is one load and one compare-exchange;
// recv()/try_recv() of a ready value is one load (the receiver then owns the
// state outright and frees it without another atomic). No system call: the
// sender wakes only when the receiver announced sleep (WAITING), and then it
// makes exactly one FUTEX_WAKE.
// Across processes: no (the state is heap memory of this process).
// Blocking: recv() spins (rouse::detail::oneshot_spin: 100 pauses), then sleeps on the state
// word through the wait layer (detail/sync_types.hpp).
//
// State word (32 bits, one per channel):
//
//   bit  name      set by     meaning
//   0    READY     sender     a value is in the slot (sender's release CAS)
//   1    TAKEN     receiver   the value was moved out again (set with RX_DONE)
//   2    CLOSED    sender     the sender went away without sending
//   3    TX_DONE   sender     the sender will never touch the state again
//   4    RX_DONE   receiver   the receiver will never touch the state again
//   5    WAITING   receiver   the receiver sleeps, or is about to, on the word
//
//   state                       who holds   meaning
//   0                           tx, rx      empty: nothing sent
//   WAITING                     tx, rx      empty, the receiver sleeps
//   READY|TX_DONE               rx          ready: the receiver owns state+value
//   READY[|WAITING]             tx, rx      ready, the sender is still waking
//                                           the receiver (it keeps its share
//                                           across the wake, so the word
//                                           outlives the FUTEX_WAKE)
//   CLOSED|TX_DONE              rx          closed: the receiver gets `closed`
//   CLOSED[|WAITING]            tx, rx      closed, the sender is still waking
//   RX_DONE                     tx          the receiver is gone: send() hands
//                                           its value back
//   READY|RX_DONE               tx          the receiver dropped an unread value
//                                           during the sender's wake; the
//                                           sender destroys it
//   READY|TAKEN|RX_DONE         tx          received during the sender's wake
//   CLOSED|RX_DONE              tx          both done, the sender frees
//
// The book's one-shot channel (Rust Atomics and Locks, ch. 5) has the phases
// EMPTY, WRITING, READY, READING in a byte. Here the handles are unique, so
// the two transient phases need no bits: WRITING is the sender constructing
// the value in the slot while the word still says empty (nobody else may touch
// the slot before READY), and READING is the receiver moving it out after it
// saw READY (the sender never touches the slot after READY); TAKEN records that
// the read finished, for the one case where the other side frees the state.
// What the word adds instead is ownership: TX_DONE / RX_DONE make the handle
// that lets go last the one that frees, so one word does the work of the
// book's Arc as well.
//
// Memory ordering: everything the sender did before send() happens-before the
// receive that returns the value (release CAS setting READY, acquire load that
// sees it). Everything either handle did to the state happens-before it is
// freed (every release of a share is an acq_rel RMW or follows an acquire
// load that saw the other side's DONE bit).
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "rouse/channel/result.hpp"
#include "rouse/detail/channel_slot.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::channel {

template <class T>
class oneshot_sender;
template <class T>
class oneshot_receiver;

namespace detail {

template <class T>
struct oneshot_state {
  static constexpr std::uint32_t ready = 1u << 0;
  static constexpr std::uint32_t taken = 1u << 1;
  static constexpr std::uint32_t closed = 1u << 2;
  static constexpr std::uint32_t tx_done = 1u << 3;
  static constexpr std::uint32_t rx_done = 1u << 4;
  static constexpr std::uint32_t waiting = 1u << 5;

  rouse::detail::atomic<std::uint32_t> word{0};
  rouse::detail::channel_slot<T> slot;

  // The sender publishes `bit` (READY or CLOSED). Returns false, having
  // changed nothing, when the receiver is already gone; the caller then owns
  // the state alone.
  bool publish(std::uint32_t bit) noexcept {
    // Ordering: acquire pairs with the receiver's acq_rel RMW that set RX_DONE,
    // so a caller that frees the state does so after the receiver's last access.
    std::uint32_t w = word.load(std::memory_order_acquire);
    for (;;) {
      if (w & rx_done) return false;
      // Keep the sender's share while a wake is owed: the receiver may see
      // READY/CLOSED before the wake and would otherwise free the word under it.
      std::uint32_t const desired = w | bit | ((w & waiting) ? 0u : tx_done);
      // Ordering: release publishes the slot (and everything before send()) to
      // the receiver's acquire load of READY; acquire on failure as above.
      // EMPTY -> READY|TX_DONE (or CLOSED|TX_DONE); WAITING -> READY|WAITING.
      if (word.compare_exchange_weak(w, desired, std::memory_order_acq_rel, std::memory_order_acquire)) break;
    }
    if (w & waiting) wake_and_let_go();
    return true;
  }

  // The sender's wake of a sleeping receiver, then its release of its share.
  [[gnu::noinline, gnu::cold]] void wake_and_let_go() noexcept {
    rouse::detail::wake_one(word);
    // Ordering: acq_rel. Release: the sender's accesses before the receiver
    // frees. Acquire: pairs with the receiver's acq_rel RMW setting RX_DONE,
    // so its take/destroy of the value happens-before the sender's cleanup.
    std::uint32_t const prev = word.fetch_or(tx_done, std::memory_order_acq_rel);
    if (prev & rx_done) destroy_as_last(prev);
  }

  // Called by the handle that lets go last, with the word it last saw.
  void destroy_as_last(std::uint32_t w) noexcept {
    if ((w & ready) && !(w & taken)) slot.destroy();
    delete this;
  }
};

}  // namespace detail

// The sending half. Move-only; one pointer.
template <class T>
class oneshot_sender {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "rouse::channel::oneshot<T> needs a nothrow move constructor and destructor");
  using state = detail::oneshot_state<T>;

 public:
  // An empty sender (as if moved from); send() on it is misuse.
  oneshot_sender() noexcept = default;
  oneshot_sender(oneshot_sender&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  oneshot_sender& operator=(oneshot_sender&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  oneshot_sender(const oneshot_sender&) = delete;
  oneshot_sender& operator=(const oneshot_sender&) = delete;
  ~oneshot_sender() { close(); }

  // Sends `value` and gives up the sender. ok: the receiver will get it (or it
  // is destroyed with the state if the receiver goes away unread). closed: the
  // receiver was already gone; value() hands `value` back.
  send_result<T> send(T value) && {
    ROUSE_CHECK_USAGE(state_ != nullptr, "rouse::channel::oneshot_sender",
                      "send() on a moved-from or already-used sender");
    if (state_ == nullptr) return send_result<T>(status::closed, std::move(value));
    state* const s = std::exchange(state_, nullptr);
    // Ordering: acquire, as in publish(): a gone receiver lets us free at once.
    if (s->word.load(std::memory_order_acquire) & state::rx_done) {
      delete s;
      return send_result<T>(status::closed, std::move(value));
    }
    if (rouse::detail::model_fault_on(rouse::detail::model_fault::oneshot_ready_before_value)) {
      if (!s->publish(state::ready)) {
        delete s;
        return send_result<T>(status::closed, std::move(value));
      }
      s->slot.construct(std::move(value));
      return send_result<T>();
    }
    // WRITING: the slot is the sender's alone until READY is published.
    s->slot.construct(std::move(value));
    if (s->publish(state::ready)) return send_result<T>();
    // The receiver left while we wrote: take the value back, free the state.
    send_result<T> back(status::closed, std::move(s->slot.get()));
    s->slot.destroy();
    delete s;
    return back;
  }

  // True when the receiver is gone (a send would hand its value back), or this
  // sender is empty. A hint: the receiver may leave right after it returns false.
  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: relaxed — a snapshot; send() re-reads with acquire.
    return state_ == nullptr || (state_->word.load(std::memory_order_relaxed) & state::rx_done) != 0;
  }

 private:
  template <class U>
  friend std::pair<oneshot_sender<U>, oneshot_receiver<U>> oneshot();
  explicit oneshot_sender(state* s) noexcept : state_(s) {}

  // Lets go without sending: the receiver wakes with `closed`.
  void close() noexcept {
    if (state_ == nullptr) return;
    state* const s = std::exchange(state_, nullptr);
    if (!s->publish(state::closed)) delete s;
  }

  state* state_ = nullptr;
};

// The receiving half. Move-only; one pointer.
template <class T>
class oneshot_receiver {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "rouse::channel::oneshot<T> needs a nothrow move constructor and destructor");
  using state = detail::oneshot_state<T>;

 public:
  // An empty receiver (as if moved from); receives report closed.
  oneshot_receiver() noexcept = default;
  oneshot_receiver(oneshot_receiver&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  oneshot_receiver& operator=(oneshot_receiver&& other) noexcept {
    if (this != &other) {
      let_go();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  oneshot_receiver(const oneshot_receiver&) = delete;
  oneshot_receiver& operator=(const oneshot_receiver&) = delete;
  ~oneshot_receiver() { let_go(); }

  // Waits for the value. ok, or closed (the sender went away without sending,
  // or the value was already received).
  recv_result<T> recv() {
    if (state_ == nullptr) return recv_result<T>(status::closed);
    // Ordering: acquire pairs with the sender's release CAS that set READY or
    // CLOSED: the value is fully written before we move it out.
    std::uint32_t const w = state_->word.load(std::memory_order_acquire);
    if (w & (state::ready | state::closed)) return finish(w);
    return recv_slow(rouse::detail::no_deadline{});
  }

  // Never blocks: ok, empty (nothing yet, the sender is still there), or closed.
  recv_result<T> try_recv() {
    if (state_ == nullptr) return recv_result<T>(status::closed);
    // Ordering: acquire, as in recv().
    std::uint32_t const w = state_->word.load(std::memory_order_acquire);
    if (w & (state::ready | state::closed)) return finish(w);
    return recv_result<T>(status::empty);
  }

  // As recv(), but gives up at `deadline` with timed_out (never early).
  template <class Clock, class Duration>
  recv_result<T> recv_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    if (state_ == nullptr) return recv_result<T>(status::closed);
    // Ordering: acquire, as in recv().
    std::uint32_t const w = state_->word.load(std::memory_order_acquire);
    if (w & (state::ready | state::closed)) return finish(w);
    // Saturating (platform/deadline.hpp): too far to hold means no deadline.
    auto const at = rouse::detail::deadline_at(deadline);
    if (platform::is_unbounded(at.at)) return recv();
    return recv_slow(at);
  }

  template <class Rep, class Period>
  recv_result<T> recv_for(const std::chrono::duration<Rep, Period>& timeout) {
    auto r = try_recv();
    if (r.status() != status::empty) return r;
    if (timeout <= timeout.zero()) return recv_result<T>(status::timed_out);
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) return recv();
    return recv_until(deadline);
  }

  // True when a receive would not block (a value or closed is there). A hint.
  [[nodiscard]] bool is_ready() const noexcept {
    // Ordering: relaxed — a snapshot; the receive re-reads with acquire.
    return state_ == nullptr || (state_->word.load(std::memory_order_relaxed) & (state::ready | state::closed)) != 0;
  }

 private:
  template <class U>
  friend std::pair<oneshot_sender<U>, oneshot_receiver<U>> oneshot();
  explicit oneshot_receiver(state* s) noexcept : state_(s) {}

  // `w` has READY or CLOSED: take the value or report closed, and let go.
  recv_result<T> finish(std::uint32_t w) {
    state* const s = std::exchange(state_, nullptr);
    if (w & state::ready) {
      // READING: the sender never touches the slot after READY.
      recv_result<T> r(std::in_place, std::move(s->slot.get()));
      s->slot.destroy();
      let_go_after(s, w, state::taken | state::rx_done);
      return r;
    }
    let_go_after(s, w, state::rx_done);
    return recv_result<T>(status::closed);
  }

  // Gives up the receiver's share. With TX_DONE already seen we own the state
  // outright and free it without an atomic; otherwise the sender is between
  // its publish and its wake and whoever sets the second DONE bit frees.
  static void let_go_after(state* s, std::uint32_t seen, std::uint32_t bits) noexcept {
    if (seen & state::tx_done) {
      delete s;  // the slot is already empty here
      return;
    }
    // Ordering: acq_rel. Release: our take/destroy of the value happens-before
    // the sender frees. Acquire: pairs with the sender's acq_rel fetch_or of
    // TX_DONE, so its wake happens-before we free.
    std::uint32_t const prev = s->word.fetch_or(bits, std::memory_order_acq_rel);
    if (prev & state::tx_done) delete s;
  }

  // Destroying the receiver (or assigning over it) without receiving.
  void let_go() noexcept {
    if (state_ == nullptr) return;
    state* const s = std::exchange(state_, nullptr);
    // Ordering: acquire pairs with the sender's release that set TX_DONE: its
    // value is complete and it is done with the state, which is ours alone.
    std::uint32_t const w = s->word.load(std::memory_order_acquire);
    if (w & state::tx_done) {
      s->destroy_as_last(w);
      return;
    }
    // Ordering: acq_rel, as in let_go_after(); if the sender finished first,
    // its value (READY) is ours to destroy.
    std::uint32_t const prev = s->word.fetch_or(state::rx_done, std::memory_order_acq_rel);
    if (prev & state::tx_done) s->destroy_as_last(prev);
  }

  // Spin, then announce WAITING and sleep on the word until READY or CLOSED
  // (or the deadline, when there is one).
  template <class Deadline>
  [[gnu::noinline, gnu::cold]] recv_result<T> recv_slow(const Deadline& deadline) {
    constexpr std::uint32_t done = state::ready | state::closed;
    state* const s = state_;
    std::uint32_t w = 0;
    rouse::detail::spinner spin(rouse::detail::oneshot_spin);
    while (!deadline.expired() && spin.next()) {  // no poll past the deadline
      // Ordering: acquire, as in recv().
      w = s->word.load(std::memory_order_acquire);
      if (w & done) return finish(w);
    }
    for (;;) {
      if (!(w & state::waiting)) {
        // EMPTY -> WAITING. Both this RMW and the sender's CAS act on the
        // one word, so one comes first in its modification order: either the
        // sender sees WAITING and wakes us, or this sees READY/CLOSED.
        // Ordering: acquire — if READY is already set we read the slot next.
        w = s->word.fetch_or(state::waiting, std::memory_order_acquire) | state::waiting;
        if (w & done) return finish(w);
      }
      if (deadline.expired()) return timed_out(s);  // passed: no sleep
      if (rouse::detail::wait_until(s->word, w, deadline) == rouse::detail::wait_result::timed_out) return timed_out(s);
      // Ordering: acquire, as in recv().
      w = s->word.load(std::memory_order_acquire);
      if (w & done) return finish(w);
    }
  }

  // The deadline passed: withdraw WAITING (so the sender need not wake
  // anybody), unless the value or the close arrived meanwhile.
  recv_result<T> timed_out(state* s) {
    // Ordering: acquire — if READY arrived we take the value after all.
    std::uint32_t const prev = s->word.fetch_and(~state::waiting, std::memory_order_acquire);
    if (prev & (state::ready | state::closed)) return finish(prev & ~state::waiting);
    return recv_result<T>(status::timed_out);
  }

  state* state_ = nullptr;
};

static_assert(sizeof(oneshot_sender<int>) == sizeof(void*));
static_assert(sizeof(oneshot_receiver<int>) == sizeof(void*));

// Creates a one-shot channel: one allocation, a sender and a receiver.
//   auto [tx, rx] = rouse::channel::oneshot<int>();
template <class T>
std::pair<oneshot_sender<T>, oneshot_receiver<T>> oneshot() {
  auto* const s = new detail::oneshot_state<T>();
  return {oneshot_sender<T>(s), oneshot_receiver<T>(s)};
}

}  // namespace rouse::channel
