// rouse/channel/select.hpp — wait on several channel operations at once.
//
//   rouse::channel::recv_case a(rx1);           // a receive from rx1
//   rouse::channel::recv_case b(rx2);
//   rouse::channel::send_case c(tx, value);     // a send of `value` (moved from only if sent)
//   switch (rouse::channel::select(a, b, c)) {  // blocks; the index of the one that completed
//     case 0: use(a.result()); break;           // a value, or status closed
//     case 1: use(b.result()); break;
//     case 2: if (c.status() == status::closed) ...; break;
//   }
//   std::optional<std::size_t> i = rouse::channel::try_select(a, b);      // Go's `default:`
//   std::optional<std::size_t> j = rouse::channel::select_for(10ms, a, b); // nullopt: timed out
//
// Purpose: Go's select over rouse::channel's bounded, unbounded and
// rendezvous channels (any mix of flavours and element types).
//
// Semantics
// - Exactly one case completes per call. A receive case completes with a
//   value, or with `closed` once its channel is closed and drained (as Go's
//   receive from a closed channel); a send case completes with `ok` (the
//   value was sent) or `closed` (the value is left in place, untouched).
// - Among cases ready at the same time the choice is uniformly random (each
//   call tries the cases in a random order), so no ready case starves.
// - try_select never waits for a case to become ready: nullopt when none
//   is (a case may wait for a neighbour's move already under way, as
//   try_recv / try_send do: channel.hpp). select_for /
//   select_until return nullopt once the deadline has passed (never early).
// - Rendezvous cases pair with operations of other threads only: a select
//   with a send and a receive on the same rendezvous channel never pairs them
//   with each other.
//
// Lifecycle and misuse: a case refers to its handle and value by reference;
// both must outlive the select call. A case may be reused in several calls
// (its result is overwritten), or destroyed as soon as select returns: a
// thread that claimed its waiter (a send that delivered into it, a close)
// is done with it before the call can return: it unlinks the case's node
// under the channel's lock, and its release of the waiter is its last
// access (rouse/detail/waiter_queue.hpp).
// Passing a case built on an empty handle, or one case object twice in one
// call (two case objects on one channel are fine), is misuse (diagnosed in
// debug builds).
//
// How it works (crossbeam's design): try every case without blocking,
// starting at a random one. If none is ready, make one waiter on the stack
// (rouse/detail/waiter_queue.hpp), register one node per case in its
// channel (the same waiter lists that blocking send and recv use), re-check
// every case, and sleep. The first thread that can serve a case claims the
// whole waiter with one CAS, so at most one case is chosen. On wake-up, the
// chosen case completes (for a rendezvous the value was already handed
// over; for a buffered channel the case retries, and if another thread won
// the race the select starts over), and every other node is withdrawn.
//
// sizeof: recv_case<T> and send_case<T> hold a handle pointer, a waiter
// node (40 bytes) and their result. Cost: a select that finds a ready case costs
// its try operations; one that sleeps costs a registration per case.
// Across processes: no.
//
// Memory ordering: as for the operation that completed (see channel.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "rouse/channel/channel.hpp"
#include "rouse/channel/detail/waiter.hpp"
#include "rouse/channel/detail/zero.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace rouse::channel {

namespace detail {

// What select needs from a case.
class select_case_base {
 public:
  // Non-blocking attempt; true when the case completed.
  virtual bool attempt() noexcept = 0;
  // Registers this case's node in its channel, for the waiter `w`.
  virtual void enroll(waiter& w) noexcept = 0;
  // After enroll: could the case go ahead now? (the (B2) re-check)
  virtual bool ready(const waiter& w) noexcept = 0;
  // Unregisters the node (no-op if a claimer unlinked it).
  virtual void withdraw() noexcept = 0;
  // The node was claimed: finish the case; false when a race was lost
  // (buffered channels) and select must start over.
  virtual bool accept() noexcept = 0;

  [[nodiscard]] std::uintptr_t id() const noexcept { return node_.id(); }

 protected:
  select_case_base() = default;
  ~select_case_base() = default;
  waiter_node node_{};
};

// A small per-thread generator for the random order.
inline std::size_t random_below(std::size_t n) noexcept {
  thread_local std::uint64_t state = 0;
  if (state == 0) state = reinterpret_cast<std::uintptr_t>(&state) * 0x9E3779B97F4A7C15ull | 1;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::size_t>(state % n);
}

template <class Deadline, std::size_t N>
std::optional<std::size_t> run_select(const Deadline& deadline, const std::array<select_case_base*, N>& cases) {
  static_assert(N >= 1, "select needs at least one case");
  // One case object registers one node: listed twice, it would be linked
  // twice into one list (empty in release builds).
  for (std::size_t i = 1; i < N; ++i)
    for (std::size_t j = 0; j < i; ++j)
      ROUSE_CHECK_USAGE(cases[i] != cases[j], "rouse::channel::select", "the same case object listed twice");
  for (;;) {
    // The cases in a random order, drawn as they are tried (Fisher-Yates):
    // the first ready one in it is a uniform choice among the ready ones.
    // (A random start and then the cases in turn would favour a ready case
    // that follows a case that is not ready.)
    std::array<std::size_t, N> order;
    for (std::size_t i = 0; i < N; ++i) order[i] = i;
    for (std::size_t k = 0; k < N; ++k) {
      if (k + 1 < N) std::swap(order[k], order[k + random_below(N - k)]);
      if (cases[order[k]]->attempt()) return order[k];
    }
    if (deadline.expired()) return std::nullopt;

    waiter w;
    for (select_case_base* c : cases) c->enroll(w);
    std::uintptr_t sel = waiter::waiting;
    for (std::size_t k = 0; k < N; ++k) {
      if (cases[order[k]]->ready(w)) {
        if (w.try_claim(waiter::aborted)) sel = waiter::aborted;
        break;
      }
    }
    if (sel == waiter::waiting) sel = block_on(w, deadline);
    std::optional<std::size_t> chosen;
    for (std::size_t i = 0; i < N; ++i) {
      if (cases[i]->id() == sel)
        chosen = i;
      else
        cases[i]->withdraw();
    }
    if (chosen && cases[*chosen]->accept()) return chosen;
    // aborted (ready, or timed out: the next round's attempts decide),
    // closed (the attempts will complete), or a lost race: start over.
  }
}

}  // namespace detail

// A receive from `rx`. After select chose it, result() holds the value or
// status closed.
template <class T>
class recv_case final : public detail::select_case_base {
 public:
  explicit recv_case(receiver<T>& rx) noexcept : rx_(rx) {
    ROUSE_CHECK_USAGE(static_cast<bool>(rx), "rouse::channel::select", "a case on an empty receiver");
  }
  recv_case(const recv_case&) = delete;
  recv_case& operator=(const recv_case&) = delete;

  // The completed receive (debug builds diagnose a call before one).
  recv_result<T>& result() noexcept {
    ROUSE_CHECK_USAGE(result_.has_value(), "rouse::channel::recv_case", "result() before select chose this case");
    return *result_;
  }

  bool attempt() noexcept override {
    recv_result<T> r = rx_.visit([](auto& c) { return c.try_recv(); });
    if (r.status() == status::empty) return false;
    result_.emplace(std::move(r));
    return true;
  }
  void enroll(detail::waiter& w) noexcept override {
    node_.reset(&w, &packet_);
    rx_.visit([&](auto& c) { c.register_receiver(node_); });
  }
  bool ready(const detail::waiter& w) noexcept override {
    return rx_.visit([&](auto& c) -> bool {
      if constexpr (requires { c.recv_ready(&w); })
        return c.recv_ready(&w);
      else
        return c.recv_ready();
    });
  }
  void withdraw() noexcept override {
    rx_.visit([&](auto& c) { c.unregister_receiver(node_); });
  }
  bool accept() noexcept override {
    if (rx_.kind_ == detail::flavor::zero) {
      result_.emplace(detail::zero_channel<T>::take_delivered(packet_));
      return true;
    }
    return attempt();
  }

 private:
  receiver<T>& rx_;
  detail::recv_packet<T> packet_{};
  std::optional<recv_result<T>> result_;  // optional: T need not be assignable
};

// A send of `value` on `tx`. `value` is moved from only if it was sent
// (status ok); on closed it is left untouched.
template <class T>
class send_case final : public detail::select_case_base {
 public:
  send_case(sender<T>& tx, T& value) noexcept : tx_(tx), value_(value) {
    ROUSE_CHECK_USAGE(static_cast<bool>(tx), "rouse::channel::select", "a case on an empty sender");
  }
  send_case(const send_case&) = delete;
  send_case& operator=(const send_case&) = delete;

  channel::status status() const noexcept { return status_; }

  bool attempt() noexcept override {
    channel::status const s = tx_.visit([&](auto& c) { return c.try_send(value_); });
    if (s == status::full) return false;
    status_ = s;
    return true;
  }
  void enroll(detail::waiter& w) noexcept override {
    packet_.source = &value_;
    node_.reset(&w, &packet_);
    tx_.visit([&](auto& c) {
      if constexpr (requires { c.register_sender(node_); }) c.register_sender(node_);
    });
  }
  bool ready(const detail::waiter& w) noexcept override {
    return tx_.visit([&](auto& c) -> bool {
      if constexpr (requires { c.send_ready(&w); })
        return c.send_ready(&w);
      else if constexpr (requires { c.send_ready(); })
        return c.send_ready();
      else
        return true;  // unbounded: always ready
    });
  }
  void withdraw() noexcept override {
    tx_.visit([&](auto& c) {
      if constexpr (requires { c.unregister_sender(node_); }) c.unregister_sender(node_);
    });
  }
  bool accept() noexcept override {
    if (tx_.kind_ == detail::flavor::zero) {  // a receiver already took the value
      status_ = status::ok;
      return true;
    }
    return attempt();
  }

 private:
  sender<T>& tx_;
  T& value_;
  detail::send_packet<T> packet_{};
  channel::status status_ = status::full;
};

template <class T>
recv_case(receiver<T>&) -> recv_case<T>;
template <class T>
send_case(sender<T>&, T&) -> send_case<T>;

// Blocks until one case completes; returns its index.
template <class... Cases>
std::size_t select(Cases&... cases) noexcept {
  std::array<detail::select_case_base*, sizeof...(Cases)> const table{&cases...};
  return *detail::run_select(detail::no_deadline{}, table);
}

// Completes a ready case, or returns nullopt at once (Go's `default:`).
template <class... Cases>
std::optional<std::size_t> try_select(Cases&... cases) noexcept {
  std::array<detail::select_case_base*, sizeof...(Cases)> const table{&cases...};
  return detail::run_select(detail::now_deadline{}, table);
}

template <class Clock, class Duration, class... Cases>
std::optional<std::size_t> select_until(std::chrono::time_point<Clock, Duration> deadline, Cases&... cases) noexcept {
  std::array<detail::select_case_base*, sizeof...(Cases)> const table{&cases...};
  auto const d = rouse::detail::deadline_at(deadline);
  if (platform::is_unbounded(d.at)) return detail::run_select(detail::no_deadline{}, table);
  return detail::run_select(d, table);
}

template <class Rep, class Period, class... Cases>
std::optional<std::size_t> select_for(std::chrono::duration<Rep, Period> timeout, Cases&... cases) noexcept {
  return select_until(detail::deadline_after(timeout), cases...);
}

}  // namespace rouse::channel
