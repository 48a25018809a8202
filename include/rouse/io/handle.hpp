// rouse/io/handle.hpp — what every I/O object is built from.
//
//   io_handle        a descriptor, owned, plus its reactor registration;
//                    move-only; close() (and the destructor) completes waiting
//                    operations with operation_canceled, then closes the fd.
//   read_action / write_action
//                    the byte-moving actions of io_operation (operation.hpp):
//                    some (one call's worth) or exact (until the span is
//                    full; partial transfers accumulate across readiness
//                    edges, in the operation, without a coroutine frame).
//                    On io_uring they describe their request instead
//                    (IORING_OP_RECV / SEND / READ / WRITE; see operation.hpp).
//                    Sockets use recv/send(MSG_NOSIGNAL): a write to a reset
//                    peer yields EPIPE, never SIGPIPE; other descriptors use
//                    read/write (a pipe whose reader is gone raises SIGPIPE
//                    unless the program ignores it: std's and POSIX's rule).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "rouse/io/operation.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/result.hpp"

namespace rouse::io {

class io_handle {
 public:
  io_handle() noexcept = default;
  io_handle(io_handle&& o) noexcept
      : reactor_(std::exchange(o.reactor_, nullptr)),
        reg_(std::exchange(o.reg_, nullptr)),
        fd_(std::exchange(o.fd_, -1)) {}
  io_handle& operator=(io_handle&& o) noexcept {
    if (this != &o) {
      close();
      reactor_ = std::exchange(o.reactor_, nullptr);
      reg_ = std::exchange(o.reg_, nullptr);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~io_handle() { close(); }

  // Takes `fd` (made non-blocking) and registers it with `r`. On failure
  // the fd is closed and the error returned.
  static io_result<io_handle> adopt(reactor& r, int fd);

  bool is_open() const noexcept { return fd_ >= 0; }
  int native_handle() const noexcept { return fd_; }
  io::reactor* get_reactor() const noexcept { return reactor_; }
  detail::registration* registration() const noexcept { return reg_; }
  // Completes waiting operations with operation_canceled; closes the fd.
  void close() noexcept;
  // Gives the fd up (deregistered, not closed).
  int release() noexcept;

 private:
  io::reactor* reactor_ = nullptr;
  detail::registration* reg_ = nullptr;
  int fd_ = -1;
};

namespace detail {

inline void set_errno_result(io_result<std::size_t>& r, int err) noexcept {
  r = io_result<std::size_t>(errno_code(err));
}

// The most one kernel request asks to move (its length is 32 bits); a
// larger read_exact / write_all asks again for the rest.
inline constexpr std::size_t max_request_bytes = std::size_t{1} << 30;
inline std::uint32_t request_size(std::size_t left) noexcept {
  return static_cast<std::uint32_t>(left < max_request_bytes ? left : max_request_bytes);
}

template <bool Exact, bool Socket>
struct read_action {
  static constexpr int direction = read_direction;
  std::span<std::byte> buffer;
  std::size_t done = 0;
  io_result<std::size_t> result{};

  bool perform(int fd) noexcept {
    for (;;) {
      ssize_t const n = Socket ? ::recv(fd, buffer.data() + done, buffer.size() - done, 0)
                               : ::read(fd, buffer.data() + done, buffer.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        if (!Exact || done == buffer.size()) break;
        continue;
      }
      if (n == 0) {
        if (Exact && done < buffer.size()) {
          result = io_result<std::size_t>(make_error_code(io_errc::eof));
          return true;
        }
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      set_errno_result(result, errno);
      return true;
    }
    result = io_result<std::size_t>(done);
    return true;
  }
  void fail(int err) noexcept { set_errno_result(result, err); }
  io_result<std::size_t> take() noexcept { return result; }
  // An empty buffer is already full (or all written): 0, at once, with no
  // system call (a zero-length recv would wait for data on a stream).
  bool completes_empty() noexcept {
    if (!buffer.empty()) return false;
    result = io_result<std::size_t>(std::size_t{0});
    return true;
  }

  // Completion-based (io_uring): IORING_OP_RECV / READ of what is left.
  void describe(kernel_request& k) noexcept {
    k.opcode = Socket ? kernel_opcode::recv : kernel_opcode::read;
    k.data = buffer.data() + done;
    k.size = request_size(buffer.size() - done);
    k.flags = 0;
  }
  bool finish(int res) noexcept {
    if (res > 0) {
      done += static_cast<std::size_t>(res);
      if (Exact && done < buffer.size()) return false;  // ask for the rest
    } else if (res == 0) {
      if (Exact && done < buffer.size()) {
        result = io_result<std::size_t>(make_error_code(io_errc::eof));
        return true;
      }
    } else {
      if (res == -EINTR) return false;
      set_errno_result(result, -res);
      return true;
    }
    result = io_result<std::size_t>(done);
    return true;
  }
};

template <bool Exact, bool Socket>
struct write_action {
  static constexpr int direction = write_direction;
  std::span<const std::byte> buffer;
  std::size_t done = 0;
  io_result<std::size_t> result{};

  bool perform(int fd) noexcept {
    while (done < buffer.size() || buffer.empty()) {
      ssize_t const n = Socket ? ::send(fd, buffer.data() + done, buffer.size() - done, MSG_NOSIGNAL)
                               : ::write(fd, buffer.data() + done, buffer.size() - done);
      if (n >= 0) {
        done += static_cast<std::size_t>(n);
        if (!Exact || buffer.empty()) break;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      set_errno_result(result, errno);
      return true;
    }
    result = io_result<std::size_t>(done);
    return true;
  }
  void fail(int err) noexcept { set_errno_result(result, err); }
  io_result<std::size_t> take() noexcept { return result; }
  // Nothing to write on a TCP stream: 0, at once, with no system call. On
  // an async_fd the write is made (a datagram socket's empty datagram).
  bool completes_empty() noexcept {
    if (!Socket || !buffer.empty()) return false;
    result = io_result<std::size_t>(std::size_t{0});
    return true;
  }

  // Completion-based (io_uring): IORING_OP_SEND (MSG_NOSIGNAL) / WRITE of
  // what is left.
  void describe(kernel_request& k) noexcept {
    k.opcode = Socket ? kernel_opcode::send : kernel_opcode::write;
    k.data = const_cast<std::byte*>(buffer.data() + done);
    k.size = request_size(buffer.size() - done);
    k.flags = Socket ? MSG_NOSIGNAL : 0;
  }
  bool finish(int res) noexcept {
    if (res < 0) {
      if (res == -EINTR) return false;
      set_errno_result(result, -res);
      return true;
    }
    done += static_cast<std::size_t>(res);
    if (Exact && done < buffer.size()) return false;  // ask for the rest
    result = io_result<std::size_t>(done);
    return true;
  }
};

}  // namespace detail

// The awaitables of the byte-moving calls.
template <bool Socket>
using read_some_operation = io_operation<detail::read_action<false, Socket>>;
template <bool Socket>
using read_exact_operation = io_operation<detail::read_action<true, Socket>>;
template <bool Socket>
using write_some_operation = io_operation<detail::write_action<false, Socket>>;
template <bool Socket>
using write_all_operation = io_operation<detail::write_action<true, Socket>>;

// The byte-moving calls, shared by tcp_stream (Socket) and async_fd.
template <bool Socket>
class byte_stream_ops {
 public:
  // One transfer of at most buffer.size() bytes (0 at end of stream). A
  // read of an empty buffer completes at once with 0 (as Asio's), and so
  // does a tcp_stream's write of one; an async_fd's empty write is made
  // (a datagram socket sends an empty datagram).
  read_some_operation<Socket> read_some(std::span<std::byte> buffer) noexcept {
    return {handle_.registration(), {buffer}};
  }
  // Fills buffer (io_errc::eof if the stream ends first).
  read_exact_operation<Socket> read_exact(std::span<std::byte> buffer) noexcept {
    return {handle_.registration(), {buffer}};
  }
  write_some_operation<Socket> write_some(std::span<const std::byte> buffer) noexcept {
    return {handle_.registration(), {buffer}};
  }
  // Writes all of buffer, across as many calls and edges as it takes.
  write_all_operation<Socket> write_all(std::span<const std::byte> buffer) noexcept {
    return {handle_.registration(), {buffer}};
  }

  bool is_open() const noexcept { return handle_.is_open(); }
  int native_handle() const noexcept { return handle_.native_handle(); }
  void close() noexcept { handle_.close(); }

 protected:
  byte_stream_ops() noexcept = default;
  explicit byte_stream_ops(io_handle h) noexcept : handle_(std::move(h)) {}
  io_handle handle_;
};

}  // namespace rouse::io
