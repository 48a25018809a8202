// net.* and async.futex_await workloads: rouse::io's reactor against
// Boost.Asio (1.81) and, for HTTP, against wrk's load.
//
//   net.echo64            64 connections on 127.0.0.1, 64-byte messages: each
//                         client writes one message and waits for its echo,
//                         again and again, for a fixed time               ops/s (round trips/s)
//   net.echo_1k_conns     the same with 1,000 connections                 ops/s (round trips/s)
//   net.http_hello        wrk (-t1 -c64, a fixed time) against a responder
//                         with a fixed body, keep-alive                   ops/s (requests/s),
//                                                                          p99_us in extra
//   async.futex_await     a coroutine and a thread alternate through one
//                         32-bit word, 100,000 round trips                ns/roundtrip
//
// Echo: the server is one thread — a rouse::io::event_loop (epoll; io_uring
// with completion-based operations, the default, then with the other
// try-first choices, then with readiness-based operations), or an
// asio::io_context (concurrency hint 1) run
// by one thread with a C++20 coroutine per connection (co_spawn,
// use_awaitable; as_tuple, so no exception is thrown at end of stream). Both
// read up to 4 KiB and write back what they read, with TCP_NODELAY. The
// clients are the same for every row: coroutines on one rouse::io
// event_loop (epoll) in another thread, one per connection; each writes 64
// bytes with write_all, reads 64 with read_exact and checks them. The run
// waits until every client is connected, then counts the round trips done
// in a fixed window (0.6 s; 0.1 s with --quick); the clients stop after
// their current round trip, shut down, and the server ends once every
// connection has reached end of stream. Two threads, two vCPUs: the figure
// is the server's plus the clients' cost per round trip, and only the server
// differs between rows.
//
// The soft RLIMIT_NOFILE is raised to the hard limit at start (1,000
// connections hold 2,000 descriptors in this one process); where the hard
// limit is too low echo_1k_conns is skipped with a note.
//
// System calls: the runner's wait/wake_calls_per_op count rouse's futex
// calls only (not epoll_wait, io_uring_enter, recv or send). The io_uring
// completion rows add server_kernel_requests_per_op (recv / send requests
// handed to the kernel per round trip). The rouse rows
// add server_reactor_waits_per_op: how many of the server reactor's waits
// (epoll_wait / io_uring completion waits) returned readiness, per round
// trip — below 1 means one wait served several connections.
//
// async.futex_await: word 0; the coroutine stores 2i+1 and wakes the thread
// (rouse::atomic_notify_one: the thread waits in rouse::atomic_wait), then
// awaits rouse::io::wait_on(loop, word, 2i+1); the thread stores 2i+2 and
// wakes the word with one FUTEX_WAKE (rouse::platform::wake_one: a waiter
// in the kernel's futex queue, which rouse's waiter counts cannot see, so
// the wake is unconditional). Rows: wait_on on the io_uring backend
// (IORING_OP_FUTEX_WAIT, Linux >= 6.7; skipped with a note where the
// reactor cannot use it), wait_on on the epoll backend (a helper thread per
// wait; 1/20 of the round trips, it is that slow), and the baseline: two
// plain threads doing the same with rouse::atomic_wait /
// rouse::atomic_notify_one. The baseline's waits spin briefly before they
// sleep, and with a core each the two threads rarely sleep (its waits/op):
// on an idle machine it measures a hand-off between two running threads,
// under load a futex round trip; the coroutine always waits through the
// kernel. The io_uring waits are not in rouse's syscall counters; the
// thread's FUTEX_WAKE is (wake_calls_per_op ~1).
//
// net.http_hello runs `wrk -t1 -c64 -dNs --latency` as a subprocess (2 s;
// 1 s with --quick: wrk counts whole seconds) and parses Requests/sec and
// the 99% latency. Without wrk on PATH the workload is skipped with a note.
// Every server row reports server_cpu_us_per_op: the CPU time its thread
// used per round trip or request (CLOCK_THREAD_CPUTIME_ID over the window),
// which load on a shared machine disturbs far less than throughput.
// g++ 12 at -O1 (the debug preset builds rouse-bench too) reports Asio's
// awaitable frames as freed by a mismatched operator delete: a false
// positive on Asio's own class-specific new / delete pair once inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "net_echo_client.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/atomic_wait.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/tcp.hpp"
#include "rouse/io/wait_on.hpp"
#include "rouse/platform/wait.hpp"

#if defined(ROUSE_BENCH_HAVE_BOOST) && __has_include(<boost/asio/as_tuple.hpp>)
#define ROUSE_BENCH_NET_ASIO 1
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#endif

extern char** environ;

namespace {

using rouse::bench::clock;
using rouse::bench::ns_between;
using rouse::bench::run_context;
using rouse::bench::sample;
namespace ra = rouse::async;
namespace rio = rouse::io;

constexpr int http_connections = 64;

std::chrono::duration<double> echo_window(const run_context& ctx) {
  return std::chrono::duration<double>(ctx.quick ? 0.1 : 0.6);
}

// --- descriptors ---------------------------------------------------------

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now.
rlim_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit const want{rl.rlim_max, rl.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = rl.rlim_max;
  }
  return rl.rlim_cur;
}

// One blocking connection to 127.0.0.1:port, closed at once: completes an
// accept a server still waits for.
void poke(std::uint16_t port) {
  int const fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  ::close(fd);
}

// --- the echo clients (the same for every row): net_echo_client.hpp -----

using rouse::bench::net::client_load;
using rouse::bench::net::load_state;

// Runs the clients against a started server on `port`, counts the round
// trips of a fixed window, stops the clients and calls join_server().
// CPU time (µs) a thread has used so far: the server's cost, which load on
// the machine does not change the way it changes throughput.
double thread_cpu_us(std::thread& t) {
  clockid_t id;
  if (::pthread_getcpuclockid(t.native_handle(), &id) != 0) return -1;
  timespec ts{};
  if (::clock_gettime(id, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

sample drive_echo(const run_context& ctx, int conns, std::uint16_t port, const std::function<void()>& join_server,
                  std::thread* server = nullptr) {
  load_state st;
  std::atomic<bool> client_threw{false};
  std::thread clients([&] {
    try {
      rio::event_loop loop;
      loop.run_until_complete(client_load(loop, rio::endpoint::loopback_v4(port), conns, st));
    } catch (...) {
      client_threw.store(true);
      st.settled.store(conns, std::memory_order_release);
    }
  });
  while (st.settled.load(std::memory_order_acquire) < conns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(ctx.quick ? 5 : 20));  // warm-up
  double const cpu0 = server ? thread_cpu_us(*server) : -1;
  auto const t0 = clock::now();
  std::uint64_t const c0 = st.trips.load(std::memory_order_relaxed);
  std::this_thread::sleep_for(echo_window(ctx));
  std::uint64_t const c1 = st.trips.load(std::memory_order_relaxed);
  auto const t1 = clock::now();
  double const cpu1 = server ? thread_cpu_us(*server) : -1;
  st.stop.store(true, std::memory_order_relaxed);
  clients.join();
  // Connections the server never saw would keep it waiting in accept.
  for (int i = st.connected.load(); i < conns; ++i) poke(port);
  join_server();
  if (client_threw.load()) throw std::runtime_error("the echo clients' loop threw");
  if (int const f = st.failures.load(); f != 0)
    throw std::runtime_error(std::to_string(f) + " echo clients failed (connect, I/O or a wrong echo)");
  double const trips = static_cast<double>(c1 - c0);
  if (trips <= 0) throw std::runtime_error("no round trips in the window");
  sample out{trips / (ns_between(t0, t1) * 1e-9), trips};
  if (cpu0 >= 0 && cpu1 >= 0) out.extra["server_cpu_us_per_op"] = (cpu1 - cpu0) / trips;
  return out;
}

// --- rouse::io echo server ----------------------------------------------

ra::task<void> rouse_echo(rio::tcp_stream s) {
  (void)s.set_nodelay(true);
  std::array<std::byte, 4096> buf;
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n || *n == 0) co_return;
    if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
  }
}

ra::task<void> rouse_echo_server(rio::event_loop& loop, rio::tcp_listener& l, int conns) {
  ra::task_scope scope;
  for (int i = 0; i < conns; ++i) {
    auto s = co_await l.accept();
    if (s) scope.spawn(loop.get_scheduler(), rouse_echo(std::move(*s)));
  }
  co_await scope.join();
}

// How the server's reactor is set up: the backend, and for io_uring how the
// byte-stream operations run (completion: the kernel moves the bytes;
// readiness: a multishot poll and the reactor's own recv/send) and which
// directions first try the system call before handing the request over.
struct server_setup {
  rio::backend backend = rio::backend::epoll;
  rio::uring_operations ops = rio::uring_operations::completion;
  bool read_tries_first = false;
  bool write_tries_first = false;
  bool submit_at_once = false;
};

void configure(rio::event_loop& loop, const server_setup& setup) {
  if (loop.get_reactor().backend() != setup.backend)
    throw std::runtime_error("the reactor cannot run this backend here");
  loop.get_reactor().set_completion_tries_first(setup.read_tries_first, setup.write_tries_first);
  loop.get_reactor().set_submit_at_once(setup.submit_at_once);
}

sample echo_rouse(const run_context& ctx, int conns, const server_setup& setup) {
  rio::event_loop loop(setup.backend, setup.ops);
  configure(loop, setup);
  auto l = rio::tcp_listener::bind(loop, rio::endpoint::loopback_v4(0));
  if (!l) throw std::runtime_error("bind: " + l.error().message());
  auto const ep = l->local_endpoint();
  if (!ep) throw std::runtime_error("local_endpoint: " + ep.error().message());
  std::uint64_t const w0 = loop.get_reactor().readiness_wakeups();
  std::uint64_t const k0 = loop.get_reactor().kernel_requests();
  std::atomic<bool> server_threw{false};
  std::thread server([&] {
    try {
      loop.run_until_complete(rouse_echo_server(loop, *l, conns));
    } catch (...) {
      server_threw.store(true);
    }
  });
  sample s = drive_echo(
      ctx, conns, ep->port(), [&] { server.join(); }, &server);
  if (server_threw.load()) throw std::runtime_error("the rouse server's loop threw");
  // Includes connection set-up and tear-down: a small share of the window.
  s.extra["server_reactor_waits_per_op"] = static_cast<double>(loop.get_reactor().readiness_wakeups() - w0) / s.ops;
  if (setup.backend == rio::backend::io_uring && setup.ops == rio::uring_operations::completion)
    s.extra["server_kernel_requests_per_op"] = static_cast<double>(loop.get_reactor().kernel_requests() - k0) / s.ops;
  return s;
}

// --- Asio echo server -----------------------------------------------------

#if defined(ROUSE_BENCH_NET_ASIO)
namespace asio = boost::asio;
using asio_tcp = asio::ip::tcp;
constexpr auto asio_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> asio_echo(asio_tcp::socket s) {
  boost::system::error_code ignored;
  s.set_option(asio_tcp::no_delay(true), ignored);
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio_tuple);
    if (ec) co_return;  // end of stream or an error
    auto [wec, m] = co_await asio::async_write(s, asio::buffer(buf.data(), n), asio_tuple);
    if (wec) co_return;
  }
}

asio::awaitable<void> asio_echo_server(asio_tcp::acceptor& a, int conns) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < conns; ++i) {
    auto [ec, s] = co_await a.async_accept(asio_tuple);
    if (!ec) asio::co_spawn(ex, asio_echo(std::move(s)), asio::detached);
  }
}

sample echo_asio(const run_context& ctx, int conns) {
  asio::io_context io(1);
  asio_tcp::acceptor a(io, asio_tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  auto const port = a.local_endpoint().port();
  asio::co_spawn(io, asio_echo_server(a, conns), asio::detached);
  std::thread server([&] { io.run(); });
  return drive_echo(
      ctx, conns, port, [&] { server.join(); }, &server);
}
#endif

// --- async.futex_await ----------------------------------------------------

// The thread's side: waits until the word holds 2i+1, stores 2i+2, wakes.
template <bool KernelWake>
void futex_pong(rouse::platform::word& w, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    auto const ping = static_cast<std::uint32_t>(2 * i + 1);
    for (std::uint32_t v; (v = w.load(std::memory_order_acquire)) != ping;) rouse::atomic_wait(w, v);
    w.store(ping + 1, std::memory_order_release);
    if constexpr (KernelWake)
      rouse::platform::wake_one(w);  // a waiter in the kernel's queue (io_uring or the helper)
    else
      rouse::atomic_notify_one(w);
  }
}

ra::task<double> futex_ping_coroutine(rio::event_loop& loop, rouse::platform::word& w, std::int64_t n) {
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    auto const ping = static_cast<std::uint32_t>(2 * i + 1);
    w.store(ping, std::memory_order_release);
    rouse::atomic_notify_one(w);
    while (w.load(std::memory_order_acquire) == ping) co_await rio::wait_on(loop, w, ping);
  }
  co_return ns_between(start, clock::now());
}

sample futex_await_wait_on(const run_context& ctx, rio::backend b, std::int64_t divide) {
  std::int64_t const n = std::max<std::int64_t>(ctx.scaled(100'000) / divide, 100);
  rio::event_loop loop(b);
  if (b == rio::backend::io_uring && !loop.get_reactor().futex_wait_native())
    throw std::runtime_error("no IORING_OP_FUTEX_WAIT here");
  rouse::platform::word w{0};
  std::thread pong([&] { futex_pong<true>(w, n); });
  double const ns = loop.run_until_complete(futex_ping_coroutine(loop, w, n));
  pong.join();
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

sample futex_await_threads(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(100'000);
  rouse::platform::word w{0};
  std::thread pong([&] { futex_pong<false>(w, n); });
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    auto const ping = static_cast<std::uint32_t>(2 * i + 1);
    w.store(ping, std::memory_order_release);
    rouse::atomic_notify_one(w);
    for (std::uint32_t v; (v = w.load(std::memory_order_acquire)) == ping;) rouse::atomic_wait(w, v);
  }
  auto const stop = clock::now();
  pong.join();
  return {ns_between(start, stop) / static_cast<double>(n), static_cast<double>(n)};
}

// --- net.http_hello -------------------------------------------------------

constexpr std::string_view http_response =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world\n";

// Consumes the complete requests (heads without bodies) at the front of
// `pending`; returns how many.
std::size_t take_requests(std::string& pending) {
  std::size_t count = 0, at = 0, end;
  while ((end = pending.find("\r\n\r\n", at)) != std::string::npos) {
    ++count;
    at = end + 4;
  }
  pending.erase(0, at);
  return count;
}

std::string responses(std::size_t count) {
  std::string r;
  r.reserve(count * http_response.size());
  for (std::size_t i = 0; i < count; ++i) r += http_response;
  return r;
}

ra::task<void> rouse_http_conn(rio::tcp_stream s) {
  std::string pending;
  std::array<char, 4096> buf;
  for (;;) {
    auto n = co_await s.read_some(std::as_writable_bytes(std::span(buf)));
    if (!n || *n == 0) co_return;
    pending.append(buf.data(), *n);
    if (pending.size() > 65536) co_return;
    std::size_t const k = take_requests(pending);
    if (k == 0) continue;
    std::string const r = k == 1 ? std::string(http_response) : responses(k);
    if (!co_await s.write_all(std::as_bytes(std::span(r.data(), r.size())))) co_return;
  }
}

ra::task<void> rouse_http_server(rio::event_loop& loop, rio::tcp_listener& l, const std::atomic<bool>& done) {
  ra::task_scope scope;
  while (!done.load(std::memory_order_acquire)) {
    auto s = co_await l.accept();
    if (s && !done.load(std::memory_order_acquire)) scope.spawn(loop.get_scheduler(), rouse_http_conn(std::move(*s)));
  }
  co_await scope.join();
}

// Not inlined: g++ 12 -O3 then warns (-Wrestrict, a false positive) on the
// string building below.
[[gnu::noinline]] bool on_path(const char* program) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    std::size_t const colon = rest.find(':');
    std::string_view const dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    std::string candidate(dir.empty() ? std::string_view(".") : dir);
    candidate.append(1, '/').append(program);
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

// "123.45us" / "1.20ms" / "2.00s" -> microseconds.
double latency_us(const char* text) {
  char* end = nullptr;
  double const v = std::strtod(text, &end);
  if (end == text) return -1;
  std::string_view const unit(end, std::strcspn(end, " \t\r\n"));
  if (unit == "us") return v;
  if (unit == "ms") return v * 1e3;
  if (unit == "s") return v * 1e6;
  if (unit == "m") return v * 60e6;
  return -1;
}

// Runs wrk against 127.0.0.1:port; returns requests/s, requests and p99.
sample run_wrk(const run_context& ctx, std::uint16_t port) {
  std::string const url = "http://127.0.0.1:" + std::to_string(port) + "/";
  std::string const duration = ctx.quick ? "1s" : "2s";
  std::string const conns = "-c" + std::to_string(http_connections);
  std::vector<std::string> args = {"wrk", "-t1", conns, "-d" + duration, "--latency", url};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipe_fd[2];
  if (::pipe2(pipe_fd, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipe_fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipe_fd[1], 2);
  pid_t pid = 0;
  int const rc = ::posix_spawnp(&pid, "wrk", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipe_fd[1]);
  if (rc != 0) {
    ::close(pipe_fd[0]);
    throw std::runtime_error("cannot start wrk");
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t const n = ::read(pipe_fd[0], buf, sizeof buf);
    if (n > 0)
      out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
      break;
  }
  ::close(pipe_fd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("wrk failed:\n" + out);
  auto const rps_at = out.find("Requests/sec:");
  auto const p99_at = out.find(" 99%");
  auto const total_at = out.find(" requests in ");
  if (rps_at == std::string::npos || p99_at == std::string::npos || total_at == std::string::npos)
    throw std::runtime_error("unexpected wrk output:\n" + out);
  if (out.find("Non-2xx") != std::string::npos) throw std::runtime_error("wrk saw non-2xx responses:\n" + out);
  sample s;
  s.value = std::strtod(out.c_str() + rps_at + 13, nullptr);
  auto const line = out.rfind('\n', total_at);
  s.ops = std::strtod(out.c_str() + (line == std::string::npos ? 0 : line + 1), nullptr);
  s.extra["p99_us"] = latency_us(out.c_str() + out.find_first_not_of(" \t", p99_at + 4));
  if (auto const err = out.find("Socket errors:"); err != std::string::npos) {
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    double errors = 0;
    for (const char* key : {"connect ", "read ", "write ", "timeout "}) {
      auto const k = out.find(key, err);
      if (k != std::string::npos) errors += std::strtod(out.c_str() + k + std::strlen(key), nullptr);
    }
    s.extra["socket_errors"] = errors;
  }
  if (!(s.value > 0) || !(s.ops > 0)) throw std::runtime_error("wrk reported no requests:\n" + out);
  return s;
}

sample http_rouse(const run_context& ctx, const server_setup& setup) {
  rio::event_loop loop(setup.backend, setup.ops);
  configure(loop, setup);
  auto l = rio::tcp_listener::bind(loop, rio::endpoint::loopback_v4(0));
  if (!l) throw std::runtime_error("bind: " + l.error().message());
  auto const ep = l->local_endpoint();
  if (!ep) throw std::runtime_error("local_endpoint: " + ep.error().message());
  std::atomic<bool> done{false};
  std::thread server([&] {
    try {
      loop.run_until_complete(rouse_http_server(loop, *l, done));
    } catch (...) {
    }
  });
  sample s;
  double const cpu0 = thread_cpu_us(server);
  try {
    s = run_wrk(ctx, ep->port());
  } catch (...) {
    done.store(true, std::memory_order_release);
    poke(ep->port());
    server.join();
    throw;
  }
  double const cpu1 = thread_cpu_us(server);
  if (cpu0 >= 0 && cpu1 >= 0) s.extra["server_cpu_us_per_op"] = (cpu1 - cpu0) / s.ops;
  done.store(true, std::memory_order_release);
  poke(ep->port());
  server.join();
  return s;
}

#if defined(ROUSE_BENCH_NET_ASIO)
asio::awaitable<void> asio_http_conn(asio_tcp::socket s) {
  std::string pending;
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio_tuple);
    if (ec) co_return;
    pending.append(buf.data(), n);
    if (pending.size() > 65536) co_return;
    std::size_t const k = take_requests(pending);
    if (k == 0) continue;
    std::string const r = k == 1 ? std::string(http_response) : responses(k);
    auto [wec, m] = co_await asio::async_write(s, asio::buffer(r), asio_tuple);
    if (wec) co_return;
  }
}

asio::awaitable<void> asio_http_server(asio_tcp::acceptor& a, const std::atomic<bool>& done) {
  auto ex = co_await asio::this_coro::executor;
  while (!done.load(std::memory_order_acquire)) {
    auto [ec, s] = co_await a.async_accept(asio_tuple);
    if (!ec && !done.load(std::memory_order_acquire)) asio::co_spawn(ex, asio_http_conn(std::move(s)), asio::detached);
  }
}

sample http_asio(const run_context& ctx) {
  asio::io_context io(1);
  asio_tcp::acceptor a(io, asio_tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  auto const port = a.local_endpoint().port();
  std::atomic<bool> done{false};
  asio::co_spawn(io, asio_http_server(a, done), asio::detached);
  std::thread server([&] { io.run(); });
  sample s;
  double const cpu0 = thread_cpu_us(server);
  try {
    s = run_wrk(ctx, port);
  } catch (...) {
    done.store(true, std::memory_order_release);
    poke(port);
    server.join();
    throw;
  }
  double const cpu1 = thread_cpu_us(server);
  if (cpu0 >= 0 && cpu1 >= 0) s.extra["server_cpu_us_per_op"] = (cpu1 - cpu0) / s.ops;
  done.store(true, std::memory_order_release);
  poke(port);
  server.join();
  return s;
}
#endif

bool uring_futex_native() {
  if (!rio::reactor::io_uring_available()) return false;
  rio::reactor r(rio::backend::io_uring);
  return r.backend() == rio::backend::io_uring && r.futex_wait_native();
}

}  // namespace

ROUSE_BENCH_REGISTER(net_workloads) {
  using rouse::bench::add;
  using rouse::bench::skipped;
  rlim_t const fds = raise_fd_limit();
  bool const uring = rio::reactor::io_uring_available();
#if defined(ROUSE_BENCH_NET_ASIO)
  std::string const asio_echo_name = "boost::asio::io_context (coroutines)";
#else
  std::string const asio_echo_name = "rouse::io::event_loop (epoll)";
  skipped("net\\..*", "boost::asio", "Boost 1.81 (asio/as_tuple.hpp) not installed");
#endif
  // The io_uring rows: the default (completion-based; every read and write
  // handed to the kernel at once), the other try-first choices, and
  // the readiness-based operations (a multishot poll, the reactor's own
  // recv/send).
  std::vector<std::pair<std::string, server_setup>> uring_rows;
  if (uring) {
    using ops = rio::uring_operations;
    uring_rows.push_back({"rouse::io::event_loop (io_uring)", {rio::backend::io_uring, ops::completion, false, false}});
    uring_rows.push_back({"rouse::io::event_loop (io_uring, writes tried first)",
                          {rio::backend::io_uring, ops::completion, false, true}});
    uring_rows.push_back({"rouse::io::event_loop (io_uring, every call tried first)",
                          {rio::backend::io_uring, ops::completion, true, true}});
    uring_rows.push_back({"rouse::io::event_loop (io_uring, submitted at once)",
                          {rio::backend::io_uring, ops::completion, false, false, true}});
    uring_rows.push_back({"rouse::io::event_loop (io_uring readiness)", {rio::backend::io_uring, ops::readiness}});
  }
  auto echo_impls = [&](int conns) {
    std::vector<rouse::bench::impl> v;
    v.push_back({"rouse::io::event_loop (epoll)",
                 [conns](const run_context& c) { return echo_rouse(c, conns, server_setup{}); }});
    for (auto const& [name, setup] : uring_rows)
      v.push_back({name, [conns, setup = setup](const run_context& c) { return echo_rouse(c, conns, setup); }});
#if defined(ROUSE_BENCH_NET_ASIO)
    v.push_back({asio_echo_name, [conns](const run_context& c) { return echo_asio(c, conns); }});
#endif
    return v;
  };
  if (!uring) skipped("net\\.echo.*", "rouse::io::event_loop (io_uring)", "io_uring not available here");
  add({
      .name = "net.echo64",
      .unit = "ops/s",
      .baseline = asio_echo_name,
      .impls = echo_impls(64),
      .rounds = 5,
      .description = "64 connections on 127.0.0.1, 64-byte messages, each client sends and awaits the echo; "
                     "round trips/s over a fixed window (clients: rouse::io coroutines on another thread).",
  });
  if (fds >= 2 * 1000 + 64) {
    add({
        .name = "net.echo_1k_conns",
        .unit = "ops/s",
        .baseline = asio_echo_name,
        .impls = echo_impls(1000),
        .rounds = 5,
        .description = "1,000 connections on 127.0.0.1, 64-byte messages, each client sends and awaits the echo; "
                       "round trips/s over a fixed window.",
    });
  } else {
    skipped("net\\.echo_1k_conns", "*", "RLIMIT_NOFILE hard limit below 2,064 descriptors");
  }

  std::vector<rouse::bench::impl> futex_impls;
  if (uring_futex_native())
    futex_impls.push_back({"rouse::io::wait_on (io_uring FUTEX_WAIT)",
                           [](const run_context& c) { return futex_await_wait_on(c, rio::backend::io_uring, 1); }});
  else
    skipped("async\\.futex_await", "rouse::io::wait_on (io_uring FUTEX_WAIT)",
            "no IORING_OP_FUTEX_WAIT here (Linux < 6.7, or rouse without liburing)");
  futex_impls.push_back({"rouse::io::wait_on (epoll, helper thread)",
                         [](const run_context& c) { return futex_await_wait_on(c, rio::backend::epoll, 20); }});
  futex_impls.push_back({"rouse::atomic_wait (2 threads)", futex_await_threads});
  add({
      .name = "async.futex_await",
      .unit = "ns/roundtrip",
      .baseline = "rouse::atomic_wait (2 threads)",
      .impls = std::move(futex_impls),
      .description = "a coroutine awaits a 32-bit word (rouse::io::wait_on) that a thread bumps and wakes, "
                     "100,000 round trips (the helper-thread row 1/20 of them); baseline: two threads.",
  });

  if (on_path("wrk")) {
    std::vector<rouse::bench::impl> http_impls = {
        {"rouse::io::event_loop (epoll)", [](const run_context& c) { return http_rouse(c, server_setup{}); }}};
    for (auto const& [name, setup] : uring_rows)
      http_impls.push_back({name, [setup = setup](const run_context& c) { return http_rouse(c, setup); }});
#if defined(ROUSE_BENCH_NET_ASIO)
    http_impls.push_back({"boost::asio::io_context (coroutines)", http_asio});
#endif
    add({
        .name = "net.http_hello",
        .unit = "ops/s",
        .baseline = asio_echo_name,
        .impls = std::move(http_impls),
        .rounds = 3,  // each round is a whole wrk run (2 s; 1 s with --quick)
        .description = "wrk -t1 -c64 for 2 s (1 s with --quick) against a keep-alive responder with a fixed body; "
                       "requests/s, p99 latency in extra (p99_us).",
    });
  } else {
    skipped("net\\.http_hello", "*", "wrk not installed (apt-get install wrk)");
  }
}
