// rouse/io/udp.hpp — UDP over the reactor.
//
//   auto s = rouse::io::udp_socket::bind(loop, endpoint::loopback_v4(0));
//   if (auto n = co_await s->send_to(bytes, peer); !n) handle(n.error());  // io_result<size_t>
//   io_result<datagram> d = co_await s->recv_from(buf);  // d->size, d->from
//
// A datagram larger than the buffer is truncated (the rest is dropped, as
// recvfrom does). On io_uring both calls are handed to the kernel
// (IORING_OP_RECVMSG / SENDMSG; the message header lives in the awaiting
// frame), as tcp_stream's reads and writes are. Same conventions as tcp.hpp: io_result, cancellable,
// move-only, outlives its operations.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <span>

#include "rouse/io/endpoint.hpp"
#include "rouse/io/handle.hpp"
#include "rouse/io/operation.hpp"

namespace rouse::io {

struct datagram {
  std::size_t size = 0;
  endpoint from{};
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

  // Completion-based (io_uring): IORING_OP_SENDMSG. The message header
  // lives here, in the awaiting frame, while the kernel holds the request.
  msghdr message{};
  iovec piece{};
  void describe(kernel_request& k) noexcept {
    piece = {const_cast<std::byte*>(buffer.data()), buffer.size()};
    message = {};
    message.msg_name = const_cast<sockaddr*>(to.data());
    message.msg_namelen = to.size();
    message.msg_iov = &piece;
    message.msg_iovlen = 1;
    k.opcode = kernel_opcode::sendmsg;
    k.data = &message;
    k.size = 0;
    k.flags = MSG_NOSIGNAL;
  }
  bool finish(int res) noexcept {
    if (res == -EINTR) return false;
    if (res < 0)
      set_errno_result(result, -res);
    else
      result = io_result<std::size_t>(static_cast<std::size_t>(res));
    return true;
  }
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

  // Completion-based (io_uring): IORING_OP_RECVMSG; the sender's address
  // is written into `from`, here, in the awaiting frame.
  msghdr message{};
  iovec piece{};
  endpoint from{};
  void describe(kernel_request& k) noexcept {
    piece = {buffer.data(), buffer.size()};
    message = {};
    message.msg_name = from.data();
    message.msg_namelen = endpoint::capacity();
    message.msg_iov = &piece;
    message.msg_iovlen = 1;
    k.opcode = kernel_opcode::recvmsg;
    k.data = &message;
    k.size = 0;
    k.flags = 0;
  }
  bool finish(int res) noexcept {
    if (res == -EINTR) return false;
    if (res < 0) {
      result = io_result<datagram>(errno_code(-res));
      return true;
    }
    datagram d;
    d.size = static_cast<std::size_t>(res);
    d.from = from;
    d.from.resize(message.msg_namelen);
    result = io_result<datagram>(d);
    return true;
  }
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
