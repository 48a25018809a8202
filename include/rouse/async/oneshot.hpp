// rouse/async/oneshot.hpp — one value, once, from one producer to one consumer
// (a task or a thread on either end).
//
//   auto [tx, rx] = rouse::async::channel::oneshot<int>();
//   tx.send(42);                         // never waits; the sender is used up
//   auto r = co_await rx.recv();         // the value, or closed (the sender
//                                        // went away without sending)
//   auto r = rx.recv_blocking();         // the same from a thread
//
// Purpose: the reply channel of a request (a thread pool answering a
// coroutine, a task answering a thread), with the channel vocabulary
// (rouse/channel/result.hpp).
//
// Lifecycle: oneshot_sender and oneshot_receiver are move-only. send(v) may be
// called once; it never waits and uses the sender up (the channel closes
// behind the value, so the receiver gets the value, then `closed`). A sender
// destroyed without sending closes the channel: the receiver gets `closed`.
// A receiver destroyed (or close()d) first makes send() fail with `closed`
// and hand the value back. Operations and statuses as rouse::async::channel's
// receiver (recv, recv_for, recv_until, try_recv, and the _blocking forms);
// timeouts never early; cancellation through the awaiting promise's stop
// token completes the recv as stopped and takes nothing.
//
// Misuse: send() on a used or moved-from sender is diagnosed in debug builds.
//
// sizeof: 8 bytes each (a pointer to the shared state, which is a bounded
// async channel of capacity 1: one allocation per oneshot). Cost: send is
// one CAS, one fetch_add, one store and the receiver's waker (one RMW);
// no lock, no system call unless the receiver sleeps. Fairness: n/a.
// Across processes: no. Memory ordering: everything before send()
// happens-before the receive that gets the value.
#pragma once

#include <chrono>
#include <utility>

#include "rouse/async/channel.hpp"

namespace rouse::async::channel {

template <class T>
class oneshot_receiver;
template <class T>
class oneshot_sender;
template <class T>
std::pair<oneshot_sender<T>, oneshot_receiver<T>> oneshot();

template <class T>
class oneshot_sender {
 public:
  oneshot_sender() noexcept = default;
  oneshot_sender(oneshot_sender&&) noexcept = default;
  oneshot_sender& operator=(oneshot_sender&&) noexcept = default;

  // Sends the one value: ok, or closed (the value handed back). Uses the
  // sender up.
  send_result<T> send(T value) noexcept {
    ROUSE_CHECK_USAGE(static_cast<bool>(tx_), "rouse::async::channel::oneshot_sender",
                      "send() on a used or moved-from sender");
    sender<T> tx = std::move(tx_);
    return tx.try_send(std::move(value));
  }
  [[nodiscard]] bool is_closed() const noexcept { return !tx_ || tx_.is_closed(); }
  explicit operator bool() const noexcept { return static_cast<bool>(tx_); }

 private:
  template <class U>
  friend std::pair<oneshot_sender<U>, oneshot_receiver<U>> oneshot();
  explicit oneshot_sender(sender<T> tx) noexcept : tx_(std::move(tx)) {}
  sender<T> tx_;
};

template <class T>
class oneshot_receiver {
 public:
  oneshot_receiver() noexcept = default;
  oneshot_receiver(oneshot_receiver&&) noexcept = default;
  oneshot_receiver& operator=(oneshot_receiver&&) noexcept = default;

  [[nodiscard]] recv_awaitable<T> recv() noexcept { return rx_.recv(); }
  template <class Rep, class Period>
  [[nodiscard]] recv_awaitable<T> recv_for(std::chrono::duration<Rep, Period> d) {
    return rx_.recv_for(d);
  }
  template <class Clock, class Duration>
  [[nodiscard]] recv_awaitable<T> recv_until(std::chrono::time_point<Clock, Duration> t) {
    return rx_.recv_until(t);
  }
  recv_result<T> try_recv() noexcept { return rx_.try_recv(); }
  recv_result<T> recv_blocking() noexcept { return rx_.recv_blocking(); }
  template <class Rep, class Period>
  recv_result<T> recv_blocking_for(std::chrono::duration<Rep, Period> d) noexcept {
    return rx_.recv_blocking_for(d);
  }
  template <class Clock, class Duration>
  recv_result<T> recv_blocking_until(std::chrono::time_point<Clock, Duration> t) noexcept {
    return rx_.recv_blocking_until(t);
  }
  // Refuses the value: a later send() fails with closed.
  bool close() noexcept { return rx_.close(); }
  explicit operator bool() const noexcept { return static_cast<bool>(rx_); }
  // The receiver as a channel receiver (for select).
  receiver<T>& as_receiver() noexcept { return rx_; }

 private:
  template <class U>
  friend std::pair<oneshot_sender<U>, oneshot_receiver<U>> oneshot();
  explicit oneshot_receiver(receiver<T> rx) noexcept : rx_(std::move(rx)) {}
  receiver<T> rx_;
};

static_assert(sizeof(oneshot_sender<int>) == sizeof(void*) && sizeof(oneshot_receiver<int>) == sizeof(void*));

template <class T>
std::pair<oneshot_sender<T>, oneshot_receiver<T>> oneshot() {
  auto [tx, rx] = bounded<T>(1);
  return {oneshot_sender<T>(std::move(tx)), oneshot_receiver<T>(std::move(rx))};
}

}  // namespace rouse::async::channel
