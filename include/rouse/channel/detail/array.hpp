// rouse/channel/detail/array.hpp — the bounded flavour (capacity >= 1).
//
// A ring of `capacity` slots, each with a stamp (Vyukov's bounded MPMC queue,
// in the form crossbeam's array flavour gives it), plus one sync_waker per
// side for blocking. Positions `head_` and `tail_` count up forever:
//
//   position = lap | index        index < capacity, in the low bits
//   tail_ also carries mark_bit_  = closed (no more sends)
//   mark_bit_ = the power of two above capacity; one_lap_ = 2 * mark_bit_
//
// slot.stamp (for the slot at `index`, in lap L):
//   L | index          empty, ready for the send at position L|index
//   (L | index) + 1    full, holds the message sent at L|index
//   Then the receive at L|index stores (L+1) | index: empty for the next lap.
//
// A send claims position t by CAS on tail_ when the slot's stamp equals t,
// writes the message, stores stamp t+1 (release) and notifies receivers. A
// receive claims position h by CAS on head_ when the stamp equals h+1, moves
// the message out, stores stamp h+one_lap (release) and notifies senders.
// Each send and receive is one CAS on its index and one store of a stamp: no
// lock and no system call unless the other side has a registered waiter.
//
// Linearizability: a send takes effect at its successful CAS on tail_, a
// receive at its CAS on head_; positions are handed out in one total order,
// so messages leave in exactly the order their sends took effect.
// try_send reports `full` only after seeing head_ one lap behind tail_, and
// try_recv reports `empty` only after seeing tail_ equal to head_ (both
// seq_cst loads), so neither fails spuriously while the other side has
// finished; a receive may wait (spinning, then yielding) for a send that
// has claimed its position but not yet written it.
//
// Memory ordering: the release store of a stamp pairs with the acquire load
// of the same stamp by the operation that next uses the slot, which orders
// the message's construction before its move-out and its destruction before
// the slot's reuse. The CASes on head_/tail_ and the re-check loads in
// is_empty()/is_full() are seq_cst: they are (A1)/(B2) of the Dekker pairing
// with the waiter queue (detail/waiter_queue.hpp). close() is a seq_cst
// fetch_or on tail_.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "rouse/channel/detail/waiter.hpp"
#include "rouse/channel/result.hpp"
#include "rouse/detail/channel_slot.hpp"

namespace rouse::channel::detail {

template <class T>
class array_channel {
 public:
  explicit array_channel(std::size_t capacity)
      : cap_(capacity), mark_bit_(pow2_above(capacity)), one_lap_(mark_bit_ * 2), slots_(new slot[capacity]) {
    for (std::size_t i = 0; i < cap_; ++i) slots_[i].stamp.store(i, std::memory_order_relaxed);
  }
  array_channel(const array_channel&) = delete;
  array_channel& operator=(const array_channel&) = delete;

  // Only once every handle is gone: destroys the messages nobody received.
  ~array_channel() {
    std::size_t const head = head_.load(std::memory_order_relaxed);
    std::size_t const len = length(head, tail_.load(std::memory_order_relaxed));
    std::size_t const start = head & (mark_bit_ - 1);
    for (std::size_t i = 0; i < len; ++i) {
      std::size_t const index = start + i < cap_ ? start + i : start + i - cap_;
      slots_[index].value.destroy();
    }
  }

  // Moves from `v` only when it returns ok.
  status try_send(T& v) noexcept {
    status const s = start_send(v);
    if (s == status::ok) receivers_.notify_one();
    return s;
  }
  recv_result<T> try_recv() noexcept {
    recv_result<T> r = start_recv();
    if (r.has_value()) senders_.notify_one();
    return r;
  }

  // Blocking send until `deadline` (no_deadline: forever). Moves from `v`
  // only when it returns ok.
  template <class Deadline>
  status send(T& v, const Deadline& deadline) noexcept {
    return attempt_until(
        senders_, deadline, [&] { return try_send(v); }, [&] { return !is_full() || is_closed(); });
  }

  template <class Deadline>
  recv_result<T> recv(const Deadline& deadline) noexcept {
    return attempt_until(
        receivers_, deadline, [&] { return try_recv(); }, [&] { return !is_empty() || is_closed(); });
  }

  // Returns true for the call that closed it. Wakes every blocked operation.
  bool close() noexcept {
    // Ordering: seq_cst, an (A1) for both sides' waiters.
    std::size_t const tail = tail_.fetch_or(mark_bit_, std::memory_order_seq_cst);
    if (tail & mark_bit_) return false;
    senders_.close();
    receivers_.close();
    return true;
  }

  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: seq_cst, a (B2) re-check.
    return (tail_.load(std::memory_order_seq_cst) & mark_bit_) != 0;
  }
  [[nodiscard]] bool is_empty() const noexcept {
    // Ordering: seq_cst (B2) re-checks; head first, so a stale head can only
    // make the channel look non-empty (a harmless retry).
    std::size_t const head = head_.load(std::memory_order_seq_cst);
    std::size_t const tail = tail_.load(std::memory_order_seq_cst);
    return (tail & ~mark_bit_) == head;
  }
  [[nodiscard]] bool is_full() const noexcept {
    // Ordering: seq_cst (B2) re-checks; tail first, so a stale tail can only
    // make the channel look non-full (a harmless retry).
    std::size_t const tail = tail_.load(std::memory_order_seq_cst);
    std::size_t const head = head_.load(std::memory_order_seq_cst);
    return head + one_lap_ == (tail & ~mark_bit_);
  }
  [[nodiscard]] std::size_t size() const noexcept {
    for (;;) {
      // Ordering: seq_cst so the two loads see one moment when tail_ is stable.
      std::size_t const tail = tail_.load(std::memory_order_seq_cst);
      std::size_t const head = head_.load(std::memory_order_seq_cst);
      if (tail_.load(std::memory_order_seq_cst) == tail) return length(head, tail);
    }
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }

  // select's hooks: register / unregister a waiter on one side, and the
  // (B2) re-check that says whether the operation could go ahead now.
  void register_sender(waiter_node& n) noexcept { senders_.push(n); }
  void unregister_sender(waiter_node& n) noexcept { senders_.remove(n); }
  void register_receiver(waiter_node& n) noexcept { receivers_.push(n); }
  void unregister_receiver(waiter_node& n) noexcept { receivers_.remove(n); }
  [[nodiscard]] bool send_ready() const noexcept { return !is_full() || is_closed(); }
  [[nodiscard]] bool recv_ready() const noexcept { return !is_empty() || is_closed(); }

 private:
  struct slot {
    d::atomic<std::size_t> stamp{0};
    d::channel_slot<T> value;
  };

  static std::size_t pow2_above(std::size_t n) noexcept {
    std::size_t p = 1;
    while (p <= n) p <<= 1;
    return p;
  }

  // Messages between head and tail (marks ignored).
  std::size_t length(std::size_t head, std::size_t tail) const noexcept {
    std::size_t const hix = head & (mark_bit_ - 1);
    std::size_t const tix = tail & (mark_bit_ - 1);
    if (hix < tix) return tix - hix;
    if (hix > tix) return cap_ - hix + tix;
    if ((tail & ~mark_bit_) == head) return 0;
    return cap_;
  }

  std::size_t next_position(std::size_t pos) const noexcept {
    std::size_t const index = pos & (mark_bit_ - 1);
    std::size_t const lap = pos & ~(one_lap_ - 1);
    return index + 1 < cap_ ? pos + 1 : lap + one_lap_;
  }

  status start_send(T& v) noexcept {
    d::spinner cas(d::channel_cas_spin);  // after a lost compare-exchange
    d::spinner b(d::channel_wait_spin);   // while another thread acts
    // Ordering: relaxed; the stamp's acquire load below validates it.
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (tail & mark_bit_) return status::closed;
      slot& s = slots_[tail & (mark_bit_ - 1)];
      // Ordering: acquire pairs with the release store of the stamp in
      // start_recv(): the previous lap's message is gone before we write.
      std::size_t const stamp = s.stamp.load(std::memory_order_acquire);
      if (stamp == tail) {
        // (A1) seq_cst: the receivers' Dekker partner (B2) in is_empty().
        if (tail_.compare_exchange_weak(tail, next_position(tail), std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          s.value.construct(std::move(v));
          // Ordering: release pairs with the acquire stamp load in start_recv().
          s.stamp.store(tail + 1, std::memory_order_release);
          return status::ok;
        }
        (void)cas.next();
      } else if (stamp + one_lap_ == tail + 1) {
        // The slot still holds last lap's message: full, or a receive of it
        // is in progress. Ordering: seq_cst, so `full` is linearizable.
        std::size_t const head = head_.load(std::memory_order_seq_cst);
        if (head + one_lap_ == tail) return status::full;
        snooze(b);
        tail = tail_.load(std::memory_order_relaxed);
      } else {
        // Another sender claimed this position and moved tail_ on.
        snooze(b);
        tail = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  recv_result<T> start_recv() noexcept {
    d::spinner cas(d::channel_cas_spin);  // after a lost compare-exchange
    d::spinner b(d::channel_wait_spin);   // while another thread acts
    // Ordering: relaxed; the stamp's acquire load below validates it.
    std::size_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      slot& s = slots_[head & (mark_bit_ - 1)];
      // Ordering: acquire pairs with the release stamp store in start_send().
      std::size_t const stamp = s.stamp.load(std::memory_order_acquire);
      if (stamp == head + 1) {
        // (A1) seq_cst: the senders' Dekker partner (B2) in is_full().
        if (head_.compare_exchange_weak(head, next_position(head), std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          recv_result<T> r(std::in_place, std::move(s.value.get()));
          s.value.destroy();
          // Ordering: release pairs with the acquire stamp load in start_send().
          s.stamp.store(head + one_lap_, std::memory_order_release);
          return r;
        }
        (void)cas.next();
      } else if (stamp == head) {
        // The slot is empty for this lap: the channel is empty, or a send
        // of it is in progress. Ordering: seq_cst, so `empty` is linearizable.
        std::size_t const tail = tail_.load(std::memory_order_seq_cst);
        if ((tail & ~mark_bit_) == head) return recv_result<T>((tail & mark_bit_) ? status::closed : status::empty);
        snooze(b);
        head = head_.load(std::memory_order_relaxed);
      } else {
        snooze(b);
        head = head_.load(std::memory_order_relaxed);
      }
    }
  }

  alignas(64) d::atomic<std::size_t> head_{0};
  alignas(64) d::atomic<std::size_t> tail_{0};
  alignas(64) std::size_t const cap_;
  std::size_t const mark_bit_;
  std::size_t const one_lap_;
  std::unique_ptr<slot[]> slots_;
  alignas(64) sync_waker senders_;
  alignas(64) sync_waker receivers_;
};

}  // namespace rouse::channel::detail
