// An echo server and its client on rouse::io's event loop.
//
//   example_io_echo                    self-test: a server on 127.0.0.1 (a free
//                                      port) and 50 clients exchanging 64 KiB
//                                      each; exits 0 when every byte came back
//   example_io_echo server PORT        serves 127.0.0.1:PORT until killed
//   example_io_echo client PORT BYTES  sends BYTES to 127.0.0.1:PORT, checks
//                                      the echo
#include <rouse/async/sleep.hpp>
#include <rouse/async/spawn.hpp>
#include <rouse/async/task.hpp>
#include <rouse/io/reactor.hpp>
#include <rouse/io/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

using rouse::async::task;
using rouse::async::task_scope;
using rouse::io::endpoint;
using rouse::io::event_loop;
using rouse::io::tcp_listener;
using rouse::io::tcp_stream;

namespace {

// Echoes until the peer shuts its side down.
task<void> echo(tcp_stream s) {
  std::vector<std::byte> buf(16 * 1024);
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n || *n == 0) co_return;  // error or end of stream
    if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
  }
}

// Accepts `limit` connections (forever when negative), one task each.
task<void> accept_loop(event_loop& loop, tcp_listener& listener, int limit, task_scope& scope) {
  for (int i = 0; limit < 0 || i < limit; ++i) {
    auto s = co_await listener.accept();
    if (!s) {
      std::fprintf(stderr, "accept: %s\n", s.error().message().c_str());
      if (s.error() == std::errc::operation_canceled) co_return;  // the listener was closed
      // Out of descriptors: an accept at once would fail at once. Give the
      // open connections a moment to end.
      if (s.error() == std::errc::too_many_files_open || s.error() == std::errc::too_many_files_open_in_system)
        co_await rouse::async::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    scope.spawn(loop.get_scheduler(), echo(std::move(*s)));
  }
}

// The accept loop runs inside the scope, beside the connections, and serve()
// only joins: a stop that ends the accept cannot destroy the scope under
// running echo tasks (docs/io.md).
task<void> serve(event_loop& loop, tcp_listener& listener, int limit) {
  task_scope scope;
  scope.spawn(loop.get_scheduler(), accept_loop(loop, listener, limit, scope));
  co_await scope.join();
}

// Sends `bytes` bytes and reads them back; true when they match.
task<bool> client(event_loop& loop, endpoint server, std::size_t bytes, int seed) {
  auto c = co_await tcp_stream::connect(loop, server);
  if (!c) {
    std::fprintf(stderr, "connect: %s\n", c.error().message().c_str());
    co_return false;
  }
  std::vector<std::byte> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i) out[i] = static_cast<std::byte>((i * 13 + static_cast<std::size_t>(seed)) & 0xff);
  std::vector<std::byte> in(bytes);
  // Write in chunks and read the echo of each, so neither side's buffers fill.
  constexpr std::size_t chunk = 8192;
  for (std::size_t at = 0; at < bytes; at += chunk) {
    std::size_t const n = std::min(chunk, bytes - at);
    if (!co_await c->write_all(std::span(out).subspan(at, n))) co_return false;
    if (!co_await c->read_exact(std::span(in).subspan(at, n))) co_return false;
  }
  (void)c->shutdown();
  co_return in == out;
}

task<int> self_test(event_loop& loop) {
  constexpr int clients = 50;
  constexpr std::size_t bytes = 64 * 1024;
  auto listener = tcp_listener::bind(loop, endpoint::loopback_v4(0));
  if (!listener) {
    std::fprintf(stderr, "bind: %s\n", listener.error().message().c_str());
    co_return 1;
  }
  endpoint const addr = *listener->local_endpoint();
  std::vector<rouse::async::join_handle<bool>> results;
  auto server = rouse::async::spawn(loop.get_scheduler(), serve(loop, *listener, clients));
  for (int i = 0; i < clients; ++i) results.push_back(rouse::async::spawn(loop.get_scheduler(), client(loop, addr, bytes, i)));
  int failed = 0;
  for (auto& r : results)
    if (!co_await std::move(r)) ++failed;
  co_await std::move(server);
  std::printf("echo: %d clients x %zu bytes through %s: %s\n", clients, bytes, addr.to_string().c_str(),
              failed == 0 ? "all echoed" : "FAILED");
  co_return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  event_loop loop;
  std::string const mode = argc > 1 ? argv[1] : "";
  if (mode.empty()) return loop.run_until_complete(self_test(loop));
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s [server PORT | client PORT BYTES]\n", argv[0]);
    return 2;
  }
  auto const port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  if (mode == "server") {
    auto listener = tcp_listener::bind(loop, endpoint::loopback_v4(port));
    if (!listener) {
      std::fprintf(stderr, "bind: %s\n", listener.error().message().c_str());
      return 1;
    }
    loop.run_until_complete(serve(loop, *listener, -1));
    return 0;
  }
  if (mode == "client" && argc > 3) {
    bool const ok = loop.run_until_complete(client(loop, endpoint::loopback_v4(port), std::strtoull(argv[3], nullptr, 10), 1));
    std::puts(ok ? "echoed" : "mismatch");
    return ok ? 0 : 1;
  }
  std::fprintf(stderr, "usage: %s [server PORT | client PORT BYTES]\n", argv[0]);
  return 2;
}
