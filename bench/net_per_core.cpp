// net.echo64_per_core and async.per_core_submit: rouse::io's runtime shapes
// side by side — one event loop against rouse::io::per_core (a loop per
// core, SO_REUSEPORT listeners), and Asio with one io_context per core.
//
//   net.echo64_per_core   net.echo64's load (64 connections on 127.0.0.1,
//                         64-byte messages, each client writes one message
//                         and waits for its echo, for a fixed time) against
//                         four servers                                   ops/s (round trips/s)
//   async.per_core_submit a task on core 0 awaits submit_to(core, a task
//                         that returns at once), 20,000 times            ns/roundtrip
//
// Echo servers, all reading up to 4 KiB and writing back what they read,
// TCP_NODELAY, a coroutine per connection:
//   rouse::io::event_loop (1 thread)      one loop, one listener (the shape
//                                         of net.echo64's epoll row)
//   rouse::io::per_core (2 cores)         two loops on two threads, each
//                                         with its own SO_REUSEPORT listener
//                                         on the same port: the kernel
//                                         spreads the connections
//   thread_pool (1) + reactor thread
//                                         the accept loop on one event_loop
//                                         thread whose reactor holds every
//                                         connection; the connections' tasks
//                                         on a one-worker thread_pool: each
//                                         I/O event crosses threads (shape
//                                         (3)'s hand-off, with what exists)
//   boost::asio::io_context (1 thread)    net.echo64's Asio row
//   boost::asio::io_context per core (2)  two io_contexts on two threads,
//                                         each with its own SO_REUSEPORT
//                                         acceptor (Asio's thread-per-core)
// The clients are the same for every row and are net.echo64's, restated
// here because bench/net.cpp keeps its helpers to itself: coroutines on
// one rouse::io::event_loop (epoll) in one more thread, one per connection,
// each checking its echo. The window is net.echo64's (0.6 s, 0.1 s with
// --quick). Extras per row: server_cpu_us_per_op and client_cpu_us_per_op
// (the threads' CPU time, getrusage(RUSAGE_THREAD), over the whole run
// divided by the window's round trips: set-up included, a small share) —
// where a round trip's time goes, server side and client side. The
// thread_pool row's worker time includes its search for work before it
// sleeps.
//
// On a machine with 2 vCPUs the 2-core rows run three busy threads (two
// servers, one client) on two CPUs: they can show what a core costs when
// it is not free, and whether the kernel's spreading and the second loop
// cost anything per round trip (server_cpu_us_per_op); they cannot show
// the scaling a free core per loop gives. docs/io.md says what to read.
//
// async.per_core_submit rows: to the awaiting core itself (a schedule on
// its own loop, no thread crossed) and to the other core (a schedule onto
// a loop that is usually asleep in epoll: an eventfd write to wake it, and
// the completion back the same way) — the price of one hop between cores,
// which a pool sharing one reactor would pay for each I/O event it hands
// to another thread.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // Asio's awaitable frames: see bench/net.cpp
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "net_echo_client.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/io/per_core.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/tcp.hpp"

#if defined(ROUSE_BENCH_HAVE_BOOST) && __has_include(<boost/asio/as_tuple.hpp>)
#define ROUSE_BENCH_PER_CORE_ASIO 1
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

namespace {

using rouse::bench::clock;
using rouse::bench::ns_between;
using rouse::bench::run_context;
using rouse::bench::sample;
namespace ra = rouse::async;
namespace rio = rouse::io;

constexpr int echo_connections = 64;
constexpr std::size_t server_cores = 2;

// CPU time of the calling thread (getrusage(RUSAGE_THREAD)), in ns. Only
// the total is used: the kernel's split between user and system time is
// sampled at the tick, too coarse for these short runs.
struct cpu_time {
  double user = 0;
  double sys = 0;
  double total() const { return user + sys; }
  cpu_time operator+(const cpu_time& o) const { return {user + o.user, sys + o.sys}; }
  cpu_time operator-(const cpu_time& o) const { return {user - o.user, sys - o.sys}; }
};
cpu_time thread_cpu() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  auto const ns = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_usec) * 1e3;
  };
  return {ns(ru.ru_utime), ns(ru.ru_stime)};
}

// A port on 127.0.0.1 held by a bound, not listening, SO_REUSEPORT socket:
// the servers' listeners join its group; it takes no connections itself.
struct reserved_port {
  int fd = -1;
  std::uint16_t port = 0;
  reserved_port() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int const one = 1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("cannot reserve a port");
    port = ntohs(a.sin_port);
  }
  reserved_port(const reserved_port&) = delete;
  ~reserved_port() { ::close(fd); }
};

// --- the clients (net.echo64's): net_echo_client.hpp ---------------------

using rouse::bench::net::client_load;
using rouse::bench::net::load_state;

// The servers' side of a run: started listening before drive() is called;
// stop() ends them and joins their threads; cpu() their CPU time then.
struct server_handle {
  std::function<void()> stop;
  std::function<cpu_time()> cpu;
};

sample drive(const run_context& ctx, std::uint16_t port, server_handle& server) {
  load_state st;
  std::atomic<bool> client_threw{false};
  cpu_time client_cpu;
  std::thread clients([&] {
    try {
      rio::event_loop loop;
      loop.run_until_complete(client_load(loop, rio::endpoint::loopback_v4(port), echo_connections, st));
    } catch (...) {
      client_threw.store(true);
      st.settled.store(echo_connections, std::memory_order_release);
    }
    client_cpu = thread_cpu();
  });
  while (st.settled.load(std::memory_order_acquire) < echo_connections)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(ctx.quick ? 5 : 20));  // warm-up
  auto const t0 = clock::now();
  std::uint64_t const c0 = st.trips.load(std::memory_order_relaxed);
  std::this_thread::sleep_for(std::chrono::duration<double>(ctx.quick ? 0.1 : 0.6));
  std::uint64_t const c1 = st.trips.load(std::memory_order_relaxed);
  auto const t1 = clock::now();
  st.stop.store(true, std::memory_order_relaxed);
  clients.join();
  server.stop();
  if (client_threw.load()) throw std::runtime_error("the echo clients' loop threw");
  if (int const f = st.failures.load(); f != 0)
    throw std::runtime_error(std::to_string(f) + " echo clients failed (connect, I/O or a wrong echo)");
  double const trips = static_cast<double>(c1 - c0);
  if (trips <= 0) throw std::runtime_error("no round trips in the window");
  sample s{trips / (ns_between(t0, t1) * 1e-9), trips};
  cpu_time const server_cpu = server.cpu();
  s.extra["server_cpu_us_per_op"] = server_cpu.total() / trips * 1e-3;
  s.extra["client_cpu_us_per_op"] = client_cpu.total() / trips * 1e-3;
  return s;
}

// --- rouse servers ------------------------------------------------------

ra::task<void> rouse_echo(rio::tcp_stream s) {
  (void)s.set_nodelay(true);
  std::array<std::byte, 4096> buf;
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n || *n == 0) co_return;
    if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
  }
}

ra::task<void> rouse_accept_loop(rio::tcp_listener& l, ra::task_scope& scope, ra::scheduler sched) {
  for (;;) {
    auto s = co_await l.accept();  // a stop ends it here
    if (s) scope.spawn(sched, rouse_echo(std::move(*s)));
  }
}

// Serves on `l` until `stop` is requested, then waits for its connections.
ra::task<void> rouse_serve(rio::tcp_listener& l, ra::scheduler sched, ra::inplace_stop_token stop) {
  ra::task_scope scope;
  struct forward {
    ra::task_scope* s;
    void operator()() noexcept { s->request_stop(); }
  };
  ra::inplace_stop_callback link(stop, forward{&scope});
  scope.spawn(sched, rouse_accept_loop(l, scope, sched));
  co_await scope.join();
}

sample echo_one_loop(const run_context& ctx) {
  rio::event_loop loop;
  auto l = rio::tcp_listener::bind(loop, rio::endpoint::loopback_v4(0));
  if (!l) throw std::runtime_error("bind: " + l.error().message());
  std::uint16_t const port = l->local_endpoint()->port();
  ra::inplace_stop_source stop;
  std::atomic<bool> threw{false};
  cpu_time cpu;
  std::thread t([&] {
    try {
      loop.run_until_complete(rouse_serve(*l, loop.get_scheduler(), stop.get_token()));
    } catch (...) {
      threw.store(true);
    }
    cpu = thread_cpu();
  });
  server_handle h{[&] {
                    stop.request_stop();
                    t.join();
                    if (threw.load()) throw std::runtime_error("the rouse server's loop threw");
                  },
                  [&] { return cpu; }};
  return drive(ctx, port, h);
}

sample echo_per_core(const run_context& ctx) {
  reserved_port port;
  rio::per_core rt({.cores = server_cores});
  std::atomic<std::size_t> listening{0};
  std::array<cpu_time, server_cores> cpu{};
  std::exception_ptr error;
  std::thread t([&] {
    try {
      rt.run([&](rio::core_context& core) -> ra::task<void> {
        cpu_time const cpu0 = thread_cpu();
        auto l = rio::tcp_listener::bind(core, rio::endpoint::loopback_v4(port.port), {.reuse_port = true});
        if (!l) throw std::runtime_error("bind: " + l.error().message());
        listening.fetch_add(1);
        co_await rouse_serve(*l, core.get_scheduler(), core.get_stop_token());
        cpu[core.index()] = thread_cpu() - cpu0;
      });
    } catch (...) {
      error = std::current_exception();
      listening.store(server_cores);
    }
  });
  while (listening.load() < server_cores) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_handle h{[&] {
                    rt.request_stop();
                    t.join();
                    if (error) std::rethrow_exception(error);
                  },
                  [&] { return cpu[0] + cpu[1]; }};
  return drive(ctx, port.port, h);
}

// Shape (3)'s hand-off, measured with what exists: the listener and every
// connection registered with one reactor, driven by one event_loop thread,
// and the connections' tasks on a rouse::async::thread_pool of one worker
// (so two server threads, as in the 2-core rows). Each read or write that
// waits is completed by the reactor thread and resumed on the worker: one
// cross-thread schedule (and a futex wake when the worker sleeps) per I/O
// event, which is what a pool sharing one reactor adds to one loop.
ra::task<cpu_time> worker_cpu() { co_return thread_cpu(); }

sample echo_pool_shared_reactor(const run_context& ctx) {
  rio::event_loop loop;
  ra::thread_pool pool(1);
  auto l = rio::tcp_listener::bind(loop, rio::endpoint::loopback_v4(0));
  if (!l) throw std::runtime_error("bind: " + l.error().message());
  std::uint16_t const port = l->local_endpoint()->port();
  ra::inplace_stop_source stop;
  std::atomic<bool> threw{false};
  cpu_time cpu;
  std::thread t([&] {
    try {
      loop.run_until_complete(rouse_serve(*l, pool.get_scheduler(), stop.get_token()));
    } catch (...) {
      threw.store(true);
    }
    cpu = thread_cpu();
  });
  server_handle h{[&] {
                    stop.request_stop();
                    t.join();
                    if (threw.load()) throw std::runtime_error("the rouse server's loop threw");
                  },
                  [&] { return cpu + ra::spawn(pool.get_scheduler(), worker_cpu()).join(); }};
  return drive(ctx, port, h);
}

// --- Asio servers -------------------------------------------------------

#if defined(ROUSE_BENCH_PER_CORE_ASIO)
namespace asio = boost::asio;
using asio_tcp = asio::ip::tcp;
using asio_reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
constexpr auto asio_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> asio_echo(asio_tcp::socket s) {
  boost::system::error_code ignored;
  s.set_option(asio_tcp::no_delay(true), ignored);
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio_tuple);
    if (ec) co_return;
    auto [wec, m] = co_await asio::async_write(s, asio::buffer(buf.data(), n), asio_tuple);
    if (wec) co_return;
  }
}

asio::awaitable<void> asio_accept_loop(asio_tcp::acceptor& a) {
  auto ex = co_await asio::this_coro::executor;
  for (;;) {
    auto [ec, s] = co_await a.async_accept(asio_tuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (!ec) asio::co_spawn(ex, asio_echo(std::move(s)), asio::detached);
  }
}

// `contexts` io_contexts, one thread each; each with its own acceptor on
// the port (SO_REUSEPORT when there are several).
sample echo_asio(const run_context& ctx, std::size_t contexts) {
  std::unique_ptr<reserved_port> reserved;
  if (contexts > 1) reserved = std::make_unique<reserved_port>();
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<std::unique_ptr<asio_tcp::acceptor>> acceptors;
  std::uint16_t port = reserved ? reserved->port : 0;
  for (std::size_t i = 0; i < contexts; ++i) {
    ios.push_back(std::make_unique<asio::io_context>(1));
    auto a = std::make_unique<asio_tcp::acceptor>(*ios.back());
    asio_tcp::endpoint const ep(asio::ip::address_v4::loopback(), port);
    a->open(ep.protocol());
    a->set_option(asio_tcp::acceptor::reuse_address(true));
    if (contexts > 1) a->set_option(asio_reuse_port(true));
    a->bind(ep);
    a->listen();
    port = a->local_endpoint().port();
    asio::co_spawn(*ios.back(), asio_accept_loop(*a), asio::detached);
    acceptors.push_back(std::move(a));
  }
  std::vector<cpu_time> cpu(contexts);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < contexts; ++i)
    threads.emplace_back([&, i] {
      ios[i]->run();
      cpu[i] = thread_cpu();
    });
  server_handle h{[&] {
                    for (auto& io : ios) io->stop();
                    for (auto& t : threads) t.join();
                  },
                  [&] {
                    cpu_time sum;
                    for (const cpu_time& c : cpu) sum = sum + c;
                    return sum;
                  }};
  return drive(ctx, port, h);
}
#endif

// --- async.per_core_submit ----------------------------------------------

ra::task<int> answer(int i) { co_return i; }

sample submit_round_trips(const run_context& ctx, std::size_t target) {
  std::int64_t const n = ctx.scaled(20'000);
  rio::per_core rt({.cores = 2});
  double ns = 0;
  rt.run([&](rio::core_context& core) -> ra::task<void> {
    if (core.index() != 0) co_return;  // core 1's loop serves on, asleep between submissions
    std::int64_t sum = 0;
    for (int i = 0; i < 100; ++i) sum += co_await core.submit_to(target, answer(i));  // warm-up
    auto const t0 = clock::now();
    for (std::int64_t i = 0; i < n; ++i) sum += co_await core.submit_to(target, answer(static_cast<int>(i & 1)));
    ns = ns_between(t0, clock::now());
    rouse::bench::keep(sum);
  });
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

}  // namespace

ROUSE_BENCH_REGISTER(net_per_core_workloads) {
  using rouse::bench::add;
#if defined(ROUSE_BENCH_PER_CORE_ASIO)
  std::string const baseline = "boost::asio::io_context (1 thread)";
#else
  std::string const baseline = "rouse::io::event_loop (1 thread)";
  rouse::bench::skipped("net\\.echo64_per_core", "boost::asio", "Boost 1.81 (asio/as_tuple.hpp) not installed");
#endif
  std::vector<rouse::bench::impl> impls{
      {"rouse::io::event_loop (1 thread)", echo_one_loop},
      {"rouse::io::per_core (2 cores)", echo_per_core},
      {"thread_pool (1) + reactor thread", echo_pool_shared_reactor},
  };
#if defined(ROUSE_BENCH_PER_CORE_ASIO)
  impls.push_back({"boost::asio::io_context (1 thread)", [](const run_context& c) { return echo_asio(c, 1); }});
  impls.push_back({"boost::asio::io_context per core (2)", [](const run_context& c) { return echo_asio(c, 2); }});
#endif
  add({
      .name = "net.echo64_per_core",
      .unit = "ops/s",
      .baseline = baseline,
      .impls = std::move(impls),
      .rounds = 5,
      .description = "net.echo64's load (64 connections, 64-byte round trips, one client thread) against one loop "
                     "and against a loop per core with SO_REUSEPORT listeners (rouse::io::per_core, Asio).",
  });
  add({
      .name = "async.per_core_submit",
      .unit = "ns/roundtrip",
      .baseline = "submit_to (same core)",
      .impls = {{"submit_to (same core)", [](const run_context& c) { return submit_round_trips(c, 0); }},
                {"submit_to (other core)", [](const run_context& c) { return submit_round_trips(c, 1); }}},
      .description = "a task on core 0 awaits core.submit_to(core, a task returning at once); "
                     "rouse::io::per_core with 2 cores (epoll).",
  });
}
