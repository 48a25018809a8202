// A minimal HTTP/1.1 responder on rouse::io: every request gets the same
// fixed body; keep-alive and pipelined requests are served in order.
//
//   example_io_http              self-test: serves 127.0.0.1 (a free port)
//                                and a client sends 3 connections x 5
//                                requests (some pipelined); exits 0 when
//                                every response was right
//   example_io_http serve PORT   serves 127.0.0.1:PORT until killed
//
// Not a web server: no request bodies (a Content-Length on a request is
// refused), no chunked encoding, headers up to 8 KiB.
#include <rouse/async/sleep.hpp>
#include <rouse/async/spawn.hpp>
#include <rouse/async/task.hpp>
#include <rouse/io/reactor.hpp>
#include <rouse/io/tcp.hpp>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

using rouse::async::task;
using rouse::async::task_scope;
using rouse::io::endpoint;
using rouse::io::event_loop;
using rouse::io::tcp_listener;
using rouse::io::tcp_stream;

namespace {

constexpr std::string_view body = "Hello from rouse::io\n";

std::string response(bool keep_alive) {
  std::string r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  r += body;
  return r;
}

bool wants_close(std::string_view head) {
  // Case-insensitive search for "connection: close" (enough for a demo).
  std::string lower(head);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("\r\nconnection: close") != std::string::npos;
}

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

task<void> serve_connection(tcp_stream s) {
  std::string pending;
  char buf[4096];
  for (;;) {
    std::size_t end;
    while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
      if (pending.size() > 8192) co_return;  // header too large: drop
      auto n = co_await s.read_some(std::as_writable_bytes(std::span(buf)));
      if (!n || *n == 0) co_return;
      pending.append(buf, *n);
    }
    std::string_view const head(pending.data(), end + 2);
    bool const close = wants_close(head) || head.rfind("GET ", 0) != 0;
    std::string const r = close && head.rfind("GET ", 0) != 0
                              ? std::string("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                              : response(!close);
    pending.erase(0, end + 4);
    if (!co_await s.write_all(bytes_of(r)) || close) co_return;
  }
}

task<void> accept_loop(event_loop& loop, tcp_listener& l, int limit, task_scope& scope) {
  for (int i = 0; limit < 0 || i < limit; ++i) {
    auto s = co_await l.accept();
    if (s) {
      scope.spawn(loop.get_scheduler(), serve_connection(std::move(*s)));
    } else if (s.error() == std::errc::operation_canceled) {
      co_return;  // the listener was closed
    } else if (s.error() == std::errc::too_many_files_open || s.error() == std::errc::too_many_files_open_in_system) {
      co_await rouse::async::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: let connections end
    }
  }
}

// The accept loop runs inside the scope with the connections; serve() only
// joins (docs/io.md: a scope is joined, whatever ends its tasks).
task<void> serve(event_loop& loop, tcp_listener& l, int limit) {
  task_scope scope;
  scope.spawn(loop.get_scheduler(), accept_loop(loop, l, limit, scope));
  co_await scope.join();
}

// Reads one response: headers, then Content-Length bytes of body.
task<std::string> read_response(tcp_stream& c, std::string& pending) {
  char buf[1024];
  std::size_t end;
  while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
    auto n = co_await c.read_some(std::as_writable_bytes(std::span(buf)));
    if (!n || *n == 0) co_return std::string();
    pending.append(buf, *n);
  }
  std::size_t const at = pending.find("Content-Length: ");
  std::size_t const length = at == std::string::npos ? 0 : std::strtoul(pending.c_str() + at + 16, nullptr, 10);
  while (pending.size() < end + 4 + length) {
    auto n = co_await c.read_some(std::as_writable_bytes(std::span(buf)));
    if (!n || *n == 0) co_return std::string();
    pending.append(buf, *n);
  }
  std::string r = pending.substr(0, end + 4 + length);
  pending.erase(0, end + 4 + length);
  co_return r;
}

task<int> test_client(event_loop& loop, endpoint server, int requests) {
  auto c = co_await tcp_stream::connect(loop, server);
  if (!c) co_return requests;
  std::string const get = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  std::string const last = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  int bad = 0;
  std::string pending;
  // Two requests pipelined in one write, then one at a time, the last closing.
  std::string const two = get + get;
  (void)co_await c->write_all(bytes_of(two));
  for (int i = 0; i < requests; ++i) {
    if (i >= 2) (void)co_await c->write_all(bytes_of(i + 1 == requests ? last : get));
    std::string const r = co_await read_response(*c, pending);
    if (r.rfind("HTTP/1.1 200 OK\r\n", 0) != 0 || r.substr(r.size() - body.size()) != body) ++bad;
  }
  char probe[1];
  auto eof = co_await c->read_some(std::as_writable_bytes(std::span(probe)));  // the server closed
  if (!eof || *eof != 0) ++bad;
  co_return bad;
}

task<int> self_test(event_loop& loop) {
  constexpr int connections = 3;
  constexpr int requests = 5;
  auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0));
  if (!l) co_return 1;
  endpoint const addr = *l->local_endpoint();
  auto server = rouse::async::spawn(loop.get_scheduler(), serve(loop, *l, connections));
  int bad = 0;
  for (int i = 0; i < connections; ++i) bad += co_await test_client(loop, addr, requests);
  co_await std::move(server);
  std::printf("http: %d connections x %d requests to %s: %d bad\n", connections, requests, addr.to_string().c_str(),
              bad);
  co_return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  event_loop loop;
  if (argc == 1) return loop.run_until_complete(self_test(loop));
  if (argc == 3 && std::string_view(argv[1]) == "serve") {
    auto l = tcp_listener::bind(loop, endpoint::loopback_v4(static_cast<std::uint16_t>(std::atoi(argv[2]))));
    if (!l) {
      std::fprintf(stderr, "bind: %s\n", l.error().message().c_str());
      return 1;
    }
    loop.run_until_complete(serve(loop, *l, -1));
    return 0;
  }
  std::fprintf(stderr, "usage: %s [serve PORT]\n", argv[0]);
  return 2;
}
