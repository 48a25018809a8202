// rouse/channel/result.hpp — what a channel operation returns.
//
// Every channel flavour (oneshot, spsc, and the bounded / unbounded /
// rendezvous MPMC channels) reports the outcome of a send or a receive with the
// same small vocabulary, so code that handles one handles all:
//
//   channel::status       ok, empty, full, closed, timed_out
//   recv_result<T>        the value received, or the status that says why not
//   send_result<T>        success, or the status and the value handed back
//
// A closed channel is a normal result, not an exception (docs/design.md, "API
// conventions"). Which statuses an operation can report:
//
//   operation                        ok  empty  full  closed  timed_out
//   recv()                           x                x
//   try_recv()                       x   x            x
//   recv_for() / recv_until()        x                x       x
//   send(v)                          x                x
//   try_send(v)                      x          x     x
//   send_for(v) / send_until(v)      x                x       x
//
// `closed` on a receive means "closed and drained": every value sent before
// the close has been received. `empty` / `full` from a try_ operation mean
// the channel was empty / full at the moment of the attempt and not closed.
//
// Lifecycle and misuse: results are plain values (movable, copyable when T
// is; assignable whenever T is constructible). recv_result::value() on a result without a value throws
// std::bad_optional_access, as std::optional does; operator* and operator->
// on a result without a value are misuse, diagnosed in debug builds.
// send_result::value() is the value handed back by a failed send; calling it
// on a successful send result is misuse in the same way.
//
// sizeof: that of std::optional<T> plus one byte, rounded to alignment.
// Cost: no allocation; a result is moved out of the channel once.
// Thread safety: a result belongs to the thread that got it.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "rouse/detail/diagnostics.hpp"

namespace rouse::channel {

// Why a channel operation did or did not transfer a value.
enum class status : std::uint8_t {
  ok,         // the value was sent / received
  empty,      // try_recv: nothing to receive now, the channel is open
  full,       // try_send: no room now, the channel is open
  closed,     // send: the channel is closed (or the receiver is gone);
              // recv: closed and drained (or the sender is gone)
  timed_out,  // a _for / _until operation reached its deadline first
};

// A short lower-case name of a status, for messages and test output.
constexpr const char* to_string(status s) noexcept {
  switch (s) {
    case status::ok:
      return "ok";
    case status::empty:
      return "empty";
    case status::full:
      return "full";
    case status::closed:
      return "closed";
    case status::timed_out:
      return "timed_out";
  }
  return "unknown";
}

// The outcome of a receive: a value (status ok) or the reason there is none.
//
//   if (auto r = rx.recv()) use(*r);            // ok
//   else if (r.status() == status::closed) ...  // the other side is done
template <class T>
class recv_result {
  static_assert(std::is_object_v<T> && !std::is_array_v<T>, "channels carry object types");

 public:
  using value_type = T;

  // A result with a value: status ok.
  template <class... Args>
  explicit recv_result(std::in_place_t, Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args...>)
      : value_(std::in_place, std::forward<Args>(args)...), status_(channel::status::ok) {}

  // A result without a value; `why` is anything but ok.
  explicit recv_result(channel::status why) noexcept : status_(why) {
    ROUSE_CHECK_USAGE(why != channel::status::ok, "rouse::channel::recv_result",
                      "a result without a value cannot have status ok");
  }

  recv_result(recv_result&&) = default;
  recv_result(const recv_result&) = default;
  // Assignable whenever T is constructible (T itself need not be assignable),
  // so a retry loop can reuse one result variable.
  recv_result& operator=(recv_result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &other) {
      value_.reset();
      if (other.value_) value_.emplace(std::move(*other.value_));
      status_ = other.status_;
    }
    return *this;
  }
  recv_result& operator=(const recv_result& other) requires std::is_copy_constructible_v<T> {
    if (this != &other) {
      value_.reset();
      if (other.value_) value_.emplace(*other.value_);
      status_ = other.status_;
    }
    return *this;
  }

  [[nodiscard]] channel::status status() const noexcept { return status_; }
  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return value_.has_value(); }

  // Status shortcuts.
  [[nodiscard]] bool is_closed() const noexcept { return status_ == channel::status::closed; }
  [[nodiscard]] bool is_empty() const noexcept { return status_ == channel::status::empty; }
  [[nodiscard]] bool is_timed_out() const noexcept { return status_ == channel::status::timed_out; }

  // The value; throws std::bad_optional_access when there is none.
  T& value() & { return value_.value(); }
  const T& value() const& { return value_.value(); }
  T&& value() && { return std::move(value_).value(); }

  template <class U>
  T value_or(U&& fallback) && {
    return std::move(value_).value_or(std::forward<U>(fallback));
  }
  template <class U>
  T value_or(U&& fallback) const& {
    return value_.value_or(std::forward<U>(fallback));
  }

  // Unchecked access (debug builds diagnose a result without a value).
  T& operator*() & noexcept { return checked(), *value_; }
  const T& operator*() const& noexcept { return checked(), *value_; }
  T&& operator*() && noexcept { return checked(), std::move(*value_); }
  T* operator->() noexcept { return checked(), &*value_; }
  const T* operator->() const noexcept { return checked(), &*value_; }

  // The value as a std::optional (empty when there is none).
  std::optional<T>& as_optional() & noexcept { return value_; }
  std::optional<T>&& as_optional() && noexcept { return std::move(value_); }

 private:
  void checked() const noexcept {
    ROUSE_CHECK_USAGE(value_.has_value(), "rouse::channel::recv_result",
                      "operator* or operator-> on a result without a value");
  }

  std::optional<T> value_;
  channel::status status_;
};

// The outcome of a send: success (status ok, the channel owns the value), or
// the reason it failed together with the value, handed back untouched.
//
//   if (auto r = tx.send(std::move(v)); !r) log(r.status()), retry(std::move(r).value());
template <class T>
class send_result {
  static_assert(std::is_object_v<T> && !std::is_array_v<T>, "channels carry object types");

 public:
  using value_type = T;

  // A successful send.
  send_result() noexcept : status_(channel::status::ok) {}

  // A failed send; `why` is anything but ok and `returned` is the value that
  // was not sent.
  template <class U>
  send_result(channel::status why, U&& returned) noexcept(std::is_nothrow_constructible_v<T, U>)
      : value_(std::in_place, std::forward<U>(returned)), status_(why) {
    ROUSE_CHECK_USAGE(why != channel::status::ok, "rouse::channel::send_result", "a failed send cannot have status ok");
  }

  send_result(send_result&&) = default;
  send_result(const send_result&) = default;
  // Assignable whenever T is constructible (T itself need not be assignable),
  // so a retry loop can reuse one result variable.
  send_result& operator=(send_result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &other) {
      value_.reset();
      if (other.value_) value_.emplace(std::move(*other.value_));
      status_ = other.status_;
    }
    return *this;
  }
  send_result& operator=(const send_result& other) requires std::is_copy_constructible_v<T> {
    if (this != &other) {
      value_.reset();
      if (other.value_) value_.emplace(*other.value_);
      status_ = other.status_;
    }
    return *this;
  }

  [[nodiscard]] channel::status status() const noexcept { return status_; }
  [[nodiscard]] bool ok() const noexcept { return status_ == channel::status::ok; }
  explicit operator bool() const noexcept { return status_ == channel::status::ok; }

  // Status shortcuts.
  [[nodiscard]] bool is_closed() const noexcept { return status_ == channel::status::closed; }
  [[nodiscard]] bool is_full() const noexcept { return status_ == channel::status::full; }
  [[nodiscard]] bool is_timed_out() const noexcept { return status_ == channel::status::timed_out; }

  // Whether a value was handed back (exactly when the send failed).
  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }

  // The value handed back by a failed send (debug builds diagnose a call on a
  // successful send; release builds throw std::bad_optional_access).
  T& value() & { return checked(), value_.value(); }
  const T& value() const& { return checked(), value_.value(); }
  T&& value() && { return checked(), std::move(value_).value(); }

  std::optional<T>& as_optional() & noexcept { return value_; }
  std::optional<T>&& as_optional() && noexcept { return std::move(value_); }

 private:
  void checked() const noexcept {
    ROUSE_CHECK_USAGE(value_.has_value(), "rouse::channel::send_result",
                      "value() on a successful send: the channel owns the value");
  }

  std::optional<T> value_;
  channel::status status_;
};

}  // namespace rouse::channel
