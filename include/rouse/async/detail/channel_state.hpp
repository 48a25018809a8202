// rouse/async/detail/channel_state.hpp — the shared state of an async
// channel, and the protocol its awaitables and blocking calls share. Internal
// to rouse::async::channel (rouse/async/channel.hpp has the contract); it
// compiles without the coroutine half so that tests/model runs it.
//
//   wait_record       one sender wait's own word, in the waiting frame: the
//                     list tag points at it. timed_out (set by the wait's
//                     timer) and took (its re-check took a permit)
//   channel_state<T>  handle counts; the buffer (channel_ring for bounded and
//                     rendezvous, the blocking channels' list for
//                     unbounded); the permit count and the waiter list of
//                     blocked senders; the receiver's diatomic_waker
//
// Permits. A bounded channel of capacity n holds n permits; a send takes one
// (reserve) before it writes, and the receive gives it back once the slot is
// free again, so a write never finds the buffer full. A rendezvous channel
// holds none: a receive that finds nothing gives one (a *demand*, at most one
// outstanding), so a send completes only into a receive that asked for it.
// An unbounded channel needs none (try_take_permit always succeeds).
//
// The receiver gives freed slots back at once while senders wait, when the
// channel is small (capacity < 32), and before it reports empty (so before it
// sleeps); otherwise in batches of capacity/16 (at most 64): while both ends
// run, up to a batch of free slots may not be visible to try_send yet.
//
// Permit count: n = the number of free permits (>= 0; a rendezvous
// channel's is -1 while a demand its receive gave up is held by a sender:
// withdraw_demand()). It lives in the ring's word, beside the send position
// (channel_ring.hpp), so that a send that finds a free permit takes it and
// its position in one compare-exchange (try_send_now).
//   send now (sender)      n > 0 and open: n -> n-1 and position + 1 (one
//                          CAS); else as take
//   take (sender)          n > 0: n -> n-1 (CAS); else wait in the list
//   give back k, nobody    n -> n+k (A1), then has_waiters (A2): if somebody
//   queued                 queued meanwhile, move them to the oldest waiters
//                          under the list's lock (take back what is left of
//                          them, claim)
//   give back k, queued    under the lock (once for the k): claim up to k
//                          oldest waiters (each claim transferable: one
//                          permit), the rest n -> n+rest
// Rendezvous (the receiver's demand is the one permit; demand_out_ and
// debt_ are the receiver's own flags):
//   ask (receiver)         no demand out: give back 1 (as above); a debt
//                          the word shows paid (0): settle it, then ask
//   withdraw (receiver)    1 -> 0: taken back | 0 -> -1: a sender holds
//                          it, a debt (fetch_sub)
//   give back onto a debt  -1 -> 0 (the direct add, or the rest stored
//                          under the lock), then wake the receiver (after
//                          the lock) so that a waiting receive asks again
//   the held value taken   -1 -> 0 by the receive that takes it
// A waiter's re-check (B2) is try_acquire(): closed -> ready; a permit ->
// ready_with_permit (rec.took); its deadline passed -> ready; else
// not_ready. A waiter woken by a notify_one holds a permit (transferable
// claim); woken by close() (broadcast) or its timer (which claims it
// `aborted`, O(1), armed only once the node is linked) it holds none. A waiter that
// gives up after it was handed a permit passes it on (waiter_list's
// cancel_passing_on -> pass_on() -> give_back_permit()).
//
// Memory ordering. (A)/(B) as in rouse/async/waiter_list.hpp: give_back's
// RMW on the permit count and close()'s fetch_or are seq_cst (A1) before
// has_waiters (A2); a sender pushes (B1) and re-checks with
// seq_cst loads (B2). A value's construction happens-before its receipt
// (channel_ring's stamps; list.hpp's slot states). The receiver waits on a
// diatomic_waker: every push is followed by a notify. The ring's push is a
// seq_cst RMW on its word before it writes the slot, and the
// receiver's re-check reads the word with a seq_cst load when the slot is
// not written yet, so the push notifies with the waker's seq_cst idle
// notify (notify_after_seq_cst_rmw: a load while the receiver runs); the
// unbounded list's push with notify() (an RMW that orders the push before
// the receiver's next register-and-re-check).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "rouse/async/detail/channel_ring.hpp"
#include "rouse/async/diatomic_waker.hpp"
#include "rouse/async/waiter_list.hpp"
#include "rouse/channel/detail/list.hpp"
#include "rouse/channel/result.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse::async::channel::detail {

using ::rouse::channel::recv_result;
using ::rouse::channel::send_result;
using ::rouse::channel::status;

enum class kind : std::uint8_t { bounded, rendezvous, unbounded };

// One sender wait's word (see above). Lives in the waiting frame.
struct wait_record {
  rd::atomic<std::uint32_t> timed_out{0};
  bool took = false;
  // Called once by the re-check (B2) that finds nothing, after the push (B1):
  // a timed coroutine wait arms its timer there, once its node is linked.
  void (*on_linked)(wait_record*) noexcept = nullptr;
};
inline std::uintptr_t tag_of(wait_record& r) noexcept { return reinterpret_cast<std::uintptr_t>(&r); }
inline wait_record& record_of(std::uintptr_t tag) noexcept { return *reinterpret_cast<wait_record*>(tag); }

template <class T>
class channel_state {
 public:
  channel_state(kind k, std::size_t capacity)
      : kind_(k),
        capacity_(capacity),
        batch_(capacity / 16 < 1    ? 1
               : capacity / 16 > 64 ? 64
                                    : static_cast<std::int64_t>(capacity / 16)),
        ring_(k == kind::unbounded ? nullptr
                                   : new channel_ring<T>(capacity == 0 ? 1 : capacity,
                                                         k == kind::bounded ? static_cast<std::int64_t>(capacity) : 0)),
        list_(k == kind::unbounded ? new ::rouse::channel::detail::list_channel<T>() : nullptr) {}
  channel_state(const channel_state&) = delete;
  channel_state& operator=(const channel_state&) = delete;

  // ---- handles ----------------------------------------------------------
  rd::atomic<std::size_t> senders{1};
  // Who keeps the state: the senders' side, the receiver's side, and each
  // timed receive's timer while its fire wakes the receiver (it may wake a
  // coroutine without an executor inline, which may drop both sides before
  // the wake returns). The last one out frees it.
  rd::atomic<std::uint32_t> keepers{2};
#if ROUSE_DEBUG_CHECKS
  // Permits that hold a slot of this channel (debug builds): freeing the
  // state under one is misuse, diagnosed here rather than met later as a
  // use of freed memory.
  rd::atomic<std::int64_t> permits_held{0};
  ~channel_state() {
    ROUSE_CHECK_USAGE(permits_held.load(std::memory_order_relaxed) == 0, "rouse::async::channel::permit",
                      "outlived its channel (every sender and receiver is gone); a permit must not outlive the "
                      "sender it came from");
  }
#endif

  [[nodiscard]] kind flavour() const noexcept { return kind_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // ---- senders ----------------------------------------------------------

  // A permit without waiting (fast path: one CAS). Barging is allowed only
  // onto a free permit, which exists only when no queued sender could take it.
  bool try_take_permit() noexcept {
    if (kind_ == kind::unbounded) return true;
    // (B2) seq_cst when it is a waiter's re-check (take_permit's RMWs).
    return ring_->take_permit();
  }

  // Gives a permit back (a receive freed a slot, a rendezvous receive asks
  // for a value, an unused permit is dropped, a chosen waiter gave up).
  void give_back_permit() noexcept {
    if (kind_ == kind::unbounded) return;
    if (kind_ == kind::rendezvous) return give_back_demand();
    if (senders_waiting_.has_waiters()) return give_back_slow(1, false);
    (void)ring_->add_permits(1);  // (A1): pairs with (B2) in try_acquire()
    if (!senders_waiting_.has_waiters()) [[likely]]  // (A2)
      return;
    give_back_slow(1, true);
  }

  // A send that does not wait: true when it sent (moved from v) at once, a
  // free permit and the position taken together (one RMW); false when no
  // permit is free or the channel is closed (v untouched: the caller goes
  // the waiting way, which tells the two apart). Wakes the receiver.
  bool try_send_now(T& v) noexcept {
    if (kind_ == kind::unbounded) return push(v) == status::ok;  // needs no permit
    if (ring_->try_push(v) != ring_push::ok) return false;  // (P): a seq_cst RMW
    rx_.notify_after_seq_cst_rmw();
    return true;
  }

  // With a permit: ok (moved from v) or closed (v untouched). Wakes the
  // receiver.
  status push(T& v) noexcept {
    if (kind_ == kind::unbounded) {
      status const s = list_->try_send(v);
      if (s == status::ok) rx_.notify();
      return s;
    }
    status const s = ring_->push(v);  // (P): the word's seq_cst fetch_add
    if (s == status::ok) rx_.notify_after_seq_cst_rmw();
    return s;
  }

  // Whether a wait that ended holds a permit, given its record and claim.
  static bool holds_permit(const wait_record& rec, std::uintptr_t claim) noexcept {
    return rec.took || waiter_list::transferable(claim);
  }

  // ---- the receiver (one at a time) ---------------------------------------

  // One attempt: a value, empty, or closed (and drained). `ask`: a rendezvous
  // receive that finds nothing gives a demand (a waiting receive asks; a
  // try_recv does not).
  recv_result<T> try_recv(bool ask) noexcept {
    std::optional<recv_result<T>> out;
    if (!try_recv_into(ask, out)) return recv_result<T>(status::empty);
    return std::move(*out);
  }
  // The same, built in place: false on empty (out untouched), else out holds
  // the value or `closed`. The awaitables' form: a result built in the
  // caller's storage, not returned through registers twice.
  bool try_recv_into(bool ask, std::optional<recv_result<T>>& out) noexcept {
    if (kind_ == kind::unbounded) {
      recv_result<T> r = list_->try_recv();
      if (r.status() == status::empty) return false;
      out.emplace(std::move(r));
      return true;
    }
    ::rouse::detail::spinner spin(::rouse::detail::channel_wait_spin);
    for (;;) {
      switch (ring_->take([&](T&& v) noexcept { out.emplace(std::in_place, std::move(v)); })) {
        case ring_take::value:
          if (kind_ == kind::bounded) {
            // The slot goes back at once when senders wait, else in a batch.
            if (++unreturned_ >= batch_ || senders_waiting_.has_waiters()) return_slots();
          } else {
            demand_out_ = false;  // the value answered our demand
            if (debt_) {
              // It answered a demand an earlier receive gave up while a
              // sender held it: -1 -> 0. Ordering: seq_cst as every RMW
              // of the word.
              debt_ = false;
              (void)ring_->add_permits(1);
            }
          }
          return true;
        case ring_take::empty:
          if (unreturned_ != 0) return_slots();  // before the receiver may sleep
          if (ask && kind_ == kind::rendezvous) ask_demand();
          return false;
        case ring_take::closed:
          out.emplace(status::closed);
          return true;
        case ring_take::pending:
          if (!spin.next()) ::rouse::detail::yield();  // a send between its two steps
          break;
      }
    }
  }

  // A receive that asked and gives up (timed out, stopped, its select chose
  // another branch, its frame destroyed): its rendezvous demand goes with
  // it, so that no later send completes into a receive that is gone. Not
  // taken yet: 1 -> 0, gone. Held by a sender (a reserve, a queued send it
  // was handed to): 0 -> -1, a debt. If that sender sends, its value waits
  // in the channel for the next receive, which pays the debt back when it
  // takes it (-1 -> 0); if it gives the permit back unused, the give-back
  // pays it (-1 -> 0) instead of putting a demand back, and wakes the
  // receiver so that a receive waiting meanwhile asks again. The
  // receiver's side only; a no-op when no demand is out (or it is a debt).
  void withdraw_demand() noexcept {
    if (kind_ != kind::rendezvous || !demand_out_ || debt_) return;
    // Ordering: seq_cst as every RMW of the word.
    if (ring_->add_permits(-1) == 1)
      demand_out_ = false;  // taken back
    else
      debt_ = true;  // a sender holds it
  }

  // The receiver's check without taking (select): a value, or closed. `ask`
  // as in try_recv (a rendezvous gives its demand).
  bool recv_ready(bool ask) noexcept {
    if (has_news()) return true;
    if (kind_ == kind::unbounded) return false;
    if (unreturned_ != 0) return_slots();
    if (ask && kind_ == kind::rendezvous) ask_demand();
    return false;
  }

  // The receiver's look without side effects: true when a receive would not
  // find the channel empty (a value, one being written, or closed).
  [[nodiscard]] bool has_news() const noexcept {
    if (kind_ == kind::unbounded) return !list_->is_empty() || list_->is_closed();
    return ring_->has_news();
  }

  diatomic_waker& receiver_waker() noexcept { return rx_; }

  // ---- both ---------------------------------------------------------------

  // True for the call that closed it. Wakes every blocked sender (broadcast:
  // no permit) and the receiver.
  bool close() noexcept {
    bool const closed = kind_ == kind::unbounded ? list_->close() : ring_->close();  // (A1)
    if (!closed) return false;
    senders_waiting_.notify_all();  // (A2) inside
    rx_.notify();
    return true;
  }
  [[nodiscard]] bool is_closed() const noexcept {
    return kind_ == kind::unbounded ? list_->is_closed() : ring_->is_closed();
  }
  [[nodiscard]] std::size_t size() const noexcept { return kind_ == kind::unbounded ? list_->size() : ring_->size(); }

  // ---- the waiter list's primitive interface (list_wait, list_awaitable) ---
  check_result try_acquire(std::uintptr_t tag) noexcept {
    wait_record& rec = record_of(tag);
    if (is_closed()) return check_result::ready;
    if (try_take_permit()) {
      rec.took = true;
      return check_result::ready_with_permit;
    }
    // (B2) seq_cst: pairs with (A1) in time_out_sender().
    if (rec.timed_out.load(std::memory_order_seq_cst) != 0) return check_result::ready;
    if (is_closed()) return check_result::ready;
    if (rec.on_linked != nullptr) std::exchange(rec.on_linked, nullptr)(&rec);
    return check_result::not_ready;
  }
  void pass_on() noexcept {
    if (!rd::model_fault_on(rd::model_fault::async_channel_cancel_keeps_permit)) give_back_permit();
  }
  waiter_list& waiters() noexcept { return senders_waiting_; }

  // For tests and the model.
  [[nodiscard]] std::int64_t permits_for_testing() const noexcept {
    return kind_ == kind::unbounded ? 0 : ring_->permits();
  }

 private:
  // The receiver gives back the slots it freed and kept (a batch).
  void return_slots() noexcept {
    std::int64_t const n = std::exchange(unreturned_, 0);
    if (n == 1) return give_back_permit();
    if (senders_waiting_.has_waiters()) return give_back_slow(n, false);
    (void)ring_->add_permits(n);  // (A1): as give_back_permit()'s
    if (!senders_waiting_.has_waiters()) [[likely]]  // (A2)
      return;
    give_back_slow(n, true);
  }

  // Hands `n` permits to the oldest waiters under the list's lock (one lock
  // for the batch), the rest to the word. `in_word`: they are in the word
  // already (we added them, then found waiters): take back what no barging
  // sender took first, and hand that out. A rendezvous demand taken back
  // here and then stored again (its queued sender could not be claimed: it
  // was leaving) may meet a debt its receive left meanwhile (-1): storing it
  // pays the debt, and the receiver is woken (after the lock) to ask again,
  // as give_back_demand() does.
  [[gnu::noinline]] void give_back_slow(std::int64_t n, bool in_word) noexcept {
    bool paid_debt = false;
    senders_waiting_.notify_some_locked(
        [this, n, in_word]() noexcept -> int {
          if (!in_word) return static_cast<int>(n);
          // Ours back, what barging senders left of them (0: senders'
          // re-checks took them all: they are served).
          return static_cast<int>(ring_->take_permits_up_to(n));
        },
        [this, &paid_debt](int left) noexcept {
          // Nobody claimable for these: store them, under the lock, so that a
          // sender that queues next sees them in its re-check. Ordering:
          // seq_cst (A1).
          if (rd::model_fault_on(rd::model_fault::async_channel_batch_drops_leftover)) return;
          paid_debt = ring_->add_permits(left) < 0;
        });
    // Not under the list's lock: the wake may resume the receiver inline.
    // The caller holds a sender, which keeps the state (the receiver's own
    // asks never meet a debt: it has none while it asks).
    if (paid_debt && !rd::model_fault_on(rd::model_fault::async_channel_leftover_debt_without_wake)) rx_.notify();
  }

  // The receiver's ask (a rendezvous receive found nothing): one demand,
  // unless one is out. A debt (withdraw_demand()) that a give-back paid
  // (the word is 0 again, not -1) is settled here, and a new demand goes.
  void ask_demand() noexcept {
    if (demand_out_) {
      // Ordering: seq_cst: after the receiver's register, against the
      // give-back's RMW and notify (a wait that misses the 0 is woken).
      if (!debt_ || ring_->permits() != 0) return;
      debt_ = false;  // its sender gave it back unused
    }
    demand_out_ = true;
    give_back_permit();
  }

  // A rendezvous permit given back: the receiver's new demand, or one a
  // sender got and did not use (a dropped reserve, a queued send that gave
  // up, a losing select branch). Onto a debt (-1: its receive gave up) it
  // pays the debt and is gone, and the receiver is woken to ask again. The
  // notify after the RMW touches the state: the caller holds a sender (a
  // permit or a send may not outlive it), whose count keeps the state.
  void give_back_demand() noexcept {
    // (A1): pairs with (B2) in try_acquire().
    if (ring_->add_permits(1) < 0) {
      if (!rd::model_fault_on(rd::model_fault::async_channel_debt_paid_without_wake)) rx_.notify();
      return;
    }
    if (!senders_waiting_.has_waiters()) [[likely]]  // (A2)
      return;
    give_back_slow(1, true);
  }

  // Layout: one line each for what both ends only read, the receiver's own
  // counters (the permit word, which senders RMW, is the ring's), the
  // blocked senders' list
  // (read by every receive) and the receiver's waker: a write by one end
  // never evicts a line the other reads on every message.
  alignas(64) kind const kind_;
  std::size_t const capacity_;
  // The batch size (capacity / 16, 1..64: a receive that keeps up with its
  // senders makes one RMW on the contended ring word per batch instead of
  // one per value).
  std::int64_t const batch_;
  std::unique_ptr<channel_ring<T>> ring_;
  std::unique_ptr<::rouse::channel::detail::list_channel<T>> list_;
  alignas(64) bool demand_out_ = false;  // the receiver's: a rendezvous demand is outstanding
  bool debt_ = false;  // the receiver's: that demand's receive gave up while a sender held it (the word is -1)
  std::int64_t unreturned_ = 0;          // the receiver's: slots freed, not given back yet
  alignas(64) waiter_list senders_waiting_;
  alignas(64) diatomic_waker rx_;
};

// A thread's wait for a permit (the blocking sends): check, register,
// re-check, sleep until a permit, close or the deadline. True when it holds
// a permit.
template <class T, class Deadline>
bool acquire_blocking(channel_state<T>& st, const Deadline& deadline) noexcept {
  wait_record rec;
  check_result r = st.try_acquire(tag_of(rec));
  if (r != check_result::not_ready) return rec.took;
  if (deadline.expired()) return false;
  // Poll before queueing: while no sender is queued the receiver gives
  // slots back a batch at a time, so a thread that keeps up with it finds a
  // batch here and sends it without the list (a queued sender would make
  // every receive hand over its one slot through the list's lock).
  ::rouse::detail::spinner spin(::rouse::detail::async_send_spin);
  while (spin.next()) {
    r = st.try_acquire(tag_of(rec));
    if (r != check_result::not_ready) return rec.took;
    if (deadline.expired()) return false;  // after a last look, as below
  }
  using wait = list_wait<channel_state<T>>;
  wait w(st, tag_of(rec));
  switch (w.start()) {
    case wait::start_result::withdrew:
      return rec.took;
    case wait::start_result::claimed:
      w.wait_released();
      return channel_state<T>::holds_permit(rec, w.claim());
    case wait::start_result::suspended:
      break;
  }
  std::uintptr_t const c = w.wait(deadline, ::rouse::detail::event_spin);
  if (c != async::detail::waiter::aborted) return channel_state<T>::holds_permit(rec, c);
  // Timed out and left: a last look.
  (void)st.try_acquire(tag_of(rec));
  return rec.took;
}

}  // namespace rouse::async::channel::detail
