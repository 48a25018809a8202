// rouse/async/detail/channel_ring.hpp — the buffer of the bounded and
// rendezvous async channels: a multi-producer single-consumer ring whose
// producers never find it full, because each holds a permit first
// (rouse/async/channel.hpp counts the permits).
//
// Internal to rouse::async::channel; users never name it.
//
//   ring_size     a power of two >= the number of permits (capacity, or 1
//                 for a rendezvous channel)
//   tail_         2 * (next position to send) | closed (bit 0)
//   head_         next position to receive; the consumer's alone
//   closed_at_    1 + the position count at close (0: not yet published)
//   slot.stamp    p            empty, ready for the send at position p
//                 p + 1        full: holds the value sent at position p
//                 the receive at p stores p + ring_size (empty for the next lap)
//
// A send (permit held) claims a position with one fetch_add on tail_; an odd
// old value means the channel closed first: the send fails and hands the
// value back. Otherwise it constructs the value and stores stamp p + 1
// (release). Why the slot is always free: a permit is given back only after
// the receive stored the slot's next-lap stamp, so at most `permits` (<=
// ring_size) positions are claimed and not yet freed.
// A receive reads stamp == head + 1 (acquire), moves the value out, stores
// the next-lap stamp (release) and advances head_. Empty: tail_ says no
// position past head was claimed. Closed and drained: tail_ is marked and
// head_ reached the position count at close (positions claimed after the
// close were refused). A position claimed but not yet written makes the
// receive report `pending`; the caller yields and looks again (the writer is
// between two instructions).
//
// Costs: a send is one fetch_add and one store; a receive one load, one
// store (the head is private). Memory ordering: the stamp's release store
// pairs with the acquire load by the slot's next user; close() is a seq_cst
// fetch_or on tail_ (its readers load tail_ seq_cst).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "rouse/channel/result.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/channel_slot.hpp"
#include "rouse/detail/sync_types.hpp"

namespace rouse::async::channel::detail {

namespace rd = ::rouse::detail;

enum class ring_take : std::uint8_t { value, empty, pending, closed };

template <class T>
class channel_ring {
 public:
  explicit channel_ring(std::size_t permits) : size_(pow2_at_least(permits)), slots_(new slot[size_]) {
    for (std::size_t i = 0; i < size_; ++i) slots_[i].stamp.store(i, std::memory_order_relaxed);
  }
  channel_ring(const channel_ring&) = delete;
  channel_ring& operator=(const channel_ring&) = delete;
  // Only once every handle is gone: destroys the values nobody received.
  ~channel_ring() {
    std::size_t h = head_;
    for (;; ++h) {
      slot& s = slots_[h & (size_ - 1)];
      if (s.stamp.load(std::memory_order_relaxed) != h + 1) break;
      s.value.destroy();
    }
  }

  // With a permit held: ok (moved from v) or closed (v untouched).
  ::rouse::channel::status push(T& v) noexcept {
    // (A1) seq_cst: pairs with the consumer's re-check through the diatomic
    // waker (its RMWs), and with close()'s fetch_or.
    std::size_t const t = tail_.fetch_add(2, std::memory_order_seq_cst);
    if (t & 1) return ::rouse::channel::status::closed;
    std::size_t const pos = t >> 1;
    slot& s = slots_[pos & (size_ - 1)];
    ROUSE_CHECK_USAGE(s.stamp.load(std::memory_order_acquire) == pos, "rouse::async::channel",
                      "a send without a permit found its slot full");
    s.value.construct(std::move(v));
    // Ordering: release: pairs with the acquire in take().
    s.stamp.store(pos + 1, std::memory_order_release);
    return ::rouse::channel::status::ok;
  }

  // The consumer only. On `value`, out holds the value.
  template <class Out>
  ring_take take(Out&& out) noexcept {
    slot& s = slots_[head_ & (size_ - 1)];
    // Ordering: acquire: pairs with the release in push().
    if (s.stamp.load(std::memory_order_acquire) == head_ + 1) {
      out(std::move(s.value.get()));
      s.value.destroy();
      // Ordering: release: pairs with the next lap's push (through the
      // permit given back after this store).
      s.stamp.store(head_ + size_, std::memory_order_release);
      ++head_;
      // Ordering: relaxed: a snapshot for size().
      head_snapshot_.store(head_, std::memory_order_relaxed);
      return ring_take::value;
    }
    // Ordering: seq_cst: a linearizable `empty` / `closed`.
    std::size_t const t = tail_.load(std::memory_order_seq_cst);
    if ((t & 1) == 0) return (t >> 1) == head_ ? ring_take::empty : ring_take::pending;
    // Ordering: acquire: pairs with close()'s release store.
    std::size_t const at = closed_at_.load(std::memory_order_acquire);
    if (at == 0) return ring_take::pending;  // the closer is between its two steps
    return head_ == at - 1 ? ring_take::closed : ring_take::pending;
  }

  // The consumer only: whether take() would find a value, a value being
  // written, or closed (no side effect).
  [[nodiscard]] bool has_news() const noexcept {
    // Ordering: acquire: as take().
    if (slots_[head_ & (size_ - 1)].stamp.load(std::memory_order_acquire) == head_ + 1) return true;
    // Ordering: seq_cst: as take().
    return tail_.load(std::memory_order_seq_cst) != 2 * head_;
  }

  // True for the call that closed it.
  bool close() noexcept {
    // (A1) seq_cst: refuses every later push; pairs with take()'s load.
    std::size_t const t = tail_.fetch_or(1, std::memory_order_seq_cst);
    if (t & 1) return false;
    // Ordering: release: pairs with take()'s acquire.
    closed_at_.store((t >> 1) + 1, std::memory_order_release);
    return true;
  }
  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: seq_cst: a (B2) re-check of the waiter list's pairing.
    return (tail_.load(std::memory_order_seq_cst) & 1) != 0;
  }
  // Snapshot: values sent and not yet received (positions claimed).
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t const t = tail_.load(std::memory_order_seq_cst);
    std::size_t end = t >> 1;
    if (t & 1) {
      std::size_t const at = closed_at_.load(std::memory_order_acquire);
      if (at != 0) end = at - 1;
    }
    std::size_t const h = head_snapshot_.load(std::memory_order_relaxed);
    return end > h ? end - h : 0;
  }

 private:
  struct slot {
    rd::atomic<std::size_t> stamp{0};
    rd::channel_slot<T> value;
  };
  static std::size_t pow2_at_least(std::size_t n) noexcept {
    std::size_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }

  // Read by both ends, written by neither: a line of its own, apart from
  // the producers' tail and the consumer's head.
  alignas(64) std::size_t const size_;
  std::unique_ptr<slot[]> slots_;
  alignas(64) rd::atomic<std::size_t> tail_{0};
  rd::atomic<std::size_t> closed_at_{0};
  alignas(64) std::size_t head_ = 0;
  rd::atomic<std::size_t> head_snapshot_{0};  // for size() from other threads
};

}  // namespace rouse::async::channel::detail
