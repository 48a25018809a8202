// bench/net_echo_client.hpp — the echo clients every net.echo* row is driven by.
//
// `conns` connections on one rouse event_loop, each sending a 64-byte
// message, reading the echo back and checking it, until `stop`. The same
// clients for every server (rouse's, Asio's, one loop or several), so rows
// differ only by their server. Used by bench/net.cpp and
// bench/net_per_core.cpp.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/tcp.hpp"

namespace rouse::bench::net {

inline constexpr std::size_t echo_message_bytes = 64;

struct load_state {
  std::atomic<int> settled{0};    // clients connected or failed to
  std::atomic<int> connected{0};  // clients the server will see
  std::atomic<int> failures{0};   // connect, I/O or mismatch failures
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> trips{0};
};

inline async::task<void> echo_client(io::event_loop& loop, io::endpoint server, load_state& st, int id) {
  auto c = co_await io::tcp_stream::connect(loop, server);
  if (!c) {
    st.failures.fetch_add(1, std::memory_order_relaxed);
    st.settled.fetch_add(1, std::memory_order_release);
    co_return;
  }
  st.connected.fetch_add(1, std::memory_order_relaxed);
  st.settled.fetch_add(1, std::memory_order_release);
  (void)c->set_nodelay(true);
  std::array<std::byte, echo_message_bytes> out{};
  std::array<std::byte, echo_message_bytes> in{};
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::byte>((i * 7 + static_cast<std::size_t>(id)) & 0xff);
  while (!st.stop.load(std::memory_order_relaxed)) {
    if (!co_await c->write_all(out) || !co_await c->read_exact(in) || in != out) {
      st.failures.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    st.trips.fetch_add(1, std::memory_order_relaxed);
  }
  (void)c->shutdown();
}

inline async::task<void> client_load(io::event_loop& loop, io::endpoint server, int conns, load_state& st) {
  async::task_scope scope;
  for (int i = 0; i < conns; ++i) scope.spawn(loop.get_scheduler(), echo_client(loop, server, st, i));
  co_await scope.join();
}

}  // namespace rouse::bench::net
