// rouse/io/endpoint.hpp — an IPv4 or IPv6 socket address.
//
//   auto ep = rouse::io::endpoint::loopback_v4(8080);       // 127.0.0.1:8080
//   auto any = rouse::io::endpoint::parse("::1", 0);        // io_result<endpoint>
//   ep.port(); ep.to_string();                              // "127.0.0.1:8080"
//
// A value type around sockaddr_storage (128 bytes + the length). Numeric
// addresses only: name resolution blocks and is not the reactor's business.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "rouse/config.hpp"
#include "rouse/io/result.hpp"

namespace rouse::io {

class endpoint {
 public:
  endpoint() noexcept : storage_{}, size_(0) {}

  static endpoint loopback_v4(std::uint16_t port) noexcept { return loopback_v4_at(port); }
  static endpoint loopback_v6(std::uint16_t port) noexcept { return loopback_v6_at(port); }
  static endpoint any_v4(std::uint16_t port) noexcept { return any_v4_at(port); }
  // A numeric IPv4 ("127.0.0.1") or IPv6 ("::1") address; EINVAL otherwise.
  static io_result<endpoint> parse(std::string_view address, std::uint16_t port) { return parse_at(address, port); }

  int family() const noexcept { return storage_.ss_family; }
  std::uint16_t port() const noexcept;
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return size_; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  void resize(socklen_t n) noexcept { size_ = n; }

  friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

 private:
  // Out of line with int-sized ports (tests/abi/); `port` < 65536.
  static endpoint loopback_v4_at(unsigned port) noexcept;
  static endpoint loopback_v6_at(unsigned port) noexcept;
  static endpoint any_v4_at(unsigned port) noexcept;
  static io_result<endpoint> parse_at(std::string_view address, unsigned port);

  sockaddr_storage storage_;
  socklen_t size_;
};

}  // namespace rouse::io
