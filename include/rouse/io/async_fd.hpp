// rouse/io/async_fd.hpp — any pollable descriptor (pipe end, eventfd, tty,
// socket made elsewhere) driven by the reactor.
//
//   auto p = rouse::io::async_fd::adopt(loop, pipe_read_end);  // takes ownership
//   io_result<std::size_t> n = co_await p->read_some(buf);
//   if (auto w = co_await p->write_all(bytes); !w) handle(w.error());
//
// The descriptor is made non-blocking and registered once; read/write(2)
// move the bytes (on io_uring: IORING_OP_READ / WRITE, at the descriptor's
// current position). Regular files, directories and character devices
// without poll support (/dev/null) are not pollable (epoll refuses them,
// and io_uring's backend alike: adopt() returns EPERM). Same conventions as tcp.hpp.
#pragma once

#include "rouse/io/handle.hpp"

namespace rouse::io {

class async_fd : public byte_stream_ops<false> {
 public:
  async_fd() noexcept = default;
  static io_result<async_fd> adopt(reactor& r, int fd) {
    io_result<io_handle> h = io_handle::adopt(r, fd);
    if (!h) return h.error();
    return async_fd(std::move(*h));
  }

 private:
  explicit async_fd(io_handle h) noexcept : byte_stream_ops<false>(std::move(h)) {}
};

}  // namespace rouse::io
