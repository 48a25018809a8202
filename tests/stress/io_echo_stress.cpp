// 1,000 concurrent TCP connections on loopback, each echoing a patterned
// byte stream to completion; every byte is counted and checked. Once with
// everything on one event loop, once with the loop on its own thread and the
// clients and handlers on a thread pool (operations started on pool threads,
// completed by the reactor, resumed on the pool). Bytes per connection are
// scaled by ROUSE_STRESS_SCALE; the connection count is not.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "io_test.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/tcp.hpp"
#include "stress.hpp"

namespace io_echo_stress {
namespace {
using rouse::async::scheduler;
using rouse::async::task;
using rouse::async::task_scope;
using rouse::io::endpoint;
using rouse::io::event_loop;
using rouse::io::tcp_listener;
using rouse::io::tcp_stream;

class io_echo_stress : public ::testing::TestWithParam<rouse::io::backend> {};

constexpr int connections = 1000;

void raise_fd_limit() {
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  rlim_t const want = 2 * connections + 64;
  if (lim.rlim_cur < want) {
    if (lim.rlim_max < want) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low for " << connections << " connections";
    lim.rlim_cur = want;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
}

std::byte pattern(int conn, std::size_t i) { return static_cast<std::byte>((conn * 31 + i * 7) & 0xff); }

struct totals {
  std::atomic<std::uint64_t> echoed{0};    // bytes the handlers wrote back
  std::atomic<std::uint64_t> verified{0};  // bytes clients got back and checked
  std::atomic<int> mismatches{0};
  std::atomic<int> errors{0};
};

task<void> echo_handler(tcp_stream s, totals& t) {
  std::byte buf[2048];
  for (;;) {
    auto r = co_await s.read_some(buf);
    if (!r) {
      t.errors.fetch_add(1);
      co_return;
    }
    if (*r == 0) co_return;  // the client shut down its side
    auto w = co_await s.write_all(std::span(buf, *r));
    if (!w) {
      t.errors.fetch_add(1);
      co_return;
    }
    t.echoed.fetch_add(*r);
  }
}

task<void> server(tcp_listener& l, scheduler handlers, totals& t) {
  task_scope scope;
  for (int i = 0; i < connections; ++i) {
    auto s = co_await l.accept();
    if (!s) {
      t.errors.fetch_add(1);
      continue;
    }
    scope.spawn(handlers, echo_handler(std::move(*s), t));
  }
  co_await scope.join();
}

task<void> client(rouse::io::reactor& r, endpoint addr, int id, std::size_t bytes, totals& t) {
  auto c = co_await tcp_stream::connect(r, addr);
  if (!c) {
    t.errors.fetch_add(1);
    co_return;
  }
  std::vector<std::byte> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i) out[i] = pattern(id, i);
  std::vector<std::byte> in(bytes);
  // Write and read in uneven chunks, so that partial transfers interleave.
  std::size_t sent = 0;
  std::size_t got = 0;
  std::size_t const chunk = 1000 + static_cast<std::size_t>(id % 7) * 333;
  while (got < bytes) {
    if (sent < bytes) {
      std::size_t const n = std::min(chunk, bytes - sent);
      if (!co_await c->write_all(std::span(out).subspan(sent, n))) {
        t.errors.fetch_add(1);
        co_return;
      }
      sent += n;
    }
    auto r = co_await c->read_some(std::span(in).subspan(got, std::min(bytes - got, std::size_t{4096})));
    if (!r || *r == 0) {
      t.errors.fetch_add(1);
      co_return;
    }
    got += *r;
  }
  (void)c->shutdown();
  for (std::size_t i = 0; i < bytes; ++i)
    if (in[i] != out[i]) {
      t.mismatches.fetch_add(1);
      break;
    }
  t.verified.fetch_add(got);
}

std::size_t bytes_per_connection() { return static_cast<std::size_t>(rouse_test::scaled(64 * 1024)); }

TEST_P(io_echo_stress, thousand_connections_on_one_loop) {
  raise_fd_limit();
  event_loop loop(GetParam());
  std::size_t const bytes = bytes_per_connection();
  totals t;
  auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0), 4096);
  ASSERT_TRUE(l);
  endpoint const addr = *l->local_endpoint();
  loop.run_until_complete([](event_loop& loop, tcp_listener& l, endpoint addr, std::size_t bytes,
                             totals& t) -> task<void> {
    task_scope scope;
    scope.spawn(loop.get_scheduler(), server(l, loop.get_scheduler(), t));
    for (int i = 0; i < connections; ++i) scope.spawn(loop.get_scheduler(), client(loop, addr, i, bytes, t));
    co_await scope.join();
  }(loop, *l, addr, bytes, t));
  EXPECT_EQ(t.errors.load(), 0);
  EXPECT_EQ(t.mismatches.load(), 0);
  EXPECT_EQ(t.echoed.load(), std::uint64_t(connections) * bytes);
  EXPECT_EQ(t.verified.load(), std::uint64_t(connections) * bytes);
}

TEST_P(io_echo_stress, thousand_connections_from_a_thread_pool) {
  raise_fd_limit();
  // The pool outlives the loop's thread, which schedules completions onto it.
  rouse::async::thread_pool pool(rouse_test::oversubscribed(4));
  event_loop loop(GetParam());
  std::thread driver([&] { loop.run(); });
  std::size_t const bytes = bytes_per_connection() / 4;
  totals t;
  {
    auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0), 4096);
    ASSERT_TRUE(l);
    endpoint const addr = *l->local_endpoint();
    auto srv = rouse::async::spawn(pool.get_scheduler(), server(*l, pool.get_scheduler(), t));
    std::vector<rouse::async::join_handle<void>> clients;
    for (int i = 0; i < connections; ++i)
      clients.push_back(rouse::async::spawn(pool.get_scheduler(), client(loop, addr, i, bytes, t)));
    for (auto& c : clients) c.join();
    srv.join();
  }
  loop.finish();
  driver.join();
  EXPECT_EQ(t.errors.load(), 0);
  EXPECT_EQ(t.mismatches.load(), 0);
  EXPECT_EQ(t.echoed.load(), std::uint64_t(connections) * bytes);
  EXPECT_EQ(t.verified.load(), std::uint64_t(connections) * bytes);
}

INSTANTIATE_TEST_SUITE_P(backends, io_echo_stress, ::testing::ValuesIn(rouse_test::io_backends()),
                         rouse_test::io_backend_name);

}  // namespace
}  // namespace io_echo_stress
