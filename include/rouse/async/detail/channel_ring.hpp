// rouse/async/detail/channel_ring.hpp — the buffer of the bounded and
// rendezvous async channels: a multi-producer single-consumer ring whose
// producers never find it full, because each holds a permit first. The
// permit count lives in the ring's one shared word, beside the send
// position, so that a send that finds a free permit takes it and its
// position in one compare-exchange (rouse/async/detail/channel_state.hpp
// has the permit protocol; rouse/async/channel.hpp the contract).
//
// Internal to rouse::async::channel; users never name it.
//
//   ring_size     a power of two >= the number of slots (capacity, or 1 for
//                 a rendezvous channel), at most 2^30
//   word_         bits 0-31   free permits + 2^31 (a rendezvous debt makes
//                             the count -1: the bias keeps it from borrowing
//                             from the bits above)
//                 bit 32      closed
//                 bits 33-63  the next position to send, modulo 2^31
//   head_         next position to receive, modulo 2^31; the consumer's alone
//   closed_at_    1 + the position count at close (0: not yet published)
//   slot.stamp    p            empty, ready for the send at position p
//                 p + 1        full: holds the value sent at position p
//                 the receive at p stores p + ring_size (empty for the next
//                 lap); every stamp is modulo 2^31, which tells laps apart
//                 because at most one lap is in flight and ring_size <= 2^30
//
// A send that holds a permit claims a position with one fetch_add on word_
// (push); one that does not takes a permit and a position with one
// compare-exchange when a permit is free and the channel open (try_push;
// nothing changes otherwise). Either way a closed word means the channel
// closed first: the send fails and hands the value back (positions counted
// after the close are never read: closed_at_ bounds the receives). The
// sender then constructs the value and stores stamp p + 1 (release). Why the
// slot is always free: a permit is given back only after the receive stored
// the slot's next-lap stamp, so at most `permits` (<= ring_size) positions
// are claimed and not yet freed.
// A receive reads stamp == head + 1 (acquire), moves the value out, stores
// the next-lap stamp (release) and advances head_. Empty: word_ says no
// position past head was claimed. Closed and drained: word_ is marked and
// head_ reached the position count at close. A position claimed but not yet
// written makes the receive report `pending`; the caller yields and looks
// again (the writer is between two instructions).
//
// Costs: a send is one RMW on word_ and one store (the permit and the
// position together); a receive one load, one store (the head is private),
// and the permits go back in batches (channel_state). Memory ordering: the
// stamp's release store pairs with the acquire load by the slot's next user;
// every RMW of word_ is seq_cst (the permit protocol's (A1) and (B2), the
// send's (P) that the consumer's re-check through the diatomic waker pairs
// with, and close()); its readers load it seq_cst.
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
enum class ring_push : std::uint8_t { ok, closed, no_permit };

// Positions and stamps count modulo 2^31, so a ring holds at most 2^30
// slots (channel::max_capacity).
inline constexpr std::size_t ring_max_slots = std::size_t{1} << 30;

template <class T>
class channel_ring {
 public:
  // `first`: the first position (tests start near the wrap of the count).
  channel_ring(std::size_t slots, std::int64_t permits, std::uint32_t first = 0)
      : size_(pow2_at_least(slots)),
        slots_(new slot[size_]),
        word_(bias + static_cast<std::uint64_t>(permits) + (std::uint64_t{first & pos_mask} << pos_shift)),
        head_(first & pos_mask),
        head_snapshot_(first & pos_mask) {
    for (std::size_t i = 0; i < size_; ++i) {
      std::uint32_t const p = static_cast<std::uint32_t>((head_ + i) & pos_mask);
      slots_[p & (size_ - 1)].stamp.store(p, std::memory_order_relaxed);
    }
  }
  channel_ring(const channel_ring&) = delete;
  channel_ring& operator=(const channel_ring&) = delete;
  // Only once every handle is gone: destroys the values nobody received.
  ~channel_ring() {
    std::uint32_t h = head_;
    for (;; h = (h + 1) & pos_mask) {
      slot& s = slots_[h & (size_ - 1)];
      if (s.stamp.load(std::memory_order_relaxed) != ((h + 1) & pos_mask)) break;
      s.value.destroy();
    }
  }

  // ---- permits (channel_state's protocol; every RMW seq_cst) ---------------

  [[nodiscard]] std::int64_t permits() const noexcept {
    // Ordering: seq_cst: a (B2) re-check or the receiver's look at a debt.
    return permits_of(word_.load(std::memory_order_seq_cst));
  }
  // n > 0: n -> n-1.
  bool take_permit() noexcept {
    // Ordering: seq_cst (a (B2) re-check when a waiter calls it).
    std::uint64_t w = word_.load(std::memory_order_seq_cst);
    while (permits_of(w) > 0) {
      // Ordering: seq_cst (acquire: the receive that freed the slot,
      // through the give-back's release).
      if (word_.compare_exchange_weak(w, w - 1, std::memory_order_seq_cst, std::memory_order_seq_cst)) return true;
    }
    return false;
  }
  // Takes up to n of the free permits; how many it took.
  std::int64_t take_permits_up_to(std::int64_t n) noexcept {
    std::uint64_t w = word_.load(std::memory_order_seq_cst);
    for (;;) {
      std::int64_t const have = permits_of(w);
      if (have <= 0) return 0;
      std::int64_t const take = have < n ? have : n;
      // Ordering: seq_cst as every RMW of the word.
      if (word_.compare_exchange_weak(w, w - static_cast<std::uint64_t>(take), std::memory_order_seq_cst,
                                      std::memory_order_seq_cst))
        return take;
    }
  }
  // n -> n + k (k may be negative: a withdrawn demand); the count before.
  std::int64_t add_permits(std::int64_t k) noexcept {
    // (A1) Ordering: seq_cst: pairs with a waiter's (B2) re-check.
    return permits_of(word_.fetch_add(static_cast<std::uint64_t>(k), std::memory_order_seq_cst));
  }

  // ---- sends ----------------------------------------------------------------

  // With a permit held: ok (moved from v) or closed (v untouched).
  ::rouse::channel::status push(T& v) noexcept {
    // (P) seq_cst: pairs with the consumer's re-check through the diatomic
    // waker (its RMWs), and with close()'s fetch_or.
    std::uint64_t const w = word_.fetch_add(pos_one, std::memory_order_seq_cst);
    if (w & closed_bit) return ::rouse::channel::status::closed;
    write(position_of(w), v);
    return ::rouse::channel::status::ok;
  }
  // Without a permit: takes a free one and a position together. ok (moved
  // from v), closed or no_permit (v untouched, nothing changed).
  ring_push try_push(T& v) noexcept {
    // Ordering: relaxed: the compare-exchange below checks the value.
    std::uint64_t w = word_.load(std::memory_order_relaxed);
    for (;;) {
      if ((w & closed_bit) && !rd::model_fault_on(rd::model_fault::async_channel_send_now_ignores_close))
        return ring_push::closed;
      if (permits_of(w) <= 0) return ring_push::no_permit;
      // (P) Ordering: seq_cst: as push()'s, and as take_permit()'s.
      if (word_.compare_exchange_weak(w, w - 1 + pos_one, std::memory_order_seq_cst, std::memory_order_relaxed))
        break;
    }
    write(position_of(w), v);
    return ring_push::ok;
  }

  // ---- the consumer ---------------------------------------------------------

  // The consumer only. On `value`, out holds the value.
  template <class Out>
  ring_take take(Out&& out) noexcept {
    slot& s = slots_[head_ & (size_ - 1)];
    // Ordering: acquire: pairs with the release in write().
    if (s.stamp.load(std::memory_order_acquire) == ((head_ + 1) & pos_mask)) {
      out(std::move(s.value.get()));
      s.value.destroy();
      // Ordering: release: pairs with the next lap's write (through the
      // permit given back after this store).
      s.stamp.store(static_cast<std::uint32_t>((head_ + size_) & pos_mask), std::memory_order_release);
      head_ = (head_ + 1) & pos_mask;
      // Ordering: relaxed: a snapshot for size().
      head_snapshot_.store(head_, std::memory_order_relaxed);
      return ring_take::value;
    }
    // Ordering: seq_cst: a linearizable `empty` / `closed`.
    std::uint64_t const w = word_.load(std::memory_order_seq_cst);
    if ((w & closed_bit) == 0) return position_of(w) == head_ ? ring_take::empty : ring_take::pending;
    // Ordering: acquire: pairs with close()'s release store.
    std::size_t const at = closed_at_.load(std::memory_order_acquire);
    if (at == 0) return ring_take::pending;  // the closer is between its two steps
    return head_ == at - 1 ? ring_take::closed : ring_take::pending;
  }

  // The consumer only: whether take() would find a value, a value being
  // written, or closed (no side effect).
  [[nodiscard]] bool has_news() const noexcept {
    // Ordering: acquire: as take().
    if (slots_[head_ & (size_ - 1)].stamp.load(std::memory_order_acquire) == ((head_ + 1) & pos_mask)) return true;
    // Ordering: seq_cst: as take().
    std::uint64_t const w = word_.load(std::memory_order_seq_cst);
    return (w & closed_bit) != 0 || position_of(w) != head_;
  }

  // ---- both -----------------------------------------------------------------

  // True for the call that closed it.
  bool close() noexcept {
    // (A1) seq_cst: refuses every later send; pairs with take()'s load.
    std::uint64_t const w = word_.fetch_or(closed_bit, std::memory_order_seq_cst);
    if (w & closed_bit) return false;
    // Ordering: release: pairs with take()'s acquire.
    closed_at_.store(std::size_t{position_of(w)} + 1, std::memory_order_release);
    return true;
  }
  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: seq_cst: a (B2) re-check of the waiter list's pairing.
    return (word_.load(std::memory_order_seq_cst) & closed_bit) != 0;
  }
  // Snapshot: values sent and not yet received (positions claimed).
  [[nodiscard]] std::size_t size() const noexcept {
    std::uint64_t const w = word_.load(std::memory_order_seq_cst);
    std::uint32_t end = position_of(w);
    if (w & closed_bit) {
      std::size_t const at = closed_at_.load(std::memory_order_acquire);
      if (at != 0) end = static_cast<std::uint32_t>(at - 1);
    }
    std::uint32_t const h = head_snapshot_.load(std::memory_order_relaxed);
    // A head read after the word may be past `end`: 0, not a wrapped count
    // (no true count exceeds the ring).
    std::uint32_t const n = (end - h) & pos_mask;
    return n <= size_ ? n : 0;
  }

 private:
  static constexpr std::uint64_t bias = std::uint64_t{1} << 31;
  static constexpr std::uint64_t count_mask = (std::uint64_t{1} << 32) - 1;
  static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 32;
  static constexpr unsigned pos_shift = 33;
  static constexpr std::uint64_t pos_one = std::uint64_t{1} << pos_shift;
  static constexpr std::uint32_t pos_mask = (std::uint32_t{1} << 31) - 1;

  static std::int64_t permits_of(std::uint64_t w) noexcept {
    return static_cast<std::int64_t>(w & count_mask) - static_cast<std::int64_t>(bias);
  }
  static std::uint32_t position_of(std::uint64_t w) noexcept { return static_cast<std::uint32_t>(w >> pos_shift); }

  void write(std::uint32_t pos, T& v) noexcept {
    slot& s = slots_[pos & (size_ - 1)];
    ROUSE_CHECK_USAGE(s.stamp.load(std::memory_order_acquire) == pos, "rouse::async::channel",
                      "a send without a permit found its slot full");
    s.value.construct(std::move(v));
    // Ordering: release: pairs with the acquire in take().
    s.stamp.store((pos + 1) & pos_mask, std::memory_order_release);
  }

  struct slot {
    rd::atomic<std::uint32_t> stamp{0};
    rd::channel_slot<T> value;
  };
  static std::size_t pow2_at_least(std::size_t n) noexcept {
    std::size_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }

  // Read by both ends, written by neither: a line of its own, apart from
  // the senders' word and the consumer's head.
  alignas(64) std::size_t const size_;
  std::unique_ptr<slot[]> slots_;
  alignas(64) rd::atomic<std::uint64_t> word_;
  rd::atomic<std::size_t> closed_at_{0};
  alignas(64) std::uint32_t head_;
  rd::atomic<std::uint32_t> head_snapshot_;  // for size() from other threads
};

}  // namespace rouse::async::channel::detail
