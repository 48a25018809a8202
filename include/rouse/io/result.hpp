// rouse/io/result.hpp — io_result<T>: what every I/O operation returns.
//
//   rouse::io::io_result<std::size_t> n = co_await stream.read_some(buf);
//   if (!n) { handle(n.error()); co_return; }   // a std::error_code
//   use(*n);                                    // the value
//
// Convention: I/O failures are values, not exceptions. An operation yields
// io_result<T>: the value, or a std::error_code (system_category for errno
// values, io_category for rouse's own: eof). value() throws
// std::system_error when there is none, for code that prefers exceptions.
// A cancelled operation is not an error: it completes as *stopped* (a rouse
// task completes as stopped; a foreign coroutine gets operation_stopped).
// Closing an object while an operation waits on it completes the operation
// with std::errc::operation_canceled (ECANCELED).
//
// End of stream: read_some yields 0 bytes; read_exact, which cannot be
// satisfied, yields io_errc::eof.
#pragma once

#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "rouse/config.hpp"

namespace rouse::io {

// rouse's own I/O error values (io_category()).
enum class io_errc : int {
  eof = 1,  // the peer closed its side before the operation was satisfied
};

const std::error_category& io_category() noexcept;

inline std::error_code make_error_code(io_errc e) noexcept { return {static_cast<int>(e), io_category()}; }

// An errno value as an error code.
inline std::error_code errno_code(int err) noexcept { return {err, std::system_category()}; }

template <class T>
class [[nodiscard]] io_result {
 public:
  // Default: a default-constructed value (a size of 0).
  io_result() : value_(std::in_place) {}
  io_result(T value) : value_(std::move(value)) {}  // NOLINT
  io_result(std::error_code error) noexcept : error_(error) {}                                        // NOLINT

  bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  std::error_code error() const noexcept { return error_; }

  T& operator*() & noexcept { return *value_; }
  const T& operator*() const& noexcept { return *value_; }
  T&& operator*() && noexcept { return std::move(*value_); }
  T* operator->() noexcept { return &*value_; }
  const T* operator->() const noexcept { return &*value_; }

  // The value; throws std::system_error(error()) when there is none.
  T& value() & {
    if (!value_) throw std::system_error(error_);
    return *value_;
  }
  T&& value() && {
    if (!value_) throw std::system_error(error_);
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
  std::error_code error_{};
};

template <>
class [[nodiscard]] io_result<void> {
 public:
  io_result() noexcept = default;
  io_result(std::error_code error) noexcept : error_(error) {}  // NOLINT
  bool has_value() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return has_value(); }
  std::error_code error() const noexcept { return error_; }
  void value() const {
    if (error_) throw std::system_error(error_);
  }

 private:
  std::error_code error_{};
};

}  // namespace rouse::io

template <>
struct std::is_error_code_enum<rouse::io::io_errc> : std::true_type {};
