// Endpoints, handles and socket set-up (rouse/io/{endpoint,handle,tcp,udp}.hpp).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "rouse/io/async_fd.hpp"
#include "rouse/io/endpoint.hpp"
#include "rouse/io/handle.hpp"
#include "rouse/io/result.hpp"
#include "rouse/io/tcp.hpp"
#include "rouse/io/udp.hpp"

namespace rouse::io {

// ---- errors ---------------------------------------------------------------

namespace {
class io_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "rouse.io"; }
  std::string message(int v) const override {
    switch (static_cast<io_errc>(v)) {
      case io_errc::eof:
        return "end of stream";
    }
    return "unknown rouse.io error";
  }
};
}  // namespace

const std::error_category& io_category() noexcept {
  static const io_category_impl c;
  return c;
}

// ---- endpoint -------------------------------------------------------------

endpoint endpoint::loopback_v4_at(unsigned port) noexcept {
  endpoint e;
  auto* const a = reinterpret_cast<sockaddr_in*>(&e.storage_);
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<std::uint16_t>(port));
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  e.size_ = sizeof(sockaddr_in);
  return e;
}

endpoint endpoint::any_v4_at(unsigned port) noexcept {
  endpoint e;
  auto* const a = reinterpret_cast<sockaddr_in*>(&e.storage_);
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<std::uint16_t>(port));
  a->sin_addr.s_addr = htonl(INADDR_ANY);
  e.size_ = sizeof(sockaddr_in);
  return e;
}

endpoint endpoint::loopback_v6_at(unsigned port) noexcept {
  endpoint e;
  auto* const a = reinterpret_cast<sockaddr_in6*>(&e.storage_);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(static_cast<std::uint16_t>(port));
  a->sin6_addr = in6addr_loopback;
  e.size_ = sizeof(sockaddr_in6);
  return e;
}

io_result<endpoint> endpoint::parse_at(std::string_view address, unsigned port) {
  std::string const text(address);
  endpoint e;
  auto* const a4 = reinterpret_cast<sockaddr_in*>(&e.storage_);
  if (::inet_pton(AF_INET, text.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<std::uint16_t>(port));
    e.size_ = sizeof(sockaddr_in);
    return e;
  }
  e = endpoint();
  auto* const a6 = reinterpret_cast<sockaddr_in6*>(&e.storage_);
  if (::inet_pton(AF_INET6, text.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<std::uint16_t>(port));
    e.size_ = sizeof(sockaddr_in6);
    return e;
  }
  return errno_code(EINVAL);
}

std::uint16_t endpoint::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string endpoint::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text, sizeof text);
    // Appended piece by piece: g++ 12 -O3 warns (-Wrestrict, a false
    // positive) on "[" + std::string(...).
    std::string out(1, '[');
    out.append(text).append("]:").append(std::to_string(port()));
    return out;
  }
  return "(unspecified)";
}

bool operator==(const endpoint& a, const endpoint& b) noexcept {
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

// ---- io_handle ------------------------------------------------------------

io_result<io_handle> io_handle::adopt(reactor& r, int fd) {
  int const flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    int const err = errno;
    ::close(fd);
    return errno_code(err);
  }
  io_result<detail::registration*> reg = r.add(fd);
  if (!reg) {
    ::close(fd);
    return reg.error();
  }
  io_handle h;
  h.reactor_ = &r;
  h.reg_ = *reg;
  h.fd_ = fd;
  return h;
}

void io_handle::close() noexcept {
  int const fd = release();
  if (fd >= 0) ::close(fd);
}

int io_handle::release() noexcept {
  if (fd_ < 0) return -1;
  reactor_->remove(reg_);
  reg_ = nullptr;
  reactor_ = nullptr;
  return std::exchange(fd_, -1);
}

// ---- helpers --------------------------------------------------------------

namespace {

io_result<void> from_call(int rc) noexcept {
  if (rc < 0) return errno_code(errno);
  return {};
}

io_result<endpoint> local_of(int fd) {
  endpoint e;
  socklen_t len = endpoint::capacity();
  if (::getsockname(fd, e.data(), &len) < 0) return errno_code(errno);
  e.resize(len);
  return e;
}

}  // namespace

// ---- tcp ------------------------------------------------------------------

io_result<tcp_stream> detail::accept_action::take() {
  if (!fd) return fd.error();
  io_result<io_handle> h = io_handle::adopt(*owner, *fd);
  if (!h) return h.error();
  return tcp_stream(std::move(*h));
}

bool detail::connect_action::perform(int sock) noexcept {
  if (!called) {  // an operation tried first on io_uring: make the call here
    called = true;
    int rc;
    do {
      rc = ::connect(sock, peer.data(), peer.size());
    } while (rc < 0 && errno == EINTR);
    first_errno = rc == 0 ? 0 : errno;
    if (first_errno == EALREADY) first_errno = EINPROGRESS;
  }
  if (first_errno != EINPROGRESS) {
    if (first_errno != 0) result = io_result<void>(errno_code(first_errno));
    return true;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) {
    result = io_result<void>(errno_code(err));
    return true;
  }
  // Still connecting, or connected? (a spurious edge shows neither error
  // nor peer).
  sockaddr_storage connected_to;
  socklen_t plen = sizeof connected_to;
  if (::getpeername(sock, reinterpret_cast<sockaddr*>(&connected_to), &plen) == 0) return true;
  if (errno == ENOTCONN) return false;
  result = io_result<void>(errno_code(errno));
  return true;
}

bool detail::connect_action::finish(int res) noexcept {
  if (polling) {
    if (res < 0) {
      result = io_result<void>(errno_code(-res));
      return true;
    }
    if (perform(fd)) return true;  // writable: connected or failed
    if ((res & POLLHUP) != 0) {    // never for a connecting socket: do not poll it again
      result = io_result<void>(errno_code(ENOTCONN));
      return true;
    }
    return false;  // a spurious wake: poll again
  }
  // The kernel's connect().
  if (res == -EINTR) return false;  // it did not run: ask again
  called = true;
  if (res == 0 || res == -EISCONN) return true;  // (EISCONN: it completed since an earlier call)
  if (res == -EINPROGRESS || res == -EALREADY) {
    first_errno = EINPROGRESS;  // under way: the next request polls for it
    return false;
  }
  first_errno = -res;
  result = io_result<void>(errno_code(-res));
  return true;
}

tcp_stream::connect_operation tcp_stream::connect(reactor& r, const endpoint& peer) {
  detail::connect_action action;
  int const fd = ::socket(peer.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    action.first_errno = errno;
    return connect_operation(tcp_stream(), action);  // no registration: fails with first_errno
  }
  action.fd = fd;
  if (r.completion_ops()) {
    // The kernel makes the call when the operation starts.
    action.called = false;
    action.first_errno = EINPROGRESS;
    action.peer = peer;
  } else {
    int rc;
    do {
      rc = ::connect(fd, peer.data(), peer.size());
    } while (rc < 0 && errno == EINTR);
    action.first_errno = rc == 0 ? 0 : errno;
  }
  io_result<io_handle> h = io_handle::adopt(r, fd);
  if (!h) {
    detail::connect_action failed;
    failed.first_errno = h.error().value();
    return connect_operation(tcp_stream(), failed);
  }
  return connect_operation(tcp_stream(std::move(*h)), action);
}

io_result<void> tcp_stream::shutdown(int how) noexcept { return from_call(::shutdown(handle_.native_handle(), how)); }

io_result<void> tcp_stream::set_nodelay_to(int on) noexcept {
  int const v = on != 0 ? 1 : 0;
  return from_call(::setsockopt(handle_.native_handle(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v));
}

io_result<void> tcp_stream::set_buffer_sizes(int send_bytes, int receive_bytes) noexcept {
  int const fd = handle_.native_handle();
  if (send_bytes > 0 && ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_bytes, sizeof send_bytes) < 0)
    return errno_code(errno);
  if (receive_bytes > 0 && ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_bytes, sizeof receive_bytes) < 0)
    return errno_code(errno);
  return {};
}

io_result<endpoint> tcp_stream::local_endpoint() const { return local_of(handle_.native_handle()); }

io_result<endpoint> tcp_stream::peer_endpoint() const {
  endpoint e;
  socklen_t len = endpoint::capacity();
  if (::getpeername(handle_.native_handle(), e.data(), &len) < 0) return errno_code(errno);
  e.resize(len);
  return e;
}

io_result<tcp_listener> tcp_listener::bind(reactor& r, const endpoint& local, int backlog) {
  return bind(r, local, options{.backlog = backlog});
}

io_result<tcp_listener> tcp_listener::bind(reactor& r, const endpoint& local, const options& opts) {
  int const fd = ::socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  int const one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (opts.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
      ::bind(fd, local.data(), local.size()) < 0 || ::listen(fd, opts.backlog) < 0) {
    int const err = errno;
    ::close(fd);
    return errno_code(err);
  }
  io_result<io_handle> h = io_handle::adopt(r, fd);
  if (!h) return h.error();
  return tcp_listener(std::move(*h));
}

io_result<endpoint> tcp_listener::local_endpoint() const { return local_of(handle_.native_handle()); }

// ---- udp ------------------------------------------------------------------

io_result<udp_socket> udp_socket::bind(reactor& r, const endpoint& local) {
  int const fd = ::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  if (::bind(fd, local.data(), local.size()) < 0) {
    int const err = errno;
    ::close(fd);
    return errno_code(err);
  }
  io_result<io_handle> h = io_handle::adopt(r, fd);
  if (!h) return h.error();
  return udp_socket(std::move(*h));
}

io_result<endpoint> udp_socket::local_endpoint() const { return local_of(handle_.native_handle()); }

}  // namespace rouse::io
