// rouse/channel/detail/zero.hpp — the rendezvous flavour (capacity 0).
//
// No buffer: a send hands its value straight to a receive. One lock guards
// two waiter lists (blocked senders, blocked receivers: waiter_list of
// rouse/detail/waiter_queue.hpp) and the closed flag; one lock for both, so
// that an arriving operation's check of the other side and its own
// registration are one step (two queues with a lock each could let a send
// and a receive both register and wait for each other forever). Each blocked
// operation owns a packet on its stack:
//
//   a blocked sender's (send_packet) points at the sender's own value;
//   a blocked receiver's (recv_packet) has room for the value.
//
// An arriving send that finds a blocked receiver claims its waiter (one
// CAS), unlinks it, leaves the lock, moves the value into the receiver's
// packet and wakes it: the receiver returns with the value. An arriving
// receive that finds a blocked sender claims it, moves the value out of the
// sender's `source`, and wakes it: the sender returns ok (so send returns
// only once a receiver has taken its value). Otherwise the operation
// registers and waits; a timeout or close() claims the waiter instead, and
// the value is still the sender's (handed back). The hand-over is the
// claimer's part before its release (waiter::wake()), so it is done before
// the blocked thread can return and free the packet.
//
// Linearizability: a hand-off takes effect at the claim, which happens under
// the lock; try_send succeeds only if a receiver is blocked at that moment and
// try_recv only if a sender is. An operation looks at the closed flag before
// it claims: close() claimed every node registered before it, so a node in
// a list after the close is a select's case that enrolled after it (its
// re-check then sees the close and it leaves), and nothing may pair with it.
//
// Memory ordering: the lock orders registrations and claims. The value moved
// by the claimer reaches the blocked thread through the waiter's release
// (thread_parker's release exchange and the acquire that ends the wait; see
// waiter_queue.hpp); `closed_` is written under the lock and read relaxed by
// is_closed() (a snapshot).
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>

#include "rouse/channel/detail/waiter.hpp"
#include "rouse/channel/result.hpp"
#include "rouse/detail/channel_slot.hpp"

namespace rouse::channel::detail {

// What a blocked sender's node points at: its own value. (Apart from a
// receiver's, so that a send carries no room for a T: a large T costs a
// sender no stack.)
template <class T>
struct send_packet {
  T* source = nullptr;
};
// What a blocked receiver's node points at: room for the value.
template <class T>
struct recv_packet {
  d::channel_slot<T> slot;
};

template <class T>
class zero_channel {
 public:
  zero_channel() = default;
  zero_channel(const zero_channel&) = delete;
  zero_channel& operator=(const zero_channel&) = delete;

  // `self`: the waiter of a select that may have its own nodes here (they
  // must not be paired with each other); nullptr otherwise.
  status try_send(T& v, const waiter* self = nullptr) noexcept {
    waiter_node* n;
    {
      lock_guard g(lock_);
      if (closed_flag()) return status::closed;
      n = claim_other(receivers_, self);
      if (n == nullptr) return status::full;
    }
    give(*n, v);
    return status::ok;
  }

  recv_result<T> try_recv(const waiter* self = nullptr) noexcept {
    waiter_node* n;
    {
      lock_guard g(lock_);
      if (closed_flag()) return recv_result<T>(status::closed);
      n = claim_other(senders_, self);
      if (n == nullptr) return recv_result<T>(status::empty);
    }
    return take(*n);
  }

  template <class Deadline>
  status send(T& v, const Deadline& deadline) noexcept {
    waiter w;
    send_packet<T> p;
    p.source = &v;
    waiter_node me(&w, &p);
    waiter_node* n;
    {
      lock_guard g(lock_);
      if (closed_flag()) return status::closed;
      n = claim_other(receivers_, nullptr);
      if (n == nullptr) {
        if (deadline.expired()) return status::timed_out;
        senders_.push_back(me);
      }
    }
    if (n) {
      give(*n, v);
      return status::ok;
    }
    std::uintptr_t const claim = block_on(w, deadline);
    if (claim == me.id()) return status::ok;              // a receiver took the value
    if (claim == waiter::aborted) unregister_sender(me);  // a close unlinked it otherwise
    return claim == waiter::closed ? status::closed : status::timed_out;
  }

  template <class Deadline>
  recv_result<T> recv(const Deadline& deadline) noexcept {
    waiter w;
    recv_packet<T> p;
    waiter_node me(&w, &p);
    waiter_node* n;
    {
      lock_guard g(lock_);
      if (closed_flag()) return recv_result<T>(status::closed);
      n = claim_other(senders_, nullptr);
      if (n == nullptr) {
        if (deadline.expired()) return recv_result<T>(status::timed_out);
        receivers_.push_back(me);
      }
    }
    if (n) return take(*n);
    std::uintptr_t const claim = block_on(w, deadline);
    if (claim == me.id()) return take_delivered(p);
    if (claim == waiter::aborted) unregister_receiver(me);
    return recv_result<T>(claim == waiter::closed ? status::closed : status::timed_out);
  }

  bool close() noexcept {
    waiter_node* chain = nullptr;
    {
      lock_guard g(lock_);
      if (closed_flag()) return false;
      // Ordering: relaxed; written under the lock, read under it or as a snapshot.
      closed_.store(1, std::memory_order_relaxed);
      senders_.claim(INT_MAX, waiter::closed, chain);
      receivers_.claim(INT_MAX, waiter::closed, chain);
    }
    waiter_list::wake_chain(chain);  // outside the lock
    return true;
  }

  [[nodiscard]] bool is_closed() const noexcept { return closed_flag(); }
  [[nodiscard]] static constexpr std::size_t size() noexcept { return 0; }
  [[nodiscard]] static constexpr std::size_t capacity() noexcept { return 0; }
  [[nodiscard]] static constexpr bool is_empty() noexcept { return true; }
  [[nodiscard]] static constexpr bool is_full() noexcept { return true; }

  // select's hooks. A registering node carries its packet; readiness is a
  // blocked counterpart of another waiter, or close.
  void register_sender(waiter_node& n) noexcept {
    lock_guard g(lock_);
    senders_.push_back(n);
  }
  void unregister_sender(waiter_node& n) noexcept {
    lock_guard g(lock_);
    senders_.remove(n);
  }
  void register_receiver(waiter_node& n) noexcept {
    lock_guard g(lock_);
    receivers_.push_back(n);
  }
  void unregister_receiver(waiter_node& n) noexcept {
    lock_guard g(lock_);
    receivers_.remove(n);
  }
  bool send_ready(const waiter* self) noexcept {
    lock_guard g(lock_);
    return receivers_.has_claimable(other_than(self)) || closed_flag();
  }
  bool recv_ready(const waiter* self) noexcept {
    lock_guard g(lock_);
    return senders_.has_claimable(other_than(self)) || closed_flag();
  }
  // The value a select's receive case got (its node was claimed by a send).
  static recv_result<T> take_delivered(recv_packet<T>& p) noexcept {
    recv_result<T> r(std::in_place, std::move(p.slot.get()));
    p.slot.destroy();
    return r;
  }

 private:
  // The lock around both lists: a rouse::mutex, taken by a few polls first
  // (channel_lock_spin: its holder runs a few pointer writes, so a poll
  // after every pause finds it free sooner than the mutex's own spin, whose
  // first poll comes after 64 pauses); then lock() as usual.
  class ROUSE_SCOPED_CAPABILITY lock_guard {
   public:
    explicit lock_guard(::rouse::mutex& l) noexcept ROUSE_ACQUIRE(l) : l_(l) {
      if (l_.try_lock()) return;
      d::spinner polls(d::channel_lock_spin);
      while (polls.next())
        if (l_.try_lock()) return;
      l_.lock();
    }
    ~lock_guard() ROUSE_RELEASE() { l_.unlock(); }
    lock_guard(const lock_guard&) = delete;
    lock_guard& operator=(const lock_guard&) = delete;

   private:
    ::rouse::mutex& l_;
  };

  static auto other_than(const waiter* self) noexcept {
    return [self](waiter_node& n) { return n.owner() != self; };
  }
  // Under the lock: claims the oldest waiter of `list` that is not `self`'s
  // and unlinks it; nullptr when none.
  static waiter_node* claim_other(waiter_list& list, const waiter* self) noexcept {
    waiter_node* chain = nullptr;
    list.claim(1, waiter_list::by_node, other_than(self), chain);
    return chain;
  }

  bool closed_flag() const noexcept {
    // Ordering: relaxed; see the Memory ordering paragraph.
    return closed_.load(std::memory_order_relaxed) != 0;
  }

  // `n` is a claimed, unlinked receiver: deliver into its packet, release it.
  static void give(waiter_node& n, T& v) noexcept {
    static_cast<recv_packet<T>*>(n.packet())->slot.construct(std::move(v));
    n.owner()->wake();
  }
  // `n` is a claimed, unlinked sender: take its value, release it.
  static recv_result<T> take(waiter_node& n) noexcept {
    recv_result<T> r(std::in_place, std::move(*static_cast<send_packet<T>*>(n.packet())->source));
    n.owner()->wake();
    return r;
  }

  ::rouse::mutex lock_;
  d::atomic<std::uint32_t> closed_{0};
  waiter_list senders_;
  waiter_list receivers_;
};

}  // namespace rouse::channel::detail
