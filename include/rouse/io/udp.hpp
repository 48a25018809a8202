// rouse/io/udp.hpp — UDP over the reactor.
//
//   auto s = rouse::io::udp_socket::bind(loop, endpoint::loopback_v4(0));
//   co_await s->send_to(bytes, peer);                 // io_result<size_t>
//   io_result<datagram> d = co_await s->recv_from(buf);  // d->size, d->from
//
// A datagram larger than the buffer is truncated (the rest is dropped, as
// recvfrom does). Same conventions as tcp.hpp: io_result, cancellable,
// move-only, outlives its operations.
#pragma once

#include <span>

#include "rouse/io/endpoint.hpp"
#include "rouse/io/handle.hpp"
#include "rouse/io/operation.hpp"

namespace rouse::io {

struct datagram {
  std::size_t size = 0;
  endpoint from;
};

namespace detail {

struct send_to_action {
  static constexpr int direction = write_direction;
  std::span<const std::byte> buffer;
  endpoint to;
  io_result<std::size_t> result{};
  bool perform(int fd) noexcept {
    for (;;) {
      ssize_t const n = ::sendto(fd, buffer.data(), buffer.size(), MSG_NOSIGNAL, to.data(), to.size());
      if (n >= 0) {
        result = io_result<std::size_t>(static_cast<std::size_t>(n));
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      set_errno_result(result, errno);
      return true;
    }
  }
  void fail(int err) noexcept { set_errno_result(result, err); }
  io_result<std::size_t> take() noexcept { return result; }
};

struct recv_from_action {
  static constexpr int direction = read_direction;
  std::span<std::byte> buffer;
  io_result<datagram> result{};
  bool perform(int fd) noexcept {
    for (;;) {
      datagram d;
      socklen_t len = endpoint::capacity();
      ssize_t const n = ::recvfrom(fd, buffer.data(), buffer.size(), 0, d.from.data(), &len);
      if (n >= 0) {
        d.size = static_cast<std::size_t>(n);
        d.from.resize(len);
        result = io_result<datagram>(d);
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      result = io_result<datagram>(errno_code(errno));
      return true;
    }
  }
  void fail(int err) noexcept { result = io_result<datagram>(errno_code(err)); }
  io_result<datagram> take() noexcept { return result; }
};

}  // namespace detail

class udp_socket {
 public:
  udp_socket() noexcept = default;
  static io_result<udp_socket> bind(reactor& r, const endpoint& local);

  io_operation<detail::send_to_action> send_to(std::span<const std::byte> buffer, const endpoint& to) noexcept {
    return {handle_.registration(), detail::send_to_action{buffer, to}};
  }
  io_operation<detail::recv_from_action> recv_from(std::span<std::byte> buffer) noexcept {
    return {handle_.registration(), detail::recv_from_action{buffer}};
  }
  io_result<endpoint> local_endpoint() const;
  bool is_open() const noexcept { return handle_.is_open(); }
  int native_handle() const noexcept { return handle_.native_handle(); }
  void close() noexcept { handle_.close(); }

 private:
  explicit udp_socket(io_handle h) noexcept : handle_(std::move(h)) {}
  io_handle handle_;
};

}  // namespace rouse::io
