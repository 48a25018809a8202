// An echo server on every core: rouse::io::per_core, one SO_REUSEPORT
// listener per core, cores that talk only through submit_to.
//
//   example_io_per_core_echo              self-test on 2 cores: every core
//                                         serves on its own listener of one
//                                         port on 127.0.0.1 and runs 50
//                                         clients (16 KiB each) against it;
//                                         the kernel spreads the connections
//                                         over the cores' listeners. Each
//                                         core reports to core 0 with
//                                         submit_to; core 0 stops the run
//                                         once all have, and each core then
//                                         reports what its servers echoed.
//                                         Exits 0 when every byte came back
//                                         and was counted by a server.
//   example_io_per_core_echo CORES        the same on CORES cores
//   example_io_per_core_echo server PORT [CORES]
//                                         serves 127.0.0.1:PORT on CORES
//                                         cores (default: one per CPU) until
//                                         killed
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rouse/async/event.hpp>
#include <rouse/async/sleep.hpp>
#include <rouse/async/spawn.hpp>
#include <rouse/async/task.hpp>
#include <rouse/io/per_core.hpp>
#include <rouse/io/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

using rouse::async::task;
using rouse::async::task_scope;
using rouse::io::core_context;
using rouse::io::endpoint;
using rouse::io::per_core;
using rouse::io::tcp_listener;
using rouse::io::tcp_stream;

namespace {

// Echoes until the peer shuts its side down; counts the connection's bytes.
task<void> echo(tcp_stream s, std::uint64_t& served) {
  std::vector<std::byte> buf(16 * 1024);
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n || *n == 0) co_return;  // error or end of stream
    if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
    served += *n;  // this core's own counter: only this core's tasks touch it
  }
}

task<void> accept_loop(core_context& core, tcp_listener& listener, task_scope& scope, int& accepted,
                       std::uint64_t& served) {
  for (;;) {
    auto s = co_await listener.accept();  // a stop of the run ends it here
    if (!s) {
      if (s.error() == std::errc::too_many_files_open || s.error() == std::errc::too_many_files_open_in_system)
        co_await rouse::async::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: let connections end
      continue;
    }
    ++accepted;
    scope.spawn(core.get_scheduler(), echo(std::move(*s), served));
  }
}

// Sends `bytes` bytes, reads them back, waits for the server's end of
// stream; true when everything matched.
task<bool> client(core_context& core, std::uint16_t port, std::size_t bytes, int seed) {
  auto c = co_await tcp_stream::connect(core, endpoint::loopback_v4(port));
  if (!c) co_return false;
  std::vector<std::byte> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i)
    out[i] = static_cast<std::byte>((i * 13 + static_cast<std::size_t>(seed)) & 0xff);
  std::vector<std::byte> in(bytes);
  constexpr std::size_t chunk = 4096;
  for (std::size_t at = 0; at < bytes; at += chunk) {
    std::size_t const n = std::min(chunk, bytes - at);
    if (!co_await c->write_all(std::span(out).subspan(at, n))) co_return false;
    if (!co_await c->read_exact(std::span(in).subspan(at, n))) co_return false;
  }
  (void)c->shutdown();
  std::byte eof[1];
  auto const end = co_await c->read_some(eof);
  co_return end&&* end == 0 && in == out;
}

// Core 0's tally. Only tasks running on core 0 touch it (the reports are
// submitted there), so it needs no lock and no atomic.
struct tally {
  std::size_t reported = 0;
  std::uint64_t client_bytes = 0;
  std::uint64_t served_bytes = 0;
  int failed = 0;
  std::vector<int> accepted;  // per core
  rouse::async::manual_reset_event all_reported;
};

// Submitted to core 0: a core's clients are done.
task<void> report_clients(tally& t, std::size_t cores, std::uint64_t echoed, int failed) {
  t.client_bytes += echoed;
  t.failed += failed;
  if (++t.reported == cores) t.all_reported.set();
  co_return;
}
// Submitted to core 0: a core's servers are done (after the stop).
task<void> report_servers(tally& t, std::size_t core, std::uint64_t served, int accepted) {
  t.served_bytes += served;
  t.accepted[core] = accepted;
  co_return;
}

struct self_test_config {
  std::uint16_t port;
  int clients_per_core;
  std::size_t bytes;
};

task<void> self_test_core(core_context& core, self_test_config cfg, tally& t) {
  auto listener = tcp_listener::bind(core, endpoint::loopback_v4(cfg.port), {.reuse_port = true});
  if (!listener) throw std::runtime_error("bind: " + listener.error().message());
  int accepted = 0;
  std::uint64_t served = 0;
  task_scope servers;
  struct stop_servers {
    task_scope* s;
    void operator()() noexcept { s->request_stop(); }
  };
  rouse::async::inplace_stop_callback link(core.get_stop_token(), stop_servers{&servers});
  servers.spawn(core.get_scheduler(), accept_loop(core, *listener, servers, accepted, served));

  std::vector<rouse::async::join_handle<bool>> clients;
  for (int i = 0; i < cfg.clients_per_core; ++i)
    clients.push_back(rouse::async::spawn(
        core.get_scheduler(), client(core, cfg.port, cfg.bytes, static_cast<int>(core.index()) * 1000 + i)));
  int failed = 0;
  for (auto& c : clients)
    if (!co_await std::move(c)) ++failed;
  co_await core.submit_to(
      0, report_clients(t, core.cores(), std::uint64_t(cfg.clients_per_core - failed) * cfg.bytes, failed));
  if (core.index() == 0) {
    // Every client of every core saw its server's end of stream.
    co_await t.all_reported.wait();
    core.request_stop();  // every core's accept loop ends
  }
  co_await servers.join();
  // This core's echo tasks served clients of every core: count them now.
  co_await core.submit_to(0, report_servers(t, core.index(), served, accepted));
}

// The port every core's listener joins: held by a bound, not listening,
// SO_REUSEPORT socket, which takes no connections itself.
int reserve_port(std::uint16_t& port) {
  int const fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int const one = 1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) < 0)
    return -1;
  port = ntohs(a.sin_port);
  return fd;
}

int self_test(std::size_t cores) {
  self_test_config cfg{0, 50, 16 * 1024};
  int const reserved = reserve_port(cfg.port);
  if (reserved < 0) {
    std::perror("reserve a port");
    return 1;
  }
  per_core runtime({.cores = cores});
  tally t;
  t.accepted.assign(cores, 0);
  runtime.run([&](core_context& core) { return self_test_core(core, cfg, t); });
  ::close(reserved);
  std::uint64_t const expected = std::uint64_t(cores) * std::uint64_t(cfg.clients_per_core) * cfg.bytes;
  std::printf("per-core echo on %zu cores, port %u: %d clients x %zu bytes\n", cores, unsigned(cfg.port),
              int(cores) * cfg.clients_per_core, cfg.bytes);
  for (std::size_t i = 0; i < cores; ++i) std::printf("  core %zu accepted %d connections\n", i, t.accepted[i]);
  bool const ok = t.failed == 0 && t.client_bytes == expected && t.served_bytes == expected;
  std::printf("echoed %llu of %llu bytes (servers counted %llu): %s\n", (unsigned long long)t.client_bytes,
              (unsigned long long)expected, (unsigned long long)t.served_bytes, ok ? "all echoed" : "FAILED");
  return ok ? 0 : 1;
}

task<void> serve_forever(core_context& core, std::uint16_t port) {
  auto listener = tcp_listener::bind(core, endpoint::loopback_v4(port), {.reuse_port = true});
  if (!listener) throw std::runtime_error("bind: " + listener.error().message());
  int accepted = 0;
  std::uint64_t served = 0;
  task_scope scope;
  scope.spawn(core.get_scheduler(), accept_loop(core, *listener, scope, accepted, served));
  co_await scope.join();
}

}  // namespace

int main(int argc, char** argv) {
  std::string const mode = argc > 1 ? argv[1] : "";
  if (mode != "server") {
    std::size_t const cores = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2;
    if (cores == 0) {
      std::fprintf(stderr, "usage: %s [CORES | server PORT [CORES]]\n", argv[0]);
      return 2;
    }
    return self_test(cores);
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s [CORES | server PORT [CORES]]\n", argv[0]);
    return 2;
  }
  auto const port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  per_core runtime({.cores = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 0});
  runtime.run([&](core_context& core) { return serve_forever(core, port); });
  return 0;
}
