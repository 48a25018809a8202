// rouse/channel/detail/list.hpp — the unbounded flavour.
//
// A linked list of blocks of 31 slots (crossbeam's list flavour). Positions
// count up forever, shifted left by one bit:
//
//   position = (lap * 32 + offset) << 1 | flag     offset 0..30 is a slot,
//                                                  offset 31 means "the next
//                                                  block is being installed"
//   tail flag (mark) = closed
//   head flag        = head and tail are in different blocks (a receive need
//                      not look at tail_)
//
// slot.state bits: written (a message is there), read (it was taken),
// destroy (the block's reclaimer passed this slot while it was in use: the
// slot's reader finishes reclaiming the block).
//
// A send claims a position by CAS on tail_, writes, sets `written`
// (release) and notifies receivers. The sender that claims the last slot of a
// block installs the next one (allocated before its CAS). A receive claims
// a position by CAS on head_, waits for `written`, moves the message out and
// sets `read`; the receiver of a block's last slot, or the last reader
// still inside a block, frees it. Sends never block; receives block on a
// sync_waker when the channel is empty.
//
// Linearizability: sends take effect at their CAS on tail_, receives at
// their CAS on head_; messages leave in the order their sends took effect.
// try_recv reports `empty` only after seeing tail_ equal to head_ (seq_cst).
//
// Memory ordering: `written` (release fetch_or) pairs with the receiver's
// acquire load of the slot state; a block's `next` pointer is published with
// release and read with acquire; `read`/`destroy` are acq_rel fetch_ors so
// exactly one thread frees a block, after every use of it. The CASes on
// tail_/head_ and is_empty() are (A1)/(B2) of the waiter queue's pairing
// (detail/waiter_queue.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "rouse/channel/detail/waiter.hpp"
#include "rouse/channel/result.hpp"
#include "rouse/detail/channel_slot.hpp"

namespace rouse::channel::detail {

template <class T>
class list_channel {
 public:
  list_channel() = default;
  list_channel(const list_channel&) = delete;
  list_channel& operator=(const list_channel&) = delete;

  // Only once every handle is gone: destroys unreceived messages and blocks.
  ~list_channel() {
    std::size_t head = head_.index.load(std::memory_order_relaxed) & ~flag;
    std::size_t const tail = tail_.index.load(std::memory_order_relaxed) & ~flag;
    block* b = head_.blk.load(std::memory_order_relaxed);
    while (head != tail) {
      std::size_t const offset = (head >> shift) % lap;
      if (offset < block_cap) {
        b->slots[offset].value.destroy();
      } else {
        block* next = b->next.load(std::memory_order_relaxed);
        delete b;
        b = next;
      }
      head += 1 << shift;
    }
    delete b;
  }

  status try_send(T& v) noexcept {
    status const s = start_send(v);
    if (s == status::ok) receivers_.notify_one();
    return s;
  }
  recv_result<T> try_recv() noexcept { return start_recv(); }

  template <class Deadline>
  status send(T& v, const Deadline&) noexcept {
    return try_send(v);  // never full
  }

  template <class Deadline>
  recv_result<T> recv(const Deadline& deadline) noexcept {
    return attempt_until(
        receivers_, deadline, [&] { return start_recv(); }, [&] { return !is_empty() || is_closed(); });
  }

  bool close() noexcept {
    // Ordering: seq_cst, an (A1) for the receivers' waiters.
    std::size_t const tail = tail_.index.fetch_or(flag, std::memory_order_seq_cst);
    if (tail & flag) return false;
    receivers_.close();
    return true;
  }

  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: seq_cst, a (B2) re-check.
    return (tail_.index.load(std::memory_order_seq_cst) & flag) != 0;
  }
  [[nodiscard]] bool is_empty() const noexcept {
    // Ordering: seq_cst (B2); head first (a stale head only causes a retry).
    std::size_t const head = head_.index.load(std::memory_order_seq_cst);
    std::size_t const tail = tail_.index.load(std::memory_order_seq_cst);
    return (head >> shift) == (tail >> shift);
  }
  [[nodiscard]] std::size_t size() const noexcept {
    for (;;) {
      // Ordering: seq_cst, to read both at one moment when tail_ is stable.
      std::size_t tail = tail_.index.load(std::memory_order_seq_cst);
      std::size_t head = head_.index.load(std::memory_order_seq_cst);
      if (tail_.index.load(std::memory_order_seq_cst) != tail) continue;
      tail &= ~((std::size_t{1} << shift) - 1);
      head &= ~((std::size_t{1} << shift) - 1);
      // The "installing" offset is not a slot.
      if (((tail >> shift) & (lap - 1)) == lap - 1) tail += 1 << shift;
      if (((head >> shift) & (lap - 1)) == lap - 1) head += 1 << shift;
      std::size_t const lap_of_head = (head >> shift) / lap;
      head -= (lap_of_head * lap) << shift;
      tail -= (lap_of_head * lap) << shift;
      head >>= shift;
      tail >>= shift;
      return tail - head - tail / lap;
    }
  }

  void register_receiver(waiter_node& n) noexcept { receivers_.push(n); }
  void unregister_receiver(waiter_node& n) noexcept { receivers_.remove(n); }
  [[nodiscard]] bool recv_ready() const noexcept { return !is_empty() || is_closed(); }

 private:
  static constexpr std::size_t shift = 1;
  static constexpr std::size_t flag = 1;
  static constexpr std::size_t lap = 32;
  static constexpr std::size_t block_cap = lap - 1;
  static constexpr std::uint32_t written = 1, read = 2, destroy = 4;

  struct slot {
    d::atomic<std::uint32_t> state{0};
    d::channel_slot<T> value;

    void wait_written() const noexcept {
      d::spinner b(d::channel_wait_spin);
      // Ordering: acquire pairs with the release fetch_or in start_send().
      while ((state.load(std::memory_order_acquire) & written) == 0) snooze(b);
    }
  };

  struct block {
    d::atomic<block*> next{nullptr};
    slot slots[block_cap];

    block* wait_next() const noexcept {
      d::spinner b(d::channel_wait_spin);
      for (;;) {
        // Ordering: acquire pairs with the release store of next in start_send().
        if (block* n = next.load(std::memory_order_acquire)) return n;
        snooze(b);
      }
    }

    // Frees `this` unless a slot from `start` on is still being read; that
    // slot's reader then continues the job.
    static void reclaim(block* self, std::size_t start) noexcept {
      // The last slot needs no mark: its reader is the one that started this.
      for (std::size_t i = start; i + 1 < block_cap; ++i) {
        slot& s = self->slots[i];
        // Ordering: acquire/acq_rel pair with the acq_rel fetch_or of `read`
        // in start_recv(): either we see the read finished, or its reader
        // sees our `destroy` and frees the block after it is done.
        if ((s.state.load(std::memory_order_acquire) & read) == 0 &&
            (s.state.fetch_or(destroy, std::memory_order_acq_rel) & read) == 0)
          return;
      }
      delete self;
    }
  };

  struct position {
    d::atomic<std::size_t> index{0};
    d::atomic<block*> blk{nullptr};
  };

  status start_send(T& v) noexcept {
    d::spinner cas(d::channel_cas_spin);  // after a lost compare-exchange
    d::spinner b(d::channel_wait_spin);   // while another thread acts
    // Ordering: acquire pairs with the release stores of the index and the
    // block by the sender that installed the current block.
    std::size_t tail = tail_.index.load(std::memory_order_acquire);
    block* blk = tail_.blk.load(std::memory_order_acquire);
    block* next_block = nullptr;
    for (;;) {
      if (tail & flag) {
        delete next_block;
        return status::closed;
      }
      std::size_t const offset = (tail >> shift) % lap;
      if (offset == block_cap) {  // another sender is installing the next block
        snooze(b);
        tail = tail_.index.load(std::memory_order_acquire);
        blk = tail_.blk.load(std::memory_order_acquire);
        continue;
      }
      // Allocate before claiming the last slot, so that the install after
      // the claim cannot fail.
      if (offset + 1 == block_cap && next_block == nullptr) next_block = new block;
      if (blk == nullptr) {  // the first message ever: install the first block
        block* first = new block;
        block* expected = nullptr;
        // Ordering: release publishes the block's construction.
        if (tail_.blk.compare_exchange_strong(expected, first, std::memory_order_release, std::memory_order_relaxed)) {
          // Ordering: release pairs with the acquire load in start_recv().
          head_.blk.store(first, std::memory_order_release);
          blk = first;
        } else {
          delete first;
          tail = tail_.index.load(std::memory_order_acquire);
          blk = tail_.blk.load(std::memory_order_acquire);
          continue;
        }
      }
      // (A1) seq_cst: the receivers' Dekker partner (B2) in is_empty().
      if (tail_.index.compare_exchange_weak(tail, tail + (1 << shift), std::memory_order_seq_cst,
                                            std::memory_order_acquire)) {
        if (offset + 1 == block_cap) {
          // Ordering: release; senders load blk and index with acquire.
          tail_.blk.store(next_block, std::memory_order_release);
          tail_.index.fetch_add(1 << shift, std::memory_order_release);
          blk->next.store(next_block, std::memory_order_release);
        } else {
          delete next_block;
        }
        slot& s = blk->slots[offset];
        s.value.construct(std::move(v));
        // Ordering: release pairs with the acquire load in wait_written().
        s.state.fetch_or(written, std::memory_order_release);
        return status::ok;
      }
      blk = tail_.blk.load(std::memory_order_acquire);
      (void)cas.next();
    }
  }

  recv_result<T> start_recv() noexcept {
    d::spinner cas(d::channel_cas_spin);  // after a lost compare-exchange
    d::spinner b(d::channel_wait_spin);   // while another thread acts
    // Ordering: acquire pairs with the release stores of the receiver that
    // moved head_ to the current block.
    std::size_t head = head_.index.load(std::memory_order_acquire);
    block* blk = head_.blk.load(std::memory_order_acquire);
    for (;;) {
      std::size_t const offset = (head >> shift) % lap;
      if (offset == block_cap) {  // another receiver is moving to the next block
        snooze(b);
        head = head_.index.load(std::memory_order_acquire);
        blk = head_.blk.load(std::memory_order_acquire);
        continue;
      }
      std::size_t new_head = head + (1 << shift);
      if ((new_head & flag) == 0) {
        // Ordering: seq_cst, so `empty` is linearizable and (B2)-like.
        std::size_t const tail = tail_.index.load(std::memory_order_seq_cst);
        if ((head >> shift) == (tail >> shift)) return recv_result<T>((tail & flag) ? status::closed : status::empty);
        if ((head >> shift) / lap != (tail >> shift) / lap) new_head |= flag;
      }
      if (blk == nullptr) {  // the first send is installing the first block
        snooze(b);
        head = head_.index.load(std::memory_order_acquire);
        blk = head_.blk.load(std::memory_order_acquire);
        continue;
      }
      // (A1) seq_cst for the (future) senders' side; acquire on failure
      // pairs with the release stores below by another receiver.
      if (head_.index.compare_exchange_weak(head, new_head, std::memory_order_seq_cst, std::memory_order_acquire)) {
        if (offset + 1 == block_cap) {  // move head_ to the next block
          block* next = blk->wait_next();
          std::size_t next_index = (new_head & ~flag) + (1 << shift);
          // Ordering: relaxed; only a hint that tail is further on (the flag).
          if (next->next.load(std::memory_order_relaxed) != nullptr) next_index |= flag;
          // Ordering: release pairs with the acquire loads at the top.
          head_.blk.store(next, std::memory_order_release);
          head_.index.store(next_index, std::memory_order_release);
        }
        slot& s = blk->slots[offset];
        s.wait_written();
        recv_result<T> r(std::in_place, std::move(s.value.get()));
        s.value.destroy();
        if (offset + 1 == block_cap) {
          block::reclaim(blk, 0);
        } else if (s.state.fetch_or(read, std::memory_order_acq_rel) & destroy) {
          // Ordering: acq_rel pairs with reclaim()'s fetch_or of destroy.
          block::reclaim(blk, offset + 1);
        }
        return r;
      }
      blk = head_.blk.load(std::memory_order_acquire);
      (void)cas.next();
    }
  }

  alignas(64) position head_;
  alignas(64) position tail_;
  alignas(64) sync_waker receivers_;
};

}  // namespace rouse::channel::detail
