// rouse::io::per_core: every core runs on its own thread with its own index;
// connections spread by the kernel among SO_REUSEPORT listeners are all
// served (echo checked byte for byte, total counted) with more cores than
// CPUs; submit_to runs on the other core's thread and brings the value or
// the exception back, and forwards a stop; an exception on one core stops
// the others and is rethrown by run(); request_stop() ends tasks blocked
// in accept and read, before or during a run.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "io_test.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/io/per_core.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/tcp.hpp"
#include "rouse/platform/cpu.hpp"

namespace io_per_core_test {
namespace {
using namespace std::chrono_literals;
using rouse::async::inplace_stop_callback;
using rouse::async::operation_stopped;
using rouse::async::task;
using rouse::async::task_scope;
using rouse::io::core_context;
using rouse::io::endpoint;
using rouse::io::event_loop;
using rouse::io::per_core;
using rouse::io::tcp_listener;
using rouse::io::tcp_stream;

class io_per_core : public ::testing::TestWithParam<rouse::io::backend> {};

per_core::options opts(std::size_t cores, rouse::io::backend b) {
  per_core::options o;
  o.cores = cores;
  o.backend = b;
  return o;
}

// A port on 127.0.0.1 held by a bound (not listening) SO_REUSEPORT socket:
// the cores' listeners join its group; it takes no connections itself.
struct reserved_port {
  int fd = -1;
  std::uint16_t port = 0;
  reserved_port() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int const one = 1;
    EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
  }
  ~reserved_port() { ::close(fd); }
};

TEST_P(io_per_core, every_core_runs_on_its_own_thread_with_its_own_index) {
  constexpr std::size_t cores = 4;  // more than the CPUs of a small machine
  per_core rt(opts(cores, GetParam()));
  EXPECT_EQ(rt.cores(), cores);
  std::array<std::atomic<int>, cores> runs{};
  std::array<std::thread::id, cores> ids{};
  std::array<bool, cores> on_own_loop{};
  rt.run([&](core_context& ctx) -> task<void> {
    EXPECT_EQ(ctx.cores(), cores);
    runs[ctx.index()].fetch_add(1);
    ids[ctx.index()] = std::this_thread::get_id();
    co_await rouse::async::sleep_for(1ms);  // resumes on this core's loop
    on_own_loop[ctx.index()] =
        rouse::async::current_executor() == &ctx.loop().executor() && ids[ctx.index()] == std::this_thread::get_id();
  });
  std::set<std::thread::id> distinct;
  for (std::size_t i = 0; i < cores; ++i) {
    EXPECT_EQ(runs[i].load(), 1) << "core " << i;
    EXPECT_TRUE(on_own_loop[i]) << "core " << i;
    distinct.insert(ids[i]);
  }
  EXPECT_EQ(distinct.size(), cores);
  EXPECT_EQ(distinct.count(std::this_thread::get_id()), 0u);
}

TEST(io_per_core_options, zero_cores_means_hardware_concurrency) {
  per_core rt;
  EXPECT_EQ(rt.cores(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(io_per_core_options, pinned_cores_run_on_their_cpu) {
  std::vector<int> const allowed = rouse::platform::allowed_cpu_list();
  if (allowed.empty()) GTEST_SKIP() << "no affinity mask here";
  per_core::options o;
  o.cores = 2;
  o.pin = true;
  per_core rt(o);
  std::array<int, 2> cpu{-2, -2};
  std::array<int, 2> ran_on{-2, -2};
  rt.run([&](core_context& ctx) -> task<void> {
    cpu[ctx.index()] = ctx.cpu();
    ran_on[ctx.index()] = rouse::platform::current_cpu();
    co_return;
  });
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(cpu[i], allowed[i % allowed.size()]) << "core " << i;
    if (ran_on[i] != -1) {
      EXPECT_EQ(ran_on[i], cpu[i]) << "core " << i;
    }
  }
}

// ---- echo on every core ----------------------------------------------------

struct echo_stats {
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<int> connections{0};
};

task<void> echo(tcp_stream s, echo_stats& st) {
  std::array<std::byte, 4096> buf;
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n || *n == 0) co_return;
    if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
    st.bytes.fetch_add(*n, std::memory_order_relaxed);
  }
}

task<void> accept_loop(tcp_listener& l, task_scope& scope, core_context& ctx, echo_stats& st) {
  for (;;) {
    auto s = co_await l.accept();  // completes as stopped at the end
    if (!s) continue;
    st.connections.fetch_add(1, std::memory_order_relaxed);
    scope.spawn(ctx.get_scheduler(), echo(std::move(*s), st));
  }
}

// Serves until the run is stopped, then waits for its connections' tasks.
task<void> serve(core_context& ctx, std::uint16_t port, echo_stats& st, std::atomic<std::size_t>& listening) {
  auto l = tcp_listener::bind(ctx, endpoint::loopback_v4(port), {.reuse_port = true});
  if (!l) throw std::runtime_error("bind: " + l.error().message());
  listening.fetch_add(1);
  task_scope scope;
  struct forward {
    task_scope* s;
    void operator()() noexcept { s->request_stop(); }
  };
  inplace_stop_callback link(ctx.get_stop_token(), forward{&scope});
  scope.spawn(ctx.get_scheduler(), accept_loop(*l, scope, ctx, st));
  co_await scope.join();
}

task<bool> client(event_loop& loop, std::uint16_t port, std::size_t bytes, int seed,
                  std::atomic<std::uint64_t>& echoed) {
  auto c = co_await tcp_stream::connect(loop, endpoint::loopback_v4(port));
  if (!c) co_return false;
  std::vector<std::byte> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i)
    out[i] = static_cast<std::byte>((i * 31 + static_cast<std::size_t>(seed)) & 0xff);
  std::vector<std::byte> in(bytes);
  constexpr std::size_t chunk = 1000;  // not a divisor of the size: a short last chunk
  for (std::size_t at = 0; at < bytes; at += chunk) {
    std::size_t const n = std::min(chunk, bytes - at);
    if (!co_await c->write_all(std::span(out).subspan(at, n))) co_return false;
    if (!co_await c->read_exact(std::span(in).subspan(at, n))) co_return false;
  }
  (void)c->shutdown();
  std::array<std::byte, 1> eof;
  auto const end = co_await c->read_some(eof);  // the server closes after our shutdown
  if (!end || *end != 0) co_return false;
  echoed.fetch_add(bytes, std::memory_order_relaxed);
  co_return in == out;
}

task<int> clients(event_loop& loop, std::uint16_t port, int count, std::size_t bytes,
                  std::atomic<std::uint64_t>& echoed) {
  std::vector<rouse::async::join_handle<bool>> hs;
  for (int i = 0; i < count; ++i)
    hs.push_back(rouse::async::spawn(loop.get_scheduler(), client(loop, port, bytes, i, echoed)));
  int failed = 0;
  for (auto& h : hs)
    if (!co_await std::move(h)) ++failed;
  co_return failed;
}

void echo_on_every_core(std::size_t cores, rouse::io::backend b) {
  constexpr int connections = 200;
  constexpr std::size_t bytes = 10'007;
  reserved_port port;
  per_core rt(opts(cores, b));
  std::vector<std::unique_ptr<echo_stats>> stats;
  for (std::size_t i = 0; i < cores; ++i) stats.push_back(std::make_unique<echo_stats>());
  std::atomic<std::size_t> listening{0};
  std::atomic<std::uint64_t> echoed{0};
  int failed = -1;
  std::thread load([&] {
    rouse_test::eventually([&] { return listening.load() == cores; });
    event_loop loop;
    failed = loop.run_until_complete(clients(loop, port.port, connections, bytes, echoed));
    rt.request_stop();
  });
  rt.run([&](core_context& ctx) -> task<void> { return serve(ctx, port.port, *stats[ctx.index()], listening); });
  load.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(echoed.load(), std::uint64_t{connections} * bytes);
  std::uint64_t served_bytes = 0;
  int served_connections = 0;
  for (std::size_t i = 0; i < cores; ++i) {
    served_bytes += stats[i]->bytes.load();
    served_connections += stats[i]->connections.load();
    // 200 connections hashed over `cores` listeners: one core left out has a
    // chance of cores * (1 - 1/cores)^200 (below 1e-24 for 4).
    EXPECT_GT(stats[i]->connections.load(), 0) << "core " << i << " accepted nothing";
  }
  EXPECT_EQ(served_connections, connections);
  EXPECT_EQ(served_bytes, std::uint64_t{connections} * bytes);
}

TEST_P(io_per_core, connections_spread_over_2_cores_are_all_served) { echo_on_every_core(2, GetParam()); }
TEST_P(io_per_core, connections_spread_over_4_cores_are_all_served) { echo_on_every_core(4, GetParam()); }

// ---- submit_to ---------------------------------------------------------------

task<std::thread::id> where_am_i() { co_return std::this_thread::get_id(); }
task<int> add_on(int a, int b) {
  co_await rouse::async::sleep_for(1ms);  // suspends on the other core
  co_return a + b;
}
task<int> throws_there() {
  co_await rouse::async::sleep_for(1ms);
  throw std::runtime_error("from the other core");
}

TEST_P(io_per_core, submit_to_runs_on_the_other_cores_thread_and_returns_there) {
  per_core rt(opts(3, GetParam()));
  std::array<std::thread::id, 3> ids{};
  std::thread::id ran_on{};
  std::thread::id resumed_on{};
  int sum = 0;
  std::string error;
  std::array<int, 3> sums{};
  rt.run([&](core_context& ctx) -> task<void> {
    ids[ctx.index()] = std::this_thread::get_id();
    if (ctx.index() == 0) {
      ran_on = co_await ctx.submit_to(2, where_am_i());
      sum = co_await ctx.submit_to(2, add_on(40, 2));
      resumed_on = std::this_thread::get_id();
      try {
        co_await ctx.submit_to(1, throws_there());
      } catch (const std::runtime_error& e) {
        error = e.what();
      }
    }
    // Every core asks every core, itself included, a hundred times: the
    // targets keep serving after their own task has ended.
    for (int i = 0; i < 100; ++i)
      sums[ctx.index()] += co_await ctx.submit_to(static_cast<std::size_t>(i) % ctx.cores(), add_on(i, 1));
  });
  EXPECT_EQ(ran_on, ids[2]);
  EXPECT_NE(ran_on, ids[0]);
  EXPECT_EQ(resumed_on, ids[0]);
  EXPECT_EQ(sum, 42);
  EXPECT_EQ(error, "from the other core");
  for (int s : sums) EXPECT_EQ(s, 100 * 99 / 2 + 100);
}

task<int> sleep_long(std::atomic<int>& woke) {
  co_await rouse::async::sleep_for(1h);  // only a stop ends it
  woke.fetch_add(1);
  co_return 0;
}

TEST_P(io_per_core, a_stop_of_the_awaiter_reaches_the_submitted_task) {
  per_core rt(opts(2, GetParam()));
  std::atomic<int> woke{0};
  bool stopped = false;
  rt.run([&](core_context& ctx) -> task<void> {
    if (ctx.index() != 0) co_return;  // core 1's loop serves on after this
    auto h = rouse::async::spawn(ctx.get_scheduler(), [](core_context& c, std::atomic<int>& w) -> task<int> {
      co_return co_await c.submit_to(1, sleep_long(w));
    }(ctx, woke));
    co_await rouse::async::sleep_for(5ms);
    h.request_stop();
    try {
      (void)co_await std::move(h);
    } catch (const operation_stopped&) {
      stopped = true;
    }
  });
  EXPECT_TRUE(stopped);
  EXPECT_EQ(woke.load(), 0);
}

// ---- errors and stops ------------------------------------------------------

TEST_P(io_per_core, an_exception_on_one_core_stops_the_others_and_is_rethrown) {
  constexpr std::size_t cores = 4;
  per_core rt(opts(cores, GetParam()));
  std::atomic<int> waiting{0};
  std::atomic<int> woke{0};
  try {
    rt.run([&](core_context& ctx) -> task<void> {
      if (ctx.index() == 2) {
        rouse_test::eventually([&] { return waiting.load() == static_cast<int>(cores) - 1; });
        throw std::runtime_error("core 2 failed");
      }
      waiting.fetch_add(1);
      co_await rouse::async::sleep_for(1h);  // only a stop ends it
      woke.fetch_add(1);
    });
    ADD_FAILURE() << "run() returned normally";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "core 2 failed");
  }
  EXPECT_EQ(woke.load(), 0);
  EXPECT_FALSE(rt.stop_requested());  // the run's stop, not the runtime's

  // The runtime runs again.
  std::atomic<int> ran{0};
  rt.run([&](core_context&) -> task<void> {
    ran.fetch_add(1);
    co_return;
  });
  EXPECT_EQ(ran.load(), static_cast<int>(cores));
}

TEST_P(io_per_core, the_first_of_several_exceptions_wins) {
  per_core rt(opts(3, GetParam()));
  try {
    rt.run([&](core_context& ctx) -> task<void> {
      co_await rouse::async::sleep_for(1ms);
      throw std::runtime_error("core " + std::to_string(ctx.index()));
    });
    ADD_FAILURE() << "run() returned normally";
  } catch (const std::runtime_error& e) {
    std::string const what = e.what();
    EXPECT_TRUE(what == "core 0" || what == "core 1" || what == "core 2") << what;
  }
}

task<void> blocked_in_accept_and_read(core_context& ctx, std::atomic<int>& blocked, std::atomic<int>& went_on) {
  auto l = tcp_listener::bind(ctx, endpoint::loopback_v4(0));
  if (!l) throw std::runtime_error("bind: " + l.error().message());
  if (ctx.index() % 2 == 0) {
    blocked.fetch_add(1);
    (void)co_await l->accept();  // nobody connects
    went_on.fetch_add(1);
  } else {
    auto c = co_await tcp_stream::connect(ctx, *l->local_endpoint());
    auto s = co_await l->accept();
    if (!c || !s) throw std::runtime_error("no connection");
    std::array<std::byte, 16> buf;
    blocked.fetch_add(1);
    (void)co_await s->read_some(buf);  // nobody writes
    went_on.fetch_add(1);
  }
}

TEST_P(io_per_core, request_stop_ends_tasks_blocked_in_accept_and_read) {
  constexpr std::size_t cores = 4;
  per_core rt(opts(cores, GetParam()));
  std::atomic<int> blocked{0};
  std::atomic<int> went_on{0};
  std::thread stopper([&] {
    rouse_test::eventually([&] { return blocked.load() == static_cast<int>(cores); });
    rt.request_stop();
  });
  rt.run([&](core_context& ctx) -> task<void> { return blocked_in_accept_and_read(ctx, blocked, went_on); });
  stopper.join();
  EXPECT_EQ(went_on.load(), 0);
  EXPECT_TRUE(rt.stop_requested());

  // Final, as std::jthread's: a later run starts stopped.
  std::atomic<int> saw_stop{0};
  rt.run([&](core_context& ctx) -> task<void> {
    if (ctx.get_stop_token().stop_requested()) saw_stop.fetch_add(1);
    co_await rouse::async::sleep_for(1h);  // completes as stopped at once
    went_on.fetch_add(1);
  });
  EXPECT_EQ(saw_stop.load(), static_cast<int>(cores));
  EXPECT_EQ(went_on.load(), 0);
}

TEST_P(io_per_core, a_core_may_stop_the_run_for_all) {
  per_core rt(opts(3, GetParam()));
  std::atomic<int> woke{0};
  rt.run([&](core_context& ctx) -> task<void> {
    if (ctx.index() == 1) {
      co_await rouse::async::sleep_for(2ms);
      ctx.request_stop();
      co_return;
    }
    co_await rouse::async::sleep_for(1h);
    woke.fetch_add(1);
  });
  EXPECT_EQ(woke.load(), 0);
  EXPECT_FALSE(rt.stop_requested());
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(io_per_core_death, destroyed_from_one_of_its_own_cores_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* rt = new per_core(per_core::options{.cores = 1});
        rt->run([rt](core_context&) -> task<void> {
          delete rt;
          co_return;
        });
      },
      "rouse::io::per_core: misuse: destroyed while run\\(\\) is in progress");
}
#endif

INSTANTIATE_TEST_SUITE_P(backends, io_per_core, ::testing::ValuesIn(rouse_test::io_backends()),
                         rouse_test::io_backend_name);

}  // namespace
}  // namespace io_per_core_test
