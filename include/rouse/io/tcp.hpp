// rouse/io/tcp.hpp — TCP over the reactor: tcp_listener and tcp_stream.
//
//   auto l = rouse::io::tcp_listener::bind(loop, endpoint::loopback_v4(0));
//   io_result<tcp_stream> c = co_await tcp_stream::connect(loop, l->local_endpoint().value());
//   io_result<tcp_stream> s = co_await l->accept();   // (connect completes once queued)
//   io_result<std::size_t> n = co_await s->read_some(buf);     // 0 = end of stream
//   if (auto w = co_await c->write_all(bytes); !w) { handle(w.error()); co_return; }
//   if (auto r = co_await s->read_exact(buf); !r) { handle(r.error()); co_return; }  // io_errc::eof: peer closed
//   if (auto e = c->shutdown(SHUT_WR); !e) handle(e.error());
//
// Every call returns an awaitable (rouse/io/operation.hpp) that tries the
// system call at once and waits on the reactor only on EAGAIN (on io_uring,
// reads and writes of a stream are handed to the kernel instead, see
// reactor.hpp); results are
// io_result<T> (rouse/io/result.hpp); every operation is cancellable through
// the awaiting promise's stop token and so by async::with_timeout.
// Descriptors are non-blocking and close-on-exec. Objects are move-only,
// sizeof = 3 words; they must outlive their pending operations and the
// reactor must outlive them.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "rouse/io/endpoint.hpp"
#include "rouse/io/handle.hpp"
#include "rouse/io/operation.hpp"

namespace rouse::io {

class tcp_stream;

namespace detail {

struct accept_action {
  static constexpr int direction = read_direction;
  reactor* owner;
  io_result<int> fd{errno_code(EBADF)};
  bool perform(int listen_fd) noexcept {
    for (;;) {
      int const s = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (s >= 0) {
        fd = io_result<int>(s);
        return true;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      fd = io_result<int>(errno_code(errno));
      return true;
    }
  }
  void fail(int err) noexcept { fd = io_result<int>(errno_code(err)); }
  io_result<tcp_stream> take();

  // Completion-based (io_uring): IORING_OP_ACCEPT.
  void describe(kernel_request& k) noexcept {
    k.opcode = kernel_opcode::accept;
    k.data = nullptr;
    k.size = 0;
    k.flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
  }
  bool finish(int res) noexcept {
    if (res >= 0) {
      fd = io_result<int>(res);
      return true;
    }
    if (res == -EINTR || res == -ECONNABORTED) return false;  // ask again
    fd = io_result<int>(errno_code(-res));
    return true;
  }
  // An accepted connection nobody will take (its frame was destroyed).
  void discard(int res) noexcept {
    if (res >= 0) ::close(res);
  }
};

// A connection being made. On a readiness backend connect() is called
// before the operation starts and perform() finishes it (writability, then
// SO_ERROR). On io_uring with completion-based operations the kernel makes
// the call (IORING_OP_CONNECT, with `peer` kept here); if connect() was
// called already (an operation tried first, or a request the kernel gave
// back) the kernel is asked for writability instead (a one-shot POLL_ADD)
// and perform() finishes it as on the readiness path.
struct connect_action {
  static constexpr int direction = write_direction;
  int first_errno = 0;    // connect()'s own: 0, EINPROGRESS, or a failure
  bool called = true;     // connect() made (false: the kernel is to make it)
  bool polling = false;   // the request in flight is the writability poll
  int fd = -1;
  endpoint peer{};
  io_result<void> result{};
  bool perform(int sock) noexcept;
  // A socket that could not be made has no registration: the operation
  // reports connect's own failure, not EBADF.
  void fail(int err) noexcept {
    result = io_result<void>(errno_code(first_errno != 0 && first_errno != EINPROGRESS ? first_errno : err));
  }
  io_result<void> take() noexcept { return result; }

  // `called` turns true only once connect() has run (here, or the kernel
  // said so: 0, EINPROGRESS, EALREADY): a CONNECT that never ran (EINTR, a
  // request given back) is asked again, never polled for (an unconnected
  // socket is writable at once).
  void describe(kernel_request& k) noexcept {
    polling = called;
    k.opcode = called ? kernel_opcode::poll_out : kernel_opcode::connect;
    k.data = peer.data();
    k.size = peer.size();
    k.flags = 0;
  }
  bool finish(int res) noexcept;
};

}  // namespace detail

class tcp_stream : public byte_stream_ops<true> {
 public:
  class connect_operation;

  tcp_stream() noexcept = default;
  explicit tcp_stream(io_handle h) noexcept : byte_stream_ops<true>(std::move(h)) {}

  // Connects to `peer`: co_await yields io_result<tcp_stream>.
  static connect_operation connect(reactor& r, const endpoint& peer);

  io_result<void> shutdown(int how = SHUT_WR) noexcept;  // SHUT_RD, SHUT_WR, SHUT_RDWR
  io_result<void> set_nodelay(bool on) noexcept { return set_nodelay_to(on ? 1 : 0); }
  io_result<endpoint> local_endpoint() const;
  io_result<endpoint> peer_endpoint() const;
  // SO_SNDBUF / SO_RCVBUF (the kernel doubles what it is given).
  io_result<void> set_buffer_sizes(int send_bytes, int receive_bytes) noexcept;

 private:
  // Out of line with an int-sized argument (tests/abi/).
  io_result<void> set_nodelay_to(int on) noexcept;
};

class tcp_stream::connect_operation {
 public:
  using rouse_affine = void;
  connect_operation(tcp_stream s, detail::connect_action a) noexcept
      : stream_(std::move(s)), op_(stream_.handle_.registration(), a) {}
  connect_operation(connect_operation&& o) noexcept : stream_(std::move(o.stream_)), op_(std::move(o.op_)) {}
  connect_operation(const connect_operation&) = delete;

  bool await_ready() noexcept { return op_.await_ready(); }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    return op_.await_suspend(h);
  }
  io_result<tcp_stream> await_resume() {
    io_result<void> r = op_.await_resume();
    if (!r) return r.error();
    return std::move(stream_);
  }

 private:
  tcp_stream stream_;
  io_operation<detail::connect_action> op_;
};

class tcp_listener {
 public:
  tcp_listener() noexcept = default;

  // socket + SO_REUSEADDR + bind + listen. Port 0 picks a free port
  // (local_endpoint() says which).
  static io_result<tcp_listener> bind(reactor& r, const endpoint& local, int backlog = 1024);

  // What bind() may be asked besides the address.
  struct options {
    int backlog = 1024;
    // SO_REUSEPORT: several listeners (one per thread, each on its own
    // reactor) bind the same address and the kernel spreads incoming
    // connections among them by a hash of the connection's addresses, so
    // no accept is shared (rouse/io/per_core.hpp). Every listener of the
    // group must ask for it, under the same user.
    bool reuse_port = false;
  };
  static io_result<tcp_listener> bind(reactor& r, const endpoint& local, const options& opts);

  // co_await yields io_result<tcp_stream> (registered with the same reactor).
  io_operation<detail::accept_action> accept() noexcept {
    return {handle_.registration(), detail::accept_action{handle_.get_reactor()}};
  }
  io_result<endpoint> local_endpoint() const;
  bool is_open() const noexcept { return handle_.is_open(); }
  int native_handle() const noexcept { return handle_.native_handle(); }
  void close() noexcept { handle_.close(); }

 private:
  explicit tcp_listener(io_handle h) noexcept : handle_(std::move(h)) {}
  io_handle handle_;
};

}  // namespace rouse::io
