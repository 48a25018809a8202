// rouse/channel/detail/zero.hpp — the rendezvous flavour (capacity 0).
//
// No buffer: a send hands its value straight to a receive. One lock guards
// two waiter queues (blocked senders, blocked receivers) and the closed flag.
// Each blocked operation owns a `packet` on its stack:
//
//   a blocked sender's packet points at the sender's own value (`source`);
//   a blocked receiver's packet has room for the value (`slot`).
//
// An arriving send that finds a blocked receiver claims its context (one
// CAS), unlinks it, leaves the lock, moves the value into the receiver's
// packet and unparks it: the receiver returns with the value. An arriving
// receive that finds a blocked sender claims it, moves the value out of the
// sender's `source`, and unparks it: the sender returns ok (so send returns
// only once a receiver has taken its value). Otherwise the operation
// registers and waits; a timeout or close() claims the context instead, and
// the value is still the sender's (handed back).
//
// Linearizability: a hand-off takes effect at the claim, which happens under
// the lock; try_send succeeds only if a receiver is blocked at that moment and
// try_recv only if a sender is.
//
// Memory ordering: the lock orders registrations and claims. The value moved
// by the claimer reaches the blocked thread through context::unpark()'s
// release store and wait()'s acquire load (see waiter.hpp); `closed_` is
// written under the lock and read relaxed by is_closed() (a snapshot).
#pragma once

#include <cstddef>
#include <cstdint>

#include "rouse/channel/detail/cell.hpp"
#include "rouse/channel/detail/waiter.hpp"
#include "rouse/channel/result.hpp"

namespace rouse::channel::detail {

template <class T>
struct packet {
  T* source = nullptr;  // a blocked sender's value
  cell<T> slot;         // a blocked receiver's room for the value
};

template <class T>
class zero_channel {
 public:
  zero_channel() = default;
  zero_channel(const zero_channel&) = delete;
  zero_channel& operator=(const zero_channel&) = delete;

  // `self`: the context of a select that may have its own waiters here
  // (they must not be paired with each other); nullptr otherwise.
  status try_send(T& v, const context* self = nullptr) noexcept {
    waiter* w;
    {
      lock_guard g(lock_);
      w = receivers_.try_select(self);
      if (w == nullptr) return closed_flag() ? status::closed : status::full;
    }
    give(*w, v);
    return status::ok;
  }

  recv_result<T> try_recv(const context* self = nullptr) noexcept {
    waiter* w;
    {
      lock_guard g(lock_);
      w = senders_.try_select(self);
      if (w == nullptr) return recv_result<T>(closed_flag() ? status::closed : status::empty);
    }
    return take(*w);
  }

  template <class Deadline>
  status send(T& v, const Deadline& deadline) noexcept {
    context cx;
    packet<T> p;
    p.source = &v;
    waiter me{&cx, &p};
    waiter* w;
    {
      lock_guard g(lock_);
      w = receivers_.try_select(nullptr);
      if (w == nullptr) {
        if (closed_flag()) return status::closed;
        if (deadline.expired()) return status::timed_out;
        senders_.push_back(me);
      }
    }
    if (w) {
      give(*w, v);
      return status::ok;
    }
    std::uintptr_t const sel = cx.wait(deadline);
    if (sel == me.id()) return status::ok;  // a receiver took the value
    unregister_sender(me);
    return sel == context::closed ? status::closed : status::timed_out;
  }

  template <class Deadline>
  recv_result<T> recv(const Deadline& deadline) noexcept {
    context cx;
    packet<T> p;
    waiter me{&cx, &p};
    waiter* w;
    {
      lock_guard g(lock_);
      w = senders_.try_select(nullptr);
      if (w == nullptr) {
        if (closed_flag()) return recv_result<T>(status::closed);
        if (deadline.expired()) return recv_result<T>(status::timed_out);
        receivers_.push_back(me);
      }
    }
    if (w) return take(*w);
    std::uintptr_t const sel = cx.wait(deadline);
    if (sel == me.id()) return take_delivered(p);
    unregister_receiver(me);
    return recv_result<T>(sel == context::closed ? status::closed : status::timed_out);
  }

  bool close() noexcept {
    lock_guard g(lock_);
    if (closed_flag()) return false;
    // Ordering: relaxed; written under the lock, read under it or as a snapshot.
    closed_.store(1, std::memory_order_relaxed);
    senders_.disconnect();
    receivers_.disconnect();
    return true;
  }

  [[nodiscard]] bool is_closed() const noexcept { return closed_flag(); }
  [[nodiscard]] static constexpr std::size_t size() noexcept { return 0; }
  [[nodiscard]] static constexpr std::size_t capacity() noexcept { return 0; }
  [[nodiscard]] static constexpr bool is_empty() noexcept { return true; }
  [[nodiscard]] static constexpr bool is_full() noexcept { return true; }

  // select's hooks. A registering waiter carries its packet; readiness is
  // a blocked counterpart from another context, or close.
  void register_sender(waiter& w) noexcept {
    lock_guard g(lock_);
    senders_.push_back(w);
  }
  void unregister_sender(waiter& w) noexcept {
    lock_guard g(lock_);
    senders_.remove(w);
  }
  void register_receiver(waiter& w) noexcept {
    lock_guard g(lock_);
    receivers_.push_back(w);
  }
  void unregister_receiver(waiter& w) noexcept {
    lock_guard g(lock_);
    receivers_.remove(w);
  }
  bool send_ready(const context* self) noexcept {
    lock_guard g(lock_);
    return receivers_.has_other(self) || closed_flag();
  }
  bool recv_ready(const context* self) noexcept {
    lock_guard g(lock_);
    return senders_.has_other(self) || closed_flag();
  }
  // The value a select's receive case got (its waiter was claimed by a send).
  static recv_result<T> take_delivered(packet<T>& p) noexcept {
    recv_result<T> r(std::in_place, std::move(p.slot.get()));
    p.slot.destroy();
    return r;
  }

 private:
  bool closed_flag() const noexcept {
    // Ordering: relaxed; see the Memory ordering paragraph.
    return closed_.load(std::memory_order_relaxed) != 0;
  }

  // `w` is a claimed, unlinked receiver: deliver into its packet, wake it.
  static void give(waiter& w, T& v) noexcept {
    static_cast<packet<T>*>(w.packet)->slot.put(std::move(v));
    w.cx->unpark();
  }
  // `w` is a claimed, unlinked sender: take its value, wake it.
  static recv_result<T> take(waiter& w) noexcept {
    recv_result<T> r(std::in_place, std::move(*static_cast<packet<T>*>(w.packet)->source));
    w.cx->unpark();
    return r;
  }

  list_lock lock_;
  d::atomic<std::uint32_t> closed_{0};
  waiter_queue senders_;
  waiter_queue receivers_;
};

}  // namespace rouse::channel::detail
